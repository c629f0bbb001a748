#include "cache/blocking_pool.h"

namespace frugal::cache {

BlockingPool::BlockingPool(size_t threads) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool BlockingPool::post(std::function<void()> task) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  work_cv_.notify_one();
  return true;
}

void BlockingPool::drain() {
  std::unique_lock lk(mu_);
  idle_cv_.wait(lk, [&] { return tasks_.empty() && running_ == 0; });
}

size_t BlockingPool::queued() const {
  std::lock_guard lk(mu_);
  return tasks_.size();
}

void BlockingPool::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping and drained
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    ++running_;
    lk.unlock();
    task();
    task = nullptr;  // captures are destroyed outside the lock
    lk.lock();
    --running_;
    if (tasks_.empty() && running_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace frugal::cache
