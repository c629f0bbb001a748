// The optimised CPU forward pass against the naive fp32 reference, for every weight type
// and both architectures, with both kernel sets; and batched vs token-by-token.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backends/engine/format/gguf_writer.h"
#include "backends/engine/forward.h"
#include "backends/engine/kernels.h"
#include "backends/engine/thread_pool.h"
#include "reference_forward.h"
#include "test_models.h"

using namespace frugal::engine;
using frugal::engine::testing::ReferenceModel;
using frugal::engine::testing::TinySpec;
using frugal::engine::testing::tiny_model;

namespace {

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Runs tokens through `fwd` one batch (all positions, logits for all) in a fresh sequence.
std::vector<float> run_prompt(ForwardPass& fwd, KvCache& kv, const std::vector<int32_t>& tokens) {
  const auto seq = kv.create_sequence();
  REQUIRE(kv.reserve(seq, static_cast<int32_t>(tokens.size())).ok());
  std::vector<BatchEntry> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], static_cast<int32_t>(i), seq, true});
  std::vector<float> logits;
  REQUIRE(fwd.forward(batch, kv, logits).ok());
  kv.free_sequence(seq);
  return logits;
}

// Largest |a - b| relative to the largest |b|.
double rel_max_err(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    mag = std::max(mag, static_cast<double>(std::fabs(b[i])));
  }
  return err / std::max(mag, 1e-6);
}

// Tolerances (max |Δlogit| / max |logit_ref| over all positions and vocab): the float
// weight types only differ by summation order; the quantised ones also see activations
// quantised to 8 bits per 32-block (as ggml's vec_dot does), about 0.3% per matmul input.
double tolerance_for(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: case GgmlType::kF16: case GgmlType::kBF16: return 1e-4;
    default: return 3e-2;
  }
}

const GgmlType kAllTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16,
                              GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0,
                              GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ6_K};

}  // namespace

TEST_CASE("optimised forward matches the fp32 reference for every type and architecture") {
  ThreadPool pool(2);
  const std::vector<const cpu::KernelSet*> sets = cpu::available_kernels();
  const auto tokens = random_tokens(12, 384, 7);
  for (const char* arch : {"llama", "qwen2"}) {
    for (GgmlType type : kAllTypes) {
      TinySpec spec;
      spec.arch = arch;
      spec.type = type;
      spec.tied = type == GgmlType::kQ8_0;  // one tied-embedding model per architecture
      const std::string what = std::string(arch) + " " + type_name(type);
      CAPTURE(what);
      auto model = tiny_model(spec);
      ReferenceModel ref;
      REQUIRE(ReferenceModel::load(model->gguf(), &ref) == "");
      const auto want = ref.forward(tokens);
      for (const cpu::KernelSet* ks : sets) {
        const std::string kset = ks->name;
        CAPTURE(kset);
        auto fwd = make_cpu_forward(model, &pool, ks);
        auto kv = KvCache::create(kv_shape_for(model->config()), 1 << 20);
        REQUIRE(kv.ok());
        const auto got = run_prompt(*fwd, *kv, tokens);
        REQUIRE(got.size() == want.size());
        const double err = rel_max_err(got, want);
        MESSAGE(what << " " << kset << ": max |dlogit| / max |logit| = " << err);
        CHECK(err <= tolerance_for(type));
      }
    }
  }
}

