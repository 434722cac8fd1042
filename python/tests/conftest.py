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


def assert_json_equal(got, expected, path="", rel=1e-12, skip=("seconds",)):
    """Every field of the CLI's --json object, recursively: the same keys, numbers to `rel` (timings aside)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), (path, sorted(got), sorted(expected))
        for key in expected:
            if key not in skip:
                assert_json_equal(got[key], expected[key], f"{path}.{key}", rel, skip)
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_json_equal(g, e, f"{path}[{i}]", rel, skip)
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert got == pytest.approx(expected, rel=rel, abs=0), path
    else:
        assert got == expected, path


def run_cli_json(cli, *args):
    """`lipattn ARGS --json` on files: its JSON object (stdout holds only it)."""
    import json
    import subprocess
    run = subprocess.run([str(cli), *map(str, args), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def cli_error(cli, *args):
    """The message of `lipattn ARGS` failing on bad input (exit 2), without "lipattn: error: " and a flag."""
    import re
    import subprocess
    run = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
    assert run.returncode == 2, (run.returncode, run.stderr)
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("lipattn: error: "), line
    return re.sub(r"^--[a-z-]+: ", "", line[len("lipattn: error: "):])


def releases_gil(call, attempts=10):
    """Whether a thread counts while call() runs. With a long switch interval the main thread never hands
    the GIL over on its own while it runs Python code: the counting thread can count between the two
    reads of `counts` only if call() releases the GIL. The counter sleeps between counts, so it hands the
    GIL back as soon as it can; call() is repeated a few times so that a slow thread wake-up on a loaded
    machine cannot fail the test."""
    import sys
    import threading
    import time
    counts, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counts[0] += 1
            time.sleep(1e-4)

    thread = threading.Thread(target=count)
    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    thread.start()
    during = []
    try:
        for _ in range(attempts):
            time.sleep(0.01)  # hand the GIL over here, so the counter's wait for it starts afresh
            before = counts[0]
            call()
            during.append(counts[0] - before)
            if during[-1] > 0:
                break
    finally:
        stop.set()
        sys.setswitchinterval(old)
        thread.join()
    return during[-1] > 0
