// UTF-8 helpers shared by the tokenizers. Validation and decoding use ICU's U8_* macros, so the
// definition of "valid UTF-8" (no overlongs, no surrogates, nothing above U+10FFFF) is ICU's.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <unicode/umachine.h>

namespace lipattn::text::detail {

inline constexpr std::size_t kAllValid = static_cast<std::size_t>(-1);

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence, or kAllValid.
std::size_t find_invalid_utf8(std::string_view bytes);

// Throws lipattn::InputError naming `what`, the byte offset (plus `base_offset`, so callers that
// validate a piece of a larger text can report offsets into the whole) and the offending byte.
void require_valid_utf8(std::string_view bytes, std::string_view what, std::size_t base_offset = 0);

// Decodes the code point starting at bytes[pos] and advances pos. The input must be valid UTF-8.
UChar32 next_code_point(std::string_view bytes, std::size_t& pos);

void append_utf8(std::string& out, UChar32 code_point);

}  // namespace lipattn::text::detail
