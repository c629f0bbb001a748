// The gateway's YAML configuration (config/config.cpp) from an in-memory text: any
// bytes must load or be rejected with a message, never crash or hang; `config check`
// and every reload go through the same function.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frugal;
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A source in <...> names no file: relative paths in the text are not resolved against it.
  auto cfg = config::load_config_text(text, "<fuzz>");
  fuzz::accepted(cfg.ok());
  if (cfg.ok()) {
    fuzz::require(!cfg->server.listen.empty(), "a configuration without a listener");
    for (const auto& p : cfg->providers) (void)cfg->provider(p.name);
  } else {
    fuzz::require(!cfg.error().message.empty(), "a rejection without a message");
  }
  return 0;
}
