// Connection handling: read requests with deadlines, route them, write responses.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <array>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/parser.hpp>

#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <utility>

#include "backends/dialect/errors.h"
#include "core/chat.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/text.h"
#include "gateway/auth.h"
#include "gateway/find_header.h"
#include "gateway/frugal_api.h"
#include "core/log.h"
#include "gateway/readiness.h"
#include "gateway/request_parser.h"
#include "gateway/server.h"
#include "gateway/telemetry.h"
#include "gateway/trace_headers.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// RAII count of requests in flight, for graceful shutdown.
struct InFlight {
  explicit InFlight(std::atomic<int64_t>& c) : c_(c) { c_.fetch_add(1, std::memory_order_relaxed); }
  ~InFlight() { c_.fetch_sub(1, std::memory_order_relaxed); }
  std::atomic<int64_t>& c_;
};

std::string_view path_of(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

asio::awaitable<bool> method_not_allowed(ClientSocket& stream, Request& req, RequestContext& ctx, bool anthropic,
                                         std::string_view path, bhttp::verb allowed) {
  Error e = make_error(ErrorKind::kMethodNotAllowed,
                       "Method " + std::string(req.method_string()) + " is not allowed on " + std::string(path) +
                           "; use " + std::string(bhttp::to_string(allowed)) + ".");
  ctx.headers.emplace_back("Allow", std::string(bhttp::to_string(allowed)));
  co_return co_await send_error(stream, e, ctx, anthropic);
}

bool admin_path(std::string_view path) {
  return path.rfind("/admin/", 0) == 0 || path.rfind("/v1/frugal/", 0) == 0 || path == "/metrics";
}

// The admin listener: /admin/*, /v1/frugal/*, /metrics, and the health checks.
asio::awaitable<bool> route_admin(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w,
                                  std::string_view path) {
  const auto cfg = w.server.config();
  const auto method = req.method();
  boost::system::error_code ec;
  const tcp::endpoint self = stream.local_endpoint(ec);
  if (!admin_host_allowed(req, *cfg, self)) {
    // A browser sent here by a DNS name that resolves to this machine (DNS rebinding).
    co_return co_await send_openai_error(
        stream,
        make_error(ErrorKind::kPermission,
                   "Host '" + std::string(req[bhttp::field::host]) +
                       "' is not this admin listener's address; add it to admin.allowed_hosts if it should be.",
                   "", "host_not_allowed"),
        ctx);
  }
  if (path == "/healthz" || path == "/readyz") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::get);
    if (path == "/healthz") co_return co_await send_response(stream, 200, "application/json", R"({"status":"ok"})", ctx);
    const Readiness r = readiness(w.server);
    co_return co_await send_response(stream, r.status, "application/json", r.body, ctx);
  }
  if (!admin_path(path)) {
    co_return co_await send_openai_error(
        stream,
        make_error(ErrorKind::kNotFound,
                   "Unknown request URL on the admin listener: " + std::string(req.method_string()) + " " +
                       std::string(path) + " (the model APIs are on server.listen).",
                   "", "unknown_url"),
        ctx);
  }
  if (!admin_authorized(stream, req, *cfg)) {
    Error e = make_error(ErrorKind::kPermission,
                         "The admin API needs 'Authorization: Bearer <admin token>' (admin.token), or, without a "
                         "token configured, a loopback client that did not come through a proxy.",
                         "", "admin_forbidden");
    co_return co_await send_openai_error(stream, e, ctx);
  }
  if (path == "/admin/cache") {
    if (method != bhttp::verb::get && method != bhttp::verb::delete_) {
      ctx.headers.emplace_back("Allow", "GET, DELETE");
      co_return co_await send_openai_error(
          stream, make_error(ErrorKind::kMethodNotAllowed, "Use GET or DELETE on /admin/cache."), ctx);
    }
    co_return co_await handle_admin_cache(stream, req, ctx, w);
  }
  if (path == "/admin/engines") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::get);
    co_return co_await handle_admin_engines(stream, req, ctx, w);
  }
  if (path == "/admin/keys" || path.rfind("/admin/keys/", 0) == 0) co_return co_await handle_admin_keys(stream, req, ctx, w);
  if (path == "/metrics") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::get);
    co_return co_await handle_metrics(stream, req, ctx, w);
  }
  co_return co_await handle_frugal_api(stream, req, ctx, w);
}

