// The engine as a backends::Backend: Calls driven on an io_context against the real
// llama-2 fixture (real GGUF, real 32k SentencePiece vocabulary, chat template), parsed
// as an OpenAI client would parse them.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "backends/engine/engine_backend.h"
#include "backends/engine/openai_output.h"
#include "config/config.h"
#include "core/json.h"
#include "core/sse.h"

using namespace frugal;
using namespace frugal::engine;
namespace asio = boost::asio;

namespace {

const std::string kFixture = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";

std::shared_ptr<EngineService> service() {
  static std::shared_ptr<EngineService> s = [] {
    ServiceConfig cfg;
    cfg.model_path = kFixture;
    cfg.threads = 2;
    cfg.kv_memory_bytes = 4u << 20;
    cfg.context_length = 512;
    auto r = EngineService::load(cfg);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return std::move(r).value();
  }();
  return s;
}

struct Outcome {
  int status = 0;
  std::string content_type;
  std::string body;
  bool failed = false;
  bool cancelled = false;
  bool timed_out = false;
  std::string error;
  int wakeups = 0;
};

asio::awaitable<void> drive(std::shared_ptr<backends::Call> call, Outcome& out,
                            std::function<void(backends::Call&, const std::string&)> on_bytes) {
  for (;;) {
    std::string bytes = call->take_body();
    if (!bytes.empty()) {
      out.body += bytes;
      if (on_bytes) on_bytes(*call, out.body);
    }
    if (call->state() == backends::CallState::kDone && call->body().empty()) break;
    if (call->state() != backends::CallState::kDone) {
      co_await call->wait();
      ++out.wakeups;
    }
  }
  out.status = call->status();
  out.content_type = std::string(call->header("Content-Type"));
  out.failed = call->failed();
  out.cancelled = call->cancelled();
  out.timed_out = call->timed_out();
  out.error = call->error();
}

// Starts `body` (a /v1/chat/completions JSON body) on a fresh io_context and runs it to
// the end. on_bytes sees the body accumulated so far after each arrival.
Outcome run(const std::string& body, std::string_view model = {},
            std::function<void(backends::Call&, const std::string&)> on_bytes = nullptr) {
  asio::io_context io;
  EngineBackend backend(service(), io);
  simdjson::dom::parser parser;
  auto req = parse_chat_body(parser, body);
  REQUIRE_MESSAGE(req.ok(), (req.ok() ? "" : req.error().message));
  Outcome out;
  auto call = backend.start(*req, model.empty() ? std::string_view(service()->model_name()) : model);
  asio::co_spawn(io, drive(call, out, std::move(on_bytes)), asio::detached);
  io.run();
  return out;
}

std::string chat(const std::string& extra, const std::string& user = "Say hello") {
  return R"({"model":"local/llama-2-tiny-random","messages":[{"role":"user","content":")" + user + "\"}]" +
         (extra.empty() ? "" : "," + extra) + "}";
}

struct Streamed {
  std::vector<std::string> data;  // each event's data, in order
  std::string text;               // concatenated delta.content
};

Streamed parse_sse(const std::string& body) {
  Streamed s;
  SseParser p;
  p.feed(body, [&](const SseEvent& ev) { s.data.emplace_back(ev.data); });
  CHECK_FALSE(p.has_partial());
  simdjson::dom::parser jp;
  for (const auto& d : s.data) {
    if (d == "[DONE]") continue;
    simdjson::dom::element e;
    REQUIRE(jp.parse(d).get(e) == simdjson::SUCCESS);
    simdjson::dom::array choices;
    REQUIRE(e["choices"].get_array().get(choices) == simdjson::SUCCESS);
    for (auto c : choices) {
      std::string_view t;
      if (!c["delta"]["content"].get_string().get(t)) s.text += t;
    }
  }
  return s;
}

std::string content_of(simdjson::dom::element body) {
  std::string_view s;
  REQUIRE(body["choices"].at(0)["message"]["content"].get_string().get(s) == simdjson::SUCCESS);
  return std::string(s);
}

int64_t int_at(simdjson::dom::element e, std::string_view pointer) {
  int64_t v = -1;
  REQUIRE_MESSAGE(e.at_pointer(pointer).get_int64().get(v) == simdjson::SUCCESS, pointer);
  return v;
}

std::string str_at(simdjson::dom::element e, std::string_view pointer) {
  std::string_view v;
  REQUIRE_MESSAGE(e.at_pointer(pointer).get_string().get(v) == simdjson::SUCCESS, pointer);
  return std::string(v);
}

