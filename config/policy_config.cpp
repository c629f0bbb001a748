#include "config/policy_config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "config/price_catalogue.h"
#include "config/yaml_reader.h"

namespace frugal::config {
namespace {

std::string where_of(const YamlNode& n, const std::string& source) {
  const YAML::Mark m = n.raw() ? n.raw().Mark() : YAML::Mark::null_mark();
  std::string s = source;
  if (m.line >= 0) s += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  if (!n.path().empty()) s += ": key '" + n.path() + "'";
  return s;
}

[[noreturn]] void fail_at(const std::string& where, const std::string& what) {
  throw ConfigException(where + ": " + what);
}

void check_regex(const YamlNode& n, const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF, &err, &off, nullptr);
  if (code) {
    pcre2_code_free(code);
    return;
  }
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(err, buf, sizeof buf);
  n.fail("regex does not compile at offset " + std::to_string(off) + ": " +
         reinterpret_cast<const char*>(buf) + " (pattern '" + pattern + "')");
}

class Loader {
 public:
  explicit Loader(const std::string& source) : source_(source) {}

  PolicyConfig load(const YamlNode& root) {
    PolicyConfig pc;
    pc.source = source_;
    if (root.is_null()) root.fail("empty policy document");
    root.allow_keys({"request_types", "routes", "prices", "budgets", "refusal_phrases"});
    pc.refusal_phrases = default_refusal_phrases();
    if (auto rp = root.child("refusal_phrases")) {
      pc.refusal_phrases.clear();
      for (const auto& it : rp->items()) pc.refusal_phrases.push_back(it.as_string());
    }
    if (auto p = root.child("prices"))
      for (auto& [model, node] : p->entries()) pc.prices.push_back(price(model, node));
    const YamlNode types = root.required("request_types");
    if (!types.is_sequence()) types.fail("expected a list of request types");
    for (const auto& t : types.items()) pc.request_types.push_back(request_type(t));
    if (auto r = root.child("routes"))
      for (auto& [type, node] : r->entries()) pc.routes.push_back(route(type, node));
    if (auto b = root.child("budgets")) {
      if (!b->is_sequence()) b->fail("expected a list of budgets");
      for (const auto& it : b->items()) pc.budgets.push_back(budget(it));
    }
    cross_check(pc, root);
    return pc;
  }

 private:
  // ---- prices ---------------------------------------------------------------
  int64_t usd(const YamlNode& n) {
    auto r = parse_usd_micros(n.as_string());
    if (!r) n.fail(r.error().message);
    return *r;
  }

  PriceSpec price(const std::string& model, const YamlNode& n) {
    PriceSpec p;
    p.model = model;
    p.where = where_of(n, source_);
    if (!n.is_map()) n.fail("expected a mapping of prices (USD per 1M tokens) or { gpu_hour: USD }");
    n.allow_keys({"input", "cached_input", "cache_write_5m", "cache_write_1h", "output", "gpu_hour"});
    auto opt = [&](const char* k) -> std::optional<int64_t> {
      auto c = n.child(k);
      if (!c) return std::nullopt;
      return usd(*c);
    };
    p.input = opt("input");
    p.cached_input = opt("cached_input");
    p.cache_write_5m = opt("cache_write_5m");
    p.cache_write_1h = opt("cache_write_1h");
    p.output = opt("output");
    p.gpu_hour = opt("gpu_hour");
    const bool any_token = p.input || p.cached_input || p.cache_write_5m || p.cache_write_1h || p.output;
    if (p.gpu_hour && any_token)
      n.fail("a model is priced either per GPU hour (gpu_hour) or per token (input/output...), not both");
    if (!p.gpu_hour && (!p.input || !p.output))
      n.fail("expected both 'input' and 'output' prices (USD per 1M tokens), or 'gpu_hour'");
    return p;
  }

