#pragma once
// Watches the client socket while an answer is produced: a FIN or reset cancels the
// dispatch (and any retry backoff) and the streaming call at once.
//
// Arming costs a receive system call that nearly always finds nothing, plus a cancel
// when the answer is written. Most answers come within milliseconds, long before a
// client that hung up could be told apart from one that waits, so the exchange defers
// the watch to its worker's WatchArmer: a tick every kWatchTickMs arms the watches
// queued before the previous tick. A request answered within a tick never arms one; a
// client that hung up earlier is seen at arming, since its FIN is already queued on
// the socket. Detection is therefore at most two ticks late.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>

#include "backends/backend.h"
#include "router/dispatch.h"

namespace frugal::gateway {

class WatchArmer;

struct ClientWatch : std::enable_shared_from_this<ClientWatch> {
  boost::asio::ip::tcp::socket* socket = nullptr;  // the client's
  router::DispatchControl* control = nullptr;
  std::shared_ptr<backends::Call> streaming;
  bool client_gone = false;
  bool armed = false;

  // Unarmed: arm() starts the watch; a request answered at once, such as a memory cache
  // hit, never needs it.
  static std::shared_ptr<ClientWatch> make(boost::asio::ip::tcp::socket& s, router::DispatchControl& control) {
    auto self = std::make_shared<ClientWatch>();
    self->socket = &s;
    self->control = &control;
    return self;
  }
  static std::shared_ptr<ClientWatch> start(boost::asio::ip::tcp::socket& s, router::DispatchControl& control) {
    auto self = make(s, control);
    self->arm();
    return self;
  }

  void arm();

  // Queued in a WatchArmer (intrusive list, in queueing order).
  WatchArmer* armer = nullptr;
  ClientWatch* prev = nullptr;
  ClientWatch* next = nullptr;
  uint64_t queued_tick = 0;
};

// One per I/O thread. Its timer runs only while a watch is queued.
class WatchArmer {
 public:
  static constexpr int kWatchTickMs = 10;

  explicit WatchArmer(boost::asio::io_context& io) : timer_(io) {}
  WatchArmer(const WatchArmer&) = delete;
  WatchArmer& operator=(const WatchArmer&) = delete;

  // Arms `w` within two ticks unless remove() comes first. `w` must be removed
  // (ClientWatchGuard does it) before it or its socket goes away.
  void defer(ClientWatch& w);
  void remove(ClientWatch& w);

 private:
  void schedule();
  void tick();

  boost::asio::steady_timer timer_;
  bool ticking_ = false;
  uint64_t tick_ = 0;
  ClientWatch* head_ = nullptr;
  ClientWatch* tail_ = nullptr;
};

// Ends the watch when the handler returns: no other operation is pending on the socket
// at that point, so cancel() only ends the watch.
struct ClientWatchGuard {
  ClientWatch& watch;
  ~ClientWatchGuard() {
    if (watch.armer) watch.armer->remove(watch);
    if (!watch.armed) return;
    boost::system::error_code ec;
    watch.socket->cancel(ec);
  }
};

}  // namespace frugal::gateway
