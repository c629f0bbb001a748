// Tests for backends/engine/format/ggml_types.h and quants.cpp: type table, fp16/bf16
// bit patterns, hand-built blocks that pin the on-disk layouts, and quantise ->
// dequantise round trips within the bounds stated in quants.cpp.
#include "backends/engine/format/ggml_types.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace frugal::engine;

TEST_CASE("type table: ids, names, block sizes") {
  CHECK(static_cast<int>(GgmlType::kQ8_0) == 8);
  CHECK(static_cast<int>(GgmlType::kQ6_K) == 14);
  CHECK(static_cast<int>(GgmlType::kBF16) == 30);
  CHECK(std::string(type_name(GgmlType::kQ4_K)) == "q4_K");
  CHECK(block_size(GgmlType::kF16) == 1);
  CHECK(bytes_per_block(GgmlType::kQ4_0) == sizeof(BlockQ4_0));
  CHECK(bytes_per_block(GgmlType::kQ5_0) == sizeof(BlockQ5_0));
  CHECK(bytes_per_block(GgmlType::kQ5_1) == sizeof(BlockQ5_1));
  CHECK(bytes_per_block(GgmlType::kQ8_0) == sizeof(BlockQ8_0));
  CHECK(bytes_per_block(GgmlType::kQ4_K) == sizeof(BlockQ4_K));
  CHECK(bytes_per_block(GgmlType::kQ6_K) == sizeof(BlockQ6_K));
  CHECK(row_size(GgmlType::kQ4_K, 4096) == 16 * 144);
  CHECK(row_size(GgmlType::kF32, 7) == 28);
  CHECK(row_size(GgmlType::kBF16, 8) == 16);
  CHECK_FALSE(type_from_id(4).has_value());
  CHECK_FALSE(type_from_id(31).has_value());
  CHECK_FALSE(type_from_id(1000).has_value());
  CHECK(type_from_id(12) == GgmlType::kQ4_K);
  CHECK(type_from_name("Q4_K") == GgmlType::kQ4_K);
  CHECK(type_from_name("f16") == GgmlType::kF16);
  CHECK_FALSE(type_from_name("q9_9").has_value());
  CHECK(std::string(type_name(static_cast<GgmlType>(4))) == "unknown");
}

TEST_CASE("fp16 known bit patterns") {
  CHECK(f32_to_fp16(1.0f) == 0x3C00);
  CHECK(f32_to_fp16(-2.0f) == 0xC000);
  CHECK(f32_to_fp16(0.0f) == 0x0000);
  CHECK(f32_to_fp16(-0.0f) == 0x8000);
  CHECK(f32_to_fp16(65504.0f) == 0x7BFF);
  CHECK(f32_to_fp16(65520.0f) == 0x7C00);  // rounds to +inf
  CHECK(f32_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
  CHECK(f32_to_fp16(0.333251953125f) == 0x3555);
  CHECK(f32_to_fp16(5.9604644775390625e-8f) == 0x0001);  // smallest subnormal
  CHECK(f32_to_fp16(6.103515625e-05f) == 0x0400);         // smallest normal
  CHECK(f32_to_fp16(2.9802322387695312e-8f) == 0x0000);   // half of the smallest: ties to even
  CHECK(f32_to_fp16(1.0f + 1.0f / 2048) == 0x3C00);       // tie -> even (down)
  CHECK(f32_to_fp16(1.0f + 3.0f / 2048) == 0x3C02);       // tie -> even (up)
  const Fp16 nan = f32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7C00) == 0x7C00);
  CHECK((nan & 0x03FF) != 0);
  CHECK(fp16_to_f32(0x3C00) == 1.0f);
  CHECK(fp16_to_f32(0xC000) == -2.0f);
  CHECK(fp16_to_f32(0x7BFF) == 65504.0f);
  CHECK(fp16_to_f32(0x0001) == 5.9604644775390625e-8f);
  CHECK(fp16_to_f32(0x03FF) == 6.097555160522461e-05f);
  CHECK(std::isinf(fp16_to_f32(0xFC00)));
  CHECK(std::isnan(fp16_to_f32(0x7E00)));
  // Every finite half survives f16 -> f32 -> f16 exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    REQUIRE(f32_to_fp16(fp16_to_f32(static_cast<Fp16>(h))) == h);
  }
}

