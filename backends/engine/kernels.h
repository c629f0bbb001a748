#pragma once
// Kernel sets for the CPU path. A KernelSet is a table of plain functions, one per
// weight type, so the forward pass never branches on the ISA: the scalar set runs
// everywhere; the AVX-512 VNNI set (256-bit vectors with 32 registers and vpdpbusd) or
// else the AVX2/FMA set is picked at run time by cpuid (FRUGAL_ENGINE_NO_SIMD=1 forces
// the scalar set, FRUGAL_ENGINE_NO_AVX512=1 the AVX2 one). A CUDA kernel set would be a
// different implementation of the forward pass (see forward.h), not of this table.
//
// Weight rows use GGML's block layouts (type ids are GGML's). Activations for the
// quantized types are quantized to ActBlock (32 int8 + scale + sum), one layout for
// every quantized weight type: the per-block sum lets offsets (Q4_0's -8, Q5's -16,
// Q4_K's mins, Q5_1's m) be applied once per block instead of per element.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace frugal::engine::cpu {

// GGML tensor type ids (the values stored in GGUF files).
enum class WType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ6_K = 14,
  kBF16 = 30,
};

const char* wtype_name(uint32_t type);
bool wtype_supported(uint32_t type);
// Elements per block and bytes per block (F32/F16/BF16: 1 element).
int64_t wtype_block_elems(uint32_t type);
size_t wtype_block_bytes(uint32_t type);
// Bytes of a row of n elements; n must be a multiple of the block size.
size_t wtype_row_bytes(uint32_t type, int64_t n);
// Whether the weight type consumes ActBlock activations (else f32 activations).
bool wtype_uses_act_blocks(uint32_t type);

constexpr int kActBlock = 32;
struct ActBlock {
  float d;          // scale: x ≈ d * qs
  int32_t s;        // sum of qs
  int8_t qs[kActBlock];
};
static_assert(sizeof(ActBlock) == 40);

// y = W row · x over n elements. For act-block types x is `const ActBlock*` (n/32 blocks),
// else `const float*`.
using DotFn = float (*)(const void* row, const void* x, int64_t n);
// Dequantizes one row of n elements to f32.
using DequantFn = void (*)(const void* row, float* y, int64_t n);
// x (n,) -> y (n/32 ActBlocks); n a multiple of 32.
using QuantizeActFn = void (*)(const float* x, ActBlock* y, int64_t n);
// Batched matmul for act-block types: for rows r < n_rows of W (row r at w + r*row_bytes,
// n elements) and tokens t < n_tok (ActBlocks at a + t*lda, n/32 of them),
// y[t*ldy + r] = W_r · a_t. ads holds d*s of every ActBlock, same indexing as a (the
// K-quants fold their block minimums with it). Each weight block is decoded once per
// tile of tokens. Every (row, token) result is bit-identical whatever n_rows, n_tok and
// the position in them, and equals dot[type] of the same set: batched and one-by-one
// decoding give the same logits, so speculative verification agrees with plain decoding.
using GemmFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t n_rows, const ActBlock* a, const float* ads,
                        int64_t lda, int64_t n_tok, int64_t n, float* y, int64_t ldy);

