#pragma once
// GGUF (v2, v3) reader. The file is mmapped read-only (MAP_PRIVATE); metadata is parsed
// and copied into owned values, tensor data stays in the mapping and is reached through
// TensorInfo::data. Everything read from the file is validated before use: a
// malformed file yields an Error naming what is wrong, never a crash.
//
// Ownership: GgufFile owns the mapping. TensorInfo::data pointers and references
// returned by the getters stay valid as long as the GgufFile lives (moving it keeps
// them valid). A GgufFile is immutable after open(), so it may be shared across
// threads for reading.
//
// Layout reminder: ne[0] is the innermost (contiguous) dimension, as in ggml. A weight
// matrix W used as y = W x with x of n_in values and y of n_out values is stored with
// ne = {n_in, n_out}: n_out rows of row_size(type, n_in) bytes each.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/engine/format/ggml_types.h"
#include "core/error.h"

namespace frugal::engine {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;

// Metadata value type ids (part of the format).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* value_type_name(GgufValueType type);

// How rotary embeddings pair dimensions; implied by general.architecture in GGUF.
// kNormal rotates (x[2i], x[2i+1]) (llama); kNeox rotates (x[i], x[i + d/2]) (qwen2).
enum class RopeStyle { kNormal, kNeox };
RopeStyle rope_style_for(std::string_view arch);

// One metadata value. Exactly one of the payload fields is meaningful, chosen by type:
// unsigned ints -> u, signed ints -> i, floats -> f, bool -> b, string -> str,
// array -> elem_type + items (items may themselves be arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string str;
  GgufValueType elem_type = GgufValueType::kUint8;
  std::vector<GgufValue> items;

  bool is_integer() const;
  bool is_float() const;
  // Integer value if the type is an integer (or bool) and it fits in int64_t.
  std::optional<int64_t> as_int() const;
  // Numeric value of any integer or float type.
  std::optional<double> as_number() const;

  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_array(GgufValueType elem_type, std::vector<GgufValue> items);
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;
  std::array<int64_t, kGgufMaxDims> ne{1, 1, 1, 1};  // unused trailing dims are 1
  uint64_t offset = 0;         // from the start of the data section
  const void* data = nullptr;  // into the mapping; aligned to the file's alignment
  size_t n_bytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return row_size(type, ne[0]); }
  // Start of row r (0 <= r < n_rows()); rows are contiguous, row_bytes() apart.
  const uint8_t* row_data(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes();
  }
  // "[4096, 32000]"
  std::string shape_string() const;
};

class GgufFile {
 public:
  // Maps and parses a file. Errors: kNotFound if it cannot be opened, kInvalidRequest
  // for anything malformed (message starts with the path).
  static Result<GgufFile> open(const std::string& path);
  // Parses bytes held in memory; the bytes are copied, so the caller's buffer may go.
  // `name` is used in error messages. Used by the fuzz target and tests.
  static Result<GgufFile> parse_bytes(const void* data, size_t size, std::string name = "<memory>");

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }  // start of the tensor data section

  // ---- metadata ----
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // The getters fail with a message naming the key when it is missing or when its type
  // cannot represent the requested one (integers convert between widths when the value
  // fits; floats accept any numeric type).
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  // Arrays: every element must convert to the requested type.
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int32_t>> get_i32_array(std::string_view key) const;
  const GgufValue* get_array(std::string_view key) const;  // nullptr unless an array
  // Missing key -> fallback; present with a wrong type -> error.
  Result<uint32_t> get_u32_or(std::string_view key, uint32_t fallback) const;
  Result<float> get_f32_or(std::string_view key, float fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  // general.architecture ("llama", "qwen2", ...); empty if absent or not a string.
  std::string architecture() const;

  // ---- tensors ----
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;  // nullptr if absent

 private:
  struct Mapping;  // owns either an mmap or a heap copy
  GgufFile() = default;
  static Result<GgufFile> parse(std::unique_ptr<Mapping> mapping, std::string name);

  std::unique_ptr<Mapping> mapping_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;  // views into kvs_[i].key
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace frugal::engine
