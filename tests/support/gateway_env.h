#pragma once
// The integration tests' common fixture: a fresh temporary directory, the C++ mock
// upstream and a `frugal serve` on loopback ports. A test's Env derives from it, starts
// the mock, writes its config files (which need the mock's URL) and starts the gateway.
// Only for targets that define FRUGAL_BIN and MOCK_UPSTREAM_BIN
// (tests/integration/CMakeLists.txt).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace frugal::test {

struct GatewayEnv {
  std::filesystem::path dir;
  std::unique_ptr<Child> mock;
  std::unique_ptr<Child> gw;
  std::string mock_url, url, admin_url;

  // dir: <tmp>/frugal-<name>-<pid>, emptied.
  explicit GatewayEnv(const std::string& name)
      : dir(std::filesystem::temp_directory_path() / ("frugal-" + name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  GatewayEnv(const GatewayEnv&) = delete;
  GatewayEnv& operator=(const GatewayEnv&) = delete;
  ~GatewayEnv() {
    gw.reset();
    mock.reset();
    std::filesystem::remove_all(dir);
  }

  void start_mock(std::vector<std::string> args = {}) {
    args.insert(args.begin(), MOCK_UPSTREAM_BIN);
    mock = std::make_unique<Child>(std::move(args));
    mock_url = "http://127.0.0.1:" + mock->wait_for("PORT=(\\d+)");
  }
  void write(const std::string& file, const std::string& text) { std::ofstream(dir / file) << text; }
  // `frugal serve --config <dir>/<config>`; sets url and admin_url.
  void start_gateway(const std::string& config = "frugal.yaml") {
    gw = std::make_unique<Child>(std::vector<std::string>{FRUGAL_BIN, "serve", "--config", (dir / config).string()});
    url = "http://127.0.0.1:" + gw->wait_for("listening on 127\\.0\\.0\\.1:(\\d+)");
    admin_url = admin_url_of(*gw);
  }
};

}  // namespace frugal::test
