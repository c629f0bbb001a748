#pragma once
// Watches the client socket while an answer is produced: a FIN or reset cancels the
// dispatch (and any retry backoff) and the streaming call at once.

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "backends/backend.h"
#include "router/dispatch.h"

namespace frugal::gateway {

struct ClientWatch : std::enable_shared_from_this<ClientWatch> {
  router::DispatchControl* control = nullptr;
  std::shared_ptr<backends::Call> streaming;
  bool client_gone = false;
  bool armed = false;

  // Unarmed: arm() starts the watch; a request answered at once, such as a memory cache
  // hit, never needs it.
  static std::shared_ptr<ClientWatch> make(router::DispatchControl& control) {
    auto self = std::make_shared<ClientWatch>();
    self->control = &control;
    return self;
  }
  static std::shared_ptr<ClientWatch> start(boost::asio::ip::tcp::socket& s, router::DispatchControl& control) {
    auto self = make(control);
    self->arm(s);
    return self;
  }

  void arm(boost::asio::ip::tcp::socket& s) {
    if (armed) return;
    armed = true;
    std::weak_ptr<ClientWatch> weak = shared_from_this();
    // A peeking receive rather than async_wait(wait_read): Asio re-registers the socket
    // with epoll (a system call) for every wait, but queues a receive without one when
    // the request's read had drained the socket, which is the usual case. The peeked
    // byte stays in the socket for the session's next read; only the EOF or error of a
    // client that hung up counts.
    static thread_local char scratch;
    s.async_receive(boost::asio::buffer(&scratch, 1), boost::asio::socket_base::message_peek,
                    [weak](const boost::system::error_code& ec, size_t) {
                      if (!ec || ec == boost::asio::error::operation_aborted) return;  // pipelined bytes, or done
                      auto w = weak.lock();
                      if (!w) return;
                      w->client_gone = true;
                      w->control->cancel();
                      if (w->streaming) w->streaming->cancel();
                    });
  }
};

// Ends the watch when the handler returns: no other operation is pending on the socket
// at that point, so cancel() only ends the watch.
struct ClientWatchGuard {
  boost::asio::ip::tcp::socket& s;
  const ClientWatch& watch;
  ~ClientWatchGuard() {
    if (!watch.armed) return;
    boost::system::error_code ec;
    s.cancel(ec);
  }
};

}  // namespace frugal::gateway
