#!/usr/bin/env bash
# Builds lipattn and runs the whole test suite (GoogleTest through CTest). With CI=true the build
# treats compiler warnings as errors (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