  // ---- request types --------------------------------------------------------
  std::vector<StringMatch> string_matches(const YamlNode& n) {
    std::vector<StringMatch> out;
    if (n.is_sequence()) {
      for (const auto& it : n.items()) {
        auto one = string_matches(it);
        out.insert(out.end(), one.begin(), one.end());
      }
      if (out.empty()) n.fail("expected at least one value");
      return out;
    }
    StringMatch m;
    if (n.is_map()) {
      n.allow_keys({"exact", "glob", "regex"});
      auto es = n.entries();
      if (es.size() != 1) n.fail("expected exactly one of exact, glob, regex");
      m.pattern = es[0].second.as_string();
      if (es[0].first == "exact") m.kind = StringMatch::Kind::kExact;
      else if (es[0].first == "glob") m.kind = StringMatch::Kind::kGlob;
      else { m.kind = StringMatch::Kind::kRegex; check_regex(es[0].second, m.pattern); }
    } else {
      m.pattern = n.as_string();
      m.kind = m.pattern.find_first_of("*?") != std::string::npos ? StringMatch::Kind::kGlob
                                                                   : StringMatch::Kind::kExact;
    }
    out.push_back(std::move(m));
    return out;
  }

  void bounds(const YamlNode& n, MatchSpec& m) {
    n.allow_keys({"min", "max"});
    if (!n.is_map()) n.fail("expected { min: N, max: N }");
    m.min = n.get_int("min", 0, 0, INT64_MAX);
    m.max = n.get_int("max", INT64_MAX, 0, INT64_MAX);
    if (m.min > m.max) n.fail("min is greater than max");
  }

  MatchSpec match_one(const std::string& key, const YamlNode& v) {
    using K = MatchSpec::Kind;
    MatchSpec m;
    m.where = where_of(v, source_);
    auto keyed = [&](K kind, bool lower) {
      if (!v.is_map()) v.fail("expected a mapping of name: value");
      MatchSpec all;
      all.kind = K::kAll;
      all.where = m.where;
      for (auto& [name, val] : v.entries()) {
        MatchSpec c;
        c.kind = kind;
        c.key = name;
        if (lower) std::transform(c.key.begin(), c.key.end(), c.key.begin(), ::tolower);
        c.values = string_matches(val);
        c.where = where_of(val, source_);
        all.children.push_back(std::move(c));
      }
      if (all.children.empty()) v.fail("expected at least one entry");
      return all.children.size() == 1 ? std::move(all.children[0]) : all;
    };
    if (key == "header") return keyed(K::kHeader, true);
    if (key == "metadata") return keyed(K::kMetadata, false);
    if (key == "any" || key == "all") {
      m.kind = key == "any" ? K::kAny : K::kAll;
      if (!v.is_sequence()) v.fail("expected a list of matchers");
      for (const auto& it : v.items()) m.children.push_back(match(it));
      if (m.children.empty()) v.fail("expected at least one matcher");
      return m;
    }
    if (key == "not") {
      m.kind = K::kNot;
      m.children.push_back(match(v));
      return m;
    }
    if (key == "system_prompt_regex" || key == "user_message_regex") {
      m.kind = key == "system_prompt_regex" ? K::kSystemPromptRegex : K::kUserMessageRegex;
      StringMatch s{StringMatch::Kind::kRegex, v.as_string()};
      check_regex(v, s.pattern);
      m.values.push_back(std::move(s));
      return m;
    }
    if (key == "prompt_chars" || key == "prompt_tokens") {
      m.kind = key == "prompt_chars" ? K::kPromptChars : K::kPromptTokens;
      bounds(v, m);
      return m;
    }
    if (key == "dialect" || key == "response_format") {
      m.kind = key == "dialect" ? K::kDialect : K::kResponseFormat;
      m.values = string_matches(v);
      for (const auto& s : m.values) {
        static const std::set<std::string> dialects{"openai", "anthropic", "responses"};
        static const std::set<std::string> formats{"none", "text", "json_object", "json_schema"};
        const auto& allowed = m.kind == K::kDialect ? dialects : formats;
        if (s.kind != StringMatch::Kind::kExact || !allowed.count(s.pattern))
          v.fail(m.kind == K::kDialect ? "expected openai, anthropic or responses, got '" + s.pattern + "'"
                                       : "expected none, text, json_object or json_schema, got '" +
                                             s.pattern + "'");
      }
      return m;
    }
    if (key == "tag") m.kind = K::kTag;
    else if (key == "path") m.kind = K::kPath;
    else if (key == "model") m.kind = K::kModel;
    else if (key == "api_key") m.kind = K::kApiKey;
    else if (key == "team") m.kind = K::kTeam;
    else v.fail("unknown matcher '" + key + "'");  // unreachable: allow_keys ran first
    m.values = string_matches(v);
    return m;
  }

