// Responses API request → chat-completions body (see responses_api.h).
#include <array>

#include "backends/dialect/detail.h"
#include "backends/dialect/responses_api.h"
#include "core/chat.h"

namespace frugal {

using dialect_detail::invalid;
using dialect_detail::str_or;
using dialect_detail::type_word;
using simdjson::dom::element;

namespace {

// Top-level parameters and what becomes of them; anything else is refused, as OpenAI
// refuses unknown parameters.
constexpr std::array<std::string_view, 16> kTranslated = {
    "model", "input", "instructions", "tools", "tool_choice", "text", "reasoning", "max_output_tokens",
    "temperature", "top_p", "metadata", "user", "stream", "parallel_tool_calls", "top_logprobs", "store"};
// Refused when set: they need responses kept by the gateway.
constexpr std::array<std::string_view, 3> kStateful = {"previous_response_id", "conversation", "background"};
// OpenAI platform bookkeeping or hints with no chat-completions counterpart that
// changes what the model writes.
constexpr std::array<std::string_view, 8> kIgnored = {
    "include",          "truncation",  "service_tier", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "max_tool_calls", "stream_options"};

bool in(std::string_view key, const auto& list) {
  for (auto k : list)
    if (k == key) return true;
  return false;
}

Error unsupported(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param), "unsupported_parameter");
}

Error stateless(std::string param) {
  return unsupported(param, "'" + param +
                                "' is not supported: frugal does not keep responses, so send the whole "
                                "conversation in 'input' (and omit 'store' or set it to false).");
}

// One chat message being assembled (function_call items join the assistant message
// before them).
struct ChatMessage {
  std::string role;
  std::string content;  // a JSON value: string, array of parts, or null
  std::vector<std::string> tool_calls;
  std::string tool_call_id;
};

std::string path(std::string_view base, size_t i) { return std::string(base) + "[" + std::to_string(i) + "]"; }

// Text of an output / tool-output content: a string, or an array of text parts.
Result<std::string> text_of(element content, const std::string& param) {
  std::string_view s;
  if (!content.get_string().get(s)) return std::string(s);
  simdjson::dom::array parts;
  if (content.get_array().get(parts))
    return invalid(param, "Invalid type for '" + param + "': expected a string or an array of content parts, but got " +
                              type_word(content) + " instead.");
  std::string text;
  size_t j = 0;
  for (element part : parts) {
    const std::string pp = path(param, j++);
    const std::string_view type = str_or(part, "type");
    if (type == "input_text" || type == "output_text") {
      text += str_or(part, "text");
    } else if (type == "refusal") {
      text += str_or(part, "refusal");
    } else {
      return unsupported(pp + ".type", "Content parts of type '" + std::string(type) +
                                           "' are not supported here; only text parts.");
    }
  }
  return text;
}

// A message item's content as a chat content value (string, or array of text/image parts).
Result<std::string> message_content(element content, const std::string& param, bool assistant) {
  std::string_view s;
  if (!content.get_string().get(s)) return json_quote(s);
  if (assistant) {
    auto text_r = text_of(content, param);
    if (!text_r) return std::move(text_r).error();
    std::string text = std::move(*text_r);
    return json_quote(text);
  }
  simdjson::dom::array parts;
  if (content.get_array().get(parts))
    return invalid(param, "Invalid type for '" + param + "': expected a string or an array of content parts, but got " +
                              type_word(content) + " instead.");
  std::string out;
  JsonWriter w(out);
  w.begin_array();
  size_t j = 0;
  for (element part : parts) {
    const std::string pp = path(param, j++);
    const std::string_view type = str_or(part, "type");
    if (type == "input_text" || type == "output_text") {
      w.begin_object().key("type").value("text").key("text").value(str_or(part, "text")).end_object();
    } else if (type == "input_image") {
      const std::string_view url = str_or(part, "image_url");
      if (url.empty())
        return unsupported(pp + ".image_url", "Images must be given by 'image_url' (a URL or data: URI); "
                                              "frugal has no file store for 'file_id'.");
      w.begin_object().key("type").value("image_url").key("image_url").begin_object().key("url").value(url);
      const std::string_view detail = str_or(part, "detail");
      if (!detail.empty()) w.key("detail").value(detail);
      w.end_object().end_object();
    } else if (type.empty()) {
      return invalid(pp + ".type", "Missing required parameter: '" + pp + ".type'.");
    } else {
      return unsupported(pp + ".type", "Content parts of type '" + std::string(type) +
                                           "' are not supported; use input_text or input_image.");
    }
  }
  w.end_array();
  return out;
}

Result<std::string> required_string(element item, std::string_view key, const std::string& base) {
  std::string_view s;
  const std::string param = base + "." + std::string(key);
  element v;
  if (item[key].get(v)) return invalid(param, "Missing required parameter: '" + param + "'.");
  if (v.get_string().get(s))
    return invalid(param, "Invalid type for '" + param + "': expected a string, but got " + type_word(v) + " instead.");
  return std::string(s);
}

