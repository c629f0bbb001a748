#pragma once
// Deadlines served by one coarse timer per I/O thread instead of a timer each.
//
// A timer per operation costs a timer-queue insert and removal, a handler allocation
// and, now and then, a timerfd_settime. A TickDeadline is an intrusive list node (no
// allocation). The ticker's timer runs every tick while any deadline is listed, and
// expires those whose time has passed, so a deadline fires up to one tick late.
// Destroying a listed deadline unlinks it; expire() runs at most once per add().
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <cstdint>

namespace frugal::gateway {

class TickDeadline
    : public boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
 public:
  virtual ~TickDeadline() = default;
  // On the I/O thread, after it was taken off the list.
  virtual void expire() = 0;

 private:
  friend class DeadlineTicker;
  int64_t deadline_us_ = 0;
};

class DeadlineTicker {
 public:
  DeadlineTicker(boost::asio::io_context& io, int tick_ms) : timer_(io), tick_ms_(tick_ms) {}
  DeadlineTicker(const DeadlineTicker&) = delete;
  DeadlineTicker& operator=(const DeadlineTicker&) = delete;

  // Lists `d` (not listed yet) to expire once `delay_ms` have passed. d.unlink()
  // withdraws it.
  void add(TickDeadline& d, int64_t delay_ms);

 private:
  void schedule();
  void tick();

  boost::asio::steady_timer timer_;
  const int tick_ms_;
  bool ticking_ = false;
  boost::intrusive::list<TickDeadline, boost::intrusive::constant_time_size<false>> listed_;
};

}  // namespace frugal::gateway
