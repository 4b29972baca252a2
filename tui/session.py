"""The TUI's monitoring run: the shared ``MonitorRun`` plus replay pacing and pause (no Textual here).

``CaptureSession.run`` is called by the app's capture worker thread; everything about counting,
outputs, ``-c``/``-a`` and the report is ``iotwatch.detector.run.MonitorRun`` (the same loop the
headless runner uses). This class adds what only a screen needs: replays paced by packet
timestamps (max / 1x / 10x), pause (a replay blocks; a live capture keeps counting), and
consistent snapshots of the totals for the UI tick. Each counted (sub-)batch goes to ``on_batch``;
the app decides whether the screen can take it.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from iotwatch.detector.config import RunConfig
from iotwatch.detector.pipeline import ClassifiedBatch
from iotwatch.detector.run import MonitorRun

SPEEDS = ("max", "1x", "10x")
_FACTOR = {"1x": 1.0, "10x": 10.0}
PACE_SLICE = 0.05  # seconds of wall time per paced slice


class CaptureSession(MonitorRun):
    """Counts, outputs and pacing for one run. Thread-safe reads of ``totals`` go through ``lock``."""

    def __init__(self, config: RunConfig, classifier, labels=None, **run_options):
        super().__init__(config, classifier, labels, **run_options)
        self.speed = config.speed if config.speed in SPEEDS else "max"
        self.running = threading.Event()   # cleared = paused
        self.running.set()
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

    def pieces(self, cb: ClassifiedBatch, cancelled: Callable[[], bool]):
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
                yield cb.slice(start, n)
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
            yield cb.slice(start, stop)
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
