#pragma once
// Server-Sent-Events framing: the one writer every relay, translator, replay and error
// path uses, so that what SseParser (core/sse.h) reads back is what was meant.
//
// A payload with line breaks (CRLF, CR or LF, as the parser reads them) becomes one
// `data:` field per line, which a reader joins with '\n' again. (A CR in a payload is
// therefore read back as LF: SSE has no way to carry it.) Event names are written as
// given; they are constants and carry no line break.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace frugal {

// The stream terminator of OpenAI-style streams.
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Appends `data: <payload>\n\n`.
void append_sse_event(std::string& out, std::string_view data);
// Appends `event: <name>\ndata: <payload>\n\n`.
void append_sse_event(std::string& out, std::string_view name, std::string_view data);
inline void append_sse_done(std::string& out) { out += kSseDone; }
// Appends one data event per payload, then the terminator.
void append_sse_stream(std::string& out, std::span<const std::string> payloads);

// For a payload written straight into `out` (a JSON writer's output) without a copy:
//   const size_t at = begin_sse_data(out);  // appends "data: "
//   ... append the payload to out ...
//   end_sse_data(out, at);                  // ends the event
// Line breaks in what was appended after `at` are split into data fields as above.
size_t begin_sse_data(std::string& out);
void end_sse_data(std::string& out, size_t at);

}  // namespace frugal
