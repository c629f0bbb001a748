// Exact money through the `frugal` binary, over loopback, against the C++ mock upstream:
// 1,000 identical cheap requests whose per-class micro-dollar rounding used to book 11%
// too much, and a ledger data directory written by the micro-dollar code read by today's
// `frugal costs`.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::run_output;
using frugal::test::Response;

namespace {

// What `cmd` prints on stdout; its exit status in `status`.
std::string read_file(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

std::string str(simdjson::dom::element e, const char* pointer) {
  std::string_view s;
  if (e.at_pointer(pointer).get_string().get(s)) return "<missing " + std::string(pointer) + ">";
  return std::string(s);
}

int64_t num(simdjson::dom::element e, const char* pointer) {
  int64_t v = -1;
  if (e.at_pointer(pointer).get_int64().get(v)) return -1;
  return v;
}

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// gpt-cheap: $0.15 / $0.60 per 1M; the reference: $2.50 / $10.00 per 1M.
constexpr const char* kPolicy = R"(request_types:
  - name: chat
routes:
  chat:
    reference_model: gpt-ref
    cascade:
      - model: gpt-cheap
prices:
  gpt-cheap: { input: 0.15, output: 0.60 }
  gpt-ref:   { input: 2.50, output: 10.00 }
budgets:
  - { scope: global, per: month, soft: 1000 }
)";

}  // namespace

