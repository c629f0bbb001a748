// End-to-end behaviour of the `frugal` binary against the C++ mock upstream, over
// loopback, with libcurl as the client.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::Response;

namespace {

struct Env {
  std::unique_ptr<Child> mock;
  std::unique_ptr<Child> gw;
  std::string mock_url, url;
  std::filesystem::path dir;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-it-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN, "--require-key", "sk-test"});
    const std::string mport = mock->wait_for("PORT=(\\d+)");
    mock_url = "http://127.0.0.1:" + mport;
    // The suite runs twice (CMakeLists.txt): on the built-in HTTP/1.1 client with the I/O
    // threads busy-polling, and on libcurl with them sleeping between events.
    const char* transport_env = std::getenv("FRUGAL_IT_TRANSPORT");
    const std::string transport = std::string("\n    transport: ") + (transport_env ? transport_env : "auto");
    const std::string busy_poll = transport_env ? "0" : "100us";
    const std::string cfg = "data_dir: " + (dir / "data").string() + R"(
server:
  listen: ["127.0.0.1:0"]
  body_limit: 64KiB
  threads: 2
  busy_poll: )" + busy_poll + R"(
providers:
  mock:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    api_key: ${FRUGAL_TEST_KEY}
    retry: { max_attempts: 3, base_delay: 10ms, max_delay: 300ms }
    timeouts: { first_byte: 1500ms })" + transport + R"(
  dead:
    kind: openai
    base_url: http://127.0.0.1:1/v1
    retry: { max_attempts: 2, base_delay: 5ms })" + transport + R"(
  badkey:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    api_key: sk-wrong)" + transport + R"(
models:
  fast: [dead/gpt-x, mock/gpt-4o-mini]
  primary: mock/gpt-4o
  badauth: badkey/gpt-4o
passthrough:
  - { prefix: "gpt-", provider: mock }
)";
    std::ofstream(dir / "frugal.yaml") << cfg;
    gw = std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()},
                                 std::vector<std::string>{"FRUGAL_TEST_KEY=sk-test"});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  }
  ~Env() {
    gw.reset();
    mock.reset();
    std::filesystem::remove_all(dir);
  }
  Response chat(const std::string& body, std::vector<std::string> headers = {}) {
    return request("POST", url + "/v1/chat/completions", body, std::move(headers));
  }
  int64_t mock_stat(const char* key) {
    auto r = request("GET", mock_url + "/mock/stats");
    simdjson::dom::parser p;
    return p.parse(r.body)[key].get_int64().value();
  }
};

Env& env() {
  static Env e;
  return e;
}

// Asserts an OpenAI-shaped error body and returns its error.type.
std::string error_type(const Response& r) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  REQUIRE_MESSAGE(!p.parse(r.body).get(root), r.body);
  simdjson::dom::object err;
  REQUIRE_MESSAGE(!root["error"].get_object().get(err), r.body);
  std::string_view msg, type;
  CHECK(!err["message"].get_string().get(msg));
  CHECK(!msg.empty());
  CHECK(!err["type"].get_string().get(type));
  simdjson::dom::element tmp;
  CHECK(!err["param"].get(tmp));  // present (possibly null)
  CHECK(!err["code"].get(tmp));
  return std::string(type);
}

const std::string kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

}  // namespace

TEST_CASE("plain completion passes through with unknown fields, ids and overhead headers") {
  auto& e = env();
  auto r = e.chat(R"({"model":"gpt-4o-mini",)" + kMsgs + R"(,"temperature":0,"future_field":{"x":[1,2]}})");
  CHECK(r.status == 200);
  CHECK(r.body.find("Hello from the mock upstream.") != std::string::npos);
  CHECK(r.body.find("\"usage\"") != std::string::npos);
  CHECK(r.header("x-request-id").rfind("frg-", 0) == 0);
  CHECK(!r.header("x-frugal-overhead-us").empty());
  const auto last = request("GET", e.mock_url + "/mock/last_request").body;
  CHECK(last.find(R"("future_field":{"x":[1,2]})") != std::string::npos);
  CHECK(last.find(R"("temperature":0)") != std::string::npos);

  auto r2 = e.chat(R"({"model":"gpt-4o-mini",)" + kMsgs + "}", {"x-request-id: my-trace-42"});
  CHECK(r2.header("x-request-id") == "my-trace-42");
}