  MatchSpec match(const YamlNode& n) {
    if (!n.is_map()) n.fail("expected a matcher mapping (header, metadata, tag, dialect, path, model, ...)");
    n.allow_keys({"header", "metadata", "tag", "dialect", "path", "model", "api_key", "team",
                  "system_prompt_regex", "user_message_regex", "prompt_chars", "prompt_tokens",
                  "response_format", "any", "all", "not"});
    auto es = n.entries();
    if (es.empty()) n.fail("empty matcher");
    if (es.size() == 1) return match_one(es[0].first, es[0].second);
    MatchSpec all;  // several keys in one mapping: all must match
    all.kind = MatchSpec::Kind::kAll;
    all.where = where_of(n, source_);
    for (auto& [k, v] : es) all.children.push_back(match_one(k, v));
    return all;
  }

  RequestTypeSpec request_type(const YamlNode& n) {
    n.allow_keys({"name", "match"});
    RequestTypeSpec t;
    t.name = n.required("name").as_string();
    if (t.name.empty()) n.fail("request type name must not be empty");
    t.where = where_of(n, source_);
    if (auto m = n.child("match")) t.match = match(*m);
    return t;
  }

  // ---- routes and rules -----------------------------------------------------
  double score_min(const YamlNode& v) {
    if (!v.is_map()) v.fail("expected { min: NUMBER }");
    v.allow_keys({"min"});
    return v.required("min").as_double();
  }

  RuleSpec rule_one(const std::string& key, const YamlNode& v) {
    using K = RuleSpec::Kind;
    RuleSpec r;
    r.where = where_of(v, source_);
    auto require_true = [&] {
      if (!v.as_bool()) v.fail("only 'true' is meaningful here (remove the rule to disable it)");
    };
    if (key == "all" || key == "any") {
      r.kind = key == "all" ? K::kAll : K::kAny;
      if (!v.is_sequence()) v.fail("expected a list of rules");
      for (const auto& it : v.items()) r.children.push_back(rule(it));
      if (r.children.empty()) v.fail("expected at least one rule");
    } else if (key == "not") {
      r.kind = K::kNot;
      r.children.push_back(rule(v));
    } else if (key == "json_parse") {
      r.kind = K::kJsonParse;
      require_true();
    } else if (key == "json_schema") {
      r.kind = K::kJsonSchema;
      require_true();
    } else if (key == "non_empty") {
      r.kind = K::kNonEmpty;
      require_true();
    } else if (key == "regex") {
      r.kind = K::kRegex;
      r.pattern = v.as_string();
      check_regex(v, r.pattern);
    } else if (key == "not_refusal") {
      r.kind = K::kNotRefusal;
      if (v.is_map()) {
        v.allow_keys({"phrases"});
        for (const auto& it : v.required("phrases").items()) r.phrases.push_back(it.as_string());
        if (r.phrases.empty()) v.fail("expected at least one phrase");
      } else {
        require_true();
      }
    } else if (key == "length") {
      r.kind = K::kLength;
      if (!v.is_map()) v.fail("expected { min: CHARS, max: CHARS }");
      v.allow_keys({"min", "max"});
      r.min_chars = v.get_int("min", 0, 0, INT64_MAX);
      r.max_chars = v.get_int("max", INT64_MAX, 0, INT64_MAX);
      if (r.min_chars > r.max_chars) v.fail("min is greater than max");
    } else if (key == "finish_reason") {
      r.kind = K::kFinishReason;
      if (v.is_sequence()) {
        for (const auto& it : v.items()) r.phrases.push_back(it.as_string());
      } else {
        r.phrases.push_back(v.as_string());
      }
    } else if (key == "mean_logprob" || key == "min_logprob" || key == "p10_logprob") {
      r.kind = key == "mean_logprob" ? K::kMeanLogprob
               : key == "min_logprob" ? K::kMinLogprob : K::kP10Logprob;
      r.threshold = score_min(v);
      if (r.threshold > 0) v.fail("a log-probability threshold must be <= 0");
    } else if (key == "margin") {
      r.kind = K::kMargin;
      r.threshold = score_min(v);
    } else if (key == "confidence") {
      r.kind = K::kConfidence;
      r.threshold = score_min(v);
      if (r.threshold < 0 || r.threshold > 1) v.required("min").fail("expected a confidence in [0, 1]");
    } else if (key == "verifier") {
      r.kind = K::kVerifier;
      if (!v.is_map()) v.fail("expected { model: NAME, prompt: TEXT, min_p_yes: 0..1 }");
      v.allow_keys({"model", "prompt", "min_p_yes"});
      r.verifier.model = v.required("model").as_string();
      r.verifier.prompt = v.required("prompt").as_string();
      r.verifier.min_p_yes = v.required("min_p_yes").as_double();
      if (r.verifier.min_p_yes < 0 || r.verifier.min_p_yes > 1)
        v.required("min_p_yes").fail("expected a probability in [0, 1]");
      r.threshold = r.verifier.min_p_yes;
    }
    return r;
  }

