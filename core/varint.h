#pragma once
// Byte encodings shared by the stored formats (ledger rows and rollups, cache entries):
// fixed-width little- and big-endian integers, LEB128 varints (64 and 128 bits), zigzag
// signed varints and length-prefixed strings. Appenders write to a std::string; getters
// consume from the front of a string_view and return false (leaving garbage in the
// output) on truncation, so decoders chain them with &&.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/money.h"  // int128_t

namespace frugal::wire {

inline void put_le32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}
inline void put_le64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
inline void put_le128(std::string& out, uint128_t v) {
  put_le64(out, static_cast<uint64_t>(v));
  put_le64(out, static_cast<uint64_t>(v >> 64));
}
inline void put_be64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xff);
  out.append(b, 8);
}

// Loads from at least 4/8/16 readable bytes.
inline uint32_t load_le32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline uint64_t load_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline uint128_t load_le128(const char* p) {
  return (static_cast<uint128_t>(load_le64(p + 8)) << 64) | load_le64(p);
}
inline uint64_t load_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline bool get_u8(std::string_view& s, uint8_t& v) {
  if (s.empty()) return false;
  v = static_cast<uint8_t>(s.front());
  s.remove_prefix(1);
  return true;
}
inline bool get_le32(std::string_view& s, uint32_t& v) {
  if (s.size() < 4) return false;
  v = load_le32(s.data());
  s.remove_prefix(4);
  return true;
}
inline bool get_le64(std::string_view& s, uint64_t& v) {
  if (s.size() < 8) return false;
  v = load_le64(s.data());
  s.remove_prefix(8);
  return true;
}

// LEB128: 7 bits a byte, low bits first; U is uint64_t or uint128_t.
namespace detail {
template <class U>
void put_leb128(std::string& out, U v) {
  char b[19];  // ceil(128 / 7)
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out.append(b, n);
}
template <class U>
bool get_leb128(std::string_view& s, U& v, int max_bytes) {
  v = 0;
  for (int shift = 0; shift < 7 * max_bytes && !s.empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(s.front());
    s.remove_prefix(1);
    v |= static_cast<U>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
}  // namespace detail

inline void put_varint(std::string& out, uint64_t v) {
  if (v < 0x80) {  // most values: small counts, zeros, short lengths
    out.push_back(static_cast<char>(v));
    return;
  }
  detail::put_leb128(out, v);
}
// At most max_bytes bytes (5: a length, 10: any 64-bit value; bits past 64 are dropped).
inline bool get_varint(std::string_view& s, uint64_t& v, int max_bytes = 10) {
  return detail::get_leb128(s, v, max_bytes);
}
inline void put_varint128(std::string& out, uint128_t v) {
  if ((v >> 64) == 0) {  // every per-request amount: the 64-bit loop is cheaper
    put_varint(out, static_cast<uint64_t>(v));
    return;
  }
  detail::put_leb128(out, v);
}
// At most 19 bytes (bits past 128 are dropped).
inline bool get_varint128(std::string_view& s, uint128_t& v) { return detail::get_leb128(s, v, 19); }

// Zigzag: small magnitudes of either sign are short.
inline void put_svarint(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
inline bool get_svarint(std::string_view& s, int64_t& v) {
  uint64_t u;
  if (!get_varint(s, u, 10)) return false;
  v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}
inline void put_svarint128(std::string& out, int128_t v) {
  put_varint128(out, (static_cast<uint128_t>(v) << 1) ^ static_cast<uint128_t>(v >> 127));
}
inline bool get_svarint128(std::string_view& s, int128_t& v) {
  uint128_t u;
  if (!get_varint128(s, u)) return false;
  v = static_cast<int128_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

// A varint length (at most 5 bytes) and the bytes.
inline void put_string(std::string& out, std::string_view f) {
  put_varint(out, f.size());
  out.append(f);
}
inline bool get_string(std::string_view& s, std::string& f) {
  uint64_t n;
  if (!get_varint(s, n, 5) || n > s.size()) return false;
  f.assign(s.substr(0, n));
  s.remove_prefix(n);
  return true;
}

}  // namespace frugal::wire
