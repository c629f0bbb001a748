#pragma once
// Builds replay-log lines and policies for the replay and calibrate tests.
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/replay/replay_log.h"
#include "config/policy_config.h"
#include "policies/policy.h"

namespace frugal::testing {

// small ($0.00012 a call at 100 in / 10 out), medium ($0.00036), large ($0.0012).
inline const char* kReplayPolicy = R"(request_types:
  - name: qa
    match: { header: { x-kind: qa } }
  - name: chat
routes:
  qa:
    reference_model: large
    cascade:
      - model: small
        accept: { confidence: { min: 0.5 } }
      - model: large
prices:
  small:  { input: 1.00, output: 2.00 }
  medium: { input: 3.00, output: 6.00 }
  large:  { input: 10.00, output: 20.00 }
)";

struct Cand {
  std::string model;
  std::optional<bool> correct;
  std::optional<double> confidence;
  std::string answer = "a";
  std::string extra;  // raw JSON members appended to the candidate object
};

inline std::string cand_json(const Cand& c) {
  std::string s = "\"" + c.model + "\":{\"answer\":\"" + c.answer + "\",\"correct\":" +
                  (c.correct ? (*c.correct ? "true" : "false") : "null");
  if (c.extra.find("cost_usd") == std::string::npos)
    s += ",\"usage\":{\"input_tokens\":100,\"output_tokens\":10}";
  if (c.confidence) s += ",\"confidence\":" + std::to_string(*c.confidence);
  if (!c.extra.empty()) s += "," + c.extra;
  return s + "}";
}

// A qa request (header x-kind: qa) with the given candidates.
inline std::string qa_line(const std::string& id, const std::vector<Cand>& cands) {
  std::string s = "{\"id\":\"" + id +
                  "\",\"headers\":{\"x-kind\":\"qa\"},\"request\":{\"model\":\"large\",\"messages\":[{\"role\":"
                  "\"user\",\"content\":\"q\"}]},\"candidates\":{";
  for (size_t i = 0; i < cands.size(); ++i) s += (i ? "," : "") + cand_json(cands[i]);
  return s + "}}";
}

inline backends::ReplayLog log_of(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  std::istringstream in(text);
  return backends::read_replay_log(in);
}

inline std::shared_ptr<const policies::CompiledPolicy> compile(const std::string& yaml) {
  auto pc = config::load_policy_text(yaml, "test.yaml");
  if (!pc) throw std::runtime_error(pc.error().message);
  auto p = policies::compile_policy(*pc);
  if (!p) throw std::runtime_error(p.error().message);
  return *p;
}

inline std::string usd(Money m) { return m.to_usd_string(); }

}  // namespace frugal::testing
