#include "policies/policy.h"

#include "policies/regex.h"

namespace frugal::policies {

using MKind = config::MatchSpec::Kind;

namespace {

struct StringTest {
  config::StringMatch::Kind kind = config::StringMatch::Kind::kExact;
  std::string pattern;
  std::optional<Regex> regex;

  bool operator()(std::string_view s) const {
    switch (kind) {
      case config::StringMatch::Kind::kExact: return s == pattern;
      case config::StringMatch::Kind::kGlob: return glob_match(pattern, s);
      case config::StringMatch::Kind::kRegex: return regex->search(s);
    }
    return false;
  }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* format_name(ResponseFormatType f) {
  switch (f) {
    case ResponseFormatType::kNone: return "none";
    case ResponseFormatType::kText: return "text";
    case ResponseFormatType::kJsonObject: return "json_object";
    case ResponseFormatType::kJsonSchema: return "json_schema";
  }
  return "none";
}

}  // namespace

class Matcher {
 public:
  static Result<std::unique_ptr<Matcher>> compile(const config::MatchSpec& s) {
    auto m = std::make_unique<Matcher>();
    m->kind_ = s.kind;
    m->key_ = s.key;
    m->min_ = s.min;
    m->max_ = s.max;
    for (const auto& v : s.values) {
      StringTest t{v.kind, v.pattern, std::nullopt};
      if (v.kind == config::StringMatch::Kind::kRegex) {
        auto re = Regex::compile(v.pattern);
        if (!re) return make_error(ErrorKind::kInvalidRequest, s.where + ": " + re.error().message);
        t.regex = std::move(*re);
      }
      m->tests_.push_back(std::move(t));
    }
    for (const auto& c : s.children) {
      auto cm = compile(c);
      if (!cm) return std::move(cm).error();
      m->children_.push_back(std::move(*cm));
    }
    return m;
  }

  bool match(const RequestFacts& f) const {
    switch (kind_) {
      case MKind::kAll:
        for (const auto& c : children_)
          if (!c->match(f)) return false;
        return true;
      case MKind::kAny:
        for (const auto& c : children_)
          if (c->match(f)) return true;
        return false;
      case MKind::kNot: return !children_[0]->match(f);
      case MKind::kHeader:
        for (const auto& [name, value] : f.headers)
          if (name == key_ && any(value)) return true;
        return false;
      case MKind::kMetadata:
        for (const auto& [name, value] : f.metadata)
          if (name == key_ && any(value)) return true;
        return false;
      case MKind::kTag: {
        for (std::string_view t : f.tags)
          if (any(t)) return true;
        for (const auto& [name, value] : f.headers) {
          if (name != "x-frugal-tags") continue;
          std::string_view rest = value;
          while (!rest.empty()) {
            const size_t comma = rest.find(',');
            const std::string_view tag = trim(rest.substr(0, comma));
            if (!tag.empty() && any(tag)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
          }
        }
        return false;
      }
      case MKind::kDialect: return any(dialect_name(f.dialect));
      case MKind::kPath: return any(f.path);
      case MKind::kModel: return any(f.model);
      case MKind::kApiKey: return any(f.api_key_id);
      case MKind::kTeam: return any(f.team);
      case MKind::kSystemPromptRegex: return any(f.system_prompt);
      case MKind::kUserMessageRegex: return any(f.last_user_message);
      case MKind::kPromptChars: return f.prompt_chars >= min_ && f.prompt_chars <= max_;
      case MKind::kPromptTokens:
        return f.prompt_tokens_estimate >= min_ && f.prompt_tokens_estimate <= max_;
      case MKind::kResponseFormat: return any(format_name(f.response_format));
    }
    return false;
  }

 private:
  bool any(std::string_view s) const {
    for (const auto& t : tests_)
      if (t(s)) return true;
    return false;
  }

  MKind kind_ = MKind::kAll;
  std::string key_;
  std::vector<StringTest> tests_;
  int64_t min_ = 0;
  int64_t max_ = INT64_MAX;
  std::vector<std::unique_ptr<Matcher>> children_;
};

CompiledPolicy::~CompiledPolicy() = default;

const RoutePlan* CompiledPolicy::route(std::string_view request_type) const {
  for (const auto& r : routes_)
    if (r.request_type == request_type) return &r;
  return nullptr;
}

Result<std::shared_ptr<const CompiledPolicy>> compile_policy(const config::PolicyConfig& config) {
  std::shared_ptr<CompiledPolicy> p(new CompiledPolicy());
  p->config_ = config;
  p->prices_ = PriceTable(config.prices, &builtin_prices());
  for (size_t i = 0; i < config.request_types.size(); ++i) {
    const auto& t = config.request_types[i];
    p->types_.push_back(RequestType{t.name, i});
    if (t.match) {
      auto m = Matcher::compile(*t.match);
      if (!m) return std::move(m).error();
      p->matchers_.push_back(std::move(*m));
    } else {
      p->matchers_.push_back(nullptr);
    }
  }
  if (p->types_.empty() || p->matchers_.back() != nullptr)
    return make_error(ErrorKind::kInvalidRequest, config.source + ": the policy needs a default request type last");
  for (const auto& r : config.routes) {
    RoutePlan plan;
    plan.request_type = r.request_type;
    plan.reference_model = r.reference_model;
    plan.stream_mode = r.stream_mode;
    plan.cache = CachePlan{r.cache_configured, r.cache_enabled, r.cache_ttl_ms};
    plan.capture = r.capture;
    plan.shaping = r.shaping;
    for (size_t i = 0; i < r.tiers.size(); ++i) {
      const auto& t = r.tiers[i];
      PlannedTier pt;
      pt.model = t.model;
      pt.last = i + 1 == r.tiers.size();
      if (t.accept) {
        auto rule = AcceptRule::compile(*t.accept, config.refusal_phrases);
        if (!rule) return std::move(rule).error();
        p->rules_.push_back(std::make_unique<AcceptRule>(std::move(*rule)));
        pt.rule = p->rules_.back().get();
        pt.needs_logprobs = pt.rule->needs_logprobs();
        pt.top_logprobs = pt.rule->top_logprobs_needed();
        pt.verifier = pt.rule->verifier();
      }
      plan.tiers.push_back(std::move(pt));
    }
    p->routes_.push_back(std::move(plan));
  }
  return std::shared_ptr<const CompiledPolicy>(std::move(p));
}

const RequestType& classify(const CompiledPolicy& policy, const RequestFacts& facts) {
  for (size_t i = 0; i < policy.matchers_.size(); ++i) {
    const auto& m = policy.matchers_[i];
    if (!m || m->match(facts)) return policy.types_[i];
  }
  return policy.types_.back();  // unreachable: the last type has no matcher
}

const RoutePlan* plan_route(const CompiledPolicy& policy, std::string_view request_type) {
  return policy.route(request_type);
}

bool glob_match(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace frugal::policies
