"""The tshark version, asked once per executable (``tshark -v``), for the few field names that
changed between releases. Wireshark 4.2 renamed the column fields to lower case: the Info column is
``_ws.col.Info`` up to 4.0 and ``_ws.col.info`` from 4.2 on (an unknown ``-e`` field makes tshark
refuse to start, so the name must match the installed tshark)."""
from __future__ import annotations

import functools
import re
import subprocess

INFO_OLD, INFO_NEW = "_ws.col.Info", "_ws.col.info"


@functools.lru_cache(maxsize=8)
def tshark_version(tshark: str) -> tuple[int, int]:
    """(major, minor) of ``tshark``; (0, 0) when it cannot be asked (the caller's own run will fail
    with tshark's message then)."""
    try:
        out = subprocess.run([tshark, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def field_name(name: str, tshark: str) -> str:
    """``name`` as the installed ``tshark`` spells it."""
    if name == INFO_OLD and tshark_version(tshark) >= (4, 2):
        return INFO_NEW
    return name
