// The fuzz targets of tests/fuzz/ as a plain test in every build: each target's committed
// corpus (tests/fuzz/<target>/corpus/), then truncations and byte flips of it from a
// fixed seed. Passing means no crash, no invariant violated, no sanitizer report (in the
// asan preset), and the verdicts the file names promise (fuzz_target.h): `ok-*`
// accepted, `bad-*` rejected.
//
// Each target's LLVMFuzzerTestOneInput is compiled under its own name here
// (tests/fuzz/CMakeLists.txt), so that all of them link into one binary.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

#define FRUGAL_FUZZ_TARGETS(X) \
  X(http_request)              \
  X(openai_body)               \
  X(anthropic_body)            \
  X(embeddings_body)           \
  X(sse_stream)                \
  X(ledger_row)                \
  X(cache_entry)               \
  X(config_yaml)               \
  X(policy_yaml)               \
  X(replay_log)

#define FRUGAL_DECLARE_TARGET(name) extern "C" int frugal_fuzz_##name(const uint8_t* data, size_t size);
FRUGAL_FUZZ_TARGETS(FRUGAL_DECLARE_TARGET)

namespace {

using Target = int (*)(const uint8_t*, size_t);

struct CorpusFile {
  std::string name;
  std::vector<uint8_t> bytes;
};

std::vector<CorpusFile> corpus_of(const std::string& target) {
  const std::filesystem::path dir = std::filesystem::path(FRUGAL_FUZZ_DIR) / target / "corpus";
  REQUIRE_MESSAGE(std::filesystem::is_directory(dir), dir.string());
  std::vector<CorpusFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    files.push_back({entry.path().filename().string(),
                     {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()}});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return files;
}

int run(Target fn, const std::vector<uint8_t>& bytes) {
  frugal::fuzz::verdict() = -1;
  // As libFuzzer does, an empty input still comes with a valid pointer (an empty vector's
  // data() may be null, which no caller of the code under test ever passes).
  static const uint8_t kEmpty = 0;
  fn(bytes.empty() ? &kEmpty : bytes.data(), bytes.size());
  return frugal::fuzz::verdict();
}

void replay_corpus(const std::string& target, Target fn) {
  const auto files = corpus_of(target);
  int ok = 0, bad = 0;
  for (const auto& f : files) {
    CAPTURE(f.name);
    const int verdict = run(fn, f.bytes);
    if (f.name.rfind("ok-", 0) == 0) {
      CHECK(verdict == 1);
      ++ok;
    } else if (f.name.rfind("bad-", 0) == 0) {
      CHECK(verdict == 0);
      ++bad;
    }
  }
  // A corpus that seeds the fuzzer with something it accepts and something it rejects.
  CHECK(ok >= 1);
  CHECK(bad >= 1);
}

void replay_mutations(const std::string& target, Target fn) {
  std::mt19937 rng(17);
  for (const auto& f : corpus_of(target)) {
    CAPTURE(f.name);
    const size_t n = f.bytes.size();
    for (size_t cut = 0; cut < n; cut += std::max<size_t>(1, n / 24))
      run(fn, std::vector<uint8_t>(f.bytes.begin(), f.bytes.begin() + static_cast<long>(cut)));
    if (n == 0) continue;
    for (int k = 0; k < 48; ++k) {
      std::vector<uint8_t> m = f.bytes;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int j = 0; j < flips; ++j) {
        const size_t at = rng() % n;
        switch (rng() % 3) {
          case 0: m[at] = static_cast<uint8_t>(m[at] ^ (1u << (rng() % 8))); break;
          case 1: m[at] = static_cast<uint8_t>("\0\xff\n\r:\"{[-9"[rng() % 10]); break;
          default: m.insert(m.begin() + static_cast<long>(at), m[rng() % n]); break;
        }
      }
      run(fn, m);
    }
  }
}

}  // namespace

#define FRUGAL_REPLAY_TESTS(name)                                                     \
  TEST_CASE("fuzz " #name ": the committed corpus replays with the promised verdicts") { \
    replay_corpus(#name, frugal_fuzz_##name);                                         \
  }                                                                                   \
  TEST_CASE("fuzz " #name ": truncations and byte flips of the corpus") {             \
    replay_mutations(#name, frugal_fuzz_##name);                                      \
  }
FRUGAL_FUZZ_TARGETS(FRUGAL_REPLAY_TESTS)
