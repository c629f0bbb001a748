// mock_upstream: a fast, scriptable OpenAI-compatible server for tests and benchmarks.
//
// Scripting travels in the request body under "mock" (frugal passes unknown fields
// through untouched), e.g. {"mock": {"ttft_ms": 200, "chunks": 8, "status": 503,
// "fail_times": 2, "key": "t1", "retry_after": "1", "cut_after": 3, "no_done": true}}:
//   ttft_ms        delay before the response headers/first chunk
//   chunk_delay_ms delay between stream chunks
//   chunks         number of content chunks when streaming (default 4)
//   content        the assistant text (default "Hello from the mock upstream.")
//   status         answer with this error status (OpenAI-shaped error body)
//   fail_times     only the first N requests with this "key" get `status`
//   retry_after    Retry-After header value sent with `status`
//   cut_after      stream this many chunks, then close the connection mid-chunk
//   no_done        end the stream cleanly but without "data: [DONE]"
//   hang           never answer (for timeouts and disconnect tests)
//   echo           reply with the received request body as the content
//   usage          {"prompt": N, "completion": N, "cached": N} reported token counts
//                  (default 12 / 7 / 0)
//   logprobs       [lp, ...]: the content is split into that many tokens with these
//                  log-probs; the runner-up alternative is `margin` (default 2.0) lower
//   tokens         [{"t": "Yes", "lp": -0.1, "top": [["Yes", -0.1], ["No", -2.3]]}, ...]:
//                  explicit tokens (the content is their concatenation) and alternatives
//   models         {"<upstream model>": {script}}: applied over the rest for that model
//                  only, so one request body can script every tier of a cascade
// Log-probs are returned only when the request asks (logprobs: true), with
// min(top_logprobs, alternatives) alternatives, as OpenAI does; a stream with scripted
// tokens sends one chunk per token.
// Models named no-such-* get the 404 model_not_found a real upstream sends.
// GET /mock/stats → {"requests":N,"chat":N,"aborted":N}; POST /mock/reset zeroes it and
// the log. GET /mock/last_request → the last chat body received. GET /mock/log → a JSON
// array of every chat body since the last reset (at most 10 000).
// POST /mock/models {"<model>": {script}, ...} sets per-model scripts applied to every
// request for that model (under the request's own `models` entry); for requests the
// gateway builds itself, such as a cascade verifier's question. `{}` clears them.
#include <simdjson.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Stats {
  std::atomic<int64_t> requests{0}, chat{0}, aborted{0};
  std::atomic<int64_t> last_abort_us{0};  // steady_clock (CLOCK_MONOTONIC) µs of the last abort seen
  std::mutex mu;
  std::map<std::string, int64_t> fail_counts;
  std::string last_request;
  std::vector<std::string> log;                   // chat bodies since the last reset
  std::map<std::string, std::string> model_scripts;  // POST /mock/models
  std::string require_key;
};
Stats g_stats;

struct Token {
  std::string text;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;  // alternatives, most likely first
};

