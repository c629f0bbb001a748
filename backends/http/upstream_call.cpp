#include "backends/http/upstream_call.h"

#include <strings.h>
#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace frugal::http {

boost::asio::awaitable<void> UpstreamCall::wait() {
  if (!pending_) {
    signal_.expires_at(boost::asio::steady_timer::time_point::max());
    co_await signal_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  pending_ = false;
}

void UpstreamCall::notify() {
  pending_ = true;
  signal_.cancel();
}

bool idle_socket_is_quiet(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::string_view UpstreamCall::header(std::string_view name) const {
  for (const auto& [k, v] : headers_)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  return {};
}

}  // namespace frugal::http
