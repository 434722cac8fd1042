#include "io/atomic_file.h"

#include <fstream>
#include <system_error>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::io {

void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> pieces) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  const auto fail = [&](const std::string& message) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw InputError(message);
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(fmt::format("{}: cannot open for writing", tmp.string()));
    for (std::string_view piece : pieces) out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
    out.close();
    if (!out) fail(fmt::format("{}: write failed", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail(fmt::format("{}: cannot rename {} into place: {}", path.string(), tmp.string(), ec.message()));
}

}  // namespace lipattn::io
