#include "backends/dialect/anthropic_request.h"

#include <array>

#include "core/chat.h"
#include "core/json.h"
#include "backends/dialect/detail.h"

namespace frugal {
namespace {

using dialect_detail::has;
using dialect_detail::int_field;
using dialect_detail::invalid;
using dialect_detail::number_of;
using dialect_detail::str_or;
using dialect_detail::type_word;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

std::string path(const std::string& base, size_t i) { return base + "." + std::to_string(i); }
std::string path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

Error field_required(const std::string& p) { return invalid(p, p + ": Field required"); }
Error wrong_type(const std::string& p, element e, const char* expected) {
  return invalid(p, p + ": Input should be " + expected + " (got " + type_word(e) + ")");
}

Result<std::string_view> required_string(element obj, const std::string& base, std::string_view key) {
  const std::string p = path(base, key);
  element v;
  if (obj[key].get(v)) return field_required(p);
  std::string_view s;
  if (v.get_string().get(s)) return wrong_type(p, v, "a valid string");
  return s;
}

// ---- validation ------------------------------------------------------------------

Result<void> check_image(element block, const std::string& p, AnthropicRequestInfo& info) {
  info.has_images = true;
  element src;
  if (block["source"].get(src)) return field_required(p + ".source");
  if (!src.is_object()) return wrong_type(p + ".source", src, "an object");
  auto type = required_string(src, p + ".source", "type");
  if (!type) return std::move(type).error();
  if (*type == "base64") {
    FRUGAL_TRY(required_string(src, p + ".source", "media_type"));
    FRUGAL_TRY(required_string(src, p + ".source", "data"));
  } else if (*type == "url") {
    FRUGAL_TRY(required_string(src, p + ".source", "url"));
  }
  return {};
}

Result<void> check_blocks(element content, const std::string& p, bool system,
                          AnthropicRequestInfo& info);

Result<void> check_block(element block, const std::string& p, bool system,
                         AnthropicRequestInfo& info) {
  if (!block.is_object()) return wrong_type(p, block, "a valid dictionary");
  auto type = required_string(block, p, "type");
  if (!type) return std::move(type).error();
  if (has(block, "cache_control")) info.uses_cache_control = true;
  if (system && *type != "text")
    return invalid(p + ".type", p + ".type: Input tag '" + std::string(*type) +
                                    "' does not match the expected tag 'text'");
  if (*type == "text") {
    FRUGAL_TRY(required_string(block, p, "text"));
  } else if (*type == "image") {
    FRUGAL_TRY(check_image(block, p, info));
  } else if (*type == "tool_use") {
    FRUGAL_TRY(required_string(block, p, "id"));
    FRUGAL_TRY(required_string(block, p, "name"));
    element input;
    if (block["input"].get(input)) return field_required(p + ".input");
    if (!input.is_object()) return wrong_type(p + ".input", input, "a valid dictionary");
  } else if (*type == "tool_result") {
    FRUGAL_TRY(required_string(block, p, "tool_use_id"));
    element c;
    if (!block["content"].get(c) && !c.is_string())
      FRUGAL_TRY(check_blocks(c, p + ".content", false, info));
    element is_error;
    if (!block["is_error"].get(is_error) && !is_error.is_bool() && !is_error.is_null())
      return wrong_type(p + ".is_error", is_error, "a valid boolean");
  } else if (*type == "thinking") {
    FRUGAL_TRY(required_string(block, p, "thinking"));
  }
  return {};
}

Result<void> check_blocks(element content, const std::string& p, bool system,
                          AnthropicRequestInfo& info) {
  array blocks;
  if (content.get_array().get(blocks)) return wrong_type(p, content, "a valid list");
  size_t j = 0;
  for (element block : blocks) FRUGAL_TRY(check_block(block, path(p, j++), system, info));
  return {};
}

Result<void> check_tools(element tools, AnthropicRequestInfo& info) {
  array arr;
  if (tools.get_array().get(arr)) return wrong_type("tools", tools, "a valid list");
  size_t i = 0;
  for (element t : arr) {
    const std::string p = path("tools", i++);
    if (!t.is_object()) return wrong_type(p, t, "a valid dictionary");
    FRUGAL_TRY(required_string(t, p, "name"));
    if (has(t, "cache_control")) info.uses_cache_control = true;
    const std::string_view type = str_or(t, "type", "custom");
    if (type != "custom") continue;  // server tools (web_search_..., bash_...) have no schema
    element schema;
    if (t["input_schema"].get(schema)) return field_required(p + ".input_schema");
    if (!schema.is_object()) return wrong_type(p + ".input_schema", schema, "a valid dictionary");
  }
  info.has_tools = arr.size() > 0;
  return {};
}

Result<void> check_tool_choice(element tc) {
  if (!tc.is_object()) return wrong_type("tool_choice", tc, "a valid dictionary");
  auto type = required_string(tc, "tool_choice", "type");
  if (!type) return std::move(type).error();
  if (*type == "tool") return required_string(tc, "tool_choice", "name").ok()
                                  ? Result<void>()
                                  : field_required("tool_choice.name");
  if (*type != "auto" && *type != "any" && *type != "none")
    return invalid("tool_choice.type", "tool_choice.type: Input tag '" + std::string(*type) +
                                           "' does not match any of the expected tags: "
                                           "'auto', 'any', 'tool', 'none'");
  return {};
}

}  // namespace

Result<AnthropicRequestInfo> parse_anthropic_request(element body) {
  AnthropicRequestInfo info;
  if (body.get_object().get(info.root))
    return invalid("", "The request body must be a JSON object.");

  auto model = required_string(body, "", "model");
  if (!model) return std::move(model).error();
  if (model->empty()) return invalid("model", "model: String should have at least 1 character");
  info.model = std::string(*model);

  element v;
  if (body["max_tokens"].get(v)) return field_required("max_tokens");
  auto max_tokens = int_field(body, "max_tokens");
  if (!max_tokens) return wrong_type("max_tokens", v, "a valid integer");
  if (*max_tokens < 1)
    return invalid("max_tokens", "max_tokens: Input should be greater than or equal to 1");
  info.max_tokens = *max_tokens;

  if (body["messages"].get(v)) return field_required("messages");
  array msgs;
  if (v.get_array().get(msgs)) return wrong_type("messages", v, "a valid list");
  if (msgs.size() == 0)
    return invalid("messages", "messages: at least one message is required");
  size_t i = 0;
  for (element m : msgs) {
    const std::string p = path("messages", i++);
    if (!m.is_object()) return wrong_type(p, m, "a valid dictionary");
    auto role = required_string(m, p, "role");
    if (!role) return std::move(role).error();
    if (*role != "user" && *role != "assistant")
      return invalid(p + ".role", p + ".role: Input should be 'user' or 'assistant'");
    element content;
    if (m["content"].get(content)) return field_required(p + ".content");
    if (!content.is_string()) FRUGAL_TRY(check_blocks(content, p + ".content", false, info));
  }

  if (!body["system"].get(v) && !v.is_string())
    FRUGAL_TRY(check_blocks(v, "system", true, info));

  for (const char* key : {"temperature", "top_p"}) {
    if (body[key].get(v) || v.is_null()) continue;
    auto x = number_of(v);
    if (!x) return wrong_type(key, v, "a valid number");
    if (*x < 0 || *x > 1)
      return invalid(key, std::string(key) + ": Input should be between 0 and 1");
  }
  if (!body["top_k"].get(v) && !v.is_null() && !int_field(body, "top_k"))
    return wrong_type("top_k", v, "a valid integer");

  if (!body["stop_sequences"].get(v) && !v.is_null()) {
    array arr;
    if (v.get_array().get(arr)) return wrong_type("stop_sequences", v, "a valid list");
    size_t k = 0;
    for (element s : arr) {
      std::string_view sv;
      if (s.get_string().get(sv)) return wrong_type(path("stop_sequences", k), s, "a valid string");
      info.stop_sequences.emplace_back(sv);
      ++k;
    }
  }
  if (!body["stream"].get(v) && !v.is_null()) {
    if (!v.is_bool()) return wrong_type("stream", v, "a valid boolean");
    info.stream = v.get_bool().value_unsafe();
  }
  if (!body["tools"].get(v) && !v.is_null()) FRUGAL_TRY(check_tools(v, info));
  if (!body["tool_choice"].get(v) && !v.is_null()) FRUGAL_TRY(check_tool_choice(v));
  if (!body["metadata"].get(v) && !v.is_null()) {
    if (!v.is_object()) return wrong_type("metadata", v, "a valid dictionary");
    element uid;
    if (!v["user_id"].get(uid) && !uid.is_null()) {
      std::string_view s;
      if (uid.get_string().get(s)) return wrong_type("metadata.user_id", uid, "a valid string");
      info.user_id = std::string(s);
    }
  }
  if (!body["thinking"].get(v) && !v.is_null()) {
    if (!v.is_object()) return wrong_type("thinking", v, "a valid dictionary");
    auto type = required_string(v, "thinking", "type");
    if (!type) return std::move(type).error();
    if (*type == "enabled") {
      info.thinking_enabled = true;
      auto budget = int_field(v, "budget_tokens");
      if (!budget) return field_required("thinking.budget_tokens");
      if (*budget < 1024)
        return invalid("thinking.budget_tokens",
                       "thinking.budget_tokens: Input should be greater than or equal to 1024");
      if (*budget >= info.max_tokens)
        return invalid("max_tokens", "max_tokens: must be greater than thinking.budget_tokens");
    } else if (*type != "disabled") {
      return invalid("thinking.type", "thinking.type: Input tag '" + std::string(*type) +
                                          "' does not match any of the expected tags: "
                                          "'enabled', 'disabled'");
    }
  }
  return info;
}

// ---- translation to OpenAI ---------------------------------------------------------

namespace {

Error not_for_openai(const std::string& param, std::string_view what) {
  return invalid(param, param + ": " + std::string(what) +
                            " cannot be expressed for the OpenAI-compatible model this "
                            "request is routed to");
}

class OpenAiBodyBuilder {
 public:
  OpenAiBodyBuilder(std::string& out, const AnthropicToOpenAiOptions& opt) : w_(out), opt_(opt) {}