TEST_CASE("1000 identical cheap requests cost exactly 1000 times one, in headers, the costs API and frugal costs") {
  TempDir dir("frugal-money-it");
  Child mock({MOCK_UPSTREAM_BIN, "--threads", "2"});
  const std::string mock_url = "http://127.0.0.1:" + mock.wait_for("PORT=(\\d+)");
  std::ofstream(dir.path / "policy.yaml") << kPolicy;
  std::ofstream(dir.path / "frugal.yaml") << "data_dir: " << (dir.path / "data").string() << R"(
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: )" << mock_url << R"(/v1
    retry: { max_attempts: 1 }
passthrough:
  - { prefix: "", provider: mock }
)";
  auto gw = std::make_unique<Child>(
      std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir.path / "frugal.yaml").string()});
  const std::string url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
  const std::string admin_url = frugal::test::admin_url_of(*gw);

  // 12 input + 6 output tokens: 12 × 0.15 + 6 × 0.60 = 1.8 + 3.6 = 5.4 µ$ = $0.0000054
  // (booked as 2 + 4 = 6 µ$ when each class was rounded). Baseline: 12 × 2.50 + 6 × 10.00
  // = 90 µ$; savings 84.6 µ$.
  const std::string body =
      R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"mock":{"content":"ok","usage":{"prompt":12,"completion":6}}})";
  constexpr int kRequests = 1000;
  constexpr int kThreads = 8;
  std::atomic<int> ok{0}, bad_header{0}, bad_status{0};
  std::vector<std::string> first_bad(kThreads);
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += kThreads) {
        const Response r = request("POST", url + "/v1/chat/completions", body);
        if (r.status != 200) {
          ++bad_status;
          if (first_bad[t].empty()) first_bad[t] = std::to_string(r.status) + " " + r.body;
          continue;
        }
        if (r.header("x-frugal-cost-usd") != "0.0000054" || r.header("x-frugal-savings-usd") != "0.0000846") {
          ++bad_header;
          if (first_bad[t].empty())
            first_bad[t] = r.header("x-frugal-cost-usd") + " / " + r.header("x-frugal-savings-usd");
          continue;
        }
        ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  for (const auto& b : first_bad)
    if (!b.empty()) MESSAGE("first unexpected answer: " << b);
  CHECK(bad_status == 0);
  CHECK(bad_header == 0);
  REQUIRE(ok == kRequests);

  // Each request's row was durable before its response ended (docs/policies.md), so the
  // rollups hold all of them now.
  auto check_totals = [&](const std::string& json, const char* where) {
    CAPTURE(where);
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    REQUIRE_MESSAGE(!p.parse(json).get(doc), json);
    CHECK(num(doc, "/totals/requests") == kRequests);
    CHECK(num(doc, "/totals/input_tokens") == 12 * kRequests);
    CHECK(num(doc, "/totals/output_tokens") == 6 * kRequests);
    CHECK(str(doc, "/totals/cost_usd") == "0.005400");
    CHECK(str(doc, "/totals/cost_picos") == "5400000000");
    CHECK(str(doc, "/totals/baseline_usd") == "0.090000");
    CHECK(str(doc, "/totals/savings_usd") == "0.084600");
    CHECK(str(doc, "/totals/savings_picos") == "84600000000");
    CHECK(num(doc, "/totals/cost_micros") == 5'400);  // not 6'000
  };
  const auto api = request("GET", admin_url + "/v1/frugal/costs?from=-24h&to=now&group_by=model");
  REQUIRE(api.status == 200);
  check_totals(api.body, "GET /v1/frugal/costs");
  int status = 0;
  const std::string cli_url =
      run_output(std::string(FRUGAL_BIN) + " costs --url " + admin_url + " --from -24h --group-by model --json", status);
  CHECK(status == 0);
  check_totals(cli_url, "frugal costs --url");
  const std::string table = run_output(std::string(FRUGAL_BIN) + " costs --url " + admin_url + " --from -24h", status);
  CHECK(status == 0);
  CHECK_MESSAGE(table.find("0.005400") != std::string::npos, table);

  // The budget was charged the same exact sum.
  const auto budgets = request("GET", admin_url + "/v1/frugal/budgets");
  REQUIRE(budgets.status == 200);
  CHECK_MESSAGE(budgets.body.find(R"("spent_usd":"0.005400")") != std::string::npos, budgets.body);

  // One row, exact.
  const auto rows = request("GET", admin_url + "/v1/frugal/ledger?from=0&limit=1");
  REQUIRE(rows.status == 200);
  {
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    REQUIRE(!p.parse(rows.body).get(doc));
    CHECK(str(doc, "/rows/0/cost_usd") == "0.0000054");
    CHECK(str(doc, "/rows/0/tiers/0/cost_usd") == "0.0000054");
    CHECK(str(doc, "/rows/0/savings_usd") == "0.0000846");
  }

  // After a clean shutdown, from the data directory.
  CHECK(gw->stop(SIGTERM) == 0);
  gw.reset();
  const std::string cli_dir = run_output(
      std::string(FRUGAL_BIN) + " costs --data-dir " + (dir.path / "data").string() + " --from -24h --json", status);
  CHECK(status == 0);
  check_totals(cli_dir, "frugal costs --data-dir");
}

TEST_CASE("a ledger written by the micro-dollar code still reads: frugal costs prints what that code printed") {
  // tests/router/fixtures/ledger-v2 (see its README): rows v2 and JSON v1, rollups v1,
  // in SST files and the WAL. Opened read-only, on a copy all the same.
  const std::filesystem::path fixture = std::filesystem::path(FRUGAL_SOURCE_DIR) / "tests/router/fixtures/ledger-v2";
  TempDir dir("frugal-money-v2");
  std::filesystem::copy(fixture / "db", dir.path / "db", std::filesystem::copy_options::recursive);
  const std::string base = std::string(FRUGAL_BIN) + " costs --data-dir " + dir.path.string() +
                           " --from 2026-05-27T00:00:00Z --to 2026-05-28T00:00:00Z";
  int status = 0;
  for (const char* g : {"model", "request_type,model", "hour,key,team"}) {
    CAPTURE(g);
    std::string file = std::string("costs-by-") + g + ".txt";
    for (char& c : file)
      if (c == ',') c = '-';
    const std::string out = run_output(base + " --group-by " + g, status);
    CHECK(status == 0);
    CHECK(out == read_file(fixture / file));
  }
  // JSON: the same fields and values, plus the exact *_picos strings.
  const std::string json = run_output(base + " --json", status);
  CHECK(status == 0);
  CHECK(json.find(R"("cost_picos":"2876000000")") != std::string::npos);
  const std::string without_picos =
      std::regex_replace(json, std::regex(R"(,"(cost|baseline|savings)_picos":"-?[0-9]+")"), "");
  CHECK(without_picos == read_file(fixture / "costs.json"));
}