Result<std::vector<ChatMessage>> translate_input(element input) {
  std::vector<ChatMessage> msgs;
  std::string_view s;
  if (!input.get_string().get(s)) {
    msgs.push_back({"user", json_quote(s), {}, {}});
    return msgs;
  }
  simdjson::dom::array items;
  if (input.get_array().get(items))
    return invalid("input", "Invalid type for 'input': expected a string or an array of input items, but got " +
                                std::string(type_word(input)) + " instead.");
  size_t i = 0;
  for (element item : items) {
    const std::string base = path("input", i++);
    if (!item.is_object())
      return invalid(base, "Invalid type for '" + base + "': expected an input item object, but got " +
                               type_word(item) + " instead.");
    std::string_view type = str_or(item, "type");
    element role_el;
    if (type.empty() && !item["role"].get(role_el)) type = "message";  // EasyInputMessage
    if (type == "message") {
      auto role_r = required_string(item, "role", base);
      if (!role_r) return std::move(role_r).error();
      std::string role = std::move(*role_r);
      if (role != "user" && role != "assistant" && role != "system" && role != "developer")
        return invalid(base + ".role", "Invalid value for '" + base + ".role': '" + role +
                                           "'. Supported values are: 'user', 'assistant', 'system', and 'developer'.");
      element content;
      if (item["content"].get(content)) return invalid(base + ".content", "Missing required parameter: '" + base + ".content'.");
      auto c_r = message_content(content, base + ".content", role == "assistant");
      if (!c_r) return std::move(c_r).error();
      std::string c = std::move(*c_r);
      msgs.push_back({std::move(role), std::move(c), {}, {}});
    } else if (type == "function_call") {
      auto call_id_r = required_string(item, "call_id", base);
      if (!call_id_r) return std::move(call_id_r).error();
      std::string call_id = std::move(*call_id_r);
      auto name_r = required_string(item, "name", base);
      if (!name_r) return std::move(name_r).error();
      std::string name = std::move(*name_r);
      auto args_r = required_string(item, "arguments", base);
      if (!args_r) return std::move(args_r).error();
      std::string args = std::move(*args_r);
      std::string call;
      JsonWriter w(call);
      w.begin_object().key("id").value(call_id).key("type").value("function");
      w.key("function").begin_object().key("name").value(name).key("arguments").value(args).end_object();
      w.end_object();
      // Consecutive calls (and calls right after the assistant's text) are one
      // assistant turn in chat completions.
      if (msgs.empty() || msgs.back().role != "assistant") msgs.push_back({"assistant", "null", {}, {}});
      msgs.back().tool_calls.push_back(std::move(call));
    } else if (type == "function_call_output") {
      auto call_id_r = required_string(item, "call_id", base);
      if (!call_id_r) return std::move(call_id_r).error();
      std::string call_id = std::move(*call_id_r);
      element output;
      if (item["output"].get(output)) return invalid(base + ".output", "Missing required parameter: '" + base + ".output'.");
      auto text_r = text_of(output, base + ".output");
      if (!text_r) return std::move(text_r).error();
      std::string text = std::move(*text_r);
      msgs.push_back({"tool", json_quote(text), {}, std::move(call_id)});
    } else if (type == "reasoning") {
      // The model's earlier reasoning (a summary, or content encrypted for OpenAI):
      // chat completions has no input form for it, and no provider needs it back.
      continue;
    } else if (type == "item_reference") {
      return unsupported(base + ".type", "Input items of type 'item_reference' are not supported: frugal does not "
                                         "keep responses, so send the items themselves (with the Vercel AI SDK, "
                                         "providerOptions.openai.store = false).");
    } else if (type.empty()) {
      return invalid(base + ".type", "Missing required parameter: '" + base + ".type'.");
    } else {
      return unsupported(base + ".type", "Input items of type '" + std::string(type) +
                                             "' are not supported; frugal serves message, function_call, "
                                             "function_call_output and reasoning items.");
    }
  }
  return msgs;
}

Result<void> write_tools(element tools, JsonWriter& w) {
  simdjson::dom::array arr;
  if (tools.get_array().get(arr))
    return invalid("tools", "Invalid type for 'tools': expected an array, but got " + std::string(type_word(tools)) + " instead.");
  w.key("tools").begin_array();
  size_t i = 0;
  for (element t : arr) {
    const std::string base = path("tools", i++);
    const std::string_view type = str_or(t, "type");
    if (type != "function")
      return unsupported(base + ".type", "Tools of type '" + std::string(type) +
                                             "' are not supported: frugal serves function tools only (hosted "
                                             "tools run on OpenAI's platform).");
    auto name_r = required_string(t, "name", base);
    if (!name_r) return std::move(name_r).error();
    std::string name = std::move(*name_r);
    w.begin_object().key("type").value("function").key("function").begin_object().key("name").value(name);
    element v;
    if (!t["description"].get(v) && v.is_string()) w.key("description").raw(to_json(v));
    if (!t["parameters"].get(v) && !v.is_null()) w.key("parameters").raw(to_json(v));
    if (!t["strict"].get(v) && v.is_bool()) w.key("strict").raw(to_json(v));
    w.end_object().end_object();
  }
  w.end_array();
  return {};
}

