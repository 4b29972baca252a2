"""``iotwatch --headless``: process the whole source, write the outputs, print a short summary."""
from __future__ import annotations

import json
import signal
import sys
import time

import numpy as np

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_OK
from iotwatch.detector.metrics import RunTotals
from iotwatch.detector.outputs import AlertsWriter, PredictionsWriter, check_writable
from iotwatch.detector.pipeline import classify_stream

from .options import RunConfig, load_classifier, load_labels, source_factory


def check_outputs(cfg: RunConfig) -> None:
    check_writable(cfg.report, cfg.force, "report")
    check_writable(cfg.predictions, cfg.force, "predictions")
    check_writable(cfg.alerts, cfg.force, "alerts")


class _Progress:
    """A one-line progress meter on stderr for long runs (only when stderr is a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0

    def update(self, packets: int, t0: float, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self._last >= 0.5:
            self._last = now
            rate = packets / max(now - t0, 1e-9)
            sys.stderr.write(f"\r{packets:,} packets  {rate:,.0f} pkt/s ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _interrupt(*_):
    raise KeyboardInterrupt


def run_headless(cfg: RunConfig, out=None) -> int:
    out = out or sys.stdout
    check_outputs(cfg)
    classifier = load_classifier(cfg.model)
    classes = list(classifier.classes_)
    labels = load_labels(cfg, classes)
    source = source_factory(cfg)()
    totals = RunTotals(classes)
    pred_w = alert_w = None
    interrupted = False
    t0 = time.perf_counter()
    progress = _Progress(enabled=True)
    # A live run ends with Ctrl-C / SIGTERM: finish cleanly and still write every output.
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if cfg.predictions:
            pred_w = PredictionsWriter(cfg.predictions, classes, with_labels=labels is not None)
        if cfg.alerts:
            alert_w = AlertsWriter(cfg.alerts, classes, source=source.description)
        deadline = (t0 + cfg.duration) if cfg.duration else None

        def expired() -> bool:  # checked on every source batch, idle (empty) live batches included
            return deadline is not None and time.perf_counter() >= deadline

        try:
            for cb in classify_stream(source, classifier, labels, max_rows=8192, max_wait=0.25, cancelled=expired):
                if cfg.count is not None and totals.packets + len(cb) >= cfg.count:
                    keep = cfg.count - totals.packets
                    cb = _head(cb, keep)
                totals.update(cb.predicted, cb.anomaly, cb.labels, cb.packets["time_epoch"])
                if pred_w:
                    pred_w.write(cb)
                if alert_w:
                    alert_w.write(cb)
                progress.update(totals.packets, t0)
                if cfg.count is not None and totals.packets >= cfg.count:
                    break
        except KeyboardInterrupt:
            interrupted = True
    finally:
        signal.signal(signal.SIGTERM, old_term)
        progress.done()
        source.close()
        for w in (pred_w, alert_w):
            if w:
                w.close()
    seconds = time.perf_counter() - t0
    extra = {}
    st = getattr(source, "stats", None)
    if st is not None:
        extra["capture_drops"] = int(st.capture_drops)
        if st.truncated:
            extra["truncated"] = st.truncated
    if labels is not None:
        extra["labels_source"] = labels.source
    if interrupted:
        extra["interrupted"] = True
    report = totals.report(cfg.source_name, classifier.name, seconds, extra)
    if cfg.report:
        with open(cfg.report, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    print_summary(report, out)
    if cfg.fail_on == "anomaly" and totals.anomalies:
        return EXIT_ANOMALIES
    return EXIT_OK


def _head(cb, n):
    from dataclasses import replace

    return replace(cb, packets=cb.packets.slice(0, n), proba=cb.proba[:n], predicted=cb.predicted[:n],
                   confidence=cb.confidence[:n], anomaly=cb.anomaly[:n],
                   labels=None if cb.labels is None else cb.labels[:n])


def print_summary(report: dict, out) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(file=out, highlight=False, soft_wrap=True)
    head = (f"[bold]{report['source']}[/]: {report['packets']:,} packets in {report['seconds']:.2f} s "
            f"({report['packets_per_second']:,.0f} pkt/s), {report.get('anomalies', 0):,} anomalous; model {report['model']}")
    con.print(head)
    if report.get("truncated"):
        con.print(f"[yellow]warning:[/] capture ended early: {report['truncated']}")
    if report.get("capture_drops"):
        con.print(f"[yellow]warning:[/] {report['capture_drops']:,} packets dropped by the capture")
    t = Table(show_edge=False, pad_edge=False)
    t.add_column("class")
    t.add_column("predicted", justify="right")
    labelled = "per_class" in report
    if labelled:
        for c in ("support", "precision", "recall", "f1"):
            t.add_column(c, justify="right")
    for cls, n in report["class_counts"].items():
        row = [cls, f"{n:,}"]
        if labelled:
            pc = report["per_class"][cls]
            row += [f"{pc['support']:,}", f"{pc['precision']:.3f}", f"{pc['recall']:.3f}", f"{pc['f1']:.3f}"]
        t.add_row(*row)
    con.print(t)
    if labelled:
        con.print(f"labelled packets {report['labelled_packets']:,}  accuracy {report['accuracy']:.4f}  "
                  f"macro-F1 {report['macro_f1']:.4f}")
