// engine_bench: throughput of the CPU engine on random-weight models shaped like
// Llama-3.2-1B, each figure printed beside llama.cpp's on the same GGUF file when
// node-llama-cpp is installed (bench/engine/llama_cpp_bench.mjs; a reference only), and
// beside a memory-bandwidth roofline measured in the same run:
//   % of roofline = decode tok/s / (bandwidth / weight bytes streamed per token).
// Every figure is the median of --rounds rounds; frugal's and llama.cpp's rounds are
// interleaved so that load from other processes hits both alike.
//
// Usage: engine_bench [--layers N] [--vocab N] [--types q8_0,q4_0,q4_k] [--threads N]
//                     [--tokens N] [--prompt N] [--rounds N] [--dir DIR] [--keep]
//                     [--no-spec] [--no-batch] [--no-itl] [--itl-prompt N] [--itl-weights W,W...]
//                     [--llama-cpp DIR|off]
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "backends/engine/engine.h"
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
  std::vector<std::string> types = {"q8_0", "q4_0", "q4_k"};
  int threads = 0;
  int tokens = 16;
  int prompt = 512;
  int rounds = 3;
  int itl_prompt = 4096;
  // EngineConfig::attention_cost_weight values the ITL measurement runs with, in turn
  // (0: chunks of prefill_chunk tokens whatever their attention); empty: the default.
  std::vector<double> itl_weights;
  std::string dir;
  std::string llama_dir;  // folder with node_modules/node-llama-cpp; "off": skip
  bool spec = true;
  bool batch = true;  // prefill and batched decode figures (--no-batch: speculation only)
  bool itl = true;
  bool keep = false;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "engine_bench: %s\n", what.c_str());
  std::exit(1);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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

// Prefills `n_seq` sequences with `prompt_len` tokens (chunks of prefill_chunk), then
// decodes `steps` steps of one token per sequence; returns {prefill tok/s, aggregate decode tok/s}.
// Prefill (prompt_len tokens per sequence, in chunks) and then `steps` decode steps of
// n_seq sequences, each step's logits sampled greedily as the engine does (argmax and the
// token's logprob over the whole vocabulary). One untimed decode step first: the engine
// reuses its buffers across steps, so first-touch costs of a run's buffers are not decode.
std::pair<double, double> run_batch(ForwardPass& f, KvCache& kv, int n_seq, int prompt_len, int steps,
                                    int prefill_chunk) {
  const int32_t V = f.model().config().n_vocab;
  std::mt19937 rng(3);
  std::vector<KvCache::SeqId> seqs;
  static std::vector<float> logits;  // as the engine's: one buffer for every step
  double prefill_s = 0;
  for (int s = 0; s < n_seq; ++s) {
    const auto seq = kv.create_sequence();
    seqs.push_back(seq);
    if (!kv.reserve(seq, prompt_len + steps + 1).ok()) die("kv cache too small");
    for (int from = 0; from < prompt_len; from += prefill_chunk) {
      std::vector<BatchEntry> b;
      for (int i = from; i < std::min(prompt_len, from + prefill_chunk); ++i)
        b.push_back({static_cast<int32_t>(rng() % V), i, seq, i + 1 == prompt_len});
      const auto t0 = Clock::now();
      if (!f.forward(b, kv, logits).ok()) die("forward failed");
      prefill_s += seconds_since(t0);
    }
  }
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<Sampler> samplers;
  for (int s = 0; s < n_seq; ++s) samplers.emplace_back(greedy, 0, 0, std::vector<int32_t>{});
  std::vector<int32_t> next(n_seq);
  for (auto& t : next) t = static_cast<int32_t>(rng() % V);
  Clock::time_point t0;
  for (int step = 0; step <= steps; ++step) {
    if (step == 1) t0 = Clock::now();
    std::vector<BatchEntry> b;
    for (int s = 0; s < n_seq; ++s) b.push_back({next[s], prompt_len + step, seqs[s], true});
    if (!f.forward(b, kv, logits).ok()) die("forward failed");
    for (int s = 0; s < n_seq; ++s)
      next[s] = samplers[s].sample(std::span<const float>(logits.data() + static_cast<size_t>(s) * V, V)).token;
  }
  const double decode_s = seconds_since(t0);
  for (auto s : seqs) kv.free_sequence(s);
  return {n_seq * prompt_len / prefill_s, n_seq * steps / decode_s};
}

