// Identity and limits through the `frugal` binary, over loopback, against the C++ mock
// upstream (docs/security.md): virtual keys in both API shapes, the admin listener and
// its checks, browser origins and content types, rpm under 64 parallel clients, a hard
// budget under concurrent requests, concurrent streams, and the start-up refusal of an
// exposed listener without keys.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::run_output;
using frugal::test::Response;

namespace {

std::string str(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(json).get(doc)) return "<not json: " + json + ">";
  std::string_view s;
  if (doc.at_pointer(pointer).get_string().get(s)) return "<missing " + std::string(pointer) + ">";
  return std::string(s);
}

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Model `m`: $1 per 1M input and output tokens (1 µ$ a token).
constexpr const char* kPolicy = R"(request_types:
  - name: chat
routes:
  chat:
    reference_model: m
    cascade:
      - model: m
prices:
  m: { input: 1.00, output: 1.00 }
)";

// A gateway over the mock, with keys created by the CLI in its data directory first.
struct Gateway {
  TempDir dir;
  std::unique_ptr<Child> mock;
  std::unique_ptr<Child> gw;
  std::string url, admin;

  explicit Gateway(const std::string& name, const std::string& extra_config = "") : dir(name) {
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN, "--threads", "2"});
    const std::string mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
    std::ofstream(dir.path / "policy.yaml") << kPolicy;
    std::ofstream(dir.path / "frugal.yaml") << "data_dir: " << (dir.path / "data").string() << R"(
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: )" << mock_url << R"(/v1
    retry: { max_attempts: 1 }
passthrough:
  - { prefix: "", provider: mock }
)" << extra_config;
  }
  // `frugal keys create ARGS --data-dir`: the printed key.
  std::string create_key(const std::string& args) {
    int status = 0;
    const std::string out = run_output(std::string(FRUGAL_BIN) + " keys create " + args + " --data-dir " +
                                           (dir.path / "data").string() + " 2>&1",
                                       status);
    REQUIRE_MESSAGE(status == 0, out);
    return str(out, "/key");
  }
  void start() {
    gw = std::make_unique<Child>(
        std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir.path / "frugal.yaml").string()});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
    admin = "http://127.0.0.1:" + gw->wait_for("admin API .* on 127\\.0\\.0\\.1:(\\d+)");
  }
};

std::string chat_body(const std::string& mock = R"({"content":"ok","usage":{"prompt":10,"completion":20}})",
                      const std::string& extra = "") {
  return R"({"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":100,"mock":)" + mock +
         extra + "}";
}

Response chat(const Gateway& g, const std::string& key, const std::string& body = chat_body(),
              std::vector<std::string> headers = {}) {
  if (!key.empty()) headers.push_back("Authorization: Bearer " + key);
  return request("POST", g.url + "/v1/chat/completions", body, headers);
}

int64_t usd_micros(const std::string& s) { return std::llround(std::stod(s.empty() ? "0" : s) * 1e6); }

}  // namespace

TEST_CASE("identity: virtual keys gate both API shapes, the team comes from the key, its name reaches the ledger") {
  Gateway g("frugal-identity-keys");
  const std::string key = g.create_key("--name ci-bot --team search --models m,gpt-*");
  REQUIRE(key.rfind("fk-", 0) == 0);
  g.start();

  // OpenAI shape: missing, wrong.
  auto missing = chat(g, "");
  CHECK(missing.status == 401);
  CHECK(str(missing.body, "/error/type") == "authentication_error");
  CHECK(str(missing.body, "/error/code") == "missing_api_key");
  auto wrong = chat(g, key + "x");
  CHECK(wrong.status == 401);
  CHECK(str(wrong.body, "/error/code") == "invalid_api_key");
  CHECK(wrong.body.find(key) == std::string::npos);
  // Anthropic shape, x-api-key.
  const std::string msg = R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})";
  auto anth = request("POST", g.url + "/v1/messages", msg, {"x-api-key: nope", "anthropic-version: 2023-06-01"});
  CHECK(anth.status == 401);
  CHECK(str(anth.body, "/type") == "error");
  CHECK(str(anth.body, "/error/type") == "authentication_error");
  CHECK(request("GET", g.url + "/v1/models").status == 401);
  CHECK(request("GET", g.url + "/v1/models", "", {"Authorization: Bearer " + key}).status == 200);
  CHECK(request("GET", g.url + "/healthz").status == 200);  // health checks stay open

  // A valid key; a team claimed by header is ignored.
  auto ok = chat(g, key, chat_body(), {"x-frugal-team: finance", "x-request-id: keyed-1"});
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  auto anth_ok = request("POST", g.url + "/v1/messages", msg, {"x-api-key: " + key, "anthropic-version: 2023-06-01"});
  CHECK(anth_ok.status == 200);
  // A model the key may not use.
  auto other = chat(g, key, R"({"model":"other","messages":[{"role":"user","content":"x"}]})");
  CHECK(other.status == 403);
  CHECK(str(other.body, "/error/code") == "model_not_allowed");

  auto rows = request("GET", g.admin + "/v1/frugal/ledger?from=0&limit=100");
  REQUIRE(rows.status == 200);
  const size_t at = rows.body.find("keyed-1");
  REQUIRE(at != std::string::npos);
  const size_t row_start = rows.body.rfind('{', at);
  const std::string row = rows.body.substr(row_start, rows.body.find('}', at) - row_start + 1);
  CHECK(row.find(R"("key":"ci-bot")") != std::string::npos);
  CHECK(row.find(R"("team":"search")") != std::string::npos);
  CHECK(rows.body.find(key) == std::string::npos);
  CHECK(g.gw->output().find(key) == std::string::npos);  // nor in the log
}