TEST_CASE("aliases map to the upstream model") {
  auto r = env().chat(R"({"model":"primary",)" + kMsgs + "}");
  CHECK(r.status == 200);
  CHECK(r.header("x-frugal-model") == "gpt-4o");
  CHECK(r.body.find(R"("model":"gpt-4o")") != std::string::npos);
}

TEST_CASE("streaming forwards chunks incrementally and honours include_usage") {
  auto& e = env();
  // Without include_usage the usage-only chunk (which frugal asks for upstream) is dropped.
  auto r = e.chat(R"({"model":"gpt-4o-mini","stream":true,)" + kMsgs + "}");
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "text/event-stream");
  CHECK(r.body.find("data: [DONE]") != std::string::npos);
  CHECK(r.body.find("\"usage\"") == std::string::npos);
  CHECK(request("GET", e.mock_url + "/mock/last_request").body.find(R"("include_usage":true)") != std::string::npos);

  auto u = e.chat(R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},)" + kMsgs + "}");
  CHECK(u.body.find(R"("usage":{"prompt_tokens":12)") != std::string::npos);
  CHECK(u.body.find("data: [DONE]") != std::string::npos);

  // The first content chunk must reach the client while the upstream is still producing.
  int pieces_before_end = 0;
  bool done_seen = false;
  auto s = request("POST", e.url + "/v1/chat/completions",
                   R"({"model":"gpt-4o-mini","stream":true,"mock":{"chunks":4,"chunk_delay_ms":150},)" + kMsgs + "}",
                   {}, [&](const std::string& piece) {
                     if (piece.find("[DONE]") != std::string::npos) done_seen = true;
                     else ++pieces_before_end;
                     return true;
                   });
  CHECK(s.status == 200);
  CHECK(done_seen);
  CHECK(pieces_before_end >= 3);  // delivered as separate writes, not one burst at the end
}

