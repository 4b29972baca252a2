"""The tshark version, asked once per executable (``tshark -v``), for the few field names that
changed between releases. Wireshark 4.2 renamed the column fields to lower case: the Info column is
``_ws.col.Info`` up to 4.0 and ``_ws.col.info`` from 4.2 on (an unknown ``-e`` field makes tshark
refuse to start, so the name must match the installed tshark).

Asking costs a tshark start (~0.2 s, before the capture's own tshark can start), so the answer is kept
on disk per executable (``$XDG_CACHE_HOME/iotwatch/tshark-version.json``, else ``~/.cache/...``), keyed
by its resolved path, inode, size and modification time: an upgraded tshark is asked again. A cache
that cannot be read or written only costs the start; a path that is not a regular file is never
replaced."""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

INFO_OLD, INFO_NEW = "_ws.col.Info", "_ws.col.info"


def cache_path() -> Path:
    """Where the versions of the tshark executables asked so far are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "iotwatch" / "tshark-version.json"


def _identity(tshark: str) -> str | None:
    """The executable's resolved path, inode, size and mtime; None when it cannot be found."""
    found = shutil.which(tshark)
    if found is None:
        return None
    try:
        real = os.path.realpath(found)
        st = os.stat(real)
    except OSError:
        return None
    return f"{real}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"


def _read_cache(path: Path) -> dict:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return {}
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    """Replace the cache file atomically, only if it is absent or a regular file."""
    try:
        if path.exists() or path.is_symlink():
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tshark-version.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # read-only home, full disk: the next run asks tshark again


def _ask(tshark: str) -> tuple[int, int]:
    try:
        out = subprocess.run([tshark, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@functools.lru_cache(maxsize=8)
def tshark_version(tshark: str) -> tuple[int, int]:
    """(major, minor) of ``tshark``; (0, 0) when it cannot be asked (the caller's own run will fail
    with tshark's message then). Kept on disk per executable (module doc)."""
    key = _identity(tshark)
    path = cache_path()
    data = _read_cache(path) if key else {}
    got = data.get(key) if key else None
    if isinstance(got, list) and len(got) == 2 and all(isinstance(v, int) for v in got):
        return (got[0], got[1])
    version = _ask(tshark)
    if key and version != (0, 0):
        data = {k: v for k, v in data.items() if not k.startswith(key.split("|", 1)[0] + "|")}  # the old build
        data[key] = list(version)
        _write_cache(path, data)
    return version


def field_name(name: str, tshark: str) -> str:
    """``name`` as the installed ``tshark`` spells it."""
    if name == INFO_OLD and tshark_version(tshark) >= (4, 2):
        return INFO_NEW
    return name
