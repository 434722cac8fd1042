"""Type stubs for the lipattn extension module (docs/python.md)."""
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

ArrayLike = Union[npt.ArrayLike, Any]  # NumPy arrays, __array__ objects, DLPack producers (CPU torch tensors)

class InputError(ValueError):
    """Bad input: the library's message, as the CLI prints it; `field` names the argument or is ''."""
    field: str

class Result:
    """A measurement: the fields of `lipattn measure --json` as attributes and items."""
    right_vector: Optional[np.ndarray]  # [n, d], unit; None for Model.measure results
    lipschitz: float
    lower: float
    matvecs: int
    converged: bool
    relative_residual: float
    seconds: float
    method: str
    def __getattr__(self, name: str) -> Any: ...
    def __getitem__(self, name: str) -> Any: ...
    def to_dict(self) -> dict: ...
    def keys(self) -> Any: ...

def measure(weights: Mapping[str, ArrayLike], X: ArrayLike, *, heads: int = 12, causal: bool = True,
            pre_norm: Optional[str] = None, residual: bool = False, post_norm: Optional[str] = None,
            norm_eps: float = 1e-5, method: str = "auto", tol: float = 1e-10, max_iter: int = 0, krylov: int = 20,
            seed: int = 0, dtype: str = "f64", storage: str = "auto",
            max_memory: Union[int, str, None] = None) -> Result:
    """‖Df(X)‖₂ of one attention layer given as layer-file arrays, at X [n, d]."""

def save_weights(path: str, weights: Mapping[str, ArrayLike], dtype: str = "F64") -> None:
    """Writes a dict of arrays as a safetensors file (a layer file for `lipattn measure --weights`)."""

def torch_weights(state_dict: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
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
