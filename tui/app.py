"""The iotwatch Textual app: ``run_tui(cfg)`` for the CLI, ``make_app(...)`` for tests and benches.

Data flow (one direction, few hops):

1. One thread worker (group ``capture``) runs ``CaptureSession.run``: it opens the source inside
   the thread, runs ``classify_stream``, counts every packet in ``RunTotals``, writes the outputs
   and hands each batch to ``emit``, which appends its display form to ``RowStore`` (the newest
   rows, bounded) and ``PredictionLog`` (what the model said about every packet, 12 bytes each),
   paused or not; the session's incident engine sends snapshots as ``IncidentsChanged``.
2. A fixed tick turns the stores and a ``RunTotals`` snapshot into widget updates, at most one
   refresh per widget per tick. The table gets a ``LogView`` (filters, display filter, sort over
   the whole run); rows that left memory are read back from the capture file through its frame
   index (``captures.tshark.frames``, built by a worker) page by page, in a worker. Pause freezes
   the view (its row count), never the stores.
3. Display filters, search, export, detail and follow stream run tshark in thread workers and
   post their results back; the UI thread never waits for tshark.
4. Failures become ``CaptureFailed`` (one line, the CLI exit code), the end ``CaptureFinished``.
"""
from __future__ import annotations

import gc
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import get_current_worker

from iotwatch.captures.errors import EXIT_ANOMALIES, EXIT_ENV, EXIT_INPUT, EXIT_OK, IotwatchError, one_line
from iotwatch.captures.tshark.dissect import dissect_frame
from iotwatch.detector.config import RunConfig
from iotwatch.tui.commands import IotwatchCommands
from iotwatch.tui.messages import (BatchClassified, CaptureFailed, CaptureFinished, CaptureStarted,
                                   DetailFailed, DetailLoaded, IncidentsChanged, StreamFollowed)
from iotwatch.tui.session import SPEEDS, CaptureSession
from iotwatch.tui.store import (SORT_KEYS, IncidentStore, LogView, PageCache, PredictionLog, RateHistory, RowStore,
                                display_batch)
from iotwatch.tui.widgets.incidents import IncidentsPane, IncidentView
from iotwatch.tui.widgets.class_counters import ClassCounters
from iotwatch.tui.widgets.confusion import ConfusionSummary
from iotwatch.tui.widgets.detail import DetailScreen, StreamScreen
from iotwatch.tui.widgets.help import HelpScreen
from iotwatch.tui.widgets.key_bar import KeyBar
from iotwatch.tui.widgets.packet_table import PacketTable
from iotwatch.tui.widgets.prompt import PromptBar
from iotwatch.tui.widgets.status_bar import StatusBar

EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a command killed by SIGINT
SWITCH_INTERVAL = 0.001  # seconds: GIL hand-over while the app runs (Python's default 0.005)
PANE_EVERY = 4     # ticks between refreshes of the counters and confusion panes (1 s: rates are per second)
GC_GEN0_THRESHOLD = 20_000  # allocations between young-generation GC passes (Python's default: 700)
INCIDENT_REFRESH = 0.5  # s of wall time between snapshots of the active incidents (display only)
PANES = ("counters", "alerts", "confusion")
# A full-speed replay keeps tshark and the capture thread busy on every core they get; on a loaded
# machine (2 cores shared) a key press then waited behind them, and so did the terminal drawing the
# answer. Their niceness is raised by this much (the UI thread keeps its own), so the scheduler
# serves the keyboard first; the replay takes what is left. Live captures keep theirs (dumpcap and
# tshark must keep up with the wire). Measured by bench/tui_latency.py keys --probe.
REPLAY_NICE = 10


class MainScreen(Screen):
    """The app's screen. Its ``focused`` does not repaint the whole screen: Textual's does on every
    focus change (``i``, Tab, the focus going back to the table after j/t), although the widgets
    whose look depends on the focus are restyled and redrawn anyway. The incident view lies over
    the packet table on a layer of its own, centred (the default layer fills the screen, so the
    alignment moves nothing else)."""

    DEFAULT_CSS = """
    MainScreen { layers: default incident; align: center middle; }
    """
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)


