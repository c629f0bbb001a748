#pragma once
// `frugal pull REPO FILE`: downloads one file of a Hugging Face model repository,
// GET {endpoint}/{repo}/resolve/{revision}/{file} (redirects followed), the way
// huggingface_hub resolves it: the endpoint comes from HF_ENDPOINT (default
// https://huggingface.co) and HF_TOKEN, when set, is sent as a bearer token.
//
// Resumable: bytes go to DIR/NAME.part; a later run asks for `Range: bytes=N-` where N
// is the .part's size, and
//   206 → appends (the Content-Range start must be N),
//   200 → the server ignored the range: the .part is rewritten from byte 0,
//   416 → the .part already holds the whole file (its size equals the total in
//          `Content-Range: bytes */TOTAL`); a .part larger than that is discarded.
// A transfer cut mid-body is resumed the same way, up to max_attempts times, as long
// as each attempt makes progress. The final size must equal the total announced by
// Content-Length / Content-Range; only then is the .part renamed to DIR/NAME
// (rename(2): atomic on one filesystem).
//
// Blocking (a CLI command, never the request path). Not thread-safe per destination.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/error.h"

namespace frugal::engine::hub {

struct Progress {
  int64_t done = 0;        // bytes in the .part so far
  int64_t total = -1;      // -1 while unknown
  double bytes_per_s = 0;  // of this run
};

struct PullOptions {
  std::string repo;             // "owner/name"
  std::string file;             // path inside the repository
  std::string dir = ".";        // destination directory (created if missing)
  std::string endpoint;         // empty: $HF_ENDPOINT, else https://huggingface.co
  std::string token;            // empty: $HF_TOKEN (none if unset)
  std::string revision = "main";
  int max_attempts = 5;         // transfers per pull (resumes after a cut)
  int64_t connect_timeout_s = 30;
  int64_t stall_timeout_s = 60; // abort an attempt that moves < 1 KiB/s for this long
  std::function<void(const Progress&)> on_progress;  // called at most ~10 times a second
};

struct PullResult {
  std::string path;              // the final file
  int64_t bytes = 0;             // its size
  int64_t resumed_from = 0;      // .part bytes found at the start (0: fresh)
  bool already_present = false;  // the final file existed; nothing was downloaded
  int attempts = 0;              // HTTP requests made
};

std::string resolve_url(const std::string& endpoint, const std::string& repo, const std::string& revision,
                        const std::string& file);

// Errors: kInvalidRequest (bad repo/file), kNotFound (404), kAuthentication (401/403:
// set HF_TOKEN), kUpstream (other statuses, size mismatch, interrupted after the last
// attempt — the .part is kept for the next run), kUnavailable (local I/O).
Result<PullResult> pull(const PullOptions& options);

// Renders progress on `err`: an updating bar when `tty`, else a line every 10% (or
// every 10 s when the total is unknown).
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& err, bool tty, std::string label)
      : err_(err), tty_(tty), label_(std::move(label)) {}
  void update(const Progress& p);
  void finish();

 private:
  std::ostream& err_;
  bool tty_;
  std::string label_;
  int last_decile_ = -1;
  int64_t last_line_us_ = 0;
  bool drew_ = false;
};

// `frugal pull REPO FILE [--dir DIR]`; returns the process exit code.
int pull_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace frugal::engine::hub
