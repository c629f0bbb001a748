#pragma once
// The ledger rows that responses wait for, batched per I/O thread.
//
// A successful answer's row must be durable before the response's last bytes go out
// (router/ledger.h, "Durability"). Under load, each row handed to the ledger's writer
// thread costs a wake-up there, a post back and a timer per request. Instead each I/O
// thread collects the rows finished during one turn of its event loop and writes them
// itself, in one WriteBatch, from a handler posted behind the turn's other work; the
// waiting exchanges then resume on the same thread. When the gateway is nearly idle the
// row is written at once and nothing waits. A write that RocksDB would stall goes to the
// writer thread instead, and its completion is posted back.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <vector>

#include "router/ledger_record.h"

namespace frugal::router {
class Ledger;
}

namespace frugal::gateway {

class LedgerLane {
 public:
  LedgerLane(boost::asio::io_context& io, router::Ledger& ledger);
  LedgerLane(const LedgerLane&) = delete;
  LedgerLane& operator=(const LedgerLane&) = delete;

  // Adds the row to this turn's batch (`now`: writes the batch at once) and returns the
  // batch's number, for wait().
  uint64_t add(router::LedgerRecord row, bool now);
  // Returns once batch `batch` is durable, or its write failed (logged).
  boost::asio::awaitable<void> wait(uint64_t batch);
  // Rows not yet written go to the ledger's queue: for shutdown, once the event loop
  // has stopped and before the ledger is closed.
  void hand_over();

 private:
  void flush();
  void done(uint64_t batch);

  boost::asio::io_context& io_;
  router::Ledger& ledger_;
  std::vector<router::LedgerRecord> rows_;
  uint64_t filling_ = 1;  // the batch rows_ belongs to
  uint64_t done_ = 0;     // every batch up to this one is written
  bool flush_posted_ = false;
  boost::asio::steady_timer wake_;  // never expires; cancelled when done_ advances
};

}  // namespace frugal::gateway