class IotWatchApp(App[int]):
    """The monitor. Build it with ``make_app``; ``return_code`` is the CLI exit code."""

    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "iotwatch"
    COMMANDS = App.COMMANDS | {IotwatchCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+c", "interrupt", "Interrupt (exit status 130)", show=False, priority=True, id="quit-interrupt"),
        Binding("space", "toggle_pause", "Pause", id="pause"),
        Binding("slash", "prompt('filter')", "Filter", id="display-filter"),
        Binding("colon", "prompt('goto')", "Go to", id="goto"),
        Binding("a", "toggle_anomalies", "Anomalies", id="filter-anomalies"),
        Binding("w", "export", "Save", id="export"),
        Binding("v", "mark", "Mark range", show=False, id="mark"),
        Binding("m", "cycle_pane", "Pane", id="cycle-pane"),
        Binding("i", "focus_incidents", "Focus the incidents pane", show=False, id="focus-incidents"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("s", "cycle_speed", "Speed", show=False, id="speed"),
        Binding("f", "cycle_class_filter", "Class filter", show=False, id="filter-class"),
        Binding("n", "next_anomaly", "Next anomaly", show=False, id="next-anomaly"),
        Binding("o", "cycle_sort", "Sort (No., Len, Class, Conf)", show=False, id="sort"),
        Binding("c", "clear", "Clear table", show=False, id="clear"),
        Binding("x", "dismiss_notice", "Dismiss warning", show=False, id="dismiss"),
    ]

    def get_driver_class(self):
        """Textual's driver for this terminal; on Linux/macOS one that reports Escape without the
        100 ms wait (tui/terminal.py: ``ESCDELAY``, default 25 ms)."""
        cls = super().get_driver_class()
        if cls.__module__ == "textual.drivers.linux_driver" and cls.__name__ == "LinuxDriver":
            from iotwatch.tui.terminal import EscapeDriver

            return EscapeDriver
        return cls

    def __init__(self, session: CaptureSession, *, tick: float = 0.25, view_cap: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.session = session
        cfg = session.config
        self.class_names = list(session.classes)
        self.normal_index = int(getattr(session.classifier, "normal_index", 0))
        self.source_name = cfg.source_name
        # a capture file we can index, filter, dissect and export from (tests name files that do not exist)
        read = cfg.source.read
        self.capture_path = read if read and Path(read).is_file() else None
        self.fail_on = cfg.fail_on
        self.tick = tick
        self.clock = clock
        self.rows = RowStore(view_cap)
        self.plog = PredictionLog()      # every packet's prediction: the table browses the whole run
        self.index = None               # FrameIndex of the capture file (built in a worker)
        self.live_frames = None         # live: the frames the capture keeps on disk (tui.ring.LiveFrames)
        self.live_filter = None         # live: the display filter running over them (tui.ring.LiveFilter)
        self.pages: PageCache | None = None
        self.dfilter: str | None = None           # active Wireshark display filter (whole file)
        self.dfilter_frames = None                # its matching frame numbers
        self.sort: tuple[str, bool] | None = None
        self._base = 0                  # gid of the first row shown (clear moves it)
        self._reach: dict | None = None  # live, during one refresh_screen: n -> _first_reachable(n)
        self._search: dict = {}         # display filter -> matching frames (search cache)
        self._pages_gen = 0
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
        self.index_error: str | None = None
        self.notice: str | None = None   # truncation / interruption / failure: in the status bar until x
        self.skipped = 0          # rows never offered to the view (kept for the status bar; now always 0)
        self._frozen: int | None = None    # paused: how many rows of the run the table holds
        self._paused_added = 0    # rows.added when the view froze
        self._last_added = -1
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
    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

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
            yield PromptBar(id="prompt")
            with Horizontal(id="panes"):
                yield self.counters
                yield self.confusion
            yield self.incident_pane
        yield KeyBar(id="keys")
        self.incident_view = IncidentView(id="incident-view")
        yield self.incident_view

    def on_mount(self) -> None:
        table = self.table
        table.border_title = "Packets"
        self.counters.border_title = "Classes"
        self.confusion.border_title = "Confusion (labelled)"
        self.incident_pane.border_title = "Incidents"
        for w in (self.counters, self.confusion, self.incident_pane):
            w.class_style = table.class_style
        self.counters.threshold = self.threshold
        table.focus()
        self.refresh_screen()
        self.set_interval(self.tick, partial(self.refresh_screen, force=False), name="tick")
        self._start()
        if self.capture_path:
            self.build_index(self.capture_path)

    def _start(self) -> None:
        # The cycle collector is process-wide: a pass triggered by Textual's many small allocations
        # also walks the capture thread's fresh object arrays (8192-row batches) and stalled key
        # presses by 20-300 ms. Everything built so far (modules, widgets, styles, the model) lives
        # as long as the app, so it leaves the collector (freeze); young-generation passes become
        # rarer (threshold), so far fewer of them land in the middle of a batch.
        gc.freeze()
        # the capture thread holds the GIL in 5 ms slices by default; a key press waits for the
        # hand-over: 1 ms slices let the UI thread in sooner (measured by bench/tui_latency.py keys)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(GC_GEN0_THRESHOLD, *self._gc_threshold[1:])
        self.run_capture()

    def on_unmount(self) -> None:
        if self.dissector is not None:
            self.dissector.close()
        if hasattr(self, "_switch_interval"):
            sys.setswitchinterval(self._switch_interval)
        if hasattr(self, "_gc_threshold"):
            gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()

    # --- the capture worker ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="capture", exit_on_error=False, description="capture")
    def run_capture(self) -> None:
        # A thread of its own (not the worker pool's, which later workers reuse): a replay lowers its
        # scheduling priority, and the tshark it starts inherits it (see REPLAY_NICE)
        worker = get_current_worker()
        _niced(0 if self.session.config.source.iface else REPLAY_NICE, lambda: self._capture(worker),
               name="iotwatch-capture")

    def _capture(self, worker) -> None:
        session = self.session

        def emit(cb) -> None:
            # every row goes into the store here, paused or not, however far behind the screen is;
            # a paused screen keeps showing its own snapshot until resumed
            shown = display_batch(cb)
            self.rows.append(shown)
            self.plog.append(shown)   # after the rows: every gid the log knows is in the store or was
            self.post_message(BatchClassified(shown))
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
            # values the input produced (a crafted capture) are input errors (2); anything else is 3
            code = EXIT_INPUT if isinstance(e, (ValueError, OverflowError, UnicodeError)) else EXIT_ENV
            self.post_message(CaptureFailed(one_line(f"capture failed: {type(e).__name__}: {e}"), code,
                                            started=session.totals.packets > 0))
        else:
            self.post_message(CaptureFinished(report))

    def on_capture_started(self, message: CaptureStarted) -> None:
        self.live = message.live
        self.state = "live" if message.live else "replay"
        source = self.session.source
        if message.live and callable(getattr(source, "kept_frames", None)):
            # the ring of files the live capture keeps (captures/keep.py): detail, display filter and
            # rows beyond memory (a long pause) read from it
            from iotwatch.tui.ring import LiveFrames

            self.live_frames = LiveFrames(source)
            self.pages = PageCache(self.live_frames, self.plog)
            self.pages.gone = self._gone
        self._started_at = self.clock()
        self._dirty = True

    def on_batch_classified(self, message: BatchClassified) -> None:
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
        self.notice = f"✗ {message.reason} (x dismisses)"
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
        if message.report.get("truncated"):
            self.notice = f"⚠ capture ended early: {message.report['truncated']} (x dismisses)"
        elif message.report.get("interrupted") and self.state == "interrupted":
            self.notice = "⚠ stopped before the end of the source: outputs marked interrupted (x dismisses)"
        self._dirty = True

    # --- the tick ---------------------------------------------------------------------------------
    def refresh_now(self) -> None:
        """After a key: the table and the status bar at once; the panes keep their own schedule
        (a key press must not wait for the counters' and incidents' redraw)."""
        self.refresh_screen(force=False, tick=False)

    def refresh_screen(self, force: bool = True, tick: bool = True) -> None:
        """Turn the stores into widget updates: one refresh per changed widget. The tick passes
        ``force=False``: then the panes refresh only every PANE_EVERY ticks."""
        if not self.table.is_attached:  # a last tick while the app shuts down
            return
        self._reach = {}   # the view, the subtitle and the status bar ask once per tick
        try:
            self._refresh_screen(force, tick)
        finally:
            self._reach = None

    def _refresh_screen(self, force: bool, tick: bool) -> None:
        packets, anomalies, counts, matrix, labelled = self.session.snapshot()
        self.rates.sample(self.clock(), counts)
        table = self.table
        if labelled and not table.labelled:
            table.labelled = True
        n = self.plog.n if self._frozen is None else self._frozen
        if n:   # the No. column grows with the frame numbers (live captures pass 99,999 too)
            digits = len(str(int(self.plog.col("frame", n)[n - 1])))
            if digits > table.frame_digits:
                table.frame_digits = digits
        if self._dirty or n != self._last_added:
            table.set_view(self.make_view(n), self.rows.first_time)
            self._last_added = n
        self._load_pages()
        if self._dirty or packets != self._last_packets:
            table.border_subtitle = self._table_subtitle(packets, len(table.view))
        # counters and confusion (rich tables, the costly part of a frame) refresh every PANE_EVERY ticks
        self._ticks += tick
        panes_due = force or (tick and self._ticks % PANE_EVERY == 0) or self.report is not None
        rate_version = self.rates.samples  # not len(history): it stops changing once the history is full
        if panes_due and (packets != self._last_packets or rate_version != self._rate_version):
            self.counters.show(counts, anomalies, self.rates)
            self._rate_version = rate_version
        if panes_due and labelled != self._last_labelled:
            self.confusion.show(matrix if labelled else None)
            self._last_labelled = labelled
        if (self.incidents.version != self._last_incidents and tick) or force:   # the most "live" pane: every tick
            self.incident_pane.show(self.incidents, self.rows.first_time)
            self._last_incidents = self.incidents.version
        self.status.show(
            state=self._state_label(), source=self._source_label, packets=packets, rate=self._rate(),
            shown=len(table.view), dropped=self.dropped_from_view, in_memory=len(self.rows),
            capture_drops=self.session.capture_drops, live=self.live, speed="live" if self.live else self.session.speed,
            filter_name=self.filter_name, dfilter=self.dfilter, notice=self.notice, model=getattr(self.session.classifier, "name", "?"))
        if panes_due:
            self._last_packets = packets
        self._dirty = False

    @property
    def threshold(self) -> float | None:
        """The model's anomaly threshold: a packet is anomalous when its class is not normal and the
        model is at least this sure (why 'anomalous' is less than the sum of the attack classes)."""
        policy = getattr(self.session.classifier, "policy", None)
        return getattr(policy, "threshold", None)

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
        text = f"{self.plog.n - self._base - self.dropped_from_view:,} of {packets:,} packets"
        if self.filter != ("all",) or self.dfilter:
            what = " && ".join(x for x in (self.dfilter, self.filter_name if self.filter != ("all",) else None) if x)
            text = f"{in_view:,} match {what} · " + text
        if self.sort is not None:
            text += f" · sorted by {self.sort[0]}{' ▼' if self.sort[1] else ''}"
        lf = self.live_filter
        if lf is not None and self.dfilter == lf.expr:
            text += f" · -Y checked up to frame {lf.upto:,}" + (f" ({lf.lost:,} left the ring unchecked)" if lf.lost else "")
        return text

    def make_view(self, n: int | None = None) -> LogView:
        """The table's rows now: the run's gids [_base, n) through the class filter, the display
        filter's frames and the sort."""
        n = self.plog.n if n is None else n
        lo = self._base if self.pages is not None else max(self._base, self.rows.first_gid)
        if self.live_frames is not None:   # rows still in memory or in the live ring's files
            lo = max(self._base, self._first_reachable(n))
        return LogView(self.plog, self.rows, min(lo, n), n, self.filter, self.dfilter_frames, self.sort,
                       self.pages)

    @property
    def dropped_from_view(self) -> int:
        """Rows that left memory and cannot be read back (no capture file to read them from, or
        their frames left the live ring)."""
        if self.live_frames is not None:
            return max(0, self._first_reachable() - self._base)
        return 0 if self.pages is not None else max(0, self.rows.first_gid - self._base)

    def _first_reachable(self, n: int | None = None) -> int:
        """Live: gid of the oldest row in memory or in the ring's files (the ring's file list and a
        search over the frame numbers: once per n and tick, see refresh_screen)."""
        n = self.plog.n if n is None else n
        if self._reach is not None and n in self._reach:
            return self._reach[n]
        first = self.rows.first_gid
        span = self.live_frames.span()
        if span is not None:
            first = min(first, int(np.searchsorted(self.plog.col("frame", n), span[0])))
        if self._reach is not None:
            self._reach[n] = first
        return first

    def _gone(self, frame: int) -> str | None:
        """Live: why a row cannot be read back (its frame left the ring), None if it may come."""
        span = self.live_frames.span()
        if span is not None and frame < span[0]:
            return "(no longer kept: fell out of the live ring)"
        return None

    def _state_label(self) -> str:
        if self.paused and self.state in ("live", "replay", "finished", "interrupted"):
            arrived = self.arrived_while_paused
            ended = "" if self.state in ("live", "replay") else ", ended"
            return f"⏸ paused (+{arrived:,} new{ended})" if arrived or ended else "⏸ paused"
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
        self.refresh_now()

    def set_speed(self, speed: str) -> None:
        if self.live:
            self.notify("speed applies to replays; live traffic arrives at its own pace", timeout=3)
            return
        self.session.set_speed(speed)
        self._dirty = True

    def action_toggle_pause(self) -> None:
        """Pause freezes the screen, never the store: a replay waits, a live capture keeps storing
        rows; resume shows them from where the table was, with how many arrived meanwhile."""
        self.paused = not self.paused
        self.session.pause(self.paused)
        self.status.set_class(self.paused, "-paused")
        table = self.table
        if self.paused:
            self._frozen = self._paused_added = self.plog.n
            self._dirty = True
            self.refresh_now()     # the frozen rows, placed as the table was (newest at the bottom)
            table.pin_bottom()        # keep the place: resume must not jump past the new rows
        else:
            self._frozen = None
            arrived = self.plog.n - self._paused_added
            if arrived:
                self.notify(f"{arrived:,} rows arrived meanwhile; End follows the newest again",
                            title="resumed", timeout=5)
        self._dirty = True
        self.refresh_now()

    @property
    def arrived_while_paused(self) -> int:
        return self.plog.n - self._paused_added if self.paused else 0

    def action_dismiss_notice(self) -> None:
        self.notice = None
        self.refresh_now()

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
        self._base = self.plog.n if self._frozen is None else self._frozen
        self.table.move_cursor(None)
        self._dirty = True
        self.refresh_now()

    def action_cycle_pane(self) -> None:
        self._set_pane(self._pane + 1)

    def _set_pane(self, index: int) -> None:
        self._pane = index % len(PANES)
        main = self.main
        for name in PANES:
            main.set_class(PANES[self._pane] == name, f"-show-{name}")

    def action_focus_incidents(self) -> None:
        # focus at once (widget.focus() is deferred): a key typed right after i must reach the pane
        if not self.incident_pane.display:   # compact layout: show the pane first
            self._set_pane(PANES.index("alerts"))
        self.screen.set_focus(self.incident_pane)

    @on(IncidentsPane.Chosen)
    def incident_chosen(self, message: IncidentsPane.Chosen) -> None:
        s, pane, view = message.incident, self.incident_pane, self.incident_view
        if message.action == "open":
            was_open = view.is_open
            view.open(s, self.rows.first_time)
            pane.viewing = s["id"]
            if not was_open:
                self.refresh_bindings()   # the key line: the app's keys are off, Escape closes
            return
        if view.is_open:
            view.close()
            pane.viewing = None
            self.refresh_bindings()
        if message.action in ("jump", "filter"):
            self.incident_action(s, message.action)

    # the app's own keys do nothing while the incident view is open (as under a modal screen); q and
    # Escape close the view (the focused pane's bindings come first), ctrl+c still interrupts
    _KEEP_WITH_INCIDENT = frozenset({"quit", "interrupt"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        view = getattr(self, "incident_view", None)
        if view is not None and view.is_open and action not in self._KEEP_WITH_INCIDENT:
            return False
        return True

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
        for b in IncidentsPane.BINDINGS:   # keys of the focused Incidents pane (not its cursor keys)
            if not b.show:
                continue
            out.append((self.get_key_display(Binding(b.key, b.action)), f"incidents pane: {b.description.lower()}"))
        out.append(("ctrl+p", "command palette (filters, speed, pause, clear ...)"))
        out.append(("/ live", "display filter on a live capture: tshark runs it over the frames the capture keeps "
                              "in its ring files (-w, or 8 x 16 MB in a temporary folder), block by block as they "
                              "arrive; newer rows appear once checked; frames that left the ring are not shown; "
                              "filters that need earlier frames (tcp.analysis, reassembly, tcp.stream) see each "
                              "block of up to 20,000 frames on its own"))
        out.append(("⏎ live", "detail of a live frame from the ring files; a frame that left the ring says so"))
        out.append(("space live", "a long pause loses nothing: rows beyond the 50,000 in memory are read back "
                                  "from the ring files while they are kept"))
        return out

    async def action_quit(self) -> None:
        self.workers.cancel_group(self, "capture")
        code = self.exit_code
        if code == EXIT_OK and self.fail_on == "anomaly" and self.session.totals.anomalies:
            code = EXIT_ANOMALIES
        if code == EXIT_OK and self.fail_on == "incident" and self.session.incidents.opened:
            code = EXIT_ANOMALIES
        self.exit(code, return_code=code, message=self._exit_message())

    async def action_interrupt(self) -> None:
        """Ctrl-C: stop like q (outputs written, marked interrupted), exit status 130 like any
        interrupted command line tool; Textual restores the terminal."""
        self.workers.cancel_group(self, "capture")
        self.exit(EXIT_INTERRUPTED, return_code=EXIT_INTERRUPTED, message=self._exit_message())

    def _exit_message(self) -> Text | None:
        """The one error line printed once the terminal is restored (Textual prints it on stderr)."""
        return Text(f"iotwatch: error: {self.error}") if self.error else None

    # --- the capture file: frame index, rows read back, display filter, search, jump -------------
    @work(thread=True, exclusive=True, group="index", exit_on_error=False, description="index frames")
    def build_index(self, path: str) -> None:
        """Index the capture file's frame offsets (once, off the UI thread): detail, export, display
        filters and rows no longer in memory read from it."""
        from iotwatch.captures.tshark.frames import FrameIndex

        worker = get_current_worker()
        try:   # a Python walk over the whole file: below the UI thread in priority, like the replay
            index = _niced(REPLAY_NICE, lambda: FrameIndex(path).build(cancelled=lambda: worker.is_cancelled))
        except Exception as e:   # compressed or odd files: the table keeps what is in memory
            self.call_from_thread(self._index_failed, f"{type(e).__name__}: {e}")
            return
        if index.done:
            self.call_from_thread(self._index_ready, index)

    def _index_ready(self, index) -> None:
        from iotwatch.captures.tshark.frames import Dissector

        self.index = index
        self.dissector = Dissector(index)
        self.warm_dissector()
        self.pages = PageCache(index, self.plog)
        self.table.frame_digits = max(5, len(str(index.frames)))
        self._dirty = True

    dissector = None

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False, description="start tshark")
    def warm_dissector(self) -> None:
        try:
            self.dissector.start()
        except Exception:   # the detail falls back to one-shot tshark runs
            pass

    def _index_failed(self, reason: str) -> None:
        self.index_error = reason

    def _load_pages(self) -> None:
        pages = self.pages
        if pages is None:
            return
        if pages.generation != self._pages_gen:
            self._pages_gen = pages.generation
            self.table.generation = pages.generation
            self.table.refresh()
        p = pages.take_request()
        if p is not None:
            self.load_page(p)

    @work(thread=True, exclusive=True, group="pages", exit_on_error=False, description="read back rows")
    def load_page(self, p: int) -> None:
        try:
            self.pages.load(p)
        except Exception as e:
            self.pages.failed = f"{type(e).__name__}: {e}"
            self.call_from_thread(self.notify, f"cannot read rows back from the file: {self.pages.failed}",
                                  severity="error", timeout=8)
            return
        self.call_from_thread(self._load_pages)

    def action_prompt(self, mode: str) -> None:
        prompt = self.query_one(PromptBar)
        prompt.open(mode, (self.dfilter or "") if mode == "filter" else self._last_goto)
        if mode == "filter" and prompt.value:
            self._check_later(prompt.value)

    _last_goto = ""
    _check_timer = None

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        if self.query_one(PromptBar).mode == "filter":
            self._check_later(event.value)

    def _check_later(self, expr: str) -> None:
        """Validate as you type: tshark checks the filter 0.3 s after the last key, off the UI thread."""
        if self._check_timer is not None:
            self._check_timer.stop()
        prompt = self.query_one(PromptBar)
        if not expr.strip():
            prompt.verdict("", "empty: Enter clears the display filter")
            return
        prompt.verdict("checking", "checking with tshark …")
        self._check_timer = self.set_timer(0.3, partial(self.check_filter, expr.strip()))

    @work(thread=True, exclusive=True, group="check-filter", exit_on_error=False, description="check filter")
    def check_filter(self, expr: str) -> None:
        reason = self._filter_problem(expr)
        self.call_from_thread(self._filter_checked, expr, reason)

    def _filter_problem(self, expr: str) -> str | None:
        from iotwatch.captures.errors import IotwatchError
        from iotwatch.captures.tshark.preflight import check_display_filter, check_tools

        try:
            check_display_filter(expr, check_tools().tshark)
        except IotwatchError as e:
            return str(e).split(": ", 1)[-1] if "bad display filter" in str(e) else str(e)
        return None

    def _filter_checked(self, expr: str, reason: str | None) -> None:
        prompt = self.query_one(PromptBar)
        if prompt.mode != "filter" or prompt.value.strip() != expr:
            return   # the user typed on
        prompt.verdict("invalid" if reason else "valid", reason or "valid display filter · Enter applies")

    @on(PromptBar.Cancelled)
    def _prompt_cancelled(self) -> None:
        self.query_one(PromptBar).close()
        self.table.focus()

    @on(PromptBar.Submitted)
    def _prompt_submitted(self, message: PromptBar.Submitted) -> None:
        prompt = self.query_one(PromptBar)
        if message.mode == "filter":
            if not message.value:
                prompt.close()
                self.table.focus()
                self.set_display_filter(None, None)
                return
            if not self.capture_path:
                if self.live_frames is None:
                    prompt.verdict("invalid", "this source keeps no frames to filter; start with -Y to filter at capture")
                    return
                prompt.verdict("checking", "filtering the frames kept by the live capture with tshark …")
                self.apply_live_filter(message.value)
                return
            prompt.verdict("checking", f"filtering {Path(self.capture_path).name} with tshark …")
            self.apply_display_filter(message.value)
            return
        if message.mode == "export":
            if not message.value:
                prompt.verdict("invalid", "give a file name")
                return
            prompt.verdict("checking", "writing …")
            self.export_frames(self.export_frames_list(), message.value)
            return
        self._last_goto = message.value
        prompt.close()
        self.table.focus()
        if message.value.isdigit():
            self.jump_to_frame(int(message.value))
        elif message.value:
            self.search(message.value)

    @work(thread=True, exclusive=True, group="display-filter", exit_on_error=False, description="display filter")
    def apply_display_filter(self, expr: str) -> None:
        reason = self._filter_problem(expr)
        if reason is None:
            try:
                frames = self._index_for_filter().filter_frames(expr, cancelled=lambda: get_current_worker().is_cancelled)
            except Exception as e:
                reason = str(e)
        if reason is not None:
            self.call_from_thread(self._filter_checked, expr, reason)
            return
        self.call_from_thread(self._filter_applied, expr, frames)

    def _index_for_filter(self):
        """The frame index, or a bare one for tshark runs over the file (before indexing finished)."""
        from iotwatch.captures.tshark.frames import FrameIndex

        return self.index if self.index is not None else FrameIndex(self.capture_path)

    def _filter_applied(self, expr: str, frames) -> None:
        prompt = self.query_one(PromptBar)
        if prompt.mode == "filter":
            prompt.close()
        self.table.focus()
        self.set_display_filter(expr, frames)

    @work(thread=True, exclusive=True, group="display-filter", exit_on_error=False, description="live display filter")
    def apply_live_filter(self, expr: str) -> None:
        """Live: check ``expr`` with tshark, then run it over the ring's frames block by block as they
        arrive (``tui.ring.LiveFilter``), in a niced thread, until the filter is cleared or replaced."""
        from iotwatch.tui.ring import LiveFilter

        reason = self._filter_problem(expr)
        if reason is not None:
            self.call_from_thread(self._filter_checked, expr, reason)
            return
        worker = get_current_worker()
        lf = LiveFilter(self.live_frames, expr)
        self.live_filter = lf
        first = True

        def run() -> None:
            nonlocal first
            while self.live_filter is lf and not worker.is_cancelled:
                try:
                    moved = lf.step(cancelled=lambda: worker.is_cancelled or self.live_filter is not lf)
                except Exception as e:
                    self.call_from_thread(self.notify, one_line(f"live display filter stopped: {e}"),
                                          severity="error", timeout=8)
                    return
                if first:
                    first = False
                    self.call_from_thread(self._filter_applied, expr, lf.matched)
                elif moved:
                    self.call_from_thread(self._live_filter_progress, lf)
                if not moved:
                    if self.state not in ("live", "starting", "replay") and self.session.done.is_set():
                        return   # the capture ended and every kept frame was checked
                    time.sleep(0.5)

        _niced(REPLAY_NICE, run)

    def _live_filter_progress(self, lf) -> None:
        if self.live_filter is lf:
            self.dfilter_frames = lf.matched
            self._dirty = True

    def set_display_filter(self, expr: str | None, frames) -> None:
        if expr is None or (self.live_filter is not None and self.live_filter.expr != expr):
            self.live_filter = None
        self.dfilter, self.dfilter_frames = expr, frames
        self._dirty = True
        self.refresh_now()
        if expr is not None:
            self.notify(f"{len(self.table.view):,} rows match {expr}", title="display filter", timeout=4)

    def jump_to_frame(self, frame: int) -> None:
        pos, exact = self.table.view.frame_position(frame)
        if pos is None:
            self.notify(f"frame {frame:,} is not in the table", severity="warning", timeout=4)
            return
        self.table.move_cursor(pos)
        if not exact:
            self.notify(f"frame {frame:,} is not in this view; showing frame {self.table.view.row(pos).frame:,}",
                        timeout=4)

    def search(self, query: str) -> None:
        """Next row after the cursor matching ``query``: a display filter (tshark over the file) when
        it is one, else text in the rows held in memory."""
        if self.capture_path and self._search.get(query) is None:
            self.search_file(query)
            return
        frames = self._search.get(query)
        table = self.table
        view = table.view
        start = (table.cursor_pos if table.cursor_pos is not None else int(table.scroll_y) - 1) + 1
        if frames is not None and len(frames):
            if not view.sorted:
                here = view.row(start).frame if start < len(view) else None
                nxt = frames[np.searchsorted(frames, here)] if here is not None and np.searchsorted(frames, here) < len(frames) else frames[0]
                pos, exact = view.frame_position(int(nxt))
                while pos is not None and not exact:   # filtered out of the view: the next match
                    k = int(np.searchsorted(frames, view.row(pos).frame))
                    if k >= len(frames):
                        pos = None
                        break
                    pos, exact = view.frame_position(int(frames[k]))
                if pos is not None:
                    table.move_cursor(pos)
                    return
            self.notify(f"no row in the table matches {query}", timeout=4)
            return
        needle = query.lower()
        first = self.rows.first_gid
        for pos in list(range(start, len(view))) + list(range(0, start)):
            gid = view.gid(pos)
            if gid < first:
                continue
            row = view.row(pos)
            line = f"{row.frame} {row.endpoints(999)} {row.proto} {row.info} {self.class_names[row.predicted]}".lower()
            if needle in line:
                table.move_cursor(pos)
                return
        self.notify(f"{query!r} not found in the rows held in memory", timeout=4)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False, description="search")
    def search_file(self, query: str) -> None:
        if self._filter_problem(query) is None:
            try:
                frames = self._index_for_filter().filter_frames(query)
            except Exception:
                frames = False
        else:
            frames = False      # not a display filter: text search
        self.call_from_thread(self._searched, query, frames)

    def _searched(self, query: str, frames) -> None:
        self._search = {query: frames}
        self.search(query)

    # --- export -------------------------------------------------------------------------------------
    _mark: int | None = None    # gid where a marked range starts (v)

    def action_mark(self) -> None:
        """v: start a range at the cursor (w then saves the range up to the cursor); v again drops it."""
        table = self.table
        if self._mark is not None or table.cursor_gid is None:
            self._mark = None
            table.mark_gid = None
            table.refresh()
            if table.cursor_gid is None:
                self.notify("put the cursor on a row first (j/k, g, :frame)", timeout=3)
            return
        self._mark = table.mark_gid = table.cursor_gid
        table.refresh()
        self.notify("range started: move the cursor, then w saves the marked rows", timeout=4)

    def export_frames_list(self) -> list[int]:
        """Frame numbers to save: the marked range (v ... cursor) or every row of the view."""
        view = self.table.view
        if self._mark is not None and self.table.cursor_pos is not None:
            a, b = sorted((view.position(self._mark), self.table.cursor_pos))
            gids = view.gids(a, min(b + 1, len(view)))
        else:
            gids = view.gids(0, len(view))
        return sorted(self.plog.col("frame")[np.asarray(gids, dtype=np.int64)].tolist())

    def action_export(self) -> None:
        if self.index is None:
            why = ("saving needs a capture file (-r FILE)" if not self.capture_path
                   else f"still indexing the capture file" if self.index_error is None
                   else f"cannot index the capture file: {self.index_error}")
            self.notify(why, severity="warning", timeout=5)
            return
        n = len(self.export_frames_list())
        suffix = ".pcap" if self.index.format == "pcap" else ".pcapng"
        stem = Path(self.capture_path).stem
        name = f"{stem}-{'range' if self._mark is not None else 'view'}-{time.strftime('%H%M%S')}{suffix}"
        prompt = self.query_one(PromptBar)
        prompt.open("export", name)
        prompt.verdict("", f"{n:,} frames to write · Enter writes · Esc cancels")

    @work(thread=True, exclusive=True, group="export", exit_on_error=False, description="export")
    def export_frames(self, frames: list[int], out: str) -> None:
        try:
            if Path(out).exists():
                raise FileExistsError(f"{out} exists (nothing is replaced)")
            n = self.index.write(frames, out)
        except Exception as e:
            self.call_from_thread(self._export_done, out, None, f"{e}")
            return
        self.call_from_thread(self._export_done, out, n, None)

    def _export_done(self, out: str, n: int | None, error: str | None) -> None:
        prompt = self.query_one(PromptBar)
        if error:
            prompt.verdict("invalid", f"not saved: {error}")
            return
        prompt.close()
        self.table.focus()
        self._mark = self.table.mark_gid = None
        self.notify(f"{n:,} frames written to {out}", title="saved", timeout=6)

    def action_cycle_sort(self) -> None:
        """o: frame order -> Len ▲ -> Len ▼ -> Class ▲ -> ... -> Conf ▼ -> frame order."""
        cycle = [None] + [(k, d) for k in SORT_KEYS if k != "No." for d in (False, True)]
        nxt = cycle[(cycle.index(self.sort) + 1) % len(cycle)] if self.sort in cycle else None
        self._apply_sort(nxt)

    @on(PacketTable.SortClicked)
    def _sort_clicked(self, message: PacketTable.SortClicked) -> None:
        self.set_sort(message.key)

    def set_sort(self, key: str) -> None:
        """Sort by ``key`` like a click on its title: ascending, again descending (No. ascending is
        frame order, the default)."""
        cur = self.sort or ("No.", False)
        nxt = (key, not cur[1]) if cur[0] == key else (key, False)
        self._apply_sort(None if nxt == ("No.", False) else nxt)

    def _apply_sort(self, sort) -> None:
        self.sort = sort
        self.table.sort = self.sort
        self.table._col_cache.clear()
        self._dirty = True
        self.refresh_now()

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
        if not self.capture_path:
            if self.live_frames is not None:   # from the live ring's files, in a worker
                self.push_screen(DetailScreen(row.frame, summary))
                self.load_detail(row.frame)
                return
            note = ("the dissection needs a capture file (-r FILE) or a live capture that keeps its frames; "
                    "this source keeps none")
            self.push_screen(DetailScreen(row.frame, summary, note=note))
            return
        # a warm tshark answers in a few ms: build the tree right away (no loading state, no worker
        # round trip); anything slower goes to the worker
        layers = None
        if self.dissector is not None and self.dissector.ready:
            t0 = time.perf_counter()
            try:
                layers = self.dissector.dissect(row.frame, timeout=0.2, only_if_ready=True)
                raw = self.index.packet_bytes(row.frame) if layers is not None else b""
            except Exception:
                layers = None
        if layers is not None:
            self.push_screen(DetailScreen(row.frame, summary, layers=layers, raw=raw,
                                          seconds=time.perf_counter() - t0))
        else:
            self.push_screen(DetailScreen(row.frame, summary))
            self.load_detail(row.frame)

    def _wait_index(self, timeout: float = 60.0):
        """The frame index, waiting (in a worker) while it is being built."""
        end = time.monotonic() + timeout
        if not self.capture_path:
            raise RuntimeError("this needs a capture file (-r FILE); a live capture's ring is read frame by frame")
        while self.index is None:
            if self.index_error is not None:
                raise RuntimeError(f"cannot index the capture file: {self.index_error}")
            if time.monotonic() > end or get_current_worker().is_cancelled:
                raise RuntimeError("the capture file is still being indexed; try again")
            time.sleep(0.02)
        return self.index

    def _why(self, row) -> str:
        """The per-packet "why" (gradient x input over feature groups) when the model input was kept."""
        x = self.rows.features(row.gid)
        if x is None:
            return ""
        try:
            if self._explainer is None:
                from iotwatch.detector.explain import Explainer

                self._explainer = Explainer(self.session.classifier)
            from iotwatch.detector.explain import format_why, vote_note

            text = "\n" + format_why(self._explainer.explain(x, row.predicted), self.class_names[row.predicted])
            own = self.session.classifier.predict_proba(np.asarray(x, dtype=np.float32)[None])[0]
            note = vote_note(own, row.predicted, self.class_names)   # the flow vote decided: say so
            return text + ("\n" + note if note else "")
        except (AttributeError, KeyError, ValueError, TypeError):   # a model without inspectable weights
            return ""

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False, description="dissect frame")
    def load_detail(self, frame: int) -> None:
        """One frame through the index: a one-frame stream to tshark -T pdml (the cost does not
        depend on the file's size) and its bytes."""
        t0 = time.perf_counter()
        if self.live_frames is not None:
            from iotwatch.tui.ring import NotKept

            try:
                layers = self.live_frames.dissect(frame)
                raw = self.live_frames.packet_bytes(frame)
            except NotKept as e:   # fell out of the ring: one line
                self.post_message(DetailFailed(frame, str(e)))
            except Exception as e:
                self.post_message(DetailFailed(frame, one_line(f"cannot dissect frame {frame}: {e}")))
            else:
                self.post_message(DetailLoaded(frame, layers, raw, time.perf_counter() - t0))
            return
        try:
            index = self._wait_index()
            try:
                layers = self.dissector.dissect(frame)
            except Exception:   # the long-running tshark broke: a one-shot run (slower, same tree)
                layers = index.dissect(frame)
            raw = index.packet_bytes(frame)
        except Exception as e:  # missing tshark, file gone, frame not found: one line in the modal
            self.post_message(DetailFailed(frame, f"cannot dissect frame {frame}: {e}"))
        else:
            self.post_message(DetailLoaded(frame, layers, raw, time.perf_counter() - t0))

    def follow_stream(self, frame: int) -> None:
        self.notify(f"following the conversation of frame {frame} (tshark reads the whole file) …", timeout=3)
        self.run_follow(frame)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False, description="follow stream")
    def run_follow(self, frame: int) -> None:
        try:
            index = self._wait_index()
            p = index.read([frame])
            if p["tcp_srcport"][0] >= 0:
                proto, sport, dport = "tcp", int(p["tcp_srcport"][0]), int(p["tcp_dstport"][0])
            elif p["udp_srcport"][0] >= 0:
                proto, sport, dport = "udp", int(p["udp_srcport"][0]), int(p["udp_dstport"][0])
            else:
                raise ValueError("not a TCP or UDP frame")

            def ep(host: str, port: int) -> str:
                return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

            src, dst = str(p["ip_src"][0]), str(p["ip_dst"][0])
            text = index.follow(proto, ep(src, sport), ep(dst, dport))
            title = f"Follow {proto.upper()} stream {ep(src, sport)} ⇄ {ep(dst, dport)}"
        except Exception as e:
            self.post_message(StreamFollowed(frame, "Follow stream", f"cannot follow frame {frame}: {e}"))
        else:
            self.post_message(StreamFollowed(frame, title, text))

    def on_stream_followed(self, message: StreamFollowed) -> None:
        self.push_screen(StreamScreen(message.title, message.text))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.frame == message.frame:
            screen.show_layers(message.layers, message.raw, message.seconds)

    def on_detail_failed(self, message: DetailFailed) -> None:
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.frame == message.frame:
            screen.show_error(message.reason)


