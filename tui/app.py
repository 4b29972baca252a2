"""The iotwatch Textual app: ``run_tui(cfg)`` for the CLI, ``make_app(...)`` for tests and benches.

Data flow (one direction, few hops):

1. One thread worker (group ``capture``) runs ``CaptureSession.run``: it opens the source inside
   the thread, runs ``classify_stream``, counts every packet in ``RunTotals``, writes the outputs
   and hands each batch to ``_emit``, which posts ``BatchClassified`` unless the UI is behind
   (then the rows are dropped from view, never from the counts).
2. ``on_batch_classified`` only appends to bounded stores (``RowStore``); the session's incident
   engine (in the worker) sends incident snapshots as ``IncidentsChanged`` (``IncidentStore``).
3. A fixed tick turns the stores and a ``RunTotals`` snapshot into widget updates, at most one
   refresh per widget per tick.
4. Failures become ``CaptureFailed`` (one line, the CLI exit code), the end ``CaptureFinished``.
"""
from __future__ import annotations

import gc
import time
from functools import partial
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer
from textual.worker import get_current_worker

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_ENV, EXIT_OK, IotwatchError
from iotwatch.tui.commands import IotwatchCommands
from iotwatch.tui.messages import (BatchClassified, CaptureFailed, CaptureFinished, CaptureStarted,
                                   DetailFailed, DetailLoaded, IncidentsChanged)
from iotwatch.tui.session import SPEEDS, CaptureSession
from iotwatch.tui.store import IncidentStore, RateHistory, RowStore, display_batch
from iotwatch.tui.widgets.incidents import IncidentScreen, IncidentsPane
from iotwatch.tui.widgets.class_counters import ClassCounters
from iotwatch.tui.widgets.confusion import ConfusionSummary
from iotwatch.captures.tshark.dissect import dissect_frame
from iotwatch.tui.widgets.detail import DetailScreen
from iotwatch.tui.widgets.help import HelpScreen
from iotwatch.tui.widgets.packet_table import PacketTable
from iotwatch.tui.widgets.status_bar import StatusBar

PANE_EVERY = 4     # ticks between refreshes of the counters and confusion panes (1 s: rates are per second)
GC_GEN0_THRESHOLD = 20_000  # allocations between young-generation GC passes (Python's default: 700)
QUEUE_LIMIT = 20   # pending app messages above which new rows are dropped from view
INCIDENT_REFRESH = 0.5  # s of wall time between snapshots of the active incidents (display only)
PANES = ("counters", "alerts", "confusion")


