#pragma once
// `frugal keys create|list|show|revoke|rotate`: virtual keys, either in a data directory
// (--data-dir: RocksDB opened directly; fails while a gateway holds it) or through a
// running gateway's admin API (--url, the admin listener; --token or FRUGAL_ADMIN_TOKEN).
#include <ostream>
#include <string>
#include <vector>

namespace frugal::gateway {

// Returns the process exit code: 0, 1 (the operation failed) or 2 (usage).
int keys_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace frugal::gateway
