#pragma once
// A fast 64-bit hash of short byte strings, and an inline equality test, for in-process
// lookup tables (the Prometheus registry's label sets, the OTLP metrics' series). Not
// stable across versions and not for anything stored: cache keys and prefix chains use
// cache/hash.h. Strings are read eight bytes at a time, the last word overlapping, so
// nothing outside a string is ever read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace frugal::fast_hash {

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}
inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// A word made of all n < 8 bytes at p (the first and last four overlap for n >= 4).
inline uint64_t short_word(const char* p, size_t n) {
  if (n >= 4) return static_cast<uint64_t>(load32(p)) << 32 | load32(p + n - 4);
  if (n == 0) return 0;
  const auto b = [p](size_t i) { return static_cast<uint64_t>(static_cast<unsigned char>(p[i])); };
  return b(0) | b(n / 2) << 8 | b(n - 1) << 16;
}
// `h` with the bytes of `s` (and its length) mixed in.
inline uint64_t text(uint64_t h, std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  if (n < 8) return mix(h, short_word(p, n) ^ (static_cast<uint64_t>(n) << 56));
  for (size_t i = 0; i + 8 < n; i += 8) h = mix(h, load64(p + i));
  return mix(h, load64(p + n - 8) ^ (static_cast<uint64_t>(n) << 56));  // the last 8, overlapping
}
// Equal bytes, inline: for short strings a call to memcmp costs more than comparing them.
inline bool same_bytes(const char* a, const char* b, size_t n) {
  if (n < 8) return short_word(a, n) == short_word(b, n);
  for (size_t i = 0; i + 8 < n; i += 8)
    if (load64(a + i) != load64(b + i)) return false;
  return load64(a + n - 8) == load64(b + n - 8);
}

}  // namespace frugal::fast_hash
