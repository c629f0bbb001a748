// An upstream's event stream as frugal relays it: bytes in arbitrary pieces through the
// SSE parser (core/sse.cpp), every event through both stream translators and the usage
// tracker of a pass-through Anthropic stream (backends/dialect/*_stream.cpp), and the
// OpenAI chunks through the assembly of a streamed answer (openai_stream_assembly.cpp).
//
// Input: byte 0 picks the size of the pieces the bytes arrive in, the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/dialect/openai_stream_assembly.h"
#include "backends/dialect/responses_api.h"
#include "backends/dialect/streams.h"
#include "core/sse.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using Events = std::vector<std::pair<std::string, std::string>>;  // (event, data)

Events parse_whole(std::string_view bytes) {
  Events out;
  frugal::SseParser p;
  p.feed(bytes, [&](const frugal::SseEvent& ev) { out.emplace_back(ev.event, ev.data); });
  return out;
}

bool ends_events(const std::string& out) {
  return out.empty() || (out.size() >= 2 && out.compare(out.size() - 2, 2, "\n\n") == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  if (size == 0) return 0;
  const size_t piece = data[0] == 0 ? 1 << 20 : data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  AnthropicToOpenAiStream to_openai({"gpt-x", "", 0, (data[0] & 1) != 0});
  OpenAiToAnthropicStream to_anthropic({"claude-x", "", 3});
  AnthropicUsageTracker tracker;
  const ResponsesEcho echo;
  ChatToResponsesStream to_responses(ResponsesFrame{"resp_x", 0, "gpt-x", &echo});
  std::string openai_out, anthropic_out, responses_out;
  std::vector<std::string> chunks;
  Events events;
  SseParser sse;
  const auto on_event = [&](const SseEvent& ev) {
    fuzz::require(!ev.raw.empty(), "an event without bytes");
    events.emplace_back(ev.event, ev.data);
    (void)to_openai.feed(ev, openai_out);
    (void)to_anthropic.feed(ev, anthropic_out);
    (void)to_responses.feed(ev, responses_out);
    tracker.observe(ev);
    if (ev.data != "[DONE]" && chunks.size() < 256) chunks.emplace_back(ev.data);
    fuzz::require(ends_events(openai_out) && ends_events(anthropic_out) && ends_events(responses_out),
                  "a translator wrote half an event");
  };
  for (size_t at = 0; at < stream.size(); at += piece) sse.feed(stream.substr(at, piece), on_event);
  fuzz::accepted(!events.empty());
  fuzz::require(events == parse_whole(stream), "the events depend on how the bytes were split");

  (void)sse.has_partial();
  (void)to_openai.finish(openai_out);
  (void)to_anthropic.finish(anthropic_out);
  (void)tracker.finish();
  fuzz::require(to_openai.state() != StreamState::kOpen && to_anthropic.state() != StreamState::kOpen,
                "a stream still open after the upstream's end");
  fuzz::require(ends_events(openai_out) && ends_events(anthropic_out), "a translator wrote half an event");
  if (to_responses.saw_done())
    to_responses.complete(responses_out);
  else
    to_responses.abort(make_error(ErrorKind::kUpstream, "cut"), responses_out);
  fuzz::require(to_responses.state() != StreamState::kOpen, "a Responses stream still open after the upstream's end");
  fuzz::require(ends_events(responses_out), "a translator wrote half an event");
  (void)to_openai.current_usage();
  (void)to_anthropic.current_usage();
  if (!chunks.empty()) (void)assemble_completion_from_chunks(chunks);
  return 0;
}
