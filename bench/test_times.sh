#!/usr/bin/env bash
# The test suite's own time on the built tree (ctest -j2, as scripts/test.sh runs it on 2 cores) and its
# ten slowest tests, with the load and the CPU beside them (docs/performance.md, "Test suite time").
#   bench/test_times.sh [BUILD_DIR] [ctest flags, e.g. -L sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; [ $# -gt 0 ] && shift
cd "$build"
echo "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; before: $(uptime | sed 's/.*load/load/')"
status=0
/usr/bin/time -f "ctest -j2: %e s wall, %U s user, %S s system" ctest -j2 --output-on-failure "$@" > ctest-times.log 2>&1 ||
  status=$?
tail -n 1 ctest-times.log
grep -E "^ctest -j2:" ctest-times.log || true
echo "after: $(uptime | sed 's/.*load/load/')"
grep -E 'Test +#[0-9]+: ' ctest-times.log | sed -E 's/.*Test +#[0-9]+: ([^ ]+) .* ([0-9.]+) sec$/\2 \1/' |
  sort -rn | head -n 10 | awk '{ printf "%8.1f s  %s\n", $1, $2 }'
grep -E "tests passed|tests failed" ctest-times.log
exit $status
