#include "policies/acceptance.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/json_scan.h"
#include "policies/json_schema.h"
#include "policies/regex.h"

namespace frugal::policies {

using Kind = config::RuleSpec::Kind;

struct AcceptRule::Node {
  Kind kind = Kind::kAll;
  std::vector<Node> children;
  std::optional<Regex> regex;
  std::vector<std::string> phrases;  // kNotRefusal: lowercase; kFinishReason: as given
  int64_t min_chars = 0;
  int64_t max_chars = INT64_MAX;
  double threshold = 0;
  config::VerifierSpec verifier;
};

namespace {

constexpr size_t kRefusalWindow = 200;  // refusals open the answer; later mentions are content

bool is_score(Kind k) {
  return k == Kind::kMeanLogprob || k == Kind::kMinLogprob || k == Kind::kP10Logprob ||
         k == Kind::kMargin || k == Kind::kVerifier || k == Kind::kConfidence;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kAll: return "all";
    case Kind::kAny: return "any";
    case Kind::kNot: return "not";
    case Kind::kJsonParse: return "json_parse";
    case Kind::kJsonSchema: return "json_schema";
    case Kind::kRegex: return "regex";
    case Kind::kNonEmpty: return "non_empty";
    case Kind::kNotRefusal: return "not_refusal";
    case Kind::kLength: return "length";
    case Kind::kFinishReason: return "finish_reason";
    case Kind::kMeanLogprob: return "mean_logprob";
    case Kind::kMinLogprob: return "min_logprob";
    case Kind::kP10Logprob: return "p10_logprob";
    case Kind::kMargin: return "margin";
    case Kind::kVerifier: return "verifier";
    case Kind::kConfidence: return "confidence";
  }
  return "?";
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

Result<AcceptRule::Node> compile_node(const config::RuleSpec& s,
                                      const std::vector<std::string>& default_refusals) {
  AcceptRule::Node n;
  n.kind = s.kind;
  n.min_chars = s.min_chars;
  n.max_chars = s.max_chars;
  n.threshold = s.threshold;
  n.verifier = s.verifier;
  for (const auto& c : s.children) {
    auto r = compile_node(c, default_refusals);
    if (!r) return std::move(r).error();
    n.children.push_back(std::move(*r));
  }
  if (s.kind == Kind::kRegex) {
    auto re = Regex::compile(s.pattern);
    if (!re) return make_error(ErrorKind::kInvalidRequest, s.where + ": " + re.error().message);
    n.regex = std::move(*re);
  }
  if (s.kind == Kind::kNotRefusal) {
    for (const auto& p : s.phrases.empty() ? default_refusals : s.phrases) {
      std::string l = p;
      for (char& c : l) c = lower(c);
      n.phrases.push_back(std::move(l));
    }
  }
  if (s.kind == Kind::kFinishReason) n.phrases = s.phrases;
  return n;
}

const AcceptRule::Node* find_first(const AcceptRule::Node& n, bool (*pred)(Kind)) {
  if (pred(n.kind)) return &n;
  for (const auto& c : n.children)
    if (const auto* f = find_first(c, pred)) return f;
  return nullptr;
}

// The score of a score node, or nullopt with `why` explaining what input is missing.
std::optional<double> score_of(const AcceptRule::Node& n, const AnswerView& a, std::string& why) {
  if (n.kind == Kind::kVerifier) {
    if (!a.verifier_p_yes) {
      why = "verifier P(yes) was not computed";
      return std::nullopt;
    }
    return *a.verifier_p_yes;
  }
  if (n.kind == Kind::kConfidence) {
    auto c = answer_confidence(a.recorded_confidence, a.has_logprobs ? a.token_logprobs : std::span<const double>{});
    if (!c) why = "confidence needs a recorded confidence or token log-probabilities; the answer has neither";
    return c;
  }
  if (n.kind == Kind::kMargin) {
    if (a.top2.empty()) {
      why = "margin needs top-2 log-probabilities; the backend returned none";
      return std::nullopt;
    }
    double sum = 0;
    for (const auto& t : a.top2) sum += t.first - t.second;
    return sum / static_cast<double>(a.top2.size());
  }
  if (!a.has_logprobs) {
    why = std::string(kind_name(n.kind)) + " needs token log-probabilities; the backend returned none";
    return std::nullopt;
  }
  const auto lp = a.token_logprobs;
  if (lp.empty()) {
    why = std::string(kind_name(n.kind)) + ": the answer has no tokens";
    return std::nullopt;
  }
  if (n.kind == Kind::kMeanLogprob) {
    double sum = 0;
    for (double v : lp) sum += v;
    return sum / static_cast<double>(lp.size());
  }
  if (n.kind == Kind::kMinLogprob) return *std::min_element(lp.begin(), lp.end());
  // p10: nearest-rank 10th percentile (the ceil(0.1 n)-th smallest).
  thread_local std::vector<double> scratch;
  scratch.assign(lp.begin(), lp.end());
  const size_t rank = (scratch.size() + 9) / 10;
  const size_t k = rank == 0 ? 0 : rank - 1;
  std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k), scratch.end());
  return scratch[k];
}

