#include "gateway/server.h"

#include "gateway/capture_writer.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "cache/exact_cache.h"
#include "cache/single_flight.h"
#include "cache/store.h"
#include "core/cpus.h"
#include "core/ids.h"
#include "policies/rate_limit.h"
#include "router/ledger.h"
#include "gateway/auth.h"
#include "gateway/client_watch.h"
#include "gateway/otlp/exporter.h"
#include "core/log.h"
#include "gateway/regex_limit_log.h"
#include "gateway/shared_keys.h"
#include "gateway/shared_state.h"
#include "gateway/telemetry.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {
// How long stop() waits, after cutting the requests left at the end of the grace
// period, for them to write their last bytes and ledger rows.
constexpr auto kShutdownCutWait = std::chrono::seconds(5);
}  // namespace

Worker::Worker(Server& s) : server(s), ledger_lane(io, s.ledger()), client(std::make_unique<http::HttpClient>(io)) {
  write_timeout_ms = s.config()->server.write_timeout_ms;
}

namespace {
thread_local Worker* t_current_worker = nullptr;
}  // namespace

Worker* Worker::current() { return t_current_worker; }
void Worker::make_current() { t_current_worker = this; }

Worker::~Worker() {
  acceptors.clear();
  // Requests still in flight after the grace period are suspended coroutines owned by
  // the io_context; their frames reference this worker's client and parser pool, so
  // they go first, while those still exist.
  io.destroy_pending_handlers();
  client.reset();
}

std::unique_ptr<simdjson::dom::parser> Worker::acquire_parser() {
  if (parsers_.empty()) return std::make_unique<simdjson::dom::parser>();
  auto p = std::move(parsers_.back());
  parsers_.pop_back();
  return p;
}

void Worker::release_parser(std::unique_ptr<simdjson::dom::parser> p) {
  if (parsers_.size() < 64) parsers_.push_back(std::move(p));
}

int64_t RequestContext::overhead_us(int64_t now_us) const {
  const int64_t v = now_us - start_us - upstream_wait_us;
  return v < 0 ? 0 : v;
}

Server::Server(config::GatewayConfig cfg, std::string config_path)
    : snap_(std::make_shared<const Snapshot>(
          Snapshot{std::make_shared<const config::GatewayConfig>(std::move(cfg)), nullptr, nullptr, 0})),
      config_path_(std::move(config_path)) {}

Server::~Server() { stop(); }

Result<void> Server::open_data(const config::GatewayConfig& cfg) {
  std::error_code fs_ec;
  std::filesystem::create_directories(cfg.data_dir, fs_ec);
  if (fs_ec) return make_error(ErrorKind::kUnavailable, "cannot create data_dir '" + cfg.data_dir + "': " + fs_ec.message());
  std::vector<cache::ColumnFamilySpec> specs;
  cache::CacheDiskOptions disk;
  disk.max_disk_bytes = static_cast<uint64_t>(cfg.cache.disk_bytes);
  specs.push_back(cache::cache_column_family_spec(disk));
  specs.push_back({router::kLedgerCf, router::ledger_cf_options()});
  specs.push_back({router::kRollupsCf, router::rollups_cf_options()});
  specs.push_back({kKeysCf, rocksdb::ColumnFamilyOptions()});
  auto store = cache::Store::open(cfg.data_dir + "/db", std::move(specs));
  if (!store) return std::move(store).error();
  store_ = std::move(*store);
  auto keys = KeyStore::open(store_, &budget_clock());
  if (!keys) return std::move(keys).error();
  keys_ = std::move(*keys);
  limiter_ = std::make_unique<policies::RateLimiter>(&budget_clock(), cfg.limits.window_ms * 1000);
  cache::ExactCacheOptions copts;
  copts.memory_bytes = static_cast<size_t>(cfg.cache.memory_bytes);
  auto cache = cache::ExactCache::open(store_, copts);
  if (!cache) return std::move(cache).error();
  cache_ = std::move(*cache);
  router::LedgerOptions lopts;
  // Test-only fault injection (tests/integration/cascade_test.cpp, the kill -9 test):
  // delays every ledger batch so that a missing durability wait would lose rows.
  if (const char* d = std::getenv("FRUGAL_TEST_LEDGER_WRITE_DELAY_MS")) lopts.write_delay_us = std::atoll(d) * 1000;
  auto ledger = router::Ledger::open(store_->db(), store_->cf(router::kLedgerCf), store_->cf(router::kRollupsCf), lopts);
  if (!ledger) return std::move(ledger).error();
  ledger_ = std::move(*ledger);
  // Keys' own budgets carry their window's spend over a restart, like the policy's.
  for (const auto& k : keys_->list()) {
    const auto e = keys_->find_name(k.name);
    if (e && e->runtime->budget)
      FRUGAL_TRY(router::restore_budgets(*ledger_, *e->runtime->budget, budget_clock().now_us()));
  }
  flights_ = std::make_unique<cache::SingleFlight>();
  blocking_ = std::make_unique<asio::thread_pool>(1);
  capture_ = std::make_unique<CaptureWriter>(cfg.capture.path.empty() ? cfg.data_dir + "/capture.jsonl" : cfg.capture.path,
                                             cfg.capture.max_file_bytes, cfg.capture.max_files,
                                             static_cast<size_t>(cfg.capture.queue));
  return {};
}

