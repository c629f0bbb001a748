#include "cache/request_digest.h"

#include <doctest/doctest.h>

#include <string>

#include "cache/cache_key.h"
#include "cache/prefix.h"
#include "test_util.h"

using namespace frugal;
using namespace frugal::cache;
using frugal::cache::test::parse_request;

namespace {

const char* kConversation =
    R"({"model":"m","messages":[{"role":"system","content":"S"},)"
    R"({"role":"user","content":[{"type":"text","text":"look"},{"type":"input_audio","input_audio":{"format":"wav","data":"AAA="}}]},)"
    R"({"role":"assistant","content":"a1"},{"role":"user","content":"q2"}],)"
    R"("tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"b":1,"a":2}}}],)"
    R"("temperature":0,"x_vendor_knob":{"z":1,"y":[2,3]}})";

}  // namespace

TEST_CASE("keys made from a request digest are the keys of before the digest (pinned)") {
  // Computed by the code before the digest existed (cache_key.cpp canonicalising the
  // messages itself): an existing cache stays valid.
  const ChatRequest req = parse_request(kConversation);
  const RequestDigest d = digest_request(req);
  const KeyScope scope{"route", "openai/gpt-4o-mini", "tenant", false};
  const KeyScope shared{"route", "openai/gpt-4o-mini", "", true};
  CHECK(make_cache_key(d, req, scope).to_hex() == "be6ce28b6a55e0329ba0a82eeb4eaa25");
  CHECK(make_cache_key(d, req, shared).to_hex() == "3971b2b24da000c560299e7669e14ea4");
  CHECK(make_cache_key(req, scope) == make_cache_key(d, req, scope));
  // The key material embeds the digest's bytes as they are.
  const std::string material = cache_key_material(req, scope);
  CHECK(material.find(d.message_bytes()) != std::string::npos);
  CHECK(material.find(d.tool_bytes()) != std::string::npos);
}

TEST_CASE("the digest hashes each message and the tools canonically, once") {
  const RequestDigest a = digest_request(parse_request(kConversation));
  REQUIRE(a.message_count() == 4);
  CHECK(a.stable_messages() == 3);
  CHECK(a.message_bytes().front() == 'm');
  CHECK(a.tool_bytes().front() == 'f');
  // Same messages and tools up to JSON key order and whitespace: same hashes.
  const RequestDigest b = digest_request(parse_request(
      R"({"messages":[{"content":"S","role":"system"},)"
      R"({"role":"user","content":[{"text":"look","type":"text"},{"input_audio":{"data":"AAA=","format":"wav"},"type":"input_audio"}]},)"
      R"({"role":"assistant","content":"a1"},{"role":"user","content":"another question"}],)"
      R"("tools":[{"type":"function","function":{"parameters":{"a":2,"b":1},"name":"f","description":"d"}}],"model":"other"})"));
  for (size_t i = 0; i < 3; ++i) CHECK(a.message_hash(i) == b.message_hash(i));
  CHECK(a.message_hash(3) != b.message_hash(3));
  CHECK(a.tools_hash() == b.tools_hash());
  // A message hash covers its content, not its position (the chain orders messages).
  CHECK(a.message_hash(0) != a.message_hash(2));
  const RequestDigest none = digest_request(
      parse_request(R"({"model":"m","messages":[{"role":"system","content":"S"}]})"));
  CHECK(none.stable_messages() == 1);  // no user message: everything is stable
  CHECK(none.tools_hash() != a.tools_hash());
}

TEST_CASE("the prefix chain from a digest is the chain of its request") {
  const ChatRequest req = parse_request(kConversation);
  const RequestDigest d = digest_request(req);
  const PrefixChain from_digest = prefix_chain(d, "model");
  const PrefixChain from_request = prefix_chain(req, "model");
  CHECK(from_digest.links == from_request.links);
  CHECK(from_digest.stable_messages == 3);
  REQUIRE(from_digest.links.size() == 5);
  CHECK(prefix_hash(d, "model") == from_digest.stable());
  CHECK(prefix_hash(d, "model") == prefix_hash(req, "model"));
  CHECK(prefix_hash(d, "model") != prefix_hash(d, "other-model"));
}
