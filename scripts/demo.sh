#!/usr/bin/env bash
# The main job on the embedded default: builds lipattn, then reruns every experiment of the paper
# on seeded random GPT-2 and BERT (quick grid) and writes out/reproduce/report.{md,html}.
# Extra arguments go to `lipattn reproduce` (e.g. --gpt2 ~/models/gpt2 --text alice.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/lipattn reproduce --out out/reproduce --quick "$@"
