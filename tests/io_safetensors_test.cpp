// Safetensors: round trips checked against an independent byte-level decoder written here, and one
// hand-made file per malformation, each asserting InputError and what the message names.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bytes_support.h"
#include "common/error.h"
#include "error_support.h"
#include "file_support.h"

namespace lipattn::io {
namespace {

namespace fs = std::filesystem;
using namespace lipattn::testing;  // FileTest, expect_file_error, read_bytes, write_bytes, *_le

// ---- independent helpers (do not use the code under test; byte writers in bytes_support.h) ----

// The whole file: 8-byte length, header exactly as given (no padding), data.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

// IEEE binary16 → double from its bit fields (sign, 5-bit exponent with bias 15, 10-bit fraction).
double decode_f16(std::uint16_t bits) {
  const int sign = bits >> 15;
  const int exponent = (bits >> 10) & 0x1f;
  const int fraction = bits & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(fraction, -24);  // subnormal: 0.fraction × 2^-14
  } else if (exponent == 31) {
    magnitude = fraction == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(1024 + fraction, exponent - 25);  // 1.fraction × 2^(e-15)
  }
  return sign ? -magnitude : magnitude;
}

// bfloat16 is the top half of an IEEE binary32.
double decode_bf16(std::uint16_t bits) {
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, 4);
  return f;
}

