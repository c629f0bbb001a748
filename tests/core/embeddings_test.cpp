// tests core/embeddings.cpp: the /v1/embeddings body as OpenAI validates it.
#include "core/embeddings.h"

#include <doctest/doctest.h>

using namespace frugal;

namespace {

Result<ChatRequest> parse(std::string_view body) {
  static simdjson::dom::parser parser;  // each result is read before the next parse
  return parse_embeddings_body(parser, body);
}

TEST_CASE("embeddings body: every input shape OpenAI accepts") {
  auto one = parse(R"({"model":"m","input":"hello","user":"u","encoding_format":"base64","dimensions":16})");
  REQUIRE(one.ok());
  REQUIRE(one->embeddings);
  CHECK(one->model == "m");
  CHECK(one->user == "u");
  CHECK(one->messages.empty());
  CHECK(one->embeddings->texts == std::vector<std::string>{"hello"});
  CHECK(one->embeddings->base64);
  CHECK(one->embeddings->dimensions == 16);
  CHECK(one->embeddings->count() == 1);

  auto many = parse(R"({"model":"m","input":["a","b","c"],"encoding_format":"float"})");
  REQUIRE(many.ok());
  CHECK(many->embeddings->texts.size() == 3);
  CHECK_FALSE(many->embeddings->base64);

  auto ids = parse(R"({"model":"m","input":[1,2,3]})");
  REQUIRE(ids.ok());
  CHECK(ids->embeddings->texts.empty());
  CHECK(ids->embeddings->token_ids == std::vector<std::vector<int64_t>>{{1, 2, 3}});

  auto nested = parse(R"({"model":"m","input":[[1,2],[3]]})");
  REQUIRE(nested.ok());
  CHECK(nested->embeddings->token_ids == std::vector<std::vector<int64_t>>{{1, 2}, {3}});
  CHECK(nested->embeddings->count() == 2);
}

TEST_CASE("embeddings body: what OpenAI rejects is a 400 naming the field") {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":null})", "input"},
      {R"({"model":"m","input":""})", "input"},
      {R"({"model":"m","input":[]})", "input"},
      {R"({"model":"m","input":["a",""]})", "input"},
      {R"({"model":"m","input":["a",1]})", "input"},
      {R"({"model":"m","input":[[1],[]]})", "input"},
      {R"({"model":"m","input":[1,-2]})", "input"},
      {R"({"model":"m","input":[1.5]})", "input"},
      {R"({"model":"m","input":{"a":1}})", "input"},
      {R"({"input":"a"})", "model"},
      {R"({"model":3,"input":"a"})", "model"},
      {R"({"model":"m","input":"a","encoding_format":"hex"})", "encoding_format"},
      {R"({"model":"m","input":"a","dimensions":0})", "dimensions"},
      {R"({"model":"m","input":"a","dimensions":"8"})", "dimensions"},
      {R"({"model":"m","input":"a","user":1})", "user"},
      {R"([1,2])", ""},
      {R"({"model":)", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto r = parse(c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kInvalidRequest);
    CHECK(r.error().param == c.param);
  }
  std::string big = R"({"model":"m","input":[)";
  for (size_t i = 0; i <= kMaxEmbeddingInputs; ++i) big += std::string(i ? "," : "") + "\"x\"";
  big += "]}";
  auto r = parse(big);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("at most 2048") != std::string::npos);
}

}  // namespace
