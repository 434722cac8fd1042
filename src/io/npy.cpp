// .npy reader and writer. Layout (NumPy's format.py, NEP 1): magic "\x93NUMPY", major and minor
// version bytes, little-endian header length (u16 in 1.0, u32 in 2.0/3.0), a Python dict literal
// {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with spaces and ended by '\n',
// then the raw data. See docs/formats.md.
#include "io/npy.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "common/error.h"
#include "io/atomic_file.h"

namespace lipattn::io {

static_assert(std::endian::native == std::endian::little, "lipattn::io assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;  // NumPy >= 1.17 aligns the data start to 64 bytes

// Python's repr of a shape tuple: "()" for 0-d, "(5,)" for 1-d, "(3, 4)" otherwise.
std::string shape_string(const std::vector<std::int64_t>& shape) {
  return fmt::format("({}{})", fmt::join(shape, ", "), shape.size() == 1 ? "," : "");
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isprint(c)) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

// A parser for the one Python literal NumPy writes: a dict with string keys whose values are a
// string, True/False, or a tuple of non-negative integers. Anything else is an error.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
  };

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') throw fail("'descr' must be a string (structured dtypes are unsupported)");
        h.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        have_shape = true;
      } else {
        throw fail(fmt::format("unexpected key '{}'", key));
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != '}') throw fail("expected ',' or '}'");
    }
    ++pos_;  // '}'
    skip_ws();
    if (pos_ != s_.size()) throw fail("trailing characters after the dict");
    if (!have_descr || !have_fortran || !have_shape) {
      throw fail("the dict must have the keys 'descr', 'fortran_order' and 'shape'");
    }
    return h;
  }

 private:
  InputError fail(const std::string& what) const {
    return InputError(fmt::format("{}: malformed .npy header ({} at character {}): {}", file_, what, pos_,
                                  printable(s_)));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) throw fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string parse_string() {
    skip_ws();
    const char quote = peek();
    if (quote != '\'' && quote != '"') throw fail("expected a quoted string");
    ++pos_;
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\') throw fail("escapes in strings are not supported");
      ++pos_;
    }
    if (pos_ == s_.size()) throw fail("unterminated string");
    return s_.substr(start, pos_++ - start);
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    throw fail("'fortran_order' must be True or False");
  }
  std::vector<std::int64_t> parse_tuple() {
    std::vector<std::int64_t> out;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) throw fail("'shape' must be a tuple of non-negative integers");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) throw fail("dimension too large");
        v = v * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix, written by old NumPy
      out.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != ')') throw fail("expected ',' or ')' in 'shape'");
    }
    ++pos_;  // ')'
    return out;
  }

  const std::string& s_;
  const std::string& file_;
  std::size_t pos_ = 0;
};

std::size_t element_size(const std::string& descr) {
  if (descr == "<f4") return 4;
  if (descr == "<f8") return 8;
  return 0;
}

}  // namespace

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open for reading", file));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(fmt::format("{}: read error", file));
  return parse_npy(bytes, file);
}

NpyArray parse_npy(std::string_view bytes, const std::string& file) {

  if (bytes.size() < kMagicLen + 2 || bytes.compare(0, kMagicLen, kMagic, kMagicLen) != 0) {
    throw InputError(fmt::format("{}: not a .npy file (the file does not start with the magic \"\\x93NUMPY\")", file));
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  const auto minor = static_cast<unsigned char>(bytes[7]);
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    throw InputError(fmt::format("{}: unsupported .npy format version {}.{} (expected 1.0, 2.0 or 3.0)", file,
                                 major, minor));
  }
  const std::size_t len_size = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagicLen + 2 + len_size;
  if (bytes.size() < prefix) throw InputError(fmt::format("{}: truncated .npy header", file));
  std::uint32_t header_len = 0;
  std::memcpy(&header_len, bytes.data() + 8, len_size);  // little-endian u16 or u32
  if (header_len > bytes.size() - prefix) {
    throw InputError(fmt::format("{}: truncated .npy header: header length {} but only {} bytes follow", file,
                                 header_len, bytes.size() - prefix));
  }
  const std::string header_text(bytes.substr(prefix, header_len));
  const auto header = HeaderParser(header_text, file).parse();

  if (element_size(header.descr) == 0) {
    throw InputError(fmt::format("{}: unsupported dtype '{}' (expected little-endian float '<f4' or '<f8')", file,
                                 header.descr));
  }
  if (header.fortran_order) {
    throw InputError(fmt::format("{}: fortran_order is True; lipattn reads C-order arrays only "
                                 "(save with np.ascontiguousarray)",
                                 file));
  }
  std::size_t numel = 1;
  for (std::int64_t d : header.shape) {
    const auto ud = static_cast<std::size_t>(d);
    if (ud != 0 && numel > std::numeric_limits<std::size_t>::max() / 8 / ud) {
      throw InputError(fmt::format("{}: shape {} is too large", file, shape_string(header.shape)));
    }
    numel *= ud;
  }
  const std::size_t elem = element_size(header.descr);
  const std::size_t data_start = prefix + header_len;
  const std::size_t have = bytes.size() - data_start;
  const std::size_t need = numel * elem;
  if (have < need) {
    throw InputError(fmt::format("{}: truncated data: shape {} of '{}' needs {} bytes, file has {}", file,
                                 shape_string(header.shape), header.descr, need, have));
  }
  if (have > need) {
    throw InputError(fmt::format("{}: {} unexpected bytes after the data of shape {} '{}'", file, have - need,
                                 shape_string(header.shape), header.descr));
  }

  NpyArray out;
  out.shape = header.shape;
  out.dtype = header.descr;
  out.values.resize(numel);
  const char* p = bytes.data() + data_start;
  for (std::size_t i = 0; i < numel; ++i) {
    if (elem == 4) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      out.values[i] = f;
    } else {
      std::memcpy(&out.values[i], p + 8 * i, 8);
    }
  }
  return out;
}

