"""``iotwatch --headless``: process the whole source, write the outputs, print a short summary."""
from __future__ import annotations

import signal
import sys
import time

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_OK
from iotwatch.detector.outputs import check_writable
from iotwatch.detector.run import MonitorRun

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


def _interrupt(*_):
    raise KeyboardInterrupt


def run_headless(cfg: RunConfig, out=None) -> int:
    out = out or sys.stdout
    check_outputs(cfg)
    classifier = load_classifier(cfg.model)
    # labels are loaded once the source is open: a large sidecar CSV is parsed while tshark starts up
    run = MonitorRun(source_factory(cfg), classifier, lambda: load_labels(cfg, list(classifier.classes_)),
                     source_name=cfg.source_name, count=cfg.count, duration=cfg.duration, report=cfg.report,
                     predictions=cfg.predictions, alerts=cfg.alerts, batch_rows=8192, max_wait=0.25)
    progress = _Progress(enabled=True)
    t0 = time.perf_counter()
    # A live run ends with Ctrl-C / SIGTERM: finish cleanly and still write every output.
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run.run(on_batch=lambda cb: progress.update(run.totals.packets, t0), opened=_import_summary,
                         capturing=lambda: _announce_live(run))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        progress.done()
    print_summary(report, out)
    if cfg.fail_on == "anomaly" and run.totals.anomalies:
        return EXIT_ANOMALIES
    if cfg.fail_on == "incident" and run.incidents.opened:
        return EXIT_ANOMALIES
    return EXIT_OK


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
    incidents = report.get("incidents") or []
    if incidents:
        con.print(f"[bold]{report.get('incidents_opened', len(incidents)):,} incidents[/]")
        for inc in incidents[:20]:
            who = inc.get("attacker") or "?"
            victims = ", ".join(inc.get("victims", [])[:2])
            con.print(f"  #{inc['id']} {inc['class']}/{inc['kind']} {who} → {victims}  frames "
                      f"{inc['first_frame']}-{inc['last_frame']}: {inc['evidence']}")
        if len(incidents) > 20:
            con.print(f"  ... {len(incidents) - 20:,} more in the report")
    if labelled:
        con.print(f"labelled packets {report['labelled_packets']:,}  accuracy {report['accuracy']:.4f}  "
                  f"macro-F1 {report['macro_f1']:.4f}")
