// EngineRegistry (gateway/engines.cpp): a `kind: engine` provider's settings reach the
// engine it loads, and a reload loads the engine anew only when its settings change.
#include "gateway/engines.h"

#include <doctest/doctest.h>

#include <string>

#include "config/config.h"

namespace frugal::gateway {
namespace {

config::GatewayConfig engine_config_text(const std::string& extra) {
  const std::string gguf = std::string(FRUGAL_FIXTURES_DIR) + "/llama-2-tiny-random.gguf";
  auto c = config::load_config_text("providers:\n  local:\n    kind: engine\n    model: " + gguf +
                                        "\n    threads: 1\n    kv_memory: 8MiB\n" + extra,
                                    "e.yaml");
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  return std::move(c).value();
}

TEST_CASE(
    "engine providers: prefill_chunk and attention_cost_weight reach the engine and a change "
    "reloads it") {
  EngineRegistry reg;
  // Syncs the registry to a config with `extra` settings and returns the provider's engine.
  auto load = [&reg](const std::string& extra) {
    REQUIRE(reg.sync(engine_config_text(extra)).ok());
    auto e = reg.get("local");
    REQUIRE(e != nullptr);
    return e;
  };
  const std::string chunk96 = "    max_batch: 4\n    prefill_chunk: 96\n    attention_cost_weight: 2.5\n";
  auto first = load(chunk96);
  CHECK(first->engine_config().prefill_chunk == 96);
  CHECK(first->engine_config().attention_cost_weight == 2.5);
  CHECK(first->engine_config().max_running == 4);
  // Room in a step for every running sequence's token and one whole chunk.
  CHECK(first->engine_config().max_batch_tokens >= 4 + 96);

  // The same settings: the loaded engine stays.
  CHECK(load(chunk96) == first);

  // A chunk larger than the default step budget (256 tokens) still fits whole.
  auto second = load("    max_batch: 4\n    prefill_chunk: 1000\n    attention_cost_weight: 2.5\n");
  CHECK(second != first);
  CHECK(second->engine_config().prefill_chunk == 1000);
  CHECK(second->engine_config().max_batch_tokens >= 1004);

  auto third = load("    max_batch: 4\n    prefill_chunk: 1000\n    attention_cost_weight: 0\n");
  CHECK(third != second);
  CHECK(third->engine_config().attention_cost_weight == 0.0);

  // Unset: the engine's defaults.
  auto defaults = load("");
  CHECK(defaults->engine_config().prefill_chunk == 64);
  CHECK(defaults->engine_config().attention_cost_weight == 4.0);
  reg.shutdown();
}

}  // namespace
}  // namespace frugal::gateway
