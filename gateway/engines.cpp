#include "gateway/engines.h"

#include "core/log.h"

namespace frugal::gateway {

engine::ServiceConfig EngineRegistry::service_config(const config::EngineSettings& s) {
  engine::ServiceConfig c;
  c.model_path = s.model;
  c.draft_model_path = s.draft_model;
  c.threads = s.threads;
  c.kv_memory_bytes = static_cast<size_t>(s.kv_memory_bytes);
  c.context_length = s.context_length;
  c.max_batch = s.max_batch;
  c.draft_tokens = s.draft_tokens;
  c.prefill_chunk = s.prefill_chunk;
  c.attention_cost_weight = s.attention_cost_weight;
  c.default_max_tokens = s.default_max_tokens;
  return c;
}

Result<void> EngineRegistry::sync(const config::GatewayConfig& cfg) {
  std::map<std::string, Entry> next;
  for (const auto& p : cfg.providers) {
    if (p.kind != config::ProviderKind::kEngine) continue;
    {
      std::lock_guard lock(mu_);
      auto it = engines_.find(p.name);
      if (it != engines_.end() && it->second.settings == p.engine) {
        next.emplace(p.name, it->second);
        continue;
      }
    }
    // Loading maps the file and starts threads; done outside the lock so workers keep
    // serving the previous engines meanwhile.
    auto svc = engine::EngineService::load(service_config(p.engine));
    if (!svc) {
      Error e = std::move(svc).error();
      e.message = "provider '" + p.name + "': " + e.message;
      return e;
    }
    log::info("engine provider '" + p.name + "': serving " + p.name + "/" + (*svc)->model_name() + " (" +
              (*svc)->chat_template().name() + " chat template, context " +
              std::to_string((*svc)->context_length()) +
              ((*svc)->speculative() ? ", speculative with draft " + p.engine.draft_model : std::string()) + ")");
    next.emplace(p.name, Entry{p.engine, std::move(svc).value()});
  }
  std::map<std::string, Entry> old;
  {
    std::lock_guard lock(mu_);
    old.swap(engines_);
    engines_ = std::move(next);
  }
  return {};  // `old` engines not kept are released here unless calls still hold them
}

std::shared_ptr<engine::EngineService> EngineRegistry::get(const std::string& provider) const {
  std::lock_guard lock(mu_);
  auto it = engines_.find(provider);
  return it == engines_.end() ? nullptr : it->second.service;
}

std::vector<std::pair<std::string, std::shared_ptr<engine::EngineService>>> EngineRegistry::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::shared_ptr<engine::EngineService>>> out;
  out.reserve(engines_.size());
  for (const auto& [name, e] : engines_) out.emplace_back(name, e.service);
  return out;
}

void EngineRegistry::shutdown() {
  std::lock_guard lock(mu_);
  for (auto& [name, e] : engines_) e.service->engine().shutdown();
}

void EngineRegistry::clear() {
  std::map<std::string, Entry> old;
  std::lock_guard lock(mu_);
  old.swap(engines_);
}

}  // namespace frugal::gateway