class IotWatchApp(App[int]):
    """The monitor. Build it with ``make_app``; ``return_code`` is the CLI exit code."""

    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "iotwatch"
    COMMANDS = App.COMMANDS | {IotwatchCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit-interrupt"),
        Binding("space", "toggle_pause", "Pause", id="pause"),
        Binding("s", "cycle_speed", "Speed", id="speed"),
        Binding("a", "toggle_anomalies", "Anomalies", id="filter-anomalies"),
        Binding("f", "cycle_class_filter", "Class", id="filter-class"),
        Binding("n", "next_anomaly", "Next !", id="next-anomaly"),
        Binding("c", "clear", "Clear", id="clear"),
        Binding("m", "cycle_pane", "Pane", id="cycle-pane"),
        Binding("i", "focus_incidents", "Incidents", show=False, id="focus-incidents"),
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def __init__(self, session: CaptureSession, *, source_name: str, capture_path: str | None = None,
                 normal_index: int = 0, fail_on: str | None = None, tick: float = 0.25,
                 view_cap: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.session = session
        self.class_names = list(session.classes)
        self.normal_index = normal_index
        self.source_name = source_name
        self.capture_path = capture_path
        self.fail_on = fail_on
        self.tick = tick
        self.clock = clock
        self.rows = RowStore(view_cap)
        self.incidents = IncidentStore()
        self._explainer = None
        self.rates = RateHistory(len(self.class_names))
        self.filter: tuple = ("all",)
        self.paused = False
        self.state = "starting"
        self.live = False
        self.error: str | None = None
        self.exit_code = EXIT_OK
        self.report: dict | None = None
        self.skipped = 0          # rows never offered to the view (UI behind, or live while paused)
        self._pane = 0
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._dirty = True
        self._last_packets = -1
        self._last_labelled = -1
        self._last_incidents = -1
        self._incidents_posted = 0.0
        self._rate_version = -1
        self._ticks = 0

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.status = StatusBar(id="status")
        self.table = PacketTable(self.class_names, self.normal_index, labelled=False, id="packets")
        self.counters = ClassCounters(self.class_names, self.normal_index, id="counters")
        self.confusion = ConfusionSummary(self.class_names, id="confusion")
        self.incident_pane = IncidentsPane(self.class_names, id="alerts")
        # decided once (a class change at run time would restyle the whole screen): replays with a
        # label source show the confusion pane from the start
        classes = "-show-counters" + (" -labelled" if self.session.labels is not None else "")
        self.main = Vertical(id="main", classes=classes)
        yield self.status
        with self.main:
            yield self.table
            with Horizontal(id="panes"):
                yield self.counters
                yield self.confusion
            yield self.incident_pane
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        table.border_title = "Packets"
        self.counters.border_title = "Classes"
        self.confusion.border_title = "Confusion (labelled)"
        self.incident_pane.border_title = "Incidents"
        for w in (self.counters, self.confusion, self.incident_pane):
            w.class_style = table.class_style
        table.focus()
        self.refresh_screen()
        self.set_interval(self.tick, partial(self.refresh_screen, force=False), name="tick")
        self._start()

    def _start(self) -> None:
        # The cycle collector is process-wide: a pass triggered by Textual's many small allocations
        # also walks the capture thread's fresh object arrays (8192-row batches) and stalled key
        # presses by 20-300 ms. Everything built so far (modules, widgets, styles, the model) lives
        # as long as the app, so it leaves the collector (freeze); young-generation passes become
        # rarer (threshold), so far fewer of them land in the middle of a batch.
        gc.freeze()
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(GC_GEN0_THRESHOLD, *self._gc_threshold[1:])
        self.run_capture()

    def on_unmount(self) -> None:
        if hasattr(self, "_gc_threshold"):
            gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()

    # --- the capture worker ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="capture", exit_on_error=False, description="capture")
    def run_capture(self) -> None:
        worker = get_current_worker()
        session = self.session

        def emit(cb) -> None:
            if (self.paused and session.live) or self.message_queue_size > QUEUE_LIMIT:
                self.skipped += len(cb)
            else:
                self.post_message(BatchClassified(display_batch(cb)))
            now = time.monotonic()   # the active incidents' counts, for display (the engine uses packet time)
            if now - self._incidents_posted >= INCIDENT_REFRESH and session.incidents.active:
                self._incidents_posted = now
                self.post_message(IncidentsChanged([t.to_dict() for t in session.incidents.active]))

        def incident_events(events) -> None:
            self.post_message(IncidentsChanged([e.snapshot for e in events]))

        def opened() -> None:
            self.post_message(CaptureStarted(session.source.description, session.live))

        try:
            report = session.run(on_batch=emit, cancelled=lambda: worker.is_cancelled, opened=opened,
                                 on_events=incident_events)
        except IotwatchError as e:
            self.post_message(CaptureFailed(str(e), e.exit_code, started=session.totals.packets > 0))
        except Exception as e:  # tshark/pyshark broke in an unforeseen way: still one line, no traceback
            self.post_message(CaptureFailed(f"capture failed: {type(e).__name__}: {e}", EXIT_ENV,
                                            started=session.totals.packets > 0))
        else:
            self.post_message(CaptureFinished(report))

    def on_capture_started(self, message: CaptureStarted) -> None:
        self.live = message.live
        self.state = "live" if message.live else "replay"
        self._started_at = self.clock()
        self._dirty = True

    def on_batch_classified(self, message: BatchClassified) -> None:
        self.rows.append(message.batch)
        self._dirty = True

    def on_incidents_changed(self, message: IncidentsChanged) -> None:
        self.incidents.merge(message.snapshots)
        self._dirty = True

    def on_capture_failed(self, message: CaptureFailed) -> None:
        self.error = message.reason
        self.exit_code = message.exit_code
        self.state = "failed"
        if not message.started:
            self.exit(self.exit_code, return_code=self.exit_code, message=self._exit_message())
            return
        self.status.add_class("-failed")
        self.notify(message.reason, title="capture failed", severity="error", timeout=30)
        self._dirty = True

    def on_capture_finished(self, message: CaptureFinished) -> None:
        self.report = message.report
        self._ended_at = self.clock()
        self.state = "interrupted" if message.report.get("interrupted") else "finished"
        msg = f"{message.report['packets']:,} packets, {message.report.get('anomalies', 0):,} anomalous"
        if message.report.get("truncated"):
            msg += f"; capture ended early: {message.report['truncated']}"
        if self.session.report_path:
            msg += f"; report written to {self.session.report_path}"
        self.notify(msg, title="end of capture", timeout=6)
        self._dirty = True

    # --- the tick ---------------------------------------------------------------------------------
    def refresh_screen(self, force: bool = True) -> None:
        """Turn the stores into widget updates: one refresh per changed widget. The tick passes
        ``force=False``: then the panes refresh only every PANE_EVERY ticks."""
        if not self.table.is_attached:  # a last tick while the app shuts down
            return
        packets, anomalies, counts, matrix, labelled = self.session.snapshot()
        self.rates.sample(self.clock(), counts)
        table = self.table
        if labelled and not table.labelled:
            table.labelled = True
        if self._dirty:
            table.set_view(self.rows.view(self.filter), self.rows.first_time)
        if self._dirty or packets != self._last_packets:
            table.border_subtitle = self._table_subtitle(packets, len(table.view))
        # counters and confusion (rich tables, the costly part of a frame) refresh every PANE_EVERY ticks
        self._ticks += 1
        panes_due = force or self._ticks % PANE_EVERY == 0 or self.report is not None
        rate_version = self.rates.samples  # not len(history): it stops changing once the history is full
        if panes_due and (packets != self._last_packets or rate_version != self._rate_version):
            self.counters.show(counts, anomalies, self.rates)
            self._rate_version = rate_version
        if panes_due and labelled != self._last_labelled:
            self.confusion.show(matrix if labelled else None)
            self._last_labelled = labelled
        if self.incidents.version != self._last_incidents or force:   # the most "live" pane: every tick
            self.incident_pane.show(self.incidents, self.rows.first_time)
            self._last_incidents = self.incidents.version
        self.status.show(
            state=self._state_label(), source=self._source_label, packets=packets, rate=self._rate(),
            shown=len(self.rows), dropped=self.rows.evicted + self.skipped,
            capture_drops=self.session.capture_drops, live=self.live, speed="live" if self.live else self.session.speed,
            filter_name=self.filter_name, model=getattr(self.session.classifier, "name", "?"))
        if panes_due:
            self._last_packets = packets
        self._dirty = False

    @property
    def _source_label(self) -> str:
        """A capture file's name (the full path is in the report) or the interface."""
        return Path(self.source_name).name if self.capture_path else self.source_name

    def _rate(self) -> float:
        """pkt/s over the last second while running; the whole run's average once it ended
        (both on the injected clock, so tests with a fixed clock see 0)."""
        if self._ended_at is not None and self._started_at is not None:
            span = self._ended_at - self._started_at
            return self.session.totals.packets / span if span > 0 else 0.0
        return self.rates.total_rate

    def _table_subtitle(self, packets: int, in_view: int) -> str:
        text = f"showing last {len(self.rows):,} of {packets:,}"
        if self.filter != ("all",):
            text = f"{in_view:,} match {self.filter_name} · " + text
        return text

    def _state_label(self) -> str:
        if self.paused and self.state in ("live", "replay"):
            return "⏸ paused"
        return {"starting": "… starting", "live": "● live", "replay": "▶ replay", "finished": "■ finished",
                "interrupted": "■ stopped", "failed": "✗ failed"}.get(self.state, self.state)

    @property
    def filter_name(self) -> str:
        if self.filter[0] == "anomaly":
            return "anomalies"
        if self.filter[0] == "class":
            return self.class_names[self.filter[1]]
        if self.filter[0] == "incident":
            return f"incident #{self.filter[1]}"
        return "all"

    # --- actions ----------------------------------------------------------------------------------
    def set_filter(self, flt: tuple) -> None:
        self.filter = flt
        self._dirty = True
        self.refresh_screen()

    def set_speed(self, speed: str) -> None:
        if self.live:
            self.notify("speed applies to replays; live traffic arrives at its own pace", timeout=3)
            return
        self.session.set_speed(speed)
        self._dirty = True

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.session.pause(self.paused)
        self.status.set_class(self.paused, "-paused")
        self._dirty = True

    def action_cycle_speed(self) -> None:
        self.set_speed(SPEEDS[(SPEEDS.index(self.session.speed) + 1) % len(SPEEDS)])

    def action_toggle_anomalies(self) -> None:
        self.set_filter(("all",) if self.filter == ("anomaly",) else ("anomaly",))

    def action_cycle_class_filter(self) -> None:
        k = self.filter[1] + 1 if self.filter[0] == "class" else 0
        self.set_filter(("class", k) if k < len(self.class_names) else ("all",))

    def action_next_anomaly(self) -> None:
        table = self.table
        view = table.view
        start = table.cursor_pos if table.cursor_pos is not None else int(table.scroll_y) - 1
        pos = view.next_anomaly(start)
        if pos is None and start >= 0:
            pos = view.next_anomaly(-1)
        if pos is None:
            self.notify("no anomalous packet in the table", timeout=3)
            return
        table.move_cursor(pos)

    def action_follow(self) -> None:
        self.table.move_cursor(None)

    def action_clear(self) -> None:
        self.rows.clear()
        self.table.move_cursor(None)
        self._dirty = True
        self.refresh_screen()

    def action_cycle_pane(self) -> None:
        self._set_pane(self._pane + 1)

    def _set_pane(self, index: int) -> None:
        self._pane = index % len(PANES)
        main = self.main
        for name in PANES:
            main.set_class(PANES[self._pane] == name, f"-show-{name}")

    def action_focus_incidents(self) -> None:
        if self.incident_pane.display:
            self.incident_pane.focus()
        else:   # compact layout: show the pane first
            self._set_pane(PANES.index("alerts"))
            self.call_after_refresh(self.incident_pane.focus)

    @on(IncidentsPane.Chosen)
    def incident_chosen(self, message: IncidentsPane.Chosen) -> None:
        s = message.incident
        if message.action == "open":
            self.push_screen(IncidentScreen(s, self.rows.first_time),
                             callback=lambda action: self.incident_action(s, action))
        else:
            self.incident_action(s, message.action)

    def incident_action(self, s: dict, action: str | None) -> None:
        """``jump``: cursor to the incident's first frame still in the table; ``filter``: only its packets."""
        if action == "filter":
            cls = self.class_names.index(s["class"]) if s["class"] in self.class_names else -1
            hosts = tuple(h for h in [s.get("attacker"), *s.get("victims", []), *s.get("claimed_ips", [])]
                          if h and _is_ip(h))
            self.set_filter(("incident", s["id"], cls, s["first_frame"], s["last_frame"], hosts))
            self.table.focus()
        elif action == "jump":
            if self.filter != ("all",):
                self.set_filter(("all",))
            pos = self.table.view.position_of_frame(s["first_frame"])
            if pos is None:
                self.notify(f"frames {s['first_frame']}-{s['last_frame']} are no longer in the table", timeout=4)
                return
            self.table.move_cursor(pos)
            self.table.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    def key_help(self) -> list[tuple[str, str]]:
        """(key, description) for the app's and the table's bindings."""
        out = []
        for b in [*self.BINDINGS, *PacketTable.BINDINGS]:
            keys = ", ".join(self.get_key_display(Binding(k, b.action)) for k in b.key.split(","))
            out.append((keys, b.description))
        out.append(("ctrl+p", "command palette (filters, speed, pause, clear ...)"))
        return out

    async def action_quit(self) -> None:
        self.workers.cancel_group(self, "capture")
        code = self.exit_code
        if code == EXIT_OK and self.fail_on == "anomaly" and self.session.totals.anomalies:
            code = EXIT_ANOMALIES
        if code == EXIT_OK and self.fail_on == "incident" and self.session.incidents.opened:
            code = EXIT_ANOMALIES
        self.exit(code, return_code=code, message=self._exit_message())

    def _exit_message(self) -> Text | None:
        """The one error line printed once the terminal is restored (Textual prints it on stderr)."""
        return Text(f"iotwatch: error: {self.error}") if self.error else None

    # --- packet detail ---------------------------------------------------------------------------
    @on(PacketTable.RowChosen)
    def open_detail(self, message: PacketTable.RowChosen) -> None:
        row = message.row
        table = self.table
        summary = Text.assemble(
            (f"frame {row.frame}  ", "bold"), f"{row.endpoints(200)}  {row.proto}  {row.length} bytes  ",
            ("predicted ", "bold"), (self.class_names[row.predicted], table.class_style(row.predicted)),
            f" ({row.confidence:.2f})",
            *((("  label ", "bold"), self.class_names[row.label]) if row.label >= 0 else ()),
            ("  ANOMALY" if row.anomaly else "", "bold red"), self._why(row))
        if self.live or not self.capture_path:
            note = "the full dissection is available for capture files only (-r FILE)"
            self.push_screen(DetailScreen(row.frame, summary, note=note))
            return
        self.push_screen(DetailScreen(row.frame, summary))
        self.load_detail(self.capture_path, row.frame)

    def _why(self, row) -> str:
        """The per-packet "why" (gradient x input over feature groups) when the model input was kept."""
        x = self.rows.features(row.gid)
        if x is None:
            return ""
        try:
            if self._explainer is None:
                from iotwatch.detector.explain import Explainer

                self._explainer = Explainer(self.session.classifier)
            from iotwatch.detector.explain import format_why

            return "\n" + format_why(self._explainer.explain(x, row.predicted), self.class_names[row.predicted])
        except (AttributeError, KeyError, ValueError, TypeError):   # a model without inspectable weights
            return ""

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False, description="dissect frame")
    def load_detail(self, path: str, frame: int) -> None:
        try:
            layers = dissect_frame(path, frame)
        except Exception as e:  # missing tshark, file gone, frame not found: one line in the modal
            self.post_message(DetailFailed(frame, f"cannot dissect frame {frame}: {e}"))
        else:
            self.post_message(DetailLoaded(frame, layers))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.frame == message.frame:
            screen.show_layers(message.layers)

    def on_detail_failed(self, message: DetailFailed) -> None:
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.frame == message.frame:
            screen.show_error(message.reason)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def make_app(source_factory: Callable[[], object], classifier, labels=None, *, source_name: str = "replay",
             capture_path: str | None = None, speed: str = "max", count: int | None = None,
             duration: float | None = None, report: str | None = None, predictions: str | None = None,
             alerts: str | None = None, fail_on: str | None = None, tick: float = 0.25,
             view_cap: int = 50_000, batch_rows: int = 8192, clock: Callable[[], float] = time.monotonic,
             app_class: type[IotWatchApp] = IotWatchApp) -> IotWatchApp:
    """Build the app around any zero-argument source factory and classifier (tests inject a
    ``ReplaySource`` and a tiny classifier; ``clock`` fixes rates for snapshots)."""
    session = CaptureSession(source_factory, classifier, labels, source_name=source_name, speed=speed,
                             count=count, duration=duration, report=report, predictions=predictions,
                             alerts=alerts, batch_rows=batch_rows)
    return app_class(session, source_name=source_name, capture_path=capture_path,
                     normal_index=int(getattr(classifier, "normal_index", 0)), fail_on=fail_on, tick=tick,
                     view_cap=view_cap, clock=clock)


def build_app(cfg, app_class: type[IotWatchApp] = IotWatchApp) -> IotWatchApp:
    """Check the outputs and the capture file, load the model and labels, and build the app for a
    validated ``RunConfig`` (user errors raise ``IotwatchError`` before the screen switches)."""
    from iotwatch.captures.tshark import source as tshark_source  # noqa: F401  (import the capture layer now, not while the UI starts)
    from iotwatch.captures.tshark.preflight import check_capture_file
    from iotwatch.headless import check_outputs
    from iotwatch.options import load_classifier, load_labels, source_factory

    check_outputs(cfg)
    if cfg.read:
        check_capture_file(cfg.read)
    classifier = load_classifier(cfg.model)
    labels = load_labels(cfg, list(classifier.classes_))
    return make_app(source_factory(cfg), classifier, labels, source_name=cfg.source_name, capture_path=cfg.read,
                    speed=cfg.speed, count=cfg.count, duration=cfg.duration, report=cfg.report,
                    predictions=cfg.predictions, alerts=cfg.alerts, fail_on=cfg.fail_on, app_class=app_class)


def run_tui(cfg) -> int:
    """Run the TUI for a validated ``RunConfig``; returns the CLI exit code (terminal restored).
    Errors the source finds once running arrive as ``CaptureFailed`` and end up in the exit code
    and one line on stderr."""
    app = build_app(cfg)
    result = app.run()
    # the worker was cancelled on quit: let it close the source and write the outputs
    app.session.done.wait(timeout=15)
    code = app.return_code if app.return_code is not None else (result or 0)
    return int(code or 0)
