#include "backends/engine/hub/pull.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string_view>
#include <system_error>

namespace frugal::engine::hub {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
constexpr size_t kErrorBodyLimit = 2048;
constexpr int64_t kProgressIntervalUs = 100'000;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::move(fallback);
}

bool iequals_prefix(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != prefix[i]) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

int64_t parse_i64(std::string_view s) {
  if (s.empty()) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || v > (INT64_MAX - 9) / 10) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// One HTTP attempt's state, filled by curl's callbacks.
struct Attempt {
  std::string part_path;
  int64_t offset = 0;        // bytes the .part had when the request was sent
  int status = 0;            // of the last response (redirects reset it)
  int64_t content_length = -1;
  int64_t range_start = -1;  // Content-Range: bytes START-END/TOTAL
  int64_t range_total = -1;  //            or: bytes */TOTAL (416)
  std::FILE* out = nullptr;
  bool opened = false;       // decided where the body goes
  std::string failure;       // set by a callback that aborted the transfer
  std::string error_body;    // body of a non-2xx response (truncated)
  int64_t size = 0;          // bytes in the .part now
  const PullOptions* opts = nullptr;
  int64_t started_us = 0;
  int64_t last_progress_us = 0;

  int64_t expected_total() const {
    if (status == 206) return range_total;
    if (status == 200) return content_length;
    return -1;
  }

  // Opens the .part for this response: append on 206 (after checking the range starts
  // where the .part ends), truncate on 200.
  bool open_part() {
    opened = true;
    if (status == 206) {
      if (range_start != offset) {
        failure = "the server answered range " + std::to_string(range_start) + "- to a request for " +
                  std::to_string(offset) + "-";
        return false;
      }
      out = std::fopen(part_path.c_str(), "ab");
      size = offset;
    } else {
      out = std::fopen(part_path.c_str(), "wb");  // 200: the server ignored the range
      size = 0;
    }
    if (out == nullptr) {
      failure = "cannot write " + part_path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }

  void report(bool force) {
    if (!opts->on_progress) return;
    const int64_t t = now_us();
    if (!force && t - last_progress_us < kProgressIntervalUs) return;
    last_progress_us = t;
    Progress p;
    p.done = size;
    p.total = expected_total();
    const double secs = static_cast<double>(t - started_us) / 1e6;
    p.bytes_per_s = secs > 0 ? static_cast<double>(size - (status == 206 ? offset : 0)) / secs : 0;
    opts->on_progress(p);
  }
};

size_t on_header(char* data, size_t size, size_t n, void* self) {
  auto* a = static_cast<Attempt*>(self);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (the first, or after a redirect / 100-continue).
    a->content_length = a->range_start = a->range_total = -1;
    const size_t sp = line.find(' ');
    a->status = sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
  } else if (iequals_prefix(line, "content-length:")) {
    a->content_length = parse_i64(trim(line.substr(15)));
  } else if (iequals_prefix(line, "content-range:")) {
    std::string_view v = trim(line.substr(14));
    if (iequals_prefix(v, "bytes ")) v.remove_prefix(6);
    const size_t slash = v.find('/');
    if (slash != std::string_view::npos) {
      a->range_total = parse_i64(v.substr(slash + 1));
      const std::string_view span = v.substr(0, slash);
      const size_t dash = span.find('-');
      if (dash != std::string_view::npos) a->range_start = parse_i64(span.substr(0, dash));
    }
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* self) {
  auto* a = static_cast<Attempt*>(self);
  const size_t len = size * n;
  if (a->status != 200 && a->status != 206) {
    if (a->error_body.size() < kErrorBodyLimit)
      a->error_body.append(data, std::min(len, kErrorBodyLimit - a->error_body.size()));
    return len;
  }
  if (!a->opened && !a->open_part()) return 0;  // aborts the transfer
  if (std::fwrite(data, 1, len, a->out) != len) {
    a->failure = "cannot write " + a->part_path + ": " + std::strerror(errno);
    return 0;
  }
  a->size += static_cast<int64_t>(len);
  a->report(false);
  return len;
}

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b >= (1ll << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ll << 30));
  else if (b >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  return buf;
}

