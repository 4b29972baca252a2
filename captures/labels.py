"""Ground-truth labels for a capture (CONTRACT §2).

Sources, sidecar CSV winning over pcapng comments:
1. sidecar CSV ``frame_number,label`` (header row), given with ``--labels`` or auto-discovered as
   ``<capture>.labels.csv`` or ``<capture stem>.labels.csv``;
2. pcapng packet comments ``label=<class>`` (column ``frame_comment``).

Frames without a label are unlabelled (-1): excluded from metrics, never counted as ``normal``.
An unknown class name is an ``InputError`` naming file, line and value.
"""
from __future__ import annotations

import csv
import os
import re
import stat
from pathlib import Path
from typing import Sequence

import numpy as np

from .batch import PacketBatch
from .errors import InputError
from .files import require_regular_input
from .pcapfile import PCAPNG_MAGIC

_COMMENT_RE = re.compile(r"(?:^|[\s;,])label=([A-Za-z0-9_\-]+)")


_COMPRESSED = (".gz", ".zst", ".lz4", ".xz", ".bz2")


def sidecar_candidates(capture: str | Path) -> list[Path]:
    """``<name>.labels.csv`` then ``<stem>.labels.csv``; a compressed capture (``lab.pcapng.gz``)
    also tries its uncompressed name's (``lab.pcapng.labels.csv``, ``lab.labels.csv``). The name is
    never cut at its first dot: ``home.2024-06-01.pcap`` must not pick up ``home.labels.csv``."""
    p = Path(capture)
    cands = [p.with_name(p.name + ".labels.csv"), p.with_name(p.stem + ".labels.csv")]
    if p.suffix.lower() in _COMPRESSED:
        inner = Path(p.stem)
        cands += [p.with_name(inner.stem + ".labels.csv")]
    return list(dict.fromkeys(cands))


def discover_sidecar(capture: str | Path) -> Path | None:
    for c in sidecar_candidates(capture):
        if c.is_file():
            return c
    return None


class LabelSet:
    """Maps frames to class indices of ``classes`` (-1 = unlabelled).

    ``sidecar`` is a ``{frame: class index}`` dict or a ``(frames, values)`` pair of arrays
    (``frames`` sorted, unique); lookups are a vectorised binary search, so memory follows the number
    of labelled rows, never the largest frame number (``100000000,dos`` once allocated 970 MB)."""

    def __init__(self, classes: Sequence[str], sidecar=None, sidecar_path: Path | None = None,
                 use_comments: bool = True):
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}
        self.sidecar_path = sidecar_path
        self.use_comments = use_comments
        self.comment_labels_seen = 0
        if isinstance(sidecar, dict):
            frames = np.fromiter(sidecar.keys(), dtype=np.int64, count=len(sidecar))
            values = np.fromiter(sidecar.values(), dtype=np.int64, count=len(sidecar))
            order = np.argsort(frames, kind="stable")
            sidecar = (frames[order], values[order]) if len(frames) else None
        if sidecar is not None and len(sidecar[0]):
            self._frames = np.asarray(sidecar[0], dtype=np.uint32)
            self._values = np.asarray(sidecar[1], dtype=np.int8)
        else:
            self._frames = self._values = None
        self.sidecar = self._frames if sidecar is not None else None  # the labelled frame numbers

    @property
    def source(self) -> str:
        if self.sidecar_path is not None:
            return str(self.sidecar_path)
        return "pcapng comments"

    @property
    def last_labelled_frame(self) -> int:
        """The highest frame number a sidecar labels (0 for comments / none)."""
        return int(self._frames[-1]) if self._frames is not None else 0

    def labelled_beyond(self, frame: int) -> int:
        """How many sidecar rows label frames after ``frame`` (labels beyond the end of a capture)."""
        if self._frames is None:
            return 0
        return int(len(self._frames) - np.searchsorted(self._frames, np.uint32(min(max(frame, 0), MAX_FRAME)),
                                                        side="right"))

    @classmethod
    def load(cls, classes: Sequence[str], capture: str | Path | None = None,
             labels_path: str | Path | None = None) -> "LabelSet | None":
        """Explicit ``labels_path`` wins; else an auto-discovered sidecar; else pcapng comments.

        Returns ``None`` when the capture cannot carry labels at all (no sidecar, and not a pcapng
        file containing ``label=`` comments), so outputs leave out label columns and metrics.
        """
        path = Path(labels_path) if labels_path else (discover_sidecar(capture) if capture else None)
        if path is not None:
            return cls(classes, read_sidecar_arrays(path, classes), sidecar_path=path, use_comments=False)
        if capture is not None and may_have_comment_labels(capture):
            return cls(classes)
        return None

    def for_batch(self, batch: PacketBatch) -> np.ndarray:
        n = len(batch)
        out = np.full(n, -1, dtype=np.int64)
        if self._frames is not None:
            fn = np.asarray(batch["frame_number"], dtype=np.int64)
            fn32 = np.clip(fn, 0, MAX_FRAME).astype(np.uint32)   # same dtype: no copy of the table per batch
            pos = np.searchsorted(self._frames, fn32)
            pos_c = np.minimum(pos, len(self._frames) - 1)
            hit = (self._frames[pos_c] == fn32) & (fn == fn32)
            out[hit] = self._values[pos_c[hit]]
            return out
        if not self.use_comments:
            return out
        comments = batch["frame_comment"]
        for i in np.flatnonzero(comments != ""):
            m = _COMMENT_RE.search(comments[i])
            if not m:
                continue
            name = m.group(1)
            idx = self._index.get(name)
            if idx is None:
                raise InputError(
                    f"pcapng comment of frame {int(batch['frame_number'][i])}: unknown class {name!r}",
                    hint="known classes: " + ", ".join(self.classes),
                )
            out[i] = idx
            self.comment_labels_seen += 1
        return out


