#pragma once
// TokenText over the format layer's Tokenizer: what the scheduler needs to turn sampled
// ids into output text. piece() returns a token's raw bytes (" Hello" for "▁Hello",
// one byte for "<0xE2>"); the scheduler's StopMatcher holds back incomplete UTF-8 tails,
// so text events never end inside a code point. Control tokens (</s>, <|eot_id|>)
// contribute no text.
//
// Immutable; shared by the engine thread and request threads.
#include "backends/engine/engine.h"
#include "backends/engine/format/tokenizer.h"

namespace frugal::engine {

class TokenizerText final : public TokenText {
 public:
  explicit TokenizerText(Tokenizer tokenizer) : tokenizer_(std::move(tokenizer)) {}
  std::string piece(int32_t token) const override { return tokenizer_.token_to_piece(token); }
  bool is_end_of_generation(int32_t token) const override { return tokenizer_.is_end_of_generation(token); }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  Tokenizer tokenizer_;
};

}  // namespace frugal::engine
