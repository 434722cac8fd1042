# LIPATTN_FUZZ=ON (with CC=clang CXX=clang++): every library is compiled with libFuzzer's coverage
# instrumentation and ASan + UBSan, so the targets of tests/fuzz/CMakeLists.txt see into the readers
# (docs/fuzzing.md). Included before any target is defined, so the flags reach every object.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "LIPATTN_FUZZ needs clang (CXX=clang++; Debian clang and libclang-rt-14-dev)")
endif()
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (the libFuzzer/OSS-Fuzz convention) lowers the sweep
# planner's job and size caps (src/experiments/sweep.cpp) so each input stays cheap.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                    -g -O1 -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
add_link_options(-fsanitize=address,undefined)
