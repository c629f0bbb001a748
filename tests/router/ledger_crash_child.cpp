// Child half of the ledger crash test: appends rows with append_sync forever and
// prints each request id to stdout once append_sync has returned OK. The parent
// kills it with SIGKILL and checks every printed id survived.
#include <cstdio>
#include <string>

#include "record_util.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto ledger = frugal::router::Ledger::open_standalone(argv[1]);
  if (!ledger) {
    std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
    return 1;
  }
  for (int i = 0;; ++i) {
    std::string id = frugal::router::testing::numbered("req-", i);
    auto r = (*ledger)->append_sync(frugal::router::testing::two_tier_record(id, 1'700'000'000'000'000 + i));
    if (!r.ok()) return 1;
    std::printf("%s\n", id.c_str());
    std::fflush(stdout);
  }
}