double decode_raw(const unsigned char* p, const std::string& dtype) {
  if (dtype == "F64") {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  if (dtype == "F32") {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  const std::uint16_t bits = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
  return dtype == "F16" ? decode_f16(bits) : decode_bf16(bits);
}

// Parses a safetensors file with nlohmann::json alone; returns header and data area.
struct RawFile {
  nlohmann::json header;
  std::string header_text;
  std::string data;
};
RawFile parse_raw(const fs::path& p) {
  const std::string bytes = read_bytes(p);
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  RawFile r;
  r.header_text = bytes.substr(8, n);
  r.header = nlohmann::json::parse(r.header_text);
  r.data = bytes.substr(8 + n);
  return r;
}

class SafetensorsTest : public FileTest {
 protected:
  // Writes the raw bytes and asserts that opening throws InputError whose message contains the file
  // path and every one of `needles`.
  void expect_open_error(const std::string& name, const std::string& bytes, const std::vector<std::string>& needles) {
    const fs::path p = file(name);
    write_bytes(p, bytes);
    expect_file_error([&] { (void)SafetensorsFile::open(p); }, p, needles);
  }
};

// ---- round trips ----

std::vector<double> random_values(std::size_t n, unsigned seed, double scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

struct DtypeCase {
  DType dtype;
  const char* name;
  double rel_tol;  // half a unit in the last place, relative, for normal numbers
};

TEST_F(SafetensorsTest, RoundTripEveryDtypeMatchesIndependentDecoder) {
  const DtypeCase cases[] = {{DType::F64, "F64", 0.0},
                             {DType::F32, "F32", std::ldexp(1.0, -24)},
                             {DType::F16, "F16", std::ldexp(1.0, -11)},
                             {DType::BF16, "BF16", std::ldexp(1.0, -8)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(to_string(c.dtype), c.name);
    EXPECT_EQ(parse_dtype(c.name), c.dtype);
    std::vector<TensorToWrite> tensors = {
        {"q.weight", {4, 3}, random_values(12, 1, 1.0)},
        {"bias", {5}, random_values(5, 2, 10.0)},
        {"scalar", {}, {0.1}},
        {"empty", {0, 3}, {}},
        {"exact", {6}, {0.0, -0.0, 1.0, -2.0, 0.5, 1024.0}},
    };
    const fs::path p = file(std::string("rt_") + c.name + ".safetensors");
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "lipattn test"}};
    write_safetensors(p, tensors, c.dtype, metadata);

    // The raw layout: header length multiple of 8, padding spaces, offsets in the order given.
    const RawFile raw = parse_raw(p);
    EXPECT_EQ(raw.header_text.size() % 8, 0u);
    EXPECT_EQ(raw.header["__metadata__"]["format"], "pt");
    std::size_t expected_begin = 0;
    for (const auto& t : tensors) {
      const auto& e = raw.header.at(t.name);
      EXPECT_EQ(e.at("dtype"), c.name);
      EXPECT_EQ(e.at("shape").get<std::vector<std::int64_t>>(), t.shape);
      EXPECT_EQ(e.at("data_offsets")[0].get<std::size_t>(), expected_begin);
      expected_begin += t.values.size() * dtype_size(c.dtype);
      EXPECT_EQ(e.at("data_offsets")[1].get<std::size_t>(), expected_begin);
    }
    EXPECT_EQ(raw.data.size(), expected_begin);

    const SafetensorsFile f = SafetensorsFile::open(p);
    EXPECT_EQ(f.path(), p);
    EXPECT_EQ(f.metadata(), metadata);
    EXPECT_EQ(f.names(), (std::vector<std::string>{"bias", "empty", "exact", "q.weight", "scalar"}));
    for (const auto& t : tensors) {
      SCOPED_TRACE(t.name);
      ASSERT_TRUE(f.has(t.name));
      const TensorInfo& info = f.info(t.name);
      EXPECT_EQ(info.dtype, c.dtype);
      EXPECT_EQ(info.shape, t.shape);
      EXPECT_EQ(static_cast<std::size_t>(info.numel()), t.values.size());
      const std::vector<double> got = f.values(t.name);
      ASSERT_EQ(got.size(), t.values.size());
      const std::size_t begin = raw.header.at(t.name).at("data_offsets")[0].get<std::size_t>();
      for (std::size_t i = 0; i < got.size(); ++i) {
        const double independent =
            decode_raw(reinterpret_cast<const unsigned char*>(raw.data.data()) + begin + i * dtype_size(c.dtype), c.name);
        EXPECT_EQ(got[i], independent) << "element " << i;
        EXPECT_LE(std::abs(got[i] - t.values[i]), c.rel_tol * std::abs(t.values[i]) + 1e-300)
            << "element " << i << " wrote " << t.values[i];
      }
      if (std::string(t.name) == "exact") {  // values representable in every dtype come back exactly
        EXPECT_EQ(got, t.values);
        EXPECT_TRUE(std::signbit(got[1]));
      }
    }
    const MatrixD m = f.matrix("q.weight");
    ASSERT_EQ(m.rows(), 4);
    ASSERT_EQ(m.cols(), 3);
    const std::vector<double> flat = f.values("q.weight");
    for (int r = 0; r < 4; ++r)
      for (int col = 0; col < 3; ++col) EXPECT_EQ(m(r, col), flat[r * 3 + col]);
    const VectorD v = f.vector("bias");
    ASSERT_EQ(v.size(), 5);
    EXPECT_EQ(v(4), f.values("bias")[4]);
    EXPECT_EQ(f.matrix("empty").rows(), 0);
    EXPECT_EQ(f.matrix("empty").cols(), 3);
  }
}

// Round to nearest: no neighbouring 16-bit pattern decodes closer to the original value.
TEST_F(SafetensorsTest, HalfPrecisionWritesTheNearestRepresentable) {
  for (const auto& [dtype, name] : {std::pair{DType::F16, "F16"}, std::pair{DType::BF16, "BF16"}}) {
    SCOPED_TRACE(name);
    std::vector<double> values = random_values(2000, 7, 3.0);
    values.push_back(1e-6);     // F16 subnormal range
    values.push_back(-3e-8);    // F16 subnormal, near the smallest
    values.push_back(60000.0);  // near F16 max
    const fs::path p = file(std::string("nearest_") + name + ".safetensors");
    write_safetensors(p, {{"x", {static_cast<std::int64_t>(values.size())}, values}}, dtype);
    const RawFile raw = parse_raw(p);
    const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data.data());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t bits = static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
      const double stored = decode_raw(bytes + 2 * i, name);
      const double err = std::abs(stored - values[i]);
      for (int delta : {-1, 1}) {
        const auto neighbour_bits = static_cast<std::uint16_t>(bits + delta);
        const double neighbour = std::string(name) == "F16" ? decode_f16(neighbour_bits) : decode_bf16(neighbour_bits);
        if (std::isfinite(neighbour)) {
          EXPECT_LE(err, std::abs(neighbour - values[i])) << "value " << values[i] << " bits " << bits;
        }
      }
    }
  }
}

