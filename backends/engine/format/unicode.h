#pragma once
// UTF-8 helpers and the GPT-2 byte <-> unicode mapping shared by the tokenizers and
// the synthetic vocabulary generator. Internal to the format layer.
#include <cstdint>
#include <string>
#include <string_view>

namespace frugal::engine::unicode {

// Length of the UTF-8 sequence announced by lead byte c (1 for invalid lead bytes,
// so that callers always make progress).
int utf8_seq_len(uint8_t c);
// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid/truncated
// (overlongs, surrogates and > U+10FFFF are invalid).
int utf8_valid_len(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);
// Appends the UTF-8 encoding of code point cp (< 0x110000).
void append_utf8(std::string& out, uint32_t cp);
// Decodes the valid sequence of length len at s[i].
uint32_t decode_utf8(std::string_view s, size_t i, int len);

// GPT-2's reversible map from bytes to printable code points: printable Latin-1 bytes
// map to themselves, the rest to U+0100 upward in byte order (space -> U+0120 'Ġ').
uint32_t byte_to_codepoint(uint8_t b);
// Inverse; returns -1 for code points that are not in the map.
int codepoint_to_byte(uint32_t cp);
// Maps every byte of raw to its GPT-2 code point, as UTF-8.
std::string bytes_to_gpt2(std::string_view raw);

}  // namespace frugal::engine::unicode
