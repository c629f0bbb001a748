#include "cache/hash.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace frugal::cache {
namespace {

constexpr uint64_t kMulA = 0x87c37b91114253d5ULL;
constexpr uint64_t kMulB = 0x4cf5ad432745937fULL;

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Final avalanche: every input bit affects every output bit with probability ~1/2.
inline uint64_t avalanche(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline uint64_t scramble_a(uint64_t k) { return std::rotl(k * kMulA, 31) * kMulB; }
inline uint64_t scramble_b(uint64_t k) { return std::rotl(k * kMulB, 33) * kMulA; }

inline void mix_block(uint64_t& h1, uint64_t& h2, const unsigned char* p) {
  const uint64_t k1 = load_le64(p);
  const uint64_t k2 = load_le64(p + 8);
  h1 ^= scramble_a(k1);
  h1 = std::rotl(h1, 27) + h2;
  h1 = h1 * 5 + 0x52dce729;
  h2 ^= scramble_b(k2);
  h2 = std::rotl(h2, 31) + h1;
  h2 = h2 * 5 + 0x38495ab5;
}

// Tail: up to 15 bytes, zero-padded into two lanes; then the final mix.
Hash128 finish(uint64_t h1, uint64_t h2, const unsigned char* tail, size_t rest, uint64_t len) {
  uint64_t k1 = 0;
  uint64_t k2 = 0;
  for (size_t i = rest; i > 8; --i) k2 = (k2 << 8) | tail[i - 1];
  for (size_t i = rest < 8 ? rest : 8; i > 0; --i) k1 = (k1 << 8) | tail[i - 1];
  if (rest > 8) h2 ^= scramble_b(k2);
  if (rest > 0) h1 ^= scramble_a(k1);

  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = avalanche(h1);
  h2 = avalanche(h2);
  h1 += h2;
  h2 += h1;
  return Hash128{h1, h2};
}

constexpr uint64_t kLaneTwo = 0x9e3779b97f4a7c15ULL;  // distinct lanes even for seed 0

}  // namespace

Hash128 hash128_bytes(const void* data, size_t len, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h1 = seed;
  uint64_t h2 = seed ^ kLaneTwo;
  const size_t blocks = len / 16;
  for (size_t i = 0; i < blocks; ++i) mix_block(h1, h2, p + i * 16);
  return finish(h1, h2, p + blocks * 16, len & 15, static_cast<uint64_t>(len));
}

HashStream::HashStream(uint64_t seed) : h1_(seed), h2_(seed ^ kLaneTwo) {}

void HashStream::put_bytes(const void* data, size_t n) {
  if (n == 0) return;  // an empty view may carry a null pointer, which memcpy must not get
  const auto* p = static_cast<const unsigned char*>(data);
  len_ += n;
  if (pending_ != 0) {
    const size_t take = std::min(n, 16 - pending_);
    std::memcpy(block_ + pending_, p, take);
    pending_ += take;
    p += take;
    n -= take;
    if (pending_ < 16) return;
    mix_block(h1_, h2_, block_);
    pending_ = 0;
  }
  for (; n >= 16; p += 16, n -= 16) mix_block(h1_, h2_, p);
  if (n != 0) std::memcpy(block_, p, n);
  pending_ = n;
}

Hash128 HashStream::digest() const { return finish(h1_, h2_, block_, pending_, len_); }

std::string Hash128::to_hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(hi >> (4 * i)) & 15];
    out[31 - i] = kHex[(lo >> (4 * i)) & 15];
  }
  return out;
}

std::string Hash128::to_bytes() const {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[7 - i] = static_cast<char>((hi >> (8 * i)) & 0xff);
    out[15 - i] = static_cast<char>((lo >> (8 * i)) & 0xff);
  }
  return out;
}

bool Hash128::from_bytes(std::string_view b, Hash128& out) {
  if (b.size() != 16) return false;
  out = {};
  for (int i = 0; i < 8; ++i) {
    out.hi = (out.hi << 8) | static_cast<unsigned char>(b[i]);
    out.lo = (out.lo << 8) | static_cast<unsigned char>(b[8 + i]);
  }
  return true;
}

void HashInput::grow(size_t n) { buf_.resize(2 * buf_.size() + n + 64); }

void HashInput::patch_hash(size_t at, const Hash128& h) {
  for (int i = 0; i < 8; ++i) {
    buf_[at + i] = static_cast<char>((h.hi >> (8 * i)) & 0xff);
    buf_[at + 8 + i] = static_cast<char>((h.lo >> (8 * i)) & 0xff);
  }
}

}  // namespace frugal::cache
