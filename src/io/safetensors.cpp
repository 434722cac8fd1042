// Safetensors reader and writer. The layout and every check are described in docs/formats.md.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>

#include <Eigen/Core>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/atomic_file.h"

namespace lipattn::io {

// Both formats are little-endian on disk; reading by memcpy is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "lipattn::io assumes a little-endian host");

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The dtypes of the safetensors format (docs.rs safetensors::tensor::Dtype), with the spelling used
// in headers and the bytes per element. BOOL is one byte per element; F8_* are 8-bit floats.
struct DTypeEntry {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},  {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},    {DType::U16, "U16", 2},         {DType::I16, "I16", 2},
    {DType::U32, "U32", 4},  {DType::I32, "I32", 4},         {DType::U64, "U64", 8},
    {DType::I64, "I64", 8},  {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Row-major multi-index of flat element `flat` in `shape`, for error messages.
std::string multi_index_string(std::int64_t flat, const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> index(shape.size(), 0);
  for (std::size_t k = shape.size(); k-- > 0;) {
    if (shape[k] > 0) {
      index[k] = flat % shape[k];
      flat /= shape[k];
    }
  }
  return shape_string(index);
}

double decode_element(const unsigned char* p, DType dtype) {
  switch (dtype) {
    case DType::F64: {
      double x;
      std::memcpy(&x, p, sizeof x);
      return x;
    }
    case DType::F32: {
      float x;
      std::memcpy(&x, p, sizeof x);
      return x;
    }
    case DType::F16: {
      std::uint16_t bits;
      std::memcpy(&bits, p, sizeof bits);
      return static_cast<double>(static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits)));
    }
    case DType::BF16: {
      std::uint16_t bits;
      std::memcpy(&bits, p, sizeof bits);
      return static_cast<double>(static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(bits)));
    }
    default:
      break;  // unreachable: values() calls require_float first
  }
  return 0.0;
}

// Encodes x in dtype at p and returns the value actually stored, so the caller can check it.
double encode_element(double x, DType dtype, unsigned char* p) {
  switch (dtype) {
    case DType::F64:
      std::memcpy(p, &x, sizeof x);
      return x;
    case DType::F32: {
      const float f = static_cast<float>(x);
      std::memcpy(p, &f, sizeof f);
      return f;
    }
    case DType::F16: {
      const Eigen::half h(static_cast<float>(x));
      const auto bits = Eigen::numext::bit_cast<std::uint16_t>(h);
      std::memcpy(p, &bits, sizeof bits);
      return static_cast<float>(h);
    }
    case DType::BF16: {
      const Eigen::bfloat16 h(static_cast<float>(x));
      const auto bits = Eigen::numext::bit_cast<std::uint16_t>(h);
      std::memcpy(p, &bits, sizeof bits);
      return static_cast<float>(h);
    }
    default:
      break;  // unreachable: write_safetensors rejects non-float dtypes first
  }
  return 0.0;
}

