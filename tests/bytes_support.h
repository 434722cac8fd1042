// Byte-level helpers for tests that build or inspect files by hand. They use the standard library
// only, never the code under test, so a file they write is an independent check of our readers and
// writers (io/npy, io/safetensors, the tokenizers' file loaders).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lipattn::testing {

// The whole file as stored (binary mode: no newline translation); empty if it cannot be opened.
inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Replaces the file's content with exactly `bytes`.
inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The low n bytes of v, least significant first (the byte order of both file formats, whatever the
// host's).
inline std::string le(std::uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

inline std::string u64_le(std::uint64_t v) { return le(v, 8); }
inline std::string u16_le(std::uint16_t v) { return le(v, 2); }

// IEEE bit patterns of a float32 / float64, little-endian.
inline std::string f32_le(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return le(bits, 4);
}

inline std::string f64_le(double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return le(bits, 8);
}

}  // namespace lipattn::testing
