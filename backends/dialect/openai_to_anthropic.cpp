#include "backends/dialect/openai_to_anthropic.h"

#include <array>
#include <optional>
#include <vector>

#include "core/json.h"
#include "backends/dialect/detail.h"

namespace frugal {
namespace {

using dialect_detail::has;
using dialect_detail::invalid;
using dialect_detail::str_or;
using simdjson::dom::element;

Error unsupported(const std::string& param, std::string_view why) {
  return invalid(param, "'" + param + "' is not supported by the Anthropic model this request is "
                            "routed to: " + std::string(why));
}

struct AnswerTool {
  std::string name;
  std::string description;
  std::string input_schema;  // JSON Schema text of an object
};

std::string msg_path(size_t i) { return "messages[" + std::to_string(i) + "]"; }

// Adds `"key":raw` to a serialised JSON object (which ends in '}').
void add_field(std::string& obj, std::string_view key, std::string_view raw) {
  obj.pop_back();
  if (obj.back() != '{') obj += ',';
  obj += json_quote(key);
  obj += ':';
  obj += raw;
  obj += '}';
}

struct Turn {
  std::string role;                 // user | assistant
  std::vector<std::string> blocks;  // serialised content blocks
};

class Converter {
 public:
  explicit Converter(const ChatRequest& req) : req_(req) {
    element msgs;
    if (!req.root["messages"].get(msgs)) raw_msgs_ = msgs;
  }

  Result<void> run() {
    for (size_t i = 0; i < req_.messages.size(); ++i) FRUGAL_TRY(message(i));
    return {};
  }

  std::vector<std::string> system_;
  std::vector<Turn> turns_;

 private:
  element raw_message(size_t i) const { return raw_msgs_.at(i).value_unsafe(); }

  // cache_control as the client sent it on content part j of message i ("" if none).
  std::string part_cache_control(size_t i, size_t j) const {
    element content, part, cc;
    if (raw_message(i)["content"].get(content) || !content.is_array()) return {};
    if (content.at(j).get(part) || part["cache_control"].get(cc) || cc.is_null()) return {};
    return to_json(cc);
  }

  std::vector<std::string>& target(std::string_view role) {
    if (turns_.empty() || turns_.back().role != role) turns_.push_back(Turn{std::string(role), {}});
    return turns_.back().blocks;
  }

  static std::string text_block(std::string_view text) {
    std::string b;
    JsonWriter(b).begin_object().key("type").value("text").key("text").value(text).end_object();
    return b;
  }

  Result<std::string> image_block(const ContentPart& p, const std::string& param) const {
    std::string b;
    JsonWriter w(b);
    w.begin_object().key("type").value("image").key("source").begin_object();
    std::string_view url = p.image_url;
    if (url.substr(0, 5) == "data:") {
      const size_t marker = url.find(";base64,");
      if (marker == std::string_view::npos)
        return invalid(param, "'" + param + "': only base64 data: URIs can be sent to Anthropic.");
      w.key("type").value("base64").key("media_type").value(url.substr(5, marker - 5));
      w.key("data").value(url.substr(marker + 8));
    } else if (url.substr(0, 7) == "http://" || url.substr(0, 8) == "https://") {
      w.key("type").value("url").key("url").value(url);
    } else {
      return invalid(param, "'" + param + "': expected an http(s) URL or a data: URI.");
    }
    w.end_object().end_object();
    return b;
  }

  // Text and image parts of message i, with per-part cache_control carried over.
  Result<void> parts(size_t i, const Message& m, std::vector<std::string>& out, bool images_ok) {
    for (size_t j = 0; j < m.parts.size(); ++j) {
      const ContentPart& p = m.parts[j];
      const std::string pp = msg_path(i) + ".content[" + std::to_string(j) + "]";
      std::string block;
      if (p.kind == ContentPart::Kind::kText) {
        if (p.text.empty()) continue;  // Anthropic rejects empty text blocks
        block = text_block(p.text);
      } else if (p.kind == ContentPart::Kind::kImage && images_ok) {
        auto b = image_block(p, pp + ".image_url");
        if (!b) return std::move(b).error();
        block = std::move(*b);
      } else {
        std::string type = "image_url";
        if (p.kind == ContentPart::Kind::kOther) {
          simdjson::dom::parser parser;
          element e;
          if (!parser.parse(p.raw_json).get(e)) type = std::string(str_or(e, "type"));
        }
        return unsupported(pp + ".type", "content parts of type '" + type + "' in a " + m.role +
                                             " message have no Anthropic equivalent.");
      }
      if (!m.content_is_string) {
        const std::string cc = part_cache_control(i, j);
        if (!cc.empty()) add_field(block, "cache_control", cc);
      }
      out.push_back(std::move(block));
    }
    return {};
  }

