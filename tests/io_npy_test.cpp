// .npy: files built byte by byte in NumPy's layout are read correctly, our writer's bytes follow that
// layout, round trips, and each malformation gives InputError naming the file and the problem.
#include "io/npy.h"

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

#include "bytes_support.h"
#include "common/error.h"
#include "error_support.h"
#include "file_support.h"

namespace lipattn::io {
namespace {

namespace fs = std::filesystem;
using namespace lipattn::testing;  // FileTest, expect_file_error, read_bytes, write_bytes, le

std::string f64s(const std::vector<double>& v) {
  std::string s(v.size() * 8, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string f32s(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// NumPy's layout, built here independently: magic, version, header length, the dict, spaces and a
// final '\n' so that the prefix + header is a multiple of 64, then data.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t prefix = 6 + 2 + (major == 1 ? 2 : 4);
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out = std::string("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  out += le(header.size(), major == 1 ? 2 : 4);
  return out + header + data;
}

class NpyTest : public FileTest {
 protected:
  void expect_read_error(const std::string& name, const std::string& bytes, const std::vector<std::string>& needles) {
    const fs::path p = file(name);
    write_bytes(p, bytes);
    expect_file_error([&] { (void)read_npy(p); }, p, needles);
  }
};

TEST_F(NpyTest, ReadsNumpyLayoutBuiltByHand) {
  const std::vector<double> v = {1.0, -2.5, 3.25, 1e-300, 6.02e23, -0.0};
  const fs::path p = file("hand.npy");
  write_bytes(p, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f64s(v)));
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(a.dtype, "<f8");
  EXPECT_EQ(a.values, v);
  const MatrixD m = read_npy_matrix(p);
  ASSERT_EQ(m.rows(), 2);
  ASSERT_EQ(m.cols(), 3);
  EXPECT_EQ(m(0, 2), 3.25);
  EXPECT_EQ(m(1, 0), 1e-300);

  const std::vector<float> f = {0.5f, 0.1f, -7.0f, 1e30f};
  const fs::path q = file("hand32.npy");
  write_bytes(q, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", f32s(f)));
  const NpyArray b = read_npy(q);
  EXPECT_EQ(b.shape, (std::vector<std::int64_t>{1, 2, 2}));
  EXPECT_EQ(b.dtype, "<f4");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b.values[i], static_cast<double>(f[i]));
  const MatrixD mb = read_npy_matrix(q);  // [1, n, d] is a batch of one
  ASSERT_EQ(mb.rows(), 2);
  ASSERT_EQ(mb.cols(), 2);
  EXPECT_EQ(mb(1, 1), static_cast<double>(1e30f));
}

TEST_F(NpyTest, ShapeTuplesOneDimensionalScalarEmptyAndVersion2) {
  const fs::path p1 = file("one.npy");
  write_bytes(p1, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", f64s({1, 2, 3, 4, 5})));
  EXPECT_EQ(read_npy(p1).shape, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(read_npy(p1).values, (std::vector<double>{1, 2, 3, 4, 5}));

  const fs::path p0 = file("scalar.npy");
  write_bytes(p0, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", f64s({42.0})));
  EXPECT_TRUE(read_npy(p0).shape.empty());
  EXPECT_EQ(read_npy(p0).values, (std::vector<double>{42.0}));

  const fs::path pe = file("empty.npy");
  write_bytes(pe, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", ""));
  EXPECT_EQ(read_npy_matrix(pe).rows(), 0);
  EXPECT_EQ(read_npy_matrix(pe).cols(), 3);
  // Empty the other way, with a row count near 2^31 (the npy fuzzer's slow input): read in one pass
  // over its zero elements.
  const fs::path pz = file("no_columns.npy");
  write_bytes(pz, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1992052226, 0), }", ""));
  EXPECT_EQ(read_npy_matrix(pz).rows(), 1992052226);
  EXPECT_EQ(read_npy_matrix(pz).cols(), 0);

  // Key order and spacing differ from NumPy's own; still a valid Python dict literal.
  const fs::path pk = file("keys.npy");
  write_bytes(pk, npy_bytes("{\"shape\":(2,1),'fortran_order':False,'descr':'<f8'}", f64s({7, 8})));
  EXPECT_EQ(read_npy(pk).shape, (std::vector<std::int64_t>{2, 1}));

  const fs::path p2 = file("v2.npy");
  write_bytes(p2, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", f64s({9, 10}), 2));
  EXPECT_EQ(read_npy(p2).values, (std::vector<double>{9, 10}));
}

TEST_F(NpyTest, WriterFollowsNumpyLayout) {
  MatrixD m(2, 3);
  m << 1, 2, 3, 4, 5, 6.5;
  for (bool float32 : {false, true}) {
    SCOPED_TRACE(float32 ? "float32" : "float64");
    const fs::path p = file(float32 ? "w32.npy" : "w64.npy");
    write_npy(p, m, float32);
    const std::string bytes = read_bytes(p);
    ASSERT_GE(bytes.size(), 10u);
    EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY", 6));
    EXPECT_EQ(bytes[6], 1);
    EXPECT_EQ(bytes[7], 0);
    const std::size_t header_len =
        static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    EXPECT_EQ((10 + header_len) % 64, 0u);
    const std::string header = bytes.substr(10, header_len);
    const std::string dict =
        std::string("{'descr': '") + (float32 ? "<f4" : "<f8") + "', 'fortran_order': False, 'shape': (2, 3), }";
    EXPECT_EQ(header.substr(0, dict.size()), dict);
    EXPECT_EQ(header.back(), '\n');
    EXPECT_EQ(header.find_first_not_of(' ', dict.size()), header_len - 1) << "padding must be spaces";
    const std::string data = bytes.substr(10 + header_len);
    if (float32) {
      EXPECT_EQ(data, f32s({1, 2, 3, 4, 5, 6.5f}));
    } else {
      EXPECT_EQ(data, f64s({1, 2, 3, 4, 5, 6.5}));
    }
  }
  // 1-D and 0-d shapes are written with Python's tuple spelling.
  const fs::path p1 = file("w1.npy");
  write_npy(p1, NpyArray{{5}, {1, 2, 3, 4, 5}, "<f8"});
  EXPECT_NE(read_bytes(p1).find("'shape': (5,), }"), std::string::npos);
  const fs::path p0 = file("w0.npy");
  write_npy(p0, NpyArray{{}, {3}, "<f8"});
  EXPECT_NE(read_bytes(p0).find("'shape': (), }"), std::string::npos);
  EXPECT_EQ(read_npy(p0).values, (std::vector<double>{3}));
}

TEST_F(NpyTest, RoundTripBothDtypes) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 5.0);
  MatrixD m(17, 9);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  const fs::path p = file("rt64.npy");
  write_npy(p, m);
  EXPECT_EQ(read_npy_matrix(p), m);  // float64 is exact
  const fs::path q = file("rt32.npy");
  write_npy(q, m, true);
  const MatrixD back = read_npy_matrix(q);
  ASSERT_EQ(back.rows(), 17);
  ASSERT_EQ(back.cols(), 9);
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j) {
      EXPECT_EQ(back(i, j), static_cast<double>(static_cast<float>(m(i, j))));
      EXPECT_LE(std::abs(back(i, j) - m(i, j)), std::ldexp(std::abs(m(i, j)), -24));
    }
  EXPECT_EQ(read_npy(q).dtype, "<f4");
  // A 3-D array round trips through NpyArray unchanged.
  const NpyArray a{{2, 1, 3}, {1, 2, 3, 4, 5, 6}, "<f8"};
  const fs::path r = file("rt3.npy");
  write_npy(r, a);
  const NpyArray b = read_npy(r);
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.values, a.values);
}

TEST_F(NpyTest, RejectsBadMagicAndVersion) {
  expect_read_error("magic.npy", "PK\x03\x04 this is a zip file", {"magic"});
  expect_read_error("tiny.npy", "\x93NU", {"magic"});
  std::string v4 = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f64s({1}));
  v4[6] = 4;
  expect_read_error("v4.npy", v4, {"version 4.0"});
}

TEST_F(NpyTest, RejectsTruncatedData) {
  expect_read_error("trunc.npy",
                    npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f64s({1, 2, 3, 4, 5})),
                    {"truncated", "48 bytes", "(2, 3)"});
  expect_read_error("trunchdr.npy",
                    std::string("\x93NUMPY\x01\x00", 8) + le(200, 2) + "{'descr': '<f8',", {"truncated"});
  expect_read_error("extra.npy",
                    npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", f64s({1, 2})),
                    {"8 unexpected bytes"});
}

TEST_F(NpyTest, RejectsUnsupportedDtypeNamingIt) {
  for (const std::string dtype : {">f8", "<i8", "|u1", "<f2", "|b1"}) {
    SCOPED_TRACE(dtype);
    expect_read_error("dtype.npy",
                      npy_bytes("{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (1,), }", f64s({1})),
                      {"'" + dtype + "'"});
  }
  expect_read_error("structured.npy",
                    npy_bytes("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", f64s({1})),
                    {"descr"});
}

TEST_F(NpyTest, RejectsFortranOrder) {
  expect_read_error("fortran.npy",
                    npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", f64s({1, 2, 3, 4})),
                    {"fortran_order"});
}

TEST_F(NpyTest, RejectsMalformedHeaderDict) {
  expect_read_error("nokey.npy", npy_bytes("{'descr': '<f8', 'shape': (1,), }", f64s({1})), {"fortran_order"});
  expect_read_error("badshape.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", ""),
                    {"shape"});
  expect_read_error("list.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': [1], }", f64s({1})),
                    {"shape"});
  expect_read_error("junk.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } x", f64s({1})),
                    {"trailing"});
}

