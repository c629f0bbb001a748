#include "backends/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "core/ids.h"

namespace frugal::http {

struct HttpClient::Socket {
  Socket(asio::io_context& io, int fd) : sd(io, fd) {}
  asio::posix::stream_descriptor sd;
  int want = 0;
  bool reading = false;
  bool writing = false;
  bool closed = false;
  std::string http1_key;  // its key in http1_connections_, empty if not there
};

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------
// HttpCall

HttpCall::HttpCall(HttpClient& client, CURL* easy) : UpstreamCall(client.io()), client_(&client), easy_(easy) {}

HttpCall::~HttpCall() {
  if (active_) curl_multi_remove_handle(client_->multi_, easy_);
  curl_slist_free_all(header_list_);
  client_->release_easy(easy_);
}

std::string HttpCall::take_body() {
  std::string out = std::move(body_);
  body_.clear();
  if (paused_ && active_) {
    paused_ = false;
    if (body_idle_us_) last_rx_us_ = mono_us();
    curl_easy_pause(easy_, CURLPAUSE_CONT);
  }
  return out;
}

size_t HttpCall::on_write(char* data, size_t size, size_t n, void* self) {
  auto* call = static_cast<HttpCall*>(self);
  const size_t bytes = size * n;
  if (call->body_.size() >= UpstreamCall::kPauseThreshold) {
    call->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;  // curl re-delivers these bytes after unpausing
  }
  call->body_.append(data, bytes);
  if (call->body_idle_us_) call->last_rx_us_ = mono_us();
  call->notify();
  return bytes;
}

size_t HttpCall::on_header(char* data, size_t size, size_t n, void* self) {
  auto* call = static_cast<HttpCall*>(self);
  const size_t bytes = size * n;
  std::string_view line(data, bytes);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (1xx, redirect or final)
    call->headers_.clear();
    call->headers_.reserve(12);  // one allocation for a typical response's headers
    const size_t sp = line.find(' ');
    call->status_ = sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
    return bytes;
  }
  line = trim(line);
  if (line.empty()) {
    if (call->status_ >= 200 && call->state_ == CallState::kWaitingHeaders) {
      call->state_ = CallState::kStreaming;
      call->got_headers_ = true;
      call->headers_us_ = mono_us();
      call->last_rx_us_ = call->headers_us_;
      call->notify();
    }
    return bytes;
  }
  // libcurl hands over a bare CR inside a line, NUL bytes and obsolete line folding as
  // they came; such a header could split a header line wherever it is written again.
  if (data[0] == ' ' || data[0] == '\t' || line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    return bytes;  // dropped
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos)
    call->headers_.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  return bytes;
}

void HttpCall::finish(CURLcode code) {
  if (!active_) return;
  auto self = shared_from_this();
  client_->detach(*this);
  if (code != CURLE_OK) {
    error_ = curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) timed_out_ = true;
  } else if (state_ == CallState::kWaitingHeaders) {
    error_ = "upstream closed the connection without a response";
  }
  if (state_ == CallState::kWaitingHeaders && headers_us_ == 0) headers_us_ = mono_us();
  state_ = CallState::kDone;
  notify();
}

void HttpCall::cancel() {
  if (!active_) return;
  auto self = shared_from_this();
  cancelled_ = true;
  error_ = "cancelled";
  client_->detach(*this);
  state_ = CallState::kDone;
  notify();
}

int HttpCall::on_prereq(void* self, char* remote_ip, char* local_ip, int remote_port, int local_port) {
  static_cast<HttpCall*>(self)->client_->check_reused_connection(remote_ip, remote_port, local_ip, local_port);
  return CURL_PREREQFUNC_OK;
}

void HttpCall::fail_timeout(std::string message) {
  if (!active_ || state_ == CallState::kDone) return;
  auto self = shared_from_this();
  timed_out_ = true;
  error_ = std::move(message);
  client_->detach(*this);
  state_ = CallState::kDone;
  notify();
}

// ---------------------------------------------------------------------------------
// HttpClient

namespace {
// The variables libcurl consults for an http:// URL (it ignores upper-case HTTP_PROXY).
bool proxy_in_env() {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}
}  // namespace

