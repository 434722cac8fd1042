#include "text/utf8.h"

#include <cstdint>

#include <fmt/format.h>
#include <unicode/utf8.h>

#include "common/error.h"

namespace lipattn::text::detail {

std::size_t find_invalid_utf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const std::uint8_t*>(bytes.data());
  // ICU's macros index with the type of `i` and `length`; 64-bit indices keep >2 GB texts safe.
  const std::int64_t length = static_cast<std::int64_t>(bytes.size());
  std::int64_t i = 0;
  while (i < length) {
    if (s[i] < 0x80) {  // ASCII fast path: most corpus text is ASCII.
      ++i;
      continue;
    }
    const std::int64_t start = i;
    UChar32 c;
    U8_NEXT(s, i, length, c);
    if (c < 0) return static_cast<std::size_t>(start);
  }
  return kAllValid;
}

void require_valid_utf8(std::string_view bytes, std::string_view what, std::size_t base_offset) {
  const std::size_t bad = find_invalid_utf8(bytes);
  if (bad == kAllValid) return;
  throw InputError(fmt::format(
      "{}: not valid UTF-8 at byte offset {} (byte 0x{:02X}); the tokenizers need UTF-8 text "
      "(re-encode the text, e.g. with iconv, or replace the bad bytes)",
      what, base_offset + bad, static_cast<unsigned>(static_cast<unsigned char>(bytes[bad]))));
}

UChar32 next_code_point(std::string_view bytes, std::size_t& pos) {
  const auto* s = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const std::int64_t length = static_cast<std::int64_t>(bytes.size());
  std::int64_t i = static_cast<std::int64_t>(pos);
  UChar32 c;
  U8_NEXT(s, i, length, c);
  pos = static_cast<std::size_t>(i);
  return c;
}

void append_utf8(std::string& out, UChar32 code_point) {
  std::uint8_t buffer[U8_MAX_LENGTH];
  std::int32_t length = 0;
  U8_APPEND_UNSAFE(buffer, length, code_point);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(length));
}

}  // namespace lipattn::text::detail
