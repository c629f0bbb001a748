#pragma once
// GGML block layouts as the kernels read them (private to the kernel sources).
// These are the on-disk layouts of the GGUF format; the format layer owns the
// reference (de)quantizers, the kernels only read.
#include <cstdint>

namespace frugal::engine::blocks {

struct Q4_0 {  // 32 elements: x = (q - 8) * d; q of element j<16 is qs[j] & 15, j>=16 qs[j-16] >> 4
  uint16_t d;
  uint8_t qs[16];
};
struct Q5_0 {  // 32 elements: x = (q - 16) * d, q = nibble | (bit j of qh) << 4
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct Q5_1 {  // 32 elements: x = q * d + m
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct Q8_0 {  // 32 elements: x = q * d
  uint16_t d;
  int8_t qs[32];
};
constexpr int kQK = 256;
struct Q4_K {  // 256 elements in 8 sub-blocks of 32 with 6-bit scale and min
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
struct Q6_K {  // 256 elements in 16 groups of 16 with int8 scales; q in [0,63], x = d*sc*(q-32)
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(Q4_0) == 18 && sizeof(Q5_0) == 22 && sizeof(Q5_1) == 24 &&
              sizeof(Q8_0) == 34 && sizeof(Q4_K) == 144 && sizeof(Q6_K) == 210);

// Q4_K sub-block j's 6-bit scale and min from the packed 12 bytes.
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace frugal::engine::blocks
