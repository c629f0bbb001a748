// The in-process engine through the `frugal` binary: GET /admin/engines (authorisation,
// settings, counters that prove prefix KV reuse and account for every token), and the
// provider's `timeouts` applied to engine calls (504 before the first byte, the broken
// stream event after it, the engine request cancelled and its blocks freed).
// Engines serve the llama-2 fixture (random weights, real 32k vocabulary).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "tests/support/completion_text.h"
#include "tests/support/process.h"
#include "tests/support/skip.h"

using frugal::test::Child;
using frugal::test::content_of;
using frugal::test::request;
using frugal::test::Response;

namespace {

const std::string kFixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";
const std::string kAdminToken = "test-admin-token";
const std::string kAuth = "Authorization: Bearer " + kAdminToken;

// Providers:
//  local  — plain engine;
//  spec   — the fixture drafting for itself (speculative decoding);
//  queue  — one sequence at a time and short deadlines: a second request waits behind
//           the first, and a long generation outlives the total timeout. Its context
//           (64k positions) makes a max_tokens-bound generation take far longer than
//           3 s in any build, so only the deadline can end it early. The first-byte
//           deadline leaves a loaded machine 1 s for A's first token, and B (asked once
//           A streams) 1 s before A's total deadline would free the slot.
struct Env {
  std::unique_ptr<Child> gw;
  std::string url, admin_url;
  std::filesystem::path dir;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-engine-it-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "frugal.yaml") << "data_dir: " + (dir / "data").string() + R"(
admin_token: )" + kAdminToken + R"(
telemetry: { metrics: { enabled: true } }
server:
  listen: ["127.0.0.1:0"]
  threads: 2
cache: { enabled: false }
providers:
  local:
    kind: engine
    model: )" + kFixture + R"(
    threads: 1
    kv_memory: 16MiB
    context_length: 2048
  spec:
    kind: engine
    model: )" + kFixture + R"(
    draft_model: )" + kFixture + R"(
    threads: 1
    kv_memory: 16MiB
    draft_tokens: 4
  queue:
    kind: engine
    model: )" + kFixture + R"(
    threads: 1
    kv_memory: 16MiB
    context_length: 65536
    max_batch: 1
    timeouts: { first_byte: 1s, total: 3s }
    retry: { max_attempts: 1 }
)";
    gw = std::make_unique<Child>(
        std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)", 30'000);
    admin_url = frugal::test::admin_url_of(*gw);
  }
  ~Env() {
    gw.reset();
    std::filesystem::remove_all(dir);
  }
  Response chat(const std::string& body, std::function<bool(const std::string&)> on_data = nullptr) {
    return request("POST", url + "/v1/chat/completions", body, {}, std::move(on_data), 60'000);
  }
};

Env& env() {
  static Env e;
  return e;
}

// One engine's object from GET /admin/engines (copied out as JSON text).
struct EngineView {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  int64_t num(const char* key) {
    int64_t v = -1;
    REQUIRE_MESSAGE(e[key].get_int64().get(v) == simdjson::SUCCESS, key);
    return v;
  }
  double real(const char* key) {
    double v = -1;
    REQUIRE_MESSAGE(e[key].get_double().get(v) == simdjson::SUCCESS, key);
    return v;
  }
  int64_t kv(const char* key, const char* cache = "kv_cache") {
    int64_t v = -1;
    REQUIRE_MESSAGE(e[cache][key].get_int64().get(v) == simdjson::SUCCESS, key);
    return v;
  }
};

std::unique_ptr<EngineView> engine_view(const std::string& provider) {
  auto r = request("GET", env().admin_url + "/admin/engines", {}, {kAuth});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto v = std::make_unique<EngineView>();
  simdjson::dom::element root;
  REQUIRE(v->parser.parse(r.body).get(root) == simdjson::SUCCESS);
  for (auto item : root["engines"].get_array()) {
    std::string_view name;
    if (!item["provider"].get_string().get(name) && name == provider) {
      v->e = item;
      return v;
    }
  }
  FAIL("no engine '" << provider << "' in " << r.body);
  return nullptr;
}

