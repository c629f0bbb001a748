#pragma once
// Chat prompt formatting for the three template families GGUF chat models ship with.
// The Jinja template in tokenizer.chat_template is not executed; it is recognised by
// its markers and rendered by the matching built-in formatter:
//   kLlama2: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>...
//   kLlama3: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>...
//   kChatml: <|im_start|>{role}\n{content}<|im_end|>\n...
// The output contains special-token text (BOS included where the template has it), so
// tokenize it with parse_special = true and add_bos = false.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/engine/format/gguf.h"
#include "core/error.h"

namespace frugal::engine {

enum class ChatTemplateKind { kLlama2, kLlama3, kChatml };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (llama-3 / chatml accept any role)
  std::string content;
};

class ChatTemplate {
 public:
  explicit ChatTemplate(ChatTemplateKind kind, std::string bos_text = "", std::string eos_text = "");

  // Picks the family from tokenizer.chat_template markers; without a template, from
  // the vocabulary's special tokens, then the architecture (qwen2 -> chatml, else
  // llama-2). BOS/EOS text comes from the vocabulary.
  static ChatTemplate from_gguf(const GgufFile& file);
  // The detection rule alone, for callers that have the pieces.
  static ChatTemplateKind detect(std::string_view template_text, std::string_view arch,
                                 std::span<const std::string> special_tokens);

  ChatTemplateKind kind() const { return kind_; }
  const char* name() const;  // "llama2", "llama3", "chatml"

  // Errors (kInvalidRequest): empty roles, unknown roles for llama-2, a system message
  // that is not first, or llama-2 turns that do not alternate user/assistant.
  Result<std::string> apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

 private:
  Result<std::string> apply_llama2(std::span<const ChatMessage> messages) const;

  ChatTemplateKind kind_;
  std::string bos_;
  std::string eos_;
};

}  // namespace frugal::engine