TEST_CASE("batched forward equals token-by-token, across several sequences") {
  // Bit for bit, for every kernel set and the types with batched kernels: a row's logits
  // must not depend on what else is in the batch (speculative verification and batched
  // decoding rely on it).
  ThreadPool pool(2);
  struct Case {
    const char* arch;
    GgmlType type;
  };
  for (const Case c : {Case{"llama", GgmlType::kQ4_0}, Case{"qwen2", GgmlType::kQ4_0}, Case{"llama", GgmlType::kQ8_0},
                       Case{"llama", GgmlType::kQ4_K}}) {
    TinySpec spec;
    spec.arch = c.arch;
    spec.type = c.type;
    auto model = tiny_model(spec);
    for (const cpu::KernelSet* ks : cpu::available_kernels()) {
      if (std::string(c.arch) == "qwen2" && ks != &cpu::default_kernels()) continue;  // the architecture, once
      const std::string what = std::string(c.arch) + " " + type_name(c.type) + " " + ks->name;
      CAPTURE(what);
      auto fwd = make_cpu_forward(model, &pool, ks);
      auto kv = KvCache::create(kv_shape_for(model->config()), 4 << 20);
      REQUIRE(kv.ok());
      const int V = model->config().n_vocab;
      // Three sequences of different lengths, token by token (one entry per forward).
      std::vector<std::vector<int32_t>> prompts = {random_tokens(20, V, 1), random_tokens(5, V, 2),
                                                   random_tokens(33, V, 3)};
      std::vector<std::vector<float>> single;
      for (const auto& p : prompts) {
        const auto seq = kv->create_sequence();
        std::vector<float> all, logits;
        for (size_t i = 0; i < p.size(); ++i) {
          REQUIRE(kv->reserve(seq, static_cast<int32_t>(i) + 1).ok());
          BatchEntry e{p[i], static_cast<int32_t>(i), seq, true};
          REQUIRE(fwd->forward({&e, 1}, *kv, logits).ok());
          all.insert(all.end(), logits.begin(), logits.end());
        }
        kv->free_sequence(seq);
        single.push_back(all);
      }
      // All three interleaved in batches: first 4 positions of each, then the rest at once.
      std::vector<KvCache::SeqId> seqs;
      for (const auto& p : prompts) {
        seqs.push_back(kv->create_sequence());
        REQUIRE(kv->reserve(seqs.back(), static_cast<int32_t>(p.size())).ok());
      }
      std::vector<std::vector<float>> batched(prompts.size());
      for (auto [lo, hi] : {std::pair{0, 4}, std::pair{4, 1000}}) {
        std::vector<BatchEntry> batch;
        std::vector<size_t> owner;
        for (size_t s = 0; s < prompts.size(); ++s)
          for (int i = lo; i < std::min<int>(hi, static_cast<int>(prompts[s].size())); ++i) {
            batch.push_back({prompts[s][i], i, seqs[s], true});
            owner.push_back(s);
          }
        std::vector<float> logits;
        REQUIRE(fwd->forward(batch, *kv, logits).ok());
        for (size_t r = 0; r < batch.size(); ++r)
          batched[owner[r]].insert(batched[owner[r]].end(), logits.begin() + r * V, logits.begin() + (r + 1) * V);
      }
      for (size_t s = 0; s < prompts.size(); ++s) {
        REQUIRE(batched[s].size() == single[s].size());
        CHECK(std::memcmp(batched[s].data(), single[s].data(), single[s].size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("the llama-2 fixture (real GGUF v3, F16) matches the reference") {
  const std::string fixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";
  auto m = Model::load(fixture);
  REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
  ReferenceModel ref;
  REQUIRE(ReferenceModel::load((*m)->gguf(), &ref) == "");
  const auto tokens = random_tokens(10, (*m)->config().n_vocab, 3);
  ThreadPool pool(2);
  auto fwd = make_cpu_forward(*m, &pool);
  auto kv = KvCache::create(kv_shape_for((*m)->config()), 1 << 20);
  REQUIRE(kv.ok());
  CHECK(rel_max_err(run_prompt(*fwd, *kv, tokens), ref.forward(tokens)) <= 1e-4);
}

TEST_CASE("unsupported architectures and types are clear errors") {
  auto write = [](const std::string& arch, GgmlType embd_type) {
    GgufWriter w;
    w.set_string("general.architecture", arch);
    for (auto [k, v] : {std::pair{"embedding_length", 32}, {"block_count", 1}, {"feed_forward_length", 64},
                        {"attention.head_count", 2}})
      w.set_u32(arch + "." + k, static_cast<uint32_t>(v));
    std::vector<uint8_t> bytes(row_size(embd_type, 32) * 8, 0);
    REQUIRE(w.add_tensor_bytes("token_embd.weight", {32, 8}, embd_type, bytes).ok());
    auto data = w.serialize();
    REQUIRE(data.ok());
    auto f = GgufFile::parse_bytes(data->data(), data->size(), arch + ".gguf");
    REQUIRE(f.ok());
    return Model::from_gguf(std::move(f).value());
  };
  auto gpt2 = write("gpt2", GgmlType::kF32);
  REQUIRE_FALSE(gpt2.ok());
  MESSAGE(gpt2.error().message);
  CHECK(gpt2.error().message.find("architecture 'gpt2' is not supported") != std::string::npos);
  auto q41 = write("llama", GgmlType::kQ4_1);  // a real GGUF type the engine does not run
  REQUIRE_FALSE(q41.ok());
  MESSAGE(q41.error().message);
  CHECK(q41.error().message.find("does not support") != std::string::npos);
}
