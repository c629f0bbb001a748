// Policies, the cascade and cost attribution through the `frugal` binary, over loopback,
// against the C++ mock upstream (scripted per model: log-probs, content, usage, errors).
// Costs are checked against hand computation in micro-dollars, exactly.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/completion_text.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::content_of;
using frugal::test::request;
using frugal::test::Response;

namespace {

// Prices are USD per 1M tokens, so one token costs price micro-dollars.
constexpr const char* kPrices = R"(prices:
  tier-small:    { input: 0.10, cached_input: 0.05, output: 0.40 }
  tier-mid:      { input: 1.00, cached_input: 0.50, output: 4.00 }
  tier-large:    { input: 10.00, cached_input: 5.00, output: 30.00 }
  verifier-mini: { input: 0.20, output: 0.80 }
  broken:        { input: 1.00, output: 1.00 }
budgets:
  - { scope: { team: soft-team }, per: day, soft: 0.000100 }
  - { scope: { team: hard-team }, per: day, hard: 0.000150 }
)";

// `classify_type` names the request type of x-frugal-request-type: classify (policy A
// and B differ only there, so reload tests can tell which one served a request).
std::string policy_text(const std::string& classify_type) {
  return R"(request_types:
  - name: )" + classify_type + R"(
    match: { header: { x-frugal-request-type: classify } }
  - name: extract
    match: { response_format: json_schema }
  - name: verify
    match: { header: { x-frugal-request-type: verify } }
  - name: fast
    match: { header: { x-frugal-request-type: fast } }
  - name: metered
    match: { team: [soft-team, hard-team] }
  - name: pinned
    match: { model: "pinned-*" }
  - name: chat
routes:
  )" + classify_type + R"(:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { all: [ { mean_logprob: { min: -0.5 } }, { not_refusal: true } ] }
      - model: tier-mid
        accept: { min_logprob: { min: -1.0 } }
      - model: tier-large
  extract:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { json_schema: true }
      - model: tier-large
  verify:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept:
          verifier:
            model: verifier-mini
            prompt: "Question: {question}\nAnswer: {answer}\nIs the answer correct? Reply yes or no."
            min_p_yes: 0.8
      - model: tier-large
  fast:
    reference_model: tier-large
    stream: first_tier
    cascade:
      - model: broken
      - model: tier-small
      - model: tier-large
  metered:
    reference_model: tier-large
    cascade:
      - model: tier-small
  chat:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { non_empty: true }
      - model: tier-large
    cache: { ttl: 10m }
)" + kPrices;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  // Write then rename, as a deploy tool would: the watcher never sees half a file.
  const auto tmp = p.string() + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, p);
}

// What `cmd` prints on stdout (trailing newline removed).
std::string run_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The key id frugal records for an API key (`frugal key-id`).
std::string key_id(const std::string& key) { return run_output(std::string(FRUGAL_BIN) + " key-id " + key); }

std::string config_text(const std::filesystem::path& dir, const std::string& mock_url, const std::string& data,
                        bool with_policy) {
  return "data_dir: " + (dir / data).string() + "\n" + (with_policy ? "policy: policy.yaml\n" : "") +
         "teams:\n  mapped-team: [" + key_id("sk-team-key") + "]\n" + R"(server:
  listen: ["127.0.0.1:0"]
  threads: 2
  watch_interval: 100ms
providers:
  mock:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    retry: { max_attempts: 1 }
    timeouts: { first_byte: 3s }
  dead:
    kind: openai
    base_url: http://127.0.0.1:1/v1
    retry: { max_attempts: 1 }
models:
  broken: dead/broken
passthrough:
  - { prefix: "", provider: mock }
)";
}

struct Gateway {
  std::unique_ptr<Child> proc;
  std::string url, admin_url;
  void start(const std::filesystem::path& config, std::vector<std::string> env = {}) {
    proc = std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", config.string()},
                                   std::move(env));
    url = "http://127.0.0.1:" + proc->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
    admin_url = frugal::test::admin_url_of(*proc);
  }
};

struct Env {
  std::unique_ptr<Child> mock;
  Gateway gw;
  std::string mock_url;
  std::filesystem::path dir;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-cascade-it-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN, "--threads", "2"});
    mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
    write_file(dir / "policy.yaml", policy_text("classify"));
    write_file(dir / "frugal.yaml", config_text(dir, mock_url, "data", true));
    gw.start(dir / "frugal.yaml");
  }
  ~Env() {
    gw.proc.reset();
    mock.reset();
    std::filesystem::remove_all(dir);
  }
  const std::string& url() const { return gw.url; }
  const std::string& admin() const { return gw.admin_url; }
  Response chat(const std::string& body, std::vector<std::string> headers = {}) {
    return request("POST", url() + "/v1/chat/completions", body, std::move(headers));
  }
  void mock_reset() { request("POST", mock_url + "/mock/reset"); }
  // Every chat body the mock received since the last reset, as JSON text.
  std::string mock_log() { return request("GET", mock_url + "/mock/log").body; }
};

Env& env() {
  static Env e;
  return e;
}

const std::string kMsgs = R"("messages":[{"role":"user","content":"Which colour is the sky?"}])";

std::string body_with(const std::string& extra) { return R"({"model":"auto",)" + kMsgs + extra + "}"; }

