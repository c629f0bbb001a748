// backends/http/h1_client: the built-in HTTP/1.1 client against a scripted loopback
// server that writes exact bytes (framing, keep-alive, cuts, stalls), and the
// HttpClient's choice between it and libcurl.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "backends/http/h1_client.h"
#include "backends/http/http_client.h"

using namespace frugal;
using frugal::backends::CallState;
using frugal::http::parse_plain_http_url;

namespace {

// A TCP socket bound to an ephemeral loopback port (not listening yet).
int bind_loopback(uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads one request (head and Content-Length body); empty on EOF.
std::string read_request(int fd, std::string& pending) {
  for (;;) {
    const size_t head_end = pending.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t length = 0;
      const size_t cl = pending.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) length = std::stoul(pending.substr(cl + 16));
      const size_t total = head_end + 4 + length;
      if (pending.size() >= total) {
        std::string req = pending.substr(0, total);
        pending.erase(0, total);
        return req;
      }
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    pending.append(buf, static_cast<size_t>(n));
  }
}

// Answers each request on each connection with `script(request, conn, index)`, which
// writes to fd itself and returns false to close the connection.
class ScriptServer {
 public:
  using Script = std::function<bool(int fd, const std::string& request, int conn, int index)>;
  explicit ScriptServer(Script script) : script_(std::move(script)) {
    fd_ = bind_loopback(port);
    REQUIRE(::listen(fd_, 64) == 0);
    acceptor_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        const int conn = accepts++;
        std::lock_guard lock(mu_);
        conns_.push_back(c);
        workers_.emplace_back([this, c, conn] {
          std::string pending;
          for (int i = 0;; ++i) {
            const std::string req = read_request(c, pending);
            if (req.empty()) break;
            {
              std::lock_guard l(mu_);
              requests.push_back(req);
            }
            if (!script_(c, req, conn, i)) break;
          }
          ::shutdown(c, SHUT_RDWR);
          ++closes;
        });
      }
    });
  }
  ~ScriptServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    }
    for (auto& w : workers_) w.join();
    for (int c : conns_) ::close(c);
  }
  std::string url(std::string_view path = "/v1/chat/completions") const {
    return "http://127.0.0.1:" + std::to_string(port) + std::string(path);
  }
  std::string request(size_t i) {
    std::lock_guard lock(mu_);
    return i < requests.size() ? requests[i] : std::string();
  }
  size_t request_count() {
    std::lock_guard lock(mu_);
    return requests.size();
  }

  uint16_t port = 0;
  std::atomic<int> accepts{0};
  std::atomic<int> closes{0};  // connections the server has shut down
  std::vector<std::string> requests;

 private:
  Script script_;
  int fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
};

// Polls `done` every millisecond for up to 20 s (a loaded CI machine is slow, never that
// slow); returns whether it became true. Synchronises the scripted server with the client
// instead of sleeping and hoping.
bool wait_until(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::string ok_response(std::string_view body, std::string_view extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + std::string(extra) + "\r\n" + std::string(body);
}

http::HttpRequest post(std::string url, std::string body = R"({"model":"m"})") {
  http::HttpRequest r;
  r.url = std::move(url);
  r.headers = {"Content-Type: application/json", "Authorization: Bearer sk-1", "Expect:"};
  r.body = std::move(body);
  r.first_byte_timeout_ms = 2'000;
  r.total_timeout_ms = 5'000;
  return r;
}

// Runs the io_context until `call` is done (or 10 s pass); returns the bytes taken.
std::string drain(boost::asio::io_context& io, const std::shared_ptr<backends::Call>& call) {
  std::string body;
  bool done = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        while (call->state() != CallState::kDone) {
          co_await call->wait();
          body += call->take_body();
        }
        body += call->take_body();
        done = true;
      },
      boost::asio::detached);
  io.restart();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(20));
  REQUIRE(done);
  return body;
}

}  // namespace

