#include <doctest/doctest.h>

#include <string>

#include "policies/json_schema.h"

using frugal::policies::validate_json_text;

namespace {
bool valid(const char* schema, const char* inst) { return validate_json_text(schema, inst).valid; }
std::string err(const char* schema, const char* inst) { return validate_json_text(schema, inst).error; }
}  // namespace

TEST_CASE("type, including lists and integer-valued doubles") {
  CHECK(valid(R"({"type":"integer"})", "3"));
  CHECK(valid(R"({"type":"integer"})", "3.0"));
  CHECK(!valid(R"({"type":"integer"})", "3.5"));
  CHECK(valid(R"({"type":"number"})", "3"));
  CHECK(!valid(R"({"type":"string"})", "3"));
  CHECK(valid(R"({"type":["string","null"]})", "null"));
  CHECK(!valid(R"({"type":["string","null"]})", "false"));
  CHECK(err(R"({"type":["string","null"]})", "1") == "at /: expected string or null, got integer");
  CHECK(valid(R"({"type":"boolean"})", "true"));
  CHECK(valid(R"({"type":"array"})", "[]"));
  CHECK(valid("{}", R"({"anything":[1]})"));
  CHECK(valid("true", "1"));
  CHECK(!valid("false", "1"));
}

TEST_CASE("objects: properties, required, additionalProperties, nesting with paths") {
  const char* s = R"({"type":"object","properties":{
      "name":{"type":"string","minLength":1,"maxLength":3},
      "tags":{"type":"array","items":{"type":"string","enum":["a","b"]},"minItems":1,"maxItems":2},
      "addr":{"type":"object","properties":{"zip":{"type":"string"}},"required":["zip"]}},
    "required":["name"],"additionalProperties":false})";
  CHECK(valid(s, R"({"name":"Ada"})"));
  CHECK(valid(s, R"({"name":"Ada","tags":["a","b"],"addr":{"zip":"1"}})"));
  CHECK(err(s, R"({})") == "at /: missing required property 'name'");
  CHECK(err(s, R"({"name":"Ada","x":1})") == "at /: additional property 'x' is not allowed");
  CHECK(err(s, R"({"name":"Adam"})") == "at /name: longer than maxLength 3");
  CHECK(err(s, R"({"name":""})") == "at /name: shorter than minLength 1");
  CHECK(valid(s, R"({"name":"\u00e9\u00e9\u00e9"})"));  // 3 code points, 6 bytes
  CHECK(err(s, R"({"name":"A","tags":["a","c"]})") == "at /tags/1: value is not one of the enum values");
  CHECK(err(s, R"({"name":"A","tags":[]})") == "at /tags: fewer than minItems 1");
  CHECK(err(s, R"({"name":"A","tags":["a","a","b"]})") == "at /tags: more than maxItems 2");
  CHECK(err(s, R"({"name":"A","addr":{}})") == "at /addr: missing required property 'zip'");
  CHECK(err(s, R"({"name":"A","addr":{"zip":5}})") == "at /addr/zip: expected string, got integer");
  // additionalProperties as a schema
  CHECK(valid(R"({"additionalProperties":{"type":"integer"}})", R"({"a":1,"b":2})"));
  CHECK(!valid(R"({"additionalProperties":{"type":"integer"}})", R"({"a":1,"b":"2"})"));
}

TEST_CASE("numbers: minimum, maximum, exclusive bounds") {
  const char* s = R"({"type":"number","minimum":0,"maximum":10})";
  CHECK(valid(s, "0"));
  CHECK(valid(s, "10"));
  CHECK(!valid(s, "-0.5"));
  CHECK(!valid(s, "10.01"));
  CHECK(!valid(R"({"exclusiveMinimum":0})", "0"));
  CHECK(valid(R"({"exclusiveMinimum":0})", "0.001"));
  CHECK(!valid(R"({"exclusiveMaximum":1})", "1"));
}

TEST_CASE("enum and const compare JSON values structurally") {
  CHECK(valid(R"({"const":{"a":[1,2]}})", R"({"a":[1,2.0]})"));
  CHECK(!valid(R"({"const":{"a":[1,2]}})", R"({"a":[2,1]})"));
  CHECK(valid(R"({"enum":[1,"1",null]})", "null"));
  CHECK(valid(R"({"enum":[1,"1",null]})", R"("1")"));
  CHECK(!valid(R"({"enum":[1,"1",null]})", "true"));
  CHECK(!valid(R"({"const":-1})", "18446744073709551615"));
}

TEST_CASE("anyOf, oneOf, allOf, not") {
  const char* any = R"({"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]})";
  CHECK(valid(any, R"("x")"));
  CHECK(valid(any, "7"));
  CHECK(err(any, "3") == "at /: matches none of anyOf");
  const char* one = R"({"oneOf":[{"type":"integer"},{"type":"number","minimum":2}]})";
  CHECK(valid(one, "1"));
  CHECK(valid(one, "2.5"));
  CHECK(err(one, "3") == "at /: matches more than one of oneOf");
  CHECK(!valid(one, R"("s")"));
  const char* all = R"({"allOf":[{"type":"integer"},{"minimum":2}]})";
  CHECK(valid(all, "2"));
  CHECK(!valid(all, "1"));
  CHECK(!valid(R"({"not":{"type":"null"}})", "null"));
  CHECK(valid(R"({"not":{"type":"null"}})", "0"));
}

TEST_CASE("local $ref, as OpenAI structured outputs use it") {
  const char* s = R"({"$defs":{"item":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}},
    "type":"object","properties":{"items":{"type":"array","items":{"$ref":"#/$defs/item"}}}})";
  CHECK(valid(s, R"({"items":[{"id":1},{"id":2}]})"));
  CHECK(err(s, R"({"items":[{"id":1},{}]})") == "at /items/1: missing required property 'id'");
  CHECK(!valid(R"({"$ref":"#/nope"})", "1"));
  // Recursion is bounded.
  CHECK(!valid(R"({"$ref":"#"})", "1"));
}

TEST_CASE("unparseable inputs are invalid with a reason") {
  CHECK(err("{", "1").find("schema is not valid JSON") == 0);
  CHECK(err("{}", "{").find("answer is not valid JSON") == 0);
  CHECK(!valid("{}", ""));
}
