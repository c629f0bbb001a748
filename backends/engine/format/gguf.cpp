// GGUF parsing. Layout (all little-endian):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 value_type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
//   padding to `alignment`, then the data section; tensor offsets are relative to it.
// where string = { u64 length, bytes } and array = { u32 elem_type, u64 count, items }.
#include "backends/engine/format/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace frugal::engine {

struct GgufFile::Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  void* mmap_addr = nullptr;   // set when the bytes are an mmap
  std::vector<uint8_t> heap;   // set when the bytes are a copy

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (mmap_addr != nullptr) munmap(mmap_addr, size);
  }
};

namespace {

// Nested arrays deeper than this are rejected rather than recursed into.
constexpr int kMaxArrayDepth = 8;

// Reads little-endian values from [pos, end) and refuses to read past end.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <class T>
  bool read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  bool read_string(std::string* out) {
    uint64_t len = 0;
    if (!read(&len) || len > remaining()) return false;
    out->assign(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

// Smallest encoding of one value of a type; used to bound counts before allocating.
size_t min_value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kString: return 8;
    case GgufValueType::kArray: return 12;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64: return 8;
  }
  return 1;
}

class Parser {
 public:
  Parser(const uint8_t* base, size_t size, std::string name) : cur_(base, size), name_(std::move(name)) {}

  Error fail(const std::string& what) const {
    return make_error(ErrorKind::kInvalidRequest,
                      name_ + ": invalid GGUF: " + what + " (at byte " + std::to_string(cur_.pos()) + ")");
  }

  Cursor& cur() { return cur_; }

  Result<GgufValue> read_value(GgufValueType type, const std::string& key, int depth) {
    GgufValue v;
    v.type = type;
    bool ok = true;
    switch (type) {
      case GgufValueType::kUint8: { uint8_t x{}; ok = cur_.read(&x); v.u = x; break; }
      case GgufValueType::kInt8: { int8_t x{}; ok = cur_.read(&x); v.i = x; break; }
      case GgufValueType::kUint16: { uint16_t x{}; ok = cur_.read(&x); v.u = x; break; }
      case GgufValueType::kInt16: { int16_t x{}; ok = cur_.read(&x); v.i = x; break; }
      case GgufValueType::kUint32: { uint32_t x{}; ok = cur_.read(&x); v.u = x; break; }
      case GgufValueType::kInt32: { int32_t x{}; ok = cur_.read(&x); v.i = x; break; }
      case GgufValueType::kUint64: { ok = cur_.read(&v.u); break; }
      case GgufValueType::kInt64: { ok = cur_.read(&v.i); break; }
      case GgufValueType::kFloat32: { float x{}; ok = cur_.read(&x); v.f = x; break; }
      case GgufValueType::kFloat64: { ok = cur_.read(&v.f); break; }
      case GgufValueType::kBool: {
        uint8_t x = 0;
        ok = cur_.read(&x);
        if (ok && x > 1) return fail("key '" + key + "': bool value " + std::to_string(x) + " is not 0 or 1");
        v.b = x != 0;
        v.u = x;
        break;
      }
      case GgufValueType::kString: {
        if (!cur_.read_string(&v.str)) return fail("key '" + key + "': string runs past the end of the file");
        break;
      }
      case GgufValueType::kArray: {
        if (depth >= kMaxArrayDepth) return fail("key '" + key + "': arrays nested too deeply");
        uint32_t et;
        uint64_t count;
        if (!cur_.read(&et) || !cur_.read(&count)) return fail("key '" + key + "': truncated array header");
        if (!valid_value_type(et)) {
          return fail("key '" + key + "': unknown array element type " + std::to_string(et));
        }
        v.elem_type = static_cast<GgufValueType>(et);
        if (count > cur_.remaining() / min_value_size(v.elem_type)) {
          return fail("key '" + key + "': array of " + std::to_string(count) + " elements cannot fit in the file");
        }
        v.items.reserve(static_cast<size_t>(count));
        for (uint64_t k = 0; k < count; ++k) {
          auto item = read_value(v.elem_type, key, depth + 1);
          if (!item) return std::move(item).error();
          v.items.push_back(std::move(*item));
        }
        break;
      }
    }
    if (!ok) return fail("key '" + key + "': value runs past the end of the file");
    return v;
  }

