// Upstream TLS and HTTP/2: frugal → Debian's nginx (TLS, h2, self-signed CA made here
// with the openssl CLI) → the C++ mock. Loopback only.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::free_port;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("TLS upstreams: HTTP/2 negotiated and multiplexed, HTTP/1.1 on request, verification enforced") {
  const auto dir = std::filesystem::temp_directory_path() / ("frugal-tls-it-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "logs");
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string gen = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                          "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                          " >/dev/null 2>&1";
  REQUIRE(std::system(gen.c_str()) == 0);
  std::filesystem::permissions(dir, std::filesystem::perms::all);  // nginx workers may drop root

  Child mock({MOCK_UPSTREAM_BIN});
  const std::string mock_port = mock.wait_for("PORT=(\\d+)");
  const int tls_port = free_port();
  std::ofstream(dir / "nginx.conf") << "worker_processes 1;\ndaemon off;\npid " << (dir / "nginx.pid").string()
      << ";\nerror_log " << (dir / "logs/error.log").string() << " warn;\nevents { worker_connections 256; }\n"
      << "http {\n  log_format p '$server_protocol $connection $status';\n"
      << "  access_log " << (dir / "logs/access.log").string() << " p;\n"
      << "  upstream mock { server 127.0.0.1:" << mock_port << "; keepalive 8; }\n"
      << "  server {\n    listen 127.0.0.1:" << tls_port << " ssl http2;\n"
      << "    ssl_certificate " << cert << ";\n    ssl_certificate_key " << key << ";\n"
      << "    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection \"\"; "
         "proxy_buffering off; }\n  }\n}\n";
  Child nginx({"/usr/sbin/nginx", "-p", dir.string(), "-c", (dir / "nginx.conf").string()});
  for (int i = 0; i < 400; ++i) {  // up to ~20 s for nginx to listen on a loaded machine
    if (std::system(("curl -s -k -o /dev/null https://127.0.0.1:" + std::to_string(tls_port) + "/").c_str()) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  const std::string base = "https://127.0.0.1:" + std::to_string(tls_port) + "/v1";
  std::ofstream(dir / "frugal.yaml") << "data_dir: " << (dir / "data").string() << R"(
server: { listen: ["127.0.0.1:0"], threads: 1 }
cache: { enabled: false }
providers:
  h2: { kind: openai, base_url: )" << base << ", tls: { ca_file: " << cert << R"( } }
  h1: { kind: openai, base_url: )" << base << ", http2: false, tls: { ca_file: " << cert << R"( } }
  untrusted: { kind: openai, base_url: )" << base << R"(, retry: { max_attempts: 1 } }
models:
  via-h2: h2/gpt-4o
  via-h1: h1/gpt-4o
  via-untrusted: untrusted/gpt-4o
)";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const std::string url = "http://127.0.0.1:" + gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)") + "/v1/chat/completions";
  auto chat = [&](const std::string& model, const std::string& extra = "") {
    return request("POST", url, R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}])" + extra + "}");
  };

  for (int i = 0; i < 5; ++i) {
    auto r = chat("via-h2");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(r.body.find("Hello from the mock upstream.") != std::string::npos);
  }
  auto s = chat("via-h2", R"(,"stream":true)");
  CHECK(s.status == 200);
  CHECK(s.body.find("data: [DONE]") != std::string::npos);
  CHECK(chat("via-h1").status == 200);

  auto bad = chat("via-untrusted");
  CHECK(bad.status >= 500);
  CHECK(bad.body.find("certificate") != std::string::npos);

  gw.stop();
  nginx.stop(SIGQUIT);  // graceful: flushes the access log
  std::istringstream log(slurp(dir / "logs/access.log"));
  std::string proto, conn, status;
  std::set<std::string> h2_conns;
  int h2 = 0, h1 = 0;
  while (log >> proto >> conn >> status) {
    if (status != "200") continue;
    if (proto == "HTTP/2.0") {
      ++h2;
      h2_conns.insert(conn);
    } else if (proto == "HTTP/1.1") {
      ++h1;
    }
  }
  CHECK(h2 == 6);
  CHECK(h1 == 1);
  CHECK(h2_conns.size() == 1);  // one TLS connection, reused (multiplexed) for every request
  std::filesystem::remove_all(dir);
}