TEST_F(NpyTest, MatrixRejectsOtherShapesAndNonFinite) {
  const fs::path p1 = file("vec.npy");
  write_bytes(p1, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", f64s({1, 2, 3, 4, 5})));
  expect_file_error([&] { (void)read_npy_matrix(p1); }, p1, {"[5]", "[n, d]"});
  const fs::path p2 = file("batch2.npy");
  write_bytes(p2, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1, 1), }", f64s({1, 2})));
  expect_file_error([&] { (void)read_npy_matrix(p2); }, p2, {"[2, 1, 1]"});
  const fs::path p3 = file("nan.npy");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  write_bytes(p3, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f64s({1, 2, 3, 4, 5, nan})));
  EXPECT_TRUE(std::isnan(read_npy(p3).values[5]));  // read_npy returns values as stored
  expect_file_error([&] { (void)read_npy_matrix(p3); }, p3, {"row 1, col 2"});
  const fs::path p4 = file("inf32.npy");
  write_bytes(p4, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }",
                            f32s({1.0f, -std::numeric_limits<float>::infinity()})));
  expect_file_error([&] { (void)read_npy_matrix(p4); }, p4, {"row 0, col 1"});
}

TEST_F(NpyTest, WriterRejectsValuesItCouldNotReadBack) {
  MatrixD m(1, 2);
  m << 1.0, 1e300;
  const fs::path p = file("overflow.npy");
  expect_file_error([&] { write_npy(p, m, true); }, p, {"element 1"});
  EXPECT_FALSE(fs::exists(p));
  write_npy(p, m, false);  // fine in float64
  EXPECT_EQ(read_npy_matrix(p)(0, 1), 1e300);
  expect_file_error([&] { write_npy(p, NpyArray{{2}, {1}, "<f8"}); }, p, {"(2,)"});
  expect_file_error([&] { write_npy(p, NpyArray{{1}, {1}, "<i4"}); }, p, {"'<i4'"});
}

}  // namespace
}  // namespace lipattn::io
