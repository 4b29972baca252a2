"""``iotwatch --headless``: process the whole source, write the outputs, print a short summary."""
from __future__ import annotations

import signal
import sys
import time

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_OK, EnvironmentProblem
from iotwatch.detector.config import RunConfig
from iotwatch.detector.run import MonitorRun


def _progress():
    """rich's progress display on stderr (packets, rate, elapsed; cleared at the end), or None when
    stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.completed:,} packets  {task.fields[rate]:,.0f} pkt/s"), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True, refresh_per_second=2)


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
    Before the run starts (model and labels loading) the first signal aborts. With ``--append`` (a
    sensor under logrotate) SIGHUP does not stop the run: it reopens the streamed outputs."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self, on_hangup=None):
        self.count = 0
        self.armed = False
        self.on_hangup = on_hangup   # SIGHUP handler of a sensor (--append): reopen, do not stop
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
        # Once a stop was asked for, the process only returns its exit code: a further Ctrl-C (two
        # presses 50 ms apart) must not land on Python's default handler and turn exit 0 into a
        # KeyboardInterrupt traceback after the outputs are written, so those signals are ignored.
        for sig, old in self._old.items():
            signal.signal(sig, signal.SIG_IGN if self.count else old)
        return False

    def _handle(self, signum, frame):
        if signum == signal.SIGHUP and self.on_hangup is not None and self.armed:
            self.on_hangup()
            return
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
    o = cfg.outputs
    # an output on standard output ("-", like tshark's -w -) keeps stdout for itself; the summary goes to stderr
    out = out or (sys.stderr if "-" in (o.report, o.predictions, o.alerts, o.write) else sys.stdout)
    cfg.outputs.check(cfg.inputs())
    classifier = cfg.load_classifier()
    # labels are loaded once the source is open: a large sidecar CSV is parsed while tshark starts up
    run = MonitorRun(cfg, classifier, lambda: cfg.source.load_labels(list(classifier.classes_)),
                     batch_rows=8192, max_wait=0.25)
    progress = _progress()
    task = progress.add_task("replay", total=None, rate=0.0) if progress else None
    t0 = time.perf_counter()

    def show(_cb) -> None:
        n = run.totals.packets
        progress.update(task, completed=n, rate=n / max(time.perf_counter() - t0, 1e-9))

    def opened():
        stop.armed = True   # from now on a signal stops the run and the outputs are still written
        _import_summary()

    # A live run ends with Ctrl-C / SIGTERM / SIGHUP / SIGQUIT: finish cleanly and write every output.
    with StopSignals(on_hangup=run.request_reopen if cfg.outputs.append else None) as stop:   # kept through the summary: a second Ctrl-C must not cut it short
        try:
            if progress:
                progress.start()
            report = run.run(on_batch=show if progress else (lambda cb: None), opened=opened, cancelled=stop,
                             drain=stop.drain, capturing=lambda: _announce_live(run))
        finally:
            if progress:
                progress.stop()
        try:
            print_summary(report, out)
        except OSError:  # the terminal went away (SIGHUP): the outputs are written, nothing to say
            pass
    failed = run.source.stats.extra.get("capture_failed") if run.source is not None else None
    if failed:  # the interface went away mid-capture: outputs are written (marked truncated), still an error
        raise EnvironmentProblem(failed, hint="the outputs up to that point are written; the report says 'truncated'")
    if cfg.fail_on == "anomaly" and run.totals.anomalies:
        return EXIT_ANOMALIES
    if cfg.fail_on == "incident" and run.incidents.opened:
        return EXIT_ANOMALIES
    return EXIT_OK


def print_summary(report: dict, out) -> None:
    from rich.table import Table

    from .console import console

    from rich.markup import escape

    from iotwatch.captures.errors import one_line

    con = console(file=out)
    head = (f"[bold]{escape(one_line(report['source'], 200))}[/]: {report['packets']:,} packets in {report['seconds']:.2f} s "
            f"({report['packets_per_second']:,.0f} pkt/s), {report.get('anomalies', 0):,} anomalous; model {report['model']}")
    con.print(head)
    cf, ff = report.get("capture_file"), report.get("flagged_file")
    if cf:
        files = cf["files"]
        where = ("standard output" if cf.get("path") == "-" else files[0] if len(files) == 1
                 else f"{len(files)} files ({files[0]} ... {files[-1]})" if files else cf.get("path") or "")
        con.print(f"kept {cf['packets']:,} packets in {escape(one_line(where, 300))}"
                  + (f" ({cf['files_deleted']:,} older ring files deleted)" if cf.get("files_deleted") else ""))
    if ff:
        con.print(f"wrote {ff['packets']:,} flagged packets to {escape(one_line(ff['path'], 200))}"
                  + (f" ({ff['missing']:,} no longer available)" if ff.get("missing") else ""))
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
