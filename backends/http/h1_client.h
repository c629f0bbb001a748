#pragma once
// A built-in HTTP/1.1 client for plain-http upstreams (self-hosted OpenAI-compatible
// servers: vLLM, llama.cpp, Ollama, a sidecar), on Asio sockets with Beast's parser.
//
// Why it exists next to libcurl: on the proxy path libcurl cost ~60% of the instructions
// of a proxied request (its printf engine formats the request head byte by byte, two
// liveness polls per reused connection, a multi-handle state machine, ~6 getenv scans),
// which kept frugal at half of nginx's throughput. A cleartext HTTP/1.1 exchange needs
// none of that: one gathered write, a read loop into a parser, a keep-alive pool.
// libcurl still carries everything else: TLS, HTTP/2, proxies from the environment.
//
// Threading: as HttpClient — one io_context run by one thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/backend.h"

namespace frugal::http {

namespace asio = boost::asio;

struct HttpRequest;
class H1Call;

// A parsed `http://host[:port]/path` URL. Anything else (https, userinfo, a fragment)
// does not parse, and the request goes to libcurl.
struct PlainHttpUrl {
  std::string host;       // without brackets for IPv6 literals
  std::string authority;  // host[:port] as written, for the Host header and the pool key
  uint16_t port = 80;
  std::string target;     // path and query, at least "/"
};
std::optional<PlainHttpUrl> parse_plain_http_url(std::string_view url);

class H1Client {
 public:
  // `max_idle_ms`: a pooled connection idle longer is closed rather than reused (servers
  // drop idle keep-alive connections after their own timeout; reusing one costs a
  // failed exchange and a retry).
  explicit H1Client(asio::io_context& io, int64_t max_idle_ms = kDefaultMaxIdleMs);
  ~H1Client();
  H1Client(const H1Client&) = delete;
  H1Client& operator=(const H1Client&) = delete;

  std::shared_ptr<backends::Call> start(HttpRequest req, std::shared_ptr<const PlainHttpUrl> url);
  // parse_plain_http_url, remembered: a provider's URL is parsed once, not per request.
  std::shared_ptr<const PlainHttpUrl> plain_url(const std::string& url);

  size_t active_transfers() const { return active_.size(); }
  size_t idle_connections() const;

  // Idle keep-alive connections kept per upstream authority.
  static constexpr size_t kMaxIdlePerHost = 256;
  // As libcurl's CURLOPT_MAXAGE_CONN default.
  static constexpr int64_t kDefaultMaxIdleMs = 118'000;

 private:
  friend class H1Call;
  struct Idle {
    asio::ip::tcp::socket socket;
    int64_t since_us;
  };
  std::optional<asio::ip::tcp::socket> take_idle(const std::string& authority);
  void put_idle(const std::string& authority, asio::ip::tcp::socket socket);
  void finished(H1Call& call);
  void sweep();
  void drop_stale(std::deque<Idle>& list, int64_t now_us);

  asio::io_context& io_;
  const int64_t max_idle_us_;
  std::unordered_map<std::string, std::deque<Idle>> idle_;  // oldest first
  std::unordered_set<std::shared_ptr<H1Call>> active_;  // keeps running calls alive
  std::unordered_map<std::string, std::shared_ptr<const PlainHttpUrl>> urls_;  // plain_url's memo
  asio::steady_timer sweep_;
  bool sweeping_ = false;
};

}  // namespace frugal::http