// Waits (bounded, 5 s) until the engine's published stats satisfy `pred`.
bool engine_reaches(const std::function<bool(const EngineStats&)>& pred) {
  for (int i = 0; i < 5000; ++i) {
    if (pred(service()->stats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

bool idle(const EngineStats& s) { return s.running == 0 && s.waiting == 0 && s.kv.used_blocks == 0; }

// After `n` more requests than `before` were cancelled: nothing running, no block held.
bool cancelled_and_freed(uint64_t before, uint64_t n = 1) {
  return engine_reaches([&](const EngineStats& s) { return s.requests_cancelled == before + n && idle(s); });
}

}  // namespace

TEST_CASE("served model name is the GGUF file stem") {
  CHECK(EngineService::model_name_for("/m/llama-2-tiny-random.gguf") == "llama-2-tiny-random");
  CHECK(EngineService::model_name_for("qwen.Q4_0.gguf") == "qwen.Q4_0");
  CHECK(EngineService::model_name_for("dir/noext") == "noext");
  CHECK(service()->model_name() == "llama-2-tiny-random");
}

TEST_CASE("sanitize_utf8 keeps valid text and replaces broken sequences") {
  CHECK(sanitize_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80") == "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(sanitize_utf8("a\xE2\x82") == "a\xEF\xBF\xBD");  // truncated: one replacement
  CHECK(sanitize_utf8("\xE2\x82z\xE2") == "\xEF\xBF\xBDz\xEF\xBF\xBD");
  CHECK(sanitize_utf8("\xF4\x90\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // > U+10FFFF
  CHECK(sanitize_utf8("\x80z") == "\xEF\xBF\xBDz");
  CHECK(sanitize_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  CHECK(sanitize_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST_CASE("byte tokens of one character stream as one whole character") {
  // The real vocabulary spells U+20AC as three byte tokens; the adapter yields their raw
  // bytes and the scheduler's stop matcher releases the character only when complete.
  const Tokenizer& tok = service()->tokenizer();
  std::vector<TokenId> ids;
  for (const char* b : {"<0xE2>", "<0x82>", "<0xAC>"}) {
    auto id = tok.find_token(b);
    REQUIRE(id.has_value());
    ids.push_back(*id);
  }
  StopMatcher m({});
  CHECK(m.feed(service()->text().piece(ids[0])).empty());
  CHECK(m.feed(service()->text().piece(ids[1])).empty());
  CHECK(m.feed(service()->text().piece(ids[2])) == "\xE2\x82\xAC");
  CHECK(service()->text().is_end_of_generation(tok.eos()));
}

TEST_CASE("non-streaming completion: OpenAI body, usage, finish reason") {
  const Outcome o = run(chat(R"("temperature":0,"max_tokens":6)"));
  REQUIRE(o.status == 200);
  CHECK(o.content_type == "application/json");
  CHECK_FALSE(o.failed);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
  CHECK(str_at(b, "/object") == "chat.completion");
  CHECK(str_at(b, "/id").rfind("chatcmpl-", 0) == 0);
  CHECK(str_at(b, "/model") == "llama-2-tiny-random");
  CHECK(str_at(b, "/choices/0/message/role") == "assistant");
  // The prompt is the llama-2 chat template rendering, tokenised.
  const ChatMessage m{"user", "Say hello"};
  auto prompt = service()->chat_template().apply(std::span(&m, 1), true);
  REQUIRE(prompt.ok());
  const auto ids = service()->tokenizer().encode(*prompt, false, true);
  CHECK(int_at(b, "/usage/prompt_tokens") == static_cast<int64_t>(ids.size()));
  const int64_t completion = int_at(b, "/usage/completion_tokens");
  CHECK(completion >= 1);
  CHECK(completion <= 6);
  CHECK(int_at(b, "/usage/total_tokens") == static_cast<int64_t>(ids.size()) + completion);
  CHECK(str_at(b, "/choices/0/finish_reason") == (completion == 6 ? "length" : "stop"));
  CHECK(int_at(b, "/usage/prompt_tokens_details/cached_tokens") >= 0);
  double mean = 1;
  CHECK(b.at_pointer("/x_frugal/confidence/mean_logprob").get_double().get(mean) == simdjson::SUCCESS);
  CHECK(mean <= 0);
  CHECK(b.at_pointer("/choices/0/logprobs").is_null());
}

TEST_CASE("greedy streaming gives the same text as non-streaming, then usage and [DONE]") {
  const std::string body = chat(R"("temperature":0,"max_tokens":12)", "Tell me a story");
  const Outcome plain = run(body);
  REQUIRE(plain.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(plain.body).get(b) == simdjson::SUCCESS);
  const std::string want = content_of(b);
  const int64_t completion = int_at(b, "/usage/completion_tokens");

  const Outcome st = run(chat(R"("temperature":0,"max_tokens":12,"stream":true)", "Tell me a story"));
  REQUIRE(st.status == 200);
  CHECK(st.content_type == "text/event-stream");
  CHECK_FALSE(st.failed);
  const Streamed s = parse_sse(st.body);
  CHECK(s.text == want);
  REQUIRE(s.data.size() >= 4);
  CHECK(s.data.back() == "[DONE]");
  simdjson::dom::parser jp;
  simdjson::dom::element first, usage, finish;
  REQUIRE(jp.parse(s.data.front()).get(first) == simdjson::SUCCESS);
  CHECK(str_at(first, "/object") == "chat.completion.chunk");
  CHECK(str_at(first, "/choices/0/delta/role") == "assistant");
  simdjson::dom::parser jp2, jp3;
  REQUIRE(jp2.parse(s.data[s.data.size() - 2]).get(usage) == simdjson::SUCCESS);
  simdjson::dom::array choices;
  REQUIRE(usage["choices"].get_array().get(choices) == simdjson::SUCCESS);
  CHECK(choices.size() == 0);
  CHECK(int_at(usage, "/usage/completion_tokens") == completion);
  REQUIRE(jp3.parse(s.data[s.data.size() - 3]).get(finish) == simdjson::SUCCESS);
  CHECK(str_at(finish, "/choices/0/finish_reason") == (completion == 12 ? "length" : "stop"));
}

TEST_CASE("same seed and temperature give the same text, another seed differs") {
  auto text = [](int seed) {
    const Outcome o = run(chat(R"("temperature":1,"max_tokens":16,"seed":)" + std::to_string(seed)));
    REQUIRE(o.status == 200);
    simdjson::dom::parser p;
    simdjson::dom::element b;
    REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
    return content_of(b);
  };
  const std::string a = text(42);
  CHECK(a == text(42));
  CHECK(a != text(43));  // 16 draws over a 32k vocabulary with near-flat logits
}

TEST_CASE("logprobs and top_logprobs in OpenAI shape") {
  const Outcome o = run(chat(R"("temperature":0,"max_tokens":5,"logprobs":true,"top_logprobs":3)"));
  REQUIRE(o.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
  simdjson::dom::array content;
  REQUIRE(b.at_pointer("/choices/0/logprobs/content").get_array().get(content) == simdjson::SUCCESS);
  const int64_t completion = int_at(b, "/usage/completion_tokens");
  // The end-of-generation token (if any) has no text and no entry.
  CHECK(static_cast<int64_t>(content.size()) >= completion - 1);
  CHECK(static_cast<int64_t>(content.size()) <= completion);
  std::string bytes_concat;
  for (auto e : content) {
    double lp = 1;
    REQUIRE(e["logprob"].get_double().get(lp) == simdjson::SUCCESS);
    CHECK(lp <= 0);
    simdjson::dom::array bytes, top;
    REQUIRE(e["bytes"].get_array().get(bytes) == simdjson::SUCCESS);
    for (auto x : bytes) bytes_concat += static_cast<char>(static_cast<int64_t>(x));
    REQUIRE(e["top_logprobs"].get_array().get(top) == simdjson::SUCCESS);
    REQUIRE(top.size() == 3);
    double prev = 0, best = -1e9;
    bool first = true;
    for (auto t : top) {
      double tl = 0;
      REQUIRE(t["logprob"].get_double().get(tl) == simdjson::SUCCESS);
      if (!first) CHECK(tl <= prev);
      if (first) best = tl;
      prev = tl;
      first = false;
      std::string_view ts;
      CHECK(t["token"].get_string().get(ts) == simdjson::SUCCESS);
    }
    // Greedy: the chosen token is the most likely one.
    CHECK(lp == doctest::Approx(best));
    std::string_view chosen, top0;
    REQUIRE(e["token"].get_string().get(chosen) == simdjson::SUCCESS);
    REQUIRE(top.at(0)["token"].get_string().get(top0) == simdjson::SUCCESS);
    CHECK(chosen == top0);
  }
  CHECK(sanitize_utf8(bytes_concat) == content_of(b));

  // Streaming carries the same records, spread over the chunks.
  const Outcome st = run(chat(R"("temperature":0,"max_tokens":5,"logprobs":true,"top_logprobs":3,"stream":true)"));
  const Streamed s = parse_sse(st.body);
  size_t streamed_records = 0;
  simdjson::dom::parser jp;
  for (const auto& d : s.data) {
    if (d == "[DONE]") continue;
    simdjson::dom::element e;
    simdjson::dom::array recs;
    REQUIRE(jp.parse(d).get(e) == simdjson::SUCCESS);
    if (!e.at_pointer("/choices/0/logprobs/content").get_array().get(recs)) streamed_records += recs.size();
  }
  CHECK(streamed_records == content.size());
}

TEST_CASE("stop sequences cut the text before the stop string") {
  const Outcome full = run(chat(R"("temperature":0,"max_tokens":24)", "Count"));
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(full.body).get(b) == simdjson::SUCCESS);
  const std::string text = content_of(b);
  REQUIRE(text.size() >= 8);
  // Stop at a short ASCII-safe substring from the middle of the greedy answer.
  size_t at = text.size() / 2;
  while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  REQUIRE(at + 2 <= text.size());
  std::string stop = text.substr(at, 2);
  if ((static_cast<unsigned char>(stop[1]) & 0x80) != 0) stop = stop.substr(0, 1);
  const size_t first = text.find(stop);
  std::string quoted;
  json_escape_to(quoted, stop);
  const Outcome cut = run(chat(R"("temperature":0,"max_tokens":24,"stop":[")" + quoted + "\"]", "Count"));
  simdjson::dom::parser p2;
  simdjson::dom::element c;
  REQUIRE(p2.parse(cut.body).get(c) == simdjson::SUCCESS);
  CHECK(content_of(c) == text.substr(0, first));
  CHECK(str_at(c, "/choices/0/finish_reason") == "stop");
}

TEST_CASE("a repeated system prompt is served from the prefix cache (cached_tokens)") {
  std::string sys;
  for (int i = 0; i < 10; ++i) sys += "The quick brown fox jumps over the lazy dog. ";
  auto body = [&](const char* q) {
    return R"({"model":"m","temperature":0,"max_tokens":2,"messages":[{"role":"system","content":")" + sys +
           R"("},{"role":"user","content":")" + q + "\"}]}";
  };
  const Outcome a = run(body("first question"));
  const Outcome b = run(body("second question"));
  REQUIRE(a.status == 200);
  REQUIRE(b.status == 200);
  simdjson::dom::parser pa, pb;
  simdjson::dom::element ea, eb;
  REQUIRE(pa.parse(a.body).get(ea) == simdjson::SUCCESS);
  REQUIRE(pb.parse(b.body).get(eb) == simdjson::SUCCESS);
  const int64_t cached = int_at(eb, "/usage/prompt_tokens_details/cached_tokens");
  CHECK(cached >= 64);  // the shared system prompt spans several 16-token blocks
  CHECK(cached % 16 == 0);
  CHECK(cached < int_at(eb, "/usage/prompt_tokens"));
}

TEST_CASE("features the engine lacks are 400s in OpenAI shape, not silent drops") {
  struct Case {
    std::string body;
    std::string param;
  };
  const std::vector<Case> cases = {
      {chat(R"("n":2)"), "n"},
      {chat(R"("logit_bias":{"50":10})"), "logit_bias"},
      {chat(R"("response_format":{"type":"json_object"},"stop":["}"])"), "stop"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},)"
       R"({"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]})",
       "messages[0].content"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    const Outcome o = run(c.body);
    CHECK(o.status == 400);
    CHECK(o.content_type == "application/json");
    CHECK_FALSE(o.failed);
    simdjson::dom::parser p;
    simdjson::dom::element e;
    REQUIRE(p.parse(o.body).get(e) == simdjson::SUCCESS);
    CHECK(str_at(e, "/error/type") == "invalid_request_error");
    CHECK(str_at(e, "/error/param") == c.param);
    CHECK(str_at(e, "/error/code") == "unsupported_parameter");
    CHECK(str_at(e, "/error/message").find("does not support") != std::string::npos);
  }
  // Over the context length (512 here) and a foreign model name.
  const Outcome big = run(chat(R"("max_tokens":100000)"));
  CHECK(big.status == 400);
  CHECK(big.body.find("context_length_exceeded") != std::string::npos);
  const Outcome other = run(chat(""), "some-other-model");
  CHECK(other.status == 404);
  CHECK(other.body.find("model_not_found") != std::string::npos);
  CHECK(engine_reaches(idle));
}

TEST_CASE("cancel mid-stream stops the engine request and frees its blocks") {
  REQUIRE(engine_reaches(idle));
  const uint64_t cancelled_before = service()->stats().requests_cancelled;
  bool cancelled_here = false;
  const Outcome o = run(chat(R"("temperature":0,"max_tokens":400,"stream":true)"), {},
                        [&](backends::Call& call, const std::string& sofar) {
                          // Cancel once two content chunks have arrived.
                          size_t chunks = 0;
                          for (size_t at = 0; (at = sofar.find("\"content\":", at)) != std::string::npos; ++at)
                            ++chunks;
                          if (chunks >= 3 && !cancelled_here) {
                            cancelled_here = true;
                            call.cancel();
                          }
                        });
  CHECK(cancelled_here);
  CHECK(o.cancelled);
  CHECK(o.failed);  // a cancelled call is not a clean finish
  CHECK(o.body.find("[DONE]") == std::string::npos);
  CHECK(cancelled_and_freed(cancelled_before));
}

TEST_CASE("destroying a call without reading it cancels the engine request") {
  REQUIRE(engine_reaches(idle));
  const uint64_t cancelled_before = service()->stats().requests_cancelled;
  {
    asio::io_context io;
    EngineBackend backend(service(), io);
    simdjson::dom::parser parser;
    auto req = parse_chat_body(parser, chat(R"("max_tokens":400,"stream":true)"));
    REQUIRE(req.ok());
    auto call = backend.start(*req, service()->model_name());
    REQUIRE(call->state() != backends::CallState::kDone);
  }  // call and io_context gone; the engine must neither post to them nor keep the request
  CHECK(cancelled_and_freed(cancelled_before));
}

TEST_CASE("concurrent calls on one io_context each get their own greedy answer") {
  const std::vector<std::string> prompts = {"alpha", "beta gamma", "delta epsilon zeta"};
  std::vector<std::string> alone;
  for (const auto& q : prompts) {
    const Outcome o = run(chat(R"("temperature":0,"max_tokens":8)", q));
    simdjson::dom::parser p;
    simdjson::dom::element b;
    REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
    alone.push_back(content_of(b));
  }
  asio::io_context io;
  EngineBackend backend(service(), io);
  std::vector<Outcome> outs(prompts.size());
  std::vector<simdjson::dom::parser> parsers(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto req = parse_chat_body(parsers[i], chat(R"("temperature":0,"max_tokens":8,"stream":true)", prompts[i]));
    REQUIRE(req.ok());
    asio::co_spawn(io, drive(backend.start(*req, service()->model_name()), outs[i], nullptr), asio::detached);
  }
  io.run();
  for (size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(i);
    CHECK(outs[i].status == 200);
    CHECK(parse_sse(outs[i].body).text == alone[i]);
  }
}

TEST_CASE("with a draft model the service decodes speculatively and greedy text is unchanged") {
  ServiceConfig cfg = service()->config();
  cfg.draft_model_path = kFixture;  // the model drafting for itself: every proposal is right
  cfg.draft_tokens = 3;
  auto spec = EngineService::load(cfg);
  REQUIRE_MESSAGE(spec.ok(), (spec.ok() ? "" : spec.error().message));
  CHECK((*spec)->speculative());
  const std::string body = chat(R"("temperature":0,"max_tokens":20,"logprobs":true)", "Tell me a story");
  auto answer = [&](std::shared_ptr<EngineService> svc) {
    asio::io_context io;
    EngineBackend backend(svc, io);
    simdjson::dom::parser parser;
    auto req = parse_chat_body(parser, body);
    REQUIRE(req.ok());
    Outcome out;
    asio::co_spawn(io, drive(backend.start(*req, svc->model_name()), out, nullptr), asio::detached);
    io.run();
    REQUIRE(out.status == 200);
    return out.body;
  };
  simdjson::dom::parser pa, pb;
  simdjson::dom::element a, b;
  REQUIRE(pa.parse(answer(service())).get(a) == simdjson::SUCCESS);
  REQUIRE(pb.parse(answer(*spec)).get(b) == simdjson::SUCCESS);
  CHECK(content_of(a) == content_of(b));
  CHECK(int_at(a, "/usage/completion_tokens") == int_at(b, "/usage/completion_tokens"));
  CHECK(simdjson::minify(a.at_pointer("/choices/0/logprobs/content")).size() ==
        simdjson::minify(b.at_pointer("/choices/0/logprobs/content")).size());
  const EngineStats st = (*spec)->stats();
  CHECK(st.drafted > 0);
  CHECK(st.accepted == st.drafted);        // identical draft: nothing rejected
  CHECK(st.tokens_per_verify() > 1.5);     // ~k+1 tokens per target forward
  MESSAGE("self-draft: acceptance " << st.acceptance_rate() << ", tokens per verify " << st.tokens_per_verify());
}

TEST_CASE("deadlines: first token while queued, total mid-stream, the engine requests are cancelled") {
  // One sequence at a time, and a context so long that a max_tokens-bound generation
  // takes far longer than the deadlines in any build: only a deadline can end it. A has
  // 1 s for its first token on a loaded machine; B, started once A streams, then times
  // out (1 s) before A's total deadline (3 s) frees the slot.
  ServiceConfig cfg = service()->config();
  cfg.context_length = 65536;
  cfg.max_batch = 1;
  cfg.kv_memory_bytes = 16u << 20;
  auto loaded = EngineService::load(cfg);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
  const std::shared_ptr<EngineService> svc = std::move(loaded).value();
  asio::io_context io;
  EngineBackend backend(svc, io, {}, CallDeadlines{.first_token_ms = 1'000, .total_ms = 3'000});
  simdjson::dom::parser pa, pb;
  auto long_req = parse_chat_body(pa, chat(R"("temperature":0,"max_tokens":60000,"stream":true)", "Tell me a story"));
  auto short_req = parse_chat_body(pb, chat(R"("max_tokens":4)"));
  REQUIRE(long_req.ok());
  REQUIRE(short_req.ok());
  Outcome a, b;
  bool b_started = false;
  // B starts once A streams: it waits behind A in the engine's single slot.
  auto start_b = [&](backends::Call&, const std::string& sofar) {
    if (b_started || sofar.find("\"content\"") == std::string::npos) return;
    b_started = true;
    asio::co_spawn(io, drive(backend.start(*short_req, svc->model_name()), b, nullptr), asio::detached);
  };
  asio::co_spawn(io, drive(backend.start(*long_req, svc->model_name()), a, start_b), asio::detached);
  io.run();

  REQUIRE(b_started);
  CHECK(b.status == 0);  // no headers: the gateway turns this into a 504
  CHECK(b.failed);
  CHECK(b.timed_out);
  CHECK_FALSE(b.cancelled);
  CHECK(b.error.find("first-byte timeout") != std::string::npos);
  CHECK(a.status == 200);
  CHECK(a.failed);
  CHECK(a.timed_out);
  CHECK(a.error.find("total timeout") != std::string::npos);
  CHECK(parse_sse(a.body).text.size() > 0);
  CHECK(a.body.find("[DONE]") == std::string::npos);
  bool freed = false;
  for (int i = 0; i < 5000 && !freed; ++i) {
    const EngineStats s = svc->stats();
    freed = s.requests_cancelled == 2 && idle(s);
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(freed);
  CHECK(svc->stats().requests_finished == 2);
}

namespace {

const std::string kWeatherTool =
    R"({"type":"function","function":{"name":"get_weather","description":"Current weather in a city",)"
    R"("parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},)"
    R"("unit":{"enum":["C","F"]}},"required":["city","unit"],"additionalProperties":false}}})";
const std::string kTimeTool =
    R"({"type":"function","function":{"name":"get_time","parameters":{"type":"object",)"
    R"("properties":{"zone":{"type":"string","maxLength":8}},"required":["zone"]}}})";

// The streamed tool-call deltas of a body, concatenated.
struct StreamedCall {
  std::string id, type, name, arguments, finish_reason;
  int starts = 0;
};
StreamedCall streamed_call(const std::string& body) {
  StreamedCall c;
  SseParser p;
  std::vector<std::string> data;
  p.feed(body, [&](const SseEvent& ev) { data.emplace_back(ev.data); });
  for (const auto& d : data) {
    if (d == "[DONE]") continue;
    simdjson::dom::parser jp;
    simdjson::dom::element e;
    REQUIRE(jp.parse(d).get(e) == simdjson::SUCCESS);
    std::string_view s;
    if (!e.at_pointer("/choices/0/finish_reason").get_string().get(s)) c.finish_reason = std::string(s);
    simdjson::dom::element tc;
    if (e.at_pointer("/choices/0/delta/tool_calls/0").get(tc)) continue;
    CHECK(int_at(tc, "/index") == 0);
    if (!tc["id"].get_string().get(s)) {
      ++c.starts;
      c.id = std::string(s);
      c.type = str_at(tc, "/type");
      c.name = str_at(tc, "/function/name");
    }
    if (!tc.at_pointer("/function/arguments").get_string().get(s)) c.arguments += s;
  }
  return c;
}

}  // namespace

TEST_CASE("response_format json_schema: the answer parses and matches the schema, streamed or not") {
  const std::string format =
      R"("response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":)"
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":10},"age":{"type":"integer"},)"
      R"("tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2}},"required":["name","age","tags"],)"
      R"("additionalProperties":false}}})";
  const Outcome plain = run(chat(R"("temperature":0,"max_tokens":80,)" + format));
  REQUIRE(plain.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(plain.body).get(b) == simdjson::SUCCESS);
  CHECK(str_at(b, "/choices/0/finish_reason") == "stop");
  const std::string content = content_of(b);
  CAPTURE(content);
  simdjson::dom::parser cp;
  simdjson::dom::element v;
  REQUIRE(cp.parse(content).get(v) == simdjson::SUCCESS);
  std::string_view name;
  CHECK(v["name"].get_string().get(name) == simdjson::SUCCESS);
  CHECK(name.size() <= 10 * 4);
  CHECK(v["age"].is_int64());
  simdjson::dom::array tags;
  REQUIRE(v["tags"].get_array().get(tags) == simdjson::SUCCESS);
  CHECK(tags.size() <= 2);
  simdjson::dom::object o;
  REQUIRE(v.get_object().get(o) == simdjson::SUCCESS);
  CHECK(o.size() == 3);

  const Outcome st = run(chat(R"("temperature":0,"max_tokens":80,"stream":true,)" + format));
  REQUIRE(st.status == 200);
  CHECK_FALSE(st.failed);
  CHECK(parse_sse(st.body).text == content);
  // json_object: any object.
  const Outcome any = run(chat(R"("temperature":0,"max_tokens":60,"response_format":{"type":"json_object"})"));
  REQUIRE(any.status == 200);
  simdjson::dom::parser ap, vp;
  simdjson::dom::element ab, av;
  REQUIRE(ap.parse(any.body).get(ab) == simdjson::SUCCESS);
  CHECK(str_at(ab, "/choices/0/finish_reason") == "stop");
  REQUIRE(vp.parse(content_of(ab)).get(av) == simdjson::SUCCESS);
  CHECK(av.is_object());
}

