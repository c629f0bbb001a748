#pragma once
// A protobuf wire-format writer for the few OTLP messages frugal sends (encode.h): no
// .proto files, no libprotobuf. Fields are written in the order they are called, through
// a raw pointer into the output string, which is grown ahead (doubling) and cut to what
// was written when the writer goes (or at finish()): no append per byte.
//
// Nested messages are written in place after a placeholder for their length:
//   message(f, fill)       one byte: the length is minimal; a message of 128 bytes or
//                          more is moved up to widen it (rare for what uses it:
//                          attribute values, events, statuses);
//   wide_message(f, fill)  (and open_wide/close) four bytes: lengths below 2^28 are
//                          written as a four-byte varint, non-minimal where shorter
//                          (protobuf decoders accept that: the encoding guide's varints
//                          may carry redundant 0x80 bytes), so a span or a whole request
//                          is never moved.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::otlp {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// Bytes of v as a (minimal) varint.
constexpr size_t varint_size(uint64_t v) { return v < 0x80 ? 1 : (static_cast<size_t>(std::bit_width(v)) + 6) / 7; }
constexpr uint64_t tag_of(uint32_t field, WireType type) {
  return (static_cast<uint64_t>(field) << 3) | static_cast<uint8_t>(type);
}

class ProtoWriter {
 public:
  // Appends to `out` (from its current size); `out` holds exactly what was written once
  // finish() is called or the writer is destroyed.
  explicit ProtoWriter(std::string& out) : out_(out), n_(out.size()) {}
  // Writes from the start of `room`, over what it holds, and never cuts it: written() is
  // the output (a buffer kept across messages is zero-filled only when it grows).
  enum Overwrite { kOverwrite };
  ProtoWriter(std::string& room, Overwrite) : out_(room), n_(0), cut_(false) {}
  ~ProtoWriter() { finish(); }
  ProtoWriter(const ProtoWriter&) = delete;
  ProtoWriter& operator=(const ProtoWriter&) = delete;
  void finish() {
    if (cut_) out_.resize(n_);
  }
  size_t size() const { return n_; }
  std::string_view written() const { return {out_.data(), n_}; }

  // At least `n` writable bytes at p() (the fast paths below call it for their own).
  void reserve(size_t n) {
    if (out_.size() - n_ < n) grow(n);
  }

  void varint(uint64_t v) {
    reserve(10);
    put_varint(v);
  }
  void tag(uint32_t field, WireType type) { varint(tag_of(field, type)); }

  // Scalars (proto3: callers skip default values where the schema allows).
  void uint64_field(uint32_t field, uint64_t v) {  // uint64, int64 (two's complement), enum, bool
    reserve(20);
    put_varint(tag_of(field, WireType::kVarint));
    put_varint(v);
  }
  void int64_field(uint32_t field, int64_t v) { uint64_field(field, static_cast<uint64_t>(v)); }
  void bool_field(uint32_t field, bool v) { uint64_field(field, v ? 1 : 0); }
  void fixed64_field(uint32_t field, uint64_t v) {
    reserve(18);
    put_varint(tag_of(field, WireType::kFixed64));
    put_le(v, 8);
  }
  void sfixed64_field(uint32_t field, int64_t v) { fixed64_field(field, static_cast<uint64_t>(v)); }
  void double_field(uint32_t field, double v) { fixed64_field(field, std::bit_cast<uint64_t>(v)); }
  void fixed32_field(uint32_t field, uint32_t v) {
    reserve(14);
    put_varint(tag_of(field, WireType::kFixed32));
    put_le(v, 4);
  }
  void bytes_field(uint32_t field, std::string_view v) {  // string and bytes
    reserve(20 + v.size());
    put_varint(tag_of(field, WireType::kLen));
    put_varint(v.size());
    put_bytes(v);
  }
  // Packed repeated fields.
  void packed_fixed64(uint32_t field, const std::vector<uint64_t>& v);
  void packed_double(uint32_t field, const std::vector<double>& v);

  // A nested message: `fill(ProtoWriter&)` writes its fields (into this writer's output).
  template <class Fill>
  void message(uint32_t field, Fill&& fill) {
    reserve(11);
    put_varint(tag_of(field, WireType::kLen));
    const size_t at = n_++;  // the length, if it fits in one byte
    fill(*this);
    finish_length(at);
  }
  // A nested message that may be long (a span, a request): a four-byte length.
  template <class Fill>
  void wide_message(uint32_t field, Fill&& fill) {
    const size_t at = open_wide(field);
    fill(*this);
    close_wide(at);
  }
  // The same in two calls, for a message filled by a loop elsewhere: open_wide returns
  // where the length goes, close_wide(at) writes it.
  size_t open_wide(uint32_t field) {
    reserve(14);
    put_varint(tag_of(field, WireType::kLen));
    const size_t at = n_;
    n_ += 4;
    return at;
  }
  void close_wide(size_t at);

  // Unchecked writes: the caller reserve()d room for them (10 bytes a varint).
  void put_varint(uint64_t v) { n_ = static_cast<size_t>(put_varint(out_.data() + n_, v) - out_.data()); }
  // The same through a cursor (a run of writes without reloading the buffer):
  //   char* p = w.cursor(); p = ProtoWriter::put_varint(p, v); ...; w.advance(p);
  char* cursor() { return out_.data() + n_; }
  void advance(char* p) { n_ = static_cast<size_t>(p - out_.data()); }
  static char* put_varint(char* p, uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
    return p;
  }
  static char* put_bytes(char* p, std::string_view v) {
    if (!v.empty()) std::memcpy(p, v.data(), v.size());
    return p + v.size();
  }
  static char* put_le(char* p, uint64_t v, size_t bytes) {
    std::memcpy(p, &v, bytes);
    return p + bytes;
  }
  void put_le(uint64_t v, size_t bytes) {  // little-endian (the host's: x86-64, arm64)
    static_assert(std::endian::native == std::endian::little);
    std::memcpy(out_.data() + n_, &v, bytes);
    n_ += bytes;
  }
  void put_bytes(std::string_view v) { n_ = static_cast<size_t>(put_bytes(out_.data() + n_, v) - out_.data()); }

 private:
  void grow(size_t n);
  // Writes the length of what follows out_[at] (the placeholder byte) as a varint there.
  void finish_length(size_t at) {
    const size_t len = n_ - at - 1;
    if (len < 0x80) out_[at] = static_cast<char>(len);
    else widen(at, len);
  }
  void widen(size_t at, size_t len);
  std::string& out_;
  size_t n_;  // bytes written; out_.size() is what is allocated ahead
  bool cut_ = true;
};

}  // namespace frugal::otlp