  Result<void> system(element sys) {
    w_.begin_object().key("role").value("system").key("content");
    if (sys.is_string()) {
      w_.value(sys.get_string().value_unsafe());
    } else {
      w_.begin_array();
      for (element block : simdjson::dom::array(sys.get_array().value_unsafe())) text_part(block);
      w_.end_array();
    }
    w_.end_object();
    return {};
  }

  Result<void> message(element m, const std::string& p) {
    const std::string_view role = str_or(m, "role");
    element content = m["content"].value_unsafe();
    if (content.is_string()) {
      w_.begin_object().key("role").value(role).key("content").value(content.get_string().value_unsafe());
      w_.end_object();
      return {};
    }
    return role == "user" ? user_blocks(content.get_array().value_unsafe(), p + ".content")
                          : assistant_blocks(content.get_array().value_unsafe(), p + ".content");
  }

 private:
  void text_part(element block) {
    w_.begin_object().key("type").value("text").key("text").value(str_or(block, "text"));
    cache_control(block);
    w_.end_object();
  }

  void cache_control(element block) {
    element cc;
    if (opt_.forward_cache_control && !block["cache_control"].get(cc) && !cc.is_null())
      w_.key("cache_control").raw(to_json(cc));
  }

  Result<void> image_part(element block, const std::string& p) {
    element src = block["source"].value_unsafe();
    const std::string_view type = str_or(src, "type");
    std::string url;
    if (type == "base64") {
      url = "data:";
      url += str_or(src, "media_type");
      url += ";base64,";
      url += str_or(src, "data");
    } else if (type == "url") {
      url = std::string(str_or(src, "url"));
    } else {
      return not_for_openai(p + ".source.type", "an image source of type '" + std::string(type) + "'");
    }
    w_.begin_object().key("type").value("image_url");
    w_.key("image_url").begin_object().key("url").value(url).end_object();
    cache_control(block);
    w_.end_object();
    return {};
  }