// Waits (bounded, 10 s) until `provider`'s counters satisfy `pred`.
bool engine_reaches(const std::string& provider, const std::function<bool(EngineView&)>& pred) {
  for (int i = 0; i < 1000; ++i) {
    auto v = engine_view(provider);
    if (pred(*v)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

struct Usage {
  int64_t prompt = -1, cached = -1, completion = -1;
};

Usage usage_from(simdjson::dom::element u) {
  Usage out;
  REQUIRE(u["prompt_tokens"].get_int64().get(out.prompt) == simdjson::SUCCESS);
  REQUIRE(u["completion_tokens"].get_int64().get(out.completion) == simdjson::SUCCESS);
  REQUIRE(u["prompt_tokens_details"]["cached_tokens"].get_int64().get(out.cached) == simdjson::SUCCESS);
  return out;
}

// The usage of a plain body, or of a stream's usage-only chunk.
Usage usage_of(const Response& r) {
  simdjson::dom::parser p;
  simdjson::dom::element u;
  if (r.header("content-type").find("text/event-stream") == std::string::npos) {
    REQUIRE_MESSAGE(p.parse(r.body)["usage"].get(u) == simdjson::SUCCESS, r.body);
    return usage_from(u);
  }
  for (size_t pos = 0; (pos = r.body.find("data: {", pos)) != std::string::npos; ++pos) {
    const size_t end = r.body.find("\n\n", pos);
    simdjson::dom::element chunk;
    REQUIRE(p.parse(r.body.substr(pos + 6, end - pos - 6)).get(chunk) == simdjson::SUCCESS);
    if (!chunk["usage"].get(u) && u.is_object()) return usage_from(u);
  }
  FAIL("no usage chunk in " << r.body);
  return {};
}

std::string error_field(const std::string& json, const char* field) {
  simdjson::dom::parser p;
  std::string_view s;
  if (p.parse(json)["error"][field].get_string().get(s)) return "<none>";
  return std::string(s);
}

std::string body(const std::string& model, const std::string& messages, const std::string& extra) {
  return R"({"model":")" + model + R"(","messages":)" + messages + "," + extra + "}";
}

// A system prompt of about 300 tokens, unique to `tag` so no earlier request shares it.
std::string long_system(const std::string& tag) {
  std::string s = "You are assistant " + tag + ".";
  for (int i = 0; i < 30; ++i) s += " Rule " + std::to_string(i) + ": answer briefly and politely.";
  return s;
}

bool has_fixture() { return std::filesystem::exists(kFixture); }

}  // namespace

TEST_CASE("GET /admin/engines needs the admin token") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto& e = env();
  auto none = request("GET", e.admin_url + "/admin/engines");
  CHECK(none.status == 403);
  CHECK(error_field(none.body, "code") == "admin_forbidden");
  auto wrong = request("GET", e.admin_url + "/admin/engines", {}, {"Authorization: Bearer nope"});
  CHECK(wrong.status == 403);
  CHECK(request("GET", e.admin_url + "/admin/engines", {}, {kAuth}).status == 200);
  auto post = request("POST", e.admin_url + "/admin/engines", "{}", {kAuth});
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET");
}

TEST_CASE("GET /admin/engines lists every engine provider with its settings") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto r = request("GET", env().admin_url + "/admin/engines", {}, {kAuth});
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "application/json");
  simdjson::dom::parser p;
  simdjson::dom::array engines;
  REQUIRE(p.parse(r.body)["engines"].get_array().get(engines) == simdjson::SUCCESS);
  std::vector<std::string> names;
  for (auto item : engines) names.emplace_back(std::string_view(item["provider"].get_string()));
  CHECK(names == std::vector<std::string>{"local", "queue", "spec"});

  auto local = engine_view("local");
  CHECK(std::string_view(local->e["model"].get_string()) == "local/llama-2-tiny-random");
  CHECK(std::string_view(local->e["model_path"].get_string()) == kFixture);
  CHECK(local->e["draft_model_path"].is_null());
  CHECK(local->e["draft_tokens"].is_null());
  CHECK(local->e["draft_kv_cache"].is_null());
  CHECK(local->num("threads") == 1);
  CHECK(local->num("context_length") == 2048);
  CHECK(local->num("max_batch") == 32);
  CHECK(local->kv("block_size") == 16);
  CHECK(local->kv("n_blocks") > 0);
  CHECK(local->kv("free_blocks") + local->kv("cached_blocks") + local->kv("used_blocks") == local->kv("n_blocks"));

  auto spec = engine_view("spec");
  CHECK(std::string_view(spec->e["model"].get_string()) == "spec/llama-2-tiny-random");
  CHECK(std::string_view(spec->e["draft_model_path"].get_string()) == kFixture);
  CHECK(spec->num("draft_tokens") == 4);
  CHECK(spec->kv("n_blocks", "draft_kv_cache") > 0);
  CHECK(engine_view("queue")->num("max_batch") == 1);
}

