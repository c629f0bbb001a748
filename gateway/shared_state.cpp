#include "gateway/shared_state.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
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

// Money in Redis is exact: an amount is two integers, h (whole micro-dollars) and l
// (the remaining picodollars, 0 <= l < 1e6), so Lua's doubles hold every value up to
// $9e9 exactly; numbers are written with '%.0f', never in exponent form.
constexpr const char* kMoneyLua = R"lua(
local M = 1000000
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= M then return h + 1, l - M end
  return h, l
end
local function less(ah, al, bh, bl) return ah < bh or (ah == bh and al < bl) end
local function str(x) return string.format('%.0f', x) end
local function amount(v)
  local c = string.find(v, ':', 1, true)
  return tonumber(string.sub(v, 1, c - 1)), tonumber(string.sub(v, c + 1))
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)lua";

// KEYS per scope: spent (hash h, l; one per window), reservations (hash id -> "h:l"),
// their expiries (zset id -> ms). ARGV: id, estimate h, l, reservation ttl (ms), then
// per scope: hard h, l (h = -1: none), soft h, l (-1: none), the spent key's ttl (ms).
// Returns {1, soft scope or 0, its spent h, l} or {0, scope, spent h, l, reserved h, l}.
constexpr const char* kReserveLua = R"lua(
local n = #KEYS / 3
local soft_at, soft_h, soft_l = 0, 0, 0
for i = 1, n do
  local sk, rk, ek = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 5 + 5 * (i - 1)
  local old = redis.call('ZRANGEBYSCORE', ek, '-inf', now_ms)
  for _, id in ipairs(old) do
    redis.call('HDEL', rk, id)
    redis.call('ZREM', ek, id)
  end
  local rh, rl = 0, 0
  for _, v in ipairs(redis.call('HVALS', rk)) do
    local h, l = amount(v)
    rh, rl = add(rh, rl, h, l)
  end
  local sp = redis.call('HMGET', sk, 'h', 'l')
  local sh, sl = tonumber(sp[1] or '0'), tonumber(sp[2] or '0')
  local hh, hl = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if hh >= 0 then
    local th, tl = add(sh, sl, rh, rl)
    if not less(th, tl, hh, hl) then return {0, i, sh, sl, rh, rl} end
  end
  local fh, fl = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if soft_at == 0 and fh >= 0 and not less(sh, sl, fh, fl) then soft_at, soft_h, soft_l = i, sh, sl end
end
local ttl = tonumber(ARGV[4])
for i = 1, n do
  local rk, ek = KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HSET', rk, ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  redis.call('ZADD', ek, str(now_ms + ttl), ARGV[1])
  redis.call('PEXPIRE', rk, str(2 * ttl))
  redis.call('PEXPIRE', ek, str(2 * ttl))
end
return {1, soft_at, soft_h, soft_l}
)lua";

// KEYS as for reserve. ARGV: id, cost h, l, then per scope the spent key's ttl (ms).
constexpr const char* kSettleLua = R"lua(
local n = #KEYS / 3
local ch, cl = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, n do
  local sk, rk, ek = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HDEL', rk, ARGV[1])
  redis.call('ZREM', ek, ARGV[1])
  if ch > 0 or cl > 0 then
    local sp = redis.call('HMGET', sk, 'h', 'l')
    local h, l = add(tonumber(sp[1] or '0'), tonumber(sp[2] or '0'), ch, cl)
    redis.call('HSET', sk, 'h', str(h), 'l', str(l))
    redis.call('PEXPIRE', sk, ARGV[3 + i])
  end
end
return 1
)lua";

// KEYS: the records hash, the generation counter. ARGV: name, record.
constexpr const char* kPutKeyLua = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
)lua";

constexpr const char* kKeysHash = "frugal:keys";
constexpr const char* kKeysGeneration = "frugal:keys:gen";
constexpr size_t kMaxJobs = 10'000;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Money as the scripts' (h, l) pair; nullopt beyond what they hold exactly.
std::optional<std::pair<std::string, std::string>> split(Money m) {
  const int128_t p = m.picos();
  if (p < 0 || p / kPicosPerMicro >= (int128_t{1} << 53)) return std::nullopt;
  return std::pair{std::to_string(static_cast<int64_t>(p / kPicosPerMicro)),
                   std::to_string(static_cast<int64_t>(p % kPicosPerMicro))};
}

