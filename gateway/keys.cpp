#include "gateway/keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>

#include "cache/store.h"
#include "core/json.h"
#include "gateway/frugal_api.h"

namespace frugal::gateway {

namespace {

constexpr size_t kSecretChars = 48;
constexpr size_t kHintChars = 7;  // "fk-" and 4 characters

const char* period_name(config::BudgetPeriod p) {
  switch (p) {
    case config::BudgetPeriod::kHour: return "hour";
    case config::BudgetPeriod::kDay: return "day";
    case config::BudgetPeriod::kMonth: return "month";
  }
  return "day";
}

std::optional<config::BudgetPeriod> period_of(std::string_view s) {
  if (s == "hour") return config::BudgetPeriod::kHour;
  if (s == "day") return config::BudgetPeriod::kDay;
  if (s == "month") return config::BudgetPeriod::kMonth;
  return std::nullopt;
}

void write_list(JsonWriter& j, std::string_view k, const std::vector<std::string>& v) {
  j.key(k).begin_array();
  for (const auto& s : v) j.value(s);
  j.end_array();
}

void write_common(JsonWriter& j, const VirtualKey& k) {
  j.key("name").value(k.name);
  j.key("hint").value(k.hint);
  j.key("team").value(k.team);
  j.key("rpm").value(k.rpm);
  j.key("tpm").value(k.tpm);
  j.key("max_streams").value(k.max_streams);
  write_list(j, "models", k.models);
  write_list(j, "routes", k.routes);
  j.key("budget_usd");
  if (k.budget) j.value(k.budget->to_usd_string());
  else j.null();
  j.key("budget_per").value(period_name(k.budget_per));
  j.key("metadata").begin_object();
  for (const auto& [mk, mv] : k.metadata) j.key(mk).value(mv);
  j.end_object();
}

Error bad(std::string what) { return make_error(ErrorKind::kInvalidRequest, std::move(what), "", "invalid_key"); }

// Reads the settable fields shared by the stored form and the admin API's body.
Result<void> read_fields(simdjson::dom::object o, VirtualKey& k) {
  for (auto field : o) {
    const std::string_view name = field.key;
    simdjson::dom::element v = field.value;
    auto str = [&](std::string& out) -> Result<void> {
      std::string_view s;
      if (v.get_string().get(s)) return bad("'" + std::string(name) + "' must be a string");
      out = std::string(s);
      return {};
    };
    auto num = [&](int64_t& out, int64_t max) -> Result<void> {
      int64_t n = 0;
      if (v.get_int64().get(n) || n < 0 || n > max)
        return bad("'" + std::string(name) + "' must be a whole number from 0 to " + std::to_string(max));
      out = n;
      return {};
    };
    auto list = [&](std::vector<std::string>& out) -> Result<void> {
      simdjson::dom::array a;
      if (v.get_array().get(a)) return bad("'" + std::string(name) + "' must be a list of strings");
      out.clear();
      for (auto item : a) {
        std::string_view s;
        if (item.get_string().get(s) || s.empty()) return bad("'" + std::string(name) + "' must be a list of strings");
        out.emplace_back(s);
      }
      return {};
    };
    if (name == "name") FRUGAL_TRY(str(k.name));
    else if (name == "hash") FRUGAL_TRY(str(k.hash));
    else if (name == "hint") FRUGAL_TRY(str(k.hint));
    else if (name == "team") FRUGAL_TRY(str(k.team));
    else if (name == "rpm") FRUGAL_TRY(num(k.rpm, 1'000'000'000));
    else if (name == "tpm") FRUGAL_TRY(num(k.tpm, 1'000'000'000'000));
    else if (name == "max_streams") FRUGAL_TRY(num(k.max_streams, 1'000'000));
    else if (name == "models") FRUGAL_TRY(list(k.models));
    else if (name == "routes") FRUGAL_TRY(list(k.routes));
    else if (name == "budget_usd") {
      if (v.is_null()) {
        k.budget.reset();
        continue;
      }
      std::string s;
      FRUGAL_TRY(str(s));
      auto micros = config::parse_usd_micros(s);
      if (!micros) return bad("'budget_usd': " + micros.error().message);
      k.budget = Money::from_micros(*micros);
    } else if (name == "budget_per") {
      std::string s;
      FRUGAL_TRY(str(s));
      auto p = period_of(s);
      if (!p) return bad("'budget_per' must be hour, day or month");
      k.budget_per = *p;
    } else if (name == "created") FRUGAL_TRY(num(k.created_us, INT64_MAX));
    else if (name == "expires_us") FRUGAL_TRY(num(k.expires_us, INT64_MAX));
    else if (name == "revoked") FRUGAL_TRY(num(k.revoked_us, INT64_MAX));
    else if (name == "metadata") {
      simdjson::dom::object m;
      if (v.get_object().get(m)) return bad("'metadata' must be an object of strings");
      k.metadata.clear();
      for (auto mf : m) {
        std::string_view s;
        if (mf.value.get_string().get(s)) return bad("'metadata' must be an object of strings");
        k.metadata.emplace(std::string(mf.key), std::string(s));
      }
    } else if (name != "expires") {
      return bad("unknown field '" + std::string(name) + "'");
    }
  }
  return {};
}

}  // namespace

std::string encode_key(const VirtualKey& k) {
  std::string out;
  JsonWriter j(out);
  j.begin_object();
  write_common(j, k);
  j.key("hash").value(k.hash);
  j.key("created").value(k.created_us);
  j.key("expires_us").value(k.expires_us);
  j.key("revoked").value(k.revoked_us);
  j.end_object();
  return out;
}

Result<VirtualKey> decode_key(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::object o;
  if (p.parse(json.data(), json.size()).get_object().get(o)) return bad("a stored key is not a JSON object");
  VirtualKey k;
  FRUGAL_TRY(read_fields(o, k));
  if (!valid_key_name(k.name) || k.hash.size() != 64) return bad("a stored key lacks its name or hash");
  return k;
}

void write_key_json(std::string& out, const VirtualKey& k, int64_t now_us) {
  JsonWriter j(out);
  j.begin_object();
  write_common(j, k);
  j.key("created").value(policies::format_utc(k.created_us));
  j.key("expires");
  if (k.expires_us) j.value(policies::format_utc(k.expires_us));
  else j.null();
  j.key("revoked");
  if (k.revoked_us) j.value(policies::format_utc(k.revoked_us));
  else j.null();
  const char* state = k.revoked_us ? "revoked" : (k.expires_us && k.expires_us <= now_us) ? "expired" : "active";
  j.key("state").value(state);
  j.end_object();
}

Result<VirtualKey> key_from_request_json(std::string_view json, int64_t now_us) {
  simdjson::dom::parser p;
  simdjson::dom::object o;
  if (p.parse(json.data(), json.size()).get_object().get(o)) return bad("the body must be a JSON object");
  VirtualKey k;
  FRUGAL_TRY(read_fields(o, k));
  k.hash.clear();
  k.hint.clear();
  k.created_us = now_us;
  k.revoked_us = 0;
  k.expires_us = 0;
  std::string_view expires;
  if (!o["expires"].get_string().get(expires) && !expires.empty()) {
    auto t = parse_expiry(expires, now_us);
    if (!t) return std::move(t).error();
    k.expires_us = *t;
  }
  if (!valid_key_name(k.name)) return bad("'name' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  return k;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<std::string> new_key_secret() {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out(kKeyPrefix);
  while (out.size() < kKeyPrefix.size() + kSecretChars) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1)
      return make_error(ErrorKind::kInternal, "the system's random number generator failed");
    for (unsigned char b : buf)
      if (b < 248 && out.size() < kKeyPrefix.size() + kSecretChars) out += kAlphabet[b % 62];  // no modulo bias
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Compare digests: equal length, so the comparison's time does not depend on where
  // (or whether) the inputs differ, nor reveal the expected length.
  const std::string da = sha256_hex(a), db = sha256_hex(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

Result<int64_t> parse_expiry(std::string_view text, int64_t now_us) {
  if (text.size() >= 2) {
    const char unit = text.back();
    const std::string_view digits = text.substr(0, text.size() - 1);
    const bool all_digits = std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (all_digits && scale && digits.size() <= 9) return now_us + std::stoll(std::string(digits)) * scale * 1'000'000;
  }
  auto t = parse_time_param(text, "expires", now_us);
  if (!t) return bad("'expires': expected a duration from now (30d, 12h, 90m) or a date (2026-12-31)");
  if (*t <= now_us) return bad("'expires' is in the past");
  return *t;
}

bool name_allowed(const std::vector<std::string>& allowed, std::string_view name) {
  if (allowed.empty()) return true;
  for (const auto& a : allowed) {
    if (!a.empty() && a.back() == '*') {
      if (name.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1)) return true;
    } else if (a == name) {
      return true;
    }
  }
  return false;
}

KeyStore::KeyStore(std::shared_ptr<cache::Store> store, const policies::Clock* clock)
    : store_(std::move(store)), clock_(clock) {
  cf_ = store_->cf(kKeysCf);
  index_.store(std::make_shared<const Index>());
}

Result<std::unique_ptr<KeyStore>> KeyStore::open(std::shared_ptr<cache::Store> store, const policies::Clock* clock) {
  if (!store || !store->cf(kKeysCf))
    return make_error(ErrorKind::kInternal, "the data directory was opened without the 'keys' column family");
  std::unique_ptr<KeyStore> ks(new KeyStore(std::move(store), clock));
  FRUGAL_TRY(ks->reload());
  return ks;
}

Result<std::vector<VirtualKey>> KeyStore::read_all() const {
  std::vector<VirtualKey> out;
  std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator(rocksdb::ReadOptions(), cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto k = decode_key(std::string_view(it->value().data(), it->value().size()));
    if (!k) return make_error(ErrorKind::kInternal, "key '" + it->key().ToString() + "': " + k.error().message);
    out.push_back(std::move(*k));
  }
  if (!it->status().ok()) return cache::rocks_error(it->status(), "reading the keys");
  return out;
}

Result<void> KeyStore::reload() {
  std::lock_guard lock(write_mu_);
  auto all = read_all();
  if (!all) return std::move(all).error();
  publish(std::move(*all));
  return {};
}

void KeyStore::publish(std::vector<VirtualKey> records) {
  auto idx = std::make_shared<Index>();
  for (auto& r : records) {
    auto& rt = runtimes_[r.name];
    if (!rt) rt = std::make_shared<KeyRuntime>();
    // The key's budget tracker is rebuilt when its budget changes (spend starts over).
    const bool same_budget = [&] {
      const auto old = index_.load()->by_name.find(r.name);
      return old != index_.load()->by_name.end() && old->second->rec.budget == r.budget &&
             old->second->rec.budget_per == r.budget_per;
    }();
    if (!r.budget) {
      rt->budget.reset();
    } else if (!rt->budget || !same_budget) {
      config::BudgetSpec spec;
      spec.name = "key=" + r.name + " per " + period_name(r.budget_per);
      spec.key = r.name;  // restoring from the ledger's rollups adds only this key's spend
      spec.per = r.budget_per;
      spec.hard = r.budget;
      rt->budget = std::make_shared<policies::BudgetTracker>(std::vector<config::BudgetSpec>{spec}, clock_);
    }
    auto e = std::make_shared<KeyEntry>(KeyEntry{std::move(r), rt});
    idx->by_hash[e->rec.hash] = e;
    idx->by_name[e->rec.name] = e;
  }
  index_.store(std::move(idx));
}

KeyStore::Lookup KeyStore::find_secret(std::string_view secret, int64_t now_us) const {
  Lookup l;
  if (secret.empty()) return l;
  const auto idx = index_.load();
  const auto it = idx->by_hash.find(sha256_hex(secret));
  if (it == idx->by_hash.end()) return l;
  l.entry = it->second;
  const VirtualKey& k = l.entry->rec;
  l.state = k.revoked_us ? KeyState::kRevoked : (k.expires_us && k.expires_us <= now_us) ? KeyState::kExpired
                                                                                         : KeyState::kValid;
  return l;
}

std::shared_ptr<const KeyEntry> KeyStore::find_name(std::string_view name) const {
  const auto idx = index_.load();
  const auto it = idx->by_name.find(name);
  return it == idx->by_name.end() ? nullptr : it->second;
}

std::vector<VirtualKey> KeyStore::list() const {
  std::vector<VirtualKey> out;
  for (const auto& [name, e] : index_.load()->by_name) out.push_back(e->rec);
  return out;
}

size_t KeyStore::size() const { return index_.load()->by_name.size(); }

Result<void> KeyStore::put(const VirtualKey& rec) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const std::string v = encode_key(rec);
  const rocksdb::Status s = store_->db()->Put(wo, cf_, rec.name, v);
  if (!s.ok()) return cache::rocks_error(s, "writing key '" + rec.name + "'");
  if (mirror_) mirror_(rec);
  return {};
}

void KeyStore::set_mirror(std::function<void(const VirtualKey&)> mirror) {
  std::lock_guard lock(write_mu_);
  mirror_ = std::move(mirror);
}

Result<std::vector<VirtualKey>> KeyStore::merge(const std::vector<VirtualKey>& remote) {
  std::lock_guard lock(write_mu_);
  std::vector<VirtualKey> all = list();
  std::map<std::string, size_t, std::less<>> at;
  for (size_t i = 0; i < all.size(); ++i) at[all[i].name] = i;
  std::vector<VirtualKey> push_back;
  std::map<std::string, bool, std::less<>> seen;
  bool changed = false;
  for (const VirtualKey& r : remote) {
    seen[r.name] = true;
    const auto it = at.find(r.name);
    if (it != at.end() && all[it->second] == r) continue;
    if (it != at.end() && all[it->second].revoked_us && !r.revoked_us) {
      push_back.push_back(all[it->second]);
      continue;
    }
    const rocksdb::Status st = store_->db()->Put(rocksdb::WriteOptions(), cf_, r.name, encode_key(r));
    if (!st.ok()) return cache::rocks_error(st, "writing key '" + r.name + "'");
    if (it != at.end()) all[it->second] = r;
    else all.push_back(r);
    changed = true;
  }
  for (const VirtualKey& l : all)
    if (!seen.count(l.name)) push_back.push_back(l);
  if (changed) publish(std::move(all));
  return push_back;
}

Result<std::string> KeyStore::create(VirtualKey rec) {
  if (!valid_key_name(rec.name)) return bad("a key name is 1-64 characters of A-Z a-z 0-9 . _ -");
  std::lock_guard lock(write_mu_);
  if (index_.load()->by_name.count(rec.name))
    return make_error(ErrorKind::kInvalidRequest, "a key named '" + rec.name + "' exists already (rotate it instead)",
                      "name", "key_exists");
  auto secret = new_key_secret();
  if (!secret) return std::move(secret).error();
  rec.hash = sha256_hex(*secret);
  rec.hint = secret->substr(0, kHintChars);
  if (!rec.created_us) rec.created_us = clock_->now_us();
  FRUGAL_TRY(put(rec));
  std::vector<VirtualKey> all = list();
  all.push_back(std::move(rec));
  publish(std::move(all));
  return *secret;
}

Result<std::string> KeyStore::rotate(const std::string& name) {
  std::lock_guard lock(write_mu_);
  auto e = find_name(name);
  if (!e) return make_error(ErrorKind::kNotFound, "no key named '" + name + "'", "name", "key_not_found");
  if (e->rec.revoked_us)
    return make_error(ErrorKind::kInvalidRequest, "key '" + name + "' is revoked; create a new one", "name",
                      "key_revoked");
  auto secret = new_key_secret();
  if (!secret) return std::move(secret).error();
  VirtualKey rec = e->rec;
  rec.hash = sha256_hex(*secret);
  rec.hint = secret->substr(0, kHintChars);
  FRUGAL_TRY(put(rec));
  std::vector<VirtualKey> all = list();
  for (auto& r : all)
    if (r.name == name) r = rec;
  publish(std::move(all));
  return *secret;
}

Result<VirtualKey> KeyStore::revoke(const std::string& name) {
  std::lock_guard lock(write_mu_);
  auto e = find_name(name);
  if (!e) return make_error(ErrorKind::kNotFound, "no key named '" + name + "'", "name", "key_not_found");
  VirtualKey rec = e->rec;
  if (!rec.revoked_us) rec.revoked_us = clock_->now_us();
  FRUGAL_TRY(put(rec));
  std::vector<VirtualKey> all = list();
  for (auto& r : all)
    if (r.name == name) r = rec;
  publish(std::move(all));
  return rec;
}

}  // namespace frugal::gateway
