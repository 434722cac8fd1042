#include "experiments/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <thread>

#include <fmt/core.h>

#include "common/error.h"
#include "experiments/figures.h"
#include "experiments/fit.h"
#include "experiments/sweep.h"

namespace lipattn::experiments {

namespace {

using nlohmann::json;

std::string fmt_num(double x, int digits = 3) {
  if (!std::isfinite(x)) return std::isinf(x) ? (x > 0 ? "∞" : "−∞") : "–";
  return fmt::format("{:.{}g}", x, digits);
}

// The report's loop over one group's experiments: each gets its heading paragraph in `section`,
// then f(e, points) when it has results, else the line "No results.".
template <class F>
void for_each_with_points(const Analysis& a, ExperimentGroup group, Section& section, F&& f) {
  for (const auto& e : a.experiments) {
    if (e.group != group) continue;
    const Points pts = a.points(e);
    section.paragraph(fmt::format("**{}** — {}.", e.title, e.setting));
    if (pts.empty())
      section.paragraph("No results.");
    else
      f(e, pts);
  }
}

FitRecord make_fit(const Experiment& e, const std::string& quantity, const std::vector<double>& x,
                   const std::vector<double>& y) {
  const PowerLawFit f = fit_power_law(x, y);
  FitRecord r;
  r.experiment = e.name;
  r.model = e.model;
  r.layer = e.layer;
  r.quantity = quantity;
  r.exponent = f.valid ? f.exponent : std::nan("");
  r.ci_low = f.ci_low;
  r.ci_high = f.ci_high;
  r.constant = f.valid ? f.constant : std::nan("");
  r.sqrt_constant = fit_constant(x, y, 0.5);
  r.points = f.points;
  if (!x.empty()) {
    r.n_min = *std::min_element(x.begin(), x.end());
    r.n_max = *std::max_element(x.begin(), x.end());
  }
  if (quantity == "lipschitz" || quantity == "lipschitz_below_n_star") r.reference = e.reference;
  return r;
}

const FitRecord* find_fit(const Analysis& a, const std::string& experiment, const std::string& quantity) {
  for (const auto& f : a.fits)
    if (f.experiment == experiment && f.quantity == quantity) return &f;
  return nullptr;
}

std::string interval(const FitRecord& f) {
  return fmt::format("{} [{}, {}]", fmt_num(f.exponent), fmt_num(f.ci_low), fmt_num(f.ci_high));
}

std::string compare_quarter_half(const FitRecord& f) {
  if (!std::isfinite(f.exponent)) return "–";
  auto inside = [&](double a) { return f.ci_low <= a && a <= f.ci_high; };
  std::vector<std::string> parts;
  parts.push_back(inside(0.25) ? "1/4 inside" : (f.ci_high < 0.25 ? "below 1/4" : "above 1/4"));
  parts.push_back(inside(0.5) ? "1/2 inside" : (f.ci_high < 0.5 ? "below 1/2" : "above 1/2"));
  return parts[0] + ", " + parts[1];
}

std::vector<double> line_x(double lo, double hi, int count, bool log) {
  std::vector<double> xs;
  for (int i = 0; i < count; ++i) {
    const double t = static_cast<double>(i) / (count - 1);
    xs.push_back(log ? std::exp(std::log(lo) + t * (std::log(hi) - std::log(lo))) : lo + t * (hi - lo));
  }
  return xs;
}

Series power_line(const std::string& title, double c, double a, double lo, double hi, const std::string& style) {
  Series s;
  s.title = title;
  s.style = style;
  s.x = line_x(lo, hi, 60, true);
  for (double x : s.x) s.y.push_back(c * std::pow(x, a));
  return s;
}

bool has_data(const Figure& f) {
  for (const auto& s : f.series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) return true;
  return false;
}

// Renders and adds the figure, or says why there is none (no results for it in this run).
void add_figure(Section& section, const Figure& figure, const std::filesystem::path& dir, const std::string& caption) {
  if (!has_data(figure)) {
    section.paragraph("(No data for the figure \"" + caption + "\" in this run.)");
    return;
  }
  const RenderedFigure r = render_figure(figure, dir);
  ReportFigure f;
  f.png = r.png;
  f.svg = r.svg;
  f.caption = caption;
  if (!r.ok) f.error = r.error;
  section.add_figure(f);
}

std::string reference_cell(const PaperReference& ref) { return ref.text.empty() ? "–" : ref.text; }

// Every bound of one bounds record (local at X, or on B_R^n) over the exact constant of the same
// point, and the best (smallest unrefuted) bound's ratio.
struct BoundRatios {
  std::map<std::string, std::vector<std::pair<double, double>>> per_bound;  // name → (n, bound/exact)
  std::vector<std::pair<double, double>> best;                              // (n, best/exact)
  std::map<std::string, BoundStatus> status;
};

// Which bounds record of a point: nullptr when it has none.
using BoundsOf = const BoundsRecord* (*)(const Point&);
const BoundsRecord* window_local(const Point& p) {
  const auto& r = p.result<WindowResult>();
  return r.local_bounds ? &*r.local_bounds : nullptr;
}
const BoundsRecord* construction_local(const Point& p) { return &p.result<ConstructionResult>().local_bounds; }
const BoundsRecord* construction_set(const Point& p) { return &p.result<ConstructionResult>().set_bounds; }

BoundRatios bound_ratios(const Points& pts, BoundsOf which) {
  BoundRatios out;
  for (const auto& p : pts) {
    const BoundsRecord* b = which(p);
    if (!b || !(p.value > 0)) continue;
    if (std::isfinite(b->best)) out.best.emplace_back(p.n, b->best / p.value);
    for (const auto& [name, bound] : b->bounds) {
      if (std::isfinite(bound.value)) out.per_bound[name].emplace_back(p.n, bound.value / p.value);
      out.status[name] = bound.status;
    }
  }
  return out;
}

// One row per bound: the median and the largest bound/exact over the points, and its status.
void add_bound_rows(Table& table, const std::string& label, const BoundRatios& ratios) {
  for (const auto& [name, points] : ratios.per_bound) {
    std::vector<double> rs;
    for (const auto& point : points) rs.push_back(point.second);
    std::sort(rs.begin(), rs.end());
    const auto status = ratios.status.find(name);
    table.rows.push_back({label, name, fmt_num(rs[rs.size() / 2]), fmt_num(rs.back()),
                          status == ratios.status.end() ? "" : status->second.to_string()});
  }
}

// The median over the points of each n (several windows per n), as one line.
Series median_per_n(const std::string& title, const std::vector<std::pair<double, double>>& points) {
  std::map<double, std::vector<double>> by_n;
  for (const auto& [n, y] : points) by_n[n].push_back(y);
  Series s;
  s.title = title;
  s.style = "linespoints";
  for (auto& [n, ys] : by_n) {
    std::sort(ys.begin(), ys.end());
    s.x.push_back(n);
    s.y.push_back(ys.size() % 2 ? ys[ys.size() / 2] : (ys[ys.size() / 2 - 1] + ys[ys.size() / 2]) / 2);
  }
  return s;
}

// Points (x, y) coloured by z.
Series palette_series(std::string title, std::vector<double> x, std::vector<double> y, std::vector<double> z) {
  Series s;
  s.title = std::move(title);
  s.x = std::move(x);
  s.y = std::move(y);
  s.z = std::move(z);
  s.palette = true;
  return s;
}

Figure make_figure(std::string name, std::string title, std::string xlabel, std::string ylabel, bool logx, bool logy) {
  Figure f;
  f.name = std::move(name);
  f.title = std::move(title);
  f.xlabel = std::move(xlabel);
  f.ylabel = std::move(ylabel);
  f.logx = logx;
  f.logy = logy;
  return f;
}

Series line(std::string title, std::string style, std::vector<double> x, std::vector<double> y) {
  Series s;
  s.title = std::move(title);
  s.style = std::move(style);
  s.x = std::move(x);
  s.y = std::move(y);
  return s;
}

bool real_data(const Experiment& e) { return e.group == ExperimentGroup::Real || e.group == ExperimentGroup::Long; }

}  // namespace

json FitRecord::to_json() const {
  auto num = [](double x) { return std::isfinite(x) ? json(x) : json(); };
  json j = {{"experiment", experiment},
            {"model", model},
            {"layer", layer},
            {"quantity", quantity},
            {"exponent", num(exponent)},
            {"ci_low", num(ci_low)},
            {"ci_high", num(ci_high)},
            {"constant", num(constant)},
            {"sqrt_constant", num(sqrt_constant)},
            {"points", points},
            {"n_min", num(n_min)},
            {"n_max", num(n_max)}};
  if (!reference.text.empty()) {
    j["paper"] = {{"text", reference.text},
                  {"constant", reference.constant ? json(*reference.constant) : json()},
                  {"exponent", reference.exponent ? json(*reference.exponent) : json()}};
  }
  return j;
}

Analysis::Analysis(const ReproduceOptions& o, const std::vector<Experiment>& e)
    : options(o), experiments(e), figures_dir(o.out / "figures") {
  for (const auto& x : experiments) {
    const std::string path = (o.out / "results" / (x.name + ".jsonl")).string();
    records[x.name] = read_results(path);
    // By n, then by job: the file's order is the order jobs finished in (threads, ranks, reruns after a
    // kill), and sums over the points (the fits) must not depend on it.
    std::vector<Record>& mine = records[x.name];
    std::vector<std::pair<std::string, std::size_t>> keys;
    for (std::size_t i = 0; i < mine.size(); ++i) keys.emplace_back(mine[i].job.dump(), i);
    std::sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
      return mine[a.second].n != mine[b.second].n ? mine[a.second].n < mine[b.second].n : a.first < b.first;
    });
    std::vector<Record> sorted;
    for (const auto& [key, i] : keys) sorted.push_back(std::move(mine[i]));
    mine = std::move(sorted);
    // The sections read each experiment's records as its kind's struct.
    const JobKind kind = parse_job_kind(x.spec.value("kind", std::string()));
    for (const Record& r : records[x.name])
      if (r.kind != kind)
        throw InputError(fmt::format("{}: a {} record in the results of {}, a {} experiment", path, to_string(r.kind),
                                     x.name, to_string(kind)),
                         "kind");
  }
}