TEST_CASE("identity: revoke and rotate through the admin API apply to the very next request") {
  Gateway g("frugal-identity-revoke");
  const std::string key = g.create_key("--name app");
  g.start();
  REQUIRE(chat(g, key).status == 200);
  int status = 0;
  const std::string cli = std::string(FRUGAL_BIN) + " keys ";
  const std::string rotated_out = run_output(cli + "rotate --name app --url " + g.admin + " 2>&1", status);
  REQUIRE_MESSAGE(status == 0, rotated_out);
  const std::string rotated = str(rotated_out, "/key");
  CHECK(chat(g, key).status == 401);
  CHECK(chat(g, rotated).status == 200);
  // A new key through the admin API, then revoked.
  auto created = request("POST", g.admin + "/admin/keys", R"({"name":"tmp","rpm":100})");
  REQUIRE(created.status == 201);
  const std::string tmp = str(created.body, "/key");
  CHECK(chat(g, tmp).status == 200);
  const std::string revoked = run_output(cli + "revoke --name tmp --url " + g.admin + " 2>&1", status);
  REQUIRE_MESSAGE(status == 0, revoked);
  auto refused = chat(g, tmp);
  CHECK(refused.status == 401);
  CHECK(str(refused.body, "/error/code") == "revoked_api_key");
  const std::string listed = run_output(cli + "list --url " + g.admin, status);
  CHECK(listed.find(R"("state":"revoked")") != std::string::npos);
  CHECK(listed.find(tmp) == std::string::npos);
  CHECK(listed.find("\"hash\"") == std::string::npos);
  // The data directory is locked by the gateway: --data-dir says so.
  const std::string locked = run_output(cli + "list --data-dir " + (g.dir.path / "data").string() + " 2>&1", status);
  CHECK(status != 0);
  CHECK(locked.find("--url") != std::string::npos);
}

