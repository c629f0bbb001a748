// Per-request cost of the policy layer and the ledger on the request path, as the
// gateway runs them (gateway/routing.cpp, router/cascade.cpp): request facts → classify
// → plan → parse the buffered tier's answer → acceptance → ledger append; then the
// ledger's durable write, which the gateway waits for before a response's last bytes.
// Bounded; the per-stage loop is single-threaded. Prints µs per stage (p50/p99) and the
// ratio to a reference measured in the same run: simdjson parsing the ~1 KB chat
// request body (work every request already does).
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

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "config/policy_config.h"
#include "core/chat.h"
#include "policies/policy.h"
#include "router/ledger.h"
#include "router/tier_answer.h"

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
                     R"("},{"role":"user","content":"Ada Lovelace, born 1815 in London."}],"temperature":0,"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":)" +
                     schema + "}}}";
  simdjson::dom::parser ref_parser;
  simdjson::dom::parser req_parser;
  auto chat = parse_chat_body(req_parser, body);
  if (!chat) return std::fprintf(stderr, "%s\n", chat.error().message.c_str()), 1;

  // The tier's answer as the upstream returns it: a chat.completion with 200 tokens'
  // log-probs (the executor parses it before scoring).
  std::string completion = R"({"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":)";
  completion += "\"" + std::string(R"({\"name\":\"Ada Lovelace\",\"born\":1815,\"city\":\"London\"})") + "\"";
  completion += R"(},"finish_reason":"stop","logprobs":{"content":[)";
  for (size_t i = 0; i < logprobs.size(); ++i) {
    if (i) completion += ',';
    completion += R"({"token":"tok","logprob":)" + std::to_string(logprobs[i]) + R"(,"bytes":[116,111,107],"top_logprobs":[]})";
  }
  completion += R"(]}}],"usage":{"prompt_tokens":175,"completion_tokens":200}})";

  std::vector<double> t_ref, t_facts, t_classify, t_plan, t_parse, t_accept, t_append, t_total;
  for (auto* v : {&t_ref, &t_facts, &t_classify, &t_plan, &t_parse, &t_accept, &t_append, &t_total}) v->reserve(n);
  int accepted = 0;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    simdjson::dom::element e;
    if (ref_parser.parse(body).get(e)) return 1;
    t_ref.push_back(us_since(t0));

    const auto start = Clock::now();
    t0 = start;
    // What ChatExchange::route() derives per request: the text facts and lowercase
    // header names.
    const ChatFacts cf = extract_chat_facts(*chat);
    std::vector<std::string> names;
    for (const auto& h : headers) names.emplace_back(h.first);
    apply_chat_facts(cf, facts);
    t_facts.push_back(us_since(t0));
    t0 = Clock::now();
    const RequestType& type = classify(**pol, facts);
    t_classify.push_back(us_since(t0));
    t0 = Clock::now();
    const RoutePlan* plan = plan_route(**pol, type.name);
    t_plan.push_back(us_since(t0));
    if (!plan) return std::fprintf(stderr, "no plan for %s\n", type.name.c_str()), 1;
    t0 = Clock::now();
    auto parsed = router::parse_tier_answer(completion);
    if (!parsed || parsed->token_logprobs.size() != logprobs.size()) return std::fprintf(stderr, "bad answer\n"), 1;
    t_parse.push_back(us_since(t0));
    t0 = Clock::now();
    const Decision d = plan->tiers[0].rule->evaluate(parsed->view(cf.response_schema_json, std::nullopt));
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
    tier.cost = Money::from_micros(38);
    tier.status = router::TierStatus::kAccepted;
    tier.score = d.score;
    tier.reason = d.reason;
    rec.tiers.push_back(std::move(tier));
    rec.answer_model = plan->tiers[0].model;
    rec.total_cost = Money::from_micros(38);
    rec.baseline = Money::from_micros(638);
    rec.savings = Money::from_micros(600);
    (*ledger)->append(std::move(rec));
    t_append.push_back(us_since(t0));
    t_total.push_back(us_since(start));
  }
  const auto f0 = Clock::now();
  if (!(*ledger)->flush().ok()) return 1;
  const double drain_us = us_since(f0);
  const auto stats = (*ledger)->stats();

  // The durable write the gateway waits for (ChatExchange::commit): append with a
  // completion callback, wait for it. Alone (no batching to share the write), then with
  // 16 requests finishing concurrently (group commit).
  auto record = [](int i) {
    router::LedgerRecord rec;
    rec.request_id = "dur-" + std::to_string(i);
    rec.wall_us = 1'700'000'100'000'000 + i;
    rec.request_type = "extract";
    rec.route = "extract";
    router::LedgerTier tier;
    tier.model = "gpt-4o-mini";
    tier.usage.input_tokens = 175;
    tier.usage.output_tokens = 20;
    tier.cost = Money::from_micros(38);
    tier.status = router::TierStatus::kAccepted;
    rec.tiers.push_back(std::move(tier));
    rec.total_cost = Money::from_micros(38);
    return rec;
  };
  auto durable_append = [&](int i) {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    const auto t0 = Clock::now();
    (*ledger)->append(record(i), [&](bool) {
      std::lock_guard lock(m);
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
    return us_since(t0);
  };
  const int nd = std::max(200, n / 10);
  std::vector<double> t_durable_alone;
  for (int i = 0; i < nd; ++i) t_durable_alone.push_back(durable_append(i));
  // What the gateway does at low load: the caller writes the row itself.
  std::vector<double> t_durable_inline;
  int inline_written = 0;
  for (int i = 0; i < nd; ++i) {
    const auto t0 = Clock::now();
    if ((*ledger)->append_durable(record(500'000 + i), [] { return router::Ledger::OnWritten([](bool) {}); }))
      ++inline_written;
    t_durable_inline.push_back(us_since(t0));
  }
  std::vector<double> t_durable_16;
  std::mutex tm;
  std::vector<std::thread> writers;
  for (int t = 0; t < 16; ++t) {
    writers.emplace_back([&, t] {
      std::vector<double> mine;
      for (int i = 0; i < nd / 16; ++i) mine.push_back(durable_append(1'000'000 + t * nd + i));
      std::lock_guard lock(tm);
      t_durable_16.insert(t_durable_16.end(), mine.begin(), mine.end());
    });
  }
  for (auto& w : writers) w.join();
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
  row("request facts (text, headers)", t_facts);
  row("classify (3rd type, regex)", t_classify);
  row("plan_route", t_plan);
  row("parse tier answer (200 logprobs)", t_parse);
  row("accept: schema+refusal+mean(200)", t_accept);
  row("ledger append (build + enqueue)", t_append);
  row("total per request (CPU)", t_total);
  std::printf("ledger drain after the loop: %.0f us\n", drain_us);
  std::printf("durable ledger write, waited for (%d each):\n", nd);
  row("  one request at a time", t_durable_alone);
  std::printf("  (inline: %d of %d written on the caller's thread)\n", inline_written, nd);
  row("  inline on the caller (low load)", t_durable_inline);
  row("  16 concurrent requests", t_durable_16);
  return 0;
}
