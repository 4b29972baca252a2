"""Opening input files safely (issue 16): an input must be a regular file before anything opens it.

``open()`` on a FIFO blocks forever and ``/dev/zero`` never ends, so every path the user names as an
input (label file, model bundle) is ``stat``-ed first and refused unless it is a regular file.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import InputError

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is ("a FIFO", "a folder", ...)."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def require_regular_input(path, what: str, hint: str = "check the path") -> os.stat_result:
    """``stat`` an input (following links) and refuse anything but a regular file; returns the stat."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist", hint=hint) from None
    except OSError as e:
        raise InputError(f"cannot read {what} {p}: {e.strerror}") from None
    kind = file_kind(st.st_mode)
    if kind:
        raise InputError(f"{what} {p} is {kind}, not a regular file", hint="pass a regular file")
    return st
