#include "experiments/figures.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

namespace lipattn::experiments {

namespace {

// Gnuplot strings in double quotes: escape backslashes and quotes.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return "cannot start: " + command;
  char buffer[4096];
  std::size_t got;
  while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, got);
  const int status = pclose(pipe);
  if (status != 0) return out.empty() ? fmt::format("exit status {}", status) : out;
  return {};
}

}  // namespace

bool gnuplot_available() {
  static const bool available = std::system("gnuplot --version >/dev/null 2>&1") == 0;
  return available;
}

std::string gnuplot_script(const Figure& f, const std::string& terminal, const std::filesystem::path& output) {
  std::ostringstream s;
  if (terminal == "svg")
    s << "set terminal svg size 900,600 dynamic enhanced font 'DejaVu Sans,13' background rgb 'white'\n";
  else
    s << "set terminal pngcairo size 900,600 enhanced font 'DejaVu Sans,11' background rgb 'white'\n";
  s << "set output " << quoted(output.string()) << "\n";
  s << "set encoding utf8\n";
  s << "set title " << quoted(f.title) << " noenhanced\n";
  s << "set xlabel " << quoted(f.xlabel) << " noenhanced\n";
  s << "set ylabel " << quoted(f.ylabel) << " noenhanced\n";
  s << "set key below noenhanced\n";
  s << "set format y \"%g\"\n";
  s << "set grid\n";
  if (f.logx) s << "set logscale x\n";
  if (f.logy) s << "set logscale y\n";
  bool any_palette = false;
  for (const auto& series : f.series) any_palette = any_palette || series.palette;
  if (any_palette) {
    s << "set palette defined (0 '#30123b', 0.25 '#4686fb', 0.5 '#1ae4b6', 0.75 '#f9ba38', 1 '#7a0403')\n";
    s << "set cblabel " << quoted(f.cblabel) << " noenhanced\n";
    if (f.logcb) s << "set logscale cb\n";
  }
  // Data inline as datablocks, so the script is self-contained and reproducible by hand.
  int index = 0;
  for (const auto& series : f.series) {
    s << "$d" << index << " << EOD\n";
    for (std::size_t i = 0; i < series.x.size() && i < series.y.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
      if ((f.logx && !(series.x[i] > 0)) || (f.logy && !(series.y[i] > 0))) continue;
      s << fmt::format("{:.17g} {:.17g}", series.x[i], series.y[i]);
      if (series.palette) s << fmt::format(" {:.17g}", i < series.z.size() ? series.z[i] : 0.0);
      s << "\n";
    }
    s << "EOD\n";
    ++index;
  }
  s << "plot ";
  index = 0;
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"};
  int color = 0;
  for (const auto& series : f.series) {
    if (index) s << ", \\\n     ";
    s << "$d" << index;
    if (series.palette) {
      s << " using 1:2:3 with points pt 7 ps 0.6 lc palette";
    } else {
      const std::string c = colors[color++ % 10];
      if (series.style == "lines")
        s << " using 1:2 with lines lw 2 lc rgb '" << c << "'";
      else if (series.style == "dashed")
        s << " using 1:2 with lines lw 2 dt 2 lc rgb '" << c << "'";
      else if (series.style == "linespoints")
        s << " using 1:2 with linespoints lw 1.5 pt 7 ps 0.6 lc rgb '" << c << "'";
      else
        s << " using 1:2 with points pt 7 ps 0.6 lc rgb '" << c << "'";
    }
    s << " title " << quoted(series.title);
    ++index;
  }
  if (f.series.empty()) s << "NaN notitle";
  s << "\nunset output\n";
  return s.str();
}

RenderedFigure render_figure(const Figure& figure, const std::filesystem::path& dir) {
  RenderedFigure r;
  std::filesystem::create_directories(dir);
  r.svg = dir / (figure.name + ".svg");
  r.png = dir / (figure.name + ".png");
  r.script = dir / (figure.name + ".gp");
  {
    std::ofstream out(r.script);
    out << "# " << figure.title << "\n# rerun: gnuplot " << r.script.filename().string() << "\n";
    out << gnuplot_script(figure, "svg", r.svg.filename()) << gnuplot_script(figure, "png", r.png.filename());
  }
  if (!gnuplot_available()) {
    r.error = "gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)";
    return r;
  }
  // Run in the figure folder so the script's relative output names land beside it.
  const std::string error =
      run_capture(fmt::format("cd '{}' && gnuplot '{}'", dir.string(), r.script.filename().string()));
  r.ok = error.empty() && std::filesystem::exists(r.svg) && std::filesystem::exists(r.png) &&
         std::filesystem::file_size(r.png) > 0;
  if (!r.ok) r.error = error.empty() ? "gnuplot wrote no output" : error;
  return r;
}

}  // namespace lipattn::experiments