TEST_CASE("plain http URLs parse, anything else is left to libcurl") {
  auto u = parse_plain_http_url("http://127.0.0.1:8000/v1/chat/completions");
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8000);
  CHECK(u->authority == "127.0.0.1:8000");
  CHECK(u->target == "/v1/chat/completions");

  u = parse_plain_http_url("HTTP://vllm.internal/v1/models?x=1");
  REQUIRE(u);
  CHECK(u->host == "vllm.internal");
  CHECK(u->port == 80);
  CHECK(u->target == "/v1/models?x=1");

  u = parse_plain_http_url("http://[::1]:9000");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->authority == "[::1]:9000");
  CHECK(u->target == "/");

  u = parse_plain_http_url("http://h?q");
  REQUIRE(u);
  CHECK(u->target == "/?q");

  for (const char* bad : {"https://api.openai.com/v1", "http://user:pw@h/v1", "http://h/v1#frag", "http://h:0/",
                          "http://h:65536/", "http://h:80x/", "http:///v1", "http://h:/", "http://::1/",
                          "http://[::1/", "http://[]:80/", "http://[::1]x/", "http://h/a b", "ftp://h/"})
    CHECK_MESSAGE(!parse_plain_http_url(bad), bad);
}

TEST_CASE("a client parses each URL once and shares the result, non-plain URLs stay unparsed") {
  boost::asio::io_context io;
  http::H1Client client(io);
  const auto a = client.plain_url("http://127.0.0.1:8000/v1/chat/completions");
  REQUIRE(a);
  CHECK(a->target == "/v1/chat/completions");
  CHECK(client.plain_url("http://127.0.0.1:8000/v1/chat/completions") == a);
  CHECK(client.plain_url("http://127.0.0.1:8000/v1/models") != a);
  CHECK_FALSE(client.plain_url("https://api.openai.com/v1/chat/completions"));
}

