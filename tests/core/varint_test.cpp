#include "core/varint.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>

using namespace frugal;

TEST_CASE("varints: 64- and 128-bit, zigzag, round trip at the edges and reject truncation") {
  using namespace frugal::wire;
  for (int128_t v : {int128_t{0}, int128_t{1}, int128_t{-1}, int128_t{63}, int128_t{-64}, int128_t{64},
                     int128_t{5'400'000}, static_cast<int128_t>(std::numeric_limits<int64_t>::max()),
                     static_cast<int128_t>(std::numeric_limits<int64_t>::min()),
                     static_cast<int128_t>(std::numeric_limits<int64_t>::max()) + 1,
                     std::numeric_limits<int128_t>::max(), std::numeric_limits<int128_t>::min()}) {
    std::string out;
    put_svarint128(out, v);
    CHECK(out.size() <= 19);
    std::string_view s = out;
    int128_t back = 0;
    REQUIRE(get_svarint128(s, back));
    CHECK(back == v);
    CHECK(s.empty());
    for (size_t n = 0; n < out.size(); ++n) {
      std::string_view cut(out.data(), n);
      CHECK(!get_svarint128(cut, back));
    }
    if (v >= std::numeric_limits<int64_t>::min() && v <= std::numeric_limits<int64_t>::max()) {
      // A 64-bit zigzag varint and a 128-bit one of the same value are the same bytes.
      std::string small;
      put_svarint(small, static_cast<int64_t>(v));
      CHECK(small == out);
    }
  }
  std::string fixed;
  put_le32(fixed, 0x01020304);
  put_le64(fixed, 0x0102030405060708ull);
  put_be64(fixed, 0x0102030405060708ull);
  put_le128(fixed, (static_cast<uint128_t>(7) << 64) | 9);
  CHECK(fixed.size() == 4 + 8 + 8 + 16);
  CHECK(fixed[0] == 4);
  CHECK(load_le32(fixed.data()) == 0x01020304);
  CHECK(load_le64(fixed.data() + 4) == 0x0102030405060708ull);
  CHECK(fixed[12] == 1);
  CHECK(load_be64(fixed.data() + 12) == 0x0102030405060708ull);
  CHECK(load_le128(fixed.data() + 20) == ((static_cast<uint128_t>(7) << 64) | 9));
  std::string str;
  put_string(str, "abc");
  std::string_view sv = str;
  std::string got;
  CHECK(get_string(sv, got));
  CHECK(got == "abc");
  std::string_view lying = "\x05" "ab";
  CHECK(!get_string(lying, got));
}
