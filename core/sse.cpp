#include "core/sse.h"

#include <cstring>

namespace frugal {
namespace {

std::string_view field_value(std::string_view line, size_t colon) {
  std::string_view v = line.substr(colon + 1);
  if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

}  // namespace

bool SseParser::has_partial() const {
  if (overflowed_) return true;
  for (char c : buf_)
    if (c != '\n' && c != '\r') return true;
  return false;
}

bool SseParser::find_blank_line() {
  while (scan_ < buf_.size()) {
    const void* hit = std::memchr(buf_.data() + scan_, '\n', buf_.size() - scan_);
    if (hit == nullptr) {
      scan_ = buf_.size();
      return false;
    }
    const size_t nl = static_cast<size_t>(static_cast<const char*>(hit) - buf_.data());
    const size_t len = nl - line_start_;
    if (len == 0 || (len == 1 && buf_[line_start_] == '\r')) return true;
    scan_ = line_start_ = nl + 1;
  }
  return false;
}

bool SseParser::next_event(size_t& start, SseEvent& ev) {
  // Scan lines from `start`; an empty line ends the event.
  size_t pos = start;
  ev = SseEvent{};
  data_.clear();
  bool multi_data = false;
  bool any_field = false;
  while (true) {
    const size_t nl = buf_.find('\n', pos);
    if (nl == std::string::npos) return false;
    std::string_view line(buf_.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) {
      if (!any_field) {  // stray blank line between events: skip it
        start = pos;
        continue;
      }
      ev.raw = std::string_view(buf_.data() + start, pos - start);
      if (multi_data) ev.data = data_;
      start = pos;
      return true;
    }
    any_field = true;
    if (line.front() == ':') continue;  // comment
    const size_t colon = line.find(':');
    const std::string_view name = colon == std::string_view::npos ? line : line.substr(0, colon);
    const std::string_view value =
        colon == std::string_view::npos ? std::string_view{} : field_value(line, colon);
    if (name == "data") {
      if (ev.data.data() == nullptr && !multi_data) {
        ev.data = value;
        if (ev.data.data() == nullptr) ev.data = std::string_view(line.data() + line.size(), 0);
      } else {
        if (!multi_data) data_.assign(ev.data);
        multi_data = true;
        data_ += '\n';
        data_.append(value);
      }
    } else if (name == "event") {
      ev.event = value;
    }
  }
}

}  // namespace frugal
