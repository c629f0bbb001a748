// Canonical chat answers → Responses API objects and events (see responses_api.h).
#include "backends/dialect/detail.h"
#include "backends/dialect/errors.h"
#include "backends/dialect/responses_api.h"
#include "core/chat.h"
#include "core/sse_writer.h"

namespace frugal {

using dialect_detail::int_field;
using dialect_detail::str_or;
using dialect_detail::upstream_garbage;
using simdjson::dom::element;

namespace {

constexpr int64_t kMaxToolCalls = 1024;  // bounds the tool index map against a hostile index

void write_usage(JsonWriter& w, const Usage& u) {
  w.begin_object().key("input_tokens").value(u.input_tokens);
  w.key("input_tokens_details").begin_object().key("cached_tokens").value(u.cached_input_tokens).end_object();
  w.key("output_tokens").value(u.output_tokens);
  w.key("output_tokens_details").begin_object().key("reasoning_tokens").value(u.reasoning_tokens).end_object();
  w.key("total_tokens").value(u.total_tokens()).end_object();
}

// The id part that item ids share with the response id.
std::string_view id_base(const ResponsesFrame& f) {
  std::string_view id = f.id;
  if (id.substr(0, 5) == "resp_") id.remove_prefix(5);
  return id;
}

// A chat finish_reason as the Response's status and incomplete_details.reason.
std::pair<const char*, const char*> status_for(std::string_view finish_reason) {
  if (finish_reason == "length") return {"incomplete", "max_output_tokens"};
  if (finish_reason == "content_filter") return {"incomplete", "content_filter"};
  return {"completed", ""};
}

void write_response(JsonWriter& w, const ResponsesFrame& f, std::string_view status, std::string_view incomplete,
                    std::string_view output_json, const Usage* usage) {
  w.begin_object().key("id").value(f.id).key("object").value("response").key("created_at").value(f.created_at);
  w.key("status").value(status).key("background").value(false).key("error").null();
  w.key("incomplete_details");
  if (incomplete.empty()) w.null(); else w.begin_object().key("reason").value(incomplete).end_object();
  w.key("model").value(f.model).key("output").raw(output_json);
  if (f.echo)
    for (const auto& [k, v] : *f.echo) w.key(k).raw(v);
  w.key("usage");
  if (usage && usage->reported) write_usage(w, *usage); else w.null();
  w.end_object();
}

void write_message_item(JsonWriter& w, std::string_view id, std::string_view status, const std::string* text) {
  w.begin_object().key("id").value(id).key("type").value("message").key("status").value(status);
  w.key("role").value("assistant").key("content").begin_array();
  if (text) {
    w.begin_object().key("type").value("output_text").key("text").value(*text);
    w.key("annotations").begin_array().end_array().key("logprobs").begin_array().end_array().end_object();
  }
  w.end_array().end_object();
}

void write_reasoning_item(JsonWriter& w, std::string_view id, const std::string* text) {
  w.begin_object().key("id").value(id).key("type").value("reasoning").key("summary").begin_array();
  if (text) w.begin_object().key("type").value("summary_text").key("text").value(*text).end_object();
  w.end_array().end_object();
}

void write_call_item(JsonWriter& w, std::string_view id, std::string_view status, std::string_view call_id,
                     std::string_view name, std::string_view arguments) {
  w.begin_object().key("id").value(id).key("type").value("function_call").key("status").value(status);
  w.key("arguments").value(arguments).key("call_id").value(call_id).key("name").value(name).end_object();
}

}  // namespace

std::string render_responses_error_event(const Error& e, int64_t sequence_number) {
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value("error").key("code");
  if (e.code.empty()) w.value(e.openai_type()); else w.value(e.code);
  w.key("message").value(e.message).key("param");
  if (e.param.empty()) w.null(); else w.value(e.param);
  w.key("sequence_number").value(sequence_number).end_object();
  std::string out;
  append_sse_event(out, "error", json);
  return out;
}

Result<TranslatedResponse> chat_to_responses_body(std::string_view body, const ResponsesFrame& frame) {
  simdjson::dom::parser parser;
  element root, choice, msg;
  simdjson::dom::array choices;
  if (parser.parse(body.data(), body.size()).get(root) || root["choices"].get_array().get(choices) ||
      choices.at(0).get(choice) || choice["message"].get(msg) || !msg.is_object())
    return upstream_garbage("OpenAI-compatible upstream returned a body that is not a chat completion.");

  const std::string base(id_base(frame));
  std::string output;
  JsonWriter ow(output);
  ow.begin_array();
  std::string_view s;
  if (!msg["reasoning_content"].get_string().get(s) && !s.empty()) {
    const std::string text(s);
    write_reasoning_item(ow, "rs_" + base, &text);
  }
  std::string text;
  if (!msg["content"].get_string().get(s)) text += s;
  if (!msg["refusal"].get_string().get(s)) text += s;
  simdjson::dom::array calls;
  const bool has_calls = !msg["tool_calls"].get_array().get(calls) && calls.size() > 0;
  if (!text.empty() || !has_calls) write_message_item(ow, "msg_" + base, "completed", &text);
  if (has_calls) {
    size_t i = 0;
    for (element tc : calls) {
      element fn;
      if (tc["function"].get(fn) || !fn.is_object())
        return upstream_garbage("OpenAI-compatible upstream returned a tool call without a function.");
      write_call_item(ow, "fc_" + base + "_" + std::to_string(i++), "completed", str_or(tc, "id"), str_or(fn, "name"),
                      str_or(fn, "arguments", "{}"));
    }
  }
  ow.end_array();

  TranslatedResponse tr;
  element u;
  if (!root["usage"].get(u) && u.is_object()) tr.usage = usage_from_openai(u);
  const auto [status, incomplete] = status_for(str_or(choice, "finish_reason", "stop"));
  tr.stop_reason = status;
  // The model the answer names, as chat completions relay it.
  ResponsesFrame named = frame;
  if (const std::string_view m = str_or(root, "model"); !m.empty()) named.model = std::string(m);
  JsonWriter w(tr.body);
  write_response(w, named, status, incomplete, output, &tr.usage);
  return tr;
}

// --- the stream ---

ChatToResponsesStream::ChatToResponsesStream(ResponsesFrame frame) : frame_(std::move(frame)) {}

template <class Fields>
void ChatToResponsesStream::emit(std::string_view type, const Fields& fields, std::string& out) {
  std::string json;
  JsonWriter w(json);
  w.begin_object().key("type").value(type);
  fields(w);
  w.key("sequence_number").value(seq_++).end_object();
  append_sse_event(out, type, json);
}

std::string ChatToResponsesStream::item_json(const Item& item, bool done) const {
  std::string json;
  JsonWriter w(json);
  const std::string_view status = done ? "completed" : "in_progress";
  switch (item.kind) {
    case Kind::kMessage: write_message_item(w, item.id, status, done ? &item.text : nullptr); break;
    case Kind::kReasoning: write_reasoning_item(w, item.id, done ? &item.text : nullptr); break;
    case Kind::kFunctionCall:
      write_call_item(w, item.id, status, item.call_id, item.name, done ? std::string_view(item.text) : "");
      break;
  }
  return json;
}

void ChatToResponsesStream::fail(Error e, std::string& out) {
  out += render_responses_error_event(e, seq_++);
  state_ = StreamState::kFailed;
  error_ = std::move(e);
}

Result<void> ChatToResponsesStream::feed(const SseEvent& ev, std::string& out) { return feed(ev.data, out); }

Result<void> ChatToResponsesStream::feed(std::string_view data, std::string& out) {
  if (state_ != StreamState::kOpen || saw_done_ || data.empty()) return {};
  if (data == "[DONE]") {
    start(out);
    close_all(out);
    saw_done_ = true;
    return {};
  }
  element chunk;
  if (parser_.parse(data.data(), data.size()).get(chunk) || !chunk.is_object()) {
    fail(make_error(ErrorKind::kUpstream, "OpenAI-compatible upstream sent an unparseable stream chunk."), out);
    return *error_;
  }
  return on_chunk(chunk, out);
}

void ChatToResponsesStream::start(std::string& out) {
  if (started_) return;
  started_ = true;
  for (const char* type : {"response.created", "response.in_progress"})
    emit(type, [&](JsonWriter& w) {
      w.key("response");
      write_response(w, frame_, "in_progress", "", "[]", nullptr);
    }, out);
}

size_t ChatToResponsesStream::open_item(Kind kind, std::string& out, std::string call_id, std::string name) {
  const std::string base(id_base(frame_));
  Item item{kind, "", "", std::move(call_id), std::move(name), true};
  switch (kind) {
    case Kind::kMessage: item.id = "msg_" + base; break;
    case Kind::kReasoning: item.id = "rs_" + base; break;
    case Kind::kFunctionCall: item.id = "fc_" + base + "_" + std::to_string(tool_items_.size()); break;
  }
  // A second message or reasoning item in one answer (text, a call, text again) needs
  // its own id.
  for (const Item& other : items_)
    if (other.id == item.id) item.id += "_" + std::to_string(items_.size());
  const size_t index = items_.size();
  items_.push_back(std::move(item));
  const std::string added = item_json(items_.back(), false);
  emit("response.output_item.added", [&](JsonWriter& w) {
    w.key("output_index").value(static_cast<int64_t>(index)).key("item").raw(added);
  }, out);
  const std::string& id = items_.back().id;
  if (kind == Kind::kMessage) {
    emit("response.content_part.added", [&](JsonWriter& w) {
      w.key("item_id").value(id).key("output_index").value(static_cast<int64_t>(index)).key("content_index").value(0);
      w.key("part").raw(R"({"type":"output_text","text":"","annotations":[],"logprobs":[]})");
    }, out);
  } else if (kind == Kind::kReasoning) {
    emit("response.reasoning_summary_part.added", [&](JsonWriter& w) {
      w.key("item_id").value(id).key("output_index").value(static_cast<int64_t>(index)).key("summary_index").value(0);
      w.key("part").raw(R"({"type":"summary_text","text":""})");
    }, out);
  }
  return index;
}

void ChatToResponsesStream::close_item(size_t index, std::string& out) {
  Item& item = items_[index];
  if (!item.open) return;
  item.open = false;
  const auto oi = static_cast<int64_t>(index);
  if (item.kind == Kind::kMessage) {
    emit("response.output_text.done", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("content_index").value(0);
      w.key("text").value(item.text).key("logprobs").begin_array().end_array();
    }, out);
    emit("response.content_part.done", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("content_index").value(0);
      w.key("part").begin_object().key("type").value("output_text").key("text").value(item.text);
      w.key("annotations").begin_array().end_array().key("logprobs").begin_array().end_array().end_object();
    }, out);
  } else if (item.kind == Kind::kReasoning) {
    emit("response.reasoning_summary_text.done", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("summary_index").value(0);
      w.key("text").value(item.text);
    }, out);
    emit("response.reasoning_summary_part.done", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("summary_index").value(0);
      w.key("part").begin_object().key("type").value("summary_text").key("text").value(item.text).end_object();
    }, out);
  } else {
    emit("response.function_call_arguments.done", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("name").value(item.name);
      w.key("arguments").value(item.text);
    }, out);
  }
  const std::string done = item_json(item, true);
  emit("response.output_item.done", [&](JsonWriter& w) { w.key("output_index").value(oi).key("item").raw(done); }, out);
  if (current_ == index) current_.reset();
}

