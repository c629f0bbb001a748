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
#include <bit>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
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

// The fields of a hash input, written unambiguously: every field carries its length
// (or a fixed width) and a tag, so ("ab","c") and ("a","bc") never collide. `Sink`
// provides put(const void*, size_t); HashInput collects the bytes, HashStream hashes
// them as they come, and both see the same bytes for the same fields.
template <class Sink>
class HashFields {
 public:
  Sink& tag(char t) { return put(&t, 1); }
  Sink& str(std::string_view s) {
    u64(s.size());
    return put(s.data(), s.size());
  }
  Sink& u64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return put(b, 8);
  }
  Sink& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
  Sink& f64(double v) {  // -0.0 and 0.0 hash alike; NaN is canonicalised
    if (v == 0) v = 0;
    if (std::isnan(v)) v = std::numeric_limits<double>::quiet_NaN();
    return u64(std::bit_cast<uint64_t>(v));
  }
  Sink& boolean(bool b) { return tag(b ? '\1' : '\0'); }
  Sink& hash(const Hash128& h) { return u64(h.hi).u64(h.lo); }
  // Bytes already written as fields by another HashFields (no length added).
  Sink& raw(std::string_view bytes) { return put(bytes.data(), bytes.size()); }

 private:
  Sink& put(const void* p, size_t n) {
    auto& self = static_cast<Sink&>(*this);
    self.put_bytes(p, n);
    return self;
  }
};

// Collects the fields' bytes; digest() is hash128 of them.
class HashInput : public HashFields<HashInput> {
 public:
  std::string_view bytes() const { return {buf_.data(), len_}; }
  size_t size() const { return len_; }
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
  // Overwrites 16 bytes written before (a placeholder) with `h`, as hash(h) writes it.
  void patch_hash(size_t at, const Hash128& h);

 private:
  friend class HashFields<HashInput>;
  // Written in place: a key is built from dozens of small fields, and a std::string
  // append per field costs more than the hashing.
  void put_bytes(const void* p, size_t n) {
    if (buf_.size() - len_ < n) [[unlikely]] grow(n);
    if (n == 0) return;  // an empty view may carry a null pointer, which memcpy must not get
    std::memcpy(buf_.data() + len_, p, n);
    len_ += n;
  }
  void grow(size_t n);
  std::string buf_;  // [0, len_) written; the rest is room
  size_t len_ = 0;
};

// Hashes the fields as they are written, without keeping them: digest() equals
// hash128_bytes of the concatenated bytes with the same seed.
class HashStream : public HashFields<HashStream> {
 public:
  explicit HashStream(uint64_t seed = 0);
  Hash128 digest() const;

 private:
  friend class HashFields<HashStream>;
  void put_bytes(const void* p, size_t n);
  uint64_t h1_;
  uint64_t h2_;
  uint64_t len_ = 0;
  unsigned char block_[16];  // [0, pending_) of the block being filled
  size_t pending_ = 0;
};

}  // namespace frugal::cache