Money join(int64_t h, int64_t l) { return Money::from_picos(int128_t{h} * kPicosPerMicro + l); }

std::string usd(Money m) {
  std::string s = "$";
  s += m.to_usd_string();
  return s;
}

}  // namespace

SharedState::SharedState(const config::SharedStateConfig& cfg) : cfg_(cfg) {
  // redis://[[user]:password@]host[:port][/db]
  std::string rest = cfg_.url.substr(std::string("redis://").size());
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    db_ = std::atoi(rest.c_str() + slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    const std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t c = userinfo.find(':');
    user_ = c == std::string::npos ? std::string() : userinfo.substr(0, c);
    password_ = c == std::string::npos ? userinfo : userinfo.substr(c + 1);
  }
  const size_t colon = rest.rfind(':');
  host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos) port_ = static_cast<uint16_t>(std::atoi(rest.c_str() + colon + 1));
  if (host_.empty()) host_ = "127.0.0.1";
  uint64_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1)
    r = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^ (uint64_t(getpid()) << 32);
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  id_prefix_ = buf;
  if (!resolve()) log::warn("shared_state: cannot resolve '" + host_ + "' yet; retrying in the background");
  thread_ = std::thread([this] { maintain(); });
}

std::string SharedState::shown_url() const {
  return "redis://" + std::string(password_.empty() ? "" : "***@") + host_ + ":" + std::to_string(port_) +
         (db_ ? "/" + std::to_string(db_) : "");
}

SharedState::~SharedState() {
  stop();
  close_idle();
}

void SharedState::stop() {
  {
    // Queued writes (settlements above all) get a bounded chance to reach Redis.
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1000, 4 * cfg_.timeout_ms)),
                 [&] { return stop_ || jobs_.empty() || down_.load(); });
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SharedState::close_idle() {
  std::lock_guard lock(mu_);
  for (int fd : idle_) ::close(fd);
  idle_.clear();
}

bool SharedState::resolve() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res) != 0 || !res) return false;
  std::lock_guard lock(mu_);
  std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
  addr_len_ = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

Result<int> SharedState::connect_fd(int timeout_ms) {
  sockaddr_storage addr;
  socklen_t len;
  {
    std::lock_guard lock(mu_);
    addr = addr_;
    len = addr_len_;
  }
  if (len == 0) return redis_error("'" + host_ + "' is not resolved");
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return redis_error(std::strerror(errno));
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
    int err = 0;
    socklen_t elen = sizeof err;
    if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)) rc = -1;
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

Result<SharedState::Reply> SharedState::call(const std::vector<std::string>& args, bool probe) {
  if (!probe && down_.load(std::memory_order_relaxed)) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return redis_error("unavailable (a background probe reconnects)");
  }
  // One deadline for the whole call, connecting included.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  auto mark_down = [&] {
    if (!down_.exchange(true)) log::warn("shared_state: Redis at " + host_ + ":" + std::to_string(port_) + " is unavailable");
    failures_.fetch_add(1, std::memory_order_relaxed);
  };
  auto encode = [](std::string& out, const std::vector<std::string>& command) {
    out += "*" + std::to_string(command.size()) + "\r\n";
    for (const auto& a : command) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  };
  std::string out;
  size_t handshake = 0;  // replies to AUTH / SELECT that come first on a new connection
  int fd = take_fd();
  if (fd < 0) {
    auto c = connect_fd(left_ms());
    if (!c) {
      mark_down();
      return std::move(c).error();
    }
    fd = *c;
    if (!password_.empty()) {
      encode(out, user_.empty() ? std::vector<std::string>{"AUTH", password_}
                                : std::vector<std::string>{"AUTH", user_, password_});
      ++handshake;
    }
    if (db_ != 0) {
      encode(out, {"SELECT", std::to_string(db_)});
      ++handshake;
    }
  }
  auto fail = [&](const std::string& why) -> Result<Reply> {
    ::close(fd);
    mark_down();
    return redis_error(why);
  };
  encode(out, args);
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
        if (len < 0) {
          r.nil = true;
          return true;
        }
        if (len > (512ll << 20) || !fill(static_cast<size_t>(len) + 2)) return false;
        r.text = buf.substr(at, static_cast<size_t>(len));
        at += static_cast<size_t>(len) + 2;
        return true;
      }
      case '*': {
        const long long n = std::atoll(body.c_str());
        if (n < 0) {
          r.nil = true;
          return true;
        }
        for (long long i = 0; i < n && i < 1'000'000; ++i) {
          r.items.emplace_back();
          if (!parse(r.items.back(), depth + 1)) return false;
        }
        return true;
      }
    }
    return false;
  };
  for (size_t i = 0; i < handshake; ++i) {
    Reply h;
    if (!parse(h, 0)) return fail("no answer within " + std::to_string(cfg_.timeout_ms) + " ms");
    if (h.type == '-') return fail(i == 0 && !password_.empty() ? "authentication refused" : h.text);
  }
  Reply r;
  if (!parse(r, 0)) return fail("no answer within " + std::to_string(cfg_.timeout_ms) + " ms");
  give_fd(fd);
  if (r.type == '-') {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return redis_error(r.text);
  }
  return r;
}

