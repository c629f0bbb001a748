#pragma once
// The loop both client codecs run while a streaming call is live: take the call's
// bytes as they arrive, hand them to the exchange, split them into SSE events, let the
// codec turn each event into what the client gets, and write that as one HTTP chunk.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>

#include "backends/backend.h"
#include "core/sse.h"
#include "core/usage.h"
#include "gateway/chat_exchange.h"
#include "gateway/client_watch.h"
#include "gateway/worker.h"

namespace frugal::gateway {

// `on_event` appends the client's bytes for one event to its second argument.
// Returns true when the call ended (the codec then writes its tail) or an event
// overflowed the parser (the call is cancelled; the codec ends the stream with an error,
// overflow_reason saying why); false when the client is gone — the call is cancelled and
// the exchange finished as kClientGone with `usage()`.
asio::awaitable<bool> pump_sse_events(ClientSocket& stream, backends::Call& call, ChatExchange& ex,
                                      ClientWatch& watch, SseParser& sse,
                                      const std::function<void(const SseEvent&, std::string&)>& on_event,
                                      const std::function<Usage()>& usage);

inline std::string overflow_reason(const SseParser& sse) {
  return "an event longer than " + std::to_string(sse.max_event_bytes()) + " bytes (max_sse_event)";
}

}  // namespace frugal::gateway
