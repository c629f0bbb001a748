#pragma once
// The access log: one JSON line per chat request, a pure function of its trace
// (access_log_line), written through AccessLog, which buffers lines per I/O thread and
// writes them from its own thread. Never prompt or answer text, never an API key (only
// its key id). Fields: docs/observability.md, "Access log".
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "gateway/thread_shards.h"
#include "router/request_trace.h"

namespace frugal::gateway {

// The request's line, without the trailing newline.
std::string access_log_line(const router::RequestTrace& t);

// One warning per failed upstream attempt (an error status, a connection or answer that
// failed; what happened next: retried, fell back, or given up), with the request id.
std::vector<std::string> upstream_warnings(const router::RequestTrace& t);

class AccessLog {
 public:
  // `where`: "stdout" or a file path (created if missing, appended to).
  static Result<std::unique_ptr<AccessLog>> open(const std::string& where);
  ~AccessLog();  // writes every line added before it
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Appends `line` and a newline to the calling thread's buffer. A buffer the writer
  // cannot drain (kMaxBufferBytes) drops lines and counts them.
  void add(std::string_view line);
  // Writes every buffered line now (blocking); tests and shutdown.
  void flush();
  // A reload: writes what is buffered to the current target, then switches to `where`
  // ("stdout", a file path, or "" for none: later lines are discarded). The same path
  // is opened again (after logrotate moved the file). On error nothing changes.
  Result<void> reopen(const std::string& where);
  int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  static constexpr size_t kWakeBytes = 64 << 10;       // a buffer this full wakes the writer
  static constexpr size_t kMaxBufferBytes = 16 << 20;  // per thread
  static constexpr int kFlushIntervalMs = 200;         // otherwise the writer runs this often

 private:
  AccessLog(int fd, bool own_fd);
  void run();
  void flush_locked();  // mu_ held
  void write_all(const std::string& bytes);

  int fd_;  // -1: none (the lines are discarded); guarded by mu_
  bool own_fd_;
  ThreadShards<std::string> buffers_;
  std::mutex mu_;  // the writer's wait and the file writes
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<int64_t> dropped_{0};
  std::atomic<bool> write_failed_{false};
  std::thread writer_;
};

}  // namespace frugal::gateway
