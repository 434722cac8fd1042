#include "text/file_text.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fmt/format.h>

#include "common/error.h"

namespace lipattn::text::detail {

std::string read_text_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    throw InputError(fmt::format("{}: no such file (expected the {})", path.string(), what));
  }
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw InputError(fmt::format("{}: cannot open the {} for reading", path.string(), what));
  std::string content((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  if (stream.bad()) throw InputError(fmt::format("{}: read error in the {}", path.string(), what));
  return content;
}

std::size_t line_of_byte(std::string_view content, std::size_t byte) {
  const std::size_t end = std::min(byte, content.size());
  return 1 + static_cast<std::size_t>(std::count(content.begin(), content.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
}

}  // namespace lipattn::text::detail
