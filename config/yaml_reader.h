#pragma once
// Typed, strict access to a YAML document for config loaders: every error names the
// file, line, column and dotted key; unknown keys are errors; `${VAR}` and
// `${VAR:-default}` in scalars are expanded from the environment.
// Only config/ includes yaml-cpp; this header is private to config/.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace frugal::config {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// Thrown only inside config/ and converted to Result at the public boundary.
struct ConfigException : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class YamlNode {
 public:
  YamlNode(YAML::Node node, std::string path, const std::string* file, const EnvLookup* env)
      : node_(std::move(node)), path_(std::move(path)), file_(file), env_(env) {}

  const std::string& path() const { return path_; }
  bool is_map() const { return node_.IsMap(); }
  bool is_sequence() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }
  bool is_null() const { return !node_ || node_.IsNull(); }

  // Map access. `child` returns nullopt when absent.
  std::optional<YamlNode> child(const std::string& key) const;
  YamlNode required(const std::string& key) const;
  // Errors on any key not in `allowed`.
  void allow_keys(std::initializer_list<std::string_view> allowed) const;
  std::vector<std::pair<std::string, YamlNode>> entries() const;  // map, in file order
  std::vector<YamlNode> items() const;                            // sequence

  std::string as_string() const;  // env-expanded
  int64_t as_int(int64_t min, int64_t max) const;
  double as_double() const;
  bool as_bool() const;
  // Durations and sizes need a unit (a bare number is an error, except 0) and must lie
  // in [min, max] (in the result's unit), checked before any conversion can overflow.
  int64_t as_duration_ms(int64_t min, int64_t max) const;  // 250ms, 5s, 2m, 1h, 1d
  int64_t as_duration_us(int64_t min, int64_t max) const;  // 50us, 2ms, 1s
  int64_t as_bytes(int64_t min, int64_t max) const;        // 4MiB, 512KiB, 1GB

  std::string get_string(const std::string& key, std::string def) const;
  int64_t get_int(const std::string& key, int64_t def, int64_t min, int64_t max) const;
  bool get_bool(const std::string& key, bool def) const;
  int64_t get_duration_ms(const std::string& key, int64_t def, int64_t min, int64_t max) const;
  int64_t get_duration_us(const std::string& key, int64_t def, int64_t min, int64_t max) const;
  int64_t get_bytes(const std::string& key, int64_t def, int64_t min, int64_t max) const;

  // Throws "file:line:col: key 'path': what". Never shows a secret: wherever the
  // scalar's expanded value appears in `what` it is replaced by shown().
  [[noreturn]] void fail(const std::string& what) const;
  // The scalar as an error message may show it, quoted: '<redacted>' for a credential
  // (api_key, admin_token, provider headers), the `${VAR}` text as written when the
  // value came from the environment, else the value.
  std::string shown() const;
  const YAML::Node& raw() const { return node_; }

 private:
  std::string scalar() const;
  // The scalar with `${VAR}` expanded; sets `problem` (and stops) on a malformed or
  // unset reference.
  std::string expand(std::string& problem) const;
  bool sensitive() const;
  // The scalar as a number with one of `units` (name, multiplier; the first is the
  // result's unit), range-checked against [min, max] in that unit.
  int64_t scaled(std::initializer_list<std::pair<std::string_view, double>> units, const char* kind,
                 const char* example, int64_t min, int64_t max) const;
  YAML::Node node_;
  std::string path_;
  const std::string* file_;
  const EnvLookup* env_;
};

// Parses `text`; a syntax error becomes a ConfigException naming file:line:column.
YAML::Node parse_yaml(const std::string& text, const std::string& file);

// Configuration and policy files are small: anything larger is refused unread.
inline constexpr int64_t kMaxConfigFileBytes = 4 << 20;
// The contents of the regular file `path` (`what`: "configuration file", "policy file"
// for errors). Refuses what is not a regular file (/dev/zero, a FIFO, a directory) and
// files over kMaxConfigFileBytes, reading at most that much.
Result<std::string> read_config_file(const std::string& path, std::string_view what);

}  // namespace frugal::config