Result<void> write_tool_choice(element tc, JsonWriter& w) {
  std::string_view s;
  if (!tc.get_string().get(s)) {
    if (s != "auto" && s != "none" && s != "required")
      return invalid("tool_choice", "Invalid value for 'tool_choice': '" + std::string(s) +
                                        "'. Supported values are: 'none', 'auto', and 'required'.");
    w.key("tool_choice").value(s);
    return {};
  }
  if (str_or(tc, "type") != "function")
    return unsupported("tool_choice.type", "tool_choice must be 'auto', 'none', 'required' or "
                                           "{\"type\": \"function\", \"name\": ...}.");
  auto name_r = required_string(tc, "name", "tool_choice");
  if (!name_r) return std::move(name_r).error();
  std::string name = std::move(*name_r);
  w.key("tool_choice").begin_object().key("type").value("function");
  w.key("function").begin_object().key("name").value(name).end_object().end_object();
  return {};
}

Result<void> write_text_format(element text, JsonWriter& w) {
  element format;
  if (!text.is_object() || text["format"].get(format) || format.is_null()) return {};
  const std::string_view type = str_or(format, "type");
  if (type == "text") return {};
  if (type == "json_object") {
    w.key("response_format").begin_object().key("type").value("json_object").end_object();
    return {};
  }
  if (type != "json_schema")
    return invalid("text.format.type", "Invalid value for 'text.format.type': '" + std::string(type) +
                                           "'. Supported values are: 'text', 'json_object' and 'json_schema'.");
  auto name_r = required_string(format, "name", "text.format");
  if (!name_r) return std::move(name_r).error();
  std::string name = std::move(*name_r);
  element schema;
  if (format["schema"].get(schema) || !schema.is_object())
    return invalid("text.format.schema", "Missing required parameter: 'text.format.schema'.");
  w.key("response_format").begin_object().key("type").value("json_schema");
  w.key("json_schema").begin_object().key("name").value(name).key("schema").raw(to_json(schema));
  element v;
  if (!format["strict"].get(v) && v.is_bool()) w.key("strict").raw(to_json(v));
  if (!format["description"].get(v) && v.is_string()) w.key("description").raw(to_json(v));
  w.end_object().end_object();
  return {};
}

void echo(ResponsesEcho& out, std::string key, simdjson::dom::object body, std::string_view absent) {
  element v;
  std::string value = !body[key].get(v) && !v.is_null() ? to_json(v) : std::string(absent);
  out.emplace_back(std::move(key), std::move(value));
}

}  // namespace

