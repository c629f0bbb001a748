#pragma once
// Appends captured-traffic lines (docs/replay.md) to a JSONL file from its own thread, so
// no request waits on the disk: write() queues a line (or drops it, counted, when the
// queue is full) and returns at once. The file is rotated when the next line would take
// it past max_file_bytes: path → path.1 → … → path.(max_files-1), the oldest dropped, so
// at most max_file_bytes × max_files are kept. The file is opened on the first line.
//
// Thread-safe. The destructor writes what is queued, then joins.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace frugal::gateway {

class CaptureWriter {
 public:
  CaptureWriter(std::string path, int64_t max_file_bytes, int64_t max_files, size_t max_queue);
  ~CaptureWriter();
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;

  // `line` without its newline. False when it was dropped (the queue is full).
  bool write(std::string line);
  // Returns once every line queued before the call is written (tests, shutdown).
  void flush();

  const std::string& path() const { return path_; }
  uint64_t written() const;
  uint64_t dropped() const;
  uint64_t rotations() const;

 private:
  void run();
  void append(const std::string& line);  // writer thread
  void rotate();                         // writer thread

  const std::string path_;
  const int64_t max_file_bytes_;
  const int64_t max_files_;
  const size_t max_queue_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::string> queue_;
  uint64_t queued_total_ = 0;
  uint64_t written_total_ = 0;  // lines taken off the queue and handled (written or failed)
  uint64_t written_ok_ = 0;
  uint64_t dropped_ = 0;
  uint64_t rotations_ = 0;
  bool stop_ = false;

  std::FILE* file_ = nullptr;  // writer thread only
  int64_t file_bytes_ = 0;     // writer thread only
  std::thread thread_;
};

}  // namespace frugal::gateway
