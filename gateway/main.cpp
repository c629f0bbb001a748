// The `frugal` executable: subcommand dispatch.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "backends/engine/format/cli.h"
#include "backends/engine/hub/pull.h"
#include "config/config.h"
#include "gateway/chat_exchange.h"
#include "gateway/costs_cli.h"
#include "gateway/replay_cli.h"
#include "gateway/keys_cli.h"
#include "gateway/prices_cli.h"
#include "core/log.h"
#include "gateway/server.h"
#include "gateway/snapshot.h"

#ifdef FRUGAL_HAVE_MIMALLOC
#include <mimalloc.h>
#endif

namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(frugal — a cost-aware model-routing gateway

Usage:
  frugal serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--log-level LEVEL]
      Serve the OpenAI-compatible API. Without --config the built-in default config
      is used: listen on 127.0.0.1:8080, provider "openai" from OPENAI_BASE_URL
      (default https://api.openai.com/v1) and OPENAI_API_KEY, any model passed through.
      --engine-model PATH [--draft-model PATH] [--engine-threads N]
          Also serve a local GGUF model in-process as provider "local": its model name
          is local/<file stem> (e.g. local/llama-2-tiny-random). With a draft model (same
          vocabulary) the engine decodes speculatively.
  frugal pull REPO FILE [--dir DIR] [--revision REV]
      Download FILE from the Hugging Face repository REPO (resumable; HF_ENDPOINT and
      HF_TOKEN are honoured), e.g. frugal pull bartowski/SmolLM2-135M-Instruct-GGUF
      SmolLM2-135M-Instruct-Q8_0.gguf --dir models
  frugal config check FILE     Validate a config file (and the policy it names) and exit
                               (0 = valid).
  frugal costs [--url URL | --data-dir DIR] [--from T] [--to T] [--group-by LIST] [--json]
      Print the cost report (cost, baseline, savings by request type, model, key, ...)
      of a running gateway (default http://127.0.0.1:8080) or of a data directory.
  frugal replay --policy P.yaml --log L.jsonl [--json]
      Run a policy over recorded outcomes (a replay log, docs/replay.md) through the
      real router: per request type, cost, baseline, savings, accuracy, acceptance and
      escalation per tier, and the same for always-the-reference.
  frugal calibrate --policy P.yaml --log L.jsonl (--target-accuracy X | --max-cost Y)
                   [--folds K] [--models a,b,c] [--json] [--write OUT.yaml] [--plot OUT.png]
      Search the cheapest cascade (tiers, order, confidence thresholds) meeting the
      target per request type, cross-validated; X may be ref-0.5pp. See docs/replay.md.
  frugal keys create --name N [--team T] [--rpm N] [--tpm N] [--max-streams N] [--models a,b]
             [--routes r,s] [--budget USD[/day]] [--expires 30d] (--data-dir DIR | --url URL)
      Create a virtual key (printed once; stored as its SHA-256). Also
      frugal keys list|show|revoke|rotate [--name N] (--data-dir DIR | --url URL [--token T]);
      --url is the admin listener of a running gateway (default port: the API port + 1).
  frugal prices [--json] [--model M]
      Print the built-in price catalogue (version, date, sources; USD per 1M tokens:
      input, cached input, cache write 5m / 1h, output, batch discount). A policy's own
      `prices:` win over it.
  frugal key-id [KEY]          Print the key id (a hash) frugal records for an API key,
                               for `teams:` and budget scopes; reads KEY from stdin if absent.
  frugal models inspect FILE   Print a GGUF file's metadata and tensor table.
  frugal tokenize MODEL.gguf   Read one JSON string per stdin line, print its token ids
                               (no BOS) as one JSON array per line.
  frugal config default        Print the built-in default config.
  frugal version               Print the version.
  frugal --help                This text.

Signals (serve): SIGINT/SIGTERM stop gracefully; SIGHUP reloads the config file and
its policy (as do POST /admin/reload and any change of either file on disk).
)";

// The usage lines of one command: its entries in kUsage, from the line that starts
// with "  frugal CMD" to the next entry.
std::string usage_of(const std::string& cmd) {
  const std::string text = kUsage;
  const std::string start = "  frugal " + cmd;
  std::string out;
  bool in = false;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at + 1);
    at = nl == std::string::npos ? text.size() : nl + 1;
    const bool entry = line.rfind("  frugal ", 0) == 0;
    if (entry) in = line.rfind(start, 0) == 0 && (line.size() == start.size() || line[start.size()] == ' ' ||
                                                  line[start.size()] == '\n');
    else if (line.find_first_not_of(" \n") == 0 || line == "\n") in = false;  // a section or a blank line
    if (in) out += line;
  }
  return out.empty() ? std::string(kUsage) : "Usage:\n" + out;
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "frugal: %s\n\n%s", msg.c_str(), kUsage);
  return 2;
}

