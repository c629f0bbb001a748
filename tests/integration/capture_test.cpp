// Traffic capture, shadow evaluation and feedback through the `frugal` binary, over
// loopback, against the C++ mock upstream: a route that captures every request and
// shadows it to its reference model writes replay-log lines (docs/replay.md) off the
// request path; POST /v1/frugal/feedback adds labels; `frugal replay` reads the result.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/completion_text.h"
#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::content_of;
using frugal::test::request;

namespace {

constexpr const char* kPolicy = R"(request_types:
  - name: qa
    match: { header: { x-kind: qa } }
  - name: chat
routes:
  qa:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { non_empty: true }
      - model: tier-large
    capture: { sample: 1.0, redact: none, shadow: 1.0 }
  chat:
    reference_model: tier-large
    cascade:
      - model: tier-small
prices:
  tier-small: { input: 0.10, output: 0.40 }
  tier-large: { input: 10.00, output: 30.00 }
)";

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

// The captured lines, once there are `n` (bounded wait: the writer and the shadow calls
// run in the background).
std::vector<std::string> wait_lines(const std::filesystem::path& p, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    auto l = lines_of(p);
    if (l.size() >= n || std::chrono::steady_clock::now() >= deadline) return l;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string line_of(const std::vector<std::string>& lines, const std::string& id) {
  for (const auto& l : lines)
    if (l.find("\"id\":\"" + id + "\"") != std::string::npos && l.find("\"candidates\"") != std::string::npos) return l;
  return {};
}

}  // namespace

TEST_CASE("capture: sampled requests become replay-log lines, shadows label them, feedback relabels, replay reads it") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("frugal-capture-it-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  Child mock({MOCK_UPSTREAM_BIN, "--threads", "2"});
  const std::string mock_url = "http://127.0.0.1:" + mock.wait_for("PORT=(\\d+)");
  std::ofstream(dir / "policy.yaml") << kPolicy;
  std::ofstream(dir / "frugal.yaml") << "data_dir: " << (dir / "data").string() << "\npolicy: policy.yaml\n"
                                     << "capture: { path: " << (dir / "capture.jsonl").string() << " }\n"
                                     << "server:\n  listen: [\"127.0.0.1:0\"]\n  threads: 2\n"
                                     << "providers:\n  mock:\n    kind: openai\n    base_url: " << mock_url
                                     << "/v1\n    retry: { max_attempts: 1 }\n"
                                     << "passthrough:\n  - { prefix: \"\", provider: mock }\n";
  Child gw({FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
  const std::string url = "http://127.0.0.1:" + gw.wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");

  auto ask = [&](const std::string& id, const std::string& small, const std::string& large) {
    const std::string body = R"({"model":"auto","messages":[{"role":"user","content":"Which colour is the sky?"}],)"
                             R"("mock":{"models":{"tier-small":{"content":")" + small +
                             R"("},"tier-large":{"content":")" + large + R"("}}}})";
    return request("POST", url + "/v1/chat/completions", body, {"x-kind: qa", "x-request-id: " + id});
  };
  auto agree = ask("cap-agree", "Blue", "blue");
  REQUIRE(agree.status == 200);
  CHECK(content_of(agree) == "Blue");  // the client got tier 1's answer, not the shadow's
  auto disagree = ask("cap-disagree", "Green", "Blue");
  REQUIRE(disagree.status == 200);
  // A request of a route without capture is not written.
  REQUIRE(request("POST", url + "/v1/chat/completions",
                  R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})", {"x-request-id: not-captured"})
              .status == 200);

  // Feedback: bad bodies get an OpenAI-shaped 400 naming the field; a good one is 202.
  auto bad = request("POST", url + "/v1/frugal/feedback", R"({"request_id":"cap-disagree","correct":"yes"})");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("\"param\":\"correct\"") != std::string::npos);
  CHECK(request("POST", url + "/v1/frugal/feedback", R"({"correct":true})").status == 400);
  CHECK(request("POST", url + "/v1/frugal/feedback", "not json").status == 400);
  CHECK(request("GET", url + "/v1/frugal/feedback").status == 405);
  auto fb = request("POST", url + "/v1/frugal/feedback", R"({"request_id":"cap-disagree","correct":true})");
  CHECK(fb.status == 202);

  const auto lines = wait_lines(dir / "capture.jsonl", 3);
  REQUIRE(lines.size() == 3);
  simdjson::dom::parser p;
  const std::string a = line_of(lines, "cap-agree");
  REQUIRE_FALSE(a.empty());
  simdjson::dom::element doc = p.parse(a);
  CHECK(std::string_view(doc["answered_by"]) == "tier-small");
  CHECK(std::string_view(doc["request_type"]) == "qa");
  CHECK(std::string_view(doc["candidates"]["tier-small"]["answer"]) == "Blue");
  CHECK(bool(doc["candidates"]["tier-small"]["correct"]) == true);  // agrees with the reference
  CHECK(bool(doc["candidates"]["tier-large"]["shadow"]) == true);
  CHECK(std::string_view(doc["candidates"]["tier-large"]["answer"]) == "blue");
  CHECK(std::string_view(doc["request"]["messages"].at(0)["content"]) == "Which colour is the sky?");
  const std::string d = line_of(lines, "cap-disagree");
  REQUIRE_FALSE(d.empty());
  CHECK(bool(p.parse(d)["candidates"]["tier-small"]["correct"]) == false);
  CHECK(line_of(lines, "not-captured").empty());

  // The shadow calls were priced and booked: 2 × (tier-large's usage) > 0.
  auto budgets = request("GET", url + "/v1/frugal/budgets");
  REQUIRE(budgets.status == 200);
  CHECK(std::string_view(p.parse(budgets.body)["shadow_cost_usd"]) != "0.000000");

  // The captured file is a replay log: feedback relabelled cap-disagree as correct.
  const std::string cmd = std::string(FRUGAL_BIN) + " replay --json --policy " + (dir / "policy.yaml").string() +
                          " --log " + (dir / "capture.jsonl").string();
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    CHECK(pclose(f) == 0);
  }
  simdjson::dom::element rep = p.parse(out);
  CHECK(int64_t(rep["request_types"]["qa"]["requests"]) == 2);
  CHECK(double(rep["request_types"]["qa"]["accuracy"]) == doctest::Approx(1.0));
  CHECK(double(rep["request_types"]["qa"]["reference"]["accuracy"]) == doctest::Approx(1.0));
  fs::remove_all(dir);
}
