#!/usr/bin/env bash
# Builds lipattn and runs the whole test suite (GoogleTest through CTest). With CI=true the build
# treats compiler warnings as errors (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
# The Python module (docs/python.md), with Debian's python3 (numpy, pytest, torch come from apt).
PYTHON=/usr/bin/python3; [ -x "$PYTHON" ] || PYTHON=python3
PYTHONPATH=python "$PYTHON" -m pytest -q ../python/tests
