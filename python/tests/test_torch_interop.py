"""lipattn.torch_weights: torch.nn.MultiheadAttention measured by lipattn equals its own Jacobian's σ."""
import numpy as np
import pytest

import lipattn
from conftest import require_module

torch = require_module("torch", "python3-torch")


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_matches_its_jacobian(causal):
    torch.manual_seed(0)
    n, d, heads = 5, 12, 3
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True).double().eval()
    with torch.no_grad():  # biases away from 0, so that the bias split is tested
        mha.in_proj_bias.normal_(0, 0.1)
        mha.out_proj.bias.normal_(0, 0.1)
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1) if causal else None
    X = torch.randn(n, d, dtype=torch.float64)

    def f(x):
        x = x[None]
        return mha(x, x, x, attn_mask=mask, need_weights=False)[0][0]

    J = torch.autograd.functional.jacobian(f, X).reshape(n * d, n * d)
    sigma = torch.linalg.svdvals(J)[0].item()
    w = lipattn.torch_weights(mha.state_dict())
    assert sorted(w) == ["k.bias", "k.weight", "o.bias", "o.weight", "q.bias", "q.weight", "v.bias", "v.weight"]
    r = lipattn.measure(w, X, heads=heads, causal=causal, method="dense")
    assert abs(r.lipschitz - sigma) <= 1e-10 * sigma


def test_gpt2_conv1d_layout_is_transposed():
    rng = np.random.default_rng(0)
    d = 8
    c_attn = rng.normal(size=(d, 3 * d))  # Conv1D: (in, out)
    w = lipattn.torch_weights({"c_attn.weight": c_attn, "c_attn.bias": np.arange(3 * d, dtype=float),
                               "c_proj.weight": rng.normal(size=(d, d)), "c_proj.bias": np.zeros(d)})
    np.testing.assert_array_equal(w["k.weight"], c_attn[:, d:2 * d].T)
    np.testing.assert_array_equal(w["v.bias"], np.arange(2 * d, 3 * d))


def test_unknown_state_dict_is_an_input_error():
    with pytest.raises(lipattn.InputError, match="MultiheadAttention"):
        lipattn.torch_weights({"weight": np.eye(3)})
