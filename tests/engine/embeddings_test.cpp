// Embeddings from the in-process engine (Engine::embed, EngineService::prepare_embeddings,
// the embeddings Call) on the real llama-2 fixture: unit length, batching that changes
// nothing, equal inputs giving equal vectors, the OpenAI body (float and base64), and
// the 400s.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <unistd.h>

#include "backends/engine/embeddings_call.h"
#include "backends/engine/engine_backend.h"
#include "backends/engine/format/gguf_writer.h"
#include "core/embeddings.h"

using namespace frugal;
using namespace frugal::engine;
namespace asio = boost::asio;

namespace {

const std::string kFixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";

std::shared_ptr<EngineService> load(size_t kv_bytes, const std::string& path = kFixture) {
  ServiceConfig cfg;
  cfg.model_path = path;
  cfg.threads = 2;
  cfg.kv_memory_bytes = kv_bytes;
  cfg.context_length = 512;
  auto r = EngineService::load(cfg);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

std::shared_ptr<EngineService> service() {
  static std::shared_ptr<EngineService> s = load(4u << 20);
  return s;
}

using Vectors = std::vector<std::vector<float>>;

Result<Vectors> embed(EngineService& s, std::vector<std::vector<int32_t>> inputs) {
  std::promise<Result<Vectors>> done;
  auto f = done.get_future();
  EmbedRequest req;
  req.inputs = std::move(inputs);
  s.engine().embed(std::move(req), [&](Result<Vectors> r) { done.set_value(std::move(r)); });
  REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  return f.get();
}

std::vector<int32_t> tokens(const std::string& text) {
  return service()->tokenizer().encode(text, service()->tokenizer().add_bos_default(), false);
}

double norm(const std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  return std::sqrt(n);
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

TEST_CASE("engine embeddings: unit length, batched equals one by one, equal inputs equal vectors") {
  const std::vector<std::string> texts = {"The quick brown fox", "jumps over the lazy dog", "The quick brown fox",
                                          "a"};
  std::vector<std::vector<int32_t>> ids;
  for (const auto& t : texts) ids.push_back(tokens(t));
  auto batched = embed(*service(), ids);
  REQUIRE(batched.ok());
  REQUIRE(batched->size() == texts.size());
  const size_t n_embd = static_cast<size_t>(service()->engine().model().config().n_embd);
  for (const auto& v : *batched) {
    CHECK(v.size() == n_embd);
    CHECK(norm(v) == doctest::Approx(1.0).epsilon(1e-5));
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    CAPTURE(i);
    auto alone = embed(*service(), {ids[i]});
    REQUIRE(alone.ok());
    CHECK(max_diff((*batched)[i], (*alone)[0]) < 1e-5);
  }
  CHECK(max_diff((*batched)[0], (*batched)[2]) == 0.0);  // identical inputs
  CHECK(max_diff((*batched)[0], (*batched)[1]) > 1e-3);  // different inputs differ
}

// Also shows each group's KV blocks go back: the next group could not reserve otherwise.
TEST_CASE("engine embeddings: inputs that do not fit the KV cache together run in groups, same vectors") {
  // The fixture's KV block (16 positions, 1 layer, kv_dim 8) is 1 KiB: 8 KiB holds 128
  // positions, fewer than the six inputs need together.
  auto small = load(8u << 10);
  std::vector<std::vector<int32_t>> ids;
  std::string text;
  for (int i = 0; i < 10; ++i) text += "word" + std::to_string(i) + " ";
  for (int i = 0; i < 6; ++i) ids.push_back(tokens(text + std::to_string(i)));
  size_t total = 0;
  for (const auto& v : ids) total += v.size();
  REQUIRE(total > 128);
  REQUIRE(ids[0].size() <= 128);
  auto grouped = embed(*small, ids);
  REQUIRE_MESSAGE(grouped.ok(), (grouped.ok() ? "" : grouped.error().message));
  auto reference = embed(*service(), ids);
  REQUIRE(reference.ok());
  for (size_t i = 0; i < ids.size(); ++i) CHECK(max_diff((*grouped)[i], (*reference)[i]) < 1e-5);
  // An input longer than the whole cache is an error, not a hang.
  std::vector<int32_t> huge(4096, ids[0][1]);
  auto too_big = embed(*small, {huge});
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().kind == ErrorKind::kUnavailable);
}

// Greedy tokens of a generation of `prompt`, optionally with embeddings jobs submitted
// while it runs (each checked against `expected`).
std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int jobs = 0, const Vectors* expected = nullptr,
                              const std::vector<std::vector<int32_t>>* inputs = nullptr) {
  GenerateRequest g;
  g.prompt = prompt;
  g.sampling.temperature = 0;
  g.max_tokens = 16;
  g.ignore_eos = true;
  std::promise<void> done;
  std::vector<int32_t> out;
  service()->engine().submit(g, [&](const GenerateEvent& ev) {
    if (ev.is_final) done.set_value();
    else out.push_back(ev.token.token);
  });
  for (int i = 0; i < jobs; ++i) {
    auto r = embed(*service(), *inputs);
    REQUIRE(r.ok());
    for (size_t k = 0; k < r->size(); ++k) CHECK(max_diff((*r)[k], (*expected)[k]) == 0.0);
  }
  REQUIRE(done.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  return out;
}

TEST_CASE("engine embeddings between decode steps leave a running generation unchanged") {
  const std::vector<std::vector<int32_t>> inputs = {tokens("one input"), tokens("and another, longer input")};
  auto expected = embed(*service(), inputs);
  REQUIRE(expected.ok());
  const std::vector<int32_t> prompt = tokens("Once upon a time");
  const std::vector<int32_t> alone = generate(prompt);
  REQUIRE(alone.size() == 16);
  const std::vector<int32_t> with_jobs = generate(prompt, 3, &*expected, &inputs);
  CHECK(with_jobs == alone);
}

// The fixture with `llama.pooling_type` set (1 mean, 2 cls), written to a temp file.
std::string fixture_with_pooling(uint32_t pooling) {
  auto f = GgufFile::open(kFixture);
  REQUIRE(f.ok());
  GgufWriter w(f->alignment());
  for (const GgufKv& kv : f->metadata())
    if (kv.key != "general.alignment") w.set(kv.key, kv.value);
  w.set_u32("llama.pooling_type", pooling);
  for (const TensorInfo& t : f->tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    REQUIRE(w.add_tensor_bytes(t.name, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.type,
                               std::vector<uint8_t>(p, p + t.n_bytes))
                .ok());
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("frugal-pooling-" + std::to_string(pooling) + "-" + std::to_string(getpid()) + ".gguf"))
                               .string();
  REQUIRE(w.write(path).ok());
  return path;
}

TEST_CASE("engine embeddings: pooling follows the GGUF's pooling_type (cls, mean), last without it") {
  CHECK(service()->engine().model().config().pooling == Pooling::kLast);
  const std::vector<int32_t> ids = tokens("pooling decides which states count");
  REQUIRE(ids.size() >= 3);
  auto last = embed(*service(), {ids, {ids[0]}, {ids[0], ids[1]}});
  REQUIRE(last.ok());

  const std::string cls_path = fixture_with_pooling(2);
  {
    auto cls = load(1u << 20, cls_path);
    CHECK(cls->engine().model().config().pooling == Pooling::kCls);
    auto v = embed(*cls, {ids});
    REQUIRE(v.ok());
    // Causal attention: the first position's state is that of the first token alone.
    CHECK(max_diff((*v)[0], (*last)[1]) == 0.0);
    CHECK(max_diff((*v)[0], (*last)[0]) > 1e-3);
  }
  std::filesystem::remove(cls_path);

  const std::string mean_path = fixture_with_pooling(1);
  {
    auto mean = load(1u << 20, mean_path);
    CHECK(mean->engine().model().config().pooling == Pooling::kMean);
    auto v = embed(*mean, {ids, {ids[0]}, {ids[0], ids[1]}});
    REQUIRE(v.ok());
    CHECK(norm((*v)[0]) == doctest::Approx(1.0).epsilon(1e-5));
    CHECK(max_diff((*v)[1], (*last)[1]) < 1e-6);   // one token: its mean is itself
    CHECK(max_diff((*v)[0], (*last)[0]) > 1e-3);   // more: the average, not the last state
    // Two tokens: the mean lies between the two states, so it is closer to each than they are to each other.
    double dot_first = 0, dot_last = 0, dot_pair = 0;
    for (size_t i = 0; i < (*v)[2].size(); ++i) {
      dot_first += static_cast<double>((*v)[2][i]) * (*last)[1][i];
      dot_last += static_cast<double>((*v)[2][i]) * (*last)[2][i];
      dot_pair += static_cast<double>((*last)[1][i]) * (*last)[2][i];
    }
    CHECK(dot_first > dot_pair);
    CHECK(dot_last > dot_pair);
  }
  std::filesystem::remove(mean_path);
}

struct Outcome {
  int status = 0;
  std::string body;
};

asio::awaitable<void> drive(std::shared_ptr<backends::Call> call, Outcome& out) {
  while (call->state() != backends::CallState::kDone) co_await call->wait();
  out.status = call->status();
  out.body = call->take_body();
}

Outcome run(const std::string& body) {
  asio::io_context io;
  EngineBackend backend(service(), io, "local/llama-2-tiny-random");
  simdjson::dom::parser parser;
  auto req = parse_embeddings_body(parser, body);
  REQUIRE_MESSAGE(req.ok(), (req.ok() ? "" : req.error().message));
  Outcome out;
  asio::co_spawn(io, drive(backend.start(*req, service()->model_name()), out), asio::detached);
  io.run();
  return out;
}

std::vector<float> decode_base64_floats(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) break;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST_CASE("engine embeddings call: the OpenAI body, float and base64 alike") {
  const Outcome f = run(R"({"model":"local/llama-2-tiny-random","input":["hello world","hello"]})");
  REQUIRE(f.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element root = p.parse(f.body).value();
  CHECK(std::string_view(root["object"].get_string().value()) == "list");
  CHECK(std::string_view(root["model"].get_string().value()) == "local/llama-2-tiny-random");
  simdjson::dom::array data = root["data"].get_array().value();
  REQUIRE(data.size() == 2);
  std::vector<std::vector<float>> floats;
  for (auto d : data) {
    CHECK(std::string_view(d["object"].get_string().value()) == "embedding");
    std::vector<float> v;
    for (auto x : simdjson::dom::array(d["embedding"].get_array().value())) v.push_back(static_cast<float>(x.get_double().value()));
    CHECK(norm(v) == doctest::Approx(1.0).epsilon(1e-5));
    floats.push_back(std::move(v));
  }
  const int64_t expected_tokens =
      static_cast<int64_t>(tokens("hello world").size() + tokens("hello").size());
  CHECK(root["usage"]["prompt_tokens"].get_int64().value() == expected_tokens);
  CHECK(root["usage"]["total_tokens"].get_int64().value() == expected_tokens);

  const Outcome b = run(R"({"model":"m","input":["hello world","hello"],"encoding_format":"base64"})");
  REQUIRE(b.status == 200);
  simdjson::dom::parser p2;
  simdjson::dom::array bdata = p2.parse(b.body)["data"].get_array().value();
  size_t i = 0;
  for (auto d : bdata) {
    const std::vector<float> v = decode_base64_floats(d["embedding"].get_string().value());
    CHECK(max_diff(v, floats[i++]) == 0.0);  // the float text reads back exactly
  }

  // Token-id input is embedded as given: the same vector as the text it encodes.
  std::string ids_json;
  for (int32_t t : tokens("hello")) ids_json += (ids_json.empty() ? "" : ",") + std::to_string(t);
  const Outcome t = run(R"({"model":"m","input":[)" + ids_json + "]}");
  REQUIRE(t.status == 200);
  simdjson::dom::parser p3;
  std::vector<float> tv;
  for (auto x : simdjson::dom::array(p3.parse(t.body)["data"].at(0)["embedding"].get_array().value()))
    tv.push_back(static_cast<float>(x.get_double().value()));
  CHECK(max_diff(tv, floats[1]) == 0.0);
}

TEST_CASE("engine embeddings call: too long, outside the vocabulary, other dimensions are 400s") {
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "word ";
  const Outcome too_long = run(R"({"model":"m","input":")" + long_text + R"("})");
  CHECK(too_long.status == 400);
  CHECK(too_long.body.find("context_length_exceeded") != std::string::npos);
  const Outcome vocab = run(R"({"model":"m","input":[[1, 99999999]]})");
  CHECK(vocab.status == 400);
  CHECK(vocab.body.find("outside the vocabulary") != std::string::npos);
  const Outcome dims = run(R"({"model":"m","input":"x","dimensions":3})");
  CHECK(dims.status == 400);
  CHECK(dims.body.find("dimensions") != std::string::npos);
}

}  // namespace
