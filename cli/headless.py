"""``iotwatch --headless``: process the whole source, write the outputs, print a short summary."""
from __future__ import annotations

import signal
import sys
import time

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_OK, EnvironmentProblem
from iotwatch.captures.files import plan_outputs
from iotwatch.detector.run import MonitorRun

from .options import RunConfig, load_classifier, load_labels, source_factory


def run_inputs(cfg: RunConfig) -> tuple:
    """The files a run reads: no output may be one of them (even with --force)."""
    from iotwatch.captures.labels import discover_sidecar

    sidecar = discover_sidecar(cfg.read) if cfg.read and not cfg.labels else None
    return tuple(str(p) for p in (cfg.read, cfg.labels, cfg.model, sidecar) if p)


def check_outputs(cfg: RunConfig) -> None:
    """Every output checked together before any work starts (see ``detector.files``)."""
    plan_outputs([(cfg.report, "report"), (cfg.predictions, "predictions"), (cfg.alerts, "alerts")],
                 cfg.force, run_inputs(cfg))


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


def _import_summary() -> None:
    """Import the summary's rich modules (~30 ms) while tshark loads its dissectors, not after the run."""
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401


def _announce_live(run: MonitorRun) -> None:
    """Like tshark's "Capturing on": printed once the capture filter is in place, so a script (or a
    test) knows that from now on every packet is captured."""
    if run.live:
        sys.stderr.write(f"iotwatch: capturing on {run.source_name} (Ctrl-C stops and writes the outputs)\n")
        sys.stderr.flush()


class StopSignals:
    """Ctrl-C, SIGTERM, SIGHUP and SIGQUIT end a headless run the same way: once the run has started
    they only set a flag the run checks between batches (a KeyboardInterrupt raised in the middle of
    writing a batch once left the report counting 8,192 alerts the file did not hold), so every output
    is written and the report says ``interrupted``. The first signal stops a live capture gracefully
    (dumpcap stops, the packets it already captured are still processed); the second stops at once;
    the third aborts (exit 130, outputs left as temporary files) for a source that no longer answers.
    Before the run starts (model and labels loading) the first signal aborts."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self):
        self.count = 0
        self.armed = False
        self._old: dict = {}

    def __enter__(self):
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._old[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # not the main thread
                    pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handle(self, signum, frame):
        self.count += 1
        if not self.armed or self.count >= 3:
            raise KeyboardInterrupt
        if signum == signal.SIGHUP:  # the terminal is gone: stop writing to it
            _quiet_stdio()

    def __call__(self) -> bool:
        """Stop now: the second signal (a live capture's backlog is no longer waited for)."""
        return self.count > 1

    def drain(self) -> bool:
        """Stop gracefully: the first signal (a live capture stops, what it captured is processed)."""
        return self.count > 0


def _quiet_stdio() -> None:
    import os

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass


def run_headless(cfg: RunConfig, out=None) -> int:
    out = out or sys.stdout
    check_outputs(cfg)
    classifier = load_classifier(cfg.model)
    # labels are loaded once the source is open: a large sidecar CSV is parsed while tshark starts up
    run = MonitorRun(source_factory(cfg), classifier, lambda: load_labels(cfg, list(classifier.classes_)),
                     source_name=cfg.source_name, count=cfg.count, duration=cfg.duration, report=cfg.report,
                     predictions=cfg.predictions, alerts=cfg.alerts, batch_rows=8192, max_wait=0.25,
                     force=cfg.force, inputs=run_inputs(cfg))
    progress = _Progress(enabled=True)
    t0 = time.perf_counter()

    def opened():
        stop.armed = True   # from now on a signal stops the run and the outputs are still written
        _import_summary()

    # A live run ends with Ctrl-C / SIGTERM / SIGHUP / SIGQUIT: finish cleanly and write every output.
    with StopSignals() as stop:   # kept through the summary: a second Ctrl-C must not cut it short
        try:
            report = run.run(on_batch=lambda cb: progress.update(run.totals.packets, t0), opened=opened,
                             cancelled=stop, drain=stop.drain, capturing=lambda: _announce_live(run))
        finally:
            progress.done()
        try:
            print_summary(report, out)
        except OSError:  # the terminal went away (SIGHUP): the outputs are written, nothing to say
            pass
    failed = run.source.stats.extra.get("capture_failed") if run.source is not None else None
    if failed:  # the interface went away mid-capture: outputs are written (marked truncated), still an error
        raise EnvironmentProblem(failed, hint="the outputs up to that point are written; the report says 'truncated'")
    if cfg.fail_on == "anomaly" and run.totals.anomalies:
        return EXIT_ANOMALIES
    return EXIT_OK


def print_summary(report: dict, out) -> None:
    from rich.console import Console
    from rich.table import Table

    from rich.markup import escape

    from iotwatch.captures.errors import one_line

    con = Console(file=out, highlight=False, soft_wrap=True)
    head = (f"[bold]{escape(one_line(report['source'], 200))}[/]: {report['packets']:,} packets in {report['seconds']:.2f} s "
            f"({report['packets_per_second']:,.0f} pkt/s), {report.get('anomalies', 0):,} anomalous; model {report['model']}")
    con.print(head)
    if report.get("truncated"):
        con.print(f"[yellow]warning:[/] capture ended early: {escape(one_line(report['truncated'], 300))}")
    if report.get("capture_drops"):
        con.print(f"[yellow]warning:[/] {report['capture_drops']:,} packets dropped by the capture")
    if report.get("labels_beyond_capture"):
        con.print(f"[yellow]warning:[/] {report['labels_beyond_capture']:,} labels name frames after the last "
                  f"frame of the capture (wrong label file?): {escape(one_line(report.get('labels_source', ''), 200))}")
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
