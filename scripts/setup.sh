#!/usr/bin/env bash
# Installs lipattn's build dependencies from Debian's archive. Idempotent and quiet when all is present.
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
