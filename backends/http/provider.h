#pragma once
// Encoders from the gateway's request vocabulary to an upstream provider's HTTP request.
#include <string>
#include <string_view>
#include <utility>

#include "backends/http/http_client.h"
#include "config/config.h"
#include "core/chat.h"

namespace frugal::http {

// The client's body re-encoded for an OpenAI-compatible upstream: `model` replaced by
// the upstream model, every other field (known or not) passed through unchanged, and
// for streams `stream_options.include_usage` forced on so usage is never lost (the
// gateway strips the usage chunk again if the client did not ask for it). `logprobs` and
// `top_logprobs` come from req.sampling when set there (the cascade asks for log-probs
// on the client's behalf by setting them on its copy of the request).
std::string openai_chat_body(const ChatRequest& req, std::string_view upstream_model);

HttpRequest openai_chat_request(const config::ProviderConfig& p, const ChatRequest& req,
                                std::string_view upstream_model);
HttpRequest openai_models_request(const config::ProviderConfig& p);
// POST {base}/embeddings with the client's body, `model` replaced (req.embeddings set).
HttpRequest openai_embeddings_request(const config::ProviderConfig& p, const ChatRequest& req,
                                      std::string_view upstream_model);

// An OpenAI-compatible upstream: its responses already are the canonical dialect, so
// the HttpCall is handed out as is.
class OpenAiBackend final : public backends::Backend {
 public:
  OpenAiBackend(HttpClient& client, config::ProviderConfig provider)
      : client_(client), provider_(std::move(provider)) {}
  std::shared_ptr<backends::Call> start(const ChatRequest& req, std::string_view model) override {
    if (req.embeddings) return client_.start(openai_embeddings_request(provider_, req, model));
    return client_.start(openai_chat_request(provider_, req, model));
  }

 private:
  HttpClient& client_;
  config::ProviderConfig provider_;
};

}  // namespace frugal::http