struct Script {
  int64_t ttft_ms = 0, chunk_delay_ms = 0, chunks = 4, status = 0, fail_times = -1, cut_after = -1;
  bool no_done = false, hang = false, echo = false, stream = false, include_usage = false;
  std::string content = "Hello from the mock upstream.", key, retry_after, model = "mock-model";
  int64_t prompt_tokens = 12, completion_tokens = 7, cached_tokens = 0;
  std::vector<double> logprobs;  // shorthand: split the content into this many tokens
  double margin = 2.0;
  std::vector<Token> tokens;     // explicit tokens (wins over `logprobs`)
  bool want_logprobs = false;    // the request asked for logprobs
  int64_t top_logprobs = 0;
};

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Applies one script object (the request's "mock", a per-model entry) onto `s`.
void apply_script(simdjson::dom::element m, Script& s) {
  if (!m.is_object()) return;
  int64_t v;
  bool b;
  double d;
  std::string_view sv;
  if (!m["ttft_ms"].get_int64().get(v)) s.ttft_ms = v;
  if (!m["chunk_delay_ms"].get_int64().get(v)) s.chunk_delay_ms = v;
  if (!m["chunks"].get_int64().get(v)) s.chunks = std::max<int64_t>(1, v);
  if (!m["status"].get_int64().get(v)) s.status = v;
  if (!m["fail_times"].get_int64().get(v)) s.fail_times = v;
  if (!m["cut_after"].get_int64().get(v)) s.cut_after = v;
  if (!m["no_done"].get_bool().get(b)) s.no_done = b;
  if (!m["hang"].get_bool().get(b)) s.hang = b;
  if (!m["echo"].get_bool().get(b)) s.echo = b;
  if (!m["content"].get_string().get(sv)) s.content = sv;
  if (!m["key"].get_string().get(sv)) s.key = sv;
  if (!m["retry_after"].get_string().get(sv)) s.retry_after = sv;
  if (!m["margin"].get_double().get(d)) s.margin = d;
  simdjson::dom::element u;
  if (!m["usage"].get(u) && u.is_object()) {
    if (!u["prompt"].get_int64().get(v)) s.prompt_tokens = v;
    if (!u["completion"].get_int64().get(v)) s.completion_tokens = v;
    if (!u["cached"].get_int64().get(v)) s.cached_tokens = v;
  }
  simdjson::dom::array arr;
  if (!m["logprobs"].get_array().get(arr)) {
    s.logprobs.clear();
    s.tokens.clear();
    for (auto e : arr)
      if (!e.get_double().get(d)) s.logprobs.push_back(d);
  }
  if (!m["tokens"].get_array().get(arr)) {
    s.tokens.clear();
    s.logprobs.clear();
    for (auto e : arr) {
      Token t;
      if (!e["t"].get_string().get(sv)) t.text = sv;
      if (!e["lp"].get_double().get(d)) t.logprob = d;
      simdjson::dom::array top;
      if (!e["top"].get_array().get(top)) {
        for (auto alt : top) {
          simdjson::dom::array pair;
          std::string_view at;
          double al;
          if (alt.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_string().get(at) ||
              pair.at(1).get_double().get(al))
            continue;
          t.top.emplace_back(std::string(at), al);
        }
      }
      s.tokens.push_back(std::move(t));
    }
    std::string content;
    for (const auto& t : s.tokens) content += t.text;
    s.content = content;
  }
}

// Splits the content into the scripted tokens (`logprobs` shorthand) if needed.
void finalize_tokens(Script& s) {
  if (!s.tokens.empty() || s.logprobs.empty()) return;
  const size_t n = s.logprobs.size();
  const size_t piece = std::max<size_t>(1, (s.content.size() + n - 1) / n);
  for (size_t i = 0; i < n; ++i) {
    Token t;
    t.text = i * piece < s.content.size() ? s.content.substr(i * piece, piece) : "";
    t.logprob = s.logprobs[i];
    t.top = {{t.text, t.logprob}, {"<alt>", t.logprob - s.margin}};
    s.tokens.push_back(std::move(t));
  }
}

Script parse_script(const std::string& body) {
  Script s;
  thread_local simdjson::dom::parser parser;
  thread_local simdjson::dom::parser model_parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root)) return s;
  std::string_view sv;
  if (!root["model"].get_string().get(sv)) s.model = sv;
  bool b;
  if (!root["stream"].get_bool().get(b)) s.stream = b;
  if (!root["stream_options"]["include_usage"].get_bool().get(b)) s.include_usage = b;
  if (!root["logprobs"].get_bool().get(b)) s.want_logprobs = b;
  int64_t v;
  if (!root["top_logprobs"].get_int64().get(v)) s.top_logprobs = v;
  simdjson::dom::element m;
  const bool has_mock = !root["mock"].get(m) && m.is_object();
  if (has_mock) apply_script(m, s);
  std::string model_script;
  {
    std::lock_guard lock(g_stats.mu);
    auto it = g_stats.model_scripts.find(s.model);
    if (it != g_stats.model_scripts.end()) model_script = it->second;
  }
  simdjson::dom::element ms;
  if (!model_script.empty() && !model_parser.parse(model_script).get(ms)) apply_script(ms, s);
  simdjson::dom::element per_model;
  if (has_mock && !m["models"][s.model].get(per_model)) apply_script(per_model, s);
  if (s.echo) s.content = body;
  finalize_tokens(s);
  return s;
}

