// Tests for backends/engine/format/tokenizer.h: the SPM tokenizer against
// SentencePiece's own output on the fixture vocabulary, byte-level BPE on a hand-built
// vocabulary whose ids are worked out by hand, pre-tokenizer regex differences,
// special tokens, decode round trips on random UTF-8, and streaming decode.
#include "backends/engine/format/tokenizer.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <fstream>
#include <random>

#include "backends/engine/format/gguf_writer.h"
#include "backends/engine/format/unicode.h"
#include "tests/engine/format/fixtures.h"

using namespace frugal::engine;

namespace {

Tokenizer load_tokenizer(const GgufWriter& w) {
  auto bytes = w.serialize();
  REQUIRE(bytes.ok());
  auto f = GgufFile::parse_bytes(bytes->data(), bytes->size());
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  auto t = Tokenizer::from_gguf(*f);
  REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
  return std::move(t).value();
}

Tokenizer synthetic(TokenizerKind kind, int n_vocab = 2000) {
  GgufWriter w;
  REQUIRE(add_synthetic_tokenizer(w, kind, n_vocab).ok());
  return load_tokenizer(w);
}

// Tokens 0..255: GPT-2 byte chars in byte order, so printable ASCII c has id c and
// space ('Ġ') has id 32. Merged tokens follow from 256 in merge order.
Tokenizer hand_bpe(const std::string& pre, const std::vector<std::pair<std::string, std::string>>& merges,
                   const std::vector<std::string>& specials = {}, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(unicode::bytes_to_gpt2(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  std::vector<std::string> merge_strings;
  for (const auto& [l, r] : merges) {
    tokens.push_back(l + r);
    types.push_back(1);
    merge_strings.push_back(l + " " + r);
  }
  for (const auto& s : specials) {
    tokens.push_back(s);
    types.push_back(3);
  }
  for (const auto& s : extra) {  // normal tokens no merge produces
    tokens.push_back(s);
    types.push_back(1);
  }
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", merge_strings);
  return load_tokenizer(w);
}

std::string random_utf8(std::mt19937& rng, size_t n_chars, bool allow_spm_space) {
  // Mix of ASCII (with spaces, newlines, digits, apostrophes), Latin-1, CJK, emoji.
  std::uniform_int_distribution<int> cls(0, 9);
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    uint32_t cp;
    switch (cls(rng)) {
      case 0: cp = " \n\t'"[rng() % 4]; break;
      case 1: cp = '0' + rng() % 10; break;
      case 2: case 3: case 4: cp = 'a' + rng() % 26; break;
      case 5: cp = 0x20 + rng() % 0x5F; break;
      case 6: cp = 0xA0 + rng() % 0x160; break;
      case 7: cp = 0x4E00 + rng() % 0x5000; break;
      case 8: cp = 0x1F300 + rng() % 0x300; break;
      default: cp = 0x80 + rng() % 0x2000; break;
    }
    if (cp == 0x2581 && !allow_spm_space) cp = 'x';
    unicode::append_utf8(s, cp);
  }
  return s;
}

}  // namespace

TEST_CASE("spm: reproduces SentencePiece on every fixture vector") {
  FRUGAL_REQUIRE_FIXTURE("llama-2-tiny-random.gguf");
  FRUGAL_REQUIRE_FIXTURE("llama2-spm-vectors.jsonl");
  auto f = GgufFile::open(frugal::engine::testing::fixture_path("llama-2-tiny-random.gguf"));
  REQUIRE(f.ok());
  auto tok = Tokenizer::from_gguf(*f);
  REQUIRE_MESSAGE(tok.ok(), (tok.ok() ? "" : tok.error().message));
  CHECK(tok->model() == TokenizerModel::kSpm);
  CHECK(tok->bos() == 1);
  CHECK(tok->eos() == 2);
  CHECK(tok->add_bos_default());
  std::ifstream in(frugal::engine::testing::fixture_path("llama2-spm-vectors.jsonl"));
  std::string line;
  simdjson::ondemand::parser parser;
  int lines = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::padded_string padded(line);
    auto doc = parser.iterate(padded);
    std::string_view text;
    REQUIRE(doc["text"].get_string().get(text) == simdjson::SUCCESS);
    const std::string text_copy(text);
    std::vector<TokenId> want;
    simdjson::ondemand::array ids;
    REQUIRE(doc["ids"].get_array().get(ids) == simdjson::SUCCESS);
    for (auto v : ids) want.push_back(static_cast<TokenId>(int64_t(v)));
    CAPTURE(text_copy);
    CHECK(tok->encode(text_copy, false, false) == want);
    auto with_bos = tok->encode(text_copy, true, false);
    CHECK(with_bos.front() == 1);
    if (text_copy.find("\xE2\x96\x81") == std::string::npos) CHECK(tok->decode(want) == text_copy);
    ++lines;
  }
  CHECK(lines >= 10);
  // Control tokens in text: only with parse_special; the text after them gets the
  // dummy prefix, as in llama.cpp ("<s>[INST]" -> <s> "▁[" "INST" "]").
  CHECK(tok->encode("<s>[INST]", false, true) == std::vector<TokenId>{1, 518, 25580, 29962});
  CHECK(tok->encode("<s>", false, false) != std::vector<TokenId>{1});
  CHECK(tok->encode("", true, false) == std::vector<TokenId>{1});
  // Byte fallback: a character outside the vocabulary becomes its UTF-8 bytes.
  const auto llama = tok->encode("\xF0\x9F\xA6\x99", false, false);  // U+1F999
  REQUIRE(llama.size() == 5);
  CHECK(tok->token_text(llama[1]) == "<0xF0>");
  CHECK(tok->decode(llama) == "\xF0\x9F\xA6\x99");
  SUBCASE("streaming decode holds partial UTF-8") {
    const std::string text = "Llamas \xF0\x9F\xA6\x99 and caf\xC3\xA9 \xE4\xB8\x96\xE7\x95\x8C!";
    const auto ids = tok->encode(text, true, false);
    StreamDecoder stream(*tok);
    std::string joined;
    for (TokenId id : ids) {
      const std::string chunk = stream.push(id);
      CHECK(unicode::is_valid_utf8(chunk));
      joined += chunk;
    }
    joined += stream.finish();
    CHECK(joined == " " + text);  // a continuation keeps SPM's leading space
  }
  SUBCASE("random UTF-8 round-trips") {
    std::mt19937 rng(11);
    for (int k = 0; k < 200; ++k) {
      const std::string s = random_utf8(rng, 1 + rng() % 40, false);
      CAPTURE(s);
      CHECK(tok->decode(tok->encode(s, true, false)) == s);
    }
  }
}