TEST_CASE("a stream cut mid-event or without its terminator ends with an OpenAI error event") {
  auto& e = env();
  auto cut = e.chat(R"({"model":"gpt-4o-mini","stream":true,"mock":{"chunks":5,"cut_after":2},)" + kMsgs + "}");
  CHECK(cut.status == 200);
  CHECK(cut.body.find("[DONE]") == std::string::npos);
  CHECK(cut.body.find(R"(data: {"error":{"message":"The upstream stream was interrupted)") != std::string::npos);
  // The half event never reaches the client.
  CHECK(cut.body.find("\"content\":\"Hello from the mock upstream.\"") == std::string::npos);

  auto nodone = e.chat(R"({"model":"gpt-4o-mini","stream":true,"mock":{"no_done":true},)" + kMsgs + "}");
  CHECK(nodone.body.find("[DONE]") == std::string::npos);
  CHECK(nodone.body.find("upstream_stream_interrupted") != std::string::npos);
}

TEST_CASE("a client disconnect aborts the upstream transfer") {
  auto& e = env();
  auto mono_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  const int64_t before = e.mock_stat("aborted");
  int chunks = 0;
  int64_t hung_up_us = 0;
  request("POST", e.url + "/v1/chat/completions",
          R"({"model":"gpt-4o-mini","stream":true,"mock":{"chunks":100,"chunk_delay_ms":100},)" + kMsgs + "}", {},
          [&](const std::string&) {
            if (++chunks < 2) return true;
            hung_up_us = mono_us();
            return false;  // hang up after the second piece
          });
  const auto t0 = std::chrono::steady_clock::now();
  while (e.mock_stat("aborted") == before && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(e.mock_stat("aborted") > before);
  // Both processes read CLOCK_MONOTONIC, so the mock's timestamp is comparable.
  const double abort_ms = static_cast<double>(e.mock_stat("last_abort_us") - hung_up_us) / 1000.0;
  MESSAGE("upstream connection closed " << abort_ms << " ms after the client hung up");
  // The brief's figure is 100 ms (see PERFORMANCE.md); the bound is loose for a loaded CI
  // machine, and still far below the ~10 s the stream would run if nobody aborted it.
  CHECK(abort_ms < 3'000);

  // A request the upstream never answers, from a client that gives up after `ms`:
  // whether the upstream connection was closed within a second.
  auto hang_up_after = [&](long ms) {
    const int64_t before_hang = e.mock_stat("aborted");
    request("POST", e.url + "/v1/chat/completions", R"({"model":"primary","mock":{"hang":true},)" + kMsgs + "}", {},
            nullptr, ms);
    const auto t = std::chrono::steady_clock::now();
    while (e.mock_stat("aborted") == before_hang && std::chrono::steady_clock::now() - t < std::chrono::seconds(1))
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return e.mock_stat("aborted") > before_hang;
  };

  // Same while frugal still waits for the upstream's first byte: the client gives up
  // after 300 ms, long before the 1.5 s first-byte timeout.
  CHECK(hang_up_after(300));

  // A client that hangs up at once, before its watch is armed (two ticks of the
  // worker's watch ticker): the FIN is already queued when the watch is armed.
  const int64_t sent_us = mono_us();
  REQUIRE(hang_up_after(5));
  const double abort3_ms = static_cast<double>(e.mock_stat("last_abort_us") - sent_us) / 1000.0;
  MESSAGE("a client that hung up after 5 ms: upstream closed " << abort3_ms << " ms after the request was sent");
  CHECK(abort3_ms < 1'400);  // before the 1.5 s first-byte timeout could have closed it
}

TEST_CASE("retries honour Retry-After, then fall back, and errors keep their status") {
  auto& e = env();
  // Two 503s then success: one client request, three upstream attempts.
  auto r = e.chat(R"({"model":"gpt-4o-mini","mock":{"status":503,"fail_times":2,"key":"retry-a"},)" + kMsgs + "}");
  CHECK(r.status == 200);
  CHECK(r.header("x-frugal-attempts") == "3");

  // 429 with Retry-After: 0.1 s, once.
  const auto t0 = std::chrono::steady_clock::now();
  auto ra = e.chat(R"({"model":"gpt-4o-mini","mock":{"status":429,"fail_times":1,"key":"retry-b","retry_after":"0.2"},)" + kMsgs + "}");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ra.status == 200);
  CHECK(ms >= 200);  // waited at least what the upstream asked

  // Always 429: retries exhausted, the client sees a 429 in OpenAI shape.
  auto lim = e.chat(R"({"model":"gpt-4o-mini","mock":{"status":429},)" + kMsgs + "}");
  CHECK(lim.status == 429);
  CHECK(error_type(lim) == "rate_limit_error");

  // Fallback: the alias's first target refuses connections.
  auto fb = e.chat(R"({"model":"fast",)" + kMsgs + "}");
  CHECK(fb.status == 200);
  CHECK(fb.header("x-frugal-provider") == "mock");
  CHECK(fb.header("x-frugal-attempts") == "3");  // 2 refused + 1 served

  // A non-retriable 400 from upstream is relayed once.
  auto bad = e.chat(R"({"model":"gpt-4o-mini","mock":{"status":400},)" + kMsgs + "}");
  CHECK(bad.status == 400);
  CHECK(bad.header("x-frugal-attempts").empty());
}

TEST_CASE("first-byte timeout becomes a 504") {
  auto r = env().chat(R"({"model":"gpt-4o-mini","mock":{"hang":true},)" + kMsgs + "}");
  CHECK(r.status == 504);
  CHECK(error_type(r) == "upstream_error");
}

TEST_CASE("bad input gets an OpenAI-shaped error with the right status") {
  auto& e = env();
  struct Case { const char* what; std::string method, path, body; long status; const char* type; };
  const std::string big(70 * 1024, 'x');
  const std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v1/chat/completions", "{\"model\":", 400, "invalid_request_error"},
      {"not an object", "POST", "/v1/chat/completions", "[1,2]", 400, "invalid_request_error"},
      {"missing model", "POST", "/v1/chat/completions", "{" + kMsgs + "}", 400, "invalid_request_error"},
      {"missing messages", "POST", "/v1/chat/completions", R"({"model":"gpt-4o"})", 400, "invalid_request_error"},
      {"wrong type", "POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":"hi"})", 400, "invalid_request_error"},
      {"wrong role", "POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":[{"role":"robot","content":"x"}]})", 400, "invalid_request_error"},
      {"wrong stream type", "POST", "/v1/chat/completions", R"({"model":"gpt-4o","stream":"yes",)" + kMsgs + "}", 400, "invalid_request_error"},
      {"body over limit", "POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":[{"role":"user","content":")" + big + "\"}]}", 413, "invalid_request_error"},
      {"unknown model", "POST", "/v1/chat/completions", R"({"model":"no-such-model",)" + kMsgs + "}", 404, "invalid_request_error"},
      {"wrong method", "GET", "/v1/chat/completions", "", 405, "invalid_request_error"},
      {"unknown path", "GET", "/v1/nothing-here", "", 404, "invalid_request_error"},
      {"upstream auth failure", "POST", "/v1/chat/completions", R"({"model":"badauth",)" + kMsgs + "}", 401, "authentication_error"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto r = request(c.method, e.url + c.path, c.body);
    CHECK(r.status == c.status);
    CHECK(error_type(r) == c.type);
    CHECK(!r.header("x-request-id").empty());
  }
  // Still serving after all of that.
  CHECK(e.chat(R"({"model":"gpt-4o-mini",)" + kMsgs + "}").status == 200);
}

TEST_CASE("models, health and readiness") {
  auto& e = env();
  auto m = request("GET", e.url + "/v1/models");
  CHECK(m.status == 200);
  CHECK(m.body.find(R"("id":"fast")") != std::string::npos);       // alias
  CHECK(m.body.find(R"("id":"mock-model")") != std::string::npos); // listed by the provider
  CHECK(request("GET", e.url + "/healthz").status == 200);
  CHECK(request("GET", e.url + "/readyz").status == 200);
}

TEST_CASE("client-chosen text cannot inject response headers") {
  auto r = env().chat(R"({"model":"gpt-4o\r\nx-evil: 1","messages":[{"role":"user","content":"hi"}]})");
  CHECK(r.status == 200);
  CHECK(r.header("x-evil").empty());
  CHECK(r.header("x-frugal-model") == "gpt-4ox-evil: 1");
}

TEST_CASE("a stream still running after the shutdown grace period does not crash the gateway") {
  auto& e = env();
  const auto dir = e.dir / "grace";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "frugal.yaml") << "data_dir: " << (dir / "data").string() << R"(
server: { listen: ["127.0.0.1:0"], threads: 1, shutdown_grace: 200ms }
providers:
  mock: { kind: openai, base_url: )" << e.mock_url << R"(/v1, api_key: sk-test }
passthrough: [ { prefix: "", provider: mock } ]
)";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const std::string url = "http://127.0.0.1:" + gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  std::atomic<bool> streaming{false};
  std::thread client([&] {
    request("POST", url + "/v1/chat/completions",
            R"({"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],)"
            R"("mock":{"chunks":50,"chunk_delay_ms":100}})",
            {}, [&](const std::string&) {
              streaming = true;
              return true;
            });
  });
  // The stream is in flight (its first bytes arrived) before the signal.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!streaming && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(streaming);
  CHECK(gw.stop(SIGTERM) == 0);  // the in-flight stream is dropped, the process exits cleanly
  client.join();
}

