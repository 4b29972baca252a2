"""One monitoring run as the TUI drives it (no Textual here, so it is testable on its own).

``CaptureSession.run`` is called by the app's capture worker thread. It opens the source in that
thread (pyshark/tshark must not touch Textual's event loop), runs the shared
``classify_stream`` pipeline, counts every packet in the same ``RunTotals`` the headless report
uses, writes the optional ``--predictions`` / ``--alerts`` files incrementally, paces replays
(max / 1x / 10x by packet timestamps), honours pause, ``-c`` and ``-a``, and at the end writes
``--report``. Each classified (sub-)batch is handed to ``emit``; the app decides whether the
screen can take it.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from iotwatch.detector.metrics import RunTotals
from iotwatch.detector.outputs import AlertsWriter, PredictionsWriter
from iotwatch.detector.pipeline import ClassifiedBatch, classify_stream

SPEEDS = ("max", "1x", "10x")
_FACTOR = {"1x": 1.0, "10x": 10.0}
PACE_SLICE = 0.05  # seconds of wall time per paced slice


def part(cb: ClassifiedBatch, start: int, stop: int) -> ClassifiedBatch:
    """Packets ``start:stop`` of a classified batch."""
    return replace(cb, packets=cb.packets.slice(start, stop), proba=cb.proba[start:stop],
                   predicted=cb.predicted[start:stop], confidence=cb.confidence[start:stop],
                   anomaly=cb.anomaly[start:stop], labels=None if cb.labels is None else cb.labels[start:stop])


class CaptureSession:
    """Counts, outputs and pacing for one run. Thread-safe reads of ``totals`` go through ``lock``."""

    def __init__(self, source_factory: Callable[[], object], classifier, labels=None, *,
                 source_name: str = "", speed: str = "max", count: int | None = None,
                 duration: float | None = None, report: str | None = None,
                 predictions: str | None = None, alerts: str | None = None,
                 batch_rows: int = 8192):
        self.source_factory = source_factory
        self.classifier = classifier
        self.classes = list(classifier.classes_)
        self.labels = labels
        self.source_name = source_name
        self.speed = speed if speed in SPEEDS else "max"
        self.count = count
        self.duration = duration
        self.report_path = report
        self.predictions_path = predictions
        self.alerts_path = alerts
        self.batch_rows = batch_rows
        self.totals = RunTotals(self.classes)
        self.lock = threading.Lock()
        self.running = threading.Event()   # cleared = paused
        self.running.set()
        self.done = threading.Event()      # set once outputs are written and the source is closed
        self.source = None
        self.live = False
        self.report: dict | None = None
        self._rebase = True                # re-anchor the replay clock (start, speed change, resume)
        self._wall0 = self._cap0 = 0.0

    # --- controls (called from the UI thread) -------------------------------------------------
    def set_speed(self, speed: str) -> None:
        self.speed = speed
        self._rebase = True

    def pause(self, paused: bool) -> None:
        if paused:
            self.running.clear()
        else:
            self._rebase = True
            self.running.set()

    def snapshot(self) -> tuple[int, int, np.ndarray, np.ndarray, int]:
        """packets, anomalies, class counts, confusion matrix, labelled packets (a consistent copy)."""
        with self.lock:
            t = self.totals
            return t.packets, t.anomalies, t.class_counts.copy(), t.confusion.matrix.copy(), t.labelled

    @property
    def capture_drops(self) -> int:
        st = getattr(self.source, "stats", None)
        return int(st.capture_drops) if st is not None else 0

    # --- the worker body -------------------------------------------------------------------
    def run(self, emit: Callable[[ClassifiedBatch], None], cancelled: Callable[[], bool],
            opened: Callable[[], None] = lambda: None) -> dict:
        """Process the whole source; returns the run report. Raises IotwatchError on bad input.

        ``opened`` is called once the source is open, ``emit`` with every counted (sub-)batch."""
        pred_w = alert_w = None
        interrupted = False
        t0 = time.perf_counter()
        try:
            self.source = self.source_factory()
            self.live = bool(getattr(self.source, "live", False))
            t0 = time.perf_counter()   # like the headless report: seconds of processing, open excluded
            opened()
            if self.predictions_path:
                pred_w = PredictionsWriter(self.predictions_path, self.classes, with_labels=self.labels is not None)
            if self.alerts_path:
                alert_w = AlertsWriter(self.alerts_path, self.classes, source=self.source.description)
            deadline = (t0 + self.duration) if self.duration else None

            def stop() -> bool:  # checked on every source batch, idle live batches included
                return cancelled() or (deadline is not None and time.perf_counter() >= deadline)

            stream = classify_stream(self.source, self.classifier, self.labels, max_rows=self.batch_rows,
                                     max_wait=0.1, cancelled=stop)
            for cb in stream:
                if self.count is not None and self.totals.packets + len(cb) >= self.count:
                    cb = part(cb, 0, self.count - self.totals.packets)
                for piece in self._paced(cb, cancelled):
                    with self.lock:
                        self.totals.update(piece.predicted, piece.anomaly, piece.labels,
                                           piece.packets["time_epoch"])
                    if pred_w:
                        pred_w.write(piece)
                    if alert_w:
                        alert_w.write(piece)
                    emit(piece)
                if stop():
                    break
                if self.count is not None and self.totals.packets >= self.count:
                    break
            interrupted = cancelled()
        finally:
            if self.source is not None:
                self.source.close()
            for w in (pred_w, alert_w):
                if w:
                    w.close()
            self.report = self._report(time.perf_counter() - t0, interrupted)
            if self.report_path and self.source is not None:
                with open(self.report_path, "w", encoding="utf-8") as fh:
                    json.dump(self.report, fh, indent=2)
                    fh.write("\n")
            self.done.set()
        return self.report

    def _report(self, seconds: float, interrupted: bool) -> dict:
        extra: dict = {}
        st = getattr(self.source, "stats", None)
        if st is not None:
            extra["capture_drops"] = int(st.capture_drops)
            if st.truncated:
                extra["truncated"] = st.truncated
        if self.labels is not None:
            extra["labels_source"] = self.labels.source
        if interrupted:
            extra["interrupted"] = True
        model = getattr(self.classifier, "name", "")
        with self.lock:
            return self.totals.report(self.source_name, model, seconds, extra)

    def _paced(self, cb: ClassifiedBatch, cancelled: Callable[[], bool]):
        """Yield ``cb`` whole at max speed; else in slices released at capture-time pace.

        Pause blocks a replay here (nothing is lost); a live capture keeps counting while paused
        (the app just stops adding rows to the table)."""
        if self.live:
            yield cb
            return
        self._wait_running(cancelled)
        if self.speed == "max":
            yield cb
            return
        times = cb.packets["time_epoch"]
        n = len(cb)
        start = 0
        while start < n:
            if cancelled():
                return
            self._wait_running(cancelled)
            factor = _FACTOR.get(self.speed)
            if factor is None:  # switched to max mid-batch
                yield part(cb, start, n)
                return
            t_first = float(times[start])
            if self._rebase or t_first != t_first:
                self._wall0, self._cap0 = time.perf_counter(), (t_first if t_first == t_first else 0.0)
                self._rebase = False
            # one slice = the packets due within the next PACE_SLICE seconds of wall time
            limit = t_first + PACE_SLICE * factor
            stop = start + max(1, int(np.searchsorted(times[start:], limit, side="right")))
            due = self._wall0 + (t_first - self._cap0) / factor
            delay = due - time.perf_counter()
            if delay > 0:
                self._sleep(min(delay, 5.0), cancelled)   # long gaps in a capture are capped at 5 s
                if delay > 5.0:
                    self._rebase = True
            if cancelled():
                return
            yield part(cb, start, stop)
            start = stop

    def _wait_running(self, cancelled: Callable[[], bool]) -> None:
        while not self.running.wait(0.1):
            if cancelled():
                return

    @staticmethod
    def _sleep(seconds: float, cancelled: Callable[[], bool]) -> None:
        end = time.perf_counter() + seconds
        while not cancelled():
            left = end - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