TEST_CASE("bpe: hand-computed ids on a hand-built vocabulary") {
  // 256 "Ġ t" -> "Ġt", 257 "h e" -> "he", 258 "Ġt he" -> "Ġthe", 259 "l l", 260 "e ll",
  // 261 "Ġ w", 262 "' s", 263 "1 2", 264 "2 3", 265 "3 4", 266 "' S"
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}, {"l", "l"}, {"e", "ll"},
      {"\xC4\xA0", "w"}, {"'", "s"}, {"1", "2"},         {"2", "3"}, {"3", "4"}, {"'", "S"}};
  const Tokenizer gpt2 = hand_bpe("gpt2", merges, {"<|end|>"});
  const Tokenizer llama3 = hand_bpe("llama-bpe", merges);
  const Tokenizer qwen2 = hand_bpe("qwen2", merges);
  CHECK(gpt2.model() == TokenizerModel::kBpe);
  // "hello the" -> words "hello", " the": h e l l o -> (h,e)=257 rank1, (l,l)=259 rank3
  // -> [he, ll, o] -> (he, ll) no rule... "e ll" needs e alone: so [257, 259, 'o'];
  // " the" -> Ġ t h e -> Ġt (rank 0), he (rank 1), Ġthe (rank 2) -> [258].
  CHECK(gpt2.encode("hello the", false, false) == std::vector<TokenId>{257, 259, 'o', 258});
  // "yell": y e l l -> (l,l) rank 3 -> [y, e, ll] -> (e, ll) rank 4 -> [y, ell].
  CHECK(gpt2.encode("yell", false, false) == std::vector<TokenId>{'y', 260});
  // Digits: GPT-2 keeps "1234" whole -> (1,2) first -> [12, 3, 4] -> (3,4) -> [12, 34];
  // llama-3 splits \p{N}{1,3}: "123" "4" -> [12, 3] [4]; qwen2 splits every digit.
  CHECK(gpt2.encode("1234", false, false) == std::vector<TokenId>{263, 265});
  CHECK(llama3.encode("1234", false, false) == std::vector<TokenId>{263, '3', '4'});
  CHECK(qwen2.encode("1234", false, false) == std::vector<TokenId>{'1', '2', '3', '4'});
  // Contractions: llama-3 matches 'S case-insensitively; GPT-2 only lower-case 's.
  CHECK(llama3.encode("IT'S", false, false) == std::vector<TokenId>{'I', 'T', 266});
  CHECK(gpt2.encode("IT'S", false, false) == std::vector<TokenId>{'I', 'T', '\'', 'S'});
  CHECK(gpt2.encode("it's", false, false) == std::vector<TokenId>{'i', 't', 262});
  // Letters are Unicode-aware: "é" stays with its word in llama-3 ([^\r\n\p{L}\p{N}]?\p{L}+),
  // each byte of é (C3 A9) maps to its own GPT-2 char and token.
  CHECK(llama3.encode("\xC3\xA9t", false, false) == std::vector<TokenId>{0xC3, 0xA9, 't'});
  // Special tokens only with parse_special.
  const TokenId end = gpt2.find_token("<|end|>").value();
  CHECK(end == 267);
  CHECK(gpt2.encode("a<|end|>", false, true) == std::vector<TokenId>{'a', end});
  CHECK(gpt2.encode("a<|end|>", false, false).size() > 2);
  CHECK(gpt2.decode(std::vector<TokenId>{'a', end}) == "a");
  CHECK(gpt2.decode(std::vector<TokenId>{'a', end}, true) == "a<|end|>");
  CHECK(gpt2.token_to_piece(258) == " the");
}