 private:
  Cursor cur_;
  std::string name_;
};

bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

Error key_error(std::string_view key, const std::string& what) {
  return make_error(ErrorKind::kInvalidRequest, "gguf metadata key '" + std::string(key) + "' " + what);
}

Error wrong_type(std::string_view key, const GgufValue& v, const char* wanted) {
  std::string got = value_type_name(v.type);
  if (v.type == GgufValueType::kArray) got += std::string(" of ") + value_type_name(v.elem_type);
  return key_error(key, "has type " + got + ", expected " + wanted);
}

}  // namespace

const char* value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "u8";
    case GgufValueType::kInt8: return "i8";
    case GgufValueType::kUint16: return "u16";
    case GgufValueType::kInt16: return "i16";
    case GgufValueType::kUint32: return "u32";
    case GgufValueType::kInt32: return "i32";
    case GgufValueType::kFloat32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "u64";
    case GgufValueType::kInt64: return "i64";
    case GgufValueType::kFloat64: return "f64";
  }
  return "unknown";
}

RopeStyle rope_style_for(std::string_view arch) {
  // Architectures whose converted weights expect the neox pairing.
  for (std::string_view neox : {"qwen2", "qwen2moe", "qwen3", "phi2", "phi3", "gemma", "gemma2", "stablelm", "gptneox"}) {
    if (arch == neox) return RopeStyle::kNeox;
  }
  return RopeStyle::kNormal;
}

// ---- GgufValue ----

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64: return true;
    default: return false;
  }
}

bool GgufValue::is_float() const { return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64; }

std::optional<int64_t> GgufValue::as_int() const {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kUint16: case GgufValueType::kUint32:
    case GgufValueType::kUint64: case GgufValueType::kBool:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    case GgufValueType::kInt8: case GgufValueType::kInt16: case GgufValueType::kInt32:
    case GgufValueType::kInt64: return i;
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::as_number() const {
  if (is_float()) return f;
  if (type == GgufValueType::kUint64 || type == GgufValueType::kUint32 || type == GgufValueType::kUint16 ||
      type == GgufValueType::kUint8) {
    return static_cast<double>(u);
  }
  if (is_integer()) return static_cast<double>(i);
  return std::nullopt;
}

GgufValue GgufValue::make_u32(uint32_t v) { GgufValue x; x.type = GgufValueType::kUint32; x.u = v; return x; }
GgufValue GgufValue::make_i32(int32_t v) { GgufValue x; x.type = GgufValueType::kInt32; x.i = v; return x; }
GgufValue GgufValue::make_u64(uint64_t v) { GgufValue x; x.type = GgufValueType::kUint64; x.u = v; return x; }
GgufValue GgufValue::make_f32(float v) { GgufValue x; x.type = GgufValueType::kFloat32; x.f = v; return x; }
GgufValue GgufValue::make_bool(bool v) {
  GgufValue x;
  x.type = GgufValueType::kBool;
  x.b = v;
  x.u = v ? 1 : 0;
  return x;
}
GgufValue GgufValue::make_string(std::string v) {
  GgufValue x;
  x.type = GgufValueType::kString;
  x.str = std::move(v);
  return x;
}
GgufValue GgufValue::make_array(GgufValueType elem_type, std::vector<GgufValue> items) {
  GgufValue x;
  x.type = GgufValueType::kArray;
  x.elem_type = elem_type;
  x.items = std::move(items);
  return x;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (int d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

// ---- GgufFile ----

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

Result<GgufFile> GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorKind::kNotFound, path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorKind::kInvalidRequest, path + ": not a regular file");
  }
  auto mapping = std::make_unique<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size == 0) {
    ::close(fd);
    return make_error(ErrorKind::kInvalidRequest, path + ": invalid GGUF: empty file");
  }
  void* addr = mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (addr == MAP_FAILED) {
    return make_error(ErrorKind::kInternal, path + ": mmap failed: " + std::strerror(mmap_errno));
  }
  mapping->mmap_addr = addr;
  mapping->data = static_cast<const uint8_t*>(addr);
  return parse(std::move(mapping), path);
}

Result<GgufFile> GgufFile::parse_bytes(const void* data, size_t size, std::string name) {
  // Over-allocate so the copy can start on a 64-byte boundary, like a page-aligned map.
  auto mapping = std::make_unique<Mapping>();
  mapping->heap.resize(size + 64);
  auto addr = reinterpret_cast<uintptr_t>(mapping->heap.data());
  const size_t skew = (64 - addr % 64) % 64;
  uint8_t* dst = mapping->heap.data() + skew;
  if (size > 0) std::memcpy(dst, data, size);
  mapping->data = dst;
  mapping->size = size;
  return parse(std::move(mapping), std::move(name));
}

