#include "config/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace frugal::config {
namespace {

std::string location(const std::string* file, const YAML::Mark& m) {
  std::string s = file ? *file : std::string("<config>");
  if (m.line >= 0) s += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  return s;
}

// Splits "123ms" into 123 and "ms".
bool split_number_unit(const std::string& s, double& num, std::string& unit) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  char* end = nullptr;
  const std::string n = s.substr(0, i);
  num = std::strtod(n.c_str(), &end);
  if (end != n.c_str() + n.size()) return false;
  unit = s.substr(i);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  return true;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigException(location(&file, e.mark) + ": YAML syntax error: " + e.msg);
  }
}

void YamlNode::fail(const std::string& what) const {
  std::string msg = location(file_, node_ ? node_.Mark() : YAML::Mark::null_mark());
  if (!path_.empty()) msg += ": key '" + path_ + "'";
  throw ConfigException(msg + ": " + what);
}

std::optional<YamlNode> YamlNode::child(const std::string& key) const {
  if (!node_.IsMap()) fail("expected a mapping");
  YAML::Node c = node_[key];
  if (!c) return std::nullopt;
  return YamlNode(c, path_.empty() ? key : path_ + "." + key, file_, env_);
}

YamlNode YamlNode::required(const std::string& key) const {
  auto c = child(key);
  if (!c) fail("missing required key '" + key + "'");
  return *c;
}

void YamlNode::allow_keys(std::initializer_list<std::string_view> allowed) const {
  if (is_null()) return;
  if (!node_.IsMap()) fail("expected a mapping");
  for (const auto& kv : node_) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      YamlNode(kv.first, path_.empty() ? k : path_ + "." + k, file_, env_)
          .fail("unknown key (expected one of: " + list + ")");
    }
  }
}

std::vector<std::pair<std::string, YamlNode>> YamlNode::entries() const {
  std::vector<std::pair<std::string, YamlNode>> out;
  if (is_null()) return out;
  if (!node_.IsMap()) fail("expected a mapping");
  for (const auto& kv : node_) {
    const std::string k = kv.first.as<std::string>();
    out.emplace_back(k, YamlNode(kv.second, path_.empty() ? k : path_ + "." + k, file_, env_));
  }
  return out;
}

std::vector<YamlNode> YamlNode::items() const {
  std::vector<YamlNode> out;
  if (is_null()) return out;
  if (!node_.IsSequence()) fail("expected a list");
  size_t i = 0;
  for (const auto& it : node_) out.emplace_back(it, path_ + "[" + std::to_string(i++) + "]", file_, env_);
  return out;
}

std::string YamlNode::scalar() const {
  if (!node_.IsScalar()) fail("expected a scalar value");
  const std::string& raw = node_.Scalar();
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
      const size_t end = raw.find('}', i + 2);
      if (end == std::string::npos) fail("unterminated '${' in '" + raw + "'");
      std::string expr = raw.substr(i + 2, end - i - 2);
      std::optional<std::string> def;
      if (size_t d = expr.find(":-"); d != std::string::npos) {
        def = expr.substr(d + 2);
        expr.resize(d);
      }
      std::optional<std::string> v = env_ ? (*env_)(expr) : std::nullopt;
      if (!v || (v->empty() && def)) v = def;
      if (!v) fail("environment variable '" + expr + "' is not set");
      out += *v;
      i = end;
    } else {
      out += raw[i];
    }
  }
  return out;
}

std::string YamlNode::as_string() const { return scalar(); }

int64_t YamlNode::as_int(int64_t min, int64_t max) const {
  const std::string s = scalar();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno) fail("expected an integer, got '" + s + "'");
  if (v < min || v > max)
    fail("expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + s);
  return v;
}

double YamlNode::as_double() const {
  const std::string s = scalar();
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) fail("expected a number, got '" + s + "'");
  return v;
}

bool YamlNode::as_bool() const {
  const std::string s = scalar();
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail("expected true or false, got '" + s + "'");
}

double YamlNode::scaled(std::initializer_list<std::pair<std::string_view, double>> units, const char* kind,
                        const char* example) const {
  const std::string s = scalar();
  double n;
  std::string unit;
  if (!split_number_unit(s, n, unit)) fail(std::string("expected a ") + kind + " like " + example + ", got '" + s + "'");
  if (unit.empty()) return n * units.begin()->second;  // a bare number is in the first unit
  std::string names;
  for (const auto& [name, scale] : units) {
    if (unit == name) return n * scale;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  const size_t last = names.rfind(", ");
  if (last != std::string::npos) names.replace(last, 2, " or ");
  fail("unknown " + std::string(kind) + " unit '" + unit + "' (use " + names + ")");
}

int64_t YamlNode::as_duration_ms() const {
  return std::llround(scaled({{"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}}, "duration",
                             "250ms, 5s, 2m or 1h"));
}

int64_t YamlNode::as_duration_us() const {
  return std::llround(scaled({{"us", 1}, {"ms", 1e3}, {"s", 1e6}}, "duration", "50us, 2ms or 1s"));
}

int64_t YamlNode::as_bytes() const {
  return static_cast<int64_t>(scaled({{"B", 1}, {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024},
                                      {"K", 1024.0}, {"M", 1024.0 * 1024}, {"G", 1024.0 * 1024 * 1024},
                                      {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}},
                                     "size", "4MiB or 512KiB"));
}

std::string YamlNode::get_string(const std::string& key, std::string def) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_string() : def;
}
int64_t YamlNode::get_int(const std::string& key, int64_t def, int64_t min, int64_t max) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_int(min, max) : def;
}
bool YamlNode::get_bool(const std::string& key, bool def) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_bool() : def;
}
int64_t YamlNode::get_duration_ms(const std::string& key, int64_t def) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_duration_ms() : def;
}
int64_t YamlNode::get_duration_us(const std::string& key, int64_t def) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_duration_us() : def;
}
int64_t YamlNode::get_bytes(const std::string& key, int64_t def) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_bytes() : def;
}

}  // namespace frugal::config
