#include "bench/mock_anthropic/anthropic_mock.h"

#include <algorithm>

#include "core/json.h"

namespace frugal::mock {
namespace {

struct Outcome {
  std::string text;
  std::string stop_reason;
  std::string stop_sequence;  // "" → null
  bool tool = false;
};

// Applies the request's stop sequences to the scripted text, as the model would stop.
Outcome decide(const AnthropicRequestInfo& req, const AnthropicScript& s) {
  Outcome o;
  o.text = s.text;
  size_t first = std::string::npos;
  for (const auto& seq : req.stop_sequences) {
    const size_t at = seq.empty() ? std::string::npos : s.text.find(seq);
    if (at < first) {
      first = at;
      o.stop_sequence = seq;
    }
  }
  if (first != std::string::npos) {
    o.text = s.text.substr(0, first);
    o.stop_reason = "stop_sequence";
  } else {
    o.tool = s.tool_call.has_value();
    o.stop_reason = o.tool ? "tool_use" : "end_turn";
  }
  if (!s.stop_reason.empty()) o.stop_reason = s.stop_reason;
  return o;
}

// Splits `s` into pieces of about `size` bytes without cutting a UTF-8 sequence.
std::vector<std::string> pieces(const std::string& s, size_t size) {
  std::vector<std::string> out;
  size = std::max<size_t>(size, 1);
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + size);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

void write_usage(JsonWriter& w, const AnthropicScript& s, int64_t output_tokens) {
  w.begin_object();
  w.key("input_tokens").value(s.input_tokens);
  w.key("cache_creation_input_tokens").value(s.cache_write_5m_tokens + s.cache_write_1h_tokens);
  w.key("cache_read_input_tokens").value(s.cache_read_input_tokens);
  w.key("cache_creation").begin_object();
  w.key("ephemeral_5m_input_tokens").value(s.cache_write_5m_tokens);
  w.key("ephemeral_1h_input_tokens").value(s.cache_write_1h_tokens);
  w.end_object();
  w.key("output_tokens").value(output_tokens);
  w.end_object();
}

std::string event(std::string_view name, const std::string& data) {
  return "event: " + std::string(name) + "\ndata: " + data + "\n\n";
}

}  // namespace

std::string anthropic_mock_error(std::string_view error_type, std::string_view message) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("type").value("error").key("error").begin_object();
  w.key("type").value(error_type).key("message").value(message).end_object().end_object();
  return out;
}

std::string anthropic_mock_message(const AnthropicRequestInfo& req, const AnthropicScript& s) {
  const Outcome o = decide(req, s);
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("id").value(s.message_id).key("type").value("message").key("role").value("assistant");
  w.key("model").value(req.model);
  w.key("content").begin_array();
  if (!s.thinking.empty())
    w.begin_object().key("type").value("thinking").key("thinking").value(s.thinking)
        .key("signature").value("mock-signature").end_object();
  if (!o.text.empty()) w.begin_object().key("type").value("text").key("text").value(o.text).end_object();
  if (o.tool)
    w.begin_object().key("type").value("tool_use").key("id").value(s.tool_call->id)
        .key("name").value(s.tool_call->name).key("input").raw(s.tool_call->input_json).end_object();
  w.end_array();
  w.key("stop_reason").value(o.stop_reason);
  w.key("stop_sequence");
  if (o.stop_sequence.empty()) w.null(); else w.value(o.stop_sequence);
  w.key("usage");
  write_usage(w, s, s.output_tokens);
  w.end_object();
  return out;
}

std::vector<std::string> anthropic_mock_events(const AnthropicRequestInfo& req, const AnthropicScript& s) {
  const Outcome o = decide(req, s);
  std::vector<std::string> ev;
  {
    std::string d;
    JsonWriter w(d);
    w.begin_object().key("type").value("message_start").key("message").begin_object();
    w.key("id").value(s.message_id).key("type").value("message").key("role").value("assistant");
    w.key("model").value(req.model).key("content").begin_array().end_array();
    w.key("stop_reason").null().key("stop_sequence").null().key("usage");
    write_usage(w, s, 1);
    w.end_object().end_object();
    ev.push_back(event("message_start", d));
  }
  int index = 0;
  const auto block = [&](const std::string& start_block, std::string_view delta_type,
                         std::string_view field, const std::string& body, bool empty_first) {
    const std::string idx = std::to_string(index);
    ev.push_back(event("content_block_start",
                       R"({"type":"content_block_start","index":)" + idx + R"(,"content_block":)" + start_block + "}"));
    if (index == 0) ev.push_back(event("ping", R"({"type": "ping"})"));
    std::vector<std::string> parts = pieces(body, s.chunk_size);
    if (empty_first) parts.insert(parts.begin(), std::string());
    for (const auto& p : parts) {
      std::string d;
      JsonWriter w(d);
      w.begin_object().key("type").value("content_block_delta").key("index").value(index);
      w.key("delta").begin_object().key("type").value(delta_type).key(field).value(p).end_object();
      w.end_object();
      ev.push_back(event("content_block_delta", d));
    }
    ev.push_back(event("content_block_stop", R"({"type":"content_block_stop","index":)" + idx + "}"));
    ++index;
  };
  if (!s.thinking.empty()) {
    block(R"({"type":"thinking","thinking":"","signature":""})", "thinking_delta", "thinking", s.thinking, false);
    // The real API closes a thinking block with its signature.
    ev.insert(ev.end() - 1, event("content_block_delta",
                                  R"({"type":"content_block_delta","index":)" + std::to_string(index - 1) +
                                      R"(,"delta":{"type":"signature_delta","signature":"mock-signature"}})"));
  }
  if (!o.text.empty()) block(R"({"type":"text","text":""})", "text_delta", "text", o.text, false);
  if (o.tool) {
    std::string start;
    JsonWriter w(start);
    w.begin_object().key("type").value("tool_use").key("id").value(s.tool_call->id);
    w.key("name").value(s.tool_call->name).key("input").begin_object().end_object().end_object();
    block(start, "input_json_delta", "partial_json", s.tool_call->input_json, true);
  }
  {
    std::string d;
    JsonWriter w(d);
    w.begin_object().key("type").value("message_delta").key("delta").begin_object();
    w.key("stop_reason").value(o.stop_reason).key("stop_sequence");
    if (o.stop_sequence.empty()) w.null(); else w.value(o.stop_sequence);
    w.end_object().key("usage").begin_object().key("output_tokens").value(s.output_tokens).end_object();
    w.end_object();
    ev.push_back(event("message_delta", d));
  }
  ev.push_back(event("message_stop", R"({"type":"message_stop"})"));

  if (s.fail_after_events && *s.fail_after_events < ev.size()) {
    ev.resize(*s.fail_after_events);
    if (!s.error_type.empty())
      ev.push_back(event("error", anthropic_mock_error(s.error_type, "mock: injected " + s.error_type)));
  }
  return ev;
}

}  // namespace frugal::mock
