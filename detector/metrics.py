"""Streaming metrics (numpy only): confusion matrix, per-class precision/recall/F1, macro-F1.

``RunTotals`` is the single accumulator behind both the headless report and the TUI's live
confusion summary, so the two agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


class ConfusionAccumulator:
    """``matrix[i, j]`` counts packets labelled class i and predicted class j."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.matrix = np.zeros((n_classes, n_classes), dtype=np.int64)

    def update(self, labels: np.ndarray, predicted: np.ndarray) -> None:
        ok = labels >= 0
        if not ok.any():
            return
        idx = labels[ok] * self.n_classes + predicted[ok]
        self.matrix += np.bincount(idx, minlength=self.n_classes ** 2).reshape(self.n_classes, self.n_classes)

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    def per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """precision, recall, f1, support (arrays of length n_classes; 0 where undefined)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        pred = m.sum(axis=0)
        sup = m.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(pred > 0, tp / pred, 0.0)
            rec = np.where(sup > 0, tp / sup, 0.0)
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        return prec, rec, f1, sup.astype(np.int64)

    def accuracy(self) -> float:
        t = self.total
        return float(np.trace(self.matrix) / t) if t else 0.0

    def macro_f1(self) -> float:
        """Mean F1 over classes that occur in the labels (support > 0)."""
        _, _, f1, sup = self.per_class()
        present = sup > 0
        return float(f1[present].mean()) if present.any() else 0.0

    def false_alarm_rate(self, normal_index: int = 0) -> float:
        """Fraction of packets labelled normal that were predicted as any other class."""
        row = self.matrix[normal_index]
        s = row.sum()
        return float((s - row[normal_index]) / s) if s else 0.0


@dataclass
class RunTotals:
    """Everything counted over a run: every packet, even those a screen cannot show."""

    classes: Sequence[str]
    packets: int = 0
    anomalies: int = 0
    class_counts: np.ndarray = field(default=None)  # type: ignore[assignment]
    confusion: ConfusionAccumulator = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        k = len(self.classes)
        if self.class_counts is None:
            self.class_counts = np.zeros(k, dtype=np.int64)
        if self.confusion is None:
            self.confusion = ConfusionAccumulator(k)

    def update(self, predicted: np.ndarray, anomaly: np.ndarray, labels: np.ndarray | None) -> None:
        n = len(predicted)
        if not n:
            return
        self.packets += n
        self.anomalies += int(np.count_nonzero(anomaly))
        self.class_counts += np.bincount(predicted, minlength=len(self.classes))[: len(self.classes)]
        if labels is not None:
            self.confusion.update(labels, predicted)

    @property
    def labelled(self) -> int:
        return self.confusion.total

    def report(self, source: str, model: str, seconds: float, extra: dict | None = None) -> dict:
        """The run report of CONTRACT §4 (metrics keys only when labels are known)."""
        rep: dict = {
            "source": source,
            "model": model,
            "packets": int(self.packets),
            "seconds": round(float(seconds), 6),
            "packets_per_second": round(self.packets / seconds, 1) if seconds > 0 else 0.0,
            "class_counts": {c: int(n) for c, n in zip(self.classes, self.class_counts)},
            "anomalies": int(self.anomalies),
        }
        if self.labelled:
            prec, rec, f1, sup = self.confusion.per_class()
            rep["labelled_packets"] = int(self.labelled)
            rep["confusion"] = {"classes": list(self.classes), "matrix": self.confusion.matrix.tolist()}
            rep["per_class"] = {
                c: {"precision": round(float(prec[i]), 6), "recall": round(float(rec[i]), 6),
                    "f1": round(float(f1[i]), 6), "support": int(sup[i])}
                for i, c in enumerate(self.classes)
            }
            rep["accuracy"] = round(self.confusion.accuracy(), 6)
            rep["macro_f1"] = round(self.confusion.macro_f1(), 6)
        else:
            rep["labelled_packets"] = 0
        if extra:
            rep.update(extra)
        return rep
