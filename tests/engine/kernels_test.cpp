// Kernel sets against a naive dequantise-then-dot, on random blocks (every bit pattern a
// GGUF file can hold: random nibbles/high bits, random scales).
#include <doctest/doctest.h>

#include <array>
#include <atomic>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "backends/engine/kernels.h"
#include "backends/engine/thread_pool.h"

using namespace frugal::engine;
using namespace frugal::engine::cpu;

namespace {

// Random bytes for a row of `type`, with the fp16 scale fields set to sane values so
// products stay finite (random bytes there would be inf/nan).
std::vector<uint8_t> random_row(uint32_t type, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> row(wtype_row_bytes(type, n));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : row) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto put_half = [&](uint8_t* p, float v) {
    const uint16_t h = f32_to_fp16(v);
    std::memcpy(p, &h, 2);
  };
  const size_t bb = wtype_block_bytes(type);
  const size_t nb = row.size() / bb;
  for (size_t b = 0; b < nb; ++b) {
    uint8_t* p = row.data() + b * bb;
    switch (static_cast<WType>(type)) {
      case WType::kF32: { const float v = u(rng); std::memcpy(p, &v, 4); break; }
      case WType::kF16: put_half(p, u(rng)); break;
      case WType::kBF16: { const float v = u(rng); uint32_t x; std::memcpy(&x, &v, 4); const uint16_t h = x >> 16; std::memcpy(p, &h, 2); break; }
      case WType::kQ4_0: case WType::kQ5_0: case WType::kQ8_0: put_half(p, 0.01f * u(rng)); break;
      case WType::kQ5_1: put_half(p, 0.01f * u(rng)); put_half(p + 2, 0.1f * u(rng)); break;
      case WType::kQ4_K: put_half(p, 0.001f * u(rng)); put_half(p + 2, 0.001f * u(rng)); break;
      case WType::kQ6_K: put_half(p + 208, 0.001f * u(rng)); break;
    }
  }
  return row;
}

const uint32_t kTypes[] = {0, 1, 30, 2, 6, 7, 8, 12, 14};

}  // namespace

TEST_CASE("fp16 conversion round-trips and rounds to nearest") {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    CHECK(f32_to_fp16(f) == h);
  }
  CHECK(fp16_to_f32(f32_to_fp16(1.0f + 1.0f / 4096)) == 1.0f);  // ties to even
  CHECK(fp16_to_f32(f32_to_fp16(65504.0f)) == 65504.0f);
}

TEST_CASE("every kernel set's dot matches dequantise-then-dot") {
  std::mt19937 rng(42);
  const std::vector<const KernelSet*> sets = available_kernels();
  if (sets.size() == 1) MESSAGE("AVX2 kernels not available on this CPU: only the scalar set is tested");
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (uint32_t type : kTypes) {
    CAPTURE(wtype_name(type));
    // Row lengths: one block, an odd number of blocks (unrolled loops' tails), and many.
    const int64_t be = std::max<int64_t>(wtype_block_elems(type), kActBlock);
    for (const int64_t n : {be, 3 * be, int64_t{1024}}) {
      CAPTURE(n);
      for (int trial = 0; trial < 4; ++trial) {
        const auto row = random_row(type, n, rng);
        std::vector<float> x(n), w(n);
        for (auto& v : x) v = nd(rng);
        scalar_kernels().dequant[type](row.data(), w.data(), n);
        std::vector<ActBlock> xq(n / kActBlock);
        scalar_kernels().quantize_act(x.data(), xq.data(), n);
        // Reference: f32 weights against the activations the kernel actually sees.
        std::vector<float> xs(n);
        for (int64_t i = 0; i < n; ++i)
          xs[i] = wtype_uses_act_blocks(type) ? xq[i / 32].d * xq[i / 32].qs[i % 32] : x[i];
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += static_cast<double>(w[i]) * xs[i];
          mag += std::fabs(static_cast<double>(w[i]) * xs[i]);
        }
        for (const KernelSet* ks : sets) {
          CAPTURE(ks->name);
          const void* act = wtype_uses_act_blocks(type) ? static_cast<const void*>(xq.data())
                                                        : static_cast<const void*>(x.data());
          const double got = ks->dot[type](row.data(), act, n);
          CHECK(std::fabs(got - ref) <= 1e-5 * mag + 1e-6);
          std::vector<float> w2(n);
          ks->dequant[type](row.data(), w2.data(), n);
          CHECK(std::memcmp(w.data(), w2.data(), n * sizeof(float)) == 0);
        }
      }
    }
  }
}