  Result<void> tool_uses(size_t i, const Message& m, std::vector<std::string>& out) {
    simdjson::dom::parser parser;
    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      const ToolCall& tc = m.tool_calls[k];
      const std::string param =
          msg_path(i) + ".tool_calls[" + std::to_string(k) + "].function.arguments";
      std::string input = "{}";
      if (tc.arguments.find_first_not_of(" \t\r\n") != std::string::npos) {
        element e;
        if (parser.parse(tc.arguments).get(e) || !e.is_object())
          return invalid(param, "'" + param + "' must be a JSON object to be sent to Anthropic "
                                              "as tool_use input.");
        input = to_json(e);
      }
      std::string b;
      JsonWriter w(b);
      w.begin_object().key("type").value("tool_use").key("id").value(tc.id);
      w.key("name").value(tc.name).key("input").raw(input).end_object();
      out.push_back(std::move(b));
    }
    return {};
  }

  Result<void> message(size_t i) {
    const Message& m = req_.messages[i];
    std::vector<std::string> blocks;
    std::vector<std::string>* dest = nullptr;
    if (m.role == "system" || m.role == "developer") {
      FRUGAL_TRY(parts(i, m, blocks, false));
      dest = &system_;
    } else if (m.role == "user") {
      FRUGAL_TRY(parts(i, m, blocks, true));
      dest = &target("user");
    } else if (m.role == "assistant") {
      FRUGAL_TRY(parts(i, m, blocks, false));
      FRUGAL_TRY(tool_uses(i, m, blocks));
      dest = &target("assistant");
    } else if (m.role == "tool") {
      std::string b;
      JsonWriter w(b);
      w.begin_object().key("type").value("tool_result").key("tool_use_id").value(m.tool_call_id);
      const std::string text = m.text();
      if (!text.empty()) w.key("content").value(text);
      w.end_object();
      blocks.push_back(std::move(b));
      dest = &target("user");
    } else {
      return unsupported(msg_path(i) + ".role",
                         "the legacy 'function' role; use tools and tool messages.");
    }
    // Message-level cache_control (LiteLLM's convention) marks the message's last block.
    element cc;
    if (!blocks.empty() && !raw_message(i)["cache_control"].get(cc) && !cc.is_null() &&
        blocks.back().find("\"cache_control\":") == std::string::npos)
      add_field(blocks.back(), "cache_control", to_json(cc));
    for (auto& b : blocks) dest->push_back(std::move(b));
    return {};
  }

  const ChatRequest& req_;
  simdjson::dom::array raw_msgs_;
};

// Top-level keys of an OpenAI request and what happens to each when the upstream is
// Anthropic. Anything not listed is rejected, as OpenAI itself rejects unknown keys.
constexpr std::array<std::string_view, 16> kHandled = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stop", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
    "user", "top_k", "n", "response_format"};
constexpr std::array<std::string_view, 5> kIgnored = {
    // Bookkeeping for OpenAI's own platform, or best-effort hints (seed is documented
    // by OpenAI as not guaranteed); none of them changes what the model writes.
    "seed", "metadata", "store", "service_tier", "prompt_cache_key"};
constexpr std::array<std::string_view, 4> kCheckedSampling = {
    "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty"};

bool in(std::string_view key, const auto& list) {
  for (auto k : list)
    if (k == key) return true;
  return false;
}

Result<void> check_unsupported(const ChatRequest& req) {
  for (auto field : req.root) {
    const std::string_view key = field.key;
    if (in(key, kHandled) || in(key, kIgnored) || in(key, kCheckedSampling)) continue;
    if (key == "reasoning_effort" && req.route_reasoning_effort) continue;  // a route's default, not the client's
    if (field.value.is_null()) continue;
    if (key == "logit_bias" && field.value.is_object() && field.value.get_object().value_unsafe().size() == 0)
      continue;
    if (key == "modalities") {
      bool text_only = field.value.is_array();
      if (text_only)
        for (element m : simdjson::dom::array(field.value.get_array().value_unsafe()))
          text_only = text_only && m.is_string() && m.get_string().value_unsafe() == "text";
      if (text_only) continue;
    }
    return unsupported(std::string(key), "Anthropic has no equivalent parameter.");
  }
  const SamplingParams& sp = req.sampling;
  if (sp.n && *sp.n > 1) return unsupported("n", "Anthropic returns exactly one choice.");
  if (sp.logprobs) return unsupported("logprobs", "Anthropic does not return log-probabilities.");
  if (sp.top_logprobs && *sp.top_logprobs > 0)
    return unsupported("top_logprobs", "Anthropic does not return log-probabilities.");
  if (sp.presence_penalty && *sp.presence_penalty != 0)
    return unsupported("presence_penalty", "Anthropic has no repetition penalties.");
  if (sp.frequency_penalty && *sp.frequency_penalty != 0)
    return unsupported("frequency_penalty", "Anthropic has no repetition penalties.");
  if (sp.temperature && *sp.temperature > 1)
    return unsupported("temperature", "Anthropic accepts values from 0 to 1.");
  return {};
}