TEST_CASE("bf16 known bit patterns") {
  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(-2.0f) == 0xC000);
  CHECK(f32_to_bf16(3.14159265f) == 0x4049);
  CHECK(bf16_to_f32(0x4049) == 3.140625f);
  CHECK(f32_to_bf16(1.0f + 1.0f / 256) == 0x3F80);  // tie -> even (down)
  CHECK(f32_to_bf16(1.0f + 3.0f / 256) == 0x3F82);  // tie -> even (up)
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::max()))));
}

TEST_CASE("hand-built blocks pin the ggml bit layouts") {
  std::vector<float> y(256);
  SUBCASE("q4_0: low nibbles first half, high nibbles second half") {
    BlockQ4_0 b{};
    b.d = f32_to_fp16(0.5f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 0xF) | ((15 - j) << 4));
    REQUIRE(dequantize_row(GgmlType::kQ4_0, &b, y.data(), 32));
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == 0.5f * static_cast<float>(j - 8));
      CHECK(y[j + 16] == 0.5f * static_cast<float>(15 - j - 8));
    }
  }
  SUBCASE("q5_0 and q5_1: fifth bit from qh") {
    BlockQ5_0 b{};
    b.d = f32_to_fp16(1.0f);
    for (int j = 0; j < 16; ++j) b.qs[j] = 0x33;
    const uint32_t qh = (1u << 2) | (1u << 18);  // value 2 and value 18 get bit 4
    std::memcpy(b.qh, &qh, 4);
    REQUIRE(dequantize_row(GgmlType::kQ5_0, &b, y.data(), 32));
    CHECK(y[0] == 3 - 16);
    CHECK(y[2] == 19 - 16);
    CHECK(y[18] == 19 - 16);
    CHECK(y[17] == 3 - 16);
    BlockQ5_1 c{};
    c.d = f32_to_fp16(2.0f);
    c.m = f32_to_fp16(-1.0f);
    c.qs[0] = 0x21;
    const uint32_t qh1 = 1u << 16;
    std::memcpy(c.qh, &qh1, 4);
    REQUIRE(dequantize_row(GgmlType::kQ5_1, &c, y.data(), 32));
    CHECK(y[0] == 2.0f * 1 - 1.0f);
    CHECK(y[16] == 2.0f * (2 + 16) - 1.0f);
    CHECK(y[1] == -1.0f);
  }
  SUBCASE("q8_0") {
    BlockQ8_0 b{};
    b.d = f32_to_fp16(0.25f);
    for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(i - 16);
    REQUIRE(dequantize_row(GgmlType::kQ8_0, &b, y.data(), 32));
    for (int i = 0; i < 32; ++i) CHECK(y[i] == 0.25f * static_cast<float>(i - 16));
  }
  SUBCASE("q4_K: 6-bit scales/mins packing and nibble chunks") {
    BlockQ4_K b{};
    b.d = f32_to_fp16(1.0f);
    b.dmin = f32_to_fp16(0.5f);
    // sub-block 1: scale 3, min 4; sub-block 5: scale 33 (0b100001), min 2.
    b.scales[1] = 3;
    b.scales[5] = 4;
    b.scales[9] = static_cast<uint8_t>((33 & 0xF) | ((2 & 0xF) << 4));
    b.scales[1] |= static_cast<uint8_t>((33 >> 4) << 6);
    b.qs[0] = 0x70;       // sub-block 0 value 0 -> 0; sub-block 1 value 0 -> 7
    b.qs[64 + 5] = 0x20;  // chunk 2: sub-block 5 value 5 -> 2
    uint8_t sc, mn;
    unpack_q4_k_scale_min(5, b.scales, &sc, &mn);
    CHECK(sc == 33);
    CHECK(mn == 2);
    unpack_q4_k_scale_min(1, b.scales, &sc, &mn);
    CHECK(sc == 3);
    CHECK(mn == 4);
    REQUIRE(dequantize_row(GgmlType::kQ4_K, &b, y.data(), 256));
    CHECK(y[0] == 0.0f);
    CHECK(y[32] == 3 * 7 - 0.5f * 4);
    CHECK(y[33] == -0.5f * 4);
    CHECK(y[5 * 32 + 5] == 33 * 2 - 0.5f * 2);
  }
  SUBCASE("q6_K: ql/qh interleave and int8 scales") {
    BlockQ6_K b{};
    b.d = f32_to_fp16(1.0f);
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
    // Value 128 + 64 + 1 (second half, third quarter, l = 1): high nibble of ql[64 + 1],
    // bits 4-5 of qh[32 + 1]; q = 0xA | (2 << 4) = 42 -> 42 - 32 = 10.
    b.ql[64 + 1] = 0xA0;
    b.qh[32 + 1] = 2 << 4;
    // All other values decode to q = 0 -> -32.
    REQUIRE(dequantize_row(GgmlType::kQ6_K, &b, y.data(), 256));
    const int sub = (128 + 64 + 1) / 16;
    CHECK(y[128 + 64 + 1] == static_cast<float>((sub - 8) * 10));
    CHECK(y[0] == static_cast<float>((0 - 8) * -32));
    CHECK(y[255] == static_cast<float>((15 - 8) * -32));
  }
}

