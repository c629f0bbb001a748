#include "gateway/costs_cli.h"

#include <curl/curl.h>

#include <cstdlib>

#include "core/ids.h"
#include "gateway/frugal_api.h"
#include "router/costs.h"
#include "router/ledger.h"

namespace frugal::gateway {

namespace {

constexpr const char* kCostsUsage =
    "usage: frugal costs [--url URL [--token T] | --data-dir DIR] [--from T] [--to T] [--group-by LIST] [--json]\n"
    "  --url URL         a running gateway's admin listener (default http://127.0.0.1:8081)\n"
    "  --token T         its admin_token (default: $FRUGAL_ADMIN_TOKEN; none needed over loopback\n"
    "                    when the gateway has no admin_token)\n"
    "  --data-dir DIR    read the gateway's data directory instead (read-only)\n"
    "  --from T, --to T  Unix seconds, 2024-05-01, 2024-05-01T13:00:00Z, now, -24h, -7d\n"
    "                    (default: the last 24 hours)\n"
    "  --group-by LIST   comma-separated: hour, request_type, route, model, key, team\n"
    "                    (default request_type,model)\n"
    "  --json            print the JSON report instead of the table\n";

std::string escape_query(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || c == ',' || c == ':') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

int from_url(const std::string& url, const std::string& token, const std::string& from, const std::string& to,
             const std::string& group_by, bool json, std::ostream& out, std::ostream& err) {
  std::string target = url;
  while (!target.empty() && target.back() == '/') target.pop_back();
  target += "/v1/frugal/costs?group_by=" + escape_query(group_by) + "&format=" + (json ? "json" : "table");
  if (!from.empty()) target += "&from=" + escape_query(from);
  if (!to.empty()) target += "&to=" + escape_query(to);
  CURL* c = curl_easy_init();
  if (!c) {
    err << "frugal costs: cannot initialise libcurl\n";
    return 1;
  }
  std::string body;
  curl_slist* headers = nullptr;
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30'000L);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    err << "frugal costs: cannot reach " << url << ": " << curl_easy_strerror(rc)
        << " (is the gateway running? or use --data-dir)\n";
    return 1;
  }
  if (status != 200) {
    err << "frugal costs: " << url << " answered " << status << ": " << body << "\n";
    return 1;
  }
  out << body;
  if (json) out << "\n";
  return 0;
}

int from_data_dir(const std::string& dir, const std::string& from, const std::string& to,
                  const std::string& group_by, bool json, std::ostream& out, std::ostream& err) {
  const int64_t now = wall_us();
  int64_t to_us = now, from_us = now - 24LL * 3600 * 1'000'000;
  if (!to.empty()) {
    auto t = parse_time_param(to, "to", now);
    if (!t) {
      err << "frugal costs: " << t.error().message << "\n";
      return 2;
    }
    to_us = *t;
    if (from.empty()) from_us = to_us - 24LL * 3600 * 1'000'000;
  }
  if (!from.empty()) {
    auto f = parse_time_param(from, "from", now);
    if (!f) {
      err << "frugal costs: " << f.error().message << "\n";
      return 2;
    }
    from_us = *f;
  }
  auto gb = router::parse_group_by(group_by);
  if (!gb) {
    err << "frugal costs: " << gb.error().message << "\n";
    return 2;
  }
  auto ledger = router::Ledger::open_read_only(dir + "/db");
  if (!ledger) {
    err << "frugal costs: " << ledger.error().message << "\n";
    return 1;
  }
  auto report = (*ledger)->query(from_us, to_us, *gb);
  if (!report) {
    err << "frugal costs: " << report.error().message << "\n";
    return 1;
  }
  out << (json ? router::render_costs_json(*report) + "\n" : router::render_costs_table(*report));
  return 0;
}

}  // namespace

int costs_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string url, token, data_dir, from, to, group_by = "request_type,model";
  if (const char* t = std::getenv("FRUGAL_ADMIN_TOKEN")) token = t;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= args.size()) return false;
      dst = args[++i];
      return true;
    };
    bool ok = true;
    if (a == "--url") ok = value(url);
    else if (a == "--token") ok = value(token);
    else if (a == "--data-dir") ok = value(data_dir);
    else if (a == "--from") ok = value(from);
    else if (a == "--to") ok = value(to);
    else if (a == "--group-by") ok = value(group_by);
    else if (a == "--json") json = true;
    else if (a == "--help" || a == "-h") {
      out << kCostsUsage;
      return 0;
    } else {
      err << "frugal costs: unknown option '" << a << "'\n" << kCostsUsage;
      return 2;
    }
    if (!ok) {
      err << "frugal costs: " << a << " needs a value\n" << kCostsUsage;
      return 2;
    }
  }
  if (!url.empty() && !data_dir.empty()) {
    err << "frugal costs: give --url or --data-dir, not both\n";
    return 2;
  }
  if (!data_dir.empty()) return from_data_dir(data_dir, from, to, group_by, json, out, err);
  return from_url(url.empty() ? "http://127.0.0.1:8081" : url, token, from, to, group_by, json, out, err);
}

}  // namespace frugal::gateway
