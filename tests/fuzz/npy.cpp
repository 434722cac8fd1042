// Fuzz target: the .npy reader on arbitrary bytes (parse_npy, which read_npy runs on the file's
// bytes), then read_npy_matrix's checks (npy_matrix).
#include "fuzz_support.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lipattn::fuzz::accept_input_errors([&] {
    const lipattn::io::NpyArray array = lipattn::io::parse_npy(lipattn::fuzz::as_text(data, size), "fuzz.npy");
    std::size_t numel = 1;
    for (auto d : array.shape) numel *= static_cast<std::size_t>(d);
    lipattn::fuzz::require(numel == array.values.size(), "values match the shape");
    lipattn::fuzz::accept_input_errors([&] { (void)lipattn::io::npy_matrix(array, "fuzz.npy"); });
  });
  return 0;
}
