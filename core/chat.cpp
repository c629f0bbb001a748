#include "core/chat.h"

#include "core/json.h"

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

// A parameter path ("messages[2].content[0].text") built only when an error needs it:
// a valid request costs no string work for it.
struct Path {
  const Path* parent = nullptr;
  std::string_view name;  // a field name, or empty for an index
  size_t index = 0;
  std::string str() const {
    std::string out = parent ? parent->str() : std::string();
    if (name.empty()) {
      out += '[';
      out += std::to_string(index);
      out += ']';
    } else {
      if (!out.empty()) out += '.';
      out += name;
    }
    return out;
  }
  Path field(std::string_view n) const { return Path{this, n, 0}; }
  Path at(size_t i) const { return Path{this, {}, i}; }
};

Error wrong_type(const Path& param, element e, const char* expected) { return wrong_type(param.str(), e, expected); }
Error missing(const Path& param) {
  const std::string p = param.str();
  return bad(p, "Missing required parameter: '" + p + "'.");
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
    if (auto i = integral_double(e.get_double().value_unsafe())) return *i;
  }
  return wrong_type(param, e, "an integer");
}

Result<bool> get_bool(element e, const std::string& param) {
  bool b;
  if (e.get_bool().get(b)) return wrong_type(param, e, "a boolean");
  return b;
}

Result<void> parse_content(element content, const Path& param, Message& m) {
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
    const Path pp = param.at(i++);
    simdjson::dom::object obj;
    if (part.get_object().get(obj)) return wrong_type(pp, part, "an object");
    std::string_view type;
    if (obj["type"].get_string().get(type)) return missing(pp.field("type"));
    ContentPart p;
    if (type == "text") {
      element t;
      if (obj["text"].get(t)) return missing(pp.field("text"));
      std::string_view text;
      if (t.get_string().get(text)) return wrong_type(pp.field("text"), t, "a string");
      p.text = std::string(text);
    } else if (type == "image_url") {
      p.kind = ContentPart::Kind::kImage;
      element iu;
      if (obj["image_url"].get(iu)) return missing(pp.field("image_url"));
      std::string_view url;
      if (iu.is_string()) {
        url = iu.get_string().value_unsafe();
      } else if (iu["url"].get_string().get(url)) {
        return missing(pp.field("image_url").field("url"));
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

Result<void> parse_tool_calls(element e, const Path& param, Message& m) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) return wrong_type(param, e, "an array");
  size_t i = 0;
  for (element tc : arr) {
    const Path pp = param.at(i++);
    if (!tc.is_object()) return wrong_type(pp, tc, "an object");
    ToolCall call;
    std::string_view s;
    if (!tc["id"].get_string().get(s)) call.id = std::string(s);
    element fn;
    if (tc["function"].get(fn) || !fn.is_object()) return missing(pp.field("function"));
    if (fn["name"].get_string().get(s)) return missing(pp.field("function").field("name"));
    call.name = std::string(s);
    if (!fn["arguments"].get_string().get(s)) call.arguments = std::string(s);
    m.tool_calls.push_back(std::move(call));
  }
  return {};
}

// Fills `m` (a fresh Message, parsed in place so that it is not moved afterwards).
Result<void> parse_message(element e, const Path& param, Message& m) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return wrong_type(param, e, "an object");
  // One pass over the message's fields (the first occurrence of a key counts).
  element role, content, name, tool_calls, tool_call_id;
  bool has_role = false, has_content = false, has_name = false, has_tool_calls = false, has_tool_call_id = false;
  for (auto field : obj) {
    const std::string_view k = field.key;
    auto take = [&](bool& has, element& slot) {
      if (has) return;
      has = true;
      slot = field.value;
    };
    if (k == "role") take(has_role, role);
    else if (k == "content") take(has_content, content);
    else if (k == "name") take(has_name, name);
    else if (k == "tool_calls") take(has_tool_calls, tool_calls);
    else if (k == "tool_call_id") take(has_tool_call_id, tool_call_id);
  }
  if (!has_role) return missing(param.field("role"));
  std::string_view s;
  if (role.get_string().get(s)) return wrong_type(param.field("role"), role, "a string");
  if (s != "system" && s != "developer" && s != "user" && s != "assistant" && s != "tool" && s != "function")
    return bad(param.field("role").str(), "Invalid value: '" + std::string(s) +
                                              "'. Supported values are: 'system', 'developer', 'user', "
                                              "'assistant', 'tool' and 'function'.");
  m.role = std::string(s);
  const std::string_view role_name = s;
  if (has_content) {
    FRUGAL_TRY(parse_content(content, param.field("content"), m));
  } else if (role_name != "assistant") {
    return missing(param.field("content"));
  }
  if (has_name) {
    if (name.get_string().get(s)) return wrong_type(param.field("name"), name, "a string");
    m.name = std::string(s);
  }
  if (has_tool_calls) FRUGAL_TRY(parse_tool_calls(tool_calls, param.field("tool_calls"), m));
  if (has_tool_call_id) {
    if (tool_call_id.get_string().get(s)) return wrong_type(param.field("tool_call_id"), tool_call_id, "a string");
    m.tool_call_id = std::string(s);
  }
  if (role_name == "tool" && m.tool_call_id.empty()) return missing(param.field("tool_call_id"));
  return {};
}

