// Fuzz target: config.json (parse_config_text, which read_config runs on the file's text), then what
// the loaders derive from a config: its JSON form, attention scales and the checkpoint layout.
#include "fuzz_support.h"
#include "models/config.h"
#include "models/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lipattn::fuzz::accept_input_errors([&] {
    const auto config = lipattn::models::parse_config_text(lipattn::fuzz::as_text(data, size), "config.json");
    (void)config.to_json().dump();
    (void)config.attention_scale(0);
    lipattn::fuzz::require(config.head_dim() > 0 && config.kv_heads() > 0, "positive head dimension and K/V heads");
    (void)lipattn::models::checkpoint_layout(config, 1);
  });
  return 0;
}
