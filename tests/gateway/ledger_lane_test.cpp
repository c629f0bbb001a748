// The per-I/O-thread ledger batch (gateway/ledger_lane.h) on a real RocksDB directory.
#include "gateway/ledger_lane.h"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "router/ledger.h"
#include "tests/support/temp_dir.h"

using namespace frugal;
using frugal::gateway::LedgerLane;
using frugal::test::TempDir;
namespace asio = boost::asio;

namespace {

constexpr int64_t kT = 1'700'000'000'000'000;


std::unique_ptr<router::Ledger> open_ledger(const std::string& path, router::LedgerOptions o = {}) {
  auto l = router::Ledger::open_standalone(path, o);
  REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.error().message));
  return std::move(*l);
}

router::LedgerRecord row(std::string id, int64_t t) {
  router::LedgerRecord r;
  r.request_id = std::move(id);
  r.wall_us = t;
  r.request_type = "chat";
  r.route = "passthrough";
  r.dialect = "openai";
  r.answer_model = "m";
  r.total_cost = Money::from_micros(100);
  return r;
}

size_t rows_between(router::Ledger& l, int64_t from, int64_t to) {
  auto rows = l.scan(from, to, 100);
  REQUIRE(rows.ok());
  return rows->size();
}

}  // namespace

TEST_CASE("rows added in one loop turn are written together, before their waiters resume") {
  TempDir dir;
  auto ledger = open_ledger(dir.path());
  asio::io_context io;
  LedgerLane lane(io, *ledger);
  std::vector<size_t> seen_at_resume;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      const uint64_t batch = lane.add(row("r" + std::to_string(i), kT + i), false);
      co_await lane.wait(batch);
      seen_at_resume.push_back(rows_between(*ledger, kT, kT + 10));
    }, asio::detached);
  }
  io.run();
  // Every waiter resumed after all three rows were durable, and they went in one batch.
  CHECK(seen_at_resume == std::vector<size_t>{3, 3, 3});
  CHECK(ledger->stats().batches == 1);
  CHECK(ledger->stats().written_inline == 3);

  // `now`: written before add() returns; waiting costs nothing.
  const uint64_t b = lane.add(row("now", kT + 5), true);
  CHECK(rows_between(*ledger, kT, kT + 10) == 4);
  bool resumed = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await lane.wait(b);
    resumed = true;
  }, asio::detached);
  io.restart();
  io.poll();
  CHECK(resumed);
}

TEST_CASE("a batch the writer thread takes (it is busy) reports back on the loop, in order") {
  TempDir dir;
  router::LedgerOptions o;
  o.write_delay_us = 20'000;  // a slow writer: rows queued behind it are not written inline
  auto ledger = open_ledger(dir.path(), o);
  asio::io_context io;
  LedgerLane lane(io, *ledger);
  std::vector<std::string> order;
  auto work = asio::make_work_guard(io);
  int pending = 2;
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      const uint64_t batch = lane.add(row("q" + std::to_string(i), kT + i), true);
      co_await lane.wait(batch);
      order.push_back("q" + std::to_string(i) + ":" + std::to_string(rows_between(*ledger, kT, kT + i + 1)));
      if (--pending == 0) work.reset();
    }, asio::detached);
  }
  io.run();
  CHECK(order == std::vector<std::string>{"q0:1", "q1:2"});
  CHECK(ledger->stats().written_inline == 0);
  CHECK(ledger->stats().written == 2);
}

TEST_CASE("rows not yet written at shutdown are handed to the ledger, not lost") {
  TempDir dir;
  {
    auto ledger = open_ledger(dir.path());
    asio::io_context io;
    LedgerLane lane(io, *ledger);
    lane.add(row("late", kT), false);  // its flush is posted but never runs
    lane.hand_over();
    ledger->close();
  }
  auto ledger = open_ledger(dir.path());
  CHECK(rows_between(*ledger, kT, kT + 1) == 1);
}
