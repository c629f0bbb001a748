#include "gateway/otlp/proto.h"

#include <algorithm>

namespace frugal::otlp {

void ProtoWriter::grow(size_t n) {
  // resize() zero-fills the new room once; a buffer reused across requests (the
  // exporter's) stops growing after the first batches.
  out_.resize(std::max<size_t>({n_ + n, out_.size() * 2, 256}));
}

void ProtoWriter::widen(size_t at, size_t len) {
  const size_t k = varint_size(len);
  reserve(k - 1);
  char* base = out_.data();
  std::memmove(base + at + k, base + at + 1, len);  // the message moves up by the extra length bytes
  n_ += k - 1;
  char* p = base + at;
  for (uint64_t v = len; v >= 0x80; v >>= 7) *p++ = static_cast<char>((v & 0x7f) | 0x80);
  *p = static_cast<char>(len >> (7 * (k - 1)));
}

void ProtoWriter::close_wide(size_t at) {
  const size_t len = n_ - at - 4;
  if (len < (size_t{1} << 28)) {
    char* p = out_.data() + at;
    p[0] = static_cast<char>((len & 0x7f) | 0x80);
    p[1] = static_cast<char>(((len >> 7) & 0x7f) | 0x80);
    p[2] = static_cast<char>(((len >> 14) & 0x7f) | 0x80);
    p[3] = static_cast<char>((len >> 21) & 0x7f);
    return;
  }
  // 256 MiB or more (never, for what frugal sends): the minimal varint, the message moved up.
  const size_t k = varint_size(len);
  reserve(k - 4);
  char* base = out_.data();
  std::memmove(base + at + k, base + at + 4, len);
  n_ += k - 4;
  char* p = base + at;
  for (uint64_t v = len; v >= 0x80; v >>= 7) *p++ = static_cast<char>((v & 0x7f) | 0x80);
  *p = static_cast<char>(len >> (7 * (k - 1)));
}

void ProtoWriter::packed_fixed64(uint32_t field, const std::vector<uint64_t>& v) {
  if (v.empty()) return;
  reserve(20 + v.size() * 8);
  put_varint(tag_of(field, WireType::kLen));
  put_varint(v.size() * 8);
  for (uint64_t x : v) put_le(x, 8);
}

void ProtoWriter::packed_double(uint32_t field, const std::vector<double>& v) {
  if (v.empty()) return;
  reserve(20 + v.size() * 8);
  put_varint(tag_of(field, WireType::kLen));
  put_varint(v.size() * 8);
  for (double x : v) put_le(std::bit_cast<uint64_t>(x), 8);
}

}  // namespace frugal::otlp
