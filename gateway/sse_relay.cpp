#include "gateway/sse_relay.h"

namespace frugal::gateway {

asio::awaitable<bool> pump_sse_events(ClientSocket& stream, backends::Call& call, ChatExchange& ex,
                                      ClientWatch& watch, SseParser& sse,
                                      const std::function<void(const SseEvent&, std::string&)>& on_event,
                                      const std::function<Usage()>& usage) {
  std::string events, frame;
  for (;;) {
    std::string bytes = call.take_body();
    if (!bytes.empty()) {
      events.clear();
      sse.feed(bytes, [&](const SseEvent& ev) {
        ex.observe_event(ev);  // the same events feed the cache, the scorer and the client
        on_event(ev, events);
      });
      if (sse.overflowed()) call.cancel();  // the codec ends the stream with an error event
      if (!events.empty()) {
        frame.clear();
        append_http_chunk(frame, events);
        if (!co_await write_raw(stream, frame)) {
          call.cancel();
          ex.finish(usage(), ExchangeEnd::kClientGone);
          co_return false;
        }
      }
    }
    if (sse.overflowed() || (call.state() == backends::CallState::kDone && call.body().empty())) break;
    if (call.state() != backends::CallState::kDone) co_await call.wait();
  }
  if (watch.client_gone) {
    ex.finish(usage(), ExchangeEnd::kClientGone);
    co_return false;
  }
  co_return true;
}

}  // namespace frugal::gateway