Error status_error(int status, const std::string& url, const std::string& body) {
  std::string snippet = body.substr(0, 300);
  for (char& c : snippet)
    if (c == '\n' || c == '\r') c = ' ';
  std::string msg = "GET " + url + " returned HTTP " + std::to_string(status);
  if (!snippet.empty()) msg += ": " + snippet;
  if (status == 401 || status == 403)
    return make_error(ErrorKind::kAuthentication, msg + " (gated or private repository? set HF_TOKEN)");
  if (status == 404) return make_error(ErrorKind::kNotFound, msg + " (check the repository and file name)");
  return make_error(ErrorKind::kUpstream, msg);
}

// Percent-encodes each '/'-separated segment.
std::string escape_path(CURL* curl, const std::string& path) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string seg = path.substr(start, end - start);
    char* e = curl_easy_escape(curl, seg.c_str(), static_cast<int>(seg.size()));
    out += e ? e : seg.c_str();
    curl_free(e);
    if (end == path.size()) break;
    out += '/';
    start = end + 1;
  }
  return out;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

}  // namespace

std::string resolve_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                        const std::string& file) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  return base + "/" + escape_path(curl.get(), repo) + "/resolve/" + escape_path(curl.get(), revision) + "/" +
         escape_path(curl.get(), file);
}

Result<PullResult> pull(const PullOptions& o) {
  const size_t slash = o.repo.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == o.repo.size() ||
      o.repo.find('/', slash + 1) != std::string::npos)
    return make_error(ErrorKind::kInvalidRequest, "repository must look like OWNER/NAME, got '" + o.repo + "'");
  const fs::path rel(o.file);
  const std::string name = rel.filename().string();
  if (o.file.empty() || name.empty() || name == "." || name == "..")
    return make_error(ErrorKind::kInvalidRequest, "file must name a file in the repository, got '" + o.file + "'");
  for (const auto& part : rel)
    if (part == "..") return make_error(ErrorKind::kInvalidRequest, "file must not contain '..'");

  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return make_error(ErrorKind::kUnavailable, "cannot create " + o.dir + ": " + ec.message());
  PullResult result;
  result.path = (fs::path(o.dir) / name).string();
  const std::string part_path = result.path + ".part";
  if (fs::exists(result.path, ec)) {
    result.already_present = true;
    result.bytes = static_cast<int64_t>(fs::file_size(result.path, ec));
    return result;
  }
  const std::string url =
      resolve_url(o.endpoint.empty() ? env_or("HF_ENDPOINT", kDefaultEndpoint) : o.endpoint, o.repo, o.revision, o.file);
  const std::string token = o.token.empty() ? env_or("HF_TOKEN", "") : o.token;

  int64_t have = fs::exists(part_path, ec) ? static_cast<int64_t>(fs::file_size(part_path, ec)) : 0;
  result.resumed_from = have;
  std::string last_failure;
  bool complete = false;
  for (int attempt = 1; attempt <= std::max(1, o.max_attempts); ++attempt) {
    result.attempts = attempt;
    Attempt a;
    a.part_path = part_path;
    a.offset = have;
    a.opts = &o;
    a.started_us = a.last_progress_us = now_us();

    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
    CURL* c = curl.get();
    curl_slist* headers = nullptr;
    if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_guard(headers, curl_slist_free_all);
    const std::string range = std::to_string(have) + "-";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);  // not re-sent to other hosts on redirect
    curl_easy_setopt(c, CURLOPT_USERAGENT, "frugal-pull/0.1");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout_s));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout_s));
    if (have > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    const CURLcode rc = curl_easy_perform(c);
    if ((a.status == 200 || a.status == 206) && !a.opened && a.failure.empty()) a.open_part();  // empty body
    if (a.out != nullptr && std::fclose(a.out) != 0 && a.failure.empty())
      a.failure = "cannot write " + part_path + ": " + std::strerror(errno);
    if (!a.failure.empty()) return make_error(ErrorKind::kUpstream, a.failure);

    if (a.status == 416) {
      // Nothing left to send: the .part is complete if its size is the total.
      if (a.range_total >= 0 && have == a.range_total) {
        result.bytes = have;
        complete = true;
        break;
      }
      if (a.range_total >= 0 && have > a.range_total) {
        fs::remove(part_path, ec);  // larger than the file: not a prefix of it
        have = 0;
        last_failure = ".part was larger than the file (" + std::to_string(a.range_total) + " bytes)";
        continue;
      }
      return status_error(a.status, url, a.error_body);
    }
    if (a.status != 200 && a.status != 206) {
      if (rc != CURLE_OK && a.status == 0)
        return make_error(ErrorKind::kUpstream, "GET " + url + ": " + curl_easy_strerror(rc));
      return status_error(a.status, url, a.error_body);
    }
    const int64_t total = a.expected_total();
    const bool progressed = a.size > (a.status == 206 ? have : 0);
    have = a.size;
    a.report(true);
    if (rc == CURLE_OK && (total < 0 || a.size == total)) {
      result.bytes = a.size;
      complete = true;
      break;
    }
    if (total >= 0 && a.size > total) {
      fs::remove(part_path, ec);
      return make_error(ErrorKind::kUpstream, "received " + std::to_string(a.size) + " bytes, more than the " +
                                                  std::to_string(total) + " announced; the partial file was removed");
    }
    last_failure = rc != CURLE_OK ? std::string(curl_easy_strerror(rc))
                                  : "the body ended at " + std::to_string(a.size) + " of " + std::to_string(total) +
                                        " bytes";
    if (!progressed) break;  // an attempt that moved nothing: stop retrying
  }
  if (!complete) {
    return make_error(ErrorKind::kUpstream, "download of " + url + " interrupted (" + last_failure + ") at " +
                                                std::to_string(have) + " bytes; run the command again to resume");
  }
  if (std::rename(part_path.c_str(), result.path.c_str()) != 0)
    return make_error(ErrorKind::kUnavailable, "cannot rename " + part_path + " to " + result.path + ": " +
                                                   std::strerror(errno));
  return result;
}

