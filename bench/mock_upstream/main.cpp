// mock_upstream: a fast, scriptable upstream for tests and benchmarks that speaks both
// the OpenAI Chat Completions API and the Anthropic Messages API (anthropic.cpp).
//
// Scripting travels in the request body under "mock" (frugal passes unknown fields
// through untouched), or as a `mock:{...}` directive at the start of a message text
// (for requests frugal translates; see mock_server.h), e.g.
// {"mock": {"ttft_ms": 200, "chunks": 8, "status": 503, "fail_times": 2, "key": "t1",
//  "retry_after": "1", "cut_after": 3, "no_done": true}}:
//   ttft_ms        delay before the response headers/first chunk
//   chunk_delay_ms delay between stream chunks
//   chunks         number of content chunks when streaming (default 4)
//   content        the assistant text (default "Hello from the mock upstream.")
//   status         answer with this error status (OpenAI-shaped error body)
//   fail_times     only the first N requests with this "key" get `status`
//   retry_after    Retry-After header value sent with `status`
//   cut_after      stream this many chunks, then close the connection mid-chunk
//   no_done        end the stream cleanly but without "data: [DONE]"
//   hang           never answer (for timeouts and disconnect tests)
//   echo           reply with the received request body as the content
//   cached_tokens  usage.prompt_tokens_details.cached_tokens (default 0)
//   tool_args      arguments of the tool call (JSON text, default {"city":"Paris","unit":"celsius"})
//   usage          {"prompt": N, "completion": N, "cached": N} reported token counts
//                  (default 12 / 7 / 0)
//   logprobs       [lp, ...]: the content is split into that many tokens with these
//                  log-probs; the runner-up alternative is `margin` (default 2.0) lower
//   tokens         [{"t": "Yes", "lp": -0.1, "top": [["Yes", -0.1], ["No", -2.3]]}, ...]:
//                  explicit tokens (the content is their concatenation) and alternatives
//   models         {"<upstream model>": {script}}: applied over the rest for that model
//                  only, so one request body can script every tier of a cascade
// Log-probs are returned only when the request asks (logprobs: true), with
// min(top_logprobs, alternatives) alternatives, as OpenAI does; a stream with scripted
// tokens sends one chunk per token.
// Tools: a request with `tools` whose last message is not a tool result is answered
// with a call of the first tool (streamed arguments arrive in several chunks,
// finish_reason tool_calls); a request ending in a tool result is answered with
// "Tool result received: <its content>".
// A tool_choice naming a function forces that tool, and (as OpenAI does) finishes with
// "stop". POST /v1/embeddings: see serve_embeddings.
// Models named no-such-* get the 404 model_not_found a real upstream sends.
// GET /mock/stats → {"requests":N,"chat":N,"messages":N,"embeddings":N,"aborted":N}; POST /mock/reset zeroes it.
// GET /mock/last_request → the last chat/messages body received; GET /mock/last_headers
// → its headers as a JSON object (lower-case names). GET /mock/log → a JSON array of
// every chat body since the last reset (at most 10 000).
// POST /mock/models {"<model>": {script}, ...} sets per-model scripts applied to every
// chat request for that model (under the request's own `models` entry): for requests
// the gateway builds itself, such as a cascade verifier's question. `{}` clears them.
#include <simdjson.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/mock_upstream/mock_server.h"

using namespace mock;

