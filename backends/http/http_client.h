#pragma once
// Upstream HTTP over libcurl's multi interface, driven by an Asio io_context: curl's
// sockets are watched with async_wait and its timer is an asio::steady_timer, so no
// thread is spent per request and nothing blocks the I/O thread.
//
// Threading: an HttpClient and every HttpCall it starts belong to one io_context that
// is run by exactly one thread; all member functions must be called on that thread.
// Connections (HTTP/1.1 keep-alive and HTTP/2 multiplexing) are pooled per client.
#include <curl/curl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/backend.h"
#include "backends/http/h1_client.h"
#include "backends/http/upstream_call.h"

namespace frugal::http {

namespace asio = boost::asio;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  int64_t connect_timeout_ms = 5'000;
  int64_t first_byte_timeout_ms = 120'000;  // until response headers are complete
  int64_t total_timeout_ms = 600'000;
  // Once headers are in, the longest wait for more body bytes (while the owner keeps
  // taking them); 0: none. Set for answers read whole, whose client has seen nothing yet,
  // so a stalled body fails in time for a retry or a fallback.
  int64_t body_idle_timeout_ms = 0;
  bool http2 = true;                        // HTTP/2 over TLS when offered
  std::string ca_file;                      // extra trust anchors (PEM); empty: the system store
  bool verify_tls = true;                   // false: accept any certificate (tests, never production)
  // Plain http:// URLs go to the built-in HTTP/1.1 client (h1_client.h) unless this is
  // false or a proxy is configured in the environment; everything else uses libcurl.
  bool builtin_http1 = true;
};

using backends::CallState;

class HttpClient;

// One libcurl transfer. Body bytes accumulate until the owner takes them.
class HttpCall final : public UpstreamCall, public std::enable_shared_from_this<HttpCall> {
 public:
  HttpCall(HttpClient& client, CURL* easy);
  ~HttpCall() override;
  HttpCall(const HttpCall&) = delete;
  HttpCall& operator=(const HttpCall&) = delete;

  // Moves out the body bytes received so far, resuming a paused transfer.
  std::string take_body() override;
  // Aborts the transfer now (the connection is closed); wait() completes.
  void cancel() override;

 private:
  friend class HttpClient;
  static size_t on_write(char* data, size_t size, size_t n, void* self);
  static size_t on_header(char* data, size_t size, size_t n, void* self);
  static int on_prereq(void* self, char* remote_ip, char* local_ip, int remote_port, int local_port);
  void finish(CURLcode code);
  // Ends the call as timed out (first byte, or a stalled body).
  void fail_timeout(std::string message);
  // Whether the body has stalled (see HttpRequest::body_idle_timeout_ms).
  bool body_idle(int64_t now_us) const {
    return body_idle_us_ && state_ == CallState::kStreaming && !paused_ && now_us - last_rx_us_ >= body_idle_us_;
  }

  HttpClient* client_;
  CURL* easy_;
  curl_slist* header_list_ = nullptr;
  std::string request_body_;
  int64_t first_byte_deadline_us_ = 0;
  int64_t body_idle_us_ = 0;  // 0: none
  int64_t last_rx_us_ = 0;    // the last body progress
  bool paused_ = false;
  bool active_ = false;  // attached to the multi handle
};

class HttpClient {
 public:
  explicit HttpClient(asio::io_context& io);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // A plain-http request (see HttpRequest::builtin_http1) is served by the built-in
  // client, any other by libcurl.
  std::shared_ptr<backends::Call> start(HttpRequest req);
  asio::io_context& io() { return io_; }

 private:
  friend class HttpCall;
  struct Socket;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socketp);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* addr);
  static int on_close_socket(void* self, curl_socket_t fd);
  void arm(const std::shared_ptr<Socket>& s);
  void socket_action(curl_socket_t fd, int events);
  void drain_messages();
  // After a transfer: remembers an HTTP/1 connection (by its addresses) so that its reuse is
  // checked for unread bytes (on_prereq). libcurl 7.x only checks an idle connection
  // for EOF, so a stray response on it would become the next request's answer.
  void note_http1_connection(CURL* easy);
  // Called before a request goes out on a connection: a reused HTTP/1 connection with
  // unread bytes is shut down, so the send fails and libcurl retries on a fresh one.
  void check_reused_connection(const char* remote_ip, int remote_port, const char* local_ip, int local_port);
  void sweep_deadlines();
  void detach(HttpCall& call);
  CURL* acquire_easy();
  void release_easy(CURL* easy);

  asio::io_context& io_;
  CURLM* multi_;
  asio::steady_timer timer_;
  bool timer_posted_ = false;
  // One coarse timer enforces every call's first-byte deadline: a timer per call costs
  // a timerfd_settime syscall per request, which dominated the profile.
  asio::steady_timer sweep_;
  bool sweeping_ = false;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets_;
  // HTTP/1 connections that carried a transfer, by "local-ip:port>remote-ip:port".
  std::unordered_map<std::string, curl_socket_t> http1_connections_;
  std::unordered_set<std::shared_ptr<HttpCall>> active_;  // keeps running calls alive
  std::vector<CURL*> idle_easy_;
  H1Client h1_;
  const bool proxy_in_env_;  // libcurl would route plain http through a proxy
};

// `now_us` plus a timeout in milliseconds; a timeout of 0 (or less) means none.
inline int64_t deadline_after(int64_t now_us, int64_t timeout_ms) {
  return timeout_ms > 0 ? now_us + timeout_ms * 1000 : INT64_MAX;
}

}  // namespace frugal::http