TEST_F(SafetensorsTest, ReadsHandMadeFileWithUnalignedHeaderAndKnownBitPatterns) {
  // Bit patterns with known values: F16 0x3c00 = 1, 0xc000 = -2, 0x3555 = 0.333251953125,
  // 0x0001 = 2^-24, 0x7bff = 65504; BF16 0x3f80 = 1, 0xc040 = -3, 0x3e80 = 0.25.
  const std::string data = u16_le(0x3c00) + u16_le(0xc000) + u16_le(0x3555) + u16_le(0x0001) + u16_le(0x7bff) +
                           u16_le(0x3f80) + u16_le(0xc040) + u16_le(0x3e80) + f32_le(1.5f) + f32_le(-0.25f) +
                           f64_le(3.141592653589793);
  // 7-byte-misaligned header (not a multiple of 8): the data area is unaligned, which must not matter.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[10,16]},)"
      R"("f":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]},)"
      R"("d":{"dtype":"F64","shape":[],"data_offsets":[24,32]}, "__metadata__":{"k":"v"}})";
  const fs::path p = file("hand.safetensors");
  write_bytes(p, safetensors_bytes(header, data));
  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_EQ(f.values("h"), (std::vector<double>{1.0, -2.0, 0.333251953125, std::ldexp(1.0, -24), 65504.0}));
  EXPECT_EQ(f.values("b"), (std::vector<double>{1.0, -3.0, 0.25}));
  EXPECT_EQ(f.values("f"), (std::vector<double>{1.5, -0.25}));
  EXPECT_EQ(f.values("d"), (std::vector<double>{3.141592653589793}));
  EXPECT_EQ(f.info("d").numel(), 1);
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_EQ(f.info("b").begin, 10u);
  EXPECT_EQ(f.info("b").end, 16u);
}

TEST_F(SafetensorsTest, MoveKeepsTheMappingValid) {
  const fs::path p = file("move.safetensors");
  write_safetensors(p, {{"a", {2}, {1.0, 2.0}}}, DType::F32);
  SafetensorsFile f = SafetensorsFile::open(p);
  SafetensorsFile g = std::move(f);
  EXPECT_EQ(g.values("a"), (std::vector<double>{1.0, 2.0}));
  SafetensorsFile h = SafetensorsFile::open(p);
  h = std::move(g);
  EXPECT_EQ(h.values("a"), (std::vector<double>{1.0, 2.0}));
}

// ---- malformed files ----

TEST_F(SafetensorsTest, RejectsFileShorterThanEightBytes) {
  expect_open_error("short.safetensors", std::string("\x02\x00\x00", 3), {"shorter than"});
  expect_open_error("empty.safetensors", "", {"shorter than"});
}

TEST_F(SafetensorsTest, RejectsHeaderLengthBeyondFile) {
  expect_open_error("long.safetensors", u64_le(1000) + "{}", {"header too long"});
  expect_open_error("huge.safetensors", u64_le(~0ULL) + "{}", {"header too long"});
}

TEST_F(SafetensorsTest, RejectsInvalidJson) {
  expect_open_error("badjson.safetensors", safetensors_bytes(R"({"a": {"dtype": "F32",)", ""), {"JSON"});
  expect_open_error("notobject.safetensors", safetensors_bytes("[1, 2]", ""), {"object"});
  expect_open_error("zeroheader.safetensors", safetensors_bytes("", ""), {"JSON"});
}

