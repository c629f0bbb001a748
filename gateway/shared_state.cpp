#include "gateway/shared_state.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>

#include "core/log.h"

namespace frugal::gateway {

namespace {

constexpr size_t kMaxIdle = 16;

// KEYS: per scope its request bucket and token bucket. ARGV[1]: the window (µs); then
// per scope rpm, tpm. Levels are kept in millionths. Returns {1} or {0, scope, seconds}.
constexpr const char* kAdmitScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local w = tonumber(ARGV[1])
local n = #KEYS / 2
local function level(key, cap)
  local b = redis.call('HMGET', key, 'l', 'u')
  if not b[1] then return cap * 1000000 end
  local l = tonumber(b[1]) + math.floor(cap * 1000000 * (now - tonumber(b[2])) / w)
  if l > cap * 1000000 then l = cap * 1000000 end
  return l
end
for i = 1, n do
  local rpm = tonumber(ARGV[2 * i])
  local tpm = tonumber(ARGV[2 * i + 1])
  if rpm > 0 then
    local l = level(KEYS[2 * i - 1], rpm)
    if l < 1000000 then return {0, i, math.ceil((1000000 - l) * w / rpm / 1000000000000)} end
  end
  if tpm > 0 then
    local l = level(KEYS[2 * i], tpm)
    if l <= 0 then return {0, i, math.ceil((1000000 - l) * w / tpm / 1000000000000)} end
  end
end
for i = 1, n do
  local rpm = tonumber(ARGV[2 * i])
  if rpm > 0 then
    local l = level(KEYS[2 * i - 1], rpm) - 1000000
    redis.call('HSET', KEYS[2 * i - 1], 'l', l, 'u', now)
    redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil(2 * w / 1000))
  end
end
return {1}
)lua";

// KEYS: token buckets; ARGV[1]: window (µs), ARGV[2]: tokens, then each bucket's tpm.
constexpr const char* kChargeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local w = tonumber(ARGV[1])
local used = tonumber(ARGV[2]) * 1000000
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 + i]) * 1000000
  local b = redis.call('HMGET', KEYS[i], 'l', 'u')
  local l = cap
  if b[1] then
    l = tonumber(b[1]) + math.floor(cap * (now - tonumber(b[2])) / w)
    if l > cap then l = cap end
  end
  redis.call('HSET', KEYS[i], 'l', l - used, 'u', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(2 * w / 1000) + 60000)
end
return 1
)lua";

Error redis_error(const std::string& what) {
  return make_error(ErrorKind::kUnavailable, "shared state (Redis): " + what, "", "shared_state_unavailable");
}

}  // namespace

SharedState::SharedState(const config::SharedStateConfig& cfg) : cfg_(cfg) {
  std::string rest = cfg_.url.substr(std::string("redis://").size());
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos) port_ = static_cast<uint16_t>(std::atoi(rest.c_str() + colon + 1));
  if (host_.empty()) host_ = "127.0.0.1";
}

SharedState::~SharedState() {
  for (int fd : idle_) ::close(fd);
}

Result<int> SharedState::connect_fd() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res) != 0 || !res)
    return redis_error("cannot resolve '" + host_ + "'");
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return redis_error(std::strerror(errno));
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(cfg_.timeout_ms)) == 1 ? 0 : -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) rc = -1;
  }
  if (rc != 0) {
    ::close(fd);
    return redis_error("cannot connect to " + host_ + ":" + std::to_string(port_));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int SharedState::take_fd() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return -1;
  const int fd = idle_.back();
  idle_.pop_back();
  return fd;
}

void SharedState::give_fd(int fd) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(fd);
  else ::close(fd);
}