// The ledger row of `request_id`, waiting (bounded) for rows written after the response
// ended (a cancelled stream's).
std::string ledger_row(const std::string& url, const std::string& request_id, int wait_ms = 0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto r = request("GET", url + "/v1/frugal/ledger?from=0&limit=10000");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    simdjson::dom::parser p;
    // A named array: iterating a temporary simdjson_result's value() dangles.
    const simdjson::dom::array rows_array = p.parse(r.body)["rows"].get_array().value();
    for (simdjson::dom::element row : rows_array) {
      std::string_view id;
      if (!row["id"].get_string().get(id) && id == request_id) return simdjson::minify(row);
    }
    if (std::chrono::steady_clock::now() >= deadline) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int64_t num(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  int64_t v = 0;
  auto err = p.parse(json).at_pointer(pointer).get_int64().get(v);
  REQUIRE_MESSAGE(!err, pointer << " in " << json);
  return v;
}

std::string str(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  std::string_view v;
  auto err = p.parse(json).at_pointer(pointer).get_string().get(v);
  REQUIRE_MESSAGE(!err, pointer << " in " << json);
  return std::string(v);
}

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}


// The request bodies in the mock's log that were sent for `model`.
std::vector<std::string> sent_to(const std::string& log, const std::string& model) {
  std::vector<std::string> out;
  simdjson::dom::parser p;
  // A named array: iterating a temporary simdjson_result's value() dangles.
  const simdjson::dom::array bs_array = p.parse(log).get_array().value();
  for (simdjson::dom::element b : bs_array) {
    std::string_view m;
    if (!b["model"].get_string().get(m) && m == model) out.push_back(simdjson::minify(b));
  }
  return out;
}

}  // namespace

TEST_CASE("request types are classified and named in the response headers") {
  auto& e = env();
  auto c = e.chat(body_with(""), {"x-frugal-request-type: classify"});
  CHECK(c.status == 200);
  CHECK(c.header("x-frugal-request-type") == "classify");
  CHECK(c.header("x-frugal-route") == "classify");

  auto d = e.chat(body_with(""));  // no matcher applies: the default type
  CHECK(d.status == 200);
  CHECK(d.header("x-frugal-request-type") == "chat");

  // A type without a route goes to the model it asked for, uncascaded.
  auto p = e.chat(R"({"model":"pinned-model",)" + kMsgs + "}");
  CHECK(p.status == 200);
  CHECK(p.header("x-frugal-request-type") == "pinned");
  CHECK(p.header("x-frugal-route") == "passthrough");
  CHECK(p.header("x-frugal-model") == "pinned-model");
  CHECK(p.header("x-frugal-tier") == "1");

  auto s = e.chat(body_with(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}})"));
  CHECK(s.header("x-frugal-request-type") == "extract");
}

TEST_CASE("a confident first tier answers, log-probs are asked upstream and removed from the answer") {
  auto& e = env();
  e.mock_reset();
  auto r = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-0.1,-0.2,-0.3]}}})"),
                  {"x-frugal-request-type: classify"});
  REQUIRE(r.status == 200);
  CHECK(r.header("x-frugal-tier") == "1");
  CHECK(r.header("x-frugal-model") == "tier-small");
  // small: 12 in × 0.10 = 1.2 → 1, 7 out × 0.40 = 2.8 → 3: 4 µ$. Baseline (tier-large):
  // 12 × 10 + 7 × 30 = 330 µ$.
  CHECK(r.header("x-frugal-cost-usd") == "0.000004");
  CHECK(r.header("x-frugal-savings-usd") == "0.000326");
  CHECK(r.header("x-frugal-cost-final") == "true");
  CHECK(r.body.find(R"("logprobs":null)") != std::string::npos);
  CHECK(r.body.find("\"top_logprobs\"") == std::string::npos);
  const auto to_small = sent_to(e.mock_log(), "tier-small");
  REQUIRE(to_small.size() == 1);
  CHECK(to_small[0].find(R"("logprobs":true)") != std::string::npos);
  CHECK(sent_to(e.mock_log(), "tier-mid").empty());

  // A client that asked for log-probs keeps them.
  auto k = e.chat(body_with(R"(,"logprobs":true,"mock":{"models":{"tier-small":{"logprobs":[-0.1,-0.2]}}})"),
                  {"x-frugal-request-type: classify"});
  CHECK(k.header("x-frugal-tier") == "1");
  CHECK(k.body.find(R"("logprob":-0.1)") != std::string::npos);
}

