#include "cache/prefix.h"

#include <doctest/doctest.h>

#include "test_util.h"

using namespace frugal;
using namespace frugal::cache;
using frugal::cache::test::parse_request;

namespace {
const char* kTools = R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","b":1,"a":2}}}])";

ChatRequest req(std::string_view messages, std::string_view tools = kTools) {
  std::string body = R"({"model":"m","messages":[)" + std::string(messages) + "]";
  if (!tools.empty()) body += "," + std::string(tools);
  return parse_request(body + "}");
}
}  // namespace

TEST_CASE("the chain has one link per message plus the tools link, stable ends before the last user message") {
  auto c = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"})"));
  CHECK(c.links.size() == 5);
  CHECK(c.stable_messages == 3);
  CHECK(c.stable() == c.links[3]);
  auto no_user = prefix_chain(req(R"({"role":"system","content":"S"})"));
  CHECK(no_user.stable_messages == 1);
}

TEST_CASE("a later turn of the same conversation extends the earlier chain") {
  auto turn1 = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"q1"})"));
  auto turn2 = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"})"));
  for (size_t i = 0; i < turn1.links.size(); ++i) CHECK(turn1.links[i] == turn2.links[i]);
  CHECK(turn1.stable() == turn2.links[1]);  // the system prompt
}

TEST_CASE("prefix hashes separate tools, messages and scope, and ignore JSON key order") {
  const char* msgs = R"({"role":"system","content":"S"},{"role":"user","content":"q"})";
  const auto base = prefix_hash(req(msgs));
  CHECK(base == prefix_hash(req(msgs, R"("tools":[{"function":{"parameters":{"a":2,"type":"object","b":1},"name":"f"},"type":"function"}])")));
  CHECK(base != prefix_hash(req(msgs, "")));
  CHECK(base != prefix_hash(req(R"({"role":"system","content":"T"},{"role":"user","content":"q"})")));
  CHECK(base == prefix_hash(req(R"({"role":"system","content":"S"},{"role":"user","content":"other question"})")));
  CHECK(base != prefix_hash(req(msgs), "another-model"));
}

TEST_CASE("PrefixIndex finds the longest recorded prefix and forgets the least recent") {
  PrefixIndex index(6);
  auto turn2 = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"})"));
  CHECK_FALSE(index.longest_known(turn2).found);
  index.record(turn2);  // links 0..3
  CHECK(index.size() == 4);

  auto turn3 = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},{"role":"user","content":"q2"},{"role":"assistant","content":"a2"},{"role":"user","content":"q3"})"));
  auto m = index.longest_known(turn3);
  CHECK(m.found);
  CHECK(m.messages == 3);
  CHECK(m.hash == turn2.links[3]);

  auto other = prefix_chain(req(R"({"role":"system","content":"S"},{"role":"user","content":"different"})"));
  CHECK(index.longest_known(other).messages == 1);  // shares tools + system

  auto unrelated = prefix_chain(req(R"({"role":"system","content":"X"},{"role":"user","content":"1"},{"role":"assistant","content":"2"},{"role":"user","content":"3"})"), "u");
  index.record(unrelated, 3);  // 4 more links: the 2 least recent of turn2 go (links 0 and 1)
  CHECK(index.size() == 6);
  CHECK(index.longest_known(turn3).messages == 3);  // deep links were touched last
  CHECK_FALSE(index.longest_known(other).found);
}