TEST_CASE("a request is sent as one HTTP/1.1 message and its response read back") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, ok_response(R"({"ok":true})", "X-Upstream: yes\r\n"));
    return true;
  });
  boost::asio::io_context io;
  http::HttpClient client(io);
  auto call = client.start(post(server.url("/v1/chat/completions?api-version=1")));
  const std::string body = drain(io, call);
  CHECK(call->error() == "");
  CHECK(call->status() == 200);
  CHECK(call->got_headers());
  CHECK(body == R"({"ok":true})");
  CHECK(call->header("x-upstream") == "yes");
  CHECK(call->header("content-type") == "application/json");
  CHECK(call->headers_us() >= call->started_us());

  const std::string req = server.request(0);
  CHECK(req.rfind("POST /v1/chat/completions?api-version=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(req.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port) + "\r\n") != std::string::npos);
  CHECK(req.find("\r\nAuthorization: Bearer sk-1\r\n") != std::string::npos);
  CHECK(req.find("\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}") != std::string::npos);
  CHECK(req.find("Expect") == std::string::npos);  // "Name:" removes a header
}

TEST_CASE("keep-alive connections are reused, one closed while idle is replaced transparently") {
  ScriptServer server([](int fd, const std::string&, int conn, int index) {
    send_all(fd, ok_response("{\"conn\":" + std::to_string(conn) + "}"));
    // The first connection closes after its second response, without saying so (as a
    // server's idle timeout does): the client only learns when it reuses it.
    return !(conn == 0 && index == 1);
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto start = [&] { return client.start(post(server.url()), client.plain_url(server.url())); };
  CHECK(drain(io, start()) == R"({"conn":0})");
  CHECK(client.idle_connections() == 1);
  CHECK(drain(io, start()) == R"({"conn":0})");
  CHECK(server.accepts == 1);
  REQUIRE(wait_until([&] { return server.closes == 1; }));  // the server has closed it

  auto third = start();
  CHECK(drain(io, third) == R"({"conn":1})");
  CHECK(third->error() == "");
  CHECK(server.accepts == 2);
  CHECK(server.request_count() == 3);  // the stale connection carried no request
  CHECK(client.idle_connections() == 1);
  CHECK(client.active_transfers() == 0);
}

TEST_CASE("chunked bodies arrive piece by piece, headers first") {
  // The server sends the next piece only once the client has seen the previous one, so
  // a slow machine cannot merge them.
  std::atomic<bool> headers_seen{false};
  std::atomic<int> pieces_seen{0};
  ScriptServer server([&](int fd, const std::string&, int, int) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    if (!wait_until([&] { return headers_seen.load(); })) return false;
    send_all(fd, "6\r\ndata: ");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a chunk split mid-frame
    send_all(fd, "\r\n");
    send_all(fd, "3\r\none\r\n");
    if (!wait_until([&] { return pieces_seen >= 1; })) return false;
    send_all(fd, "2\r\n\n\n\r\n0\r\n\r\n");
    return true;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  std::vector<std::string> seen;
  bool headers_before_body = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        while (call->state() != CallState::kDone) {
          co_await call->wait();
          if (call->got_headers() && seen.empty() && call->body().empty()) headers_before_body = true;
          if (call->got_headers()) headers_seen = true;
          if (!call->body().empty()) {
            seen.push_back(call->take_body());
            ++pieces_seen;
          }
        }
      },
      boost::asio::detached);
  io.run_for(std::chrono::seconds(5));
  CHECK(call->error() == "");
  CHECK(headers_before_body);
  CHECK(seen.size() >= 2);
  std::string all;
  for (const auto& s : seen) all += s;
  CHECK(all == "data: one\n\n");
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("a body delimited by the close is complete, the connection is not pooled") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    send_all(fd, "part two");
    return false;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  CHECK(drain(io, call) == "part one, part two");
  CHECK(call->error() == "");
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("a response cut mid-body is an error after the headers") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
    return false;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  CHECK(drain(io, call) == "only ten b");
  CHECK(call->got_headers());
  CHECK(call->failed());
  CHECK(call->error().find("mid-response") != std::string::npos);
  CHECK_FALSE(call->timed_out());
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("an interim 100 Continue is skipped, a malformed response is an error") {
  ScriptServer server([](int fd, const std::string& req, int, int) {
    if (req.find("/bad") != std::string::npos) {
      send_all(fd, "HTTP/1.1 two hundred\r\n\r\n");
      return false;
    }
    send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n" + ok_response("fine"));
    return true;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  CHECK(drain(io, call) == "fine");
  CHECK(call->status() == 200);
  CHECK(call->error() == "");

  auto bad = client.start(post(server.url("/bad")), client.plain_url(server.url("/bad")));
  drain(io, bad);
  CHECK(bad->failed());
  CHECK(bad->error().find("malformed") != std::string::npos);
  CHECK_FALSE(bad->got_headers());
}

TEST_CASE("an upstream that never answers times out at the first-byte deadline") {
  // The server stays silent until the test ends, so only the deadline can end the call.
  std::atomic<bool> release{false};
  ScriptServer server([&](int, const std::string&, int, int) {
    wait_until([&] { return release.load(); });
    return false;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto req = post(server.url());
  req.first_byte_timeout_ms = 200;
  const auto t0 = std::chrono::steady_clock::now();
  auto call = client.start(std::move(req), client.plain_url(server.url()));
  drain(io, call);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(call->timed_out());
  CHECK(call->failed());
  CHECK_FALSE(call->got_headers());
  CHECK(ms >= 200);
  CHECK(ms < 10'000);  // the deadline, not drain()'s own 10 s limit, ended it
  CHECK(client.active_transfers() == 0);
  release = true;
}

TEST_CASE("a refused connection fails before any headers") {
  uint16_t port = 0;
  ::close(bind_loopback(port));  // nothing listens on this port now
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/v1";

  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(url), client.plain_url(url));
  drain(io, call);
  CHECK(call->failed());
  CHECK(call->error().find("cannot connect") != std::string::npos);
  CHECK_FALSE(call->got_headers());
  CHECK_FALSE(call->timed_out());
}

TEST_CASE("cancel ends a streaming call at once and closes its connection") {
  // The server stalls after the first chunk until the test ends: only the cancel can end
  // the call before io.run_for's limit.
  std::atomic<bool> release{false};
  ScriptServer server([&](int fd, const std::string&, int, int) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    wait_until([&] { return release.load(); });
    return false;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  std::string got;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        while (call->state() != CallState::kDone) {
          co_await call->wait();
          got += call->take_body();
          if (got == "first") call->cancel();
        }
      },
      boost::asio::detached);
  const auto t0 = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(15));  // returns early once the cancelled call left no work
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  CHECK(got == "first");
  CHECK(call->cancelled());
  CHECK(call->error() == "cancelled");
  CHECK(client.idle_connections() == 0);
  CHECK(client.active_transfers() == 0);
  release = true;
}

TEST_CASE("reading pauses while a large body is not taken, and resumes when it is") {
  const std::string big(3 * 1024 * 1024, 'x');
  ScriptServer server([&](int fd, const std::string&, int, int) {
    send_all(fd, ok_response(big));
    return true;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(server.url()), client.plain_url(server.url()));
  // Nobody takes the body: the client must stop near the threshold instead of buffering it all.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (call->body().size() < http::UpstreamCall::kPauseThreshold && std::chrono::steady_clock::now() < until)
    io.run_for(std::chrono::milliseconds(10));
  io.run_for(std::chrono::milliseconds(300));  // time to overshoot, were it not paused
  CHECK(call->state() == CallState::kStreaming);
  CHECK(call->body().size() >= http::UpstreamCall::kPauseThreshold);
  CHECK(call->body().size() < http::UpstreamCall::kPauseThreshold + 64 * 1024);
  const std::string rest = drain(io, call);
  CHECK(call->error() == "");
  CHECK(rest.size() == big.size());
}

TEST_CASE("HttpClient sends plain http through the built-in client unless told otherwise") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, ok_response("{}"));
    return true;
  });
  boost::asio::io_context io;
  http::HttpClient client(io);
  drain(io, client.start(post(server.url())));
  auto req = post(server.url());
  req.builtin_http1 = false;
  auto via_curl = client.start(std::move(req));
  drain(io, via_curl);
  CHECK(via_curl->error() == "");
  REQUIRE(server.request_count() == 2);
  // libcurl adds its default Accept header; the built-in client sends only what it is given.
  CHECK(server.request(0).find("Accept: */*") == std::string::npos);
  CHECK(server.request(1).find("Accept: */*") != std::string::npos);
}

TEST_CASE("a header with a line break is refused, not sent") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, ok_response("{}"));
    return true;
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto req = post(server.url());
  req.headers.push_back("X-Evil: a\r\nX-Injected: b");
  auto call = client.start(std::move(req), client.plain_url(server.url()));
  drain(io, call);
  CHECK(call->failed());
  CHECK(call->error().find("line break") != std::string::npos);
  CHECK(server.request_count() == 0);
}

