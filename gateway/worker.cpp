#include "gateway/worker.h"

#include "backends/dialect/errors.h"
#include "backends/engine/engine_backend.h"
#include "backends/http/anthropic_backend.h"
#include "backends/http/provider.h"
#include "backends/replay_call.h"
#include "gateway/server.h"

namespace frugal::gateway {

std::unique_ptr<backends::Backend> make_backend(const config::ProviderConfig& p, Worker& w) {
  switch (p.kind) {
    case config::ProviderKind::kOpenAi:
      return std::make_unique<http::OpenAiBackend>(*w.client, p);
    case config::ProviderKind::kAnthropic:
      return std::make_unique<http::AnthropicBackend>(*w.client, p);
    case config::ProviderKind::kEngine:
      if (auto svc = w.server.engines().get(p.name))
        return std::make_unique<engine::EngineBackend>(
            svc, w.io, p.name + "/" + svc->model_name(),
            engine::CallDeadlines{p.timeouts.first_byte_ms, p.timeouts.total_ms});
      break;
  }
  return nullptr;
}

namespace {

// Answers every request with one error: for providers whose kind this build cannot serve.
class UnavailableBackend final : public backends::Backend {
 public:
  explicit UnavailableBackend(std::string name) : name_(std::move(name)) {}
  std::shared_ptr<backends::Call> start(const ChatRequest&, std::string_view) override;

 private:
  std::string name_;
};

std::shared_ptr<backends::Call> UnavailableBackend::start(const ChatRequest&, std::string_view) {
  Error e = make_error(ErrorKind::kUnavailable,
                       "provider '" + name_ + "' has a kind this gateway build cannot serve", "", "provider_unavailable");
  return std::make_shared<backends::ReplayCall>(
      e.http_status(), "application/json", render_openai_error(e),
      std::vector<std::pair<std::string, std::string>>{{std::string(backends::kGatewayErrorHeader), "1"}});
}

}  // namespace

backends::Backend& Worker::backend(const config::ProviderConfig& provider) {
  const auto cfg = server.config();
  if (cfg.get() != backends_cfg_) {
    backends_.clear();
    stale_backends_.clear();
    backends_cfg_ = cfg.get();
    backends_cfg_hold_ = cfg;
  }
  const auto& ps = cfg->providers;
  if (&provider < ps.data() || &provider >= ps.data() + ps.size()) {
    // A request still running on an older snapshot (a reload happened meanwhile): it gets
    // a backend of its own provider config, never one cached for the current config.
    // Only snapshots older than the current one can be here, and the current one is
    // held, so the address cannot be reused before the next clear.
    for (auto& [p, b] : stale_backends_)
      if (p == &provider) return *b;
    auto b = make_backend(provider, *this);
    if (!b) b = std::make_unique<UnavailableBackend>(provider.name);
    stale_backends_.emplace_back(&provider, std::move(b));
    return *stale_backends_.back().second;
  }
  for (auto& [name, b] : backends_)
    if (name == provider.name) return *b;
  auto b = make_backend(provider, *this);
  if (!b) b = std::make_unique<UnavailableBackend>(provider.name);
  backends_.emplace_back(provider.name, std::move(b));
  return *backends_.back().second;
}

}  // namespace frugal::gateway
