"""lipattn.bound, lipattn.attack and lipattn.meanfield against the CLI's --json on the same files, and
their error, GIL and copy contracts."""
import numpy as np
import pytest

import lipattn
from conftest import assert_json_equal, cli_error, random_layer, releases_gil, run_cli_json

D, HEADS = 12, 3
LAYER = ["--heads", "3", "--causal", "--pre-norm", "layernorm", "--residual"]
LAYER_KW = dict(heads=3, causal=True, pre_norm="layernorm", residual=True)


def plain(w):
    return {k: v for k, v in w.items() if not k.startswith("pre_norm")}


@pytest.fixture
def files(tmp_path):
    """A layer file and inputs, written once and given to both the CLI and the module."""
    w = random_layer(D, HEADS, seed=11, norms=("pre_norm",))
    rng = np.random.default_rng(12)
    X = rng.normal(size=(8, D))
    paths = dict(weights=tmp_path / "layer.safetensors", plain=tmp_path / "plain.safetensors", X=tmp_path / "x.npy",
                 dup=tmp_path / "dup.npy", masses=tmp_path / "m.npy")
    lipattn.save_weights(str(paths["weights"]), w)  # with a pre-LayerNorm
    lipattn.save_weights(str(paths["plain"]), plain(w))  # attention alone
    np.save(paths["X"], X)
    np.save(paths["dup"], np.vstack([X[:5], X[2:3]]))  # token 2 twice: the reduction applies
    np.save(paths["masses"], rng.uniform(0.5, 2.0, 8))
    return w, X, paths


def test_bound_local_with_exact_and_sweep_equals_cli(cli, files):
    w, X, p = files
    expected = run_cli_json(cli, "bound", "--weights", p["weights"], "--input", p["X"], *LAYER, "--exact",
                            "--sweep", "2,4", "--method", "lanczos")
    for weights, x in ((str(p["weights"]), p["X"]), (w, X)):  # the same files, and the arrays they hold
        r = lipattn.bound(weights, x, exact=True, sweep=[2, 4], method="lanczos", **LAYER_KW)
        assert_json_equal(r.to_dict(), expected)
    assert r.mode == "local" and r.exact == pytest.approx(expected["exact"], rel=1e-12)
    assert isinstance(r.sweep, list) and r.sweep[1]["factor"] == 4
    assert r.right_vector.shape == X.shape and not r.right_vector.flags.owndata
    assert "best" in repr(r) and repr(r).startswith("lipattn.BoundResult(")


def test_bound_on_a_set_equals_cli(cli, files):
    w, _, p = files
    expected = run_cli_json(cli, "bound", "--weights", p["weights"], "--n", 16, "--radius", 3, *LAYER)
    r = lipattn.bound(w, n=16, radius=3.0, **LAYER_KW)
    assert_json_equal(r.to_dict(), expected)
    assert r.mode == "set" and "exact" not in r


def test_hardmax_degrees_are_an_array(cli, files):
    w, X, p = files
    expected = run_cli_json(cli, "bound", "--weights", p["plain"], "--input", p["X"], "--heads", 3, "--causal")
    r = lipattn.bound(plain(w), X, heads=3, causal=True)
    assert_json_equal(r.to_dict(), expected)
    degrees = r.hardmax["max_in_degree"]
    assert isinstance(degrees, np.ndarray) and degrees.tolist() == expected["hardmax"]["max_in_degree"]


@pytest.mark.parametrize("set_args,set_kw", [
    (["--n", 6, "--radius", 2], dict(n=6, radius=2.0)),
    (["--n", 6, "--layernorm"], dict(n=6, layernorm=True)),
])
def test_attack_equals_cli(cli, files, tmp_path, set_args, set_kw):
    w, _, p = files
    witness = tmp_path / "witness.npy"
    common = ["--heads", 3, "--causal", "--pre-norm", "layernorm", "--restarts", 1, "--steps", 5, "--seed", 3]
    expected = run_cli_json(cli, "attack", "--weights", p["weights"], *set_args, *common, "--out", witness)
    r = lipattn.attack(w, **set_kw, heads=3, causal=True, pre_norm="layernorm", restarts=1, steps=5, seed=3,
                       quiet=True, out=str(tmp_path / "py.npy"))
    got = r.to_dict()
    assert got["witness"] == str(tmp_path / "py.npy")
    got["witness"] = expected["witness"]
    assert_json_equal(got, expected)
    np.testing.assert_allclose(r.witness, np.load(witness), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.load(tmp_path / "py.npy"), r.witness)
    assert not r.witness.flags.owndata  # a view over the library's witness
    assert r.in_set <= 1e-12 and r.lower <= r.lipschitz * (1 + 1e-9)


