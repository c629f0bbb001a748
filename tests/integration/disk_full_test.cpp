// A full data directory: frugal's data dir on a 4 MiB tmpfs, nearly filled by a file the
// test places there, under load. frugal must keep answering, say "degraded" on /readyz,
// keep every acknowledged request's ledger row (held in memory, written once the disk has
// room), recover without a restart when the filler is deleted, and open the database
// cleanly on the next start. Mounting needs root (CI runs as root); without it the test
// prints a SKIP line and exits 77, which CTest reports as skipped (SKIP_RETURN_CODE).
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/process.h"

using frugal::test::Child;
using frugal::test::request;
using frugal::test::Response;

namespace {

constexpr int kSkip = 77;

// Fills the file system of `path` with one file, then gives back `leave` bytes.
void fill_leaving(const std::filesystem::path& path, size_t leave) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::setvbuf(f, nullptr, _IONBF, 0);
  const std::string chunk(4096, 'f');
  size_t written = 0;
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) written += chunk.size();
  std::fclose(f);
  REQUIRE(written > leave);
  std::filesystem::resize_file(path, written - leave);
}

struct Env {
  std::filesystem::path dir, data;
  std::unique_ptr<Child> mock, gw;
  std::string url, admin_url;
  bool mounted = false;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("frugal-diskfull-it-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    data = dir / "data";
    std::filesystem::create_directories(data);
    if (mount("tmpfs", data.c_str(), "tmpfs", 0, "size=4m") != 0) {
      std::printf("SKIP: disk_full_integration: cannot mount a 4 MiB tmpfs on %s (%s); needs root\n", data.c_str(),
                  std::strerror(errno));
      std::fflush(stdout);
      std::filesystem::remove_all(dir);
      std::_Exit(kSkip);
    }
    mounted = true;
    mock = std::make_unique<Child>(std::vector<std::string>{MOCK_UPSTREAM_BIN});
    const std::string mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
    std::ofstream(dir / "frugal.yaml") << "data_dir: " + data.string() + R"(
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: )" + mock_url + R"(/v1
    retry: { max_attempts: 1 }
cache:
  ttl: 1h
passthrough:
  - { prefix: "gpt-", provider: mock }
)";
  }
  void start() {
    gw = std::make_unique<Child>(
        std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / "frugal.yaml").string()});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
    admin_url = frugal::test::admin_url_of(*gw);
  }
  ~Env() {
    gw.reset();
    mock.reset();
    if (mounted) umount2(data.c_str(), MNT_DETACH);
    std::filesystem::remove_all(dir);
  }
  Response chat(const std::string& id) {
    // Deterministic and unique: every answer is a cache fill as well as a ledger row.
    return request("POST", url + "/v1/chat/completions",
                   R"({"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":")" + id + R"("}]})",
                   {"x-request-id: " + id}, nullptr, 10'000);
  }
  std::set<std::string> ledger_ids() {
    auto r = request("GET", admin_url + "/v1/frugal/ledger?from=0&limit=10000");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    simdjson::dom::parser p;
    std::set<std::string> ids;
    const simdjson::dom::array rows = p.parse(r.body)["rows"].get_array().value();
    for (simdjson::dom::element row : rows) ids.insert(std::string(row["id"].get_string().value()));
    return ids;
  }
};

}  // namespace

