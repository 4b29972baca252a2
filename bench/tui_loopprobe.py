"""Where is the TUI's event loop blocked? Run iotwatch with a loop-lag probe (used by
``bench/tui_latency.py probe``; also runnable by hand inside a terminal):

    .venv/bin/python bench/tui_loopprobe.py OUT.txt -- -r FILE --speed max

A probe thread asks the app's asyncio loop to run a no-op every 5 ms (``call_soon_threadsafe``)
and records how late it ran (the lag a key press would see on top of its own handling). Every
2 ms it also samples the stacks of the UI thread and of the capture thread (``sys._current_frames``;
a gap between samples means some thread held the GIL in C code). When the quit key ends the app,
OUT.txt gets the lag percentiles and, for every stall over 40 ms, what the UI thread and the capture
thread were doing meanwhile (the functions seen most often in the samples taken during the stall).
"""
from __future__ import annotations

import asyncio
import collections
import os
import statistics
import sys
import threading
import time
import traceback

STALL_MS = 40.0
PROFILE = bool(os.environ.get("IOTWATCH_PROBE_PROFILE"))
# profile (UI thread CPU) only from an incident key's handler to the first frame written after it
SPANS = bool(os.environ.get("IOTWATCH_PROBE_SPANS"))


def _where(frame, depth: int = 6) -> str:
    out = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        out.append(f"{code.co_filename.rsplit('/', 2)[-1]}:{code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return " < ".join(out)


class Probe:
    def __init__(self, loop: asyncio.AbstractEventLoop, ui_ident: int):
        self.loop = loop
        self.ui = ui_ident
        self.lags: list[tuple[float, float]] = []          # (sent, lag s)
        self.samples: collections.deque = collections.deque(maxlen=200_000)   # (t, ui where, other threads)
        self.gaps: list[tuple[float, float]] = []          # probe thread starved of the GIL (t, s)
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._lag, daemon=True, name="probe-lag").start()
        threading.Thread(target=self._sample, daemon=True, name="probe-sample").start()

    def _lag(self) -> None:
        while not self.stop.is_set():
            sent = time.perf_counter()
            done = threading.Event()

            def ping(sent=sent, done=done):
                self.lags.append((sent, time.perf_counter() - sent))
                done.set()

            try:
                self.loop.call_soon_threadsafe(ping)
            except RuntimeError:
                return
            done.wait(5)
            time.sleep(0.005)

    def _sample(self) -> None:
        me = threading.get_ident()
        names = {}
        last = time.perf_counter()
        while not self.stop.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            if now - last > 0.02:
                self.gaps.append((last, now - last))
            last = now
            frames = sys._current_frames()
            ui = _where(frames.get(self.ui)) if self.ui in frames else "?"
            others = []
            for ident, fr in frames.items():
                if ident in (self.ui, me):
                    continue
                if ident not in names:
                    names = {t.ident: t.name for t in threading.enumerate()}
                name = names.get(ident, "?")
                if name.startswith("probe"):
                    continue
                others.append(f"[{name}] {_where(fr, 7)}")
            self.samples.append((now, ui, others))

    def report(self) -> str:
        lags = sorted(l * 1000 for _, l in self.lags)
        if not lags:
            return "no lag samples\n"
        q = lambda p: lags[min(len(lags) - 1, int(p * (len(lags) - 1)))]
        out = [f"loop lag over {len(lags)} pings: median {statistics.median(lags):.1f} ms p95 {q(0.95):.1f} "
               f"p99 {q(0.99):.1f} max {lags[-1]:.1f} ms; stalls > {STALL_MS:.0f} ms: "
               f"{sum(1 for x in lags if x > STALL_MS)}; probe GIL gaps > 20 ms: {len(self.gaps)} "
               f"(max {max((g for _, g in self.gaps), default=0) * 1000:.0f} ms)"]
        samples = list(self.samples)
        ts = [s[0] for s in samples]
        import bisect

        idle = ("threading.py:wait", "queue.py:get", "selectors.py:select", "thread.py:_worker",
                "process.py:_read_stderr", "threading.py:_wait_for_tstate_lock")
        busy = lambda others: [o for o in others if not o.split("] ", 1)[-1].startswith(idle)]
        out.append("\nprobe starved of the GIL (busy threads in the samples just before / after):")
        for t, g in sorted(self.gaps, key=lambda x: -x[1])[:12]:
            k = bisect.bisect_left(ts, t)
            before = busy(samples[k - 1][2]) if k > 0 else []
            after = busy(samples[k][2]) if k < len(samples) else []
            out.append(f"  gap {g * 1000:.0f} ms at +{t - ts[0]:.2f} s")
            for o in before:
                out.append(f"     before {o}")
            for o in after:
                out.append(f"     after  {o}")

        for sent, lag in sorted(self.lags, key=lambda x: -x[1])[:25]:
            if lag * 1000 < STALL_MS:
                break
            a, b = bisect.bisect_left(ts, sent), bisect.bisect_right(ts, sent + lag)
            ui = collections.Counter(s[1] for s in samples[a:b])
            gaps = [g for t, g in self.gaps if sent <= t <= sent + lag]
            out.append(f"\n-- stall {lag * 1000:.0f} ms at +{sent - ts[0] if ts else 0:.2f} s, {b - a} samples, "
                       f"GIL gaps {[round(g * 1000) for g in gaps]}")
            for where, n in ui.most_common(4):
                out.append(f"   ui  {n:3d}  {where}")
            for where, n in collections.Counter(o for s in samples[a:b] for o in busy(s[2])).most_common(4):
                out.append(f"   oth {n:3d}  {where}")
        return "\n".join(out) + "\n"