HttpClient::HttpClient(asio::io_context& io)
    : io_(io), timer_(io), sweep_(io), h1_(io), proxy_in_env_(proxy_in_env()) {
  global_init();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpClient::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpClient::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // Keep enough idle connections for a busy gateway; the default (4 per handle) churns.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 1024L);
}

HttpClient::~HttpClient() {
  for (const auto& call : std::vector<std::shared_ptr<HttpCall>>(active_.begin(), active_.end()))
    call->cancel();
  curl_multi_cleanup(multi_);  // closes pooled connections through on_close_socket
  for (CURL* e : idle_easy_) curl_easy_cleanup(e);
  for (auto& [fd, s] : sockets_) {
    s->closed = true;
    boost::system::error_code ec;
    s->sd.close(ec);
  }
}

CURL* HttpClient::acquire_easy() {
  if (idle_easy_.empty()) return curl_easy_init();
  CURL* e = idle_easy_.back();
  idle_easy_.pop_back();
  return e;
}

void HttpClient::release_easy(CURL* easy) {
  curl_easy_reset(easy);
  if (idle_easy_.size() < 256) idle_easy_.push_back(easy);
  else curl_easy_cleanup(easy);
}

std::shared_ptr<backends::Call> HttpClient::start(HttpRequest req) {
  if (req.builtin_http1 && !proxy_in_env_) {
    if (auto url = h1_.plain_url(req.url)) return h1_.start(std::move(req), std::move(url));
  }
  CURL* e = acquire_easy();
  auto call = std::make_shared<HttpCall>(*this, e);
  call->request_body_ = std::move(req.body);
  for (const auto& h : req.headers) call->header_list_ = curl_slist_append(call->header_list_, h.c_str());
  // No "Expect: 100-continue" round trip before large bodies.
  call->header_list_ = curl_slist_append(call->header_list_, "Expect:");

  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, call.get());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpCall::on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpCall::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, call.get());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->header_list_);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &HttpClient::on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &HttpClient::on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &HttpCall::on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, call.get());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.total_timeout_ms));
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   req.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  if (!req.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str());
  if (!req.verify_tls) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (req.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->request_body_.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call->request_body_.size()));
    if (req.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  call->started_us_ = mono_us();
  call->active_ = true;
  active_.insert(call);
  call->first_byte_deadline_us_ = deadline_after(call->started_us_, req.first_byte_timeout_ms);
  call->body_idle_us_ = req.body_idle_timeout_ms > 0 ? req.body_idle_timeout_ms * 1000 : 0;
  if (!sweeping_) sweep_deadlines();
  if (curl_multi_add_handle(multi_, e) != CURLM_OK) {
    call->error_ = "libcurl refused the transfer";
    detach(*call);
    call->state_ = CallState::kDone;
    call->notify();
  }
  return call;
}

void HttpClient::detach(HttpCall& call) {
  if (!call.active_) return;
  call.active_ = false;
  curl_multi_remove_handle(multi_, call.easy_);
  // The caller holds a shared_ptr to `call` across this erase.
  active_.erase(call.shared_from_this());
}

curl_socket_t HttpClient::on_open_socket(void* self, curlsocktype, curl_sockaddr* addr) {
  auto* client = static_cast<HttpClient*>(self);
  const int fd = ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  client->sockets_[fd] = std::make_shared<Socket>(client->io_, fd);
  return fd;
}

int HttpClient::on_close_socket(void* self, curl_socket_t fd) {
  auto* client = static_cast<HttpClient*>(self);
  auto it = client->sockets_.find(fd);
  if (it == client->sockets_.end()) return ::close(fd);
  it->second->closed = true;
  if (!it->second->http1_key.empty()) client->http1_connections_.erase(it->second->http1_key);
  boost::system::error_code ec;
  it->second->sd.close(ec);  // pending waits complete with operation_aborted
  client->sockets_.erase(it);
  return 0;
}

namespace {
// "local-ip:port>remote-ip:port", as CURLOPT_PREREQFUNCTION describes a connection.
std::string endpoint_text(const sockaddr_storage& a) {
  char ip[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, ip, sizeof ip);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, ip, sizeof ip);
    port = ntohs(v6.sin6_port);
  }
  return std::string(ip) + ":" + std::to_string(port);
}
std::string connection_key(std::string_view local, std::string_view remote) {
  std::string k(local);
  k += '>';
  k += remote;
  return k;
}
}  // namespace