void token_entry(std::string& out, std::string_view text, double logprob) {
  char num[40];
  std::snprintf(num, sizeof num, "%.17g", logprob);
  out += R"({"token":")" + escape(text) + R"(","logprob":)" + num + R"(,"bytes":[)";
  for (size_t i = 0; i < text.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(static_cast<unsigned char>(text[i]));
  }
  out += "]";
}

// OpenAI's choices[].logprobs object for tokens [from, to).
std::string logprobs_json(const Script& s, size_t from, size_t to) {
  std::string out = R"({"content":[)";
  for (size_t i = from; i < to; ++i) {
    const Token& t = s.tokens[i];
    if (i > from) out += ',';
    token_entry(out, t.text, t.logprob);
    out += R"(,"top_logprobs":[)";
    const size_t n = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(0, s.top_logprobs)), t.top.size());
    for (size_t k = 0; k < n; ++k) {
      if (k) out += ',';
      token_entry(out, t.top[k].first, t.top[k].second);
      out += '}';
    }
    out += "]}";
  }
  out += R"(],"refusal":null})";
  return out;
}

bool send_logprobs(const Script& s) { return s.want_logprobs && !s.tokens.empty(); }

std::string usage_json(const Script& s) {
  return R"({"prompt_tokens":)" + std::to_string(s.prompt_tokens) + R"(,"completion_tokens":)" +
         std::to_string(s.completion_tokens) + R"(,"total_tokens":)" +
         std::to_string(s.prompt_tokens + s.completion_tokens) + R"(,"prompt_tokens_details":{"cached_tokens":)" +
         std::to_string(s.cached_tokens) + "}}";
}

std::string completion_body(const Script& s) {
  return R"({"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":")" + escape(s.model) +
         R"(","choices":[{"index":0,"message":{"role":"assistant","content":")" + escape(s.content) +
         R"("},"finish_reason":"stop","logprobs":)" +
         (send_logprobs(s) ? logprobs_json(s, 0, s.tokens.size()) : std::string("null")) + R"(}],"usage":)" +
         usage_json(s) + "}";
}

std::string chunk(const Script& s, std::string_view delta_json, std::string_view finish,
                  std::string_view logprobs = "null") {
  return R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":")" +
         escape(s.model) + R"(","choices":[{"index":0,"delta":)" + std::string(delta_json) +
         R"(,"logprobs":)" + std::string(logprobs) + R"(,"finish_reason":)" + std::string(finish) + "}]}\n\n";
}

std::string error_body(int64_t status) {
  const char* type = status == 401 ? "authentication_error" : status == 429 ? "rate_limit_error"
                     : status >= 500 ? "server_error" : "invalid_request_error";
  return R"({"error":{"message":"mock upstream error )" + std::to_string(status) + R"(","type":")" + type +
         R"(","param":null,"code":null}})";
}

