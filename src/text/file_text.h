// Reading tokenizer files whole, with errors that name the file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace lipattn::text::detail {

// The whole file as bytes. Throws lipattn::InputError naming the path and `what` (e.g. "GPT-2
// merges.txt") if it is missing, not a regular file, or unreadable.
std::string read_text_file(const std::filesystem::path& path, std::string_view what);

// 1-based line number of byte offset `byte` in `content` (offsets past the end count as the last line).
std::size_t line_of_byte(std::string_view content, std::size_t byte);

}  // namespace lipattn::text::detail
