// gateway/shared_state.h against a real redis-server on a free loopback port: budget
// amounts stay exact to the picodollar through Redis (carries between the two integer
// fields, a limit hit exactly), reservations expire, and a dead Redis costs at most one
// timeout, after which calls fail without touching the network. Skipped, visibly,
// where redis-server is not installed (deploy/install-deps.sh installs it).
#include "gateway/shared_state.h"
#include "tests/support/process.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <memory>
#include <filesystem>
#include <string>
#include <thread>

using namespace frugal;
using namespace frugal::gateway;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

using frugal::test::free_port;

std::string cli(int port, const std::string& args) {
  std::string out;
  FILE* f = popen(("/usr/bin/redis-cli -p " + std::to_string(port) + " --raw " + args + " 2>&1").c_str(), "r");
  if (!f) return out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

struct Redis {
  int port;
  pid_t pid = -1;
  explicit Redis(int on_port = free_port()) : port(on_port) {
    pid = fork();
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      const std::string p = std::to_string(port);
      execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (const auto t0 = Clock::now(); ms_since(t0) < 10'000;)
      if (cli(port, "PING") == "PONG\n") return;
    FAIL("redis-server did not start");
  }
  void kill_now() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~Redis() { kill_now(); }
};

config::SharedStateConfig cfg_for(int port) {
  config::SharedStateConfig c;
  c.url = "redis://127.0.0.1:" + std::to_string(port);
  c.fail_open = false;
  c.timeout_ms = 300;
  c.poll_ms = 20;
  c.reservation_ttl_ms = 1000;
  return c;
}

Money picos(int64_t p) { return Money::from_picos(p); }

}  // namespace

TEST_CASE("shared_state: budget money through Redis is exact to the picodollar, reservations expire") {
  if (!std::filesystem::exists("/usr/bin/redis-server") || !std::filesystem::exists("/usr/bin/redis-cli")) {
    MESSAGE("SKIP: redis-server is not installed (deploy/install-deps.sh installs it)");
    return;
  }
  Redis redis;
  SharedState s(cfg_for(redis.port));
  policies::BudgetScope scope;
  scope.name = "exact";
  scope.hard = picos(3'000'001);  // 3.000001 µ$
  scope.soft = picos(1'999'998);
  scope.window_start_us = 0;
  scope.window_end_us = policies::SystemClock().now_us() + 3'600'000'000;
  const std::vector<policies::BudgetScope> scopes{scope};

  // Admitted while spent + reserved < hard: 0, 1.5 µ$, 3.0 µ$ pass; 4.5 µ$ does not.
  for (const char* id : {"a", "b", "c"}) {
    auto r = s.reserve_budget(scopes, picos(1'500'000), id);
    REQUIRE(r.ok());
    CHECK(r->allowed);
  }
  std::string denied;
  auto r = s.reserve_budget(scopes, picos(1), "d", &denied);
  REQUIRE(r.ok());
  CHECK(!r->allowed);
  CHECK(denied == "exact");
  CHECK_MESSAGE(r->message.find("(+$0.0000045 reserved by requests in flight) of $0.000003000001 hard") !=
                    std::string::npos,
                r->message);

  // Two settlements of 999,999 picodollars carry into the micro-dollar field.
  s.settle_budget(scopes, "a", picos(999'999));
  s.settle_budget(scopes, "b", picos(999'999));
  const std::string key = "'frugal:bud:spent:exact:0'";
  std::string spent;
  for (const auto t0 = Clock::now(); spent != "1\n999998\n" && ms_since(t0) < 5000;)
    spent = cli(redis.port, "HMGET " + key + " h l");
  CHECK(spent == "1\n999998\n");
  // c still holds 1.5 µ$: 1.999998 + 1.5 ≥ 3.000001.
  r = s.reserve_budget(scopes, picos(1), "e");
  REQUIRE(r.ok());
  CHECK(!r->allowed);
  CHECK_MESSAGE(r->message.find("spent $0.000001999998 (+$0.0000015 reserved") != std::string::npos, r->message);
  // Two more picodollars: exactly 2 µ$.
  s.settle_budget(scopes, "d", picos(2));  // "d" was never reserved: only its cost counts
  for (const auto t0 = Clock::now(); spent != "2\n0\n" && ms_since(t0) < 5000;)
    spent = cli(redis.port, "HMGET " + key + " h l");
  CHECK(spent == "2\n0\n");
  // c's reservation expires after reservation_ttl (1 s): 2 µ$ + 0 < 3.000001 µ$, and
  // the soft limit (1.999998 µ$) is passed: reported, not refused.
  bool admitted = false;
  const auto t_expiry = Clock::now();
  while (!admitted && ms_since(t_expiry) < 5000) {
    r = s.reserve_budget(scopes, picos(1'000'000), "g");
    REQUIRE(r.ok());
    admitted = r->allowed;
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(admitted);
  CHECK(r->soft_exceeded);
  CHECK(ms_since(t_expiry) < 1500);
  // Beyond what the scripts hold exactly: an error, never a rounded amount.
  CHECK(!s.reserve_budget(scopes, Money::from_micros(int64_t{1} << 62), "h").ok());
  CHECK(s.failures() == 0);
  // A settlement queued just before shutdown still reaches Redis.
  {
    SharedState leaving(cfg_for(redis.port));
    leaving.settle_budget(scopes, "z", picos(5));
  }
  CHECK(cli(redis.port, "HMGET " + key + " h l") == "2\n5\n");
}

TEST_CASE("shared_state: a dead Redis costs one timeout at most, then calls fail at once until it returns") {
  if (!std::filesystem::exists("/usr/bin/redis-server") || !std::filesystem::exists("/usr/bin/redis-cli")) {
    MESSAGE("SKIP: redis-server is not installed (deploy/install-deps.sh installs it)");
    return;
  }
  auto redis = std::make_unique<Redis>();
  const int port = redis->port;
  SharedState s(cfg_for(port));
  const std::vector<policies::RateScope> scopes{{"key k", 1000, 0}};
  REQUIRE(s.admit(scopes, 60'000'000).ok());
  CHECK(!s.down());
  redis->kill_now();
  auto t0 = Clock::now();
  CHECK(!s.admit(scopes, 60'000'000).ok());
  CHECK(ms_since(t0) < 300 + 200);  // shared_state.timeout, plus scheduling slack
  CHECK(s.down());
  t0 = Clock::now();
  for (int i = 0; i < 100; ++i) {
    auto r = s.admit(scopes, 60'000'000);
    REQUIRE(!r.ok());
    CHECK(r.error().code == "shared_state_unavailable");
  }
  CHECK(ms_since(t0) < 100);  // no connection attempts: the probe thread owns reconnecting
  CHECK(s.failures() >= 101);
  // Back on the same port: the background probe (every 20 ms) finds it.
  Redis again(port);
  bool back = false;
  for (const auto t = Clock::now(); !back && ms_since(t) < 10'000;) {
    back = s.admit(scopes, 60'000'000).ok();
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(back);
  CHECK(!s.down());
}
