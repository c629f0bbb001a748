#pragma once
// Entry points for the `frugal models inspect` and `frugal tokenize` subcommands. The
// gateway's executable parses its command line and calls these; they return the
// process exit code (0 success, 1 error) and write errors to `err`.
#include <iosfwd>
#include <string>
#include <string_view>

namespace frugal::engine {

// Prints the GGUF header, every metadata key (arrays abbreviated to their first items
// and their length; long strings cut), and a table of tensors: name, type, shape, bytes.
int models_inspect_main(const std::string& path, std::ostream& out, std::ostream& err);

// Reads one JSON string per line from `in` (blank lines are skipped) and prints the
// token ids of each as a JSON array on its own line, without BOS and with special-token
// text treated as plain text. Stops at the first bad line.
int tokenize_main(const std::string& model_path, std::istream& in, std::ostream& out, std::ostream& err);

// `s` as a JSON string literal (quotes, escapes; invalid UTF-8 bytes become \ufffd).
std::string json_quote(std::string_view s);

}  // namespace frugal::engine