  RuleSpec rule(const YamlNode& n) {
    if (!n.is_map()) n.fail("expected an acceptance rule mapping (all, any, not, json_parse, ...)");
    n.allow_keys({"all", "any", "not", "json_parse", "json_schema", "regex", "non_empty",
                  "not_refusal", "length", "finish_reason", "mean_logprob", "min_logprob",
                  "p10_logprob", "margin", "verifier", "confidence"});
    auto es = n.entries();
    if (es.empty()) n.fail("empty rule");
    if (es.size() == 1) return rule_one(es[0].first, es[0].second);
    RuleSpec all;
    all.kind = RuleSpec::Kind::kAll;
    all.where = where_of(n, source_);
    for (auto& [k, v] : es) all.children.push_back(rule_one(k, v));
    return all;
  }

  RouteSpec route(const std::string& type, const YamlNode& n) {
    n.allow_keys({"reference_model", "cascade", "stream", "cache", "capture", "max_tokens", "max_tokens_cap", "stop",
                  "concise", "reasoning_effort"});
    RouteSpec r;
    r.request_type = type;
    r.where = where_of(n, source_);
    const YamlNode cascade = n.required("cascade");
    if (!cascade.is_sequence()) cascade.fail("expected a list of tiers");
    for (const auto& t : cascade.items()) {
      t.allow_keys({"model", "accept"});
      TierSpec tier;
      tier.model = t.required("model").as_string();
      tier.where = where_of(t, source_);
      if (auto a = t.child("accept")) tier.accept = rule(*a);
      r.tiers.push_back(std::move(tier));
    }
    if (r.tiers.empty()) cascade.fail("expected at least one tier");
    r.reference_model = n.get_string("reference_model", r.tiers.back().model);
    const std::string stream = n.get_string("stream", "cascade");
    if (stream == "cascade") r.stream_mode = StreamMode::kCascade;
    else if (stream == "first_tier") r.stream_mode = StreamMode::kFirstTier;
    else n.required("stream").fail("expected cascade or first_tier, got " + n.required("stream").shown());
    if (auto c = n.child("cache")) {
      r.cache_configured = true;
      if (c->is_map()) {
        c->allow_keys({"enabled", "ttl"});
        r.cache_enabled = c->get_bool("enabled", true);
        r.cache_ttl_ms = c->get_duration_ms("ttl", 3'600'000, 0, 365ll * 86'400'000);
        if (r.cache_enabled && r.cache_ttl_ms <= 0) c->required("ttl").fail("expected a positive ttl");
      } else {
        r.cache_enabled = c->as_bool();
        r.cache_ttl_ms = r.cache_enabled ? 3'600'000 : 0;
      }
    }
    if (auto c = n.child("capture")) {
      c->allow_keys({"sample", "redact", "shadow"});
      auto fraction = [&](const char* key) {
        auto v = c->child(key);
        if (!v) return 0.0;
        const double d = v->as_double();
        if (!(d >= 0 && d <= 1)) v->fail("expected a fraction in [0, 1]");
        return d;
      };
      r.capture.sample = fraction("sample");
      r.capture.shadow = fraction("shadow");
      const std::string redact = c->get_string("redact", "hash");
      if (redact == "hash") r.capture.redact = CaptureRedact::kHash;
      else if (redact == "drop") r.capture.redact = CaptureRedact::kDrop;
      else if (redact == "none") r.capture.redact = CaptureRedact::kNone;
      else c->required("redact").fail("expected hash, drop or none");
    }
    r.shaping = shaping(n);
    return r;
  }

