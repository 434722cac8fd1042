// lipattn: measure, bound and attack the Lipschitz constant of self-attention.
#include <algorithm>
#include <csignal>
#include <exception>
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/common.h"
#include "common/allocator.h"
#include "common/error.h"
#include "common/progress.h"

namespace lipattn::cli {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace lipattn::cli

int main(int argc, char** argv) {
  using namespace lipattn;
  keep_freed_buffers_for_reuse();
  CLI::App app{"lipattn: the local Lipschitz constant of self-attention, exact and certified"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lipattn 0.1.0");
  auto& commands = cli::registry();
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (auto& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    actions.emplace_back(sub, command.setup(*sub));
    // Every subcommand takes --quiet (a subcommand may define its own, with its own help).
    if (!sub->get_option_no_throw("--quiet"))
      sub->add_flag("--quiet")->description("no progress lines or notes on stderr (errors and warnings still print)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // usage errors are input errors
  }
  for (auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    progress::set_quiet(sub->get_option("--quiet")->count() > 0);
    try {
      const int code = action();
      progress::end_line();
      return code;
    } catch (const InputError& e) {
      progress::end_line();
      // Library errors name the field; the subcommand knows which of its flags set it.
      std::cerr << "lipattn: error: " << cli::input_error_message(*sub, e.what(), e.field()) << "\n";
      return 2;
    } catch (const std::exception& e) {
      progress::end_line();
      std::cerr << "lipattn: internal error: " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}
