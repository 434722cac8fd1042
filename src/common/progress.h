// Progress lines and notes, on stderr only: stdout holds a command's results (JSON with --json), so
// nothing here can spoil them. On a terminal progress is one live line rewritten in place ("\r");
// on a pipe or file (logs, tests) it is plain lines, at most one per `plain_every` seconds.
// `set_quiet(true)` (the CLI's --quiet) silences progress and notes; errors and warnings still print.
#pragma once

#include <string>

namespace lipattn::progress {

void set_quiet(bool quiet);
bool quiet();
bool stderr_is_terminal();

// The live line's new text (terminal: redrawn at most 10 times a second), or a plain line when
// `plain_every` seconds have passed since the last one (the first always prints). `final` always
// prints, and ends the live line.
void update(const std::string& text, double plain_every = 10, bool final = false);

// Ends the live line, if one is showing, so that what comes next starts on a fresh line.
void end_line();

// "lipattn: note: TEXT" on a line of its own, unless quiet.
void note(const std::string& text);

}  // namespace lipattn::progress
