#pragma once
// Routing policies as plain validated structs: request types and their matchers,
// cascade routes with acceptance rules, prices and budgets. This is the output of
// YAML loading only; policies/ compiles it into decision functions (compile_policy).
// The YAML shape is documented, with a full example, in docs/policies.md.
//
// Every struct that can fail later (a regex, a reference) carries `where`:
// "file:line:col: key 'a.b'" so that a later stage can still point at the source.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/money.h"

namespace frugal::config {

// A string test: exact (default), glob (`*` and `?`), or regex (PCRE2 syntax).
struct StringMatch {
  enum class Kind { kExact, kGlob, kRegex };
  Kind kind = Kind::kExact;
  std::string pattern;
};

// One node of a request-type matcher tree.
struct MatchSpec {
  enum class Kind {
    kAll,                // children all match (also: a map with several keys)
    kAny,                // any child matches
    kNot,                // children[0] does not match
    kHeader,             // header `key` (lowercase) matches `values` (any of)
    kMetadata,           // body `metadata[key]` matches `values` (any of)
    kTag,                // any of `values` is in x-frugal-tags / facts.tags
    kDialect,            // openai | anthropic
    kPath,               // request path
    kModel,              // requested model / alias
    kApiKey,             // virtual key id
    kTeam,               // team of the key
    kSystemPromptRegex,  // regex over the system prompt text
    kUserMessageRegex,   // regex over the last user message text
    kPromptChars,        // min <= prompt length in chars <= max
    kPromptTokens,       // min <= estimated prompt tokens <= max
    kResponseFormat,     // none | text | json_object | json_schema (any of)
  };
  Kind kind = Kind::kAll;
  std::string key;                  // header name (lowercased) / metadata key
  std::vector<StringMatch> values;  // any of these
  int64_t min = 0;
  int64_t max = INT64_MAX;
  std::vector<MatchSpec> children;
  std::string where;
};

struct RequestTypeSpec {
  std::string name;
  std::optional<MatchSpec> match;  // nullopt: the default type
  std::string where;
};

struct VerifierSpec {
  std::string model;
  std::string prompt;  // the yes/no question; {answer} and {question} are substituted
  double min_p_yes = 0.5;
};

// One node of an acceptance rule tree.
struct RuleSpec {
  enum class Kind {
    kAll,
    kAny,
    kNot,
    // validators
    kJsonParse,      // the answer text is valid JSON
    kJsonSchema,     // the answer validates against the request's json_schema
    kRegex,          // the answer text matches `pattern` (PCRE2, unanchored)
    kNonEmpty,       // text or tool calls present (whitespace-only text is empty)
    kNotRefusal,     // no refusal phrase (case-insensitive) in the first 200 chars
    kLength,         // min <= chars <= max
    kFinishReason,   // finish_reason is one of `phrases`
    // scores: accepted when score >= threshold
    kMeanLogprob,
    kMinLogprob,
    kP10Logprob,
    kMargin,         // mean over tokens of (top-1 − top-2 log-prob)
    kVerifier,       // P(yes) of the verifier model >= verifier.min_p_yes
    kConfidence,     // the answer's confidence in [0, 1]: a recorded one (replay), else
                     // exp(mean token log-prob)
  };
  Kind kind = Kind::kAll;
  std::vector<RuleSpec> children;
  std::string pattern;               // kRegex
  std::vector<std::string> phrases;  // kNotRefusal (empty: policy default), kFinishReason
  int64_t min_chars = 0;             // kLength
  int64_t max_chars = INT64_MAX;
  double threshold = 0;              // score kinds: min
  VerifierSpec verifier;             // kVerifier
  std::string where;
};

struct TierSpec {
  std::string model;
  std::optional<RuleSpec> accept;  // nullopt: always accepted
  std::string where;
};

enum class StreamMode {
  kCascade,    // buffer every tier that may still be rejected; stream only the accepted one
  kFirstTier,  // no cascade: stream tier 1 directly (latency over savings)
};

// What a route captures of its traffic (docs/replay.md): a sampled share of requests,
// their prompts and answers redacted (hash: a digest instead of the text; drop: no
// text at all; none: kept), and a sampled share sent also to the reference model in
// the background (shadow evaluation: labels by agreement).
enum class CaptureRedact { kHash, kDrop, kNone };
struct CaptureSpec {
  double sample = 0;  // 0: not captured
  CaptureRedact redact = CaptureRedact::kHash;
  double shadow = 0;  // of all the route's requests; a shadowed request is always captured
};

// "Generate less": what a route changes in every request before any tier sees it
// (router/output_shaping.h; docs/policies.md, "Output shaping").
struct OutputShapingSpec {
  std::optional<int64_t> max_tokens;      // set when the client gives none
  std::optional<int64_t> max_tokens_cap;  // the client's max_tokens is lowered to this
  std::vector<std::string> stop;          // added to the client's stop sequences (at most 4 in all)
  std::string concise;                    // appended to the system prompt ("" = none)
  std::string reasoning_effort;           // set when the client gives none ("" = none)

