// Bad bytes in the io readers, through their in-memory entries (the ones the fuzz targets of
// tests/fuzz drive, and that open()/read_npy() use on a file's bytes): each malformation is an
// InputError naming the source, and never an allocation sized by the header's claim.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "bytes_support.h"
#include "error_support.h"
#include "file_support.h"
#include "io/npy.h"
#include "io/safetensors.h"

namespace lipattn::io {
namespace {

using namespace lipattn::testing;

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nexpected to contain: " << part;
}

std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}

TEST(IoBadInput, SafetensorsFromBytesNamesTheSource) {
  expect_contains(error_of([] { SafetensorsFile::from_bytes("abc", "mem.safetensors"); }),
                  ("mem.safetensors: file is 3 bytes"));
  expect_contains(error_of([] { SafetensorsFile::from_bytes(u64_le(1ULL << 40) + "{}", "mem.safetensors"); }),
                  ("header too long"));
  expect_contains(error_of([] { SafetensorsFile::from_bytes(safetensors_bytes("{\"a\":"), "mem.safetensors"); }),
                  ("mem.safetensors: header is not valid JSON"));
}

// A number beyond a double's range made nlohmann throw out_of_range, not parse_error: it escaped the
// reader as an uncaught exception (found by tests/fuzz/safetensors; regression input
// tests/fuzz/regressions/safetensors/json_number_overflow_out_of_range).
TEST(IoBadInput, SafetensorsHeaderNumberBeyondDoubleRange) {
  expect_contains(error_of([] {
                    SafetensorsFile::from_bytes(
                        safetensors_bytes(R"({"a":{"dtype":"F32","shape":[474e83648],"data_offsets":[0,4]}})", "abcd"),
                        "mem.safetensors");
                  }),
                  "mem.safetensors: header is not valid JSON");
}

TEST(IoBadInput, SafetensorsFromBytesReadsWhatOpenReads) {
  const std::string bytes =
      safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_le(1.5f) + f32_le(-2.0f));
  SafetensorsFile file = SafetensorsFile::from_bytes(bytes, "mem.safetensors");
  EXPECT_EQ(file.values("w"), (std::vector<double>{1.5, -2.0}));
  // Moving the file keeps its bytes (a short std::string moves its characters).
  const SafetensorsFile moved = std::move(file);
  EXPECT_EQ(moved.values("w"), (std::vector<double>{1.5, -2.0}));
}

// An empty tensor's other dimensions may multiply past int64: the header check bounds only the byte
// count (0), so numel() must not multiply them (signed overflow was undefined behaviour).
TEST(IoBadInput, SafetensorsEmptyTensorWithHugeDimensions) {
  const std::string bytes =
      safetensors_bytes(R"({"m":{"dtype":"U8","shape":[4294967296,2147483648,0],"data_offsets":[0,0]}})");
  const SafetensorsFile file = SafetensorsFile::from_bytes(bytes, "mem.safetensors");
  EXPECT_EQ(file.info("m").numel(), 0);
  expect_contains(error_of([&] { file.values("m"); }), ("stored as U8"));
}

TEST(IoBadInput, NpyHugeClaimedShapeIsRefusedBeforeAllocating) {
  const std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 2), }";
  const std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + u16_le(static_cast<std::uint16_t>(header.size())) + header;
  expect_contains(error_of([&] { parse_npy(bytes, "mem.npy"); }), ("mem.npy: shape"));
  const std::string small = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000), }";
  expect_contains(error_of([&] {
                parse_npy(std::string("\x93NUMPY\x01\x00", 8) + u16_le(static_cast<std::uint16_t>(small.size())) + small,
                          "mem.npy");
              }),
                  ("mem.npy: truncated data"));
}

TEST(IoBadInput, NpyTruncatedAndBadMagic) {
  expect_contains(error_of([] { parse_npy("\x93NUMPY", "mem.npy"); }), ("mem.npy: not a .npy file"));
  expect_contains(error_of([] { parse_npy(std::string("\x93NUMPY\x01\x00\xff\xff", 10), "mem.npy"); }),
                  ("mem.npy: truncated .npy header"));
}

}  // namespace
}  // namespace lipattn::io
