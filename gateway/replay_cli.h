#pragma once
// `frugal replay` and `frugal calibrate` (docs/replay.md): a policy over a replay log
// (router/replay_run.h), and FrugalGPT's search for a cheaper one (router/calibrate.h).
#include <ostream>
#include <string>
#include <vector>

namespace frugal::gateway {

// Exit codes: 0, 1 (a file could not be read, or the log has bad lines: the report is
// still printed, the bad lines go to `err` with their line numbers), 2 (usage).
int replay_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int calibrate_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace frugal::gateway
