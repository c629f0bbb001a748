// Cases for tests/support/doctest_main_selftest.sh, which checks what tests/doctest_main.cpp
// makes of them. Not registered on their own: "fails" fails by design.
#include <doctest/doctest.h>

#include "tests/support/skip.h"

TEST_CASE("selftest: passes") { CHECK(1 + 1 == 2); }

TEST_CASE("selftest: skips itself") {
  FRUGAL_SKIP("the self-test's fixture is absent by design");
  CHECK(false);  // never reached
}

TEST_CASE("selftest: fails") { CHECK(1 + 1 == 3); }
