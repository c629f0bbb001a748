#pragma once
// Read timeouts for client connections, from the worker's DeadlineTicker rather than a
// Beast tcp_stream's timer around every read.
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

}  // namespace frugal::gateway