namespace {

// A raw loopback connection, for requests that arrive in pieces.
struct RawConn {
  int fd = -1;
  explicit RawConn(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConn() { ::close(fd); }
  void send(const std::string& s) const { REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }
  // Reads until the peer closes (or 5 s pass); returns the bytes and the ms it took.
  std::pair<std::string, long> read_until_closed() const {
    const auto t0 = std::chrono::steady_clock::now();
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return {out, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0).count())};
  }
};

}  // namespace

TEST_CASE("read and idle timeouts close slow and idle client connections") {
  auto& e = env();
  const auto dir = e.dir / "timeouts";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "frugal.yaml") << "data_dir: " << (dir / "data").string() << R"(
server: { listen: ["127.0.0.1:0"], threads: 1, read_timeout: 1s, idle_timeout: 1500ms }
providers:
  mock: { kind: openai, base_url: )" << e.mock_url << R"(/v1, api_key: sk-test }
passthrough: [ { prefix: "", provider: mock } ]
)";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const int port = std::stoi(gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)"));

  // Half a request, then nothing: closed after the read timeout (plus at most a tick).
  {
    RawConn c(port);
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const auto [bytes, ms] = c.read_until_closed();
    MESSAGE("half a request: closed after " << ms << " ms");
    CHECK(bytes.empty());
    CHECK(ms >= 950);
    CHECK(ms < 5'000);  // loose: a loaded CI machine; the point is that it closes at all
  }
  // A request that arrives in pieces well within the timeout is served; the idle keep-alive
  // connection is then closed after the idle timeout.
  {
    RawConn c(port);
    c.send("GET /healthz HTTP/1.1\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    c.send("Host: x\r\n\r\n");
    const auto [bytes, ms] = c.read_until_closed();
    MESSAGE("idle keep-alive connection: closed " << ms << " ms after its request was sent");
    CHECK(bytes.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(ms >= 1'450);
    CHECK(ms < 6'000);
  }
}

TEST_CASE("SIGTERM stops the gateway gracefully") {
  auto& e = env();
  CHECK(e.gw->stop(SIGTERM) == 0);
}

TEST_CASE("an endless chunk extension is refused at the request buffer limit while others are served") {
  // Boost 1.81's parser bounds neither chunk extensions nor trailers: the session's read
  // buffer did, without a cap, grow with whatever the client sent until the read timeout.
  // Its own gateway: the shared one is stopped by the SIGTERM test.
  auto& e = env();
  const auto dir = e.dir / "buffer_limit";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "frugal.yaml") << "data_dir: " << (dir / "data").string() << R"(
server: { listen: ["127.0.0.1:0"], threads: 1 }
providers:
  mock: { kind: openai, base_url: )" << e.mock_url << R"(/v1, api_key: sk-test }
passthrough: [ { prefix: "", provider: mock } ]
)";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const std::string port_text = gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  const std::string url = "http://127.0.0.1:" + port_text;
  const int port = std::stoi(port_text);
  RawConn c(port);
  c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;");
  const std::string piece(8 * 1024, 'a');
  c.send(piece);
  CHECK(request("GET", url + "/healthz").status == 200);  // served while that one is pending

  // Keep sending until frugal answers or hangs up; 1 MiB is 8x the limit.
  const auto t0 = std::chrono::steady_clock::now();
  std::string answer;
  char buf[4096];
  for (size_t sent = 0; sent < (1u << 20); sent += piece.size()) {
    const ssize_t r = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) answer.append(buf, static_cast<size_t>(r));
    if (r == 0 || r > 0) break;
    if (::send(c.fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;
  }
  answer += c.read_until_closed().first;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("refused after " << ms << " ms: " << answer.substr(0, answer.find("\r\n")));
  CHECK(ms < 4'000);  // the read timeout is 60 s: closed by the limit, not by the clock
  // The 400 arrives unless the kernel's reset (frugal closed with bytes unread) overtook it.
  if (!answer.empty()) CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(request("GET", url + "/healthz").status == 200);
}
