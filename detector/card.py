"""A bundle's card (``iotwatch model show FILE``): what a ``.iotw`` holds, as rich renderables.

Everything comes from the bundle's JSON metadata (``load_bundle`` validates it; nothing is unpickled):
name and version, classes, features, anomaly threshold, training command, data with sha256, rows,
per-epoch history and the validation / held-out metrics.
"""
from __future__ import annotations

from typing import Iterator

from rich.table import Table
from rich.text import Text


def _pair_vote_line(pv: dict | None) -> str:
    if not pv or not pv.get("weight"):
        return "off"
    return (f"weight {pv['weight']:g} over {pv['tau']:g} s: a connection voted {', '.join(pv['classes'])} is pulled "
            f"toward the two hosts' other traffic when at least {pv['floor']:g} of it was normal")


def _metrics_table(title: str, m: dict) -> Table:
    t = Table(title=f"{title}: macro-F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}, "
                    f"false alarms {m['false_alarm_rate'] * 100:.3f}% of normal", show_edge=False, title_justify="left")
    for col in ("class", "support", "precision", "recall", "f1"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for c, pc in m["per_class"].items():
        t.add_row(Text(c), f"{pc['support']:,}", f"{pc['precision']:.4f}", f"{pc['recall']:.4f}", f"{pc['f1']:.4f}")
    return t


def card(meta: dict, path: str = "") -> Iterator:
    """The renderables of one bundle's card, in reading order."""
    tr = meta.get("training") or {}
    cfg = meta.get("model_config") or {}
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    rows = [
        ("bundle", f"{meta.get('name')}/{meta.get('version')}" + (f"  ({path})" if path else "")),
        ("classes", ", ".join(meta.get("classes", [])) + f"  (normal class: {meta.get('normal_class')})"),
        ("features", f"{len(meta.get('feature_names', []))} from featurizer {meta.get('featurizer')} "
                     f"(schema {meta.get('feature_schema')})"),
        ("network", f"{cfg.get('n_features')} → {' → '.join(map(str, cfg.get('hidden', [])))} → {cfg.get('n_classes')}, "
                    f"dropout {cfg.get('dropout')}"),
        ("anomaly threshold", f"{meta.get('anomaly_threshold', 0):.4f} (top class not normal and at least this probable)"),
        ("flow vote", f"alpha {meta['flow_vote']:g} (each packet's probabilities averaged with its flow's earlier ones)"
         if meta.get("flow_vote") else "off (each packet alone)"),
        ("pair vote", _pair_vote_line(meta.get("pair_vote"))),
    ]
    if tr:
        derived = tr.get("derived_from") or {}
        if derived:
            rows.append(("derived from", f"{derived.get('bundle')} (sha256 {derived.get('sha256')}): {derived.get('change')}"))
        init = tr.get("init") or {}
        if init:
            rows.append(("continued from", f"{init.get('bundle')} (sha256 {init.get('sha256')}): its network and "
                         f"scaler, trained further on the data below; its own training data: "
                         f"{len(init.get('data') or [])} files (--json: training.init.data)"))
        rows += [("trained with", tr.get("command", "")),
                 ("preset / seed", f"{tr.get('preset')} / {tr.get('seed')}"),
                 ("epochs", f"{tr.get('epochs_run')} run, best {tr.get('best_epoch')}"),
                 ("rows", ", ".join(f"{k} {v:,}" for k, v in (tr.get("rows") or {}).items() if isinstance(v, int)))]
    for k, v in rows:
        head.add_row(k, Text(str(v)))
    yield head
    data = tr.get("data") or []
    if data:
        t = Table(title=f"training data ({len(data)} files)", show_edge=False, title_justify="left")
        t.add_column("file")
        t.add_column("sha256", overflow="fold", min_width=16)
        t.add_column("packets", justify="right")
        t.add_column("labelled", justify="right")
        for s in data:
            t.add_row(Text(str(s.get("file"))), str(s.get("sha256", "")), f"{s.get('packets', 0):,}",
                      f"{s.get('labelled', 0):,}")
        yield t
    metrics = meta.get("metrics") or {}
    if metrics.get("validation"):
        yield _metrics_table("validation split", metrics["validation"])
    for r in metrics.get("held_out", []):
        yield _metrics_table(f"held out {r.get('capture')}", r)
    hist = tr.get("history") or []
    if hist:
        t = Table(title="history", show_edge=False, title_justify="left")
        for col in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1"):
            t.add_column(col, justify="right")
        for h in hist:
            t.add_row(str(h["epoch"]), *(f"{h[c]:.4f}" for c in ("loss", "accuracy", "val_loss", "val_accuracy",
                                                                  "val_macro_f1")))
        yield t
