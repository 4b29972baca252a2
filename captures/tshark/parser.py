"""tshark ``-T fields`` output -> :class:`PacketBatch`, parsed column-wise.

pyshark's packet objects cost ~0.3x of raw tshark, so tshark prints tab-separated fields
(``args.field_args``) and :class:`FieldsParser` turns them into numpy columns a chunk at a time
(one ``split`` for the whole chunk, one conversion per column): tshark's dissector, not Python,
is the limit. No processes here.
"""
from __future__ import annotations

import numpy as np

from ..batch import PacketBatch
from ..fields import FIELDS, TSHARK_FIELDS


class FieldsParser:
    """Turns complete lines of ``tshark -T fields`` output into a :class:`PacketBatch`.

    ``tshark_fields`` is the ``-e`` order (default ``TSHARK_FIELDS``); each ``Field`` takes the first
    non-empty of its tshark fields. Missing values: -1 (int/hex), NaN (float), "" (str).
    """

    def __init__(self, tshark_fields: tuple[str, ...] = TSHARK_FIELDS):
        self.ncols = len(tshark_fields)
        pos = {t: i for i, t in enumerate(tshark_fields)}
        self._plan = [(f.name, f.kind, [pos[t] for t in f.tshark]) for f in FIELDS]
        self.malformed_lines = 0

    def parse(self, text: str) -> PacketBatch:
        """``text``: zero or more complete lines, each ending in ``\\n``."""
        n = text.count("\n")
        if n == 0:
            return PacketBatch.empty()
        k = self.ncols
        flat = text.replace("\n", "\t").split("\t")
        if len(flat) != n * k + 1:  # a line with the wrong number of columns: re-split line by line
            flat = self._regular(text)
        cols = [flat[j:n * k:k] for j in range(k)]
        out = {}
        for name, kind, idx in self._plan:
            col = cols[idx[0]]
            for j in idx[1:]:  # first non-empty of several tshark fields (ip.src / ipv6.src)
                alt = cols[j]
                if any(alt):
                    col = [a or b for a, b in zip(col, alt)] if any(col) else alt
            out[name] = _convert(col, kind, n)
        return PacketBatch(out)

    def _regular(self, text: str) -> list[str]:
        k = self.ncols
        flat: list[str] = []
        for line in text.split("\n")[:-1]:
            parts = line.split("\t")
            if len(parts) != k:
                self.malformed_lines += 1
                parts = (parts + [""] * k)[:k]
            flat += parts
        flat.append("")
        return flat


def _convert(col: list[str], kind: str, n: int) -> np.ndarray:
    """One column of strings -> numpy with the kind's dtype and missing value."""
    if kind == "str":
        arr = np.empty(n, dtype=object)
        arr[:] = col
        return arr
    if not any(col):
        return np.full(n, np.nan, dtype=np.float64) if kind == "float" else np.full(n, -1, dtype=np.int64)
    if kind == "hex":
        return _hex_column(col, n)
    missing, dtype = (",nan,", np.float64) if kind == "float" else (",-1,", np.int64)
    text = "," + ",".join(col) + ","
    text = text.replace(",,", missing).replace(",,", missing)  # empty fields, also runs of them
    try:  # numpy's C text parser: ~30 ns per value
        arr = np.fromstring(text[1:-1], dtype=dtype, sep=",")
        if len(arr) == n:
            return arr
    except ValueError:
        pass
    # a value that is not a plain number (e.g. "1,2"): keep what parses, missing for the rest
    return np.fromiter((_number_or_missing(v, kind) if v else float(missing[1:-1]) for v in col),
                       dtype=dtype, count=n)


def _hex_column(col: list[str], n: int) -> np.ndarray:
    """tshark prints hex fields zero-padded ("0x0012"): decode them all at once when widths agree."""
    present = np.fromiter(map(bool, col), dtype=bool, count=n)
    m = int(present.sum())
    digits = "".join(col).replace("0x", "")
    width = len(digits) // m
    if len(digits) == m * width and width % 2 == 0 and 0 < width <= 14:
        try:
            raw = np.frombuffer(bytes.fromhex(digits), dtype=np.uint8).reshape(m, width // 2)
        except ValueError:  # not all hex digits after all
            raw = None
        if raw is not None:
            out = np.full(n, -1, dtype=np.int64)
            out[present] = raw.astype(np.int64) @ (256 ** np.arange(width // 2 - 1, -1, -1, dtype=np.int64))
            return out
    return np.fromiter((_number_or_missing(v, "hex") for v in col), dtype=np.int64, count=n)


def _number_or_missing(v: str, kind: str):
    """One value the fast paths could not take: parse it alone; missing when it is not a number."""
    try:
        if kind == "float":
            return float(v)
        value = int(v, 16 if kind == "hex" else 0)
        return value if -1 <= value < 2**63 else -1
    except ValueError:
        return float("nan") if kind == "float" else -1


def nth_newline(buf: bytearray, nth: int) -> int:
    """Offset of the ``nth`` (1-based) newline in ``buf``."""
    positions = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
    return int(positions[nth - 1])
