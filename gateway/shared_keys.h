#pragma once
// Virtual keys across replicas (shared_state:). Every record a replica writes (create,
// rotate, revoke) is also put into Redis (hash `frugal:keys`, name -> stored record,
// which holds the secret's hash, never the secret) and bumps `frugal:keys:gen`. Each
// replica's SharedState maintenance thread polls the generation every
// shared_state.poll and, when it moved, merges every record into its own KeyStore
// (gateway/keys.h: KeyStore::merge), so a key created through any replica works on all
// of them and a revocation or rotation reaches the others within one poll (plus one
// round trip). Records only this replica holds (keys created with `frugal keys create
// --data-dir` before it started, or while Redis was down or empty) are put back.
// The request path never waits for any of it: it reads the in-memory index as before.
#include "gateway/keys.h"
#include "gateway/shared_state.h"

namespace frugal::gateway {

class SharedKeys {
 public:
  // Installs the key store's mirror; both must outlive this object's use (the server
  // owns all three and stops the shared state's thread first).
  SharedKeys(KeyStore& keys, SharedState& shared);
  // The first sync (blocking, before requests), then sync() as the shared state's tick.
  void start();
  // One poll: merges when the generation moved. Blocking; one thread at a time.
  void sync();

 private:
  KeyStore& keys_;
  SharedState& shared_;
  int64_t seen_generation_ = -1;
};

}  // namespace frugal::gateway
