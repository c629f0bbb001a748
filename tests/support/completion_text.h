#pragma once
// The assistant text of an OpenAI answer as a test client received it: the message
// content of a chat.completion body, or the content deltas of an SSE stream joined
// (up to [DONE]). "<no content>" / "<bad chunk>" when the bytes are not that shape.
#include <simdjson.h>

#include <string>
#include <string_view>

#include "tests/support/process.h"

namespace frugal::test {

inline std::string content_of(const Response& r) {
  simdjson::dom::parser p;
  if (r.header("content-type").find("text/event-stream") == std::string::npos) {
    std::string_view s;
    if (p.parse(r.body)["choices"].at(0)["message"]["content"].get_string().get(s)) return "<no content>";
    return std::string(s);
  }
  std::string out;
  size_t pos = 0;
  while ((pos = r.body.find("data: ", pos)) != std::string::npos) {
    const size_t end = r.body.find("\n\n", pos);
    const std::string data = r.body.substr(pos + 6, end - pos - 6);
    pos = end;
    if (data == "[DONE]") break;
    simdjson::dom::element chunk;
    if (p.parse(data).get(chunk)) return "<bad chunk>";
    simdjson::dom::array choices;
    if (chunk["choices"].get_array().get(choices) || choices.size() == 0) continue;
    std::string_view s;
    if (!choices.at(0)["delta"]["content"].get_string().get(s)) out += s;
  }
  return out;
}

}  // namespace frugal::test