TEST_CASE("requests for the same output share one compiled grammar") {
  const std::string schema = R"({"type":"object","properties":{"grammar_cache_probe":{"type":"boolean"}},)"
                             R"("required":["grammar_cache_probe"]})";
  const std::string format = R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":)" +
                             schema + "}}";
  const size_t before = service()->cached_grammars();
  std::string first;
  for (int i = 0; i < 2; ++i) {
    const Outcome o = run(chat(R"("temperature":0,"max_tokens":30,)" + format));
    REQUIRE(o.status == 200);
    simdjson::dom::parser p;
    simdjson::dom::element b;
    REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
    if (i == 0) first = content_of(b);
    else CHECK(content_of(b) == first);  // the shared grammar answers the same
    CHECK(service()->cached_grammars() == std::min(before + 1, GrammarCache::kEntries));
  }
  std::string other_format = format;
  other_format.replace(other_format.find("grammar_cache_probe"), 19, "another_cache_probe");
  other_format.replace(other_format.find("grammar_cache_probe"), 19, "another_cache_probe");
  const Outcome other = run(chat(R"("temperature":0,"max_tokens":30,)" + other_format));
  REQUIRE(other.status == 200);
  CHECK(service()->cached_grammars() == std::min(before + 2, GrammarCache::kEntries));
}

