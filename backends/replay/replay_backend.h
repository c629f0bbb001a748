#pragma once
// The `replay` backend: answers a generation from a recorded candidate instead of a
// provider, so `frugal replay` drives the live cascade executor (router/cascade.h)
// over recorded outcomes. The answer is the canonical chat.completion body the live
// path would have parsed: the recorded text, log-probs (when recorded), usage, and the
// recorded confidence as a top-level "frugal_confidence" number (read by the
// `confidence` acceptance rule). A model with no recorded outcome for the current
// request answers 404 (the cascade escalates past it; a last tier fails).
//
// Threading: one backend per replay run, on its thread; set_record() before each request.
#include <memory>
#include <string>
#include <string_view>

#include "backends/backend.h"
#include "backends/replay/replay_log.h"

namespace frugal::backends {

// The canonical chat.completion body of a recorded candidate.
std::string completion_of(const ReplayCandidate& c);

class ReplayBackend final : public Backend {
 public:
  void set_record(const ReplayRecord* r) { record_ = r; }
  std::shared_ptr<Call> start(const ChatRequest& req, std::string_view model) override;

 private:
  const ReplayRecord* record_ = nullptr;
};

}  // namespace frugal::backends
