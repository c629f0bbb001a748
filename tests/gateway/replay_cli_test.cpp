// `frugal replay` and `frugal calibrate` as commands (gateway/replay_cli.h): exit codes,
// bad lines on stderr, --json shapes, --write (loads with the real policy loader) and
// --plot (a PNG with the frontier and the chosen point).
#include "gateway/replay_cli.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../router/replay_log_util.h"
#include "config/policy_config.h"
#include "gateway/cost_plot.h"
#include "policies/policy.h"

using namespace frugal;
using namespace frugal::testing;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("frugal-replay-cli-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    const auto p = (path / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string at(const std::string& name) const { return (path / name).string(); }
};

std::string separable_text() {
  std::string text;
  for (int i = 0; i < 100; ++i) {
    const bool right = i % 10 < 7;
    text += qa_line(std::to_string(i), {{"small", right, right ? 0.9 : 0.1}, {"large", true, std::nullopt}}) + "\n";
  }
  return text;
}

struct Run {
  int rc;
  std::string out, err;
};

Run replay(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = gateway::replay_main(args, out, err);
  return {rc, out.str(), err.str()};
}

Run calibrate(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = gateway::calibrate_main(args, out, err);
  return {rc, out.str(), err.str()};
}

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint32_t be32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) | (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

}  // namespace

TEST_CASE("frugal replay: text report, JSON report, and bad lines with line numbers make a nonzero exit") {
  TempDir d;
  const auto policy = d.file("p.yaml", kReplayPolicy);
  const auto log = d.file("l.jsonl", separable_text());
  Run r = replay({"--policy", policy, "--log", log});
  CHECK(r.rc == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("request type qa (route: small > large; reference large)") != std::string::npos);
  CHECK(r.out.find("tier 1 small") != std::string::npos);

  r = replay({"--policy", policy, "--log", log, "--json"});
  REQUIRE(r.rc == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_FALSE(parser.parse(r.out).get(doc));
  CHECK(int64_t(doc["request_types"]["qa"]["requests"]) == 100);
  CHECK(double(doc["request_types"]["qa"]["accuracy"]) == doctest::Approx(1.0));
  CHECK(int64_t(doc["request_types"]["qa"]["tiers"].at(0)["accepted"]) == 70);
  CHECK(int64_t(doc["request_types"]["qa"]["tiers"].at(0)["escalated"]) == 30);
  CHECK(double(doc["overall"]["cost_usd"]) == doctest::Approx(0.048));
  CHECK(double(doc["overall"]["reference"]["cost_usd"]) == doctest::Approx(0.12));

  const auto bad = d.file("bad.jsonl", separable_text() + "{\"id\":\"z\"}\n");
  r = replay({"--policy", policy, "--log", bad});
  CHECK(r.rc == 1);
  CHECK(r.err.find("line 101: candidates: missing or empty") != std::string::npos);
  CHECK(r.out.find("1 bad lines") != std::string::npos);

  CHECK(replay({"--policy", policy}).rc == 2);
  CHECK(replay({"--policy", policy, "--log", d.at("missing.jsonl")}).rc == 1);
}

TEST_CASE("frugal calibrate: --json in the documented shape, --write loads with the policy loader, --plot draws") {
  TempDir d;
  const auto policy = d.file("p.yaml", kReplayPolicy);
  const auto log = d.file("l.jsonl", separable_text());
  const auto out_yaml = d.at("calibrated.yaml");
  const auto out_png = d.at("plot.png");
  Run r = calibrate({"--policy", policy, "--log", log, "--target-accuracy", "ref-0.5pp", "--folds", "4", "--json",
                     "--write", out_yaml, "--plot", out_png});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_FALSE(parser.parse(r.out).get(doc));
  CHECK(double(doc["heldout"]["accuracy"]) == doctest::Approx(1.0));
  CHECK(double(doc["heldout"]["cost_usd"]) == doctest::Approx(0.048));  // 100 x small + 30 x large
  CHECK(std::string_view(doc["reference"]["model"]) == "large");
  CHECK(double(doc["reference"]["accuracy"]) == doctest::Approx(1.0));
  CHECK(double(doc["reference"]["cost_usd"]) == doctest::Approx(0.12));
  CHECK(double(doc["cost_ratio"]) == doctest::Approx(0.4));
  auto cascade = doc["policy"]["routes"]["qa"]["cascade"];
  CHECK(std::string_view(cascade.at(0)["model"]) == "small");
  CHECK(double(cascade.at(0)["accept"]["confidence"]["min"]) == doctest::Approx(0.9));
  CHECK(std::string_view(cascade.at(1)["model"]) == "large");
  CHECK(double(doc["request_types"]["qa"]["cost_ratio"]) == doctest::Approx(0.4));
  CHECK(int64_t(doc["request_types"]["qa"]["folds"]) == 4);

  // --write: a policy the real loader accepts, with the calibrated route and the rest kept.
  auto pc = config::load_policy_file(out_yaml);
  REQUIRE_MESSAGE(pc, (pc ? "" : pc.error().message));
  REQUIRE(policies::compile_policy(*pc));
  const auto* route = pc->route("qa");
  REQUIRE(route);
  CHECK(route->reference_model == "large");
  REQUIRE(route->tiers.size() == 2);
  CHECK(route->tiers[0].model == "small");
  REQUIRE(route->tiers[0].accept);
  CHECK(route->tiers[0].accept->kind == config::RuleSpec::Kind::kConfidence);
  CHECK(route->tiers[0].accept->threshold == doctest::Approx(0.9));
  CHECK_FALSE(route->tiers[1].accept);
  CHECK(pc->prices.size() == 3);
  CHECK(pc->request_types.size() == 2);
  // ...and replaying it gives the calibrated cost.
  r = replay({"--policy", out_yaml, "--log", log, "--json"});
  REQUIRE(r.rc == 0);
  REQUIRE_FALSE(parser.parse(r.out).get(doc));
  CHECK(double(doc["overall"]["cost_usd"]) == doctest::Approx(0.048));

  // --plot: a PNG whose pixels include the chosen point's and the frontier's colours.
  const std::string png = read(out_png);
  REQUIRE(png.size() > 33);
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  CHECK(png.substr(12, 4) == "IHDR");
  const uint32_t w = be32(png, 16), h = be32(png, 20);
  CHECK(w == static_cast<uint32_t>(gateway::kPlotWidth));
  CHECK(h == static_cast<uint32_t>(gateway::kPlotPanelHeight));
  std::string z;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t len = be32(png, at);
    if (png.substr(at + 4, 4) == "IDAT") z += png.substr(at + 8, len);
    at += 12 + len;
  }
  std::string raw((w * 3 + 1) * h, '\0');
  uLongf raw_len = raw.size();
  REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_len, reinterpret_cast<const Bytef*>(z.data()), z.size()) == Z_OK);
  CHECK(raw_len == raw.size());
  auto count = [&](unsigned rgb) {
    int n = 0;
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) {
        const size_t at = y * (w * 3 + 1) + 1 + x * 3;
        const unsigned px = (static_cast<unsigned>(static_cast<uint8_t>(raw[at])) << 16) |
                            (static_cast<unsigned>(static_cast<uint8_t>(raw[at + 1])) << 8) | static_cast<uint8_t>(raw[at + 2]);
        n += px == rgb;
      }
    return n;
  };
  CHECK(count(gateway::kPlotChosenRgb) >= 100);   // the 11x11 chosen marker (and its legend swatch)
  CHECK(count(gateway::kPlotFrontierRgb) >= 50);
  CHECK(count(gateway::kPlotReferenceRgb) >= 20);
}