// Reads one tensor entry of the header; every structural problem names file and tensor.
TensorInfo parse_entry(const std::string& file, const std::string& name, const Json& entry) {
  const auto fail = [&](const std::string& what) {
    return InputError(fmt::format("{}: tensor '{}': {}", file, name, what));
  };
  if (!entry.is_object()) throw fail(fmt::format("expected a JSON object, found {}", entry.type_name()));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) throw fail(fmt::format("missing \"{}\"", key));
  }
  TensorInfo info;
  info.name = name;

  const Json& dtype = entry.at("dtype");
  if (!dtype.is_string()) throw fail(fmt::format("\"dtype\" must be a string, found {}", dtype.type_name()));
  try {
    info.dtype = parse_dtype(dtype.get<std::string>());
  } catch (const InputError& e) {
    throw fail(e.what());
  }

  const Json& shape = entry.at("shape");
  if (!shape.is_array()) throw fail(fmt::format("\"shape\" must be an array, found {}", shape.type_name()));
  for (const Json& dim : shape) {
    if (!dim.is_number_integer()) {
      throw fail(fmt::format("\"shape\" must hold integers, found {}", dim.dump()));
    }
    if (dim.is_number_unsigned()) {
      const auto u = dim.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw fail(fmt::format("dimension {} is too large", u));
      }
      info.shape.push_back(static_cast<std::int64_t>(u));
    } else {
      const auto v = dim.get<std::int64_t>();
      if (v < 0) throw fail(fmt::format("negative dimension {} in shape {}", v, shape.dump()));
      info.shape.push_back(v);
    }
  }

  const Json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    throw fail(fmt::format("\"data_offsets\" must be an array [begin, end], found {}", offsets.dump()));
  }
  std::uint64_t bounds[2];
  for (int k = 0; k < 2; ++k) {
    const Json& v = offsets[k];
    if (!v.is_number_integer()) {
      throw fail(fmt::format("\"data_offsets\" must hold integers, found {}", offsets.dump()));
    }
    if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0) {
      throw fail(fmt::format("negative value in \"data_offsets\" {}", offsets.dump()));
    }
    bounds[k] = v.get<std::uint64_t>();
  }
  if (bounds[0] > bounds[1]) {
    throw fail(fmt::format("data_offsets begin {} > end {}", bounds[0], bounds[1]));
  }
  if (bounds[1] > std::numeric_limits<std::size_t>::max()) throw fail("data offset too large");
  info.begin = static_cast<std::size_t>(bounds[0]);
  info.end = static_cast<std::size_t>(bounds[1]);

  // The byte count must match exactly; compute it with overflow checks (a hostile shape could wrap).
  std::uint64_t bytes = dtype_size(info.dtype);
  for (std::int64_t dim : info.shape) {
    const auto d = static_cast<std::uint64_t>(dim);
    if (d != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / d) {
      throw fail(fmt::format("shape {} is too large", shape_string(info.shape)));
    }
    bytes *= d;
  }
  if (bounds[1] - bounds[0] != bytes) {
    throw fail(fmt::format("data_offsets [{}, {}] span {} bytes, but shape {} of {} needs {} bytes",
                           bounds[0], bounds[1], bounds[1] - bounds[0], shape_string(info.shape),
                           to_string(info.dtype), bytes));
  }
  return info;
}

// InputError for reading a tensor whose dtype lipattn does not convert to double.
void require_float(const std::string& file, const TensorInfo& t) {
  if (!is_float(t.dtype)) {
    throw InputError(fmt::format("{}: tensor '{}' is stored as {}; lipattn reads only F64, F32, F16 and BF16",
                                 file, t.name, to_string(t.dtype)));
  }
}

}  // namespace