Points Analysis::points(const Experiment& e) const {
  Points out;
  const auto it = records.find(e.name);
  if (it == records.end()) return out;
  for (const Record& r : it->second) {
    const Point p{r.n, lipschitz(r.result), &r};
    if (std::isfinite(p.n) && std::isfinite(p.value)) out.push_back(p);
  }
  std::stable_sort(out.begin(), out.end(), [](const Point& a, const Point& b) { return a.n < b.n; });
  return out;
}

bool Analysis::has_group(ExperimentGroup group) const {
  return std::any_of(experiments.begin(), experiments.end(), [&](const Experiment& e) { return e.group == group; });
}

Section intro_section(const Analysis& a, double sweep_seconds) {
  const ReproduceOptions& o = a.options;
  Section intro;
  intro.title = "What ran";
  intro.paragraph(fmt::format(
      "Mode: **{}**. GPT-2: `{}`; BERT: `{}`; inputs: {}. Seed {}. Every record (inputs and outputs) is in "
      "`results/*.jsonl`, every fit in `fits.json`, every figure as SVG, PNG and its gnuplot script in `figures/`.",
      o.quick ? "quick (coarse grid)" : "full", o.gpt2.empty() ? "random:gpt2" : model_argument(o.gpt2),
      o.bert.empty() ? "random:bert-base-uncased" : model_argument(o.bert),
      o.text.empty() ? "seeded random token ids" : "windows of " + o.text, o.seed));
  if (sweep_seconds >= 0)
    intro.paragraph(
        fmt::format("The sweeps of this run took {} on {} worker(s) (jobs already in the results files "
                    "were skipped).",
                    ProgressBar::format_duration(sweep_seconds),
                    o.workers > 0 ? o.workers : static_cast<int>(std::thread::hardware_concurrency())));
  intro.paragraph(
      "L is the local Lipschitz constant ‖Df(X)‖₂ (Lanczos on JᵀJ, a certified lower bound within the relative "
      "residual each experiment's setting states). Fits are least squares of log L on log n over every point (all "
      "windows), with the exponent's 95% confidence interval from Student's t with (points − 2) degrees of freedom.");
  return intro;
}