TEST_CASE("max_tokens below the schema's shortest answer ends at length with a partial answer") {
  const Outcome o = run(chat(R"("temperature":0,"max_tokens":3,"response_format":{"type":"json_schema",)"
                             R"("json_schema":{"name":"s","schema":{"type":"object","properties":)"
                             R"({"a_long_property_name":{"type":"string"}},"required":["a_long_property_name"]}}})"));
  REQUIRE(o.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
  CHECK(str_at(b, "/choices/0/finish_reason") == "length");
  CHECK(int_at(b, "/usage/completion_tokens") == 3);
  const std::string content = content_of(b);
  CHECK(std::string("{\"a_long_property_name\":").rfind(content, 0) == 0);  // a prefix of the shortest answer
}

TEST_CASE("a named tool: message.tool_calls and finish_reason tool_calls, streamed as tool_call deltas") {
  const std::string extra = R"("temperature":0,"max_tokens":60,"tools":[)" + kWeatherTool + "," + kTimeTool +
                            R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}})";
  const Outcome plain = run(chat(extra, "Weather in Paris?"));
  REQUIRE(plain.status == 200);
  simdjson::dom::parser p;
  simdjson::dom::element b;
  REQUIRE(p.parse(plain.body).get(b) == simdjson::SUCCESS);
  CAPTURE(plain.body);
  CHECK(str_at(b, "/choices/0/finish_reason") == "tool_calls");
  CHECK(b.at_pointer("/choices/0/message/content").is_null());
  CHECK(str_at(b, "/choices/0/message/tool_calls/0/id").rfind("call_", 0) == 0);
  CHECK(str_at(b, "/choices/0/message/tool_calls/0/type") == "function");
  CHECK(str_at(b, "/choices/0/message/tool_calls/0/function/name") == "get_weather");
  const std::string args = str_at(b, "/choices/0/message/tool_calls/0/function/arguments");
  simdjson::dom::parser ap;
  simdjson::dom::element a;
  REQUIRE(ap.parse(args).get(a) == simdjson::SUCCESS);
  std::string_view city, unit;
  CHECK(a["city"].get_string().get(city) == simdjson::SUCCESS);
  REQUIRE(a["unit"].get_string().get(unit) == simdjson::SUCCESS);
  CHECK((unit == "C" || unit == "F"));

  const Outcome st = run(chat(extra + R"(,"stream":true)", "Weather in Paris?"));
  REQUIRE(st.status == 200);
  CHECK_FALSE(st.failed);
  const StreamedCall c = streamed_call(st.body);
  CHECK(c.starts == 1);
  CHECK(c.id.rfind("call_", 0) == 0);
  CHECK(c.type == "function");
  CHECK(c.name == "get_weather");
  CHECK(c.arguments == args);
  CHECK(c.finish_reason == "tool_calls");
  CHECK(parse_sse(st.body).text.empty());
  CHECK(st.body.find("data: [DONE]") != std::string::npos);
}

