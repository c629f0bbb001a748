#include "gateway/shared_keys.h"

#include "core/log.h"

namespace frugal::gateway {

SharedKeys::SharedKeys(KeyStore& keys, SharedState& shared) : keys_(keys), shared_(shared) {
  keys_.set_mirror([this](const VirtualKey& rec) {
    const std::string record = encode_key(rec);
    if (auto r = shared_.put_key(rec.name, record); !r) {
      log::warn("shared_state: key '" + rec.name + "' not yet shared (" + r.error().message + "); retrying");
      shared_.put_key_later(rec.name, record);
    }
  });
}

void SharedKeys::start() {
  sync();
  shared_.set_tick([this] { sync(); });
}

void SharedKeys::sync() {
  auto generation = shared_.key_generation();
  if (!generation || *generation == seen_generation_) return;
  auto records = shared_.key_records();
  if (!records) return;
  std::vector<VirtualKey> remote;
  for (const auto& text : *records) {
    auto k = decode_key(text);
    if (!k) {
      log::warn("shared_state: a key record in Redis is unreadable (" + k.error().message + "); ignored");
      continue;
    }
    remote.push_back(std::move(*k));
  }
  auto push = keys_.merge(remote);
  if (!push) {
    log::warn("shared_state: merging the shared keys failed: " + push.error().message);
    return;
  }
  for (const VirtualKey& rec : *push)
    if (!shared_.put_key(rec.name, encode_key(rec))) return;  // the next poll tries again
  seen_generation_ = push->empty() ? *generation : -1;  // after a put the generation moved
}

}  // namespace frugal::gateway
