#include "gateway/client_watch.h"

#include <algorithm>
#include <vector>

namespace frugal::gateway {

namespace {
// The watches of the requests this I/O thread runs now.
thread_local std::vector<ClientWatch*> t_listed;
}  // namespace

ClientWatchGuard::ClientWatchGuard(ClientWatch& w) : watch(w) { t_listed.push_back(&w); }

ClientWatchGuard::~ClientWatchGuard() {
  if (const auto it = std::find(t_listed.begin(), t_listed.end(), &watch); it != t_listed.end()) {
    *it = t_listed.back();
    t_listed.pop_back();
  }
  watch.unlink();
  if (!watch.armed) return;
  boost::system::error_code ec;
  watch.socket->cancel(ec);
}

void cut_for_shutdown() {
  // A cancel may complete handlers inline: iterate over a copy.
  const std::vector<ClientWatch*> listed = t_listed;
  for (ClientWatch* w : listed) {
    if (std::find(t_listed.begin(), t_listed.end(), w) == t_listed.end()) continue;  // ended meanwhile
    w->shutdown = true;
    w->control->cancel();
    if (w->streaming) w->streaming->cancel();
  }
}

Error shutdown_cut_error() {
  return make_error(ErrorKind::kUnavailable,
                    "The gateway is shutting down: this response was cut off after the shutdown grace period.",
                    "", "server_shutting_down");
}

void ClientWatch::arm() {
  if (armed) return;
  armed = true;
  std::weak_ptr<ClientWatch> weak = shared_from_this();
  // A peeking receive rather than async_wait(wait_read): Asio re-registers the socket
  // with epoll (a system call) for every wait, but queues a receive without one when
  // the request's read had drained the socket, which is the usual case. The peeked
  // byte stays in the socket for the session's next read; only the EOF or error of a
  // client that hung up counts.
  static thread_local char scratch;
  socket->async_receive(boost::asio::buffer(&scratch, 1), boost::asio::socket_base::message_peek,
                       [weak](const boost::system::error_code& ec, size_t) {
                         if (!ec || ec == boost::asio::error::operation_aborted) return;  // pipelined bytes, or done
                         auto w = weak.lock();
                         if (!w) return;
                         w->client_gone = true;
                         w->control->cancel();
                         if (w->streaming) w->streaming->cancel();
                       });
}

}  // namespace frugal::gateway