TIMED = [
    ("iotwatch.tui.app", "IotWatchApp", "refresh_screen"),
    ("iotwatch.tui.widgets.class_counters", "ClassCounters", "show"),
    ("iotwatch.tui.widgets.confusion", "ConfusionSummary", "show"),
    ("iotwatch.tui.widgets.incidents", "IncidentsPane", "show"),
    ("iotwatch.tui.widgets.packet_table", "PacketTable", "set_view"),
    ("iotwatch.tui.widgets.packet_table", "PacketTable", "render_line"),
    ("iotwatch.tui.widgets.status_bar", "StatusBar", "show"),
    ("textual.screen", "Screen", "_compositor_refresh"),
    ("textual.screen", "Screen", "_refresh_layout"),
    ("textual.app", "App", "_display"),
    ("textual.widget", "Widget", "_render"),
]


def _wrap_timed() -> dict:
    """Wall time of each call of the functions in TIMED made on the UI thread."""
    import importlib

    ui = threading.get_ident()
    stats: dict = {}
    for mod, cls, name in TIMED:
        try:
            klass = getattr(importlib.import_module(mod), cls)
            fn = getattr(klass, name)
        except (ImportError, AttributeError):
            continue
        key = f"{cls}.{name}"
        stats[key] = []

        def wrapper(*a, __fn=fn, __key=key, **k):
            if threading.get_ident() != ui:
                return __fn(*a, **k)
            t0 = time.perf_counter()
            try:
                return __fn(*a, **k)
            finally:
                stats[__key].append(time.perf_counter() - t0)

        setattr(klass, name, wrapper)
    return stats


def _wrap_layout() -> collections.Counter:
    """Who asks for layout passes (widget.refresh(layout=True)) on the UI thread."""
    from textual.widget import Widget

    seen: collections.Counter = collections.Counter()
    orig = Widget.refresh

    def refresh(self, *regions, repaint=True, layout=False, recompose=False):
        if layout:
            seen[f"{type(self).__name__} <- {_where(sys._getframe(1), 3)}"] += 1
        return orig(self, *regions, repaint=repaint, layout=layout, recompose=recompose)

    Widget.refresh = refresh
    return seen


TIMELINE: dict = {"key": [], "action": [], "display": []}


def _wrap_timeline() -> None:
    """perf_counter stamps (CLOCK_MONOTONIC, comparable with the driving process): a key parsed by
    the input thread, the 'a' action run on the UI thread, each frame handed to the writer."""
    from textual import events
    from textual.app import App
    from textual.drivers.linux_driver import LinuxDriver
    from iotwatch.tui.app import IotWatchApp

    orig_pm = LinuxDriver.process_message

    def process_message(self, message):
        if isinstance(message, events.Key):
            TIMELINE["key"].append(time.perf_counter())
        return orig_pm(self, message)

    LinuxDriver.process_message = process_message
    orig_a = IotWatchApp.action_toggle_anomalies

    def action(self):
        TIMELINE["action"].append(time.perf_counter())
        return orig_a(self)

    IotWatchApp.action_toggle_anomalies = action
    orig_d = App._display

    def display(self, *a, **k):
        try:
            return orig_d(self, *a, **k)
        finally:
            TIMELINE["display"].append(time.perf_counter())

    App._display = display
    from textual.drivers._writer_thread import WriterThread

    orig_w = WriterThread.write

    def write(self, text):
        TIMELINE.setdefault("writes", []).append((time.perf_counter(), len(text)))
        return orig_w(self, text)

    WriterThread.write = write

    def run(self):
        write, flush, get, qsize = self._file.write, self._file.flush, self._queue.get, self._queue.qsize
        flushed = TIMELINE.setdefault("flushed", [])
        while True:
            text = get()
            if text is None:
                break
            write(text)
            if qsize() == 0:
                flush()
                flushed.append(time.perf_counter())
        flush()

    WriterThread.run = run
    import gc

    started: dict = {}

    def on_gc(phase, info):
        if phase == "start":
            started["t0"] = time.perf_counter()
        elif "t0" in started:
            t0 = started.pop("t0")
            TIMELINE.setdefault("gc", []).append((t0, time.perf_counter() - t0, info["generation"],
                                                  info.get("collected", 0)))

    gc.callbacks.append(on_gc)


