#pragma once
// Shared parts of mock_upstream: counters, the recorded last request, pacing and
// chunked writing, and the two places a test can put a script:
//   - a "mock" object in the request body (frugal passes unknown fields through when
//     the request is not translated);
//   - a text directive `mock:{...}` at the start of any message or system text, for
//     requests that frugal translates between dialects (translation rejects unknown
//     fields, but text always arrives). The body's "mock" object wins per key.
#include <simdjson.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mock {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Stats {
  std::atomic<int64_t> requests{0}, chat{0}, messages{0}, embeddings{0}, aborted{0};
  std::atomic<int64_t> last_abort_us{0};  // steady_clock (CLOCK_MONOTONIC) µs of the last abort seen
  std::mutex mu;
  std::map<std::string, int64_t> fail_counts;
  std::string last_request;          // body of the last chat/messages/count_tokens request
  std::string last_request_headers;  // its headers as a JSON object, lower-case names
  std::vector<std::string> log;      // chat bodies since the last reset (GET /mock/log)
  std::map<std::string, std::string> model_scripts;  // POST /mock/models: model -> script JSON
  std::string require_key;           // OpenAI: Authorization: Bearer KEY
  std::string require_anthropic_key; // Anthropic: x-api-key: KEY
};
inline Stats g_stats;

std::string escape(std::string_view s);
int64_t mono_us();
void record_abort();
// Stores `req` as the last request (body and headers).
void record_request(const Request& req);
// Whether the first `fail_times` requests with this key are still to fail (counts one).
bool should_fail(const std::string& key, int64_t fail_times);
// One HTTP/1.1 chunk.
std::string frame(const std::string& payload);
asio::awaitable<void> sleep_ms(int64_t ms);
asio::awaitable<bool> write_raw(beast::tcp_stream& stream, const std::string& s);
asio::awaitable<bool> respond(beast::tcp_stream& stream, bool keep, int status, std::string body,
                              std::string retry_after = {});

// The script for this request as JSON text (`{}` when none): the text directive
// merged with the body's "mock" object. Parse it with your own parser.
std::string script_json(simdjson::dom::element root);

// Notices the peer closing while a response is in progress (between our writes), so
// the time of an abort is measured when it happens, not at our next write.
struct CloseWatch {
  std::shared_ptr<bool> active = std::make_shared<bool>(true);
  explicit CloseWatch(tcp::socket& s);
  bool closed() const { return !*active; }
  ~CloseWatch() { *active = false; }
};

// POST /v1/messages and /v1/messages/count_tokens (anthropic.cpp). Return whether the
// connection may be kept.
asio::awaitable<bool> serve_messages(beast::tcp_stream& stream, Request& req);
asio::awaitable<bool> serve_count_tokens(beast::tcp_stream& stream, Request& req);

}  // namespace mock
