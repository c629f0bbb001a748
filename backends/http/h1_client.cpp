#include "backends/http/h1_client.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>

#include "backends/http/http_client.h"
#include "core/ids.h"
#include "core/text.h"

namespace frugal::http {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
template <class Pred>
size_t find_if(std::string_view s, Pred pred) {
  for (size_t i = 0; i < s.size(); ++i)
    if (pred(s[i])) return i;
  return std::string_view::npos;
}
}  // namespace

std::optional<PlainHttpUrl> parse_plain_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() <= kScheme.size() || strncasecmp(url.data(), kScheme.data(), kScheme.size()) != 0)
    return std::nullopt;
  url.remove_prefix(kScheme.size());
  const size_t end = find_if(url, [](char c) { return c == '/' || c == '?' || c == '#'; });
  const std::string_view authority = url.substr(0, end);
  const std::string_view rest = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  if (find_if(rest, [](char c) { return c == '#' || c == ' ' || c == '\r' || c == '\n' || c == '\t'; }) !=
      std::string_view::npos)
    return std::nullopt;

  PlainHttpUrl out;
  std::string_view host = authority, port;
  bool has_port = false;
  if (authority.front() == '[') {  // an IPv6 literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return std::nullopt;
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
  } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    has_port = true;
  }
  if (host.empty() || find_if(host, [](char c) { return c == '[' || c == ']' || c == ' '; }) != std::string_view::npos)
    return std::nullopt;
  if (has_port) {
    if (port.empty()) return std::nullopt;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(value);
  }
  out.host = std::string(host);
  out.authority = std::string(authority);
  if (rest.empty() || rest.front() == '?') out.target = "/";
  out.target += rest;
  return out;
}

// ---------------------------------------------------------------------------------
// H1Call

class H1Call final : public UpstreamCall, public std::enable_shared_from_this<H1Call> {
 public:
  H1Call(H1Client& client, const HttpRequest& req, std::shared_ptr<const PlainHttpUrl> url, std::string body);
  ~H1Call() override;

  std::string take_body() override;
  void cancel() override;

  // Returns an error message if the request cannot be sent (the call then fails).
  std::string build_head(const HttpRequest& req);
  void begin();
  void check_deadlines(int64_t now_us);
  void fail(std::string message, bool timed_out = false);

 private:
  class Parser final : public beast::http::basic_parser<false> {
   public:
    explicit Parser(H1Call& call) : call_(call) {
      eager(true);
      body_limit(boost::none);
      header_limit(64 * 1024);
    }

   private:
    void on_request_impl(beast::http::verb, beast::string_view, beast::string_view, int, error_code&) override {}
    void on_response_impl(int code, beast::string_view, int, error_code&) override {
      call_.status_ = code;
      call_.headers_.clear();
    }
    void on_field_impl(beast::http::field, beast::string_view name, beast::string_view value,
                       error_code&) override {
      call_.headers_.emplace_back(std::string(name), std::string(value));
    }
    void on_header_impl(error_code&) override { call_.on_headers(); }
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
      if (length) call_.body_.reserve(std::min<std::uint64_t>(*length, UpstreamCall::kPauseThreshold));
    }
    std::size_t on_body_impl(beast::string_view body, error_code&) override {
      call_.body_.append(body.data(), body.size());
      return body.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
      call_.body_.append(body.data(), body.size());
      return body.size();
    }
    void on_finish_impl(error_code&) override {}

    H1Call& call_;
  };

  // kExchanging: the request is being written and the response read at the same time,
  // so an upstream that answers early (an error before the whole body) is heard.
  enum class Phase { kConnecting, kExchanging, kDone };

  void connect_fresh();
  void on_connected(const error_code& ec);
  void send();
  void read();
  void on_read(const error_code& ec, size_t n);
  void on_headers();
  // Parses the unconsumed bytes; true while the response is incomplete.
  bool feed();
  // A reused keep-alive connection failed before any response byte: the upstream had
  // closed it while idle. Sends once more on a new connection.
  bool retry_on_fresh_connection();
  void complete(bool reusable);
  // The common tail of complete() and fail(): reports kDone and leaves the client's set.
  void end();
  void close_socket();

  H1Client* client_;
  std::shared_ptr<const PlainHttpUrl> url_;  // shared by the calls to one URL
  std::string head_;
  std::string request_body_;
  std::optional<tcp::socket> socket_;
  std::optional<tcp::resolver> resolver_;
  std::optional<Parser> parser_;
  std::unique_ptr<char[]> rbuf_;  // received bytes; [0, rlen_) not yet parsed
  size_t rcap_ = 0;
  size_t rlen_ = 0;
  Phase phase_ = Phase::kConnecting;
  bool reused_ = false;
  bool retried_ = false;
  bool paused_ = false;
  bool reading_ = false;
  bool writing_ = false;
  uint32_t conn_gen_ = 0;  // bumped per connection; handlers of an abandoned one return
  bool informational_ = false;  // the response being parsed is a 1xx

  int64_t connect_deadline_us_ = 0;
  int64_t first_byte_deadline_us_ = 0;
  int64_t total_deadline_us_ = 0;
  int64_t body_idle_us_ = 0;  // 0: none
  int64_t last_rx_us_ = 0;    // the last body progress (bytes read, or the owner taking them)
};

