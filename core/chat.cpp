#include "core/chat.h"

#include <string>

namespace frugal {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

Error bad(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param));
}

const char* type_word(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

Error wrong_type(const std::string& param, element e, const char* expected) {
  return bad(param, "Invalid type for '" + param + "': expected " + expected + ", but got " +
                        type_word(e.type()) + " instead.");
}

Result<std::string> get_string(element e, const std::string& param) {
  std::string_view s;
  if (e.get_string().get(s)) return wrong_type(param, e, "a string");
  return std::string(s);
}

Result<double> get_number(element e, const std::string& param) {
  if (e.is_double()) return e.get_double().value_unsafe();
  if (e.is_int64()) return static_cast<double>(e.get_int64().value_unsafe());
  if (e.is_uint64()) return static_cast<double>(e.get_uint64().value_unsafe());
  return wrong_type(param, e, "a number");
}

Result<int64_t> get_integer(element e, const std::string& param) {
  if (e.is_int64()) return e.get_int64().value_unsafe();
  if (e.is_double()) {
    const double d = e.get_double().value_unsafe();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  return wrong_type(param, e, "an integer");
}

Result<bool> get_bool(element e, const std::string& param) {
  bool b;
  if (e.get_bool().get(b)) return wrong_type(param, e, "a boolean");
  return b;
}

Result<void> parse_content(element content, const std::string& param, Message& m) {
  if (content.is_null()) return {};
  if (content.is_string()) {
    m.content_is_string = true;
    ContentPart p;
    p.text = std::string(content.get_string().value_unsafe());
    m.parts.push_back(std::move(p));
    return {};
  }
  simdjson::dom::array arr;
  if (content.get_array().get(arr)) return wrong_type(param, content, "a string or an array");
  size_t i = 0;
  for (element part : arr) {
    const std::string pp = param + "[" + std::to_string(i++) + "]";
    simdjson::dom::object obj;
    if (part.get_object().get(obj)) return wrong_type(pp, part, "an object");
    std::string_view type;
    if (obj["type"].get_string().get(type)) return bad(pp + ".type", "Missing required parameter: '" + pp + ".type'.");
    ContentPart p;
    if (type == "text") {
      element t;
      if (obj["text"].get(t)) return bad(pp + ".text", "Missing required parameter: '" + pp + ".text'.");
      auto s = get_string(t, pp + ".text");
      if (!s) return std::move(s).error();
      p.text = std::move(*s);
    } else if (type == "image_url") {
      p.kind = ContentPart::Kind::kImage;
      element iu;
      if (obj["image_url"].get(iu)) return bad(pp + ".image_url", "Missing required parameter: '" + pp + ".image_url'.");
      std::string_view url;
      if (iu.is_string()) {
        url = iu.get_string().value_unsafe();
      } else if (iu["url"].get_string().get(url)) {
        return bad(pp + ".image_url.url", "Missing required parameter: '" + pp + ".image_url.url'.");
      }
      p.image_url = std::string(url);
      std::string_view detail;
      if (!iu.is_string() && !iu["detail"].get_string().get(detail)) p.detail = std::string(detail);
    } else {
      p.kind = ContentPart::Kind::kOther;
      p.raw_json = to_json(part);
    }
    m.parts.push_back(std::move(p));
  }
  return {};
}

Result<void> parse_tool_calls(element e, const std::string& param, Message& m) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) return wrong_type(param, e, "an array");
  size_t i = 0;
  for (element tc : arr) {
    const std::string pp = param + "[" + std::to_string(i++) + "]";
    if (!tc.is_object()) return wrong_type(pp, tc, "an object");
    ToolCall call;
    std::string_view s;
    if (!tc["id"].get_string().get(s)) call.id = std::string(s);
    element fn;
    if (tc["function"].get(fn) || !fn.is_object())
      return bad(pp + ".function", "Missing required parameter: '" + pp + ".function'.");
    if (fn["name"].get_string().get(s)) return bad(pp + ".function.name", "Missing required parameter: '" + pp + ".function.name'.");
    call.name = std::string(s);
    if (!fn["arguments"].get_string().get(s)) call.arguments = std::string(s);
    m.tool_calls.push_back(std::move(call));
  }
  return {};
}