namespace {

// L against n coloured by the radius, with the fits and the paper's line; L against the radius.
void real_figures(Section& real, const Analysis& a, const Experiment& e, const Points& pts, const FitRecord& fit,
                  const FitRecord& fit_authors) {
  std::vector<double> n, L, A, radius;
  for (const auto& p : pts) {
    n.push_back(p.n);
    L.push_back(p.value);
    A.push_back(p.result<WindowResult>().authors);
    radius.push_back(p.result<WindowResult>().radius);
  }
  Figure f1 = make_figure(e.name + "-L-n", e.title, "n (tokens)", "L = ||Df(X)||_2", true, true);
  f1.cblabel = "radius";
  f1.series.push_back(palette_series("L (colour: radius)", n, L, radius));
  const double lo = *std::min_element(n.begin(), n.end()), hi = *std::max_element(n.begin(), n.end());
  if (std::isfinite(fit.exponent))
    f1.series.push_back(power_line(fmt::format("fit {}·n^{}", fmt_num(fit.constant), fmt_num(fit.exponent)),
                                   fit.constant, fit.exponent, lo, hi, "dashed"));
  if (e.reference.constant && e.reference.exponent)
    f1.series.push_back(
        power_line("paper " + e.reference.text, *e.reference.constant, *e.reference.exponent, lo, hi, "lines"));
  f1.series.push_back(line("authors' sqrt||J^T f(X)||", "points", n, A));
  if (std::isfinite(fit_authors.exponent))
    f1.series.push_back(
        power_line(fmt::format("fit {}·n^{}", fmt_num(fit_authors.constant), fmt_num(fit_authors.exponent)),
                   fit_authors.constant, fit_authors.exponent, lo, hi, "dashed"));
  Figure f2 = make_figure(e.name + "-L-radius", e.title, "radius sqrt(mean ||x_i||^2)", "L = ||Df(X)||_2", false, true);
  f2.cblabel = "n";
  f2.logcb = true;
  f2.series.push_back(palette_series("L (colour: n)", radius, L, n));
  add_figure(real, f1, a.figures_dir, e.title + ": L against n, coloured by radius");
  add_figure(real, f2, a.figures_dir, e.title + ": L against the radius, coloured by n");
}

}  // namespace

Section real_section(Analysis& a) {
  Section real;
  real.title = "Real-data protocol: L against n";
  real.paragraph(
      "For each setting: L against n coloured by the input radius √(mean_i ‖x_i‖²), with the fitted "
      "C·n^α (dashed) and the authors' quantity √‖Jᵀf(X)‖ (grey) with its own fit; then L against the "
      "radius coloured by n.");
  Table table{{"experiment", "points", "L: exponent [95% CI]", "C", "vs 1/4, 1/2", "paper",
               "authors' quantity: exponent [95% CI]"},
              {}};
  for (const auto& e : a.experiments) {
    if (!real_data(e)) continue;
    const Points pts = a.points(e);
    if (pts.empty()) {
      real.paragraph(fmt::format("**{}**: no results.", e.title));
      continue;
    }
    std::vector<double> n, L, A;
    for (const auto& p : pts) {
      n.push_back(p.n);
      L.push_back(p.value);
      A.push_back(p.result<WindowResult>().authors);
    }
    const FitRecord fit = make_fit(e, "lipschitz", n, L), fit_authors = make_fit(e, "authors", n, A);
    a.fits.push_back(fit);
    a.fits.push_back(fit_authors);
    real.paragraph(fmt::format(
        "**{}** — {}. Fit: L ≈ {}·n^{} (95% CI of the exponent [{}, {}], {} points, n = "
        "{}..{}); paper: {}.",
        e.title, e.setting, fmt_num(fit.constant), fmt_num(fit.exponent), fmt_num(fit.ci_low), fmt_num(fit.ci_high),
        fit.points, fmt_num(fit.n_min), fmt_num(fit.n_max), reference_cell(e.reference)));
    real_figures(real, a, e, pts, fit, fit_authors);
    table.rows.push_back({e.name, std::to_string(fit.points), interval(fit), fmt_num(fit.constant),
                          compare_quarter_half(fit), reference_cell(e.reference), interval(fit_authors)});
  }
  real.add_table(table);
  return real;
}

Section authors_section(const Analysis& a) {
  Section authors;
  authors.title = "The authors' quantity √‖Jᵀ f(X)‖ beside the true ‖J‖₂";
  authors.paragraph(
      "The released script linearises f at X but power-iterates on the primal output f(X) (jvp(...)[0]) rather "
      "than on a tangent, so what it reports is √‖Jᵀ f(X)‖, not ‖J‖₂ = σ_max(Df(X)). Both were computed on the "
      "same inputs; the table shows how much of the published growth each one carries.");
  Table table{{"experiment", "‖J‖₂ exponent", "authors' exponent", "median ratio authors/‖J‖₂"}, {}};
  for (const auto& e : a.experiments) {
    if (!real_data(e)) continue;
    const FitRecord *fit = find_fit(a, e.name, "lipschitz"), *fit_authors = find_fit(a, e.name, "authors");
    if (!fit || !fit_authors) continue;  // no results
    std::vector<double> ratios;
    for (const auto& p : a.points(e)) {
      const double authors = p.result<WindowResult>().authors;
      if (p.value > 0 && std::isfinite(authors)) ratios.push_back(authors / p.value);
    }
    std::sort(ratios.begin(), ratios.end());
    table.rows.push_back(
        {e.name, interval(*fit), interval(*fit_authors), ratios.empty() ? "–" : fmt_num(ratios[ratios.size() / 2])});
  }
  authors.add_table(table);
  return authors;
}

namespace {

// R and n* of an adversarial experiment's records (every record has the same).
std::pair<double, double> radius_and_n_star(const Points& pts) {
  double n_star = std::numeric_limits<double>::infinity(), R = std::nan("");
  for (const auto& p : pts) {
    const auto& r = p.result<ConstructionResult>();
    if (std::isfinite(r.radius_used)) R = r.radius_used;
    if (std::isfinite(r.log_n_star)) n_star = std::exp(r.log_n_star);
  }
  return {R, n_star};
}

// The optimised attack against the construction it starts from, per n.
void attack_tables(Section& adversarial, const Analysis& a) {
  for (const auto& e : a.experiments) {
    if (e.group != ExperimentGroup::Attack) continue;
    Table t{{"n", "construction L", "optimised lower bound", "gain", "witness in the set (violation)"}, {}};
    for (const auto& p : a.points(e)) {
      const auto& attack = p.result<ConstructionResult>().attack;
      const double lower = attack ? attack->lower : kNaN, violation = attack ? attack->violation : kNaN;
      t.rows.push_back(
          {fmt_num(p.n), fmt_num(p.value, 6), fmt_num(lower, 6), fmt_num(lower / p.value, 4), fmt_num(violation, 2)});
    }
    adversarial.paragraph(fmt::format("**{}** — {}.", e.title, e.setting));
    adversarial.add_table(t);
  }
}

}  // namespace