TEST_CASE("low log-probs escalate, tier by tier, the last tier always answers") {
  auto& e = env();
  e.mock_reset();
  const std::string rid = "esc-" + std::to_string(getpid());
  auto r = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-0.9,-0.8]},"tier-mid":{"logprobs":[-0.2,-0.3]}}})"),
                  {"x-frugal-request-type: classify", "x-request-id: " + rid});
  REQUIRE(r.status == 200);
  CHECK(r.header("x-frugal-tier") == "2");
  CHECK(r.header("x-frugal-model") == "tier-mid");
  // small 4 µ$ (rejected) + mid: 12 × 1 + 7 × 4 = 40 µ$ → 44; baseline 330.
  CHECK(r.header("x-frugal-cost-usd") == "0.000044");
  CHECK(r.header("x-frugal-savings-usd") == "0.000286");
  const std::string row = ledger_row(e.admin(), rid);
  REQUIRE(!row.empty());
  CHECK(str(row, "/tiers/0/status") == "rejected");
  CHECK(str(row, "/tiers/0/reason").find("mean_logprob -0.850 < -0.5") != std::string::npos);
  CHECK(str(row, "/tiers/1/status") == "accepted");
  CHECK(num(row, "/cost") == 44);
  CHECK(num(row, "/baseline") == 330);

  // Every cheap tier unsure: the last tier answers whatever it says.
  auto last = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-3]},"tier-mid":{"logprobs":[-2.5]},"tier-large":{"content":"Blue."}}})"),
                     {"x-frugal-request-type: classify"});
  REQUIRE(last.status == 200);
  CHECK(last.header("x-frugal-tier") == "3");
  CHECK(content_of(last) == "Blue.");
  CHECK(last.header("x-frugal-cost-usd") == "0.000374");  // 4 + 40 + 330

  // The last tier failing is the client's error (in OpenAI shape).
  auto fail = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-3]},"tier-mid":{"logprobs":[-2.5]},"tier-large":{"status":503}}})"),
                     {"x-frugal-request-type: classify"});
  CHECK(fail.status == 503);
  CHECK(fail.body.find(R"("error")") != std::string::npos);
}

TEST_CASE("an error in tier 1 escalates to tier 2") {
  auto& e = env();
  const std::string rid = "err-" + std::to_string(getpid());
  auto r = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"status":500},"tier-mid":{"logprobs":[-0.1]}}})"),
                  {"x-frugal-request-type: classify", "x-request-id: " + rid});
  REQUIRE(r.status == 200);
  CHECK(r.header("x-frugal-tier") == "2");
  const std::string row = ledger_row(e.admin(), rid);
  CHECK(str(row, "/tiers/0/status") == "error");
  CHECK(str(row, "/tiers/0/reason").find("status 500") != std::string::npos);
  CHECK(num(row, "/tiers/0/cost") == 0);  // an error reports no usage

  // A tier whose provider refuses connections: the same.
  auto f = e.chat(body_with(""), {"x-frugal-request-type: fast"});
  CHECK(f.status == 200);
  CHECK(f.header("x-frugal-tier") == "2");
  CHECK(f.header("x-frugal-model") == "tier-small");
}

TEST_CASE("a validator failure (json_schema) escalates") {
  auto& e = env();
  const std::string rf =
      R"(,"response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}})";
  auto bad = e.chat(body_with(rf + R"(,"mock":{"models":{"tier-small":{"content":"{\"town\":\"Paris\"}"},"tier-large":{"content":"{\"city\":\"Paris\"}"}}})"));
  REQUIRE(bad.status == 200);
  CHECK(bad.header("x-frugal-request-type") == "extract");
  CHECK(bad.header("x-frugal-tier") == "2");
  CHECK(content_of(bad) == R"({"city":"Paris"})");

  auto good = e.chat(body_with(rf + R"(,"mock":{"models":{"tier-small":{"content":"{\"city\":\"Lyon\"}"}}})"));
  CHECK(good.header("x-frugal-tier") == "1");
  CHECK(content_of(good) == R"({"city":"Lyon"})");
}

TEST_CASE("a verifier model is asked a yes/no question and its P(yes) decides") {
  auto& e = env();
  auto set_verifier = [&](const char* yes_lp, const char* no_lp) {
    const std::string script = std::string(R"({"verifier-mini":{"tokens":[{"t":"Yes","lp":)") + yes_lp +
                               R"(,"top":[["Yes",)" + yes_lp + R"(],["No",)" + no_lp + R"(]]}],"usage":{"prompt":50,"completion":1}}})";
    REQUIRE(request("POST", e.mock_url + "/mock/models", script).status == 200);
  };
  e.mock_reset();
  set_verifier("-0.05", "-3.0");  // P(yes) = e^-0.05 / (e^-0.05 + e^-3) ≈ 0.95
  const std::string rid = "ver-" + std::to_string(getpid());
  auto ok = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"content":"Blue, on a clear day."}}})"),
                   {"x-frugal-request-type: verify", "x-request-id: " + rid});
  REQUIRE(ok.status == 200);
  CHECK(ok.header("x-frugal-tier") == "1");
  const auto asked = sent_to(e.mock_log(), "verifier-mini");
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].find("Question: Which colour is the sky?") != std::string::npos);
  CHECK(asked[0].find("Answer: Blue, on a clear day.") != std::string::npos);
  CHECK(asked[0].find(R"("max_tokens":1)") != std::string::npos);
  CHECK(asked[0].find(R"("logprobs":true)") != std::string::npos);
  const std::string row = ledger_row(e.admin(), rid);
  CHECK(str(row, "/tiers/1/status") == "verifier");
  CHECK(str(row, "/tiers/1/model") == "verifier-mini");
  // The verifier's call costs: 50 × 0.20 = 10, 1 × 0.80 = 0.8: 10.8 µ$ exactly (booked
  // as 11 when each token class was rounded to the micro-dollar); small 4 µ$.
  CHECK(str(row, "/tiers/1/cost_usd") == "0.0000108");
  CHECK(str(row, "/cost_usd") == "0.0000148");
  CHECK(num(row, "/tiers/1/cost") == 11);  // the integer micro-dollar fields are rounded
  CHECK(num(row, "/cost") == 15);
  CHECK(ok.header("x-frugal-cost-usd") == "0.0000148");

  set_verifier("-3.0", "-0.05");  // P(yes) ≈ 0.05: rejected
  auto no = e.chat(body_with(""), {"x-frugal-request-type: verify"});
  CHECK(no.header("x-frugal-tier") == "2");
  REQUIRE(request("POST", e.mock_url + "/mock/models", "{}").status == 200);
}

