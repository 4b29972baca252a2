"""The packet classifier network: the seed paper's MLP, built from a ``ModelConfig``.

Default (the paper's): dense 128-64-32 with ReLU, dropout 0.5 after each hidden layer, and a final
linear layer whose softmax gives the class probabilities (``CrossEntropyLoss`` applies the softmax
during training, so the module returns logits).

``FoldedMLP`` is the inference form: the same weights as float32 arrays with the input scaler folded
into the first layer. It runs them in the fused C kernel ``iotwatch.detector._mlp`` (detector/_mlp.c:
each row's nonzero inputs and hidden units only, exact fp32, AVX-512 or AVX2 picked at run time), or,
when that extension cannot be imported or the CPU has neither, as numpy matmuls (the same
probabilities to ~1e-6). ``kernel_status()`` / ``iotwatch doctor`` / ``bench/inference.py`` say which
runs; ``IOTWATCH_MLP_KERNEL=numpy|avx512|avx2|generic`` forces one. ``bench/inference.py`` compares
both with the torch module under ``torch.inference_mode()``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

try:
    from . import _mlp
    _MLP_ERROR = ""
except ImportError as _e:  # not built (e.g. sources on sys.path without `pip install`): numpy fallback
    _mlp = None
    _MLP_ERROR = f"iotwatch.detector._mlp not importable ({_e}); reinstall with `bash dev.sh setup`"

KERNEL_ENV = "IOTWATCH_MLP_KERNEL"
FAST_KERNELS = ("avx512", "avx2")  # the portable "generic" C kernel is slower than numpy: used only when forced


def kernel_status() -> tuple[str, str]:
    """(kernel the next FoldedMLP will use, why): "avx512" | "avx2" | "generic" | "numpy"."""
    forced = os.environ.get(KERNEL_ENV, "").strip().lower()
    if forced == "numpy":
        return "numpy", f"forced by {KERNEL_ENV}=numpy"
    if _mlp is None:
        return "numpy", _MLP_ERROR
    isas = _mlp.available_isas()
    if forced and forced != "auto":
        if forced in isas:
            return forced, f"forced by {KERNEL_ENV}={forced}"
        return "numpy", f"{KERNEL_ENV}={forced} is not one of this CPU's kernels {list(isas)} or numpy"
    if isas[0] in FAST_KERNELS:
        return isas[0], f"fused C kernel ({isas[0]}); CPU supports {', '.join(isas)}"
    return "numpy", f"CPU has neither AVX-512 nor AVX2+FMA (C kernels: {', '.join(isas)})"


@dataclass(frozen=True)
class ModelConfig:
    n_features: int
    n_classes: int
    hidden: tuple[int, ...] = (128, 64, 32)
    dropout: float = 0.5

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(n_features=int(d["n_features"]), n_classes=int(d["n_classes"]),
                   hidden=tuple(int(h) for h in d.get("hidden", (128, 64, 32))),
                   dropout=float(d.get("dropout", 0.5)))

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(in, out) of every Linear layer, input to output."""
        dims = [self.n_features, *self.hidden, self.n_classes]
        return list(zip(dims[:-1], dims[1:]))

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict keys and shapes of ``build_model(self)`` (what a bundle must hold)."""
        shapes = {}
        for i, (fan_in, fan_out) in enumerate(self.layer_sizes()):
            shapes[f"layers.{i}.weight"] = (fan_out, fan_in)
            shapes[f"layers.{i}.bias"] = (fan_out,)
        return shapes


def build_model(cfg: ModelConfig):
    """The torch module for ``cfg`` (imported lazily so numpy-only users never load torch)."""
    import torch
    from torch import nn

    class PacketMLP(nn.Module):
        def __init__(self, cfg: ModelConfig):
            super().__init__()
            self.cfg = cfg
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in cfg.layer_sizes())
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers[:-1]:
                x = self.dropout(torch.relu(layer(x)))
            return self.layers[-1](x)

    return PacketMLP(cfg)


@dataclass
class FoldedMLP:
    """Inference-only MLP over float32 weights, the scaler folded into layer 0.

    ``kernel``: "auto" (``kernel_status()``), "numpy", or a C kernel name ("avx512", "avx2",
    "generic"; ValueError when this machine cannot run it). ``kernel_name`` is the one in use.
    """

    weights: list[np.ndarray]  # (in, out) each, float32, C-contiguous
    biases: list[np.ndarray] = field(default_factory=list)
    kernel: str = "auto"
    kernel_name: str = field(init=False, default="numpy")
    kernel_reason: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self._k = None
        if self.kernel == "auto":
            name, self.kernel_reason = kernel_status()
        else:
            name, self.kernel_reason = self.kernel, "requested"
            if name != "numpy" and _mlp is None:
                raise ValueError(_MLP_ERROR)
        if name != "numpy":
            try:
                self._k = _mlp.Kernel(self.weights, self.biases, name)
            except (ValueError, TypeError) as e:  # e.g. a layer wider than the kernel supports
                if self.kernel != "auto":
                    raise
                name, self.kernel_reason = "numpy", f"C kernel refused this network: {e}"
        self.kernel_name = name

    def __getstate__(self) -> dict:  # picklable (e.g. for worker processes): the C kernel is rebuilt
        state = dict(self.__dict__)
        state.pop("_k", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    @classmethod
    def from_tensors(cls, cfg: ModelConfig, tensors: dict[str, np.ndarray], mean: np.ndarray,
                     std: np.ndarray, kernel: str = "auto") -> "FoldedMLP":
        ws, bs = [], []
        for i in range(len(cfg.layer_sizes())):
            w = np.asarray(tensors[f"layers.{i}.weight"], dtype=np.float64)
            b = np.asarray(tensors[f"layers.{i}.bias"], dtype=np.float64)
            if i == 0:  # (x - mean) / std @ W.T + b == x @ (W / std).T + (b - W @ (mean / std))
                w_s = w / std[None, :]
                b = b - w_s @ mean
                w = w_s
            ws.append(np.ascontiguousarray(w.T, dtype=np.float32))
            bs.append(b.astype(np.float32))
        return cls(ws, bs, kernel)

    def logits(self, X: np.ndarray) -> np.ndarray:
        h = X
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
        return h

    CHUNK = 4096  # rows per pass: keeps the (chunk, 128) activations in L2 cache (fastest measured)

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax probabilities, float32 (n, classes). NaN/inf inputs give what numpy gives (NaN rows)."""
        out = np.empty((len(X), self.biases[-1].shape[0]), dtype=np.float32)
        if self._k is not None:
            return self._k.proba(np.ascontiguousarray(X, dtype=np.float32), out)
        return self._numpy_proba(X, out)

    def _numpy_proba(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        for s in range(0, len(X), self.CHUNK):
            z = self.logits(X[s:s + self.CHUNK])
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            out[s:s + self.CHUNK] = z
        return out