namespace {

struct Token {
  std::string text;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;  // alternatives, most likely first
};

struct Script {
  int64_t ttft_ms = 0, chunk_delay_ms = 0, chunks = 4, status = 0, fail_times = -1, cut_after = -1;
  int64_t prompt_tokens = 12, completion_tokens = 7, cached_tokens = 0;
  bool no_done = false, hang = false, echo = false, stream = false, include_usage = false;
  std::string content = "Hello from the mock upstream.", key, retry_after, model = "mock-model";
  std::string tool_name;  // non-empty: answer with a call of this tool
  bool forced_tool = false;  // tool_choice named it: OpenAI then finishes with "stop"
  std::string tool_args = R"({"city":"Paris","unit":"celsius"})";
  std::vector<double> logprobs;  // shorthand: split the content into this many tokens
  double margin = 2.0;
  std::vector<Token> tokens;     // explicit tokens (wins over `logprobs`)
  bool want_logprobs = false;    // the request asked for logprobs
  int64_t top_logprobs = 0;
};

// The text of an OpenAI message's content (string or text parts).
std::string content_text(simdjson::dom::element msg) {
  simdjson::dom::element c;
  if (msg["content"].get(c)) return {};
  std::string_view sv;
  if (!c.get_string().get(sv)) return std::string(sv);
  std::string out;
  if (c.is_array())
    for (auto part : simdjson::dom::array(c))
      if (!part["text"].get_string().get(sv)) out += sv;
  return out;
}

// Applies one script object (the request's "mock", a per-model entry) onto `s`.
void apply_script(simdjson::dom::element m, Script& s) {
  if (!m.is_object()) return;
  int64_t v;
  bool b;
  double d;
  std::string_view sv;
  if (!m["ttft_ms"].get_int64().get(v)) s.ttft_ms = v;
  if (!m["chunk_delay_ms"].get_int64().get(v)) s.chunk_delay_ms = v;
  if (!m["chunks"].get_int64().get(v)) s.chunks = std::max<int64_t>(1, v);
  if (!m["status"].get_int64().get(v)) s.status = v;
  if (!m["fail_times"].get_int64().get(v)) s.fail_times = v;
  if (!m["cut_after"].get_int64().get(v)) s.cut_after = v;
  if (!m["cached_tokens"].get_int64().get(v)) s.cached_tokens = v;
  if (!m["no_done"].get_bool().get(b)) s.no_done = b;
  if (!m["hang"].get_bool().get(b)) s.hang = b;
  if (!m["echo"].get_bool().get(b)) s.echo = b;
  if (!m["content"].get_string().get(sv)) s.content = sv;
  if (!m["key"].get_string().get(sv)) s.key = sv;
  if (!m["retry_after"].get_string().get(sv)) s.retry_after = sv;
  if (!m["tool_args"].get_string().get(sv)) s.tool_args = sv;
  if (!m["margin"].get_double().get(d)) s.margin = d;
  simdjson::dom::element u;
  if (!m["usage"].get(u) && u.is_object()) {
    if (!u["prompt"].get_int64().get(v)) s.prompt_tokens = v;
    if (!u["completion"].get_int64().get(v)) s.completion_tokens = v;
    if (!u["cached"].get_int64().get(v)) s.cached_tokens = v;
  }
  simdjson::dom::array arr;
  if (!m["logprobs"].get_array().get(arr)) {
    s.logprobs.clear();
    s.tokens.clear();
    for (auto e : arr)
      if (!e.get_double().get(d)) s.logprobs.push_back(d);
  }
  if (!m["tokens"].get_array().get(arr)) {
    s.tokens.clear();
    s.logprobs.clear();
    for (auto e : arr) {
      Token t;
      if (!e["t"].get_string().get(sv)) t.text = sv;
      if (!e["lp"].get_double().get(d)) t.logprob = d;
      simdjson::dom::array top;
      if (!e["top"].get_array().get(top)) {
        for (auto alt : top) {
          simdjson::dom::array pair;
          std::string_view at;
          double al;
          if (alt.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_string().get(at) ||
              pair.at(1).get_double().get(al))
            continue;
          t.top.emplace_back(std::string(at), al);
        }
      }
      s.tokens.push_back(std::move(t));
    }
    std::string content;
    for (const auto& t : s.tokens) content += t.text;
    s.content = content;
  }
}

// Splits the content into the scripted tokens (`logprobs` shorthand) if needed.
void finalize_tokens(Script& s) {
  if (!s.tokens.empty() || s.logprobs.empty()) return;
  const size_t n = s.logprobs.size();
  const size_t piece = std::max<size_t>(1, (s.content.size() + n - 1) / n);
  for (size_t i = 0; i < n; ++i) {
    Token t;
    t.text = i * piece < s.content.size() ? s.content.substr(i * piece, piece) : "";
    t.logprob = s.logprobs[i];
    t.top = {{t.text, t.logprob}, {"<alt>", t.logprob - s.margin}};
    s.tokens.push_back(std::move(t));
  }
}

Script parse_script(const std::string& body) {
  Script s;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root)) return s;
  std::string_view sv;
  if (!root["model"].get_string().get(sv)) s.model = sv;
  bool b;
  if (!root["stream"].get_bool().get(b)) s.stream = b;
  if (!root["stream_options"]["include_usage"].get_bool().get(b)) s.include_usage = b;
  simdjson::dom::array msgs, tools;
  simdjson::dom::element last;
  const bool has_msgs = !root["messages"].get_array().get(msgs) && msgs.size() > 0 &&
                        !msgs.at(msgs.size() - 1).get(last);
  std::string_view last_role;
  if (has_msgs && !last["role"].get_string().get(last_role) && last_role == "tool") {
    s.content = "Tool result received: " + content_text(last);
  } else if (!root["tools"].get_array().get(tools) && tools.size() > 0) {
    if (!tools.at(0)["function"]["name"].get_string().get(sv)) s.tool_name = sv;
    if (!root["tool_choice"]["function"]["name"].get_string().get(sv)) {
      s.tool_name = sv;
      s.forced_tool = true;
    }
  }
  if (!root["logprobs"].get_bool().get(b)) s.want_logprobs = b;
  int64_t v;
  if (!root["top_logprobs"].get_int64().get(v)) s.top_logprobs = v;
  const std::string script = script_json(root);
  simdjson::dom::parser sp;
  simdjson::dom::element m;
  const bool has_script = !sp.parse(script).get(m) && m.is_object();
  if (has_script) apply_script(m, s);
  std::string model_script;
  {
    std::lock_guard lock(g_stats.mu);
    auto it = g_stats.model_scripts.find(s.model);
    if (it != g_stats.model_scripts.end()) model_script = it->second;
  }
  simdjson::dom::parser mp;
  simdjson::dom::element ms;
  if (!model_script.empty() && !mp.parse(model_script).get(ms)) apply_script(ms, s);
  simdjson::dom::element per_model;
  if (has_script && !m["models"][s.model].get(per_model)) apply_script(per_model, s);
  if (s.echo) s.content = body;
  finalize_tokens(s);
  return s;
}

