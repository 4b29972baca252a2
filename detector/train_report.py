"""``iotwatch train --report DIR``: the seed paper's figures and tables for one training run.

Writes into DIR:

* ``accuracy_loss.png``      training/validation accuracy and loss per epoch
* ``confusion.png``          validation confusion matrix (row-normalised, counts in the cells)
* ``predictions.png``        prediction distribution: labelled vs predicted packets per class, and the
                             histogram of the top-class probability
* ``roc.png``                one-vs-rest ROC curve per class on the validation split
* ``learning_curve.png``     training and validation loss vs training-set size
* ``report.md`` / ``report.html``  the run's tables (data, rows, per-class metrics, held-out captures)
  with the figures embedded, and ``report.json`` with the numbers behind every figure.

Plotting needs matplotlib (``pip install 'iotwatch[train]'``); everything else here is numpy. The
figures are rendered with the non-interactive Agg backend, so no display is needed.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from iotwatch.captures.errors import EnvironmentProblem

FIGURES = ("accuracy_loss.png", "confusion.png", "predictions.png", "roc.png", "learning_curve.png")


@dataclass
class CurvePoint:
    """One point of the learning curve: a model trained on ``rows`` training rows."""
    fraction: float
    rows: int
    train_loss: float
    val_loss: float
    val_macro_f1: float


@dataclass
class RunRecord:
    """Everything the report draws, collected by ``iotwatch train`` (no torch objects)."""
    classes: list[str]
    history: list[dict]
    val_y: np.ndarray
    val_proba: np.ndarray
    meta: dict
    curve: list[CurvePoint] = field(default_factory=list)


def require_matplotlib():
    """matplotlib's pyplot on the Agg backend, or an EnvironmentProblem that says how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise EnvironmentProblem("train --report needs matplotlib, which is not installed",
                                 hint="pip install 'iotwatch[train]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score threshold (both start at 0, end at 1)."""
    order = np.argsort(-score, kind="mergesort")
    pos = positive[order].astype(np.float64)
    s = score[order]
    distinct = np.flatnonzero(np.diff(s)) if len(s) > 1 else np.array([], dtype=np.int64)
    idx = np.concatenate([distinct, [len(s) - 1]]) if len(s) else np.array([], dtype=np.int64)
    tp = np.cumsum(pos)[idx] if len(s) else np.array([])
    fp = (idx + 1) - tp
    P, N = pos.sum(), len(pos) - pos.sum()
    tpr = np.concatenate([[0.0], tp / P if P else np.zeros_like(tp)])
    fpr = np.concatenate([[0.0], fp / N if N else np.zeros_like(fp)])
    return fpr, tpr


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def _figure_accuracy_loss(plt, rec: RunRecord, path: Path) -> dict:
    h = rec.history
    ep = [r["epoch"] for r in h]
    data = {"epoch": ep, "loss": [r["loss"] for r in h], "val_loss": [r["val_loss"] for r in h],
            "accuracy": [r["accuracy"] for r in h], "val_accuracy": [r["val_accuracy"] for r in h]}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, data["accuracy"], marker="o", label="training")
    a1.plot(ep, data["val_accuracy"], marker="o", label="validation")
    a1.set(title="Accuracy vs epochs", xlabel="epoch", ylabel="accuracy")
    a2.plot(ep, data["loss"], marker="o", label="training")
    a2.plot(ep, data["val_loss"], marker="o", label="validation")
    a2.set(title="Loss vs epochs", xlabel="epoch", ylabel="cross-entropy loss")
    for a in (a1, a2):
        a.xaxis.get_major_locator().set_params(integer=True)
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return data


def _figure_confusion(plt, rec: RunRecord, path: Path) -> dict:
    k = len(rec.classes)
    pred = rec.val_proba.argmax(1)
    m = confusion(rec.val_y, pred, k)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), rec.classes, rotation=45, ha="right")
    ax.set_yticks(range(k), rec.classes)
    ax.set(title="Confusion matrix (validation, row-normalised)", xlabel="predicted", ylabel="label")
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, f"{m[i, j]:,}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"classes": rec.classes, "matrix": m.tolist()}


def _figure_predictions(plt, rec: RunRecord, path: Path) -> dict:
    k = len(rec.classes)
    pred = rec.val_proba.argmax(1)
    labelled = np.bincount(rec.val_y, minlength=k)
    predicted = np.bincount(pred, minlength=k)
    top = rec.val_proba.max(1)
    hist, edges = np.histogram(top, bins=20, range=(0.0, 1.0))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(k)
    a1.bar(x - 0.2, labelled, width=0.4, label="labelled")
    a1.bar(x + 0.2, predicted, width=0.4, label="predicted")
    a1.set_xticks(x, rec.classes, rotation=30, ha="right")
    a1.set(title="Prediction distribution (validation)", ylabel="packets")
    a1.set_yscale("symlog")
    a1.legend()
    a2.bar(edges[:-1], hist, width=np.diff(edges), align="edge", edgecolor="black")
    a2.set(title="Top-class probability", xlabel="probability", ylabel="packets")
    a2.set_yscale("symlog")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"labelled": labelled.tolist(), "predicted": predicted.tolist(),
            "confidence_hist": hist.tolist(), "confidence_edges": edges.tolist()}