  // Anthropic puts tool results inside a user turn; OpenAI wants one `tool` message per
  // result. Order is kept: the user content is split into runs of ordinary parts
  // (flushed as user messages) and tool messages, exactly as they appear.
  Result<void> user_blocks(array blocks, const std::string& p) {
    std::string parts;  // the pending run of ordinary parts, comma-separated
    auto flush = [&] {
      if (parts.empty()) return;
      w_.begin_object().key("role").value("user").key("content").raw("[" + parts + "]");
      w_.end_object();
      parts.clear();
    };
    size_t j = 0;
    for (element block : blocks) {
      const std::string bp = path(p, j++);
      const std::string_view type = str_or(block, "type");
      if (type == "tool_result") {
        flush();
        FRUGAL_TRY(tool_message(block, bp));
        continue;
      }
      if (!parts.empty()) parts += ',';
      OpenAiBodyBuilder run(parts, opt_);
      if (type == "text") {
        run.text_part(block);
      } else if (type == "image") {
        FRUGAL_TRY(run.image_part(block, bp));
      } else {
        return not_for_openai(bp + ".type", "a '" + std::string(type) + "' block");
      }
    }
    flush();
    return {};
  }

  Result<void> tool_message(element block, const std::string& p) {
    std::string text;
    bool is_error = false;
    element v;
    if (!block["is_error"].get(v) && v.is_bool()) is_error = v.get_bool().value_unsafe();
    if (is_error) text = "Error: ";  // OpenAI has no error flag; keep the signal in-band
    if (!block["content"].get(v)) {
      if (v.is_string()) {
        text += v.get_string().value_unsafe();
      } else {
        size_t k = 0;
        bool first = true;
        for (element inner : simdjson::dom::array(v.get_array().value_unsafe())) {
          const std::string_view t = str_or(inner, "type");
          if (t != "text")
            return not_for_openai(path(p + ".content", k) + ".type",
                                  "a '" + std::string(t) + "' block inside tool_result");
          if (!first) text += '\n';
          text += str_or(inner, "text");
          first = false;
          ++k;
        }
      }
    }
    w_.begin_object().key("role").value("tool");
    w_.key("tool_call_id").value(str_or(block, "tool_use_id"));
    w_.key("content").value(text).end_object();
    return {};
  }

