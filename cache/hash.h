#pragma once
// Stable 128-bit hashing for cache keys, prefix chains and checksums.
//
// The function is a 128-bit multiply-rotate-xor design modelled on the public-domain
// MurmurHash3 x64/128 description (two 64-bit lanes, 16-byte blocks, final avalanche),
// written here from that description. Its output is part of the on-disk format and of
// the prefix hashes shared with other components: it must never change for a given
// input and seed. Endianness is fixed (little-endian reads), so values are stable
// across processes, restarts and machines.
//
// Not a cryptographic hash: collisions can be constructed deliberately. Keys are
// scoped per tenant, so a tenant can at worst poison its own entries.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace frugal::cache {

struct Hash128 {
  uint64_t hi = 0;
  uint64_t lo = 0;

  constexpr auto operator<=>(const Hash128&) const = default;
  // 32 lowercase hex digits, hi first.
  std::string to_hex() const;
  // 16 bytes, big-endian (hi then lo): sorts like the numeric value.
  std::string to_bytes() const;
  static bool from_bytes(std::string_view sixteen_bytes, Hash128& out);
};

// Raw bytes. (Named apart from the string_view overload: hash128("lit", 0) must never
// resolve to (pointer, length 0).)
Hash128 hash128_bytes(const void* data, size_t len, uint64_t seed = 0);
inline Hash128 hash128(std::string_view s, uint64_t seed = 0) {
  return hash128_bytes(s.data(), s.size(), seed);
}
inline uint64_t hash64(std::string_view s, uint64_t seed = 0) { return hash128(s, seed).lo; }

// Builds an unambiguous byte string to hash: every field is written with its length
// (or a fixed width) and a tag, so ("ab","c") and ("a","bc") never collide.
class HashInput {
 public:
  HashInput& tag(char t) { put(&t, 1); return *this; }
  HashInput& str(std::string_view s) {
    u64(s.size());
    put(s.data(), s.size());
    return *this;
  }
  HashInput& u64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    put(b, 8);
    return *this;
  }
  HashInput& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
  HashInput& f64(double v);  // -0.0 and 0.0 hash alike; NaN is canonicalised
  HashInput& boolean(bool b) { return tag(b ? '\1' : '\0'); }
  HashInput& hash(const Hash128& h) { return u64(h.hi).u64(h.lo); }
  std::string_view bytes() const { return {buf_.data(), len_}; }
  std::string take() {
    buf_.resize(len_);
    len_ = 0;
    return std::move(buf_);
  }
  Hash128 digest(uint64_t seed = 0) const { return hash128_bytes(buf_.data(), len_, seed); }
  void clear() { len_ = 0; }
  void reserve(size_t n) {
    if (buf_.size() < n) buf_.resize(n);
  }

 private:
  // Written in place: a key is built from dozens of small fields, and a std::string
  // append per field costs more than the hashing.
  void put(const void* p, size_t n) {
    if (buf_.size() - len_ < n) [[unlikely]] grow(n);
    if (n == 0) return;  // an empty view may carry a null pointer, which memcpy must not get
    std::memcpy(buf_.data() + len_, p, n);
    len_ += n;
  }
  void grow(size_t n);
  std::string buf_;  // [0, len_) written; the rest is room
  size_t len_ = 0;
};

}  // namespace frugal::cache