H1Call::H1Call(H1Client& client, const HttpRequest& req, std::shared_ptr<const PlainHttpUrl> url, std::string body)
    : UpstreamCall(client.io_), client_(&client), url_(std::move(url)), request_body_(std::move(body)) {
  started_us_ = mono_us();
  connect_deadline_us_ = deadline_after(started_us_, req.connect_timeout_ms);
  first_byte_deadline_us_ = deadline_after(started_us_, req.first_byte_timeout_ms);
  total_deadline_us_ = deadline_after(started_us_, req.total_timeout_ms);
  body_idle_us_ = req.body_idle_timeout_ms > 0 ? req.body_idle_timeout_ms * 1000 : 0;
}

H1Call::~H1Call() { close_socket(); }

std::string H1Call::build_head(const HttpRequest& req) {
  using namespace std::string_view_literals;  // literal appends without strlen
  size_t size = req.method.size() + url_->target.size() + url_->authority.size() + 64;
  for (const auto& h : req.headers) size += h.size() + 2;
  head_.reserve(size);
  head_.append(req.method).append(" "sv).append(url_->target).append(" HTTP/1.1\r\nHost: "sv);
  head_.append(url_->authority).append("\r\n"sv);
  for (const auto& h : req.headers) {
    if (has_line_break(h)) return "an upstream header contains a line break";
    if (!h.empty() && h.back() == ':') continue;  // "Name:" removes a header (libcurl's convention)
    head_.append(h).append("\r\n"sv);
  }
  if (req.method != "GET"sv || !request_body_.empty())
    head_.append("Content-Length: "sv).append(std::to_string(request_body_.size())).append("\r\n"sv);
  head_.append("\r\n"sv);
  return {};
}

std::string H1Call::take_body() {
  std::string out = std::move(body_);
  body_.clear();
  if (paused_ && phase_ == Phase::kExchanging) {
    paused_ = false;
    if (body_idle_us_) last_rx_us_ = mono_us();
    read();
  }
  return out;
}

void H1Call::begin() {
  if (auto idle = client_->take_idle(url_->authority)) {
    socket_.emplace(std::move(*idle));
    reused_ = true;
    send();
  } else {
    connect_fresh();
  }
}

void H1Call::connect_fresh() {
  phase_ = Phase::kConnecting;
  reused_ = false;
  const uint32_t gen = ++conn_gen_;
  socket_.emplace(client_->io_);
  error_code ec;
  const auto address = asio::ip::make_address(url_->host, ec);
  if (!ec) {
    socket_->async_connect(tcp::endpoint(address, url_->port), [self = shared_from_this(), gen](const error_code& e) {
      if (gen == self->conn_gen_) self->on_connected(e);
    });
    return;
  }
  resolver_.emplace(client_->io_);
  resolver_->async_resolve(
      url_->host, std::to_string(url_->port),
      [self = shared_from_this(), gen](const error_code& e, const tcp::resolver::results_type& results) {
        if (self->phase_ == Phase::kDone || gen != self->conn_gen_) return;
        if (e) return self->fail("cannot resolve upstream host '" + self->url_->host + "': " + e.message());
        asio::async_connect(*self->socket_, results, [self, gen](const error_code& e2, const tcp::endpoint&) {
          if (gen == self->conn_gen_) self->on_connected(e2);
        });
      });
}

void H1Call::on_connected(const error_code& ec) {
  if (phase_ == Phase::kDone) return;
  if (ec) return fail("cannot connect to upstream " + url_->authority + ": " + ec.message());
  error_code ignored;
  socket_->set_option(tcp::no_delay(true), ignored);
  socket_->set_option(asio::socket_base::keep_alive(true), ignored);
  send();
}