TEST_CASE("tool_choice required picks one of the tools, auto answers text or a call") {
  const std::string tools = R"("tools":[)" + kWeatherTool + "," + kTimeTool + "]";
  // Sampled (top_k keeps a draw cheap over the 32k vocabulary in Debug builds).
  for (int seed = 0; seed < 2; ++seed) {
    const Outcome o = run(chat(R"("temperature":1,"top_k":40,"max_tokens":60,"seed":)" + std::to_string(seed) + "," + tools +
                               R"(,"tool_choice":"required")"));
    REQUIRE(o.status == 200);
    simdjson::dom::parser p;
    simdjson::dom::element b;
    REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
    CHECK(str_at(b, "/choices/0/finish_reason") == "tool_calls");
    const std::string name = str_at(b, "/choices/0/message/tool_calls/0/function/name");
    CHECK((name == "get_weather" || name == "get_time"));
    simdjson::dom::parser ap;
    simdjson::dom::element a;
    CHECK(ap.parse(str_at(b, "/choices/0/message/tool_calls/0/function/arguments")).get(a) == simdjson::SUCCESS);
  }
  int calls = 0, texts = 0;
  for (int seed = 0; seed < 4; ++seed) {
    const Outcome o = run(chat(R"("temperature":1,"top_k":40,"max_tokens":40,"seed":)" + std::to_string(seed) + "," + tools));
    REQUIRE(o.status == 200);
    simdjson::dom::parser p;
    simdjson::dom::element b;
    REQUIRE(p.parse(o.body).get(b) == simdjson::SUCCESS);
    const std::string finish = str_at(b, "/choices/0/finish_reason");
    if (finish == "tool_calls") {
      ++calls;
      simdjson::dom::parser ap;
      simdjson::dom::element a;
      CHECK(ap.parse(str_at(b, "/choices/0/message/tool_calls/0/function/arguments")).get(a) == simdjson::SUCCESS);
    } else {
      ++texts;
      const std::string text = content_of(b);
      const size_t first = text.find_first_not_of(" \t\r\n");
      CHECK((first == std::string::npos || text[first] != '{'));
      CHECK(b.at_pointer("/choices/0/message/tool_calls").error() == simdjson::NO_SUCH_FIELD);
    }
  }
  CHECK(calls + texts == 4);
}