TEST_CASE("thread pool covers every index exactly once, repeatedly") {
  ThreadPool pool(3);
  std::vector<int> hits(1000);
  for (int rep = 0; rep < 200; ++rep) {
    pool.parallel_for(1000, 7, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
  }
  for (int h : hits) CHECK(h == 200);
}

TEST_CASE("thread pool jobs the caller finishes before a worker joins stay exact, one thread per index at a time") {
  // Tiny back-to-back jobs: the calling thread often takes every chunk before a worker
  // wakes, closes the job and publishes the next; a late worker must then join the next
  // job (or none), never run a chunk of a finished one or share a thread index.
  ThreadPool pool(3);
  std::array<std::atomic<int>, 3> busy{};
  std::atomic<int> overlap{0};
  std::vector<int> hits(3);
  for (int rep = 0; rep < 20000; ++rep) {
    std::fill(hits.begin(), hits.end(), 0);
    pool.parallel_for(3, 1, [&](int64_t b, int64_t e, int t) {
      if (busy[static_cast<size_t>(t)].fetch_add(1) != 0) overlap++;
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      busy[static_cast<size_t>(t)].fetch_sub(1);
    });
    if (hits != std::vector<int>{1, 1, 1}) {
      FAIL_CHECK("rep " << rep << ": an index was not covered exactly once");
      break;
    }
  }
  CHECK(overlap.load() == 0);
}

TEST_CASE("default kernel set honours FRUGAL_ENGINE_NO_SIMD") {
  const char* env = std::getenv("FRUGAL_ENGINE_NO_SIMD");
  const bool forced = env != nullptr && env[0] != '\0' && env[0] != '0';
  const KernelSet& k = default_kernels();
  MESSAGE("default kernel set: " << k.name);
  const char* cap = std::getenv("FRUGAL_ENGINE_NO_AVX512");
  const bool no512 = cap != nullptr && cap[0] != '\0' && cap[0] != '0';
  if (forced || avx2_kernels() == nullptr) CHECK(std::string(k.name) == "scalar");
  else if (no512 || avx512_kernels() == nullptr) CHECK(std::string(k.name) == "avx2");
  else CHECK(std::string(k.name) == "avx512vnni");
}

TEST_CASE("batched quantized matmul matches the fp32 reference and the dot, for every batch shape") {
  // For every kernel set with a batched kernel for the type: 11 weight rows (odd row
  // tiles) x n tokens in {1, 2, 3, 8, 33, 512} (odd token tiles; 512 tokens of 1024 elements also
  // span two L2 chunks). Each result is checked against f32 weights x the quantized
  // activations, and must equal the set's dot for that (row, token) bit for bit (what
  // keeps batched and one-token decoding, and so speculative verification, identical).
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 11;
  int tested = 0;
  for (uint32_t type : kTypes) {
    if (!wtype_uses_act_blocks(type)) continue;
    CAPTURE(wtype_name(type));
    for (const int64_t n_tok : {1, 2, 3, 5, 7, 8, 33, 512}) {
      CAPTURE(n_tok);
      const int64_t n = n_tok == 512 ? 1024 : 512;
      const int64_t nb = n / kActBlock;
      std::vector<uint8_t> w;
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = random_row(type, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      const size_t rb = wtype_row_bytes(type, n);
      std::vector<float> x(n_tok * n), wf(rows * n);
      for (auto& v : x) v = nd(rng);
      for (int64_t r = 0; r < rows; ++r) scalar_kernels().dequant[type](w.data() + r * rb, wf.data() + r * n, n);
      std::vector<ActBlock> act(n_tok * nb);
      for (int64_t t = 0; t < n_tok; ++t) scalar_kernels().quantize_act(x.data() + t * n, act.data() + t * nb, n);
      std::vector<float> ads(act.size());
      act_block_ds(act.data(), static_cast<int64_t>(act.size()), ads.data());
      // f32 weights x the quantized activations, and the sum of |terms| for the tolerance.
      std::vector<double> refs(n_tok * rows), mags(n_tok * rows);
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < n; ++i) {
            const double p = static_cast<double>(wf[r * n + i]) * act[t * nb + i / 32].d * act[t * nb + i / 32].qs[i % 32];
            refs[t * rows + r] += p;
            mags[t * rows + r] += std::fabs(p);
          }
      for (const KernelSet* ks : available_kernels()) {
        if (ks->gemm[type] == nullptr) continue;
        CAPTURE(ks->name);
        ++tested;
        // The set's own quantize_act must agree with the scalar one bit for bit.
        std::vector<ActBlock> act2(nb);
        ks->quantize_act(x.data(), act2.data(), n);
        CHECK(std::memcmp(act2.data(), act.data(), nb * sizeof(ActBlock)) == 0);
        // Written at an offset with a wider stride: the kernel must touch only its cells.
        const int64_t ldy = rows + 3;
        std::vector<float> y(n_tok * ldy, -12345.0f);
        ks->gemm[type](w.data(), rb, rows, act.data(), ads.data(), nb, n_tok, n, y.data() + 1, ldy);
        int bad_ref = 0, bad_dot = 0, touched = 0;
        for (int64_t t = 0; t < n_tok; ++t) {
          touched += y[t * ldy] != -12345.0f;
          for (int64_t c = rows + 1; c < ldy; ++c) touched += y[t * ldy + c] != -12345.0f;
          for (int64_t r = 0; r < rows; ++r) {
            const double ref = refs[t * rows + r], mag = mags[t * rows + r];
            const float got = y[t * ldy + 1 + r];
            bad_ref += !(std::fabs(got - ref) <= 1e-5 * mag + 1e-6);
            const float dot = ks->dot[type](w.data() + r * rb, act.data() + t * nb, n);
            bad_dot += std::memcmp(&got, &dot, 4) != 0;
          }
        }
        CHECK(bad_ref == 0);
        CHECK(bad_dot == 0);
        CHECK(touched == 0);
      }
    }
  }
  if (avx2_kernels() != nullptr) CHECK(tested >= 4 * 6);
}

TEST_CASE("every kernel set's swiglu matches silu(g) * u") {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-30.0f, 30.0f);
  for (const KernelSet* ks : available_kernels()) {
    CAPTURE(ks->name);
    for (const int64_t n : {1, 7, 8, 13, 4096}) {
      std::vector<float> g(n), up(n);
      for (auto& v : g) v = u(rng);
      for (auto& v : up) v = u(rng) / 30.0f;
      g[0] = -100.0f;  // far below the exp range
      std::vector<float> out = g;
      ks->swiglu(out.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * up[i];
        CHECK(std::fabs(out[i] - want) <= 1e-6 * std::fabs(want) + 1e-30 + 1e-6 * std::fabs(g[i] * up[i]));
      }
    }
  }
}

