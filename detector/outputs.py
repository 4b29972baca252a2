"""Incremental run outputs (CONTRACT §3): predictions CSV and incident alerts (Suricata EVE JSONL).

Both are written batch by batch and flushed into a reserved ``captures.files.OutputFile`` (a file
this run created, or a temporary file renamed over the old one with ``--force``); existing files are
refused unless ``force``.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Sequence

import numpy as np

from iotwatch.captures.errors import InputError
from iotwatch.captures.files import OutputFile, appended_head

from .pipeline import ClassifiedBatch


def check_writable(path: str | os.PathLike | None, force: bool, what: str) -> None:
    """Refuse an output path before any work starts (see ``captures.files.OutputFile.check``)."""
    if path is not None:
        OutputFile(path, what, force).check()


def _reserved(out) -> OutputFile:
    if isinstance(out, OutputFile):
        return out
    f = OutputFile(out, "output", force=True)   # a bare path (tests, the Python API): check and claim it here
    f.check()
    f.reserve()
    return f


class _Writer:
    """A text output written batch by batch into a reserved ``OutputFile``. ``mark``/``rollback``
    keep it consistent with the run's counts: a batch that could not be written whole (disk full)
    is cut back off, so the file never ends in half a line."""

    _fh = None
    out: OutputFile

    def mark(self) -> None:
        self._good = self._fh.tell()

    def rollback(self) -> None:
        good = getattr(self, "_good", 0)
        try:
            self._fh.seek(good)
            self._fh.truncate()
            return
        except (OSError, ValueError):
            pass
        if self.out.stdout:  # a pipe cannot take anything back
            return
        # seek() flushes first, and the bytes that did not fit (disk full) are still in the handle's buffer:
        # drop them with the handle, cut the file back on disk, continue in a fresh handle
        try:
            self._fh.close()
        except (OSError, ValueError):
            pass
        try:
            os.truncate(self.out.tmp_path, good)
            self._fh = self.out.open("a")
            self._rebind()
        except OSError:
            pass

    def flush(self) -> None:
        self._fh.flush()

    def commit(self) -> None:
        self.out.commit()

    def discard(self) -> None:
        self.out.discard()

    def close(self) -> None:  # callers that only close: commit
        self.commit()

    def reopen(self) -> None:
        """--append after log rotation (SIGHUP): continue in a file at the same path."""
        self._fh = self.out.reopen()
        self._rebind()
        self.mark()

    def _rebind(self) -> None:
        """Point what writes through the handle at the new one."""


class PredictionsWriter(_Writer):
    """``frame_number,predicted,confidence[,label]``: one row per frame, in frame order."""

    def __init__(self, out, classes: Sequence[str], with_labels: bool):
        self.out = _reserved(out)
        if self.out.append:
            _same_columns(self.out, self.header(with_labels))
        self._fh = self.out.open("w")
        self.classes = [csv_safe(c) for c in classes]
        self.with_labels = with_labels
        self._rebind()
        self.mark()
        self.rows = 0

    def _rebind(self) -> None:
        """A new handle: the header when the file is new (--append continues an existing one after its
        header; a file reopened after rotation starts with one)."""
        self._w = csv.writer(self._fh, lineterminator="\n")
        if self._fh.tell() == 0:
            self._w.writerow(self.header(self.with_labels))
            self._fh.flush()

    @staticmethod
    def header(with_labels: bool) -> list[str]:
        return ["frame_number", "predicted", "confidence"] + (["label"] if with_labels else [])

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


def _same_columns(out: OutputFile, header: list[str]) -> None:
    """``--append`` continues a predictions CSV only when it has this run's columns: rows of 4 columns
    under a 3-column header (a labelled replay appended to a live sensor's file) break every CSV reader."""
    first = None if out.stdout else appended_head(out.target, out.what, 4096, line=True, shown=out.path)
    if not first:
        return
    have = first.rstrip(b"\r\n").decode("utf-8", "replace")
    if have and have != ",".join(header):
        raise InputError(f"{out.what} {out.path} has the columns {have[:80]!r}; this run writes {','.join(header)!r} "
                         f"({'with' if 'label' in header else 'without'} labels)",
                         hint="append to a file with the same columns, or give another file")


class AlertsWriter(_Writer):
    """``--alerts``: Suricata-compatible EVE events, one per incident change (``detector.eve``);
    the per-packet view is ``--predictions``."""

    def __init__(self, out, *, source: str = "", live: bool = False, host: str | None = None, model: str = ""):
        from .eve import EveWriter

        self.out = _reserved(out)
        self._w = EveWriter(self.out.tmp_path, source=source, live=live, host=host, model=model,
                            opener=lambda _path: self.out.open("w"))
        self._fh = self._w._fh
        self.stats_events = 0
        self.mark()

    @property
    def events(self) -> int:
        return self._w.events

    @property
    def alerts(self) -> int:
        """Incidents opened (one ``alert`` event each; updates and closings are counted in ``events``)."""
        return self._w.alerts

    def _rebind(self) -> None:
        self._w._fh = self._fh

    def write_stats(self, record: dict) -> None:
        """One EVE ``stats`` event (``--stats-interval``), flushed at once."""
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.stats_events += 1

    def write(self, events) -> None:
        self._w.write(events)