TEST_CASE("identity: the admin plane has its own listener, Host and token checks, browsers are refused") {
  Gateway g("frugal-identity-admin", R"(admin:
  token: admin-secret
cors:
  allowed_origins: ["https://app.example.com"]
)");
  g.start();
  const std::string auth = "Authorization: Bearer admin-secret";
  // Not on the API listener.
  auto on_api = request("GET", g.url + "/admin/cache", "", {auth});
  CHECK(on_api.status == 404);
  CHECK(str(on_api.body, "/error/code") == "admin_on_admin_listener");
  CHECK(request("GET", g.url + "/v1/frugal/budgets", "", {auth}).status == 404);
  CHECK(request("POST", g.url + "/admin/reload", "", {auth}).status == 404);
  // On the admin listener: the token, compared whole.
  CHECK(request("GET", g.admin + "/admin/cache").status == 403);
  CHECK(request("GET", g.admin + "/admin/cache", "", {"Authorization: Bearer admin-secre"}).status == 403);
  CHECK(request("GET", g.admin + "/admin/cache", "", {auth}).status == 200);
  CHECK(request("GET", g.admin + "/v1/frugal/budgets", "", {auth}).status == 200);
  // DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1.
  auto rebound = request("GET", g.admin + "/admin/cache", "", {auth, "Host: evil.example:" + g.admin.substr(17)});
  CHECK(rebound.status == 403);
  CHECK(str(rebound.body, "/error/code") == "host_not_allowed");
  CHECK(request("GET", g.admin + "/admin/cache", "", {auth, "Host: localhost:" + g.admin.substr(17)}).status == 200);
  // The model API is not served there.
  CHECK(request("POST", g.admin + "/v1/chat/completions", chat_body()).status == 404);

  // Browsers: a foreign Origin is refused on every path, both listeners.
  auto foreign = request("POST", g.url + "/v1/chat/completions", chat_body(), {"Origin: https://evil.example"});
  CHECK(foreign.status == 403);
  CHECK(str(foreign.body, "/error/code") == "origin_not_allowed");
  CHECK(request("POST", g.admin + "/admin/reload", "", {auth, "Origin: https://evil.example"}).status == 403);
  CHECK(request("GET", g.url + "/healthz", "", {"Origin: http://localhost:1234"}).status == 403);
  // An allowed origin: preflight, then the call with its CORS headers.
  auto pre = request("OPTIONS", g.url + "/v1/chat/completions", "",
                     {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                      "Access-Control-Request-Headers: authorization, content-type"});
  CHECK(pre.status == 204);
  CHECK(pre.header("access-control-allow-origin") == "https://app.example.com");
  CHECK(pre.header("access-control-allow-headers") == "authorization, content-type");
  CHECK(request("OPTIONS", g.url + "/v1/chat/completions", "", {"Origin: https://evil.example"}).status == 403);
  auto allowed = request("POST", g.url + "/v1/chat/completions", chat_body(), {"Origin: https://app.example.com"});
  CHECK(allowed.status == 200);
  CHECK(allowed.header("access-control-allow-origin") == "https://app.example.com");
  // Bodies must be JSON (a form post needs no preflight): 415 in the API's shape.
  auto form = request("POST", g.url + "/v1/chat/completions", chat_body(), {"Content-Type: text/plain"});
  CHECK(form.status == 415);
  CHECK(str(form.body, "/error/code") == "unsupported_media_type");
  auto anth_form = request("POST", g.url + "/v1/messages", "{}", {"Content-Type: application/x-www-form-urlencoded"});
  CHECK(anth_form.status == 415);
  CHECK(str(anth_form.body, "/type") == "error");
  CHECK(request("POST", g.url + "/v1/chat/completions", chat_body(), {"Content-Type: application/json; charset=utf-8"})
            .status == 200);
}

TEST_CASE("identity: 64 parallel clients against a 60 rpm key are admitted 60 times plus the refill") {
  Gateway g("frugal-identity-rpm");
  const std::string key = g.create_key("--name rpm60 --rpm 60");
  g.start();
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::atomic<bool> retry_after_ok{true};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i)
    clients.emplace_back([&] {
      const Response r = chat(g, key);
      if (r.status == 200) {
        ++ok;
      } else if (r.status == 429) {
        ++limited;
        if (r.header("retry-after").empty() || str(r.body, "/error/code") != "rate_limit_exceeded")
          retry_after_ok = false;
      } else {
        ++other;
      }
    });
  for (auto& c : clients) c.join();
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The bucket starts with 60 and refills one per second: at most 60 + elapsed seconds
  // (rounded up) in the burst, never fewer than 60.
  const int bound = 60 + static_cast<int>(std::ceil(elapsed_s));
  MESSAGE("admitted " << ok.load() << " of 64 in " << elapsed_s << " s (bound " << bound << ")");
  CHECK(other == 0);
  CHECK(ok >= 60);
  CHECK(ok <= std::min(64, bound));
  CHECK(ok + limited == 64);
  CHECK(retry_after_ok);
  // Drain what refilled meanwhile, then the Anthropic shape of the refusal.
  while (chat(g, key).status == 200) {
  }
  auto anth = request("POST", g.url + "/v1/messages", R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
                      {"x-api-key: " + key, "anthropic-version: 2023-06-01"});
  CHECK(anth.status == 429);
  CHECK(str(anth.body, "/error/type") == "rate_limit_error");
  CHECK(!anth.header("retry-after").empty());
}

