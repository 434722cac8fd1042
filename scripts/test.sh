#!/usr/bin/env bash
# Builds lipattn and runs the whole test suite (GoogleTest through CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
PYTHONPATH=python python3 -m pytest -q ../python/tests  # the Python module (docs/python.md)
