// Golden tests for backends/engine/format/chat_template.h, detection from GGUF
// metadata, and the prompt -> tokens path (special tokens parsed as whole tokens).
#include "backends/engine/format/chat_template.h"

#include <doctest/doctest.h>

#include "backends/engine/format/gguf_writer.h"
#include "backends/engine/format/tokenizer.h"
#include "tests/engine/format/fixtures.h"

using namespace frugal::engine;

namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are terse."},
    {"user", "Hi there "},
    {"assistant", " Hello."},
    {"user", "What is 2+2?"},
};

GgufFile file_with(TokenizerKind kind, const std::string& arch, bool drop_template) {
  GgufWriter w;
  w.set_string("general.architecture", arch);
  REQUIRE(add_synthetic_tokenizer(w, kind, 1000).ok());
  if (drop_template) w.set_string("tokenizer.chat_template", "{{ messages }}");
  auto bytes = w.serialize();
  auto f = GgufFile::parse_bytes(bytes->data(), bytes->size());
  REQUIRE(f.ok());
  return std::move(f).value();
}

}  // namespace

TEST_CASE("chat template: llama-2 golden") {
  ChatTemplate t(ChatTemplateKind::kLlama2);
  auto p = t.apply(kConversation, true);
  REQUIRE(p.ok());
  CHECK(*p ==
        "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello. </s>"
        "<s>[INST] What is 2+2? [/INST]");
  auto no_sys = t.apply(std::vector<ChatMessage>{{"user", "Hello"}}, true);
  CHECK(no_sys.value() == "<s>[INST] Hello [/INST]");
  CHECK_FALSE(t.apply(std::vector<ChatMessage>{{"user", "a"}, {"user", "b"}}, true).ok());
  CHECK_FALSE(t.apply(std::vector<ChatMessage>{{"user", "a"}, {"system", "b"}}, true).ok());
  CHECK_FALSE(t.apply(std::vector<ChatMessage>{{"tool", "a"}}, true).ok());
  CHECK_FALSE(t.apply(std::vector<ChatMessage>{{"", "a"}}, true).ok());
}

TEST_CASE("chat template: llama-3 golden") {
  ChatTemplate t(ChatTemplateKind::kLlama3);
  auto p = t.apply(kConversation, true);
  REQUIRE(p.ok());
  CHECK(*p ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
  auto no_gen = t.apply(std::vector<ChatMessage>{{"user", "x"}}, false);
  CHECK(no_gen.value() == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST_CASE("chat template: chatml golden") {
  ChatTemplate t(ChatTemplateKind::kChatml);
  auto p = t.apply(kConversation, true);
  REQUIRE(p.ok());
  CHECK(*p ==
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there <|im_end|>\n"
        "<|im_start|>assistant\n Hello.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n");
  CHECK(t.apply(std::vector<ChatMessage>{}, true).value() == "<|im_start|>assistant\n");
}

TEST_CASE("chat template: detection from metadata, vocabulary and architecture") {
  CHECK(ChatTemplate::from_gguf(file_with(TokenizerKind::kSpm, "llama", false)).kind() == ChatTemplateKind::kLlama2);
  CHECK(ChatTemplate::from_gguf(file_with(TokenizerKind::kBpeLlama3, "llama", false)).kind() ==
        ChatTemplateKind::kLlama3);
  CHECK(ChatTemplate::from_gguf(file_with(TokenizerKind::kBpeQwen2, "qwen2", false)).kind() ==
        ChatTemplateKind::kChatml);
  // Unrecognisable template text: fall back to the vocabulary's special tokens...
  CHECK(ChatTemplate::from_gguf(file_with(TokenizerKind::kBpeLlama3, "llama", true)).kind() ==
        ChatTemplateKind::kLlama3);
  CHECK(ChatTemplate::from_gguf(file_with(TokenizerKind::kBpeQwen2, "llama", true)).kind() ==
        ChatTemplateKind::kChatml);
  // ...then the architecture.
  CHECK(ChatTemplate::detect("", "qwen2", {}) == ChatTemplateKind::kChatml);
  CHECK(ChatTemplate::detect("", "llama", {}) == ChatTemplateKind::kLlama2);
  CHECK(std::string(ChatTemplate(ChatTemplateKind::kChatml).name()) == "chatml");
}

TEST_CASE("chat template: prompt tokenises with specials as whole tokens") {
  const GgufFile f = file_with(TokenizerKind::kBpeLlama3, "llama", false);
  auto tok = Tokenizer::from_gguf(f);
  REQUIRE(tok.ok());
  const ChatTemplate t = ChatTemplate::from_gguf(f);
  const auto prompt = t.apply(std::vector<ChatMessage>{{"user", "hello"}}, true);
  REQUIRE(prompt.ok());
  const auto ids = tok->encode(*prompt, false, true);
  REQUIRE(ids.size() > 4);
  CHECK(ids[0] == tok->bos());
  CHECK(ids[1] == tok->find_token("<|start_header_id|>").value());
  CHECK(tok->decode(ids, true) == *prompt);
}

TEST_CASE("chat template: llama-2 fixture prompt tokens") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  auto f = GgufFile::open(frugal::engine::testing::fixture_path("llama-2-tiny-random.gguf"));
  REQUIRE(f.ok());
  const ChatTemplate t = ChatTemplate::from_gguf(*f);
  CHECK(t.kind() == ChatTemplateKind::kLlama2);
  auto tok = Tokenizer::from_gguf(*f);
  REQUIRE(tok.ok());
  const auto prompt = t.apply(std::vector<ChatMessage>{{"user", "Hi"}}, true);
  const auto ids = tok->encode(prompt.value(), false, true);
  // <s> ▁[ INST ] ... as the reference Llama-2 chat prompts begin.
  REQUIRE(ids.size() > 4);
  CHECK(std::vector<TokenId>(ids.begin(), ids.begin() + 4) == std::vector<TokenId>{1, 518, 25580, 29962});
}