TEST_CASE("identity: concurrent requests cannot overshoot a hard key budget by more than one estimate") {
  Gateway g("frugal-identity-budget");
  // $0.001 a day. Each request costs 10 + 100 = 110 µ$; its estimate is its body / 4
  // tokens of input plus max_tokens (100) of output at 1 µ$ a token, ≥ 110 µ$.
  const std::string key = g.create_key("--name small --budget 0.001/day");
  g.start();
  const std::string body = chat_body(R"({"content":"ok","ttft_ms":300,"usage":{"prompt":10,"completion":100}})");
  const int64_t estimate = static_cast<int64_t>((body.size() + 3) / 4) + 100;
  REQUIRE(estimate >= 110);
  std::atomic<int> ok{0}, denied{0}, other{0};
  std::atomic<int64_t> spent{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i)
    clients.emplace_back([&] {
      const Response r = chat(g, key, body);
      if (r.status == 200) {
        ++ok;
        spent += usd_micros(r.header("x-frugal-cost-usd"));
      } else if (r.status == 429 && str(r.body, "/error/code") == "budget_exceeded") {
        ++denied;
      } else {
        ++other;
      }
    });
  for (auto& c : clients) c.join();
  MESSAGE(ok.load() << " admitted, spent " << spent.load() << " µ$ of 1000 (estimate " << estimate << " µ$)");
  CHECK(other == 0);
  CHECK(ok >= 1);
  CHECK(spent == 110 * ok.load());
  // The bound: spend < hard + one estimate. Without reservations all 32 would have
  // passed a check against $0 (3520 µ$).
  CHECK(spent < 1000 + estimate);
  CHECK(denied >= 32 - (1000 + estimate) / 110);
  // Settled, and kept over a restart (restored from the ledger's rollups): requests
  // are admitted only while the real spend is under $0.001.
  g.gw->stop(SIGTERM);
  g.start();
  int after = 0;
  while (after < 20 && chat(g, key, body).status == 200) ++after;
  CHECK(after == (1000 - spent.load() + 109) / 110);  // ceil((1000 - spent) / 110)
}

TEST_CASE("identity: a key's concurrent streams are limited, and released when a stream ends") {
  Gateway g("frugal-identity-streams");
  const std::string key = g.create_key("--name streamer --max-streams 1");
  g.start();
  // Three slow streams at once (each held 1 s upstream): one holds the slot, the two
  // others arrive while it does.
  const std::string slow = chat_body(R"({"content":"a b c","ttft_ms":1000})", R"(,"stream":true)");
  std::vector<Response> got(3);
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) clients.emplace_back([&, i] { got[i] = chat(g, key, slow); });
  for (auto& c : clients) c.join();
  int ok = 0, limited = 0;
  for (const auto& r : got) {
    if (r.status == 200) ++ok;
    if (r.status == 429 && str(r.body, "/error/code") == "too_many_streams" && !r.header("retry-after").empty())
      ++limited;
  }
  CHECK(ok == 1);
  CHECK(limited == 2);
  CHECK(chat(g, key).status == 200);  // not a stream: not limited
  CHECK(chat(g, key, chat_body(R"({"content":"x"})", R"(,"stream":true)")).status == 200);  // released
}

TEST_CASE("identity: team limits are shared by the team's keys, an expired key is refused") {
  Gateway g("frugal-identity-team", R"(limits:
  window: 1h
  teams:
    shared: { rpm: 3 }
)");
  const std::string a = g.create_key("--name a --team shared");
  const std::string b = g.create_key("--name b --team shared");
  const std::string solo = g.create_key("--name solo --team other");
  g.start();
  CHECK(chat(g, a).status == 200);
  CHECK(chat(g, b).status == 200);
  CHECK(chat(g, a).status == 200);
  auto refused = chat(g, b);  // the team's 3 per hour are used, by two keys
  CHECK(refused.status == 429);
  CHECK(str(refused.body, "/error/message").find("team shared") != std::string::npos);
  CHECK(refused.header("retry-after") == "1200");  // one request refills in 20 minutes
  CHECK(chat(g, solo).status == 200);               // another team is unaffected

  // A key that expires a second after it is made: refused once it has (bounded poll).
  auto created = request("POST", g.admin + "/admin/keys", R"({"name":"brief","expires":"1s"})");
  REQUIRE(created.status == 201);
  const std::string brief = str(created.body, "/key");
  std::string code;
  for (int i = 0; i < 200 && code != "expired_api_key"; ++i) {
    const Response r = chat(g, brief);
    code = r.status == 401 ? str(r.body, "/error/code") : std::string();
    if (code != "expired_api_key") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(code == "expired_api_key");
}

TEST_CASE("identity: an exposed listener without keys refuses to start unless auth is off") {
  TempDir dir("frugal-identity-exposed");
  const std::string data = (dir.path / "data").string();
  std::ofstream(dir.path / "a.yaml") << "data_dir: " << data << "\nserver:\n  listen: [\"0.0.0.0:0\"]\n";
  int status = 0;
  const std::string out =
      run_output(std::string(FRUGAL_BIN) + " serve --config " + (dir.path / "a.yaml").string() + " 2>&1", status);
  CHECK(status != 0);
  CHECK(out.find("refusing to listen on 0.0.0.0:0 without virtual keys") != std::string::npos);
  std::ofstream(dir.path / "b.yaml") << "data_dir: " << data << "\nauth: off\nserver:\n  listen: [\"0.0.0.0:0\"]\n";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir.path / "b.yaml").string()});
  CHECK(gw.wait_for("(auth: off on 0\\.0\\.0\\.0:0)").find("auth: off") != std::string::npos);
  gw.wait_for("listening on");
}