MatrixD read_npy_matrix(const std::filesystem::path& path) { return npy_matrix(read_npy(path), path.string()); }

MatrixD npy_matrix(const NpyArray& a, const std::string& source) {
  const bool plain = a.shape.size() == 2;
  const bool batch_of_one = a.shape.size() == 3 && a.shape[0] == 1;
  if (!plain && !batch_of_one) {
    throw InputError(fmt::format("{}: array has shape {}, expected [n, d] or [1, n, d]", source,
                                 fmt::format("[{}]", fmt::join(a.shape, ", "))));
  }
  const std::int64_t rows = a.shape[a.shape.size() - 2];
  const std::int64_t cols = a.shape[a.shape.size() - 1];
  MatrixD m(rows, cols);
  // One pass over the elements, not over the rows: an empty array may claim 2^31 rows of 0 columns
  // (the npy fuzzer's slow input, tests/fuzz/regressions/npy/).
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    const double v = a.values[i];
    if (!std::isfinite(v)) {
      const std::int64_t r = static_cast<std::int64_t>(i) / cols, c = static_cast<std::int64_t>(i) % cols;
      throw InputError(fmt::format("{}: element (row {}, col {}) is {}; X must be finite", source, r, c, v));
    }
    m.data()[i] = v;
  }
  return m;
}

VectorD read_npy_vector(const std::filesystem::path& path, Index n, const std::string& what) {
  const NpyArray a = read_npy(path);
  Index size = 1;
  for (auto extent : a.shape) size *= extent;
  const bool vector_shape = a.shape.size() == 1 || (a.shape.size() == 2 && (a.shape[0] == 1 || a.shape[1] == 1));
  if (!vector_shape || size != n)
    throw InputError(fmt::format("{}: {} must have shape [{}] (one value per token), got shape {}", path.string(), what,
                                 n, shape_string(a.shape)));
  VectorD v(n);
  for (Index i = 0; i < n; ++i) v(i) = a.values[static_cast<size_t>(i)];
  return v;
}

void write_npy(const std::filesystem::path& path, const NpyArray& array) {
  const std::string file = path.string();
  const std::string descr = array.dtype.empty() ? "<f8" : array.dtype;
  const std::size_t elem = element_size(descr);
  if (elem == 0) {
    throw InputError(fmt::format("{}: cannot write dtype '{}' (expected '<f4' or '<f8')", file, descr));
  }
  std::size_t numel = 1;
  for (std::int64_t d : array.shape) {
    if (d < 0) throw InputError(fmt::format("{}: cannot write negative shape {}", file, shape_string(array.shape)));
    numel *= static_cast<std::size_t>(d);
  }
  if (numel != array.values.size()) {
    throw InputError(fmt::format("{}: shape {} needs {} values, got {}", file, shape_string(array.shape), numel,
                                 array.values.size()));
  }

  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_string(array.shape));

  // Pad with spaces, end with '\n', so that magic + version + length field + header is a multiple
  // of 64 (NumPy's ARRAY_ALIGN). Version 2.0 only when the header does not fit a u16.
  int major = 1;
  std::size_t prefix = kMagicLen + 2 + 2;
  std::size_t total = prefix + header.size() + 1;
  if ((total + kAlign - 1) / kAlign * kAlign - prefix > 0xffff) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
    total = prefix + header.size() + 1;
  }
  const std::size_t padded = (total + kAlign - 1) / kAlign * kAlign;
  header.append(padded - total, ' ');
  header.push_back('\n');
  const auto header_len = static_cast<std::uint32_t>(header.size());

  std::string bytes(kMagic, kMagicLen);
  bytes.push_back(static_cast<char>(major));
  bytes.push_back(0);
  bytes.append(reinterpret_cast<const char*>(&header_len), major == 1 ? 2 : 4);
  bytes += header;
  const std::size_t data_start = bytes.size();
  bytes.resize(data_start + numel * elem);
  char* p = bytes.data() + data_start;
  for (std::size_t i = 0; i < numel; ++i) {
    const double v = array.values[i];
    const double stored = elem == 4 ? static_cast<double>(static_cast<float>(v)) : v;
    if (!std::isfinite(stored)) {
      throw InputError(fmt::format("{}: element {} = {} is not finite as '{}'", file, i, v, descr));
    }
    if (elem == 4) {
      const float f = static_cast<float>(v);
      std::memcpy(p + 4 * i, &f, 4);
    } else {
      std::memcpy(p + 8 * i, &v, 8);
    }
  }

  write_file_atomically(path, {bytes});
}

void write_npy(const std::filesystem::path& path, const MatrixD& matrix, bool float32) {
  NpyArray a;
  a.shape = {static_cast<std::int64_t>(matrix.rows()), static_cast<std::int64_t>(matrix.cols())};
  a.values.assign(matrix.data(), matrix.data() + matrix.size());  // row-major: C order
  a.dtype = float32 ? "<f4" : "<f8";
  write_npy(path, a);
}

}  // namespace lipattn::io
