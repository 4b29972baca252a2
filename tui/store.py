"""Bounded display stores behind the TUI (plain Python + numpy, no Textual).

The capture worker counts every packet in ``RunTotals``; these stores only hold what the screen
can show, and say what they dropped:

* ``display_batch``: what the screen keeps of a classified batch (run in the capture thread): a few
  columns, endpoints resolved once, strings as fixed-width numpy unicode arrays. Object arrays would
  be walked by Python's cycle collector on every full collection: with 50k buffered rows that was a
  300 ms pause on the UI thread.
* ``RowStore``: the last ``cap`` display batches, kept as whole chunks (appending is O(1); nothing
  is formatted until a row is actually drawn), with filtered views (all / anomalies only / one
  class) that map a view position to a packet.
* ``IncidentStore``: the latest snapshot of every incident of the run (from the capture thread's
  incident engine), sorted by severity then recency.
* ``RateHistory``: per-class packets per second sampled from ``RunTotals.class_counts``, for rates
  and sparklines.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.describe import endpoints, ports, protocol_name
from iotwatch.detector.pipeline import ClassifiedBatch

# A filter is ("all",), ("anomaly",) or ("class", index).
Filter = tuple


def _hostport(host: str, port: int) -> str:
    if port < 0:
        return host
    return f"[{host}]:{port}" if ":" in host and host.count(":") > 1 and "." not in host[:4] else f"{host}:{port}"


@dataclass(frozen=True)
class Row:
    """One packet as the table shows it (built only for rows on screen)."""

    gid: int            # position in the order rows entered the store (stable across eviction)
    frame: int
    time: float
    src: str            # host (IP, ARP sender or MAC)
    src_port: int       # -1 when none
    dst: str
    dst_port: int
    proto: str
    length: int
    predicted: int
    confidence: float
    anomaly: bool
    label: int          # -1 unlabelled / no labels

    def endpoints(self, width: int) -> str:
        """``src:port → dst:port``, dropping the source port first when it does not fit."""
        full = f"{_hostport(self.src, self.src_port)} → {_hostport(self.dst, self.dst_port)}"
        if len(full) <= width or self.src_port < 0:
            return full
        return f"{self.src} → {_hostport(self.dst, self.dst_port)}"


def display_batch(cb: ClassifiedBatch) -> ClassifiedBatch:
    """The display form of ``cb``: columns frame_number, time_epoch, frame_len, protocols, src, dst,
    sport, dport (see module doc); predictions, anomaly flags and labels unchanged."""
    p = cb.packets
    src, dst = endpoints(p)
    sport, dport = ports(p)
    cols = {"frame_number": p["frame_number"], "time_epoch": p["time_epoch"], "frame_len": p["frame_len"],
            "protocols": p["protocols"].astype(str), "src": src.astype(str), "dst": dst.astype(str),
            "sport": sport, "dport": dport}
    why = None
    if cb.features is not None:  # model inputs of the anomalous rows (float16), for the packet detail's "why"
        ai = np.flatnonzero(cb.anomaly)
        if len(ai):
            why = (ai, cb.features[ai].astype(np.float16))
    return replace(cb, packets=PacketBatch(cols, extra={"why": why}), features=None)


class _Chunk:
    """A slice of one ClassifiedBatch; display columns are computed the first time they are needed."""

    __slots__ = ("cb", "start", "skip", "_masks")

    def __init__(self, cb: ClassifiedBatch, start: int):
        self.cb = cb
        self.start = start      # gid of row 0 of ``cb``
        self.skip = 0           # rows evicted from the head of this chunk
        self._masks: dict = {}

    def __len__(self) -> int:
        return len(self.cb) - self.skip

    def indices(self, flt: Filter) -> np.ndarray:
        """Indices into ``cb`` (>= skip) of the rows passing ``flt``."""
        key = (flt, self.skip)
        idx = self._masks.get(key)
        if idx is None:
            if flt[0] == "anomaly":
                idx = np.flatnonzero(self.cb.anomaly[self.skip:]) + self.skip
            elif flt[0] == "incident":   # ("incident", id, class, first frame, last frame, hosts)
                _, _, cls, lo, hi, hosts = flt
                p = self.cb.packets
                fr = p["frame_number"]
                m = self.cb.anomaly & (self.cb.predicted == cls) & (fr >= lo) & (fr <= hi)
                if hosts:
                    h = list(hosts)
                    m &= np.isin(p["src"], h) | np.isin(p["dst"], h)
                idx = np.flatnonzero(m[self.skip:]) + self.skip
            elif flt[0] == "class":
                idx = np.flatnonzero(self.cb.predicted[self.skip:] == flt[1]) + self.skip
            else:
                idx = np.arange(self.skip, len(self.cb))
            self._masks = {key: idx}
        return idx

    def features(self, i: int) -> np.ndarray | None:
        """The model input of row ``i`` when it was kept (anomalous rows), else None."""
        why = self.cb.packets.extra.get("why")
        if why is None:
            return None
        ai, X = why
        k = int(np.searchsorted(ai, i))
        return X[k].astype(np.float32) if k < len(ai) and ai[k] == i else None

    def row(self, i: int) -> Row:
        p = self.cb.packets
        labels = self.cb.labels
        return Row(
            gid=self.start + i, frame=int(p["frame_number"][i]), time=float(p["time_epoch"][i]),
            src=str(p["src"][i]), src_port=int(p["sport"][i]), dst=str(p["dst"][i]), dst_port=int(p["dport"][i]),
            proto=protocol_name(p["protocols"][i]), length=int(p["frame_len"][i]),
            predicted=int(self.cb.predicted[i]), confidence=float(self.cb.confidence[i]),
            anomaly=bool(self.cb.anomaly[i]), label=int(labels[i]) if labels is not None else -1,
        )


class View:
    """An immutable snapshot of the store under one filter: position -> Row."""

    def __init__(self, parts: list[tuple[_Chunk, np.ndarray]]):
        self._parts = parts
        self._offsets: list[int] = []
        total = 0
        for _, idx in parts:
            self._offsets.append(total)
            total += len(idx)
        self._len = total

    def __len__(self) -> int:
        return self._len

    def _locate(self, pos: int) -> tuple[_Chunk, int]:
        k = bisect.bisect_right(self._offsets, pos) - 1
        chunk, idx = self._parts[k]
        return chunk, int(idx[pos - self._offsets[k]])

    def row(self, pos: int) -> Row:
        chunk, i = self._locate(pos)
        return chunk.row(i)

    def gid(self, pos: int) -> int:
        chunk, i = self._locate(pos)
        return chunk.start + i

    def position(self, gid: int) -> int:
        """View position of the first row whose gid is >= ``gid`` (``len(self)`` if none)."""
        for (chunk, idx), off in zip(self._parts, self._offsets):
            if len(idx) and chunk.start + int(idx[-1]) >= gid:
                return off + int(np.searchsorted(idx, gid - chunk.start))
        return self._len

    def position_of_frame(self, frame: int) -> int | None:
        """View position of the first row whose frame number is >= ``frame`` (None if none)."""
        for (chunk, idx), off in zip(self._parts, self._offsets):
            if not len(idx):
                continue
            frames = chunk.cb.packets["frame_number"][idx]
            if frames[-1] >= frame:
                return off + int(np.searchsorted(frames, frame))
        return None

    def next_anomaly(self, after: int) -> int | None:
        """Position of the first anomalous row after position ``after`` (-1 = from the top)."""
        start = after + 1
        for (chunk, idx), off in zip(self._parts, self._offsets):
            if off + len(idx) <= start:
                continue
            lo = max(0, start - off)
            hits = np.flatnonzero(chunk.cb.anomaly[idx[lo:]])
            if len(hits):
                return off + lo + int(hits[0])
        return None


class RowStore:
    """The last ``cap`` packets offered for display (``display_batch`` form), as whole batches."""

    MERGE_BELOW = 2048  # small live batches are merged so a view has few chunks

    def __init__(self, cap: int = 50_000):
        self.cap = cap
        self._chunks: deque[_Chunk] = deque()
        self._stored = 0
        self.added = 0          # rows ever appended (gid of the next row)
        self.evicted = 0        # rows pushed out by the cap (not by clear)
        self.first_time: float | None = None

    def __len__(self) -> int:
        return self._stored

    def append(self, cb: ClassifiedBatch) -> None:
        n = len(cb)
        if not n:
            return
        if self.first_time is None:
            t = cb.packets["time_epoch"]
            if not np.all(np.isnan(t)):
                self.first_time = float(np.nanmin(t))
        last = self._chunks[-1] if self._chunks else None
        if last is not None and last.skip == 0 and len(last.cb) < self.MERGE_BELOW and n < self.MERGE_BELOW:
            self._chunks[-1] = _Chunk(_concat(last.cb, cb), last.start)
        else:
            self._chunks.append(_Chunk(cb, self.added))
        self.added += n
        self._stored += n
        self._evict()

    def _evict(self) -> None:
        while self._stored > self.cap:
            head = self._chunks[0]
            excess = self._stored - self.cap
            if excess >= len(head):
                self._chunks.popleft()
                self._stored -= len(head)
                self.evicted += len(head)
            else:
                head.skip += excess
                self._stored -= excess
                self.evicted += excess

    def clear(self) -> None:
        self._chunks.clear()
        self._stored = 0

    def features(self, gid: int) -> np.ndarray | None:
        """The kept model input of the row with this gid (None when evicted or not kept)."""
        for c in self._chunks:
            if c.start + c.skip <= gid < c.start + len(c.cb):
                return c.features(gid - c.start)
        return None

    def view(self, flt: Filter = ("all",)) -> View:
        return View([(c, c.indices(flt)) for c in self._chunks])


def _concat(a: ClassifiedBatch, b: ClassifiedBatch) -> ClassifiedBatch:
    labels = None
    if a.labels is not None or b.labels is not None:
        la = a.labels if a.labels is not None else np.full(len(a), -1, dtype=np.int64)
        lb = b.labels if b.labels is not None else np.full(len(b), -1, dtype=np.int64)
        labels = np.concatenate([la, lb])
    packets = PacketBatch.concat([a.packets, b.packets])
    wa, wb = a.packets.extra.get("why"), b.packets.extra.get("why")
    if wa is not None or wb is not None:
        parts = [w for w in ((wa[0], wa[1]) if wa else None, (wb[0] + len(a), wb[1]) if wb else None) if w]
        packets.extra["why"] = (np.concatenate([w[0] for w in parts]), np.concatenate([w[1] for w in parts]))
    return ClassifiedBatch(
        packets=packets,
        proba=np.concatenate([a.proba, b.proba]),
        predicted=np.concatenate([a.predicted, b.predicted]),
        confidence=np.concatenate([a.confidence, b.confidence]),
        anomaly=np.concatenate([a.anomaly, b.anomaly]),
        labels=labels,
    )


class IncidentStore:
    """The latest snapshot of each incident (``Track.to_dict`` dicts from the capture thread), bounded:
    beyond ``cap`` the ended incident seen longest ago is forgotten. ``version`` changes on every merge."""

    def __init__(self, cap: int = 1000):
        self.cap = cap
        self.items: dict[int, dict] = {}
        self.version = 0
        self.opened = 0

    def merge(self, snapshots: Sequence[dict]) -> None:
        for s in snapshots:
            if s["id"] not in self.items:
                self.opened += 1
            self.items[s["id"]] = s
        while len(self.items) > self.cap:
            ended = [s for s in self.items.values() if s["state"] != "active"] or list(self.items.values())
            del self.items[min(ended, key=lambda s: s["last_time"])["id"]]
        self.version += 1

    def sorted(self) -> list[dict]:
        """Most severe first (1 = highest), then the most recently active."""
        return sorted(self.items.values(), key=lambda s: (s["severity"], -s["last_time"], -s["id"]))

    def get(self, incident_id: int) -> dict | None:
        return self.items.get(incident_id)

    def __len__(self) -> int:
        return len(self.items)


class RateHistory:
    """Per-class rates (packets per second of wall time) from successive totals samples."""

    def __init__(self, n_classes: int, buckets: int = 30, period: float = 1.0):
        self.period = period
        self.history: deque[np.ndarray] = deque(maxlen=buckets)
        self._last_t: float | None = None
        self._last_counts = np.zeros(n_classes, dtype=np.int64)
        self.rates = np.zeros(n_classes, dtype=np.float64)
        self.total_rate = 0.0
        self.samples = 0  # rate buckets taken so far (the history is capped; this keeps counting)

    def sample(self, now: float, counts: np.ndarray) -> None:
        if self._last_t is None:
            self._last_t = now
            self._last_counts = counts.copy()
            return
        dt = now - self._last_t
        if dt < self.period:
            return
        delta = counts - self._last_counts
        self.rates = delta / dt
        self.total_rate = float(delta.sum() / dt)
        self.history.append(self.rates.copy())
        self.samples += 1
        self._last_t = now
        self._last_counts = counts.copy()

    def series(self, k: int) -> list[float]:
        return [float(h[k]) for h in self.history]


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """Unicode block sparkline of the last ``width`` values (blank-padded on the left)."""
    vals = list(values)[-width:]
    if not vals:
        return " " * width
    top = max(vals)
    out = []
    for v in vals:
        if top <= 0 or v <= 0:
            out.append(" " if top <= 0 else SPARK[0])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))])
    return " " * (width - len(out)) + "".join(out)