TEST_CASE("bpe: llama-3 takes whole-word tokens without merging, others merge") {
  // "abc" is a token (id 257) but no merge produces it; merges give [ab, c].
  const std::vector<std::pair<std::string, std::string>> merges = {{"a", "b"}};
  CHECK(hand_bpe("llama-bpe", merges, {}, {"abc"}).encode("abc", false, false) == std::vector<TokenId>{257});
  CHECK(hand_bpe("qwen2", merges, {}, {"abc"}).encode("abc", false, false) == std::vector<TokenId>{256, 'c'});
}

TEST_CASE("bpe: synthetic llama-3 and qwen2 vocabularies") {
  const Tokenizer l3 = synthetic(TokenizerKind::kBpeLlama3);
  const Tokenizer qw = synthetic(TokenizerKind::kBpeQwen2);
  CHECK(l3.pre() == "llama-bpe");
  CHECK(l3.n_vocab() == 2000);
  CHECK(l3.add_bos_default());
  CHECK_FALSE(qw.add_bos_default());
  const TokenId start = l3.find_token("<|start_header_id|>").value();
  const TokenId eot = l3.find_token("<|eot_id|>").value();
  CHECK(l3.eot() == eot);
  CHECK(l3.is_end_of_generation(eot));
  CHECK(l3.token_text(l3.bos()) == "<|begin_of_text|>");
  const auto ids = l3.encode("<|start_header_id|>user<|end_header_id|>\n\nthe world<|eot_id|>", true, true);
  REQUIRE(ids.size() >= 5);
  CHECK(ids[0] == l3.bos());
  CHECK(ids[1] == start);
  CHECK(ids.back() == eot);
  CHECK(l3.token_text(ids[ids.size() - 2]) == "\xC4\xA0world");  // "Ġworld" is a whole token
  const TokenId im_start = qw.find_token("<|im_start|>").value();
  CHECK(qw.encode("<|im_start|>", false, true) == std::vector<TokenId>{im_start});
  CHECK(qw.encode("<|im_start|>", false, false) != std::vector<TokenId>{im_start});
  CHECK(qw.is_end_of_generation(qw.find_token("<|im_end|>").value()));

  std::mt19937 rng(5);
  for (int k = 0; k < 300; ++k) {
    const std::string s = random_utf8(rng, 1 + rng() % 60, true);
    CAPTURE(s);
    CHECK(l3.decode(l3.encode(s, false, false)) == s);
    CHECK(qw.decode(qw.encode(s, false, false)) == s);
  }
  // Invalid UTF-8 is encoded byte-wise and still round-trips.
  const std::string bad = "ok\xFF\xC3(\xE2\x82 end";
  CHECK(l3.decode(l3.encode(bad, false, false)) == bad);
}

TEST_CASE("spm: synthetic vocabulary round-trips and streams") {
  const Tokenizer t = synthetic(TokenizerKind::kSpm);
  CHECK(t.model() == TokenizerModel::kSpm);
  const auto ids = t.encode("the world", false, false);
  CHECK(ids.size() == 2);  // "▁the" and "▁world" are pieces
  std::mt19937 rng(9);
  for (int k = 0; k < 200; ++k) {
    const std::string s = random_utf8(rng, 1 + rng() % 40, false);
    CAPTURE(s);
    const auto enc = t.encode(s, false, false);
    CHECK(t.decode(enc) == s);
    StreamDecoder stream(t);
    std::string joined;
    for (TokenId id : enc) {
      std::string chunk = stream.push(id);
      CHECK(unicode::is_valid_utf8(chunk));
      joined += chunk;
    }
    CHECK(joined + stream.finish() == " " + s);
  }
}

TEST_CASE("tokenizer: metadata errors are reported") {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "wordpiece");
  w.set_string_array("tokenizer.ggml.tokens", {"a"});
  auto bytes = w.serialize();
  auto f = GgufFile::parse_bytes(bytes->data(), bytes->size());
  REQUIRE(f.ok());
  auto t = Tokenizer::from_gguf(*f);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message.find("wordpiece") != std::string::npos);
  GgufWriter w2;
  w2.set_string("tokenizer.ggml.model", "gpt2");
  w2.set_string_array("tokenizer.ggml.tokens", {"a"});
  auto b2 = w2.serialize();
  auto f2 = GgufFile::parse_bytes(b2->data(), b2->size());
  auto t2 = Tokenizer::from_gguf(*f2);
  REQUIRE_FALSE(t2.ok());
  CHECK(t2.error().message.find("tokenizer.ggml.merges") != std::string::npos);
}
