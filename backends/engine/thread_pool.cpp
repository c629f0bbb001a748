#include "backends/engine/thread_pool.h"

#include <algorithm>

namespace frugal::engine {

namespace {
// Spin this many polls (tens of microseconds) before parking: a decode step issues its
// matmuls microseconds apart, but on an oversubscribed machine spinning steals the core
// from the very thread we wait for, so the spin stays short.
constexpr int kSpinIterations = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(int thread_index) {
  for (;;) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_) break;
    fn_(ctx_, b, std::min(n_, b + grain_), thread_index);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, RawFn fn, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    grain_ = grain;
    next_.store(0, std::memory_order_relaxed);
    active_.store(0, std::memory_order_relaxed);
    open_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_cv_.notify_all();
  work(0);
  // Every chunk is taken. Close the job: a worker that has not joined yet (not woken, or
  // preempted by another process) skips it instead of being waited for; then wait for
  // the joined ones to finish their last chunk (spin, then park).
  {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  for (int i = 0; i < kSpinIterations; ++i) {
    if (active_.load(std::memory_order_acquire) == 0) return;
    cpu_relax();
  }
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [this] { return active_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker_main(int thread_index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpinIterations && gen == seen; ++i) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock lock(mu_);
      wake_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    {
      std::lock_guard lock(mu_);  // pairs with the publisher: fn_/ctx_/n_ are visible
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      if (!open_) continue;  // closed before this worker got here: nothing left to do
      active_.fetch_add(1, std::memory_order_relaxed);  // the caller waits for joined workers only
    }
    work(thread_index);
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mu_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace frugal::engine