// llama.cpp's figures for one file, or {} when node-llama-cpp is missing or fails.
std::map<std::string, double> llama_cpp(const Options& o, const std::string& script, const std::string& model) {
  if (o.llama_dir == "off") return {};
  const std::string cmd = "NODE_LLAMA_CPP_DIR='" + o.llama_dir + "' node '" + script + "' '" + model + "' " +
                          std::to_string(o.threads) + " " + std::to_string(o.prompt) + " " +
                          std::to_string(o.tokens) + " 8 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  std::map<std::string, double> r;
  char line[4096];
  while (std::fgets(line, sizeof line, p) != nullptr) {
    // Flat JSON objects of numbers: "key": value pairs.
    for (const char* s = line; (s = std::strchr(s, '"')) != nullptr;) {
      const char* e = std::strchr(s + 1, '"');
      if (e == nullptr) break;
      const std::string key(s + 1, e);
      const char* colon = e + 1;
      if (*colon != ':') {
        s = e + 1;
        continue;
      }
      r[key] = std::strtod(colon + 1, nullptr);
      s = colon + 1;
    }
  }
  ::pclose(p);
  return r;
}

// A draft that knows the answer: proposes the target's own greedy continuation at no
// cost, so speculation runs at acceptance 1 with free drafting; what remains is the
// verify step's cost, the ceiling any real draft can approach.
class OracleDraft final : public ForwardPass {
 public:
  OracleDraft(std::shared_ptr<const Model> m, std::vector<int32_t> sequence)
      : model_(std::move(m)), sequence_(std::move(sequence)) {}
  frugal::Result<void> forward(std::span<const BatchEntry> batch, KvCache&, std::vector<float>& logits) override {
    const int32_t V = model_->config().n_vocab;
    size_t rows = 0;
    for (const BatchEntry& e : batch) rows += e.logits;
    logits.assign(rows * V, 0.0f);
    size_t r = 0;
    for (const BatchEntry& e : batch) {
      if (!e.logits) continue;
      const size_t next = static_cast<size_t>(e.pos) + 1;
      logits[r * V + (next < sequence_.size() ? sequence_[next] : 0)] = 100.0f;
      ++r;
    }
    return {};
  }
  const Model& model() const override { return *model_; }

 private:
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> sequence_;
};

std::vector<int32_t> greedy_target(ForwardPass& f, KvCache& kv, const std::vector<int32_t>& prompt, int n) {
  const int32_t V = f.model().config().n_vocab;
  const auto seq = kv.create_sequence();
  std::vector<int32_t> all = prompt;
  std::vector<float> logits;
  int32_t pos = 0;
  std::vector<BatchEntry> b;
  for (size_t i = 0; i < prompt.size(); ++i) b.push_back({prompt[i], pos++, seq, i + 1 == prompt.size()});
  for (int step = 0; step <= n; ++step) {
    if (!kv.reserve(seq, pos).ok() || !f.forward(b, kv, logits).ok()) die("greedy forward failed");
    if (step == n) break;
    const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
    all.push_back(t);
    b = {{t, pos++, seq, true}};
  }
  kv.free_sequence(seq);
  return all;
}

class NullText final : public TokenText {
 public:
  std::string piece(int32_t) const override { return ""; }
  bool is_end_of_generation(int32_t) const override { return false; }
};

