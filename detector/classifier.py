"""``PacketClassifier``: the inference API used by the headless runner, the TUI and evaluation.

    clf = PacketClassifier.load(None)          # the bundled model; load(path) for another bundle
    ext = clf.new_extractor()                  # one per packet stream (stateful context features)
    X = ext.transform(batch)                   # float32 (n, len(clf.feature_names_in_))
    proba = clf.predict_proba(X)               # float32 (n, len(clf.classes_)), rows sum to 1
    clf.predict(X); clf.is_anomaly(proba, predicted)
    vote = clf.new_vote()                      # per stream too: None when the bundle has no flow/pair vote
    flows, pairs = flowvote.vote_keys(batch)
    proba = vote.update(flows, batch["time_epoch"], proba, pairs)

Inference runs the bundle's weights in float32 with the scaler folded into the first layer
(``model.FoldedMLP``): the fused C kernel ``iotwatch.detector._mlp`` when it is built and the CPU has
AVX-512 or AVX2, else numpy matmuls (``clf.kernel`` says which); both match the torch module in
``eval()`` mode to ~1e-6 and are faster for this tiny network (``bench/inference.py`` measures all
three). Training code is never imported from here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .anomaly import AnomalyPolicy
from .bundle import Bundle, default_bundle_path, load_bundle
from .features import new_extractor
from .flowvote import FlowVote, PairVote, new_vote
from .model import FoldedMLP


class PacketClassifier:
    """A loaded model bundle, sklearn-style names (``classes_``, ``feature_names_in_``)."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        meta = bundle.meta
        self.classes_: list[str] = bundle.classes
        self.feature_names_in_: list[str] = bundle.feature_names
        self.n_features_in_: int = len(self.feature_names_in_)
        self.featurizer: str = meta["featurizer"]
        self.name: str = bundle.display_name
        self.normal_index: int = self.classes_.index(meta["normal_class"])
        self.policy = AnomalyPolicy(self.normal_index, float(meta["anomaly_threshold"]))
        self.flow_vote: float = float(meta.get("flow_vote", 0.0))
        self.pair_vote: PairVote | None = PairVote.from_meta(meta.get("pair_vote"), self.classes_, meta["normal_class"])
        mean, std = bundle.scaler
        self._mlp = FoldedMLP.from_tensors(bundle.config, bundle.tensors, mean, std)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PacketClassifier":
        """The bundle at ``path`` (``None`` = the bundled model). Bad file -> ``InputError``."""
        return cls(load_bundle(default_bundle_path() if path is None else path))

    @property
    def kernel(self) -> str:
        """The inference kernel in use: "avx512", "avx2", "generic" (C) or "numpy"."""
        return self._mlp.kernel_name

    @property
    def meta(self) -> dict:
        return self.bundle.meta

    def new_extractor(self):
        """A fresh per-stream feature extractor matching this model's features."""
        return new_extractor(self.featurizer)

    def new_vote(self) -> FlowVote | None:
        """A fresh per-stream flow vote (detector/flowvote.py) with the bundle's alpha and pair vote; None
        without either."""
        return new_vote(self.flow_vote, self.pair_vote)

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected X of shape (n, {self.n_features_in_}), got {X.shape}")
        return X

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 (n, k), columns in ``classes_`` order."""
        X = self._check(X)
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return self._mlp.proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class index per row, int64 (n,)."""
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    def is_anomaly(self, proba: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        return self.policy.is_anomaly(proba, predicted)
