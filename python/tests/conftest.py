"""Shared fixtures: the checkout, the CLI binary, random layers (python/tests, docs/python.md)."""
import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("LIPATTN_BUILD_DIR", ROOT / "build"))
CLI = BUILD / "lipattn"
STORIES = ROOT.parent / "shared" / "data" / "stories260K" / "stories260K.bin"


def random_layer(d, heads, seed=0, scale=0.3, biases=True, norms=()):
    """A layer-file dict (nn.Linear layout) with weights N(0, scale²)."""
    rng = np.random.default_rng(seed)
    w = {f"{p}.weight": rng.normal(0, scale, (d, d)) for p in "qkvo"}
    if biases:
        w.update({f"{p}.bias": rng.normal(0, 0.1, d) for p in "qkvo"})
    for prefix in norms:
        w[f"{prefix}.weight"] = 1 + rng.normal(0, 0.1, d)
        w[f"{prefix}.bias"] = rng.normal(0, 0.1, d)
    return w


@pytest.fixture
def cli():
    if not CLI.exists():
        pytest.skip(f"{CLI} is not built")
    return CLI
