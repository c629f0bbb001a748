// shared_state: Redis (Debian's redis-server, started here on a free loopback port) and
// three frugal replicas on loopback, clients spread over all three: one key's rpm
// bucket, a hard budget, key records (created, revoked through one replica) and the
// exact cache's shared tier are shared; Redis killed mid-load is handled as each
// replica is configured (closed: 503, open: local limits), and when it returns every
// replica uses it again. Skipped (exit 77) where redis-server is not installed.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::free_port;
using frugal::test::run_output;
using frugal::test::Response;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string str(const std::string& json, const char* pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(json).get(doc)) return "<not json: " + json + ">";
  std::string_view s;
  if (doc.at_pointer(pointer).get_string().get(s)) return "<missing " + std::string(pointer) + ">";
  return std::string(s);
}

int64_t usd_micros(const std::string& s) { return std::llround(std::stod(s.empty() ? "0" : s) * 1e6); }

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

// Redis, the mock upstream and three replicas, each with its own data directory.
struct Cluster {
  std::filesystem::path dir;
  int redis_port = free_port();
  std::unique_ptr<Child> redis, mock;
  std::vector<std::unique_ptr<Child>> gws;
  std::vector<std::string> urls, admins;

  std::string password;  // requirepass, and the replicas' URL carries it with db 2
  explicit Cluster(const std::string& name, std::string redis_password = "")
      : dir(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))),
        password(std::move(redis_password)) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    start_redis();
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN, "--threads", "2"});
    std::ofstream(dir / "policy.yaml") << kPolicy;
  }
  ~Cluster() {
    for (auto& g : gws) g->stop(SIGKILL);
    std::filesystem::remove_all(dir);
  }
  void start_redis() {
    std::vector<std::string> argv{"/usr/bin/redis-server", "--port", std::to_string(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.string()};
    if (!password.empty()) argv.insert(argv.end(), {"--requirepass", password});
    redis = std::make_unique<Child>(argv);
    redis->wait_for("Ready to accept connections");
  }
  std::string redis_cli(const std::string& args) {
    int status = 0;
    const std::string out =
        run_output("/usr/bin/redis-cli -p " + std::to_string(redis_port) +
                       (password.empty() ? "" : " --no-auth-warning -a " + password + " -n 2") + " " + args + " 2>&1",
                   status);
    REQUIRE_MESSAGE(status == 0, out);
    return out;
  }
  std::string data(int i) const { return (dir / ("d" + std::to_string(i))).string(); }
  // `shared_state` of replica i: its on_failure and any further keys.
  void start_replicas(const std::function<std::string(int)>& shared_extra) {
    const std::string mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
    for (int i = 0; i < 3; ++i) {
      const auto cfg = dir / ("r" + std::to_string(i) + ".yaml");
      std::ofstream(cfg) << "data_dir: " << data(i) << "\npolicy: policy.yaml\nauth: required\n"
                         << R"(server: { listen: ["127.0.0.1:0"], threads: 1 }
shared_state: { url: "redis://)" << (password.empty() ? "" : ":" + password + "@") << "127.0.0.1:" << redis_port
                         << (password.empty() ? "" : "/2") << R"(", timeout: 500ms, poll: 50ms)"
                         << shared_extra(i) << R"( }
providers: { mock: { kind: openai, base_url: ")" << mock_url << R"(/v1", retry: { max_attempts: 1 } } }
passthrough: [ { prefix: "", provider: mock } ]
telemetry: { metrics: { enabled: true } }
)";
      gws.push_back(std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", cfg.string()}));
      urls.push_back("http://127.0.0.1:" + gws.back()->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)"));
      admins.push_back("http://127.0.0.1:" + gws.back()->wait_for("admin API .* on 127\\.0\\.0\\.1:(\\d+)"));
    }
  }
  // Reads what the replicas logged, so that no pipe fills up under load.
  void drain() {
    for (auto& g : gws) g->output();
  }
  Response chat(int replica, const std::string& key, const std::string& body,
                std::vector<std::string> headers = {}) const {
    headers.push_back("Authorization: Bearer " + key);
    return request("POST", urls[replica] + "/v1/chat/completions", body, headers, nullptr, 10'000);
  }
};

bool have_redis() {
  if (std::filesystem::exists("/usr/bin/redis-server") && std::filesystem::exists("/usr/bin/redis-cli")) return true;
  MESSAGE("SKIP: redis-server is not installed (deploy/install-deps.sh installs it)");
  std::exit(77);
}

std::string chat_body(const std::string& mock, const std::string& extra = "") {
  return R"({"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":100,"mock":)" + mock +
         extra + "}";
}

}  // namespace

