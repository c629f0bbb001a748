// /admin/* endpoints: cache invalidation and statistics, engine counters. Served on the
// admin listener only and authorised there (gateway/auth.h: admin_authorized).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <optional>

#include "cache/exact_cache.h"
#include "core/json.h"
#include "gateway/chat_exchange.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

asio::awaitable<std::string> off_io_thread(Worker& w, std::function<std::string()> work) {
  struct Wait {
    explicit Wait(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::optional<std::string> result;
  };
  auto wait = std::make_shared<Wait>(w.io);
  wait->timer.expires_at(asio::steady_timer::time_point::max());
  w.server.run_blocking(w.io, std::move(work), [wait](std::string r) {
    wait->result = std::move(r);
    wait->timer.cancel();
  });
  while (!wait->result) co_await wait->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(*wait->result);
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const size_t eq = kv.find('=');
    if (percent_decode(kv.substr(0, eq)) == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

namespace {

void write_kv_stats(JsonWriter& j, const engine::KvCacheStats& kv, int32_t block_size) {
  j.begin_object();
  j.key("block_size").value(block_size);
  j.key("n_blocks").value(kv.n_blocks);
  j.key("free_blocks").value(kv.free_blocks);
  j.key("cached_blocks").value(kv.cached_blocks);
  j.key("used_blocks").value(kv.used_blocks);
  j.key("reused_tokens").value(static_cast<int64_t>(kv.reused_tokens));
  j.key("evictions").value(static_cast<int64_t>(kv.evictions));
  j.end_object();
}

// One loaded engine: what it serves, how it is configured, and its EngineStats snapshot.
void write_engine(JsonWriter& j, const std::string& provider, const engine::EngineService& svc) {
  const engine::ServiceConfig& cfg = svc.config();
  const engine::EngineConfig& ec = svc.engine_config();
  const engine::EngineStats s = svc.stats();
  auto u64 = [](uint64_t v) { return static_cast<int64_t>(v); };
  j.begin_object();
  j.key("provider").value(provider);
  j.key("model").value(provider + "/" + svc.model_name());
  j.key("model_path").value(cfg.model_path);
  j.key("draft_model_path");
  if (svc.speculative()) j.value(cfg.draft_model_path);
  else j.null();
  j.key("threads").value(ec.n_threads);
  j.key("context_length").value(svc.context_length());
  j.key("max_batch").value(ec.max_running);
  j.key("draft_tokens");
  if (svc.speculative()) j.value(ec.draft_tokens);
  else j.null();
  j.key("steps").value(u64(s.steps));
  j.key("prefill_tokens_computed").value(u64(s.prefill_tokens_computed));
  j.key("prompt_tokens_reused").value(u64(s.prompt_tokens_reused));
  j.key("decode_tokens").value(u64(s.decode_tokens));
  j.key("requests_finished").value(u64(s.requests_finished));
  j.key("requests_cancelled").value(u64(s.requests_cancelled));
  j.key("running").value(s.running);
  j.key("waiting").value(s.waiting);
  j.key("draft_forwards").value(u64(s.draft_forwards));
  j.key("spec_verifies").value(u64(s.spec_verifies));
  j.key("drafted").value(u64(s.drafted));
  j.key("accepted").value(u64(s.accepted));
  j.key("spec_generated").value(u64(s.spec_generated));
  j.key("acceptance_rate").value(s.acceptance_rate());
  j.key("tokens_per_verify").value(s.tokens_per_verify());
  j.key("kv_cache");
  write_kv_stats(j, s.kv, ec.kv_block_size);
  j.key("draft_kv_cache");
  if (svc.speculative()) write_kv_stats(j, s.draft_kv, ec.kv_block_size);
  else j.null();
  j.end_object();
}

}  // namespace

asio::awaitable<bool> handle_admin_engines(ClientSocket& stream, Request&, RequestContext& ctx, Worker& w) {
  std::string body;
  JsonWriter j(body);
  j.begin_object().key("engines").begin_array();
  for (const auto& [provider, svc] : w.server.engines().all()) write_engine(j, provider, *svc);
  j.end_array().end_object();
  co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
}

asio::awaitable<bool> handle_admin_cache(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  cache::ExactCache& cache = w.server.cache();
  if (req.method() == bhttp::verb::get) {
    const cache::CacheStats s = cache.stats();
    std::string body;
    JsonWriter j(body);
    j.begin_object();
    j.key("memory_hits").value(static_cast<int64_t>(s.memory_hits));
    j.key("disk_hits").value(static_cast<int64_t>(s.disk_hits));
    j.key("misses").value(static_cast<int64_t>(s.misses));
    j.key("expired").value(static_cast<int64_t>(s.expired));
    j.key("corrupt").value(static_cast<int64_t>(s.corrupt));
    j.key("read_errors").value(static_cast<int64_t>(s.read_errors));
    j.key("write_errors").value(static_cast<int64_t>(s.write_errors));
    j.key("stores").value(static_cast<int64_t>(s.stores));
    j.key("dropped_writes").value(static_cast<int64_t>(s.dropped_writes));
    j.key("memory_evictions").value(static_cast<int64_t>(s.memory_evictions));
    j.key("disk_reads").value(static_cast<int64_t>(s.disk_reads));
    j.key("memory_bytes").value(static_cast<int64_t>(s.memory_bytes));
    j.key("memory_entries").value(static_cast<int64_t>(s.memory_entries));
    j.end_object();
    co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
  }
  // DELETE: everything, or ?route=NAME, or ?tenant=ID, or ?api_key=KEY (its tenant).
  const auto route = query_param(req.target(), "route");
  auto tenant = query_param(req.target(), "tenant");
  if (auto key = query_param(req.target(), "api_key"); key && !tenant) tenant = tenant_id_of_key(*key);
  if (route && tenant) {
    co_return co_await send_openai_error(
        stream, make_error(ErrorKind::kInvalidRequest, "Pass either route or tenant, not both.", "route"), ctx);
  }
  const std::string scope = route ? "route" : tenant ? "tenant" : "all";
  // A named std::function, not a temporary lambda in the co_await expression: GCC 12
  // destroys such temporaries twice.
  std::function<std::string()> work = [&cache, route, tenant]() -> std::string {
    Result<size_t> n = route    ? cache.erase_by_route(*route)
                       : tenant ? cache.erase_by_tenant(*tenant)
                                : [&]() -> Result<size_t> {
                                    auto r = cache.erase_all();
                                    if (!r) return std::move(r).error();
                                    return size_t{0};
                                  }();
    if (!n) return "!" + n.error().message;
    return std::to_string(*n);
  };
  std::string outcome = co_await off_io_thread(w, std::move(work));
  if (!outcome.empty() && outcome[0] == '!') {
    co_return co_await send_openai_error(stream, make_error(ErrorKind::kInternal, outcome.substr(1)), ctx);
  }
  log::info("cache invalidated (" + scope + (route ? " " + *route : tenant ? " " + *tenant : "") + ")");
  std::string body;
  JsonWriter j(body);
  j.begin_object().key("deleted").value(scope);
  if (scope != "all") j.key("disk_entries_removed").value(static_cast<int64_t>(std::stoll(outcome)));
  j.end_object();
  co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
}

}  // namespace frugal::gateway