Section adversarial_section(Analysis& a) {
  Section adversarial;
  adversarial.title = "Adversarial inputs: the paper's construction";
  adversarial.paragraph(
      "x₁ = R u, x₂..ₙ = R u/2 along the top real eigenvector u of A_h = W_Kᵀ W_Q/√k (or the λ_min branch, by the "
      "paper's rule). The √n regime lasts while n ≪ n* = e^{λ_max R²/4} (resp. e^{2|λ_min|R²}). The exponent is "
      "fitted on the points with n < n*; C is the least-squares constant of C·√n on the same points.");
  Table table{{"setting", "R used", "n*", "n* at the paper's R", "exponent (n < n*) [95% CI]", "C of C·√n", "paper"},
              {}};
  Figure figure = make_figure("adversarial-L-n", "Adversarial L against n, with the fitted C*sqrt(n)", "n (tokens)",
                              "L = ||Df(X)||_2", true, true);
  for_each_with_points(a, ExperimentGroup::Adversarial, adversarial, [&](const Experiment& e, const Points& pts) {
    const auto [R, n_star] = radius_and_n_star(pts);
    std::vector<double> n, L, all_n, all_L;
    for (const auto& p : pts) {
      all_n.push_back(p.n);
      all_L.push_back(p.value);
      if (p.n < n_star) n.push_back(p.n), L.push_back(p.value);
    }
    const FitRecord fit = make_fit(e, "lipschitz_below_n_star", n, L);
    a.fits.push_back(fit);
    // n* scales as e^{c R²}: the n* the paper's R gives this head.
    const double n_star_paper =
        std::isfinite(n_star) && R > 0 ? std::exp(std::log(n_star) * std::pow(e.paper_radius / R, 2)) : n_star;
    table.rows.push_back({e.title, fmt_num(R, 4), fmt_num(n_star), fmt_num(n_star_paper, 3), interval(fit),
                          fmt_num(fit.sqrt_constant), reference_cell(e.reference)});
    figure.series.push_back(line(e.name, "points", all_n, all_L));
    if (std::isfinite(fit.sqrt_constant))
      figure.series.push_back(power_line(fmt::format("{}·sqrt(n)", fmt_num(fit.sqrt_constant)), fit.sqrt_constant, 0.5,
                                         pts.front().n, pts.back().n, "dashed"));
  });
  adversarial.add_table(table);
  add_figure(adversarial, figure, a.figures_dir, "Adversarial L against n (points) with the fitted C·√n (dashed)");
  attack_tables(adversarial, a);
  return adversarial;
}

namespace {

// Rows of the bounds table and the best-bound curves of the adversarial settings: the best set bound on
// B_R^n and the best local bound at X over the exact constant.
void adversarial_bounds(const Analysis& a, Table& table, Figure& figure) {
  for (const auto& e : a.experiments) {
    if (e.group != ExperimentGroup::Adversarial) continue;
    const Points pts = a.points(e);
    if (pts.empty()) continue;
    for (const bool set : {true, false}) {
      const BoundRatios ratios = bound_ratios(pts, set ? construction_set : construction_local);
      if (!ratios.best.empty()) {
        Series r = line(e.name + (set ? " best bound on B_R^n" : " best local bound"), "linespoints", {}, {});
        for (const auto& [n, ratio] : ratios.best) r.x.push_back(n), r.y.push_back(ratio);
        figure.series.push_back(r);
      }
      add_bound_rows(table, e.name + (set ? " (set B_R^n)" : " (local, at X)"), ratios);
    }
  }
}

}  // namespace

Section bounds_section(const Analysis& a) {
  Section bounds;
  bounds.title = "Upper bounds against the exact constant";
  Table table{{"experiment", "bound", "median bound/exact", "max bound/exact", "status"}, {}};
  // Local bounds over exact on the real-data windows of a sweep with "bounds": true.
  for (const auto& e : a.experiments)
    if (real_data(e)) {
      const Points pts = a.points(e);
      if (!pts.empty()) add_bound_rows(table, e.name + " (local, at X)", bound_ratios(pts, window_local));
    }
  Figure ratio_figure =
      make_figure("bounds-over-exact", "Upper bounds over the exact constant on the adversarial inputs", "n (tokens)",
                  "bound / exact", true, true);
  adversarial_bounds(a, table, ratio_figure);
  bounds.paragraph(
      "Each bound of `lipattn bound` divided by the exact constant on the same input (local bounds) or by the "
      "constant at the paper's input (bounds on the set B_R^n, which must exceed it): on the adversarial settings "
      "(one head, no W_O) and, for the real-data bounds experiments, on every window of a full layer. Status comes "
      "from the bounds module: a refuted bound is reported, never used as the best.");
  add_figure(bounds, ratio_figure, a.figures_dir,
             "Best upper bound over the exact constant, against n (adversarial settings)");
  // Real data: every local bound at each window over the exact constant at the same X.
  Figure real_figure = make_figure("bounds-over-exact-real", "Local upper bounds over the exact constant on real data",
                                   "n (tokens)", "bound / exact (median over windows)", true, true);
  for_each_with_points(a, ExperimentGroup::Bounds, bounds, [&](const Experiment& e, const Points& pts) {
    const BoundRatios ratios = bound_ratios(pts, window_local);
    for (const auto& [name, points] : ratios.per_bound) {
      const auto status = ratios.status.find(name);
      const bool refuted = status != ratios.status.end() && status->second.refuted();
      real_figure.series.push_back(median_per_n(e.name + " " + name + (refuted ? " (refuted)" : ""), points));
    }
    add_bound_rows(table, e.name + " (local, at X)", ratios);
  });
  if (a.has_group(ExperimentGroup::Bounds))
    add_figure(bounds, real_figure, a.figures_dir,
               "Each local upper bound over the exact constant at the same X: bound/exact against n on real data");
  bounds.add_table(table);
  return bounds;
}

