"""Incremental run outputs (CONTRACT §3): predictions CSV and incident alerts (Suricata EVE JSONL).

Both are written batch by batch and flushed, so a crash loses nothing already written. Existing
files are refused unless ``force`` (checked up front by ``check_writable`` before any work starts).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from iotwatch.captures.errors import InputError

from .pipeline import ClassifiedBatch


def check_writable(path: str | os.PathLike | None, force: bool, what: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.exists() and not force:
        raise InputError(f"{what} file {p} already exists", hint="pass --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {what} file {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {what} file {p}: folder {parent} is not writable")


def _open(path) -> "object":
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from None


class PredictionsWriter:
    """``frame_number,predicted,confidence[,label]``: one row per frame, in frame order."""

    def __init__(self, path, classes: Sequence[str], with_labels: bool):
        self.classes = list(classes)
        self.with_labels = with_labels
        self._fh = _open(path)
        self._w = csv.writer(self._fh, lineterminator="\n")
        self._w.writerow(["frame_number", "predicted", "confidence"] + (["label"] if with_labels else []))
        self._fh.flush()
        self.rows = 0

    def write(self, cb: ClassifiedBatch) -> None:
        names = np.asarray(self.classes, dtype=object)[cb.predicted]
        conf = [f"{c:.4f}" for c in cb.confidence.tolist()]
        fn = cb.packets["frame_number"].tolist()
        if self.with_labels:
            lab = cb.labels if cb.labels is not None else np.full(len(cb), -1)
            lab_names = [self.classes[i] if i >= 0 else "" for i in lab.tolist()]
            self._w.writerows(zip(fn, names.tolist(), conf, lab_names))
        else:
            self._w.writerows(zip(fn, names.tolist(), conf))
        self.rows += len(cb)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class AlertsWriter:
    """``--alerts``: Suricata-compatible EVE events, one per incident change (``detector.eve``);
    the per-packet view is ``--predictions``."""

    def __init__(self, path, *, source: str = "", live: bool = False, host: str | None = None, model: str = ""):
        from .eve import EveWriter

        self._w = EveWriter(path, source=source, live=live, host=host, model=model, opener=_open)

    @property
    def events(self) -> int:
        return self._w.events

    @property
    def alerts(self) -> int:
        """Incidents opened (one ``alert`` event each; updates and closings are counted in ``events``)."""
        return self._w.alerts

    def write(self, events) -> None:
        self._w.write(events)

    def close(self) -> None:
        self._w.close()
