#include "gateway/otlp/proto.h"

#include <bit>
#include <cstring>

namespace frugal::otlp {

void ProtoWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out_ += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out_ += static_cast<char>(v);
}

void ProtoWriter::finish_length(size_t at) {
  const uint64_t n = out_.size() - at - 1;
  if (n < 0x80) {
    out_[at] = static_cast<char>(n);
    return;
  }
  char len[10];
  size_t k = 0;
  for (uint64_t v = n; v >= 0x80; v >>= 7) len[k++] = static_cast<char>((v & 0x7f) | 0x80);
  len[k] = static_cast<char>(n >> (7 * k));
  ++k;
  out_.insert(at + 1, k - 1, '\0');  // the message moves up by the extra length bytes
  std::memcpy(out_.data() + at, len, k);
}

void ProtoWriter::raw64(uint64_t v) {
  for (int i = 0; i < 8; ++i, v >>= 8) out_ += static_cast<char>(v & 0xff);  // little-endian
}

void ProtoWriter::uint64_field(uint32_t field, uint64_t v) {
  tag(field, WireType::kVarint);
  varint(v);
}

void ProtoWriter::fixed64_field(uint32_t field, uint64_t v) {
  tag(field, WireType::kFixed64);
  raw64(v);
}

void ProtoWriter::double_field(uint32_t field, double v) {
  tag(field, WireType::kFixed64);
  raw64(std::bit_cast<uint64_t>(v));
}

void ProtoWriter::fixed32_field(uint32_t field, uint32_t v) {
  tag(field, WireType::kFixed32);
  for (int i = 0; i < 4; ++i, v >>= 8) out_ += static_cast<char>(v & 0xff);
}

void ProtoWriter::bytes_field(uint32_t field, std::string_view v) {
  tag(field, WireType::kLen);
  varint(v.size());
  out_.append(v);
}

void ProtoWriter::packed_fixed64(uint32_t field, const std::vector<uint64_t>& v) {
  if (v.empty()) return;
  tag(field, WireType::kLen);
  varint(v.size() * 8);
  for (uint64_t x : v) raw64(x);
}

void ProtoWriter::packed_double(uint32_t field, const std::vector<double>& v) {
  if (v.empty()) return;
  tag(field, WireType::kLen);
  varint(v.size() * 8);
  for (double x : v) raw64(std::bit_cast<uint64_t>(x));
}

}  // namespace frugal::otlp