void token_entry(std::string& out, std::string_view text, double logprob) {
  char num[40];
  std::snprintf(num, sizeof num, "%.17g", logprob);
  out += R"({"token":")" + escape(text) + R"(","logprob":)" + num + R"(,"bytes":[)";
  for (size_t i = 0; i < text.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(static_cast<unsigned char>(text[i]));
  }
  out += "]";
}

// OpenAI's choices[].logprobs object for tokens [from, to).
std::string logprobs_json(const Script& s, size_t from, size_t to) {
  std::string out = R"({"content":[)";
  for (size_t i = from; i < to; ++i) {
    const Token& t = s.tokens[i];
    if (i > from) out += ',';
    token_entry(out, t.text, t.logprob);
    out += R"(,"top_logprobs":[)";
    const size_t n = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(0, s.top_logprobs)), t.top.size());
    for (size_t k = 0; k < n; ++k) {
      if (k) out += ',';
      token_entry(out, t.top[k].first, t.top[k].second);
      out += '}';
    }
    out += "]}";
  }
  out += R"(],"refusal":null})";
  return out;
}

bool send_logprobs(const Script& s) { return s.want_logprobs && !s.tokens.empty() && s.tool_name.empty(); }

std::string usage_json(const Script& s) {
  return R"({"prompt_tokens":)" + std::to_string(s.prompt_tokens) + R"(,"completion_tokens":)" +
         std::to_string(s.completion_tokens) + R"(,"total_tokens":)" +
         std::to_string(s.prompt_tokens + s.completion_tokens) + R"(,"prompt_tokens_details":{"cached_tokens":)" +
         std::to_string(s.cached_tokens) + "}}";
}