TEST_CASE("packed batched matmul matches the fp32 reference, bit-identical for every batch shape") {
  // Rows repacked 8 at a time (pack_rows): 16 rows = 2 groups, tokens in
  // {1, 2, 3, 8, 33, 512} (odd token tiles; 512 spans several L2 chunks). Each result
  // against f32 weights x the quantized activations, and equal bit for bit to the same
  // token run alone (batched decoding and speculative verification rely on it).
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 2 * kPackRows;
  int tested = 0;
  for (uint32_t type : kTypes) {
    if (!wtype_packable(type)) continue;
    CAPTURE(wtype_name(type));
    for (const int64_t n_tok : {1, 2, 3, 5, 7, 8, 33, 512}) {
      CAPTURE(n_tok);
      const int64_t n = n_tok == 512 ? 1024 : 512;
      const int64_t nb = n / kActBlock;
      const size_t rb = wtype_row_bytes(type, n);
      std::vector<uint8_t> w;
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = random_row(type, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      const size_t prb = packed_row_bytes(type, n);
      std::vector<uint8_t> packed(prb * rows);
      pack_rows(type, w.data(), rb, rows, n, packed.data());
      std::vector<float> x(n_tok * n), wf(rows * n);
      for (auto& v : x) v = nd(rng);
      for (int64_t r = 0; r < rows; ++r) scalar_kernels().dequant[type](w.data() + r * rb, wf.data() + r * n, n);
      std::vector<ActBlock> act(n_tok * nb);
      for (int64_t t = 0; t < n_tok; ++t) scalar_kernels().quantize_act(x.data() + t * n, act.data() + t * nb, n);
      std::vector<float> ads(act.size());
      act_block_ds(act.data(), static_cast<int64_t>(act.size()), ads.data());
      // f32 weights x the quantized activations, and the sum of |terms| for the tolerance.
      std::vector<double> refs(n_tok * rows), mags(n_tok * rows);
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < n; ++i) {
            const double p = static_cast<double>(wf[r * n + i]) * act[t * nb + i / 32].d * act[t * nb + i / 32].qs[i % 32];
            refs[t * rows + r] += p;
            mags[t * rows + r] += std::fabs(p);
          }
      for (const KernelSet* ks : available_kernels()) {
        if (ks->gemm_packed[type] == nullptr) continue;
        CAPTURE(ks->name);
        ++tested;
        const int64_t ldy = rows + 3;
        std::vector<float> y(n_tok * ldy, -12345.0f);
        ks->gemm_packed[type](packed.data(), prb, rows, act.data(), ads.data(), nb, n_tok, n, y.data() + 1, ldy);
        int bad_ref = 0, bad_alone = 0, touched = 0;
        for (int64_t t = 0; t < n_tok; ++t) {
          touched += y[t * ldy] != -12345.0f;
          for (int64_t c = rows + 1; c < ldy; ++c) touched += y[t * ldy + c] != -12345.0f;
          std::vector<float> alone(rows);
          ks->gemm_packed[type](packed.data(), prb, rows, act.data() + t * nb, ads.data() + t * nb, nb, 1, n,
                                alone.data(), rows);
          for (int64_t r = 0; r < rows; ++r) {
            const double ref = refs[t * rows + r], mag = mags[t * rows + r];
            const float got = y[t * ldy + 1 + r];
            bad_ref += !(std::fabs(got - ref) <= 1e-5 * mag + 1e-6);
            bad_alone += std::memcmp(&got, &alone[r], 4) != 0;
          }
        }
        CHECK(bad_ref == 0);
        CHECK(bad_alone == 0);
        CHECK(touched == 0);
      }
    }
  }
  if (avx2_kernels() != nullptr) CHECK(tested >= 12);
}

