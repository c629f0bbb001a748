// The exact cache through the `frugal` binary: hits and misses in both forms, controls,
// tenants, single-flight, invalidation, restart from RocksDB and a kill -9 crash test.
// Loopback only, against the C++ mock upstream, with libcurl as the client.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "tests/support/completion_text.h"
#include "tests/support/gateway_env.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::content_of;
using frugal::test::request;
using frugal::test::Response;

namespace {

struct Env : frugal::test::GatewayEnv {
  Env() : GatewayEnv("cache-it") {
    start_mock({});
    write("frugal.yaml", "data_dir: " + (dir / "data").string() + R"(
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    retry: { max_attempts: 1 }
models:
  shared-model: mock/gpt-4o
cache:
  ttl: 1h
  routes:
    shared-model: { shared: true }
    gpt-nocache: { enabled: false }
    gpt-all: { mode: all }
passthrough:
  - { prefix: "gpt-", provider: mock }
)");
    start();
  }
  void start() {
    start_gateway();
  }
  Response chat(const std::string& body, std::vector<std::string> headers = {}) {
    return request("POST", url + "/v1/chat/completions", body, std::move(headers));
  }
  int64_t upstream_chats() {
    auto r = request("GET", mock_url + "/mock/stats");
    simdjson::dom::parser p;
    return p.parse(r.body)["chat"].get_int64().value();
  }
  int64_t cache_stat(const char* key) {
    auto r = request("GET", admin_url + "/admin/cache");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    simdjson::dom::parser p;
    return p.parse(r.body)[key].get_int64().value();
  }
};

Env& env() {
  static Env e;
  return e;
}

// A deterministic request unique to `tag` (so test cases do not share entries).
std::string body(const std::string& tag, const std::string& extra = "") {
  return R"({"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":")" + tag + R"("}])" +
         extra + "}";
}


}  // namespace

TEST_CASE("a deterministic request is served from the cache the second time, upstream billed once") {
  auto& e = env();
  const int64_t before = e.upstream_chats();
  auto a = e.chat(body("first"));
  REQUIRE(a.status == 200);
  CHECK(a.header("x-frugal-cache") == "miss");
  auto b = e.chat(body("first"));
  REQUIRE(b.status == 200);
  CHECK(b.header("x-frugal-cache") == "hit");
  CHECK(b.body == a.body);
  CHECK(e.upstream_chats() == before + 1);
  // Key order and whitespace do not matter.
  auto c = e.chat(R"({ "messages": [ {"content":"first", "role":"user"} ], "temperature": 0.0, "model": "gpt-4o-mini" })");
  CHECK(c.header("x-frugal-cache") == "hit");
  CHECK(e.upstream_chats() == before + 1);
}

TEST_CASE("a streamed miss serves a plain hit and a plain miss serves a streamed hit") {
  auto& e = env();
  auto s = e.chat(body("stream-first", R"(,"stream":true)"));
  REQUIRE(s.status == 200);
  CHECK(s.header("x-frugal-cache") == "miss");
  auto p = e.chat(body("stream-first"));
  CHECK(p.header("x-frugal-cache") == "hit");
  CHECK(p.header("content-type") == "application/json");
  CHECK(content_of(p) == content_of(s));
  CHECK(content_of(p) == "Hello from the mock upstream.");
  CHECK(p.body.find(R"("usage":{"prompt_tokens":12)") != std::string::npos);

  auto p2 = e.chat(body("plain-first"));
  CHECK(p2.header("x-frugal-cache") == "miss");
  auto s2 = e.chat(body("plain-first", R"(,"stream":true,"stream_options":{"include_usage":true})"));
  CHECK(s2.header("x-frugal-cache") == "hit");
  CHECK(s2.header("content-type") == "text/event-stream");
  CHECK(content_of(s2) == content_of(p2));
  CHECK(s2.body.find("\"usage\"") != std::string::npos);  // asked for: present
  CHECK(s2.body.rfind("data: [DONE]\n\n") == s2.body.size() - 14);
  auto s3 = e.chat(body("plain-first", R"(,"stream":true)"));
  CHECK(s3.header("x-frugal-cache") == "hit");
  CHECK(s3.body.find("\"usage\"") == std::string::npos);  // not asked for: dropped
}

