#include "experiments/report.h"

#include <fstream>
#include <sstream>

#include <fmt/core.h>

namespace lipattn::experiments {

namespace {

Block& append(std::vector<Block>& blocks, Block::Kind kind) {
  blocks.emplace_back();
  blocks.back().kind = kind;
  return blocks.back();
}

}  // namespace

Section& Section::paragraph(std::string text) {
  append(blocks, Block::Kind::Paragraph).text = std::move(text);
  return *this;
}

Section& Section::code(std::string text) {
  append(blocks, Block::Kind::Code).text = std::move(text);
  return *this;
}

Section& Section::add_table(Table table) {
  append(blocks, Block::Kind::Table).table = std::move(table);
  return *this;
}

Section& Section::add_figure(ReportFigure figure) {
  append(blocks, Block::Kind::Figure).figure = std::move(figure);
  return *this;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// `code` and **bold** in a paragraph, after escaping.
std::string inline_html(const std::string& text) {
  const std::string escaped = html_escape(text);
  std::string out;
  bool in_code = false, in_bold = false;
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '`') {
      out += in_code ? "</code>" : "<code>";
      in_code = !in_code;
    } else if (!in_code && escaped.compare(i, 2, "**") == 0) {
      out += in_bold ? "</strong>" : "<strong>";
      in_bold = !in_bold;
      ++i;
    } else {
      out += escaped[i];
    }
  }
  if (in_code) out += "</code>";
  if (in_bold) out += "</strong>";
  return out;
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

// One table row: `open`, each cell as `cell(s, text)` writes it, `close` (the Markdown and HTML tables).
template <typename CellWriter>
void write_row(std::ostream& s, const char* open, const std::vector<std::string>& cells, const CellWriter& cell,
               const char* close) {
  s << open;
  for (const auto& c : cells) cell(s, c);
  s << close;
}

}  // namespace

std::string render_markdown(const Report& report, const std::filesystem::path& base) {
  std::ostringstream s;
  s << "# " << report.title << "\n\n";
  for (const auto& section : report.sections) {
    s << "## " << section.title << "\n\n";
    for (const auto& b : section.blocks) {
      switch (b.kind) {
        case Block::Kind::Paragraph: s << b.text << "\n\n"; break;
        case Block::Kind::Code: s << "```\n" << b.text << "\n```\n\n"; break;
        case Block::Kind::Table: {
          auto cell = [](std::ostream& out, const std::string& c) { out << " " << md_cell(c) << " |"; };
          write_row(s, "|", b.table.header, cell, "\n|");
          for (std::size_t i = 0; i < b.table.header.size(); ++i) s << "---|";
          s << "\n";
          for (const auto& row : b.table.rows) write_row(s, "|", row, cell, "\n");
          s << "\n";
          break;
        }
        case Block::Kind::Figure: {
          if (!b.figure.error.empty()) {
            s << "*Figure not rendered: " << b.figure.error << "*\n\n";
            break;
          }
          const auto rel = std::filesystem::relative(b.figure.png, base).generic_string();
          s << "![" << b.figure.caption << "](" << rel << ")\n\n*" << b.figure.caption << "*";
          if (!b.figure.svg.empty())
            s << " ([SVG](" << std::filesystem::relative(b.figure.svg, base).generic_string() << "))";
          s << "\n\n";
          break;
        }
      }
    }
  }
  return s.str();
}

std::string render_html(const Report& report) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(report.title)
    << "</title>\n<style>\n"
       "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
       "color:#222;line-height:1.45}\n"
       "h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #aaa;margin-top:2em}\n"
       "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #bbb;padding:3px 8px;"
       "text-align:left}th{background:#eee}\n"
       "figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-style:italic;"
       "color:#444}\n"
       "code{background:#f4f4f4;padding:0 3px}pre{background:#f4f4f4;padding:8px;overflow-x:auto}\n"
       ".error{color:#a00}\n</style>\n</head>\n<body>\n";
  s << "<h1>" << html_escape(report.title) << "</h1>\n";
  int figure_number = 0;
  for (const auto& section : report.sections) {
    s << "<h2>" << html_escape(section.title) << "</h2>\n";
    for (const auto& b : section.blocks) {
      switch (b.kind) {
        case Block::Kind::Paragraph: s << "<p>" << inline_html(b.text) << "</p>\n"; break;
        case Block::Kind::Code: s << "<pre>" << html_escape(b.text) << "</pre>\n"; break;
        case Block::Kind::Table: {
          s << "<table>\n";
          write_row(s, "<tr>", b.table.header,
                    [](std::ostream& out, const std::string& c) { out << "<th>" << inline_html(c) << "</th>"; },
                    "</tr>\n");
          for (const auto& row : b.table.rows)
            write_row(s, "<tr>", row,
                      [](std::ostream& out, const std::string& c) { out << "<td>" << inline_html(c) << "</td>"; },
                      "</tr>\n");
          s << "</table>\n";
          break;
        }
        case Block::Kind::Figure: {
          ++figure_number;
          const std::string png = b.figure.error.empty() ? read_bytes(b.figure.png) : std::string();
          if (png.empty()) {
            s << "<p class=\"error\">Figure " << figure_number << " not rendered: "
              << html_escape(b.figure.error.empty() ? "the PNG is missing" : b.figure.error) << "</p>\n";
            break;
          }
          s << "<figure id=\"figure-" << figure_number << "\"><img alt=\"" << html_escape(b.figure.caption)
            << "\" src=\"data:image/png;base64," << base64_encode(png) << "\">\n<figcaption>Figure " << figure_number
            << ". " << inline_html(b.figure.caption) << "</figcaption></figure>\n";
          break;
        }
      }
    }
  }
  s << "</body>\n</html>\n";
  return s.str();
}

}  // namespace lipattn::experiments