TEST_CASE("a stream whose tier was buffered and accepted is replayed as a stream, log-probs removed") {
  auto& e = env();
  auto r = e.chat(body_with(R"(,"stream":true,"mock":{"models":{"tier-small":{"tokens":[{"t":"Bl","lp":-0.1},{"t":"ue","lp":-0.1}]}}})"),
                  {"x-frugal-request-type: classify"});
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/event-stream");
  CHECK(r.header("x-frugal-tier") == "1");
  CHECK(content_of(r) == "Blue");
  CHECK(r.body.find("data: [DONE]") != std::string::npos);
  CHECK(r.body.find(R"("logprob")") == std::string::npos);
  CHECK(r.body.find("\"usage\"") == std::string::npos);  // the client did not ask for usage
  // Known before the first byte: final figures in the headers, and the same as trailers.
  CHECK(r.header("x-frugal-cost-final") == "true");
  CHECK(r.header("x-frugal-cost-usd") == "0.000004");
  CHECK(r.last_header("x-frugal-cost-usd") == "0.000004");
}

TEST_CASE("a live last tier streams, its final cost arrives as HTTP trailers") {
  auto& e = env();
  auto r = e.chat(body_with(R"(,"stream":true,"stream_options":{"include_usage":true},"mock":{"models":{"tier-small":{"logprobs":[-3]},"tier-mid":{"logprobs":[-3]}}})"),
                  {"x-frugal-request-type: classify"});
  REQUIRE(r.status == 200);
  CHECK(r.curl_code == CURLE_OK);
  CHECK(r.header("x-frugal-tier") == "3");
  CHECK(r.header("x-frugal-cost-final") == "false");
  CHECK(r.header("x-frugal-cost-usd") == "0.000044");       // the rejected tiers, known then
  CHECK(r.last_header("x-frugal-cost-usd") == "0.000374");  // + tier-large's 330
  CHECK(r.last_header("x-frugal-savings-usd") == "-0.000044");
  CHECK(r.body.find(R"("usage":{"prompt_tokens":12)") != std::string::npos);
}

TEST_CASE("stream: first_tier streams the first tier as it arrives, unscored") {
  auto& e = env();
  e.mock_reset();
  int pieces_before_end = 0;
  bool done = false;
  auto r = request("POST", e.url() + "/v1/chat/completions",
                   body_with(R"(,"stream":true,"mock":{"models":{"tier-small":{"chunks":4,"chunk_delay_ms":150}}})"),
                   {"x-frugal-request-type: fast"}, [&](const std::string& piece) {
                     if (piece.find("[DONE]") != std::string::npos) done = true;
                     else ++pieces_before_end;
                     return true;
                   });
  CHECK(r.status == 200);
  CHECK(r.header("x-frugal-tier") == "2");  // tier 1 (broken) failed before any byte
  CHECK(done);
  CHECK(pieces_before_end >= 3);  // delivered as they came, not buffered
  const auto to_small = sent_to(e.mock_log(), "tier-small");
  REQUIRE(to_small.size() == 1);
  CHECK(to_small[0].find("logprobs") == std::string::npos);  // no scoring: nothing asked
}

TEST_CASE("an Anthropic client is classified, routed and scored the same way and answered in its own shape") {
  auto& e = env();
  // The mock reads a `mock:{...}` directive at the start of a message (translation drops
  // unknown body fields).
  auto body = [](const std::string& script, bool stream) {
    return R"({"model":"claude-ish","max_tokens":64,)" + std::string(stream ? R"("stream":true,)" : "") +
           R"("messages":[{"role":"user","content":"mock:)" + script + R"( Which colour is the sky?"}]})";
  };
  const std::vector<std::string> h = {"x-frugal-request-type: classify", "anthropic-version: 2023-06-01",
                                      "x-request-id: anth-1"};
  auto ok = request("POST", e.url() + "/v1/messages", body(R"({\"models\":{\"tier-small\":{\"logprobs\":[-0.1]}}})", false), h);
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  CHECK(ok.header("x-frugal-tier") == "1");
  CHECK(ok.header("x-frugal-cost-usd") == "0.000004");
  CHECK(ok.body.find(R"("type":"message")") != std::string::npos);
  CHECK(ok.body.find("logprob") == std::string::npos);
  CHECK(str(ledger_row(e.admin(), "anth-1"), "/dialect") == "anthropic");

  // Tier 1 unsure and tier 2 without log-probs (its rule cannot accept): tier 3 streams.
  auto esc = request("POST", e.url() + "/v1/messages", body(R"({\"models\":{\"tier-small\":{\"logprobs\":[-3]}}})", true),
                     {"x-frugal-request-type: classify", "anthropic-version: 2023-06-01"});
  REQUIRE(esc.status == 200);
  CHECK(esc.header("x-frugal-tier") == "3");
  CHECK(esc.body.find("event: message_stop") != std::string::npos);
  CHECK(esc.last_header("x-frugal-cost-usd") == "0.000374");  // 4 + 40 + 330
}