void SharedState::enqueue(std::vector<std::string> args) {
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() >= kMaxJobs) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    jobs_.push_back(Job{std::move(args), steady_ms() + cfg_.reservation_ttl_ms});
  }
  cv_.notify_all();
}

void SharedState::set_tick(std::function<void()> tick) {
  std::lock_guard lock(mu_);
  tick_ = std::move(tick);
}

void SharedState::maintain() {
  int64_t next_tick = 0;
  for (;;) {
    std::function<void()> tick;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next_tick - steady_ms())),
                   [&] { return stop_ || (!jobs_.empty() && !down_.load()) || steady_ms() >= next_tick; });
      if (stop_) return;
      tick = tick_;
    }
    const int64_t now = steady_ms();
    const bool tick_due = now >= next_tick;
    if (tick_due) next_tick = now + cfg_.poll_ms;
    if (down_.load()) {
      if (!tick_due) continue;
      {
        std::lock_guard lock(mu_);
        while (!jobs_.empty() && jobs_.front().give_up_ms <= now) {
          jobs_.pop_front();
          dropped_.fetch_add(1, std::memory_order_relaxed);
        }
      }
      bool resolved;
      {
        std::lock_guard lock(mu_);
        resolved = addr_len_ != 0;
      }
      if (!resolved && !resolve()) continue;
      close_idle();  // connections from before the failure are dead
      auto pong = call({"PING"}, true);
      if (!pong) continue;
      down_.store(false);
      log::info("shared_state: Redis at " + host_ + ":" + std::to_string(port_) + " answers again");
    }
    // Queued writes, oldest first; on a failure the rest wait for the next round.
    for (;;) {
      Job job;
      {
        std::lock_guard lock(mu_);
        if (jobs_.empty()) break;
        job = jobs_.front();
      }
      auto r = call(job.args, true);
      if (!r && down_.load()) break;
      std::lock_guard lock(mu_);
      if (!jobs_.empty()) jobs_.pop_front();
    }
    cv_.notify_all();  // stop() waits for the queue to drain
    if (tick_due && tick && !down_.load()) tick();
  }
}

std::string SharedState::new_reservation_id() {
  return id_prefix_ + "-" + std::to_string(next_id_.fetch_add(1, std::memory_order_relaxed));
}

namespace {

void budget_keys(std::vector<std::string>& args, const policies::BudgetScope& s) {
  args.push_back("frugal:bud:spent:" + s.name + ":" + std::to_string(s.window_start_us));
  args.push_back("frugal:bud:res:" + s.name);
  args.push_back("frugal:bud:exp:" + s.name);
}

// The spent key outlives its window by a day (a settlement that arrives late).
std::string spent_ttl_ms(const policies::BudgetScope& s) {
  const int64_t now_us = policies::SystemClock().now_us();
  return std::to_string(std::max<int64_t>(1, (s.window_end_us - now_us) / 1000) + 86'400'000);
}

}  // namespace