TEST_CASE("an upstream that answers before reading the whole body is heard") {
  // Answers a 413 after the request head and hangs up a little later without reading
  // the body: a client that reads only after writing everything never sees the answer.
  uint16_t port = 0;
  const int fd = bind_loopback(port);
  REQUIRE(::listen(fd, 4) == 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions";
  std::thread server([fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    const std::string body = R"({"error":{"message":"too large"}})";
    send_all(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::close(c);
  });
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(url, "{\"model\":\"m\",\"pad\":\"" + std::string(32 << 20, 'x') + "\"}"),
                           client.plain_url(url));
  const std::string body = drain(io, call);
  server.join();
  ::close(fd);
  CHECK(call->status() == 413);
  CHECK(call->error() == "");
  CHECK(body == R"({"error":{"message":"too large"}})");
  CHECK(client.idle_connections() == 0);
}

TEST_CASE("a host name is resolved before connecting") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    send_all(fd, ok_response("{}"));
    return true;
  });
  const std::string url = "http://localhost:" + std::to_string(server.port) + "/v1";
  boost::asio::io_context io;
  http::H1Client client(io);
  auto call = client.start(post(url), client.plain_url(url));
  drain(io, call);
  CHECK(call->error() == "");
  CHECK(call->status() == 200);
  CHECK(server.request(0).find("\r\nHost: localhost:" + std::to_string(server.port) + "\r\n") != std::string::npos);
}

TEST_CASE("a connection idle longer than the pool's limit is closed, not reused") {
  ScriptServer server([](int fd, const std::string&, int conn, int) {
    send_all(fd, ok_response("{\"conn\":" + std::to_string(conn) + "}"));
    return true;
  });
  boost::asio::io_context io;
  // A limit long enough that the back-to-back reuse below cannot miss it on a loaded machine.
  http::H1Client client(io, /*max_idle_ms=*/1'000);
  auto start = [&] { return client.start(post(server.url()), client.plain_url(server.url())); };
  CHECK(drain(io, start()) == R"({"conn":0})");
  CHECK(drain(io, start()) == R"({"conn":0})");  // reused within the limit
  std::this_thread::sleep_for(std::chrono::milliseconds(2'500));  // well past the limit
  CHECK(drain(io, start()) == R"({"conn":1})");  // the old one was dropped
  CHECK(server.accepts == 2);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("a timeout of 0 is no timeout, on both transports") {
  ScriptServer server([](int fd, const std::string&, int, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the 50 ms sweep
    send_all(fd, ok_response("{}"));
    return true;
  });
  boost::asio::io_context io;
  http::HttpClient client(io);
  for (bool builtin : {true, false}) {
    CAPTURE(builtin);
    auto req = post(server.url());
    req.first_byte_timeout_ms = 0;
    req.total_timeout_ms = 0;
    req.builtin_http1 = builtin;
    auto call = client.start(std::move(req));
    drain(io, call);
    CHECK(call->error() == "");
    CHECK(call->status() == 200);
  }
}
