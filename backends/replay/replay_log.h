#pragma once
// The replay log: one recorded request per JSONL line, with what every candidate model
// answered (docs/replay.md has the format). `frugal replay` runs a policy over it and
// `frugal calibrate` fits one to it; gateway capture writes it.
//
//   {"id": "...", "request_type": "...", "request": {chat body},
//    "candidates": {"<model>": {"answer": "...", "correct": true|false|null,
//        "usage": {"input_tokens": N, "output_tokens": N, "cached_input_tokens": N}
//          (or "cost_usd": X), "logprobs": [[token, logprob, [[alt, logprob], ...]], ...],
//        "confidence": X, "latency_ms": X}}}
//
// A label line, {"id": "...", "feedback": {"correct": true|false, "score": 0..1}}
// (POST /v1/frugal/feedback appends them to the capture file), sets `correct` of the
// candidate named by the line with that id's "answered_by" (score >= 0.5 is correct);
// the last label wins. Labels for ids not in the log are counted, not errors.
//
// Optional line-level facts for the request-type matchers: "headers" {name: value},
// "team", "api_key_id", "ts" (Unix seconds, for budget windows). Unknown fields are
// ignored; a line that breaks the format is reported with its line number and kept
// out of the records, never dropped silently.
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/money.h"
#include "core/usage.h"

namespace frugal::backends {

struct ReplayToken {
  std::string token;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;  // alternatives, as recorded
};

struct ReplayCandidate {
  std::string model;
  std::string answer;
  std::optional<bool> correct;     // nullopt: unlabelled
  std::optional<Usage> usage;      // at least one of usage and cost_usd is set
  std::optional<Money> cost_usd;   // a recorded cost wins over pricing the usage
  std::vector<ReplayToken> logprobs;
  std::optional<double> confidence;  // in [0, 1]
  std::optional<double> latency_ms;

  std::vector<double> token_logprobs() const;
};

struct ReplayRecord {
  size_t line = 0;  // 1-based line in the log
  std::string id;
  std::string request_type;  // "" when absent
  std::string request_json;  // the chat body, minified; "" when absent
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string team;
  std::string api_key_id;
  int64_t ts_us = 0;  // 0 when absent
  std::string answered_by;  // the model that answered (captured lines)
  std::vector<ReplayCandidate> candidates;
  // A label line (no candidates): the label it gives.
  bool is_feedback = false;
  std::optional<bool> feedback_correct;

  const ReplayCandidate* candidate(std::string_view model) const;
};

struct ReplayLog {
  std::vector<ReplayRecord> records;
  std::vector<std::string> errors;  // "line N: what"
  int64_t feedback_applied = 0;
  int64_t feedback_unmatched = 0;   // labels for ids the log has no line for
};

// One line (without its newline). kInvalidRequest saying what is wrong.
Result<ReplayRecord> parse_replay_line(std::string_view line, size_t line_no);
// Every non-blank line of `in`.
ReplayLog read_replay_log(std::istream& in);
// kNotFound when the file cannot be opened.
Result<ReplayLog> read_replay_log_file(const std::string& path);

// A decimal USD amount from a JSON number, exact for up to 12 decimals (the shortest
// text that reads back as the same double).
std::optional<Money> usd_from_double(double usd);

}  // namespace frugal::backends
