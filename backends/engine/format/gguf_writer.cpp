// GGUF v3 serialisation (layout: see gguf.cpp) and the random model generator.
#include "backends/engine/format/gguf_writer.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_set>

namespace frugal::engine {
namespace {

class VectorSink {
 public:
  explicit VectorSink(std::vector<uint8_t>* out) : out_(out) {}
  bool put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
    return true;
  }
  size_t pos() const { return out_->size(); }

 private:
  std::vector<uint8_t>* out_;
};

class FileSink {
 public:
  explicit FileSink(std::FILE* f) : f_(f) {}
  bool put(const void* p, size_t n) {
    pos_ += n;
    return std::fwrite(p, 1, n, f_) == n;
  }
  size_t pos() const { return pos_; }

 private:
  std::FILE* f_;
  size_t pos_ = 0;
};

template <class Sink, class T>
bool put_pod(Sink& s, T v) {
  return s.put(&v, sizeof v);
}

template <class Sink>
bool put_string(Sink& s, const std::string& str) {
  return put_pod(s, static_cast<uint64_t>(str.size())) && s.put(str.data(), str.size());
}

// Writes the payload of a value of type t (no type tag).
template <class Sink>
bool put_value(Sink& s, GgufValueType t, const GgufValue& v) {
  switch (t) {
    case GgufValueType::kUint8: return put_pod(s, static_cast<uint8_t>(v.u));
    case GgufValueType::kInt8: return put_pod(s, static_cast<int8_t>(v.i));
    case GgufValueType::kUint16: return put_pod(s, static_cast<uint16_t>(v.u));
    case GgufValueType::kInt16: return put_pod(s, static_cast<int16_t>(v.i));
    case GgufValueType::kUint32: return put_pod(s, static_cast<uint32_t>(v.u));
    case GgufValueType::kInt32: return put_pod(s, static_cast<int32_t>(v.i));
    case GgufValueType::kUint64: return put_pod(s, v.u);
    case GgufValueType::kInt64: return put_pod(s, v.i);
    case GgufValueType::kFloat32: return put_pod(s, static_cast<float>(v.f));
    case GgufValueType::kFloat64: return put_pod(s, v.f);
    case GgufValueType::kBool: return put_pod(s, static_cast<uint8_t>(v.b ? 1 : 0));
    case GgufValueType::kString: return put_string(s, v.str);
    case GgufValueType::kArray: {
      if (!put_pod(s, static_cast<uint32_t>(v.elem_type)) || !put_pod(s, static_cast<uint64_t>(v.items.size()))) {
        return false;
      }
      for (const auto& item : v.items) {
        if (!put_value(s, v.elem_type, item)) return false;
      }
      return true;
    }
  }
  return false;
}

template <class Sink>
bool pad_to(Sink& s, uint32_t alignment) {
  static const uint8_t kZeros[256] = {};
  size_t pad = (alignment - s.pos() % alignment) % alignment;
  while (pad > 0) {
    const size_t n = std::min(pad, sizeof kZeros);
    if (!s.put(kZeros, n)) return false;
    pad -= n;
  }
  return true;
}

size_t aligned(size_t x, uint32_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment == 0 ? kGgufDefaultAlignment : alignment) {
  if (alignment_ != kGgufDefaultAlignment) set_u32("general.alignment", alignment_);
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back({key, std::move(value)});
}

void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(GgufValue::make_string(s));
  set(key, GgufValue::make_array(GgufValueType::kString, std::move(items)));
}

void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(GgufValue::make_f32(x));
  set(key, GgufValue::make_array(GgufValueType::kFloat32, std::move(items)));
}

void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(GgufValue::make_i32(x));
  set(key, GgufValue::make_array(GgufValueType::kInt32, std::move(items)));
}

Result<void> GgufWriter::check_new_tensor(const std::string& name, const std::vector<int64_t>& ne,
                                          GgmlType type) const {
  const std::string who = "gguf writer: tensor '" + name + "'";
  for (const auto& t : tensors_) {
    if (t.name == name) return make_error(ErrorKind::kInvalidRequest, who + " added twice");
  }
  if (ne.empty() || ne.size() > kGgufMaxDims) return make_error(ErrorKind::kInvalidRequest, who + ": needs 1..4 dims");
  for (int64_t d : ne) {
    if (d <= 0) return make_error(ErrorKind::kInvalidRequest, who + ": dimensions must be positive");
  }
  if (block_size(type) == 0) return make_error(ErrorKind::kInvalidRequest, who + ": unknown type");
  if (ne[0] % block_size(type) != 0) {
    return make_error(ErrorKind::kInvalidRequest, who + ": row length " + std::to_string(ne[0]) +
                                                      " is not a multiple of " + type_name(type) + "'s block size " +
                                                      std::to_string(block_size(type)));
  }
  return {};
}

namespace {
int64_t rows_of(const std::vector<int64_t>& ne) {
  int64_t r = 1;
  for (size_t d = 1; d < ne.size(); ++d) r *= ne[d];
  return r;
}
}  // namespace