TEST_CASE("key ids and teams: a hash of the key, never the key, a configured team wins over the header") {
  auto& e = env();
  const std::string id = key_id("sk-team-key");
  CHECK(id.size() == 17);
  CHECK(id[0] == 'k');
  CHECK(key_id("sk-team-key") == id);  // stable
  CHECK(key_id("sk-other-key") != id);
  auto r = e.chat(body_with(""), {"Authorization: Bearer sk-team-key", "x-frugal-team: claimed", "x-request-id: team-1"});
  REQUIRE(r.status == 200);
  const std::string row = ledger_row(e.admin(), "team-1");
  CHECK(str(row, "/key") == id);
  CHECK(str(row, "/team") == "mapped-team");
  CHECK(row.find("sk-team-key") == std::string::npos);
  auto h = e.chat(body_with(""), {"Authorization: Bearer sk-unlisted", "x-frugal-team: claimed", "x-request-id: team-2"});
  CHECK(str(ledger_row(e.admin(), "team-2"), "/team") == "claimed");
}

TEST_CASE("frugal config check validates the policy the config names") {
  auto& e = env();
  const std::string ok = run_output(std::string(FRUGAL_BIN) + " config check " + (e.dir / "frugal.yaml").string() + " 2>&1");
  CHECK(ok.find("valid") != std::string::npos);
  CHECK(ok.find("7 request types, 6 routes") != std::string::npos);
  // A policy whose tier model the gateway cannot serve (only `broken`'s provider is
  // named under models; make the passthrough narrower in a copy of the config).
  std::string cfg = config_text(e.dir, e.mock_url, "check-data", true);
  cfg.replace(cfg.find(R"(prefix: "")"), 10, R"(prefix: "gpt-")");
  write_file(e.dir / "narrow.yaml", cfg);
  const std::string bad = run_output(std::string(FRUGAL_BIN) + " config check " + (e.dir / "narrow.yaml").string() + " 2>&1; echo rc=$?");
  CHECK(bad.find("policy.yaml:19:9: key 'routes.classify.cascade[0]': tier model 'tier-small' is not served by this gateway") !=
        std::string::npos);
  CHECK(bad.find("rc=1") != std::string::npos);
}

TEST_CASE("budgets: a soft limit warns and counts, a hard limit answers 429 in OpenAI shape") {
  auto& e = env();
  // Each request: 1000 in × 0.10 + 100 out × 0.40 = 140 µ$ on tier-small.
  const std::string body = body_with(R"(,"mock":{"usage":{"prompt":1000,"completion":100}})");
  auto soft_count = [&] {
    auto b = request("GET", e.admin() + "/v1/frugal/budgets");
    REQUIRE(b.status == 200);
    return num(b.body, "/soft_exceeded_total");
  };
  const int64_t soft_before = soft_count();
  auto s1 = e.chat(body, {"x-frugal-team: soft-team"});
  CHECK(s1.status == 200);
  CHECK(s1.header("x-frugal-request-type") == "metered");
  CHECK(s1.header("x-frugal-budget-warning").empty());
  auto s2 = e.chat(body, {"x-frugal-team: soft-team"});  // 140 ≥ 100 spent: over the soft limit
  CHECK(s2.status == 200);
  CHECK(s2.header("x-frugal-budget-warning").find("over its soft limit") != std::string::npos);
  CHECK(soft_count() == soft_before + 1);

  CHECK(e.chat(body, {"x-frugal-team: hard-team"}).status == 200);  // 0 spent
  CHECK(e.chat(body, {"x-frugal-team: hard-team"}).status == 200);  // 140 < 150
  auto denied = e.chat(body, {"x-frugal-team: hard-team"});         // 280 ≥ 150
  CHECK(denied.status == 429);
  simdjson::dom::parser p;
  simdjson::dom::element err = p.parse(denied.body)["error"].value();
  CHECK(std::string_view(err["type"].get_string().value()) == "rate_limit_error");
  CHECK(std::string_view(err["code"].get_string().value()) == "budget_exceeded");
  const std::string msg(err["message"].get_string().value());
  CHECK(msg.find("team=hard-team per day") != std::string::npos);
  CHECK(msg.find("spent $0.000280 of $0.000150 hard limit") != std::string::npos);
  CHECK(!denied.header("retry-after").empty());
  // Other teams are unaffected.
  CHECK(e.chat(body, {"x-frugal-team: soft-team"}).status == 200);
}

