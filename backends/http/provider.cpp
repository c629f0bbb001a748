#include "backends/http/provider.h"

#include "core/json.h"

namespace frugal::http {
namespace {

void common_headers(const config::ProviderConfig& p, HttpRequest& r) {
  r.headers.emplace_back("Content-Type: application/json");
  if (!p.api_key.empty()) r.headers.push_back("Authorization: Bearer " + p.api_key);
  for (const auto& [k, v] : p.headers) r.headers.push_back(k + ": " + v);
  r.connect_timeout_ms = p.timeouts.connect_ms;
  r.first_byte_timeout_ms = p.timeouts.first_byte_ms;
  r.total_timeout_ms = p.timeouts.total_ms;
  r.http2 = p.http2;
  r.ca_file = p.tls_ca_file;
  r.verify_tls = p.tls_verify;
  r.builtin_http1 = p.builtin_http1;
}

}  // namespace

std::string openai_chat_body(const ChatRequest& req, std::string_view upstream_model) {
  std::string out;
  out.reserve(256);
  JsonWriter w(out);
  w.begin_object();
  w.key("model").value(upstream_model);
  bool wrote_stream_options = false;
  bool wrote_logprobs = false, wrote_top_logprobs = false;
  for (auto field : req.root) {
    const std::string_view k = field.key;
    if (k == "model") continue;
    // The router may ask for log-probs the client did not (cascade scoring).
    if (k == "logprobs" && req.sampling.logprobs) {
      w.key(k).value(true);
      wrote_logprobs = true;
      continue;
    }
    if (k == "top_logprobs" && req.sampling.top_logprobs) {
      w.key(k).value(*req.sampling.top_logprobs);
      wrote_top_logprobs = true;
      continue;
    }
    if (k == "stream_options" && req.stream) {
      // Keep the client's other stream options; force include_usage.
      w.key(k).begin_object().key("include_usage").value(true);
      if (field.value.is_object()) {
        for (auto opt : simdjson::dom::object(field.value)) {
          if (opt.key == "include_usage") continue;
          w.key(opt.key).raw(simdjson::minify(opt.value));
        }
      }
      w.end_object();
      wrote_stream_options = true;
      continue;
    }
    w.key(k).raw(simdjson::minify(field.value));
  }
  if (req.sampling.logprobs && !wrote_logprobs) w.key("logprobs").value(true);
  if (req.sampling.top_logprobs && !wrote_top_logprobs) w.key("top_logprobs").value(*req.sampling.top_logprobs);
  if (req.stream && !wrote_stream_options)
    w.key("stream_options").begin_object().key("include_usage").value(true).end_object();
  w.end_object();
  return out;
}

HttpRequest openai_chat_request(const config::ProviderConfig& p, const ChatRequest& req,
                                std::string_view upstream_model) {
  HttpRequest r;
  r.url = p.base_url + "/chat/completions";
  common_headers(p, r);
  if (req.stream) r.headers.emplace_back("Accept: text/event-stream");
  r.body = openai_chat_body(req, upstream_model);
  return r;
}

HttpRequest openai_models_request(const config::ProviderConfig& p) {
  HttpRequest r;
  r.method = "GET";
  r.url = p.base_url + "/models";
  common_headers(p, r);
  r.first_byte_timeout_ms = std::min<int64_t>(r.first_byte_timeout_ms, 10'000);
  return r;
}

}  // namespace frugal::http