def _figure_roc(plt, rec: RunRecord, path: Path) -> dict:
    out = {}
    fig, ax = plt.subplots(figsize=(6, 6))
    for i, c in enumerate(rec.classes):
        positive = rec.val_y == i
        if positive.all() or not positive.any():
            continue  # a class absent from (or alone in) the split has no ROC curve
        fpr, tpr = roc_curve(positive, rec.val_proba[:, i])
        auc = float(np.trapezoid(tpr, fpr))
        out[c] = {"auc": round(auc, 6), "points": int(len(fpr))}
        ax.plot(fpr, tpr, label=f"{c} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(title="ROC per class (one vs rest, validation)", xlabel="false-positive rate",
           ylabel="true-positive rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return out


def _figure_learning_curve(plt, rec: RunRecord, path: Path) -> dict:
    pts = sorted(rec.curve, key=lambda p: p.rows)
    rows = [p.rows for p in pts]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rows, [p.train_loss for p in pts], marker="o", label="training")
    ax.plot(rows, [p.val_loss for p in pts], marker="o", label="validation")
    ax.set_xscale("log")
    ax.set(title="Loss vs training-set size", xlabel="training rows", ylabel="cross-entropy loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"points": [p.__dict__ for p in pts]}


def _tables_md(rec: RunRecord) -> list[str]:
    meta = rec.meta
    tr = meta.get("training", {})
    lines = [f"# Training report: `{meta.get('name')}/{meta.get('version')}`", "",
             f"* command: `{tr.get('command', '')}`",
             f"* featurizer `{meta.get('featurizer')}` ({len(meta.get('feature_names', []))} features), "
             f"schema `{meta.get('feature_schema')}`",
             f"* epochs run {tr.get('epochs_run')}, best epoch {tr.get('best_epoch')}, "
             f"anomaly threshold {meta.get('anomaly_threshold', 0):.4f}",
             f"* rows: " + ", ".join(f"{k} {v:,}" for k, v in tr.get("rows", {}).items() if isinstance(v, int)), ""]
    lines += ["## Training data", "", "| file | sha256 | packets | labelled |", "|---|---|---:|---:|"]
    for s in tr.get("data", []):
        lines.append(f"| {s.get('file')} | `{s.get('sha256', '')}` | {s.get('packets', 0):,} | {s.get('labelled', 0):,} |")
    blocks = [("Validation split", meta.get("metrics", {}).get("validation"))]
    blocks += [(f"Held out: {r.get('capture')}", r) for r in meta.get("metrics", {}).get("held_out", [])]
    for title, m in blocks:
        if not m:
            continue
        lines += ["", f"## {title}", "",
                  f"macro-F1 {m['macro_f1']:.4f} · accuracy {m['accuracy']:.4f} · "
                  f"false alarms {m['false_alarm_rate'] * 100:.3f}% of normal packets", "",
                  "| class | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
        for c, pc in m["per_class"].items():
            lines.append(f"| {c} | {pc['support']:,} | {pc['precision']:.4f} | {pc['recall']:.4f} | {pc['f1']:.4f} |")
    return lines


def write_report(rec: RunRecord, out_dir: str | Path) -> list[Path]:
    """Write the five figures, report.md, report.html and report.json into ``out_dir``."""
    plt = require_matplotlib()
    from iotwatch.captures.files import output_folder

    out = output_folder(out_dir, "--report folder")
    drawers = (_figure_accuracy_loss, _figure_confusion, _figure_predictions, _figure_roc, _figure_learning_curve)
    numbers = {}
    for name, draw in zip(FIGURES, drawers):
        numbers[name.removesuffix(".png")] = draw(plt, rec, out / name)
    md = _tables_md(rec) + ["", "## Figures", ""] + [f"![{n}]({n})" for n in FIGURES]
    (out / "report.md").write_text("\n".join(md) + "\n")
    imgs = "\n".join(f'<figure><img src="{n}" alt="{n}"><figcaption>{n}</figcaption></figure>' for n in FIGURES)
    title = html.escape(f"{rec.meta.get('name')}/{rec.meta.get('version')}")
    (out / "report.html").write_text(f"<!doctype html>\n<meta charset='utf-8'>\n<title>Training report {title}</title>\n"
                                     f"<pre>{html.escape(chr(10).join(_tables_md(rec)))}</pre>\n{imgs}\n")
    (out / "report.json").write_text(json.dumps(numbers, indent=1, default=float) + "\n")
    return [out / n for n in FIGURES] + [out / "report.md", out / "report.html", out / "report.json"]


def curve_fractions(rows: int, smallest: int = 200) -> list[float]:
    """Training-set fractions for the learning curve: 1/16 .. 1/2 of the rows, each ≥ ``smallest`` rows."""
    return [f for f in (0.0625, 0.125, 0.25, 0.5) if rows * f >= smallest]


def describe_points(points: Sequence[CurvePoint]) -> str:
    return ", ".join(f"{p.rows:,} rows: val loss {p.val_loss:.3f}" for p in points)