TEST_CASE("ledger totals equal hand computation exactly: rejected tiers, cached input, a cancelled stream, a cache hit") {
  auto& e = env();
  const std::vector<std::string> team = {"x-frugal-team: exact-team"};
  auto with = [&](std::vector<std::string> h, const std::string& extra) {
    h.insert(h.end(), team.begin(), team.end());
    h.push_back("x-frugal-request-type: " + extra);
    return h;
  };
  // R1: small rejected (mean -2), mid accepted.
  //   small: (1000−400) × 0.10 = 60, 400 cached × 0.05 = 20, 50 × 0.40 = 20 → 100
  //   mid:   1000 × 1.00 = 1000, 40 × 4.00 = 160 → 1160;   total 1260
  //   baseline (tier-large on mid's tokens, all input uncached): 1000 × 10 + 40 × 30 = 11200
  auto r1 = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-2,-2],"usage":{"prompt":1000,"cached":400,"completion":50}},"tier-mid":{"logprobs":[-0.1,-0.2],"usage":{"prompt":1000,"completion":40}}}})"),
                   with({"x-request-id: exact-1"}, "classify"));
  REQUIRE(r1.status == 200);
  CHECK(r1.header("x-frugal-cost-usd") == "0.001260");
  CHECK(r1.header("x-frugal-savings-usd") == "0.009940");
  // R2: small accepted. (2000−1000) × 0.10 = 100, 1000 × 0.05 = 50, 10 × 0.40 = 4 → 154;
  //   baseline 2000 × 10 + 10 × 30 = 20300.
  auto r2 = e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-0.1],"usage":{"prompt":2000,"cached":1000,"completion":10}}}})"),
                   with({"x-request-id: exact-2"}, "classify"));
  REQUIRE(r2.status == 200);
  CHECK(r2.header("x-frugal-cost-usd") == "0.000154");
  // R3: a stream the client cancels during the live last tier. small: 100 × 0.10 +
  //   5 × 0.40 = 12; mid: 100 × 1 + 5 × 4 = 120; large sent no usage before the hang-up
  //   → 0. Total 132, baseline 0 (no usage of the answer), savings −132.
  int pieces = 0;
  auto r3 = request("POST", e.url() + "/v1/chat/completions",
                    body_with(R"(,"stream":true,"mock":{"models":{"tier-small":{"logprobs":[-3],"usage":{"prompt":100,"completion":5}},"tier-mid":{"logprobs":[-5],"usage":{"prompt":100,"completion":5}},"tier-large":{"chunks":40,"chunk_delay_ms":50}}})"),
                    with({"x-request-id: exact-3"}, "classify"), [&](const std::string&) { return ++pieces < 2; });
  CHECK(r3.curl_code != CURLE_OK);  // we hung up
  // R4 + R5: the same deterministic request twice; the second is a cache hit.
  //   R4 small: 500 × 0.10 + 20 × 0.40 = 58; baseline 500 × 10 + 20 × 30 = 5600.
  //   R5 hit: cost 0, baseline 5600 (what tier-large would have charged for the answer).
  const std::string cached = R"({"model":"auto","temperature":0,"messages":[{"role":"user","content":"exact cache"}],"mock":{"models":{"tier-small":{"usage":{"prompt":500,"completion":20}}}}})";
  auto r4 = e.chat(cached, {"x-request-id: exact-4", team[0]});
  REQUIRE(r4.status == 200);
  CHECK(r4.header("x-frugal-cache") == "miss");
  auto r5 = e.chat(cached, {"x-request-id: exact-5", team[0]});
  REQUIRE(r5.status == 200);
  CHECK(r5.header("x-frugal-cache") == "hit");
  CHECK(r5.header("x-frugal-cost-usd") == "0.000000");
  CHECK(r5.header("x-frugal-savings-usd") == "0.005600");
  CHECK(content_of(r5) == content_of(r4));

  const std::string row3 = ledger_row(e.admin(), "exact-3", 5000);
  REQUIRE_MESSAGE(!row3.empty(), "the cancelled stream's row");
  CHECK(row3.find(R"("cancelled":true)") != std::string::npos);
  CHECK(num(row3, "/cost") == 132);
  CHECK(str(row3, "/tiers/2/model") == "tier-large");
  const std::string row5 = ledger_row(e.admin(), "exact-5");
  CHECK(str(row5, "/cache") == "hit");
  CHECK(num(row5, "/baseline") == 5600);
  CHECK(row5.find(R"("tiers":[])") != std::string::npos);

  // The rollups, grouped by team, add up to the same hand totals.
  auto costs = request("GET", e.admin() + "/v1/frugal/costs?group_by=team");
  REQUIRE(costs.status == 200);
  simdjson::dom::parser p;
  bool found = false;
  // A named array: iterating a temporary simdjson_result's value() dangles.
  const simdjson::dom::array rows_array = p.parse(costs.body)["rows"].get_array().value();
  for (simdjson::dom::element row : rows_array) {
    if (std::string_view(row["team"].get_string().value()) != "exact-team") continue;
    found = true;
    const std::string j = simdjson::minify(row);
    CHECK(num(j, "/requests") == 5);
    CHECK(num(j, "/attempts") == 7);     // 2 + 1 + 3 + 1 + 0
    CHECK(num(j, "/rejected") == 3);     // R1 small, R3 small and mid
    CHECK(num(j, "/accepted") == 4);     // R1 mid, R2, R3 large (cut short), R4
    CHECK(num(j, "/cache_hits") == 1);
    CHECK(num(j, "/input_tokens") == 4700);  // 2000 + 2000 + 200 + 500
    CHECK(num(j, "/cached_input_tokens") == 1400);
    CHECK(num(j, "/output_tokens") == 130);  // 90 + 10 + 10 + 20
    CHECK(num(j, "/cost_micros") == 1604);   // 1260 + 154 + 132 + 58 + 0
    CHECK(num(j, "/baseline_micros") == 42700);  // 11200 + 20300 + 0 + 5600 + 5600
    CHECK(num(j, "/savings_micros") == 41096);
  }
  CHECK(found);
}

