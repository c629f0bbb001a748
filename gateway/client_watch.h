#pragma once
// Watches the client socket while an answer is produced: a FIN or reset cancels the
// dispatch (and any retry backoff) and the streaming call at once.
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <memory>

#include "backends/backend.h"
#include "router/dispatch.h"

namespace frugal::gateway {

struct ClientWatch : std::enable_shared_from_this<ClientWatch> {
  router::DispatchControl* control = nullptr;
  std::shared_ptr<backends::Call> streaming;
  bool client_gone = false;
  bool armed = false;

  // Unarmed: arm() starts the watch. Arming changes the socket's epoll registration (a
  // system call), so a request answered at once, such as a memory cache hit, skips it.
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
    const int fd = s.native_handle();
    s.async_wait(boost::asio::ip::tcp::socket::wait_read, [weak, fd](const boost::system::error_code& ec) {
      if (ec) return;
      auto w = weak.lock();
      if (!w) return;
      char c;
      const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;  // a pipelined request, not a disconnect
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      w->client_gone = true;
      w->control->cancel();
      if (w->streaming) w->streaming->cancel();
    });
  }
};

// Ends the watch when the handler returns: no other operation is pending on the socket
// at that point, so cancel() only completes the wait.
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