TEST_CASE("only deterministic requests are cached by default, routes opt in or out") {
  auto& e = env();
  const std::string hot = R"({"model":"gpt-4o-mini","temperature":0.8,"messages":[{"role":"user","content":"hot"}]})";
  CHECK(e.chat(hot).header("x-frugal-cache") == "bypass");
  CHECK(e.chat(hot).header("x-frugal-cache") == "bypass");
  const std::string seeded = R"({"model":"gpt-4o-mini","temperature":0.8,"seed":7,"messages":[{"role":"user","content":"hot"}]})";
  CHECK(e.chat(seeded).header("x-frugal-cache") == "miss");
  CHECK(e.chat(seeded).header("x-frugal-cache") == "hit");
  // mode: all on the route caches a non-deterministic request too.
  const std::string all = R"({"model":"gpt-all","temperature":0.8,"messages":[{"role":"user","content":"hot"}]})";
  CHECK(e.chat(all).header("x-frugal-cache") == "miss");
  CHECK(e.chat(all).header("x-frugal-cache") == "hit");
  // enabled: false on the route.
  const std::string off = R"({"model":"gpt-nocache","temperature":0,"messages":[{"role":"user","content":"x"}]})";
  CHECK(e.chat(off).header("x-frugal-cache") == "bypass");
  CHECK(e.chat(off).header("x-frugal-cache") == "bypass");
}

