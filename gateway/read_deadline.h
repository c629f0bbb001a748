#pragma once
// Read and write timeouts for client connections, from the worker's DeadlineTicker
// rather than a Beast tcp_stream's timer around every operation.
#include <boost/asio/ip/tcp.hpp>

#include "gateway/deadline_ticker.h"

namespace frugal::gateway {

inline constexpr int kReadDeadlineTickMs = 250;

// Listed for its lifetime. When the deadline passes, the socket's pending operations
// are cancelled: they complete with operation_aborted.
class ReadDeadline final : public TickDeadline {
 public:
  ReadDeadline(DeadlineTicker& ticker, boost::asio::ip::tcp::socket& socket, int64_t timeout_ms) : socket_(socket) {
    ticker.add(*this, timeout_ms);
  }
  void expire() override {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

 private:
  boost::asio::ip::tcp::socket& socket_;
};

// A write deadline that moves with progress: it passes (and cancels the socket's
// pending operations) only when no byte could be written for `timeout_ms`, so a slow
// client that keeps reading is not cut, one that stopped reading is.
class WriteDeadline final : public TickDeadline {
 public:
  WriteDeadline(DeadlineTicker& ticker, boost::asio::ip::tcp::socket& socket, int64_t timeout_ms)
      : ticker_(ticker), socket_(socket), timeout_ms_(timeout_ms) {
    ticker.add(*this, timeout_ms);
  }
  // Some bytes were written: the deadline starts again.
  void progress() {
    unlink();
    ticker_.add(*this, timeout_ms_);
  }
  bool expired() const { return expired_; }
  void expire() override {
    expired_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

 private:
  DeadlineTicker& ticker_;
  boost::asio::ip::tcp::socket& socket_;
  const int64_t timeout_ms_;
  bool expired_ = false;
};

}  // namespace frugal::gateway
