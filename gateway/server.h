#pragma once
// The HTTP front end: N worker threads, each with its own io_context, acceptor(s)
// (SO_REUSEPORT), libcurl multi client and parsers, so a connection and its upstream
// transfers live on one thread and need no locks. Shared state is the snapshot (config
// + compiled policy + budgets, atomically swapped on reload) and a few counters.
//
// Reload: SIGHUP, POST /admin/reload and a change of the config or policy file (polled
// every server.watch_interval) all call reload(), serialised by a mutex. A new snapshot
// is built completely (config parsed, policy loaded, compiled and checked against the
// config, budgets carried over or rebuilt) before one atomic store publishes it; on any
// error nothing changes and the error says where (file:line:col, key, what).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "core/money.h"
#include "gateway/engines.h"
#include "gateway/keys.h"
#include "gateway/snapshot.h"
#include "router/route_targets.h"

namespace frugal::cache {
class Store;
class ExactCache;
class SingleFlight;
}  // namespace frugal::cache
namespace frugal::router {
class Ledger;
}
namespace frugal::policies {
class RateLimiter;
}

namespace frugal::otlp {
class Exporter;
}

namespace frugal::gateway {

class Worker;
class Telemetry;
class CaptureWriter;
class SharedState;
class SharedKeys;

// The default number of I/O threads for `usable` CPUs: one fewer, at least one. The
// CPU left over runs what the I/O threads depend on (the kernel's network stack,
// RocksDB's flushes, the blocking pool) and, on a small machine, the clients or the
// upstream. On two CPUs one I/O thread that always has work took 11% less CPU per
// request than two that each sleep and get preempted (docs/PERFORMANCE.md, session 9).
int default_io_threads(int usable);

// What a reload cannot apply: the keys whose value differs between the running config and
// the one read (server.listen, server.threads, data_dir,
// telemetry.metrics.max_label_values). The running values stay until a restart; the
// reload logs a warning and reports them (Snapshot::restart_required).
std::vector<std::string> restart_required_keys(const config::GatewayConfig& running,
                                               const config::GatewayConfig& next);

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
  // Takes over SIGINT, SIGTERM and SIGHUP for run_until_signal(). Call it before
  // start(): its descriptors are then taken before any client can exhaust them.
  void watch_signals();
  // Blocks until SIGINT/SIGTERM (graceful stop) handling SIGHUP as reload.
  void run_until_signal();
  // Stops accepting, lets in-flight requests finish up to the grace period, joins.
  void stop();
  // Re-reads the config file and the policy it names; on error the running snapshot
  // stays and the error is returned. Thread-safe; blocks (file I/O, policy compilation,
  // possibly a budget rebuild from the ledger, loading changed engines): never call it
  // on an I/O thread.
  Result<std::shared_ptr<const Snapshot>> reload();
  // Applied to every configuration read from the file (at reload), after the one given
  // to the constructor: command-line additions such as `--engine-model` that must
  // survive a reload. An error rejects the reload.
  void set_config_amend(std::function<Result<void>(config::GatewayConfig&)> amend) { amend_ = std::move(amend); }

  // The loaded in-process engines (`kind: engine` providers), shared by the workers.
  const EngineRegistry& engines() const { return engines_; }

  std::shared_ptr<const Snapshot> snapshot() const { return snap_.load(); }
  std::shared_ptr<const config::GatewayConfig> config() const { return snap_.load()->cfg; }
  // Blocking work (reloads, ledger queries) off the I/O threads; the task runs on a
  // pool thread. Returns false once the server is stopping.
  bool post_blocking(std::function<void()> task);

  // Budget soft-limit hits since start (also logged and sent as x-frugal-budget-warning).
  void count_soft_budget_exceeded() { soft_budget_exceeded_.fetch_add(1, std::memory_order_relaxed); }
  int64_t soft_budget_exceeded() const { return soft_budget_exceeded_.load(std::memory_order_relaxed); }
  // Failed accepts since start (out of descriptors, mostly); each burst is logged once
  // a second and, when resources ran out, retried after a pause.
  void count_accept_failure() { accept_failures_.fetch_add(1, std::memory_order_relaxed); }
  int64_t accept_failures() const { return accept_failures_.load(std::memory_order_relaxed); }
  // Client connections closed by server.write_timeout (a client that stopped reading).
  void count_write_timeout() { write_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  int64_t write_timeouts() const { return write_timeouts_.load(std::memory_order_relaxed); }
  int64_t reloads_ok() const { return reloads_ok_.load(); }
  int64_t reloads_failed() const { return reloads_failed_.load(); }
  bool ready() const { return ready_.load(); }
  // Set once stop()'s grace period has passed and the requests still running are cut
  // (their ledger rows are labelled shutdown).
  bool cutting_for_shutdown() const { return cutting_.load(std::memory_order_relaxed); }
  std::atomic<int64_t>& in_flight() { return in_flight_; }
  int io_threads() const { return static_cast<int>(workers_.size()); }
  // Client connections each I/O thread serves now.
  std::vector<int64_t> sessions_per_thread() const;
  // The I/O thread a new connection goes to: round robin over all of them, whichever
  // thread's listener took the connection (SO_REUSEPORT hashes unevenly: 64 clients
  // split 36/28 load one thread a third more than the other).
  Worker& next_worker() { return *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()]; }
  // At most one request in flight per I/O thread: the threads would sleep between
  // events (busy-polling pays off, a ledger row is written at once).
  bool nearly_idle() const { return in_flight_.load(std::memory_order_relaxed) <= io_threads(); }