std::string to_string(DType dtype) {
  for (const DTypeEntry& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::size_t dtype_size(DType dtype) {
  for (const DTypeEntry& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

bool is_float(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

DType parse_dtype(const std::string& s) {
  for (const DTypeEntry& e : kDTypes)
    if (s == e.name) return e.dtype;
  std::vector<std::string> known;
  for (const DTypeEntry& e : kDTypes) known.emplace_back(e.name);
  throw InputError(fmt::format("unknown dtype '{}' (safetensors defines {})", s, fmt::join(known, ", ")));
}

std::int64_t TensorInfo::numel() const {
  // A zero dimension first: the other dimensions of an empty tensor may multiply past int64 (the
  // header check bounds only the byte count, which is 0), and nothing is multiplied then.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string file = path.string();
  SafetensorsFile result;
  result.path_ = path;

  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw InputError(fmt::format("{}: cannot stat: {}", file, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(fmt::format("{}: not a regular file", file));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw InputError(fmt::format(
        "{}: file is {} bytes, shorter than the 8-byte header length of a safetensors file", file, size));
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping stays valid after close
  if (mapping == MAP_FAILED) throw InputError(fmt::format("{}: cannot mmap: {}", file, std::strerror(map_err)));
  result.mapping_ = mapping;
  result.mapping_size_ = size;
  result.parse_header();
  return result;
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, const std::filesystem::path& source) {
  SafetensorsFile result;
  result.path_ = source;
  result.owned_ = std::move(bytes);
  result.parse_header();
  return result;
}

const unsigned char* SafetensorsFile::bytes() const {
  return mapping_ != nullptr ? static_cast<const unsigned char*>(mapping_)
                             : reinterpret_cast<const unsigned char*>(owned_.data());
}

std::size_t SafetensorsFile::size() const { return mapping_ != nullptr ? mapping_size_ : owned_.size(); }

void SafetensorsFile::parse_header() {
  const std::string file = path_.string();
  const std::size_t size = this->size();
  if (size < 8) {
    throw InputError(fmt::format(
        "{}: file is {} bytes, shorter than the 8-byte header length of a safetensors file", file, size));
  }
  const unsigned char* bytes = this->bytes();

  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes, 8);
  if (header_len > size - 8) {
    throw InputError(fmt::format("{}: header too long: header length {} exceeds the {} bytes after the "
                                 "8-byte length field",
                                 file, header_len, size - 8));
  }
  data_start_ = 8 + static_cast<std::size_t>(header_len);
  const std::size_t data_size = size - data_start_;

  Json header;
  try {
    header = Json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number beyond a double's range
    throw InputError(fmt::format("{}: header is not valid JSON: {}", file, e.what()));
  }
  if (!header.is_object()) {
    throw InputError(fmt::format("{}: header must be a JSON object, found {}", file, header.type_name()));
  }

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) {
        throw InputError(fmt::format("{}: \"__metadata__\" must be an object of strings, found {}", file,
                                     value.type_name()));
      }
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) {
          throw InputError(fmt::format("{}: \"__metadata__\" entry '{}' must be a string, found {}", file,
                                       mkey, mvalue.dump()));
        }
        metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    TensorInfo info = parse_entry(file, key, value);
    if (info.end > data_size) {
      throw InputError(fmt::format("{}: tensor '{}': data_offsets [{}, {}] lie outside the data area of {} bytes",
                                   file, key, info.begin, info.end, data_size));
    }
    tensors_.emplace(key, std::move(info));
  }

  // Overlap check: sort by begin; each tensor must start at or after the previous one's end.
  // Empty tensors occupy no bytes and cannot overlap anything. Gaps are allowed (harmless).
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, info] : tensors_) {
    if (info.end > info.begin) by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->name < b->name;
  });
  for (std::size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& prev = *by_offset[k - 1];
    const TensorInfo& cur = *by_offset[k];
    if (cur.begin < prev.end) {
      throw InputError(fmt::format("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", file, prev.name,
                                   prev.begin, prev.end, cur.name, cur.begin, cur.end));
    }
  }
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      owned_(std::move(other.owned_)),
      data_start_(other.data_start_),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    owned_ = std::move(other.owned_);
    data_start_ = other.data_start_;
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
  mapping_ = nullptr;
  mapping_size_ = 0;
}

bool SafetensorsFile::has(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  constexpr std::size_t shown = 8;
  std::vector<std::string> some;
  for (const auto& [n, _] : tensors_) {
    if (some.size() == shown) break;
    some.push_back("'" + n + "'");
  }
  std::string available = tensors_.empty() ? "the file holds no tensors"
                                           : fmt::format("available: {}{}", fmt::join(some, ", "),
                                                         tensors_.size() > shown
                                                             ? fmt::format(", ... ({} in all)", tensors_.size())
                                                             : std::string());
  throw InputError(fmt::format("{}: tensor '{}' not found; {}", path_.string(), name, available));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [n, _] : tensors_) out.push_back(n);
  return out;  // std::map iterates in sorted order
}

const unsigned char* SafetensorsFile::raw_data(const std::string& name) const {
  const TensorInfo& t = info(name);
  return bytes() + data_start_ + t.begin;
}

