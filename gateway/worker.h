#pragma once
// One I/O thread's world: its io_context, acceptors, upstream HTTP client and pools.
// Everything here is touched only by that thread, except `io` (posted to by others).
#include <simdjson.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/http/http_client.h"
#include "backends/http/provider.h"
#include "config/config.h"
#include "core/error.h"
#include "gateway/client_watch.h"
#include "gateway/ledger_lane.h"
#include "gateway/read_deadline.h"
#include "router/dispatch.h"
#include "router/request_trace.h"

namespace frugal::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// A client connection. A plain socket, not a Beast tcp_stream: read timeouts come from
// the worker's read_deadlines ticker rather than a timer per operation.
using ClientSocket = tcp::socket;

class Server;

// An io_context whose pending handlers (suspended request coroutines included) can be
// destroyed while the objects they reference still exist.
class WorkerIoContext : public asio::io_context {
 public:
  using asio::io_context::io_context;
  // Shuts the services down, destroying every pending handler. Afterwards the context
  // only waits to be destroyed.
  void destroy_pending_handlers() { shutdown(); }
};

class Worker final : public router::Backends {
 public:
  explicit Worker(Server& server);
  ~Worker() override;

  // The backend of `provider` on this thread, created on first use and rebuilt when the
  // config snapshot changes (calls in flight keep what they need alive).
  backends::Backend& backend(const config::ProviderConfig& provider) override;
  asio::io_context& io_context() override { return io; }
  // The worker whose I/O thread this is (null on other threads): write deadlines find
  // their ticker and timeout through it.
  static Worker* current();
  void make_current();

  Server& server;
  WorkerIoContext io{1};
  DeadlineTicker watch_ticker{io, kWatchTickMs};  // arms deferred client watches
  LedgerLane ledger_lane;
  DeadlineTicker read_deadlines{io, kReadDeadlineTickMs};
  std::unique_ptr<http::HttpClient> client;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;

  // simdjson parsers keep their buffers between requests; one per concurrently
  // parsed request, reused.
  std::unique_ptr<simdjson::dom::parser> acquire_parser();
  void release_parser(std::unique_ptr<simdjson::dom::parser> p);

  // server.write_timeout of the latest configuration (0 = none), refreshed by each
  // session before it routes a request.
  int64_t write_timeout_ms = 0;

  // Client connections this thread serves now (read by tests and diagnostics).
  std::atomic<int64_t> sessions{0};

  // Cached /v1/models listings, OpenAI- and Anthropic-shaped (refreshed every minute;
  // gateway/models.cpp).
  std::string models_openai, models_anthropic;
  int64_t models_cache_us = 0;

 private:
  std::vector<std::unique_ptr<simdjson::dom::parser>> parsers_;
  const config::GatewayConfig* backends_cfg_ = nullptr;
  std::shared_ptr<const config::GatewayConfig> backends_cfg_hold_;
  std::vector<std::pair<std::string, std::unique_ptr<backends::Backend>>> backends_;
  std::vector<std::pair<const config::ProviderConfig*, std::unique_ptr<backends::Backend>>> stale_backends_;
};

// A parser from the worker's pool for the duration of a scope.
struct ParserLease {
  explicit ParserLease(Worker& w) : w_(w), p(w.acquire_parser()) {}
  ~ParserLease() { w_.release_parser(std::move(p)); }
  ParserLease(const ParserLease&) = delete;
  ParserLease& operator=(const ParserLease&) = delete;
  Worker& w_;
  std::unique_ptr<simdjson::dom::parser> p;
};

// Creates the backend for one provider on one worker thread.
std::unique_ptr<backends::Backend> make_backend(const config::ProviderConfig& provider, Worker& worker);

