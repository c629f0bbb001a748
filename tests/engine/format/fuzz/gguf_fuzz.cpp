// Fuzz entry point for everything in the format layer that reads untrusted GGUF bytes:
// the parser, the tokenizer built from its metadata, and the reference dequantisers
// over its tensors. Built as a plain function called by gguf_fuzz_test.cpp over a
// committed corpus plus generated truncations and byte flips; with clang it can also
// be linked with -fsanitize=fuzzer (FRUGAL_LIBFUZZER=ON) for open-ended fuzzing.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/engine/format/gguf.h"
#include "backends/engine/format/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal::engine;
  auto file = GgufFile::parse_bytes(data, size, "fuzz");
  if (!file.ok()) return 0;
  // Touch every tensor's first row: the reader promised the bytes are in bounds.
  std::vector<float> row;
  for (const TensorInfo& t : file->tensors()) {
    if (!has_reference_kernels(t.type) || t.ne[0] > (1 << 16)) continue;
    row.resize(static_cast<size_t>(t.ne[0]));
    (void)dequantize_row(t.type, t.data, row.data(), t.ne[0]);
  }
  auto tok = Tokenizer::from_gguf(*file);
  if (tok.ok()) {
    const auto ids = tok->encode("Hello <s> w\xC3\xB6rld 123 <|im_start|>\xFF", true, true);
    (void)tok->decode(ids, true);
    StreamDecoder stream(*tok);
    for (TokenId id : ids) (void)stream.push(id);
    (void)tok->token_to_piece(tok->n_vocab() - 1);
  }
  return 0;
}
