#pragma once
// What the calls of both upstream transports (libcurl's HttpCall, the built-in client's
// H1Call) share: the state a Call reports, the wake-up behind wait(), header lookup.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/backend.h"

namespace frugal::http {

// Whether an idle keep-alive connection has nothing to say. Bytes waiting on one are a
// response nobody asked for (an upstream that answered twice), which the next request
// would read as its own; an EOF means the upstream closed it. Either way it must not be
// reused. One non-blocking MSG_PEEK.
bool idle_socket_is_quiet(int fd);

class UpstreamCall : public backends::Call {
 public:
  // Body bytes buffered per call before the transport stops reading (back-pressure).
  static constexpr size_t kPauseThreshold = 1 << 20;
  // Granularity of the transports' timeouts: each client checks its calls' deadlines
  // with one coarse timer (a timer per call costs a timerfd_settime per request).
  static constexpr int64_t kSweepIntervalMs = 50;

  explicit UpstreamCall(boost::asio::io_context& io) : signal_(io) {}

  // Completes when anything changed since the last wait: headers complete, body bytes
  // arrived, or the transfer finished. Never throws.
  boost::asio::awaitable<void> wait() override;

  backends::CallState state() const override { return state_; }
  int status() const override { return status_; }
  bool got_headers() const override { return got_headers_; }
  // Case-insensitive; empty if absent.
  std::string_view header(std::string_view name) const override;
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return timed_out_; }
  bool cancelled() const override { return cancelled_; }
  const std::string& error() const override { return error_; }  // empty on success
  int64_t started_us() const override { return started_us_; }
  int64_t headers_us() const override { return headers_us_; }  // 0 until headers

 protected:
  // Wakes the waiter (or lets the next wait() return at once).
  void notify();

  boost::asio::steady_timer signal_;
  bool pending_ = false;
  backends::CallState state_ = backends::CallState::kWaitingHeaders;
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  bool got_headers_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  std::string error_;
  int64_t started_us_ = 0;
  int64_t headers_us_ = 0;
};

}  // namespace frugal::http