// Weight repacking (at load, by the forward pass): rows in groups of kPackRows whose
// 32-element blocks are interleaved 4 bytes at a time, so that one integer-dot
// instruction advances 8 rows by 4 elements and its i32 lanes are the 8 rows (no
// per-pair reductions; weights decoded once per tile of tokens). Packed group-block:
// the 8 fp16 scales, then for each 4-element chunk the 8 rows' 4 bytes (Q8_0: 8 chunks
// of q + 128 as u8, the unsigned operand of vpdpbusd; Q4_0: 4 chunks of the original nibble bytes, low nibbles = elements 4k..4k+3,
// high = 16+4k..; Q4_K: see packed_group_bytes). Used for n_rows % kPackRows == 0.
constexpr int kPackRows = 8;
bool wtype_packable(uint32_t type);
// Bytes of one packed group-block (8 rows x one weight block) and per row of n elements
// (the original sizes for Q8_0/Q4_0; Q4_K +2.8%: its scales stored unpacked).
size_t packed_group_bytes(uint32_t type);
size_t packed_row_bytes(uint32_t type, int64_t n);
// rows (n_rows x n, row r at w + r*row_bytes) -> packed (n_rows * packed_row_bytes bytes).
void pack_rows(uint32_t type, const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n, uint8_t* out);
// GemmFn over packed rows (row_bytes: packed_row_bytes; w: the packed panel of rows
// [0, n_rows), n_rows a multiple of kPackRows). Every (row, token) result is
// bit-identical whatever n_tok and the token's position (not equal to dot[type]).
using PackedGemmFn = GemmFn;

// Causal attention of n_q <= kAttnTile queries against one KV head's paged K/V. Query i
// (hd floats at q[i]) attends to positions [0, n_pos[i]); position p's K row is at
// k_blocks[p / bs] + (p % bs) * kv_stride, its V row likewise in v_blocks.
// out[i] (hd floats) = softmax(scale * q_i . K) V.
// Positions are visited in spans of kAttnSpan with a running max and sum (online
// softmax), so each span's K/V rows are read once for all n_q queries (a prefill chunk's
// tokens and a GQA group's heads share them). A query's result depends only on its own
// inputs, never on n_q, the other queries or bs: batched and token-by-token forwards
// agree bit for bit.
constexpr int kAttnTile = 16;
constexpr int kAttnSpan = 32;  // a multiple of 8 (the SIMD score loop)
using AttentionFn = void (*)(const float* const* q, const int32_t* n_pos, int n_q, const float* const* k_blocks,
                             const float* const* v_blocks, int32_t bs, int64_t kv_stride, int hd, float scale,
                             float* const* out);

struct KernelSet {
  const char* name = "";
  QuantizeActFn quantize_act = nullptr;
  // Indexed by GGML type id; nullptr for unsupported types.
  DotFn dot[32] = {};
  DequantFn dequant[32] = {};
  // Batched matmul per type; nullptr: the forward pass calls dot per (row, token).
  GemmFn gemm[32] = {};
  // Batched matmul over pack_rows layout; nullptr: this set does not use packing for the type.
  PackedGemmFn gemm_packed[32] = {};
  // f32 helpers used by attention: a·b over n, and y += s*x.
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  void (*axpy_f32)(float s, const float* x, float* y, int64_t n) = nullptr;
  // g[i] = silu(g[i]) * u[i] (the SwiGLU gate).
  void (*swiglu)(float* g, const float* u, int64_t n) = nullptr;
  // x[i] = exp(x[i] - mx); returns the sum (softmax numerators).
  float (*exp_sum)(float* x, int64_t n, float mx) = nullptr;
  AttentionFn attention = nullptr;
};

const KernelSet& scalar_kernels();
// nullptr when the CPU lacks AVX2+FMA+F16C.
const KernelSet* avx2_kernels();
// nullptr when the CPU lacks AVX-512 F/VL/BW/VNNI (or AVX2+FMA+F16C).
const KernelSet* avx512_kernels();
// The set the engine uses: AVX-512 VNNI, else AVX2, else scalar; FRUGAL_ENGINE_NO_SIMD=1
// forces scalar, FRUGAL_ENGINE_NO_AVX512=1 caps it at AVX2.
const KernelSet& default_kernels();
// Every set this CPU can run, scalar first (for tests and benchmarks).
std::vector<const KernelSet*> available_kernels();
// ds[i] = a[i].d * a[i].s for n ActBlocks (the `ads` input of GemmFn).
void act_block_ds(const ActBlock* a, int64_t n, float* ds);

// fp16 / bf16 scalar conversions (exact, no lookup tables).
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

}  // namespace frugal::engine::cpu
