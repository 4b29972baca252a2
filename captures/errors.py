"""Errors that reach the user as one clear line and a documented exit code (CONTRACT §3).

Every layer raises these instead of letting a traceback escape:
  exit 2 -> ``InputError``       usage or input error (file, filter, interface, labels, model)
  exit 3 -> ``EnvironmentProblem`` tshark/dumpcap missing, no capture permission, not root
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ANOMALIES = 1  # only with --fail-on anomaly
EXIT_INPUT = 2
EXIT_ENV = 3


class IotwatchError(Exception):
    """Base class: ``str(err)`` is the one line shown to the user (what, where, how to fix)."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, never a traceback
        return one_line(f"{self.message} ({self.hint})" if self.hint else self.message)


MAX_ERROR_CHARS = 400


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` as one printable line of at most ``limit`` characters: newlines, escape codes and
    other control characters (from file names, bundle metadata, label files) become visible escapes,
    and a long message (65 KB of a label line once) is cut with a note of how much was left out."""
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or o in (0x2028, 0x2029):
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"))
        else:
            out.append(ch)
        if len(out) > limit + 1:
            break
    s = "".join(out)
    if len(s) > limit or len(out) > limit:
        s = s[:limit] + f"... ({len(text) - limit:,} more characters)"
    return s


class InputError(IotwatchError):
    """Bad file, filter, interface, label file or model bundle: exit 2."""

    exit_code = EXIT_INPUT


class EnvironmentProblem(IotwatchError):
    """Missing tshark/dumpcap, no capture permission, needs root: exit 3."""

    exit_code = EXIT_ENV
