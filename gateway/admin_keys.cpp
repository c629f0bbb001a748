// The admin API of virtual keys (admin listener only; gateway/auth.h):
//   GET  /admin/keys                 every key (no secrets, no hashes)
//   POST /admin/keys                 create: {"name", "team", "rpm", "tpm", "max_streams",
//                                    "models", "routes", "budget_usd", "budget_per",
//                                    "expires", "metadata"} → 201 with the key, shown once
//   GET  /admin/keys/NAME            one key
//   POST /admin/keys/NAME/revoke     refused from the next request on
//   POST /admin/keys/NAME/rotate     a new secret (→ 200 with it); the old one stops working
// Writes go to RocksDB on the blocking pool, then into the in-memory index at once.
#include <memory>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "gateway/keys.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

// The outcome of a write on the blocking pool, carried back to the I/O thread.
struct KeyWrite {
  std::optional<Error> error;
  std::string secret;
  VirtualKey rec;
};

std::string key_body(const VirtualKey& k, const std::string& secret) {
  std::string inner;
  write_key_json(inner, k, wall_us());
  if (secret.empty()) return inner;
  // {"key":"fk-…", <the key's fields>}
  std::string out = "{\"key\":";
  out += json_quote(secret);
  out += ',';
  out.append(inner, 1, std::string::npos);
  return out;
}

asio::awaitable<bool> send_key_write(ClientSocket& stream, RequestContext& ctx, Worker& w,
                                     std::function<KeyWrite()> op, int ok_status) {
  auto result = std::make_shared<KeyWrite>();
  std::function<std::string()> work = [result, op = std::move(op)]() -> std::string {
    *result = op();
    return {};
  };
  co_await off_io_thread(w, std::move(work));
  if (result->error) co_return co_await send_openai_error(stream, *result->error, ctx);
  co_return co_await send_response(stream, ok_status, "application/json", key_body(result->rec, result->secret), ctx);
}

}  // namespace

asio::awaitable<bool> handle_admin_keys(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  KeyStore& keys = w.server.keys();
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  std::string_view rest = path.substr(std::string_view("/admin/keys").size());
  if (!rest.empty()) rest.remove_prefix(1);  // the '/'
  const size_t slash = rest.find('/');
  const std::string name(rest.substr(0, slash));
  const std::string_view action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  const auto method = req.method();
  auto wrong_method = [&](const char* allowed) {
    ctx.headers.emplace_back("Allow", allowed);
    return make_error(ErrorKind::kMethodNotAllowed,
                      "Method " + std::string(req.method_string()) + " is not allowed on " + std::string(path) +
                          "; use " + allowed + ".");
  };

  if (name.empty()) {
    if (method == bhttp::verb::get) {
      std::string body = "{\"keys\":[";
      bool first = true;
      for (const auto& k : keys.list()) {
        if (!first) body += ',';
        first = false;
        write_key_json(body, k, wall_us());
      }
      body += "]}";
      co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
    }
    if (method != bhttp::verb::post) co_return co_await send_openai_error(stream, wrong_method("GET, POST"), ctx);
    auto rec = key_from_request_json(req.body(), wall_us());
    if (!rec) co_return co_await send_openai_error(stream, rec.error(), ctx);
    std::function<KeyWrite()> op = [&keys, r = std::move(*rec)]() {
      KeyWrite out;
      out.rec = r;
      auto secret = keys.create(r);
      if (!secret) out.error = secret.error();
      else out.secret = std::move(*secret);
      if (auto e = keys.find_name(r.name); e && !out.error) out.rec = e->rec;
      return out;
    };
    log::info("admin: creating virtual key '" + rec->name + "'");
    co_return co_await send_key_write(stream, ctx, w, std::move(op), 201);
  }
  if (action.empty()) {
    if (method != bhttp::verb::get) co_return co_await send_openai_error(stream, wrong_method("GET"), ctx);
    auto e = keys.find_name(name);
    if (!e)
      co_return co_await send_openai_error(
          stream, make_error(ErrorKind::kNotFound, "No key named '" + name + "'.", "name", "key_not_found"), ctx);
    co_return co_await send_response(stream, 200, "application/json", key_body(e->rec, ""), ctx);
  }
  if (action == "revoke" || action == "rotate") {
    if (method != bhttp::verb::post) co_return co_await send_openai_error(stream, wrong_method("POST"), ctx);
    const bool revoke = action == "revoke";
    std::function<KeyWrite()> op = [&keys, name, revoke]() {
      KeyWrite out;
      if (revoke) {
        auto r = keys.revoke(name);
        if (!r) out.error = r.error();
        else out.rec = std::move(*r);
        return out;
      }
      auto secret = keys.rotate(name);
      if (!secret) {
        out.error = secret.error();
        return out;
      }
      out.secret = std::move(*secret);
      if (auto e = keys.find_name(name)) out.rec = e->rec;
      return out;
    };
    log::info("admin: " + std::string(action) + " of virtual key '" + name + "'");
    co_return co_await send_key_write(stream, ctx, w, std::move(op), 200);
  }
  co_return co_await send_openai_error(
      stream,
      make_error(ErrorKind::kNotFound, "Unknown request URL: " + std::string(req.method_string()) + " " +
                                           std::string(path) + ".", "", "unknown_url"),
      ctx);
}

}  // namespace frugal::gateway
