#pragma once
// Read timeouts for client connections without a timer per request.
//
// A Beast tcp_stream arms and cancels a timer around every read: a timer-queue insert
// and removal, a handler allocation and, now and then, a timerfd_settime, per request.
// Instead a session registers a ReadDeadline (an intrusive list node, no allocation)
// while it waits for a request, and one timer per I/O thread ticks every kTickMs while
// any is registered, cancelling the reads whose deadline has passed. A timeout thus
// fires up to one tick late.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>

namespace frugal::gateway {

class ReadDeadlines;

// Registered for its lifetime. When the deadline passes, the socket's pending
// operations are cancelled: they complete with operation_aborted.
class ReadDeadline {
 public:
  ReadDeadline(ReadDeadlines& owner, boost::asio::ip::tcp::socket& socket, int64_t timeout_ms);
  ~ReadDeadline();
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;

 private:
  friend class ReadDeadlines;
  ReadDeadlines* owner_;  // null once the deadline passed (no longer listed)
  boost::asio::ip::tcp::socket* socket_;
  int64_t deadline_us_;
  ReadDeadline* prev_ = nullptr;
  ReadDeadline* next_ = nullptr;
};

// One per I/O thread.
class ReadDeadlines {
 public:
  static constexpr int kTickMs = 250;

  explicit ReadDeadlines(boost::asio::io_context& io) : timer_(io) {}
  ReadDeadlines(const ReadDeadlines&) = delete;
  ReadDeadlines& operator=(const ReadDeadlines&) = delete;

 private:
  friend class ReadDeadline;
  void add(ReadDeadline& d);
  void remove(ReadDeadline& d);
  void schedule();
  void tick();

  boost::asio::steady_timer timer_;
  bool ticking_ = false;
  ReadDeadline* head_ = nullptr;
};

}  // namespace frugal::gateway