  // Output shaping options of a route (docs/policies.md, "Output shaping").
  OutputShapingSpec shaping(const YamlNode& n) {
    constexpr int64_t kMaxTokensLimit = 10'000'000;
    OutputShapingSpec s;
    if (auto m = n.child("max_tokens")) s.max_tokens = m->as_int(1, kMaxTokensLimit);
    if (auto m = n.child("max_tokens_cap")) s.max_tokens_cap = m->as_int(1, kMaxTokensLimit);
    if (s.max_tokens && s.max_tokens_cap && *s.max_tokens > *s.max_tokens_cap)
      n.required("max_tokens").fail("max_tokens (" + std::to_string(*s.max_tokens) +
                                    ") is greater than max_tokens_cap (" + std::to_string(*s.max_tokens_cap) +
                                    "): the default would always be capped");
    if (auto st = n.child("stop")) {
      if (st->is_sequence()) {
        for (const auto& it : st->items()) s.stop.push_back(it.as_string());
      } else {
        s.stop.push_back(st->as_string());
      }
      for (const auto& x : s.stop)
        if (x.empty()) st->fail("expected non-empty stop sequences");
      if (s.stop.size() > 4) st->fail("expected at most 4 stop sequences (OpenAI's limit)");
    }
    if (auto c = n.child("concise")) {
      const std::string v = c->as_string();
      if (v == "true") s.concise = kDefaultConciseInstruction;
      else if (v == "false") s.concise.clear();
      else if (!v.empty()) s.concise = v;
      else c->fail("expected true, false or the instruction text to append to the system prompt");
    }
    if (auto e = n.child("reasoning_effort")) {
      s.reasoning_effort = e->as_string();
      static const char* const kEfforts[] = {"none", "minimal", "low", "medium", "high", "xhigh"};
      if (std::find(std::begin(kEfforts), std::end(kEfforts), s.reasoning_effort) == std::end(kEfforts))
        e->fail("expected none, minimal, low, medium, high or xhigh, got " + e->shown());
    }
    return s;
  }

  // ---- budgets --------------------------------------------------------------
  BudgetSpec budget(const YamlNode& n) {
    n.allow_keys({"name", "scope", "per", "soft", "hard"});
    BudgetSpec b;
    b.where = where_of(n, source_);
    const YamlNode scope = n.required("scope");
    std::string scope_text;
    if (scope.is_scalar()) {
      if (scope.as_string() != "global") scope.fail("expected 'global' or { team, key, request_type }");
      scope_text = "global";
    } else {
      scope.allow_keys({"team", "key", "request_type"});
      auto set = [&](const char* k, std::optional<std::string>& dst) {
        if (auto c = scope.child(k)) {
          dst = c->as_string();
          scope_text += (scope_text.empty() ? "" : ",") + std::string(k) + "=" + *dst;
        }
      };
      set("team", b.team);
      set("key", b.key);
      set("request_type", b.request_type);
      if (scope_text.empty()) scope_text = "global";
    }
    const std::string per = n.required("per").as_string();
    if (per == "hour") b.per = BudgetPeriod::kHour;
    else if (per == "day") b.per = BudgetPeriod::kDay;
    else if (per == "month") b.per = BudgetPeriod::kMonth;
    else n.required("per").fail("expected hour, day or month, got " + n.required("per").shown());
    if (auto s = n.child("soft")) b.soft = Money::from_micros(usd(*s));
    if (auto h = n.child("hard")) b.hard = Money::from_micros(usd(*h));
    if (!b.soft && !b.hard) n.fail("expected a 'soft' and/or 'hard' limit (USD)");
    if (b.soft && b.hard && *b.soft > *b.hard)
      n.required("soft").fail("soft limit is greater than the hard limit");
    b.name = n.get_string("name", scope_text + " per " + per);
    return b;
  }

