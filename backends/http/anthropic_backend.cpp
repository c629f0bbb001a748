#include "backends/http/anthropic_backend.h"

#include "backends/dialect/anthropic_breakpoints.h"

#include <strings.h>

#include <algorithm>

#include "backends/dialect/errors.h"
#include "backends/dialect/responses.h"
#include "backends/dialect/streams.h"
#include "backends/replay_call.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "core/sse.h"

namespace frugal::http {

using backends::CallState;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// [begin, end) of the value of the first top-level key `key` written without escapes;
// nullopt if there is none (or the text is not an object).
std::optional<std::pair<size_t, size_t>> find_top_level_value(std::string_view s, std::string_view key) {
  std::optional<std::pair<size_t, size_t>> at;
  json_scan::for_each_member(s, 0, [&](std::string_view k, size_t begin, size_t end) {
    if (k == key) at.emplace(begin, end);
    return !at;
  });
  return at;
}

// Presents a Messages API call either translated to the canonical OpenAI dialect or
// untouched. Translation happens in pump(), which wait() and take_body() run, so the
// bytes a codec takes are always everything the upstream sent so far, translated.
//
// Translated responses come in two shapes, decided by the upstream's headers:
//  - kStream (2xx text/event-stream): SSE events translated one by one as they
//    complete; the Call is streaming as soon as the upstream is.
//  - kBuffered (JSON, or any error status): the body is collected and translated
//    whole, and the Call reports its headers only then, so the router sees the final
//    status (a translated error, or 502 for a body that is not a message).
class AnthropicCall final : public backends::Call {
 public:
  AnthropicCall(std::shared_ptr<backends::Call> inner, std::string model, bool translate, AnswerLimits limits,
                std::string answer_tool)
      : inner_(std::move(inner)),
        model_(std::move(model)),
        translate_(translate),
        limits_(limits),
        answer_tool_(std::move(answer_tool)),
        stream_(AnthropicToOpenAiStream::Options{model_, "", wall_us() / 1'000'000, true, answer_tool_}),
        sse_(limits.max_sse_event_bytes) {}

  boost::asio::awaitable<void> wait() override {
    if (inner_->state() != CallState::kDone) co_await inner_->wait();
    pump();
  }

  CallState state() const override {
    if (!translate_) return inner_->state();
    switch (mode()) {
      case Mode::kUnknown: return inner_->state() == CallState::kDone ? CallState::kDone : CallState::kWaitingHeaders;
      case Mode::kStream:
        return inner_->state() == CallState::kDone && inner_->body().empty() ? CallState::kDone
                                                                              : CallState::kStreaming;
      case Mode::kBuffered: return translated_ ? CallState::kDone : CallState::kWaitingHeaders;
    }
    return CallState::kWaitingHeaders;
  }
  int status() const override {
    if (!translate_ || mode() == Mode::kStream) return inner_->status();
    return mode() == Mode::kBuffered && translated_ ? status_ : 0;
  }
  bool got_headers() const override {
    if (!translate_) return inner_->got_headers();
    return mode() == Mode::kStream || (mode() == Mode::kBuffered && translated_ && !inner_->failed());
  }
  std::string_view header(std::string_view name) const override {
    if (translate_ && iequals(name, "content-type") && mode() != Mode::kUnknown)
      return mode() == Mode::kStream ? "text/event-stream" : "application/json";
    return inner_->header(name);
  }
  std::string take_body() override {
    if (!translate_) return inner_->take_body();
    pump();
    return std::exchange(out_, {});
  }
  const std::string& body() const override { return translate_ ? out_ : inner_->body(); }
  bool timed_out() const override { return inner_->timed_out(); }
  bool cancelled() const override { return error_.empty() && inner_->cancelled(); }
  const std::string& error() const override { return error_.empty() ? inner_->error() : error_; }
  void cancel() override { inner_->cancel(); }
  int64_t started_us() const override { return inner_->started_us(); }
  int64_t headers_us() const override { return inner_->headers_us(); }
  Dialect dialect() const override {
    return translate_ ? Dialect::kOpenAi : Dialect::kAnthropic;
  }
  Usage usage_so_far() const override { return translate_ ? stream_.current_usage() : Usage{}; }

