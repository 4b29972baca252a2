"""Terminal input: the Escape key without Textual's 100 ms wait.

A terminal sends the Escape key as one ESC byte, and the start of every other special key (arrows,
Home, F-keys, ...) as ESC followed by more bytes. Textual's input parser tells them apart by waiting
``textual.constants.ESCAPE_DELAY`` (env ``ESCDELAY`` in ms, default 100) for a next byte, and its
Linux driver only looks at that deadline when its input loop wakes up, which without further input
is after the ``select`` timeout of 0.1 s: a lone Escape press was reported 100-200 ms late whatever
``ESCDELAY`` said.

iotwatch uses ``ESCAPE_DELAY_MS`` instead, and ``EscapeDriver`` waits on the terminal only until
the parser's deadline, so Escape is reported that many milliseconds after the byte arrives.

Why 25 ms: the bytes of one key's sequence are written by the terminal (or by tmux/screen, which
resolve escapes themselves and forward whole sequences) in one ``write``, and over SSH they travel
in one packet, so a sequence split across reads is the exception (a loaded machine, a busy serial
line). 25 ms is 2.5x tmux's default ``escape-time`` (10 ms since tmux 3.5, which decides the same
question on the same bytes) and half of Neovim's ``ttimeoutlen`` (50 ms); a split sequence that
comes later than that reads as Escape plus the remaining characters -- set ``ESCDELAY`` (ms, as
for ncurses programs) on such a link, e.g. ``ESCDELAY=100`` for Textual's own default. A valid
``ESCDELAY`` in the environment always wins.
"""
from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from typing import Mapping

from textual import constants
from textual._loop import loop_last
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

ESCAPE_DELAY_MS = 25
IDLE_WAIT = 0.1     # s: the input loop's wait without a pending escape sequence (Textual's)


def escape_delay_ms(environ: Mapping[str, str] = os.environ) -> int:
    """The escape delay in ms: ``ESCDELAY`` when it is a whole number (at least 1, as Textual
    reads it), else ``ESCAPE_DELAY_MS``."""
    try:
        return max(1, int(environ["ESCDELAY"]))
    except (KeyError, ValueError):
        return ESCAPE_DELAY_MS


def apply_escape_delay(environ: Mapping[str, str] = os.environ) -> float:
    """Set Textual's escape delay (read by its parser at every ESC) for this process; returns it in s."""
    constants.ESCAPE_DELAY = escape_delay_ms(environ) / 1000.0
    return constants.ESCAPE_DELAY


def input_wait(parser: XTermParser, now: float) -> float:
    """How long the input loop may wait for the terminal: until the parser's pending escape
    deadline (``Parser._timeout_time``, set when it awaits the byte after an ESC), else IDLE_WAIT."""
    deadline = getattr(parser, "_timeout_time", None)
    if deadline is None:
        return IDLE_WAIT
    return min(IDLE_WAIT, max(0.0, deadline - now))


class EscapeDriver(LinuxDriver):
    """Textual's Linux driver whose input loop wakes up at the escape deadline (see module doc)."""

    def __init__(self, *args, **kwargs) -> None:
        apply_escape_delay()
        super().__init__(*args, **kwargs)

    def run_input_thread(self) -> None:
        """Textual 8's ``LinuxDriver.run_input_thread``, with ``input_wait`` as the select timeout."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        try:
            read_input(self.fileno, selector, self.process_message, self.exit_event.is_set, XTermParser(self._debug))
        finally:
            selector.close()


def read_input(fileno: int, selector, process, stop, parser: XTermParser) -> None:
    """Feed the bytes of ``fileno`` to ``parser`` and its events to ``process`` until ``stop()``."""
    feed, tick = parser.feed, parser.tick
    decode = getincrementaldecoder("utf-8")().decode

    def events(selector_events, final: bool = False) -> None:
        for last, (_key, mask) in loop_last(selector_events):
            if mask & selectors.EVENT_READ:
                data = decode(os.read(fileno, 1024 * 4), final=final and last)
                if not data:
                    break   # stdin is a pipe at its end
                for event in feed(data):
                    process(event)
        for event in tick():
            process(event)

    try:
        while not stop():
            events(selector.select(input_wait(parser, get_time())))
        selector.unregister(fileno)
        events(selector.select(IDLE_WAIT), final=True)
    finally:
        try:
            for _ in feed(""):
                pass
        except (EOFError, ParseError):
            pass
