// What the gateway accepts from clients before routing: request framing, the hop
// header, x-frugal-cache-ttl; and a second server on a port in use.
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "config/config.h"
#include "gateway/chat_exchange.h"
#include "gateway/request_parser.h"
#include "gateway/server.h"
#include "gateway/worker.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
namespace bhttp = boost::beast::http;

namespace {

gateway::Request request_with(std::vector<std::pair<std::string, std::string>> fields) {
  gateway::Request r{bhttp::verb::post, "/v1/chat/completions", 11};
  for (auto& [k, v] : fields) r.insert(k, v);
  return r;
}

}  // namespace

TEST_CASE("request framing other than a lone chunked or Content-Length is refused") {
  CHECK(!gateway::framing_error(request_with({})));
  CHECK(!gateway::framing_error(request_with({{"Content-Length", "12"}})));
  CHECK(!gateway::framing_error(request_with({{"Transfer-Encoding", "chunked"}})));
  CHECK(!gateway::framing_error(request_with({{"Transfer-Encoding", "Chunked"}})));
  for (const char* te : {"chunked, identity", "gzip", "identity", "gzip, chunked", "xchunked", "chunked,", ""}) {
    CAPTURE(te);
    const auto e = gateway::framing_error(request_with({{"Transfer-Encoding", te}}));
    REQUIRE(e);
    CHECK(e->http_status() == 400);
    CHECK(e->code == "bad_transfer_encoding");
  }
  CHECK(gateway::framing_error(request_with({{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}})));
  CHECK(gateway::framing_error(request_with({{"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}})));
}

TEST_CASE("the hop header is a small number and absent means zero") {
  CHECK(gateway::frugal_hop_of(request_with({})) == 0);
  CHECK(gateway::frugal_hop_of(request_with({{"x-frugal-hop", "1"}})) == 1);
  CHECK(gateway::frugal_hop_of(request_with({{"x-frugal-hop", "42"}})) == 42);
  for (const char* bad : {"", "-1", "x", "100", "1.0", " 1x"}) {
    CAPTURE(bad);
    CHECK(!gateway::frugal_hop_of(request_with({{"x-frugal-hop", bad}})));
  }
  CHECK(frugal_hop_header(0) == "x-frugal-hop: 1");
  CHECK(frugal_hop_header(1) == "x-frugal-hop: 2");
}

TEST_CASE("x-frugal-cache-ttl parses units, saturates instead of overflowing and refuses the rest") {
  CHECK(gateway::parse_cache_ttl_ms("90") == 90'000);
  CHECK(gateway::parse_cache_ttl_ms("500ms") == 500);
  CHECK(gateway::parse_cache_ttl_ms("10m") == 600'000);
  CHECK(gateway::parse_cache_ttl_ms("2h") == 7'200'000);
  CHECK(gateway::parse_cache_ttl_ms("1d") == 86'400'000);
  CHECK(gateway::parse_cache_ttl_ms("0") == 0);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  CHECK(gateway::parse_cache_ttl_ms("9223372036854775807") == kMax);  // 2^63-1 s: saturated, not wrapped
  CHECK(gateway::parse_cache_ttl_ms("9223372036854775807d") == kMax);
  CHECK(gateway::parse_cache_ttl_ms("99999999999999999999999") == kMax);
  CHECK(gateway::parse_cache_ttl_ms("106751991167300d") == kMax);
  for (const char* bad : {"", "-1", "-5s", "+5", "1.5", "5 s", "5sec", "abc", "1w"}) {
    CAPTURE(bad);
    CHECK(!gateway::parse_cache_ttl_ms(bad));
  }
}

TEST_CASE("a second server on a port in use fails with address in use unless both share it") {
  test::TempDir dir;
  auto config_for = [&](const std::string& listen, const std::string& sub, bool reuse) {
    auto cfg = config::load_config_text("server: { listen: [\"" + listen + "\"], threads: 2, busy_poll: 0, reuse_port: " +
                                            (reuse ? "true" : "false") + " }\ndata_dir: " + dir.path() + "/" + sub + R"(
admin: { listen: "127.0.0.1:0" }  # not the API port + 1, which a parallel test may hold
providers: { openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "sk-x" } }
passthrough: [ { prefix: "", provider: openai } ]
)",
                                        "test");
    REQUIRE_MESSAGE(cfg, (cfg ? "" : cfg.error().message));
    return std::move(*cfg);
  };
  gateway::Server first(config_for("127.0.0.1:0", "a", false), "");
  REQUIRE(first.start());
  const std::string taken = "127.0.0.1:" + std::to_string(first.ports().at(0));

  gateway::Server second(config_for(taken, "b", false), "");
  const auto r = second.start();
  REQUIRE(!r);
  CHECK(r.error().message.find("address in use") != std::string::npos);
  CHECK(r.error().message.find("reuse_port") != std::string::npos);
  first.stop();

  // Sharing configured on both: both listen.
  gateway::Server a(config_for("127.0.0.1:0", "c", true), "");
  REQUIRE(a.start());
  gateway::Server b(config_for("127.0.0.1:" + std::to_string(a.ports().at(0)), "d", true), "");
  const auto rb = b.start();
  CHECK_MESSAGE(rb, (rb ? "" : rb.error().message));
  b.stop();
  a.stop();
}
