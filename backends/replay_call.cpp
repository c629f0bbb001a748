#include "backends/replay_call.h"

#include <strings.h>

#include "core/ids.h"

namespace frugal::backends {

ReplayCall::ReplayCall(int status, std::string content_type, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers)
    : status_(status), headers_(std::move(headers)), body_(std::move(body)), started_us_(mono_us()) {
  headers_.emplace_back("content-type", std::move(content_type));
}

boost::asio::awaitable<void> ReplayCall::wait() { co_return; }

std::string_view ReplayCall::header(std::string_view name) const {
  for (const auto& [k, v] : headers_)
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return {};
}

}  // namespace frugal::backends