Result<Message> parse_message(element e, const std::string& param) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return wrong_type(param, e, "an object");
  Message m;
  element role;
  if (obj["role"].get(role)) return bad(param + ".role", "Missing required parameter: '" + param + ".role'.");
  auto r = get_string(role, param + ".role");
  if (!r) return std::move(r).error();
  m.role = std::move(*r);
  if (m.role != "system" && m.role != "developer" && m.role != "user" && m.role != "assistant" &&
      m.role != "tool" && m.role != "function")
    return bad(param + ".role", "Invalid value: '" + m.role +
                                    "'. Supported values are: 'system', 'developer', 'user', "
                                    "'assistant', 'tool' and 'function'.");
  element content;
  if (!obj["content"].get(content)) {
    FRUGAL_TRY(parse_content(content, param + ".content", m));
  } else if (m.role != "assistant") {
    return bad(param + ".content", "Missing required parameter: '" + param + ".content'.");
  }
  element v;
  std::string_view s;
  if (!obj["name"].get(v)) {
    if (v.get_string().get(s)) return wrong_type(param + ".name", v, "a string");
    m.name = std::string(s);
  }
  if (!obj["tool_calls"].get(v)) FRUGAL_TRY(parse_tool_calls(v, param + ".tool_calls", m));
  if (!obj["tool_call_id"].get(v)) {
    if (v.get_string().get(s)) return wrong_type(param + ".tool_call_id", v, "a string");
    m.tool_call_id = std::string(s);
  }
  if (m.role == "tool" && m.tool_call_id.empty())
    return bad(param + ".tool_call_id", "Missing required parameter: '" + param + ".tool_call_id'.");
  return m;
}

Result<void> parse_tools(element e, ChatRequest& req) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) return wrong_type("tools", e, "an array");
  size_t i = 0;
  for (element t : arr) {
    const std::string pp = "tools[" + std::to_string(i++) + "]";
    if (!t.is_object()) return wrong_type(pp, t, "an object");
    element fn;
    if (t["function"].get(fn) || !fn.is_object())
      return bad(pp + ".function", "Missing required parameter: '" + pp + ".function'.");
    ToolDef def;
    std::string_view s;
    if (fn["name"].get_string().get(s)) return bad(pp + ".function.name", "Missing required parameter: '" + pp + ".function.name'.");
    def.name = std::string(s);
    if (!fn["description"].get_string().get(s)) def.description = std::string(s);
    element params;
    if (!fn["parameters"].get(params)) def.parameters_json = to_json(params);
    req.tools.push_back(std::move(def));
  }
  return {};
}

Result<void> parse_stop(element e, SamplingParams& sp) {
  if (e.is_null()) return {};
  if (e.is_string()) {
    sp.stop.emplace_back(e.get_string().value_unsafe());
    return {};
  }
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) return wrong_type("stop", e, "a string or an array of strings");
  for (element s : arr) {
    std::string_view v;
    if (s.get_string().get(v)) return wrong_type("stop", s, "a string");
    sp.stop.emplace_back(v);
  }
  return {};
}

template <class T, class Get>
Result<void> optional_field(simdjson::dom::object obj, const char* key, Get get,
                            std::optional<T>& out) {
  element v;
  if (obj[key].get(v) || v.is_null()) return {};
  auto r = get(v, key);
  if (!r) return std::move(r).error();
  out = *r;
  return {};
}

}  // namespace

std::string Message::text() const {
  std::string out;
  for (const auto& p : parts)
    if (p.kind == ContentPart::Kind::kText) out += p.text;
  return out;
}

std::string to_json(simdjson::dom::element e) { return simdjson::minify(e); }