// Anthropic's rule for tool names.
bool valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

// The tool a JSON response_format becomes; nullopt for none (absent or "text").
Result<std::optional<AnswerTool>> answer_tool_of(const ChatRequest& req) {
  if (req.response_format_json.empty()) return std::optional<AnswerTool>();
  simdjson::dom::parser parser;
  element rf;
  if (parser.parse(req.response_format_json).get(rf) || !rf.is_object())
    return invalid("response_format", "Invalid 'response_format': expected an object.");
  const std::string_view type = str_or(rf, "type");
  AnswerTool tool;
  if (type == "text") return std::optional<AnswerTool>();
  if (type == "json_object") {
    tool.name = std::string(kJsonObjectToolName);
    tool.description = "Respond with a JSON object.";
    tool.input_schema = R"({"type":"object","additionalProperties":true})";
  } else if (type == "json_schema") {
    element js, schema;
    if (rf["json_schema"].get(js) || !js.is_object())
      return invalid("response_format.json_schema", "Missing required parameter: 'response_format.json_schema'.");
    const std::string_view name = str_or(js, "name");
    if (!valid_tool_name(name))
      return invalid("response_format.json_schema.name",
                     "Invalid 'response_format.json_schema.name': expected 1 to 64 letters, digits, '_' or '-'.");
    tool.name = std::string(name);
    const std::string_view description = str_or(js, "description");
    tool.description = description.empty() ? "Respond with a JSON object that matches this schema."
                                           : std::string(description);
    if (js["schema"].get(schema) || schema.is_null()) {
      tool.input_schema = R"({"type":"object","additionalProperties":true})";
    } else if (!schema.is_object() || str_or(schema, "type", "object") != "object") {
      // Anthropic's tool input is always an object.
      return unsupported("response_format.json_schema.schema",
                         "the answer is returned through a tool, whose input must be an object schema.");
    } else {
      tool.input_schema = to_json(schema);
    }
  } else {
    return invalid("response_format.type", "Invalid value for 'response_format.type': '" + std::string(type) +
                                               "'. Supported values are: 'text', 'json_object' and 'json_schema'.");
  }
  for (const ToolDef& t : req.tools)
    if (t.name == tool.name)
      return invalid("response_format.json_schema.name",
                     "'response_format.json_schema.name' ('" + tool.name +
                         "') is also the name of a tool; the answer could not be told from a tool call.");
  return std::optional<AnswerTool>(std::move(tool));
}