void ProgressPrinter::update(const Progress& p) {
  const std::string speed = human_bytes(static_cast<int64_t>(p.bytes_per_s)) + "/s";
  if (tty_) {
    constexpr int kWidth = 30;
    std::string line = "\r" + label_ + " ";
    if (p.total > 0) {
      const double f = std::min(1.0, static_cast<double>(p.done) / static_cast<double>(p.total));
      const int fill = static_cast<int>(f * kWidth);
      line += "[" + std::string(fill, '#') + std::string(kWidth - fill, '.') + "] ";
      char pct[16];
      std::snprintf(pct, sizeof pct, "%5.1f%% ", f * 100);
      line += pct + human_bytes(p.done) + " / " + human_bytes(p.total);
    } else {
      line += human_bytes(p.done);
    }
    line += "  " + speed + "\x1b[K";
    err_ << line << std::flush;
    drew_ = true;
    return;
  }
  const int64_t t = now_us();
  if (p.total > 0) {
    const int decile = static_cast<int>(10 * p.done / p.total);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    err_ << label_ << ": " << decile * 10 << "% (" << human_bytes(p.done) << " / " << human_bytes(p.total) << ", "
         << speed << ")\n";
  } else if (t - last_line_us_ >= 10'000'000) {
    last_line_us_ = t;
    err_ << label_ << ": " << human_bytes(p.done) << " (" << speed << ")\n";
  }
}

void ProgressPrinter::finish() {
  if (tty_ && drew_) err_ << "\n";
  err_ << std::flush;
}

int pull_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  PullOptions o;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--dir" || args[i] == "--revision") && i + 1 < args.size()) {
      (args[i] == "--dir" ? o.dir : o.revision) = args[i + 1];
      ++i;
    } else if (args[i].rfind("--", 0) == 0) {
      err << "frugal pull: unknown or incomplete option '" << args[i] << "'\n";
      return 2;
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() != 2) {
    err << "usage: frugal pull REPO FILE [--dir DIR] [--revision REV]\n";
    return 2;
  }
  o.repo = positional[0];
  o.file = positional[1];
  ProgressPrinter printer(err, ::isatty(STDERR_FILENO) == 1, fs::path(o.file).filename().string());
  o.on_progress = [&](const Progress& p) { printer.update(p); };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto r = pull(o);
  printer.finish();
  if (!r) {
    err << "frugal pull: " << r.error().message << "\n";
    return 1;
  }
  if (r->already_present) err << r->path << " already present (" << human_bytes(r->bytes) << ")\n";
  else if (r->resumed_from > 0)
    err << "resumed at " << human_bytes(r->resumed_from) << "; " << human_bytes(r->bytes) << " in total\n";
  out << r->path << "\n";
  return 0;
}

}  // namespace frugal::engine::hub
