#!/usr/bin/env bash
# Installs lipattn's build and test dependencies from Debian's archive (chromium, mpirun and python3-torch
# included: with CI=true a test missing one fails) and checks for the shared data. Idempotent and quiet
# when all is present.
set -euo pipefail
packages=(
  g++ cmake make pkg-config ccache
  libeigen3-dev libspectra-dev libopenblas-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libpcre2-dev libicu-dev
  libgtest-dev libbenchmark-dev
  # libFuzzer targets (scripts/fuzz.sh, docs/fuzzing.md): clang, its sanitizer runtimes, its OpenMP
  clang libclang-rt-14-dev libomp-dev
  gnuplot-nox chromium fonts-dejavu-core
  openmpi-bin libopenmpi-dev
  python3-dev pybind11-dev python3-pybind11 python3-numpy python3-pytest python3-setuptools python3-pip python3-torch
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The shared data (tokenizers, stories260K, texts) is not an apt package: every checkout has it read-only
# at ../shared/data (shared/README.md). The tests that read it skip without it, and fail under CI=true.
shared="$(cd "$(dirname "$0")/.." && pwd)/../shared/data"
missing_data=()
for f in gpt2/vocab.json gpt2/merges.txt bert-base-uncased/vocab.txt stories260K/stories260K.bin \
         stories260K/tok512.bin text/carroll-alice.txt text/tinystories-valid-head.txt; do
  [ -s "$shared/$f" ] || missing_data+=("$f")
done
if [ ${#missing_data[@]} -gt 0 ]; then
  echo "setup: the shared data is missing from $shared: ${missing_data[*]} (shared/README.md says what each is;" \
       "the tests that need it fail under CI=true)" >&2
fi