def test_attack_around_an_input_equals_cli(cli, files):
    w, X, p = files
    expected = run_cli_json(cli, "attack", "--weights", p["plain"], "--around", p["X"], "--eps", 0.5,
                            "--heads", 3, "--restarts", 1, "--steps", 4, "--quiet")
    r = lipattn.attack(plain(w), around=X, eps=0.5, heads=3, causal=False, restarts=1, steps=4, quiet=True)
    assert_json_equal(r.to_dict(), expected)
    assert r.witness.shape == X.shape


def test_meanfield_cloud_equals_cli(cli, files):
    w, _, p = files
    expected = run_cli_json(cli, "meanfield", "--weights", p["plain"], "--input", p["dup"], "--heads", 3,
                            "--split", 1, "--copies", 3, "--spread", 0.1, "--method", "lanczos")
    r = lipattn.meanfield(plain(w), np.load(p["dup"]), heads=3, causal=False, split=1, copies=3, spread=0.1,
                          method="lanczos")
    assert isinstance(r, lipattn.MeanFieldResult)
    assert_json_equal(r.to_dict(), expected)
    assert "reduced" in r and r.split["copies"] == 3


def test_meanfield_masses_and_causal_equal_cli(cli, files):
    w, X, p = files
    expected = run_cli_json(cli, "meanfield", "--weights", p["weights"], "--input", p["X"], "--masses",
                            p["masses"], *LAYER)
    for masses in (p["masses"], np.load(p["masses"])):
        r = lipattn.meanfield(str(p["weights"]), X, masses=masses, **LAYER_KW)
        assert_json_equal(r.to_dict(), expected)
    assert r.masked and r.meanfield != r.euclidean


@pytest.mark.parametrize("regime", ["construction", "iid"])
def test_meanfield_regime_equals_cli(cli, files, regime):
    w, _, p = files
    expected = run_cli_json(cli, "meanfield", "--weights", p["plain"], "--heads", 3, "--regime", regime,
                            "--radius", 2, "--n-max", 64, "--full-max", 16, "--per-decade", 2)
    r = lipattn.meanfield(plain(w), regime=regime, radius=2.0, n_max=64, full_max=16, per_decade=2, heads=3, causal=False)
    assert isinstance(r, lipattn.RegimeCurve)
    assert_json_equal(r.to_dict(), expected)
    assert [pt["n"] for pt in r.points] == [pt["n"] for pt in expected["points"]]