Result<SharedState::Reply> SharedState::call(const std::vector<std::string>& args) {
  int fd = take_fd();
  if (fd < 0) {
    auto c = connect_fd();
    if (!c) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      return std::move(c).error();
    }
    fd = *c;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  auto fail = [&](const std::string& why) -> Result<Reply> {
    ::close(fd);
    failures_.fetch_add(1, std::memory_order_relaxed);
    return redis_error(why);
  };
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  for (size_t sent = 0; sent < out.size();) {
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN) return fail("write failed");
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms()) != 1) return fail("timed out");
  }
  std::string buf;
  size_t at = 0;
  // Reads until `buf` holds at least `need` bytes past `at`.
  auto fill = [&](size_t need) -> bool {
    while (buf.size() < at + need) {
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf.append(tmp, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || errno != EAGAIN) return false;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, left_ms()) != 1) return false;
    }
    return true;
  };
  auto line = [&](std::string& s) -> bool {
    for (;;) {
      const size_t crlf = buf.find("\r\n", at);
      if (crlf != std::string::npos) {
        s = buf.substr(at, crlf - at);
        at = crlf + 2;
        return true;
      }
      if (!fill(buf.size() - at + 1)) return false;
    }
  };
  std::function<bool(Reply&, int)> parse = [&](Reply& r, int depth) -> bool {
    std::string l;
    if (depth > 4 || !line(l) || l.empty()) return false;
    r.type = l[0];
    const std::string body = l.substr(1);
    switch (r.type) {
      case '+':
      case '-': r.text = body; return true;
      case ':': r.integer = std::atoll(body.c_str()); return true;
      case '$': {
        const long long len = std::atoll(body.c_str());
        if (len < 0) return true;
        if (!fill(static_cast<size_t>(len) + 2)) return false;
        r.text = buf.substr(at, static_cast<size_t>(len));
        at += static_cast<size_t>(len) + 2;
        return true;
      }
      case '*': {
        const long long n = std::atoll(body.c_str());
        for (long long i = 0; i < n && i < 64; ++i) {
          r.items.emplace_back();
          if (!parse(r.items.back(), depth + 1)) return false;
        }
        return true;
      }
    }
    return false;
  };
  Reply r;
  if (!parse(r, 0)) return fail("no answer within " + std::to_string(cfg_.timeout_ms) + " ms");
  give_fd(fd);
  if (r.type == '-') {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return redis_error(r.text);
  }
  return r;
}

Result<policies::RateDecision> SharedState::admit(const std::vector<policies::RateScope>& scopes, int64_t window_us) {
  std::vector<std::string> args{"EVAL", kAdmitScript, std::to_string(scopes.size() * 2)};
  for (const auto& s : scopes) {
    args.push_back("frugal:rl:req:" + s.name);
    args.push_back("frugal:rl:tok:" + s.name);
  }
  args.push_back(std::to_string(window_us));
  for (const auto& s : scopes) {
    args.push_back(std::to_string(s.rpm));
    args.push_back(std::to_string(s.tpm));
  }
  auto r = call(args);
  if (!r) return std::move(r).error();
  policies::RateDecision d;
  if (r->type != '*' || r->items.empty()) return redis_error("unexpected answer to the rate script");
  if (r->items[0].integer == 1) return d;
  d.allowed = false;
  const size_t i = r->items.size() > 1 ? static_cast<size_t>(r->items[1].integer) : 1;
  d.retry_after_s = r->items.size() > 2 ? std::max<int64_t>(1, r->items[2].integer) : 1;
  const policies::RateScope& s = scopes.at(i >= 1 && i <= scopes.size() ? i - 1 : 0);
  d.message = "Rate limit reached for " + s.name + " (shared by every replica).";
  return d;
}

Result<void> SharedState::charge_tokens(const std::vector<policies::RateScope>& scopes, int64_t tokens,
                                        int64_t window_us) {
  std::vector<std::string> keys, caps;
  for (const auto& s : scopes)
    if (s.tpm > 0) {
      keys.push_back("frugal:rl:tok:" + s.name);
      caps.push_back(std::to_string(s.tpm));
    }
  if (keys.empty() || tokens <= 0) return {};
  std::vector<std::string> args{"EVAL", kChargeScript, std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  args.push_back(std::to_string(window_us));
  args.push_back(std::to_string(tokens));
  args.insert(args.end(), caps.begin(), caps.end());
  auto r = call(args);
  if (!r) return std::move(r).error();
  return {};
}

}  // namespace frugal::gateway
