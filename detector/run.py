"""One monitoring run, UI-free: the loop shared by ``iotwatch --headless`` and the TUI's worker.

``MonitorRun.run`` opens the source (in the calling thread: its tshark/dumpcap die with that
thread, and opening blocks, so never on Textual's event loop), resolves deferred labels (``labels``
may be a zero-argument loader: a big sidecar CSV is then parsed while tshark starts instead of
before it), runs the ``classify_stream`` pipeline, counts every packet in ``RunTotals``, writes
``--predictions`` / ``--alerts`` incrementally, honours ``-c`` (count), ``-a`` (duration) and
cancellation on every source batch (idle live batches included), turns the classified packets into
incidents (``IncidentEngine``: ``--alerts`` gets their EVE events, ``on_events`` sees them, the
report lists them), and finally writes ``--report``.
Subclasses hook ``pieces`` (the TUI paces replays there) and ``run(on_batch=...)`` sees every counted
(sub-)batch.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Callable, Iterator

from .incidents import IncidentEngine
from .metrics import RunTotals
from .outputs import AlertsWriter, PredictionsWriter
from .pipeline import ClassifiedBatch, classify_stream


class MonitorRun:
    """Counts and outputs of one run. Reads of ``totals`` from another thread go through ``lock``."""

    def __init__(self, source_factory: Callable[[], object], classifier, labels=None, *,
                 source_name: str = "", count: int | None = None, duration: float | None = None,
                 report: str | None = None, predictions: str | None = None, alerts: str | None = None,
                 batch_rows: int = 8192, max_wait: float = 0.1, sensor: str | None = None):
        self.source_factory = source_factory
        self.classifier = classifier
        self.classes = list(classifier.classes_)
        self.labels = labels
        self.source_name = source_name
        self.count = count
        self.duration = duration
        self.report_path = report
        self.predictions_path = predictions
        self.alerts_path = alerts
        self.batch_rows = batch_rows
        self.max_wait = max_wait
        self.totals = RunTotals(self.classes)
        self.lock = threading.Lock()
        self.done = threading.Event()      # set once outputs are written and the source is closed
        self.source = None
        self.live = False
        self.report: dict | None = None
        # classified packets -> incidents (packet time only: the same at any speed or batch size)
        self.incidents = IncidentEngine(self.classes, int(getattr(classifier, "normal_index", 0)))
        self.sensor = sensor

    @property
    def capture_drops(self) -> int:
        st = getattr(self.source, "stats", None)
        return int(st.capture_drops) if st is not None else 0

    def pieces(self, cb: ClassifiedBatch, cancelled: Callable[[], bool]) -> Iterator[ClassifiedBatch]:
        """How a classified batch is released to counting and display (whole, by default)."""
        yield cb

    def run(self, on_batch: Callable[[ClassifiedBatch], None] = lambda cb: None,
            cancelled: Callable[[], bool] = lambda: False, opened: Callable[[], None] = lambda: None,
            capturing: Callable[[], None] = lambda: None,
            on_events: Callable[[list], None] = lambda events: None) -> dict:
        """Process the whole source (or until count/duration/cancel/Ctrl-C); returns the run report.

        ``capturing()`` is called once the source really captures (a live capture's filter is in place;
        at once for files). Raises IotwatchError on bad input; a KeyboardInterrupt ends the run like a
        user stop."""
        pred_w = alert_w = None
        interrupted = False
        started = False
        t0 = time.perf_counter()   # the report's "seconds": wall time of the whole run
        try:
            self.source = self.source_factory()
            self.live = bool(getattr(self.source, "live", False))
            if callable(self.labels):  # deferred: read while tshark loads its dissectors
                self.labels = self.labels()
            started = True
            opened()
            if self.predictions_path:
                pred_w = PredictionsWriter(self.predictions_path, self.classes, with_labels=self.labels is not None)
            if self.alerts_path:
                alert_w = AlertsWriter(self.alerts_path, source=self.source.description, live=self.live,
                                       host=self.sensor, model=getattr(self.classifier, "name", ""))
            deadline = (time.perf_counter() + self.duration) if self.duration else None

            announced = False

            def stop() -> bool:  # called on every source batch, idle live ones included
                nonlocal announced
                if not announced and getattr(self.source, "capturing", True):
                    announced = True
                    capturing()
                return cancelled() or (deadline is not None and time.perf_counter() >= deadline)

            try:
                for cb in classify_stream(self.source, self.classifier, self.labels, max_rows=self.batch_rows,
                                          max_wait=self.max_wait, cancelled=stop):
                    if self.count is not None and self.totals.packets + len(cb) >= self.count:
                        cb = cb.slice(0, self.count - self.totals.packets)
                    for piece in self.pieces(cb, cancelled):
                        with self.lock:
                            self.totals.update(piece.predicted, piece.anomaly, piece.labels)
                        events = self.incidents.update(piece)
                        if pred_w:
                            pred_w.write(piece)
                        if alert_w:
                            alert_w.write(events)
                        on_batch(piece)
                        if events:
                            on_events(events)
                    if stop() or (self.count is not None and self.totals.packets >= self.count):
                        break
            except KeyboardInterrupt:
                interrupted = True
            interrupted = interrupted or cancelled()
        finally:
            if self.source is not None:
                self.source.close()
            if started:   # incidents still active end with the source
                events = self.incidents.finish()
                if alert_w:
                    alert_w.write(events)
                if events:
                    on_events(events)
            for w in (pred_w, alert_w):
                if w:
                    w.close()
            if started:
                self.report = self._report(time.perf_counter() - t0, interrupted)
                if self.report_path:
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
            if st.extra.get("captured") is not None:  # live: what dumpcap itself received
                extra["capture_received"] = int(st.extra["captured"])
            if st.truncated:
                extra["truncated"] = st.truncated
        if self.labels is not None:
            extra["labels_source"] = self.labels.source
        if interrupted:
            extra["interrupted"] = True
        extra["incidents_opened"] = self.incidents.opened
        extra["incidents"] = [t.to_dict() for t in self.incidents.incidents()]
        if self.incidents.dropped:
            extra["incidents_truncated"] = self.incidents.dropped
        model = getattr(self.classifier, "name", "")
        with self.lock:
            return self.totals.report(self.source_name, model, seconds, extra)
