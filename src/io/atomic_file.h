// Whole-file writes that a reader, or a run killed midway, never sees half done.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string_view>

namespace lipattn::io {

// Writes `pieces` one after the other to `path` through `path` + ".tmp" and a rename. Throws
// InputError naming the file when it cannot be opened, written or renamed; the .tmp is removed.
void write_file_atomically(const std::filesystem::path& path, std::initializer_list<std::string_view> pieces);

}  // namespace lipattn::io