std::string tool_call_json(const Script& s) {
  return R"([{"id":"call_mock_1","type":"function","function":{"name":")" + escape(s.tool_name) +
         R"(","arguments":")" + escape(s.tool_args) + R"("}}])";
}

std::string completion_body(const Script& s) {
  const bool tool = !s.tool_name.empty();
  const std::string message = tool ? R"({"role":"assistant","content":null,"tool_calls":)" + tool_call_json(s) + "}"
                                   : R"({"role":"assistant","content":")" + escape(s.content) + "\"}";
  return R"({"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":")" + escape(s.model) +
         R"(","choices":[{"index":0,"message":)" + message + R"(,"finish_reason":")" +
         (tool && !s.forced_tool ? "tool_calls" : "stop") + R"(","logprobs":)" +
         (send_logprobs(s) ? logprobs_json(s, 0, s.tokens.size()) : std::string("null")) + R"(}],"usage":)" +
         usage_json(s) + "}";
}

std::string chunk(const Script& s, std::string_view delta_json, std::string_view finish,
                  std::string_view logprobs = "null") {
  return R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":")" +
         escape(s.model) + R"(","choices":[{"index":0,"delta":)" + std::string(delta_json) +
         R"(,"logprobs":)" + std::string(logprobs) + R"(,"finish_reason":)" + std::string(finish) + "}]}\n\n";
}

std::string error_body(int64_t status) {
  const char* type = status == 401 ? "authentication_error" : status == 429 ? "rate_limit_error"
                     : status >= 500 ? "server_error" : "invalid_request_error";
  return R"({"error":{"message":"mock upstream error )" + std::to_string(status) + R"(","type":")" + type +
         R"(","param":null,"code":null}})";
}

// The content chunks of a streamed answer: the text in `chunks` pieces, or the tool
// call opening (id, name, empty arguments) followed by its arguments in pieces.
std::vector<std::string> content_chunks(const Script& s) {
  std::vector<std::string> out;
  const size_t n = static_cast<size_t>(s.chunks);
  if (!s.tool_name.empty()) {
    out.push_back(chunk(s, R"({"tool_calls":[{"index":0,"id":"call_mock_1","type":"function","function":{"name":")" +
                               escape(s.tool_name) + R"(","arguments":""}}]})", "null"));
    const size_t piece = std::max<size_t>(1, (s.tool_args.size() + n - 1) / n);
    for (size_t i = 0; i < s.tool_args.size(); i += piece)
      out.push_back(chunk(s, R"({"tool_calls":[{"index":0,"function":{"arguments":")" +
                                 escape(s.tool_args.substr(i, piece)) + R"("}}]})", "null"));
    return out;
  }
  if (!s.tokens.empty()) {  // scripted tokens: one chunk each, with its log-probs when asked
    for (size_t i = 0; i < s.tokens.size(); ++i)
      out.push_back(chunk(s, R"({"content":")" + escape(s.tokens[i].text) + "\"}", "null",
                          send_logprobs(s) ? logprobs_json(s, i, i + 1) : std::string("null")));
    return out;
  }
  const size_t piece = (s.content.size() + n - 1) / n;
  for (size_t i = 0; i < n; ++i) {
    const std::string text = i * piece < s.content.size() ? s.content.substr(i * piece, piece) : "";
    out.push_back(chunk(s, R"({"content":")" + escape(text) + "\"}", "null"));
  }
  return out;
}

