#include "backends/engine/embeddings_call.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>

#include "backends/engine/openai_output.h"
#include "core/ids.h"
#include "core/json.h"

namespace frugal::engine {
namespace {

namespace asio = boost::asio;
using backends::CallState;

void append_base64(std::string& out, const uint8_t* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
}

class EmbeddingsCall;

// The engine thread's hand-off: the result, posted to the call's io_context.
struct Mailbox {
  std::mutex mu;
  asio::io_context* io = nullptr;  // guarded by mu; null once the call stopped listening
  std::weak_ptr<EmbeddingsCall> call;
};

class EmbeddingsCall final : public backends::Call,
                             public std::enable_shared_from_this<EmbeddingsCall> {
 public:
  EmbeddingsCall(asio::io_context& io, std::string model)
      : io_(io), signal_(io), deadline_(io), model_(std::move(model)), started_us_(mono_us()) {}
  ~EmbeddingsCall() override {
    detach();
    if (cancelled_flag_) cancelled_flag_->store(true);
  }

  void fail_now(const Error& e) { respond(e.http_status(), OpenAiWriter::error_body(e)); }

  void submit(EngineService& service, PreparedEmbeddings prep, int64_t total_ms) {
    prompt_tokens_ = prep.prompt_tokens;
    base64_ = prep.base64;
    cancelled_flag_ = std::make_shared<std::atomic<bool>>(false);
    prep.req.cancelled = cancelled_flag_;
    mailbox_ = std::make_shared<Mailbox>();
    mailbox_->io = &io_;
    mailbox_->call = weak_from_this();
    if (total_ms > 0) {
      deadline_.expires_after(std::chrono::milliseconds(total_ms));
      deadline_.async_wait(
          [weak = weak_from_this(), total_ms](const boost::system::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) self->on_deadline(total_ms);
          });
    }
    service.engine().embed(std::move(prep.req),
                           [box = mailbox_](Result<std::vector<std::vector<float>>> r) {
                             std::lock_guard lock(box->mu);
                             if (box->io == nullptr) return;
                             asio::post(*box->io, [box, r = std::move(r)]() mutable {
                               if (auto c = box->call.lock()) c->on_result(std::move(r));
                             });
                           });
  }

  asio::awaitable<void> wait() override {
    if (!pending_ && state_ != CallState::kDone) {
      signal_.expires_at(asio::steady_timer::time_point::max());
      co_await signal_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    pending_ = false;
  }
  CallState state() const override { return state_; }
  int status() const override { return status_; }
  bool got_headers() const override { return got_headers_; }
  std::string_view header(std::string_view name) const override {
    constexpr std::string_view kContentType = "content-type";
    if (!got_headers_ || name.size() != kContentType.size()) return {};
    for (size_t i = 0; i < name.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(name[i])) != kContentType[i]) return {};
    return "application/json";
  }
  std::string take_body() override { return std::exchange(body_, std::string()); }
  const std::string& body() const override { return body_; }
  bool timed_out() const override { return timed_out_; }
  bool cancelled() const override { return cancelled_; }
  const std::string& error() const override { return error_; }
  void cancel() override {
    if (state_ == CallState::kDone) return;
    if (cancelled_flag_) cancelled_flag_->store(true);
    cancelled_ = true;
    error_ = "cancelled";
    finish();
  }
  int64_t started_us() const override { return started_us_; }
  int64_t headers_us() const override { return headers_us_; }

 private:
  void on_result(Result<std::vector<std::vector<float>>> r) {
    if (state_ == CallState::kDone) return;
    if (!r) {
      respond(r.error().http_status(), OpenAiWriter::error_body(r.error()));
      return;
    }
    respond(200, embeddings_body(*r, model_, prompt_tokens_, base64_));
  }

  void on_deadline(int64_t total_ms) {
    if (state_ == CallState::kDone) return;
    if (cancelled_flag_) cancelled_flag_->store(true);
    timed_out_ = true;
    error_ = "engine: embeddings exceeded the total timeout (" + std::to_string(total_ms) + " ms)";
    finish();
  }

  void respond(int status, std::string body) {
    got_headers_ = true;
    status_ = status;
    headers_us_ = mono_us();
    body_ = std::move(body);
    finish();
  }

  void finish() {
    state_ = CallState::kDone;
    detach();
    deadline_.cancel();
    pending_ = true;
    signal_.cancel();
  }

  void detach() {
    if (!mailbox_) return;
    std::lock_guard lock(mailbox_->mu);
    mailbox_->io = nullptr;
  }

  asio::io_context& io_;
  asio::steady_timer signal_;
  asio::steady_timer deadline_;
  std::string model_;
  std::shared_ptr<Mailbox> mailbox_;
  std::shared_ptr<std::atomic<bool>> cancelled_flag_;
  int64_t prompt_tokens_ = 0;
  bool base64_ = false;
  bool pending_ = false;
  CallState state_ = CallState::kWaitingHeaders;
  int status_ = 0;
  bool got_headers_ = false;
  std::string body_;
  bool timed_out_ = false;
  bool cancelled_ = false;
  std::string error_;
  int64_t started_us_ = 0;
  int64_t headers_us_ = 0;
};

}  // namespace

std::string embeddings_body(const std::vector<std::vector<float>>& vectors, std::string_view model,
                            int64_t prompt_tokens, bool base64) {
  std::string out;
  size_t floats = 0;
  for (const auto& v : vectors) floats += v.size();
  out.reserve(128 + floats * (base64 ? 6 : 14));
  out += R"({"object":"list","data":[)";
  char buf[32];
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i) out += ',';
    out += R"({"object":"embedding","index":)";
    out += std::to_string(i);
    out += R"(,"embedding":)";
    const std::vector<float>& v = vectors[i];
    if (base64) {
      std::string bytes(v.size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), v.data(), bytes.size());  // x86/ARM hosts are little-endian
      out += '"';
      append_base64(out, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      out += '"';
    } else {
      out += '[';
      for (size_t k = 0; k < v.size(); ++k) {
        if (k) out += ',';
        auto [end, ec] =
            std::to_chars(buf, buf + sizeof buf, v[k]);  // shortest text that reads back exactly
        out.append(buf, ec == std::errc() ? end : buf);
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(],"model":)";
  out += json_quote(model);
  out += R"(,"usage":{"prompt_tokens":)";
  out += std::to_string(prompt_tokens);
  out += R"(,"total_tokens":)";
  out += std::to_string(prompt_tokens);
  out += "}}";
  return out;
}

std::shared_ptr<backends::Call> start_engine_embeddings(asio::io_context& io,
                                                        std::shared_ptr<EngineService> service,
                                                        std::string served_name,
                                                        const EmbeddingsInput& in,
                                                        int64_t total_ms) {
  auto call = std::make_shared<EmbeddingsCall>(io, std::move(served_name));
  auto prep = service->prepare_embeddings(in);
  if (!prep) {
    call->fail_now(prep.error());
    return call;
  }
  call->submit(*service, std::move(prep).value(), total_ms);
  return call;
}

}  // namespace frugal::engine
