#include "gateway/read_deadline.h"

#include <chrono>

#include "core/ids.h"

namespace frugal::gateway {

ReadDeadline::ReadDeadline(ReadDeadlines& owner, boost::asio::ip::tcp::socket& socket, int64_t timeout_ms)
    : owner_(&owner), socket_(&socket), deadline_us_(mono_us() + timeout_ms * 1000) {
  owner.add(*this);
}

ReadDeadline::~ReadDeadline() {
  if (owner_) owner_->remove(*this);
}

void ReadDeadlines::add(ReadDeadline& d) {
  d.prev_ = nullptr;
  d.next_ = head_;
  if (head_) head_->prev_ = &d;
  head_ = &d;
  if (ticking_) return;
  ticking_ = true;
  schedule();
}

void ReadDeadlines::remove(ReadDeadline& d) {
  (d.prev_ ? d.prev_->next_ : head_) = d.next_;
  if (d.next_) d.next_->prev_ = d.prev_;
  d.prev_ = d.next_ = nullptr;
  d.owner_ = nullptr;
}

void ReadDeadlines::schedule() {
  timer_.expires_after(std::chrono::milliseconds(kTickMs));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();  // an error: the worker is shutting down
  });
}

void ReadDeadlines::tick() {
  const int64_t now = mono_us();
  for (ReadDeadline* d = head_; d;) {
    ReadDeadline* next = d->next_;
    if (d->deadline_us_ <= now) {
      remove(*d);
      boost::system::error_code ignored;
      d->socket_->cancel(ignored);
    }
    d = next;
  }
  if (!head_) {
    ticking_ = false;
    return;
  }
  schedule();
}

}  // namespace frugal::gateway
