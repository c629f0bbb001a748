#include "gateway/keys_cli.h"

#include <curl/curl.h>

#include <cstdlib>
#include <map>

#include "cache/exact_cache.h"
#include "cache/store.h"
#include "core/ids.h"
#include "core/json.h"
#include "gateway/keys.h"
#include "gateway/snapshot.h"
#include "router/ledger.h"

namespace frugal::gateway {

namespace {

constexpr const char* kKeysUsage =
    "usage: frugal keys create --name N [--team T] [--rpm N] [--tpm N] [--max-streams N] [--models a,b]\n"
    "                          [--routes r,s] [--budget USD[/hour|/day|/month]] [--expires 30d|DATE]\n"
    "                          [--meta k=v]... (--data-dir DIR | --url URL [--token T])\n"
    "       frugal keys list|show|revoke|rotate [--name N] (--data-dir DIR | --url URL [--token T])\n"
    "  The key is printed once, by create and rotate; frugal stores only its SHA-256.\n"
    "  --data-dir DIR    the gateway's data directory (not while a gateway runs on it: use --url)\n"
    "  --url URL         a running gateway's admin listener (e.g. http://127.0.0.1:8081)\n"
    "  --token T         its admin token (default: $FRUGAL_ADMIN_TOKEN)\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    std::string item = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One admin API call; the body on 2xx, else prints the error and returns nullopt.
std::optional<std::string> call(const std::string& method, std::string url, const std::string& path,
                                const std::string& token, const std::string& body, std::ostream& err) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string target = url + path;
  CURL* c = curl_easy_init();
  if (!c) {
    err << "frugal keys: cannot initialise libcurl\n";
    return std::nullopt;
  }
  std::string answer;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30'000L);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    err << "frugal keys: cannot reach " << url << ": " << curl_easy_strerror(rc) << "\n";
    return std::nullopt;
  }
  if (status < 200 || status >= 300) {
    err << "frugal keys: " << url << " answered " << status << ": " << answer << "\n";
    return std::nullopt;
  }
  return answer;
}

Result<std::unique_ptr<KeyStore>> open_dir(const std::string& dir) {
  std::vector<cache::ColumnFamilySpec> specs;
  specs.push_back(cache::cache_column_family_spec());
  specs.push_back({router::kLedgerCf, router::ledger_cf_options()});
  specs.push_back({router::kRollupsCf, router::rollups_cf_options()});
  specs.push_back({kKeysCf, rocksdb::ColumnFamilyOptions()});
  auto store = cache::Store::open(dir + "/db", std::move(specs));
  if (!store) {
    Error e = std::move(store).error();
    if (e.message.find("lock") != std::string::npos)
      e.message += " (a gateway is running on this data directory: use --url with its admin listener)";
    return e;
  }
  return KeyStore::open(std::move(*store), &budget_clock());
}

std::string shown(const VirtualKey& k, const std::string& secret) {
  std::string out;
  if (!secret.empty()) out = "{\"key\":" + json_quote(secret) + ",";
  std::string inner;
  write_key_json(inner, k, wall_us());
  out += secret.empty() ? inner : inner.substr(1);
  return out;
}

}  // namespace