void Server::run_blocking(asio::io_context& io, std::function<std::string()> work,
                          std::function<void(std::string)> done) {
  asio::post(*blocking_, [&io, work = std::move(work), done = std::move(done)]() mutable {
    std::string r = work();
    asio::post(io, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  });
}

Result<void> Server::start() {
  const auto cfg = config();
  install_regex_limit_log();
  if (!cfg->shared_state.url.empty()) {
    shared_ = std::make_unique<SharedState>(cfg->shared_state);
    log::info("shared_state: rate limits, budgets, keys" +
              std::string(cfg->shared_state.shared_cache ? " and a cache tier" : "") + " in " + shared_->shown_url() +
              " (on failure: " + (cfg->shared_state.fail_open ? "open, local limits" : "closed, 503") + ")");
  }
  FRUGAL_TRY(open_data(*cfg));
  if (shared_) {
    shared_keys_ = std::make_unique<SharedKeys>(*keys_, *shared_);
    shared_keys_->start();  // the keys other replicas created, before the first request
  }
  {
    std::string warning;
    FRUGAL_TRY(check_listener_safety(*cfg, keys_->size(), warning));
    if (!warning.empty()) log::warn(warning);
  }
  {
    auto telemetry = Telemetry::open(cfg->telemetry);
    if (!telemetry) return std::move(telemetry).error();
    telemetry_ = std::move(*telemetry);
  }
  FRUGAL_TRY(engines_.sync(*cfg));
  if (!otlp_) apply_otlp(cfg->telemetry.otlp);
  {
    auto policy = load_policy_for(*cfg);
    if (!policy) return std::move(policy).error();
    auto budgets = budgets_for(policy->get(), nullptr, ledger_.get());
    if (!budgets) return std::move(budgets).error();
    snap_.store(std::make_shared<const Snapshot>(Snapshot{cfg, std::move(*policy), std::move(*budgets), 1}));
  }
  const int n = cfg->server.threads > 0 ? cfg->server.threads : default_io_threads(usable_cpus());
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this));

  ports_.clear();
  for (const auto& l : cfg->server.listen) {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(l.host, ec);
    if (ec) return make_error(ErrorKind::kInvalidRequest, "invalid listen address '" + l.host + "'");
    uint16_t port = l.port;
    const auto set_reuse_port = [](tcp::acceptor& acc, boost::system::error_code& ec) {
      const int one = 1;
      if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        ec = boost::system::error_code(errno, boost::system::system_category());
    };
    for (auto& w : workers_) {
      auto acc = std::make_unique<tcp::acceptor>(w->io);
      const tcp::endpoint ep(addr, port);
      // Each I/O thread has its own listener on the port (SO_REUSEPORT). Unless sharing
      // the port with other processes is configured, the first one binds without it:
      // the bind fails if any other socket listens there, so a second gateway on the
      // port fails instead of quietly taking part of the traffic. It joins the group
      // before listen(), and the others bind with SO_REUSEPORT to it.
      const bool first = w == workers_.front();
      acc->open(ep.protocol(), ec);
      if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec && (cfg->server.reuse_port || !first)) set_reuse_port(*acc, ec);
      if (!ec) acc->bind(ep, ec);
      if (!ec && first && !cfg->server.reuse_port) set_reuse_port(*acc, ec);
      if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
      if (ec == asio::error::address_in_use)
        return make_error(ErrorKind::kUnavailable,
                          "cannot listen on " + l.host + ":" + std::to_string(port) +
                              ": address in use (another process listens there; set server.reuse_port: "
                              "true to share the port on purpose)");
      if (ec)
        return make_error(ErrorKind::kUnavailable,
                          "cannot listen on " + l.host + ":" + std::to_string(port) + ": " + ec.message());
      port = acc->local_endpoint().port();  // port 0: the others join the one picked
      w->acceptors.push_back(std::move(acc));
    }
    ports_.push_back(port);
  }
  FRUGAL_TRY(bind_admin(*cfg));
  for (auto& w : workers_) {
    for (auto& acc : w->acceptors) asio::co_spawn(w->io, accept_loop(*acc, *w), asio::detached);
    if (w == workers_.front() && admin_acceptor_)
      asio::co_spawn(w->io, accept_loop(*admin_acceptor_, *w, Plane::kAdmin), asio::detached);
    threads_.emplace_back([this, wp = w.get(), poll_us = busy_poll_us(*cfg)] { run_worker(*wp, poll_us); });
  }
  ready_ = true;
  std::string where;
  for (size_t i = 0; i < ports_.size(); ++i)
    where += (i ? ", " : "") + cfg->server.listen[i].host + ":" + std::to_string(ports_[i]);
  log::info("listening on " + where + " with " + std::to_string(n) + " I/O threads (config: " +
            cfg->source + ", policy: " + (cfg->policy_path.empty() ? std::string("none") : cfg->policy_path) + ")");
  log::info("admin API (/admin, /v1/frugal, /metrics) on " + admin_host_ + ":" + std::to_string(admin_port_) +
            (auth_required(*cfg, *keys_) ? "; API requests need a virtual key"
                                         : cfg->auth == config::AuthMode::kOff ? "; auth: off"
                                                                               : "; no virtual keys: open to loopback clients"));
  if (cfg->server.watch_interval_ms > 0) watcher_ = std::thread([this] { watch_files(); });
  return {};
}