// Inter-token latency of a running stream while another request prefills a long prompt,
// through the engine's scheduler (chunked prefill: prefill_chunk tokens per step).
void itl_during_prefill(const std::shared_ptr<const Model>& model, const Options& o, int prefill_chunk,
                        double attention_weight) {
  EngineConfig cfg;
  cfg.n_threads = o.threads;
  cfg.kv_cache_bytes = size_t{1} << 30;
  cfg.prefill_chunk = prefill_chunk;
  cfg.attention_cost_weight = attention_weight;
  auto e = Engine::create(model, cfg, std::make_shared<NullText>());
  if (!e.ok()) die(e.error().message);
  Engine& engine = **e;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Clock::time_point> stream_times;
  bool long_done = false, stream_done = false;
  Clock::time_point long_start, long_end;
  GenerateRequest stream;
  stream.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  stream.max_tokens = 100000;
  stream.ignore_eos = true;
  stream.sampling.temperature = 0;
  auto handle = engine.submit(stream, [&](const GenerateEvent& ev) {
    std::lock_guard lock(mu);
    if (ev.is_final) stream_done = true;
    else stream_times.push_back(Clock::now());
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stream_times.size() >= 4 || stream_done; });
  }
  GenerateRequest big;
  std::mt19937 rng(5);
  for (int i = 0; i < o.itl_prompt; ++i) big.prompt.push_back(static_cast<int32_t>(300 + rng() % 1000));
  big.max_tokens = 1;
  big.ignore_eos = true;
  {
    std::lock_guard lock(mu);
    long_start = Clock::now();
  }
  engine.submit(big, [&](const GenerateEvent& ev) {
    if (!ev.is_final) return;
    std::lock_guard lock(mu);
    long_done = true;
    long_end = Clock::now();
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return long_done || stream_done; });
  }
  handle.cancel();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stream_done; });
  }
  std::vector<double> before, during;
  for (size_t i = 1; i < stream_times.size(); ++i) {
    const double ms = std::chrono::duration<double, std::milli>(stream_times[i] - stream_times[i - 1]).count();
    if (stream_times[i] <= long_start) before.push_back(ms);
    else if (stream_times[i] <= long_end) during.push_back(ms);
  }
  auto pct = [](std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  const double secs = std::chrono::duration<double>(long_end - long_start).count();
  std::printf("  chunked prefill (chunk %d, attention weight %g): a %d-token prompt prefilled in %.1f s (%.1f tok/s) "
              "beside a running stream;\n    stream ITL before: p50 %.0f ms; during: p50 %.0f ms, p99 %.0f ms, max %.0f ms "
              "(%zu tokens, %llu engine steps)\n",
              prefill_chunk, attention_weight, o.itl_prompt, secs, o.itl_prompt / secs, pct(before, 0.5), pct(during, 0.5),
              pct(during, 0.99), pct(during, 1.0), during.size(), static_cast<unsigned long long>(engine.stats().steps));
}