COMMENT_SCAN_BYTES = 64 * 1024 * 1024  # the label= pre-scan reads at most this much of a capture


def may_have_comment_labels(capture: str | Path, limit: int = COMMENT_SCAN_BYTES) -> bool:
    """Cheap pre-check: a pcapng file whose first ``limit`` bytes contain ``label=``. Read in 1 MiB
    pieces (an mmap of a whole 2 GB file counted in RSS and delayed the first packet by 5 s);
    labelled captures carry a comment on their first packets."""
    try:
        st = os.stat(capture)
        if not stat.S_ISREG(st.st_mode):
            return False
        with open(capture, "rb") as fh:
            if fh.read(4) != PCAPNG_MAGIC:
                return False
            tail = b""
            read = 4
            while read < limit:
                piece = fh.read(1 << 20)
                if not piece:
                    return False
                read += len(piece)
                if (tail + piece).find(b"label=") >= 0:
                    return True
                tail = piece[-5:]
            return False
    except (OSError, ValueError):
        return False  # unreadable files are reported by the source's preflight


MAX_FRAME = 2 ** 32 - 1        # tshark's frame.number is 32-bit
MAX_LABEL_ROWS = 100_000_000   # a label file bigger than this is refused (exit 2), not loaded
MAX_LINE = 4096                # characters in one line of a label file
_BLOCK = 256 << 10             # bytes parsed at a time: memory stays ~ rows x 5 bytes + ~4 MB
NL = b"\n"
_NOT_SEPARATOR = bytes(b for b in range(256) if b not in b",\n")


