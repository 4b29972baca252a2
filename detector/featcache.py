"""The training cache of ``iotwatch train --cache DIR`` and bench/generalisation.py: two levels per capture.

``DIR/<capture>.<key>.npz``
    the feature rows ``X`` (float32) and the per-frame labels ``y`` (int8, -1 = unlabelled). Key: the
    capture's sha256, its label sidecar's sha256, the feature schema and ``feature_code_digest`` (the
    capture-side code below plus detector/features.py). A hit costs a file read.
``DIR/batches/<capture>.<key>.npz``
    the capture's PARSED tshark batches (the numpy columns of captures/batch.py, in the boundaries
    ``open_source(read=...).batches(max_rows=8192)`` yielded them) and the per-frame labels. Key: the
    capture's sha256, its sidecar's sha256 and ``capture_code_digest`` -- the code that decides what
    the batches hold (captures/fields.py, batch.py, labels.py, the tshark parser and argv, the tshark
    version) and NOT the feature code. After a change of detector/features.py the rows miss, and
    ``featurise_capture`` rebuilds them from these batches through the same
    ``new_extractor(featurizer).transform(batch)`` path, batch by batch, instead of running tshark.

Clearing: ``rm -r DIR`` drops both levels; ``rm DIR/*.npz`` only the rows (rebuilt from ``batches/``,
minutes); ``rm -r DIR/batches`` forces the next run to re-read every capture with tshark. A stale
entry is never served (the keys change), it only takes disk space: files of an old feature code can
be deleted at any time.

Never pickle: strings are stored as a vocabulary (its UTF-8 text as uint8 plus each entry's length)
and integer codes, every array is read with ``np.load(allow_pickle=False)``; an unreadable or
inconsistent file is a miss (rebuilt and replaced), never a traceback. Files are written to a
temporary name in the same folder and renamed into place, so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from iotwatch.captures.batch import PacketBatch

BATCH_FORMAT = "iotwatch-batches/1"
BATCH_DIR = "batches"

_CAPTURE_CODE_DIGEST: str | None = None


def capture_code_digest() -> str:
    """sha256 (16 hex) of the code that turns a capture file into parsed batches and per-frame labels:
    captures/fields.py, batch.py, labels.py, the tshark parser and argv builder, plus the installed
    tshark's version and this cache's format. Not the feature code."""
    global _CAPTURE_CODE_DIGEST
    if _CAPTURE_CODE_DIGEST is None:
        from iotwatch.captures import batch, fields, labels
        from iotwatch.captures.tshark import args, parser
        from iotwatch.captures.tshark.preflight import find_tool, tool_version

        h = hashlib.sha256(BATCH_FORMAT.encode())
        for mod in (fields, batch, labels, parser, args):
            h.update(Path(mod.__file__).read_bytes())
        tshark = find_tool("tshark", None)
        h.update(f"tshark {tool_version(tshark) if tshark else 'missing'}".encode())
        _CAPTURE_CODE_DIGEST = h.hexdigest()[:16]
    return _CAPTURE_CODE_DIGEST


def batch_cache_file(cache: Path, capture: Path, capture_sha: str, labels_sha: str) -> tuple[Path, str]:
    """(file, full key) of a capture's parsed batches under ``cache``."""
    key = f"{BATCH_FORMAT}:{capture_sha}:{labels_sha}:{capture_code_digest()}"
    short = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(cache) / BATCH_DIR / f"{capture.name}.{short}.npz", key


def level_bytes(cache: Path) -> dict[str, int]:
    """Bytes on disk per level of the cache ``DIR``: ``rows`` (``DIR/*.npz``, every feature code's)
    and ``batches`` (``DIR/batches/*.npz``)."""
    cache = Path(cache)
    return {level: sum(f.stat().st_size for f in folder.glob("*.npz"))
            for level, folder in (("rows", cache), ("batches", cache / BATCH_DIR))}


