#include "backends/http/provider.h"

#include "core/json.h"
#include "core/json_scan.h"

namespace frugal::http {
namespace {

void common_headers(const config::ProviderConfig& p, HttpRequest& r) {
  r.headers.emplace_back("Content-Type: application/json");
  // An encoded body could be neither relayed nor cached as it is (see check_answer).
  r.headers.emplace_back("Accept-Encoding: identity");
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

// The client's own bytes with `model` replaced (and, for a stream, stream_options added),
// when that says the same as re-encoding: no log-probs asked for on the client's behalf,
// no stream_options to merge into, and keys the scan can compare (no escapes, one
// `model`). Cheaper than re-encoding every field, and unknown fields stay byte-exact.
std::optional<std::string> rewrite_client_body(const ChatRequest& req, std::string_view upstream_model) {
  const std::string_view body = req.openai_body;
  if (body.empty() || req.sampling.logprobs || req.sampling.top_logprobs) return std::nullopt;
  size_t model_begin = 0, model_end = 0;
  int models = 0;
  bool mergeable = true;
  const size_t close = json_scan::for_each_member(body, 0, [&](std::string_view key, size_t begin, size_t end) {
    if (key.find('\\') != std::string_view::npos || (req.stream && key == "stream_options")) {
      mergeable = false;
    } else if (key == "model") {
      ++models;
      model_begin = begin;
      model_end = end;
    }
    return mergeable;
  });
  if (close == json_scan::npos || models != 1) return std::nullopt;
  constexpr std::string_view kUsage = R"(,"stream_options":{"include_usage":true})";
  std::string out;
  out.reserve(body.size() + upstream_model.size() + kUsage.size());
  out.append(body.substr(0, model_begin));
  out += '"';
  json_escape_to(out, upstream_model);
  out += '"';
  out.append(body.substr(model_end, close - model_end));
  if (req.stream) out.append(kUsage);
  out.append(body.substr(close));
  return out;
}

}  // namespace

std::string openai_chat_body(const ChatRequest& req, std::string_view upstream_model) {
  if (auto fast = rewrite_client_body(req, upstream_model)) return std::move(*fast);
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
  r.headers.push_back(frugal_hop_header(req.frugal_hop));
  if (!req.traceparent.empty()) r.headers.push_back("traceparent: " + req.traceparent);
  if (req.stream) r.headers.emplace_back("Accept: text/event-stream");
  else r.body_idle_timeout_ms = p.timeouts.first_byte_ms;
  r.body = openai_chat_body(req, upstream_model);
  return r;
}

HttpRequest openai_embeddings_request(const config::ProviderConfig& p, const ChatRequest& req,
                                      std::string_view upstream_model) {
  HttpRequest r;
  r.url = p.base_url + "/embeddings";
  common_headers(p, r);
  r.headers.push_back(frugal_hop_header(req.frugal_hop));
  if (!req.traceparent.empty()) r.headers.push_back("traceparent: " + req.traceparent);
  r.body_idle_timeout_ms = p.timeouts.first_byte_ms;
  r.body = openai_chat_body(req, upstream_model);  // an embeddings request never streams: only `model` changes
  return r;
}

HttpRequest openai_models_request(const config::ProviderConfig& p) {
  HttpRequest r;
  r.method = "GET";
  r.url = p.base_url + "/models";
  common_headers(p, r);
  r.first_byte_timeout_ms = std::min<int64_t>(r.first_byte_timeout_ms, 10'000);
  r.body_idle_timeout_ms = r.first_byte_timeout_ms;
  return r;
}

}  // namespace frugal::http