TEST_CASE("a repeated long system prompt is computed once: the counters show the KV reuse") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto& e = env();
  const std::string system = long_system("reuse");
  auto messages = [&](const std::string& user) {
    return R"([{"role":"system","content":")" + system + R"("},{"role":"user","content":")" + user + R"("}])";
  };
  REQUIRE(engine_reaches("local", [](EngineView& v) { return v.num("running") == 0 && v.num("waiting") == 0; }));
  auto v0 = engine_view("local");

  auto a = e.chat(body("local/llama-2-tiny-random", messages("First question?"), R"("temperature":0,"max_tokens":5)"));
  REQUIRE_MESSAGE(a.status == 200, a.body);
  const Usage ua = usage_of(a);
  auto v1 = engine_view("local");
  // Streamed, with usage, and a different question after the same system prompt.
  auto b = e.chat(body("local/llama-2-tiny-random", messages("Another one?"),
                       R"("temperature":0,"max_tokens":7,"stream":true,"stream_options":{"include_usage":true})"));
  REQUIRE_MESSAGE(b.status == 200, b.body);
  CHECK(b.body.find("data: [DONE]") != std::string::npos);
  const Usage ub = usage_of(b);
  auto v2 = engine_view("local");

  // The first request computed its whole prompt; the second attached the system prompt's
  // KV blocks (whole 16-token blocks) and computed only the rest.
  CHECK(ua.cached == 0);
  CHECK(v1->num("prompt_tokens_reused") - v0->num("prompt_tokens_reused") == 0);
  CHECK(v1->num("prefill_tokens_computed") - v0->num("prefill_tokens_computed") == ua.prompt);
  CHECK(ub.cached >= 200);  // the system prompt alone is ~300 tokens
  CHECK(ub.cached < ub.prompt);
  CHECK(v2->num("prompt_tokens_reused") - v1->num("prompt_tokens_reused") == ub.cached);
  CHECK(v2->num("prefill_tokens_computed") - v1->num("prefill_tokens_computed") == ub.prompt - ub.cached);
  CHECK(v2->kv("reused_tokens") - v1->kv("reused_tokens") == ub.cached);

  // Every generated token but a request's last is fed back through the model.
  CHECK(ua.completion >= 1);
  CHECK(ua.completion <= 5);
  CHECK(ub.completion >= 1);
  CHECK(ub.completion <= 7);
  CHECK(v1->num("decode_tokens") - v0->num("decode_tokens") == ua.completion - 1);
  CHECK(v2->num("decode_tokens") - v1->num("decode_tokens") == ub.completion - 1);
  CHECK(v2->num("requests_finished") - v0->num("requests_finished") == 2);
  CHECK(v2->num("requests_cancelled") - v0->num("requests_cancelled") == 0);
  CHECK(v2->num("steps") > v0->num("steps"));
  // Finished requests hold no blocks; their prompt blocks stay cached for reuse.
  CHECK(v2->num("running") == 0);
  CHECK(v2->num("waiting") == 0);
  CHECK(v2->kv("used_blocks") == 0);
  CHECK(v2->kv("cached_blocks") > 0);
  CHECK(v2->num("drafted") == 0);
  CHECK(v2->real("acceptance_rate") == 0.0);
}