Result<void> GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                                    std::span<const float> values) {
  FRUGAL_TRY(check_new_tensor(name, ne, type));
  const int64_t rows = rows_of(ne);
  if (static_cast<int64_t>(values.size()) != ne[0] * rows) {
    return make_error(ErrorKind::kInvalidRequest, "gguf writer: tensor '" + name + "': got " +
                                                      std::to_string(values.size()) + " values for its shape");
  }
  if (!has_reference_kernels(type)) {
    return make_error(ErrorKind::kInvalidRequest,
                      "gguf writer: tensor '" + name + "': cannot quantise to " + type_name(type));
  }
  const size_t rs = row_size(type, ne[0]);
  std::vector<uint8_t> bytes(rs * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    FRUGAL_TRY(quantize_row(type, values.data() + r * ne[0], bytes.data() + static_cast<size_t>(r) * rs, ne[0]));
  }
  return add_tensor_bytes(name, std::move(ne), type, std::move(bytes));
}

Result<void> GgufWriter::add_tensor_bytes(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                                          std::vector<uint8_t> bytes) {
  FRUGAL_TRY(check_new_tensor(name, ne, type));
  const size_t n_bytes = row_size(type, ne[0]) * static_cast<size_t>(rows_of(ne));
  if (bytes.size() != n_bytes) {
    return make_error(ErrorKind::kInvalidRequest, "gguf writer: tensor '" + name + "': got " +
                                                      std::to_string(bytes.size()) + " bytes, shape needs " +
                                                      std::to_string(n_bytes));
  }
  tensors_.push_back(Tensor{name, std::move(ne), type, std::move(bytes), nullptr, n_bytes});
  return {};
}

Result<void> GgufWriter::add_tensor_rows(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                                         RowFn rows) {
  FRUGAL_TRY(check_new_tensor(name, ne, type));
  if (!has_reference_kernels(type)) {
    return make_error(ErrorKind::kInvalidRequest,
                      "gguf writer: tensor '" + name + "': cannot quantise to " + type_name(type));
  }
  const size_t n_bytes = row_size(type, ne[0]) * static_cast<size_t>(rows_of(ne));
  tensors_.push_back(Tensor{name, std::move(ne), type, {}, std::move(rows), n_bytes});
  return {};
}

template <class Sink>
Result<void> GgufWriter::emit(Sink& sink) const {
  const auto io_error = [] { return make_error(ErrorKind::kInternal, "gguf writer: write failed"); };
  bool ok = put_pod(sink, kGgufMagic) && put_pod(sink, uint32_t{3}) &&
            put_pod(sink, static_cast<uint64_t>(tensors_.size())) && put_pod(sink, static_cast<uint64_t>(kvs_.size()));
  for (const auto& kv : kvs_) {
    ok = ok && put_string(sink, kv.key) && put_pod(sink, static_cast<uint32_t>(kv.value.type)) &&
         put_value(sink, kv.value.type, kv.value);
  }
  size_t offset = 0;
  for (const auto& t : tensors_) {
    ok = ok && put_string(sink, t.name) && put_pod(sink, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) ok = ok && put_pod(sink, static_cast<uint64_t>(d));
    ok = ok && put_pod(sink, static_cast<uint32_t>(t.type)) && put_pod(sink, static_cast<uint64_t>(offset));
    offset = aligned(offset + t.n_bytes, alignment_);
  }
  ok = ok && pad_to(sink, alignment_);
  if (!ok) return io_error();
  std::vector<float> row;
  std::vector<uint8_t> qrow;
  for (const auto& t : tensors_) {
    if (!t.rows) {
      ok = sink.put(t.bytes.data(), t.bytes.size());
    } else {
      row.resize(static_cast<size_t>(t.ne[0]));
      qrow.resize(row_size(t.type, t.ne[0]));
      const int64_t rows = rows_of(t.ne);
      for (int64_t r = 0; r < rows && ok; ++r) {
        t.rows(r, row.data());
        FRUGAL_TRY(quantize_row(t.type, row.data(), qrow.data(), t.ne[0]));
        ok = sink.put(qrow.data(), qrow.size());
      }
    }
    ok = ok && pad_to(sink, alignment_);
    if (!ok) return io_error();
  }
  return {};
}

Result<std::vector<uint8_t>> GgufWriter::serialize() const {
  std::vector<uint8_t> out;
  VectorSink sink(&out);
  FRUGAL_TRY(emit(sink));
  return out;
}

Result<void> GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return make_error(ErrorKind::kInternal, "gguf writer: cannot create " + tmp + ": " + std::strerror(errno));
  }
  FileSink sink(f);
  auto r = emit(sink);
  const bool closed = std::fclose(f) == 0;
  if (!r.ok() || !closed) {
    std::remove(tmp.c_str());
    if (!r.ok()) return r;
    return make_error(ErrorKind::kInternal, "gguf writer: closing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error(ErrorKind::kInternal, "gguf writer: cannot rename to " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace frugal::engine
