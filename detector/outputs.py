"""Incremental run outputs (CONTRACT §3): predictions CSV and EVE-like alerts JSONL.

Both are written batch by batch and flushed, so a crash loses nothing already written. Existing
files are refused unless ``force`` (checked up front by ``check_writable`` before any work starts).
"""
from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from iotwatch.captures.describe import endpoints, ports, transport_name
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


def _iso(ts: float) -> str:
    if ts != ts:  # NaN
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def alert_records(cb: ClassifiedBatch, classes: Sequence[str], source: str = "", live: bool = False) -> list[dict]:
    """EVE-like alert objects for the anomalous packets of one batch (``source``: the interface of a
    live capture, else the capture file)."""
    idx = np.flatnonzero(cb.anomaly)
    if not len(idx):
        return []
    p = cb.packets
    src, dst = endpoints(p)
    sp, dp = ports(p)
    out = []
    for i in idx.tolist():
        cls = classes[int(cb.predicted[i])]
        rec = {
            "timestamp": _iso(float(p["time_epoch"][i])),
            "event_type": "alert",
            "frame_number": int(p["frame_number"][i]),
            "src_ip": src[i] or None,
            "dest_ip": dst[i] or None,
            "src_port": int(sp[i]) if sp[i] >= 0 else None,
            "dest_port": int(dp[i]) if dp[i] >= 0 else None,
            "proto": transport_name(int(p["ip_proto"][i]), p["protocols"][i]),
            "alert": {
                "category": cls,
                "confidence": round(float(cb.confidence[i]), 4),
                "signature": f"iotwatch model: {cls}",
                "severity": 1 if float(cb.confidence[i]) >= 0.9 else 2,
            },
        }
        if source:
            rec["in_iface" if live else "pcap_filename"] = source
        if cb.labels is not None and cb.labels[i] >= 0:
            rec["label"] = classes[int(cb.labels[i])]
        out.append(rec)
    return out


class AlertsWriter:
    def __init__(self, path, classes: Sequence[str], source: str = "", live: bool = False):
        self.classes = list(classes)
        self.source = source
        self.live = live
        self._fh = _open(path)
        self.alerts = 0

    def write(self, cb: ClassifiedBatch) -> None:
        recs = alert_records(cb, self.classes, self.source, self.live)
        if recs:
            self._fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
            self._fh.flush()
            self.alerts += len(recs)

    def close(self) -> None:
        self._fh.close()