Result<GgufFile> GgufFile::parse(std::unique_ptr<Mapping> mapping, std::string name) {
  GgufFile file;
  file.base_ = mapping->data;
  file.size_ = mapping->size;
  file.path_ = name;
  file.mapping_ = std::move(mapping);

  Parser p(file.base_, file.size_, name);
  Cursor& cur = p.cur();

  uint32_t magic = 0;
  if (!cur.read(&magic)) return p.fail("file too short for the magic");
  if (magic != kGgufMagic) return p.fail("bad magic (not a GGUF file)");
  if (!cur.read(&file.version_)) return p.fail("file too short for the version");
  if (file.version_ != 2 && file.version_ != 3) {
    return p.fail("unsupported version " + std::to_string(file.version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  if (!cur.read(&n_tensors) || !cur.read(&n_kv)) return p.fail("truncated header");
  // Each KV needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at
  // least 8 (name length) + 4 + 8 (one dim) + 4 + 8 bytes.
  if (n_kv > cur.remaining() / 13) return p.fail("metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");
  if (n_tensors > cur.remaining() / 32) {
    return p.fail("tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");
  }

  file.kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKv kv;
    if (!cur.read_string(&kv.key)) return p.fail("metadata key " + std::to_string(k) + " runs past the end of the file");
    uint32_t type = 0;
    if (!cur.read(&type)) return p.fail("key '" + kv.key + "': truncated value type");
    if (!valid_value_type(type)) return p.fail("key '" + kv.key + "': unknown value type " + std::to_string(type));
    auto value = p.read_value(static_cast<GgufValueType>(type), kv.key, 0);
    if (!value) return std::move(value).error();
    kv.value = std::move(*value);
    file.kvs_.push_back(std::move(kv));
  }
  for (size_t k = 0; k < file.kvs_.size(); ++k) {
    if (!file.kv_index_.emplace(file.kvs_[k].key, k).second) {
      return p.fail("duplicate metadata key '" + file.kvs_[k].key + "'");
    }
  }

  if (const GgufValue* a = file.find("general.alignment")) {
    auto v = a->as_int();
    if (a->type != GgufValueType::kUint32 || !v || !is_pow2(static_cast<uint64_t>(*v))) {
      return p.fail("general.alignment must be a u32 power of two");
    }
    file.alignment_ = static_cast<uint32_t>(*v);
  }

  file.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    TensorInfo info;
    if (!cur.read_string(&info.name)) return p.fail("tensor " + std::to_string(t) + ": name runs past the end of the file");
    const std::string who = "tensor '" + info.name + "'";
    uint32_t n_dims = 0;
    if (!cur.read(&n_dims)) return p.fail(who + ": truncated");
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      return p.fail(who + ": " + std::to_string(n_dims) + " dimensions (must be 1.." + std::to_string(kGgufMaxDims) + ")");
    }
    info.n_dims = static_cast<int>(n_dims);
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      if (!cur.read(&ne)) return p.fail(who + ": truncated dimensions");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / n_elements)) {
        return p.fail(who + ": dimension " + std::to_string(d) + " = " + std::to_string(ne) + " is zero or overflows");
      }
      info.ne[d] = static_cast<int64_t>(ne);
      n_elements *= info.ne[d];
    }
    uint32_t type_id = 0;
    if (!cur.read(&type_id) || !cur.read(&info.offset)) return p.fail(who + ": truncated");
    auto type = type_from_id(type_id);
    if (!type) return p.fail(who + ": unknown tensor type id " + std::to_string(type_id));
    info.type = *type;
    const int bs = block_size(info.type);
    if (info.ne[0] % bs != 0) {
      return p.fail(who + ": row length " + std::to_string(info.ne[0]) + " is not a multiple of " +
                    type_name(info.type) + "'s block size " + std::to_string(bs));
    }
    // n_elements / bs * bytes_per_block cannot overflow: bytes_per_block <= 292 and
    // n_elements < 2^63, but check anyway against size_t.
    const uint64_t n_blocks = static_cast<uint64_t>(n_elements / bs);
    if (n_blocks > std::numeric_limits<uint64_t>::max() / bytes_per_block(info.type)) {
      return p.fail(who + ": byte size overflows");
    }
    info.n_bytes = static_cast<size_t>(n_blocks * bytes_per_block(info.type));
    file.tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = cur.pos();
  const uint64_t data_offset = (end_of_infos + file.alignment_ - 1) / file.alignment_ * file.alignment_;
  file.data_offset_ = static_cast<size_t>(data_offset);
  const uint64_t data_size = data_offset <= file.size_ ? file.size_ - data_offset : 0;
  for (auto& info : file.tensors_) {
    const std::string who = "tensor '" + info.name + "'";
    if (info.offset % file.alignment_ != 0) {
      return p.fail(who + ": data offset " + std::to_string(info.offset) + " is not aligned to " +
                    std::to_string(file.alignment_));
    }
    if (info.offset > data_size || info.n_bytes > data_size - info.offset) {
      return p.fail(who + ": data [" + std::to_string(info.offset) + ", +" + std::to_string(info.n_bytes) +
                    ") lies outside the data section of " + std::to_string(data_size) + " bytes");
    }
    info.data = file.base_ + data_offset + info.offset;
  }
  for (size_t t = 0; t < file.tensors_.size(); ++t) {
    if (!file.tensor_index_.emplace(file.tensors_[t].name, t).second) {
      return p.fail("duplicate tensor name '" + file.tensors_[t].name + "'");
    }
  }
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const TensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string GgufFile::architecture() const {
  const GgufValue* v = find("general.architecture");
  return v != nullptr && v->type == GgufValueType::kString ? v->str : std::string();
}

