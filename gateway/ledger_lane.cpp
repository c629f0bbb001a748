#include "gateway/ledger_lane.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <functional>
#include <string>

#include "core/log_throttle.h"
#include "core/log.h"
#include "router/ledger.h"

namespace frugal::gateway {

namespace asio = boost::asio;

namespace {

// A full disk fails every batch: one line per 10 s, with the count left out. The rows
// are not lost (router/ledger.h): the ledger holds and retries them.
void log_unwritten(size_t rows) {
  static LogThrottle throttle(std::chrono::seconds(10), 1);
  if (auto suppressed = throttle.admit())
    log::error("ledger: a batch of " + std::to_string(rows) +
               " rows could not be written (storage error); held in memory and retried until writes "
               "succeed (" + std::to_string(*suppressed) + " more such batches since the last report)");
}

}  // namespace

LedgerLane::LedgerLane(asio::io_context& io, router::Ledger& ledger)
    : io_(io), ledger_(ledger), wake_(io, asio::steady_timer::time_point::max()) {}

uint64_t LedgerLane::add(router::LedgerRecord row, bool now) {
  rows_.push_back(std::move(row));
  const uint64_t batch = filling_;
  if (now) {
    flush();
  } else if (!flush_posted_) {
    flush_posted_ = true;
    asio::post(io_, [this] { flush(); });
  }
  return batch;
}

void LedgerLane::flush() {
  flush_posted_ = false;
  if (rows_.empty()) return;
  const uint64_t batch = filling_++;
  const size_t n = rows_.size();
  // Batches handed to the writer complete in order, and a batch is written here only
  // when the writer's queue is empty, so a finished batch implies all earlier ones.
  const std::function<router::Ledger::OnWritten()> make_on_written = [this, batch, n] {
    return [this, batch, n](bool ok) {
      if (!ok) log_unwritten(n);
      asio::post(io_, [this, batch] { done(batch); });
    };
  };
  const bool written = ledger_.append_durable(rows_, make_on_written);
  rows_.clear();
  if (written) done(batch);
}

void LedgerLane::done(uint64_t batch) {
  if (batch <= done_) return;
  done_ = batch;
  wake_.cancel();
}

asio::awaitable<void> LedgerLane::wait(uint64_t batch) {
  while (done_ < batch) co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void LedgerLane::hand_over() {
  for (auto& r : rows_)
    if (!ledger_.append(std::move(r))) log::error("ledger: a row was dropped at shutdown (queue full or closed)");
  rows_.clear();
}

}  // namespace frugal::gateway