std::vector<double> SafetensorsFile::values(const std::string& name) const {
  const TensorInfo& t = info(name);
  require_float(path_.string(), t);
  const unsigned char* p = raw_data(name);
  const std::size_t step = dtype_size(t.dtype);
  const auto n = static_cast<std::size_t>(t.numel());
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = decode_element(p + i * step, t.dtype);
    if (!std::isfinite(out[i])) {
      throw InputError(fmt::format("{}: tensor '{}': element {} (index {}) is {}; weights must be finite",
                                   path_.string(), name, i,
                                   multi_index_string(static_cast<std::int64_t>(i), t.shape), out[i]));
    }
  }
  return out;
}

MatrixD SafetensorsFile::matrix(const std::string& name) const {
  const TensorInfo& t = info(name);
  require_float(path_.string(), t);  // the dtype error wins over a shape error: it is the real problem
  if (t.shape.size() != 2) {
    throw InputError(fmt::format("{}: tensor '{}' has shape {}, expected a 2-D matrix", path_.string(), name,
                                 shape_string(t.shape)));
  }
  const std::vector<double> v = values(name);
  MatrixD m(t.shape[0], t.shape[1]);
  std::copy(v.begin(), v.end(), m.data());  // MatrixD is row-major, like the file
  return m;
}

VectorD SafetensorsFile::vector(const std::string& name) const {
  const TensorInfo& t = info(name);
  require_float(path_.string(), t);
  if (t.shape.size() != 1) {
    throw InputError(fmt::format("{}: tensor '{}' has shape {}, expected a 1-D vector", path_.string(), name,
                                 shape_string(t.shape)));
  }
  const std::vector<double> v = values(name);
  return Eigen::Map<const VectorD>(v.data(), static_cast<Index>(v.size()));
}

std::string safetensors_bytes(const std::vector<TensorToWrite>& tensors, DType dtype,
                              const std::map<std::string, std::string>& metadata, const std::string& file) {
  if (!is_float(dtype)) {
    throw InputError(fmt::format("{}: cannot write dtype {}; lipattn writes only F64, F32, F16 and BF16", file,
                                 to_string(dtype)));
  }
  const std::size_t elem = dtype_size(dtype);

  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::vector<unsigned char> data;
  for (const TensorToWrite& t : tensors) {
    const auto fail = [&](const std::string& what) {
      return InputError(fmt::format("{}: cannot write tensor '{}': {}", file, t.name, what));
    };
    if (t.name.empty()) throw fail("empty tensor name");
    if (t.name == "__metadata__") throw fail("the name is reserved for metadata");
    if (header.contains(t.name)) throw fail("duplicate tensor name");
    std::size_t numel = 1;
    for (std::int64_t d : t.shape) {
      if (d < 0) throw fail(fmt::format("negative dimension in shape {}", shape_string(t.shape)));
      numel *= static_cast<std::size_t>(d);
    }
    if (numel != t.values.size()) {
      throw fail(fmt::format("shape {} needs {} values, got {}", shape_string(t.shape), numel, t.values.size()));
    }
    const std::size_t begin = data.size();
    data.resize(begin + numel * elem);
    for (std::size_t i = 0; i < numel; ++i) {
      const double stored = encode_element(t.values[i], dtype, data.data() + begin + i * elem);
      if (!std::isfinite(stored)) {
        throw fail(fmt::format("element {} = {} is not finite in {}", i, t.values[i], to_string(dtype)));
      }
    }
    header[t.name] = {{"dtype", to_string(dtype)}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }

  std::string header_text = header.dump();
  // Pad with spaces so the data area starts 8-byte aligned (8-byte length + header), as HF does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const std::uint64_t header_len = header_text.size();
  std::string bytes(reinterpret_cast<const char*>(&header_len), 8);
  bytes.reserve(8 + header_text.size() + data.size());
  bytes += header_text;
  bytes.append(reinterpret_cast<const char*>(data.data()), data.size());
  return bytes;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors, DType dtype,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, {safetensors_bytes(tensors, dtype, metadata, path.string())});
}

}  // namespace lipattn::io