void ChatToResponsesStream::close_all(std::string& out) {
  for (size_t i = 0; i < items_.size(); ++i) close_item(i, out);
}

void ChatToResponsesStream::text_delta(Kind kind, std::string_view delta, std::string& out) {
  if (!current_ || items_[*current_].kind != kind) {
    if (current_) close_item(*current_, out);
    current_ = open_item(kind, out);
  }
  Item& item = items_[*current_];
  item.text += delta;
  const auto oi = static_cast<int64_t>(*current_);
  if (kind == Kind::kMessage) {
    emit("response.output_text.delta", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("content_index").value(0);
      w.key("delta").value(delta).key("logprobs").begin_array().end_array();
    }, out);
  } else {
    emit("response.reasoning_summary_text.delta", [&](JsonWriter& w) {
      w.key("item_id").value(item.id).key("output_index").value(oi).key("summary_index").value(0);
      w.key("delta").value(delta);
    }, out);
  }
}

Result<void> ChatToResponsesStream::on_chunk(element chunk, std::string& out) {
  element v;
  if (!chunk["error"].get(v) && !v.is_null()) {
    start(out);
    fail(error_from_openai_body(0, simdjson::minify(chunk)), out);
    return *error_;
  }
  if (!started_) {
    // The model the answer names, as chat completions relay it.
    if (const std::string_view m = str_or(chunk, "model"); !m.empty()) frame_.model = std::string(m);
    start(out);
  }
  if (!chunk["usage"].get(v) && v.is_object()) usage_ = usage_from_openai(v);

  simdjson::dom::array choices;
  element choice;
  if (chunk["choices"].get_array().get(choices) || choices.at(0).get(choice)) return {};
  element d;
  if (!choice["delta"].get(d) && d.is_object()) {
    std::string_view s;
    if (!d["reasoning_content"].get_string().get(s) && !s.empty()) text_delta(Kind::kReasoning, s, out);
    if (!d["content"].get_string().get(s) && !s.empty()) text_delta(Kind::kMessage, s, out);
    if (!d["refusal"].get_string().get(s) && !s.empty()) text_delta(Kind::kMessage, s, out);
    simdjson::dom::array calls;
    if (!d["tool_calls"].get_array().get(calls)) {
      for (element tc : calls) {
        const int64_t index = int_field(tc, "index").value_or(0);
        if (index < 0 || index >= kMaxToolCalls) {
          fail(make_error(ErrorKind::kUpstream, "upstream sent an invalid tool call index"), out);
          return *error_;
        }
        size_t item = items_.size();
        for (const auto& [ti, ii] : tool_items_)
          if (ti == index) item = ii;
        element fn;
        const bool has_fn = !tc["function"].get(fn) && fn.is_object();
        if (item == items_.size()) {
          if (current_) close_item(*current_, out);
          item = open_item(Kind::kFunctionCall, out, std::string(str_or(tc, "id")),
                           std::string(has_fn ? str_or(fn, "name") : ""));
          tool_items_.emplace_back(index, item);
        }
        const std::string_view args = has_fn ? str_or(fn, "arguments") : "";
        if (args.empty()) continue;
        items_[item].text += args;
        const auto oi = static_cast<int64_t>(item);
        emit("response.function_call_arguments.delta", [&](JsonWriter& w) {
          w.key("item_id").value(items_[item].id).key("output_index").value(oi).key("delta").value(args);
        }, out);
      }
    }
  }
  std::string_view finish;
  if (!choice["finish_reason"].get_string().get(finish) && !finish.empty()) {
    if (finish_reason_.empty()) finish_reason_ = std::string(finish);
    close_all(out);
  }
  return {};
}

void ChatToResponsesStream::complete(std::string& out) {
  if (state_ != StreamState::kOpen || !saw_done_) return;
  std::string output;
  JsonWriter ow(output);
  ow.begin_array();
  for (const Item& item : items_) ow.raw(item_json(item, true));
  ow.end_array();
  // Not a structured binding: the lambda captures it (clang 14 builds the fuzz targets).
  const std::pair<const char*, const char*> status = status_for(finish_reason_);
  emit(std::string_view(status.first) == "completed" ? "response.completed" : "response.incomplete",
       [&](JsonWriter& w) {
         w.key("response");
         write_response(w, frame_, status.first, status.second, output, &usage_);
       },
       out);
  state_ = StreamState::kCompleted;
}

void ChatToResponsesStream::abort(const Error& error, std::string& out) {
  if (state_ == StreamState::kOpen) fail(error, out);
}

}  // namespace frugal
