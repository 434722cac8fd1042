"""Shared fixtures: the checkout, the CLI binary, random layers (python/tests, docs/python.md)."""
import importlib
import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("LIPATTN_BUILD_DIR", ROOT / "build"))
CLI = BUILD / "lipattn"
STORIES = ROOT.parent / "shared" / "data" / "stories260K" / "stories260K.bin"


def running_under_ci():
    """CI=true, as .ci/run sets it: a missing requirement fails the test instead of skipping it."""
    return os.environ.get("CI") == "true"


def require(present, what, install):
    """Skips the test when `present` is false, or under CI=true fails it, naming what is missing and how
    to get it (the C++ tests' tests/requirement_support.h does the same)."""
    if present:
        return
    if running_under_ci():
        pytest.fail(f"missing: {what}; {install} (CI=true: a missing requirement fails the test instead of "
                    "skipping it)", pytrace=False)
    pytest.skip(f"missing: {what}; {install} (skipped; under CI=true this fails)", allow_module_level=True)


def require_module(name, package):
    """The module `name`, imported; missing, it skips or (CI=true) fails through require()."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, f"the Python module {name}", f"scripts/setup.sh installs it (Debian package: {package})")


def require_shared_data(path):
    require(pathlib.Path(path).exists(), f"the shared data file {path}",
            "it lives in ../shared/data beside the checkout (shared/README.md); scripts/setup.sh checks for it")


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
    require(CLI.exists(), f"the CLI {CLI}", "scripts/build.sh builds it (scripts/test.sh does before pytest)")
    return CLI
