#pragma once
// GET /readyz: 200 {"status":"ready"} while the server serves and its storage takes
// writes; 503 otherwise, with the reason. "degraded" means requests are still answered
// but writes to the data directory fail (a full disk): cache fills are skipped and
// ledger rows are held in memory for retry (router/ledger.h, docs/configuration.md).
// It turns back to 200 once RocksDB accepts writes again and the held rows are written.
#include <string>

namespace frugal::gateway {

class Server;

struct Readiness {
  int status = 200;
  std::string body;  // JSON
};

Readiness readiness(Server& server);

}  // namespace frugal::gateway
