// shared_state: Redis (Debian's redis-server, started here on a free loopback port) and
// three frugal replicas sharing one key's rpm bucket; then Redis is killed mid-load:
// a replica with on_failure: closed answers 503, one with open falls back to its local
// bucket, and none crashes. Skipped (exit 77) where redis-server is not installed.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <netinet/in.h>

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
using frugal::test::Response;

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string run_output(const std::string& cmd, int& status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  status = pclose(f);
  return out;
}

}  // namespace

TEST_CASE("shared_state: three replicas admit a 60 rpm key 60 times in total, and survive losing Redis") {
  if (!std::filesystem::exists("/usr/bin/redis-server")) {
    MESSAGE("SKIP: redis-server is not installed (deploy/install-deps.sh installs it)");
    std::exit(77);
  }
  const auto dir = std::filesystem::temp_directory_path() / ("frugal-shared-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int redis_port = free_port();
  auto redis = std::make_unique<Child>(std::vector<std::string>{
      "/usr/bin/redis-server", "--port", std::to_string(redis_port), "--bind", "127.0.0.1", "--save", "",
      "--appendonly", "no", "--dir", dir.string()});
  redis->wait_for("Ready to accept connections");
  Child mock({MOCK_UPSTREAM_BIN, "--threads", "1"});
  const std::string mock_url = "http://127.0.0.1:" + mock.wait_for("PORT=(\\d+)");

  // One key, in three data directories (copies of the first).
  int status = 0;
  const std::string created = run_output(std::string(FRUGAL_BIN) + " keys create --name shared --rpm 60 --data-dir " +
                                             (dir / "d0").string(),
                                         status);
  REQUIRE_MESSAGE(status == 0, created);
  const std::string key = created.substr(created.find("fk-"), 51);
  std::filesystem::copy(dir / "d0", dir / "d1", std::filesystem::copy_options::recursive);
  std::filesystem::copy(dir / "d0", dir / "d2", std::filesystem::copy_options::recursive);

  std::vector<std::unique_ptr<Child>> gws;
  std::vector<std::string> urls;
  for (int i = 0; i < 3; ++i) {
    const auto cfg = dir / ("r" + std::to_string(i) + ".yaml");
    std::ofstream(cfg) << "data_dir: " << (dir / ("d" + std::to_string(i))).string() << R"(
server: { listen: ["127.0.0.1:0"], threads: 1 }
shared_state: { url: "redis://127.0.0.1:)" << redis_port << R"(", on_failure: )" << (i == 2 ? "open" : "closed")
                        << R"(, timeout: 500ms }
providers: { mock: { kind: openai, base_url: ")" << mock_url << R"(/v1" } }
passthrough: [ { prefix: "", provider: mock } ]
)";
    gws.push_back(std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", cfg.string()}));
    urls.push_back("http://127.0.0.1:" + gws.back()->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)"));
  }
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"mock":{"content":"ok"}})";
  auto chat = [&](int replica) {
    return request("POST", urls[replica] + "/v1/chat/completions", body, {"Authorization: Bearer " + key});
  };

  std::atomic<int> ok{0}, limited{0}, other{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c)
    clients.emplace_back([&, c] {
      const Response r = chat(c % 3);
      (r.status == 200 ? ok : r.status == 429 ? limited : other)++;
    });
  for (auto& t : clients) t.join();
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("admitted " << ok.load() << " of 64 over 3 replicas in " << elapsed_s << " s");
  CHECK(other == 0);
  CHECK(ok >= 60);
  CHECK(ok <= 60 + static_cast<int>(std::ceil(elapsed_s)));  // one per second refills; per replica it would be 64
  CHECK(ok + limited == 64);

  // Redis goes away mid-load: closed replicas refuse (503), the open one uses its own
  // bucket (which is full: it admitted nothing locally), nobody crashes.
  redis->stop(SIGKILL);
  const Response closed = chat(0);
  CHECK(closed.status == 503);
  CHECK(closed.body.find("shared_state_unavailable") != std::string::npos);
  CHECK(chat(1).status == 503);
  CHECK(chat(2).status == 200);
  for (const auto& u : urls) CHECK(request("GET", u + "/healthz").status == 200);
  for (auto& g : gws) CHECK(g->stop(SIGTERM) == 0);
  std::filesystem::remove_all(dir);
}
