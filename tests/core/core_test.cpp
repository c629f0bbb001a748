#include <doctest/doctest.h>
#include <simdjson.h>

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/chat.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "core/money.h"
#include "core/sse.h"
#include "core/usage.h"

using namespace frugal;

TEST_CASE("SSE parser yields only complete events, whatever the split") {
  const std::string stream =
      "data: {\"a\":1}\n\n: comment\ndata: two\ndata: lines\n\nevent: ping\r\ndata: {}\r\n\r\ndata: [DONE]\n\n";
  for (size_t step = 1; step <= stream.size(); ++step) {
    CAPTURE(step);
    SseParser p;
    std::vector<std::string> data, names, raws;
    for (size_t i = 0; i < stream.size(); i += step)
      p.feed(std::string_view(stream).substr(i, step), [&](const SseEvent& ev) {
        data.emplace_back(ev.data);
        names.emplace_back(ev.event);
        raws.emplace_back(ev.raw);
      });
    REQUIRE(data.size() == 4);
    CHECK(data[0] == "{\"a\":1}");
    CHECK(data[1] == "two\nlines");
    CHECK(names[2] == "ping");
    CHECK(data[2] == "{}");
    CHECK(data[3] == "[DONE]");
    CHECK(raws[0] == "data: {\"a\":1}\n\n");
    CHECK(!p.has_partial());
  }
  SseParser p;
  int n = 0;
  p.feed("data: {\"cut", [&](const SseEvent&) { ++n; });
  CHECK(n == 0);
  CHECK(p.has_partial());
}

TEST_CASE("SSE parser stops at its event limit and keeps no more than that") {
  SseParser p(1024);
  std::vector<std::string> data;
  auto collect = [&](const SseEvent& ev) { data.emplace_back(ev.data); };
  p.feed("data: small\n\n", collect);
  REQUIRE(data.size() == 1);
  // An unterminated line past the limit.
  for (int i = 0; i < 4 && !p.overflowed(); ++i) p.feed("data: " + std::string(400, 'x'), collect);
  CHECK(p.overflowed());
  CHECK(p.has_partial());
  p.feed("\n\ndata: after\n\n", collect);
  CHECK(data.size() == 1);  // nothing after an overflow

  // A complete event over the limit, arriving at once, is not delivered either.
  SseParser q(1024);
  q.feed("data: " + std::string(2000, 'y') + "\n\ndata: next\n\n", collect);
  CHECK(q.overflowed());
  CHECK(data.size() == 1);

  // An event just under the limit passes.
  SseParser r(1024);
  r.feed("data: " + std::string(1000, 'z') + "\n\n", collect);
  CHECK(!r.overflowed());
  CHECK(data.size() == 2);
}

TEST_CASE("SSE parser scans a long line once, not once per piece") {
  // 16 MB in 1 KiB pieces: a rescan from the line's start on every piece would read
  // ~128 GB (minutes); a linear scan reads 16 MB.
  SseParser p(32u << 20);
  const std::string piece(1024, 'x');
  int events = 0;
  const auto t0 = std::chrono::steady_clock::now();
  p.feed("data: ", [&](const SseEvent&) { ++events; });
  for (int i = 0; i < 16 * 1024; ++i) p.feed(piece, [&](const SseEvent&) { ++events; });
  p.feed("\n\n", [&](const SseEvent& ev) {
    ++events;
    CHECK(ev.data.size() == (16u << 20));
  });
  CHECK(events == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("JSON writer escapes and nests") {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("s").value("a\"b\\c\n\x01").key("n").value(int64_t{-3}).key("arr").begin_array();
  w.value(true).null().value(1.5).end_array().key("o").begin_object().end_object().end_object();
  CHECK(out == R"({"s":"a\"b\\c\n\u0001","n":-3,"arr":[true,null,1.5],"o":{}})");
}

TEST_CASE("JSON writer: every double reads back through a strict parser, large ones included") {
  // Found by tests/fuzz/ledger_row: 1.888946593147858e20's shortest form is a 21-digit
  // integer literal, which simdjson refuses (it does not fit 64 bits).
  for (double v : {0.0, -0.433, 1.5, 3.0, 1e15, 188894659314785812480.0, -1e300, 2.5e-300}) {
    std::string out;
    JsonWriter(out).value(v);
    CAPTURE(out);
    simdjson::dom::parser p;
    double back = 0;
    REQUIRE(!p.parse(out).get_double().get(back));
    CHECK(back == v);
  }
}

// Length of the well-formed UTF-8 sequence at s[i], decoded the long way (code point,
// then the range its length allows), or 0.
size_t naive_utf8_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || c >= 0xF8 || i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 2) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

