// NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian float32/float64, C order
// (docs/formats.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/types.h"

namespace lipattn::io {

struct NpyArray {
  std::vector<std::int64_t> shape;  // empty for a 0-d array (one element)
  std::vector<double> values;       // row-major (C order)
  std::string dtype;                // "<f4" or "<f8"
};

// Reads any .npy of dtype '<f4' or '<f8' in C order. InputError (naming the file) for a bad magic
// string, an unsupported version, a malformed header dict, an unsupported dtype (named),
// fortran_order True, or a data size that disagrees with the shape. Values are returned as stored:
// NaN/Inf are not rejected here (read_npy_matrix does).
NpyArray read_npy(const std::filesystem::path& path);
// The same reader on the bytes of a .npy held in memory; `source` names them in errors.
NpyArray parse_npy(std::string_view bytes, const std::string& source);

// A sequence X: shape [n, d] or [1, n, d] (a batch of one). InputError naming the shape otherwise,
// and naming (row, col) of the first NaN/Inf.
MatrixD read_npy_matrix(const std::filesystem::path& path);
// read_npy_matrix's checks on an array already read; `source` names it in errors.
MatrixD npy_matrix(const NpyArray& array, const std::string& source);

// One value per token: shape [n], [n, 1] or [1, n]. InputError naming the file and `what` ("the
// masses") otherwise. Values are returned as stored (the caller checks their range).
VectorD read_npy_vector(const std::filesystem::path& path, Index n, const std::string& what);

// Writes NumPy's own layout: version 1.0 (2.0 if the header needs it), header padded with spaces
// and a final '\n' so that data starts at a multiple of 64 bytes. InputError if a value is not
// finite or overflows float32 when float32 is asked for.
void write_npy(const std::filesystem::path& path, const MatrixD& matrix, bool float32 = false);
// array.dtype must be "<f4" or "<f8" (empty means "<f8"); values.size() must equal product(shape).
void write_npy(const std::filesystem::path& path, const NpyArray& array);

}  // namespace lipattn::io
