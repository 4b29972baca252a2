"""Tiny deterministic model bundles for tests (anyone's): fast, no training, no torch.

    path = make_tiny_bundle(tmp_path / "tiny.iotw", seed=0)
    clf = PacketClassifier.load(path)

Weights come from a seeded numpy generator, so the same seed gives byte-identical bundles. The
network is small (hidden 8-8) unless ``hidden`` says otherwise; predictions are arbitrary but
deterministic.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .bundle import CONTRACT_CLASSES, make_meta, save_bundle
from .features import FEATURIZERS
from .model import ModelConfig


def tiny_tensors(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in cfg.tensor_shapes().items():
        scale = 1.0 / np.sqrt(shape[-1]) if len(shape) == 2 else 0.1
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def make_tiny_bundle(path: str | Path, seed: int = 0, classes: Sequence[str] = CONTRACT_CLASSES,
                     featurizer: str = "context-v1", hidden: tuple[int, ...] = (8, 8),
                     name: str = "tiny-test", anomaly_threshold: float = 0.5) -> Path:
    """Write a small deterministic bundle at ``path`` and return the path."""
    names, _ = FEATURIZERS[featurizer]
    cfg = ModelConfig(n_features=len(names), n_classes=len(classes), hidden=tuple(hidden))
    meta = make_meta(name=name, version=f"seed{seed}", classes=classes, featurizer=featurizer,
                     scaler_mean=np.zeros(len(names)), scaler_std=np.ones(len(names)), config=cfg,
                     normal_class=classes[0], anomaly_threshold=anomaly_threshold,
                     training={"data": "none: random weights for tests", "seed": seed})
    return save_bundle(path, tiny_tensors(cfg, seed), meta)