# Bad input: lipattn.InputError carrying the message the CLI prints for the same input (after its
# "lipattn: error: --flag: " prefix): bad shapes, names, values and missing files.
def error_cases(p):
    W, X = ["--weights", p["plain"]], ["--input", p["X"]]
    return [
        # (python call, CLI arguments)
        (lambda: lipattn.bound(str(p["plain"]), p["X"], heads=5), ["bound", *W, *X, "--heads", 5]),
        (lambda: lipattn.bound(str(p["weights"]), p["X"], heads=3, pre_norm="batchnorm"),
         ["bound", "--weights", p["weights"], *X, "--heads", 3, "--pre-norm", "batchnorm"]),
        (lambda: lipattn.bound(str(p["weights"]), p["X"], heads=3, causal=False),
         ["bound", "--weights", p["weights"], *X, "--heads", 3]),  # pre_norm tensors, no pre_norm
        (lambda: lipattn.bound(str(p["plain"]), n=-1, radius=1.0, heads=3), ["bound", *W, "--n", -1, "--radius", 1,
                                                                            "--heads", 3]),
        (lambda: lipattn.bound(str(p["plain"]), n=4, radius=-1.0, heads=3),
         ["bound", *W, "--n", 4, "--radius", -1, "--heads", 3]),
        (lambda: lipattn.bound(str(p["plain"]), p["X"], heads=3, exact=True, method="svd"),
         ["bound", *W, *X, "--heads", 3, "--exact", "--method", "svd"]),
        (lambda: lipattn.bound("/nonexistent/layer.safetensors", p["X"]),
         ["bound", "--weights", "/nonexistent/layer.safetensors", *X]),
        (lambda: lipattn.bound(str(p["plain"]), "/nonexistent/x.npy", heads=3),
         ["bound", *W, "--input", "/nonexistent/x.npy", "--heads", 3]),
        (lambda: lipattn.bound(str(p["plain"]), p["masses"], heads=3), ["bound", *W, "--input", p["masses"],
                                                                          "--heads", 3]),  # a 1-D .npy
        (lambda: lipattn.attack(str(p["plain"]), n=4, radius=1.0, heads=3, construction="best", quiet=True),
         ["attack", *W, "--n", 4, "--radius", 1, "--heads", 3, "--construction", "best"]),
        (lambda: lipattn.attack(str(p["plain"]), n=4, radius=1.0, heads=3, head=7, quiet=True),
         ["attack", *W, "--n", 4, "--radius", 1, "--heads", 3, "--head", 7]),
        (lambda: lipattn.attack(str(p["plain"]), around="/nonexistent/x0.npy", eps=1.0, heads=3),
         ["attack", *W, "--around", "/nonexistent/x0.npy", "--eps", 1, "--heads", 3]),
        (lambda: lipattn.meanfield(str(p["plain"]), regime="uniform", radius=1.0, heads=3),
         ["meanfield", *W, "--regime", "uniform", "--radius", 1, "--heads", 3]),
        (lambda: lipattn.meanfield(str(p["plain"]), p["X"], masses=p["X"], heads=3),
         ["meanfield", *W, *X, "--masses", p["X"], "--heads", 3]),  # masses of the wrong shape
        (lambda: lipattn.meanfield(str(p["plain"]), p["X"], masses=-np.load(p["masses"]), heads=3, causal=False),
         None),
        (lambda: lipattn.meanfield(str(p["plain"]), p["X"], split=1, copies=0, heads=3, causal=False),
         None),
    ]


def test_errors_carry_the_cli_message(cli, files, tmp_path):
    _, _, p = files
    for call, cli_args in error_cases(p):
        with pytest.raises(lipattn.InputError) as error:
            call()
        assert isinstance(error.value, ValueError)
        message = str(error.value)
        assert message, cli_args
        if cli_args is not None:
            assert cli_error(cli, *cli_args) == message, cli_args


def test_python_only_argument_errors():
    w = random_layer(8, 2)
    for call, words in [
        (lambda: lipattn.bound(w, np.ones((4, 8)), n=4, radius=1.0, heads=2), "not both"),
        (lambda: lipattn.bound(w, heads=2), "input X"),
        (lambda: lipattn.bound(w, n=4, heads=2), "radius"),
        (lambda: lipattn.bound(w, n=4, radius=1.0, exact=True, heads=2), "exact"),
        (lambda: lipattn.attack(w, n=4, heads=2), "exactly one set"),
        (lambda: lipattn.attack(w, around=np.ones((4, 8)), heads=2), "eps"),
        (lambda: lipattn.meanfield(w, heads=2), "regime"),
        (lambda: lipattn.meanfield(w, regime="iid", heads=2), "radius"),
        (lambda: lipattn.meanfield(w, np.ones((4, 8)), positions=np.ones(4), heads=2, causal=False), "causal"),
        (lambda: lipattn.bound([1, 2], np.ones((4, 8))), "weights"),
        (lambda: lipattn.bound(w, np.ones((4, 5)), heads=2), "features"),
    ]:
        with pytest.raises(lipattn.InputError, match=words):
            call()


def test_gil_is_released_during_bound_and_attack():
    w = random_layer(48, 4, seed=8, scale=0.05)
    X = np.random.default_rng(9).normal(size=(64, 48))
    assert releases_gil(lambda: lipattn.bound(w, X, heads=4, exact=True, method="lanczos"))
    assert releases_gil(lambda: lipattn.attack(random_layer(8, 2), n=24, radius=2.0, heads=2, restarts=1, steps=3,
                                               quiet=True))
    assert releases_gil(lambda: lipattn.meanfield(w, X, heads=4, method="lanczos"))
