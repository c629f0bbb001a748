#pragma once
// A protobuf wire-format writer for the few OTLP messages frugal sends (encode.h): no
// .proto files, no libprotobuf. Fields are written in the order they are called;
// nested messages are written in place after a one-byte length, which is widened (the
// message moved up) only when the message is 128 bytes or more: no buffer per message,
// and most (attributes, values) never move.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::otlp {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class ProtoWriter {
 public:
  explicit ProtoWriter(std::string& out) : out_(out) {}

  void varint(uint64_t v);
  void tag(uint32_t field, WireType type) { varint((static_cast<uint64_t>(field) << 3) | static_cast<uint8_t>(type)); }

  // Scalars (proto3: callers skip default values where the schema allows).
  void uint64_field(uint32_t field, uint64_t v);  // uint64, int64 (two's complement), enum, bool
  void int64_field(uint32_t field, int64_t v) { uint64_field(field, static_cast<uint64_t>(v)); }
  void bool_field(uint32_t field, bool v) { uint64_field(field, v ? 1 : 0); }
  void fixed64_field(uint32_t field, uint64_t v);
  void sfixed64_field(uint32_t field, int64_t v) { fixed64_field(field, static_cast<uint64_t>(v)); }
  void double_field(uint32_t field, double v);
  void fixed32_field(uint32_t field, uint32_t v);
  void bytes_field(uint32_t field, std::string_view v);  // string and bytes
  // Packed repeated fields.
  void packed_fixed64(uint32_t field, const std::vector<uint64_t>& v);
  void packed_double(uint32_t field, const std::vector<double>& v);

  // A nested message: `fill(ProtoWriter&)` writes its fields (into this writer's output).
  template <class Fill>
  void message(uint32_t field, Fill&& fill) {
    tag(field, WireType::kLen);
    const size_t at = out_.size();
    out_ += '\0';  // the length, if it fits in one byte
    fill(*this);
    finish_length(at);
  }

 private:
  void raw64(uint64_t v);
  // Writes the length of what follows out_[at] (the placeholder byte) as a varint there.
  void finish_length(size_t at);
  std::string& out_;
};

}  // namespace frugal::otlp
