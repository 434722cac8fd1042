// Fuzz target: the safetensors reader (header and data) on arbitrary bytes, through
// SafetensorsFile::from_bytes, the parser SafetensorsFile::open uses on its mapping.
#include <string>

#include "fuzz_support.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using lipattn::io::SafetensorsFile;
  lipattn::fuzz::accept_input_errors([&] {
    const SafetensorsFile file = SafetensorsFile::from_bytes(std::string(lipattn::fuzz::as_text(data, size)),
                                                             "fuzz.safetensors");
    for (const std::string& name : file.names()) {
      const auto& info = file.info(name);
      lipattn::fuzz::require(info.begin <= info.end && info.end <= size, "tensor bytes lie inside the input");
      (void)file.raw_data(name);
      lipattn::fuzz::accept_input_errors([&] {
        const auto values = file.values(name);
        lipattn::fuzz::require(values.size() == static_cast<std::size_t>(info.numel()), "values() has numel() values");
      });
      lipattn::fuzz::accept_input_errors([&] { (void)file.matrix(name); });
      lipattn::fuzz::accept_input_errors([&] { (void)file.vector(name); });
    }
    lipattn::fuzz::accept_input_errors([&] { (void)file.info("no such tensor"); });
  });
  return 0;
}
