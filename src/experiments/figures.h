// Figures with gnuplot: one script per figure, rendered to SVG and PNG (docs/experiments.md, "Figures").
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lipattn::experiments {

struct Series {
  std::string title;
  std::vector<double> x, y;
  std::vector<double> z;        // colour values when `palette` (L vs n coloured by radius, …)
  std::string style = "points"; // "points" | "lines" | "linespoints" | "dashed" (a dashed line)
  bool palette = false;
};

struct Figure {
  std::string name;   // file stem: DIR/<name>.svg, DIR/<name>.png, DIR/<name>.gp
  std::string title;
  std::string xlabel, ylabel, cblabel;
  bool logx = false, logy = false, logcb = false;
  std::vector<Series> series;
};

struct RenderedFigure {
  std::filesystem::path svg, png, script;
  bool ok = false;
  std::string error;  // gnuplot's complaint, or "gnuplot is not installed"
};

// True when `gnuplot` runs (it is looked up on PATH).
bool gnuplot_available();

// Writes the gnuplot script (data inline as datablocks) and runs gnuplot for SVG and PNG. Never
// throws for a gnuplot failure: the report says what went wrong instead.
RenderedFigure render_figure(const Figure& figure, const std::filesystem::path& dir);

// The script alone (exposed for tests): `terminal` is "svg" or "png".
std::string gnuplot_script(const Figure& figure, const std::string& terminal, const std::filesystem::path& output);

}  // namespace lipattn::experiments
