#pragma once
// Watches the client socket while an answer is produced: a FIN or reset cancels the
// dispatch (and any retry backoff) and the streaming call at once.
//
// Arming costs a receive system call that nearly always finds nothing, plus a cancel
// when the answer is written. Most answers come within milliseconds, long before a
// client that hung up could be told apart from one that waits, so the exchange defers
// the watch to its worker's watch ticker (a DeadlineTicker ticking every kWatchTickMs):
// a watch deferred for a tick is armed at the next one. A request answered within that
// never arms one; a client that hung up earlier is seen at arming, since its FIN is
// already queued on the socket. Detection is therefore at most two ticks late.

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "backends/backend.h"
#include "core/error.h"
#include "gateway/deadline_ticker.h"
#include "router/dispatch.h"

namespace frugal::gateway {

inline constexpr int kWatchTickMs = 10;

struct ClientWatch final : TickDeadline, std::enable_shared_from_this<ClientWatch> {
  boost::asio::ip::tcp::socket* socket = nullptr;  // the client's
  router::DispatchControl* control = nullptr;
  std::shared_ptr<backends::Call> streaming;
  bool client_gone = false;
  bool shutdown = false;  // cut by cut_for_shutdown()
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
  // Arms it within two ticks of `ticker` unless the guard (unlink()) comes first.
  void defer(DeadlineTicker& ticker) {
    if (!armed && !is_linked()) ticker.add(*this, kWatchTickMs);
  }
  void expire() override { arm(); }
};

// Lists the watch, for cut_for_shutdown(), while the handler runs, and ends it when the
// handler returns: no other operation is pending on the socket at that point, so
// cancel() only ends the watch.
struct ClientWatchGuard {
  explicit ClientWatchGuard(ClientWatch& w);
  ~ClientWatchGuard();
  ClientWatchGuard(const ClientWatchGuard&) = delete;
  ClientWatchGuard& operator=(const ClientWatchGuard&) = delete;
  ClientWatch& watch;
};

// Shutdown after the grace period, on an I/O thread: every request of this thread with
// a listed watch is cut — `shutdown` set, its dispatch and its stream cancelled — so
// that its codec ends the response (a stream with an error event in the client's
// dialect) and its ledger row is written before the event loop stops.
void cut_for_shutdown();

// What a response cut by shutdown ends with.
Error shutdown_cut_error();

}  // namespace frugal::gateway