Result<void> Server::bind_admin(const config::GatewayConfig& cfg) {
  config::Listener l;
  if (cfg.admin.listen) {
    l = *cfg.admin.listen;
  } else {
    l.host = "127.0.0.1";
    // The configured port, not the bound one: port 0 (any free port) gets a free one too.
    const uint16_t api = cfg.server.listen.empty() ? 0 : cfg.server.listen.front().port;
    l.port = api == 0 || api == 65535 ? 0 : static_cast<uint16_t>(api + 1);
  }
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(l.host, ec);
  if (ec) return make_error(ErrorKind::kInvalidRequest, "invalid admin.listen address '" + l.host + "'");
  auto acc = std::make_unique<tcp::acceptor>(workers_.front()->io);
  const tcp::endpoint ep(addr, l.port);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && cfg.server.reuse_port) {
    // Gateways sharing their API port on purpose share the admin port the same way.
    const int one = 1;
    if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(ErrorKind::kUnavailable,
                      "cannot listen on " + l.host + ":" + std::to_string(l.port) + " for the admin API: " +
                          ec.message() + (cfg.admin.listen ? "" : " (set admin.listen to choose its address)"));
  admin_port_ = acc->local_endpoint().port();
  admin_host_ = l.host;
  admin_acceptor_ = std::move(acc);
  return {};
}