Result<ResponsesRequest> responses_to_chat_request(element root) {
  simdjson::dom::object body;
  if (root.get_object().get(body)) return invalid("", "The request body must be a JSON object.");
  for (auto field : body) {
    const std::string_view key = field.key;
    if (in(key, kStateful)) {
      const bool set = field.value.is_bool() ? field.value.get_bool().value_unsafe() : !field.value.is_null();
      if (set) return stateless(std::string(key));
      continue;
    }
    if (in(key, kTranslated) || in(key, kIgnored)) continue;
    return make_error(ErrorKind::kInvalidRequest, "Unknown parameter: '" + std::string(key) + "'.", std::string(key),
                      "unknown_parameter");
  }
  element v;
  ResponsesRequest out;
  if (body["model"].get(v)) return invalid("model", "Missing required parameter: 'model'.");
  std::string_view model;
  if (v.get_string().get(model) || model.empty())
    return invalid("model", "Invalid type for 'model': expected a non-empty string.");
  out.model = std::string(model);
  if (!body["store"].get(v) && !v.is_null()) {
    if (!v.is_bool()) return invalid("store", "Invalid type for 'store': expected a boolean.");
    if (v.get_bool().value_unsafe()) return stateless("store");
  }
  if (!body["stream"].get(v) && !v.is_null()) {
    if (!v.is_bool()) return invalid("stream", "Invalid type for 'stream': expected a boolean.");
    out.stream = v.get_bool().value_unsafe();
  }

  std::vector<ChatMessage> msgs;
  if (!body["instructions"].get(v) && !v.is_null()) {
    std::string_view s;
    if (v.get_string().get(s)) return invalid("instructions", "Invalid type for 'instructions': expected a string.");
    msgs.push_back({"system", json_quote(s), {}, {}});
  }
  if (body["input"].get(v) || v.is_null()) return invalid("input", "Missing required parameter: 'input'.");
  auto turns_r = translate_input(v);
  if (!turns_r) return std::move(turns_r).error();
  std::vector<ChatMessage> turns = std::move(*turns_r);
  for (auto& m : turns) msgs.push_back(std::move(m));
  if (msgs.empty()) return invalid("input", "'input' must contain at least one message.");

  JsonWriter w(out.chat_body);
  w.begin_object().key("model").value(out.model);
  w.key("messages").begin_array();
  for (const ChatMessage& m : msgs) {
    w.begin_object().key("role").value(m.role).key("content").raw(m.content);
    if (!m.tool_calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const auto& c : m.tool_calls) w.raw(c);
      w.end_array();
    }
    if (!m.tool_call_id.empty()) w.key("tool_call_id").value(m.tool_call_id);
    w.end_object();
  }
  w.end_array();
  if (out.stream) w.key("stream").value(true).key("stream_options").begin_object().key("include_usage").value(true).end_object();
  if (!body["max_output_tokens"].get(v) && !v.is_null()) {
    if (!v.is_int64() && !v.is_uint64())
      return invalid("max_output_tokens", "Invalid type for 'max_output_tokens': expected an integer.");
    if (v.is_int64() && v.get_int64().value_unsafe() < 1)
      return invalid("max_output_tokens", "Invalid 'max_output_tokens': integer below minimum value 1.");
    w.key("max_completion_tokens").raw(to_json(v));
  }
  for (const char* key : {"temperature", "top_p"}) {
    if (body[key].get(v) || v.is_null()) continue;
    if (!v.is_number())
      return invalid(key, std::string("Invalid type for '") + key + "': expected a number, but got " + type_word(v) +
                              " instead.");
    w.key(key).raw(to_json(v));
  }
  if (!body["user"].get(v) && !v.is_null()) {
    if (!v.is_string()) return invalid("user", "Invalid type for 'user': expected a string.");
    w.key("user").raw(to_json(v));
  }
  if (!body["metadata"].get(v) && !v.is_null()) {
    if (!v.is_object()) return invalid("metadata", "Invalid type for 'metadata': expected an object.");
    out.metadata = v.get_object().value_unsafe();
  }
  if (!body["top_logprobs"].get(v) && !v.is_null()) {
    if (!v.is_int64() && !v.is_uint64()) return invalid("top_logprobs", "Invalid type for 'top_logprobs': expected an integer.");
    w.key("logprobs").value(true).key("top_logprobs").raw(to_json(v));
  }
  bool has_tools = false;
  if (!body["tools"].get(v) && !v.is_null()) {
    FRUGAL_TRY(write_tools(v, w));
    has_tools = simdjson::dom::array(v.get_array().value_unsafe()).size() > 0;
  }
  if (!body["tool_choice"].get(v) && !v.is_null()) FRUGAL_TRY(write_tool_choice(v, w));
  if (has_tools && !body["parallel_tool_calls"].get(v) && v.is_bool()) w.key("parallel_tool_calls").raw(to_json(v));
  if (!body["text"].get(v) && !v.is_null()) {
    if (!v.is_object()) return invalid("text", "Invalid type for 'text': expected an object.");
    FRUGAL_TRY(write_text_format(v, w));
  }
  if (!body["reasoning"].get(v) && !v.is_null()) {
    if (!v.is_object()) return invalid("reasoning", "Invalid type for 'reasoning': expected an object.");
    element effort;
    std::string_view e;
    if (!v["effort"].get(effort) && !effort.is_null()) {
      if (effort.get_string().get(e)) return invalid("reasoning.effort", "Invalid type for 'reasoning.effort': expected a string.");
      w.key("reasoning_effort").value(e);
    }
  }
  w.end_object();

  echo(out.echo, "instructions", body, "null");
  echo(out.echo, "max_output_tokens", body, "null");
  echo(out.echo, "metadata", body, "{}");
  echo(out.echo, "parallel_tool_calls", body, "true");
  out.echo.emplace_back("previous_response_id", "null");
  echo(out.echo, "reasoning", body, R"({"effort":null,"summary":null})");
  out.echo.emplace_back("store", "false");
  echo(out.echo, "temperature", body, "1");
  echo(out.echo, "text", body, R"({"format":{"type":"text"}})");
  echo(out.echo, "tool_choice", body, "\"auto\"");
  echo(out.echo, "tools", body, "[]");
  echo(out.echo, "top_p", body, "1");
  out.echo.emplace_back("truncation", "\"disabled\"");
  echo(out.echo, "user", body, "null");
  return out;
}

}  // namespace frugal
