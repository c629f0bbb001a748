// GET /v1/models: the aliases, the loaded engine models and what every OpenAI and
// Anthropic provider lists, each id once, in the shape of the client's API: Anthropic's
// (`type`, `display_name`, `created_at`; `has_more`, `first_id`, `last_id`) for clients
// that send `anthropic-version` (every Anthropic SDK does), OpenAI's list otherwise.
// Provider listings are fetched at most once a minute per I/O thread.
#include <simdjson.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "backends/http/anthropic_backend.h"
#include "backends/http/provider.h"
#include "core/ids.h"
#include "core/json.h"
#include "backends/whole_body.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/worker.h"

namespace frugal::gateway {

namespace {

struct ListedModel {
  std::string id;
  std::string display_name;  // Anthropic's; the id elsewhere
  int64_t created = 0;       // Unix seconds
  std::string owned_by;
  std::string openai_object;  // an OpenAI provider's own entry, minified, relayed as is
};

std::string rfc3339(int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "2025-02-19T00:00:00Z" (fractions and offsets ignored) → Unix seconds; 0 when unreadable.
int64_t parse_rfc3339(std::string_view s) {
  std::tm tm{};
  const std::string z(s.substr(0, 19));
  const char* end = strptime(z.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return end && *end == '\0' ? static_cast<int64_t>(timegm(&tm)) : 0;
}

std::string render_openai(const std::vector<ListedModel>& models) {
  std::string data;
  JsonWriter out(data);
  out.begin_array();
  for (const auto& m : models) {
    if (!m.openai_object.empty()) {
      out.raw(m.openai_object);
      continue;
    }
    out.begin_object().key("id").value(m.id).key("object").value("model").key("created").value(m.created);
    out.key("owned_by").value(m.owned_by).end_object();
  }
  out.end_array();
  return R"({"object":"list","data":)" + data + "}";
}

std::string render_anthropic(const std::vector<ListedModel>& models) {
  std::string s;
  JsonWriter out(s);
  out.begin_object().key("data").begin_array();
  for (const auto& m : models) {
    out.begin_object().key("type").value("model").key("id").value(m.id);
    out.key("display_name").value(m.display_name.empty() ? m.id : m.display_name);
    out.key("created_at").value(rfc3339(m.created)).end_object();
  }
  out.end_array().key("has_more").value(false);
  out.key("first_id");
  models.empty() ? out.raw("null") : out.value(models.front().id);
  out.key("last_id");
  models.empty() ? out.raw("null") : out.value(models.back().id);
  out.end_object();
  return s;
}

}  // namespace

asio::awaitable<bool> handle_models(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  const auto cfg = w.server.config();
  const int64_t now = mono_us();
  if (w.models_openai.empty() || now - w.models_cache_us > 60'000'000) {
    std::vector<ListedModel> models;
    auto listed = [&](std::string_view id) {
      return std::any_of(models.begin(), models.end(), [&](const ListedModel& m) { return m.id == id; });
    };
    for (const auto& a : cfg->aliases) models.push_back({a.name, "", 0, "frugal", ""});
    for (const auto& p : cfg->providers) {
      if (p.kind != config::ProviderKind::kEngine) continue;
      if (const auto svc = w.server.engines().get(p.name))
        models.push_back({p.name + "/" + svc->model_name(), "", 0, "frugal-engine", ""});
    }
    const int64_t t0 = mono_us();
    for (const auto& p : cfg->providers) {
      if (p.kind == config::ProviderKind::kEngine) continue;
      const bool anthropic = p.kind == config::ProviderKind::kAnthropic;
      http::HttpRequest up = anthropic ? http::anthropic_models_request(p) : http::openai_models_request(p);
      up.headers.push_back(frugal_hop_header(frugal_hop_of(req).value_or(0)));
      auto call = w.client->start(std::move(up));
      auto body = co_await backends::read_whole_body(*call, static_cast<size_t>(p.max_answer_bytes));
      if (!body || call->status() != 200) {
        log::warn("listing models of provider '" + p.name + "' failed: " +
                  (!body ? body.error().message : "status " + std::to_string(call->status())));
        continue;
      }
      thread_local simdjson::dom::parser parser;
      simdjson::dom::element root;
      simdjson::dom::array arr;
      if (parser.parse(*body).get(root) || root["data"].get_array().get(arr)) continue;
      for (auto e : arr) {
        std::string_view id;
        if (e["id"].get_string().get(id) || listed(id)) continue;
        ListedModel m{std::string(id), "", 0, anthropic ? "anthropic" : p.name, ""};
        if (anthropic) {
          std::string_view v;
          if (!e["display_name"].get_string().get(v)) m.display_name = std::string(v);
          if (!e["created_at"].get_string().get(v)) m.created = parse_rfc3339(v);
        } else {
          int64_t created = 0;
          if (!e["created"].get_int64().get(created)) m.created = created;
          m.openai_object = simdjson::minify(e);
        }
        models.push_back(std::move(m));
      }
    }
    ctx.upstream_wait_us = mono_us() - t0;
    w.models_openai = render_openai(models);
    w.models_anthropic = render_anthropic(models);
    w.models_cache_us = now;
  }
  co_return co_await send_response(stream, 200, "application/json",
                                   wants_anthropic_errors(req) ? w.models_anthropic : w.models_openai, ctx);
}

}  // namespace frugal::gateway
