#!/usr/bin/env bash
# The main job on the embedded default: builds lipattn, then measures ‖Df(X)‖₂ of a random
# GPT-2-shaped attention layer (d = 768, 12 heads, causal, W_O) at a random input of 64 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/lipattn measure "$@"