TEST_CASE("GET /v1/frugal/costs groups by request type, model and key, bad parameters are 400s") {
  auto& e = env();
  for (const char* key : {"sk-alpha", "sk-beta", "sk-beta"})
    REQUIRE(e.chat(body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-0.1]}}})"),
                   {"x-frugal-request-type: classify", std::string("Authorization: Bearer ") + key,
                    "x-frugal-team: keys-team"})
                .status == 200);
  auto r = request("GET", e.admin() + "/v1/frugal/costs?from=-1h&to=now&group_by=request_type,model,key");
  REQUIRE(r.status == 200);
  simdjson::dom::parser p;
  auto doc = p.parse(r.body).value();
  CHECK(std::string(simdjson::minify(doc["group_by"])) == R"(["request_type","model","key"])");
  std::map<std::string, int64_t> classify_small_by_key;
  // A named array: iterating a temporary simdjson_result's value() dangles.
  const simdjson::dom::array rows_array = doc["rows"].get_array().value();
  for (simdjson::dom::element row : rows_array) {
    if (std::string_view(row["request_type"].get_string().value()) == "classify" &&
        std::string_view(row["model"].get_string().value()) == "tier-small")
      classify_small_by_key[std::string(row["key"].get_string().value())] += row["requests"].get_int64().value();
  }
  // Two distinct key ids (hashes, never the keys), 1 and 2 requests.
  std::multiset<int64_t> counts;
  for (const auto& [k, n] : classify_small_by_key)
    if (!k.empty()) counts.insert(n);
  CHECK(counts.count(1) >= 1);
  CHECK(counts.count(2) >= 1);
  CHECK(r.body.find("sk-alpha") == std::string::npos);

  auto table = request("GET", e.admin() + "/v1/frugal/costs?group_by=model&format=table");
  CHECK(table.status == 200);
  CHECK(table.body.find("tier-small") != std::string::npos);
  CHECK(table.body.find("TOTAL") != std::string::npos);

  auto bad = request("GET", e.admin() + "/v1/frugal/costs?group_by=colour");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("unknown group_by 'colour'") != std::string::npos);
  auto bad_time = request("GET", e.admin() + "/v1/frugal/costs?from=yesterday");
  CHECK(bad_time.status == 400);
  CHECK(bad_time.body.find(R"("param":"from")") != std::string::npos);
}

TEST_CASE("frugal costs prints the table from a running gateway and from its data directory") {
  auto& e = env();
  const auto out = e.dir / "costs.txt";
  const std::string cmd = std::string(FRUGAL_BIN) + " costs --url " + e.admin() + " --group-by request_type > " +
                          out.string() + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::stringstream ss;
  ss << std::ifstream(out).rdbuf();
  CHECK(ss.str().find("request_type") != std::string::npos);
  CHECK(ss.str().find("classify") != std::string::npos);
  CHECK(ss.str().find("TOTAL") != std::string::npos);

  // Read-only open of the directory the running gateway owns.
  const std::string cmd2 = std::string(FRUGAL_BIN) + " costs --data-dir " + (e.dir / "data").string() +
                           " --group-by request_type --json > " + out.string() + " 2>&1";
  REQUIRE(std::system(cmd2.c_str()) == 0);
  std::stringstream ss2;
  ss2 << std::ifstream(out).rdbuf();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  REQUIRE_MESSAGE(!p.parse(ss2.str()).get(doc), ss2.str());
  CHECK(doc["totals"]["requests"].get_int64().value() > 0);
}