void print_row(const char* what, double frugal, double llama, const std::string& note) {
  if (llama > 0)
    std::printf("  %-26s %9.2f tok/s  llama.cpp %9.2f tok/s  frugal/llama.cpp %.2fx%s\n", what, frugal, llama,
                frugal / llama, note.c_str());
  else
    std::printf("  %-26s %9.2f tok/s%s\n", what, frugal, note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* d = std::getenv("NODE_LLAMA_CPP_DIR")) o.llama_dir = d;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--layers") o.layers = std::stoi(next());
    else if (a == "--vocab") o.vocab = std::stoi(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--tokens") o.tokens = std::stoi(next());
    else if (a == "--prompt") o.prompt = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::max(1, std::stoi(next()));
    else if (a == "--itl-prompt") o.itl_prompt = std::stoi(next());
    else if (a == "--itl-weights") {
      std::stringstream ss(next());
      for (std::string w; std::getline(ss, w, ',');) o.itl_weights.push_back(std::stod(w));
    }
    else if (a == "--dir") o.dir = next();
    else if (a == "--llama-cpp") o.llama_dir = next();
    else if (a == "--no-spec") o.spec = false;
    else if (a == "--no-batch") o.batch = false;
    else if (a == "--no-itl") o.itl = false;
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
  const std::string script = (std::filesystem::path(argv[0]).parent_path() / "llama_cpp_bench.mjs").string();
  if (o.llama_dir.empty() || !std::filesystem::exists(script)) o.llama_dir = "off";

  ThreadPool pool(o.threads);
  std::printf("engine_bench: %d threads, kernels %s, target layers %d vocab %d, %d rounds (medians), llama.cpp: %s\n",
              o.threads, cpu::default_kernels().name, o.layers, o.vocab, o.rounds,
              o.llama_dir == "off" ? "off (set NODE_LLAMA_CPP_DIR or --llama-cpp DIR)" : o.llama_dir.c_str());
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
  target.context = std::max(8192, o.itl_prompt + 1024);
  auto path_of = [&](const std::string& t, int layers) {
    return o.dir + "/target-" + t + "-" + std::to_string(layers) + "L-" + std::to_string(o.vocab) + ".gguf";
  };

  std::map<std::string, std::shared_ptr<const Model>> models;
  for (const std::string& tname : o.types) {
    auto type = type_from_name(tname);
    if (!type) die("unknown type " + tname);
    const std::string path = path_of(tname, o.layers);
    auto model = make_model(target, *type, path);
    models[tname] = model;
    auto fwd = make_cpu_forward(model, &pool);
    auto kv = KvCache::create(kv_shape_for(model->config()), size_t{1} << 30);
    if (!kv.ok()) die(kv.error().message);
    const double bytes = static_cast<double>(model->weight_bytes_per_token());
    const double roof = bw * 1e9 / bytes;
    std::printf("\n[%s] %s, %.0f MB of weights streamed per decode step, roofline %.2f tok/s\n", tname.c_str(),
                model->describe().c_str(), bytes / 1e6, roof);
    if (!o.batch) continue;
    run_batch(*fwd, *kv, 1, 8, 2, 64);  // warm-up: page in the mapping
    std::vector<double> pre, d1, d8, d32, lpre, ld1, ld8;
    for (int round = 0; round < o.rounds; ++round) {
      pre.push_back(run_batch(*fwd, *kv, 1, o.prompt, 1, o.prompt).first);
      d1.push_back(run_batch(*fwd, *kv, 1, 64, o.tokens, 64).second);
      d8.push_back(run_batch(*fwd, *kv, 8, 16, o.tokens, 64).second);
      d32.push_back(run_batch(*fwd, *kv, 32, 16, std::max(4, o.tokens / 2), 64).second);
      auto l = llama_cpp(o, script, path);
      if (l.count("prefill")) lpre.push_back(l["prefill"]);
      if (l.count("decode1")) ld1.push_back(l["decode1"]);
      if (l.count("decodeN")) ld8.push_back(l["decodeN"]);
    }
    const double p = median(pre), b1 = median(d1), b8 = median(d8), b32 = median(d32);
    char note[160];
    print_row(("prefill " + std::to_string(o.prompt) + "-token prompt").c_str(), p, median(lpre), "");
    if (ld1.empty()) std::snprintf(note, sizeof note, "   (%.0f%% of roofline)", 100 * b1 / roof);
    else std::snprintf(note, sizeof note, "   (%.0f%% of roofline; llama.cpp %.0f%%)", 100 * b1 / roof, 100 * median(ld1) / roof);
    print_row("decode batch 1", b1, median(ld1), note);
    std::snprintf(note, sizeof note, "   (%.2fx batch 1)", b8 / b1);
    print_row("decode batch 8, aggregate", b8, median(ld8), note);
    std::snprintf(note, sizeof note, "   (%.2fx batch 1, %.2fx own prefill)", b32 / b1, b32 / p);
    print_row("decode batch 32, aggregate", b32, 0, note);
  }

  if (o.spec && models.count("q8_0")) {
    // Speculation on the Q8_0 target: verify cost, then drafts from free to self.
    auto tmodel = models["q8_0"];
    auto tf = make_cpu_forward(tmodel, &pool);
    auto tkv = KvCache::create(kv_shape_for(tmodel->config()), size_t{1} << 30);
    if (!tkv.ok()) die(tkv.error().message);
    std::printf("\n[speculative, Q8_0 target, greedy, %d tokens]\n", 4 * o.tokens);
    {
      // Verify cost: one forward of k+1 tokens vs one decode step, at a 64-token context.
      const int32_t V = tmodel->config().n_vocab;
      std::vector<float> logits;
      std::vector<double> ratio(9);
      for (int m : {1, 2, 3, 5, 9}) {
        std::vector<double> ts;
        for (int rep = 0; rep < o.rounds + 2; ++rep) {
          const auto seq = tkv->create_sequence();
          if (!tkv->reserve(seq, 64 + m).ok()) die("kv");
          std::vector<BatchEntry> b;
          for (int i = 0; i < 64; ++i) b.push_back({(i * 7919) % V, i, seq, false});
          if (!tf->forward(b, *tkv, logits).ok()) die("forward");
          b.clear();
          for (int i = 0; i < m; ++i) b.push_back({(i * 31) % V, 64 + i, seq, true});
          const auto t0 = Clock::now();
          if (!tf->forward(b, *tkv, logits).ok()) die("forward");
          ts.push_back(seconds_since(t0));
          tkv->free_sequence(seq);
        }
        ratio[m - 1] = median(ts);
      }
      std::printf("  verify cost (forward of k+1 tokens / one decode step): k=1 %.2f, k=2 %.2f, k=4 %.2f, k=8 %.2f\n",
                  ratio[1] / ratio[0], ratio[2] / ratio[0], ratio[4] / ratio[0], ratio[8] / ratio[0]);
    }
    SamplingParams greedy;
    greedy.temperature = 0;
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8};
    const int n = 4 * o.tokens;
    std::vector<double> alone_t;
    std::vector<int32_t> want;
    for (int r = 0; r < o.rounds; ++r) {
      const auto t0 = Clock::now();
      want = greedy_target(*tf, *tkv, prompt, n);
      alone_t.push_back(n / seconds_since(t0));
    }
    const double alone = median(alone_t);
    std::printf("  target alone: %.2f tok/s\n", alone);
    struct Draft {
      std::string name;
      std::shared_ptr<const Model> model;
      std::unique_ptr<ForwardPass> fwd;
      std::optional<KvCache> kv;
    };
    std::vector<Draft> drafts;
    auto add = [&](std::string name, std::shared_ptr<const Model> m, std::unique_ptr<ForwardPass> f) {
      auto kv = KvCache::create(kv_shape_for(m->config()), size_t{256} << 20);
      if (!kv.ok()) die(kv.error().message);
      drafts.push_back({std::move(name), m, std::move(f), std::move(kv).value()});
    };
    add("oracle (free, acceptance 1)", tmodel, std::make_unique<OracleDraft>(tmodel, want));
    add("self-draft (the target itself)", tmodel, make_cpu_forward(tmodel, &pool));
    {
      ModelShape q4 = target;  // same seed and names: the same weights, quantized to Q4_0
      auto m = make_model(q4, GgmlType::kQ4_0, path_of("q4_0", o.layers));
      add("Q4_0 copy of the weights", m, make_cpu_forward(m, &pool));
    }
    {
      ModelShape cut = target;  // the target's first quarter of layers, same embeddings and head
      cut.n_layer = std::max(1, o.layers / 4);
      auto m = make_model(cut, GgmlType::kQ4_0, path_of("q4_0", cut.n_layer));
      add("Q4_0, first " + std::to_string(cut.n_layer) + " layers", m, make_cpu_forward(m, &pool));
    }
    for (Draft& d : drafts) {
      for (int k : {4, 0}) {
        std::vector<double> rates, ratios;  // ratios: to the target alone run right before, same round
        SpeculativeStats st;
        double chosen = 0, cold = 0;
        // Adaptive: one decoder (one policy per target/draft pair, as the engine keeps one)
        // serves a first, cold request and then the timed rounds, which start from what
        // the earlier ones measured. Fixed k: a fresh decoder per round.
        std::optional<SpeculativeDecoder> keep;
        for (int r = k > 0 ? 0 : -1; r < o.rounds; ++r) {
          std::optional<SpeculativeDecoder> fresh;
          SpeculativeDecoder& spec = k > 0 ? fresh.emplace(*tf, *tkv, *d.fwd, *d.kv)
                                           : (keep ? *keep : keep.emplace(*tf, *tkv, *d.fwd, *d.kv));
          if (d.name.rfind("oracle", 0) == 0 && !spec.policy()) {
            DraftPolicyConfig pc;
            pc.draft_cost = 0.0;
            spec.set_policy(pc);
          }
          double alone_now = 0;
          if (r >= 0) {
            const auto ta = Clock::now();
            greedy_target(*tf, *tkv, prompt, n);
            alone_now = n / seconds_since(ta);
          }
          const SpeculativeStats before = spec.stats();
          const auto t0 = Clock::now();
          auto out = spec.generate(prompt, greedy, 0, n, k);
          const double s = seconds_since(t0);
          if (!out.ok()) die(out.error().message);
          if (std::vector<int32_t>(want.begin() + prompt.size(), want.end()) != *out)
            die("speculative output differs from target-only greedy decoding (" + d.name + ")");
          if (r < 0) {
            cold = out->size() / s;
            continue;
          }
          rates.push_back(out->size() / s);
          ratios.push_back(out->size() / s / alone_now);
          const SpeculativeStats& now = spec.stats();
          st = now;
          st.target_steps -= before.target_steps;
          st.plain_steps -= before.plain_steps;
          st.draft_steps -= before.draft_steps;
          st.probes -= before.probes;
          st.drafted -= before.drafted;
          st.accepted -= before.accepted;
          st.generated -= before.generated;
          chosen = st.target_steps > st.plain_steps
                       ? static_cast<double>(st.drafted) / static_cast<double>(st.target_steps - st.plain_steps)
                       : 0;
        }
        const double rate = median(rates), ratio = median(ratios);
        if (k > 0)
          std::printf("  %-34s k=4:      %7.2f tok/s (%.2fx alone), acceptance %.2f, %.2f tokens/verify\n", d.name.c_str(),
                      rate, ratio, st.acceptance_rate(), st.tokens_per_target_step());
        else
          std::printf("  %-34s adaptive: %7.2f tok/s (%.2fx alone; first request %.2fx), acceptance %.2f, "
                      "%llu of %llu steps drafted (mean k %.1f, %llu probes)\n",
                      d.name.c_str(), rate, ratio, cold / alone, st.acceptance_rate(),
                      static_cast<unsigned long long>(st.target_steps - st.plain_steps),
                      static_cast<unsigned long long>(st.target_steps), chosen,
                      static_cast<unsigned long long>(st.probes));
      }
    }
  }

  if (o.itl && !models.empty()) {
    std::printf("\n[inter-token latency while a long prompt prefills, %s]\n", models.begin()->first.c_str());
    std::vector<double> weights = o.itl_weights;
    if (weights.empty()) weights.push_back(EngineConfig{}.attention_cost_weight);
    for (double w : weights) itl_during_prefill(models.begin()->second, o, 64, w);
  }
  if (own_dir && !o.keep) std::filesystem::remove_all(o.dir);
  return 0;
}