  bool any() const {
    return max_tokens || max_tokens_cap || !stop.empty() || !concise.empty() || !reasoning_effort.empty();
  }
};

// The instruction `concise: true` appends.
inline constexpr const char* kDefaultConciseInstruction =
    "Answer concisely: give the answer directly, without preamble, restating the question or a closing summary.";

struct RouteSpec {
  std::string request_type;
  std::string reference_model;  // baseline for savings
  std::vector<TierSpec> tiers;  // >= 1; the last tier always answers
  StreamMode stream_mode = StreamMode::kCascade;
  bool cache_configured = false;  // the route has a `cache:` key (else the gateway's cache config applies)
  bool cache_enabled = false;
  int64_t cache_ttl_ms = 0;
  CaptureSpec capture;
  OutputShapingSpec shaping;
  std::string where;
};

// Prices in integer micro-dollars per 1M tokens (or per GPU hour), parsed exactly
// from the decimal text. Absent classes fall back (see docs/policies.md):
// cached_input -> input, cache_write_5m -> input, cache_write_1h -> cache_write_5m.
struct PriceSpec {
  std::string model;
  std::optional<int64_t> input;
  std::optional<int64_t> cached_input;
  std::optional<int64_t> cache_write_5m;
  std::optional<int64_t> cache_write_1h;
  std::optional<int64_t> output;
  std::optional<int64_t> gpu_hour;  // micro-dollars per hour of measured busy time
  std::string where;
};

enum class BudgetPeriod { kHour, kDay, kMonth };

struct BudgetSpec {
  std::string name;  // "team=search per day" unless given
  // Scope: every set field must match; none set = global.
  std::optional<std::string> team;
  std::optional<std::string> key;
  std::optional<std::string> request_type;
  BudgetPeriod per = BudgetPeriod::kDay;
  std::optional<Money> soft;  // exact: parsed with at most six decimals
  std::optional<Money> hard;
  std::string where;
};

struct PolicyConfig {
  std::string source;
  std::vector<RequestTypeSpec> request_types;  // in file order; first match wins
  std::vector<RouteSpec> routes;
  std::vector<PriceSpec> prices;
  std::vector<BudgetSpec> budgets;
  std::vector<std::string> refusal_phrases;  // default list unless `refusal_phrases:` given

  const RouteSpec* route(const std::string& request_type) const;
  const PriceSpec* price(const std::string& model) const;
};

// The built-in refusal phrases ("I can't", "I cannot", "I'm sorry, but", "As an AI", ...).
const std::vector<std::string>& default_refusal_phrases();

// Parses a non-negative decimal USD amount exactly into micro-dollars:
// "2.50" -> 2'500'000, "0.000001" -> 1. More than 6 decimals, exponents, signs or
// anything else than digits and one '.' are errors (the message says what was expected).
Result<int64_t> parse_usd_micros(const std::string& text);

// Load and validate. Errors are kInvalidRequest with "file:line:col: key 'a.b': what".
Result<PolicyConfig> load_policy_file(const std::string& path);
Result<PolicyConfig> load_policy_text(const std::string& text, const std::string& source);

}  // namespace frugal::config