TEST_CASE("frugal calibrate: usage errors exit 2") {
  TempDir d;
  const auto policy = d.file("p.yaml", kReplayPolicy);
  const auto log = d.file("l.jsonl", separable_text());
  CHECK(calibrate({"--policy", policy, "--log", log}).rc == 2);  // no goal
  CHECK(calibrate({"--policy", policy, "--log", log, "--target-accuracy", "ref+1pp"}).rc == 2);
  CHECK(calibrate({"--policy", policy, "--log", log, "--target-accuracy", "0.9", "--max-cost", "1"}).rc == 2);
  CHECK(calibrate({"--policy", policy, "--log", log, "--target-accuracy", "0.9", "--folds", "1"}).rc == 2);
  CHECK(calibrate({"--policy", policy, "--log", log, "--max-cost", "0.0004", "--folds", "3"}).rc == 0);
}

TEST_CASE("cost plot: the Pareto frontier keeps only points no cheaper point beats") {
  const auto f = gateway::pareto_frontier({{3, 0.9}, {1, 0.5}, {2, 0.4}, {2, 0.8}, {4, 0.85}, {5, 0.95}});
  REQUIRE(f.size() == 4);
  CHECK(f[0] == std::make_pair(1.0, 0.5));
  CHECK(f[1] == std::make_pair(2.0, 0.8));
  CHECK(f[2] == std::make_pair(3.0, 0.9));
  CHECK(f[3] == std::make_pair(5.0, 0.95));
}
