#include "backends/dialect/streams.h"

#include <algorithm>

#include "core/json.h"
#include "core/sse_writer.h"
#include "backends/dialect/detail.h"
#include "backends/dialect/errors.h"
#include "backends/dialect/responses.h"

namespace frugal {

using dialect_detail::int_field;
using dialect_detail::str_or;
using dialect_detail::swap_id_prefix;
using simdjson::dom::element;

namespace {

constexpr int kMaxToolCalls = 1024;  // bounds tool_opened_ against a hostile index

}  // namespace

OpenAiToAnthropicStream::OpenAiToAnthropicStream(Options options) : opt_(std::move(options)) {}

void OpenAiToAnthropicStream::fail(Error e, std::string& out) {
  out += render_anthropic_error_event(e);
  state_ = StreamState::kFailed;
  error_ = std::move(e);
}

Result<void> OpenAiToAnthropicStream::feed(const SseEvent& ev, std::string& out) {
  return feed(ev.data, out);
}

Result<void> OpenAiToAnthropicStream::feed(std::string_view data, std::string& out) {
  if (state_ != StreamState::kOpen || data.empty()) return {};
  if (data == "[DONE]") {
    complete(out);
    return {};
  }
  element chunk;
  if (parser_.parse(data.data(), data.size()).get(chunk) || !chunk.is_object()) {
    fail(make_error(ErrorKind::kUpstream, "OpenAI-compatible upstream sent an unparseable stream chunk."), out);
    return *error_;
  }
  return on_chunk(chunk, out);
}

void OpenAiToAnthropicStream::message_start(std::string_view upstream_id, std::string& out) {
  if (started_) return;
  started_ = true;
  if (opt_.id.empty()) opt_.id = swap_id_prefix(upstream_id, "chatcmpl-", "msg_");
  Usage known;
  known.input_tokens = opt_.input_tokens_hint;
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value("message_start").key("message").begin_object();
  w.key("id").value(opt_.id).key("type").value("message").key("role").value("assistant");
  w.key("model").value(opt_.model);
  w.key("content").begin_array().end_array();
  w.key("stop_reason").null().key("stop_sequence").null();
  w.key("usage");
  write_anthropic_usage(w, known);
  w.end_object().end_object();
  append_sse_event(out, "message_start", json);
}

void OpenAiToAnthropicStream::open_block(Kind kind, int tool_index, std::string_view id,
                                         std::string_view name, std::string& out) {
  close_block(out);
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value("content_block_start").key("index").value(next_block_);
  w.key("content_block").begin_object();
  switch (kind) {
    case Kind::kText: w.key("type").value("text").key("text").value(""); break;
    case Kind::kThinking:
      w.key("type").value("thinking").key("thinking").value("").key("signature").value("");
      break;
    case Kind::kTool:
      w.key("type").value("tool_use").key("id").value(id).key("name").value(name);
      w.key("input").begin_object().end_object();
      break;
    case Kind::kNone: break;
  }
  w.end_object().end_object();
  append_sse_event(out, "content_block_start", json);
  if (!pinged_) {
    pinged_ = true;
    append_sse_event(out, "ping", R"({"type":"ping"})");
  }
  current_ = kind;
  current_tool_ = tool_index;
}

void OpenAiToAnthropicStream::close_block(std::string& out) {
  if (current_ == Kind::kNone) return;
  append_sse_event(out, "content_block_stop",
                   R"({"type":"content_block_stop","index":)" + std::to_string(next_block_) + "}");
  ++next_block_;
  current_ = Kind::kNone;
  current_tool_ = -1;
}

void OpenAiToAnthropicStream::delta(std::string_view delta_type, std::string_view field,
                                    std::string_view value, std::string& out) {
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value("content_block_delta").key("index").value(next_block_);
  w.key("delta").begin_object().key("type").value(delta_type).key(field).value(value).end_object();
  w.end_object();
  append_sse_event(out, "content_block_delta", json);
}

Result<void> OpenAiToAnthropicStream::on_tool_delta(element tc, std::string& out) {
  const int64_t index = int_field(tc, "index").value_or(0);
  if (index < 0 || index >= kMaxToolCalls) {
    fail(make_error(ErrorKind::kUpstream, "upstream sent an invalid tool call index"), out);
    return *error_;
  }
  const int i = static_cast<int>(index);
  if (static_cast<size_t>(i) >= tool_opened_.size()) tool_opened_.resize(static_cast<size_t>(i) + 1);
  element fn;
  const bool has_fn = !tc["function"].get(fn) && fn.is_object();
  if (!(current_ == Kind::kTool && current_tool_ == i)) {
    if (tool_opened_[static_cast<size_t>(i)]) {
      fail(make_error(ErrorKind::kUpstream,
                      "upstream interleaved parallel tool-call deltas, which an Anthropic stream "
                      "cannot express"),
           out);
      return *error_;
    }
    tool_opened_[static_cast<size_t>(i)] = true;
    open_block(Kind::kTool, i, str_or(tc, "id"), has_fn ? str_or(fn, "name") : "", out);
  }
  const std::string_view args = has_fn ? str_or(fn, "arguments") : "";
  if (!args.empty()) delta("input_json_delta", "partial_json", args, out);
  return {};
}

Result<void> OpenAiToAnthropicStream::on_chunk(element chunk, std::string& out) {
  element v;
  if (!chunk["error"].get(v) && !v.is_null()) {
    fail(error_from_openai_body(0, simdjson::minify(chunk)), out);
    return *error_;
  }
  message_start(str_or(chunk, "id"), out);
  if (!chunk["usage"].get(v) && v.is_object()) usage_ = usage_from_openai(v);

  simdjson::dom::array choices;
  element choice;
  if (chunk["choices"].get_array().get(choices) || choices.at(0).get(choice)) return {};
  element d;
  if (!choice["delta"].get(d) && d.is_object()) {
    std::string_view s;
    if (!d["reasoning_content"].get_string().get(s) && !s.empty()) {
      if (current_ != Kind::kThinking) open_block(Kind::kThinking, -1, {}, {}, out);
      delta("thinking_delta", "thinking", s, out);
    }
    if (!d["content"].get_string().get(s) && !s.empty()) {
      if (current_ != Kind::kText) open_block(Kind::kText, -1, {}, {}, out);
      delta("text_delta", "text", s, out);
    }
    if (!d["refusal"].get_string().get(s) && !s.empty()) {
      if (current_ != Kind::kText) open_block(Kind::kText, -1, {}, {}, out);
      delta("text_delta", "text", s, out);
      finish_reason_ = "content_filter";
    }
    simdjson::dom::array calls;
    if (!d["tool_calls"].get_array().get(calls))
      for (element tc : calls) FRUGAL_TRY(on_tool_delta(tc, out));
  }
  std::string_view finish;
  if (!choice["finish_reason"].get_string().get(finish) && !finish.empty()) {
    if (finish_reason_.empty()) finish_reason_ = std::string(finish);
    close_block(out);
  }
  return {};
}

void OpenAiToAnthropicStream::complete(std::string& out) {
  message_start({}, out);
  close_block(out);
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value("message_delta").key("delta").begin_object();
  // OpenAI ends a call forced by a named tool_choice with "stop"; an Anthropic client
  // reads tool_use blocks only after stop_reason tool_use.
  const bool called = std::find(tool_opened_.begin(), tool_opened_.end(), true) != tool_opened_.end();
  w.key("stop_reason").value(called && (finish_reason_.empty() || finish_reason_ == "stop")
                                 ? "tool_use"
                                 : anthropic_stop_reason_for(finish_reason_));
  w.key("stop_sequence").null().end_object();
  Usage final = usage_;
  if (!final.reported) final.input_tokens = opt_.input_tokens_hint;  // keep what message_start said
  w.key("usage");
  write_anthropic_usage(w, final);
  w.end_object();
  append_sse_event(out, "message_delta", json);
  append_sse_event(out, "message_stop", R"({"type":"message_stop"})");
  state_ = StreamState::kCompleted;
}

Result<void> OpenAiToAnthropicStream::finish(std::string& out) {
  if (state_ == StreamState::kCompleted) return {};
  if (state_ == StreamState::kOpen)
    fail(make_error(ErrorKind::kUpstream, "The upstream stream ended before data: [DONE]."), out);
  return *error_;
}

void OpenAiToAnthropicStream::abort(const Error& error, std::string& out) {
  if (state_ == StreamState::kOpen) fail(error, out);
}

}  // namespace frugal
