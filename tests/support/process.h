#pragma once
// Test helpers: run a child process, wait for a line on its output, and a tiny
// blocking HTTP client over libcurl. Test-only code.
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace frugal::test {

class Child {
 public:
  // Starts `argv` with `env` additions; stdout and stderr are merged into one pipe.
  Child(std::vector<std::string> argv, std::vector<std::string> env = {}) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Child() { stop(SIGKILL); if (out_ >= 0) close(out_); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads output until `pattern` matches a line; returns the first capture group.
  std::string wait_for(const std::string& pattern, int timeout_ms = 10'000) {
    const std::regex re(pattern);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        const std::string line = buf_.substr(0, nl);
        log_ += line + "\n";
        buf_.erase(0, nl + 1);
        std::smatch m;
        if (std::regex_search(line, m, re)) return m.size() > 1 ? m[1].str() : line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) throw std::runtime_error("timed out waiting for '" + pattern + "'; output:\n" + log_ + buf_);
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char tmp[4096];
      const ssize_t n = read(out_, tmp, sizeof tmp);
      if (n <= 0) throw std::runtime_error("process exited while waiting for '" + pattern + "'; output:\n" + log_ + buf_);
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  // Everything read so far plus whatever is readable now.
  std::string output() {
    char tmp[4096];
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) break;
      const ssize_t n = read(out_, tmp, sizeof tmp);
      if (n <= 0) break;
      buf_.append(tmp, static_cast<size_t>(n));
    }
    return log_ + buf_;
  }
  // Sends `sig` and reaps; returns the exit status (or -signal).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return status_;
    kill(pid_, sig);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return status_;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
  std::string buf_, log_;
};

// A loopback TCP port free at the time of the call (another process may take it).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// The standard output of the shell command `cmd`; its wait status in `status`.
inline std::string run_output(const std::string& cmd, int& status) {
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  status = pclose(f);
  return out;
}

// The admin listener's URL of a gateway whose "listening on" line was just read: the
// line after it names the admin API's address (gateway/server.cpp).
inline std::string admin_url_of(Child& gateway) {
  return "http://127.0.0.1:" + gateway.wait_for("admin API .* on 127\\.0\\.0\\.1:(\\d+)");
}

struct Response {
  long status = 0;
  double first_byte_ms = 0;  // time to the first response byte
  std::string body;
  // Header lines in arrival order; HTTP trailers (after a chunked body) come last.
  std::vector<std::pair<std::string, std::string>> headers;
  CURLcode curl_code = CURLE_OK;  // CURLE_OK: the whole response arrived
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    return {};
  }
  // The last value of `name`: a trailer's when the response had one.
  std::string last_header(const std::string& name) const {
    std::string out;
    for (const auto& [k, v] : headers)
      if (strcasecmp(k.c_str(), name.c_str()) == 0) out = v;
    return out;
  }
};

// Blocking request. `on_data` may return false to abort the transfer (client disconnect).
inline Response request(const std::string& method, const std::string& url, const std::string& body = {},
                        std::vector<std::string> headers = {},
                        std::function<bool(const std::string&)> on_data = nullptr, long timeout_ms = 20'000) {
  struct Ctx {
    Response r;
    std::function<bool(const std::string&)> on_data;
  } ctx{{}, std::move(on_data)};
  CURL* c = curl_easy_init();
  curl_slist* hl = nullptr;
  // JSON unless the caller gives its own Content-Type.
  if (std::none_of(headers.begin(), headers.end(),
                   [](const std::string& h) { return strncasecmp(h.c_str(), "content-type:", 13) == 0; }))
    headers.emplace_back("Content-Type: application/json");
  for (const auto& h : headers) hl = curl_slist_append(hl, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* p) -> size_t {
    auto* x = static_cast<Ctx*>(p);
    std::string piece(d, s * n);
    x->r.body += piece;
    if (x->on_data && !x->on_data(piece)) return 0;
    return s * n;
  });
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, +[](char* d, size_t s, size_t n, void* p) -> size_t {
    auto* x = static_cast<Ctx*>(p);
    std::string line(d, s * n);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
      x->r.headers.emplace_back(line.substr(0, colon), v);
    }
    return s * n;
  });
  ctx.r.curl_code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ctx.r.status);
  curl_off_t starttransfer_us = 0;
  curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &starttransfer_us);
  ctx.r.first_byte_ms = static_cast<double>(starttransfer_us) / 1000.0;
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return ctx.r;
}

}  // namespace frugal::test
