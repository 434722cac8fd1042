"""lipattn.measure against the CLI, a PyTorch float64 reference, and its error and GIL contracts."""
import json
import subprocess
import sys

import numpy as np
import pytest

import lipattn
from conftest import random_layer, releases_gil, require_module


def cli_measure(cli, tmp_path, weights, X, args):
    lipattn.save_weights(str(tmp_path / "layer.safetensors"), weights)
    np.save(tmp_path / "x.npy", X)
    run = subprocess.run([str(cli), "measure", "--weights", str(tmp_path / "layer.safetensors"), "--input",
                          str(tmp_path / "x.npy"), "--json", *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("method", ["dense", "lanczos", "power"])
def test_sigma_equals_cli(cli, tmp_path, method):
    w = random_layer(24, 3, seed=1, norms=("pre_norm",))
    X = np.random.default_rng(2).normal(size=(12, 24))
    expected = cli_measure(cli, tmp_path, w, X, ["--heads", "3", "--causal", "--pre-norm", "layernorm",
                                                 "--residual", "--method", method])
    r = lipattn.measure(w, X, heads=3, causal=True, pre_norm="layernorm", residual=True, method=method)
    assert abs(r.lipschitz - expected["lipschitz"]) <= 1e-12 * expected["lipschitz"]
    assert abs(r.lower - expected["lower"]) <= 1e-12 * expected["lower"]
    # Every field `measure --json` prints, with the same values (seconds aside). X is read in place
    # (docs/python.md, "Copies"): Eigen's reductions peel by the buffer's alignment, which NumPy's and
    # Eigen's allocators choose differently, so a rounding-level value (the relative residual, ~1e-15)
    # agrees to rounding, not to 12 digits of itself.
    got = r.to_dict()
    assert set(got) == set(expected)
    for key in expected:
        if key == "relative_residual":
            assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-14), key
        elif key != "seconds":
            assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=0), key


def test_paper_form_and_f32_equal_cli(cli, tmp_path):
    rng = np.random.default_rng(3)
    w = {"A": rng.normal(0, 0.5, (8, 8)), "V": rng.normal(0, 0.5, (8, 8))}
    X = rng.normal(size=(40, 8)).astype(np.float32)
    expected = cli_measure(cli, tmp_path, w, X, ["--dtype", "f32", "--method", "lanczos"])
    r = lipattn.measure(w, X, heads=1, causal=False, dtype="f32", method="lanczos")
    assert abs(r.lipschitz - expected["lipschitz"]) <= 1e-12 * expected["lipschitz"]
    assert r.dtype == "f32" and r.f32_check_difference == pytest.approx(expected["f32_check_difference"], rel=1e-12)


def torch_attention(torch, w, heads, causal, pre_norm):
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
    d = t["q.weight"].shape[1]
    k = d // heads

    def f(x):
        z = torch.nn.functional.layer_norm(x, (d,), t["pre_norm.weight"], t["pre_norm.bias"], 1e-5) if pre_norm else x
        q, kk, v = (z @ t[f"{p}.weight"].T + t[f"{p}.bias"] for p in "qkv")
        n = x.shape[0]
        out = []
        for h in range(heads):
            s = slice(h * k, (h + 1) * k)
            scores = q[:, s] @ kk[:, s].T / k ** 0.5
            if causal:
                scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
            out.append(torch.softmax(scores, dim=1) @ v[:, s])
        return torch.cat(out, dim=1) @ t["o.weight"].T + t["o.bias"]

    return f


@pytest.mark.parametrize("causal,pre_norm", [(True, False), (False, True)])
def test_torch_float64_reference(causal, pre_norm):
    torch = require_module("torch", "python3-torch")
    n, d, heads = 6, 12, 3
    w = random_layer(d, heads, seed=4, norms=("pre_norm",) if pre_norm else ())
    X = np.random.default_rng(5).normal(size=(n, d))
    f = torch_attention(torch, w, heads, causal, pre_norm)
    J = torch.autograd.functional.jacobian(f, torch.tensor(X)).reshape(n * d, n * d)
    sigma = torch.linalg.svdvals(J)[0].item()
    for method in ("dense", "lanczos"):
        r = lipattn.measure(w, torch.tensor(X), heads=heads, causal=causal,
                            pre_norm="layernorm" if pre_norm else None, method=method)
        assert abs(r.lipschitz - sigma) <= 1e-10 * sigma, method
        # The right vector is a unit top singular vector: ‖J v‖ = σ.
        v = torch.tensor(r.right_vector.reshape(-1))
        assert abs(torch.linalg.norm(J @ v).item() - sigma) <= 1e-10 * sigma