void HttpClient::note_http1_connection(CURL* easy) {
  long version = 0;
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
      (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1))
    return;
  if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD) return;
  auto it = sockets_.find(fd);
  if (it == sockets_.end() || !it->second->http1_key.empty()) return;
  sockaddr_storage local{}, remote{};
  socklen_t ll = sizeof local, rl = sizeof remote;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rl) != 0)
    return;
  it->second->http1_key = connection_key(endpoint_text(local), endpoint_text(remote));
  http1_connections_[it->second->http1_key] = fd;
}

void HttpClient::check_reused_connection(const char* remote_ip, int remote_port, const char* local_ip,
                                         int local_port) {
  if (http1_connections_.empty() || !remote_ip || !local_ip) return;
  const std::string key = connection_key(std::string(local_ip) + ":" + std::to_string(local_port),
                                         std::string(remote_ip) + ":" + std::to_string(remote_port));
  auto it = http1_connections_.find(key);
  if (it == http1_connections_.end() || idle_socket_is_quiet(it->second)) return;
  ::shutdown(it->second, SHUT_RDWR);
}

int HttpClient::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto* client = static_cast<HttpClient*>(self);
  auto it = client->sockets_.find(fd);
  if (it == client->sockets_.end()) return 0;  // not a socket we opened (should not happen)
  it->second->want = what == CURL_POLL_REMOVE ? 0 : what;
  if (what != CURL_POLL_REMOVE) client->arm(it->second);
  return 0;
}

void HttpClient::arm(const std::shared_ptr<Socket>& s) {
  const int fd = s->sd.native_handle();
  if ((s->want & CURL_POLL_IN) && !s->reading) {
    s->reading = true;
    s->sd.async_wait(asio::posix::descriptor_base::wait_read,
                     [this, s, fd](const boost::system::error_code& ec) {
                       s->reading = false;
                       if (ec || s->closed) return;
                       if (s->want & CURL_POLL_IN) socket_action(fd, CURL_CSELECT_IN);
                       if (!s->closed) arm(s);
                     });
  }
  if ((s->want & CURL_POLL_OUT) && !s->writing) {
    s->writing = true;
    s->sd.async_wait(asio::posix::descriptor_base::wait_write,
                     [this, s, fd](const boost::system::error_code& ec) {
                       s->writing = false;
                       if (ec || s->closed) return;
                       if (s->want & CURL_POLL_OUT) socket_action(fd, CURL_CSELECT_OUT);
                       if (!s->closed) arm(s);
                     });
  }
}

void HttpClient::sweep_deadlines() {
  sweeping_ = !active_.empty();
  if (!sweeping_) return;
  const int64_t now = mono_us();
  std::vector<std::shared_ptr<HttpCall>> expired;
  for (const auto& c : active_)
    if ((c->state_ == CallState::kWaitingHeaders && now >= c->first_byte_deadline_us_) || c->body_idle(now))
      expired.push_back(c);
  for (const auto& c : expired)
    c->fail_timeout(c->state_ == CallState::kWaitingHeaders ? "no response from upstream before the first-byte timeout"
                                                            : "upstream sent no body bytes within the first-byte timeout");
  sweep_.expires_after(std::chrono::milliseconds(UpstreamCall::kSweepIntervalMs));
  sweep_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) sweep_deadlines();
  });
}

int HttpClient::on_timer(CURLM*, long timeout_ms, void* self) {
  auto* client = static_cast<HttpClient*>(self);
  if (timeout_ms < 0) {
    client->timer_.cancel();
    return 0;
  }
  if (timeout_ms == 0) {
    // "Act now": a post costs no timerfd re-arm, unlike a zero-length timer.
    client->timer_.cancel();
    if (!client->timer_posted_) {
      client->timer_posted_ = true;
      asio::post(client->io_, [client] {
        client->timer_posted_ = false;
        client->socket_action(CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }
  client->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  client->timer_.async_wait([client](const boost::system::error_code& ec) {
    if (!ec) client->socket_action(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

void HttpClient::socket_action(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  drain_messages();
}

void HttpClient::drain_messages() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    HttpCall* call = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
    if (msg->data.result == CURLE_OK) note_http1_connection(msg->easy_handle);
    if (call) call->finish(msg->data.result);
  }
}

}  // namespace frugal::http
