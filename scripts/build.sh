#!/usr/bin/env bash
# Configures and builds lipattn into build/ (Release). Installs dependencies first.
# With CI=true (as .ci/run sets it) compiler warnings are errors (-DLIPATTN_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p build
# The Python module is built for Debian's python3, whose numpy and pytest scripts/setup.sh installs.
python=""; [ -x /usr/bin/python3 ] && python=/usr/bin/python3
werror=OFF
[ "${CI:-}" = true ] && werror=ON
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLIPATTN_WERROR=$werror ${python:+-DPYTHON_EXECUTABLE=$python} &&
       cmake --build build -j"$(nproc)"; } > build/build.log 2>&1; then
  tail -n 60 build/build.log >&2
  echo "build: failed; the full log is build/build.log" >&2
  exit 1
fi