// Returns false when the connection must close.
asio::awaitable<bool> serve_chat(beast::tcp_stream& stream, Request& req) {
  g_stats.chat++;
  const Script s = parse_script(req.body());
  record_request(req);
  {
    std::lock_guard lock(g_stats.mu);
    if (g_stats.log.size() < 10'000) g_stats.log.push_back(req.body());
  }
  if (s.hang) {
    // Wait until the client goes away.
    char c;
    co_await stream.socket().async_read_some(asio::buffer(&c, 1), kTuple);
    record_abort();
    co_return false;
  }
  co_await sleep_ms(s.ttft_ms);
  const bool keep = req.keep_alive();
  if (!g_stats.require_key.empty() && req[http::field::authorization] != "Bearer " + g_stats.require_key)
    co_return co_await respond(stream, keep, 401, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})");
  if (s.model.rfind("no-such-", 0) == 0)  // how a real upstream answers an unknown model
    co_return co_await respond(stream, keep, 404, R"({"error":{"message":"The model `)" + escape(s.model) +
                                        R"(` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})");
  if (s.status >= 400 && should_fail(s.key, s.fail_times))
    co_return co_await respond(stream, keep, static_cast<int>(s.status), error_body(s.status), s.retry_after);
  if (!s.stream) co_return co_await respond(stream, keep, 200, completion_body(s));

  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "Transfer-Encoding: chunked\r\n";
  head += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  head += frame(chunk(s, R"({"role":"assistant","content":""})", "null"));
  if (!co_await write_raw(stream, head)) co_return false;
  CloseWatch watch(stream.socket());
  const std::vector<std::string> chunks = content_chunks(s);
  for (size_t i = 0; i < chunks.size(); ++i) {
    co_await sleep_ms(s.chunk_delay_ms);
    if (watch.closed()) co_return false;
    if (s.cut_after >= 0 && static_cast<int64_t>(i) == s.cut_after) {
      // Half an event, then the connection drops.
      co_await write_raw(stream, frame(chunks[i].substr(0, chunks[i].size() / 2)));
      co_return false;
    }
    if (!co_await write_raw(stream, frame(chunks[i]))) co_return false;
  }
  std::string tail = frame(chunk(s, "{}", s.tool_name.empty() || s.forced_tool ? "\"stop\"" : "\"tool_calls\""));
  if (s.include_usage)
    tail += frame(R"(data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":")" +
                  escape(s.model) + R"(","choices":[],"usage":)" + usage_json(s) + "}\n\n");
  if (!s.no_done) tail += frame("data: [DONE]\n\n");
  tail += "0\r\n\r\n";
  if (!co_await write_raw(stream, tail)) co_return false;
  co_return keep;
}

