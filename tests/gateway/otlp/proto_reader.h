#pragma once
// A protobuf wire-format reader for the tests only: splits a message into its fields, so
// the encoder's output is checked against the wire format rather than against itself.
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::otlp::testing {

struct Field {
  uint32_t number = 0;
  int wire = 0;        // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t value = 0;  // varint / fixed
  std::string bytes;   // length-delimited
  double as_double() const {
    double d;
    std::memcpy(&d, &value, 8);
    return d;
  }
};

inline uint64_t read_varint(std::string_view& s) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (s.empty()) throw std::runtime_error("truncated varint");
    const auto b = static_cast<uint8_t>(s.front());
    s.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  throw std::runtime_error("varint too long");
}

inline std::vector<Field> parse(std::string_view s) {
  std::vector<Field> out;
  while (!s.empty()) {
    const uint64_t key = read_varint(s);
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      f.value = read_varint(s);
    } else if (f.wire == 1 || f.wire == 5) {
      const size_t n = f.wire == 1 ? 8 : 4;
      if (s.size() < n) throw std::runtime_error("truncated fixed");
      for (size_t i = 0; i < n; ++i) f.value |= static_cast<uint64_t>(static_cast<uint8_t>(s[i])) << (8 * i);
      s.remove_prefix(n);
    } else if (f.wire == 2) {
      const uint64_t n = read_varint(s);
      if (s.size() < n) throw std::runtime_error("truncated bytes");
      f.bytes = std::string(s.substr(0, n));
      s.remove_prefix(n);
    } else {
      throw std::runtime_error("bad wire type");
    }
    out.push_back(std::move(f));
  }
  return out;
}

inline std::vector<Field> all(const std::vector<Field>& fs, uint32_t number) {
  std::vector<Field> out;
  for (const auto& f : fs)
    if (f.number == number) out.push_back(f);
  return out;
}

inline const Field& one(const std::vector<Field>& fs, uint32_t number) {
  const Field* found = nullptr;
  for (const auto& f : fs)
    if (f.number == number) {
      if (found) throw std::runtime_error("field " + std::to_string(number) + " repeated");
      found = &f;
    }
  if (!found) throw std::runtime_error("field " + std::to_string(number) + " missing");
  return *found;
}

inline bool has(const std::vector<Field>& fs, uint32_t number) {
  for (const auto& f : fs)
    if (f.number == number) return true;
  return false;
}

}  // namespace frugal::otlp::testing
