// `frugal replay` and `frugal calibrate` without their printing: the time to read a
// replay log, to replay it through the router (router/replay_run.h: classification,
// budgets, the cascade executor over the replay backend, prices) and to calibrate it
// (router/calibrate.h), each on the calling thread. The reference, measured in the
// same run: the same log replayed under a policy without routes (one tier per
// request), so the ratio is what the cascades add.
//
//   replay_bench POLICY.yaml NO_ROUTES.yaml LOG.jsonl [runs=3] [folds=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "config/policy_config.h"
#include "policies/policy.h"
#include "router/calibrate.h"
#include "router/replay_run.h"

namespace {

using frugal::Result;

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::shared_ptr<const frugal::policies::CompiledPolicy> load(const char* path) {
  auto pc = frugal::config::load_policy_file(path);
  if (!pc) {
    std::fprintf(stderr, "%s\n", pc.error().message.c_str());
    std::exit(1);
  }
  auto p = frugal::policies::compile_policy(*pc);
  if (!p) {
    std::fprintf(stderr, "%s\n", p.error().message.c_str());
    std::exit(1);
  }
  return *p;
}

struct Timing {
  std::vector<double> wall, cpu;
  void add(double w, double c) {
    wall.push_back(w);
    cpu.push_back(c);
  }
  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: replay_bench POLICY.yaml NO_ROUTES.yaml LOG.jsonl [runs=3] [folds=5]\n");
    return 2;
  }
  const auto policy = load(argv[1]);
  const auto no_routes = load(argv[2]);
  const int runs = argc > 4 ? std::atoi(argv[4]) : 3;
  const int folds = argc > 5 ? std::atoi(argv[5]) : 5;
  Timing read, replay, reference, calib;
  size_t n = 0;
  for (int i = 0; i < runs; ++i) {
    double w = wall_s(), c = cpu_s();
    auto log = frugal::backends::read_replay_log_file(argv[3]);
    read.add(wall_s() - w, cpu_s() - c);
    if (!log || !log->errors.empty()) {
      std::fprintf(stderr, "the log does not read cleanly\n");
      return 1;
    }
    n = log->records.size();
    w = wall_s(), c = cpu_s();
    const auto r = frugal::router::run_replay(*policy, *log);
    replay.add(wall_s() - w, cpu_s() - c);
    if (r.overall.policy.requests != static_cast<int64_t>(n)) return 1;
    w = wall_s(), c = cpu_s();
    const auto f = frugal::router::run_replay(*no_routes, *log);
    reference.add(wall_s() - w, cpu_s() - c);
    if (f.overall.policy.requests != static_cast<int64_t>(n)) return 1;
    frugal::router::CalibrateOptions o;
    o.below_reference = 0.01;
    o.folds = folds;
    o.models = {"tiny", "small", "medium", "large"};
    w = wall_s(), c = cpu_s();
    const auto cal = frugal::router::calibrate(*policy, *log, o);
    calib.add(wall_s() - w, cpu_s() - c);
    if (i == 0)
      std::printf("calibrate chose: held-out accuracy %.4f, cost ratio %.3f\n", cal.heldout.accuracy(),
                  static_cast<double>(cal.heldout.cost.picos()) / static_cast<double>(cal.reference.cost.picos()));
  }
  auto row = [&](const char* what, const Timing& t, bool per_request) {
    const double w = Timing::median(t.wall), c = Timing::median(t.cpu);
    std::printf("%-34s median wall %8.3f s, cpu %8.3f s", what, w, c);
    if (per_request) std::printf("  -> %9.0f req/s (wall), %9.0f req/s (cpu)", n / w, n / c);
    std::printf("\n");
  };
  std::printf("%zu requests, %d runs\n", n, runs);
  row("read the log", read, true);
  row("replay (cascades)", replay, true);
  row("replay (no routes: reference)", reference, true);
  row("read + replay (cascades)", Timing{{Timing::median(read.wall) + Timing::median(replay.wall)},
                                         {Timing::median(read.cpu) + Timing::median(replay.cpu)}},
      true);
  std::printf("%-34s %.2f (cpu)\n", "replay cascades / no routes", Timing::median(replay.cpu) / Timing::median(reference.cpu));
  char label[64];
  std::snprintf(label, sizeof label, "calibrate (4 models, %d folds)", folds);
  row(label, calib, false);
  return 0;
}
