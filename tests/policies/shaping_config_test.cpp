// A route's output shaping options as the policy loader reads and checks them.
#include <doctest/doctest.h>

#include "test_util.h"

using namespace frugal;

namespace {

std::string policy(const std::string& route_options) {
  return "request_types:\n  - name: chat\nroutes:\n  chat:\n" + route_options +
         "    cascade:\n      - model: gpt-4o-mini\n";
}

std::string error_of(const std::string& route_options) {
  auto c = config::load_policy_text(policy(route_options), "p.yaml");
  REQUIRE_FALSE(c.ok());
  return c.error().message;
}

}  // namespace

TEST_CASE("output shaping options load into the route and its plan") {
  auto c = config::load_policy_text(policy("    max_tokens: 64\n    max_tokens_cap: 256\n    stop: [\"END\", \"Q:\"]\n"
                                           "    concise: true\n    reasoning_effort: low\n"),
                                    "p.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  const config::OutputShapingSpec& s = c->routes.at(0).shaping;
  CHECK(s.max_tokens == 64);
  CHECK(s.max_tokens_cap == 256);
  CHECK(s.stop == std::vector<std::string>{"END", "Q:"});
  CHECK(s.concise == config::kDefaultConciseInstruction);
  CHECK(s.reasoning_effort == "low");
  CHECK(s.any());
  auto p = policies::compile_policy(*c);
  REQUIRE(p.ok());
  CHECK((*p)->route("chat")->shaping.max_tokens == 64);

  auto text = config::load_policy_text(policy("    stop: END\n    concise: \"One word.\"\n"), "p.yaml");
  REQUIRE(text.ok());
  CHECK(text->routes.at(0).shaping.stop == std::vector<std::string>{"END"});
  CHECK(text->routes.at(0).shaping.concise == "One word.");
  auto off = config::load_policy_text(policy("    concise: false\n"), "p.yaml");
  REQUIRE(off.ok());
  CHECK_FALSE(off->routes.at(0).shaping.any());
  auto none = config::load_policy_text(policy(""), "p.yaml");
  REQUIRE(none.ok());
  CHECK_FALSE(none->routes.at(0).shaping.any());
}

TEST_CASE("bad output shaping options are refused with the file, line and key") {
  CHECK(error_of("    max_tokens: 0\n").find("p.yaml:5:17: key 'routes.chat.max_tokens': expected an integer in [1, ") !=
        std::string::npos);
  CHECK(error_of("    max_tokens: lots\n").find("expected an integer") != std::string::npos);
  CHECK(error_of("    max_tokens: 300\n    max_tokens_cap: 200\n").find("is greater than max_tokens_cap") !=
        std::string::npos);
  CHECK(error_of("    stop: [a, b, c, d, e]\n").find("at most 4 stop sequences") != std::string::npos);
  CHECK(error_of("    stop: [\"\"]\n").find("non-empty stop sequences") != std::string::npos);
  CHECK(error_of("    concise: \"\"\n").find("expected true, false or the instruction text") != std::string::npos);
  CHECK(error_of("    reasoning_effort: extreme\n")
            .find("key 'routes.chat.reasoning_effort': expected none, minimal, low, medium, high or xhigh, got "
                  "'extreme'") != std::string::npos);
  CHECK(error_of("    max_token: 5\n").find("unknown key") != std::string::npos);
}
