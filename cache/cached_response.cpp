#include "cache/cached_response.h"

#include "cache/hash.h"
#include "core/varint.h"

namespace frugal::cache {
namespace {

// ---- encoding -------------------------------------------------------------------

using wire::put_le32;
using wire::put_le64;

void put_str(std::string& out, std::string_view s) {
  put_le32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool u8(uint8_t& v) {
    if (b_.size() - pos_ < 1) return false;
    v = static_cast<uint8_t>(b_[pos_++]);
    return true;
  }
  bool u32(uint32_t& v) {
    if (b_.size() - pos_ < 4) return false;
    v = wire::load_le32(b_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool u64(uint64_t& v) {
    if (b_.size() - pos_ < 8) return false;
    v = wire::load_le64(b_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool i64(int64_t& v) {
    uint64_t u;
    if (!u64(u)) return false;
    v = static_cast<int64_t>(u);
    return true;
  }
  bool str(std::string& s) {
    uint32_t n;
    if (!u32(n) || b_.size() - pos_ < n) return false;
    s.assign(b_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == b_.size(); }
  size_t remaining() const { return b_.size() - pos_; }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

constexpr size_t kHeaderBytes = 1 + 8 + 8;
constexpr size_t kChecksumBytes = 8;

Error corrupt(const char* what) {
  return make_error(ErrorKind::kInternal, std::string("corrupt cache entry: ") + what);
}

// Verifies version and checksum; returns the bytes covered by the checksum.
Result<std::string_view> verified_body(std::string_view bytes) {
  if (bytes.size() < kHeaderBytes + kChecksumBytes) return corrupt("too short");
  const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
  Reader tail(bytes.substr(body.size()));
  uint64_t stored = 0;
  (void)tail.u64(stored);
  if (hash64(body, kEntryChecksumSeed) != stored) return corrupt("checksum mismatch");
  if (static_cast<uint8_t>(body[0]) != kEntryFormatVersion) return corrupt("unknown version");
  return body;
}

}  // namespace

size_t CachedResponse::byte_size() const {
  size_t n = sizeof(CachedResponse) + completion_json.size() + model.size() + route.size() +
             tenant.size();
  for (const auto& c : chunks) n += sizeof(std::string) + c.size();
  return n;
}

bool CachedResponse::operator==(const CachedResponse& o) const {
  const auto& u = usage;
  const auto& v = o.usage;
  return completion_json == o.completion_json && chunks == o.chunks && model == o.model &&
         created_s == o.created_s && stored_at_ms == o.stored_at_ms &&
         expires_at_ms == o.expires_at_ms && route == o.route && tenant == o.tenant &&
         u.input_tokens == v.input_tokens && u.cached_input_tokens == v.cached_input_tokens &&
         u.cache_write_5m_tokens == v.cache_write_5m_tokens &&
         u.cache_write_1h_tokens == v.cache_write_1h_tokens &&
         u.output_tokens == v.output_tokens && u.reasoning_tokens == v.reasoning_tokens &&
         u.reported == v.reported;
}

std::string encode_entry(const CachedResponse& e) {
  std::string out;
  out.reserve(e.byte_size() + 64);
  out += static_cast<char>(kEntryFormatVersion);
  put_le64(out, static_cast<uint64_t>(e.expires_at_ms));
  put_le64(out, static_cast<uint64_t>(e.stored_at_ms));
  put_str(out, e.route);
  put_str(out, e.tenant);
  put_str(out, e.model);
  put_le64(out, static_cast<uint64_t>(e.created_s));
  const Usage& u = e.usage;
  for (int64_t v : {u.input_tokens, u.cached_input_tokens, u.cache_write_5m_tokens,
                    u.cache_write_1h_tokens, u.output_tokens, u.reasoning_tokens})
    put_le64(out, static_cast<uint64_t>(v));
  out += static_cast<char>(u.reported ? 1 : 0);
  put_str(out, e.completion_json);
  put_le32(out, static_cast<uint32_t>(e.chunks.size()));
  for (const auto& c : e.chunks) put_str(out, c);
  put_le64(out, hash64(out, kEntryChecksumSeed));
  return out;
}

Result<CachedResponse> decode_entry(std::string_view bytes) {
  auto body = verified_body(bytes);
  if (!body) return std::move(body).error();
  Reader r(body->substr(1));
  CachedResponse e;
  Usage& u = e.usage;
  uint64_t expires = 0, stored = 0, created = 0;
  uint8_t reported = 0;
  uint32_t nchunks = 0;
  bool ok = r.u64(expires) && r.u64(stored) && r.str(e.route) && r.str(e.tenant) &&
            r.str(e.model) && r.u64(created) && r.i64(u.input_tokens) &&
            r.i64(u.cached_input_tokens) && r.i64(u.cache_write_5m_tokens) &&
            r.i64(u.cache_write_1h_tokens) && r.i64(u.output_tokens) &&
            r.i64(u.reasoning_tokens) && r.u8(reported) && reported <= 1 &&
            r.str(e.completion_json) && r.u32(nchunks) && nchunks <= r.remaining() / 4;
  if (!ok) return corrupt("truncated field");
  e.expires_at_ms = static_cast<int64_t>(expires);
  e.stored_at_ms = static_cast<int64_t>(stored);
  e.created_s = static_cast<int64_t>(created);
  u.reported = reported == 1;
  e.chunks.resize(nchunks);
  for (auto& c : e.chunks)
    if (!r.str(c)) return corrupt("truncated chunk");
  if (!r.done()) return corrupt("trailing bytes");
  return e;
}

Result<int64_t> peek_expiry(std::string_view bytes) {
  auto body = verified_body(bytes);
  if (!body) return std::move(body).error();
  Reader r(body->substr(1));
  uint64_t expires = 0;
  (void)r.u64(expires);
  return static_cast<int64_t>(expires);
}

}  // namespace frugal::cache
