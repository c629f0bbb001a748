#include "backends/dialect/responses.h"

#include <simdjson.h>

#include "core/chat.h"
#include "core/json.h"
#include "backends/dialect/detail.h"
#include "backends/dialect/usage_json.h"

namespace frugal {

using dialect_detail::Lookup;
using dialect_detail::str_or;
using dialect_detail::swap_id_prefix;
using dialect_detail::upstream_garbage;
using simdjson::dom::element;

const char* openai_finish_reason_for(std::string_view r) {
  if (r == "max_tokens" || r == "model_context_window_exceeded") return "length";
  if (r == "tool_use") return "tool_calls";
  if (r == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn
}

const char* anthropic_stop_reason_for(std::string_view r) {
  if (r == "length") return "max_tokens";
  if (r == "tool_calls" || r == "function_call") return "tool_use";
  if (r == "content_filter") return "refusal";
  return "end_turn";  // stop (OpenAI does not say whether a stop sequence matched)
}

Result<TranslatedResponse> anthropic_to_openai_response(std::string_view body,
                                                        std::string_view model,
                                                        int64_t created_unix_s,
                                                        std::string_view answer_tool) {
  simdjson::dom::parser parser;
  element root;
  simdjson::dom::array content;
  if (parser.parse(body.data(), body.size()).get(root) || root["content"].get_array().get(content))
    return upstream_garbage("Anthropic upstream returned a body that is not a message.");

  std::string text, reasoning, calls;
  bool any_text = false;
  bool answered = false;  // through the answer tool
  JsonWriter cw(calls);
  cw.begin_array();
  for (element block : content) {
    const std::string_view type = str_or(block, "type");
    if (type == "text") {
      text += str_or(block, "text");
      any_text = true;
    } else if (type == "thinking") {
      reasoning += str_or(block, "thinking");
    } else if (type == "tool_use") {
      element input;
      const std::string args = block["input"].get(input) ? "{}" : to_json(input);
      if (!answer_tool.empty() && str_or(block, "name") == answer_tool) {
        text += args;
        any_text = answered = true;
        continue;
      }
      cw.begin_object().key("id").value(str_or(block, "id")).key("type").value("function");
      cw.key("function").begin_object().key("name").value(str_or(block, "name"));
      cw.key("arguments").value(args).end_object().end_object();
    }
    // redacted_thinking and server-tool blocks have no OpenAI rendering; they carry no
    // text the client could show.
  }
  cw.end_array();
  const bool has_calls = calls.size() > 2;

  AnthropicUsage au;
  element u;
  if (!root["usage"].get(u)) au.merge(u);
  TranslatedResponse tr;
  tr.usage = au.to_usage();
  tr.stop_reason = openai_finish_reason_for(str_or(root, "stop_reason", "end_turn"));
  if (answered && !has_calls && tr.stop_reason == std::string_view("tool_calls")) tr.stop_reason = "stop";

  JsonWriter w(tr.body);
  w.begin_object();
  w.key("id").value(swap_id_prefix(str_or(root, "id"), "msg_", "chatcmpl-"));
  w.key("object").value("chat.completion");
  w.key("created").value(created_unix_s);
  w.key("model").value(model);
  w.key("choices").begin_array().begin_object();
  w.key("index").value(0);
  w.key("message").begin_object().key("role").value("assistant").key("content");
  if (any_text || !has_calls) w.value(text); else w.null();
  if (!reasoning.empty()) w.key("reasoning_content").value(reasoning);
  if (has_calls) w.key("tool_calls").raw(calls);
  w.key("refusal").null();
  w.end_object();
  w.key("logprobs").null();
  w.key("finish_reason").value(tr.stop_reason);
  w.end_object().end_array();
  w.key("usage");
  write_openai_usage(w, tr.usage);
  w.end_object();
  return tr;
}

Result<TranslatedResponse> openai_to_anthropic_response(std::string_view body,
                                                        std::string_view model) {
  simdjson::dom::parser parser;
  element root, choice, msg;
  simdjson::dom::array choices;
  if (parser.parse(body.data(), body.size()).get(root) || root["choices"].get_array().get(choices) ||
      choices.at(0).get(choice) || choice["message"].get(msg) || !msg.is_object())
    return upstream_garbage("OpenAI-compatible upstream returned a body that is not a chat completion.");

  TranslatedResponse tr;
  std::string_view finish = str_or(choice, "finish_reason", "stop");
  std::string blocks;
  JsonWriter bw(blocks);
  bw.begin_array();
  std::string_view s;
  if (!msg["reasoning_content"].get_string().get(s) && !s.empty())
    bw.begin_object().key("type").value("thinking").key("thinking").value(s).key("signature").value("").end_object();
  if (!msg["content"].get_string().get(s) && !s.empty())
    bw.begin_object().key("type").value("text").key("text").value(s).end_object();
  if (!msg["refusal"].get_string().get(s) && !s.empty()) {
    bw.begin_object().key("type").value("text").key("text").value(s).end_object();
    finish = "content_filter";
  }
  simdjson::dom::array calls;
  // OpenAI ends a call forced by a named tool_choice with "stop"; an Anthropic client
  // reads tool_use blocks only after stop_reason tool_use.
  if (!msg["tool_calls"].get_array().get(calls) && calls.size() > 0 && finish == "stop") finish = "tool_calls";
  if (!msg["tool_calls"].get_array().get(calls)) {
    simdjson::dom::parser args_parser;
    for (element tc : calls) {
      const Lookup fn = tc["function"];
      const std::string_view args = str_or(fn, "arguments", "{}");
      element input;
      std::string input_json = "{}";
      if (args.find_first_not_of(" \t\r\n") != std::string_view::npos) {
        if (args_parser.parse(args.data(), args.size()).get(input) || !input.is_object())
          return upstream_garbage("the upstream model produced tool-call arguments that are not a "
                                  "JSON object: " + std::string(args.substr(0, 200)));
        input_json = to_json(input);
      }
      bw.begin_object().key("type").value("tool_use").key("id").value(str_or(tc, "id"));
      bw.key("name").value(str_or(fn, "name")).key("input").raw(input_json).end_object();
    }
  }
  bw.end_array();

  element u;
  if (!root["usage"].get(u)) tr.usage = usage_from_openai(u);
  tr.stop_reason = anthropic_stop_reason_for(finish);

  JsonWriter w(tr.body);
  w.begin_object();
  w.key("id").value(swap_id_prefix(str_or(root, "id"), "chatcmpl-", "msg_"));
  w.key("type").value("message");
  w.key("role").value("assistant");
  w.key("model").value(model);
  w.key("content").raw(blocks);
  w.key("stop_reason").value(tr.stop_reason);
  w.key("stop_sequence").null();
  w.key("usage");
  write_anthropic_usage(w, tr.usage);
  w.end_object();
  return tr;
}

}  // namespace frugal