Result<policies::BudgetCheck> SharedState::reserve_budget(const std::vector<policies::BudgetScope>& scopes,
                                                          Money estimate, const std::string& id,
                                                          std::string* denied) {
  policies::BudgetCheck c;
  if (scopes.empty()) return c;
  const auto est = split(estimate);
  if (!est) return redis_error("a budget estimate beyond $9e9");
  std::vector<std::string> args{"EVAL", std::string(kMoneyLua) + kReserveLua, std::to_string(scopes.size() * 3)};
  for (const auto& s : scopes) budget_keys(args, s);
  args.insert(args.end(), {id, est->first, est->second, std::to_string(cfg_.reservation_ttl_ms)});
  for (const auto& s : scopes) {
    const auto hard = s.hard ? split(*s.hard) : std::nullopt;
    const auto soft = s.soft ? split(*s.soft) : std::nullopt;
    args.push_back(hard ? hard->first : "-1");
    args.push_back(hard ? hard->second : "0");
    args.push_back(soft ? soft->first : "-1");
    args.push_back(soft ? soft->second : "0");
    args.push_back(spent_ttl_ms(s));
  }
  auto r = call(args);
  if (!r) return std::move(r).error();
  if (r->type != '*' || r->items.size() < 4) return redis_error("unexpected answer to the budget script");
  const auto& it = r->items;
  const size_t i = static_cast<size_t>(it[1].integer);
  if (it[0].integer == 1) {
    if (i >= 1 && i <= scopes.size()) {
      const policies::BudgetScope& s = scopes[i - 1];
      c.soft_exceeded = true;
      c.message = "budget '" + s.name + "' over its soft limit: spent " + usd(join(it[2].integer, it[3].integer)) +
                  " of " + usd(*s.soft) + " soft limit (all replicas); resets at " +
                  policies::format_utc(s.window_end_us);
    }
    return c;
  }
  if (i < 1 || i > scopes.size() || it.size() < 6) return redis_error("unexpected answer to the budget script");
  const policies::BudgetScope& s = scopes[i - 1];
  const Money spent = join(it[2].integer, it[3].integer), reserved = join(it[4].integer, it[5].integer);
  c.allowed = false;
  c.message = "budget '" + s.name + "' exhausted: spent " + usd(spent) +
              (reserved != Money{} ? " (+" + usd(reserved) + " reserved by requests in flight)" : "") + " of " +
              usd(*s.hard) + " hard limit (all replicas); resets at " + policies::format_utc(s.window_end_us);
  c.resets_at_us = s.window_end_us;
  if (denied) *denied = s.name;
  return c;
}

void SharedState::settle_budget(const std::vector<policies::BudgetScope>& scopes, const std::string& id, Money cost) {
  if (scopes.empty()) return;
  auto c = split(cost < Money{} ? Money{} : cost);
  if (!c) c = std::pair<std::string, std::string>{"0", "0"};  // beyond $9e9: the reservation is still released
  std::vector<std::string> args{"EVAL", std::string(kMoneyLua) + kSettleLua, std::to_string(scopes.size() * 3)};
  for (const auto& s : scopes) budget_keys(args, s);
  args.insert(args.end(), {id, c->first, c->second});
  for (const auto& s : scopes) args.push_back(spent_ttl_ms(s));
  enqueue(std::move(args));
}

Result<void> SharedState::put_key(const std::string& name, const std::string& record) {
  auto r = call({"EVAL", kPutKeyLua, "2", kKeysHash, kKeysGeneration, name, record}, true);
  if (!r) return std::move(r).error();
  return {};
}

void SharedState::put_key_later(const std::string& name, const std::string& record) {
  enqueue({"EVAL", kPutKeyLua, "2", kKeysHash, kKeysGeneration, name, record});
}

Result<int64_t> SharedState::key_generation() {
  auto r = call({"GET", kKeysGeneration}, true);
  if (!r) return std::move(r).error();
  return r->nil ? 0 : std::atoll(r->text.c_str());
}

Result<std::vector<std::string>> SharedState::key_records() {
  auto r = call({"HVALS", kKeysHash}, true);
  if (!r) return std::move(r).error();
  std::vector<std::string> out;
  for (auto& item : r->items) out.push_back(std::move(item.text));
  return out;
}

Result<std::optional<std::string>> SharedState::cache_get(const std::string& key) {
  auto r = call({"GET", "frugal:cache:" + key});
  if (!r) return std::move(r).error();
  if (r->nil || r->type != '$') return std::optional<std::string>();
  return std::optional<std::string>(std::move(r->text));
}

void SharedState::cache_put(const std::string& key, std::string bytes, int64_t ttl_ms) {
  if (ttl_ms <= 0 || static_cast<int64_t>(bytes.size()) > cfg_.cache_entry_bytes) return;
  enqueue({"SET", "frugal:cache:" + key, std::move(bytes), "PX", std::to_string(std::min(ttl_ms, cfg_.cache_ttl_ms))});
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
  if (down()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return redis_error("unavailable (a background probe reconnects)");
  }
  enqueue(std::move(args));  // nothing waits for the answer
  return {};
}

}  // namespace frugal::gateway
