#include "gateway/client_watch.h"

#include <chrono>

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

void WatchArmer::defer(ClientWatch& w) {
  if (w.armed || w.armer) return;
  w.armer = this;
  w.queued_tick = tick_;
  w.prev = tail_;
  w.next = nullptr;
  (tail_ ? tail_->next : head_) = &w;
  tail_ = &w;
  if (ticking_) return;
  ticking_ = true;
  schedule();
}

void WatchArmer::schedule() {
  timer_.expires_after(std::chrono::milliseconds(kWatchTickMs));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();  // an error: the worker is shutting down
  });
}

void WatchArmer::remove(ClientWatch& w) {
  if (w.armer != this) return;
  (w.prev ? w.prev->next : head_) = w.next;
  (w.next ? w.next->prev : tail_) = w.prev;
  w.prev = w.next = nullptr;
  w.armer = nullptr;
}

void WatchArmer::tick() {
  // Arm what was queued before the previous tick; the rest has waited less than one.
  while (head_ && head_->queued_tick < tick_) {
    ClientWatch& w = *head_;
    remove(w);
    w.arm();
  }
  ++tick_;
  if (!head_) {
    ticking_ = false;
    return;
  }
  schedule();
}

}  // namespace frugal::gateway