void H1Call::send() {
  phase_ = Phase::kExchanging;
  parser_.emplace(*this);
  if (!rbuf_) {
    rcap_ = 8 * 1024;
    rbuf_ = std::make_unique_for_overwrite<char[]>(rcap_);
  }
  writing_ = true;
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(request_body_)};
  asio::async_write(*socket_, buffers, [self = shared_from_this(), gen = conn_gen_](const error_code& ec, size_t) {
    if (self->phase_ == Phase::kDone || gen != self->conn_gen_) return;
    self->writing_ = false;
    if (!ec) return;
    if (!self->parser_->got_some() && self->rlen_ == 0 && self->retry_on_fresh_connection()) return;
    // The upstream may have answered before taking the whole body (an early error);
    // the read side finishes the call either way.
    if (self->got_headers_ || self->parser_->got_some() || self->rlen_ > 0) return;
    self->fail("cannot send the request to upstream " + self->url_->authority + ": " + ec.message());
  });
  read();
}

void H1Call::read() {
  if (reading_ || paused_ || phase_ != Phase::kExchanging) return;
  if (rlen_ == rcap_) {  // a header longer than the buffer
    auto bigger = std::make_unique_for_overwrite<char[]>(rcap_ * 2);
    std::memcpy(bigger.get(), rbuf_.get(), rlen_);
    rbuf_ = std::move(bigger);
    rcap_ *= 2;
  }
  reading_ = true;
  socket_->async_read_some(asio::buffer(rbuf_.get() + rlen_, rcap_ - rlen_),
                           [self = shared_from_this(), gen = conn_gen_](const error_code& ec, size_t n) {
                             if (gen != self->conn_gen_) return;
                             self->reading_ = false;
                             self->on_read(ec, n);
                           });
}

void H1Call::on_read(const error_code& ec, size_t n) {
  if (phase_ == Phase::kDone) return;
  if (ec) {
    if (!parser_->got_some() && rlen_ == 0 && retry_on_fresh_connection()) return;
    if (ec == asio::error::eof && parser_->is_header_done() && parser_->need_eof()) {
      error_code e;
      parser_->put_eof(e);
      if (!e) return complete(false);
    }
    if (ec == asio::error::eof)
      return fail(got_headers_ ? "upstream closed the connection mid-response"
                               : "upstream closed the connection without a response");
    return fail("upstream connection failed: " + ec.message());
  }
  rlen_ += n;
  if (body_idle_us_) last_rx_us_ = mono_us();
  const size_t before = body_.size();
  if (!feed()) return;
  if (body_.size() != before) notify();
  if (body_.size() >= UpstreamCall::kPauseThreshold) {
    paused_ = true;
    return;
  }
  read();
}

bool H1Call::feed() {
  size_t off = 0;
  while (off < rlen_) {
    error_code ec;
    const size_t used = parser_->put(asio::buffer(rbuf_.get() + off, rlen_ - off), ec);
    off += used;
    if (ec == beast::http::error::need_more) break;
    if (ec) {
      fail("malformed response from upstream: " + ec.message());
      return false;
    }
    if (parser_->is_done()) {
      if (informational_) {  // 100 Continue and friends: the real response follows
        informational_ = false;
        parser_.emplace(*this);
        continue;
      }
      complete(parser_->keep_alive() && off == rlen_);
      return false;
    }
    if (used == 0) break;
  }
  if (off > 0) {
    std::memmove(rbuf_.get(), rbuf_.get() + off, rlen_ - off);
    rlen_ -= off;
  }
  return true;
}

void H1Call::on_headers() {
  if (status_ >= 100 && status_ < 200) {
    informational_ = true;
    return;
  }
  if (state_ != CallState::kWaitingHeaders) return;
  state_ = CallState::kStreaming;
  got_headers_ = true;
  headers_us_ = mono_us();
  last_rx_us_ = headers_us_;
  notify();
}

bool H1Call::retry_on_fresh_connection() {
  if (!reused_ || retried_ || got_headers_) return false;
  retried_ = true;
  close_socket();
  parser_.reset();
  rlen_ = 0;
  reading_ = writing_ = false;
  connect_fresh();
  return true;
}

void H1Call::complete(bool reusable) {
  if (phase_ == Phase::kDone) return;
  auto self = shared_from_this();
  phase_ = Phase::kDone;
  // Still writing: the upstream answered before reading the whole request; the rest of
  // the body would be read as the next request, so the connection is not reused.
  if (reusable && !writing_ && socket_ && socket_->is_open()) {
    client_->put_idle(url_->authority, std::move(*socket_));
    socket_.reset();
  } else {
    close_socket();
  }
  end();
}

