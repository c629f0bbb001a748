#include "core/sse_writer.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/json.h"
#include "core/sse.h"

using namespace frugal;

namespace {

struct Parsed {
  std::string event;
  std::string data;
};

std::vector<Parsed> parse_all(std::string_view bytes) {
  SseParser p;
  std::vector<Parsed> out;
  p.feed(bytes, [&](const SseEvent& ev) {
    out.push_back({std::string(ev.event), std::string(ev.data)});
  });
  CHECK_FALSE(p.has_partial());
  return out;
}

}  // namespace

TEST_CASE("SSE writer frames one data event, a named event and the terminator") {
  std::string out;
  append_sse_event(out, R"({"a":1})");
  CHECK(out == "data: {\"a\":1}\n\n");
  append_sse_event(out, "error", R"({"type":"error"})");
  CHECK(out == "data: {\"a\":1}\n\nevent: error\ndata: {\"type\":\"error\"}\n\n");
  append_sse_done(out);
  CHECK(out.ends_with("\n\ndata: [DONE]\n\n"));
  const auto events = parse_all(out);
  REQUIRE(events.size() == 3);
  CHECK(events[0].data == R"({"a":1})");
  CHECK(events[1].event == "error");
  CHECK(events[2].data == "[DONE]");

  std::string empty;
  append_sse_event(empty, "");
  CHECK(empty == "data: \n\n");
}

TEST_CASE("SSE writer gives every line of a multi-line payload its own data field") {
  std::string out;
  append_sse_event(out, "one\ntwo\r\nthree\rfour");
  CHECK(out == "data: one\ndata: two\ndata: three\ndata: four\n\n");
  append_sse_event(out, "ping", "a\n\nb\n");
  CHECK(out.ends_with("event: ping\ndata: a\ndata: \ndata: b\ndata: \n\n"));
  const auto events = parse_all(out);
  REQUIRE(events.size() == 2);
  CHECK(events[0].data == "one\ntwo\nthree\nfour");
  CHECK(events[1].data == "a\n\nb\n");  // read back exactly (LF line breaks)
  // Without the split, "data: a\n\nb" would end the event early and lose "b".
}

TEST_CASE("SSE writer serialises a list of payloads followed by the terminator") {
  std::string out = "keep:";
  const std::vector<std::string> payloads = {R"({"i":0})", "x\ny", R"({"i":2})"};
  append_sse_stream(out, payloads);
  CHECK(out == "keep:data: {\"i\":0}\n\ndata: x\ndata: y\n\ndata: {\"i\":2}\n\ndata: [DONE]\n\n");
  std::string none;
  append_sse_stream(none, {});
  CHECK(none == kSseDone);
  const auto events = parse_all(out.substr(5));
  REQUIRE(events.size() == 4);
  CHECK(events[1].data == "x\ny");
  CHECK(events[3].data == "[DONE]");
}

TEST_CASE("SSE writer frames a payload written in place, splitting lines only when there are any") {
  std::string out = "data: [DONE]\n\n";  // what came before stays as it is
  size_t at = begin_sse_data(out);
  JsonWriter(out).begin_object().key("k").value("line\nbreak").end_object();  // JSON escapes it
  end_sse_data(out, at);
  CHECK(out == "data: [DONE]\n\ndata: {\"k\":\"line\\nbreak\"}\n\n");

  std::string raw;
  at = begin_sse_data(raw);
  raw += "first\r\nsecond";
  end_sse_data(raw, at);
  CHECK(raw == "data: first\ndata: second\n\n");
  const auto events = parse_all(raw);
  REQUIRE(events.size() == 1);
  CHECK(events[0].data == "first\nsecond");
}
