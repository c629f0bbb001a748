// `frugal pull`'s download and resume logic against an in-process HTTP server on
// loopback whose behaviour each test picks: honour Range (206/416), ignore it (200),
// cut the first response mid-body, redirect like the hub does to its CDN.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "backends/engine/hub/pull.h"

using namespace frugal::engine::hub;
namespace fs = std::filesystem;

namespace {

struct Seen {
  std::string path;
  std::string range;          // the Range header value, "" if none
  std::string authorization;  // "" if none
};

class FileServer {
 public:
  struct Behaviour {
    bool honour_range = true;
    bool cut_first = false;  // the first body response stops halfway and the connection closes
    bool redirect = false;   // /resolve/ URLs answer 302 to /cdn/<name>
  };

  FileServer(std::string content, Behaviour b) : content_(std::move(content)), b_(b) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FileServer() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void run() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      serve(c);
      ::close(c);
    }
  }

  static void send_all(int c, std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(c, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }

  void serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    Seen s;
    std::istringstream lines(req.substr(0, req.find("\r\n\r\n")));
    std::string line;
    std::getline(lines, line);
    s.path = line.substr(line.find(' ') + 1);
    s.path = s.path.substr(0, s.path.find(' '));
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon);
      for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const std::string value = line.substr(line.find_first_not_of(' ', colon + 1));
      if (key == "range") s.range = value;
      if (key == "authorization") s.authorization = value;
    }
    {
      std::lock_guard lock(mu_);
      seen_.push_back(s);
    }
    const std::string size = std::to_string(content_.size());
    if (b_.redirect && s.path.find("/resolve/") != std::string::npos) {
      send_all(c, "HTTP/1.1 302 Found\r\nLocation: /cdn/blob\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    if (s.path.find("/missing") != std::string::npos) {
      send_all(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 15\r\nConnection: close\r\n\r\nEntry not found");
      return;
    }
    size_t start = 0;
    bool partial = false;
    if (b_.honour_range && s.range.rfind("bytes=", 0) == 0) {
      start = std::stoull(s.range.substr(6));
      if (start >= content_.size()) {
        send_all(c, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */" + size +
                        "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      partial = true;
    }
    const std::string_view body = std::string_view(content_).substr(start);
    std::string head = partial ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) +
                                     "-" + std::to_string(content_.size() - 1) + "/" + size + "\r\n"
                               : std::string("HTTP/1.1 200 OK\r\n");
    head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    send_all(c, head);
    if (b_.cut_first && !cut_done_) {
      cut_done_ = true;
      send_all(c, body.substr(0, body.size() / 2));
      return;  // closed mid-body
    }
    send_all(c, body);
  }

  std::string content_;
  Behaviour b_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
  bool cut_done_ = false;
};

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("frugal-pull-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

PullOptions options(const FileServer& s, const TempDir& d) {
  PullOptions o;
  o.repo = "org/model-GGUF";
  o.file = "model.Q8_0.gguf";
  o.dir = d.path.string();
  o.endpoint = s.endpoint();
  o.connect_timeout_s = 5;
  o.stall_timeout_s = 5;
  return o;
}

const std::string kContent = random_bytes(300'000, 7);

}  // namespace

TEST_CASE("resolve URL: endpoint/repo/resolve/revision/file, segments escaped") {
  CHECK(resolve_url("https://huggingface.co/", "org/m", "main", "dir/a b.gguf") ==
        "https://huggingface.co/org/m/resolve/main/dir/a%20b.gguf");
}

TEST_CASE("a fresh download through the hub's redirect, with HF_TOKEN as bearer") {
  FileServer server(kContent, {.redirect = true});
  TempDir dir;
  setenv("HF_TOKEN", "hf_test_token", 1);
  auto r = pull(options(server, dir));
  unsetenv("HF_TOKEN");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  CHECK(r->bytes == static_cast<int64_t>(kContent.size()));
  CHECK(r->resumed_from == 0);
  CHECK_FALSE(fs::exists(r->path + ".part"));
  const auto seen = server.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].path == "/org/model-GGUF/resolve/main/model.Q8_0.gguf");
  CHECK(seen[0].authorization == "Bearer hf_test_token");
  CHECK(seen[0].range.empty());
  CHECK(seen[1].path == "/cdn/blob");

  // A second pull finds the file and sends nothing.
  auto again = pull(options(server, dir));
  REQUIRE(again.ok());
  CHECK(again->already_present);
  CHECK(server.seen().size() == 2);
}

