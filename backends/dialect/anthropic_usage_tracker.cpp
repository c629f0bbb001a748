#include "backends/dialect/streams.h"

#include "backends/dialect/detail.h"
#include "backends/dialect/errors.h"

namespace frugal {

using dialect_detail::str_or;
using simdjson::dom::element;

void AnthropicUsageTracker::observe(const SseEvent& event) {
  // The event name repeats the data's "type"; skip parsing the hot path of deltas.
  if (event.event == "content_block_delta" || event.event == "ping" ||
      event.event == "content_block_start" || event.event == "content_block_stop")
    return;
  observe(event.data);
}

void AnthropicUsageTracker::observe(std::string_view data) {
  if (state_ != StreamState::kOpen || data.empty()) return;
  element ev;
  if (parser_.parse(data.data(), data.size()).get(ev) || !ev.is_object()) {
    state_ = StreamState::kFailed;
    error_ = make_error(ErrorKind::kUpstream, "Anthropic upstream sent an unparseable stream event.");
    return;
  }
  const std::string_view type = str_or(ev, "type");
  element u;
  if (type == "message_start") {
    element msg;
    if (!ev["message"].get(msg) && !msg["usage"].get(u)) usage_.merge(u);
  } else if (type == "message_delta") {
    if (!ev["usage"].get(u)) usage_.merge(u);
    element d;
    std::string_view stop;
    if (!ev["delta"].get(d) && !d["stop_reason"].get_string().get(stop)) stop_reason_ = std::string(stop);
  } else if (type == "message_stop") {
    state_ = StreamState::kCompleted;
  } else if (type == "error") {
    state_ = StreamState::kFailed;
    error_ = error_from_anthropic_body(0, data);
  }
}

Result<void> AnthropicUsageTracker::finish() {
  if (state_ == StreamState::kCompleted) return {};
  if (state_ == StreamState::kOpen) {
    state_ = StreamState::kFailed;
    error_ = make_error(ErrorKind::kUpstream, "The upstream stream ended before message_stop.");
  }
  return *error_;
}

}  // namespace frugal
