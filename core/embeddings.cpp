#include "core/embeddings.h"

#include <memory>

namespace frugal {
namespace {

using simdjson::dom::element;

Error bad(std::string param, std::string message) {
  return make_error(ErrorKind::kInvalidRequest, std::move(message), std::move(param));
}

Error invalid_input(const std::string& why) {
  return bad("input", "'$.input' is invalid: " + why + ".");
}

// A token id array; `at` names it in errors.
Result<std::vector<int64_t>> token_array(simdjson::dom::array arr, const std::string& at) {
  std::vector<int64_t> ids;
  ids.reserve(arr.size());
  for (element t : arr) {
    int64_t id = 0;
    if (t.get_int64().get(id) || id < 0)
      return invalid_input(at + " must hold non-negative integer token ids");
    ids.push_back(id);
  }
  if (ids.empty()) return invalid_input(at + " is empty");
  return ids;
}

Result<void> parse_input(element input, EmbeddingsInput& out) {
  if (input.is_string()) {
    const std::string_view s = input.get_string().value_unsafe();
    if (s.empty()) return invalid_input("it is an empty string");
    out.texts.emplace_back(s);
    return {};
  }
  simdjson::dom::array arr;
  if (input.get_array().get(arr))
    return bad(
        "input",
        "Invalid type for 'input': expected a string, an array of strings, an array of token ids "
        "or an array of token id arrays.");
  if (arr.size() == 0) return invalid_input("it is an empty array");
  element first = arr.at(0).value_unsafe();
  if (first.is_int64() || first.is_uint64()) {
    auto ids = token_array(arr, "input");
    if (!ids) return std::move(ids).error();
    out.token_ids.push_back(std::move(*ids));
    return {};
  }
  if (arr.size() > kMaxEmbeddingInputs)
    return invalid_input("it has " + std::to_string(arr.size()) + " entries; at most " +
                         std::to_string(kMaxEmbeddingInputs) + " are accepted");
  const bool strings = first.is_string();
  size_t i = 0;
  for (element e : arr) {
    const std::string at = "input[" + std::to_string(i++) + "]";
    if (strings) {
      std::string_view s;
      if (e.get_string().get(s))
        return invalid_input(at + " is not a string (inputs must all be of one kind)");
      if (s.empty()) return invalid_input(at + " is an empty string");
      out.texts.emplace_back(s);
      continue;
    }
    simdjson::dom::array inner;
    if (e.get_array().get(inner))
      return invalid_input(at + " is neither a string nor an array of token ids");
    auto ids = token_array(inner, at);
    if (!ids) return std::move(ids).error();
    out.token_ids.push_back(std::move(*ids));
  }
  return {};
}

}  // namespace

Result<ChatRequest> parse_embeddings_body(simdjson::dom::parser& parser, std::string_view body) {
  element root;
  if (auto err = parser.parse(body.empty() ? "" : body.data(), body.size()).get(root))
    return bad("", std::string("We could not parse the JSON body of your request: ") +
                       simdjson::error_message(err) + ".");
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return bad("", "The request body must be a JSON object.");
  ChatRequest req;
  req.root = obj;
  req.has_root = true;
  req.openai_body = body;
  auto in = std::make_shared<EmbeddingsInput>();
  element v;
  if (obj["model"].get(v) || v.is_null())
    return bad("model", "Missing required parameter: 'model'.");
  std::string_view model;
  if (v.get_string().get(model))
    return bad("model", "Invalid type for 'model': expected a string.");
  req.model = std::string(model);
  if (obj["input"].get(v) || v.is_null())
    return bad("input", "Missing required parameter: 'input'.");
  FRUGAL_TRY(parse_input(v, *in));
  if (!obj["encoding_format"].get(v) && !v.is_null()) {
    std::string_view f;
    if (v.get_string().get(f) || (f != "float" && f != "base64"))
      return bad("encoding_format",
                 "Invalid value for 'encoding_format': expected 'float' or 'base64'.");
    in->base64 = f == "base64";
  }
  if (!obj["dimensions"].get(v) && !v.is_null()) {
    int64_t d = 0;
    if (v.get_int64().get(d) || d < 1)
      return bad("dimensions", "Invalid value for 'dimensions': expected a positive integer.");
    in->dimensions = d;
  }
  if (!obj["user"].get(v) && !v.is_null()) {
    std::string_view u;
    if (v.get_string().get(u)) return bad("user", "Invalid type for 'user': expected a string.");
    req.user = std::string(u);
  }
  req.embeddings = std::move(in);
  return req;
}

}  // namespace frugal
