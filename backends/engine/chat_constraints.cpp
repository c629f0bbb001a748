#include "backends/engine/chat_constraints.h"

#include <simdjson.h>

#include <algorithm>

#include "backends/engine/json_schema_grammar.h"
#include "core/json.h"

namespace frugal::engine {
namespace {

Error invalid(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param));
}

Error unsupported(std::string param, const std::string& what) {
  return make_error(ErrorKind::kInvalidRequest, "The local engine does not support " + what + ".", std::move(param),
                    "unsupported_parameter");
}

bool valid_tool_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

struct ResponseFormat {
  enum class Kind { kText, kAnyObject, kSchema };
  Kind kind = Kind::kText;
  std::string schema;  // kSchema: the schema's JSON text
};

Result<ResponseFormat> response_format(const ChatRequest& req) {
  ResponseFormat f;
  if (req.response_format_json.empty() || req.response_format_json == "null") return f;
  simdjson::dom::parser p;
  simdjson::dom::element rf;
  std::string_view type;
  if (p.parse(req.response_format_json).get(rf) || rf["type"].get_string().get(type))
    return invalid("response_format.type", "Invalid 'response_format': expected an object with a string 'type'.");
  if (type == "text") return f;
  f.kind = ResponseFormat::Kind::kAnyObject;
  if (type == "json_object") return f;
  if (type != "json_schema")
    return invalid("response_format.type", "Invalid value for 'response_format.type': '" + std::string(type) +
                                               "'. Supported values are: 'text', 'json_object' and 'json_schema'.");
  simdjson::dom::element js, schema;
  if (rf["json_schema"].get(js) || !js.is_object())
    return invalid("response_format.json_schema", "Missing required parameter: 'response_format.json_schema'.");
  if (js["schema"].get(schema) || schema.is_null()) return f;
  f.kind = ResponseFormat::Kind::kSchema;
  f.schema = simdjson::to_string(schema);
  return f;
}

// The grammar cached under `key`, else compiled by `compile` (and cached).
template <class Compile>
Result<std::shared_ptr<Grammar>> grammar_for(GrammarCache* cache, const std::string& key,
                                             const std::shared_ptr<const VocabTrie>& vocab, Compile compile) {
  if (cache != nullptr)
    if (auto g = cache->find(key)) return g;
  Result<ByteNfa> nfa = compile();
  if (!nfa) return std::move(nfa).error();
  auto g = std::make_shared<Grammar>(std::move(nfa).value(), vocab);
  if (cache != nullptr) cache->insert(key, g);
  return g;
}

std::string tools_prompt(const std::vector<const ToolDef*>& tools, bool allow_text) {
  std::string out =
      "You can call functions. To call one, reply with only a JSON object of this form and nothing else:\n"
      "{\"name\":\"<function name>\",\"arguments\":{<the arguments>}}\n";
  out += allow_text ? "If no function fits, answer in plain text instead.\n" : "You must call one of them.\n";
  out += "Functions:\n";
  for (const ToolDef* t : tools) {
    JsonWriter w(out);
    w.begin_object().key("name").value(t->name);
    if (!t->description.empty()) w.key("description").value(t->description);
    if (!t->parameters_json.empty()) w.key("parameters").raw(t->parameters_json);
    w.end_object();
    out += '\n';
  }
  return out;
}

}  // namespace

std::shared_ptr<Grammar> GrammarCache::find(const std::string& key) {
  std::lock_guard lock(mu_);
  for (const auto& [k, g] : entries_)
    if (k == key) return g;
  return nullptr;
}

void GrammarCache::insert(const std::string& key, std::shared_ptr<Grammar> grammar) {
  std::lock_guard lock(mu_);
  for (const auto& [k, g] : entries_)
    if (k == key) return;
  if (entries_.size() >= kEntries) entries_.pop_front();
  entries_.emplace_back(key, std::move(grammar));
}

size_t GrammarCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

