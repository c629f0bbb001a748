// The Anthropic Messages API side of mock_upstream: POST /v1/messages (plain and SSE,
// with the exact event sequence of bench/mock_anthropic) and /v1/messages/count_tokens.
//
// Checks what the real API checks first: `x-api-key` (when --require-anthropic-key or
// --require-key is given) → 401 authentication_error; a missing `anthropic-version`
// header → 400; the body against parse_anthropic_request → 400. Models named no-such-*
// get 404 not_found_error.
//
// Default answer: "Hello from the mock Anthropic upstream." (25 input / 9 output tokens).
// With `tools` and no tool_result in the last message: a tool_use of the first tool with
// input {"city":"Paris","unit":"celsius"}, streamed as input_json_delta pieces of
// `chunk_size` (8) bytes. A last message carrying tool_result blocks is answered with
// "Tool result received: <their text>". A tool_choice {type: tool, name} is answered with
// that tool's tool_use and no text, as the real API does.
//
// Script keys (body "mock" object or a `mock:{...}` text directive):
//   text, thinking, tool_input (object), chunk_size, input_tokens, output_tokens,
//   cache_read_input_tokens, cache_write_5m_tokens, cache_write_1h_tokens, stop_reason,
//   fail_after_events + error_type (stream ends after N events, with an `error` event
//   when error_type is set), cut_after (N events, then half of the next and the
//   connection drops), status (+ fail_times, key, retry_after: an Anthropic-shaped
//   error of the type that status has), ttft_ms, chunk_delay_ms, hang.
// count_tokens answers {"input_tokens": N}, N = the number of whitespace-separated
// words in every text of `system` and `messages`.
#include <cctype>

#include "backends/dialect/anthropic_request.h"
#include "bench/mock_anthropic/anthropic_mock.h"
#include "bench/mock_upstream/mock_server.h"

namespace mock {

namespace {

using frugal::mock::AnthropicScript;

const std::string& required_key() {
  return g_stats.require_anthropic_key.empty() ? g_stats.require_key : g_stats.require_anthropic_key;
}

const char* error_type_for(int64_t status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

asio::awaitable<bool> error(beast::tcp_stream& stream, bool keep, int status, std::string_view type,
                            std::string_view message, std::string retry_after = {}) {
  co_return co_await respond(stream, keep, status, frugal::mock::anthropic_mock_error(type, message),
                             std::move(retry_after));
}

// The header checks every Messages API endpoint makes: status and error body, or nullopt.
std::optional<std::pair<int, std::string>> check_headers(const Request& req) {
  if (!required_key().empty() && req["x-api-key"] != required_key())
    return std::make_pair(401, frugal::mock::anthropic_mock_error("authentication_error", "invalid x-api-key"));
  if (req["anthropic-version"].empty())
    return std::make_pair(400, frugal::mock::anthropic_mock_error("invalid_request_error",
                                                                  "anthropic-version: header is required"));
  return std::nullopt;
}

std::string text_of_blocks(simdjson::dom::element content) {
  std::string_view sv;
  if (!content.get_string().get(sv)) return std::string(sv);
  std::string out;
  if (content.is_array())
    for (auto b : simdjson::dom::array(content))
      if (!b["text"].get_string().get(sv)) out += sv;
  return out;
}

struct Pacing {
  int64_t ttft_ms = 0, chunk_delay_ms = 0, cut_after = -1, status = 0, fail_times = -1;
  bool hang = false;
  std::string key, retry_after;
};

// The default answer for `root` (see the file comment), then the script applied.
AnthropicScript make_script(simdjson::dom::element root, Pacing& pacing) {
  AnthropicScript s;
  s.text = "Hello from the mock Anthropic upstream.";
  s.input_tokens = 25;
  s.output_tokens = 9;
  s.chunk_size = 8;
  simdjson::dom::array msgs, tools;
  simdjson::dom::element last;
  std::string results;
  bool last_has_results = false;
  if (!root["messages"].get_array().get(msgs) && msgs.size() > 0 && !msgs.at(msgs.size() - 1).get(last)) {
    simdjson::dom::array blocks;
    if (!last["content"].get_array().get(blocks))
      for (auto b : blocks) {
        std::string_view type;
        if (b["type"].get_string().get(type) || type != "tool_result") continue;
        last_has_results = true;
        simdjson::dom::element c;
        if (!b["content"].get(c)) results += text_of_blocks(c);
      }
  }
  std::string_view sv;
  if (last_has_results) {
    s.text = "Tool result received: " + results;
  } else if (!root["tools"].get_array().get(tools) && tools.size() > 0 &&
             !tools.at(0)["name"].get_string().get(sv)) {
    s.tool_call = AnthropicScript::ToolCall{};
    s.tool_call->name = std::string(sv);
    s.tool_call->input_json = R"({"city":"Paris","unit":"celsius"})";
    s.text = "Calling " + std::string(sv) + ".";
    std::string_view type, forced;
    if (!root["tool_choice"]["type"].get_string().get(type) && type == "tool" &&
        !root["tool_choice"]["name"].get_string().get(forced)) {
      // A forced tool: the real API answers with that tool_use alone.
      s.tool_call->name = std::string(forced);
      s.text.clear();
    }
  }

  simdjson::dom::parser parser;
  simdjson::dom::element m;
  if (parser.parse(script_json(root)).get(m) || !m.is_object()) return s;
  int64_t v;
  if (!m["text"].get_string().get(sv)) s.text = sv;
  if (!m["thinking"].get_string().get(sv)) s.thinking = sv;
  simdjson::dom::element input;
  if (!m["tool_input"].get(input) && s.tool_call) s.tool_call->input_json = simdjson::minify(input);
  if (!m["chunk_size"].get_int64().get(v)) s.chunk_size = static_cast<size_t>(std::max<int64_t>(1, v));
  if (!m["input_tokens"].get_int64().get(v)) s.input_tokens = v;
  if (!m["output_tokens"].get_int64().get(v)) s.output_tokens = v;
  if (!m["cache_read_input_tokens"].get_int64().get(v)) s.cache_read_input_tokens = v;
  if (!m["cache_write_5m_tokens"].get_int64().get(v)) s.cache_write_5m_tokens = v;
  if (!m["cache_write_1h_tokens"].get_int64().get(v)) s.cache_write_1h_tokens = v;
  if (!m["stop_reason"].get_string().get(sv)) s.stop_reason = sv;
  if (!m["fail_after_events"].get_int64().get(v)) s.fail_after_events = static_cast<size_t>(v);
  if (!m["error_type"].get_string().get(sv)) s.error_type = sv;
  if (!m["ttft_ms"].get_int64().get(v)) pacing.ttft_ms = v;
  if (!m["chunk_delay_ms"].get_int64().get(v)) pacing.chunk_delay_ms = v;
  if (!m["cut_after"].get_int64().get(v)) pacing.cut_after = v;
  if (!m["status"].get_int64().get(v)) pacing.status = v;
  if (!m["fail_times"].get_int64().get(v)) pacing.fail_times = v;
  bool b;
  if (!m["hang"].get_bool().get(b)) pacing.hang = b;
  if (!m["key"].get_string().get(sv)) pacing.key = sv;
  if (!m["retry_after"].get_string().get(sv)) pacing.retry_after = sv;
  return s;
}

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// Words in every "text" string and string `content`/`system` below `e`.
int64_t count_text_words(simdjson::dom::element e) {
  std::string_view sv;
  if (!e.get_string().get(sv)) return count_words(sv);
  int64_t n = 0;
  if (e.is_array()) {
    for (auto item : simdjson::dom::array(e)) n += count_text_words(item);
  } else if (e.is_object()) {
    for (auto f : simdjson::dom::object(e))
      if (f.key == "text" || f.key == "content" || f.value.is_array() || f.value.is_object())
        n += count_text_words(f.value);
  }
  return n;
}

}  // namespace

asio::awaitable<bool> serve_messages(beast::tcp_stream& stream, Request& req) {
  g_stats.messages++;
  record_request(req);
  const bool keep = req.keep_alive();
  if (auto bad = check_headers(req)) co_return co_await respond(stream, keep, bad->first, bad->second);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(req.body()).get(root))
    co_return co_await error(stream, keep, 400, "invalid_request_error", "There was an error parsing the body.");
  auto info = frugal::parse_anthropic_request(root);
  if (!info) co_return co_await error(stream, keep, 400, "invalid_request_error", info.error().message);
  if (info->model.rfind("no-such-", 0) == 0)
    co_return co_await error(stream, keep, 404, "not_found_error", "model: " + info->model);

