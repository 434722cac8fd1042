"""lipattn.Model on the llama2.c stories260K checkpoint, against `lipattn measure --model`."""
import json
import subprocess

import numpy as np
import pytest

import lipattn
from conftest import STORIES


@pytest.fixture(scope="module")
def stories():
    if not STORIES.exists():
        pytest.skip(f"{STORIES} is missing")
    return lipattn.Model.load(str(STORIES))


def test_config_tokenize_forward(stories):
    assert stories.config["num_layers"] == 5
    ids = stories.tokenize("Once upon a time")
    assert ids[0] == 1 and len(ids) > 2  # BOS first, as run.c encodes
    taps = stories.forward(ids)
    d = stories.config["hidden_size"]
    assert taps["layer0.attn_in"].shape == (len(ids), d)
    assert taps["logits"].shape == (len(ids), 512)
    assert not taps["logits"].flags.owndata  # a view over the library's matrix
    assert "logits" not in stories.forward(ids, logits=False)


def test_measure_equals_cli(stories, cli):
    ids = [1, 403, 407, 261, 378, 2]
    results = stories.measure(layer=2, ids=ids)
    assert len(results) == 1
    run = subprocess.run([str(cli), "measure", "--model", str(STORIES), "--layer", "2", "--json", "--ids",
                          ",".join(map(str, ids))], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    expected = json.loads(run.stdout.splitlines()[0])
    assert abs(results[0].lipschitz - expected["lipschitz"]) <= 1e-12 * expected["lipschitz"]
    assert results[0].n == len(ids) and results[0].layer == 2


def test_measure_on_text_windows(stories):
    results = stories.measure(layer=0, text="Once upon a time there was a little girl. " * 4, n=8, samples=2)
    assert [r.sample for r in results] == [0, 1] and all(r.lower <= r.lipschitz for r in results)


def test_model_errors(stories):
    with pytest.raises(lipattn.InputError, match="layer"):
        stories.measure(layer=99, ids=[1, 2, 3])
    with pytest.raises(ValueError):
        stories.forward([10**6])
    with pytest.raises(lipattn.InputError):
        lipattn.Model.load("/nonexistent/model")


def test_measure_whole_blocks(stories):
    ids = [1, 403, 407, 261, 378, 2]
    layer = stories.measure(block="layer", layer=1, ids=ids)[0]
    stack = stories.measure(block="stack", layers=(1, 2), ids=ids)[0]
    assert abs(stack.lipschitz - layer.lipschitz) <= 1e-9 * layer.lipschitz
    model = stories.measure(block="model", ids=ids)[0]
    assert model.composition["product"] >= model.lipschitz * (1 - 1e-9)
    assert abs(sum(model.concentration["shares"]) - 1) < 1e-12
    with pytest.raises(lipattn.InputError, match="layers"):
        stories.measure(block="stack", ids=ids)
    with pytest.raises(lipattn.InputError, match="head"):
        stories.measure(block="layer", head=0, ids=ids)
