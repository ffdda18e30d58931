#pragma once

// The subcommands of vitlab-cli. Each add* function declares its options on `parent` and
// returns how to run it once the command line is parsed and the engine is started.
#include "core/runtime.h"

#include <CLI/CLI.hpp>

#include <functional>

namespace vitlab::cli {

struct Command {
    CLI::App* app = nullptr;
    std::function<int(const RuntimeInfo&)> run;
};

Command addInfoCommand(CLI::App& parent);
Command addModelsCommand(CLI::App& parent);
Command addForwardCommand(CLI::App& parent);
Command addDataCommand(CLI::App& parent);
Command addBenchCommand(CLI::App& parent);
Command addTrainCommand(CLI::App& parent);
Command addEvalCommand(CLI::App& parent);
Command addPredictCommand(CLI::App& parent);
Command addExplainCommand(CLI::App& parent);
Command addWeightsCommand(CLI::App& parent);

} // namespace vitlab::cli