TEST_CASE("reload: POST /admin/reload, a file change and SIGHUP swap the policy, an invalid one is rejected") {
  auto& e = env();
  const std::string body = body_with(R"(,"mock":{"models":{"tier-small":{"logprobs":[-0.1]}}})");
  auto type_now = [&] { return e.chat(body, {"x-frugal-request-type: classify"}).header("x-frugal-request-type"); };
  REQUIRE(type_now() == "classify");

  write_file(e.dir / "policy.yaml", policy_text("triage"));
  auto ok = request("POST", e.admin() + "/admin/reload");
  CHECK(ok.status == 200);
  CHECK(ok.body.find(R"("status":"reloaded")") != std::string::npos);
  CHECK(ok.body.find(R"("triage")") != std::string::npos);
  CHECK(type_now() == "triage");

  // Invalid: a tier model without a price. 400 naming file, line, column, key; the
  // previous policy keeps serving.
  std::string broken = policy_text("classify");
  broken.replace(broken.find("      - model: tier-mid"), 23, "      - model: tier-nope");
  write_file(e.dir / "policy.yaml", broken);
  auto bad = request("POST", e.admin() + "/admin/reload");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("policy.yaml:21:9: key 'routes.classify.cascade[1]'") != std::string::npos);
  CHECK(bad.body.find("unknown model 'tier-nope'") != std::string::npos);
  CHECK(bad.body.find(R"("param":"routes.classify.cascade[1]")") != std::string::npos);
  CHECK(bad.body.find(R"("code":"invalid_config")") != std::string::npos);
  CHECK(type_now() == "triage");
  // A YAML syntax error too.
  write_file(e.dir / "policy.yaml", "request_types: [ {name: x\n");
  CHECK(request("POST", e.admin() + "/admin/reload").status == 400);
  CHECK(type_now() == "triage");

  // The file watcher picks up a valid change by itself.
  write_file(e.dir / "policy.yaml", policy_text("classify"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (type_now() != "classify" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_MESSAGE(type_now() == "classify", e.gw.proc->output());

  // SIGHUP. (The watcher could also see this change; either way the type must flip.)
  write_file(e.dir / "policy.yaml", policy_text("triage"));
  kill(e.gw.proc->pid(), SIGHUP);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (type_now() != "triage" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(type_now() == "triage");
  write_file(e.dir / "policy.yaml", policy_text("classify"));
  REQUIRE(request("POST", e.admin() + "/admin/reload").status == 200);
}

TEST_CASE("50 reloads under load (two valid policies and invalid ones) fail no request") {
  auto& e = env();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::set<std::string> types_seen;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const bool stream = (i + t) % 2 == 0;
        // Tier 1 rejected half of the time: both the buffered and the live path run.
        const char* lp = i % 2 ? "-0.1" : "-3";
        auto r = request("POST", e.url() + "/v1/chat/completions",
                         body_with(std::string(stream ? R"(,"stream":true)" : "") +
                                   R"(,"mock":{"models":{"tier-small":{"logprobs":[)" + lp + "]}}}"),
                         {"x-frugal-request-type: classify"});
        const bool good = r.status == 200 && r.curl_code == CURLE_OK &&
                          (!stream || r.body.find("data: [DONE]") != std::string::npos) &&
                          content_of(r) == "Hello from the mock upstream.";
        std::lock_guard lock(mu);
        types_seen.insert(r.header("x-frugal-request-type"));
        if (good) ++ok;
        else {
          ++failed;
          failures.push_back(std::to_string(r.status) + " " + r.body.substr(0, 200));
        }
      }
    });
  }
  int reloads_ok = 0, reloads_rejected = 0;
  for (int i = 0; i < 50; ++i) {
    const bool invalid = i % 5 == 4;
    write_file(e.dir / "policy.yaml", invalid ? std::string("routes: [") : policy_text(i % 2 ? "triage" : "classify"));
    auto r = request("POST", e.admin() + "/admin/reload");
    if (invalid) {
      CHECK(r.status == 400);
      ++reloads_rejected;
    } else {
      CHECK_MESSAGE(r.status == 200, r.body);
      ++reloads_ok;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  write_file(e.dir / "policy.yaml", policy_text("classify"));
  REQUIRE(request("POST", e.admin() + "/admin/reload").status == 200);
  stop = true;
  for (auto& c : clients) c.join();
  MESSAGE(ok.load() << " requests during " << reloads_ok << " good and " << reloads_rejected << " rejected reloads");
  CHECK(failed.load() == 0);
  for (const auto& f : failures) MESSAGE("failed: " << f);
  CHECK(ok.load() >= 50);
  CHECK(reloads_ok == 40);
  CHECK(types_seen.count("classify") == 1);
  CHECK(types_seen.count("triage") == 1);
  CHECK(types_seen.size() == 2);
}

TEST_CASE("kill -9 under load: after a restart every request that received a complete 200 has its ledger row") {
  auto& e = env();
  // A second gateway without a policy: today's behaviour, and a row per request with
  // request type "default". Its ledger writer is slowed to 20 ms per batch, so a
  // response that completed before its row was written would lose that row here (with
  // the durability wait removed, this test fails).
  const auto cfg = e.dir / "crash.yaml";
  write_file(cfg, config_text(e.dir, e.mock_url, "crash-data", false));
  Gateway g;
  g.start(cfg, {"FRUGAL_TEST_LEDGER_WRITE_DELAY_MS=20"});
  std::atomic<bool> stop{false}, killed{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> sent{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string id = "crash-" + std::to_string(t) + "-" + std::to_string(i);
        const bool stream = i % 2 == 0;
        if (!killed) ++sent;
        auto r = request("POST", g.url + "/v1/chat/completions",
                         R"({"model":"gpt-4o-mini",)" + kMsgs + (stream ? R"(,"stream":true)" : "") + "}",
                         {"x-request-id: " + id}, nullptr, 2000);
        if (r.status == 200 && r.curl_code == CURLE_OK &&
            (!stream || r.body.find("data: [DONE]") != std::string::npos)) {
          std::lock_guard lock(mu);
          acknowledged.push_back(id);
        }
      }
    });
  }
  for (int i = 0; i < 400; ++i) {
    {
      std::lock_guard lock(mu);
      if (acknowledged.size() >= 200) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(g.proc->stop(SIGKILL) == -SIGKILL);
  killed = true;
  stop = true;
  for (auto& c : clients) c.join();
  g.start(cfg);  // no delay now
  auto rows = request("GET", g.admin_url + "/v1/frugal/ledger?from=0&limit=10000");
  REQUIRE(rows.status == 200);
  simdjson::dom::parser p;
  std::set<std::string> ids;
  // A named array: iterating a temporary simdjson_result's value() dangles.
  const simdjson::dom::array rows_array = p.parse(rows.body)["rows"].get_array().value();
  for (simdjson::dom::element row : rows_array) {
    ids.insert(std::string(row["id"].get_string().value()));
    CHECK(std::string_view(row["type"].get_string().value()) == "default");
    CHECK(std::string_view(row["route"].get_string().value()) == "passthrough");
  }
  size_t missing = 0;
  for (const auto& id : acknowledged)
    if (!ids.count(id)) {
      ++missing;
      MESSAGE("no ledger row for acknowledged request " << id);
    }
  MESSAGE(acknowledged.size() << " of " << sent.load() << " requests sent before the kill acknowledged; " << ids.size()
                              << " rows after the restart");
  CHECK(acknowledged.size() >= 100);
  CHECK(missing == 0);
}