asio::awaitable<bool> route(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w, Plane plane) {
  std::string_view path = path_of(req.target());
  const bool anthropic = wants_anthropic_errors(req);
  // Clients configured with a base URL without /v1 call the bare paths.
  const bool v1 = path.rfind("/v1/", 0) == 0;
  const std::string_view api = v1 ? path.substr(3) : path;
  const auto method = req.method();
  const auto cfg = w.server.config();

  // A web page may call frugal only from an origin the operator allowed, on any path:
  // otherwise any site a user visits could spend the providers' keys through a local
  // gateway or drive its admin API.
  switch (check_origin(req, *cfg)) {
    case OriginVerdict::kRefused: {
      Error e = make_error(ErrorKind::kPermission,
                           "Cross-origin requests from '" + std::string(req[bhttp::field::origin]) +
                               "' are not allowed (cors.allowed_origins).",
                           "", "origin_not_allowed");
      co_return co_await send_error(stream, e, ctx, anthropic);
    }
    case OriginVerdict::kAllowed:
      add_cors_headers(req, ctx);
      if (method == bhttp::verb::options) {
        add_preflight_headers(req, ctx);
        co_return co_await send_response(stream, 204, "text/plain", "", ctx);
      }
      break;
    case OriginVerdict::kNone: break;
  }
  if (auto e = content_type_error(req)) co_return co_await send_error(stream, *e, ctx, anthropic);

  // A request that already passed kMaxFrugalHops gateways (each adds x-frugal-hop to
  // its upstream requests) is going round in a loop: typically a gateway configured
  // with itself as upstream (ANTHROPIC_BASE_URL / OPENAI_BASE_URL pointing at it).
  if (const auto hop = frugal_hop_of(req); !hop || *hop >= kMaxFrugalHops) {
    Error e = hop ? make_error(ErrorKind::kInternal,
                               "Loop detected: this request already passed " + std::to_string(*hop) +
                                   " frugal gateways (x-frugal-hop). A provider's base_url probably points back "
                                   "at the gateway itself; check OPENAI_BASE_URL / ANTHROPIC_BASE_URL in the "
                                   "gateway's environment.",
                               "", "loop_detected")
                  : make_error(ErrorKind::kInvalidRequest, "x-frugal-hop must be a number from 0 to 99.", "",
                               "invalid_frugal_hop");
    if (hop) e.status = 508;
    co_return co_await send_error(stream, e, ctx, anthropic);
  }
  if (plane == Plane::kAdmin) co_return co_await route_admin(stream, req, ctx, w, path);

  const bool model_api = api == "/chat/completions" || api == "/messages" || api == "/messages/count_tokens" ||
                         api == "/models" || api == "/embeddings" || api == "/responses";
  if (model_api && auth_required(*cfg, w.server.keys())) {
    auto key = authenticate(req, w.server.keys(), wall_us());
    if (!key) co_return co_await send_error(stream, key.error(), ctx, anthropic);
    ctx.key = std::move(*key);
  }
  if (api == "/chat/completions") {
    if (method != bhttp::verb::post) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::post);
    co_return co_await handle_chat_completions(stream, req, ctx, w);
  }
  if (api == "/embeddings") {
    if (method != bhttp::verb::post) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::post);
    co_return co_await handle_embeddings(stream, req, ctx, w);
  }
  if (api == "/responses") {
    if (method != bhttp::verb::post) co_return co_await method_not_allowed(stream, req, ctx, false, path, bhttp::verb::post);
    co_return co_await handle_responses(stream, req, ctx, w);
  }
  if (api == "/messages") {
    if (method != bhttp::verb::post) co_return co_await method_not_allowed(stream, req, ctx, true, path, bhttp::verb::post);
    co_return co_await handle_messages(stream, req, ctx, w);
  }
  if (api == "/messages/count_tokens") {
    if (method != bhttp::verb::post) co_return co_await method_not_allowed(stream, req, ctx, true, path, bhttp::verb::post);
    co_return co_await handle_count_tokens(stream, req, ctx, w);
  }
  if (api == "/models") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, anthropic, path, bhttp::verb::get);
    co_return co_await handle_models(stream, req, ctx, w);
  }
  if (path == "/healthz") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, anthropic, path, bhttp::verb::get);
    co_return co_await send_response(stream, 200, "application/json", R"({"status":"ok"})", ctx);
  }
  if (path == "/readyz") {
    if (method != bhttp::verb::get) co_return co_await method_not_allowed(stream, req, ctx, anthropic, path, bhttp::verb::get);
    const Readiness r = readiness(w.server);
    co_return co_await send_response(stream, r.status, "application/json", r.body, ctx);
  }
  if (admin_path(path)) {
    Error e = make_error(ErrorKind::kNotFound,
                         std::string(path) + " is served on the admin listener (admin.listen; by default 127.0.0.1 "
                                             "on this port + 1), not on the API listener.",
                         "", "admin_on_admin_listener");
    co_return co_await send_error(stream, e, ctx, anthropic);
  }
  Error e = make_error(ErrorKind::kNotFound, "Unknown request URL: " + std::string(req.method_string()) + " " +
                                                 std::string(path) + ".",
                       "", "unknown_url");
  co_return co_await send_error(stream, e, ctx, anthropic);
}

}  // namespace

