#pragma once
// A few std::threads draining a FIFO of tasks: where blocking work (RocksDB reads)
// runs so that it never runs on an I/O thread.
//
// Threads: post() is thread-safe and never blocks on the work itself. Tasks run on
// the pool's threads, in FIFO order per thread (no ordering across threads).
// Lifetime: the destructor runs every task already posted, then joins; tasks posted
// after destruction began are dropped (they never run). Tasks must not throw.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace frugal::cache {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Returns false (and drops the task) once the pool is stopping.
  bool post(std::function<void()> task);
  // Blocks until every task posted so far has finished (tests, shutdown).
  void drain();
  size_t queued() const;

 private:
  void run();
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> tasks_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace frugal::cache