namespace {

struct RoundTrip {
  float max_err_over_amax;  // worst per-block max |err| / amax(block)
  float rms_rel;            // rms(err) / rms(x) over the row
};

RoundTrip round_trip(GgmlType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_size(type, n));
  std::vector<float> y(x.size());
  REQUIRE(quantize_row(type, x.data(), q.data(), n));
  REQUIRE(dequantize_row(type, q.data(), y.data(), n));
  const int bs = std::max(block_size(type), 32);
  RoundTrip r{0, 0};
  double se = 0, sx = 0;
  for (int64_t b = 0; b < n / bs; ++b) {
    float amax = 0, err = 0;
    for (int i = 0; i < bs; ++i) {
      const size_t k = static_cast<size_t>(b * bs + i);
      amax = std::max(amax, std::fabs(x[k]));
      err = std::max(err, std::fabs(x[k] - y[k]));
      se += double(x[k] - y[k]) * (x[k] - y[k]);
      sx += double(x[k]) * x[k];
    }
    if (amax > 0) r.max_err_over_amax = std::max(r.max_err_over_amax, err / amax);
  }
  r.rms_rel = static_cast<float>(std::sqrt(se / std::max(sx, 1e-30)));
  return r;
}

}  // namespace

TEST_CASE("quantise/dequantise round trip within stated bounds") {
  std::mt19937 rng(42);
  std::normal_distribution<float> gauss(0.0f, 0.02f);
  std::uniform_real_distribution<float> uni(-3.0f, 1.0f);
  std::vector<float> g(4096), u(4096);
  for (auto& v : g) v = gauss(rng);
  for (auto& v : u) v = uni(rng);
  // Outliers and a zero block exercise the edges.
  g[17] = 0.5f;
  for (int i = 512; i < 768; ++i) g[i] = 0.0f;

  struct Bound {
    GgmlType type;
    float max_over_amax;
    float rms_rel;
  };
  const Bound bounds[] = {
      {GgmlType::kF32, 0.0f, 0.0f},
      {GgmlType::kF16, 1.0f / 1024, 1.0f / 2048},
      {GgmlType::kBF16, 1.0f / 128, 1.0f / 256},
      {GgmlType::kQ8_0, 1.0f / 254 + 1e-3f, 0.01f},
      {GgmlType::kQ4_0, 1.0f / 8 + 1e-3f, 0.12f},
      {GgmlType::kQ5_0, 1.0f / 16 + 1e-3f, 0.06f},
      {GgmlType::kQ5_1, 2.0f / 62 + 1e-3f, 0.05f},  // range <= 2 amax
      {GgmlType::kQ4_K, 0.10f, 0.10f},
      {GgmlType::kQ6_K, 0.03f, 0.03f},
  };
  for (const auto& b : bounds) {
    for (const auto* data : {&g, &u}) {
      const std::string name = type_name(b.type);
      const std::string dist = data == &g ? "gaussian" : "uniform";
      CAPTURE(name);
      CAPTURE(dist);
      const RoundTrip r = round_trip(b.type, *data);
      CHECK(r.max_err_over_amax <= b.max_over_amax);
      CHECK(r.rms_rel <= b.rms_rel);
    }
  }
}

TEST_CASE("quantize_row rejects bad rows and unsupported types") {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> out(1024);
  auto r = quantize_row(GgmlType::kQ4_K, x.data(), out.data(), 64);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("block size 256") != std::string::npos);
  auto r2 = dequantize_row(GgmlType::kQ2_K, out.data(), x.data(), 256);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message.find("q2_K") != std::string::npos);
}