TEST_CASE("JSON escaping finds every special byte wherever it falls, and passes UTF-8 through") {
  // The escape scan works 16 bytes at a time: put each special byte at every offset of
  // a string that spans several blocks and a tail, and compare with a byte-wise escape.
  // Bytes that are not part of well-formed UTF-8 become U+FFFD, one each.
  const auto reference = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const size_t n = naive_utf8_length(s, i);
        if (n == 0) {
          out += "\xEF\xBF\xBD";
        } else {
          out += s.substr(i, n);
          i += n - 1;
        }
        continue;
      }
      if (c == '"') out += "\\\"";
      else if (c == '\\') out += "\\\\";
      else if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else if (c == '\t') out += "\\t";
      else if (c == '\b') out += "\\b";
      else if (c == '\f') out += "\\f";
      else if (c < 0x20) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      } else out += static_cast<char>(c);
    }
    return out;
  };
  const std::string base = "h\xc3\xa9llo w\xe2\x82\xacrld, plain text that is long enough";  // 46 bytes: two blocks and a tail
  for (const char special : {'"', '\\', '\n', '\x01', '\x1f', '\x7f', ' ', '\x80', '\xff'}) {
    for (size_t at = 0; at < base.size(); ++at) {
      std::string s = base;
      s[at] = special;
      CAPTURE(static_cast<int>(static_cast<unsigned char>(special)));
      CAPTURE(at);
      std::string out;
      json_escape_to(out, s);
      CHECK(out == reference(s));
      // Through the writer too: short strings take its single-append path.
      std::string doc;
      JsonWriter w(doc);
      w.begin_object().key(s.substr(0, at + 1)).value(s.substr(at)).end_object();
      CHECK(doc == "{\"" + reference(s.substr(0, at + 1)) + "\":\"" + reference(s.substr(at)) + "\"}");
    }
  }
  std::string long_value(300, 'x');
  long_value[257] = '"';
  // Ill-formed sequences of every kind, and well-formed ones of every length, at the
  // edges of the 16-byte blocks.
  for (const std::string_view seq :
       {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\xC0\xAF", "\xC1\xBF",
        "\xE0\x80\xAF", "\xED\xA0\x80", "\xF0\x80\x80\xAF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
        "\xE2\x82", "\xF0\x9F\x98", "\x80\x80", "\xFE\xFF"}) {
    for (size_t at = 10; at < 20; ++at) {
      std::string s(32, 'a');
      s.replace(at, seq.size(), seq);
      CAPTURE(at);
      std::string out;
      json_escape_to(out, s);
      CHECK(out == reference(s));
    }
  }
  // A default string_view (null data, as a missing optional field reads) is "": found
  // by tests/fuzz/openai_body under UBSan (memcpy from null).
  std::string empty_doc;
  JsonWriter(empty_doc).begin_object().key(std::string_view{}).value(std::string_view{}).end_object();
  CHECK(empty_doc == R"({"":""})");
  CHECK(json_quote("id-\xFF\xC3") == "\"id-\xEF\xBF\xBD\xEF\xBF\xBD\"");
  CHECK(json_quote("\xF0\x9F\x98\x80") == "\"\xF0\x9F\x98\x80\"");
  simdjson::dom::parser parser;
  simdjson::dom::element parsed;
  CHECK_FALSE(parser.parse(json_quote("\xED\xA0\x80 and \xC0\x80")).get(parsed));  // valid JSON text
  std::string doc;
  JsonWriter(doc).begin_array().value(long_value).value("a").end_array();
  CHECK(doc == "[\"" + reference(long_value) + "\",\"a\"]");
}