class Spans:
    """cProfile of the UI thread from the start of an incident handler (open the modal, jump,
    filter, close) to the end of the first ``App._display`` after it: what one such key costs,
    summed over every press; plus each span's wall time."""

    def __init__(self) -> None:
        import cProfile

        self.prof = cProfile.Profile(time.perf_counter)
        self.active: tuple[str, float] | None = None
        self.walls: dict[str, list[float]] = collections.defaultdict(list)

    def start(self, name: str) -> None:
        if self.active is None:
            self.active = (name, time.perf_counter())
            self.prof.enable()

    def display_done(self) -> None:
        if self.active is not None:
            self.prof.disable()
            name, t0 = self.active
            self.walls[name].append(time.perf_counter() - t0)
            self.active = None

    def report(self) -> str:
        import io
        import pstats

        out = ["\nincident spans (handler start -> first frame written), wall ms: name n median max"]
        for name, xs in self.walls.items():
            ms = sorted(x * 1000 for x in xs)
            out.append(f"  {name:10s} {len(ms):4d} {statistics.median(ms):7.1f} {ms[-1]:7.1f}")
        buf = io.StringIO()
        try:
            st = pstats.Stats(self.prof, stream=buf)
        except TypeError:   # nothing profiled
            return "\n".join(out) + "\n"
        st.sort_stats("cumulative").print_stats(70)
        st.sort_stats("tottime").print_stats(40)
        return "\n".join(out) + "\nprofile of the spans (wall):\n" + buf.getvalue()


def _wrap_spans(spans: Spans) -> None:
    from textual.app import App
    from iotwatch.tui.app import IotWatchApp

    def wrap(klass, name, label):
        orig = getattr(klass, name)

        def f(self, *a, **k):
            spans.start(label(a) if callable(label) else label)
            return orig(self, *a, **k)

        setattr(klass, name, f)

    from iotwatch.tui.widgets.incidents import IncidentsPane

    wrap(IncidentsPane, "_chosen", lambda a: f"pane-{a[0]}")   # (the @on handler itself cannot be wrapped)
    wrap(IotWatchApp, "incident_action", lambda a: f"modal-{a[1]}")
    from iotwatch.tui.widgets import incidents

    view = getattr(incidents, "IncidentView", None) or getattr(incidents, "IncidentScreen")
    wrap(view, "action_close" if hasattr(view, "action_close") else "action_dismiss",
         lambda a: f"close-{a[0] if a else None}")
    wrap(IotWatchApp, "action_toggle_anomalies", "key-a")
    orig_d = App._display

    def display(self, *a, **k):
        try:
            return orig_d(self, *a, **k)
        finally:
            spans.display_done()

    App._display = display


def _timed_report(stats: dict) -> str:
    out = ["\ncalls on the UI thread (wall ms, GIL waits included): name n total median p95 max"]
    for key, xs in sorted(stats.items(), key=lambda kv: -sum(kv[1])):
        if not xs:
            continue
        ms = sorted(x * 1000 for x in xs)
        out.append(f"  {key:36s} {len(ms):6d} {sum(ms):9.0f} {statistics.median(ms):7.2f} "
                   f"{ms[int(0.95 * (len(ms) - 1))]:7.2f} {ms[-1]:7.1f}")
    return "\n".join(out) + "\n"


def main() -> int:
    out = sys.argv[1]
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[2:]
    from iotwatch.tui import app as tui_app

    holder: dict = {}
    orig = tui_app.IotWatchApp.on_mount

    def on_mount(self):
        probe = Probe(asyncio.get_running_loop(), threading.get_ident())
        holder["probe"] = probe
        probe.start()
        if PROFILE:
            import cProfile

            holder["prof"] = prof = cProfile.Profile(time.thread_time)   # CPU time of the UI thread
            prof.enable()
        return orig(self)

    tui_app.IotWatchApp.on_mount = on_mount
    timed = _wrap_timed()
    layouts = _wrap_layout()
    _wrap_timeline()
    spans = Spans() if SPANS else None
    if spans is not None:
        _wrap_spans(spans)
    from iotwatch.main import main as cli_main

    try:
        code = cli_main(argv)
    finally:
        probe = holder.get("probe")
        if probe is not None:
            probe.stop.set()
            try:
                text = probe.report() + _timed_report(timed) + "\nlayout requests:\n" + "\n".join(
                    f"  {n:5d} {k}" for k, n in layouts.most_common(15)) + "\n"
            except Exception:
                text = traceback.format_exc()
            if spans is not None:
                text += spans.report()
            with open(out, "w") as fh:
                fh.write(text)
            import json

            with open(out + ".timeline.json", "w") as fh:
                json.dump(TIMELINE, fh)
            prof = holder.get("prof")
            if prof is not None:
                prof.disable()
                import io
                import pstats

                buf = io.StringIO()
                st = pstats.Stats(prof, stream=buf)
                st.sort_stats("cumulative").print_stats(60)
                st.sort_stats("tottime").print_stats(40)
                with open(out, "a") as fh:
                    fh.write("\nUI thread CPU profile (thread_time):\n" + buf.getvalue())
    return code


if __name__ == "__main__":
    sys.exit(main())