  Result<void> assistant_blocks(array blocks, const std::string& p) {
    std::string text;
    std::string calls;
    JsonWriter cw(calls);
    bool any_text = false;
    cw.begin_array();
    size_t j = 0;
    for (element block : blocks) {
      const std::string bp = path(p, j++);
      const std::string_view type = str_or(block, "type");
      if (type == "text") {
        text += str_or(block, "text");
        any_text = true;
      } else if (type == "tool_use") {
        cw.begin_object().key("id").value(str_or(block, "id")).key("type").value("function");
        cw.key("function").begin_object().key("name").value(str_or(block, "name"));
        cw.key("arguments").value(to_json(block["input"].value_unsafe()));
        cw.end_object().end_object();
      } else if (type == "thinking" || type == "redacted_thinking") {
        // Earlier reasoning is not replayed to OpenAI-style models (they never accept
        // it back), so dropping it changes nothing the upstream could have used.
      } else {
        return not_for_openai(bp + ".type", "a '" + std::string(type) + "' block");
      }
    }
    cw.end_array();
    w_.begin_object().key("role").value("assistant").key("content");
    const bool has_calls = calls.size() > 2;
    if (any_text || !has_calls) w_.value(text); else w_.null();
    if (has_calls) w_.key("tool_calls").raw(calls);
    w_.end_object();
    return {};
  }