Result<ChatRequest> parse_chat_request(element root) {
  ChatRequest req;
  if (root.get_object().get(req.root))
    return bad("", "The request body must be a JSON object.");
  req.has_root = true;
  const simdjson::dom::object obj = req.root;

  element v;
  if (obj["model"].get(v)) return bad("model", "Missing required parameter: 'model'.");
  auto model = get_string(v, "model");
  if (!model) return std::move(model).error();
  if (model->empty()) return bad("model", "Invalid value for 'model': must not be empty.");
  req.model = std::move(*model);

  if (obj["messages"].get(v)) return bad("messages", "Missing required parameter: 'messages'.");
  simdjson::dom::array msgs;
  if (v.get_array().get(msgs)) return wrong_type("messages", v, "an array");
  if (msgs.size() == 0)
    return bad("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
  req.messages.reserve(msgs.size());
  size_t i = 0;
  for (element m : msgs) {
    auto msg = parse_message(m, "messages[" + std::to_string(i++) + "]");
    if (!msg) return std::move(msg).error();
    req.messages.push_back(std::move(*msg));
  }

  if (!obj["stream"].get(v) && !v.is_null()) {
    auto b = get_bool(v, "stream");
    if (!b) return std::move(b).error();
    req.stream = *b;
  }
  if (!obj["stream_options"].get(v) && !v.is_null()) {
    if (!v.is_object()) return wrong_type("stream_options", v, "an object");
    element iu;
    if (!v["include_usage"].get(iu)) {
      auto b = get_bool(iu, "stream_options.include_usage");
      if (!b) return std::move(b).error();
      req.include_usage = *b;
    }
  }
  auto& sp = req.sampling;
  FRUGAL_TRY(optional_field(obj, "temperature", get_number, sp.temperature));
  FRUGAL_TRY(optional_field(obj, "top_p", get_number, sp.top_p));
  FRUGAL_TRY(optional_field(obj, "presence_penalty", get_number, sp.presence_penalty));
  FRUGAL_TRY(optional_field(obj, "frequency_penalty", get_number, sp.frequency_penalty));
  FRUGAL_TRY(optional_field(obj, "seed", get_integer, sp.seed));
  FRUGAL_TRY(optional_field(obj, "n", get_integer, sp.n));
  FRUGAL_TRY(optional_field(obj, "top_logprobs", get_integer, sp.top_logprobs));
  FRUGAL_TRY(optional_field(obj, "max_tokens", get_integer, sp.max_tokens));
  if (!sp.max_tokens) FRUGAL_TRY(optional_field(obj, "max_completion_tokens", get_integer, sp.max_tokens));
  if (sp.temperature && (*sp.temperature < 0 || *sp.temperature > 2))
    return bad("temperature", "Invalid 'temperature': must be between 0 and 2.");
  if (sp.max_tokens && *sp.max_tokens < 1)
    return bad("max_tokens", "Invalid 'max_tokens': must be at least 1.");
  if (!obj["logprobs"].get(v) && !v.is_null()) {
    auto b = get_bool(v, "logprobs");
    if (!b) return std::move(b).error();
    sp.logprobs = *b;
  }
  if (!obj["stop"].get(v)) FRUGAL_TRY(parse_stop(v, sp));
  if (!obj["tools"].get(v) && !v.is_null()) FRUGAL_TRY(parse_tools(v, req));
  if (!obj["tool_choice"].get(v)) req.tool_choice_json = to_json(v);
  if (!obj["response_format"].get(v) && !v.is_null()) {
    if (!v.is_object()) return wrong_type("response_format", v, "an object");
    req.response_format_json = to_json(v);
  }
  if (!obj["user"].get(v) && !v.is_null()) {
    auto u = get_string(v, "user");
    if (!u) return std::move(u).error();
    req.user = std::move(*u);
  }
  return req;
}

Result<ChatRequest> parse_chat_body(simdjson::dom::parser& parser, std::string_view body) {
  element root;
  if (auto err = parser.parse(body.data(), body.size()).get(root))
    return bad("", std::string("We could not parse the JSON body of your request: ") +
                       simdjson::error_message(err) + ".");
  return parse_chat_request(root);
}

}  // namespace frugal