 private:
  enum class Mode { kUnknown, kStream, kBuffered };

  Mode mode() const {
    if (!inner_->got_headers()) return Mode::kUnknown;
    const int st = inner_->status();
    const bool sse = inner_->header("content-type").find("text/event-stream") != std::string_view::npos;
    return st >= 200 && st < 300 && sse ? Mode::kStream : Mode::kBuffered;
  }

  void pump() {
    if (!translate_) return;
    switch (mode()) {
      case Mode::kUnknown: return;
      case Mode::kStream: {
        const std::string bytes = inner_->take_body();
        if (bytes.empty()) return;
        // A failed translator has already written its error event; later events are
        // ignored by it, and a stream that just stops is the codec's to report.
        sse_.feed(bytes, [&](const SseEvent& ev) { (void)stream_.feed(ev, out_); });
        if (sse_.overflowed() && error_.empty()) {
          // The stream ends here; the codec reports it as broken (has no [DONE]).
          error_ = "an upstream SSE event longer than " + std::to_string(limits_.max_sse_event_bytes) +
                   " bytes (max_sse_event)";
          inner_->cancel();
        }
        return;
      }
      case Mode::kBuffered:
        if (translated_) return;
        buffered_ += inner_->take_body();  // keeps the transfer from pausing on a large body
        if (buffered_.size() > limits_.max_answer_bytes && inner_->state() != CallState::kDone) {
          error_ = "the answer is larger than the limit of " + std::to_string(limits_.max_answer_bytes) + " bytes";
          inner_->cancel();
        }
        if (inner_->state() != CallState::kDone) return;
        translated_ = true;
        if (!inner_->failed()) translate_buffered();
        return;
    }
  }

  void translate_buffered() {
    const int st = inner_->status();
    if (st >= 200 && st < 300) {
      auto tr = anthropic_to_openai_response(buffered_, model_, wall_us() / 1'000'000, answer_tool_);
      if (tr) {
        status_ = st;
        out_ = std::move(tr->body);
      } else {
        status_ = 502;
        out_ = render_openai_error(tr.error());
      }
    } else {
      status_ = st;
      out_ = render_openai_error(error_from_anthropic_body(st, buffered_));
    }
    buffered_.clear();
  }

  std::shared_ptr<backends::Call> inner_;
  std::string model_;
  bool translate_;
  AnswerLimits limits_;
  std::string answer_tool_;  // see wrap_anthropic_call
  std::string error_;  // ours, when we ended the inner call
  AnthropicToOpenAiStream stream_;
  SseParser sse_;
  std::string out_;       // translated bytes not yet taken
  std::string buffered_;  // kBuffered: the upstream body so far
  bool translated_ = false;
  int status_ = 0;
};

}  // namespace

std::string anthropic_url(const config::ProviderConfig& p, std::string_view path) {
  std::string url = p.base_url;
  const std::string_view v1 = "/v1";
  if (url.size() < v1.size() || url.compare(url.size() - v1.size(), v1.size(), v1) != 0) url += v1;
  url += path;
  return url;
}

HttpRequest anthropic_request(const config::ProviderConfig& p, std::string_view path, std::string body,
                              const std::vector<std::pair<std::string, std::string>>& client_headers,
                              bool stream) {
  HttpRequest r;
  r.url = anthropic_url(p, path);
  r.headers.emplace_back("Content-Type: application/json");
  r.headers.emplace_back("Accept-Encoding: identity");  // see provider.cpp
  if (stream) r.headers.emplace_back("Accept: text/event-stream");
  if (!p.api_key.empty()) r.headers.push_back("x-api-key: " + p.api_key);
  std::string version, beta;
  for (const auto& [k, v] : p.headers) {
    if (iequals(k, "anthropic-version")) {
      version = v;
    } else if (iequals(k, "anthropic-beta")) {
      beta = v;
    } else {
      r.headers.push_back(k + ": " + v);
    }
  }
  for (const auto& [k, v] : client_headers) {
    if (v.empty()) continue;
    if (k == "anthropic-version") {
      version = v;  // the client's SDK knows which response format it parses
    } else if (k == "anthropic-beta") {
      beta = beta.empty() ? v : beta + "," + v;
    }
  }
  r.headers.push_back("anthropic-version: " + (version.empty() ? std::string(kDefaultAnthropicVersion) : version));
  if (!beta.empty()) r.headers.push_back("anthropic-beta: " + beta);
  r.body = std::move(body);
  r.connect_timeout_ms = p.timeouts.connect_ms;
  r.first_byte_timeout_ms = p.timeouts.first_byte_ms;
  r.total_timeout_ms = p.timeouts.total_ms;
  if (!stream) r.body_idle_timeout_ms = p.timeouts.first_byte_ms;
  r.http2 = p.http2;
  r.builtin_http1 = p.builtin_http1;
  return r;
}