TEST_CASE("Cache-Control no-store and no-cache, and x-frugal-cache-ttl") {
  auto& e = env();
  const int64_t before = e.upstream_chats();
  CHECK(e.chat(body("ns"), {"Cache-Control: no-store"}).header("x-frugal-cache") == "bypass");
  CHECK(e.chat(body("ns")).header("x-frugal-cache") == "miss");  // no-store did not store
  CHECK(e.chat(body("ns")).header("x-frugal-cache") == "hit");
  // no-cache: skip the lookup, go upstream, refresh the entry.
  CHECK(e.chat(body("ns"), {"Cache-Control: no-cache"}).header("x-frugal-cache") == "miss");
  CHECK(e.upstream_chats() == before + 3);
  CHECK(e.chat(body("ns")).header("x-frugal-cache") == "hit");

  // A 3 s TTL leaves a loaded machine time for the hit; expiry is then polled for.
  const auto stored = std::chrono::steady_clock::now();
  CHECK(e.chat(body("ttl"), {"x-frugal-cache-ttl: 3"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("ttl")).header("x-frugal-cache") == "hit");
  bool expired = false;
  while (!expired && std::chrono::steady_clock::now() - stored < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    expired = e.chat(body("ttl")).header("x-frugal-cache") == "miss";
  }
  CHECK(expired);
  CHECK(std::chrono::steady_clock::now() - stored >= std::chrono::seconds(3));  // not before its TTL
  // A TTL of 0 means: answer, but do not keep.
  CHECK(e.chat(body("ttl0"), {"x-frugal-cache-ttl: 0"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("ttl0")).header("x-frugal-cache") == "miss");
}

TEST_CASE("entries are scoped per API key unless the route is shared") {
  auto& e = env();
  CHECK(e.chat(body("tenant"), {"Authorization: Bearer sk-alice"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("tenant"), {"Authorization: Bearer sk-alice"}).header("x-frugal-cache") == "hit");
  CHECK(e.chat(body("tenant"), {"Authorization: Bearer sk-bob"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("tenant")).header("x-frugal-cache") == "miss");  // no key is its own tenant
  const std::string shared = R"({"model":"shared-model","temperature":0,"messages":[{"role":"user","content":"s"}]})";
  CHECK(e.chat(shared, {"Authorization: Bearer sk-alice"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(shared, {"Authorization: Bearer sk-bob"}).header("x-frugal-cache") == "hit");
}

TEST_CASE("errors and truncated streams are never stored") {
  auto& e = env();
  const int64_t before = e.upstream_chats();
  const std::string bad = body("err", R"(,"mock":{"status":400})");
  CHECK(e.chat(bad).status == 400);
  CHECK(e.chat(bad).status == 400);
  CHECK(e.upstream_chats() == before + 2);

  const std::string cut = body("cut", R"(,"stream":true,"mock":{"cut_after":2})");
  auto c1 = e.chat(cut);
  CHECK(c1.body.find("upstream_stream_interrupted") != std::string::npos);
  auto c2 = e.chat(cut);
  CHECK(c2.header("x-frugal-cache") == "miss");
  const std::string nodone = body("nodone", R"(,"stream":true,"mock":{"no_done":true})");
  e.chat(nodone);
  CHECK(e.chat(nodone).header("x-frugal-cache") == "miss");
  CHECK(e.upstream_chats() == before + 6);
}

TEST_CASE("100 concurrent identical misses make one upstream call") {
  auto& e = env();
  const int64_t before = e.upstream_chats();
  const std::string b = body("flight", R"(,"mock":{"ttft_ms":400})");
  std::vector<std::thread> threads;
  std::vector<Response> results(100);
  for (int i = 0; i < 100; ++i)
    threads.emplace_back([&, i] { results[i] = e.chat(b, {}); });
  for (auto& t : threads) t.join();
  int ok = 0, miss = 0;
  for (const auto& r : results) {
    ok += r.status == 200 && content_of(r) == "Hello from the mock upstream.";
    miss += r.header("x-frugal-cache") == "miss";
  }
  CHECK(ok == 100);
  CHECK(miss == 1);
  CHECK(e.upstream_chats() == before + 1);
}

TEST_CASE("DELETE /admin/cache by route, by tenant and all") {
  auto& e = env();
  e.chat(body("inv-a"), {"Authorization: Bearer sk-carol"});
  e.chat(body("inv-b"), {"Authorization: Bearer sk-dave"});
  const std::string shared = R"({"model":"shared-model","temperature":0,"messages":[{"role":"user","content":"inv"}]})";
  e.chat(shared);
  CHECK(e.chat(shared).header("x-frugal-cache") == "hit");

  auto d = request("DELETE", e.admin_url + "/admin/cache?route=shared-model");
  CHECK(d.status == 200);
  CHECK(d.body.find(R"("deleted":"route")") != std::string::npos);
  CHECK(e.chat(shared).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("inv-a"), {"Authorization: Bearer sk-carol"}).header("x-frugal-cache") == "hit");

  CHECK(request("DELETE", e.admin_url + "/admin/cache?api_key=sk-carol").status == 200);
  CHECK(e.chat(body("inv-a"), {"Authorization: Bearer sk-carol"}).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("inv-b"), {"Authorization: Bearer sk-dave"}).header("x-frugal-cache") == "hit");

  CHECK(request("DELETE", e.admin_url + "/admin/cache").status == 200);
  CHECK(e.chat(body("inv-b"), {"Authorization: Bearer sk-dave"}).header("x-frugal-cache") == "miss");

  auto both = request("DELETE", e.admin_url + "/admin/cache?route=a&tenant=b");
  CHECK(both.status == 400);
  CHECK(request("PUT", e.admin_url + "/admin/cache").status == 405);
}

TEST_CASE("after a restart, entries are served from RocksDB") {
  auto& e = env();
  auto a = e.chat(body("durable", R"(,"stream":true)"));
  REQUIRE(a.header("x-frugal-cache") == "miss");
  CHECK(e.gw->stop(SIGTERM) == 0);
  e.start();
  const int64_t before = e.upstream_chats();
  auto b = e.chat(body("durable", R"(,"stream":true)"));
  CHECK(b.header("x-frugal-cache") == "hit");
  CHECK(content_of(b) == content_of(a));
  CHECK(e.upstream_chats() == before);
  CHECK(e.cache_stat("disk_hits") == 1);
}

TEST_CASE("kill -9 during write-heavy load: no torn entry is served and the cache still works") {
  auto& e = env();
  // Each request echoes its own body as the answer, so a hit can be checked against
  // the exact bytes its key must hold; a 16 KiB prompt makes the writes heavy.
  const std::string pad(16 * 1024, 'p');
  auto req_for = [&](int i) {
    return R"({"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"crash-)" +
           std::to_string(i) + "-" + pad + R"("}],"mock":{"echo":true}})";
  };
  std::atomic<int> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t)
    load.emplace_back([&] {
      while (!stop) {
        const int i = next.fetch_add(1);
        if (i >= 4000) break;
        e.chat(req_for(i), {});
      }
    });
  while (next.load() < 150) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  e.gw->stop(SIGKILL);
  stop = true;
  for (auto& t : load) t.join();
  const int sent = std::min(next.load(), 4000);
  MESSAGE("requests started before the kill: " << sent);

  e.start();
  int hits = 0;
  for (int i = 0; i < sent; ++i) {
    auto r = e.chat(req_for(i));
    REQUIRE(r.status == 200);
    // Hit or miss, the answer is the one for this key: echo returns the request body.
    CHECK(content_of(r).find("crash-" + std::to_string(i) + "-") != std::string::npos);
    hits += r.header("x-frugal-cache") == "hit";
  }
  MESSAGE("served from the cache after the restart: " << hits << " of " << sent);
  CHECK(hits > 0);
  CHECK(e.cache_stat("corrupt") == 0);
  // And it still works: a new entry is stored and hit.
  CHECK(e.chat(body("after-crash")).header("x-frugal-cache") == "miss");
  CHECK(e.chat(body("after-crash")).header("x-frugal-cache") == "hit");
}