asio::awaitable<void> sleep_ms(int64_t ms) {
  if (ms <= 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(kTuple);
}

int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

void record_abort() {
  g_stats.last_abort_us = mono_us();
  g_stats.aborted++;
}

// Notices the peer closing while a response is in progress (between our writes), so
// the time of an abort is measured when it happens, not at our next write.
struct CloseWatch {
  std::shared_ptr<bool> active = std::make_shared<bool>(true);
  explicit CloseWatch(tcp::socket& s) {
    const int fd = s.native_handle();
    s.async_wait(tcp::socket::wait_read, [a = active, fd](const boost::system::error_code& ec) {
      if (ec || !*a) return;
      char c;
      if (::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        *a = false;
        record_abort();
      }
    });
  }
  bool closed() const { return !*active; }
  ~CloseWatch() { *active = false; }
};

asio::awaitable<bool> write_raw(beast::tcp_stream& stream, const std::string& s) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(s), kTuple);
  co_return !ec;
}

std::string frame(const std::string& payload) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%zx\r\n", payload.size());
  return buf + payload + "\r\n";
}

// Returns false when the connection must close.
asio::awaitable<bool> serve_chat(beast::tcp_stream& stream, http::request<http::string_body>& req) {
  g_stats.chat++;
  const Script s = parse_script(req.body());
  {
    std::lock_guard lock(g_stats.mu);
    g_stats.last_request = req.body();
    if (g_stats.log.size() < 10'000) g_stats.log.push_back(req.body());
  }
  if (s.hang) {
    // Wait until the client goes away.
    char c;
    co_await stream.socket().async_read_some(asio::buffer(&c, 1), kTuple);
    record_abort();
    co_return false;
  }
  co_await sleep_ms(s.ttft_ms);
  const bool keep = req.keep_alive();
  auto respond = [&](int status, std::string body, std::string retry_after) -> asio::awaitable<bool> {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    if (!retry_after.empty()) res.set(http::field::retry_after, retry_after);
    res.keep_alive(keep);
    res.body() = std::move(body);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, kTuple);
    co_return !ec && keep;
  };
  if (!g_stats.require_key.empty() && req[http::field::authorization] != "Bearer " + g_stats.require_key)
    co_return co_await respond(401, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})", "");
  if (s.model.rfind("no-such-", 0) == 0)  // how a real upstream answers an unknown model
    co_return co_await respond(404, R"({"error":{"message":"The model `)" + escape(s.model) +
                                        R"(` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})", "");
  if (s.status >= 400) {
    bool fail = true;
    if (s.fail_times >= 0) {
      std::lock_guard lock(g_stats.mu);
      fail = g_stats.fail_counts[s.key]++ < s.fail_times;
    }
    if (fail) co_return co_await respond(static_cast<int>(s.status), error_body(s.status), s.retry_after);
  }
  if (!s.stream) co_return co_await respond(200, completion_body(s), "");

  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "Transfer-Encoding: chunked\r\n";
  head += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  head += frame(chunk(s, R"({"role":"assistant","content":""})", "null"));
  if (!co_await write_raw(stream, head)) co_return false;
  CloseWatch watch(stream.socket());
  // Scripted tokens: one chunk per token, carrying its log-probs when asked for.
  const bool by_token = !s.tokens.empty();
  const size_t n = by_token ? s.tokens.size() : static_cast<size_t>(s.chunks);
  const size_t piece = (s.content.size() + n - 1) / n;
  for (size_t i = 0; i < n; ++i) {
    co_await sleep_ms(s.chunk_delay_ms);
    if (watch.closed()) co_return false;
    const std::string text = by_token ? s.tokens[i].text
                             : i * piece < s.content.size() ? s.content.substr(i * piece, piece) : "";
    std::string ev = chunk(s, R"({"content":")" + escape(text) + "\"}", "null",
                           send_logprobs(s) ? logprobs_json(s, i, i + 1) : std::string("null"));
    if (s.cut_after >= 0 && static_cast<int64_t>(i) == s.cut_after) {
      // Half an event, then the connection drops.
      co_await write_raw(stream, frame(ev.substr(0, ev.size() / 2)));
      co_return false;
    }
    if (!co_await write_raw(stream, frame(ev))) co_return false;
  }
  std::string tail = frame(chunk(s, "{}", "\"stop\""));
  if (s.include_usage)
    tail += frame(R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":")" +
                  escape(s.model) + R"(","choices":[],"usage":)" + usage_json(s) + "}\n\n");
  if (!s.no_done) tail += frame("data: [DONE]\n\n");
  tail += "0\r\n\r\n";
  if (!co_await write_raw(stream, tail)) co_return false;
  co_return keep;
}