  Pacing pacing;
  const AnthropicScript s = make_script(root, pacing);
  if (pacing.hang) {
    char c;
    co_await stream.socket().async_read_some(asio::buffer(&c, 1), kTuple);
    record_abort();
    co_return false;
  }
  co_await sleep_ms(pacing.ttft_ms);
  if (pacing.status >= 400 && should_fail(pacing.key, pacing.fail_times))
    co_return co_await error(stream, keep, static_cast<int>(pacing.status), error_type_for(pacing.status),
                             "mock upstream error " + std::to_string(pacing.status), pacing.retry_after);
  if (!info->stream) co_return co_await respond(stream, keep, 200, frugal::mock::anthropic_mock_message(*info, s));

  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                     "request-id: req_mock_01\r\nTransfer-Encoding: chunked\r\n";
  head += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!co_await write_raw(stream, head)) co_return false;
  CloseWatch watch(stream.socket());
  const std::vector<std::string> events = frugal::mock::anthropic_mock_events(*info, s);
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) co_await sleep_ms(pacing.chunk_delay_ms);
    if (watch.closed()) co_return false;
    if (pacing.cut_after >= 0 && static_cast<int64_t>(i) == pacing.cut_after) {
      co_await write_raw(stream, frame(events[i].substr(0, events[i].size() / 2)));
      co_return false;
    }
    if (!co_await write_raw(stream, frame(events[i]))) co_return false;
  }
  if (!co_await write_raw(stream, "0\r\n\r\n")) co_return false;
  co_return keep;
}

asio::awaitable<bool> serve_count_tokens(beast::tcp_stream& stream, Request& req) {
  record_request(req);
  const bool keep = req.keep_alive();
  if (auto bad = check_headers(req)) co_return co_await respond(stream, keep, bad->first, bad->second);
  simdjson::dom::parser parser;
  simdjson::dom::element root, v;
  if (parser.parse(req.body()).get(root) || !root.is_object())
    co_return co_await error(stream, keep, 400, "invalid_request_error", "There was an error parsing the body.");
  std::string_view model;
  if (root["model"].get_string().get(model))
    co_return co_await error(stream, keep, 400, "invalid_request_error", "model: Field required");
  if (root["messages"].get(v) || !v.is_array())
    co_return co_await error(stream, keep, 400, "invalid_request_error", "messages: Field required");
  if (model.rfind("no-such-", 0) == 0)
    co_return co_await error(stream, keep, 404, "not_found_error", "model: " + std::string(model));
  int64_t n = count_text_words(v);
  if (!root["system"].get(v)) n += count_text_words(v);
  co_return co_await respond(stream, keep, 200, R"({"input_tokens":)" + std::to_string(n) + "}");
}

}  // namespace mock
