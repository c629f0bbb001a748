#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace frugal {

namespace {

// Bytes that JSON needs escaped, and every non-ASCII byte: JSON text must be valid
// UTF-8 (RFC 8259 §8.1), and bytes from outside (a header value, a stored row) need not be.
inline bool needs_care(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80; }

// Index of the first byte at or after `from` that needs care, or s.size().
size_t find_escape(std::string_view s, size_t from) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = from;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i slash = _mm_set1_epi8('\\');
  const __m128i ctl = _mm_set1_epi8(0x1f);
  // max(v, 0x1f) == 0x1f exactly when v <= 0x1f as an unsigned byte; the sign bit
  // (movemask of v itself) marks the non-ASCII bytes.
  const auto hits = [&](const unsigned char* at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                     _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
    return static_cast<unsigned>(_mm_movemask_epi8(hit) | _mm_movemask_epi8(v));
  };
  for (; i + 16 <= s.size(); i += 16)
    if (const unsigned mask = hits(p + i)) return i + static_cast<size_t>(__builtin_ctz(mask));
  // The last < 16 bytes (most keys and names are nothing but that) in one check, never
  // reading outside the string: the string's last 16 bytes when it has that many (the
  // bytes before i, checked already, shifted out), else its bytes copied into a block.
  const size_t left = s.size() - i;
  if (left == 0) return s.size();
  unsigned mask;
  if (s.size() >= 16) {
    mask = hits(p + s.size() - 16) >> (16 - left);
  } else {
    alignas(16) unsigned char b[16] = {};
    const unsigned char* q = p + i;
    if (left >= 8) {
      std::memcpy(b, q, 8);
      std::memcpy(b + left - 8, q + left - 8, 8);
    } else if (left >= 4) {
      std::memcpy(b, q, 4);
      std::memcpy(b + left - 4, q + left - 4, 4);
    } else {
      b[0] = q[0];
      b[left / 2] = q[left / 2];
      b[left - 1] = q[left - 1];
    }
    mask = hits(b) & ((1u << left) - 1);  // the zeros past the copy are control bytes
  }
  return mask ? i + static_cast<size_t>(__builtin_ctz(mask)) : s.size();
#else
  for (; i < s.size(); ++i)
    if (needs_care(p[i])) return i;
  return s.size();
#endif
}

// Length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or 0 when there is
// none: no overlong forms, surrogates or code points above U+10FFFF (Unicode table 3-7).
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const size_t left = s.size() - i;
  const auto cont = [&](size_t k) { return k < left && (p[k] & 0xC0) == 0x80; };
  const unsigned char c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

void json_escape_to(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0;  // start of the pending run of bytes that are copied as they are
  for (size_t i = find_escape(s, 0); i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const size_t n = utf8_sequence(s, i)) {  // well-formed: part of the run
        i = find_escape(s, i + n);
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c >= 0x80) {
          out += "\xEF\xBF\xBD";  // U+FFFD for each byte of an ill-formed sequence
          break;
        }
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    i = find_escape(s, run);
  }
  out.append(s.data() + run, s.size() - run);
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  json_escape_to(out, s);
  out += '"';
  return out;
}

// A short string that needs no escaping is written with one append: keys are nearly
// always such, and so are most values on the hot path (ids, names, models).
bool JsonWriter::quoted_fast(std::string_view s, char before, std::string_view after) {
  char buf[96];
  if (s.size() + after.size() + 2 > sizeof buf || find_escape(s, 0) != s.size()) return false;
  char* p = buf;
  if (before) *p++ = before;
  *p++ = '"';
  for (const std::string_view piece : {s, after}) {
    if (piece.empty()) continue;  // a default view's null data must not reach memcpy
    std::memcpy(p, piece.data(), piece.size());
    p += piece.size();
  }
  out_.append(buf, static_cast<size_t>(p - buf));
  return true;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  const char comma = take_sep();
  after_key_ = true;
  if (quoted_fast(k, comma, "\":")) return *this;
  if (comma) out_ += comma;
  out_ += '"';
  json_escape_to(out_, k);
  out_ += "\":";
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  const char comma = take_sep();
  if (quoted_fast(s, comma, "\"")) return *this;
  if (comma) out_ += comma;
  out_ += '"';
  json_escape_to(out_, s);
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::value(int64_t v) {
  sep();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  sep();
  if (!std::isfinite(v)) { out_ += "null"; return *this; }
  char buf[32];
  // The shortest form of a large double can be an integer literal past 64 bits
  // ("188894659314785812480"), which strict parsers (simdjson) refuse: write an exponent.
  auto r = std::fabs(v) >= 1e15 ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
                                 : std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  sep();
  out_ += b ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  sep();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  sep();
  out_ += json;
  return *this;
}

}  // namespace frugal