def _lower_priority(delta: int) -> None:
    """Raise the calling thread's niceness by ``delta`` (Linux: per thread; processes it starts
    inherit it). Best effort: nothing happens where the OS does not allow it."""
    if not delta:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + delta))
    except (OSError, AttributeError):
        pass


def _niced(delta: int, fn: Callable[[], object], name: str = "iotwatch-niced"):
    """``fn()`` in a thread of its own with its niceness raised by ``delta`` (the worker pool's threads
    are reused, and an unprivileged process cannot lower a niceness again); returns its result or
    raises its exception."""
    out: dict = {}

    def body() -> None:
        _lower_priority(delta)
        try:
            out["value"] = fn()
        except BaseException as e:   # handed to the caller
            out["error"] = e

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def make_app(cfg: RunConfig, classifier, labels=None, *, source_factory: Callable[[], object] | None = None,
             tick: float = 0.25, view_cap: int = 50_000, batch_rows: int = 2048,
             clock: Callable[[], float] = time.monotonic, app_class: type[IotWatchApp] = IotWatchApp) -> IotWatchApp:
    """Build the app for a run configuration and a classifier (tests inject a fake ``source_factory``
    and a tiny classifier; ``clock`` fixes rates for snapshots)."""
    session = CaptureSession(cfg, classifier, labels, source_factory=source_factory, batch_rows=batch_rows)
    return app_class(session, tick=tick, view_cap=view_cap, clock=clock)