asio::awaitable<void> session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(stream, buffer, req, kTuple);
    if (ec) break;
    g_stats.requests++;
    bool keep = req.keep_alive();
    const std::string_view target = req.target();
    auto reply = [&](int status, std::string body) -> asio::awaitable<bool> {
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(keep);
      res.body() = std::move(body);
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
      co_return !wec && keep;
    };
    if (target == "/v1/chat/completions" || target == "/chat/completions") {
      keep = co_await serve_chat(stream, req);
    } else if (target == "/v1/models" || target == "/models") {
      keep = co_await reply(200, R"({"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"mock"},{"id":"mock-large","object":"model","created":0,"owned_by":"mock"}]})");
    } else if (target == "/mock/stats") {
      keep = co_await reply(200, R"({"requests":)" + std::to_string(g_stats.requests.load()) + R"(,"chat":)" +
                                     std::to_string(g_stats.chat.load()) + R"(,"aborted":)" +
                                     std::to_string(g_stats.aborted.load()) + R"(,"last_abort_us":)" +
                                     std::to_string(g_stats.last_abort_us.load()) + "}");
    } else if (target == "/mock/reset") {
      g_stats.requests = 0;
      g_stats.chat = 0;
      g_stats.aborted = 0;
      {
        std::lock_guard lock(g_stats.mu);
        g_stats.fail_counts.clear();
        g_stats.log.clear();
      }
      keep = co_await reply(200, "{}");
    } else if (target == "/mock/log") {
      std::string body = "[";
      {
        std::lock_guard lock(g_stats.mu);
        for (size_t i = 0; i < g_stats.log.size(); ++i) body += (i ? "," : "") + g_stats.log[i];
      }
      body += "]";
      keep = co_await reply(200, std::move(body));
    } else if (target == "/mock/models") {
      simdjson::dom::parser p;
      simdjson::dom::object obj;
      if (p.parse(req.body()).get_object().get(obj)) {
        keep = co_await reply(400, R"({"error":{"message":"expected a JSON object","type":"invalid_request_error","param":null,"code":null}})");
      } else {
        {
          std::lock_guard lock(g_stats.mu);
          g_stats.model_scripts.clear();
          for (auto [k, v] : obj) g_stats.model_scripts[std::string(k)] = simdjson::minify(v);
        }
        keep = co_await reply(200, "{}");
      }
    } else if (target == "/mock/last_request") {
      std::string body;
      {
        std::lock_guard lock(g_stats.mu);
        body = g_stats.last_request;
      }
      keep = co_await reply(200, body);
    } else {
      keep = co_await reply(404, R"({"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}})");
    }
    if (!keep) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> listen(tcp::acceptor& acc) {
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(kTuple);
    if (ec) co_return;
    sock.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acc.get_executor(), session(std::move(sock)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (a == "--host" && i + 1 < argc) host = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--require-key" && i + 1 < argc) g_stats.require_key = argv[++i];
    else {
      std::fprintf(stderr, "usage: mock_upstream [--host H] [--port P] [--threads N] [--require-key K]\n");
      return 2;
    }
  }
  asio::io_context io(threads);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address(host), static_cast<uint16_t>(port)));
  std::printf("PORT=%d\n", acc.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, listen(acc), asio::detached);
  asio::signal_set sigs(io, SIGINT, SIGTERM);
  sigs.async_wait([&](auto, int) { io.stop(); });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
