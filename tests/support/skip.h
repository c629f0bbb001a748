#pragma once
// A test case that cannot run here (a fixture is absent) says why and returns through
// FRUGAL_SKIP. The doctest main (tests/doctest_main.cpp) then ends a passing run with the
// line "FRUGAL_TESTS_SKIPPED: n", which CTest's SKIP_REGULAR_EXPRESSION (set for every
// doctest entry in tests/CMakeLists.txt) reports as "Skipped", never as "Passed". A run
// with a failed case still fails: the line is printed only when nothing failed.
#include <doctest/doctest.h>

#include <atomic>

namespace frugal::testing {

inline std::atomic<int>& skipped_cases() {
  static std::atomic<int> n{0};
  return n;
}

}  // namespace frugal::testing

#define FRUGAL_SKIP(why)                                  \
  do {                                                    \
    MESSAGE("skipped: " << why);                          \
    ::frugal::testing::skipped_cases().fetch_add(1);      \
    return;                                               \
  } while (0)