// POST /v1/embeddings: one deterministic unit vector per input (`dimensions` long,
// default 4), derived from the input's bytes, so equal inputs get equal vectors;
// base64 when encoding_format says so. usage.prompt_tokens: whitespace-separated words
// of string inputs plus the length of token-id inputs. Script keys (body "mock"):
// status (+ fail_times, key), prompt_tokens.
asio::awaitable<bool> serve_embeddings(beast::tcp_stream& stream, Request& req) {
  g_stats.embeddings++;
  record_request(req);
  const bool keep = req.keep_alive();
  if (!g_stats.require_key.empty() && req[http::field::authorization] != "Bearer " + g_stats.require_key)
    co_return co_await respond(stream, keep, 401, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(req.body()).get(root) || !root.is_object())
    co_return co_await respond(stream, keep, 400, R"({"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}})");
  std::string_view model = "mock-embed", sv;
  if (!root["model"].get_string().get(sv)) model = sv;
  if (model.rfind("no-such-", 0) == 0)
    co_return co_await respond(stream, keep, 404, R"({"error":{"message":"The model `)" + escape(model) +
                                        R"(` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}})");
  simdjson::dom::parser sp;
  simdjson::dom::element m;
  int64_t status = 0, fail_times = -1, tokens_override = -1;
  std::string key;
  if (!sp.parse(script_json(root)).get(m) && m.is_object()) {
    (void)m["status"].get_int64().get(status);
    (void)m["fail_times"].get_int64().get(fail_times);
    (void)m["prompt_tokens"].get_int64().get(tokens_override);
    if (!m["key"].get_string().get(sv)) key = sv;
  }
  if (status >= 400 && should_fail(key, fail_times))
    co_return co_await respond(stream, keep, static_cast<int>(status), error_body(status));
  int64_t dims = 4;
  (void)root["dimensions"].get_int64().get(dims);
  dims = std::clamp<int64_t>(dims, 1, 4096);
  bool base64 = false;
  if (!root["encoding_format"].get_string().get(sv)) base64 = sv == "base64";
  // Each input as bytes to hash, and its token count.
  std::vector<std::pair<std::string, int64_t>> inputs;
  auto words = [](std::string_view t) {
    int64_t n = 0;
    bool in = false;
    for (char c : t) {
      const bool space = c == ' ' || c == '\n' || c == '\t';
      if (!space && !in) ++n;
      in = !space;
    }
    return n;
  };
  simdjson::dom::element input;
  if (root["input"].get(input))
    co_return co_await respond(stream, keep, 400, R"({"error":{"message":"'input' is required","type":"invalid_request_error","param":"input","code":null}})");
  if (input.is_string()) {
    inputs.emplace_back(std::string(input.get_string().value_unsafe()), words(input.get_string().value_unsafe()));
  } else if (input.is_array()) {
    simdjson::dom::array arr = input.get_array().value_unsafe();
    if (arr.size() > 0 && (arr.at(0).value_unsafe().is_int64() || arr.at(0).value_unsafe().is_uint64())) {
      inputs.emplace_back(simdjson::minify(input), static_cast<int64_t>(arr.size()));
    } else {
      for (auto e : arr) {
        if (e.is_string()) inputs.emplace_back(std::string(e.get_string().value_unsafe()), words(e.get_string().value_unsafe()));
        else inputs.emplace_back(simdjson::minify(e), e.is_array() ? static_cast<int64_t>(simdjson::dom::array(e).size()) : 1);
      }
    }
  }
  int64_t prompt_tokens = 0;
  std::string body = R"({"object":"list","data":[)";
  for (size_t i = 0; i < inputs.size(); ++i) {
    prompt_tokens += inputs[i].second;
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : inputs[i].first) h = (h ^ c) * 1099511628211ull;
    std::vector<float> v(static_cast<size_t>(dims));
    double norm = 0;
    for (auto& x : v) {
      h = h * 6364136223846793005ull + 1442695040888963407ull;
      x = static_cast<float>(static_cast<int64_t>(h >> 40) % 1000 - 500) / 500.0f + 0.001f;
      norm += static_cast<double>(x) * x;
    }
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
    body += (i ? "," : "");
    body += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    if (base64) {
      static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      const auto* p = reinterpret_cast<const unsigned char*>(v.data());
      const size_t n = v.size() * sizeof(float);
      std::string out = "\"";
      for (size_t k = 0; k < n; k += 3) {
        const uint32_t a = p[k], b = k + 1 < n ? p[k + 1] : 0, c = k + 2 < n ? p[k + 2] : 0;
        const uint32_t t = (a << 16) | (b << 8) | c;
        out += kB64[t >> 18];
        out += kB64[(t >> 12) & 63];
        out += k + 1 < n ? kB64[(t >> 6) & 63] : '=';
        out += k + 2 < n ? kB64[t & 63] : '=';
      }
      body += out + "\"";
    } else {
      body += "[";
      for (size_t k = 0; k < v.size(); ++k) body += (k ? "," : "") + std::to_string(v[k]);
      body += "]";
    }
    body += "}";
  }
  if (tokens_override >= 0) prompt_tokens = tokens_override;
  body += R"(],"model":")" + escape(model) + R"(","usage":{"prompt_tokens":)" + std::to_string(prompt_tokens) +
          R"(,"total_tokens":)" + std::to_string(prompt_tokens) + "}}";
  co_return co_await respond(stream, keep, 200, body);
}

