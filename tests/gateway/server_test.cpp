// The server's own behaviour, in process: how connections land on the I/O threads.
#include "gateway/server.h"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST_CASE("connections are spread evenly over the I/O threads, whichever listener took them") {
  test::TempDir dir;
  auto cfg = config::load_config_text(R"(
server: { listen: ["127.0.0.1:0"], threads: 3, busy_poll: 0 }
data_dir: )" + dir.path() + R"(
providers: { openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "sk-x" } }
passthrough: [ { prefix: "", provider: openai } ]
)",
                                      "test");
  REQUIRE_MESSAGE(cfg, (cfg ? "" : cfg.error().message));
  gateway::Server server(std::move(*cfg), "");
  REQUIRE(server.start());
  const uint16_t port = server.ports().at(0);

  asio::io_context io;
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 12; ++i) {
    tcp::socket& s = clients.emplace_back(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    // One answered request: the connection's session is running on its thread.
    asio::write(s, asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")));
    asio::streambuf buf;
    asio::read_until(s, buf, "\r\n\r\n");
  }
  // SO_REUSEPORT alone hashes the 12 across three listeners unevenly; handed on round
  // robin, each thread serves four.
  CHECK(server.sessions_per_thread() == std::vector<int64_t>{4, 4, 4});
  for (auto& s : clients) s.close();
  server.stop();
}

TEST_CASE("the default I/O threads leave one usable CPU, and are at least one") {
  CHECK(gateway::default_io_threads(1) == 1);
  CHECK(gateway::default_io_threads(2) == 1);
  CHECK(gateway::default_io_threads(3) == 2);
  CHECK(gateway::default_io_threads(16) == 15);
}
