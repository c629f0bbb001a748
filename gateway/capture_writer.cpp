#include "gateway/capture_writer.h"

#include <filesystem>
#include <vector>

#include "core/log.h"

namespace frugal::gateway {

CaptureWriter::CaptureWriter(std::string path, int64_t max_file_bytes, int64_t max_files, size_t max_queue)
    : path_(std::move(path)), max_file_bytes_(max_file_bytes), max_files_(max_files < 1 ? 1 : max_files),
      max_queue_(max_queue), thread_([this] { run(); }) {}

CaptureWriter::~CaptureWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (file_) std::fclose(file_);
}

bool CaptureWriter::write(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queue_) {
      ++dropped_;
      return false;
    }
    queue_.push_back(std::move(line));
    ++queued_total_;
  }
  wake_.notify_one();
  return true;
}

void CaptureWriter::flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = queued_total_;
  idle_.wait(lock, [&] { return written_total_ >= target; });
}

uint64_t CaptureWriter::written() const {
  std::lock_guard lock(mu_);
  return written_ok_;
}
uint64_t CaptureWriter::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}
uint64_t CaptureWriter::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

void CaptureWriter::rotate() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  namespace fs = std::filesystem;
  if (max_files_ <= 1) {
    fs::remove(path_, ec);
  } else {
    fs::remove(path_ + "." + std::to_string(max_files_ - 1), ec);
    for (int64_t i = max_files_ - 2; i >= 1; --i)
      fs::rename(path_ + "." + std::to_string(i), path_ + "." + std::to_string(i + 1), ec);
    fs::rename(path_, path_ + ".1", ec);
  }
  std::lock_guard lock(mu_);
  ++rotations_;
}

void CaptureWriter::append(const std::string& line) {
  const auto need = static_cast<int64_t>(line.size()) + 1;
  if (file_ && file_bytes_ > 0 && file_bytes_ + need > max_file_bytes_) rotate();
  if (!file_) {
    std::error_code ec;
    const auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    file_ = std::fopen(path_.c_str(), "ab");
    if (!file_) {
      log::warn("capture: cannot open " + path_ + "; the line is lost");
      return;
    }
    file_bytes_ = static_cast<int64_t>(std::filesystem::file_size(path_, ec));
    if (ec) file_bytes_ = 0;
    if (file_bytes_ > 0 && file_bytes_ + need > max_file_bytes_) {
      rotate();
      append(line);
      return;
    }
  }
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fputc('\n', file_) == EOF) {
    log::warn("capture: writing " + path_ + " failed; the line is lost");
    return;
  }
  file_bytes_ += need;
  std::lock_guard lock(mu_);
  ++written_ok_;
}

void CaptureWriter::run() {
  std::vector<std::string> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    for (const auto& l : batch) append(l);
    if (file_) std::fflush(file_);
    {
      std::lock_guard lock(mu_);
      written_total_ += batch.size();
    }
    idle_.notify_all();
    batch.clear();
  }
}

}  // namespace frugal::gateway
