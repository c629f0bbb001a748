#pragma once
// Keeping the operator's credentials out of what clients are shown. An upstream's error
// text may echo the key it was sent ("Incorrect API key provided: sk-..."); before such
// text is relayed, every configured secret is masked in it.
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace frugal::config {

// Provider api_key values and the values of provider headers whose name says they hold
// a credential (authorization, *key*, *token*, *secret*, *password*, cookie).
std::vector<std::string> config_secrets(const GatewayConfig& cfg);

// Replaces in `text` every occurrence of each secret, and of every piece of one at least
// kMinMaskedRun bytes long (a truncated or partly masked echo), by "***". Secrets
// shorter than that are masked only whole.
inline constexpr size_t kMinMaskedRun = 8;
void mask_secrets(std::string& text, const std::vector<std::string>& secrets);

}  // namespace frugal::config
