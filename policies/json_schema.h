#pragma once
// A compact JSON Schema validator over simdjson DOM values, for acceptance rules that
// check a model's answer against the request's response_format json_schema.
//
// Supported keywords: type (string or list; "integer" accepts 3.0), properties,
// required, additionalProperties (false or a schema), items (a schema), minItems,
// maxItems, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
// minLength, maxLength (Unicode code points), pattern is NOT supported (ignored),
// anyOf, oneOf, allOf, not, boolean schemas, and local $ref ("#/$defs/x",
// "#/definitions/x", any JSON pointer into the root schema). Unknown keywords
// (title, description, format, ...) are ignored, as the spec says.
// Nesting deeper than 64 levels is a validation failure, not a stack overflow.
#include <simdjson.h>

#include <string>
#include <string_view>

namespace frugal::policies {

struct SchemaResult {
  bool valid = true;
  std::string error;  // "at /items/2/price: expected number, got string"
};

SchemaResult validate_json_schema(simdjson::dom::element schema, simdjson::dom::element instance);
// Parses both texts; a parse error of either is reported as invalid with the reason.
SchemaResult validate_json_text(std::string_view schema_json, std::string_view instance_json);

// Structural equality of JSON values (numbers compared by value: 1 == 1.0).
bool json_equal(simdjson::dom::element a, simdjson::dom::element b);

}  // namespace frugal::policies
