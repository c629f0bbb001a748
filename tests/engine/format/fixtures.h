#pragma once
// Locating ../shared/fixtures for tests; a test that needs a missing fixture says so
// and skips itself (FRUGAL_SKIP), so CTest reports it as skipped.
#include <doctest/doctest.h>

#include "tests/support/skip.h"

#include <filesystem>
#include <string>

namespace frugal::engine::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(FRUGAL_FIXTURES_DIR) + "/" + name;
}

inline bool have_fixture(const std::string& name) {
  return std::filesystem::exists(fixture_path(name));
}

}  // namespace frugal::engine::testing

// Use at the top of a TEST_CASE: skips the rest of it, visibly, when the fixture is absent.
#define FRUGAL_REQUIRE_FIXTURE(name)                                                   \
  do {                                                                                \
    if (!::frugal::engine::testing::have_fixture(name))                                \
      FRUGAL_SKIP("fixture " << ::frugal::engine::testing::fixture_path(name)          \
                             << " not found");                                        \
  } while (0)