# ---------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------
class BatchRecorder:
    """Collects the batches of one capture as compact, pickle-free arrays while they are read.

    ``add(batch, labels)`` per non-empty batch; ``arrays(key)`` gives what ``save_npz`` writes, or
    None when a batch cannot be stored exactly (then nothing is cached)."""

    def __init__(self):
        self.names: list[str] | None = None
        self.dtypes: dict[str, np.dtype] = {}
        self.parts: dict[str, list[np.ndarray]] = {}
        self.vocab: dict[str, dict[str, int]] = {}
        self.lengths: list[int] = []
        self.labels: list[np.ndarray] = []
        self.truncated = ""
        self.ok = True

    def add(self, batch: PacketBatch, labels: np.ndarray) -> None:
        if not self.ok:
            return
        try:
            self._add(batch, labels)
        except (TypeError, ValueError):  # a non-str value in a str column, mixed dtypes: not stored
            self.ok = False

    def _add(self, batch: PacketBatch, labels: np.ndarray) -> None:
        n = len(batch)
        if self.names is None:
            self.names = list(batch.columns)
            self.dtypes = {k: v.dtype for k, v in batch.columns.items()}
            self.parts = {k: [] for k in self.names}
            self.vocab = {k: {} for k in self.names if self.dtypes[k] == object}
        if list(batch.columns) != self.names or len(labels) != n:
            raise ValueError("columns changed between batches")
        for name in self.names:
            col = batch.columns[name]
            if col.dtype != self.dtypes[name] or len(col) != n:
                raise ValueError(f"column {name} changed dtype")
            if col.dtype == object:
                vocab = self.vocab[name]
                values = col.tolist()
                if not all(type(v) is str for v in values):
                    raise TypeError(f"column {name} holds a non-str value")
                codes = np.fromiter((vocab.setdefault(v, len(vocab)) for v in values), dtype=np.int64, count=n)
                self.parts[name].append(codes)
            else:
                self.parts[name].append(np.array(col, copy=True))
        self.lengths.append(n)
        self.labels.append(np.asarray(labels, dtype=np.int8))
        if batch.truncated:
            self.truncated = batch.truncated

    def arrays(self, key: str) -> dict[str, np.ndarray] | None:
        if not self.ok:
            return None
        names = self.names or []
        out = {
            "format": np.array(BATCH_FORMAT), "key": np.array(key), "truncated": np.array(self.truncated),
            "names": np.array(names, dtype=str), "dtypes": np.array([self.dtypes[k].str for k in names], dtype=str),
            "lengths": np.array(self.lengths, dtype=np.int64),
            "labels": np.concatenate(self.labels) if self.labels else np.zeros(0, np.int8),
        }
        for i, name in enumerate(names):
            parts = self.parts[name]
            col = np.concatenate(parts) if parts else np.zeros(0, self.dtypes[name] if name not in self.vocab else np.int64)
            if name in self.vocab:
                words = list(self.vocab[name])
                text = "".join(words).encode("utf-8", "surrogatepass")
                out[f"s{i}.codes"] = _narrow(col, unsigned=True)
                out[f"s{i}.text"] = np.frombuffer(text, dtype=np.uint8)
                out[f"s{i}.lens"] = _narrow(np.fromiter(map(len, words), dtype=np.int64, count=len(words)), True)
            else:
                out[f"c{i}"] = _narrow(col) if col.dtype.kind == "i" else col
        return out