TEST_CASE("a conversation with an earlier tool call and its result is served") {
  const Outcome o = run(
      R"({"model":"m","messages":[{"role":"user","content":"Weather in Paris?"},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"C\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":"21"}],"temperature":0,"max_tokens":5,"tools":[)" +
      kWeatherTool + "]}");
  CHECK(o.status == 200);
}

TEST_CASE("constrained-decoding requests the engine cannot serve are 400s naming the field") {
  struct Case {
    std::string extra, param, needle;
  };
  const std::vector<Case> cases = {
      {R"("response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"string","pattern":"a+"}}})",
       "response_format.json_schema.schema", "'pattern'"},
      {R"("response_format":{"type":"yaml"})", "response_format.type", "yaml"},
      {R"("tools":[)" + kWeatherTool + R"(],"tool_choice":{"type":"function","function":{"name":"nope"}})",
       "tool_choice.function.name", "nope"},
      {R"("tool_choice":"required")", "tool_choice", "only allowed when"},
      {R"("tools":[)" + kWeatherTool + R"(],"response_format":{"type":"json_object"})", "response_format", "auto"},
      {R"("tools":[{"type":"function","function":{"name":"bad name"}}])", "tools[0].function.name", "letters"},
      {R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"not":{}}}}}}])",
       "tools[0].function.parameters", "'not'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.extra);
    const Outcome o = run(chat(c.extra));
    CHECK(o.status == 400);
    simdjson::dom::parser p;
    simdjson::dom::element e;
    REQUIRE(p.parse(o.body).get(e) == simdjson::SUCCESS);
    CHECK(str_at(e, "/error/type") == "invalid_request_error");
    CHECK(str_at(e, "/error/param") == c.param);
    CHECK_MESSAGE(str_at(e, "/error/message").find(c.needle) != std::string::npos, o.body);
  }
  CHECK(engine_reaches(idle));
}

