#include "backends/engine/format/cli.h"

#include <simdjson.h>

#include <cstdio>
#include <istream>
#include <ostream>
#include <vector>

#include "backends/engine/format/gguf.h"
#include "backends/engine/format/tokenizer.h"
#include "backends/engine/format/unicode.h"

namespace frugal::engine {
namespace {

constexpr size_t kArrayPreview = 5;       // array items shown before "..."
constexpr size_t kStringPreview = 120;    // bytes of a long string shown

std::string type_label(const GgufValue& v) {
  if (v.type != GgufValueType::kArray) return value_type_name(v.type);
  return std::string("array[") + value_type_name(v.elem_type) + "]";
}

std::string format_value(const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kString: {
      if (v.str.size() <= kStringPreview) return json_quote(v.str);
      size_t cut = kStringPreview;
      while (cut > 0 && (static_cast<uint8_t>(v.str[cut]) & 0xC0) == 0x80) --cut;  // whole characters
      return json_quote(v.str.substr(0, cut)) + "... (" + std::to_string(v.str.size()) + " bytes)";
    }
    case GgufValueType::kBool: return v.b ? "true" : "false";
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: {
      char buf[32];
      // Enough digits to identify the stored value, no more (f32: 1e-05, not 9.99999975e-06).
      std::snprintf(buf, sizeof buf, v.type == GgufValueType::kFloat32 ? "%.7g" : "%.17g", v.f);
      return buf;
    }
    case GgufValueType::kArray: {
      std::string s = "[";
      for (size_t i = 0; i < v.items.size() && i < kArrayPreview; ++i) {
        if (i) s += ", ";
        s += format_value(v.items[i]);
      }
      if (v.items.size() > kArrayPreview) s += ", ...";
      return s + "] (" + std::to_string(v.items.size()) + " items)";
    }
    default: {
      auto x = v.as_int();
      return x ? std::to_string(*x) : std::to_string(v.u);
    }
  }
}

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const int n = unicode::utf8_valid_len(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s, i, static_cast<size_t>(n));
        i += static_cast<size_t>(n);
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out + "\"";
}

int models_inspect_main(const std::string& path, std::ostream& out, std::ostream& err) {
  auto file = GgufFile::open(path);
  if (!file) {
    err << "error: " << file.error().message << "\n";
    return 1;
  }
  const GgufFile& f = *file;
  out << "file: " << path << "\n"
      << "gguf version: " << f.version() << ", alignment: " << f.alignment() << ", size: " << f.file_size()
      << " bytes\n"
      << "architecture: " << (f.architecture().empty() ? "(none)" : f.architecture()) << "\n\n";
  size_t key_width = 0;
  for (const auto& kv : f.metadata()) key_width = std::max(key_width, kv.key.size());
  out << "metadata (" << f.metadata().size() << " keys):\n";
  for (const auto& kv : f.metadata()) {
    out << "  " << pad(kv.key, key_width) << "  " << pad(type_label(kv.value), 14) << "  " << format_value(kv.value)
        << "\n";
  }
  size_t name_width = 4;
  for (const auto& t : f.tensors()) name_width = std::max(name_width, t.name.size());
  out << "\ntensors (" << f.tensors().size() << "):\n"
      << "  " << pad("name", name_width) << "  " << pad("type", 8) << "  " << pad("shape", 22) << "  bytes\n";
  uint64_t total_bytes = 0, total_params = 0;
  for (const auto& t : f.tensors()) {
    out << "  " << pad(t.name, name_width) << "  " << pad(type_name(t.type), 8) << "  " << pad(t.shape_string(), 22)
        << "  " << t.n_bytes << "\n";
    total_bytes += t.n_bytes;
    total_params += static_cast<uint64_t>(t.n_elements());
  }
  out << "total: " << total_params << " parameters, " << total_bytes << " bytes of tensor data\n";
  return 0;
}

int tokenize_main(const std::string& model_path, std::istream& in, std::ostream& out, std::ostream& err) {
  auto file = GgufFile::open(model_path);
  if (!file) {
    err << "error: " << file.error().message << "\n";
    return 1;
  }
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok) {
    err << "error: " << model_path << ": " << tok.error().message << "\n";
    return 1;
  }
  simdjson::ondemand::parser parser;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    simdjson::padded_string padded(line);
    std::string_view text;
    simdjson::ondemand::document doc;
    auto code = parser.iterate(padded).get(doc);
    if (code == simdjson::SUCCESS) code = doc.get_string().get(text);
    // current_location() succeeds only while unread content remains after the string.
    const bool trailing = code == simdjson::SUCCESS && doc.current_location().error() == simdjson::SUCCESS;
    if (code != simdjson::SUCCESS || trailing) {
      err << "error: line " << line_no << ": expected one JSON string"
          << (code != simdjson::SUCCESS ? std::string(" (") + simdjson::error_message(code) + ")" : std::string())
          << "\n";
      return 1;
    }
    const auto ids = tok->encode(text, false, false);
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(ids[i]);
    }
    out << s << "]\n";
  }
  return 0;
}

}  // namespace frugal::engine