TEST_CASE("a transfer cut mid-body resumes with a Range request and is byte-identical") {
  FileServer server(kContent, {.cut_first = true});
  TempDir dir;
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  CHECK(r->attempts == 2);
  const auto seen = server.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].range.empty());
  CHECK(seen[1].range == "bytes=" + std::to_string(kContent.size() / 2) + "-");
}

TEST_CASE("an interrupted run keeps the .part, the next run resumes from it") {
  TempDir dir;
  std::string part_path;
  {
    FileServer cutting(kContent, {.cut_first = true});
    PullOptions o = options(cutting, dir);
    o.max_attempts = 1;
    auto r = pull(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("run the command again to resume") != std::string::npos);
    part_path = (dir.path / "model.Q8_0.gguf.part").string();
    CHECK(fs::file_size(part_path) == kContent.size() / 2);
    CHECK_FALSE(fs::exists(dir.path / "model.Q8_0.gguf"));
  }
  FileServer server(kContent, {});
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(r->resumed_from == static_cast<int64_t>(kContent.size() / 2));
  CHECK(read_file(r->path) == kContent);
  REQUIRE(server.seen().size() == 1);
  CHECK(server.seen()[0].range == "bytes=" + std::to_string(kContent.size() / 2) + "-");
}

TEST_CASE("a pre-existing partial .part is continued (206 appends)") {
  FileServer server(kContent, {});
  TempDir dir;
  write_file(dir.path / "model.Q8_0.gguf.part", std::string_view(kContent).substr(0, 12345));
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(r->resumed_from == 12345);
  CHECK(read_file(r->path) == kContent);
  CHECK(server.seen().at(0).range == "bytes=12345-");
}

TEST_CASE("416: a complete .part is just renamed") {
  FileServer server(kContent, {});
  TempDir dir;
  write_file(dir.path / "model.Q8_0.gguf.part", kContent);
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  CHECK(r->attempts == 1);
  CHECK(server.seen().at(0).range == "bytes=" + std::to_string(kContent.size()) + "-");
}

TEST_CASE("416: a .part larger than the file is discarded and the download restarts") {
  FileServer server(kContent, {});
  TempDir dir;
  write_file(dir.path / "model.Q8_0.gguf.part", kContent + "trailing garbage");
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  const auto seen = server.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].range.empty());
}

TEST_CASE("200 to a Range request: the server ignored it, the .part is rewritten") {
  FileServer server(kContent, {.honour_range = false});
  TempDir dir;
  write_file(dir.path / "model.Q8_0.gguf.part", std::string(5000, 'X'));  // not even a prefix
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  CHECK(server.seen().at(0).range == "bytes=5000-");
}

TEST_CASE("a server that ignores Range and cuts still converges from byte 0") {
  FileServer server(kContent, {.honour_range = false, .cut_first = true});
  TempDir dir;
  auto r = pull(options(server, dir));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(read_file(r->path) == kContent);
  CHECK(r->attempts == 2);
}

TEST_CASE("HTTP errors are precise and leave no file") {
  FileServer server(kContent, {});
  TempDir dir;
  PullOptions o = options(server, dir);
  o.file = "missing.gguf";
  auto r = pull(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == frugal::ErrorKind::kNotFound);
  CHECK(r.error().message.find("404") != std::string::npos);
  CHECK(r.error().message.find("Entry not found") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "missing.gguf"));
  CHECK_FALSE(fs::exists(dir.path / "missing.gguf.part"));
  o.repo = "no-slash";
  CHECK(pull(o).error().kind == frugal::ErrorKind::kInvalidRequest);
  o.repo = "org/m";
  o.file = "../escape.gguf";
  CHECK(pull(o).error().kind == frugal::ErrorKind::kInvalidRequest);
}

TEST_CASE("progress: a bar on a TTY, decile lines otherwise") {
  std::ostringstream plain, tty;
  ProgressPrinter p(plain, false, "f.gguf"), t(tty, true, "f.gguf");
  for (int64_t done = 0; done <= 1000; done += 50) {
    p.update({done, 1000, 100.0});
    t.update({done, 1000, 100.0});
  }
  p.finish();
  t.finish();
  const std::string s = plain.str();
  CHECK(std::count(s.begin(), s.end(), '\n') == 11);  // 0%, 10%, ..., 100%
  CHECK(s.find("f.gguf: 50% (500 B / 1000 B") != std::string::npos);
  CHECK(s.find('\r') == std::string::npos);
  CHECK(tty.str().find('\r') != std::string::npos);
  CHECK(tty.str().find("100.0%") != std::string::npos);
}
