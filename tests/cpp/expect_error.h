// Shared by the C++ tests: asserts that `call` throws a c10::Error whose message contains `phrase`.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <string>

template <typename F>
void expect_error(F&& call, const std::string& phrase) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one containing: " << phrase;
  } catch (const c10::Error& err) {
    EXPECT_NE(std::string(err.what()).find(phrase), std::string::npos) << err.what();
  }
}
