// The main of every doctest binary. Beyond doctest's own: a run in which no test case
// passed the filters fails (a CTest entry whose filter matches nothing must not pass),
// and a passing run in which a case skipped itself (FRUGAL_SKIP) says so on a line CTest
// recognises as a skip.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "tests/support/skip.h"

namespace {

struct RunCount {
  bool ended = false;
  unsigned cases = 0;
};

RunCount& run_count() {
  static RunCount c;
  return c;
}

// Records how many test cases passed the filters; reports nothing itself.
struct CountingListener : doctest::IReporter {
  explicit CountingListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& s) override {
    run_count().ended = true;
    run_count().cases = s.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("frugal_count", 1, CountingListener);

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int rc = context.run();
  if (context.shouldExit() || !run_count().ended) return rc;  // --help, --list-*, --no-run
  if (rc == 0 && run_count().cases == 0) {
    std::cerr << "frugal tests: no test case matched the filters; an entry that runs nothing fails\n";
    return 1;
  }
  if (rc == 0 && frugal::testing::skipped_cases().load() > 0)
    std::cout << "FRUGAL_TESTS_SKIPPED: " << frugal::testing::skipped_cases().load()
              << " test case(s) skipped themselves\n";
  return rc;
}