bool wants_anthropic_errors(const Request& req) {
  std::string_view path = path_of(req.target());
  if (path.rfind("/v1/", 0) == 0) path.remove_prefix(3);
  if (path == "/messages" || path.rfind("/messages/", 0) == 0) return true;
  if (path == "/chat/completions" || path == "/embeddings") return false;
  return find_header(req, "anthropic-version") != req.end();
}

std::optional<int> frugal_hop_of(const Request& req) {
  const auto it = find_header(req, kFrugalHopHeader);
  if (it == req.end()) return 0;
  const std::string_view v = it->value();
  if (v.empty() || v.size() > 2 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoi(std::string(v));
}

std::string sse_response_head(const RequestContext& ctx) {
  std::string head = "HTTP/1.1 200 OK\r\nServer: frugal\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
  head += "x-request-id: " + ctx.request_id;
  append_headers(head, ctx.headers);
  if (ctx.trace)
    for_each_response_header(*ctx.trace, [&](std::string_view k, std::string_view v) { append_header(head, k, v); });
  head += "\r\nx-frugal-overhead-us: " + std::to_string(ctx.overhead_us(mono_us())) + "\r\n";
  head += "Trailer: x-frugal-cost-usd, x-frugal-savings-usd\r\n";  // final figures (append_last_chunk)
  head += ctx.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return head;
}

void append_last_chunk(std::string& out, const std::vector<std::pair<std::string, std::string>>& trailers) {
  out += '0';
  for (const auto& [k, v] : trailers) append_header(out, k, v);  // "\r\nName: value"
  out += "\r\n\r\n";
}

void append_http_chunk(std::string& out, std::string_view payload) {
  char buf[20];
  const int len = std::snprintf(buf, sizeof buf, "%zx\r\n", payload.size());
  out.append(buf, static_cast<size_t>(len));
  out.append(payload);
  out += "\r\n";
}

namespace {

// Writes all of `buffers` to a client under its worker's write deadline
// (server.write_timeout, restarted by every partial write): a client that stops reading
// gets operation_aborted, not a write that waits forever. Sockets outside a worker
// (tests) write without one.
template <typename Buffers>
asio::awaitable<boost::system::error_code> write_to_client(ClientSocket& stream, const Buffers& buffers) {
  Worker* w = Worker::current();
  if (w && &asio::query(stream.get_executor(), asio::execution::context) != &w->io) w = nullptr;
  if (!w || w->write_timeout_ms <= 0) {
    auto [ec, n] = co_await asio::async_write(stream, buffers, kTuple);
    co_return ec;
  }
  WriteDeadline deadline(w->read_deadlines, stream, w->write_timeout_ms);
  // Called before the first write_some and after each partial one.
  auto on_progress = [&deadline](const boost::system::error_code& ec, size_t written) -> size_t {
    if (written > 0) deadline.progress();
    return asio::transfer_all()(ec, written);
  };
  auto [ec, n] = co_await asio::async_write(stream, buffers, on_progress, kTuple);
  if (deadline.expired() && ec == asio::error::operation_aborted) {
    log::info("closing a client connection: no byte could be written for " + std::to_string(w->write_timeout_ms) +
              " ms (server.write_timeout)");
    w->server.count_write_timeout();
  }
  co_return ec;
}

}  // namespace

asio::awaitable<bool> write_raw(ClientSocket& stream, const std::string& bytes) {
  const auto ec = co_await write_to_client(stream, asio::buffer(bytes));
  co_return !ec;
}

namespace {

// Writes "\r\nName: value" at `p`, which has room for the name, the value and 4 bytes,
// and returns its end. Values can carry client-chosen text (a model name): CR and LF
// are dropped, so that a value never ends the line.
char* put_header(char* p, std::string_view name, std::string_view value) {
  const auto put = [&p](std::string_view s) {
    if (s.empty()) return;  // a default view's null data must not reach memcpy
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put("\r\n");
  put(name);
  put(": ");
  if (!has_line_break(value)) {
    put(value);
    return p;
  }
  for (char c : value)
    if (c != '\r' && c != '\n') *p++ = c;
  return p;
}

}  // namespace

// One resize and plain copies: appending the four pieces of a header one by one cost
// ~4x the instructions (a capacity check and a memcpy call per piece).
void append_header(std::string& head, std::string_view name, std::string_view value) {
  const size_t at = head.size();
  head.resize(at + name.size() + value.size() + 4);
  head.resize(static_cast<size_t>(put_header(head.data() + at, name, value) - head.data()));
}

void append_headers(std::string& head, const std::vector<std::pair<std::string_view, std::string>>& headers) {
  size_t n = 0;
  for (const auto& [k, v] : headers) n += k.size() + v.size() + 4;
  const size_t at = head.size();
  head.resize(at + n);
  char* p = head.data() + at;
  for (const auto& [k, v] : headers) p = put_header(p, k, v);
  head.resize(static_cast<size_t>(p - head.data()));
}

asio::awaitable<bool> send_response(ClientSocket& stream, int status, std::string_view content_type,
                                    std::string body, RequestContext& ctx) {
  // The head is written by hand, not by Beast's serializer: this is the hot path of
  // every non-streamed answer and of cache hits, and the serializer's buffer views
  // cost more than the rest of the write (see docs/PERFORMANCE.md).
  using namespace std::string_view_literals;  // literal appends without strlen
  std::string head;
  head.reserve(256 + 64 * ctx.headers.size());
  head += "HTTP/1.1 "sv;
  head += std::to_string(status);
  head += ' ';
  head += bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  head += "\r\nServer: frugal\r\nContent-Type: "sv;
  head += content_type;
  head += "\r\nContent-Length: "sv;
  head += std::to_string(body.size());
  head += "\r\nx-request-id: "sv;
  head += ctx.request_id;
  append_headers(head, ctx.headers);
  if (ctx.trace)
    for_each_response_header(*ctx.trace, [&](std::string_view k, std::string_view v) { append_header(head, k, v); });
  head += "\r\nx-frugal-overhead-us: "sv;
  head += std::to_string(ctx.overhead_us(mono_us()));
  head += ctx.keep_alive ? "\r\nConnection: keep-alive\r\n\r\n"sv : "\r\nConnection: close\r\n\r\n"sv;
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  const auto ec = co_await write_to_client(stream, bufs);
  co_return !ec && ctx.keep_alive;
}

asio::awaitable<bool> send_openai_error(ClientSocket& stream, const Error& err, RequestContext& ctx) {
  co_return co_await send_response(stream, err.http_status(), "application/json", render_openai_error(err), ctx);
}

asio::awaitable<bool> send_anthropic_error(ClientSocket& stream, const Error& err, RequestContext& ctx) {
  co_return co_await send_response(stream, err.http_status(), "application/json", render_anthropic_error(err),
                                   ctx);
}

asio::awaitable<bool> send_error(ClientSocket& stream, const Error& err, RequestContext& ctx,
                                 bool anthropic) {
  if (anthropic) co_return co_await send_anthropic_error(stream, err, ctx);
  co_return co_await send_openai_error(stream, err, ctx);
}

namespace {
// A descriptor in transit between threads: closed if never adopted (e.g. at shutdown).
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void take() { fd_ = -1; }

 private:
  int fd_;
};
}  // namespace

namespace {

// Out of descriptors or kernel memory: the pending connection stays queued and accept
// fails again at once until something closes.
bool out_of_resources(const boost::system::error_code& ec) {
  const int v = ec.value();
  return ec.category() == boost::system::system_category() &&
         (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}

constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
constexpr int64_t kAcceptLogIntervalUs = 1'000'000;

}  // namespace

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Worker& worker, Plane plane) {
  int64_t logged_us = 0;   // when the last accept failure was logged
  int64_t unlogged = 0;    // failures since then
  asio::steady_timer backoff(worker.io);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      worker.server.count_accept_failure();
      const bool exhausted = out_of_resources(ec);
      ++unlogged;
      if (const int64_t now = mono_us(); now - logged_us >= kAcceptLogIntervalUs) {
        log::warn("accept failed: " + ec.message() +
                  (unlogged > 1 ? " (" + std::to_string(unlogged) + " failures since the last report)" : "") +
                  (exhausted ? "; retrying every " + std::to_string(kAcceptBackoff.count()) + " ms" : ""));
        logged_us = now;
        unlogged = 0;
      }
      if (exhausted) {
        backoff.expires_after(kAcceptBackoff);
        co_await backoff.async_wait(kTuple);
      }
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    Worker& target = worker.server.next_worker();
    if (&target == &worker) {
      asio::co_spawn(worker.io, run_session(std::move(socket), worker, plane), asio::detached);
      continue;
    }
    // Another thread's turn: hand it the descriptor (a socket belongs to one io_context).
    const auto protocol = socket.local_endpoint(ec).protocol();
    if (ec) continue;
    const int fd = socket.release(ec);
    if (ec) continue;  // still the socket's: closed with it
    asio::post(target.io, [fd = OwnedFd(fd), protocol, &target, plane]() mutable {
      tcp::socket s(target.io);
      boost::system::error_code aec;
      s.assign(protocol, fd.get(), aec);
      if (aec) return;
      fd.take();
      asio::co_spawn(target.io, run_session(std::move(s), target, plane), asio::detached);
    });
  }
}