// `--engine-model`: provider "local" of kind engine. Applied at start and at every reload.
frugal::Result<void> add_engine_provider(frugal::config::GatewayConfig& cfg, const std::string& model,
                                         const std::string& draft, int threads) {
  using frugal::config::ProviderKind;
  if (model.empty()) return {};
  if (cfg.provider("local") != nullptr)
    return frugal::make_error(frugal::ErrorKind::kInvalidRequest,
                              "--engine-model adds provider 'local', but " + cfg.source + " already defines one");
  frugal::config::ProviderConfig p;
  p.name = "local";
  p.kind = ProviderKind::kEngine;
  p.timeouts = frugal::config::kEngineTimeouts;
  p.engine.model = model;
  p.engine.draft_model = draft;
  p.engine.threads = threads;
  cfg.providers.push_back(std::move(p));
  return {};
}

int cmd_serve(const std::vector<std::string>& args) {
  std::string config_path, listen, data_dir, engine_model, draft_model, engine_threads;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string level;
    if (a == "--config") { if (!value(config_path)) return usage_error("--config needs a FILE"); }
    else if (a == "--listen") { if (!value(listen)) return usage_error("--listen needs HOST:PORT"); }
    else if (a == "--data-dir") { if (!value(data_dir)) return usage_error("--data-dir needs a DIR"); }
    else if (a == "--engine-model") { if (!value(engine_model)) return usage_error("--engine-model needs a GGUF PATH"); }
    else if (a == "--draft-model") { if (!value(draft_model)) return usage_error("--draft-model needs a GGUF PATH"); }
    else if (a == "--engine-threads") { if (!value(engine_threads)) return usage_error("--engine-threads needs N"); }
    else if (a == "--log-level") {
      if (!value(level)) return usage_error("--log-level needs debug|info|warn|error");
      using frugal::log::Level;
      if (level == "debug") frugal::log::set_level(Level::kDebug);
      else if (level == "info") frugal::log::set_level(Level::kInfo);
      else if (level == "warn") frugal::log::set_level(Level::kWarn);
      else if (level == "error") frugal::log::set_level(Level::kError);
      else return usage_error("unknown --log-level '" + level + "': expected debug, info, warn or error");
    }
    else return usage_error("unknown option '" + a + "' for serve");
  }
  auto cfg = config_path.empty() ? frugal::config::load_default_config()
                                 : frugal::config::load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "frugal: invalid configuration: %s\n", cfg.error().message.c_str());
    return 1;
  }
  std::optional<frugal::config::Listener> listener;
  if (!listen.empty()) {
    auto l = frugal::config::parse_listener(listen);
    if (!l) return usage_error("--listen: " + l.error().message);
    listener = *l;
  }
  if (!draft_model.empty() && engine_model.empty()) return usage_error("--draft-model needs --engine-model");
  int threads = 0;
  if (!engine_threads.empty()) {
    char* end = nullptr;
    const long v = std::strtol(engine_threads.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > 1024) return usage_error("--engine-threads: expected 0..1024");
    threads = static_cast<int>(v);
  }
  // Also at every reload: a reload compares listeners and data_dir with the running ones.
  auto amend = [engine_model, draft_model, threads, listener, data_dir](frugal::config::GatewayConfig& c) {
    if (listener) c.server.listen = {*listener};
    if (!data_dir.empty()) c.data_dir = data_dir;
    return add_engine_provider(c, engine_model, draft_model, threads);
  };
  if (auto r = amend(*cfg); !r) {
    std::fprintf(stderr, "frugal: %s\n", r.error().message.c_str());
    return 1;
  }
  frugal::gateway::Server server(std::move(*cfg), config_path);
  server.set_config_amend(amend);
  server.watch_signals();
  if (auto r = server.start(); !r) {
    std::fprintf(stderr, "frugal: %s\n", r.error().message.c_str());
    return 1;
  }
  server.run_until_signal();
  return 0;
}

