#include "backends/replay/replay_log.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <unordered_map>

namespace frugal::backends {

namespace {

using simdjson::dom::element;

Error bad(std::string what) { return make_error(ErrorKind::kInvalidRequest, std::move(what)); }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Result<int64_t> token_count(element e, std::string_view what) {
  int64_t v = 0;
  if (e.get_int64().get(v) || v < 0) return bad(std::string(what) + ": expected a non-negative integer");
  return v;
}

Result<void> read_usage(element u, Usage& out, const std::string& where) {
  simdjson::dom::object o;
  if (u.get_object().get(o)) return bad(where + ".usage: expected an object");
  for (auto f : o) {
    int64_t* field = f.key == "input_tokens"          ? &out.input_tokens
                     : f.key == "output_tokens"       ? &out.output_tokens
                     : f.key == "cached_input_tokens" ? &out.cached_input_tokens
                     : f.key == "reasoning_tokens"    ? &out.reasoning_tokens
                                                      : nullptr;
    if (!field) continue;
    auto v = token_count(f.value, where + ".usage." + std::string(f.key));
    if (!v) return std::move(v).error();
    *field = *v;
  }
  if (out.cached_input_tokens > out.input_tokens)
    return bad(where + ".usage: cached_input_tokens exceeds input_tokens (input counts every prompt token)");
  out.reported = true;
  return {};
}

Result<void> read_logprobs(element lp, std::vector<ReplayToken>& out, const std::string& where) {
  simdjson::dom::array toks;
  if (lp.get_array().get(toks)) return bad(where + ".logprobs: expected [[token, logprob, [[alt, logprob], ...]], ...]");
  size_t i = 0;
  for (element t : toks) {
    const std::string at = where + ".logprobs[" + std::to_string(i++) + "]";
    simdjson::dom::array a;
    if (t.get_array().get(a) || a.size() < 2) return bad(at + ": expected [token, logprob, alternatives?]");
    ReplayToken tok;
    std::string_view s;
    if (a.at(0).get_string().get(s)) return bad(at + ": the token is not a string");
    tok.token = s;
    if (a.at(1).get_double().get(tok.logprob) || tok.logprob > 0)
      return bad(at + ": the log-prob is not a number <= 0");
    if (a.size() >= 3 && !a.at(2).is_null()) {
      simdjson::dom::array alts;
      if (a.at(2).get_array().get(alts)) return bad(at + ": alternatives are not a list");
      for (element alt : alts) {
        simdjson::dom::array p;
        std::string_view at_tok;
        double v = 0;
        if (alt.get_array().get(p) || p.size() < 2 || p.at(0).get_string().get(at_tok) || p.at(1).get_double().get(v))
          return bad(at + ": an alternative is not [token, logprob]");
        tok.top.emplace_back(std::string(at_tok), v);
      }
    }
    out.push_back(std::move(tok));
  }
  return {};
}

Result<ReplayCandidate> read_candidate(std::string_view model, element c) {
  const std::string where = "candidates." + std::string(model);
  simdjson::dom::object o;
  if (c.get_object().get(o)) return bad(where + ": expected an object");
  ReplayCandidate out;
  out.model = model;
  for (auto f : o) {
    const std::string_view k = f.key;
    if (k == "answer") {
      std::string_view s;
      if (!f.value.is_null() && f.value.get_string().get(s)) return bad(where + ".answer: expected a string");
      out.answer = s;
    } else if (k == "correct") {
      bool b = false;
      if (f.value.is_null()) continue;
      if (f.value.get_bool().get(b)) return bad(where + ".correct: expected true, false or null");
      out.correct = b;
    } else if (k == "usage") {
      Usage u;
      if (auto r = read_usage(f.value, u, where); !r) return std::move(r).error();
      out.usage = u;
    } else if (k == "cost_usd") {
      double d = 0;
      if (f.value.get_double().get(d) || !(d >= 0)) return bad(where + ".cost_usd: expected a number >= 0");
      out.cost_usd = usd_from_double(d);
      if (!out.cost_usd) return bad(where + ".cost_usd: out of range");
    } else if (k == "logprobs") {
      if (f.value.is_null()) continue;
      if (auto r = read_logprobs(f.value, out.logprobs, where); !r) return std::move(r).error();
    } else if (k == "confidence") {
      double d = 0;
      if (f.value.is_null()) continue;
      if (f.value.get_double().get(d) || !(d >= 0 && d <= 1)) return bad(where + ".confidence: expected a number in [0, 1]");
      out.confidence = d;
    } else if (k == "latency_ms") {
      double d = 0;
      if (f.value.is_null()) continue;
      if (f.value.get_double().get(d) || !(d >= 0)) return bad(where + ".latency_ms: expected a number >= 0");
      out.latency_ms = d;
    }
  }
  if (!out.usage && !out.cost_usd) return bad(where + ": needs usage or cost_usd");
  return out;
}

}  // namespace

std::vector<double> ReplayCandidate::token_logprobs() const {
  std::vector<double> out;
  out.reserve(logprobs.size());
  for (const auto& t : logprobs) out.push_back(t.logprob);
  return out;
}

const ReplayCandidate* ReplayRecord::candidate(std::string_view model) const {
  for (const auto& c : candidates)
    if (c.model == model) return &c;
  return nullptr;
}

std::optional<Money> usd_from_double(double usd) {
  if (!std::isfinite(usd) || usd < 0 || usd > 1e15) return std::nullopt;
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, usd, std::chars_format::fixed);
  if (ec != std::errc()) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(end - buf));
  // More than 12 decimals (a value finer than a picodollar): round to the picodollar.
  if (const size_t dot = text.find('.'); dot != std::string_view::npos && text.size() - dot - 1 > 12) {
    return Money::from_picos(static_cast<int128_t>(std::llround(usd * 1e12)));
  }
  return parse_usd(text);
}

