// Per-request cost of the policy layer and the ledger on the request path:
// classify + plan + acceptance evaluation + ledger append. Bounded, single-threaded.
// Prints µs per stage (p50/p99) and the ratio to a reference measured in the same run:
// simdjson parsing a ~1 KB chat request body (work every request already does).
//
//   router_bench [iterations=20000]
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/policy_config.h"
#include "policies/policy.h"
#include "router/ledger.h"

using namespace frugal;
using namespace frugal::policies;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kPolicy = R"yaml(
request_types:
  - name: classify
    match: { header: { x-frugal-request-type: classify } }
  - name: support
    match: { all: [ { team: [support, cx] }, { not: { model: "gpt-4o*" } } ] }
  - name: extract
    match: { any: [ { system_prompt_regex: "(?i)extract (the )?(fields|entities)" }, { response_format: json_schema } ] }
  - name: chat
routes:
  extract:
    reference_model: gpt-4o
    cascade:
      - model: gpt-4o-mini
        accept: { all: [ { json_schema: true }, { not_refusal: true }, { mean_logprob: { min: -0.35 } } ] }
      - model: gpt-4o
  chat:
    cascade:
      - model: gpt-4o-mini
        accept: { all: [ { non_empty: true }, { not_refusal: true }, { p10_logprob: { min: -2.5 } } ] }
      - model: gpt-4o
prices:
  gpt-4o:      { input: 2.50, cached_input: 1.25, output: 10.00 }
  gpt-4o-mini: { input: 0.15, cached_input: 0.075, output: 0.60 }
)yaml";

double pct(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20'000;
  auto cfg = config::load_policy_text(kPolicy, "bench.yaml");
  if (!cfg) return std::fprintf(stderr, "%s\n", cfg.error().message.c_str()), 1;
  auto pol = compile_policy(*cfg);
  if (!pol) return std::fprintf(stderr, "%s\n", pol.error().message.c_str()), 1;

  char tmpl[] = "/tmp/frugal-router-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto ledger = router::Ledger::open_standalone(dir);
  if (!ledger) return std::fprintf(stderr, "%s\n", ledger.error().message.c_str()), 1;

  // A request that walks every matcher before landing on `extract` (the 3rd type).
  const StringPair headers[] = {{"content-type", "application/json"},
                                {"user-agent", "OpenAI/Python 1.40.0"},
                                {"x-frugal-tags", "batch,eu"},
                                {"authorization", "Bearer sk-..."}};
  const std::string system = std::string(600, 's') + " Please extract the entities as JSON.";
  RequestFacts facts;
  facts.headers = headers;
  facts.model = "gpt-4o-mini";
  facts.team = "search";
  facts.api_key_id = "key-1";
  facts.system_prompt = system;
  facts.last_user_message = "Ada Lovelace, born 1815 in London.";
  facts.prompt_chars = 700;
  facts.prompt_tokens_estimate = 175;
  facts.response_format = ResponseFormatType::kJsonSchema;

  const std::string answer = R"({"name":"Ada Lovelace","born":1815,"city":"London"})";
  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string"},"born":{"type":"integer","minimum":0},"city":{"type":"string"}},"required":["name","born","city"],"additionalProperties":false})";
  std::vector<double> logprobs(200);
  for (size_t i = 0; i < logprobs.size(); ++i) logprobs[i] = -0.01 * static_cast<double>(i % 40);

  std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":")" + system +
                     R"("},{"role":"user","content":"Ada Lovelace, born 1815 in London."}],"temperature":0})";
  simdjson::dom::parser ref_parser;

  std::vector<double> t_ref, t_classify, t_plan, t_accept, t_append, t_total;
  for (auto* v : {&t_ref, &t_classify, &t_plan, &t_accept, &t_append, &t_total}) v->reserve(n);
  int accepted = 0;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    simdjson::dom::element e;
    if (ref_parser.parse(body).get(e)) return 1;
    t_ref.push_back(us_since(t0));

    const auto start = Clock::now();
    t0 = start;
    const RequestType& type = classify(**pol, facts);
    t_classify.push_back(us_since(t0));
    t0 = Clock::now();
    const RoutePlan* plan = plan_route(**pol, type.name);
    t_plan.push_back(us_since(t0));
    if (!plan) return std::fprintf(stderr, "no plan for %s\n", type.name.c_str()), 1;
    t0 = Clock::now();
    AnswerView a;
    a.text = answer;
    a.finish_reason = "stop";
    a.has_logprobs = true;
    a.token_logprobs = logprobs;
    a.response_schema_json = schema;
    const Decision d = plan->tiers[0].rule->evaluate(a);
    accepted += d.accepted;
    t_accept.push_back(us_since(t0));
    t0 = Clock::now();
    router::LedgerRecord rec;
    rec.request_id = "frg-" + std::to_string(i);
    rec.wall_us = 1'700'000'000'000'000 + i;
    rec.key_id = "key-1";
    rec.team = "search";
    rec.request_type = type.name;
    rec.route = type.name;
    rec.dialect = "openai";
    router::LedgerTier tier;
    tier.model = plan->tiers[0].model;
    tier.provider = "openai";
    tier.usage.input_tokens = 175;
    tier.usage.output_tokens = 20;
    tier.cost = Money{38};
    tier.status = router::TierStatus::kAccepted;
    tier.score = d.score;
    tier.reason = d.reason;
    rec.tiers.push_back(std::move(tier));
    rec.answer_model = plan->tiers[0].model;
    rec.total_cost = Money{38};
    rec.baseline = Money{638};
    rec.savings = Money{600};
    (*ledger)->append(std::move(rec));
    t_append.push_back(us_since(t0));
    t_total.push_back(us_since(start));
  }
  const auto f0 = Clock::now();
  if (!(*ledger)->flush().ok()) return 1;
  const double drain_us = us_since(f0);
  const auto stats = (*ledger)->stats();
  ledger->reset();
  std::filesystem::remove_all(dir);

  const double ref50 = pct(t_ref, 0.5);
  std::printf("router_bench: %d requests, accepted %d, ledger written %llu dropped %llu batches %llu\n", n,
              accepted, static_cast<unsigned long long>(stats.written),
              static_cast<unsigned long long>(stats.dropped), static_cast<unsigned long long>(stats.batches));
  std::printf("%-34s %9s %9s %12s\n", "stage", "p50 us", "p99 us", "p50 / ref");
  auto row = [&](const char* name, std::vector<double>& v) {
    const double p50 = pct(v, 0.5), p99 = pct(v, 0.99);
    std::printf("%-34s %9.2f %9.2f %12.2f\n", name, p50, p99, p50 / ref50);
  };
  row("reference: simdjson parse 1KB body", t_ref);
  row("classify (3rd type, regex)", t_classify);
  row("plan_route", t_plan);
  row("accept: schema+refusal+mean(200)", t_accept);
  row("ledger append (build + enqueue)", t_append);
  row("total per request", t_total);
  std::printf("ledger drain after the loop: %.0f us\n", drain_us);
  return 0;
}