int cmd_config(const std::vector<std::string>& args) {
  if (args.size() == 1 && args[0] == "default") {
    std::fputs(frugal::config::default_config_yaml().c_str(), stdout);
    return 0;
  }
  if (args.size() == 2 && args[0] == "check") {
    auto cfg = frugal::config::load_config_file(args[1]);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return 1;
    }
    auto policy = frugal::gateway::load_policy_for(*cfg);
    if (!policy) {
      std::fprintf(stderr, "%s\n", policy.error().message.c_str());
      return 1;
    }
    std::printf("%s: valid (%zu providers, %zu model aliases", args[1].c_str(), cfg->providers.size(),
                cfg->aliases.size());
    if (*policy)
      std::printf("; policy %s: %zu request types, %zu routes", cfg->policy_path.c_str(),
                  (*policy)->request_types().size(), (*policy)->config().routes.size());
    std::printf(")\n");
    return 0;
  }
  return usage_error("usage: frugal config check FILE | frugal config default");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  static const char* const kCommands[] = {"serve", "pull", "config", "costs", "prices", "keys", "replay", "calibrate", "key-id", "models", "tokenize", "version"};
  const bool known = std::find(std::begin(kCommands), std::end(kCommands), cmd) != std::end(kCommands);
  if (known && wants_help(args)) {
    // Every command answers --help, before reading any of its arguments.
    const std::string sub = (cmd == "config" || cmd == "models") && !args.empty() && args[0][0] != '-'
                                ? cmd + " " + args[0]
                                : cmd;
    std::string text = usage_of(sub);
    if (text == kUsage && sub != cmd) text = usage_of(cmd);
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  if (cmd == "serve") return cmd_serve(args);
  if (cmd == "version" || cmd == "--version") {
    std::printf("frugal %s\n", kVersion);
#ifdef FRUGAL_HAVE_MIMALLOC
    std::printf("allocator: mimalloc %d.%d.%d\n", mi_version() / 100, mi_version() / 10 % 10, mi_version() % 10);
#else
    std::printf("allocator: glibc malloc\n");
#endif
    return 0;
  }
  if (cmd == "config") return cmd_config(args);
  if (cmd == "replay") return frugal::gateway::replay_main(args, std::cout, std::cerr);
  if (cmd == "calibrate") return frugal::gateway::calibrate_main(args, std::cout, std::cerr);
  if (cmd == "costs") return frugal::gateway::costs_main(args, std::cout, std::cerr);
  if (cmd == "keys") return frugal::gateway::keys_main(args, std::cout, std::cerr);
  if (cmd == "prices") return frugal::gateway::prices_main(args, std::cout, std::cerr);
  if (cmd == "key-id") {
    std::string key;
    if (args.size() == 1) key = args[0];
    else if (args.empty()) std::getline(std::cin, key);
    else return usage_error("usage: frugal key-id [KEY]");
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
    if (key.empty()) return usage_error("frugal key-id: empty key");
    std::printf("%s\n", frugal::gateway::tenant_id_of_key(key).c_str());
    return 0;
  }
  if (cmd == "models") {
    if (args.size() != 2 || args[0] != "inspect") return usage_error("usage: frugal models inspect FILE.gguf");
    return frugal::engine::models_inspect_main(args[1], std::cout, std::cerr);
  }
  if (cmd == "pull") return frugal::engine::hub::pull_main(args, std::cout, std::cerr);
  if (cmd == "tokenize") {
    if (args.size() != 1) return usage_error("usage: frugal tokenize MODEL.gguf < lines.jsonl");
    return frugal::engine::tokenize_main(args[0], std::cin, std::cout, std::cerr);
  }
  return usage_error("unknown command '" + cmd + "'");
}
