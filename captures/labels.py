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
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .batch import PacketBatch
from .errors import InputError
from .pcapfile import PCAPNG_MAGIC

_COMMENT_RE = re.compile(r"(?:^|[\s;,])label=([A-Za-z0-9_\-]+)")


def sidecar_candidates(capture: str | Path) -> list[Path]:
    p = Path(capture)
    cands = [p.with_name(p.name + ".labels.csv"), p.with_name(p.stem + ".labels.csv")]
    # "lab.pcapng.gz" -> also "lab.labels.csv"
    stem = p.name.split(".")[0]
    cands.append(p.with_name(stem + ".labels.csv"))
    return list(dict.fromkeys(cands))


def discover_sidecar(capture: str | Path) -> Path | None:
    for c in sidecar_candidates(capture):
        if c.is_file():
            return c
    return None


class LabelSet:
    """Maps frames to class indices of ``classes`` (-1 = unlabelled)."""

    def __init__(self, classes: Sequence[str], sidecar: dict[int, int] | None = None,
                 sidecar_path: Path | None = None, use_comments: bool = True):
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}
        self.sidecar = sidecar
        self.sidecar_path = sidecar_path
        self.use_comments = use_comments
        self.comment_labels_seen = 0
        if sidecar:
            mx = max(sidecar)
            self._lut = np.full(mx + 2, -1, dtype=np.int64)
            keys = np.fromiter(sidecar.keys(), dtype=np.int64, count=len(sidecar))
            vals = np.fromiter(sidecar.values(), dtype=np.int64, count=len(sidecar))
            self._lut[keys] = vals
        else:
            self._lut = None

    @property
    def source(self) -> str:
        if self.sidecar_path is not None:
            return str(self.sidecar_path)
        return "pcapng comments"

    @classmethod
    def load(cls, classes: Sequence[str], capture: str | Path | None = None,
             labels_path: str | Path | None = None) -> "LabelSet | None":
        """Explicit ``labels_path`` wins; else an auto-discovered sidecar; else pcapng comments.

        Returns ``None`` when the capture cannot carry labels at all (no sidecar, and not a pcapng
        file containing ``label=`` comments), so outputs leave out label columns and metrics.
        """
        path = Path(labels_path) if labels_path else (discover_sidecar(capture) if capture else None)
        if path is not None:
            return cls(classes, read_sidecar(path, classes), sidecar_path=path, use_comments=False)
        if capture is not None and may_have_comment_labels(capture):
            return cls(classes)
        return None

    def for_batch(self, batch: PacketBatch) -> np.ndarray:
        n = len(batch)
        if self._lut is not None:
            fn = batch["frame_number"]
            out = np.full(n, -1, dtype=np.int64)
            ok = (fn >= 0) & (fn < len(self._lut))
            out[ok] = self._lut[fn[ok]]
            return out
        out = np.full(n, -1, dtype=np.int64)
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


def may_have_comment_labels(capture: str | Path) -> bool:
    """Cheap pre-check (a byte search, GB/s): a pcapng file whose bytes contain ``label=``."""
    import mmap

    try:
        with open(capture, "rb") as fh:
            if fh.read(4) != PCAPNG_MAGIC:
                return False
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return mm.find(b"label=") >= 0
    except (OSError, ValueError):
        return False  # unreadable files are reported by the source's preflight


_NOT_SEPARATOR = bytes(b for b in range(256) if b not in b",\n")


def _read_sidecar_fast(path: Path, index: dict[str, int]) -> dict[int, int] | None:
    """The common, clean file (``frame_number,label`` header, plain rows): ~4x the csv module.
    None when anything is unusual; the careful reader then parses it and names the bad line."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    if '"' in text or "\r" in text:
        return None
    head, _, body = text.partition("\n")
    if head.strip().lower().replace(" ", "") != "frame_number,label":
        return None
    body = body.rstrip("\n")
    if not body.strip():
        return {}
    lines = body.count("\n") + 1
    if body.encode().translate(None, _NOT_SEPARATOR) != b",\n" * (lines - 1) + b",":
        return None  # a blank line, or a line without exactly two columns
    flat = body.replace("\n", ",").split(",")
    names = {**index, "": -1}
    try:
        frames = list(map(int, flat[0::2]))
        idx = list(map(names.__getitem__, flat[1::2]))
    except (ValueError, KeyError):
        return None
    if frames and min(frames) < 1:
        return None
    if -1 in idx:
        return {f: i for f, i in zip(frames, idx) if i >= 0}
    return dict(zip(frames, idx))


def read_sidecar(path: str | Path, classes: Sequence[str]) -> dict[int, int]:
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    fast = _read_sidecar_fast(path, index) if path.is_file() else None
    if fast is not None:
        return fast
    index = {c: i for i, c in enumerate(classes)}
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"label file {path} does not exist", hint="check the --labels path") from None
    except OSError as e:
        raise InputError(f"cannot read label file {path}: {e.strerror}") from None
    out: dict[int, int] = {}
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: empty label file", hint="expected a header row 'frame_number,label'") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file", hint="expected 'frame_number,label'") from None
        cols = [h.strip().lower() for h in header]
        if "frame_number" not in cols or "label" not in cols:
            raise InputError(f"{path}:1: header must contain 'frame_number,label', got {','.join(header)!r}")
        fi, li = cols.index("frame_number"), cols.index("label")
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(fi, li):
                    raise InputError(f"{path}:{line}: expected 'frame_number,label', got {','.join(row)!r}")
                fs, name = row[fi].strip(), row[li].strip()
                try:
                    fn = int(fs)
                except ValueError:
                    raise InputError(f"{path}:{line}: frame_number {fs!r} is not an integer") from None
                if fn < 1:
                    raise InputError(f"{path}:{line}: frame_number {fn} must be >= 1")
                if name == "":
                    continue  # explicitly unlabelled
                idx = index.get(name)
                if idx is None:
                    raise InputError(f"{path}:{line}: unknown class {name!r}",
                                     hint="known classes: " + ", ".join(classes))
                out[fn] = idx
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file", hint="expected 'frame_number,label'") from None
        except csv.Error as e:
            raise InputError(f"{path}:{reader.line_num}: {e}") from None
    return out
