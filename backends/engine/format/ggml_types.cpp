// Type table and portable half/bfloat16 conversions. The (de)quantisers live in
// quants.cpp.
#include "backends/engine/format/ggml_types.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <string>

namespace frugal::engine {
namespace {

constexpr GgmlTypeTraits kUnknownTraits{"unknown", 0, 0, false};

// Indexed by the numeric id. Sizes of the types without reference kernels are kept so
// that the GGUF reader can bounds-check files that contain them.
constexpr GgmlTypeTraits kTraits[] = {
    /* 0 */ {"f32", 1, 4, true},
    /* 1 */ {"f16", 1, 2, true},
    /* 2 */ {"q4_0", 32, 18, true},
    /* 3 */ {"q4_1", 32, 20, false},
    /* 4 */ kUnknownTraits,
    /* 5 */ kUnknownTraits,
    /* 6 */ {"q5_0", 32, 22, true},
    /* 7 */ {"q5_1", 32, 24, true},
    /* 8 */ {"q8_0", 32, 34, true},
    /* 9 */ {"q8_1", 32, 36, false},
    /* 10 */ {"q2_K", 256, 84, false},
    /* 11 */ {"q3_K", 256, 110, false},
    /* 12 */ {"q4_K", 256, 144, true},
    /* 13 */ {"q5_K", 256, 176, false},
    /* 14 */ {"q6_K", 256, 210, true},
    /* 15 */ {"q8_K", 256, 292, false},
    /* 16 */ {"iq2_xxs", 256, 66, false},
    /* 17 */ {"iq2_xs", 256, 74, false},
    /* 18 */ {"iq3_xxs", 256, 98, false},
    /* 19 */ {"iq1_s", 256, 50, false},
    /* 20 */ {"iq4_nl", 32, 18, false},
    /* 21 */ {"iq3_s", 256, 110, false},
    /* 22 */ {"iq2_s", 256, 82, false},
    /* 23 */ {"iq4_xs", 256, 136, false},
    /* 24 */ {"i8", 1, 1, false},
    /* 25 */ {"i16", 1, 2, false},
    /* 26 */ {"i32", 1, 4, false},
    /* 27 */ {"i64", 1, 8, false},
    /* 28 */ {"f64", 1, 8, false},
    /* 29 */ {"iq1_m", 256, 56, false},
    /* 30 */ {"bf16", 1, 2, true},
    /* 31 */ kUnknownTraits,
    /* 32 */ kUnknownTraits,
    /* 33 */ kUnknownTraits,
    /* 34 */ {"tq1_0", 256, 54, false},
    /* 35 */ {"tq2_0", 256, 66, false},
};
constexpr uint32_t kTraitsCount = sizeof(kTraits) / sizeof(kTraits[0]);

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

const GgmlTypeTraits& type_traits(GgmlType type) {
  auto id = static_cast<uint32_t>(type);
  return id < kTraitsCount ? kTraits[id] : kUnknownTraits;
}

const char* type_name(GgmlType type) { return type_traits(type).name; }

std::optional<GgmlType> type_from_id(uint32_t id) {
  if (id >= kTraitsCount || kTraits[id].block_size == 0) return std::nullopt;
  return static_cast<GgmlType>(id);
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (uint32_t id = 0; id < kTraitsCount; ++id) {
    if (kTraits[id].block_size == 0) continue;
    std::string cand(kTraits[id].name);
    for (char& c : cand) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (cand == lower) return static_cast<GgmlType>(id);
  }
  return std::nullopt;
}

int block_size(GgmlType type) { return type_traits(type).block_size; }
size_t bytes_per_block(GgmlType type) { return type_traits(type).bytes_per_block; }

size_t row_size(GgmlType type, int64_t n) {
  const auto& t = type_traits(type);
  if (t.block_size == 0 || n < 0) return 0;
  return static_cast<size_t>(n / t.block_size) * t.bytes_per_block;
}

bool has_reference_kernels(GgmlType type) { return type_traits(type).has_reference; }

float fp16_to_f32(Fp16 h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in f32.
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7F800000u | (mant << 13));  // inf / NaN
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

Fp16 f32_to_fp16(float f) {
  const uint32_t x = float_bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) {
    // NaN: keep it a NaN (quiet bit set) whatever the payload.
    return static_cast<Fp16>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
  }
  // 65520 and above round to infinity (65504 is the largest finite half).
  if (ax >= 0x477FF000u) return static_cast<Fp16>(sign | 0x7C00u);
  if (ax < 0x38800000u) {
    // Below the smallest normal half (2^-14): subnormal count of 2^-24 units.
    // Scaling by 2^24 is exact; nearbyint rounds half to even in the default mode.
    auto m = static_cast<uint32_t>(std::nearbyint(bits_float(ax) * 16777216.0f));
    return static_cast<Fp16>(sign | m);  // m == 0x400 encodes 2^-14 correctly
  }
  uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3FFu);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry into exponent is fine
  return static_cast<Fp16>(sign | h);
}

float bf16_to_f32(Bf16 h) { return bits_float(static_cast<uint32_t>(h) << 16); }

Bf16 f32_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<Bf16>((x >> 16) | 0x40u);
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<Bf16>((x + rounding) >> 16);
}

void unpack_q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace frugal::engine
