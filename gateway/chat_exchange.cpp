#include "gateway/chat_exchange.h"

#include <simdjson.h>

#include "core/ids.h"
#include "gateway/log.h"
#include "gateway/routing.h"
#include "gateway/server.h"

namespace frugal::gateway {

const char* dialect_name(Dialect d) { return d == Dialect::kAnthropic ? "anthropic" : "openai"; }

ChatExchange::ChatExchange(Worker& worker, RequestContext& ctx, const Request& http, Dialect dialect)
    : w_(worker), ctx_(ctx), http_(http), dialect_(dialect),
      routing_(std::make_unique<RouteState>(worker.server.snapshot())) {
  cfg_ = routing_->snap->cfg;  // config and policy from one snapshot
}

ChatExchange::~ChatExchange() {
  if (started_ && !finished_) finish(seen_usage_, ExchangeEnd::kClientGone);
}

boost::asio::awaitable<Result<std::shared_ptr<backends::Call>>> ChatExchange::start(ChatRequest& req) {
  if (auto routed = route(req); !routed) co_return std::move(routed).error();

  started_ = true;
  auto call = co_await dispatch_routed(req);
  // A request that failed after reaching the upstreams still gets its ledger row.
  if (!call) finish(Usage{}, call.error().kind == ErrorKind::kCancelled ? ExchangeEnd::kClientGone
                                                                         : ExchangeEnd::kUpstreamError);
  co_return call;
}

void ChatExchange::observe(std::string_view bytes) { observe_routed(bytes); }

void ChatExchange::finish(const Usage& usage, ExchangeEnd end) {
  if (finished_) return;
  finished_ = true;
  seen_usage_ = usage;
  record(usage, end);
}

Error ChatExchange::upstream_error(backends::Call& call) const {
  thread_local simdjson::dom::parser parser;
  const int status = call.status();
  const std::string_view body = call.body();
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
  const std::string who = "upstream '" + (target_.provider ? target_.provider->name : std::string("?")) + "'";
  e.message = status == 401 || status == 403
                  ? who + " rejected the gateway's credentials (status " + std::to_string(status) + "): " + upstream_msg
                  : who + " returned status " + std::to_string(status) + ": " + upstream_msg;
  return e;
}

}  // namespace frugal::gateway
