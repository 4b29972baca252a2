"""The terminal input loop (tui/terminal.py): iotwatch's escape delay is the one Textual's parser
uses, ESCDELAY wins when set, and the loop waits on the terminal no longer than that delay once an
ESC byte is pending (Textual's loop waited 0.1 s whatever the delay), so a lone Escape is reported
without further input, and a whole sequence is still one key. No timing thresholds: the tests
check the waits the loop asks for and the keys it reports."""
from __future__ import annotations

import asyncio
import os
import selectors
import sys

import pytest
from textual import constants, events
from textual._xterm_parser import XTermParser

from iotwatch.tui import terminal
from iotwatch.tui.terminal import ESCAPE_DELAY_MS, IDLE_WAIT, EscapeDriver, apply_escape_delay, escape_delay_ms

from fakes import ReplaySource, run_config
from tui_support import FakeClassifier, make_packets

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the Linux/macOS driver")


@pytest.fixture
def keep_delay(monkeypatch):
    monkeypatch.setattr(constants, "ESCAPE_DELAY", constants.ESCAPE_DELAY)


def test_escdelay_from_the_environment_wins_else_ours():
    assert escape_delay_ms({}) == ESCAPE_DELAY_MS
    assert escape_delay_ms({"ESCDELAY": "80"}) == 80
    assert escape_delay_ms({"ESCDELAY": "0"}) == 1          # Textual's minimum
    assert escape_delay_ms({"ESCDELAY": "soon"}) == ESCAPE_DELAY_MS
    assert ESCAPE_DELAY_MS < 100                             # Textual's default, the wait this removes


def test_the_app_runs_on_the_escape_driver_and_the_driver_applies_the_delay(monkeypatch, keep_delay):
    from iotwatch.tui.app import make_app

    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    monkeypatch.setattr(constants, "DRIVER", None)
    pk = make_packets(50)
    app = make_app(run_config("fake.pcapng"), FakeClassifier(), source_factory=lambda: ReplaySource(pk, "fake.pcapng"))
    assert app.driver_class is EscapeDriver
    monkeypatch.setattr(constants, "ESCAPE_DELAY", 0.1)
    monkeypatch.setenv("ESCDELAY", "37")
    monkeypatch.setattr("signal.signal", lambda *a: None)   # the driver installs SIGTSTP/SIGCONT handlers

    async def build():   # a driver belongs to a running event loop
        return EscapeDriver(app)

    asyncio.run(build())
    assert constants.ESCAPE_DELAY == pytest.approx(0.037)
    monkeypatch.delenv("ESCDELAY")
    apply_escape_delay()
    assert constants.ESCAPE_DELAY == pytest.approx(ESCAPE_DELAY_MS / 1000)


class Recorder:
    """A selector on a pipe that records each wait asked for, and stops the loop once ``until``
    keys were reported (or after ``limit`` waits)."""

    def __init__(self, fd: int, keys: list, until: int, limit: int = 200):
        self.sel = selectors.SelectSelector()
        self.sel.register(fd, selectors.EVENT_READ)
        self.waits: list[float | None] = []
        self.keys, self.until, self.limit = keys, until, limit

    def select(self, timeout=None):
        self.waits.append(timeout)
        return self.sel.select(timeout)

    def unregister(self, fd):
        self.sel.unregister(fd)

    def stop(self) -> bool:
        return len(self.keys) >= self.until or len(self.waits) >= self.limit


def run_loop(data: bytes, until: int, delay_ms: int) -> tuple[list[str], list]:
    constants.ESCAPE_DELAY = delay_ms / 1000
    r, w = os.pipe()
    try:
        os.write(w, data)
        keys: list[str] = []
        rec = Recorder(r, keys, until)
        terminal.read_input(r, rec, lambda m: keys.append(m.key) if isinstance(m, events.Key) else None,
                            rec.stop, XTermParser())
        rec.sel.close()
        return keys, rec.waits
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("delay_ms", [ESCAPE_DELAY_MS, 7, 90])
def test_a_lone_escape_is_reported_after_the_delay_not_the_idle_wait(keep_delay, delay_ms):
    keys, waits = run_loop(b"\x1b", 1, delay_ms)
    assert keys == ["escape"]
    # the first wait: nothing pending; every wait after the ESC arrived until Escape was reported: at
    # most the escape delay (the last one: the loop's final read after it stopped)
    assert waits[0] == IDLE_WAIT and waits[-1] == IDLE_WAIT
    assert len(waits) >= 3 and all(0 <= x <= delay_ms / 1000 for x in waits[1:-1]), waits


def test_whole_sequences_stay_one_key_and_keys_after_escape_come_through(keep_delay):
    keys, _ = run_loop(b"\x1b[Aq", 2, ESCAPE_DELAY_MS)
    assert keys == ["up", "q"]
    keys, waits = run_loop(b"j", 1, ESCAPE_DELAY_MS)
    assert keys == ["j"] and waits == [IDLE_WAIT, IDLE_WAIT]


def test_input_wait_follows_the_parser_deadline():
    p = XTermParser()
    assert terminal.input_wait(p, 5.0) == IDLE_WAIT
    p._timeout_time = 5.02
    assert terminal.input_wait(p, 5.0) == pytest.approx(0.02)
    assert terminal.input_wait(p, 6.0) == 0.0
    p._timeout_time = 9.0
    assert terminal.input_wait(p, 5.0) == IDLE_WAIT
