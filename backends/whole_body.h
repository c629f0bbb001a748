#pragma once
// Reading a non-streamed answer whole. The upstream transports stop reading once
// UpstreamCall::kPauseThreshold (1 MiB) waits untaken (back-pressure for streams), so a
// caller that waited for kDone without taking the body would wait forever on a larger
// answer. Every reader of a complete body goes through read_whole_body.
//
// Threading: on the call's io_context, like the Call itself.
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "core/error.h"

namespace frugal::backends {

// The default cap on a non-streamed answer (`max_answer` in the provider config).
inline constexpr size_t kDefaultMaxAnswerBytes = 64u << 20;

// Takes `call`'s body as it arrives until the call is done, and returns all of it.
// Errors: the client went away (kCancelled, the call was cancelled), the call failed
// (kTimeout when it timed out, else kUpstream, with the transport's message), or the
// body grew past `max_bytes` (the call is cancelled; kUpstream "larger than ...").
boost::asio::awaitable<Result<std::string>> read_whole_body(Call& call, size_t max_bytes);

// `inner` (done) with `body` as its whole body: status, headers, timings, dialect and
// usage stay inner's; `facts` are what the check of the body found. What dispatch hands
// out for an answer it has read whole.
std::shared_ptr<Call> with_whole_body(std::shared_ptr<Call> inner, std::string body, AnswerFacts facts = {});

}  // namespace frugal::backends