TEST_CASE("replica affinity: requests sharing a prompt prefix go to the same replica, under a load bound") {
  const auto dir = std::filesystem::temp_directory_path() / ("frugal-replica-it-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<Child>> mocks;
  std::vector<std::string> urls;
  std::string providers;
  for (int i = 0; i < 3; ++i) {
    mocks.push_back(std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN}));
    urls.push_back("http://127.0.0.1:" + mocks.back()->wait_for("PORT=(\\d+)"));
    providers += "  r" + std::to_string(i) + ": { kind: openai, base_url: " + urls.back() + "/v1 }\n";
  }
  std::ofstream(dir / "frugal.yaml") << "data_dir: " + (dir / "data").string() + R"(
server: { listen: ["127.0.0.1:0"], threads: 2 }
cache: { enabled: false }
providers:
)" + providers + R"(
models:
  llama:
    replicas: [r0/llama, r1/llama, r2/llama]
)";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const std::string url = "http://127.0.0.1:" + gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  auto chat = [&](const std::string& system, const std::string& user, const std::string& mock = "{}") {
    return request("POST", url + "/v1/chat/completions",
                   R"({"model":"llama","messages":[{"role":"system","content":")" + system +
                       R"("},{"role":"user","content":")" + user + R"("}],"mock":)" + mock + "}");
  };
  auto served = [&](int i) {
    simdjson::dom::parser p;
    return p.parse(request("GET", urls[i] + "/mock/stats").body)["chat"].get_int64().value();
  };

  // Sequential requests: each system prompt sticks to one replica whatever the user turn.
  std::map<std::string, std::set<std::string>> replicas_of;
  std::set<std::string> used;
  for (int round = 0; round < 5; ++round) {
    for (int s = 0; s < 8; ++s) {
      auto r = chat("You are assistant number " + std::to_string(s) + ".", "question " + std::to_string(round));
      REQUIRE(r.status == 200);
      replicas_of[std::to_string(s)].insert(r.header("x-frugal-provider"));
      used.insert(r.header("x-frugal-provider"));
    }
  }
  for (const auto& [s, reps] : replicas_of) CHECK_MESSAGE(reps.size() == 1, "system prompt " << s);
  CHECK(used.size() >= 2);  // 8 prefixes over 3 replicas do not all land on one
  CHECK(served(0) + served(1) + served(2) == 40);

  // 12 concurrent requests with one prefix: the load bound spreads them;
  // capacity = ceil(1.25 * (load + 1) / 3) never exceeds 5 here.
  int64_t before[3] = {served(0), served(1), served(2)};
  std::vector<std::thread> ts;
  std::vector<Response> rs(12);
  for (int i = 0; i < 12; ++i)
    // 2 s upstream latency: all 12 overlap even when a loaded machine starts them slowly.
    ts.emplace_back([&, i] { rs[i] = chat("Hot prefix", "q" + std::to_string(i), R"({"ttft_ms":2000})"); });
  for (auto& t : ts) t.join();
  int64_t max_share = 0;
  for (int i = 0; i < 3; ++i) max_share = std::max(max_share, served(i) - before[i]);
  for (const auto& r : rs) CHECK(r.status == 200);
  CHECK(max_share <= 5);
  CHECK(max_share >= 4);  // and it still prefers the prefix's replica up to the bound
  gw.stop();
  std::filesystem::remove_all(dir);
}

TEST_CASE("streamed followers of a single flight receive the leader's chunks as they arrive") {
  auto& e = env();
  const int64_t before = e.upstream_chats();
  // 10 chunks 300 ms apart: a follower that waited for the whole answer would see its
  // first byte after ~3 s; one that follows the stream sees it after ~the leader's first.
  const std::string b = body("follow", R"(,"stream":true,"mock":{"chunks":10,"chunk_delay_ms":300})");
  std::vector<std::thread> threads;
  std::vector<Response> results(5);
  for (int i = 0; i < 5; ++i) threads.emplace_back([&, i] { results[i] = e.chat(b); });
  for (auto& t : threads) t.join();
  const std::string expected = content_of(results[0]);
  CHECK(!expected.empty());
  int hits = 0;
  for (int i = 0; i < 5; ++i) {
    CHECK(results[i].status == 200);
    CHECK(content_of(results[i]) == expected);
    CHECK(results[i].body.rfind("data: [DONE]\n\n") == results[i].body.size() - 14);
    CHECK_MESSAGE(results[i].first_byte_ms < 2'000, "first byte after " << results[i].first_byte_ms << " ms");
    hits += results[i].header("x-frugal-cache") == "hit";
  }
  CHECK(hits == 4);
  CHECK(e.upstream_chats() == before + 1);
}