namespace {

// The n* line of a mean-field curve: vertical, across the curve's range of L.
Series n_star_line(const std::string& name, double n_star, const std::vector<double>& L) {
  const auto [lo, hi] = std::minmax_element(L.begin(), L.end());
  return line(name + " n*", "dashed", {n_star, n_star}, {*lo, *hi});
}

}  // namespace

Section meanfield_section(Analysis& a) {
  Section meanfield;
  meanfield.title = "Mean-field regime: saturation past n*";
  Figure construction_figure = make_figure("meanfield-construction", "The construction at fixed R as n runs past n*",
                                           "n (tokens)", "L", true, true);
  Figure iid_figure =
      make_figure("meanfield-iid", "i.i.d. tokens: L converges as n grows", "n (tokens)", "L", true, true);
  Table table{{"experiment", "n*", "slope for n ≤ n*/10", "slope for n ≥ 10 n*", "last-decade slope", "L at largest n"},
              {}};
  for_each_with_points(a, ExperimentGroup::Meanfield, meanfield, [&](const Experiment& e, const Points& pts) {
    double n_star = std::nan("");
    Series s = line(e.name + " L", "linespoints", {}, {}),
           full = line(e.name + " full n-token ||Df(X)||", "points", {}, {});
    for (const auto& p : pts) {
      const auto& r = p.result<RegimeResult>();
      if (std::isfinite(r.log_n_star)) n_star = std::exp(r.log_n_star);
      s.x.push_back(p.n), s.y.push_back(p.value);
      if (std::isfinite(r.full)) full.x.push_back(p.n), full.y.push_back(r.full);
    }
    std::vector<double> below_x, below_y, above_x, above_y, last_x, last_y;
    for (const auto& p : pts) {
      if (std::isfinite(n_star) && p.n <= n_star / 10) below_x.push_back(p.n), below_y.push_back(p.value);
      if (std::isfinite(n_star) && p.n >= n_star * 10) above_x.push_back(p.n), above_y.push_back(p.value);
      if (p.n >= pts.back().n / 10) last_x.push_back(p.n), last_y.push_back(p.value);
    }
    const FitRecord fb = make_fit(e, "lipschitz_below_n_star", below_x, below_y);
    const FitRecord fa = make_fit(e, "lipschitz_above_n_star", above_x, above_y);
    const FitRecord fl = make_fit(e, "lipschitz_last_decade", last_x, last_y);
    if (fb.points >= 2) a.fits.push_back(fb);
    if (fa.points >= 2) a.fits.push_back(fa);
    a.fits.push_back(fl);
    table.rows.push_back({e.name, fmt_num(n_star), fb.points >= 2 ? interval(fb) : "–",
                          fa.points >= 2 ? interval(fa) : "–", interval(fl), fmt_num(pts.back().value, 5)});
    Figure& target = e.name.find("construction") != std::string::npos ? construction_figure : iid_figure;
    target.series.push_back(s);
    if (!full.x.empty()) target.series.push_back(full);
    if (std::isfinite(n_star)) target.series.push_back(n_star_line(e.name, n_star, s.y));
  });
  meanfield.add_table(table);
  add_figure(meanfield, construction_figure, a.figures_dir,
             "The construction at fixed R: √n growth, then saturation once n passes n* (dashed)");
  add_figure(meanfield, iid_figure, a.figures_dir,
             "i.i.d. tokens: the constant converges as n grows (masked and unmasked)");
  return meanfield;
}

Section masked_section(const Analysis& a) {
  Section masked;
  masked.title = "Masked against unmasked";
  Figure f =
      make_figure("masked-vs-unmasked", "BERT layer 6: encoder (unmasked) against decoder (masked), mean L per n",
                  "n (tokens)", "mean L over windows", true, true);
  Table t{{"setting", "exponent [95% CI]"}, {}};
  for (const char* name : {"real-bert-l6-attention", "real-bert-decoder-l6"}) {
    const auto e = std::find_if(a.experiments.begin(), a.experiments.end(),
                                [&](const Experiment& x) { return x.name == name && real_data(x); });
    if (e == a.experiments.end()) continue;
    const Points pts = a.points(*e);
    if (pts.empty()) continue;
    std::map<double, std::pair<double, int>> mean;
    for (const auto& p : pts) {
      mean[p.n].first += p.value;
      mean[p.n].second += 1;
    }
    Series s = line(name, "linespoints", {}, {});
    for (const auto& [n, sum] : mean) s.x.push_back(n), s.y.push_back(sum.first / sum.second);
    f.series.push_back(s);
    for (const auto& fit : a.fits)
      if (fit.experiment == name && fit.quantity == "lipschitz") t.rows.push_back({name, interval(fit)});
  }
  masked.paragraph(
      "Real data: the same BERT layer as an encoder and as a truly causal decoder. Mean-field: the "
      "masked curves of the previous section (Hardy's inequality caps ‖P‖₂ of a causal head by 2 "
      "e^{2‖A‖R²} instead of √n).");
  masked.add_table(t);
  add_figure(masked, f, a.figures_dir, "Masked against unmasked on real data");
  return masked;
}

Section fits_section(const Analysis& a) {
  Section fits;
  fits.title = "Every fit";
  Table all{{"experiment", "quantity", "points", "exponent [95% CI]", "C", "C of C·√n", "paper"}, {}};
  for (const auto& f : a.fits)
    all.rows.push_back({f.experiment, f.quantity, std::to_string(f.points), interval(f), fmt_num(f.constant),
                        fmt_num(f.sqrt_constant), reference_cell(f.reference)});
  fits.add_table(all);
  return fits;
}

Section reproducibility_section(const Analysis& a, const std::vector<std::string>& notes) {
  const ReproduceOptions& o = a.options;
  Section rerun;
  rerun.title = "Reproducibility";
  std::string command = "lipattn reproduce --out " + o.out.string() + (o.quick ? " --quick" : "");
  if (!o.gpt2.empty()) command += " --gpt2 " + model_argument(o.gpt2);
  if (!o.bert.empty()) command += " --bert " + model_argument(o.bert);
  if (!o.text.empty()) command += " --text " + o.text;
  rerun.paragraph("Rerun (finished jobs are skipped, so an interrupted run resumes):");
  rerun.code(command);
  for (const auto& note : notes) rerun.paragraph("Note: " + note);
  return rerun;
}