Result<ReplayRecord> parse_replay_line(std::string_view line, size_t line_no) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(line.data(), line.size()).get(root))
    return bad(std::string("not JSON (") + simdjson::error_message(err) + ")");
  simdjson::dom::object o;
  if (root.get_object().get(o)) return bad("expected a JSON object");
  ReplayRecord r;
  r.line = line_no;
  bool have_candidates = false;
  bool have_feedback = false;
  for (auto f : o) {
    const std::string_view k = f.key;
    std::string_view s;
    if (k == "id") {
      int64_t n = 0;
      if (!f.value.get_string().get(s)) r.id = s;
      else if (!f.value.get_int64().get(n)) r.id = std::to_string(n);
      else return bad("id: expected a string");
    } else if (k == "request_type") {
      if (f.value.is_null()) continue;
      if (f.value.get_string().get(s)) return bad("request_type: expected a string");
      r.request_type = s;
    } else if (k == "request") {
      if (f.value.is_null()) continue;
      if (!f.value.is_object()) return bad("request: expected a chat request object");
      r.request_json = simdjson::minify(f.value);
    } else if (k == "headers") {
      simdjson::dom::object h;
      if (f.value.get_object().get(h)) return bad("headers: expected an object of strings");
      for (auto hv : h) {
        if (hv.value.get_string().get(s)) return bad("headers." + std::string(hv.key) + ": expected a string");
        r.headers.emplace_back(lowercase(hv.key), std::string(s));
      }
    } else if (k == "team" || k == "api_key_id") {
      if (f.value.get_string().get(s)) return bad(std::string(k) + ": expected a string");
      (k == "team" ? r.team : r.api_key_id) = s;
    } else if (k == "answered_by") {
      if (f.value.get_string().get(s)) return bad("answered_by: expected a string");
      r.answered_by = s;
    } else if (k == "feedback") {
      simdjson::dom::object fb;
      if (f.value.get_object().get(fb)) return bad("feedback: expected {correct: true|false} or {score: 0..1}");
      bool c = false;
      double score = 0;
      simdjson::dom::element v;
      if (!fb["correct"].get(v)) {
        if (v.get_bool().get(c)) return bad("feedback.correct: expected true or false");
        r.feedback_correct = c;
      } else if (!fb["score"].get(v)) {
        if (v.get_double().get(score) || !(score >= 0 && score <= 1)) return bad("feedback.score: expected a number in [0, 1]");
        r.feedback_correct = score >= 0.5;
      } else {
        return bad("feedback: expected {correct: true|false} or {score: 0..1}");
      }
      have_feedback = true;
    } else if (k == "ts") {
      double t = 0;
      if (f.value.get_double().get(t) || !(t >= 0 && t < 1e11)) return bad("ts: expected Unix seconds");
      r.ts_us = static_cast<int64_t>(t * 1e6);
    } else if (k == "candidates") {
      simdjson::dom::object cs;
      if (f.value.get_object().get(cs)) return bad("candidates: expected an object keyed by model");
      for (auto c : cs) {
        auto cand = read_candidate(c.key, c.value);
        if (!cand) return std::move(cand).error();
        r.candidates.push_back(std::move(*cand));
      }
      have_candidates = true;
    }
  }
  if (r.id.empty()) return bad("id: missing");
  if (have_feedback && !have_candidates) {
    r.is_feedback = true;
    return r;
  }
  if (!have_candidates || r.candidates.empty()) return bad("candidates: missing or empty");
  return r;
}

ReplayLog read_replay_log(std::istream& in) {
  ReplayLog log;
  std::string line;
  size_t n = 0;
  std::vector<ReplayRecord> labels;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto r = parse_replay_line(line, n);
    if (!r) log.errors.push_back("line " + std::to_string(n) + ": " + r.error().message);
    else if (r->is_feedback) labels.push_back(std::move(*r));
    else log.records.push_back(std::move(*r));
  }
  if (labels.empty()) return log;
  std::unordered_map<std::string_view, size_t> by_id;
  for (size_t i = 0; i < log.records.size(); ++i) by_id[log.records[i].id] = i;
  for (const auto& l : labels) {
    auto it = by_id.find(l.id);
    if (it == by_id.end()) {
      ++log.feedback_unmatched;
      continue;
    }
    ReplayRecord& r = log.records[it->second];
    ReplayCandidate* c = nullptr;
    for (auto& cand : r.candidates)
      if (cand.model == r.answered_by || (r.answered_by.empty() && r.candidates.size() == 1)) c = &cand;
    if (!c) {
      log.errors.push_back("line " + std::to_string(l.line) + ": feedback for '" + l.id + "': line " +
                           std::to_string(r.line) + " does not say which candidate answered (answered_by)");
      continue;
    }
    c->correct = l.feedback_correct;
    ++log.feedback_applied;
  }
  return log;
}

Result<ReplayLog> read_replay_log_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorKind::kNotFound, "cannot open " + path);
  return read_replay_log(in);
}

}  // namespace frugal::backends
