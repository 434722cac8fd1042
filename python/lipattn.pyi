"""Type stubs for the lipattn extension module (docs/python.md).

python/tests/test_stub.py checks that this file names every public attribute of the module and
nothing else.
"""
import os
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

# NumPy arrays, __array__ objects, DLPack producers (CPU torch tensors)
_ArrayLike = Union[npt.ArrayLike, Any]
_Path = Union[str, os.PathLike]
# A layer: a dict of arrays named as in a layer file, or the path of one (docs/formats.md).
_Weights = Union[Mapping[str, _ArrayLike], _Path]
# An input: an array-like [n, d] (or [1, n, d]), or the path of an .npy file.
_Input = Union[_ArrayLike, _Path]

class InputError(ValueError):
    """Bad input: the library's message, as the CLI prints it; `field` names the argument or is ''."""
    field: str

class _Record:
    """A command's `--json` object: fields as attributes and items, numeric lists as arrays."""
    def __getattr__(self, name: str) -> Any: ...
    def __getitem__(self, name: str) -> Any: ...
    def __contains__(self, name: str) -> bool: ...
    def to_dict(self) -> dict:
        """The JSON object the CLI prints with --json (plain lists, not arrays)."""
    def keys(self) -> list[str]: ...

class Result(_Record):
    """A measurement: the fields of `lipattn measure --json`."""
    right_vector: Optional[np.ndarray]  # [n, d], unit; None for Model.measure results
    lipschitz: float
    lower: float
    matvecs: int
    converged: bool
    relative_residual: float
    seconds: float
    method: str

class BoundResult(_Record):
    """Upper bounds: the fields of `lipattn bound --json`."""
    bounds: dict[str, Union[float, str]]
    attention_bounds: dict[str, Union[float, str]]
    status: dict[str, str]
    best: dict[str, Any]
    n: int
    radius: Union[float, str, None]
    mode: str  # "local" | "set"
    factors: dict[str, Any]
    notes: list[str]

class AttackResult(_Record):
    """An attack: the fields of `lipattn attack --json`; `witness` is the input found."""
    witness: np.ndarray  # [n, d]
    lower: float
    lipschitz: float
    construction: Optional[float]
    constructions: list[dict[str, Any]]
    upper: Optional[float]
    upper_name: Optional[str]
    n: int
    d: int
    set: str
    in_set: float
    certificate: dict[str, Any]
    starts: list[dict[str, Any]]
    seconds: float

class MeanFieldResult(_Record):
    """Mean-field constants of a cloud: the fields of `lipattn meanfield --input X.npy --json`."""
    n: int
    d: int
    masked: bool
    euclidean: float
    meanfield: float
    euclidean_detail: dict[str, Any]
    meanfield_detail: dict[str, Any]

class RegimeCurve(_Record):
    """A regime curve: the fields of `lipattn meanfield --regime ... --json`."""
    regime: str
    radius: float
    points: list[dict[str, Any]]

class SweepSummary(_Record):
    """A sweep run: counts, errors, notes and the results file."""
    results: str
    total: int
    ran: int
    skipped: int
    failed: int
    errors: list[dict[str, str]]
    notes: list[str]

class ReproduceSummary(_Record):
    """A reproduce run: the report's paths and the jobs' counts."""
    fits: str
    report_md: str
    report_html: str
    jobs: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    errors: list[str]
    notes: list[str]

def measure(weights: _Weights, X: _Input, *, heads: int = 12, causal: bool = True,
            pre_norm: Optional[str] = None, residual: bool = False, post_norm: Optional[str] = None,
            norm_eps: float = 1e-5, method: str = "auto", tol: float = 1e-10, max_iter: int = 0, krylov: int = 20,
            seed: int = 0, dtype: str = "f64", storage: str = "auto",
            max_memory: Union[int, str, None] = None) -> Result:
    """‖Df(X)‖₂ of one attention layer at X [n, d]: `lipattn measure --weights --input --json`."""

