#include "gateway/frugal_api.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include <simdjson.h>

#include "gateway/capture.h"
#include "gateway/capture_writer.h"
#include "gateway/server.h"
#include "policies/budget.h"
#include "router/costs.h"
#include "router/ledger.h"

namespace frugal::gateway {

namespace {

constexpr int64_t kDefaultWindowUs = 24LL * 3600 * 1'000'000;
constexpr size_t kDefaultRows = 100;
constexpr size_t kMaxRows = 10'000;

using Query = std::map<std::string, std::string, std::less<>>;

Query parse_query(std::string_view target) {
  Query q;
  const size_t qm = target.find('?');
  if (qm == std::string_view::npos) return q;
  std::string_view rest = target.substr(qm + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    if (!pair.empty())
      q[url_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return q;
}

std::string_view get(const Query& q, std::string_view key) {
  auto it = q.find(key);
  return it == q.end() ? std::string_view{} : std::string_view(it->second);
}

// [from, to) from the query: defaults to the last 24 hours.
Result<std::pair<int64_t, int64_t>> time_range(const Query& q) {
  const int64_t now = wall_us();
  int64_t to = now, from = now - kDefaultWindowUs;
  if (auto v = get(q, "to"); !v.empty()) {
    auto t = parse_time_param(v, "to", now);
    if (!t) return std::move(t).error();
    to = *t;
  }
  if (auto v = get(q, "from"); !v.empty()) {
    auto f = parse_time_param(v, "from", now);
    if (!f) return std::move(f).error();
    from = *f;
  } else if (!get(q, "to").empty()) {
    from = to - kDefaultWindowUs;
  }
  if (from >= to)
    return make_error(ErrorKind::kInvalidRequest, "'from' must be before 'to'", "from", "invalid_time_range");
  return std::pair{from, to};
}

// Runs `fn` on the server's blocking pool and resumes on this worker with its result;
// nullopt when the server is stopping.
template <class T>
asio::awaitable<std::optional<T>> on_blocking_pool(Worker& w, std::function<T()> fn) {
  struct State {
    explicit State(asio::io_context& io) : timer(io, asio::steady_timer::time_point::max()) {}
    asio::steady_timer timer;
    std::optional<T> result;
  };
  auto st = std::make_shared<State>(w.io);
  std::weak_ptr<State> weak = st;
  asio::io_context& io = w.io;
  const bool posted = w.server.post_blocking([fn = std::move(fn), weak, &io]() mutable {
    auto r = std::make_shared<T>(fn());
    asio::post(io, [weak, r] {
      if (auto s = weak.lock()) {
        s->result.emplace(std::move(*r));
        s->timer.cancel();
      }
    });
  });
  if (!posted) co_return std::nullopt;
  while (!st->result) co_await st->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(st->result);
}

Error stopping() { return make_error(ErrorKind::kUnavailable, "the gateway is shutting down", "", "shutting_down"); }

asio::awaitable<bool> costs(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  const Query q = parse_query(req.target());
  auto range = time_range(q);
  if (!range) co_return co_await send_openai_error(stream, range.error(), ctx);
  auto group_by = router::parse_group_by(get(q, "group_by"));
  if (!group_by) co_return co_await send_openai_error(stream, group_by.error(), ctx);
  const std::string_view format = get(q, "format");
  if (!format.empty() && format != "json" && format != "table") {
    co_return co_await send_openai_error(
        stream, make_error(ErrorKind::kInvalidRequest, "unknown format '" + std::string(format) + "' (expected json or table)", "format"),
        ctx);
  }
  router::Ledger* ledger = &w.server.ledger();
  const auto [from, to] = *range;
  // A named std::function, not a lambda temporary in the co_await expression: GCC 12
  // destroys such temporaries twice.
  std::function<Result<router::CostReport>()> work = [ledger, from, to, gb = *group_by] {
    return ledger->query(from, to, gb);
  };
  auto report = co_await on_blocking_pool<Result<router::CostReport>>(w, std::move(work));
  if (!report) co_return co_await send_openai_error(stream, stopping(), ctx);
  if (!*report) co_return co_await send_openai_error(stream, report->error(), ctx);
  if (format == "table")
    co_return co_await send_response(stream, 200, "text/plain; charset=utf-8", router::render_costs_table(**report), ctx);
  co_return co_await send_response(stream, 200, "application/json", router::render_costs_json(**report), ctx);
}

asio::awaitable<bool> ledger_rows(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  const Query q = parse_query(req.target());
  auto range = time_range(q);
  if (!range) co_return co_await send_openai_error(stream, range.error(), ctx);
  size_t limit = kDefaultRows;
  if (auto v = get(q, "limit"); !v.empty()) {
    char* end = nullptr;
    const std::string s(v);
    const long long n = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || n < 1 || static_cast<size_t>(n) > kMaxRows)
      co_return co_await send_openai_error(
          stream,
          make_error(ErrorKind::kInvalidRequest, "'limit' must be an integer from 1 to " + std::to_string(kMaxRows), "limit"),
          ctx);
    limit = static_cast<size_t>(n);
  }
  router::Ledger* ledger = &w.server.ledger();
  const auto [from, to] = *range;
  std::function<Result<std::vector<router::LedgerRecord>>()> work = [ledger, from, to, limit] {
    return ledger->scan(from, to, limit);
  };  // named: see costs()
  auto rows = co_await on_blocking_pool<Result<std::vector<router::LedgerRecord>>>(w, std::move(work));
  if (!rows) co_return co_await send_openai_error(stream, stopping(), ctx);
  if (!*rows) co_return co_await send_openai_error(stream, rows->error(), ctx);
  std::string body;
  JsonWriter out(body);
  out.begin_object().key("rows").begin_array();
  for (const auto& r : **rows) out.raw(router::record_json(r));
  out.end_array().end_object();
  co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
}

asio::awaitable<bool> budgets(ClientSocket& stream, RequestContext& ctx, Worker& w) {
  const auto snap = w.server.snapshot();
  std::string body;
  JsonWriter out(body);
  out.begin_object();
  out.key("policy_generation").value(static_cast<int64_t>(snap->generation));
  out.key("soft_exceeded_total").value(w.server.soft_budget_exceeded());
  out.key("shadow_cost_usd").value(w.server.shadow_cost().to_usd_string());
  out.key("budgets").begin_array();
  if (snap->budgets) {
    for (const auto& b : snap->budgets->snapshot()) {
      out.begin_object();
      out.key("name").value(b.name);
      out.key("spent_usd").value(b.spent.to_usd_string());
      out.key("reserved_usd").value(b.reserved.to_usd_string());  // estimates of requests in flight
      out.key("soft_usd");
      if (b.soft) out.value(b.soft->to_usd_string()); else out.null();
      out.key("hard_usd");
      if (b.hard) out.value(b.hard->to_usd_string()); else out.null();
      out.key("window_start").value(policies::format_utc(b.window_start_us));
      out.key("window_end").value(policies::format_utc(b.window_end_us));
      out.key("soft_exceeded").value(b.soft_exceeded_count);
      out.key("denied").value(b.denied_count);
      out.end_object();
    }
  }
  out.end_array().end_object();
  co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
}

// POST /v1/frugal/feedback {"request_id": ID, "correct": true|false} or {..., "score": 0..1}:
// a label for a captured request, appended to the capture file (the log reader applies it
// to the model that answered that request).
asio::awaitable<bool> feedback(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  auto bad = [](std::string msg, std::string param) {
    return make_error(ErrorKind::kInvalidRequest, std::move(msg), std::move(param));
  };
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object o;
  if (parser.parse(req.body()).get(root) || root.get_object().get(o))
    co_return co_await send_openai_error(stream, bad("The body must be a JSON object: {\"request_id\": ..., \"correct\": true|false} or {..., \"score\": 0..1}.", ""), ctx);
  std::string_view id;
  if (o["request_id"].get_string().get(id) || id.empty() || id.size() > 256)
    co_return co_await send_openai_error(stream, bad("request_id must be a non-empty string (at most 256 bytes).", "request_id"), ctx);
  std::optional<bool> correct;
  std::optional<double> score;
  simdjson::dom::element e;
  if (!o["correct"].get(e)) {
    bool b = false;
    if (e.get_bool().get(b)) co_return co_await send_openai_error(stream, bad("correct must be true or false.", "correct"), ctx);
    correct = b;
  }
  if (!o["score"].get(e)) {
    double d = 0;
    if (e.get_double().get(d) || !(d >= 0 && d <= 1))
      co_return co_await send_openai_error(stream, bad("score must be a number in [0, 1].", "score"), ctx);
    score = d;
  }
  if (!correct && !score)
    co_return co_await send_openai_error(stream, bad("Give correct (true|false) or score (0..1).", "correct"), ctx);
  CaptureWriter* c = w.server.capture();
  if (!c || !c->write(feedback_line(id, correct, score)))
    co_return co_await send_openai_error(stream, make_error(ErrorKind::kUnavailable, "The capture queue is full; try again."), ctx);
  std::string body;
  JsonWriter out(body);
  out.begin_object().key("request_id").value(id).key("recorded").value(true).end_object();
  co_return co_await send_response(stream, 202, "application/json", std::move(body), ctx);
}

// "file:line:col: key 'a.b[0]': what" → "a.b[0]", for the error's `param`.
std::string key_of(const std::string& message) {
  const size_t k = message.find("key '");
  if (k == std::string::npos) return {};
  const size_t end = message.find('\'', k + 5);
  return end == std::string::npos ? std::string() : message.substr(k + 5, end - k - 5);
}

asio::awaitable<bool> reload(ClientSocket& stream, RequestContext& ctx, Worker& w) {
  Server* server = &w.server;
  std::function<Result<std::shared_ptr<const Snapshot>>()> work = [server] { return server->reload(); };  // named: see costs()
  auto r = co_await on_blocking_pool<Result<std::shared_ptr<const Snapshot>>>(w, std::move(work));
  if (!r) co_return co_await send_openai_error(stream, stopping(), ctx);
  if (!*r) {
    const Error& e = r->error();
    Error out = make_error(ErrorKind::kInvalidRequest,
                           "Reload rejected; the previous configuration and policy keep serving. " + e.message,
                           key_of(e.message), "invalid_config");
    co_return co_await send_openai_error(stream, out, ctx);
  }
  const Snapshot& s = ***r;
  std::string body;
  JsonWriter out(body);
  out.begin_object();
  out.key("status").value("reloaded");
  out.key("generation").value(static_cast<int64_t>(s.generation));
  out.key("config").value(s.cfg->source);
  out.key("policy");
  if (s.cfg->policy_path.empty()) out.null(); else out.value(s.cfg->policy_path);
  out.key("request_types").begin_array();
  if (s.policy)
    for (const auto& t : s.policy->request_types()) out.value(t.name);
  out.end_array();
  out.key("routes").begin_array();
  if (s.policy)
    for (const auto& r2 : s.policy->config().routes) out.value(r2.request_type);
  out.end_array();
  out.key("restart_required").begin_array();  // changed keys a reload cannot apply
  for (const std::string& k : s.restart_required) out.value(k);
  out.end_array();
  out.end_object();
  co_return co_await send_response(stream, 200, "application/json", std::move(body), ctx);
}

}  // namespace

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<int64_t> parse_time_param(std::string_view v, std::string_view param, int64_t now_us) {
  auto bad = [&] {
    return make_error(ErrorKind::kInvalidRequest,
                      "invalid '" + std::string(param) + "' value '" + std::string(v) +
                          "': expected Unix seconds, an ISO 8601 UTC date or time (2024-05-01, "
                          "2024-05-01T13:00:00Z), 'now', or a relative time like -24h, -30m, -7d",
                      std::string(param), "invalid_time");
  };
  if (v == "now") return now_us;
  const std::string s(v);
  if (!s.empty() && s[0] == '-') {
    char* end = nullptr;
    const long long n = std::strtoll(s.c_str() + 1, &end, 10);
    if (end == s.c_str() + 1 || n < 0 || end[0] == '\0' || end[1] != '\0') return bad();
    const int64_t unit = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 : 0;
    if (unit == 0) return bad();
    return now_us - static_cast<int64_t>(n) * unit * 1'000'000;
  }
  if (s.find_first_not_of("0123456789") == std::string::npos && !s.empty() && s.size() <= 12)
    return static_cast<int64_t>(std::stoll(s)) * 1'000'000;
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char tail[4] = {};
  int n = std::sscanf(s.c_str(), "%4d-%2d-%2d%3s", &y, &mo, &d, tail);
  if (n == 3 && s.size() == 10) {
    // a date
  } else if (s.size() == 20 && s.back() == 'Z' &&
             std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &sec) == 6) {
    // a time to the second
  } else if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2dZ", &y, &mo, &d, &h, &mi) == 5 && s.back() == 'Z' &&
             s.size() == 17) {
    sec = 0;
  } else {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return bad();
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1'000'000;
}

asio::awaitable<bool> handle_frugal_api(ClientSocket& stream, Request& req, RequestContext& ctx, Worker& w) {
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  struct Endpoint {
    std::string_view path;
    bhttp::verb method;
  };
  static constexpr Endpoint kEndpoints[] = {{"/v1/frugal/costs", bhttp::verb::get},
                                            {"/v1/frugal/ledger", bhttp::verb::get},
                                            {"/v1/frugal/budgets", bhttp::verb::get},
                                            {"/v1/frugal/feedback", bhttp::verb::post},
                                            {"/admin/reload", bhttp::verb::post}};
  for (const auto& e : kEndpoints) {
    if (path != e.path) continue;
    if (req.method() != e.method) {
      ctx.headers.emplace_back("Allow", std::string(bhttp::to_string(e.method)));
      co_return co_await send_openai_error(
          stream,
          make_error(ErrorKind::kMethodNotAllowed, "Method " + std::string(req.method_string()) + " is not allowed on " +
                                                       std::string(path) + "; use " +
                                                       std::string(bhttp::to_string(e.method)) + "."),
          ctx);
    }
    if (path == "/v1/frugal/costs") co_return co_await costs(stream, req, ctx, w);
    if (path == "/v1/frugal/ledger") co_return co_await ledger_rows(stream, req, ctx, w);
    if (path == "/v1/frugal/budgets") co_return co_await budgets(stream, ctx, w);
    if (path == "/v1/frugal/feedback") co_return co_await feedback(stream, req, ctx, w);
    co_return co_await reload(stream, ctx, w);
  }
  co_return co_await send_openai_error(
      stream,
      make_error(ErrorKind::kNotFound, "Unknown request URL: " + std::string(req.method_string()) + " " +
                                           std::string(path) + ".", "", "unknown_url"),
      ctx);
}

}  // namespace frugal::gateway
