#pragma once
// Incremental Server-Sent-Events parser. Bytes arrive in arbitrary pieces (a network
// read may end mid-line); only complete events (terminated by a blank line) come out.
//
// Bounded and linear: an event (complete or still arriving) longer than the parser's
// limit stops it for good (overflowed(); the rest of the stream is not parsed), and a
// piece that completes no event is scanned once, not re-scanned with every later piece.
#include <cstddef>
#include <string>
#include <string_view>

namespace frugal {

struct SseEvent {
  std::string_view raw;    // the event's bytes including its terminating blank line
  std::string_view event;  // "event:" field, empty if absent
  std::string_view data;   // "data:" lines joined with '\n'
};

class SseParser {
 public:
  // The default cap on one event (`max_sse_event` in the provider config overrides it).
  static constexpr size_t kDefaultMaxEventBytes = 1 << 20;

  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes) : max_event_(max_event_bytes) {}

  // Appends `bytes` and calls `fn(const SseEvent&)` for each complete event. The views
  // are valid only during the call. Does nothing once overflowed().
  template <class Fn>
  void feed(std::string_view bytes, Fn&& fn) {
    if (overflowed_) return;
    buf_.append(bytes);
    if (!find_blank_line()) {
      check_partial_size();
      return;
    }
    size_t start = 0;
    SseEvent ev;
    while (next_event(start, ev)) {
      if (ev.raw.size() > max_event_) {
        overflow();
        return;
      }
      fn(ev);
    }
    buf_.erase(0, start);
    scan_ = line_start_ = 0;
    check_partial_size();
  }
  // Bytes of an event that has begun but not finished (non-blank), or an overflow.
  bool has_partial() const;
  // An event exceeded the limit: the stream cannot be relayed faithfully any more.
  bool overflowed() const { return overflowed_; }
  size_t max_event_bytes() const { return max_event_; }
  void reset() {
    buf_.clear();
    scan_ = line_start_ = 0;
    overflowed_ = false;
  }

 private:
  bool next_event(size_t& start, SseEvent& ev);
  // Whether buf_ holds a blank line, scanning only the bytes not scanned before.
  bool find_blank_line();
  void check_partial_size() {
    if (buf_.size() > max_event_) overflow();
  }
  void overflow() {
    overflowed_ = true;
    buf_ = std::string();
    scan_ = line_start_ = 0;
  }
  std::string buf_;
  std::string data_;  // joined data for multi-line events
  size_t max_event_;
  size_t scan_ = 0;        // buf_[0, scan_) holds no blank line
  size_t line_start_ = 0;  // where the line being scanned begins
  bool overflowed_ = false;
};

}  // namespace frugal
