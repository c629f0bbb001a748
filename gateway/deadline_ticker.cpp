#include "gateway/deadline_ticker.h"

#include <chrono>

#include "core/ids.h"

namespace frugal::gateway {

void DeadlineTicker::add(TickDeadline& d, int64_t delay_ms) {
  d.deadline_us_ = mono_us() + delay_ms * 1000;
  listed_.push_back(d);
  if (ticking_) return;
  ticking_ = true;
  schedule();
}

void DeadlineTicker::schedule() {
  timer_.expires_after(std::chrono::milliseconds(tick_ms_));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();  // an error: the worker is shutting down
  });
}

void DeadlineTicker::tick() {
  const int64_t now = mono_us();
  for (auto it = listed_.begin(); it != listed_.end();) {
    TickDeadline& d = *it;
    if (d.deadline_us_ > now) {
      ++it;
      continue;
    }
    it = listed_.erase(it);
    d.expire();
  }
  if (listed_.empty()) {
    ticking_ = false;
    return;
  }
  schedule();
}

}  // namespace frugal::gateway