TEST_F(SafetensorsTest, RejectsEntriesMissingFields) {
  expect_open_error("nodtype.safetensors",
                    safetensors_bytes(R"({"w.x":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                    {"'w.x'", "dtype"});
  expect_open_error("noshape.safetensors",
                    safetensors_bytes(R"({"w.x":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, '\0')),
                    {"'w.x'", "shape"});
  expect_open_error("nooffsets.safetensors",
                    safetensors_bytes(R"({"w.x":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')),
                    {"'w.x'", "data_offsets"});
  expect_open_error("notobj.safetensors", safetensors_bytes(R"({"w.x":[1,2]})", ""), {"'w.x'", "object"});
}

TEST_F(SafetensorsTest, RejectsWrongJsonTypes) {
  const std::string data(8, '\0');
  expect_open_error("dtype_num.safetensors",
                    safetensors_bytes(R"({"t1":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", data),
                    {"'t1'", "dtype", "string"});
  expect_open_error("shape_str.safetensors",
                    safetensors_bytes(R"({"t2":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", data),
                    {"'t2'", "shape", "array"});
  expect_open_error("shape_float.safetensors",
                    safetensors_bytes(R"({"t3":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data),
                    {"'t3'", "shape", "integers"});
  expect_open_error("offsets_three.safetensors",
                    safetensors_bytes(R"({"t4":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", data),
                    {"'t4'", "data_offsets"});
  expect_open_error("offsets_str.safetensors",
                    safetensors_bytes(R"({"t5":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", data),
                    {"'t5'", "data_offsets"});
  expect_open_error("offsets_neg.safetensors",
                    safetensors_bytes(R"({"t6":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data),
                    {"'t6'", "data_offsets"});
  expect_open_error("meta_num.safetensors",
                    safetensors_bytes(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__", "epoch"});
}

TEST_F(SafetensorsTest, RejectsUnknownDtypeNamingIt) {
  expect_open_error("q4.safetensors",
                    safetensors_bytes(R"({"ids":{"dtype":"Q4","shape":[1],"data_offsets":[0,8]}})",
                                      std::string(8, '\0')),
                    {"'ids'", "'Q4'"});
  // Names are case-sensitive, as in the format.
  expect_open_error("lower.safetensors",
                    safetensors_bytes(R"({"w":{"dtype":"i64","shape":[1],"data_offsets":[0,8]}})",
                                      std::string(8, '\0')),
                    {"'w'", "'i64'"});
  try {
    parse_dtype("f32");
    ADD_FAILURE() << "lower-case dtype accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'f32'"), std::string::npos);
  }
}

// Every dtype of the safetensors format, with its element size from the format's definition
// (docs.rs safetensors::tensor::Dtype::size), typed out here rather than taken from the code.
struct FormatDtype {
  const char* name;
  std::size_t bytes;
  bool readable;
};
const FormatDtype kFormatDtypes[] = {
    {"F64", 8, true},   {"F32", 4, true},     {"F16", 2, true},      {"BF16", 2, true},  {"BOOL", 1, false},
    {"U8", 1, false},   {"I8", 1, false},     {"U16", 2, false},     {"I16", 2, false},  {"U32", 4, false},
    {"I32", 4, false},  {"U64", 8, false},    {"I64", 8, false},     {"F8_E4M3", 1, false},
    {"F8_E5M2", 1, false},
};

TEST_F(SafetensorsTest, EveryFormatDtypeParsesWithItsSize) {
  for (const auto& d : kFormatDtypes) {
    SCOPED_TRACE(d.name);
    const DType dtype = parse_dtype(d.name);
    EXPECT_EQ(to_string(dtype), d.name);
    EXPECT_EQ(dtype_size(dtype), d.bytes);
    EXPECT_EQ(is_float(dtype), d.readable);
  }
  // The four original enumerators keep their meaning.
  EXPECT_EQ(to_string(DType::F64), "F64");
  EXPECT_EQ(to_string(DType::F32), "F32");
  EXPECT_EQ(to_string(DType::F16), "F16");
  EXPECT_EQ(to_string(DType::BF16), "BF16");
}

// One file holding a tensor of every dtype, each of 3 elements, packed back to back: opening
// validates every entry's byte count, and an entry one element short is rejected for any dtype.
TEST_F(SafetensorsTest, OpensEveryFormatDtypeAndChecksItsSize) {
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  for (const auto& d : kFormatDtypes) {
    header[std::string("t_") + d.name] = {{"dtype", d.name}, {"shape", {3}}, {"data_offsets", {offset, offset + 3 * d.bytes}}};
    offset += 3 * d.bytes;
  }
  const fs::path p = file("all.safetensors");
  write_bytes(p, safetensors_bytes(header.dump(), std::string(offset, '\0')));
  const SafetensorsFile f = SafetensorsFile::open(p);
  offset = 0;
  for (const auto& d : kFormatDtypes) {
    SCOPED_TRACE(d.name);
    const TensorInfo& info = f.info(std::string("t_") + d.name);
    EXPECT_EQ(to_string(info.dtype), d.name);
    EXPECT_EQ(info.begin, offset);
    EXPECT_EQ(info.end, offset + 3 * d.bytes);
    offset += 3 * d.bytes;
  }
  for (const auto& d : kFormatDtypes) {
    SCOPED_TRACE(d.name);
    const std::string h = std::string(R"({"x":{"dtype":")") + d.name + R"(","shape":[3],"data_offsets":[0,)" +
                          std::to_string(2 * d.bytes) + "]}}";
    expect_open_error(std::string("short_") + d.name + ".safetensors",
                      safetensors_bytes(h, std::string(3 * d.bytes, '\0')),
                      {"'x'", std::to_string(3 * d.bytes) + " bytes"});
  }
}

// BERT checkpoints store `embeddings.position_ids` as I64 next to float weights.
TEST_F(SafetensorsTest, IntegerTensorBesideFloatsOpensButIsNotRead) {
  const std::string ids = u64_le(0) + u64_le(1) + u64_le(2) + u64_le(3);  // I64 0..3, little-endian
  const std::string data = f32_le(1.5f) + f32_le(-2.0f) + ids + f64_le(0.25);
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
      R"("bert.embeddings.position_ids":{"dtype":"I64","shape":[1,4],"data_offsets":[8,40]},)"
      R"("mask":{"dtype":"BOOL","shape":[0],"data_offsets":[40,40]},)"
      R"("b":{"dtype":"F64","shape":[1],"data_offsets":[40,48]}})";
  const fs::path p = file("bert_ids.safetensors");
  write_bytes(p, safetensors_bytes(header, data));
  const SafetensorsFile f = SafetensorsFile::open(p);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"b", "bert.embeddings.position_ids", "mask", "w"}));
  const TensorInfo& info = f.info("bert.embeddings.position_ids");
  EXPECT_EQ(info.name, "bert.embeddings.position_ids");
  EXPECT_EQ(info.dtype, DType::I64);
  EXPECT_EQ(info.shape, (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(info.numel(), 4);
  EXPECT_EQ(info.begin, 8u);
  EXPECT_EQ(info.end, 40u);
  // The raw bytes are where the header says (the I64 value 2 is the third element).
  EXPECT_EQ(std::memcmp(f.raw_data("bert.embeddings.position_ids"), ids.data(), ids.size()), 0);
  // The float tensors around it read normally.
  EXPECT_EQ(f.values("w"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(f.vector("b")(0), 0.25);
  // Reading it, in any form, says what is wrong.
  const std::vector<std::string> needles = {"'bert.embeddings.position_ids'", "I64",
                                            "lipattn reads only F64, F32, F16 and BF16"};
  expect_file_error([&] { (void)f.values("bert.embeddings.position_ids"); }, p, needles);
  expect_file_error([&] { (void)f.matrix("bert.embeddings.position_ids"); }, p, needles);
  expect_file_error([&] { (void)f.vector("bert.embeddings.position_ids"); }, p, needles);  // dtype named before shape
  expect_file_error([&] { (void)f.values("mask"); }, p, {"'mask'", "BOOL", "lipattn reads only"});  // even when empty
}

TEST_F(SafetensorsTest, RejectsNegativeDimension) {
  expect_open_error("negdim.safetensors",
                    safetensors_bytes(R"({"k.weight":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}})", ""),
                    {"'k.weight'", "negative"});
}

TEST_F(SafetensorsTest, RejectsOffsetsOutsideDataArea) {
  expect_open_error("outside.safetensors",
                    safetensors_bytes(R"({"v.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})",
                                      std::string(8, '\0')),
                    {"'v.weight'", "outside"});
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  expect_open_error("reversed.safetensors",
                    safetensors_bytes(R"({"q.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                                      std::string(8, '\0')),
                    {"'q.bias'", "begin 8 > end 4"});
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  expect_open_error("overlap.safetensors",
                    safetensors_bytes(R"({"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("second":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                      std::string(12, '\0')),
                    {"'first'", "'second'", "overlap"});
}

TEST_F(SafetensorsTest, RejectsSizeMismatch) {
  expect_open_error("mismatch.safetensors",
                    safetensors_bytes(R"({"o.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}})",
                                      std::string(8, '\0')),
                    {"'o.weight'", "[2, 3]", "12 bytes"});
}

TEST_F(SafetensorsTest, ValuesRejectNanAndInfNamingTensorAndIndex) {
  const fs::path p = file("nan.safetensors");
  const std::string data = f32_le(1.0f) + f32_le(2.0f) + f32_le(3.0f) + f32_le(std::nanf("")) +
                           u16_le(0x3c00) + u16_le(0x7c00);  // F16 +Inf
  write_bytes(p, safetensors_bytes(R"({"m":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                                   R"("h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}})",
                                   data));
  const SafetensorsFile f = SafetensorsFile::open(p);  // opening checks structure only
  expect_file_error([&] { (void)f.values("m"); }, p, {"'m'", "element 3", "[1, 1]"});
  expect_file_error([&] { (void)f.matrix("m"); }, p, {"'m'", "element 3"});
  expect_file_error([&] { (void)f.vector("h"); }, p, {"'h'", "element 1", "inf"});
}

TEST_F(SafetensorsTest, ShapeAndNameErrors) {
  const fs::path p = file("shapes.safetensors");
  write_safetensors(p, {{"vec", {3}, {1, 2, 3}}, {"mat", {1, 3}, {1, 2, 3}}}, DType::F32);
  const SafetensorsFile f = SafetensorsFile::open(p);
  expect_file_error([&] { (void)f.matrix("vec"); }, p, {"'vec'", "[3]", "2-D"});
  expect_file_error([&] { (void)f.vector("mat"); }, p, {"'mat'", "[1, 3]", "1-D"});
  expect_file_error([&] { (void)f.info("x"); }, p, {"tensor 'x' not found", "'mat'", "'vec'"});
  EXPECT_FALSE(f.has("x"));
  expect_file_error([&] { (void)SafetensorsFile::open(file("missing.safetensors")); }, file("missing.safetensors"),
               {"cannot open"});
}

TEST_F(SafetensorsTest, WriterRejectsValuesItCouldNotReadBack) {
  const fs::path p = file("w.safetensors");
  expect_file_error([&] { write_safetensors(p, {{"big", {1}, {1e5}}}, DType::F16); }, p, {"'big'"});
  expect_file_error([&] { write_safetensors(p, {{"nan", {1}, {std::nan("")}}}, DType::F64); }, p, {"'nan'"});
  expect_file_error([&] { write_safetensors(p, {{"short", {2, 2}, {1, 2, 3}}}, DType::F32); }, p, {"'short'"});
  expect_file_error([&] { write_safetensors(p, {{"a", {1}, {1}}, {"a", {1}, {2}}}, DType::F32); }, p, {"duplicate"});
  expect_file_error([&] { write_safetensors(p, {{"ids", {1}, {1}}}, DType::I64); }, p, {"I64", "writes only"});
  expect_file_error([&] { write_safetensors(p, {{"m", {1}, {1}}}, DType::BOOL); }, p, {"BOOL"});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(file("w.safetensors.tmp")));
  // 1e5 fits BF16 (range of float32).
  write_safetensors(p, {{"big", {1}, {1e5}}}, DType::BF16);
  EXPECT_NEAR(SafetensorsFile::open(p).values("big")[0], 1e5, 1e5 * std::ldexp(1.0, -8));
}

}  // namespace
}  // namespace lipattn::io
