#include "core/sse_writer.h"

#include <cstring>

namespace frugal {
namespace {

constexpr std::string_view kData = "data: ";

// Index of the first CR or LF in `s`, or s.size().
size_t line_break(std::string_view s) {
  const void* lf = std::memchr(s.data(), '\n', s.size());
  const size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - s.data()) : s.size();
  const void* cr = end ? std::memchr(s.data(), '\r', end) : nullptr;
  return cr ? static_cast<size_t>(static_cast<const char*>(cr) - s.data()) : end;
}

// Appends the lines of `data` as data fields, each ended by '\n' (not the event's
// blank line). `data` must not point into `out`.
void append_data_fields(std::string& out, std::string_view data) {
  while (true) {
    const size_t br = line_break(data);
    out += kData;
    out.append(data.data(), br);
    out += '\n';
    if (br == data.size()) return;
    size_t next = br + 1;
    if (data[br] == '\r' && next < data.size() && data[next] == '\n') ++next;
    data.remove_prefix(next);
  }
}

}  // namespace

void append_sse_event(std::string& out, std::string_view data) {
  out.reserve(out.size() + kData.size() + data.size() + 2);
  append_data_fields(out, data);
  out += '\n';
}

void append_sse_event(std::string& out, std::string_view name, std::string_view data) {
  out.reserve(out.size() + 8 + name.size() + kData.size() + data.size() + 2);
  out += "event: ";
  out += name;
  out += '\n';
  append_data_fields(out, data);
  out += '\n';
}

void append_sse_stream(std::string& out, std::span<const std::string> payloads) {
  size_t n = kSseDone.size();
  for (const auto& p : payloads) n += kData.size() + p.size() + 2;
  out.reserve(out.size() + n);
  for (const auto& p : payloads) append_sse_event(out, p);
  out += kSseDone;
}

size_t begin_sse_data(std::string& out) {
  out += kData;
  return out.size();
}

void end_sse_data(std::string& out, size_t at) {
  const std::string_view written(out.data() + at, out.size() - at);
  if (line_break(written) == written.size()) [[likely]] {
    out += "\n\n";
    return;
  }
  const std::string payload(written);  // rare: re-frame a payload that spans lines
  out.resize(at - kData.size());
  append_sse_event(out, payload);
}

}  // namespace frugal
