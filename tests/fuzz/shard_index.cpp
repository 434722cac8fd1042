// Fuzz target: a sharded checkpoint's model.safetensors.index.json (parse_shard_index, which the
// folder resolver and the loader's index check both use).
#include "fuzz_support.h"
#include "models/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lipattn::fuzz::accept_input_errors([&] {
    const auto map = lipattn::models::parse_shard_index(lipattn::fuzz::as_text(data, size),
                                                        "model.safetensors.index.json");
    for (const auto& [tensor, shard] : map) {
      const std::filesystem::path p(shard);
      lipattn::fuzz::require(p.filename() == p && !p.is_absolute() && shard != "." && shard != "..",
                             "shards are plain file names inside the folder");
    }
  });
  return 0;
}