Result<void> parse_tools(element e, ChatRequest& req) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) return wrong_type("tools", e, "an array");
  const Path tools_path{nullptr, "tools", 0};
  size_t i = 0;
  for (element t : arr) {
    const Path pp = tools_path.at(i++);
    if (!t.is_object()) return wrong_type(pp, t, "an object");
    element fn;
    if (t["function"].get(fn) || !fn.is_object()) return missing(pp.field("function"));
    ToolDef def;
    std::string_view s;
    if (fn["name"].get_string().get(s)) return missing(pp.field("function").field("name"));
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
Result<void> optional_field(const element* v, const char* key, Get get, std::optional<T>& out) {
  if (!v || v->is_null()) return {};
  auto r = get(*v, key);
  if (!r) return std::move(r).error();
  out = *r;
  return {};
}

// The top-level fields parse_chat_request reads, found in one pass over the object
// (the first occurrence of a key counts, as with simdjson's lookup).
enum TopField {
  kModel, kMessages, kStream, kStreamOptions, kTemperature, kTopP, kPresencePenalty, kFrequencyPenalty,
  kSeed, kN, kTopLogprobs, kMaxTokens, kMaxCompletionTokens, kLogprobs, kStop, kTools, kToolChoice,
  kResponseFormat, kUser, kTopFields
};
constexpr std::string_view kTopNames[kTopFields] = {
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "presence_penalty",
    "frequency_penalty", "seed", "n", "top_logprobs", "max_tokens", "max_completion_tokens", "logprobs",
    "stop", "tools", "tool_choice", "response_format", "user"};

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
  element fields[kTopFields];
  bool present[kTopFields] = {};
  for (auto field : req.root) {
    for (int i = 0; i < kTopFields; ++i) {
      if (field.key == kTopNames[i]) {
        if (!present[i]) {
          present[i] = true;
          fields[i] = field.value;
        }
        break;
      }
    }
  }
  auto get = [&](TopField f) -> const element* { return present[f] ? &fields[f] : nullptr; };

  const element* v = get(kModel);
  if (!v) return bad("model", "Missing required parameter: 'model'.");
  auto model = get_string(*v, "model");
  if (!model) return std::move(model).error();
  if (model->empty()) return bad("model", "Invalid value for 'model': must not be empty.");
  req.model = std::move(*model);

  if (!(v = get(kMessages))) return bad("messages", "Missing required parameter: 'messages'.");
  simdjson::dom::array msgs;
  if (v->get_array().get(msgs)) return wrong_type("messages", *v, "an array");
  if (msgs.size() == 0)
    return bad("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
  req.messages.reserve(msgs.size());
  const Path messages_path{nullptr, "messages", 0};
  size_t i = 0;
  for (element m : msgs) {
    FRUGAL_TRY(parse_message(m, messages_path.at(i++), req.messages.emplace_back()));
  }

  if ((v = get(kStream)) && !v->is_null()) {
    auto b = get_bool(*v, "stream");
    if (!b) return std::move(b).error();
    req.stream = *b;
  }
  if ((v = get(kStreamOptions)) && !v->is_null()) {
    if (!v->is_object()) return wrong_type("stream_options", *v, "an object");
    element iu;
    if (!(*v)["include_usage"].get(iu)) {
      auto b = get_bool(iu, "stream_options.include_usage");
      if (!b) return std::move(b).error();
      req.include_usage = *b;
    }
  }
  auto& sp = req.sampling;
  FRUGAL_TRY(optional_field(get(kTemperature), "temperature", get_number, sp.temperature));
  FRUGAL_TRY(optional_field(get(kTopP), "top_p", get_number, sp.top_p));
  FRUGAL_TRY(optional_field(get(kPresencePenalty), "presence_penalty", get_number, sp.presence_penalty));
  FRUGAL_TRY(optional_field(get(kFrequencyPenalty), "frequency_penalty", get_number, sp.frequency_penalty));
  FRUGAL_TRY(optional_field(get(kSeed), "seed", get_integer, sp.seed));
  FRUGAL_TRY(optional_field(get(kN), "n", get_integer, sp.n));
  FRUGAL_TRY(optional_field(get(kTopLogprobs), "top_logprobs", get_integer, sp.top_logprobs));
  FRUGAL_TRY(optional_field(get(kMaxTokens), "max_tokens", get_integer, sp.max_tokens));
  if (!sp.max_tokens)
    FRUGAL_TRY(optional_field(get(kMaxCompletionTokens), "max_completion_tokens", get_integer, sp.max_tokens));
  if (sp.temperature && (*sp.temperature < 0 || *sp.temperature > 2))
    return bad("temperature", "Invalid 'temperature': must be between 0 and 2.");
  if (sp.max_tokens && *sp.max_tokens < 1)
    return bad("max_tokens", "Invalid 'max_tokens': must be at least 1.");
  if ((v = get(kLogprobs)) && !v->is_null()) {
    auto b = get_bool(*v, "logprobs");
    if (!b) return std::move(b).error();
    sp.logprobs = *b;
  }
  if ((v = get(kStop))) FRUGAL_TRY(parse_stop(*v, sp));
  if ((v = get(kTools)) && !v->is_null()) FRUGAL_TRY(parse_tools(*v, req));
  if ((v = get(kToolChoice))) req.tool_choice_json = to_json(*v);
  if ((v = get(kResponseFormat)) && !v->is_null()) {
    if (!v->is_object()) return wrong_type("response_format", *v, "an object");
    req.response_format_json = to_json(*v);
  }
  if ((v = get(kUser)) && !v->is_null()) {
    auto u = get_string(*v, "user");
    if (!u) return std::move(u).error();
    req.user = std::move(*u);
  }
  return req;
}

Result<ChatRequest> parse_chat_body(simdjson::dom::parser& parser, std::string_view body) {
  element root;
  // A default string_view has no data pointer, which simdjson must not be given (UBSan).
  if (auto err = parser.parse(body.empty() ? "" : body.data(), body.size()).get(root))
    return bad("", std::string("We could not parse the JSON body of your request: ") +
                       simdjson::error_message(err) + ".");
  auto req = parse_chat_request(root);
  if (req) req->openai_body = body;
  return req;
}

}  // namespace frugal
