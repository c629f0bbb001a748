// One replay-log line (backends/replay/replay_log.cpp), and what `frugal replay` does
// next with an accepted one: render each candidate as the replay backend's answer and
// parse that back as the cascade does. Any bytes must parse or be rejected with a
// message, never crash; an accepted candidate's answer must survive the round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/replay/replay_backend.h"
#include "backends/replay/replay_log.h"
#include "router/tier_answer.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto r = backends::parse_replay_line(line, 1);
  fuzz::accepted(r.ok());
  if (!r.ok()) {
    fuzz::require(!r.error().message.empty(), "a rejection without a message");
    return 0;
  }
  for (const auto& c : r->candidates) {
    auto a = router::parse_tier_answer(backends::completion_of(c));
    fuzz::require(a.ok(), "the replay backend's answer does not parse");
    fuzz::require(a->text == c.answer, "the answer text did not survive the round trip");
    fuzz::require(a->token_logprobs.size() == c.logprobs.size(), "log-probs lost in the round trip");
  }
  return 0;
}