int keys_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << kKeysUsage;
    return 2;
  }
  const std::string cmd = args[0];
  if (cmd != "create" && cmd != "list" && cmd != "show" && cmd != "revoke" && cmd != "rotate") {
    err << "frugal keys: unknown subcommand '" << cmd << "'\n" << kKeysUsage;
    return 2;
  }
  std::string name, team, models, routes, budget, expires, url, data_dir, token, rpm, tpm, streams;
  std::map<std::string, std::string> meta;
  if (const char* t = std::getenv("FRUGAL_ADMIN_TOKEN")) token = t;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= args.size()) return false;
      dst = args[++i];
      return true;
    };
    bool ok = true;
    std::string kv;
    if (a == "--name") ok = value(name);
    else if (a == "--team") ok = value(team);
    else if (a == "--rpm") ok = value(rpm);
    else if (a == "--tpm") ok = value(tpm);
    else if (a == "--max-streams") ok = value(streams);
    else if (a == "--models") ok = value(models);
    else if (a == "--routes") ok = value(routes);
    else if (a == "--budget") ok = value(budget);
    else if (a == "--expires") ok = value(expires);
    else if (a == "--url") ok = value(url);
    else if (a == "--data-dir") ok = value(data_dir);
    else if (a == "--token") ok = value(token);
    else if (a == "--meta") {
      ok = value(kv) && kv.find('=') != std::string::npos && kv.find('=') > 0;
      if (ok) meta[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    } else {
      err << "frugal keys: unknown option '" << a << "'\n" << kKeysUsage;
      return 2;
    }
    if (!ok) {
      err << "frugal keys: " << a << " needs a value" << (a == "--meta" ? " (KEY=VALUE)" : "") << "\n" << kKeysUsage;
      return 2;
    }
  }
  if (url.empty() == data_dir.empty()) {
    err << "frugal keys: give --data-dir DIR or --url URL\n" << kKeysUsage;
    return 2;
  }
  if (cmd != "list" && name.empty()) {
    err << "frugal keys " << cmd << ": --name is required\n";
    return 2;
  }

  // The create request, as the admin API takes it (also validated there for --data-dir).
  std::string body;
  if (cmd == "create") {
    JsonWriter j(body);
    j.begin_object().key("name").value(name);
    if (!team.empty()) j.key("team").value(team);
    auto number = [&](const char* key, const std::string& v) -> bool {
      if (v.empty()) return true;
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (*end != '\0' || n < 0) return false;
      j.key(key).value(static_cast<int64_t>(n));
      return true;
    };
    if (!number("rpm", rpm) || !number("tpm", tpm) || !number("max_streams", streams)) {
      err << "frugal keys: --rpm, --tpm and --max-streams take a whole number\n";
      return 2;
    }
    if (!models.empty()) {
      j.key("models").begin_array();
      for (const auto& m : split_list(models)) j.value(m);
      j.end_array();
    }
    if (!routes.empty()) {
      j.key("routes").begin_array();
      for (const auto& r : split_list(routes)) j.value(r);
      j.end_array();
    }
    if (!budget.empty()) {
      const size_t slash = budget.find('/');
      j.key("budget_usd").value(budget.substr(0, slash));
      if (slash != std::string::npos) j.key("budget_per").value(budget.substr(slash + 1));
    }
    if (!expires.empty()) j.key("expires").value(expires);
    if (!meta.empty()) {
      j.key("metadata").begin_object();
      for (const auto& [k, v] : meta) j.key(k).value(v);
      j.end_object();
    }
    j.end_object();
  }

  if (!url.empty()) {
    std::optional<std::string> r;
    if (cmd == "create") r = call("POST", url, "/admin/keys", token, body, err);
    else if (cmd == "list") r = call("GET", url, "/admin/keys", token, "", err);
    else if (cmd == "show") r = call("GET", url, "/admin/keys/" + name, token, "", err);
    else r = call("POST", url, "/admin/keys/" + name + "/" + cmd, token, "", err);
    if (!r) return 1;
    out << *r << "\n";
    return 0;
  }

  auto keys = open_dir(data_dir);
  if (!keys) {
    err << "frugal keys: " << keys.error().message << "\n";
    return 1;
  }
  KeyStore& ks = **keys;
  if (cmd == "list") {
    out << "{\"keys\":[";
    bool first = true;
    for (const auto& k : ks.list()) {
      out << (first ? "" : ",") << shown(k, "");
      first = false;
    }
    out << "]}\n";
    return 0;
  }
  if (cmd == "show") {
    auto e = ks.find_name(name);
    if (!e) {
      err << "frugal keys: no key named '" << name << "'\n";
      return 1;
    }
    out << shown(e->rec, "") << "\n";
    return 0;
  }
  if (cmd == "create") {
    auto rec = key_from_request_json(body, wall_us());
    if (!rec) {
      err << "frugal keys: " << rec.error().message << "\n";
      return 2;
    }
    auto secret = ks.create(*rec);
    if (!secret) {
      err << "frugal keys: " << secret.error().message << "\n";
      return 1;
    }
    out << shown(ks.find_name(name)->rec, *secret) << "\n";
    return 0;
  }
  if (cmd == "revoke") {
    auto r = ks.revoke(name);
    if (!r) {
      err << "frugal keys: " << r.error().message << "\n";
      return 1;
    }
    out << shown(*r, "") << "\n";
    return 0;
  }
  auto secret = ks.rotate(name);
  if (!secret) {
    err << "frugal keys: " << secret.error().message << "\n";
    return 1;
  }
  out << shown(ks.find_name(name)->rec, *secret) << "\n";
  return 0;
}

}  // namespace frugal::gateway