// Per-request context shared by the handlers.
struct RequestContext {
  std::string request_id;
  int64_t start_us = 0;            // when the request had been read
  int64_t upstream_wait_us = 0;    // excluded from x-frugal-overhead-us
  bool keep_alive = true;
  // Extra response headers. Names are string literals (static storage): no copy per
  // request.
  std::vector<std::pair<std::string_view, std::string>> headers;
  // A chat request's record, set by its exchange: the x-frugal-* headers are read from it
  // when a response head is written (gateway/trace_headers.h).
  const router::RequestTrace* trace = nullptr;
  int64_t overhead_us(int64_t now_us) const;
};

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Worker& worker);
asio::awaitable<void> run_session(tcp::socket socket, Worker& worker);

// Handlers: each writes exactly one response (or closes the connection) and returns
// whether the connection may be kept alive.
using Request = bhttp::request<bhttp::string_body>;
asio::awaitable<bool> handle_chat_completions(ClientSocket& stream, Request& req,
                                              RequestContext& ctx, Worker& worker);
asio::awaitable<bool> handle_models(ClientSocket& stream, Request& req, RequestContext& ctx,
                                    Worker& worker);
// POST /v1/embeddings (gateway/embeddings.cpp).
asio::awaitable<bool> handle_embeddings(ClientSocket& stream, Request& req, RequestContext& ctx,
                                        Worker& worker);
// POST /v1/messages and /v1/messages/count_tokens (gateway/anthropic_messages.cpp).
asio::awaitable<bool> handle_messages(ClientSocket& stream, Request& req, RequestContext& ctx,
                                      Worker& worker);
asio::awaitable<bool> handle_count_tokens(ClientSocket& stream, Request& req, RequestContext& ctx,
                                          Worker& worker);

asio::awaitable<bool> handle_admin_cache(ClientSocket& stream, Request& req, RequestContext& ctx,
                                         Worker& worker);
// GET /admin/engines: every loaded engine provider with its counters (gateway/admin.cpp).
asio::awaitable<bool> handle_admin_engines(ClientSocket& stream, Request& req, RequestContext& ctx,
                                           Worker& worker);
bool admin_authorized(ClientSocket& stream, const Request& req, const config::GatewayConfig& cfg);
// The decoded value of query parameter `name` in a request target, if present.
std::optional<std::string> query_param(std::string_view target, std::string_view name);
std::string percent_decode(std::string_view s);

// Writers shared by the handlers.
// Appends "\r\nName: value" with CR and LF removed from the value.
void append_header(std::string& head, std::string_view name, std::string_view value);
// append_header for each of `headers`, in one go.
void append_headers(std::string& head, const std::vector<std::pair<std::string_view, std::string>>& headers);
asio::awaitable<bool> send_response(ClientSocket& stream, int status, std::string_view content_type,
                                    std::string body, RequestContext& ctx);
// Error bodies come from backends/dialect/errors.h: one renderer per API shape.
asio::awaitable<bool> send_openai_error(ClientSocket& stream, const Error& err, RequestContext& ctx);
asio::awaitable<bool> send_anthropic_error(ClientSocket& stream, const Error& err, RequestContext& ctx);
// Errors take the shape of the API the client is calling: Anthropic for the Messages
// API paths (/v1/messages, /messages and below) and, on other paths, for clients that
// send `anthropic-version` (every Anthropic SDK does); OpenAI otherwise.
bool wants_anthropic_errors(const Request& req);
asio::awaitable<bool> send_error(ClientSocket& stream, const Error& err, RequestContext& ctx,
                                 bool anthropic);
// The request's x-frugal-hop (0 without one); nullopt when it is not a number 0-99.
std::optional<int> frugal_hop_of(const Request& req);

// Streaming responses (chunked SSE) written by hand, so each event goes out at once.
// The status line and headers of a 200 text/event-stream response, with ctx's headers.
std::string sse_response_head(const RequestContext& ctx);
// Appends `payload` as one HTTP/1.1 chunk.
void append_http_chunk(std::string& out, std::string_view payload);
// The terminating chunk of a chunked response, with trailer fields (announced by the
// `Trailer:` line of sse_response_head).
void append_last_chunk(std::string& out, const std::vector<std::pair<std::string, std::string>>& trailers);
asio::awaitable<bool> write_raw(ClientSocket& stream, const std::string& bytes);

}  // namespace frugal::gateway