def test_array_likes_give_the_same_sigma():
    w = random_layer(8, 2, seed=6)
    X = np.random.default_rng(7).normal(size=(5, 8))

    class HasArray:
        def __array__(self, dtype=None):
            return X

    base = lipattn.measure(w, X, heads=2).lipschitz
    assert lipattn.measure(w, HasArray(), heads=2).lipschitz == base
    assert lipattn.measure(w, X[None], heads=2).lipschitz == base  # [1, n, d] as the CLI's .npy
    assert lipattn.measure(w, np.asfortranarray(X), heads=2).lipschitz == base
    assert lipattn.measure(w, X.tolist(), heads=2).lipschitz == base
    torch = require_module("torch", "python3-torch")
    assert lipattn.measure({k: torch.tensor(v) for k, v in w.items()}, torch.tensor(X), heads=2).lipschitz == base


def test_float64_c_contiguous_X_is_read_in_place():
    # lipattn._input_address: the address of the float64 data measure() hands the library for X.
    X = np.random.default_rng(3).normal(size=(5, 8))
    assert lipattn._input_address(X) == X.ctypes.data  # no copy
    assert lipattn._input_address(X[None]) == X.ctypes.data  # [1, n, d]: a reshaped view
    rows = np.random.default_rng(4).normal(size=(10, 8))[::2]  # every other row: not contiguous
    for converted in (X.astype(np.float32), np.asfortranarray(X), rows):
        assert lipattn._input_address(converted) != converted.ctypes.data  # one converted copy
    torch = require_module("torch", "python3-torch")
    t = torch.tensor(X)
    assert lipattn._input_address(t) == t.data_ptr()  # a CPU float64 tensor is read in place too
    w = random_layer(8, 2, seed=6)
    assert lipattn.measure(w, t, heads=2).lipschitz == lipattn.measure(w, X.copy(), heads=2).lipschitz


def test_right_vector_is_zero_copy():
    r = lipattn.measure(random_layer(8, 2), np.ones((4, 8)) + np.eye(4, 8), heads=2)
    assert r.right_vector.shape == (4, 8)
    assert not r.right_vector.flags.owndata  # a view over the library's own vector
    assert np.linalg.norm(r.right_vector) == pytest.approx(1, rel=1e-12)


@pytest.mark.parametrize("kwargs,words", [
    (dict(X=np.zeros((4, 5))), "d = 5"),
    (dict(X=np.zeros((4, 8), dtype=np.int64)), "float32 or float64"),
    (dict(X=np.zeros(8)), "2-D"),
    (dict(heads=3), "heads = 3"),
    (dict(method="svd"), "svd"),
    (dict(dtype="f16"), "f16"),
    (dict(tol=-1.0), "tol"),
    (dict(pre_norm="batchnorm"), "batchnorm"),
    (dict(weights={"q.weight": np.eye(8)}), "'k.weight' is missing"),
    (dict(X=np.full((4, 8), np.nan)), "not finite"),
])
def test_bad_input_raises_input_error(kwargs, words):
    args = dict(weights=random_layer(8, 2), X=np.ones((4, 8)), heads=2)
    args.update(kwargs)
    with pytest.raises(lipattn.InputError, match=words) as error:
        lipattn.measure(args.pop("weights"), args.pop("X"), **args)
    assert isinstance(error.value, ValueError)


def test_gil_is_released_during_a_solve():
    # conftest.releases_gil: a counting thread makes progress only if measure() releases the GIL.
    w = random_layer(48, 4, seed=8, scale=0.05)
    X = np.random.default_rng(9).normal(size=(96, 48))
    assert releases_gil(lambda: lipattn.measure(w, X, heads=4, method="lanczos"))


def test_ctrl_c_stops_a_solve():
    # A solve that would not end (power iteration to a tolerance it cannot reach), interrupted by
    # SIGINT from another thread: KeyboardInterrupt comes through the solver's per-product check.
    child = r"""
import os, signal, threading, numpy as np, lipattn
w = {f"{p}.weight": np.random.default_rng(0).normal(0, 0.3, (8, 8)) for p in "qkvo"}
answered = threading.Event()
def interrupt():  # like a user, press Ctrl-C again every half second until the call answers
    while not answered.wait(0.5):
        os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
try:
    lipattn.measure(w, np.ones((6, 8)) + np.eye(6, 8), heads=2, method="power", tol=1e-300, max_iter=2**31 - 1)
except KeyboardInterrupt:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answered.set()
    print("interrupted")
"""
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "interrupted"
