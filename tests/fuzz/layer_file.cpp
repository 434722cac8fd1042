// Fuzz target: the layer-file loader (load_layer_file on a SafetensorsFile::from_bytes) under the
// options the first byte picks: heads 1..4, causal, pre-norm, residual, post-norm.
#include <string>

#include "fuzz_support.h"
#include "io/safetensors.h"
#include "models/layer_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t bits = data[0];
  lipattn::models::LayerFileOptions options;
  options.heads = 1 + (bits & 3);
  options.causal = (bits & 4) != 0;
  if (bits & 8) options.pre_norm = (bits & 16) ? lipattn::NormKind::RmsNorm : lipattn::NormKind::LayerNorm;
  options.residual = (bits & 32) != 0;
  if (bits & 64) options.post_norm = (bits & 128) ? lipattn::NormKind::RmsNorm : lipattn::NormKind::LayerNorm;
  lipattn::fuzz::accept_input_errors([&] {
    const auto file = lipattn::io::SafetensorsFile::from_bytes(std::string(lipattn::fuzz::as_text(data + 1, size - 1)),
                                                               "layer.safetensors");
    const lipattn::LayerSpec spec = lipattn::models::load_layer_file(file, options);
    spec.validate();
  });
  return 0;
}
