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
  REQUIRE(reg.sync(engine_config_text(
                       "    max_batch: 4\n    prefill_chunk: 96\n    attention_cost_weight: 2.5\n"))
              .ok());
  auto first = reg.get("local");
  REQUIRE(first != nullptr);
  CHECK(first->engine_config().prefill_chunk == 96);
  CHECK(first->engine_config().attention_cost_weight == 2.5);
  CHECK(first->engine_config().max_running == 4);
  // Room in a step for every running sequence's token and one whole chunk.
  CHECK(first->engine_config().max_batch_tokens >= 4 + 96);

  // The same settings: the loaded engine stays.
  REQUIRE(reg.sync(engine_config_text(
                       "    max_batch: 4\n    prefill_chunk: 96\n    attention_cost_weight: 2.5\n"))
              .ok());
  CHECK(reg.get("local") == first);

  // A chunk larger than the default step budget (256 tokens) still fits whole.
  REQUIRE(
      reg.sync(engine_config_text(
                   "    max_batch: 4\n    prefill_chunk: 1000\n    attention_cost_weight: 2.5\n"))
          .ok());
  auto second = reg.get("local");
  REQUIRE(second != nullptr);
  CHECK(second != first);
  CHECK(second->engine_config().prefill_chunk == 1000);
  CHECK(second->engine_config().max_batch_tokens >= 1004);

  REQUIRE(reg.sync(engine_config_text(
                       "    max_batch: 4\n    prefill_chunk: 1000\n    attention_cost_weight: 0\n"))
              .ok());
  auto third = reg.get("local");
  REQUIRE(third != nullptr);
  CHECK(third != second);
  CHECK(third->engine_config().attention_cost_weight == 0.0);

  // Unset: the engine's defaults.
  REQUIRE(reg.sync(engine_config_text("")).ok());
  CHECK(reg.get("local")->engine_config().prefill_chunk == 64);
  CHECK(reg.get("local")->engine_config().attention_cost_weight == 4.0);
  reg.shutdown();
}

}  // namespace
}  // namespace frugal::gateway