TEST_CASE("JSON escaping of a string's last bytes ignores what follows it and never reads past it") {
  // The escaper checks a string's last < 16 bytes in one 16-byte block: strings that end
  // at the very end of a page followed by an unmapped one, and strings followed by bytes
  // that would need escaping, of every length around the block size.
  const long page = sysconf(_SC_PAGESIZE);
  auto* map = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(map != MAP_FAILED);
  REQUIRE(mprotect(map + page, page, PROT_NONE) == 0);
  std::memset(map, '"', page);
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t quote_at = 0; quote_at <= n; ++quote_at) {  // quote_at == n: no quote
      std::string expected;
      for (size_t i = 0; i < n; ++i) expected += i == quote_at ? "\\\"" : "a";
      for (char* at : {map + page - n, map + page - n - 17}) {  // at the page's end; then followed by '"'s
        std::memset(at, 'a', n);
        if (quote_at < n) at[quote_at] = '"';
        CAPTURE(n);
        CAPTURE(quote_at);
        std::string out;
        json_escape_to(out, std::string_view(at, n));
        CHECK(out == expected);
        std::memset(at, '"', n);
      }
    }
  }
  munmap(map, 2 * page);
}

TEST_CASE("money is exact integer picodollars") {
  // tokens × micro-dollars per 1M = picodollars, never rounded.
  CHECK(price_tokens(1, 2'500'000).picos() == 2'500'000);  // 2.5 µ$ (was booked as 3)
  CHECK(price_tokens(1'000'000, 2'500'000) == Money::from_micros(2'500'000));
  CHECK(price_tokens(3, 1'250'000).picos() == 3'750'000);  // 3.75 µ$ (was 4)
  // The issue's example: 12 input + 6 output tokens at $0.15 / $0.60 per 1M.
  const Money cheap = price_tokens(12, 150'000) + price_tokens(6, 600'000);
  CHECK(cheap.picos() == 5'400'000);
  CHECK(cheap.to_usd_string() == "0.0000054");
  CHECK(cheap.micros_rounded() == 5);
  Money thousand;
  for (int i = 0; i < 1000; ++i) thousand += cheap;
  CHECK(thousand.to_usd_string() == "0.005400");
  CHECK(price_tokens(int64_t{1} << 40, 75'000'000) == Money::from_micros(82'463'372'083'200));  // no overflow
  CHECK(price_tokens(std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()).picos() ==
        static_cast<int128_t>(std::numeric_limits<int64_t>::max()) * std::numeric_limits<int64_t>::max());
}

