// Fuzz target: the llama2.c checkpoint reader on arbitrary bytes (Llama2cCheckpoint::from_header,
// which open() runs on the file's first 256 bytes and size): the header checks, the size check and
// the tensor table.
#include <algorithm>
#include <vector>

#include "fuzz_support.h"
#include "models/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lipattn::fuzz::accept_input_errors([&] {
    const std::vector<char> head(data, data + std::min<std::size_t>(size, 256));
    const auto c = lipattn::models::Llama2cCheckpoint::from_header(head, static_cast<std::int64_t>(size), "fuzz.bin");
    for (const auto& t : c.tensors()) {
      std::int64_t count = 1;
      for (auto s : t.shape) count *= s;
      lipattn::fuzz::require(t.offset >= 0 && t.offset + 4 * count <= static_cast<std::int64_t>(size),
                             "tensors lie inside the file");
    }
    (void)c.config().to_json().dump();
    (void)c.find("model.embed_tokens.weight");
  });
  return 0;
}
