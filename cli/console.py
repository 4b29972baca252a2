"""The rich Console every command prints with: a reader that closes stdout early (``iotwatch ... | head -1``)
ends the command quietly instead of rich's own exit 1 (which means "anomalies found" here)."""
from __future__ import annotations

import os
import sys

from rich.console import Console


def silence_stdout() -> None:
    """Point stdout at /dev/null so nothing more (not even the interpreter's final flush) hits the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class QuietConsole(Console):
    def on_broken_pipe(self) -> None:  # rich: SystemExit(1); here: BrokenPipeError, which main() ends with exit 0
        self.quiet = True
        silence_stdout()
        raise BrokenPipeError


def console(**kw) -> Console:
    kw.setdefault("highlight", False)
    kw.setdefault("soft_wrap", True)
    return QuietConsole(**kw)