namespace {

template <class T>
Result<T> int_as(std::string_view key, const GgufValue& v, const char* wanted) {
  auto x = v.as_int();
  if (v.type == GgufValueType::kUint64 && !x) {
    // u64 beyond int64: fits only an unsigned 64-bit target.
    if constexpr (std::is_same_v<T, uint64_t>) return v.u;
  }
  if (!x || v.type == GgufValueType::kBool) return wrong_type(key, v, wanted);
  if (*x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (*x > 0 && static_cast<uint64_t>(*x) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
    return key_error(key, "value " + std::to_string(*x) + " does not fit in " + wanted);
  }
  return static_cast<T>(*x);
}

Error missing(std::string_view key) { return key_error(key, "is missing"); }

}  // namespace

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  return int_as<uint32_t>(key, *v, "u32");
}

Result<int32_t> GgufFile::get_i32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  return int_as<int32_t>(key, *v, "i32");
}

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  return int_as<uint64_t>(key, *v, "u64");
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  auto x = v->as_number();
  if (!x) return wrong_type(key, *v, "a number");
  return static_cast<float>(*x);
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufValueType::kBool) return wrong_type(key, *v, "bool");
  return v->b;
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufValueType::kString) return wrong_type(key, *v, "string");
  return v->str;
}

const GgufValue* GgufFile::get_array(std::string_view key) const {
  const GgufValue* v = find(key);
  return v != nullptr && v->type == GgufValueType::kArray ? v : nullptr;
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufValueType::kArray || v->elem_type != GgufValueType::kString) {
    return wrong_type(key, *v, "array of string");
  }
  std::vector<std::string> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) out.push_back(item.str);
  return out;
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufValueType::kArray) return wrong_type(key, *v, "array of numbers");
  std::vector<float> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) {
    auto x = item.as_number();
    if (!x) return wrong_type(key, *v, "array of numbers");
    out.push_back(static_cast<float>(*x));
  }
  return out;
}

Result<std::vector<int32_t>> GgufFile::get_i32_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufValueType::kArray) return wrong_type(key, *v, "array of integers");
  std::vector<int32_t> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) {
    auto x = int_as<int32_t>(key, item, "i32");
    if (!x) return std::move(x).error();
    out.push_back(*x);
  }
  return out;
}

Result<uint32_t> GgufFile::get_u32_or(std::string_view key, uint32_t fallback) const {
  return has(key) ? get_u32(key) : Result<uint32_t>(fallback);
}

Result<float> GgufFile::get_f32_or(std::string_view key, float fallback) const {
  return has(key) ? get_f32(key) : Result<float>(fallback);
}

Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : Result<bool>(fallback);
}

}  // namespace frugal::engine
