#pragma once
// Shared by the fuzz targets in tests/fuzz/<target>/: each is one LLVMFuzzerTestOneInput
// that builds both as a libFuzzer fuzzer (clang, FRUGAL_LIBFUZZER=ON) and, renamed by a
// macro, into the corpus replay test (replay_test.cpp) of every build.
//
// A target reports whether the parser under test accepted its input; the replay test
// holds the committed corpus to the file names: `ok-*` must be accepted, `bad-*`
// rejected, anything else (`edge-*`, `crash-*` regressions) must only not crash.
// Invariants a target checks itself (a round trip that must hold) end the process
// through fuzz_require, which libFuzzer and doctest both report with the input.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace frugal::fuzz {

// 1 accepted, 0 rejected, -1 not reported. Reset by the replay before each input.
inline int& verdict() {
  static int v = -1;
  return v;
}
inline void accepted(bool ok) { verdict() = ok ? 1 : 0; }

inline void require(bool cond, std::string_view what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz invariant violated: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace frugal::fuzz
