#include "gateway/chat_exchange.h"

#include <simdjson.h>

#include "backends/dialect/errors.h"
#include "core/ids.h"
#include "gateway/log.h"
#include "gateway/server.h"

namespace frugal::gateway {

const char* dialect_name(Dialect d) { return d == Dialect::kAnthropic ? "anthropic" : "openai"; }

ChatExchange::ChatExchange(Worker& worker, RequestContext& ctx, const Request& http, Dialect dialect)
    : w_(worker), ctx_(ctx), http_(http), dialect_(dialect), cfg_(worker.server.config()) {}

ChatExchange::~ChatExchange() {
  if (started_ && !finished_) finish(seen_usage_, ExchangeEnd::kClientGone);
}

boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> ChatExchange::start(ChatRequest& req) {
  auto targets = router::resolve_model(*cfg_, req.model);
  if (!targets) co_return targets.error();

  started_ = true;
  const int64_t dispatch_start = mono_us();
  router::DispatchResult r = co_await router::dispatch_chat(w_, *targets, req, control_);
  if (r.error) {
    ctx_.upstream_wait_us += mono_us() - dispatch_start;
    co_return std::move(*r.error);
  }
  target_ = r.target;
  ctx_.headers.emplace_back("x-frugal-provider", r.target.provider->name);
  ctx_.headers.emplace_back("x-frugal-model", r.target.model);
  if (r.attempts.size() > 1) ctx_.headers.emplace_back("x-frugal-attempts", std::to_string(r.attempts.size()));
  // Until the answer starts, the time is the upstream's; the codec adds the rest.
  ctx_.upstream_wait_us += r.call->headers_us() > 0 ? r.call->headers_us() - dispatch_start
                                                    : mono_us() - dispatch_start;
  co_return std::move(r.call);
}

void ChatExchange::observe(std::string_view) {}

void ChatExchange::finish(const Usage& usage, ExchangeEnd end) {
  if (finished_) return;
  finished_ = true;
  seen_usage_ = usage;
  log_finish(usage, end);
}

// The usage hand-off, visible at --log-level debug until the ledger consumes it here.
void ChatExchange::log_finish(const Usage& u, ExchangeEnd end) const {
  static constexpr const char* kEnds[] = {"complete", "upstream_error", "upstream_broke", "client_gone"};
  log::debug("request " + ctx_.request_id + ": finish end=" + kEnds[static_cast<int>(end)] +
             " dialect=" + dialect_name(dialect_) + " usage input=" + std::to_string(u.input_tokens) +
             " cached=" + std::to_string(u.cached_input_tokens) +
             " cache_write_5m=" + std::to_string(u.cache_write_5m_tokens) +
             " cache_write_1h=" + std::to_string(u.cache_write_1h_tokens) +
             " output=" + std::to_string(u.output_tokens) + " reported=" + (u.reported ? "1" : "0"));
}

Error ChatExchange::upstream_error(backends::Call& call) const {
  thread_local simdjson::dom::parser parser;
  const int status = call.status();
  const std::string_view body = call.body();
  // The backend refused on the gateway's behalf (e.g. a request the provider's dialect
  // cannot express): the message is ours, not the upstream's.
  if (!call.header(backends::kGatewayErrorHeader).empty()) return error_from_openai_body(status, body);
  Error e;
  e.status = status;
  e.kind = status == 401 ? ErrorKind::kAuthentication
           : status == 403 ? ErrorKind::kPermission
           : status == 404 ? ErrorKind::kNotFound
           : status == 413 ? ErrorKind::kTooLarge
           : status == 429 ? ErrorKind::kRateLimited
           : status < 500  ? ErrorKind::kInvalidRequest
                           : ErrorKind::kUpstream;
  std::string upstream_msg;
  simdjson::dom::element root, err;
  if (!parser.parse(body.data(), body.size()).get(root) && !root["error"].get(err)) {
    std::string_view s;
    if (err.is_object()) {
      if (!err["message"].get_string().get(s)) upstream_msg = s;
      if (!err["param"].get_string().get(s)) e.param = s;
      if (!err["code"].get_string().get(s)) e.code = s;
    } else if (!err.get_string().get(s)) {
      upstream_msg = s;
    }
  }
  if (upstream_msg.empty()) upstream_msg = std::string(body.substr(0, 300));
  // Anthropic's error types say more than its statuses (529 overloaded, ...).
  if (call.dialect() == backends::WireDialect::kAnthropic) e.kind = error_from_anthropic_body(status, body).kind;
  const std::string who = "upstream '" + (target_.provider ? target_.provider->name : std::string("?")) + "'";
  e.message = status == 401 || status == 403
                  ? who + " rejected the gateway's credentials (status " + std::to_string(status) + "): " + upstream_msg
                  : who + " returned status " + std::to_string(status) + ": " + upstream_msg;
  return e;
}

}  // namespace frugal::gateway
