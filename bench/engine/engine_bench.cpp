// engine_bench: throughput of the CPU engine on random-weight models shaped like
// Llama-3.2-1B (target) and SmolLM-135M (draft, with the target's vocabulary), reported
// next to a memory-bandwidth probe measured in the same run:
//   % of roofline = decode tok/s / (bandwidth / weight bytes streamed per token).
// Usage: engine_bench [--layers N] [--vocab N] [--types q8_0,q4_0] [--threads N]
//                     [--tokens N] [--dir DIR] [--no-spec] [--keep]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backends/engine/format/gguf_writer.h"
#include "backends/engine/forward.h"
#include "backends/engine/kernels.h"
#include "backends/engine/speculative.h"
#include "backends/engine/thread_pool.h"
#include "core/cpus.h"

using namespace frugal::engine;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int layers = 16;
  int vocab = 128256;
  int draft_layers = 30;
  std::vector<std::string> types = {"q8_0", "q4_0"};
  int threads = 0;
  int tokens = 16;
  std::string dir;
  bool spec = true;
  bool keep = false;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "engine_bench: %s\n", what.c_str());
  std::exit(1);
}

// Multi-threaded streaming read of a buffer much larger than the LLC; best of 3, GB/s.
double bandwidth_gbs(ThreadPool& pool) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint64_t> buf(bytes / 8);
  pool.parallel_for(static_cast<int64_t>(buf.size()), 1 << 20, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  double best = 0;
  std::vector<uint64_t> sums(64);
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    pool.parallel_for(static_cast<int64_t>(buf.size()), 1 << 18, [&](int64_t b, int64_t e, int t) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      sums[t] += s0 + s1 + s2 + s3;
    });
    best = std::max(best, static_cast<double>(bytes) / seconds_since(t0) / 1e9);
  }
  if (sums[0] == 42) std::printf(" ");  // keep the sums alive
  return best;
}

std::shared_ptr<const Model> make_model(const ModelShape& shape, GgmlType type, const std::string& path) {
  if (!std::filesystem::exists(path)) {
    const auto t0 = Clock::now();
    auto r = make_random_model(shape, type, 1, path);
    if (!r.ok()) die("make_random_model: " + r.error().message);
    std::printf("  generated %s in %.1f s\n", path.c_str(), seconds_since(t0));
  }
  auto m = Model::load(path);
  if (!m.ok()) die("load: " + m.error().message);
  return *m;
}

