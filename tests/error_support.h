// Checking that user-fixable errors are reported as lipattn::InputError with a useful message.
// Kept apart from test_support.h so that tests of folders below attention (io, text, models) need
// not pull in the attention headers.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace lipattn::testing {

// Runs f and returns the message of the InputError it throws, for the caller to check what the
// message names. Anything else (another exception, or nothing thrown) is a test failure and
// returns "", which no expected message matches.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected InputError, nothing was thrown";
  return "";
}

// Runs f and returns the field of the InputError it throws ("heads", "layer", ...): the CLI turns it
// into the flag. "" when f throws no InputError (a test failure, as for error_of).
template <class F>
std::string field_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.field();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected InputError, nothing was thrown";
  return "";
}

// Runs fn and expects an InputError whose message names the file `p` and contains every one of
// `needles`: a user must learn which file is wrong and what is wrong with it.
inline void expect_file_error(const std::function<void()>& fn, const std::filesystem::path& p,
                              const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected InputError for " << p;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << "message does not name the file: " << msg;
    for (const auto& needle : needles) {
      EXPECT_NE(msg.find(needle), std::string::npos) << "message lacks '" << needle << "': " << msg;
    }
  }
}

}  // namespace lipattn::testing
