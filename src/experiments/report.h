// The report: one document rendered twice, as Markdown (figures linked) and as a self-contained HTML
// page (figures inline as base64 PNG), so it opens anywhere without its folder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lipattn::experiments {

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct ReportFigure {
  std::filesystem::path png, svg;  // svg may be empty
  std::string caption;
  std::string error;               // shown instead of the figure when rendering failed
};

// A block of a section, in order: a paragraph, a table or a figure.
struct Block {
  enum class Kind { Paragraph, Table, Figure, Code } kind = Kind::Paragraph;
  std::string text;  // Paragraph, Code (Markdown-ish: `code`, **bold** are kept in md and mapped in html)
  Table table;
  ReportFigure figure;
};

struct Section {
  std::string title;
  std::vector<Block> blocks;
  Section& paragraph(std::string text);
  Section& code(std::string text);
  Section& add_table(Table table);
  Section& add_figure(ReportFigure figure);
};

struct Report {
  std::string title;
  std::vector<Section> sections;
};

// Markdown; figure paths are written relative to `base` (the report's folder).
std::string render_markdown(const Report& report, const std::filesystem::path& base);
// HTML5, one file: CSS inline, every PNG embedded as data:image/png;base64.
std::string render_html(const Report& report);

std::string base64_encode(const std::string& bytes);
std::string html_escape(const std::string& text);

}  // namespace lipattn::experiments