TEST_CASE("a full data dir degrades readyz but keeps serving, keeps every ledger row and recovers") {
  Env e;
  e.start();
  REQUIRE(request("GET", e.url + "/readyz").status == 200);
  const auto filler = e.data / "filler";
  fill_leaving(filler, 64 << 10);

  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::vector<std::string> failures;
  std::atomic<bool> degraded{false};
  std::atomic<int> after_degraded{0};
  // Four clients until /readyz has said "degraded" and 40 more requests were answered,
  // bounded by a request count.
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 1500 && after_degraded < 40; ++i) {
        const std::string id = "full-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = e.chat(id);
        std::lock_guard lock(mu);
        if (r.status == 200 && r.curl_code == CURLE_OK) acknowledged.push_back(id);
        else failures.push_back(id + ": " + std::to_string(r.status) + " " + r.body);
        if (degraded) ++after_degraded;
      }
    });
  }
  std::string readyz_body;
  for (int i = 0; i < 600 && !degraded; ++i) {
    auto r = request("GET", e.url + "/readyz");
    if (r.status == 503) {
      readyz_body = r.body;
      degraded = true;
    } else {
      (void)e.gw->output();  // keep frugal's log pipe drained
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  for (auto& c : clients) c.join();
  (void)e.gw->output();
  for (const auto& f : failures) MESSAGE("failed: " << f);
  REQUIRE_MESSAGE(degraded.load(), "readyz never reported the full disk; output:\n" << e.gw->output());
  CHECK(readyz_body.find(R"("status":"degraded")") != std::string::npos);
  CHECK(readyz_body.find("No space left on device") != std::string::npos);
  CHECK(failures.empty());
  CHECK(after_degraded.load() >= 40);
  // Still up and serving while the disk is full.
  CHECK(e.chat("full-while-degraded").status == 200);
  acknowledged.push_back("full-while-degraded");
  CHECK(request("GET", e.url + "/readyz").status == 503);
  CHECK(request("GET", e.url + "/healthz").status == 200);

  // Space returns: frugal resumes on its own, writes the held rows and is ready again.
  std::filesystem::remove(filler);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    ready = request("GET", e.url + "/readyz").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_MESSAGE(ready, "readyz stayed degraded after space returned; output:\n" << e.gw->output());
  REQUIRE(e.chat("full-after-recovery").status == 200);
  acknowledged.push_back("full-after-recovery");
  {
    // Logged, once per event, and the per-batch ledger failures rate-limited (1 per 10 s).
    const std::string out = e.gw->output();
    CHECK(out.find("storage: writes to the data directory fail") != std::string::npos);
    CHECK(out.find("storage: writes to the data directory succeed again") != std::string::npos);
    size_t ledger_lines = 0;
    for (size_t at = out.find("ledger: a batch of"); at != std::string::npos; at = out.find("ledger: a batch of", at + 1))
      ++ledger_lines;
    CHECK(ledger_lines >= 1);
    CHECK(ledger_lines <= 10);
    CHECK(out.find("Assertion") == std::string::npos);
  }

  const auto check_rows = [&](const std::set<std::string>& ids) {
    size_t missing = 0;
    for (const auto& id : acknowledged)
      if (!ids.count(id)) {
        ++missing;
        if (missing <= 10) MESSAGE("no ledger row for acknowledged request " << id);
      }
    CHECK(missing == 0);
  };
  // The row of the request after recovery was written before its response (durable).
  check_rows(e.ledger_ids());
  MESSAGE(acknowledged.size() << " requests acknowledged");

  // A restart opens the database cleanly and finds every row.
  CHECK(e.gw->stop(SIGTERM) == 0);
  e.start();
  CHECK(request("GET", e.url + "/readyz").status == 200);
  check_rows(e.ledger_ids());
  CHECK(e.chat("full-after-restart").status == 200);
  acknowledged.push_back("full-after-restart");

  // Started on a disk with no room left at all: it either opens (and says degraded) or
  // exits with an error naming the cause; it never aborts.
  CHECK(e.gw->stop(SIGTERM) == 0);
  fill_leaving(filler, 0);
  {
    Child full({FRUGAL_BIN, "serve", "--config", (e.dir / "frugal.yaml").string()});
    const std::string first = full.wait_for("(listening on 127\\.0\\.0\\.1:\\d+|frugal: .*)");
    if (first.rfind("listening on", 0) == 0) {
      const std::string url = "http://127.0.0.1:" + first.substr(first.rfind(':') + 1);
      CHECK(request("POST", url + "/v1/chat/completions",
                    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"on a full disk"}]})")
                .status == 200);
      CHECK(full.stop(SIGTERM) == 0);
    } else {
      CHECK_MESSAGE(first.find("No space left on device") != std::string::npos, first);
      try {  // until it exits (its output ends), bounded
        full.wait_for("^never printed$", 20'000);
      } catch (const std::runtime_error&) {
      }
      CHECK(full.stop(SIGTERM) == 1);  // its own exit status, not our signal
    }
  }
  std::filesystem::remove(filler);
  e.start();
  CHECK(request("GET", e.url + "/readyz").status == 200);
  check_rows(e.ledger_ids());
}
