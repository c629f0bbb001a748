#pragma once
// Compiles what a request asks the output to be into a byte NFA for Grammar (grammar.h):
// a JSON Schema (response_format json_schema), any JSON object (json_object), or a tool
// call (tools + tool_choice).
//
// The JSON Schema subset (OpenAI's strict-mode subset, and a little more):
//   type: object | array | string | number | integer | boolean | null, or a list of them
//   object: properties (generated in the order given), required, additionalProperties
//           (false, true, or a schema: without properties a map of that schema; with
//           properties no extra key is generated); no properties and no
//           additionalProperties: any JSON object
//   array:  items (one schema), minItems, maxItems (<= 128)
//   string: minLength, maxLength (<= 2048), counted in characters (an escape is one)
//   enum, const (any JSON values), anyOf, $ref to "#" or "#/..." pointers into the same
//           document ($defs, definitions), not recursive; true / {} (any JSON value)
//   annotations, ignored: title, description, default, examples, format (an annotation
//           since draft 2019-09), $schema, $id, $comment, deprecated, readOnly, writeOnly
// Anything else (pattern, minimum, oneOf, allOf, not, prefixItems, recursive $ref, ...)
// is an error naming the keyword and where it is, so the caller can answer 400.
//
// Output shape, fixed so generation always ends: whitespace only after '{', '[', ':'
// and ',' and before '}' and ']' (nothing, one space, or a newline and up to 16 spaces
// or tabs); numbers have at most 15 integer and 15 fraction digits and a 2-digit
// exponent; strings are valid UTF-8 with no control characters and no \u escape of a
// lone surrogate; free-form values (any JSON object, `true`, items without a schema)
// nest at most kAnyDepth containers deep. No whitespace before or after the top value.
#include <span>
#include <string>
#include <string_view>

#include "backends/engine/grammar.h"
#include "core/error.h"

namespace frugal::engine {

inline constexpr int kAnyDepth = 4;

// `param` names the schema's place in the request for errors ("response_format.json_schema.schema").
Result<ByteNfa> json_schema_nfa(std::string_view schema_json, const std::string& param);
ByteNfa json_object_nfa();

struct ToolSchema {
  std::string name;             // [A-Za-z0-9_-]+
  std::string parameters_json;  // JSON Schema of the arguments; "" = no arguments ({})
  std::string param;            // where the parameters are in the request, for errors
};
// `{"name":"<name>","arguments":<arguments>}` for one of `tools`, no whitespace outside
// the arguments. With allow_text, the output may instead be text (tool_choice auto): an
// empty output, or text whose first non-whitespace byte is not '{' — so a '{' after
// optional leading whitespace commits the output to a tool call.
Result<ByteNfa> tool_call_nfa(std::span<const ToolSchema> tools, bool allow_text);

// The fixed text before a tool call's arguments.
std::string tool_call_prefix(std::string_view name);

}  // namespace frugal::engine