HttpRequest anthropic_models_request(const config::ProviderConfig& p) {
  HttpRequest r = anthropic_request(p, "/models?limit=1000", "", {}, false);
  r.method = "GET";
  std::erase(r.headers, std::string("Content-Type: application/json"));
  r.first_byte_timeout_ms = std::min<int64_t>(r.first_byte_timeout_ms, 10'000);
  r.body_idle_timeout_ms = r.first_byte_timeout_ms;
  return r;
}

Result<std::string> replace_model(std::string_view json, std::string_view model) {
  if (auto at = find_top_level_value(json, "model")) {
    std::string out;
    out.reserve(json.size() + model.size());
    out.append(json.substr(0, at->first));
    out += json_quote(model);
    out.append(json.substr(at->second));
    return out;
  }
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get_object().get(obj))
    return make_error(ErrorKind::kInvalidRequest, "The request body must be a JSON object.");
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("model").value(model);
  for (auto field : obj)
    if (field.key != "model") w.key(field.key).raw(simdjson::minify(field.value));
  w.end_object();
  return out;
}

std::shared_ptr<backends::Call> wrap_anthropic_call(std::shared_ptr<backends::Call> inner, std::string model,
                                                    bool translate, AnswerLimits limits, std::string answer_tool) {
  return std::make_shared<AnthropicCall>(std::move(inner), std::move(model), translate, limits,
                                         std::move(answer_tool));
}

std::shared_ptr<backends::Call> AnthropicBackend::start(const ChatRequest& req, std::string_view model) {
  const bool native = !req.anthropic_body.empty();
  auto body = req.embeddings ? Result<std::string>(make_error(
                                   ErrorKind::kInvalidRequest,
                                   "The model '" + std::string(model) + "' is served by the Anthropic provider '" +
                                       provider_.name + "', which has no embeddings API.",
                                   "model", "embeddings_not_supported"))
              : native       ? replace_model(req.anthropic_body, model)
                             : openai_to_anthropic_request(req, model, defaults_);
  if (!body) {
    // Canonical (OpenAI-shaped) like every error a Call carries; the codec re-renders it.
    const Error& e = body.error();
    return std::make_shared<backends::ReplayCall>(
        e.http_status(), "application/json", render_openai_error(e),
        std::vector<std::pair<std::string, std::string>>{{std::string(backends::kGatewayErrorHeader), "1"}});
  }
  if (req.auto_prompt_cache) {
    // Best effort: a body the helper cannot read is sent as it is.
    (void)add_anthropic_cache_breakpoints(*body);
  }
  HttpRequest hr = anthropic_request(provider_, "/messages", std::move(*body), req.upstream_headers, req.stream);
  hr.headers.push_back(frugal_hop_header(req.frugal_hop));
  if (!req.traceparent.empty()) hr.headers.push_back("traceparent: " + req.traceparent);
  auto inner = client_.start(std::move(hr));
  // The request translated above, so its response_format is valid.
  std::string answer_tool;
  if (!native)
    if (auto t = response_format_tool(req)) answer_tool = std::move(*t);
  return wrap_anthropic_call(std::move(inner), std::string(model), !native,
                             AnswerLimits{static_cast<size_t>(provider_.max_answer_bytes),
                                          static_cast<size_t>(provider_.max_sse_event_bytes)},
                             std::move(answer_tool));
}

}  // namespace frugal::http
