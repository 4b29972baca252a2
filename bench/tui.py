"""The TUI's cost over headless, and its key-press latency while a replay is running.

    .venv/bin/python bench/tui.py [FILE] [--model BUNDLE] [--repeat N] [--size 120x40]

FILE defaults to the bundled demo capture. For each of ``--repeat`` rounds:
  1. ``iotwatch -r FILE --headless`` in-process (``run_headless``), wall time;
  2. the same capture through the Textual app at max speed (``build_app`` + ``run_test``, headless
     Textual, real tshark source and classifier), wall time from loading the model to the
     ``CaptureFinished`` message, both measured the same way (model load included);
  3. in separate runs of (2), once the first rows are on screen, a key (``a``, the anomaly filter)
     is pressed every ``--key-every`` seconds until the capture ends; the latency is the time from
     posting the key to the end of its action (which also rebuilds the filtered view), measured in
     the app. A capture that fits in one batch (8192 packets) ends before any key lands: use a
     larger FILE (``iotwatch simulate --duration 60s``) for this figure.
Prints best wall times, CPU seconds of this process (less sensitive to other load), key latency
median/p95/max (target < 100 ms) and, last, ``ratio=<tui/headless>`` of wall times (target <= 1.2).
Both runs must count the same packets (checked; exit 1 otherwise).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from iotwatch.headless import run_headless
from iotwatch.detector.config import OutputConfig, RunConfig, SourceConfig
from iotwatch.options import demo_capture
from iotwatch.tui.app import IotWatchApp, build_app


def time_headless(cfg: RunConfig) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this process (all threads), packets."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, outputs=OutputConfig(report=str(Path(tmp) / "report.json")))
        t0, c0 = time.perf_counter(), time.process_time()
        run_headless(cfg, out=io.StringIO())
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        return elapsed, cpu, json.loads(Path(cfg.outputs.report).read_text())["packets"]


class _Timed(IotWatchApp):
    """The app with a timestamp when the end of capture is handled and per-key action timings."""

    finished_at: float | None = None
    key_latencies: list[float]

    def on_capture_finished(self, message) -> None:
        super().on_capture_finished(message)
        self.finished_at = time.perf_counter()

    def action_toggle_anomalies(self) -> None:
        super().action_toggle_anomalies()
        sent = getattr(self, "_key_sent", None)
        if sent is not None:
            self.key_latencies.append(time.perf_counter() - sent)
            self._key_sent = None


async def time_tui(cfg: RunConfig, size: tuple[int, int],
                   key_every: float | None) -> tuple[float, float, int, list[float]]:
    """Wall and CPU seconds to the end of capture, packets, key latencies (with ``key_every``, ``a``
    is pressed that often once rows are on screen)."""
    t0, c0 = time.perf_counter(), time.process_time()
    app = build_app(cfg, _Timed)   # exactly what run_tui does before app.run()
    app.key_latencies = []
    async with app.run_test(size=size) as pilot:
        while app.finished_at is None:
            await asyncio.sleep(key_every or 0.01)
            # press once rows are on screen (the one-time start-up work, first paint and first batch, is over)
            if key_every and app.rows.added and app.finished_at is None:
                app._key_sent = time.perf_counter()
                await pilot.press("a")
            if app.state == "failed":
                raise SystemExit(f"capture failed: {app.error}")
        elapsed, cpu = app.finished_at - t0, time.process_time() - c0
        packets = app.session.totals.packets
        await pilot.press("q")
    return elapsed, cpu, packets, app.key_latencies


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(demo_capture()))
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--key-every", type=float, default=0.05, help="seconds between key presses during the replay")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    cfg = RunConfig(source=SourceConfig(read=args.file), model=args.model)
    heads, tuis, head_cpu, tui_cpu, lat = [], [], [], [], []
    packets = None
    for _ in range(args.repeat):
        t_head, c_head, n_head = time_headless(dataclasses.replace(cfg, headless=True))
        t, c, n, _ = asyncio.run(time_tui(cfg, (w, h), None))
        if n != n_head:
            print(f"error: headless counted {n_head:,} packets, the app {n:,}", file=sys.stderr)
            return 1
        heads.append(t_head)
        tuis.append(t)
        head_cpu.append(c_head)
        tui_cpu.append(c)
        packets = n
    for _ in range(args.repeat):   # key latency in separate runs, so the presses do not weigh on the ratio
        lat += asyncio.run(time_tui(cfg, (w, h), args.key_every))[3]
    head, tui = min(heads), min(tuis)
    print(f"capture {args.file}: {packets:,} packets")
    print(f"headless  best {head:.3f} s  ({packets / head:,.0f} pkt/s)  runs {', '.join(f'{x:.3f}' for x in heads)}")
    print(f"tui       best {tui:.3f} s  ({packets / tui:,.0f} pkt/s)  runs {', '.join(f'{x:.3f}' for x in tuis)}")
    if lat:
        lat_ms = sorted(x * 1000 for x in lat)
        p95 = lat_ms[min(len(lat_ms) - 1, int(0.95 * len(lat_ms)))]
        print(f"key latency during replay: n={len(lat_ms)} median {statistics.median(lat_ms):.1f} ms "
              f"p95 {p95:.1f} ms max {lat_ms[-1]:.1f} ms (target < 100 ms)")
    else:
        print("key latency during replay: no key landed before the replay ended (use a longer capture)")
    print(f"cpu (this process, all threads; tshark excluded): headless {min(head_cpu):.3f} s, "
          f"tui {min(tui_cpu):.3f} s, cpu_ratio={min(tui_cpu) / min(head_cpu):.3f} (less sensitive to machine load)")
    print(f"ratio={tui / head:.3f} (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
