#!/usr/bin/env bash
# Builds the unit tests labelled `sanitize` (CMakeLists.txt, LIPATTN_SANITIZE_TESTS: maps, solvers,
# readers, tokenizers, results files) with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-sanitize/ (CMAKE_BUILD_TYPE=Sanitize, -fno-sanitize-recover: any report fails the test) and runs
# them. scripts/test.sh runs this under CI=true; it can also run alone, after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Warnings are not errors here: the Release build (scripts/build.sh) holds the code to -Werror, and
# GCC 12 at -O1 with the sanitizers warns inside its own AVX-512 headers (-Wuninitialized on
# _mm512_undefined_ps, reached through Eigen), code we cannot change.
werror=OFF
mkdir -p build-sanitize
# No Python module here (an ASan library inside python3 needs LD_PRELOAD); pybind11's CMake files still
# look for a Python, so point them at Debian's as scripts/build.sh does.
python=""; [ -x /usr/bin/python3 ] && python=/usr/bin/python3
if ! { cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Sanitize -DLIPATTN_WERROR=$werror -DLIPATTN_PYTHON=OFF \
         ${python:+-DPYTHON_EXECUTABLE=$python} &&
       cmake --build build-sanitize -j"$(nproc)" --target sanitize_tests; } > build-sanitize/build.log 2>&1; then
  tail -n 60 build-sanitize/build.log >&2
  echo "sanitize build: failed; the full log is build-sanitize/build.log" >&2
  exit 1
fi
# halt_on_error and abort: the first report ends the test with a failure; leaks are reported at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build-sanitize
ctest --output-on-failure -j"$(nproc)" -L sanitize "$@"