asio::awaitable<void> run_session(tcp::socket socket, Worker& worker, Plane plane) {
  InFlight session(worker.sessions);
  ClientSocket& stream = socket;
  beast::flat_buffer buffer(kRequestBufferLimit);
  bool first = true;
  for (;;) {
    const auto cfg = worker.server.config();
    RequestParser parser;
    limit_request_parser(parser, static_cast<uint64_t>(cfg->server.body_limit_bytes));
    boost::system::error_code ec;
    {
      // Idle keep-alive connections get the idle timeout; the first read the read timeout.
      ReadDeadline deadline(worker.read_deadlines, stream,
                            first ? cfg->server.read_timeout_ms : cfg->server.idle_timeout_ms);
      first = false;
      std::tie(ec, std::ignore) = co_await bhttp::async_read(stream, buffer, parser, kTuple);
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)  // the deadline passed (or shutdown)
      break;
    worker.write_timeout_ms = cfg->server.write_timeout_ms;
    InFlight guard(worker.server.in_flight());
    RequestContext ctx;
    ctx.headers.reserve(10);  // the x-frugal-* headers a chat answer carries, in one allocation
    ctx.start_us = mono_us();
    ctx.keep_alive = false;
    if (ec) {
      // Malformed HTTP or a body over the limit: answer and close the connection.
      ctx.request_id = new_request_id();
      Error e = ec == bhttp::error::body_limit
                    ? make_error(ErrorKind::kTooLarge,
                                 "Request body exceeds the limit of " +
                                     std::to_string(cfg->server.body_limit_bytes) + " bytes.",
                                 "", "request_too_large")
                    : make_error(ErrorKind::kInvalidRequest, "Malformed HTTP request: " + ec.message());
      co_await send_error(stream, e, ctx, wants_anthropic_errors(parser.get()));
      break;
    }
    Request& req = parser.get();
    if (auto bad = framing_error(req)) {
      // The body's length is in doubt, so whatever follows on the connection is too.
      ctx.request_id = new_request_id();
      co_await send_error(stream, *bad, ctx, wants_anthropic_errors(req));
      break;
    }
    const auto rid = find_header(req, "x-request-id");
    ctx.request_id = rid != req.end() && !rid->value().empty() && rid->value().size() <= 200
                         ? std::string(rid->value())
                         : new_request_id();
    ctx.keep_alive = req.keep_alive();
    const bool keep = co_await route(stream, req, ctx, worker, plane);
    if (!keep) break;
  }
  boost::system::error_code ec;
  stream.shutdown(tcp::socket::shutdown_send, ec);
  stream.close(ec);
}

}  // namespace frugal::gateway
