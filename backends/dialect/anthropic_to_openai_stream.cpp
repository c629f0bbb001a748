#include "backends/dialect/streams.h"

#include "core/json.h"
#include "core/sse_writer.h"
#include "backends/dialect/detail.h"
#include "backends/dialect/errors.h"
#include "backends/dialect/responses.h"

namespace frugal {

using dialect_detail::int_field;
using dialect_detail::Lookup;
using dialect_detail::str_or;
using dialect_detail::swap_id_prefix;
using simdjson::dom::element;

AnthropicToOpenAiStream::AnthropicToOpenAiStream(Options options) : opt_(std::move(options)) {}

size_t AnthropicToOpenAiStream::begin_chunk(std::string& out) const {
  const size_t at = begin_sse_data(out);
  JsonWriter w(out);
  w.begin_object();
  w.key("id").value(opt_.id).key("object").value("chat.completion.chunk");
  w.key("created").value(opt_.created_unix_s).key("model").value(opt_.model);
  out += R"(,"choices":[{"index":0,"delta":)";
  return at;
}

void AnthropicToOpenAiStream::end_chunk(std::string& out, size_t at, std::string_view finish_reason) const {
  out += R"(,"logprobs":null,"finish_reason":)";
  out += finish_reason.empty() ? std::string("null") : json_quote(finish_reason);
  out += "}]}";
  end_sse_data(out, at);
}

void AnthropicToOpenAiStream::role_chunk(std::string& out) {
  if (role_sent_) return;
  role_sent_ = true;
  const size_t at = begin_chunk(out);
  out += R"({"role":"assistant","content":""})";
  end_chunk(out, at, {});
}

void AnthropicToOpenAiStream::fail(Error e, std::string& out) {
  out += render_openai_error_event(e);
  state_ = StreamState::kFailed;
  error_ = std::move(e);
}

Result<void> AnthropicToOpenAiStream::feed(const SseEvent& event, std::string& out) {
  return feed(event.data, out);
}

Result<void> AnthropicToOpenAiStream::feed(std::string_view data, std::string& out) {
  if (state_ != StreamState::kOpen || data.empty()) return {};
  element ev;
  if (parser_.parse(data.data(), data.size()).get(ev) || !ev.is_object()) {
    fail(make_error(ErrorKind::kUpstream, "Anthropic upstream sent an unparseable stream event."), out);
    return *error_;
  }
  return on_event(ev, out);
}

Result<void> AnthropicToOpenAiStream::on_event(element ev, std::string& out) {
  const std::string_view type = str_or(ev, "type");
  if (type == "message_start") {
    const Lookup msg = ev["message"];
    if (opt_.id.empty()) opt_.id = swap_id_prefix(str_or(msg, "id"), "msg_", "chatcmpl-");
    element u;
    if (!msg["usage"].get(u)) usage_.merge(u);
    role_chunk(out);
  } else if (type == "content_block_start") {
    role_chunk(out);
    const int64_t index = int_field(ev, "index").value_or(0);
    if (index < 0 || index > 4096) {  // a bound on memory, far above any real response
      fail(make_error(ErrorKind::kUpstream, "Anthropic upstream sent an invalid block index."), out);
      return *error_;
    }
    if (static_cast<size_t>(index) >= blocks_.size()) blocks_.resize(static_cast<size_t>(index) + 1);
    Block& b = blocks_[static_cast<size_t>(index)];
    const Lookup cb = ev["content_block"];
    const std::string_view bt = str_or(cb, "type");
    if (bt == "text") {
      b.kind = Block::Kind::kText;
      const std::string_view initial = str_or(cb, "text");
      if (!initial.empty()) {
        const size_t at = begin_chunk(out);
        JsonWriter(out).begin_object().key("content").value(initial).end_object();
        end_chunk(out, at, {});
      }
    } else if (bt == "thinking") {
      b.kind = Block::Kind::kThinking;
    } else if (bt == "tool_use" && !opt_.answer_tool.empty() && str_or(cb, "name") == opt_.answer_tool) {
      b.kind = Block::Kind::kAnswer;
      answered_ = true;
    } else if (bt == "tool_use") {
      b.kind = Block::Kind::kToolUse;
      b.tool_index = tool_calls_++;
      const size_t at = begin_chunk(out);
      JsonWriter w(out);
      w.begin_object().key("tool_calls").begin_array().begin_object();
      w.key("index").value(b.tool_index).key("id").value(str_or(cb, "id"));
      w.key("type").value("function").key("function").begin_object();
      w.key("name").value(str_or(cb, "name")).key("arguments").value("");
      w.end_object().end_object().end_array().end_object();
      end_chunk(out, at, {});
    }
  } else if (type == "content_block_delta") {
    const int64_t index = int_field(ev, "index").value_or(0);
    if (index < 0 || static_cast<size_t>(index) >= blocks_.size()) return {};
    const Block& b = blocks_[static_cast<size_t>(index)];
    const Lookup d = ev["delta"];
    const std::string_view dt = str_or(d, "type");
    if (dt == "text_delta" && b.kind == Block::Kind::kText) {
      const size_t at = begin_chunk(out);
      JsonWriter(out).begin_object().key("content").value(str_or(d, "text")).end_object();
      end_chunk(out, at, {});
    } else if (dt == "input_json_delta" && b.kind == Block::Kind::kToolUse) {
      const std::string_view partial = str_or(d, "partial_json");
      if (partial.empty()) return {};  // Anthropic opens every tool block with ""
      const size_t at = begin_chunk(out);
      JsonWriter w(out);
      w.begin_object().key("tool_calls").begin_array().begin_object();
      w.key("index").value(b.tool_index).key("function").begin_object();
      w.key("arguments").value(partial).end_object();
      w.end_object().end_array().end_object();
      end_chunk(out, at, {});
    } else if (dt == "input_json_delta" && b.kind == Block::Kind::kAnswer) {
      const std::string_view partial = str_or(d, "partial_json");
      if (partial.empty()) return {};
      const size_t at = begin_chunk(out);
      JsonWriter(out).begin_object().key("content").value(partial).end_object();
      end_chunk(out, at, {});
    } else if (dt == "thinking_delta" && b.kind == Block::Kind::kThinking) {
      const size_t at = begin_chunk(out);
      JsonWriter(out).begin_object().key("reasoning_content").value(str_or(d, "thinking")).end_object();
      end_chunk(out, at, {});
    }
    // signature_delta, citations_delta: nothing an OpenAI client can use.
  } else if (type == "message_delta") {
    element u;
    if (!ev["usage"].get(u)) usage_.merge(u);
    const std::string_view stop = str_or(ev["delta"], "stop_reason");
    if (!stop.empty() && !finish_sent_) {
      role_chunk(out);
      const size_t at = begin_chunk(out);
      out += "{}";
      const bool answer_only = answered_ && tool_calls_ == 0 && stop == "tool_use";
      end_chunk(out, at, answer_only ? "stop" : openai_finish_reason_for(stop));
      finish_sent_ = true;
    }
  } else if (type == "message_stop") {
    role_chunk(out);
    if (!finish_sent_) {
      const size_t at = begin_chunk(out);
      out += "{}";
      end_chunk(out, at, "stop");
      finish_sent_ = true;
    }
    if (opt_.include_usage) {
      const size_t at = begin_sse_data(out);
      JsonWriter w(out);
      w.begin_object();
      w.key("id").value(opt_.id).key("object").value("chat.completion.chunk");
      w.key("created").value(opt_.created_unix_s).key("model").value(opt_.model);
      w.key("choices").begin_array().end_array();
      w.key("usage");
      write_openai_usage(w, usage_.to_usage());
      w.end_object();
      end_sse_data(out, at);
    }
    append_sse_done(out);
    state_ = StreamState::kCompleted;
  } else if (type == "error") {
    fail(error_from_anthropic_body(0, simdjson::minify(ev)), out);
    return *error_;
  }
  // ping and event types added to the API later are ignored, as Anthropic advises.
  return {};
}

Result<void> AnthropicToOpenAiStream::finish(std::string& out) {
  if (state_ == StreamState::kCompleted) return {};
  if (state_ == StreamState::kOpen)
    fail(make_error(ErrorKind::kUpstream, "The upstream stream ended before message_stop."), out);
  return *error_;
}

void AnthropicToOpenAiStream::abort(const Error& error, std::string& out) {
  if (state_ == StreamState::kOpen) fail(error, out);
}

}  // namespace frugal