def build_app(cfg: RunConfig, app_class: type[IotWatchApp] = IotWatchApp) -> IotWatchApp:
    """Check the outputs and the capture file, load the model and labels, and build the app for a
    validated ``RunConfig`` (user errors raise ``IotwatchError`` before the screen switches)."""
    from iotwatch.captures.tshark import source as tshark_source  # noqa: F401  (import the capture layer now, not while the UI starts)
    from iotwatch.captures.tshark.preflight import check_capture_file

    cfg.outputs.check(cfg.inputs())
    if cfg.source.read:
        check_capture_file(cfg.source.read)
    classifier = cfg.load_classifier()
    labels = cfg.source.load_labels(list(classifier.classes_))
    return make_app(cfg, classifier, labels, app_class=app_class, view_cap=_view_rows())


def _view_rows() -> int:
    """Rows the table holds in memory (50,000; the environment variable IOTWATCH_VIEW_ROWS, for tests
    in a real terminal, makes rows beyond it come back from the file or the live ring sooner)."""
    try:
        return max(1000, int(os.environ.get("IOTWATCH_VIEW_ROWS", "50000")))
    except ValueError:
        return 50_000


def run_tui(cfg: RunConfig) -> int:
    """Run the TUI for a validated ``RunConfig``; returns the CLI exit code (terminal restored).
    Errors the source finds once running arrive as ``CaptureFailed`` and end up in the exit code
    and one line on stderr."""
    app = build_app(cfg)
    result = app.run()
    # the worker was cancelled on quit: let it close the source and write the outputs
    app.session.done.wait(timeout=15)
    code = app.return_code if app.return_code is not None else (result or 0)
    return int(code or 0)