def _fast_block(text: str, names: dict[str, int]):
    """(frames, values) for a block of clean ``frame,label`` lines, parsed with numpy on the bytes
    (no Python object per row), or None when anything is unusual (the careful reader then parses
    the block and names the bad line)."""
    raw = text.encode()
    lines = raw.count(b"\n")
    if not lines or raw.translate(None, _NOT_SEPARATOR) != b",\n" * lines:
        return None  # a blank line, a quote, or a line without exactly two columns
    b = np.frombuffer(raw, dtype=np.uint8)
    comma = np.flatnonzero(b == 44)
    nl = np.flatnonzero(b == 10)
    start = np.empty_like(nl)
    start[0] = 0
    start[1:] = nl[:-1] + 1
    ndig = comma - start
    if ndig.min() < 1 or ndig.max() > 10:
        return None
    frames = np.zeros(lines, dtype=np.int64)
    scale = 1
    for k in range(int(ndig.max())):
        has = ndig > k
        d = b[np.where(has, comma - 1 - k, 0)].astype(np.int64) - 48
        if np.any(has & ((d < 0) | (d > 9))):
            return None
        frames += np.where(has, d, 0) * scale
        scale *= 10
    if frames.min() < 1 or frames.max() > MAX_FRAME:
        return None
    vals = np.full(lines, -2, dtype=np.int8)
    length = nl - comma - 1
    vals[length == 0] = -1
    for name, idx in names.items():
        if not name or idx < 0:
            continue
        nb = np.frombuffer(name.encode(), dtype=np.uint8)
        cand = np.flatnonzero(length == len(nb))
        for j, ch in enumerate(nb.tolist()):
            if not len(cand):
                break
            cand = cand[b[comma[cand] + 1 + j] == ch]
        vals[cand] = idx
    if np.any(vals == -2):
        return None  # an unknown class name (or spaces): the careful reader names it
    keep = vals >= 0
    return frames[keep].astype(np.uint32), vals[keep]


def _careful_block(lines: list[str], first_line: int, path: Path, fi: int, li: int, index: dict[str, int],
                   classes: Sequence[str]):
    frames: list[int] = []
    vals: list[int] = []
    reader = csv.reader(lines)
    try:
        for off, row in enumerate(reader):
            line = first_line + off
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(fi, li):
                raise InputError(f"{path}:{line}: expected 'frame_number,label', got {','.join(row)!r}")
            fs, name = row[fi].strip(), row[li].strip()
            if not (fs.isascii() and fs.lstrip("+-").isdigit()):
                raise InputError(f"{path}:{line}: frame_number {fs!r} is not an integer")
            fn = int(fs)
            if fn < 1:
                raise InputError(f"{path}:{line}: frame_number {fn} must be >= 1")
            if fn > MAX_FRAME:
                raise InputError(f"{path}:{line}: frame_number {fs[:24]} is beyond any capture (at most {MAX_FRAME})")
            if name == "":
                continue  # explicitly unlabelled
            idx = index.get(name)
            if idx is None:
                raise InputError(f"{path}:{line}: unknown class {name!r}", hint="known classes: " + ", ".join(classes))
            frames.append(fn)
            vals.append(idx)
    except csv.Error as e:
        raise InputError(f"{path}:{first_line}: {e}") from None
    return np.array(frames, dtype=np.uint32), np.array(vals, dtype=np.int8)