TEST_CASE("a request without max_tokens gets the configured default_max_tokens, never past the context") {
  auto load = [](int32_t default_max_tokens) {
    ServiceConfig cfg;
    cfg.model_path = kFixture;
    cfg.threads = 1;
    cfg.kv_memory_bytes = 4u << 20;
    cfg.context_length = 512;
    cfg.default_max_tokens = default_max_tokens;
    auto svc = EngineService::load(cfg);
    REQUIRE_MESSAGE(svc.ok(), (svc.ok() ? "" : svc.error().message));
    return std::move(svc).value();
  };
  // The max_tokens a request is prepared with, and the room its prompt leaves in the context.
  auto prepared = [](EngineService& svc, const std::string& extra) {
    simdjson::dom::parser parser;
    const std::string body = chat(extra);
    auto req = parse_chat_body(parser, body);
    REQUIRE(req.ok());
    auto p = svc.prepare(*req);
    REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message));
    return std::pair<int64_t, int64_t>{p->gen.max_tokens, 512 - static_cast<int64_t>(p->gen.prompt.size())};
  };
  auto seven = load(7);
  const auto [dflt, room] = prepared(*seven, "");
  CHECK(dflt == 7);
  CHECK(room > 7);
  CHECK(prepared(*seven, R"("max_tokens":20)").first == 20);  // the client's own wins
  CHECK(prepared(*load(0), "").first == room);                 // 0: the rest of the context, as before
  CHECK(prepared(*load(100'000), "").first == room);           // never past the context
  CHECK(ServiceConfig{}.default_max_tokens == 4096);
  config::EngineSettings settings;
  CHECK(settings.default_max_tokens == 4096);
}
