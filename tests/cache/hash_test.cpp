#include "cache/hash.h"

#include <doctest/doctest.h>

#include <bit>
#include <set>

using frugal::cache::hash128;
using frugal::cache::Hash128;
using frugal::cache::HashInput;

TEST_CASE("hash128 is pinned: on-disk keys and shared prefix hashes depend on it") {
  // Golden values: changing the function orphans every stored entry.
  CHECK(hash128("").to_hex() == hash128(std::string_view()).to_hex());
  CHECK(hash128("", 0).to_hex() == "6fab6c3409be6cc142b671766ed1aa98");
  CHECK(hash128("frugal", 0).to_hex() == "76c6c4f9a3a04437edf7a88fe6a35be7");
  CHECK(hash128("The quick brown fox jumps over the lazy dog", 7).to_hex() ==
        "eccceab4394b5a331be6f1f0c0a86022");
}

TEST_CASE("hash128 depends on every byte, the length and the seed") {
  std::string s(37, 'a');
  std::set<Hash128> seen;
  seen.insert(hash128(s));
  for (size_t i = 0; i < s.size(); ++i) {
    std::string t = s;
    t[i] = 'b';
    CHECK(seen.insert(hash128(t)).second);
  }
  for (size_t n = 0; n < s.size(); ++n) CHECK(seen.insert(hash128(std::string(n, 'a'))).second);
  CHECK(seen.insert(hash128(s, 1)).second);
  // Zero bytes are data, not padding.
  CHECK(hash128(std::string(3, '\0')) != hash128(std::string(4, '\0')));
}

TEST_CASE("hash128 avalanches: one flipped input bit flips about half the output bits") {
  const std::string base = "an input of moderate length for the avalanche check";
  const Hash128 h0 = hash128(base);
  double total = 0;
  int n = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = base;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      const Hash128 h = hash128(t);
      total += std::popcount(h.hi ^ h0.hi) + std::popcount(h.lo ^ h0.lo);
      ++n;
    }
  }
  const double mean = total / n;
  CHECK(mean > 60);
  CHECK(mean < 68);
}

TEST_CASE("Hash128 byte encoding round-trips and sorts numerically") {
  const Hash128 a{1, 0xffffffffffffffffULL}, b{2, 0};
  Hash128 back;
  REQUIRE(Hash128::from_bytes(a.to_bytes(), back));
  CHECK(back == a);
  CHECK(a.to_bytes() < b.to_bytes());
  CHECK_FALSE(Hash128::from_bytes("short", back));
}

TEST_CASE("HashInput fields are length-delimited") {
  HashInput x, y;
  x.str("ab").str("c");
  y.str("a").str("bc");
  CHECK(x.digest() != y.digest());
  HashInput z, w;
  z.f64(0.0);
  w.f64(-0.0);
  CHECK(z.digest() == w.digest());
}

TEST_CASE("string literals hash as strings, whatever the seed argument's type") {
  CHECK(hash128("frugal", 0) == hash128(std::string_view("frugal"), 0));
  CHECK(hash128("frugal", 0) != hash128("", 0));
}

TEST_CASE("HashStream equals hash128 of the same bytes, however the bytes are split") {
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes += static_cast<char>(i * 37 + 11);
  for (size_t len : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{31}, size_t{32}, size_t{100}}) {
    const std::string_view whole = std::string_view(bytes).substr(0, len);
    for (size_t step = 1; step <= 17; ++step) {
      CAPTURE(len);
      CAPTURE(step);
      frugal::cache::HashStream s(99);
      for (size_t i = 0; i < whole.size(); i += step) s.raw(whole.substr(i, step));
      s.raw(std::string_view());  // an empty piece changes nothing
      CHECK(s.digest() == hash128(whole, 99));
    }
  }
}

TEST_CASE("HashInput and HashStream see the same bytes for the same fields") {
  HashInput in;
  frugal::cache::HashStream s(5);
  auto fields = [](auto& w) {
    w.tag('k').str("a string").u64(7).i64(-3).f64(-0.0).boolean(true).hash(Hash128{1, 2}).raw("raw");
  };
  fields(in);
  fields(s);
  CHECK(s.digest() == in.digest(5));
  const Hash128 h{0x0102030405060708ULL, 0x1112131415161718ULL};
  HashInput patched, direct;
  patched.hash(Hash128{}).str("tail");
  patched.patch_hash(0, h);
  direct.hash(h).str("tail");
  CHECK(patched.bytes() == direct.bytes());
}