// Prefills `n_seq` sequences with `prompt_len` tokens, then decodes `steps` steps of one
// token per sequence; returns {prefill tok/s, aggregate decode tok/s}.
std::pair<double, double> run_batch(ForwardPass& f, KvCache& kv, int n_seq, int prompt_len, int steps,
                                    int prefill_chunk) {
  const int32_t V = f.model().config().n_vocab;
  std::mt19937 rng(3);
  std::vector<KvCache::SeqId> seqs;
  std::vector<float> logits;
  double prefill_s = 0;
  for (int s = 0; s < n_seq; ++s) {
    const auto seq = kv.create_sequence();
    seqs.push_back(seq);
    if (!kv.reserve(seq, prompt_len + steps).ok()) die("kv cache too small");
    for (int from = 0; from < prompt_len; from += prefill_chunk) {
      std::vector<BatchEntry> b;
      for (int i = from; i < std::min(prompt_len, from + prefill_chunk); ++i)
        b.push_back({static_cast<int32_t>(rng() % V), i, seq, i + 1 == prompt_len});
      const auto t0 = Clock::now();
      if (!f.forward(b, kv, logits).ok()) die("forward failed");
      prefill_s += seconds_since(t0);
    }
  }
  const auto t0 = Clock::now();
  for (int step = 0; step < steps; ++step) {
    std::vector<BatchEntry> b;
    for (int s = 0; s < n_seq; ++s) b.push_back({static_cast<int32_t>(rng() % V), prompt_len + step, seqs[s], true});
    if (!f.forward(b, kv, logits).ok()) die("forward failed");
  }
  const double decode_s = seconds_since(t0);
  for (auto s : seqs) kv.free_sequence(s);
  return {n_seq * prompt_len / prefill_s, n_seq * steps / decode_s};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--layers") o.layers = std::stoi(next());
    else if (a == "--vocab") o.vocab = std::stoi(next());
    else if (a == "--draft-layers") o.draft_layers = std::stoi(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--tokens") o.tokens = std::stoi(next());
    else if (a == "--dir") o.dir = next();
    else if (a == "--no-spec") o.spec = false;
    else if (a == "--keep") o.keep = true;
    else if (a == "--types") {
      o.types.clear();
      std::string s = next();
      for (size_t p = 0; p <= s.size();) {
        const size_t c = std::min(s.find(',', p), s.size());
        o.types.push_back(s.substr(p, c - p));
        p = c + 1;
      }
    } else {
      die("unknown option " + a);
    }
  }
  if (o.threads <= 0) o.threads = frugal::usable_cpus();  // as the engine does
  const bool own_dir = o.dir.empty();
  if (own_dir) o.dir = (std::filesystem::temp_directory_path() / ("frugal-engine-bench-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(o.dir);

  ThreadPool pool(o.threads);
  std::printf("engine_bench: %d threads, kernels %s, target layers %d vocab %d\n", o.threads,
              cpu::default_kernels().name, o.layers, o.vocab);
  const double bw = bandwidth_gbs(pool);
  std::printf("memory bandwidth (streaming read, %d threads): %.1f GB/s\n", o.threads, bw);

  ModelShape target;
  target.n_layer = o.layers;
  target.n_embd = 2048;
  target.n_head = 32;
  target.n_head_kv = 8;
  target.n_ff = 8192;
  target.n_vocab = o.vocab;
  target.rope_base = 500000.0f;
  ModelShape draft;
  draft.n_layer = o.draft_layers;
  draft.n_embd = 576;
  draft.n_head = 9;
  draft.n_head_kv = 3;
  draft.n_ff = 1536;
  draft.n_vocab = o.vocab;  // speculation needs the target's vocabulary
  draft.tied_embeddings = true;

  for (const std::string& tname : o.types) {
    auto type = type_from_name(tname);
    if (!type) die("unknown type " + tname);
    const std::string path = o.dir + "/target-" + tname + "-" + std::to_string(o.layers) + "L-" + std::to_string(o.vocab) + ".gguf";
    auto model = make_model(target, *type, path);
    auto fwd = make_cpu_forward(model, &pool);
    auto kv = KvCache::create(kv_shape_for(model->config()), size_t{1} << 30);
    if (!kv.ok()) die(kv.error().message);
    const double bytes = static_cast<double>(model->weight_bytes_per_token());
    std::printf("\n[%s] %s, %.0f MB of weights streamed per decode step\n", tname.c_str(), model->describe().c_str(), bytes / 1e6);
    run_batch(*fwd, *kv, 1, 8, 2, 64);  // warm-up: page in the mapping
    const auto [prefill, dec1] = run_batch(*fwd, *kv, 1, 128, o.tokens, 64);
    const double roof = bw * 1e9 / bytes;
    std::printf("  prefill (128-token prompt, chunks of 64): %8.1f tok/s\n", prefill);
    std::printf("  decode batch 1:  %7.2f tok/s   roofline %.2f tok/s   -> %.0f%% of roofline\n", dec1, roof, 100.0 * dec1 / roof);
    for (int b : {8, 32}) {
      const auto [p, dec] = run_batch(*fwd, *kv, b, 16, std::max(4, o.tokens / 2), 64);
      (void)p;
      std::printf("  decode batch %-2d: %7.2f tok/s aggregate (%.2fx batch 1)\n", b, dec, dec / dec1);
    }
    if (o.spec && tname == o.types.front()) {
      auto dmodel = make_model(draft, *type, o.dir + "/draft-" + tname + "-" + std::to_string(o.draft_layers) + "L-" + std::to_string(o.vocab) + ".gguf");
      auto dfwd = make_cpu_forward(dmodel, &pool);
      auto dkv = KvCache::create(kv_shape_for(dmodel->config()), size_t{256} << 20);
      if (!dkv.ok()) die(dkv.error().message);
      SamplingParams greedy;
      greedy.temperature = 0;
      const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8};
      const auto [dp, ddec] = run_batch(*dfwd, *dkv, 1, 8, o.tokens, 64);
      (void)dp;
      std::printf("  draft %s alone: %.2f tok/s\n", dmodel->describe().c_str(), ddec);
      for (auto [name, dm, dmkv] : {std::tuple{"random SmolLM-shaped draft", dfwd.get(), &*dkv},
                                    std::tuple{"self-draft (target drafts for itself: acceptance 1)", fwd.get(), &*kv}}) {
        SpeculativeDecoder spec(*fwd, *kv, *dm, *dmkv);
        const auto t0 = Clock::now();
        auto out = spec.generate(prompt, greedy, 0, o.tokens, 4);
        const double s = seconds_since(t0);
        if (!out.ok()) die(out.error().message);
        const auto& st = spec.stats();
        std::printf("  speculative k=4, %s: %.2f tok/s (%.2fx), acceptance %.2f, %.2f tokens/target step\n", name,
                    out->size() / s, out->size() / s / dec1, st.acceptance_rate(), st.tokens_per_target_step());
      }
    }
  }
  if (own_dir && !o.keep) std::filesystem::remove_all(o.dir);
  return 0;
}
