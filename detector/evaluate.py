"""Evaluation of a classifier on labelled data: the numbers in training reports and the model card.

Confusion matrix, per-class precision/recall/F1, macro-F1 and false-alarm rate come from
``metrics.ConfusionAccumulator`` (the same accumulator as the headless report); this module adds
one-vs-rest ROC-AUC and the replay of labelled captures through the one data path,
``pipeline.classify_stream``, exactly as ``iotwatch -r FILE --headless`` runs them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .metrics import ConfusionAccumulator


def roc_auc_binary(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties averaged); None if one side is empty."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    s = np.asarray(score)[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average rank over ties
    boundaries = np.flatnonzero(np.r_[True, s[1:] != s[:-1], True])
    for lo, hi in zip(boundaries[:-1], boundaries[1:]):
        ranks[lo:hi] = (lo + hi + 1) / 2.0
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_ovr(labels: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """One-vs-rest ROC-AUC per class present in ``labels`` (plus ``macro``)."""
    out: dict[str, float] = {}
    for k, name in enumerate(classes):
        auc = roc_auc_binary(labels == k, proba[:, k])
        if auc is not None:
            out[name] = round(auc, 6)
    if out:
        out["macro"] = round(float(np.mean(list(out.values()))), 6)
    return out


def summarize(labels: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, classes: Sequence[str],
              normal_index: int) -> dict:
    """Metrics dict for labelled rows (label >= 0): confusion, per-class, macro-F1, AUC, false alarms."""
    ok = labels >= 0
    acc = ConfusionAccumulator(len(classes))
    acc.update(labels[ok], predicted[ok])
    return summarize_confusion(acc, classes, normal_index,
                               roc_auc_ovr(labels[ok], proba[ok], classes) if proba is not None else None)


def summarize_confusion(acc: ConfusionAccumulator, classes: Sequence[str], normal_index: int,
                        auc: dict | None = None) -> dict:
    prec, rec, f1, sup = acc.per_class()
    out = {
        "labelled_packets": acc.total,
        "accuracy": round(acc.accuracy(), 6),
        "macro_f1": round(acc.macro_f1(), 6),
        "false_alarm_rate": round(acc.false_alarm_rate(normal_index), 6),
        "per_class": {c: {"precision": round(float(prec[i]), 6), "recall": round(float(rec[i]), 6),
                          "f1": round(float(f1[i]), 6), "support": int(sup[i])} for i, c in enumerate(classes)},
        "confusion": {"classes": list(classes), "matrix": acc.matrix.tolist()},
    }
    if auc is not None:
        out["roc_auc_ovr"] = auc
    return out


def evaluate_capture(classifier, path: str | Path, labels_path: str | Path | None = None,
                     max_auc_rows: int = 2_000_000) -> dict:
    """Replay one labelled capture through ``classify_stream`` and summarise it."""
    from iotwatch.captures.errors import InputError
    from iotwatch.captures.labels import LabelSet
    from iotwatch.captures.sources import open_source

    from .pipeline import classify_stream

    classes = list(classifier.classes_)
    labels = LabelSet.load(classes, capture=path, labels_path=labels_path)
    source = open_source(read=str(path))
    all_lab, all_pred, all_proba = [], [], []
    anomalies = packets = 0
    try:
        for cb in classify_stream(source, classifier, labels, max_rows=8192, max_wait=1.0):
            packets += len(cb)
            anomalies += int(cb.anomaly.sum())
            all_lab.append(cb.labels)
            all_pred.append(cb.predicted)
            all_proba.append(cb.proba)
    finally:
        source.close()
    if not packets:
        raise InputError(f"capture {path} holds no packets")
    lab = np.concatenate(all_lab)
    pred = np.concatenate(all_pred)
    proba = np.concatenate(all_proba)
    if (lab >= 0).sum() == 0:
        raise InputError(f"capture {path} has no labels", hint="add <capture>.labels.csv or label= comments")
    # anomaly-based false alarms: normal packets flagged by the policy (what a user sees as alerts)
    res = summarize(lab, pred, proba if len(lab) <= max_auc_rows else None, classes, classifier.normal_index)
    normal = lab == classifier.normal_index
    flagged = classifier.is_anomaly(proba, pred)
    res["alert_rate_on_normal"] = round(float(flagged[normal].mean()) if normal.any() else 0.0, 6)
    res["capture"] = str(path)
    res["packets"] = packets
    res["anomalies"] = anomalies
    return res
