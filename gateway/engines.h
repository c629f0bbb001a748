#pragma once
// The in-process engines of the configured `kind: engine` providers, by provider name.
// An engine (model weights, KV cache, scheduler thread) is loaded once and shared by
// every worker; each worker wraps it in its own EngineBackend bound to its io_context.
//
// Threading: sync() runs on the thread that starts or reloads the server; get() on any
// worker thread. Lifetime: a Call keeps its EngineService alive, so an engine dropped
// by a reload finishes its in-flight requests before it is destroyed.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/engine/service.h"
#include "config/config.h"
#include "core/error.h"

namespace frugal::gateway {

class EngineRegistry {
 public:
  // Loads the engine providers of `cfg` that are new or whose settings changed, then
  // drops those `cfg` no longer has. On error (a model that does not load) nothing
  // changes and the error names the provider.
  Result<void> sync(const config::GatewayConfig& cfg);
  // Null if `provider` is not a loaded engine.
  std::shared_ptr<engine::EngineService> get(const std::string& provider) const;
  // Every loaded engine with its provider name, ordered by name.
  std::vector<std::pair<std::string, std::shared_ptr<engine::EngineService>>> all() const;
  // Stops every engine's scheduler (in-flight requests end as cancelled); no engine
  // thread runs afterwards, so the workers' io_contexts can be destroyed safely.
  void shutdown();
  void clear();

  static engine::ServiceConfig service_config(const config::EngineSettings& s);

 private:
  struct Entry {
    config::EngineSettings settings;
    std::shared_ptr<engine::EngineService> service;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> engines_;  // guarded by mu_
};

}  // namespace frugal::gateway
