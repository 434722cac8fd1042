// Errors a user can fix (bad file, bad tensor, bad flag). The CLI prints the message and exits with 2.
// Messages name the file, tensor or flag, and say what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace lipattn {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lipattn
