// Writes a synthetic replay log (docs/replay.md) for benchmarks and the worked example:
// N requests, two request types (qa: header x-kind: qa; chat: the rest), four models
// whose answers are right with a probability that falls with the request's difficulty,
// each with a recorded confidence that tracks (noisily) whether it is right.
//
//   replay_loggen N [seed] > log.jsonl    (also prints the matching policy with --policy)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace {

struct Model {
  const char* name;
  double skill;  // the difficulty it still answers right, on average
  int out_tokens;
};
constexpr Model kModels[] = {{"tiny", 0.45, 60}, {"small", 0.62, 70}, {"medium", 0.80, 80}, {"large", 0.93, 90}};

constexpr const char* kPolicy = R"(request_types:
  - name: qa
    match: { header: { x-kind: qa } }
  - name: chat
routes:
  qa:
    reference_model: large
    cascade:
      - model: small
        accept: { confidence: { min: 0.7 } }
      - model: large
  chat:
    reference_model: large
    cascade:
      - model: tiny
        accept: { confidence: { min: 0.8 } }
      - model: medium
        accept: { confidence: { min: 0.6 } }
      - model: large
prices:
  tiny:   { input: 0.05, output: 0.20 }
  small:  { input: 0.15, output: 0.60 }
  medium: { input: 1.00, output: 4.00 }
  large:  { input: 5.00, output: 15.00 }
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--policy") == 0) {
    std::fputs(kPolicy, stdout);
    return 0;
  }
  const long n = argc >= 2 ? std::atol(argv[1]) : 100000;
  const unsigned long seed = argc >= 3 ? std::strtoul(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 0.12);
  std::string line;
  for (long i = 0; i < n; ++i) {
    const bool qa = u(rng) < 0.4;
    const double difficulty = u(rng);
    const int in_tokens = 200 + static_cast<int>(u(rng) * 800);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"id\":\"r%ld\",%s\"request\":{\"model\":\"large\",\"messages\":[{\"role\":\"user\",\"content\":"
                  "\"question %ld\"}]},\"candidates\":{",
                  i, qa ? "\"headers\":{\"x-kind\":\"qa\"}," : "", i);
    line = buf;
    bool first = true;
    for (const Model& m : kModels) {
      const double margin = m.skill - difficulty + noise(rng);
      const bool correct = margin > 0;
      // Confidence: a logistic of the (noisily observed) margin, to two decimals.
      const double conf = std::round(100.0 / (1.0 + std::exp(-(margin + noise(rng)) * 8))) / 100.0;
      const int out = m.out_tokens / 2 + static_cast<int>(u(rng) * m.out_tokens);
      std::snprintf(buf, sizeof buf,
                    "%s\"%s\":{\"answer\":\"a%ld\",\"correct\":%s,\"usage\":{\"input_tokens\":%d,\"output_tokens\":%d},"
                    "\"confidence\":%.2f}",
                    first ? "" : ",", m.name, i, correct ? "true" : "false", in_tokens, out, conf);
      line += buf;
      first = false;
    }
    line += "}}\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return 0;
}
