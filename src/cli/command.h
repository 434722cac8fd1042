// Subcommand registry: each src/cli/<name>.cpp registers itself with a static Command object, so
// adding a command touches no other file. The CLI is thin: parse, call the library, print.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lipattn::cli {

// setup() adds the subcommand's flags to `sub` and returns the action to run when it is chosen.
// The action returns the exit code; it may throw lipattn::InputError (printed, exit 2).
struct Command {
  std::string name;
  std::string summary;
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& registry();

struct Register {
  explicit Register(Command command) { registry().push_back(std::move(command)); }
};

}  // namespace lipattn::cli
