// Virtual keys (gateway/keys.h): stored hashed, looked up in memory, revoked, rotated,
// expired; and the request checks of gateway/auth.h that need no server.
#include "gateway/keys.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <filesystem>

#include "cache/store.h"
#include "gateway/auth.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
using namespace frugal::gateway;

namespace {

std::shared_ptr<cache::Store> open_store(const std::string& dir) {
  auto s = cache::Store::open(dir + "/db", {{kKeysCf, rocksdb::ColumnFamilyOptions()}});
  REQUIRE(s.ok());
  return *s;
}

// Every byte RocksDB wrote (WAL and tables), to look for a secret.
std::string all_bytes(const std::string& dir) {
  std::string out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    out.append(std::istreambuf_iterator<char>(f), {});
  }
  return out;
}

}  // namespace

TEST_CASE("keys: stored as SHA-256 only, found in memory, revoked, rotated and expired") {
  frugal::test::TempDir dir;
  policies::ManualClock clock(1'700'000'000'000'000);
  std::string secret, rotated;
  {
    auto ks = KeyStore::open(open_store(dir.path()), &clock);
    REQUIRE(ks.ok());
    VirtualKey k;
    k.name = "ci-bot";
    k.team = "search";
    k.rpm = 60;
    k.models = {"gpt-4o-mini", "claude-*"};
    k.expires_us = clock.now_us() + 3'600'000'000;
    auto s = (*ks)->create(k);
    REQUIRE(s.ok());
    secret = *s;
    CHECK(secret.rfind("fk-", 0) == 0);
    CHECK(secret.size() == 51);
    CHECK((*ks)->create(k).error().code == "key_exists");
    const auto l = (*ks)->find_secret(secret, clock.now_us());
    REQUIRE(l.state == KeyState::kValid);
    CHECK(l.entry->rec.team == "search");
    CHECK(l.entry->rec.hash == sha256_hex(secret));
    CHECK((*ks)->find_secret(secret + "x", clock.now_us()).state == KeyState::kUnknown);
    CHECK((*ks)->find_secret("", clock.now_us()).state == KeyState::kUnknown);
    CHECK(name_allowed(l.entry->rec.models, "claude-3-haiku"));
    CHECK(!name_allowed(l.entry->rec.models, "gpt-4o"));
  }
  CHECK(all_bytes(dir.path()).find(secret.substr(3)) == std::string::npos);  // never stored
  {
    // Reopened: loaded from RocksDB; the same secret works.
    auto ks = KeyStore::open(open_store(dir.path()), &clock);
    REQUIRE(ks.ok());
    CHECK((*ks)->find_secret(secret, clock.now_us()).state == KeyState::kValid);
    auto r = (*ks)->rotate("ci-bot");
    REQUIRE(r.ok());
    rotated = *r;
    CHECK((*ks)->find_secret(secret, clock.now_us()).state == KeyState::kUnknown);  // at once
    CHECK((*ks)->find_secret(rotated, clock.now_us()).state == KeyState::kValid);
    CHECK((*ks)->find_secret(rotated, clock.now_us() + 3'600'000'000).state == KeyState::kExpired);
    REQUIRE((*ks)->revoke("ci-bot").ok());
    CHECK((*ks)->find_secret(rotated, clock.now_us()).state == KeyState::kRevoked);
    CHECK((*ks)->rotate("ci-bot").error().code == "key_revoked");
    CHECK((*ks)->revoke("nobody").error().code == "key_not_found");
  }
  auto ks = KeyStore::open(open_store(dir.path()), &clock);
  REQUIRE(ks.ok());
  CHECK((*ks)->find_secret(rotated, clock.now_us()).state == KeyState::kRevoked);  // durable
  CHECK((*ks)->size() == 1);
}

TEST_CASE("keys: replicas merge each other's records, a revocation is never undone, writes are mirrored") {
  frugal::test::TempDir a_dir, b_dir;
  policies::ManualClock clock(1'700'000'000'000'000);
  auto a = KeyStore::open(open_store(a_dir.path() + "/a"), &clock);
  auto b = KeyStore::open(open_store(b_dir.path() + "/b"), &clock);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<VirtualKey> mirrored;  // what replica a would put into Redis
  (*a)->set_mirror([&](const VirtualKey& k) { mirrored.push_back(k); });
  VirtualKey k;
  k.name = "shared";
  k.budget = Money::from_micros(1000);
  auto secret = (*a)->create(k);
  REQUIRE(secret.ok());
  REQUIRE(mirrored.size() == 1);
  CHECK(mirrored[0].hash == sha256_hex(*secret));
  VirtualKey only_b;
  only_b.name = "only-b";
  REQUIRE((*b)->create(only_b).ok());

  // b takes a's record (and its budget), and hands back the one a lacks.
  auto back = (*b)->merge(mirrored);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 1);
  CHECK((*back)[0].name == "only-b");
  const auto l = (*b)->find_secret(*secret, clock.now_us());
  REQUIRE(l.state == KeyState::kValid);
  CHECK(l.entry->runtime->budget != nullptr);

  // Revoked on a: b refuses the secret after the next merge.
  REQUIRE((*a)->revoke("shared").ok());
  REQUIRE(mirrored.size() == 2);
  REQUIRE((*b)->merge({mirrored[1]}).ok());
  CHECK((*b)->find_secret(*secret, clock.now_us()).state == KeyState::kRevoked);
  // An older, unrevoked record does not undo it; b sends its revoked one back.
  back = (*b)->merge({mirrored[0]});
  REQUIRE(back.ok());
  CHECK((*b)->find_secret(*secret, clock.now_us()).state == KeyState::kRevoked);
  bool sent_revoked = false;
  for (const auto& r : *back) sent_revoked |= r.name == "shared" && r.revoked_us != 0;
  CHECK(sent_revoked);
  // Merged records are durable: reopened, b still knows both keys.
  b->reset();
  auto b2 = KeyStore::open(open_store(b_dir.path() + "/b"), &clock);
  REQUIRE(b2.ok());
  CHECK((*b2)->size() == 2);
  CHECK((*b2)->find_secret(*secret, clock.now_us()).state == KeyState::kRevoked);
}

TEST_CASE("keys: the admin API's body is validated, expiry forms parse") {
  const int64_t now = 1'700'000'000'000'000;
  auto k = key_from_request_json(
      R"({"name":"a.b-c_1","team":"t","rpm":5,"models":["m"],"budget_usd":"2.50","budget_per":"hour","expires":"30d","metadata":{"owner":"ops"}})",
      now);
  REQUIRE(k.ok());
  CHECK(k->budget == Money::from_micros(2'500'000));
  CHECK(k->budget_per == config::BudgetPeriod::kHour);
  CHECK(k->expires_us == now + 30LL * 86'400'000'000);
  CHECK(k->metadata.at("owner") == "ops");
  CHECK(!key_from_request_json(R"({"name":"bad name"})", now).ok());
  CHECK(!key_from_request_json(R"({"name":"x","rpm":-1})", now).ok());
  CHECK(!key_from_request_json(R"({"name":"x","colour":"red"})", now).ok());
  CHECK(!key_from_request_json(R"({"name":"x","expires":"2001-01-01"})", now).ok());
  CHECK(parse_expiry("12h", now).value() == now + 12LL * 3'600'000'000);
  const auto round = decode_key(encode_key([&] {
    VirtualKey v = *k;
    v.hash = std::string(64, 'a');
    return v;
  }()));
  REQUIRE(round.ok());
  CHECK(round->metadata == k->metadata);
  CHECK(constant_time_equal("token", "token"));
  CHECK(!constant_time_equal("token", "token2"));
  CHECK(!constant_time_equal("", "token"));
}

TEST_CASE("auth: loopback includes IPv4-mapped addresses, non-loopback listeners need keys or auth off") {
  using boost::asio::ip::make_address;
  CHECK(is_loopback(make_address("127.0.0.1")));
  CHECK(is_loopback(make_address("::1")));
  CHECK(is_loopback(make_address("::ffff:127.0.0.1")));
  CHECK(!is_loopback(make_address("::ffff:10.0.0.1")));
  CHECK(!is_loopback(make_address("0.0.0.0")));
  config::GatewayConfig cfg;
  std::string warning;
  CHECK(check_listener_safety(cfg, 0, warning).ok());  // 127.0.0.1 by default
  cfg.server.listen = {config::Listener{"0.0.0.0", 8080}};
  auto refused = check_listener_safety(cfg, 0, warning);
  REQUIRE(!refused.ok());
  CHECK(refused.error().message.find("refusing to listen on 0.0.0.0:8080") != std::string::npos);
  CHECK(check_listener_safety(cfg, 1, warning).ok());
  CHECK(warning.empty());
  cfg.auth = config::AuthMode::kOff;
  CHECK(check_listener_safety(cfg, 0, warning).ok());
  CHECK(warning.find("auth: off") != std::string::npos);
}

TEST_CASE("auth: the admin Host check accepts the listener's own IP (a pod IP scrape), names only when allowed") {
  using boost::asio::ip::make_address;
  config::GatewayConfig cfg;
  // Listening on 0.0.0.0:8081, a connection to the pod's address: its local endpoint.
  const tcp::endpoint self(make_address("10.1.2.3"), 8081);
  auto with_host = [](std::string host) {
    Request req;
    req.set(bhttp::field::host, host);
    return req;
  };
  // Prometheus scraping the pod (ServiceMonitor): Host is the pod IP and the admin port.
  CHECK(admin_host_allowed(with_host("10.1.2.3:8081"), cfg, self));
  CHECK(admin_host_allowed(with_host("10.1.2.3"), cfg, self));
  CHECK(!admin_host_allowed(with_host("10.1.2.3:8080"), cfg, self));  // another port
  CHECK(!admin_host_allowed(with_host("10.1.2.4:8081"), cfg, self));  // another address
  CHECK(admin_host_allowed(with_host("127.0.0.1:8081"), cfg, self));
  CHECK(admin_host_allowed(with_host("localhost:8081"), cfg, self));
  // A name (compose: Prometheus scrapes frugal:8081) only when allowed: DNS rebinding.
  CHECK(!admin_host_allowed(with_host("frugal:8081"), cfg, self));
  cfg.admin.allowed_hosts = {"frugal:8081"};
  CHECK(admin_host_allowed(with_host("frugal:8081"), cfg, self));
  CHECK(!admin_host_allowed(with_host("evil.example:8081"), cfg, self));
  // IPv6: the pod's own literal in brackets.
  const tcp::endpoint self6(make_address("fd00::5"), 8081);
  CHECK(admin_host_allowed(with_host("[fd00::5]:8081"), cfg, self6));
  CHECK(!admin_host_allowed(with_host("[fd00::6]:8081"), cfg, self6));
}

TEST_CASE("auth: auth required starts on 0.0.0.0 without keys (the compose and k8s configs rely on it)") {
  config::GatewayConfig cfg;
  cfg.server.listen = {config::Listener{"0.0.0.0", 8080}};
  cfg.auth = config::AuthMode::kRequired;
  std::string warning;
  CHECK(check_listener_safety(cfg, 0, warning).ok());
  CHECK(warning.empty());
}