Result<void> write_tool_choice(const ChatRequest& req, const std::optional<AnswerTool>& answer, JsonWriter& w) {
  bool parallel = true;
  element v;
  if (!req.root["parallel_tool_calls"].get(v) && v.is_bool()) parallel = v.get_bool().value_unsafe();
  if (answer) {
    // The answer must come as the tool call; with tools of its own the model may call
    // one of those instead (OpenAI's behaviour: tools or a formatted answer), unless the
    // client named one or said none.
    std::string_view type = "tool";
    std::string_view name = answer->name;
    simdjson::dom::parser parser;
    element tc, fn;
    if (!req.tools.empty() && !req.tool_choice_json.empty() && !parser.parse(req.tool_choice_json).get(tc) &&
        !tc.is_null()) {
      if (tc.is_string()) {
        const std::string_view s = tc.get_string().value_unsafe();
        if (s == "auto" || s == "required") type = "any";
        else if (s != "none")
          return invalid("tool_choice", "Invalid value for 'tool_choice': '" + std::string(s) + "'.");
      } else if (!tc["function"].get(fn) && !fn["name"].get_string().get(name)) {
        type = "tool";
      } else {
        return invalid("tool_choice.function.name", "Missing required parameter: 'tool_choice.function.name'.");
      }
    } else if (!req.tools.empty()) {
      type = "any";
    }
    w.key("tool_choice").begin_object().key("type").value(type);
    if (type == "tool") w.key("name").value(name);
    if (!parallel) w.key("disable_parallel_tool_use").value(true);
    w.end_object();
    return {};
  }
  if (req.tool_choice_json.empty() && parallel) return {};
  if (req.tools.empty()) {
    if (req.tool_choice_json.empty() || req.tool_choice_json == "\"none\"" ||
        req.tool_choice_json == "null")
      return {};
    return invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.");
  }
  simdjson::dom::parser parser;
  element tc;
  std::string_view type = "auto";
  std::string_view name;
  if (!req.tool_choice_json.empty() && !parser.parse(req.tool_choice_json).get(tc) && !tc.is_null()) {
    if (tc.is_string()) {
      type = tc.get_string().value_unsafe();
      if (type == "required") type = "any";
      else if (type != "auto" && type != "none")
        return invalid("tool_choice", "Invalid value for 'tool_choice': '" + std::string(type) + "'.");
    } else {
      element fn;
      if (tc["function"].get(fn) || fn["name"].get_string().get(name))
        return invalid("tool_choice.function.name", "Missing required parameter: 'tool_choice.function.name'.");
      type = "tool";
    }
  }
  w.key("tool_choice").begin_object().key("type").value(type);
  if (type == "tool") w.key("name").value(name);
  if (!parallel && type != "none") w.key("disable_parallel_tool_use").value(true);
  w.end_object();
  return {};
}

void write_blocks(JsonWriter& w, const std::vector<std::string>& blocks) {
  w.begin_array();
  for (const auto& b : blocks) w.raw(b);
  w.end_array();
}

}  // namespace

Result<std::string> response_format_tool(const ChatRequest& req) {
  auto answer = answer_tool_of(req);
  if (!answer) return std::move(answer).error();
  return *answer ? (*answer)->name : std::string();
}

Result<std::string> openai_to_anthropic_request(const ChatRequest& req,
                                                std::string_view upstream_model,
                                                const AnthropicDefaults& defaults) {
  FRUGAL_TRY(check_unsupported(req));
  auto answer = answer_tool_of(req);
  if (!answer) return std::move(answer).error();
  Converter conv(req);
  FRUGAL_TRY(conv.run());

  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("model").value(upstream_model);
  w.key("max_tokens").value(req.sampling.max_tokens.value_or(defaults.max_tokens));
  if (!conv.system_.empty()) {
    w.key("system");
    write_blocks(w, conv.system_);
  }
  w.key("messages").begin_array();
  for (const Turn& t : conv.turns_) {
    if (t.blocks.empty()) continue;  // e.g. an assistant message with null content only
    w.begin_object().key("role").value(t.role).key("content");
    write_blocks(w, t.blocks);
    w.end_object();
  }
  w.end_array();
  if (!req.tools.empty() || *answer) {
    w.key("tools").begin_array();
    for (const ToolDef& t : req.tools) {
      w.begin_object().key("name").value(t.name);
      if (!t.description.empty()) w.key("description").value(t.description);
      // Anthropic requires a schema; OpenAI allows omitting it for argument-less tools.
      w.key("input_schema").raw(t.parameters_json.empty() ? R"({"type":"object","properties":{}})"
                                                          : t.parameters_json);
      w.end_object();
    }
    if (const auto& a = *answer) {
      w.begin_object().key("name").value(a->name).key("description").value(a->description);
      w.key("input_schema").raw(a->input_schema).end_object();
    }
    w.end_array();
  }
  FRUGAL_TRY(write_tool_choice(req, *answer, w));
  if (!req.sampling.stop.empty()) {
    w.key("stop_sequences").begin_array();
    for (const auto& s : req.sampling.stop) w.value(s);
    w.end_array();
  }
  element v;
  if (!req.root["temperature"].get(v) && !v.is_null()) w.key("temperature").raw(to_json(v));
  if (!req.root["top_p"].get(v) && !v.is_null()) w.key("top_p").raw(to_json(v));
  if (!req.root["top_k"].get(v) && !v.is_null()) {
    if (!v.is_int64()) return invalid("top_k", "Invalid type for 'top_k': expected an integer.");
    w.key("top_k").raw(to_json(v));
  }
  if (!req.user.empty()) w.key("metadata").begin_object().key("user_id").value(req.user).end_object();
  if (req.stream) w.key("stream").value(true);
  w.end_object();
  return out;
}

}  // namespace frugal