TEST_CASE("shared_state: three replicas admit a 60 rpm key 60 times in total, and survive losing Redis") {
  if (!have_redis()) return;
  Cluster c("frugal-shared-rpm");
  // The key is created in the first replica's data directory only: it reaches Redis
  // when that replica starts, and the other two take it from there.
  int status = 0;
  const std::string created =
      run_output(std::string(FRUGAL_BIN) + " keys create --name shared --rpm 60 --data-dir " + c.data(0), status);
  REQUIRE_MESSAGE(status == 0, created);
  const std::string key = str(created, "/key");
  c.start_replicas([](int i) { return std::string(", on_failure: ") + (i == 2 ? "open" : "closed"); });
  const std::string body = chat_body(R"({"content":"ok"})");

  std::atomic<int> ok{0}, limited{0}, other{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i)
    clients.emplace_back([&, i] {
      const Response r = c.chat(i % 3, key, body);
      (r.status == 200 ? ok : r.status == 429 ? limited : other)++;
    });
  for (auto& t : clients) t.join();
  const double elapsed_s = seconds_since(t0);
  MESSAGE("admitted " << ok.load() << " of 64 over 3 replicas in " << elapsed_s << " s");
  CHECK(other == 0);
  CHECK(ok >= 60);
  CHECK(ok <= 60 + static_cast<int>(std::ceil(elapsed_s)));  // one per second refills; per replica it would be 64
  CHECK(ok + limited == 64);

  // Redis dies mid-load: clients keep sending to all three replicas. The closed ones
  // answer 503 in the client's shape, the open one serves from its own bucket (full:
  // it admitted nothing locally), every answer comes within the deadline, none crash.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, served{0}, refused{0}, wrong{0}, after_kill_open{0};
  std::atomic<double> slowest_s{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> load;
  for (int i = 0; i < 6; ++i)
    load.emplace_back([&, i] {
      while (!stop) {
        const bool was_killed = killed;
        const auto t = Clock::now();
        const Response r = c.chat(i % 3, key, body);
        const double s = seconds_since(t);
        if (s > slowest_s) slowest_s = s;
        ++answered;
        if (r.status == 200) {
          ++served;
          if (was_killed && i % 3 == 2) ++after_kill_open;
        } else if (r.status == 503 && str(r.body, "/error/code") == "shared_state_unavailable") {
          ++refused;
        } else if (r.status != 429) {
          ++wrong;
        }
      }
    });
  const auto poll_until = [&](const std::function<bool()>& done, double limit_s) {
    const auto t = Clock::now();
    while (!done() && seconds_since(t) < limit_s) {
      c.drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  };
  CHECK(poll_until([&] { return answered > 10; }, 10));
  c.redis->stop(SIGKILL);
  killed = true;
  CHECK(poll_until([&] { return refused > 10 && after_kill_open > 3; }, 10));
  stop = true;
  for (auto& t : load) t.join();
  MESSAGE("under load around the kill: " << served.load() << " served, " << refused.load() << " refused (503), slowest "
                                         << slowest_s.load() << " s");
  CHECK(wrong == 0);
  CHECK(slowest_s < 5.0);  // shared_state.timeout is 500ms; nothing waits on a dead Redis
  const Response closed = c.chat(0, key, body);
  CHECK(closed.status == 503);
  CHECK(str(closed.body, "/error/code") == "shared_state_unavailable");
  const Response anthropic = request("POST", c.urls[1] + "/v1/messages",
                                     R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
                                     {"Authorization: Bearer " + key});
  CHECK(anthropic.status == 503);
  CHECK(str(anthropic.body, "/type") == "error");
  CHECK(c.chat(2, key, body).status == 200);
  for (int i = 0; i < 3; ++i) {
    const Response m = request("GET", c.admins[i] + "/metrics");
    CHECK(m.body.find("frugal_shared_state_up 0") != std::string::npos);
    CHECK(m.body.find("frugal_shared_state_failures_total 0\n") == std::string::npos);
  }

  // Redis returns (empty): every replica reconnects within a few polls.
  c.start_redis();
  CHECK(poll_until([&] { return c.chat(0, key, body).status == 200 && c.chat(1, key, body).status == 200; }, 10));
  for (const auto& u : c.urls) CHECK(request("GET", u + "/healthz").status == 200);
  for (auto& g : c.gws) CHECK(g->stop(SIGTERM) == 0);
}

TEST_CASE("shared_state: keys, a hard budget and the exact cache are shared by three replicas") {
  if (!have_redis()) return;
  Cluster c("frugal-shared-state");
  c.start_replicas([](int) { return std::string(", on_failure: closed, shared_cache: true"); });

  // A key created through replica 1's admin API works on the other two.
  const Response made = request("POST", c.admins[1] + "/admin/keys", R"({"name":"k"})",
                                {"Content-Type: application/json"});
  REQUIRE_MESSAGE(made.status < 300, made.body);
  const std::string key = str(made.body, "/key");
  const std::string body = chat_body(R"({"content":"shared answer"})", R"(,"temperature":0)");
  const auto seen = Clock::now();
  bool everywhere = false;
  while (!everywhere && seconds_since(seen) < 10) {
    everywhere = c.chat(0, key, body, {"Cache-Control: no-store"}).status == 200 &&
                 c.chat(2, key, body, {"Cache-Control: no-store"}).status == 200;
    if (!everywhere) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(everywhere);
  MESSAGE("a key created on replica 1 worked on 0 and 2 after " << seconds_since(seen) << " s");
  CHECK(seconds_since(seen) < 1.0);

  // The exact cache: an answer stored by replica 0 is a hit on replica 1 (which asks
  // with a TTL of 0, so that it never stores the answer itself: only Redis can have
  // given it the entry).
  const std::string cached = chat_body(R"({"content":"cached once"})", R"(,"temperature":0)");
  const Response first = c.chat(0, key, cached);
  REQUIRE(first.status == 200);
  CHECK(first.header("x-frugal-cache") == "miss");
  Response on_b;
  const auto t_cache = Clock::now();
  do {
    on_b = c.chat(1, key, cached, {"x-frugal-cache-ttl: 0"});
  } while (on_b.header("x-frugal-cache") != "hit" && seconds_since(t_cache) < 5);
  CHECK(on_b.header("x-frugal-cache") == "hit");
  CHECK(str(on_b.body, "/choices/0/message/content") == "cached once");

  // A corrupted entry in Redis is a miss, never served.
  const std::string torn = chat_body(R"({"content":"torn later"})", R"(,"temperature":0)");
  const std::string keys_before = c.redis_cli("--raw KEYS 'frugal:cache:*'");
  REQUIRE(c.chat(0, key, torn).status == 200);
  std::string torn_key;
  for (const auto t = Clock::now(); torn_key.empty() && seconds_since(t) < 5;) {
    std::string all = c.redis_cli("--raw KEYS 'frugal:cache:*'");
    for (size_t at = 0, nl; (nl = all.find('\n', at)) != std::string::npos; at = nl + 1) {
      const std::string k = all.substr(at, nl - at);
      if (!k.empty() && keys_before.find(k) == std::string::npos) torn_key = k;
    }
  }
  REQUIRE(!torn_key.empty());
  c.redis_cli("SETRANGE " + torn_key + " 30 garbage");
  const Response after_tear = c.chat(2, key, torn, {"x-frugal-cache-ttl: 0"});
  CHECK(after_tear.status == 200);
  CHECK(after_tear.header("x-frugal-cache") == "miss");
  CHECK(str(after_tear.body, "/choices/0/message/content") == "torn later");

  // A hard budget of $0.001 a day on a key created through replica 2's admin API.
  // Each request costs 10 + 100 = 110 µ$; its estimate (body / 4 tokens of input plus
  // max_tokens of output, at 1 µ$ a token) is at least that. 36 concurrent requests
  // over the three replicas: spend stays below the limit plus one estimate (per
  // replica it would be up to three times the limit).
  const Response small = request("POST", c.admins[2] + "/admin/keys",
                                 R"({"name":"small","budget_usd":"0.001","budget_per":"day"})",
                                 {"Content-Type: application/json"});
  REQUIRE_MESSAGE(small.status < 300, small.body);
  const std::string small_key = str(small.body, "/key");
  for (const auto t = Clock::now(); seconds_since(t) < 5;) {
    if (request("GET", c.admins[0] + "/admin/keys/small").status == 200 &&
        request("GET", c.admins[1] + "/admin/keys/small").status == 200)
      break;
  }
  const std::string costly = chat_body(R"({"content":"ok","ttft_ms":300,"usage":{"prompt":10,"completion":100}})");
  const int64_t estimate = static_cast<int64_t>((costly.size() + 3) / 4) + 100;
  REQUIRE(estimate >= 110);
  std::atomic<int> ok{0}, denied{0}, other{0};
  std::atomic<int64_t> spent{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 36; ++i)
    clients.emplace_back([&, i] {
      const Response r = c.chat(i % 3, small_key, costly);
      if (r.status == 200) {
        ++ok;
        spent += usd_micros(r.header("x-frugal-cost-usd"));
      } else if (r.status == 429 && str(r.body, "/error/code") == "budget_exceeded") {
        ++denied;
      } else {
        ++other;
      }
    });
  for (auto& t : clients) t.join();
  MESSAGE(ok.load() << " admitted over 3 replicas, spent " << spent.load() << " µ$ of 1000 (estimate " << estimate
                    << " µ$)");
  CHECK(other == 0);
  CHECK(ok >= 1);
  CHECK(spent == 110 * ok.load());
  CHECK(spent < 1000 + estimate);
  // Settled in Redis: sequential requests are admitted only while spend stays under
  // the limit, and the total never passes the bound.
  int64_t total = spent;
  for (int i = 0; i < 12; ++i) {
    const Response r = c.chat(i % 3, small_key, costly);
    if (r.status != 200) {
      CHECK(str(r.body, "/error/code") == "budget_exceeded");
      continue;
    }
    total += usd_micros(r.header("x-frugal-cost-usd"));
  }
  CHECK(total < 1000 + estimate);
  CHECK(total >= 1000 - 2 * estimate);  // reservations were released, not leaked
  // Redis holds the spend exactly, as integers: whole micro-dollars and picodollars.
  const std::string spent_key = c.redis_cli("--raw KEYS 'frugal:bud:spent:key=small*'");
  REQUIRE(spent_key.find('\n') != std::string::npos);
  const std::string name = spent_key.substr(0, spent_key.find('\n'));
  std::string in_redis;
  for (const auto t = Clock::now(); seconds_since(t) < 5;) {  // the last settlement is queued
    in_redis = c.redis_cli("--raw HMGET '" + name + "' h l");
    if (in_redis == std::to_string(total) + "\n0\n") break;
  }
  CHECK(in_redis == std::to_string(total) + "\n0\n");

  // Revoked through replica 0: refused by the other two within one second.
  const Response revoked = request("POST", c.admins[0] + "/admin/keys/k/revoke", "", {});
  REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
  const auto t_revoke = Clock::now();
  bool refused = false;
  while (!refused && seconds_since(t_revoke) < 5) {
    refused = c.chat(1, key, body, {"Cache-Control: no-store"}).status == 401 &&
              c.chat(2, key, body, {"Cache-Control: no-store"}).status == 401;
  }
  const double revoke_s = seconds_since(t_revoke);
  MESSAGE("revoked on replica 0, refused by 1 and 2 after " << revoke_s << " s");
  CHECK(refused);
  CHECK(revoke_s < 1.0);
  const Response gone = c.chat(2, key, body);
  CHECK(gone.status == 401);
  CHECK(str(gone.body, "/error/type") != "");
  for (auto& g : c.gws) CHECK(g->stop(SIGTERM) == 0);
}

TEST_CASE("shared_state: a budget reservation of a replica that dies expires after reservation_ttl") {
  if (!have_redis()) return;
  Cluster c("frugal-shared-expiry", "s3cret");  // AUTH and SELECT on every connection
  c.start_replicas([](int) { return std::string(", on_failure: closed, reservation_ttl: 2s"); });
  // $0.0001 a day: one reservation (its estimate is more than the whole budget) holds it.
  const Response made = request("POST", c.admins[0] + "/admin/keys",
                                R"({"name":"tiny","budget_usd":"0.0001","budget_per":"day"})",
                                {"Content-Type: application/json"});
  REQUIRE_MESSAGE(made.status < 300, made.body);
  const std::string key = str(made.body, "/key");
  for (const auto t = Clock::now(); seconds_since(t) < 5;)
    if (request("GET", c.admins[1] + "/admin/keys/tiny").status == 200) break;
  const std::string slow = chat_body(R"({"content":"ok","ttft_ms":20000,"usage":{"prompt":10,"completion":100}})");
  const std::string quick = chat_body(R"({"content":"ok","usage":{"prompt":10,"completion":100}})");
  std::thread held([&] { c.chat(0, key, slow); });  // answered never: replica 0 dies first
  // Replica 1 is refused while replica 0's request holds the budget.
  std::string held_in_redis;
  for (const auto t = Clock::now(); held_in_redis != "1\n" && seconds_since(t) < 5;)
    held_in_redis = c.redis_cli("--raw HLEN 'frugal:bud:res:key=tiny per day'");
  REQUIRE(held_in_redis == "1\n");
  Response r = c.chat(1, key, quick);
  REQUIRE(r.status == 429);
  CHECK(str(r.body, "/error/code") == "budget_exceeded");
  CHECK(r.body.find("reserved by requests in flight") != std::string::npos);
  c.gws[0]->stop(SIGKILL);
  held.join();
  const auto killed = Clock::now();
  while (seconds_since(killed) < 10 && (r = c.chat(1, key, quick)).status == 429) c.drain();
  MESSAGE("admitted again " << seconds_since(killed) << " s after the replica holding the budget died");
  CHECK(r.status == 200);
  CHECK(seconds_since(killed) < 5.0);  // reservation_ttl is 2s
  CHECK(c.chat(2, key, quick).status == 429);  // and now the real spend (110 µ$) is over the budget
  for (int i = 1; i < 3; ++i) CHECK(c.gws[i]->output().find("s3cret") == std::string::npos);  // never logged
}
