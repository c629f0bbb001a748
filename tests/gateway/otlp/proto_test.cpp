// The hand-written protobuf writer against byte sequences of the protobuf encoding
// specification (protobuf.dev/programming-guides/encoding).
#include <doctest/doctest.h>

#include <limits>

#include "gateway/otlp/proto.h"

using frugal::otlp::ProtoWriter;

namespace {

std::string hex(const std::string& s) {
  static constexpr char k[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

template <class F>
std::string written(F f) {
  std::string out;
  {
    ProtoWriter w(out);
    f(w);
  }  // the writer cuts `out` to what it wrote when it goes
  return hex(out);
}

}  // namespace

TEST_CASE("otlp proto: varints as the encoding guide spells them") {
  CHECK(written([](ProtoWriter& w) { w.varint(0); }) == "00");
  CHECK(written([](ProtoWriter& w) { w.varint(1); }) == "01");
  CHECK(written([](ProtoWriter& w) { w.varint(150); }) == "96 01");
  CHECK(written([](ProtoWriter& w) { w.varint(300); }) == "ac 02");
  CHECK(written([](ProtoWriter& w) { w.varint(std::numeric_limits<uint64_t>::max()); }) ==
        "ff ff ff ff ff ff ff ff ff 01");
  // int64 -1 is ten bytes (two's complement, not zigzag).
  CHECK(written([](ProtoWriter& w) { w.int64_field(3, -1); }) == "18 ff ff ff ff ff ff ff ff ff 01");
}

TEST_CASE("otlp proto: tags, strings, nested messages") {
  CHECK(written([](ProtoWriter& w) { w.uint64_field(1, 150); }) == "08 96 01");
  CHECK(written([](ProtoWriter& w) { w.bytes_field(2, "testing"); }) == "12 07 74 65 73 74 69 6e 67");
  CHECK(written([](ProtoWriter& w) { w.message(3, [](ProtoWriter& m) { m.uint64_field(1, 150); }); }) ==
        "1a 03 08 96 01");
  CHECK(written([](ProtoWriter& w) { w.message(3, [](ProtoWriter&) {}); }) == "1a 00");
  CHECK(written([](ProtoWriter& w) { w.bool_field(2, true); }) == "10 01");
  // A field number past 15 takes a two-byte tag.
  CHECK(written([](ProtoWriter& w) { w.fixed32_field(16, 0x301); }) == "85 01 01 03 00 00");
  // A nested message longer than 127 bytes gets a two-byte length.
  const std::string long_inner = written([](ProtoWriter& w) {
    w.message(1, [](ProtoWriter& m) { m.bytes_field(1, std::string(200, 'x')); });
  });
  CHECK(long_inner.substr(0, 17) == "0a cb 01 0a c8 01");
}

TEST_CASE("otlp proto: fixed64, sfixed64, doubles little-endian, packed repeated") {
  CHECK(written([](ProtoWriter& w) { w.fixed64_field(7, 0x0102030405060708ull); }) ==
        "39 08 07 06 05 04 03 02 01");
  CHECK(written([](ProtoWriter& w) { w.sfixed64_field(6, -2); }) == "31 fe ff ff ff ff ff ff ff");
  CHECK(written([](ProtoWriter& w) { w.double_field(4, 1.0); }) == "21 00 00 00 00 00 00 f0 3f");
  CHECK(written([](ProtoWriter& w) { w.packed_fixed64(6, {1, 2}); }) ==
        "32 10 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00");
  CHECK(written([](ProtoWriter& w) { w.packed_double(7, {0.5}); }) == "3a 08 00 00 00 00 00 00 e0 3f");
  CHECK(written([](ProtoWriter& w) { w.packed_double(7, {}); }).empty());  // an empty packed field is omitted
}

TEST_CASE("otlp proto: wide messages carry a four-byte length, non-minimal below 2^21") {
  // 3 as a four-byte varint: 83 80 80 00 (decoders read redundant continuation bytes).
  CHECK(written([](ProtoWriter& w) { w.wide_message(3, [](ProtoWriter& m) { m.uint64_field(1, 150); }); }) ==
        "1a 83 80 80 00 08 96 01");
  CHECK(written([](ProtoWriter& w) { w.wide_message(3, [](ProtoWriter&) {}); }) == "1a 80 80 80 00");
  // 206 bytes: ce 81 80 00; nothing is moved, the inner one-byte message still widens.
  const std::string wide = written([](ProtoWriter& w) {
    w.wide_message(1, [](ProtoWriter& m) { m.message(1, [](ProtoWriter& i) { i.bytes_field(1, std::string(200, 'x')); }); });
  });
  CHECK(wide.substr(0, 29) == "0a ce 81 80 00 0a cb 01 0a c8");
  // open_wide / close_wide around a loop, appending to what `out` already holds.
  std::string out = "ab";
  {
    ProtoWriter w(out);
    const size_t at = w.open_wide(2);
    for (int i = 0; i < 3; ++i) w.uint64_field(1, 1);
    w.close_wide(at);
  }
  CHECK(hex(out) == "61 62 12 86 80 80 00 08 01 08 01 08 01");
}

TEST_CASE("otlp proto: the buffer grows across many writes") {
  std::string out;
  {
    ProtoWriter w(out);
    for (int i = 0; i < 10000; ++i) w.fixed64_field(1, static_cast<uint64_t>(i));
  }
  REQUIRE(out.size() == 90000);
  CHECK(static_cast<uint8_t>(out[0]) == 0x09);
  CHECK(static_cast<uint8_t>(out[9 * 9999 + 1]) == (9999 & 0xff));
}
