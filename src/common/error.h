// Errors a user can fix (bad file, bad tensor, bad value). The CLI prints the message and exits with 2.
// Messages name the file, tensor or field, and say what was expected. Library code names fields in
// its own terms ("heads", "tol", "layers"), never CLI flags: an InputError may carry the field it is
// about, and the CLI (or the Python module, or a sweep's JSON reader) says which flag or key set it.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace lipattn {

class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& message, std::string field = {})
      : std::runtime_error(message), field_(std::move(field)) {}
  // The option the bad value came from, in the library's name for it ("heads", "tol"), or "" when
  // the message is about a file or tensor and names it itself.
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

}  // namespace lipattn
