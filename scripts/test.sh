#!/usr/bin/env bash
# Builds lipattn and runs the whole test suite (GoogleTest through CTest, then pytest). With CI=true (as
# .ci/run sets it) the build treats compiler warnings as errors (scripts/build.sh), a test whose
# requirement (chromium, mpirun, the shared data) is missing fails instead of skipping
# (tests/requirement_support.h, python/tests/conftest.py), and the unit tests labelled `sanitize` also
# run under ASan + UBSan (scripts/test_sanitize.sh). README.md, "Tests", says how long each part takes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
# The Python module (docs/python.md), with Debian's python3 (numpy, pytest, torch come from apt).
PYTHON=/usr/bin/python3; [ -x "$PYTHON" ] || PYTHON=python3
PYTHONPATH=python "$PYTHON" -m pytest -q ../python/tests
cd ..
if [ "${CI:-}" = true ]; then
  scripts/test_sanitize.sh
fi