TEST_CASE("speculative counters: acceptance rate and tokens per target step") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto v0 = engine_view("spec");
  auto r = env().chat(body("spec/llama-2-tiny-random", R"([{"role":"user","content":"Count to ten."}])",
                           R"("temperature":0,"max_tokens":24)"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const Usage u = usage_of(r);
  auto v1 = engine_view("spec");
  const int64_t drafted = v1->num("drafted") - v0->num("drafted");
  const int64_t accepted = v1->num("accepted") - v0->num("accepted");
  CHECK(drafted > 0);
  CHECK(accepted > 0);  // the target drafting for itself agrees with itself
  CHECK(accepted <= drafted);
  CHECK(v1->num("spec_verifies") > v0->num("spec_verifies"));
  CHECK(v1->num("draft_forwards") > v0->num("draft_forwards"));
  // The rates are the totals' ratios, as EngineStats defines them.
  CHECK(v1->real("acceptance_rate") == doctest::Approx(static_cast<double>(v1->num("accepted")) / v1->num("drafted")));
  CHECK(v1->real("tokens_per_verify") ==
        doctest::Approx(static_cast<double>(v1->num("spec_generated")) / v1->num("spec_verifies")));
  CHECK(v1->real("tokens_per_verify") > 1.0);
  CHECK(v1->num("requests_finished") - v0->num("requests_finished") == 1);
  CHECK(u.completion >= 1);
  CHECK(v1->num("running") == 0);
  CHECK(v1->kv("used_blocks") == 0);
  CHECK(v1->kv("used_blocks", "draft_kv_cache") == 0);
}

// The value of one sample in a /metrics exposition; -1 when absent.
double metric_sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_CASE("GET /metrics carries each engine's counters as /admin/engines shows them") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto r = env().chat(body("spec/llama-2-tiny-random", R"([{"role":"user","content":"Count to five."}])",
                           R"("temperature":0,"max_tokens":8)"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  for (const char* provider : {"local", "spec"})
    REQUIRE(engine_reaches(provider, [](EngineView& v) { return v.num("running") == 0 && v.num("waiting") == 0; }));
  CHECK(request("GET", env().admin_url + "/metrics").status == 403);  // the admin endpoints' rule
  auto m = request("GET", env().admin_url + "/metrics", {}, {kAuth});
  REQUIRE(m.status == 200);
  for (const std::string provider : {"local", "spec"}) {
    CAPTURE(provider);
    auto v = engine_view(provider);
    const std::string labels = "{provider=\"" + provider + "\",model=\"" + provider + "/llama-2-tiny-random\"}";
    CHECK(metric_sample(m.body, "frugal_engine_prefill_tokens_total" + labels) == v->num("prefill_tokens_computed"));
    CHECK(metric_sample(m.body, "frugal_engine_prefix_tokens_reused_total" + labels) == v->num("prompt_tokens_reused"));
    CHECK(metric_sample(m.body, "frugal_engine_decode_tokens_total" + labels) == v->num("decode_tokens"));
    CHECK(metric_sample(m.body, "frugal_engine_kv_blocks_used" + labels) == v->kv("used_blocks"));
    CHECK(metric_sample(m.body, "frugal_engine_kv_blocks_total" + labels) == v->kv("n_blocks"));
    CHECK(metric_sample(m.body, "frugal_engine_running_requests" + labels) == 0);
    CHECK(metric_sample(m.body, "frugal_engine_waiting_requests" + labels) == 0);
    CHECK(metric_sample(m.body, "frugal_engine_speculative_drafted_tokens_total" + labels) == v->num("drafted"));
    CHECK(metric_sample(m.body, "frugal_engine_speculative_accepted_tokens_total" + labels) == v->num("accepted"));
  }
  CHECK(metric_sample(m.body, "frugal_engine_speculative_drafted_tokens_total{provider=\"spec\",model=\"spec/"
                              "llama-2-tiny-random\"}") > 0);
}

TEST_CASE("engine deadlines: first-byte while queued is a 504, total cuts a stream and a plain answer") {
  if (!has_fixture()) FRUGAL_SKIP("fixture " << kFixture << " is absent");
  auto& e = env();
  const std::string model = "queue/llama-2-tiny-random";
  const std::string msgs = R"([{"role":"user","content":"Tell me a very long story."}])";
  auto v0 = engine_view("queue");
  const auto t0 = std::chrono::steady_clock::now();

  // A: streams alone in the single slot until the 3 s total deadline cuts it.
  std::promise<void> a_started;
  std::atomic<bool> signalled{false};
  auto a_future = std::async(std::launch::async, [&] {
    return e.chat(body(model, msgs, R"("temperature":0,"max_tokens":60000,"stream":true)"),
                  [&](const std::string& piece) {
                    if (piece.find("\"content\"") != std::string::npos && !signalled.exchange(true))
                      a_started.set_value();
                    return true;
                  });
  });
  REQUIRE(a_started.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready);

  // B: queued behind A, it gets no token before its 1 s first-byte deadline.
  auto b = e.chat(body(model, msgs, R"("max_tokens":10)"));
  CHECK(b.status == 504);
  CHECK(error_field(b.body, "type") == "upstream_error");
  CHECK(error_field(b.body, "message").find("first-byte timeout") != std::string::npos);

  const Response a = a_future.get();
  CHECK(a.status == 200);
  CHECK(a.curl_code == CURLE_OK);  // the stream ends properly, with an error event
  CHECK(!content_of(a).empty());
  CHECK(a.body.find("data: [DONE]") == std::string::npos);
  CHECK(a.body.find("upstream_stream_interrupted") != std::string::npos);
  CHECK(a.body.find("total timeout") != std::string::npos);

  // C: alone again, a plain answer that would take far longer than 3 s.
  auto c = e.chat(body(model, msgs, R"("temperature":0,"max_tokens":60000)"));
  CHECK(c.status == 504);
  CHECK(error_field(c.body, "type") == "upstream_error");
  CHECK(error_field(c.body, "message").find("total timeout") != std::string::npos);
  // Generous bound: the deadlines (3 s + 1 s + 3 s), not max_tokens, ended the calls.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));

  // All three engine requests were cancelled and nothing is left running or holding blocks.
  CHECK(engine_reaches("queue", [&](EngineView& v) {
    return v.num("requests_cancelled") - v0->num("requests_cancelled") == 3 && v.num("running") == 0 &&
           v.num("waiting") == 0 && v.kv("used_blocks") == 0;
  }));
  auto v1 = engine_view("queue");
  CHECK(v1->num("requests_finished") - v0->num("requests_finished") == 3);
}
