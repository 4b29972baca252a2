"""A whole capture as lines of tshark fields, for the offline tools (the lab's labelling and cases);
the monitor itself reads captures through ``source.py``."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from ..errors import EnvironmentProblem, InputError


def fields_lines(capture: str | Path, fields: Sequence[str], display_filter: str | None = None,
                 tshark: str = "tshark", timeout: float = 600) -> list[str]:
    """``tshark -n -r CAPTURE [-Y FILTER] -T fields`` with ``fields`` (tab-separated, first occurrence
    of each), one line a frame; InputError when tshark cannot read the file."""
    argv = [tshark, "-n", "-r", str(capture)]
    if display_filter:
        argv += ["-Y", display_filter]
    argv += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in fields:
        argv += ["-e", f]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise EnvironmentProblem("tshark not found", hint="install it: apt-get install tshark") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"tshark cannot read {capture}: {last}")
    return [line for line in proc.stdout.splitlines() if line.strip()]
