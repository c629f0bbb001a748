#pragma once
// An embeddings request served by the in-process engine, as a backends::Call with the
// bytes of OpenAI's Embeddings API: status 200 and
//   {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}],
//    "model":..,"usage":{"prompt_tokens":N,"total_tokens":N}}
// once the engine has computed every input (one job, batched; see Engine::embed), with
// each vector a float array or, for encoding_format base64, the base64 of its
// little-endian float32 bytes (what the OpenAI SDKs decode). A request the engine cannot
// serve completes at once with its 400 (EngineService::prepare_embeddings).
//
// Threading: as EngineBackend's calls — the Call belongs to `io`'s thread; the engine
// thread posts the result there. `total_ms` (0: none) bounds the job: on expiry the
// job is stopped between its forward batches and the call ends timed out, without
// headers (the gateway answers 504).
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/engine/service.h"
#include "core/embeddings.h"

namespace frugal::engine {

std::shared_ptr<backends::Call> start_engine_embeddings(boost::asio::io_context& io,
                                                        std::shared_ptr<EngineService> service,
                                                        std::string served_name,
                                                        const EmbeddingsInput& in,
                                                        int64_t total_ms);

// The response body for `vectors` (exposed for tests).
std::string embeddings_body(const std::vector<std::vector<float>>& vectors, std::string_view model,
                            int64_t prompt_tokens, bool base64);

}  // namespace frugal::engine