  // Persistent state under data_dir, opened by start(): the one RocksDB instance, the
  // exact cache over it and the cost ledger. Thread-safe objects, shared by workers.
  cache::Store& store() { return *store_; }
  cache::ExactCache& cache() { return *cache_; }
  router::Ledger& ledger() { return *ledger_; }
  cache::SingleFlight& flights() { return *flights_; }
  // Metrics, access log and upstream warnings of finished requests (gateway/telemetry.h);
  // set by start(), null before.
  Telemetry* telemetry() { return telemetry_.get(); }
  // The OTLP exporter (telemetry.otlp), null while export is off (a reload may turn it on
  // or off). Thread-safe; it outlives the workers, so an exchange may record into it
  // until the server is destroyed.
  otlp::Exporter* otlp() { return otlp_on_.load(std::memory_order_acquire); }
  // Virtual keys (gateway/keys.h), opened by start(); thread-safe.
  KeyStore& keys() { return *keys_; }
  // rpm/tpm buckets of keys and teams (policies/rate_limit.h); thread-safe.
  policies::RateLimiter& limiter() { return *limiter_; }
  // Redis-backed limits shared by replicas (shared_state:), null when not configured.
  SharedState* shared_state() { return shared_.get(); }
  // The admin plane's port (0 before start()).
  uint16_t admin_port() const { return admin_port_; }
  // The prefix-affinity pickers of aliases with replicas (shared by all workers).
  router::ReplicaPickers& replica_pickers() { return pickers_; }
  // Captured traffic (gateway/capture_writer.h, config `capture:`); set by start().
  CaptureWriter* capture() { return capture_.get(); }
  // What shadow evaluation spent (the reference model's calls), in picodollars.
  void add_shadow_cost(Money m) { shadow_cost_picos_.fetch_add(static_cast<int64_t>(m.picos()), std::memory_order_relaxed); }
  Money shadow_cost() const { return Money::from_picos(shadow_cost_picos_.load(std::memory_order_relaxed)); }

  // Runs blocking work (RocksDB scans, flushes) off the I/O threads; `done` is posted
  // back to `io` with the result.
  void run_blocking(boost::asio::io_context& io, std::function<std::string()> work,
                    std::function<void(std::string)> done);

 private:
  Result<void> open_data(const config::GatewayConfig& cfg);
  // The admin plane's listener (admin.listen, or 127.0.0.1 on the first port + 1).
  Result<void> bind_admin(const config::GatewayConfig& cfg);
  void watch_files();
  // telemetry.otlp of a new config: starts, reconfigures or turns off the exporter.
  void apply_otlp(const config::OtlpConfig& o);
  static int64_t busy_poll_us(const config::GatewayConfig& cfg);  // server.busy_poll, resolved
  void run_worker(Worker& w, int64_t poll_us);

  std::unique_ptr<boost::asio::io_context> sig_io_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::atomic<std::shared_ptr<const Snapshot>> snap_;
  std::mutex reload_mu_;
  std::thread watcher_;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
  std::atomic<int64_t> soft_budget_exceeded_{0};
  std::atomic<int64_t> shadow_cost_picos_{0};
  std::unique_ptr<CaptureWriter> capture_;
  std::atomic<int64_t> accept_failures_{0};
  std::atomic<int64_t> write_timeouts_{0};
  std::atomic<int64_t> reloads_ok_{0};
  std::atomic<int64_t> reloads_failed_{0};
  std::shared_ptr<cache::Store> store_;
  std::unique_ptr<cache::ExactCache> cache_;
  std::unique_ptr<router::Ledger> ledger_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<policies::RateLimiter> limiter_;
  std::unique_ptr<SharedKeys> shared_keys_;  // before shared_: its thread runs their ticks
  std::unique_ptr<SharedState> shared_;
  uint16_t admin_port_ = 0;
  std::string admin_host_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> admin_acceptor_;
  std::unique_ptr<otlp::Exporter> otlp_;  // made when export is first on, kept to the end
  std::atomic<otlp::Exporter*> otlp_on_{nullptr};  // otlp_ while export is on
  config::OtlpConfig otlp_applied_;  // what apply_otlp last applied (under reload_mu_)
  std::unique_ptr<cache::SingleFlight> flights_;
  std::unique_ptr<Telemetry> telemetry_;
  router::ReplicaPickers pickers_;
  std::unique_ptr<boost::asio::thread_pool> blocking_;
  std::string config_path_;
  std::function<Result<void>(config::GatewayConfig&)> amend_;
  EngineRegistry engines_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<uint16_t> ports_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> cutting_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<size_t> next_worker_{0};
};

}  // namespace frugal::gateway