Result<OutputConstraint> output_constraint(const ChatRequest& req, std::shared_ptr<const VocabTrie> vocab,
                                           GrammarCache* cache) {
  OutputConstraint out;
  auto format = response_format(req);
  if (!format) return std::move(format).error();
  const bool json = format->kind != ResponseFormat::Kind::kText;

  // tool_choice: none | auto | required | {"type":"function","function":{"name":...}}.
  std::string choice = req.tools.empty() ? "none" : "auto";
  std::string named;
  if (!req.tool_choice_json.empty() && req.tool_choice_json != "null") {
    simdjson::dom::parser p;
    simdjson::dom::element tc;
    std::string_view s;
    if (p.parse(req.tool_choice_json).get(tc)) return invalid("tool_choice", "Invalid 'tool_choice'.");
    if (!tc.get_string().get(s)) {
      if (s != "none" && s != "auto" && s != "required")
        return invalid("tool_choice", "Invalid value for 'tool_choice': '" + std::string(s) +
                                          "'. Supported values are: 'none', 'auto' and 'required'.");
      choice = std::string(s);
    } else if (tc.is_object()) {
      std::string_view type, name;
      if (tc["type"].get_string().get(type) || type != "function")
        return invalid("tool_choice.type", "Invalid 'tool_choice.type': expected 'function'.");
      if (tc["function"]["name"].get_string().get(name))
        return invalid("tool_choice.function.name", "Missing required parameter: 'tool_choice.function.name'.");
      choice = "named";
      named = std::string(name);
    } else {
      return invalid("tool_choice", "Invalid type for 'tool_choice': expected a string or an object.");
    }
    if (req.tools.empty() && choice != "none")
      return invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.");
  }

  std::vector<const ToolDef*> tools;
  for (size_t i = 0; i < req.tools.size(); ++i) {
    const ToolDef& t = req.tools[i];
    if (!valid_tool_name(t.name))
      return invalid("tools[" + std::to_string(i) + "].function.name",
                     "Invalid 'tools[" + std::to_string(i) +
                         "].function.name': expected a string of letters, digits, '_' or '-', at most 64 long.");
    if (choice == "named" && t.name != named) continue;
    tools.push_back(&t);
  }
  if (choice == "named" && tools.empty())
    return invalid("tool_choice.function.name", "No tool named '" + named + "' in 'tools'.");

  if (choice == "none") {
    if (!json) return out;
    const std::string key = format->kind == ResponseFormat::Kind::kSchema ? "schema\n" + format->schema : "object";
    auto g = grammar_for(cache, key, vocab, [&]() -> Result<ByteNfa> {
      if (format->kind == ResponseFormat::Kind::kAnyObject) return json_object_nfa();
      return json_schema_nfa(format->schema, "response_format.json_schema.schema");
    });
    if (!g) return std::move(g).error();
    out.grammar = std::move(g).value();
    return out;
  }
  const bool allow_text = choice == "auto";
  if (allow_text && json)
    return unsupported("response_format", "a JSON response_format together with tool_choice 'auto' (choose "
                                          "'required', a function, or 'none')");
  std::vector<ToolSchema> schemas;
  std::string key = allow_text ? "tools auto" : "tools";
  for (size_t i = 0; i < req.tools.size(); ++i) {
    const ToolDef& t = req.tools[i];
    if (choice == "named" && t.name != named) continue;
    schemas.push_back({t.name, t.parameters_json, "tools[" + std::to_string(i) + "].function.parameters"});
    key += "\n" + t.name + "\n" + t.parameters_json;
  }
  auto g = grammar_for(cache, key, vocab, [&] { return tool_call_nfa(schemas, allow_text); });
  if (!g) return std::move(g).error();
  out.grammar = std::move(g).value();
  out.tools = allow_text ? ToolOutput::kAuto : ToolOutput::kRequired;
  out.tools_prompt = tools_prompt(tools, allow_text);
  return out;
}

Result<std::vector<ChatMessage>> chat_messages(const ChatRequest& req, const std::string& tools_prompt) {
  std::vector<ChatMessage> out;
  out.reserve(req.messages.size() + 1);
  // A tool result is a user turn; it merges with a user turn next to it.
  bool last_user = false, last_from_tool = false;
  auto add_user = [&](std::string text, bool from_tool) {
    if (last_user && (from_tool || last_from_tool)) {
      out.back().content += "\n\n" + text;
    } else {
      out.push_back({"user", std::move(text)});
    }
    last_user = true;
    last_from_tool = from_tool;
  };
  for (size_t i = 0; i < req.messages.size(); ++i) {
    const Message& m = req.messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    for (const ContentPart& part : m.parts) {
      if (part.kind == ContentPart::Kind::kImage)
        return unsupported(at + ".content", "image inputs");
      if (part.kind == ContentPart::Kind::kOther) return unsupported(at + ".content", "non-text content parts");
    }
    if (m.role == "tool" || m.role == "function") {
      // Name the tool from the call this answers, when an earlier message has it.
      std::string name = m.name;
      for (const Message& prev : req.messages)
        for (const ToolCall& tc : prev.tool_calls)
          if (!m.tool_call_id.empty() && tc.id == m.tool_call_id) name = tc.name;
      add_user("Result of " + (name.empty() ? std::string("the function") : name) + ": " + m.text(), true);
      continue;
    }
    if (m.role == "user") {
      add_user(m.text(), false);
      continue;
    }
    last_user = false;
    std::string content = m.text();
    for (const ToolCall& tc : m.tool_calls) {
      if (!content.empty()) content += '\n';
      content += tool_call_prefix(tc.name) + (tc.arguments.empty() ? std::string("{}") : tc.arguments) + "}";
    }
    out.push_back({m.role == "developer" ? "system" : m.role, std::move(content)});
  }
  if (!tools_prompt.empty()) {
    if (!out.empty() && out[0].role == "system") out[0].content += "\n\n" + tools_prompt;
    else out.insert(out.begin(), ChatMessage{"system", tools_prompt});
  }
  return out;
}

}  // namespace frugal::engine