def _narrow(a: np.ndarray, unsigned: bool = False) -> np.ndarray:
    """The smallest integer dtype holding every value of ``a`` (restored exactly by ``astype``)."""
    if not len(a):
        return a
    lo, hi = int(a.min()), int(a.max())
    for dt in ((np.uint8, np.uint16, np.uint32) if unsigned and lo >= 0 else (np.int8, np.int16, np.int32)):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return a.astype(dt)
    return a


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` to ``path`` atomically (a temporary file in the same folder, then a rename).
    Never replaces something that is not a regular file; False when not written (the cache is an
    optimisation: a full disk or a read-only folder costs the next run time, not this run)."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_file() or path.is_symlink():
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return True
    except OSError as e:
        print(f"iotwatch: cache file {path} not written: {e.strerror or e}", file=sys.stderr)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


# ---------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------
def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of an .npz, read without pickle; None when missing or unreadable (a one-line note
    on stderr for an unreadable file: it is rebuilt)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 -- a damaged cache file of any kind is a miss, rebuilt
        print(f"iotwatch: ignoring unreadable cache file {path} ({type(e).__name__}); rebuilding it",
              file=sys.stderr)
        return None


def load_rows(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(X, y) of a feature-row file, or None (missing, unreadable or inconsistent)."""
    z = read_npz(path)
    if z is None:
        return None
    X, y = z.get("X"), z.get("y")
    if (X is None or y is None or X.dtype != np.float32 or X.ndim != 2 or X.shape[1] != n_features
            or y.ndim != 1 or len(y) != len(X)):
        print(f"iotwatch: ignoring inconsistent cache file {path}; rebuilding it", file=sys.stderr)
        return None
    return X, y.astype(np.int8)


class CachedBatches:
    """A capture's batches read back from ``DIR/batches/``: iterate for (PacketBatch, labels) pairs in
    the stored boundaries; columns have the dtypes and values the tshark source gave."""

    def __init__(self, z: dict[str, np.ndarray]):
        self.names = [str(s) for s in z["names"].tolist()]
        self.dtypes = [np.dtype(str(s)) for s in z["dtypes"].tolist()]
        self.lengths = z["lengths"].astype(np.int64)
        self.labels = z["labels"]
        self.truncated = str(z["truncated"]) or None
        total = int(self.lengths.sum())
        if (len(self.dtypes) != len(self.names) or (self.lengths <= 0).any() or len(self.labels) != total
                or self.labels.dtype != np.int8):
            raise ValueError("inconsistent lengths")
        self.columns: list[tuple[str, np.dtype, np.ndarray, np.ndarray | None]] = []
        for i, (name, dt) in enumerate(zip(self.names, self.dtypes)):
            if dt == object:
                codes, text, lens = z[f"s{i}.codes"], z[f"s{i}.text"], z[f"s{i}.lens"]
                words = text.tobytes().decode("utf-8", "surrogatepass")
                ends = np.cumsum(lens, dtype=np.int64)
                if codes.dtype.kind != "u" or lens.dtype.kind != "u" or (len(ends) and ends[-1] != len(words)) \
                        or (not len(ends) and words) or len(codes) != total \
                        or (len(codes) and int(codes.max()) >= len(lens)):
                    raise ValueError(f"inconsistent string column {name}")
                vocab = np.empty(len(lens), dtype=object)
                vocab[:] = [words[a:b] for a, b in zip((ends - lens.astype(np.int64)).tolist(), ends.tolist())]
                self.columns.append((name, dt, codes, vocab))
            else:
                col = z[f"c{i}"]
                if len(col) != total or col.ndim != 1 or (col.dtype != dt and not (col.dtype.kind == dt.kind == "i")):
                    raise ValueError(f"inconsistent column {name}")
                self.columns.append((name, dt, col, None))

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[tuple[PacketBatch, np.ndarray]]:
        start = 0
        last = len(self.lengths) - 1
        for j, n in enumerate(self.lengths.tolist()):
            stop = start + n
            cols = {}
            for name, dt, data, vocab in self.columns:
                part = data[start:stop]
                cols[name] = vocab[part] if vocab is not None else part.astype(dt)
            batch = PacketBatch(cols)
            if j == last:
                batch.truncated = self.truncated
            yield batch, self.labels[start:stop]
            start = stop


def load_batches(path: Path, key: str) -> CachedBatches | None:
    """A capture's cached batches, or None (missing, unreadable, another key or another format)."""
    z = read_npz(path)
    if z is None:
        return None
    try:
        if str(z["format"]) != BATCH_FORMAT or str(z["key"]) != key:
            raise ValueError("another format or key")
        return CachedBatches(z)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, IndexError) as e:
        print(f"iotwatch: ignoring inconsistent cache file {path} ({e}); rebuilding it", file=sys.stderr)
        return None
