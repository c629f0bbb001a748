#pragma once
// Incremental Server-Sent-Events parser. Bytes arrive in arbitrary pieces (a network
// read may end mid-line); only complete events (terminated by a blank line) come out.
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
  // Appends `bytes` and calls `fn(const SseEvent&)` for each complete event. The views
  // are valid only during the call.
  template <class Fn>
  void feed(std::string_view bytes, Fn&& fn) {
    buf_.append(bytes);
    size_t start = 0;
    SseEvent ev;
    while (next_event(start, ev)) fn(ev);
    buf_.erase(0, start);
  }
  // Bytes of an event that has begun but not finished (non-blank).
  bool has_partial() const;
  void reset() { buf_.clear(); }

 private:
  bool next_event(size_t& start, SseEvent& ev);
  std::string buf_;
  std::string data_;  // joined data for multi-line events
};

}  // namespace frugal