TEST_CASE("every kernel set's exp_sum matches exp(x - max) and its sum") {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-120.0f, 0.0f);
  for (const KernelSet* ks : available_kernels()) {
    CAPTURE(ks->name);
    for (const int64_t n : {1, 7, 8, 13, 1000}) {
      std::vector<float> x(n);
      for (auto& v : x) v = u(rng) + 5.0f;
      x[0] = 5.0f;  // the max
      std::vector<float> out = x;
      const float sum = ks->exp_sum(out.data(), n, 5.0f);
      double want_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = std::exp(static_cast<double>(x[i]) - 5.0);
        want_sum += want;
        CHECK(std::fabs(out[i] - want) <= 1e-6 * want + 1e-30);
      }
      CHECK(std::fabs(sum - want_sum) <= 1e-5 * want_sum);
    }
  }
}

TEST_CASE("every kernel set's attention matches a naive softmax(qK)V, whatever the tile") {
  // Paged K/V of one KV head: position p's row at blocks[p / bs] + (p % bs) * stride, with
  // stride > hd (other heads' columns in between). Against a double-precision two-pass
  // reference; tolerance 2e-5 of the largest |V| (f32 sums over up to 200 positions).
  // A query's result must not depend on the tile it shares (bit for bit).
  std::mt19937 rng(33);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  int checked = 0;
  for (const KernelSet* ks : available_kernels()) {
    CAPTURE(ks->name);
    for (const int hd : {1, 4, 20, 36, 64, 67}) {
      for (const int bs : {1, 7, 16}) {
        CAPTURE(hd);
        CAPTURE(bs);
        const int max_len = 200;
        const int64_t stride = hd + 5;
        const int n_blocks = (max_len + bs - 1) / bs;
        std::vector<std::vector<float>> kmem(n_blocks), vmem(n_blocks);
        std::vector<const float*> kb(n_blocks), vb(n_blocks);
        for (int b = 0; b < n_blocks; ++b) {
          kmem[b].resize(static_cast<size_t>(bs * stride));
          vmem[b].resize(static_cast<size_t>(bs * stride));
          for (auto& x : kmem[b]) x = 3.0f * u(rng);  // scores up to ~hd: a peaked softmax too
          for (auto& x : vmem[b]) x = u(rng);
          kb[b] = kmem[b].data();
          vb[b] = vmem[b].data();
        }
        // A tile of kAttnTile queries with lengths around the span edges.
        const int32_t lens[kAttnTile] = {1, 2, 3, 5, 31, 32, 33, 63, 64, 65, 100, 127, 128, 150, 199, 200};
        std::vector<std::vector<float>> qv(kAttnTile, std::vector<float>(hd)), ov(kAttnTile, std::vector<float>(hd));
        const float* qs[kAttnTile];
        float* outs[kAttnTile];
        for (int i = 0; i < kAttnTile; ++i) {
          for (auto& x : qv[i]) x = u(rng) / std::sqrt(static_cast<float>(hd));
          qs[i] = qv[i].data();
          outs[i] = ov[i].data();
        }
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        ks->attention(qs, lens, kAttnTile, kb.data(), vb.data(), bs, stride, hd, scale, outs);
        for (int i = 0; i < kAttnTile; ++i) {
          auto row = [&](const std::vector<const float*>& blocks, int p) { return blocks[p / bs] + (p % bs) * stride; };
          std::vector<double> sc(lens[i]);
          double mx = -1e300, sum = 0;
          for (int p = 0; p < lens[i]; ++p) {
            double d = 0;
            for (int e = 0; e < hd; ++e) d += static_cast<double>(qv[i][e]) * row(kb, p)[e];
            sc[p] = d * scale;
            mx = std::max(mx, sc[p]);
          }
          for (auto& s : sc) sum += s = std::exp(s - mx);
          double err = 0;
          for (int e = 0; e < hd; ++e) {
            double want = 0;
            for (int p = 0; p < lens[i]; ++p) want += sc[p] / sum * row(vb, p)[e];
            err = std::max(err, std::fabs(want - ov[i][e]));
          }
          CHECK(err <= 2e-5);
          // Alone (n_q = 1) and in a tile of two with a different partner: same bits.
          std::vector<float> alone(hd), pair0(hd), pair1(hd);
          float* o1[1] = {alone.data()};
          ks->attention(&qs[i], &lens[i], 1, kb.data(), vb.data(), bs, stride, hd, scale, o1);
          CHECK(std::memcmp(alone.data(), ov[i].data(), hd * sizeof(float)) == 0);
          const int j = (i + 7) % kAttnTile;
          const float* q2[2] = {qs[j], qs[i]};
          const int32_t l2[2] = {lens[j], lens[i]};
          float* o2[2] = {pair0.data(), pair1.data()};
          ks->attention(q2, l2, 2, kb.data(), vb.data(), bs, stride, hd, scale, o2);
          CHECK(std::memcmp(pair1.data(), ov[i].data(), hd * sizeof(float)) == 0);
          ++checked;
        }
      }
    }
  }
  CHECK(checked >= 6 * 3 * kAttnTile);
}
