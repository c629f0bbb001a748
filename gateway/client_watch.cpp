#include "gateway/client_watch.h"

namespace frugal::gateway {

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
