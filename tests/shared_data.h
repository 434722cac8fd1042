// Where the tests find the read-only shared data (tokenizer files, texts): the folder `shared/data`
// beside the checkout, as shared/README.md describes.
#pragma once

#include <string>

namespace lipattn::testing {

inline const std::string kSharedData = LIPATTN_SOURCE_DIR "/../shared/data";
inline const std::string kAliceText = kSharedData + "/text/carroll-alice.txt";

}  // namespace lipattn::testing