Decision eval(const AcceptRule::Node& n, const AnswerView& a) {
  Decision d;
  switch (n.kind) {
    case Kind::kAll: {
      d.accepted = true;
      for (const auto& c : n.children) {
        Decision cd = eval(c, a);
        if (!cd.accepted) return cd;  // cheapest-first short circuit: the failing reason
        if (!d.reason.empty()) d.reason += ", ";
        d.reason += cd.reason;
      }
      return d;
    }
    case Kind::kAny: {
      for (const auto& c : n.children) {
        Decision cd = eval(c, a);
        if (cd.accepted) return cd;
        if (!d.reason.empty()) d.reason += "; ";
        d.reason += cd.reason;
      }
      d.reason = "none of any: " + d.reason;
      return d;
    }
    case Kind::kNot: {
      Decision cd = eval(n.children[0], a);
      d.accepted = !cd.accepted;
      d.reason = "not(" + cd.reason + ")";
      return d;
    }
    case Kind::kJsonParse: {
      thread_local simdjson::dom::parser parser;
      simdjson::dom::element e;
      const auto err = parser.parse(a.text.data(), a.text.size()).get(e);
      d.accepted = !err;
      d.reason = err ? std::string("json_parse: ") + simdjson::error_message(err) : "json_parse ok";
      return d;
    }
    case Kind::kJsonSchema: {
      if (a.response_schema_json.empty()) {
        // Without a schema in the request there is nothing to validate against but syntax.
        thread_local simdjson::dom::parser parser;
        simdjson::dom::element e;
        const auto err = parser.parse(a.text.data(), a.text.size()).get(e);
        d.accepted = !err;
        d.reason = err ? std::string("json_schema (no request schema, syntax only): ") +
                             simdjson::error_message(err)
                       : "json_schema: no request schema, valid JSON";
        return d;
      }
      SchemaResult r = validate_json_text(a.response_schema_json, a.text);
      d.accepted = r.valid;
      d.reason = r.valid ? "json_schema ok" : "json_schema: " + r.error;
      return d;
    }
    case Kind::kRegex:
      d.accepted = n.regex->search(a.text);
      d.reason = d.accepted ? "regex matched" : "regex '" + n.regex->pattern() + "' did not match";
      return d;
    case Kind::kNonEmpty:
      d.accepted = !blank(a.text) || !a.tool_calls.empty();
      d.reason = d.accepted ? "non_empty ok" : "non_empty: the answer is empty";
      return d;
    case Kind::kNotRefusal: {
      // Lowered once; each (lowercase) phrase is then a plain search.
      std::array<char, kRefusalWindow> lowered;
      const size_t len = std::min(a.text.size(), kRefusalWindow);
      for (size_t i = 0; i < len; ++i) lowered[i] = lower(a.text[i]);
      const std::string_view head(lowered.data(), len);
      for (const auto& p : n.phrases) {
        if (head.find(p) != std::string_view::npos) {
          d.reason = "not_refusal: the answer contains '" + p + "'";
          return d;
        }
      }
      d.accepted = true;
      d.reason = "not_refusal ok";
      return d;
    }
    case Kind::kLength: {
      const auto len = static_cast<int64_t>(utf8_chars(a.text));
      d.accepted = len >= n.min_chars && len <= n.max_chars;
      d.reason = "length " + std::to_string(len) +
                 (d.accepted ? " within bounds" : len < n.min_chars
                                                      ? " < min " + std::to_string(n.min_chars)
                                                      : " > max " + std::to_string(n.max_chars));
      return d;
    }
    case Kind::kFinishReason:
      d.accepted = std::find(n.phrases.begin(), n.phrases.end(), a.finish_reason) != n.phrases.end();
      d.reason = "finish_reason '" + std::string(a.finish_reason) + (d.accepted ? "' allowed" : "' not allowed");
      return d;
    case Kind::kMeanLogprob:
    case Kind::kMinLogprob:
    case Kind::kP10Logprob:
    case Kind::kMargin:
    case Kind::kConfidence:
    case Kind::kVerifier: {
      std::string why;
      d.score = score_of(n, a, why);
      if (!d.score) {
        d.reason = why;
        return d;
      }
      d.accepted = *d.score >= n.threshold;
      d.reason = std::string(kind_name(n.kind)) + " " + fmt(*d.score) + (d.accepted ? " >= " : " < ") +
                 fmt(n.threshold);
      return d;
    }
  }
  return d;
}

}  // namespace

