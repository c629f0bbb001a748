#include "backends/engine/format/chat_template.h"

namespace frugal::engine {
namespace {

Error chat_error(const std::string& msg) {
  return make_error(ErrorKind::kInvalidRequest, "chat template: " + msg, "messages");
}

// Jinja's `| trim`: strips leading and trailing whitespace.
std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

// Text of token `key`'s id from the vocabulary array, or fallback.
std::string token_text(const GgufFile& f, const char* key, const GgufValue* tokens, const char* fallback) {
  auto id = f.get_u32(key);
  if (id.ok() && tokens != nullptr && *id < tokens->items.size()) return tokens->items[*id].str;
  return fallback;
}

}  // namespace

ChatTemplate::ChatTemplate(ChatTemplateKind kind, std::string bos_text, std::string eos_text)
    : kind_(kind), bos_(std::move(bos_text)), eos_(std::move(eos_text)) {
  if (bos_.empty()) bos_ = kind == ChatTemplateKind::kLlama3 ? "<|begin_of_text|>" : kind == ChatTemplateKind::kLlama2 ? "<s>" : "";
  if (eos_.empty()) eos_ = kind == ChatTemplateKind::kLlama2 ? "</s>" : "";
}

ChatTemplateKind ChatTemplate::detect(std::string_view tmpl, std::string_view arch,
                                      std::span<const std::string> special_tokens) {
  if (contains(tmpl, "<|start_header_id|>")) return ChatTemplateKind::kLlama3;
  if (contains(tmpl, "<|im_start|>")) return ChatTemplateKind::kChatml;
  if (contains(tmpl, "[INST]")) return ChatTemplateKind::kLlama2;
  for (const auto& t : special_tokens) {
    if (t == "<|start_header_id|>") return ChatTemplateKind::kLlama3;
  }
  for (const auto& t : special_tokens) {
    if (t == "<|im_start|>") return ChatTemplateKind::kChatml;
  }
  return arch == "qwen2" ? ChatTemplateKind::kChatml : ChatTemplateKind::kLlama2;
}

ChatTemplate ChatTemplate::from_gguf(const GgufFile& f) {
  std::string tmpl;
  if (const GgufValue* v = f.find("tokenizer.chat_template"); v != nullptr && v->type == GgufValueType::kString) {
    tmpl = v->str;
  }
  const GgufValue* tokens = f.get_array("tokenizer.ggml.tokens");
  std::vector<std::string> specials;
  if (tokens != nullptr && tokens->elem_type == GgufValueType::kString) {
    for (const auto& t : tokens->items) {
      if (t.str == "<|start_header_id|>" || t.str == "<|im_start|>") specials.push_back(t.str);
    }
  }
  const ChatTemplateKind kind = detect(tmpl, f.architecture(), specials);
  const char* bos = kind == ChatTemplateKind::kLlama3 ? "<|begin_of_text|>" : kind == ChatTemplateKind::kLlama2 ? "<s>" : "";
  const char* eos = kind == ChatTemplateKind::kLlama2 ? "</s>" : "";
  if (kind == ChatTemplateKind::kChatml) return ChatTemplate(kind, "", "");
  return ChatTemplate(kind, token_text(f, "tokenizer.ggml.bos_token_id", tokens, bos),
                      token_text(f, "tokenizer.ggml.eos_token_id", tokens, eos));
}

const char* ChatTemplate::name() const {
  switch (kind_) {
    case ChatTemplateKind::kLlama2: return "llama2";
    case ChatTemplateKind::kLlama3: return "llama3";
    case ChatTemplateKind::kChatml: return "chatml";
  }
  return "unknown";
}

Result<std::string> ChatTemplate::apply_llama2(std::span<const ChatMessage> messages) const {
  // Meta's format: the system prompt is folded into the first user turn; every user
  // turn opens with BOS, every assistant turn closes with EOS; turns must alternate.
  std::string out;
  std::string system;
  size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    system = trim(messages[0].content);
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool user_turn = (i - first) % 2 == 0;
    if (m.role == "system") return chat_error("llama-2 accepts a system message only as the first message");
    if (m.role != "user" && m.role != "assistant") return chat_error("llama-2 has no role '" + m.role + "'");
    if ((m.role == "user") != user_turn) {
      return chat_error("llama-2 conversation roles must alternate user/assistant/user/...");
    }
    if (user_turn) {
      std::string content = trim(m.content);
      if (i == first && !system.empty()) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
      out += bos_ + "[INST] " + content + " [/INST]";
    } else {
      out += " " + trim(m.content) + " " + eos_;
    }
  }
  return out;
}

Result<std::string> ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  for (const auto& m : messages) {
    if (m.role.empty()) return chat_error("message with an empty role");
  }
  switch (kind_) {
    case ChatTemplateKind::kLlama2:
      // The prompt already ends in "[/INST]", where the assistant's answer begins.
      return apply_llama2(messages);
    case ChatTemplateKind::kLlama3: {
      std::string out = bos_;
      for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    }
    case ChatTemplateKind::kChatml: {
      std::string out;
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    }
  }
  return chat_error("unknown template kind");
}

}  // namespace frugal::engine