void H1Call::fail(std::string message, bool timed_out) {
  if (phase_ == Phase::kDone) return;
  auto self = shared_from_this();
  phase_ = Phase::kDone;
  close_socket();
  error_ = std::move(message);
  timed_out_ = timed_out;
  end();
}

void H1Call::end() {
  if (headers_us_ == 0) headers_us_ = mono_us();
  state_ = CallState::kDone;
  client_->finished(*this);
  notify();
}

void H1Call::cancel() {
  if (phase_ == Phase::kDone) return;
  cancelled_ = true;
  fail("cancelled");
}

void H1Call::close_socket() {
  if (resolver_) resolver_->cancel();
  if (socket_) {
    error_code ignored;
    socket_->close(ignored);  // pending operations complete with operation_aborted
  }
}

void H1Call::check_deadlines(int64_t now) {
  if (phase_ == Phase::kDone) return;
  if (now >= total_deadline_us_) return fail("upstream did not finish within the total timeout", true);
  if (phase_ == Phase::kConnecting && now >= connect_deadline_us_)
    return fail("cannot connect to upstream " + url_->authority + " within the connect timeout", true);
  if (state_ == CallState::kWaitingHeaders && now >= first_byte_deadline_us_)
    return fail("no response from upstream before the first-byte timeout", true);
  // Paused: the owner is not taking the body, which is no fault of the upstream's.
  if (body_idle_us_ && state_ == CallState::kStreaming && !paused_ && now - last_rx_us_ >= body_idle_us_)
    fail("upstream sent no body bytes within the first-byte timeout", true);
}

// ---------------------------------------------------------------------------------
// H1Client

H1Client::H1Client(asio::io_context& io, int64_t max_idle_ms)
    : io_(io), max_idle_us_(max_idle_ms * 1000), sweep_(io) {}

H1Client::~H1Client() {
  for (const auto& call : std::vector<std::shared_ptr<H1Call>>(active_.begin(), active_.end())) call->cancel();
}

size_t H1Client::idle_connections() const {
  size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

std::shared_ptr<const PlainHttpUrl> H1Client::plain_url(const std::string& url) {
  if (auto it = urls_.find(url); it != urls_.end()) return it->second;
  auto parsed = parse_plain_http_url(url);
  if (!parsed) return nullptr;
  if (urls_.size() >= 256) urls_.clear();  // per-request URLs (query strings) must not grow it unbounded
  return urls_.emplace(url, std::make_shared<const PlainHttpUrl>(std::move(*parsed))).first->second;
}

std::shared_ptr<backends::Call> H1Client::start(HttpRequest req, std::shared_ptr<const PlainHttpUrl> url) {
  std::string body = std::move(req.body);
  auto call = std::make_shared<H1Call>(*this, req, std::move(url), std::move(body));
  active_.insert(call);
  if (!sweeping_) sweep();
  if (std::string bad = call->build_head(req); !bad.empty()) {
    call->fail(std::move(bad));
    return call;
  }
  call->begin();
  return call;
}

std::optional<tcp::socket> H1Client::take_idle(const std::string& authority) {
  auto it = idle_.find(authority);
  if (it == idle_.end()) return std::nullopt;
  drop_stale(it->second, mono_us());
  while (!it->second.empty()) {
    tcp::socket s = std::move(it->second.back().socket);
    it->second.pop_back();
    if (idle_socket_is_quiet(s.native_handle())) return s;
    error_code ignored;
    s.close(ignored);
  }
  return std::nullopt;
}

void H1Client::put_idle(const std::string& authority, tcp::socket socket) {
  auto& list = idle_[authority];
  const int64_t now = mono_us();
  drop_stale(list, now);
  if (list.size() >= kMaxIdlePerHost) {
    error_code ignored;
    socket.close(ignored);
    return;
  }
  list.push_back(Idle{std::move(socket), now});
}

void H1Client::drop_stale(std::deque<Idle>& list, int64_t now_us) {
  while (!list.empty() && now_us - list.front().since_us > max_idle_us_) {
    error_code ignored;
    list.front().socket.close(ignored);
    list.pop_front();
  }
}

void H1Client::finished(H1Call& call) { active_.erase(call.shared_from_this()); }

void H1Client::sweep() {
  sweeping_ = !active_.empty();
  if (!sweeping_) return;
  const int64_t now = mono_us();
  for (const auto& c : std::vector<std::shared_ptr<H1Call>>(active_.begin(), active_.end())) c->check_deadlines(now);
  sweep_.expires_after(std::chrono::milliseconds(UpstreamCall::kSweepIntervalMs));
  sweep_.async_wait([this](const error_code& ec) {
    if (!ec) sweep();
  });
}

}  // namespace frugal::http