TEST_CASE("money prints the exact decimal with at least six decimals") {
  CHECK(Money::from_micros(1'234'567).to_usd_string() == "1.234567");
  CHECK(Money::from_micros(1'234).to_usd_string() == "0.001234");
  CHECK(Money::from_micros(-5).to_usd_string() == "-0.000005");
  CHECK(Money{}.to_usd_string() == "0.000000");
  CHECK(Money::from_micros(12'000'000).to_usd_string() == "12.000000");
  CHECK(Money::from_picos(1).to_usd_string() == "0.000000000001");
  CHECK(Money::from_picos(-10).to_usd_string() == "-0.00000000001");
  CHECK(Money::from_picos(1'500'000).to_usd_string() == "0.0000015");
  CHECK(Money::from_picos(-1'500'000).to_usd_string() == "-0.0000015");
  CHECK(Money::from_micros(std::numeric_limits<int64_t>::min()).to_usd_string() == "-9223372036854.775808");
  CHECK(Money::from_micros(std::numeric_limits<int64_t>::max()).to_usd_string() == "9223372036854.775807");
  const Money most = Money::from_picos(std::numeric_limits<int128_t>::max());
  const Money least = Money::from_picos(std::numeric_limits<int128_t>::min());
  CHECK(most.picos_string() == "170141183460469231731687303715884105727");
  CHECK(least.picos_string() == "-170141183460469231731687303715884105728");
  CHECK(most.to_usd_string() == "170141183460469231731687303.715884105727");
  CHECK(least.to_usd_string() == "-170141183460469231731687303.715884105728");
  CHECK(Money::from_picos(5'400'000).picos_string() == "5400000");
  CHECK(Money{}.picos_string() == "0");
  // Rounded micros (legacy JSON fields): half away from zero.
  CHECK(Money::from_picos(1'500'000).micros_rounded() == 2);
  CHECK(Money::from_picos(-1'500'000).micros_rounded() == -2);
  CHECK(Money::from_picos(1'499'999).micros_rounded() == 1);
}

TEST_CASE("money parses back what it prints, exactly, and nothing else") {
  for (const Money m : {Money{}, Money::from_picos(1), Money::from_picos(-1), Money::from_picos(5'400'000),
                        Money::from_micros(-1'000'001), Money::from_picos(std::numeric_limits<int128_t>::max()),
                        Money::from_picos(std::numeric_limits<int128_t>::min())}) {
    CHECK(parse_usd(m.to_usd_string()) == m);
    CHECK(parse_picos(m.picos_string()) == m);
  }
  CHECK(parse_usd("2.5") == Money::from_micros(2'500'000));
  CHECK(parse_usd("7") == Money::from_micros(7'000'000));
  for (const char* bad : {"", "-", ".5", "5.", "1.0000000000001", "1e3", " 1", "1,5", "0x1", "--1",
                          "170141183460469231731687303.715884105728", "999999999999999999999999999999"})
    CHECK_MESSAGE(!parse_usd(bad), bad);
  for (const char* bad : {"", "-", "1.5", "170141183460469231731687303715884105728", "12a"})
    CHECK_MESSAGE(!parse_picos(bad), bad);
  CHECK(parse_picos("-170141183460469231731687303715884105728").has_value());
}

TEST_CASE("chat request parsing validates types and keeps everything") {
  simdjson::dom::parser p;
  auto r = parse_chat_body(p, R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:x","detail":"low"}}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"42"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
    "stream":true,"stream_options":{"include_usage":true},"temperature":0,"max_completion_tokens":5,
    "stop":["a","b"],"seed":7,"response_format":{"type":"json_object"},"unknown":1})");
  REQUIRE(r.ok());
  CHECK(r->model == "m");
  REQUIRE(r->messages.size() == 4);
  CHECK(r->messages[0].content_is_string);
  CHECK(r->messages[1].parts.size() == 2);
  CHECK(r->messages[1].parts[1].kind == ContentPart::Kind::kImage);
  CHECK(r->messages[1].parts[1].detail == "low");
  CHECK(r->messages[2].tool_calls.at(0).name == "f");
  CHECK(r->messages[3].tool_call_id == "c1");
  CHECK(r->tools.at(0).parameters_json == R"({"type":"object"})");
  CHECK(r->stream);
  CHECK(r->include_usage);
  CHECK(*r->sampling.temperature == 0.0);
  CHECK(*r->sampling.max_tokens == 5);
  CHECK(r->sampling.stop == std::vector<std::string>{"a", "b"});
  CHECK(*r->sampling.seed == 7);
  CHECK(r->response_format_json == R"({"type":"json_object"})");

  struct Bad { const char* body; const char* param; };
  const Bad bad[] = {
      {R"({"messages":[]})", "model"},
      {R"({"model":"m"})", "messages"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})", "messages[0].tool_call_id"},
      {R"({"model":"m","messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "max_tokens"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{}]})", "tools[0].function"},
      // Nested paths, and the first occurrence of a repeated key is the one read.
      {R"({"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":[{"type":"text"}]}]})",
       "messages[1].content[0].text"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":2}]}]})",
       "messages[0].content[1].text"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
       "messages[0].content[0].image_url.url"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{}}]}]})",
       "messages[0].tool_calls[0].function.name"},
      {R"({"model":"m","messages":[{"role":"user","role":"x","content":"x"}],"temperature":"hot","temperature":1})",
       "temperature"},
      {R"({"model":"m","messages":[{"role":5,"content":"x"}]})", "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":"f"}},{"function":{}}]})",
       "tools[1].function.name"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.body);
    auto e = parse_chat_body(p, b.body);
    REQUIRE(!e.ok());
    CHECK(e.error().param == b.param);
    CHECK(e.error().http_status() == 400);
  }
  CHECK(!parse_chat_body(p, "{").ok());
  CHECK(!parse_chat_body(p, "[]").ok());
}