namespace {

// The trained model's points of one variant: rope "as_trained" or "none", head -1 for the whole layer.
Points trained_points(const Points& all, const std::string& rope, int head) {
  Points out;
  for (const auto& p : all) {
    const auto& job = p.record->job;
    const int h = job.contains("head") && !job["head"].is_null() ? job["head"].get<int>() : -1;
    if (job.value("rope", std::string("as_trained")) == rope && h == head) out.push_back(p);
  }
  return out;
}

// The fits of L and of the released script's quantity on one variant, tagged with it in fits.json.
std::pair<FitRecord, FitRecord> trained_fits(const Experiment& e, const Points& pts, const std::string& tag) {
  std::vector<double> n, L, A;
  for (const auto& p : pts) {
    n.push_back(p.n);
    L.push_back(p.value);
    A.push_back(p.result<WindowResult>().authors);
  }
  return {make_fit(e, "lipschitz" + tag, n, L), make_fit(e, "authors" + tag, n, A)};
}

// The answer the section opens with: the whole layers as trained, ‖J‖₂ against the released quantity.
std::string trained_answer(const std::vector<std::pair<FitRecord, FitRecord>>& layers) {
  if (layers.empty()) return "No results for the trained model.";
  int quarter_in = 0, authors_quarter_in = 0;
  double lo = 1e300, hi = -1e300, alo = 1e300, ahi = -1e300;
  std::string list;
  for (const auto& [L, A] : layers) {
    quarter_in += L.ci_low <= 0.25 && 0.25 <= L.ci_high;
    authors_quarter_in += A.ci_low <= 0.25 && 0.25 <= A.ci_high;
    lo = std::min(lo, L.exponent), hi = std::max(hi, L.exponent);
    alo = std::min(alo, A.exponent), ahi = std::max(ahi, A.exponent);
    list += fmt::format("{}layer {}: ‖J‖₂ n^{}, released quantity n^{}", list.empty() ? "" : "; ", L.layer, interval(L),
                        interval(A));
  }
  const int k = static_cast<int>(layers.size());
  return fmt::format(
      "**Answer.** On stories260K reading TinyStories, ‖J‖₂ = ‖Df(X)‖₂ of the whole attention layer grows like "
      "n^{}…n^{} across the {} layers (1/4 inside the 95% CI in {} of {}); the released script's quantity "
      "√‖Jᵀf(X)‖ grows like n^{}…n^{} (1/4 inside in {} of {}). Exponents with 95% CIs: {}. {}",
      fmt_num(lo), fmt_num(hi), k, quarter_in, k, fmt_num(alo), fmt_num(ahi), authors_quarter_in, k, list,
      hi < 0.25 && quarter_in == 0
          ? "So on this trained model the true Lipschitz constant does not grow like n^0.25: it grows more slowly."
          : (quarter_in == k ? "So the true Lipschitz constant does grow like n^0.25 here, as the paper says."
                             : "So the data support n^0.25 for ‖J‖₂ in some layers only."));
}

}  // namespace

Section trained_section(Analysis& a) {
  Section trained;
  trained.title = "A trained model on its own text: stories260K";
  std::vector<std::pair<FitRecord, FitRecord>> whole;
  Table table{{"layer", "RoPE", "head", "points", "L: exponent [95% CI]", "vs 1/4, 1/2",
               "released quantity: exponent [95% CI]", "median radius"},
              {}};
  Table bounds{{"experiment", "bound", "median bound/exact", "max bound/exact", "status"}, {}};
  std::vector<std::string> settings;
  for (const auto& e : a.experiments) {
    if (e.group != ExperimentGroup::Trained) continue;
    const Points all = a.points(e);
    settings.push_back(fmt::format("**{}** — {}.", e.title, e.setting));
    for (const std::string rope : {"as_trained", "none"}) {
      const bool with_bounds = e.spec.value("bounds", false);
      for (int head = -1; head < 8; ++head) {
        const Points pts = trained_points(all, rope, head);
        if (pts.empty()) continue;
        if (with_bounds) {
          add_bound_rows(bounds, e.name + (rope == "none" ? " (RoPE removed)" : " (as trained)"),
                         bound_ratios(pts, window_local));
          continue;
        }
        const std::string tag =
            (rope == "none" ? "_no_rope" : "") + (head < 0 ? std::string() : fmt::format("_head{}", head));
        const auto fits = trained_fits(e, pts, tag);
        a.fits.push_back(fits.first);
        a.fits.push_back(fits.second);
        if (rope == "as_trained" && head < 0) whole.push_back(fits);
        std::vector<double> radius;
        for (const auto& p : pts) radius.push_back(p.result<WindowResult>().radius);
        std::sort(radius.begin(), radius.end());
        table.rows.push_back({std::to_string(e.layer), rope == "none" ? "removed" : "as trained",
                              head < 0 ? "all (W_O)" : std::to_string(head), std::to_string(fits.first.points),
                              interval(fits.first), compare_quarter_half(fits.first), interval(fits.second),
                              fmt_num(radius[radius.size() / 2])});
      }
    }
  }
  if (settings.empty()) return trained;
  trained.paragraph(trained_answer(whole));
  trained.paragraph(
      "The paper reports n^≈0.25 for pretrained GPT-2 and BERT on real text. Here the same two quantities are "
      "measured on a LLaMA-shaped model really trained on the text it reads: ‖J‖₂ exactly (Lanczos, certified lower "
      "bound) and the released script's √‖Jᵀf(X)‖ on the same windows; then the same weights with RoPE removed, "
      "which isolates what the position encoding does to the growth.");
  for (const auto& s : settings) trained.paragraph(s);
  trained.add_table(table);
  if (!bounds.rows.empty()) {
    trained.paragraph(
        "The bounds of `lipattn bound` beside the exact value (layer 0). With RoPE the proofs do not cover the layer "
        "and no bound is reported (docs/theory.md §5, U.8); the rows are the same weights with RoPE removed.");
    trained.add_table(bounds);
  }
  return trained;
}

}  // namespace lipattn::experiments