def _text(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file", hint="expected 'frame_number,label'") from None


def read_sidecar_arrays(path: str | Path, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse a label file into ``(frames, values)``: frames sorted and unique (uint32), values class
    indices (int8). Streams the file in 256 KiB blocks, so memory follows the rows, not the file; a
    FIFO, device or folder is refused before ``open`` (a FIFO blocked forever), and so are lines over
    ``MAX_LINE`` characters, frame numbers over 2^32-1 and more than ``MAX_LABEL_ROWS`` rows.
    A byte-order mark is skipped. A frame labelled twice with different classes is an error."""
    path = Path(path)
    require_regular_input(path, "label file", hint="check the --labels path")
    index = {c: i for i, c in enumerate(classes)}
    names = {**index, "": -1}
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read label file {path}: {e.strerror}") from None
    f_parts: list[np.ndarray] = []
    v_parts: list[np.ndarray] = []
    rows = 0
    with fh:
        head = fh.read(MAX_LINE + 1)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        if not head.strip():
            raise InputError(f"{path}: empty label file", hint="expected a header row 'frame_number,label'")
        nl = head.find(b"\n")
        if nl < 0 and len(head) > MAX_LINE:
            raise InputError(f"{path}:1: the header line is longer than {MAX_LINE} characters (not a label file?)",
                             hint="expected 'frame_number,label'")
        header_line = _text(head[:nl] if nl >= 0 else head, path)
        try:
            header = next(csv.reader([header_line]))
        except (csv.Error, StopIteration):
            header = []
        cols = [h.strip().lower() for h in header]
        if "frame_number" not in cols or "label" not in cols:
            raise InputError(f"{path}:1: header must contain 'frame_number,label', got {header_line[:80]!r}")
        fi, li = cols.index("frame_number"), cols.index("label")
        simple = (fi, li) == (0, 1) and len(cols) == 2
        pending = head[nl + 1:] if nl >= 0 else b""
        line_no = 2
        eof = nl < 0
        while not eof or pending:
            if not eof:
                piece = fh.read(_BLOCK)
                eof = not piece
                pending += piece
            cut = pending.rfind(b"\n")
            if cut < 0:
                if not eof:
                    if len(pending) > MAX_LINE:
                        raise InputError(f"{path}:{line_no}: line longer than {MAX_LINE} characters "
                                         "(not a label file?)", hint="expected 'frame_number,label' rows")
                    continue
                block, pending = pending, b""
            elif eof and cut < len(pending) - 1:
                block, pending = pending, b""
            else:
                block, pending = pending[:cut + 1], pending[cut + 1:]
                if not eof and len(pending) > MAX_LINE:
                    raise InputError(f"{path}:{line_no + block.count(NL)}: line longer than {MAX_LINE} "
                                     "characters (not a label file?)", hint="expected 'frame_number,label' rows")
            text = _text(block, path)
            if not text.endswith("\n"):
                text += "\n"
            got = _fast_block(text, names) if simple else None
            if got is None:
                lines = text.split("\n")[:-1]
                if any(len(x) > MAX_LINE for x in lines):
                    bad = next(i for i, x in enumerate(lines) if len(x) > MAX_LINE)
                    raise InputError(f"{path}:{line_no + bad}: line longer than {MAX_LINE} characters "
                                     "(not a label file?)", hint="expected 'frame_number,label' rows")
                got = _careful_block(lines, line_no, path, fi, li, index, classes)
            line_no += text.count("\n")
            rows += len(got[0])
            if rows > MAX_LABEL_ROWS:
                raise InputError(f"{path}: more than {MAX_LABEL_ROWS:,} labelled rows; refusing to load it",
                                 hint="split the capture, or label only the frames that matter")
            f_parts.append(got[0])
            v_parts.append(got[1])
            if eof and not pending:
                break
    return _sorted_unique(np.concatenate(f_parts) if f_parts else np.zeros(0, np.uint32),
                          np.concatenate(v_parts) if v_parts else np.zeros(0, np.int8), path, classes)


def _sorted_unique(frames: np.ndarray, vals: np.ndarray, path: Path, classes: Sequence[str]):
    """Sort by frame (no index array: one uint64 key per row), drop exact duplicates, and refuse a
    frame labelled with two different classes (the last one used to win silently)."""
    if len(frames) > 1 and not np.all(frames[1:] > frames[:-1]):
        key = (frames.astype(np.uint64) << np.uint64(8)) | vals.astype(np.uint8).astype(np.uint64)
        del frames, vals
        key.sort()
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        frames = (key >> np.uint64(8)).astype(np.uint32)
        vals = (key & np.uint64(0xFF)).astype(np.int8)
        del key
        same = np.flatnonzero(frames[1:] == frames[:-1])
        if len(same):
            i = int(same[0])
            raise InputError(f"{path}: frame {int(frames[i])} is labelled both {classes[vals[i]]!r} and "
                             f"{classes[vals[i + 1]]!r}", hint="keep one label per frame")
    return frames, vals


def read_sidecar(path: str | Path, classes: Sequence[str]) -> dict[int, int]:
    """The label file as ``{frame_number: class index}`` (see ``read_sidecar_arrays``)."""
    frames, vals = read_sidecar_arrays(path, classes)
    return dict(zip(frames.tolist(), vals.tolist()))
