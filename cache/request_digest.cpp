#include "cache/request_digest.h"

#include "cache/canonical_json.h"

namespace frugal::cache {
namespace {

constexpr uint64_t kMessageSeed = 0x6d6573736167655fULL;  // "message_"
constexpr uint64_t kToolsSeed = 0x746f6f6c735f5f5fULL;    // "tools___"

void put_json(HashInput& in, char tag, std::string_view json) {
  in.tag(tag).boolean(!json.empty());
  if (!json.empty()) in.str(canonical_json_or_raw(json));
}

// Only what the model sees: roles, names, content and tool calls/ids.
void put_message(HashInput& in, const Message& m) {
  in.tag('M').str(m.role).str(m.name).str(m.tool_call_id);
  in.tag('P').u64(m.parts.size());
  for (const auto& p : m.parts) {
    switch (p.kind) {
      case ContentPart::Kind::kText: in.tag('t').str(p.text); break;
      case ContentPart::Kind::kImage: in.tag('i').str(p.image_url).str(p.detail); break;
      case ContentPart::Kind::kOther: in.tag('o').str(canonical_json_or_raw(p.raw_json)); break;
    }
  }
  in.tag('C').u64(m.tool_calls.size());
  for (const auto& tc : m.tool_calls)
    in.str(tc.id).str(tc.name).str(canonical_json_or_raw(tc.arguments));
}

// Room for the canonical bytes, so that the buffer is allocated once for most requests.
size_t estimate_bytes(const ChatRequest& req) {
  size_t n = 64 + 48 * req.messages.size();  // hash slot, tags and lengths per message
  for (const auto& m : req.messages) {
    n += m.role.size() + m.name.size() + m.tool_call_id.size();
    for (const auto& p : m.parts)
      n += 24 + p.text.size() + p.image_url.size() + p.detail.size() + p.raw_json.size();
    for (const auto& tc : m.tool_calls) n += 32 + tc.id.size() + tc.name.size() + tc.arguments.size();
  }
  for (const auto& t : req.tools) n += 40 + t.name.size() + t.description.size() + t.parameters_json.size();
  return n;
}

}  // namespace

Hash128 RequestDigest::message_hash(size_t i) const {
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + 16 * i);
  Hash128 h;
  for (int b = 7; b >= 0; --b) {
    h.hi = (h.hi << 8) | p[b];
    h.lo = (h.lo << 8) | p[8 + b];
  }
  return h;
}

RequestDigest digest_request(const ChatRequest& req) {
  RequestDigest d;
  d.messages_ = req.messages.size();
  HashInput in;
  in.reserve(estimate_bytes(req));
  for (size_t i = 0; i < d.messages_; ++i) in.hash(Hash128{});  // slots, filled below
  d.messages_at_ = in.size();
  in.tag('m').u64(d.messages_);
  for (size_t i = 0; i < d.messages_; ++i) {
    const size_t start = in.size();
    put_message(in, req.messages[i]);
    in.patch_hash(16 * i, hash128(in.bytes().substr(start), kMessageSeed));
  }
  d.tools_at_ = in.size();
  in.tag('f').u64(req.tools.size());
  for (const auto& t : req.tools) {
    in.str(t.name).str(t.description);
    put_json(in, 'p', t.parameters_json);
  }
  d.tools_hash_ = hash128(in.bytes().substr(d.tools_at_), kToolsSeed);
  d.buf_ = in.take();

  d.stable_messages_ = d.messages_;
  for (size_t i = d.messages_; i > 0; --i) {
    if (req.messages[i - 1].role == "user") {
      d.stable_messages_ = i - 1;
      break;
    }
  }
  return d;
}

}  // namespace frugal::cache
