#include "gateway/readiness.h"

#include "cache/exact_cache.h"
#include "cache/store.h"
#include "core/json.h"
#include "gateway/server.h"
#include "router/ledger.h"

namespace frugal::gateway {

Readiness readiness(Server& server) {
  if (!server.ready()) return {503, R"({"status":"not ready"})"};
  const cache::StoreHealth store = server.store().health();
  const router::LedgerStats ledger = server.ledger().stats();
  if (store.writable && ledger.held == 0) return {200, R"({"status":"ready"})"};
  Readiness r{503, {}};
  JsonWriter j(r.body);
  j.begin_object();
  j.key("status").value("degraded");
  j.key("reason").value(store.writable ? "ledger rows are waiting to be written"
                                       : "storage writes fail: " + store.error);
  if (store.needs_restart) j.key("restart_required").value(true);
  j.key("ledger_rows_held").value(static_cast<int64_t>(ledger.held));
  j.key("ledger_rows_dropped").value(static_cast<int64_t>(ledger.dropped));
  j.key("cache_write_errors").value(static_cast<int64_t>(server.cache().stats().write_errors));
  j.end_object();
  return r;
}

}  // namespace frugal::gateway
