#include "gateway/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>

#include <filesystem>

#include "cache/exact_cache.h"
#include "cache/replica_picker.h"
#include "cache/single_flight.h"
#include "cache/store.h"
#include "core/ids.h"
#include "router/ledger.h"
#include "gateway/log.h"
#include "gateway/worker.h"

namespace frugal::gateway {

Worker::Worker(Server& s) : server(s), client(std::make_unique<http::HttpClient>(io)) {}

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
    : cfg_(std::make_shared<const config::GatewayConfig>(std::move(cfg))),
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
  auto store = cache::Store::open(cfg.data_dir + "/db", std::move(specs));
  if (!store) return std::move(store).error();
  store_ = std::move(*store);
  cache::ExactCacheOptions copts;
  copts.memory_bytes = static_cast<size_t>(cfg.cache.memory_bytes);
  auto cache = cache::ExactCache::open(store_, copts);
  if (!cache) return std::move(cache).error();
  cache_ = std::move(*cache);
  auto ledger = router::Ledger::open(store_->db(), store_->cf(router::kLedgerCf), store_->cf(router::kRollupsCf));
  if (!ledger) return std::move(ledger).error();
  ledger_ = std::move(*ledger);
  flights_ = std::make_unique<cache::SingleFlight>();
  blocking_ = std::make_unique<asio::thread_pool>(1);
  return {};
}

std::shared_ptr<cache::ReplicaPicker> Server::replica_picker(const config::ModelAlias& alias) {
  std::vector<std::string> names;
  for (const auto& r : alias.replicas) names.push_back(r.provider + "/" + r.model);
  std::lock_guard lk(pickers_mu_);
  PickerEntry& e = pickers_[alias.name];
  if (!e.picker || e.names != names) {
    cache::ReplicaPickerOptions opts;
    opts.epsilon = alias.replica_load_slack;
    e.picker = std::make_shared<cache::ReplicaPicker>(names, opts);
    e.names = std::move(names);
  }
  return e.picker;
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
  FRUGAL_TRY(open_data(*cfg));
  FRUGAL_TRY(engines_.sync(*cfg));
  int n = cfg->server.threads > 0 ? cfg->server.threads
                                  : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this));

  ports_.clear();
  for (const auto& l : cfg->server.listen) {
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(l.host, ec);
    if (ec) return make_error(ErrorKind::kInvalidRequest, "invalid listen address '" + l.host + "'");
    uint16_t port = l.port;
    for (auto& w : workers_) {
      auto acc = std::make_unique<tcp::acceptor>(w->io);
      const tcp::endpoint ep(addr, port);
      acc->open(ep.protocol(), ec);
      if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        const int one = 1;
        if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
          ec = boost::system::error_code(errno, boost::system::system_category());
      }
      if (!ec) acc->bind(ep, ec);
      if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
      if (ec)
        return make_error(ErrorKind::kUnavailable,
                          "cannot listen on " + l.host + ":" + std::to_string(port) + ": " + ec.message());
      port = acc->local_endpoint().port();  // port 0: the others join the one picked
      w->acceptors.push_back(std::move(acc));
    }
    ports_.push_back(port);
  }
  for (auto& w : workers_) {
    for (auto& acc : w->acceptors) asio::co_spawn(w->io, accept_loop(*acc, *w), asio::detached);
    threads_.emplace_back([wp = w.get()] {
      auto guard = asio::make_work_guard(wp->io);
      wp->io.run();
    });
  }
  ready_ = true;
  std::string where;
  for (size_t i = 0; i < ports_.size(); ++i)
    where += (i ? ", " : "") + cfg->server.listen[i].host + ":" + std::to_string(ports_[i]);
  log::info("listening on " + where + " with " + std::to_string(n) + " I/O threads (config: " +
            cfg->source + ")");
  return {};
}

void Server::stop() {
  if (stopped_.exchange(true) || workers_.empty()) return;
  ready_ = false;
  for (auto& w : workers_) {
    asio::post(w->io, [wp = w.get()] {
      for (auto& acc : wp->acceptors) {
        boost::system::error_code ec;
        acc->close(ec);
      }
    });
  }
  const auto grace = std::chrono::milliseconds(config()->server.shutdown_grace_ms);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (in_flight_.load() > 0)
    log::warn(std::to_string(in_flight_.load()) + " requests still in flight after the grace period");
  for (auto& w : workers_) w->io.stop();
  if (blocking_) blocking_->join();
  for (auto& t : threads_) t.join();
  // Stop the engines' threads before the workers' io_contexts go: a request still in
  // flight gets its final (cancelled) event posted to a stopped but living io_context.
  engines_.shutdown();
  threads_.clear();
  workers_.clear();
  if (ledger_) ledger_->close();
  if (cache_) cache_->flush();
  ledger_.reset();
  cache_.reset();
  if (store_) (void)store_->flush();
  store_.reset();
  engines_.clear();
}

Result<void> Server::reload() {
  auto next = config_path_.empty() ? config::load_default_config() : config::load_config_file(config_path_);
  if (!next) {
    log::error("reload rejected, previous configuration keeps serving: " + next.error().message);
    return std::move(next).error();
  }
  if (amend_) {
    if (auto r = amend_(*next); !r) {
      log::error("reload rejected, previous configuration keeps serving: " + r.error().message);
      return r;
    }
  }
  if (auto r = engines_.sync(*next); !r) {
    log::error("reload rejected, previous configuration keeps serving: " + r.error().message);
    return r;
  }
  // Listener changes need a restart; everything else applies to the next request.
  auto cur = config();
  next->server.listen = cur->server.listen;
  next->server.threads = cur->server.threads;
  cfg_.store(std::make_shared<const config::GatewayConfig>(std::move(*next)));
  log::info("configuration reloaded from " + cur->source);
  return {};
}

void Server::run_until_signal() {
  asio::io_context sig_io;
  asio::signal_set signals(sig_io, SIGINT, SIGTERM, SIGHUP);
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