std::vector<int64_t> Server::sessions_per_thread() const {
  std::vector<int64_t> out;
  for (const auto& w : workers_) out.push_back(w->sessions.load(std::memory_order_relaxed));
  return out;
}

int default_io_threads(int usable) { return std::max(1, usable - 1); }

int64_t Server::busy_poll_us(const config::GatewayConfig& cfg) {
  if (cfg.server.busy_poll_us >= 0) return cfg.server.busy_poll_us;
  // Spinning on a single usable CPU would take it from the upstream and the clients.
  return usable_cpus() >= 2 ? config::kDefaultBusyPollUs : 0;
}

// Like io.run(), but after each burst of work the thread keeps polling (epoll with a
// zero timeout, as HAProxy's busy-polling does) for up to `poll_us` before it sleeps,
// while the gateway is nearly idle (at most one request in flight per I/O thread). On a
// VM an idle vCPU halts and its wake-up costs tens of µs per event; a client's next
// request or a fast upstream's answer usually lands inside the window. Under load the
// threads have work anyway and the spin would only take CPU from other processes.
void Server::run_worker(Worker& w, int64_t poll_us) {
  w.make_current();
  auto guard = asio::make_work_guard(w.io);
  if (poll_us <= 0) {
    w.io.run();
    return;
  }
  int64_t last_work = mono_us();
  while (!w.io.stopped()) {
    if (w.io.poll() > 0) {
      last_work = mono_us();
    } else if (mono_us() - last_work >= poll_us || !nearly_idle()) {
      w.io.run_one();  // sleeps until the next event
      last_work = mono_us();
    }
  }
}

bool Server::post_blocking(std::function<void()> task) {
  if (!blocking_ || stopped_.load()) return false;
  asio::post(*blocking_, std::move(task));
  return true;
}

