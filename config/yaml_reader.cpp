#include "config/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

void YamlNode::fail(const std::string& what) const {
  std::string msg = location(file_, node_ ? node_.Mark() : YAML::Mark::null_mark());
  if (!path_.empty()) msg += ": key '" + path_ + "'";
  std::string w = what;
  if (node_ && node_.IsScalar()) {
    // A safety net under the call sites, which quote shown() rather than the value.
    const std::string& raw = node_.Scalar();
    const bool from_env = raw.find("${") != std::string::npos;
    if (from_env || sensitive()) {
      std::string problem;
      const std::string value = expand(problem);
      const std::string safe = shown();
      replace_all(w, "'" + value + "'", safe);
      if (value.size() >= 6) replace_all(w, value, safe.substr(1, safe.size() - 2));
      if (sensitive() && raw.size() >= 6) replace_all(w, raw, "<redacted>");
    }
  }
  throw ConfigException(msg + ": " + w);
}

bool YamlNode::sensitive() const {
  std::string_view name(path_);
  if (const size_t b = name.find('['); b != std::string_view::npos) name = name.substr(0, b);
  if (const size_t dot = name.rfind('.'); dot != std::string_view::npos) name = name.substr(dot + 1);
  return name == "api_key" || name == "admin_token" || path_ == "admin.token" ||
         path_.find(".headers.") != std::string::npos;
}

std::string YamlNode::shown() const {
  if (!node_ || !node_.IsScalar()) return "''";
  if (sensitive()) return "'<redacted>'";
  return "'" + node_.Scalar() + "'";  // as written: `${VAR}` unexpanded
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

std::string YamlNode::expand(std::string& problem) const {
  const std::string& raw = node_.Scalar();
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
      const size_t end = raw.find('}', i + 2);
      if (end == std::string::npos) {
        problem = "unterminated '${' in " + shown();
        return out;
      }
      std::string expr = raw.substr(i + 2, end - i - 2);
      std::optional<std::string> def;
      if (size_t d = expr.find(":-"); d != std::string::npos) {
        def = expr.substr(d + 2);
        expr.resize(d);
      }
      std::optional<std::string> v = env_ ? (*env_)(expr) : std::nullopt;
      if (!v || (v->empty() && def)) v = def;
      if (!v) {
        problem = "environment variable '" + expr + "' is not set";
        return out;
      }
      out += *v;
      i = end;
    } else {
      out += raw[i];
    }
  }
  return out;
}

std::string YamlNode::scalar() const {
  if (!node_.IsScalar()) fail("expected a scalar value");
  std::string problem;
  std::string out = expand(problem);
  if (!problem.empty()) fail(problem);
  return out;
}

std::string YamlNode::as_string() const { return scalar(); }

int64_t YamlNode::as_int(int64_t min, int64_t max) const {
  const std::string s = scalar();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno) fail("expected an integer, got " + shown());
  if (v < min || v > max)
    fail("expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + shown());
  return v;
}

double YamlNode::as_double() const {
  const std::string s = scalar();
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) fail("expected a number, got " + shown());
  return v;
}

bool YamlNode::as_bool() const {
  const std::string s = scalar();
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail("expected true or false, got " + shown());
}

namespace {

// `v` (in the first unit's terms) with the largest unit that divides it: "10ms", "1h".
std::string with_unit(int64_t v, std::initializer_list<std::pair<std::string_view, double>> units) {
  if (v == 0) return "0";
  std::pair<std::string_view, double> best = *units.begin();
  for (const auto& u : units) {
    const auto scale = static_cast<int64_t>(u.second);
    if (u.second > best.second && v % scale == 0) best = u;
  }
  return std::to_string(v / static_cast<int64_t>(best.second)) + std::string(best.first);
}

}  // namespace

int64_t YamlNode::scaled(std::initializer_list<std::pair<std::string_view, double>> units, const char* kind,
                         const char* example, int64_t min, int64_t max) const {
  const std::string s = scalar();
  const std::string expected = std::string("expected a ") + kind + " with a unit (e.g. " + example + ")";
  double n;
  std::string unit;
  if (!split_number_unit(s, n, unit)) fail(expected + ", got " + shown());
  double v = -1;
  if (unit.empty()) {
    if (n != 0) fail(expected + ", got " + shown() + ": a bare number has no unit");
    v = 0;
  }
  std::string names;
  for (const auto& [name, scale] : units) {
    if (unit == name) v = n * scale;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  if (v < 0) {
    const size_t last = names.rfind(", ");
    if (last != std::string::npos) names.replace(last, 2, " or ");
    fail("unknown " + std::string(kind) + " unit in " + shown() + " (use " + names + ")");
  }
  // Compared as a double, before the conversion: a value past int64 cannot wrap.
  if (!(v >= static_cast<double>(min) && v <= static_cast<double>(max)))
    fail("expected a " + std::string(kind) + " from " + with_unit(min, units) + " to " + with_unit(max, units) +
         ", got " + shown());
  return std::llround(v);
}

namespace {
const std::initializer_list<std::pair<std::string_view, double>> kMsUnits = {
    {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}};
const std::initializer_list<std::pair<std::string_view, double>> kUsUnits = {{"us", 1}, {"ms", 1e3}, {"s", 1e6}};
const std::initializer_list<std::pair<std::string_view, double>> kByteUnits = {
    {"B", 1},         {"KiB", 1024.0}, {"MiB", 1024.0 * 1024}, {"GiB", 1024.0 * 1024 * 1024},
    {"TiB", 1024.0 * 1024 * 1024 * 1024}, {"K", 1024.0}, {"M", 1024.0 * 1024}, {"G", 1024.0 * 1024 * 1024},
    {"KB", 1e3},      {"MB", 1e6},     {"GB", 1e9}};
}  // namespace

int64_t YamlNode::as_duration_ms(int64_t min, int64_t max) const {
  return scaled(kMsUnits, "duration", "30s, 500ms", min, max);
}

int64_t YamlNode::as_duration_us(int64_t min, int64_t max) const {
  return scaled(kUsUnits, "duration", "2ms, 50us", min, max);
}

int64_t YamlNode::as_bytes(int64_t min, int64_t max) const {
  return scaled(kByteUnits, "size", "4MiB, 512KiB", min, max);
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
int64_t YamlNode::get_duration_ms(const std::string& key, int64_t def, int64_t min, int64_t max) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_duration_ms(min, max) : def;
}
int64_t YamlNode::get_duration_us(const std::string& key, int64_t def, int64_t min, int64_t max) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_duration_us(min, max) : def;
}
int64_t YamlNode::get_bytes(const std::string& key, int64_t def, int64_t min, int64_t max) const {
  auto c = child(key);
  return c && !c->is_null() ? c->as_bytes(min, max) : def;
}

Result<std::string> read_config_file(const std::string& path, std::string_view what) {
  const auto fail = [&](ErrorKind kind, const std::string& why) {
    return make_error(kind, path + ": cannot read " + std::string(what) + ": " + why);
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(errno == ENOENT ? ErrorKind::kNotFound : ErrorKind::kInvalidRequest, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) return fail(ErrorKind::kInvalidRequest, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(ErrorKind::kInvalidRequest, "not a regular file");
  const auto too_big = [&] {
    return fail(ErrorKind::kInvalidRequest, "larger than " + std::to_string(kMaxConfigFileBytes >> 20) + " MiB");
  };
  if (st.st_size > kMaxConfigFileBytes) return too_big();
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(ErrorKind::kInvalidRequest, std::strerror(errno));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > kMaxConfigFileBytes) return too_big();  // grew while read
  }
  return out;
}

}  // namespace frugal::config
