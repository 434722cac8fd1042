// Hugging Face safetensors files: a validating, memory-mapped reader and a writer (docs/formats.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/types.h"

namespace lipattn::io {

// Every dtype the safetensors format defines. The first four are the only ones lipattn reads and
// writes. The others are accepted when a file is opened, because real checkpoints carry tensors
// nobody needs to read (BERT's I64 `position_ids`, BOOL mask buffers), and such tensors must not
// stop a model from loading. Reading their values is an InputError: nothing lipattn measures is
// stored that way, and silently casting them would hide a wrong file.
enum class DType {
  F64, F32, F16, BF16,  // read and written
  BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F8_E4M3, F8_E5M2,  // validated on open, never read
};

std::string to_string(DType dtype);       // the safetensors spelling: "F64", "BF16", "I64", "F8_E4M3", ...
std::size_t dtype_size(DType dtype);      // bytes per element (BOOL and the F8 types: 1)
bool is_float(DType dtype);               // true for exactly F64, F32, F16 and BF16: the dtypes lipattn reads
DType parse_dtype(const std::string& s);  // InputError naming s on a string outside the format's dtypes

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::size_t begin = 0, end = 0;  // byte offsets relative to the start of the data area
  std::int64_t numel() const;      // product of shape (1 for a scalar)
};

class SafetensorsFile {
 public:
  // Maps the file read-only and validates the header completely (see docs/formats.md): any
  // violation throws InputError naming the file and, where relevant, the tensor.
  static SafetensorsFile open(const std::filesystem::path& path);
  // The same reader on bytes already in memory (a fuzz target, a test): `source` names them in every
  // error as the path does for open(). The object keeps its own copy of the bytes.
  static SafetensorsFile from_bytes(std::string bytes, const std::filesystem::path& source);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // InputError listing a few names on a miss
  std::vector<std::string> names() const;                 // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor's elements in row-major order, converted to double. F16 and BF16 convert exactly
  // (every half/bfloat16 value is a double). InputError if any element is NaN or ±Inf, and, for
  // values/matrix/vector alike, if the tensor's dtype is not one of is_float's four.
  std::vector<double> values(const std::string& name) const;
  MatrixD matrix(const std::string& name) const;  // requires a 2-D tensor
  VectorD vector(const std::string& name) const;  // requires a 1-D tensor

  // Raw bytes of a tensor inside the mapping (little-endian, possibly unaligned).
  const unsigned char* raw_data(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  void release() noexcept;
  // Validates the header of the file's bytes (mapped or owned) and fills tensors_ and metadata_.
  void parse_header();
  const unsigned char* bytes() const;
  std::size_t size() const;

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  std::string owned_;  // the bytes of from_bytes (no mapping then)
  std::size_t data_start_ = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // row-major, product(shape) elements
};

// Writes all tensors in `dtype` (F64, F32, F16 or BF16; any other dtype is an InputError), in the
// order given, with the header padded by spaces to a multiple of 8 bytes as Hugging Face's writer
// does. Values are rounded to nearest (ties to even); a value that is not finite, or that overflows
// the dtype (e.g. |x| > 65504 in F16), throws InputError naming the tensor, so that every file we
// write can be read back. The file is written to a temporary name beside `path` and renamed, so a
// failed write never leaves a half file behind.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       DType dtype, const std::map<std::string, std::string>& metadata = {});
// The bytes write_safetensors writes, in memory (SafetensorsFile::from_bytes reads them back); errors
// name `file`.
std::string safetensors_bytes(const std::vector<TensorToWrite>& tensors, DType dtype,
                              const std::map<std::string, std::string>& metadata, const std::string& file);

}  // namespace lipattn::io