  JsonWriter w_;
  const AnthropicToOpenAiOptions& opt_;
};

constexpr std::array<std::string_view, 14> kKnownTopLevel = {
    "model",  "max_tokens", "messages", "system",   "tools",    "tool_choice", "stop_sequences",
    "temperature", "top_p", "top_k",    "metadata", "stream",   "thinking",    "service_tier"};

const char* effort_for_budget(int64_t budget) {
  if (budget < 4096) return "low";
  if (budget < 16384) return "medium";
  return "high";
}

}  // namespace

Result<std::string> anthropic_to_openai_request(element body, std::string_view upstream_model,
                                                const AnthropicToOpenAiOptions& opt) {
  auto parsed = parse_anthropic_request(body);
  if (!parsed) return std::move(parsed).error();
  const AnthropicRequestInfo& info = *parsed;

  for (auto field : info.root) {
    bool known = false;
    for (auto k : kKnownTopLevel) known = known || k == field.key;
    if (!known) return not_for_openai(std::string(field.key), "this parameter");
  }

  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("model").value(upstream_model);
  w.key("messages").begin_array();
  {
    std::string msgs;
    OpenAiBodyBuilder b(msgs, opt);
    element v;
    if (!body["system"].get(v) && !v.is_null()) FRUGAL_TRY(b.system(v));
    size_t i = 0;
    for (element m : simdjson::dom::array(body["messages"].get_array().value_unsafe()))
      FRUGAL_TRY(b.message(m, path("messages", i++)));
    out += msgs;
  }
  w.end_array();

  w.key(opt.use_max_completion_tokens ? "max_completion_tokens" : "max_tokens").value(info.max_tokens);
  element v;
  if (!body["temperature"].get(v) && !v.is_null()) w.key("temperature").raw(to_json(v));
  if (!body["top_p"].get(v) && !v.is_null()) w.key("top_p").raw(to_json(v));
  if (!body["top_k"].get(v) && !v.is_null()) {
    if (!opt.upstream_supports_top_k) return not_for_openai("top_k", "top_k sampling");
    w.key("top_k").raw(to_json(v));
  }
  if (!info.stop_sequences.empty()) {
    w.key("stop").begin_array();
    for (const auto& s : info.stop_sequences) w.value(s);
    w.end_array();
  }
  if (info.thinking_enabled) {
    if (!opt.upstream_supports_reasoning_effort)
      return not_for_openai("thinking", "extended thinking");
    w.key("reasoning_effort").value(effort_for_budget(*int_field(body["thinking"].value_unsafe(), "budget_tokens")));
  }

  if (!body["tools"].get(v) && !v.is_null() && info.has_tools) {
    w.key("tools").begin_array();
    size_t i = 0;
    for (element t : simdjson::dom::array(v.get_array().value_unsafe())) {
      const std::string_view type = str_or(t, "type", "custom");
      if (type != "custom")
        return not_for_openai(path("tools", i) + ".type", "the server tool '" + std::string(type) + "'");
      w.begin_object().key("type").value("function").key("function").begin_object();
      w.key("name").value(str_or(t, "name"));
      if (has(t, "description")) w.key("description").value(str_or(t, "description"));
      w.key("parameters").raw(to_json(t["input_schema"].value_unsafe()));
      w.end_object().end_object();
      ++i;
    }
    w.end_array();
  }
  if (!body["tool_choice"].get(v) && !v.is_null()) {
    const std::string_view type = str_or(v, "type");
    w.key("tool_choice");
    if (type == "auto") w.value("auto");
    else if (type == "any") w.value("required");
    else if (type == "none") w.value("none");
    else {
      w.begin_object().key("type").value("function");
      w.key("function").begin_object().key("name").value(str_or(v, "name")).end_object();
      w.end_object();
    }
    element dp;
    if (!v["disable_parallel_tool_use"].get(dp) && dp.is_bool() && dp.get_bool().value_unsafe() &&
        info.has_tools)
      w.key("parallel_tool_calls").value(false);
  }
  if (!info.user_id.empty()) w.key("user").value(info.user_id);
  if (info.stream) {
    w.key("stream").value(true);
    w.key("stream_options").begin_object().key("include_usage").value(true).end_object();
  }
  w.end_object();
  return out;
}

}  // namespace frugal
