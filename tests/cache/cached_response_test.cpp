#include "cache/cached_response.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace frugal;
using namespace frugal::cache;

namespace {

CachedResponse sample_entry() {
  CachedResponse e;
  e.completion_json = R"({"id":"x","choices":[]})";
  e.chunks = {R"({"a":1})", R"({"b":"ü"})"};
  e.model = "gpt-4o-mini";
  e.usage.input_tokens = 12;
  e.usage.cached_input_tokens = 3;
  e.usage.cache_write_5m_tokens = 4;
  e.usage.cache_write_1h_tokens = 5;
  e.usage.output_tokens = 6;
  e.usage.reasoning_tokens = 2;
  e.usage.reported = true;
  e.created_s = 1700000000;
  e.stored_at_ms = 1700000000123;
  e.expires_at_ms = 1700000600123;
  e.route = "support";
  e.tenant = "t1";
  return e;
}

}  // namespace

TEST_CASE("entries round-trip through encode/decode") {
  const CachedResponse e = sample_entry();
  auto d = decode_entry(encode_entry(e));
  REQUIRE(d.ok());
  CHECK(*d == e);
  CHECK(*peek_expiry(encode_entry(e)) == e.expires_at_ms);
  CachedResponse empty;
  CHECK(*decode_entry(encode_entry(empty)) == empty);
}

TEST_CASE("a corrupted or torn entry never decodes to a wrong value") {
  const std::string bytes = encode_entry(sample_entry());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned mask : {0x01u, 0x10u, 0x80u, 0xffu}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      INFO("byte " << i << " mask " << mask);
      CHECK_FALSE(decode_entry(bad).ok());
      CHECK_FALSE(peek_expiry(bad).ok());
    }
  }
  for (size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decode_entry(bytes.substr(0, n)).ok());
  CHECK_FALSE(decode_entry(bytes + "x").ok());
}