def bound(weights: _Weights, X: Optional[_Input] = None, *, n: Optional[int] = None,
          radius: Optional[float] = None, exact: bool = False, sweep: Sequence[float] = (), heads: int = 12,
          causal: bool = True, pre_norm: Optional[str] = None, residual: bool = False,
          post_norm: Optional[str] = None, norm_eps: float = 1e-5, method: str = "auto", tol: float = 1e-10,
          max_iter: int = 0, krylov: int = 20, seed: int = 0, dtype: str = "f64") -> BoundResult:
    """Certified upper bounds at X, or on B_R^n (n, radius): `lipattn bound --json`."""

def attack(weights: _Weights, *, n: Optional[int] = None, radius: Optional[float] = None, layernorm: bool = False,
           around: Optional[_Input] = None, eps: Optional[float] = None, head: Optional[int] = None,
           restarts: int = 4, steps: int = 60, construction: str = "both", seed: int = 0,
           out: Optional[str] = None, quiet: bool = False, heads: int = 12, causal: bool = True,
           pre_norm: Optional[str] = None, residual: bool = False, post_norm: Optional[str] = None,
           norm_eps: float = 1e-5) -> AttackResult:
    """A certified lower bound on sup ‖Df(X)‖₂ over a set, with its witness: `lipattn attack --json`."""

def meanfield(weights: _Weights, X: Optional[_Input] = None, *, masses: Optional[_Input] = None,
              positions: Optional[_Input] = None, regime: Optional[str] = None, radius: Optional[float] = None,
              n_min: int = 2, n_max: int = 0, per_decade: int = 4, full_max: int = -1, head: Optional[int] = None,
              split: Optional[int] = None, copies: int = 2, spread: float = 0.0, heads: int = 12,
              causal: bool = True, pre_norm: Optional[str] = None, residual: bool = False,
              post_norm: Optional[str] = None, norm_eps: float = 1e-5, method: str = "auto", tol: float = 1e-10,
              max_iter: int = 0, krylov: int = 20, seed: int = 0) -> Union[MeanFieldResult, RegimeCurve]:
    """The mean-field constant of a cloud X, or a regime curve over n: `lipattn meanfield --json`."""

def sweep(spec: Union[Mapping[str, Any], _Path], out: _Path, *, jobs: int = 0, parallel: str = "auto",
          quiet: bool = False) -> SweepSummary:
    """Runs a sweep's jobs into the results file `out`: `lipattn sweep SPEC --out OUT`."""

def reproduce(out: _Path, quick: bool = True, *, gpt2: Optional[str] = None, bert: Optional[str] = None,
              text: Optional[_Path] = None, jobs: int = 0, parallel: str = "auto", seed: int = 0,
              only: Sequence[str] = (), analyse_only: bool = False, quiet: bool = False) -> ReproduceSummary:
    """Reruns the paper's experiments into `out`: `lipattn reproduce --out OUT [--quick]`."""

def save_weights(path: str, weights: Mapping[str, _ArrayLike], dtype: str = "F64") -> None:
    """Writes a dict of arrays as a safetensors file (a layer file for `lipattn measure --weights`)."""

def torch_weights(state_dict: Mapping[str, _ArrayLike]) -> dict[str, np.ndarray]:
    """Layer-file arrays from a torch.nn.MultiheadAttention / GPT2Attention / BertAttention / q_proj... state_dict."""

class Model:
    """A transformer loaded as `lipattn ... --model` loads it."""
    @staticmethod
    def load(spec: str, seed: int = 0) -> "Model": ...
    @property
    def config(self) -> dict: ...
    @property
    def spec(self) -> str: ...
    def tokenize(self, text: str, tokenizer: Optional[str] = None) -> list[int]: ...
    def forward(self, ids: Sequence[int], *, dtype: str = "f64", logits: bool = True) -> dict[str, np.ndarray]: ...
    def measure(self, *, layer: int = 0, head: Optional[int] = None, block: str = "",
                layers: Optional[tuple[int, int]] = None, ids: Sequence[int] = (),
                text: Optional[str] = None, n: int = 0, samples: int = 1, causal: bool = False, method: str = "auto",
                tol: float = 1e-10, max_iter: int = 0, krylov: int = 20, dtype: str = "f64", storage: str = "auto",
                max_memory: Union[int, str, None] = None, tokenizer: Optional[str] = None) -> list[Result]: ...
