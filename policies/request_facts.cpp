#include "policies/request_facts.h"

namespace frugal::policies {

ChatFacts extract_chat_facts(const ChatRequest& req) {
  ChatFacts cf;
  for (const auto& m : req.messages) {
    const std::string t = m.text();
    cf.prompt_chars += static_cast<int64_t>(t.size());
    if (m.role == "system" || m.role == "developer") {
      if (!cf.system_prompt.empty()) cf.system_prompt += '\n';
      cf.system_prompt += t;
    } else if (m.role == "user") {
      cf.last_user_message = t;
    }
  }
  cf.prompt_tokens_estimate = (cf.prompt_chars + 3) / 4;
  if (!req.response_format_json.empty()) {
    simdjson::dom::parser parser;
    simdjson::dom::element rf;
    if (!parser.parse(req.response_format_json).get(rf)) {
      std::string_view type;
      if (!rf["type"].get(type)) {
        if (type == "text") cf.response_format = ResponseFormatType::kText;
        else if (type == "json_object") cf.response_format = ResponseFormatType::kJsonObject;
        else if (type == "json_schema") cf.response_format = ResponseFormatType::kJsonSchema;
      }
      simdjson::dom::element schema;
      if (cf.response_format == ResponseFormatType::kJsonSchema &&
          !rf.at_pointer("/json_schema/schema").get(schema))
        cf.response_schema_json = simdjson::minify(schema);
    }
  }
  return cf;
}

void apply_chat_facts(const ChatFacts& cf, RequestFacts& facts) {
  facts.system_prompt = cf.system_prompt;
  facts.last_user_message = cf.last_user_message;
  facts.prompt_chars = cf.prompt_chars;
  facts.prompt_tokens_estimate = cf.prompt_tokens_estimate;
  facts.response_format = cf.response_format;
}

}  // namespace frugal::policies