asio::awaitable<void> session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    Request req;
    auto [ec, n] = co_await http::async_read(stream, buffer, req, kTuple);
    if (ec) break;
    g_stats.requests++;
    bool keep = req.keep_alive();
    const std::string_view target = req.target();
    if (target == "/v1/chat/completions" || target == "/chat/completions") {
      keep = co_await serve_chat(stream, req);
    } else if (target == "/v1/embeddings" || target == "/embeddings") {
      keep = co_await serve_embeddings(stream, req);
    } else if (target == "/v1/messages" || target == "/messages") {
      keep = co_await serve_messages(stream, req);
    } else if (target == "/v1/messages/count_tokens" || target == "/messages/count_tokens") {
      keep = co_await serve_count_tokens(stream, req);
    } else if (target == "/v1/models" || target == "/models") {
      keep = co_await respond(stream, keep, 200, R"({"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"mock"},{"id":"mock-large","object":"model","created":0,"owned_by":"mock"}]})");
    } else if (target.starts_with("/v1/models?") && req.find("anthropic-version") != req.end()) {
      // Anthropic's listing (frugal asks with ?limit=...).
      keep = co_await respond(stream, keep, 200, R"({"data":[{"type":"model","id":"claude-mock-1","display_name":"Claude Mock One","created_at":"2025-02-19T00:00:00Z"}],"has_more":false,"first_id":"claude-mock-1","last_id":"claude-mock-1"})");
    } else if (target == "/mock/stats") {
      keep = co_await respond(stream, keep, 200,
                              R"({"requests":)" + std::to_string(g_stats.requests.load()) + R"(,"chat":)" +
                                  std::to_string(g_stats.chat.load()) + R"(,"messages":)" +
                                  std::to_string(g_stats.messages.load()) + R"(,"embeddings":)" +
                                  std::to_string(g_stats.embeddings.load()) + R"(,"aborted":)" +
                                  std::to_string(g_stats.aborted.load()) + R"(,"last_abort_us":)" +
                                  std::to_string(g_stats.last_abort_us.load()) + "}");
    } else if (target == "/mock/reset") {
      g_stats.requests = 0;
      g_stats.chat = 0;
      g_stats.messages = 0;
      g_stats.embeddings = 0;
      g_stats.aborted = 0;
      {
        std::lock_guard lock(g_stats.mu);
        g_stats.fail_counts.clear();
        g_stats.log.clear();
      }
      keep = co_await respond(stream, keep, 200, "{}");
    } else if (target == "/mock/log") {
      std::string body = "[";
      {
        std::lock_guard lock(g_stats.mu);
        for (size_t i = 0; i < g_stats.log.size(); ++i) body += (i ? "," : "") + g_stats.log[i];
      }
      keep = co_await respond(stream, keep, 200, body + "]");
    } else if (target == "/mock/models") {
      simdjson::dom::parser p;
      simdjson::dom::object obj;
      if (p.parse(req.body()).get_object().get(obj)) {
        keep = co_await respond(stream, keep, 400, R"({"error":{"message":"expected a JSON object","type":"invalid_request_error","param":null,"code":null}})");
      } else {
        {
          std::lock_guard lock(g_stats.mu);
          g_stats.model_scripts.clear();
          for (auto [k, v] : obj) g_stats.model_scripts[std::string(k)] = simdjson::minify(v);
        }
        keep = co_await respond(stream, keep, 200, "{}");
      }
    } else if (target == "/mock/last_request" || target == "/mock/last_headers") {
      std::string body;
      {
        std::lock_guard lock(g_stats.mu);
        body = target == "/mock/last_request" ? g_stats.last_request : g_stats.last_request_headers;
      }
      keep = co_await respond(stream, keep, 200, body);
    } else {
      keep = co_await respond(stream, keep, 404, R"({"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}})");
    }
    if (!keep) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> listen(tcp::acceptor& acc) {
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(kTuple);
    if (ec) co_return;
    sock.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acc.get_executor(), session(std::move(sock)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    else if (a == "--host" && i + 1 < argc) host = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--require-key" && i + 1 < argc) g_stats.require_key = argv[++i];
    else if (a == "--require-anthropic-key" && i + 1 < argc) g_stats.require_anthropic_key = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: mock_upstream [--host H] [--port P] [--threads N] [--require-key K] "
                   "[--require-anthropic-key K]\n");
      return 2;
    }
  }
  asio::io_context io(threads);
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address(host), static_cast<uint16_t>(port)));
  std::printf("PORT=%d\n", acc.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, listen(acc), asio::detached);
  asio::signal_set sigs(io, SIGINT, SIGTERM);
  sigs.async_wait([&](auto, int) { io.stop(); });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
