#pragma once
// ThreadPool: a fixed set of persistent workers that run data-parallel loops for the
// engine's kernels. There is no per-op thread spawn: workers park on a condition
// variable between jobs (after a short spin, so back-to-back matmuls in one decode
// step do not pay a wake-up each).
//
// Contract: parallel_for is called from one thread at a time (the engine's scheduler
// thread owns the pool); the calling thread takes part in the work and returns when
// every index has been processed. fn must not throw.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace frugal::engine {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over disjoint chunks covering [0, n); chunks are
  // handed out dynamically (grain items at a time) so a worker preempted by another
  // process on a shared machine does not hold up the whole loop.
  template <class Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run(n, grain, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<F*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using RawFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  void run(int64_t n, int64_t grain, RawFn fn, void* ctx);
  void worker_main(int thread_index);
  void work(int thread_index);

  const int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  // The current job; published by bumping generation_.
  std::atomic<uint64_t> generation_{0};
  RawFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};
  bool open_ = false;            // (mu_) workers may still join the current job
  std::atomic<int> active_{0};   // workers that joined it and have not finished
};

}  // namespace frugal::engine