  // ---- references -----------------------------------------------------------
  void cross_check(const PolicyConfig& pc, const YamlNode& root) {
    std::set<std::string> types;
    for (size_t i = 0; i < pc.request_types.size(); ++i) {
      const auto& t = pc.request_types[i];
      if (!types.insert(t.name).second) fail_at(t.where, "duplicate request type '" + t.name + "'");
      if (!t.match && i + 1 != pc.request_types.size())
        fail_at(t.where, "the default request type '" + t.name +
                             "' (no 'match') must be the last one: types after it could never match");
    }
    if (pc.request_types.empty() || pc.request_types.back().match)
      root.required("request_types").fail("expected a default request type (an entry without 'match') last");
    std::set<std::string> priced;
    for (const auto& p : pc.prices) priced.insert(p.model);
    // A model is priced by the policy or, failing that, by the built-in catalogue.
    const PriceCatalogue& catalogue = builtin_price_catalogue();
    auto need_price = [&](const std::string& model, const std::string& where) {
      if (!priced.count(model) && !catalogue.find(model))
        fail_at(where, "unknown model '" + model +
                           "': it has no entry under 'prices' and is not in the built-in price catalogue "
                           "(`frugal prices` lists it)");
    };
    std::function<void(const RuleSpec&)> check_rule = [&](const RuleSpec& r) {
      if (r.kind == RuleSpec::Kind::kVerifier) need_price(r.verifier.model, r.where);
      for (const auto& c : r.children) check_rule(c);
    };
    for (const auto& r : pc.routes) {
      if (!types.count(r.request_type))
        fail_at(r.where, "route for unknown request type '" + r.request_type + "'");
      for (const auto& t : r.tiers) {
        need_price(t.model, t.where);
        if (t.accept) check_rule(*t.accept);
      }
      need_price(r.reference_model, r.where);
      if (const PriceSpec* ref = pc.price(r.reference_model); ref && ref->gpu_hour)
        fail_at(r.where, "reference_model '" + r.reference_model +
                             "' is priced per GPU hour; a baseline needs per-token prices");
    }
    for (const auto& b : pc.budgets)
      if (b.request_type && !types.count(*b.request_type))
        fail_at(b.where, "budget scope names unknown request type '" + *b.request_type + "'");
  }

  const std::string& source_;
};

}  // namespace

const RouteSpec* PolicyConfig::route(const std::string& request_type) const {
  for (const auto& r : routes)
    if (r.request_type == request_type) return &r;
  return nullptr;
}

const PriceSpec* PolicyConfig::price(const std::string& model) const {
  for (const auto& p : prices)
    if (p.model == model) return &p;
  return nullptr;
}

const std::vector<std::string>& default_refusal_phrases() {
  static const std::vector<std::string> k{
      "I can't",        "I cannot",          "I can’t",       "I'm sorry, but",
      "I’m sorry, but", "I am sorry, but",   "As an AI",      "I'm unable to",
      "I am unable to", "I won't be able to", "I'm not able to"};
  return k;
}

Result<int64_t> parse_usd_micros(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return make_error(ErrorKind::kInvalidRequest,
                      "expected a non-negative USD amount with at most 6 decimals (e.g. 2.50), got '" +
                          text + "'" + (why.empty() ? "" : ": " + why));
  };
  const size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
  auto digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !digits(whole) || !digits(frac) || (dot != std::string::npos && frac.empty()))
    return bad("");
  if (frac.size() > 6) return bad("more than 6 decimals (prices and limits are exact to the micro-dollar)");
  if (whole.size() > 12) return bad("too large");
  int64_t v = 0;
  for (char c : whole) v = v * 10 + (c - '0');
  int64_t f = 0;
  for (size_t i = 0; i < 6; ++i) f = f * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  return v * 1'000'000 + f;
}

Result<PolicyConfig> load_policy_text(const std::string& text, const std::string& source) {
  const EnvLookup env = process_env();
  try {
    const YAML::Node doc = parse_yaml(text, source);
    return Loader(source).load(YamlNode(doc, "", &source, &env));
  } catch (const ConfigException& e) {
    return make_error(ErrorKind::kInvalidRequest, e.what());
  } catch (const YAML::Exception& e) {
    return make_error(ErrorKind::kInvalidRequest, source + ": " + e.what());
  }
}

Result<PolicyConfig> load_policy_file(const std::string& path) {
  auto text = read_config_file(path, "policy file");
  if (!text) return std::move(text).error();
  return load_policy_text(*text, path);
}

}  // namespace frugal::config
