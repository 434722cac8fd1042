// A single attention layer stored as safetensors (docs/formats.md, "Layer files"): the input of
// `measure --weights`, `bound` and `attack`.
#pragma once

#include <filesystem>
#include <optional>

#include "attention/layer.h"

namespace lipattn::io {
class SafetensorsFile;
}

namespace lipattn::models {

struct LayerFileOptions {
  Index heads = 1;
  bool causal = false;
  std::optional<NormKind> pre_norm;   // --pre-norm
  bool residual = false;              // --residual
  std::optional<NormKind> post_norm;  // --post-norm
  double norm_eps = 1e-5;             // --norm-eps
};

NormKind parse_norm_kind(const std::string& name, const std::string& field);  // layernorm | rmsnorm

// q.weight, k.weight, v.weight (nn.Linear (out, in)), optional o.weight and biases, or A and V for the
// paper's single head; pre_norm.* / post_norm.* for the norms the flags ask for (γ = 1, β = 0 when
// the flag is given and the file has none). Every error names the file and the tensor or flag.
LayerSpec load_layer_file(const std::filesystem::path& path, const LayerFileOptions& options);
// The same on a file already opened (SafetensorsFile::open or from_bytes); errors name file.path().
LayerSpec load_layer_file(const io::SafetensorsFile& file, const LayerFileOptions& options);

// The embedded default: a random GPT-2-shaped attention layer as transformers initialises it
// (d = 768, 12 heads, causal, W_O; weights N(0, 0.02), c_proj N(0, 0.02/√(2·12)), biases 0).
LayerSpec random_gpt2_attention_layer(std::uint64_t seed, Index d = 768, Index heads = 12);

}  // namespace lipattn::models