void Server::stop() {
  if (stopped_.exchange(true) || workers_.empty()) return;
  ready_ = false;
  {
    std::lock_guard lock(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  for (auto& w : workers_) {
    asio::post(w->io, [this, wp = w.get()] {
      for (auto& acc : wp->acceptors) {
        boost::system::error_code ec;
        acc->close(ec);
      }
      if (admin_acceptor_ && wp == workers_.front().get()) {
        boost::system::error_code ec;
        admin_acceptor_->close(ec);
      }
    });
  }
  const auto grace = std::chrono::milliseconds(config()->server.shutdown_grace_ms);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (in_flight_.load() > 0) {
    // Cut what is left on the I/O threads, which still run: streams end with an error
    // event, and every exchange writes its ledger row (labelled shutdown).
    log::warn(std::to_string(in_flight_.load()) + " requests still in flight after the grace period: cutting them");
    cutting_ = true;
    for (auto& w : workers_) asio::post(w->io, [] { cut_for_shutdown(); });
    const auto cut_deadline = std::chrono::steady_clock::now() + kShutdownCutWait;
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < cut_deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (in_flight_.load() > 0)
      log::warn(std::to_string(in_flight_.load()) + " requests did not end when cut; their rows are written now");
  }
  for (auto& w : workers_) w->io.stop();
  if (blocking_) blocking_->join();
  for (auto& t : threads_) t.join();
  // Stop the engines' threads before the workers' io_contexts go: a request still in
  // flight gets its final (cancelled) event posted to a stopped but living io_context.
  engines_.shutdown();
  threads_.clear();
  // Requests that never ended are suspended coroutines; destroying them (before the
  // ledger closes) finishes their exchanges, which append their rows.
  cutting_ = true;
  for (auto& w : workers_) w->io.destroy_pending_handlers();
  for (auto& w : workers_) w->ledger_lane.hand_over();
  // Writes every queued row; completions post to the stopped io_contexts and are
  // destroyed, unrun, with them. Exchanges destroyed below find the ledger closed.
  if (ledger_) ledger_->close();
  admin_acceptor_.reset();  // on the first worker's io_context
  workers_.clear();
  telemetry_.reset();  // after the last exchange: writes the access log's last lines
  // Every exchange has recorded its trace by now: send what is queued, within the grace.
  if (otlp_) otlp_->shutdown(std::min<int64_t>(config()->telemetry.otlp.timeout_ms, 5'000));
  if (cache_) cache_->flush();
  ledger_.reset();
  cache_.reset();
  if (store_) (void)store_->flush();
  store_.reset();
  engines_.clear();
}

void Server::apply_otlp(const config::OtlpConfig& o) {
  if (o == otlp_applied_) return;
  otlp_applied_ = o;
  if (!o.enabled) {
    if (otlp_on_.exchange(nullptr)) {
      otlp_->reconfigure(o);
      log::info("otlp: export turned off");
    }
    return;
  }
  if (otlp_) otlp_->reconfigure(o);
  else otlp_ = std::make_unique<otlp::Exporter>(o);
  otlp_on_.store(otlp_.get(), std::memory_order_release);
  log::info("otlp: exporting " + std::string(o.traces ? "spans" : "") + (o.traces && o.metrics ? " and " : "") +
            (o.metrics ? "metrics" : "") + " to " + o.endpoint + " as service '" + o.service_name + "'");
}

std::vector<std::string> restart_required_keys(const config::GatewayConfig& running,
                                               const config::GatewayConfig& next) {
  std::vector<std::string> keys;
  const auto same_listeners = [](const std::vector<config::Listener>& a, const std::vector<config::Listener>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const config::Listener& x, const config::Listener& y) {
                        return x.host == y.host && x.port == y.port;
                      });
  };
  if (!same_listeners(running.server.listen, next.server.listen)) keys.emplace_back("server.listen");
  if (running.server.threads != next.server.threads) keys.emplace_back("server.threads");
  if (running.data_dir != next.data_dir) keys.emplace_back("data_dir");
  if (running.telemetry.max_label_values != next.telemetry.max_label_values)
    keys.emplace_back("telemetry.metrics.max_label_values");
  const auto& ra = running.admin.listen;
  const auto& na = next.admin.listen;
  if (ra.has_value() != na.has_value() || (ra && (ra->host != na->host || ra->port != na->port)))
    keys.emplace_back("admin.listen");
  const auto& rs = running.shared_state;
  const auto& ns = next.shared_state;
  if (rs.url != ns.url || rs.fail_open != ns.fail_open || rs.timeout_ms != ns.timeout_ms ||
      rs.shared_cache != ns.shared_cache || rs.cache_ttl_ms != ns.cache_ttl_ms ||
      rs.cache_entry_bytes != ns.cache_entry_bytes || rs.reservation_ttl_ms != ns.reservation_ttl_ms ||
      rs.poll_ms != ns.poll_ms)
    keys.emplace_back("shared_state");
  return keys;
}

Result<std::shared_ptr<const Snapshot>> Server::reload() {
  std::lock_guard lock(reload_mu_);
  auto fail = [&](Error e) -> Result<std::shared_ptr<const Snapshot>> {
    reloads_failed_.fetch_add(1);
    log::error("reload rejected, the previous configuration and policy keep serving: " + e.message);
    return e;
  };
  const auto cur = snapshot();
  auto next = config_path_.empty() ? config::load_default_config() : config::load_config_file(config_path_);
  if (!next) return fail(std::move(next).error());
  // Listeners (API and admin), threads, the data directory, shared_state and the metrics'
  // label bound need a restart
  // (reported, and the running values kept); everything else applies to the next request.
  if (amend_)
    if (auto r = amend_(*next); !r) return fail(std::move(r).error());
  std::vector<std::string> restart = restart_required_keys(*cur->cfg, *next);
  next->server.listen = cur->cfg->server.listen;
  next->server.threads = cur->cfg->server.threads;
  next->data_dir = cur->cfg->data_dir;
  next->telemetry.max_label_values = cur->cfg->telemetry.max_label_values;
  next->admin.listen = cur->cfg->admin.listen;
  next->shared_state = cur->cfg->shared_state;
  auto cfg = std::make_shared<const config::GatewayConfig>(std::move(*next));
  auto policy = load_policy_for(*cfg);
  if (!policy) return fail(std::move(policy).error());
  // Engines last among the checks: an invalid policy must not load or unload models.
  if (auto r = engines_.sync(*cfg); !r) return fail(std::move(r).error());
  auto budgets = budgets_for(policy->get(), cur.get(), ledger_.get());
  if (!budgets) return fail(std::move(budgets).error());
  // Telemetry last: the only check left is whether a new access-log file opens.
  if (telemetry_)
    if (auto r = telemetry_->reconfigure(cfg->telemetry); !r) return fail(std::move(r).error());
  apply_otlp(cfg->telemetry.otlp);
  auto snap = std::make_shared<const Snapshot>(
      Snapshot{cfg, std::move(*policy), std::move(*budgets), cur->generation + 1, std::move(restart)});
  snap_.store(snap);
  for (const std::string& k : snap->restart_required)
    log::warn("reload: " + k + " changed in " + cfg->source + "; it needs a restart (the running value stays)");
  if (limiter_) limiter_->set_window_us(cfg->limits.window_ms * 1000);
  reloads_ok_.fetch_add(1);
  log::info("configuration reloaded from " + cfg->source + " (policy: " +
            (cfg->policy_path.empty() ? std::string("none") : cfg->policy_path) + ", generation " +
            std::to_string(snap->generation) + ")");
  return snap;
}

namespace {

struct FileStamp {
  bool exists = false;
  int64_t mtime_ns = 0;
  int64_t size = 0;
  uint64_t inode = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{true, static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                   static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino)};
}

}  // namespace

// Polls the config file and the policy it names; a change in mtime, size or inode (an
// editor's rename counts) reloads. A half-written file fails to load, is logged, and is
// reloaded again when its writer finishes (its stamp changes again).
void Server::watch_files() {
  auto files = [&] {
    std::vector<std::string> f;
    if (!config_path_.empty()) f.push_back(config_path_);
    if (const auto s = snapshot(); !s->cfg->policy_path.empty()) f.push_back(s->cfg->policy_path);
    return f;
  };
  auto stamps = [](const std::vector<std::string>& paths) {
    std::vector<FileStamp> out;
    for (const auto& p : paths) out.push_back(stamp_of(p));
    return out;
  };
  std::vector<std::string> paths = files();
  std::vector<FileStamp> seen = stamps(paths);
  std::unique_lock lock(watch_mu_);
  while (!watch_stop_) {
    const int64_t interval = config()->server.watch_interval_ms;
    if (interval <= 0) {  // turned off by a reload
      watch_cv_.wait(lock, [&] { return watch_stop_; });
      break;
    }
    if (watch_cv_.wait_for(lock, std::chrono::milliseconds(interval), [&] { return watch_stop_; })) break;
    lock.unlock();
    if (auto current = files(); current != paths) {  // a reload switched to another policy file
      paths = std::move(current);
      seen = stamps(paths);
    }
    const std::vector<FileStamp> now = stamps(paths);
    if (now != seen) {
      seen = now;
      log::info("a configuration file changed on disk: reloading");
      (void)reload();
    }
    lock.lock();
  }
}

void Server::watch_signals() {
  if (signals_) return;
  sig_io_ = std::make_unique<asio::io_context>();
  signals_ = std::make_unique<asio::signal_set>(*sig_io_, SIGINT, SIGTERM, SIGHUP);
}

void Server::run_until_signal() {
  watch_signals();
  asio::io_context& sig_io = *sig_io_;
  asio::signal_set& signals = *signals_;
  bool done = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          (void)reload();
          signals.async_wait(on_signal);
          return;
        }
        log::info("signal " + std::to_string(sig) + ": shutting down");
        done = true;
      };
  signals.async_wait(on_signal);
  while (!done) sig_io.run_one();
  stop();
}

}  // namespace frugal::gateway
