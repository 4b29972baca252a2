"""Incremental run outputs (CONTRACT §3): predictions CSV and EVE-like alerts JSONL.

Both are written batch by batch into a reserved ``files.OutputFile`` (a temporary file next to the
target, renamed into place when the run ends); existing files are refused unless ``force``.
"""
from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from iotwatch.captures.describe import endpoints, ports, transport_name

from iotwatch.captures.files import OutputFile
from .pipeline import ClassifiedBatch


def check_writable(path: str | os.PathLike | None, force: bool, what: str) -> None:
    """Refuse an output path before any work starts (see ``files.OutputFile.check``)."""
    if path is not None:
        OutputFile(path, what, force).check()


class _Writer:
    """A text output written batch by batch into a reserved ``OutputFile``. ``mark``/``rollback``
    keep it consistent with the run's counts: a batch that could not be written whole (disk full)
    is cut back off, so the file never ends in half a line."""

    def __init__(self, out: OutputFile | str | os.PathLike):
        if not isinstance(out, OutputFile):  # a bare path (tests): check and reserve it here
            out = OutputFile(out, "output", force=True)
            out.check()
            out.reserve()
        self.out = out
        self._fh = out.open("w")
        self._good = 0

    def mark(self) -> None:
        self._good = self._fh.tell()

    def rollback(self) -> None:
        try:
            self._fh.seek(self._good)
            self._fh.truncate()
        except (OSError, ValueError):
            pass

    def flush(self) -> None:
        self._fh.flush()

    def commit(self) -> None:
        self.out.commit()

    def discard(self) -> None:
        self.out.discard()

    def close(self) -> None:  # kept for callers that only close: commits
        self.commit()


class PredictionsWriter(_Writer):
    """``frame_number,predicted,confidence[,label]``: one row per frame, in frame order."""

    def __init__(self, out, classes: Sequence[str], with_labels: bool):
        super().__init__(out)
        self.classes = [csv_safe(c) for c in classes]
        self.with_labels = with_labels
        self._w = csv.writer(self._fh, lineterminator="\n")
        self._w.writerow(["frame_number", "predicted", "confidence"] + (["label"] if with_labels else []))
        self._fh.flush()
        self.mark()
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
        self._fh.flush()
        self.rows += len(cb)


def csv_safe(name: str) -> str:
    """A class name as a spreadsheet will not run it: a leading = + - @ becomes a quoted text cell
    (bundles are validated to plain names; this guards names from anywhere else)."""
    return "'" + name if name[:1] in ("=", "+", "-", "@", "\t", "\r") else name


def _iso(ts: float) -> str:
    """ISO 8601 UTC, or "" for a time a datetime cannot hold (NaN, year 586524 from a crafted
    ``if_tsresol``, before year 1)."""
    try:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    except (ValueError, OverflowError, OSError):
        return ""


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


class AlertsWriter(_Writer):
    def __init__(self, out, classes: Sequence[str], source: str = "", live: bool = False):
        super().__init__(out)
        self.classes = list(classes)
        self.source = source
        self.live = live
        self.alerts = 0

    def write(self, cb: ClassifiedBatch) -> None:
        recs = alert_records(cb, self.classes, self.source, self.live)
        if recs:
            self._fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
            self._fh.flush()
            self.alerts += len(recs)