Result<AcceptRule> AcceptRule::compile(const config::RuleSpec& spec,
                                       const std::vector<std::string>& default_refusals) {
  auto n = compile_node(spec, default_refusals);
  if (!n) return std::move(n).error();
  AcceptRule r;
  auto root = std::make_shared<Node>(std::move(*n));
  r.primary_score_ = find_first(*root, is_score);
  r.root_ = std::move(root);
  return r;
}

Decision AcceptRule::evaluate(const AnswerView& answer) const {
  Decision d = eval(*root_, answer);
  if (primary_score_ && !d.score) {
    // The short circuit may have skipped the primary score; the ledger still wants it.
    std::string why;
    d.score = score_of(*primary_score_, answer, why);
  }
  return d;
}

bool AcceptRule::needs_logprobs() const {
  return find_first(*root_, [](Kind k) {
           return k == Kind::kMeanLogprob || k == Kind::kMinLogprob || k == Kind::kP10Logprob ||
                  k == Kind::kMargin || k == Kind::kConfidence;
         }) != nullptr;
}

int AcceptRule::top_logprobs_needed() const {
  return find_first(*root_, [](Kind k) { return k == Kind::kMargin; }) ? 2 : 0;
}

std::optional<config::VerifierSpec> AcceptRule::verifier() const {
  const Node* v = find_first(*root_, [](Kind k) { return k == Kind::kVerifier; });
  if (!v) return std::nullopt;
  return v->verifier;
}

std::optional<double> answer_confidence(std::optional<double> recorded, std::span<const double> token_logprobs) {
  if (recorded) return *recorded;
  if (token_logprobs.empty()) return std::nullopt;
  double sum = 0;
  for (double v : token_logprobs) sum += v;
  return std::exp(sum / static_cast<double>(token_logprobs.size()));
}

double p_yes_from_top_logprobs(std::span<const TokenLogprob> top) {
  double yes = 0, no = 0;
  for (const auto& t : top) {
    std::string_view s = t.token;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '.' || s.back() == '\n')) s.remove_suffix(1);
    if (s.size() > 3) continue;
    char buf[4] = {};
    for (size_t i = 0; i < s.size(); ++i) buf[i] = lower(s[i]);
    const std::string_view l(buf, s.size());
    if (!std::isfinite(t.logprob)) continue;
    if (l == "yes") yes += std::exp(t.logprob);
    else if (l == "no") no += std::exp(t.logprob);
  }
  return yes + no > 0 ? yes / (yes + no) : 0.0;
}

std::string render_verifier_prompt(const config::VerifierSpec& v, std::string_view question,
                                   std::string_view answer) {
  std::string out;
  const std::string& p = v.prompt;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 10, "{question}") == 0) {
      out += question;
      i += 10;
    } else if (p.compare(i, 8, "{answer}") == 0) {
      out += answer;
      i += 8;
    } else {
      out += p[i++];
    }
  }
  return out;
}

// --- strip_logprobs: the spans of choices[*].logprobs, found by scanning ---

std::string strip_logprobs(std::string_view json) {
  // Most answers carry no log-probs at all (the gateway asks for them only for a rule
  // that reads them): nothing to scan.
  if (json.find("\"logprobs\"") == std::string_view::npos) return std::string(json);
  std::vector<std::pair<size_t, size_t>> spans;
  bool malformed = false;
  using json_scan::skip_ws;
  const size_t end = json_scan::for_each_member(json, 0, [&](std::string_view key, size_t b, size_t e) {
    if (key != "choices" || json[b] != '[') return true;
    size_t i = skip_ws(json, b + 1);
    while (i < e && json[i] != ']') {
      const size_t close = json_scan::for_each_member(json, i, [&](std::string_view k, size_t vb, size_t ve) {
        if (k == "logprobs") spans.emplace_back(vb, ve);
        return true;
      });
      if (close == json_scan::npos) {
        malformed = true;
        return false;
      }
      i = skip_ws(json, close + 1);
      if (i < e && json[i] == ',') i = skip_ws(json, i + 1);
    }
    return true;
  });
  if (end == std::string_view::npos || malformed || spans.empty()) return std::string(json);
  std::string out;
  out.reserve(json.size());
  size_t pos = 0;
  for (auto [b, e] : spans) {
    out.append(json.substr(pos, b - pos));
    out += "null";
    pos = e;
  }
  out.append(json.substr(pos));
  return out;
}

}  // namespace frugal::policies
