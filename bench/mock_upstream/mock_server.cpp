#include "bench/mock_upstream/mock_server.h"

#include <cstdio>
#include <string_view>

namespace mock {

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out;
}

int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

void record_abort() {
  g_stats.last_abort_us = mono_us();
  g_stats.aborted++;
}

void record_request(const Request& req) {
  std::string headers = "{";
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (headers.size() > 1) headers += ',';
    headers += "\"" + escape(name) + "\":\"" + escape(f.value()) + "\"";
  }
  headers += "}";
  std::lock_guard lock(g_stats.mu);
  g_stats.last_request = req.body();
  g_stats.last_request_headers = std::move(headers);
}

bool should_fail(const std::string& key, int64_t fail_times) {
  if (fail_times < 0) return true;
  std::lock_guard lock(g_stats.mu);
  return g_stats.fail_counts[key]++ < fail_times;
}

std::string frame(const std::string& payload) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%zx\r\n", payload.size());
  return buf + payload + "\r\n";
}

asio::awaitable<void> sleep_ms(int64_t ms) {
  if (ms <= 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(kTuple);
}

asio::awaitable<bool> write_raw(beast::tcp_stream& stream, const std::string& s) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(s), kTuple);
  co_return !ec;
}

asio::awaitable<bool> respond(beast::tcp_stream& stream, bool keep, int status, std::string body,
                              std::string retry_after) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  if (!retry_after.empty()) res.set(http::field::retry_after, retry_after);
  res.keep_alive(keep);
  res.body() = std::move(body);
  res.prepare_payload();
  auto [ec, n] = co_await http::async_write(stream, res, kTuple);
  co_return !ec && keep;
}

CloseWatch::CloseWatch(tcp::socket& s) {
  const int fd = s.native_handle();
  s.async_wait(tcp::socket::wait_read, [a = active, fd](const boost::system::error_code& ec) {
    if (ec || !*a) return;
    char c;
    if (::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
      *a = false;
      record_abort();
    }
  });
}

namespace {

// The JSON object text after `mock:` at the start of `text`, or nullopt.
std::optional<std::string> directive(std::string_view text) {
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text.substr(start, 5) != "mock:") return std::nullopt;
  size_t i = text.find('{', start + 5);
  if (i == std::string_view::npos) return std::nullopt;
  const size_t begin = i;
  int depth = 0;
  bool in_string = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return std::string(text.substr(begin, i - begin + 1));
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_directive(simdjson::dom::element e) {
  std::string_view s;
  if (!e.get_string().get(s)) return directive(s);
  if (e.is_array()) {
    for (auto item : simdjson::dom::array(e))
      if (auto d = find_directive(item)) return d;
  } else if (e.is_object()) {
    for (auto field : simdjson::dom::object(e))
      if (auto d = find_directive(field.value)) return d;
  }
  return std::nullopt;
}

}  // namespace

std::string script_json(simdjson::dom::element root) {
  std::optional<std::string> text;
  simdjson::dom::element v;
  for (const char* where : {"system", "messages"})
    if (!text && !root[where].get(v)) text = find_directive(v);
  simdjson::dom::object body_mock;
  const bool has_body_mock = !root["mock"].get_object().get(body_mock);
  simdjson::dom::parser parser;
  simdjson::dom::object from_text;
  const bool has_text = text && !parser.parse(*text).get_object().get(from_text);
  std::string out = "{";
  auto add = [&](std::string_view key, simdjson::dom::element value) {
    if (out.size() > 1) out += ',';
    out += "\"" + escape(key) + "\":" + simdjson::minify(value);
  };
  if (has_text) {
    for (auto f : from_text) {
      simdjson::dom::element shadow;
      if (!has_body_mock || body_mock[f.key].get(shadow)) add(f.key, f.value);
    }
  }
  if (has_body_mock)
    for (auto f : body_mock) add(f.key, f.value);
  return out + "}";
}

}  // namespace mock
