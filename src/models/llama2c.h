// llama2.c checkpoints (docs/formats.md, "llama2.c checkpoints"): the legacy run.c format (7 int32
// header, then float32 tensors in run.c's order) and export.py's versioned float32 format (magic
// "ak42", version 1, 256-byte header). Each stored tensor is mapped to the Hugging Face LLaMA name it
// provides, so the rest of lipattn sees one LLaMA layout; the weights stay in llama2.c's own q/k row
// order, which is why such a model carries RopeStyle::Interleaved (docs/theory.md §2.6).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "models/config.h"

namespace lipattn::models {

struct Llama2cHeader {
  int version = 0;  // 0: legacy run.c format (no magic); 1: export.py version 1 (float32)
  std::int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;  // legacy: vocab_size > 0 in the file; v1: the flag byte
  std::int64_t header_bytes = 0;  // 28 (legacy) or 256 (v1)
  std::int64_t kv_dim() const { return dim / n_heads * n_kv_heads; }
  std::int64_t head_size() const { return dim / n_heads; }
};

// One float32 tensor of the file, per layer for the per-layer arrays of run.c.
struct Llama2cTensor {
  std::string name;                 // run.c's name, with the layer for per-layer arrays: "wq[3]"
  std::vector<std::int64_t> shape;  // as stored (already nn.Linear (out, in) for the matrices)
  std::int64_t offset = 0;          // bytes from the start of the file
  std::string role;                 // the Hugging Face LLaMA name it provides ("" = ignored: freq_cis)
};

class Llama2cCheckpoint {
 public:
  // Reads and checks the header against the file's size before anything is allocated from it:
  // InputError naming the file and the header field (non-positive dimension, n_heads not dividing
  // dim, n_kv_heads not dividing n_heads, odd head size, bad magic or version) or, on a size
  // mismatch, the expected and the actual bytes.
  static Llama2cCheckpoint open(const std::filesystem::path& path);
  // open()'s checks and tables from the file's first bytes `head` (parse_llama2c_header) and its size,
  // without reading the file: open() calls it, and a fuzz target runs it in memory.
  static Llama2cCheckpoint from_header(const std::vector<char>& head, std::int64_t file_bytes,
                                       const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const Llama2cHeader& header() const { return header_; }
  // The LLaMA config the header implies: rope Interleaved with theta 10000, RMSNorm eps 1e-5, silu,
  // causal, max_positions = seq_len, tie_word_embeddings = shared classifier.
  const ModelConfig& config() const { return config_; }
  const std::vector<Llama2cTensor>& tensors() const { return tensors_; }
  // The values (row-major, float64) of the tensor whose role is `hf_name`; InputError if none.
  std::vector<double> values(const std::string& hf_name) const;
  // The stored tensor providing `hf_name`, or nullptr.
  const Llama2cTensor* find(const std::string& hf_name) const;

 private:
  std::filesystem::path path_;
  Llama2cHeader header_;
  ModelConfig config_;
  std::vector<Llama2cTensor> tensors_;
};

// The header of a llama2.c file of `file_bytes` bytes whose first bytes are `head` (up to 256 bytes:
// the rest of the header reads as zeros), validated as Llama2cCheckpoint::open does. `source` names
// the file in errors.
Llama2cHeader parse_llama2c_header(const std::vector<char>& head, std::int64_t file_bytes, const std::string& source);

}  // namespace lipattn::models
