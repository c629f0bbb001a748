#pragma once
// `frugal costs`: the cost report as a table (or JSON), from a running gateway's
// GET /v1/frugal/costs (--url, the default: the gateway owns the RocksDB directory) or
// from a data directory opened read-only (--data-dir: works while a gateway runs, and
// sees what was written up to the moment it opens).
#include <ostream>
#include <string>
#include <vector>

namespace frugal::gateway {

// Returns the process exit code: 0, 1 (the report could not be produced) or 2 (usage).
int costs_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace frugal::gateway
