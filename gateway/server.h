#pragma once
// The HTTP front end: N worker threads, each with its own io_context, acceptor(s)
// (SO_REUSEPORT), libcurl multi client and parsers, so a connection and its upstream
// transfers live on one thread and need no locks. Shared state is the config snapshot
// (atomically swapped on reload) and a few counters.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "gateway/engines.h"

namespace frugal::cache {
class Store;
class ExactCache;
class SingleFlight;
class ReplicaPicker;
}  // namespace frugal::cache
namespace frugal::router {
class Ledger;
}

namespace frugal::gateway {

class Worker;

class Server {
 public:
  // `config_path` empty = the built-in default (reload then re-reads the default).
  Server(config::GatewayConfig cfg, std::string config_path);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener (port 0 picks a free port) and starts the worker threads.
  Result<void> start();
  // Ports actually bound, in listener order.
  const std::vector<uint16_t>& ports() const { return ports_; }
  // Blocks until SIGINT/SIGTERM (graceful stop) handling SIGHUP as reload.
  void run_until_signal();
  // Stops accepting, lets in-flight requests finish up to the grace period, joins.
  void stop();
  // Re-reads the config file; on error the running config stays and the error is returned.
  Result<void> reload();
  // Applied to every configuration read from the file (at reload), after the one given
  // to the constructor: command-line additions such as `--engine-model` that must
  // survive a reload. An error rejects the reload.
  void set_config_amend(std::function<Result<void>(config::GatewayConfig&)> amend) { amend_ = std::move(amend); }

  // The loaded in-process engines (`kind: engine` providers), shared by the workers.
  const EngineRegistry& engines() const { return engines_; }

  std::shared_ptr<const config::GatewayConfig> config() const { return cfg_.load(); }
  bool ready() const { return ready_.load(); }
  std::atomic<int64_t>& in_flight() { return in_flight_; }

  // Persistent state under data_dir, opened by start(): the one RocksDB instance, the
  // exact cache over it and the cost ledger. Thread-safe objects, shared by workers.
  cache::Store& store() { return *store_; }
  cache::ExactCache& cache() { return *cache_; }
  router::Ledger& ledger() { return *ledger_; }
  cache::SingleFlight& flights() { return *flights_; }
  // The prefix-affinity picker of an alias with replicas (shared by all workers;
  // recreated when the alias's replica list changes).
  std::shared_ptr<cache::ReplicaPicker> replica_picker(const config::ModelAlias& alias);

  // Runs blocking work (RocksDB scans, flushes) off the I/O threads; `done` is posted
  // back to `io` with the result.
  void run_blocking(boost::asio::io_context& io, std::function<std::string()> work,
                    std::function<void(std::string)> done);

 private:
  Result<void> open_data(const config::GatewayConfig& cfg);

  std::atomic<std::shared_ptr<const config::GatewayConfig>> cfg_;
  std::shared_ptr<cache::Store> store_;
  std::unique_ptr<cache::ExactCache> cache_;
  std::unique_ptr<router::Ledger> ledger_;
  std::unique_ptr<cache::SingleFlight> flights_;
  std::mutex pickers_mu_;
  struct PickerEntry {
    std::vector<std::string> names;
    std::shared_ptr<cache::ReplicaPicker> picker;
  };
  std::map<std::string, PickerEntry> pickers_;
  std::unique_ptr<boost::asio::thread_pool> blocking_;
  std::string config_path_;
  std::function<Result<void>(config::GatewayConfig&)> amend_;
  EngineRegistry engines_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<uint16_t> ports_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace frugal::gateway