TEST_CASE("OpenAI usage is read with its details") {
  simdjson::dom::parser p;
  auto u = usage_from_openai(p.parse(std::string_view(
      R"({"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":5}})")));
  CHECK(u.reported);
  CHECK(u.input_tokens == 100);
  CHECK(u.cached_input_tokens == 64);
  CHECK(u.output_tokens == 20);
  CHECK(u.reasoning_tokens == 5);
}

TEST_CASE("a completion body's top-level usage is read without parsing the rest") {
  const Usage u = usage_of_openai_body(
      R"({"id":"c1","choices":[{"message":{"content":"\"usage\": {}"},"usage":{"prompt_tokens":999}}],)"
      R"("usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,)"
      R"("prompt_tokens_details":{"audio_tokens":0,"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":5}}})");
  CHECK(u.reported);
  CHECK(u.input_tokens == 100);
  CHECK(u.cached_input_tokens == 64);
  CHECK(u.output_tokens == 20);
  CHECK(u.reasoning_tokens == 5);
  // The DOM reader (streams, tiers) and this one read the same fields.
  simdjson::dom::parser p;
  const Usage d = usage_from_openai(p.parse(std::string_view(
      R"({"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,)"
      R"("prompt_tokens_details":{"audio_tokens":0,"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":5}})")));
  CHECK(d.reported == u.reported);
  CHECK(d.input_tokens == u.input_tokens);
  CHECK(d.cached_input_tokens == u.cached_input_tokens);
  CHECK(d.output_tokens == u.output_tokens);
  CHECK(d.reasoning_tokens == u.reasoning_tokens);
  // Usage first; a value of the wrong type reads as zero.
  const Usage v = usage_of_openai_body(R"({"usage":{"completion_tokens":7,"prompt_tokens":"3"},"choices":[]})");
  CHECK(v.reported);
  CHECK(v.input_tokens == 0);
  CHECK(v.output_tokens == 7);
  CHECK(!usage_of_openai_body(R"({"choices":[]})").reported);
  CHECK(!usage_of_openai_body(R"({"usage":null})").reported);
  CHECK(!usage_of_openai_body("not json").reported);
  CHECK(!usage_of_openai_body("").reported);
  CHECK(!usage_of_openai_body(R"([{"usage":{"prompt_tokens":1}}])").reported);
}

TEST_CASE("the top-level scan finds members, escaped quotes and nesting included") {
  using namespace frugal::json_scan;
  const std::string_view s = R"( { "a" : "x\"y\\" , "b\"c":{"d":["}",{"e":"\\\""}]}, "n": -1.5e3,"t":true } )";
  std::vector<std::string> seen;
  const size_t close = for_each_member(s, 0, [&](std::string_view key, size_t b, size_t e) {
    seen.push_back(std::string(key) + "=" + std::string(s.substr(b, e - b)));
    return true;
  });
  REQUIRE(close != npos);
  CHECK(s[close] == '}');
  CHECK(close == s.size() - 2);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == R"(a="x\"y\\")");
  CHECK(seen[1] == R"(b\"c={"d":["}",{"e":"\\\""}]})");
  CHECK(seen[2] == "n=-1.5e3");
  CHECK(seen[3] == "t=true");

  CHECK(for_each_member("{}", 0, [](auto, auto, auto) { return true; }) == 1);
  CHECK(for_each_member(R"([{"a":1}])", 1, [](auto, auto, auto) { return true; }) == 7);  // nested, at an offset
  CHECK(for_each_member(R"({"a":1})", 0, [](auto, auto, auto) { return false; }) == npos);  // stopped
  for (std::string_view bad : {"", "[1]", R"({"a")", R"({"a":"x)", R"({"a":1,})", R"({"a":{"b":1})", R"({"a" 1})"})
    CHECK_MESSAGE(for_each_member(bad, 0, [](auto, auto, auto) { return true; }) == npos, bad);
}
