// What the fuzz targets share (docs/fuzzing.md). A reader's answer to garbage is lipattn::InputError
// (the project's typed error for bad input); anything else that escapes a target — another exception,
// a crash, a sanitizer report, a leak, a hang — is a bug in the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace lipattn::fuzz {

// Runs `body`, accepting InputError as the expected answer to a bad input.
template <class Body>
void accept_input_errors(Body&& body) {
  try {
    body();
  } catch (const InputError&) {
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return size == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), size);
}

// Splits at the first NUL bytes into at most `parts` pieces (the last takes the rest): targets whose
// reader takes several files read them from one input this way.
inline std::vector<std::string_view> split_at_nul(std::string_view text, std::size_t parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < parts) {
    const std::size_t nul = text.find('\0');
    if (nul == std::string_view::npos) break;
    out.push_back(text.substr(0, nul));
    text.remove_prefix(nul + 1);
  }
  out.push_back(text);
  return out;
}

// A file of tests/fuzz/data (the fixed tokenizers the text targets encode with).
inline std::string data_file(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(LIPATTN_FUZZ_DATA) / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read %s\n", path.c_str());
    std::abort();
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A property of the reader's output that must hold; its failure is a bug like a crash.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace lipattn::fuzz
