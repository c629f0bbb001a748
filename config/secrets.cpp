#include "config/secrets.h"

#include <algorithm>
#include <cctype>

namespace frugal::config {

namespace {

bool names_a_credential(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view word : {"authorization", "key", "token", "secret", "password", "cookie"})
    if (lower.find(word) != std::string::npos) return true;
  return false;
}

}  // namespace

std::vector<std::string> config_secrets(const GatewayConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& p : cfg.providers) {
    if (!p.api_key.empty()) out.push_back(p.api_key);
    for (const auto& [k, v] : p.headers)
      if (!v.empty() && names_a_credential(k)) out.push_back(v);
  }
  for (const auto& [k, v] : cfg.telemetry.otlp.headers)
    if (!v.empty() && names_a_credential(k)) out.push_back(v);
  return out;
}

void mask_secrets(std::string& text, const std::vector<std::string>& secrets) {
  if (text.empty() || secrets.empty()) return;
  std::vector<bool> masked(text.size(), false);
  bool any = false;
  auto mark = [&](std::string_view needle) {
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      std::fill(masked.begin() + static_cast<std::ptrdiff_t>(at),
                masked.begin() + static_cast<std::ptrdiff_t>(at + needle.size()), true);
      any = true;
    }
  };
  for (const std::string& s : secrets) {
    if (s.size() < kMinMaskedRun) {
      if (!s.empty()) mark(s);
      continue;
    }
    // Every window of kMinMaskedRun bytes: overlapping hits cover any longer piece.
    for (size_t i = 0; i + kMinMaskedRun <= s.size(); ++i) mark(std::string_view(s).substr(i, kMinMaskedRun));
  }
  if (!any) return;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (!masked[i]) {
      out += text[i++];
      continue;
    }
    out += "***";
    while (i < text.size() && masked[i]) ++i;
  }
  text = std::move(out);
}

}  // namespace frugal::config