namespace lipattn::experiments {

namespace {

// ---- Whole layers and whole models (docs/experiments.md, "Whole layers and whole models") ----------

double median_of(std::vector<double> xs) {
  xs.erase(std::remove_if(xs.begin(), xs.end(), [](double x) { return !std::isfinite(x); }), xs.end());
  if (xs.empty()) return kNaN;
  std::sort(xs.begin(), xs.end());
  const std::size_t m = xs.size() / 2;
  return xs.size() % 2 ? xs[m] : (xs[m - 1] + xs[m]) / 2;
}

// The model of a blocks experiment ("gpt2", "bert", "stories": blocks-<key>-<what>) and its words.
std::string blocks_key(const Experiment& e) {
  const std::size_t from = std::string("blocks-").size(), to = e.name.rfind('-');
  return to > from ? e.name.substr(from, to - from) : e.name;
}
std::string blocks_what(const Experiment& e) { return e.name.substr(e.name.rfind('-') + 1); }
std::string blocks_model_words(const std::string& key) {
  return key == "gpt2" ? "GPT-2" : key == "bert" ? "BERT" : key == "stories" ? "stories260K" : key;
}

const BlockResult& block_of(const Point& p) { return p.result<BlockResult>(); }

// The depth k of a stack record (its layers 0..k−1), or the layer count of a model record.
int depth_of(const BlockResult& r) { return r.layers ? r.layers->last - r.layers->first : 1; }

// Per n (or per depth): the medians over the windows of L, the product of the factors, product/exact,
// bound product/exact and the effective tokens of the top singular vector.
struct CompositionRow {
  double x = 0, windows = 0, exact = kNaN, product = kNaN, ratio = kNaN, bound_ratio = kNaN, effective = kNaN;
};
template <class Key>
std::vector<CompositionRow> composition_rows(const Points& pts, Key key) {
  std::map<double, std::vector<const Point*>> groups;
  for (const auto& p : pts) groups[key(p)].push_back(&p);
  std::vector<CompositionRow> rows;
  for (const auto& [x, members] : groups) {
    std::vector<double> exact, product, ratio, bound_ratio, effective;
    for (const Point* p : members) {
      const BlockResult& r = block_of(*p);
      exact.push_back(p->value);
      effective.push_back(r.concentration.effective_tokens);
      if (!r.composition) continue;
      product.push_back(r.composition->product);
      ratio.push_back(r.composition->ratio);
      if (r.composition->bound_product) bound_ratio.push_back(*r.composition->bound_product / p->value);
    }
    rows.push_back({x, static_cast<double>(members.size()), median_of(exact), median_of(product), median_of(ratio),
                    median_of(bound_ratio), median_of(effective)});
  }
  return rows;
}

// Why the bound product is missing: the first record's reason (every window has the same weights).
std::string no_bound_reason(const Points& pts) {
  for (const auto& p : pts)
    if (block_of(p).composition && !block_of(p).composition->bound_product)
      return block_of(p).composition->no_bound_reason;
  return {};
}

// The fits of L against n: one per layer of a `layer` experiment, L and the product for `model`.
std::vector<FitRecord> blocks_fits(const Experiment& e, const Points& pts) {
  std::map<int, std::pair<std::vector<double>, std::vector<double>>> by_layer;
  std::vector<double> n, product;
  for (const auto& p : pts) {
    const BlockResult& r = block_of(p);
    auto& [x, y] = by_layer[r.layer.value_or(-1)];
    x.push_back(p.n), y.push_back(p.value);
    if (r.composition) n.push_back(p.n), product.push_back(r.composition->product);
  }
  std::vector<FitRecord> fits;
  for (const auto& [layer, xy] : by_layer) {
    const bool one_layer = layer >= 0;
    FitRecord f = make_fit(e, one_layer ? fmt::format("lipschitz_layer{}", layer) : "lipschitz", xy.first, xy.second);
    f.layer = layer;
    fits.push_back(f);
  }
  if (!product.empty()) fits.push_back(make_fit(e, "product", n, product));
  return fits;
}

// What the section opens with, per model: the growth in n, the depth and the cancellation.
struct BlocksSummary {
  std::vector<FitRecord> layer_fits;
  std::optional<FitRecord> model_fit;
  std::optional<CompositionRow> deepest;  // the stack of every layer (depth experiment)
  std::optional<CompositionRow> model;    // the whole model at its largest n
  double model_n = 0;
  std::string no_bound;
};

std::string blocks_answer(const std::string& key, const BlocksSummary& s) {
  std::string text = "**" + blocks_model_words(key) + ".**";
  for (const FitRecord& f : s.layer_fits) text += fmt::format(" Layer {}: L ∝ n^{}.", f.layer, interval(f));
  if (s.model_fit) text += fmt::format(" Whole model: L ∝ n^{}.", interval(*s.model_fit));
  if (s.deepest)
    text += fmt::format(
        " Layers 0..{} composed (n = {}): exact L = {}, product of the per-layer constants {}, so the "
        "composition cancels a factor {}; the top singular vector spreads over {} effective tokens.",
        static_cast<int>(s.deepest->x) - 1, fmt_num(s.model_n), fmt_num(s.deepest->exact, 4),
        fmt_num(s.deepest->product, 4), fmt_num(s.deepest->ratio, 4), fmt_num(s.deepest->effective));
  if (s.model)
    text += fmt::format(" Whole model at n = {}: L = {}, product {} (ratio {}), product of per-layer upper bounds {}.",
                        fmt_num(s.model->x), fmt_num(s.model->exact, 4), fmt_num(s.model->product, 4),
                        fmt_num(s.model->ratio, 4),
                        std::isfinite(s.model->bound_ratio) ? fmt_num(s.model->bound_ratio, 3) + "× the exact value"
                                                            : "none (" + s.no_bound + ")");
  return text;
}

// L against n: the median per n of each layer and of the whole model, with the product (dashed).
Figure blocks_n_figure(const std::string& key, const std::vector<std::pair<const Experiment*, Points>>& data) {
  Figure f = make_figure("blocks-" + key + "-L-n", blocks_model_words(key) + ": whole layers and the whole model",
                         "n (tokens)", "L = ||Df(X)||_2 (median over windows)", true, true);
  for (const auto& [e, pts] : data) {
    const std::string what = blocks_what(*e);
    if (what == "depth") continue;
    std::map<int, std::vector<std::pair<double, double>>> by_layer;
    std::vector<std::pair<double, double>> product;
    for (const auto& p : pts) {
      by_layer[block_of(p).layer.value_or(-1)].emplace_back(p.n, p.value);
      if (block_of(p).composition) product.emplace_back(p.n, block_of(p).composition->product);
    }
    for (const auto& [layer, points] : by_layer)
      f.series.push_back(median_per_n(layer >= 0 ? fmt::format("layer {}", layer) : "whole model", points));
    if (!product.empty()) {
      Series s = median_per_n("product of the layer constants", product);
      s.style = "dashed";
      f.series.push_back(s);
    }
  }
  return f;
}

}  // namespace

Section blocks_section(Analysis& a) {
  Section blocks;
  blocks.title = "Whole layers and whole models";
  // The experiments of each model, in catalogue order.
  std::map<std::string, std::vector<std::pair<const Experiment*, Points>>> by_model;
  std::vector<std::string> order;
  for (const auto& e : a.experiments) {
    if (e.group != ExperimentGroup::Blocks) continue;
    const std::string key = blocks_key(e);
    if (!by_model.count(key)) order.push_back(key);
    by_model[key].emplace_back(&e, a.points(e));
  }
  if (order.empty()) return blocks;
  blocks.paragraph(
      "The paper measures one attention block. Here the whole transformer layer (attention, MLP, norms, residuals), "
      "the stack of layers 0..k−1 and the whole model (embedding output to the last hidden state) are measured "
      "exactly: L = ‖Df(X)‖₂ of the composed map at the model's own input, by Lanczos on JᵀJ through the chain "
      "rule. Beside each stack and model: the product of the per-layer constants, each at its layer's own input "
      "(a certified upper bound by the chain rule), its ratio to the exact value (how much the composition "
      "cancels), the product of per-layer upper bounds of `lipattn bound` where they exist, and the participation "
      "ratio 1/Σp_i² of the top right singular vector's token shares p_i (effective tokens, 1..n).");
  Table n_table{{"experiment", "block", "points", "exponent [95% CI]", "vs 1/4, 1/2", "C", "median effective tokens"},
                {}};
  Table depth_table{{"model", "depth k", "windows", "n", "exact L", "product of layer L", "product / exact",
                     "bound product / exact", "effective tokens"},
                    {}};
  Table model_table{{"model", "n", "windows", "exact L", "product of layer L", "product / exact",
                     "bound product / exact", "effective tokens"},
                    {}};
  Figure depth_figure = make_figure("blocks-depth", "L of the layers 0..k-1 composed, against depth k", "depth k",
                                    "L (median over windows)", false, true);
  std::vector<std::string> answers, settings;
  for (const auto& key : order) {
    BlocksSummary summary;
    for (const auto& [e, pts] : by_model[key]) {
      settings.push_back(fmt::format("**{}** — {}.", e->title, e->setting));
      if (pts.empty()) continue;
      const std::string what = blocks_what(*e);
      if (what == "depth") {
        const auto rows =
            composition_rows(pts, [](const Point& p) { return static_cast<double>(depth_of(block_of(p))); });
        Series exact = line(blocks_model_words(key) + " exact", "linespoints", {}, {}),
               product = line(blocks_model_words(key) + " product of layer L", "dashed", {}, {});
        for (const auto& r : rows) {
          exact.x.push_back(r.x), exact.y.push_back(r.exact);
          product.x.push_back(r.x), product.y.push_back(r.product);
          depth_table.rows.push_back({blocks_model_words(key), fmt_num(r.x), fmt_num(r.windows), fmt_num(pts.front().n),
                                      fmt_num(r.exact, 4), fmt_num(r.product, 4), fmt_num(r.ratio, 4),
                                      fmt_num(r.bound_ratio, 3), fmt_num(r.effective)});
        }
        depth_figure.series.push_back(exact);
        depth_figure.series.push_back(product);
        summary.deepest = rows.back();
        summary.model_n = pts.front().n;
        continue;
      }
      std::map<int, std::vector<double>> effective;
      for (const auto& p : pts)
        effective[block_of(p).layer.value_or(-1)].push_back(block_of(p).concentration.effective_tokens);
      for (const FitRecord& f : blocks_fits(*e, pts)) {
        a.fits.push_back(f);
        const bool product = f.quantity == "product";
        const std::string block =
            product ? "product of layer L" : f.layer >= 0 ? fmt::format("layer {}", f.layer) : "model";
        n_table.rows.push_back({e->name, block, std::to_string(f.points), interval(f), compare_quarter_half(f),
                                fmt_num(f.constant), product ? "" : fmt_num(median_of(effective[f.layer]))});
        if (product) continue;
        if (f.layer >= 0)
          summary.layer_fits.push_back(f);
        else
          summary.model_fit = f;
      }
      if (what == "model") {
        const auto rows = composition_rows(pts, [](const Point& p) { return p.n; });
        for (const auto& r : rows)
          model_table.rows.push_back({blocks_model_words(key), fmt_num(r.x), fmt_num(r.windows), fmt_num(r.exact, 4),
                                      fmt_num(r.product, 4), fmt_num(r.ratio, 4), fmt_num(r.bound_ratio, 3),
                                      fmt_num(r.effective)});
        summary.model = rows.back();
        summary.no_bound = no_bound_reason(pts);
      }
    }
    answers.push_back(blocks_answer(key, summary));
  }
  for (const auto& text : answers) blocks.paragraph(text);
  for (const auto& s : settings) blocks.paragraph(s);
  blocks.paragraph("L against n (fits of log L on log n over every window, 95% CIs from Student's t):");
  blocks.add_table(n_table);
  for (const auto& key : order)
    add_figure(blocks, blocks_n_figure(key, by_model[key]), a.figures_dir,
               blocks_model_words(key) + ": L against n, whole layers and the whole model (median over windows), "
                                         "with the product of the per-layer constants (dashed)");
  blocks.paragraph("L against depth: the layers 0..k−1 composed at the embedding output, exact and as the product of "
                   "the per-layer constants:");
  blocks.add_table(depth_table);
  add_figure(blocks, depth_figure, a.figures_dir,
             "Exact L of the stack 0..k-1 against depth k (solid) and the product of its layers' constants (dashed)");
  blocks.paragraph(
      "The whole model: exact against the product of its per-layer constants (the final norm included as a factor), "
      "per n (medians over the windows):");
  blocks.add_table(model_table);
  return blocks;
}

}  // namespace lipattn::experiments
