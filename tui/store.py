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
* ``PredictionLog``: frame, class, confidence, anomaly, label and length of every packet of the run
  (12 bytes each); ``LogView``: the table's rows over it (filters, display-filter frames, sort), row
  data from ``RowStore`` or read back from the capture file by ``PageCache`` (pages of 256 rows,
  bounded), so the whole run stays browsable while memory holds only the newest rows.
* ``IncidentStore``: the latest snapshot of every incident of the run (from the capture thread's
  incident engine), sorted by severity then recency.
* ``RateHistory``: per-class packets per second sampled from ``RunTotals.class_counts``, for rates
  and sparklines.
"""
from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.describe import endpoints, ports, protocol_name
from iotwatch.detector.pipeline import ClassifiedBatch

# A filter is ("all",), ("anomaly",) or ("class", index).
Filter = tuple
INFO_WIDTH = 96     # characters of the Info column kept per row


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
    info: str = ""      # tshark's Info column
    flags: int = -1     # TCP flags (-1: not TCP)
    loading: bool = False  # read back from the file on demand and not there yet (only frame + class known)

    def endpoints(self, width: int) -> str:
        """``src:port → dst:port``, dropping the source port first when it does not fit."""
        full = f"{_hostport(self.src, self.src_port)} → {_hostport(self.dst, self.dst_port)}"
        if len(full) <= width or self.src_port < 0:
            return full
        short = f"{self.src} → {_hostport(self.dst, self.dst_port)}"
        return short if len(short) <= width else f"{self.src} → {self.dst}"


def display_batch(cb: ClassifiedBatch) -> ClassifiedBatch:
    """The display form of ``cb``: columns frame_number, time_epoch, frame_len, protocols, src, dst,
    sport, dport (see module doc); predictions, anomaly flags and labels unchanged."""
    p = cb.packets
    src, dst = endpoints(p)
    sport, dport = ports(p)
    info = p["info"] if "info" in p else np.full(len(p), "", dtype=object)
    cols = {"frame_number": p["frame_number"], "time_epoch": p["time_epoch"], "frame_len": p["frame_len"],
            "protocols": p["protocols"].astype(str), "src": src.astype(str), "dst": dst.astype(str),
            "sport": sport, "dport": dport, "info": info.astype(f"U{INFO_WIDTH}"),
            "tcp_flags": p["tcp_flags"]}
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

    def indices(self, flt: Filter, skip: int | None = None) -> np.ndarray:
        """Indices into ``cb`` (>= skip) of the rows passing ``flt``."""
        skip = self.skip if skip is None else skip
        key = (flt, skip)
        idx = self._masks.get(key)
        if idx is None:
            if flt[0] == "anomaly":
                idx = np.flatnonzero(self.cb.anomaly[skip:]) + skip
            elif flt[0] == "incident":   # ("incident", id, class, first frame, last frame, hosts)
                _, _, cls, lo, hi, hosts = flt
                p = self.cb.packets
                fr = p["frame_number"]
                m = self.cb.anomaly & (self.cb.predicted == cls) & (fr >= lo) & (fr <= hi)
                idx = np.flatnonzero(m[skip:]) + skip
                if hosts and len(idx):
                    # addresses of the few candidate rows only (np.isin over a whole chunk's object
                    # array of address strings sorted it: most of a 't' key's cost)
                    h = set(hosts)
                    keep = [s in h or d in h for s, d in zip(p["src"][idx].tolist(), p["dst"][idx].tolist())]
                    idx = idx[np.asarray(keep, dtype=bool)]
            elif flt[0] == "class":
                idx = np.flatnonzero(self.cb.predicted[skip:] == flt[1]) + skip
            else:
                idx = np.arange(skip, len(self.cb))
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
        return batch_row(self.cb, i, self.start + i)


def batch_row(cb: ClassifiedBatch, i: int, gid: int) -> Row:
    """Row ``i`` of a display batch."""
    p = cb.packets
    labels = cb.labels
    return Row(
        gid=gid, frame=int(p["frame_number"][i]), time=float(p["time_epoch"][i]),
        src=str(p["src"][i]), src_port=int(p["sport"][i]), dst=str(p["dst"][i]), dst_port=int(p["dport"][i]),
        proto=protocol_name(p["protocols"][i]), length=int(p["frame_len"][i]),
        predicted=int(cb.predicted[i]), confidence=float(cb.confidence[i]),
        anomaly=bool(cb.anomaly[i]), label=int(labels[i]) if labels is not None else -1,
        info=str(p["info"][i]) if "info" in p else "", flags=int(p["tcp_flags"][i]) if "tcp_flags" in p else -1,
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
        # the capture thread appends, the UI thread takes views: both under this lock (a View is
        # an immutable snapshot, so a paused screen keeps its rows while the store moves on)
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self._stored

    def append(self, cb: ClassifiedBatch) -> None:
        with self.lock:
            self._append(cb)

    def _append(self, cb: ClassifiedBatch) -> None:
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
        with self.lock:
            self._chunks.clear()
            self._stored = 0

    @property
    def first_gid(self) -> int:
        """gid of the oldest row still stored (``added`` when empty)."""
        with self.lock:
            if not self._chunks:
                return self.added
            head = self._chunks[0]
            return head.start + head.skip

    def row_by_gid(self, gid: int) -> Row | None:
        """The stored row with this gid, or None when it is not (or no longer) in memory."""
        with self.lock:
            chunks = self._chunks
            if not chunks or gid < chunks[0].start + chunks[0].skip or gid >= self.added:
                return None
            k = len(chunks) - 1
            while k > 0 and chunks[k].start > gid:   # few chunks, newest rows are asked for most
                k -= 1
            chunk = chunks[k]
        return chunk.row(gid - chunk.start)

    def snapshot(self) -> list:
        """The rows stored now, as (chunk, skip) pairs: later appends and evictions leave it alone."""
        with self.lock:
            return [(c, c.skip) for c in self._chunks]

    def view(self, flt: Filter = ("all",), snapshot: list | None = None) -> View:
        """The rows passing ``flt``: of the store now, or of an earlier ``snapshot()``."""
        chunks = self.snapshot() if snapshot is None else snapshot
        return View([(c, c.indices(flt, skip)) for c, skip in chunks])

    def features(self, gid: int) -> np.ndarray | None:
        """The kept model input of the row with this gid (None when evicted or not kept)."""
        with self.lock:
            chunks = list(self._chunks)
        for c in chunks:
            if c.start + c.skip <= gid < c.start + len(c.cb):
                return c.features(gid - c.start)
        return None


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


class PredictionLog:
    """What the model said about every packet of the run, in arrival order (index = gid): frame
    number, predicted class, confidence, anomaly flag, label and length; 12 bytes a packet (1M
    packets: 12 MB). It lets the table filter, sort and browse the whole run while ``RowStore``
    keeps only the newest rows' display columns; rows that left it are read back from the file
    (``PageCache``). Appended by the capture thread; readers take ``n`` first (arrays only grow)."""

    COLUMNS = (("frame", np.int32), ("predicted", np.int8), ("confidence", np.float16), ("anomaly", np.bool_),
               ("label", np.int8), ("length", np.int32))

    def __init__(self, capacity: int = 1 << 15):
        self.n = 0
        self._cols = {name: np.zeros(capacity, dtype) for name, dtype in self.COLUMNS}

    def __len__(self) -> int:
        return self.n

    def append(self, cb: ClassifiedBatch) -> None:
        k, n = len(cb), self.n
        cols = self._cols
        if n + k > len(cols["frame"]):
            size = max(2 * len(cols["frame"]), n + k)
            grown = {}
            for name, dtype in self.COLUMNS:
                a = np.zeros(size, dtype)
                a[:n] = cols[name][:n]
                grown[name] = a
            self._cols = cols = grown
        p = cb.packets
        cols["frame"][n:n + k] = p["frame_number"]
        cols["predicted"][n:n + k] = cb.predicted
        cols["confidence"][n:n + k] = cb.confidence
        cols["anomaly"][n:n + k] = cb.anomaly
        cols["label"][n:n + k] = cb.labels if cb.labels is not None else -1
        cols["length"][n:n + k] = p["frame_len"]
        self.n = n + k

    def col(self, name: str, n: int | None = None) -> np.ndarray:
        return self._cols[name][: self.n if n is None else n]

    def gid_of_frame(self, frame: int, n: int | None = None) -> int | None:
        """gid of frame number ``frame`` (frames arrive in ascending order), or None."""
        frames = self.col("frame", n)
        i = int(np.searchsorted(frames, frame))
        return i if i < len(frames) and frames[i] == frame else None


SORT_KEYS = ("No.", "Len", "Class", "Conf")


class LogView:
    """The table's rows: gids ``lo..hi`` of the run passing a filter (optionally sorted), row data from
    ``RowStore`` when in memory, else from ``PageCache`` (read back from the capture file), else a
    ``loading`` placeholder that already knows frame, class and confidence from the log."""

    def __init__(self, log: PredictionLog, rows: "RowStore", lo: int, hi: int, flt: Filter = ("all",),
                 frames: np.ndarray | None = None, sort: tuple[str, bool] | None = None,
                 pages: "PageCache | None" = None):
        self.log, self.rows, self.pages = log, rows, pages
        self.lo, self.hi = lo, hi
        gids: np.ndarray | None = None
        if flt[0] == "incident":
            # an incident's packets are matched on their hosts, which only the rows in memory have
            parts = [c.start + c.indices(flt, skip) for c, skip in rows.snapshot()]
            gids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            gids = gids[(gids >= lo) & (gids < hi)]
            if frames is not None:
                gids = gids[np.isin(log.col("frame", hi)[gids], frames)]
        elif flt[0] != "all" or frames is not None:
            mask = np.ones(hi - lo, dtype=bool)
            if flt[0] == "anomaly":
                mask &= log.col("anomaly", hi)[lo:]
            elif flt[0] == "class":
                mask &= log.col("predicted", hi)[lo:] == flt[1]
            if frames is not None:
                mask &= np.isin(log.col("frame", hi)[lo:], frames, assume_unique=True)
            gids = np.flatnonzero(mask) + lo
        if sort is not None and sort[0] != "No." or (sort is not None and sort[1]):
            if gids is None:
                gids = np.arange(lo, hi)
            key = {"Len": "length", "Class": "predicted", "Conf": "confidence"}.get(sort[0])
            if key is not None:
                order = np.argsort(log.col(key, hi)[gids], kind="stable")
                gids = gids[order]
            if sort[1]:
                gids = gids[::-1]
        self.sorted = sort is not None and (sort[0] != "No." or sort[1])
        self._gids = gids

    def __len__(self) -> int:
        return self.hi - self.lo if self._gids is None else len(self._gids)

    def gid(self, pos: int) -> int:
        return self.lo + pos if self._gids is None else int(self._gids[pos])

    def gids(self, start: int, stop: int) -> np.ndarray:
        return np.arange(self.lo + start, self.lo + stop) if self._gids is None else self._gids[start:stop]

    def position(self, gid: int) -> int:
        """View position of ``gid`` (unsorted: of the first row whose gid is >= ``gid``)."""
        if self._gids is None:
            return min(max(gid - self.lo, 0), len(self))
        if self.sorted:
            hits = np.flatnonzero(self._gids == gid)
            return int(hits[0]) if len(hits) else len(self)
        return int(np.searchsorted(self._gids, gid))

    def row(self, pos: int) -> Row:
        gid = self.gid(pos)
        row = self.rows.row_by_gid(gid)
        if row is not None:
            return row
        log = self.log
        frame = int(log.col("frame", self.hi)[gid])
        if self.pages is not None:
            row = self.pages.row(gid, frame)
            if row is not None:
                return replace(row, predicted=int(log.col("predicted", self.hi)[gid]),
                               confidence=float(log.col("confidence", self.hi)[gid]),
                               anomaly=bool(log.col("anomaly", self.hi)[gid]),
                               label=int(log.col("label", self.hi)[gid]))
        return Row(gid=gid, frame=frame, time=float("nan"), src="", src_port=-1, dst="", dst_port=-1, proto="",
                   length=int(log.col("length", self.hi)[gid]), predicted=int(log.col("predicted", self.hi)[gid]),
                   confidence=float(log.col("confidence", self.hi)[gid]),
                   anomaly=bool(log.col("anomaly", self.hi)[gid]), label=int(log.col("label", self.hi)[gid]),
                   loading=True)

    def next_anomaly(self, after: int) -> int | None:
        """Position of the first anomalous row after position ``after`` (-1 = from the top)."""
        start = after + 1
        if start >= len(self):
            return None
        if self._gids is None:
            hits = np.flatnonzero(self.log.col("anomaly", self.hi)[self.lo + start:])
        else:
            hits = np.flatnonzero(self.log.col("anomaly", self.hi)[self._gids[start:]])
        return start + int(hits[0]) if len(hits) else None

    def position_of_frame(self, frame: int) -> int | None:
        """View position of the first row whose frame number is >= ``frame`` (None if none)."""
        pos, _ = self.frame_position(frame)
        return pos

    def frame_position(self, frame: int) -> tuple[int | None, bool]:
        """(position, exact) of frame number ``frame``: exact when that frame is in the view, else the
        position of the next frame in view order (None if there is none)."""
        gid = self.log.gid_of_frame(frame, self.hi)
        if gid is not None and self.lo <= gid:
            pos = self.position(gid)
            if pos < len(self) and self.gid(pos) == gid:
                return pos, True
        frames = self.log.col("frame", self.hi)
        g = int(np.searchsorted(frames, frame))
        if self.sorted:
            return None, False
        pos = self.position(max(g, self.lo))
        return (pos if pos < len(self) else None), False


class PageCache:
    """Rows read back from the capture file through a ``FrameIndex`` (or from a live capture's ring
    files through ``tui.ring.LiveFrames``), by pages of PAGE gids; the
    newest ``keep`` pages stay (bounded memory). ``row`` never blocks: a missing page is queued and
    the app loads it in a worker (``take_request`` / ``load``)."""

    PAGE = 256

    def __init__(self, index, log: PredictionLog, keep: int = 64):
        self.index = index
        self.log = log
        self.keep = keep
        self._pages: OrderedDict[int, dict[int, Row]] = OrderedDict()
        self._wanted: list[int] = []
        self.failed: str | None = None
        self.generation = 0      # bumps when a page arrives (the table drops its cached lines)
        # live: frame -> the Info of a row whose frame left the ring (None: not on disk yet, retry)
        self.gone: "Callable[[int], str | None] | None" = None

    def row(self, gid: int, frame: int) -> Row | None:
        page = self._pages.get(gid // self.PAGE)
        if page is None:
            p = gid // self.PAGE
            if p not in self._wanted and self.failed is None:
                self._wanted.append(p)
            return None
        return page.get(gid)

    def take_request(self) -> int | None:
        """The most recently wanted page (what is on screen now), or None."""
        while self._wanted:
            p = self._wanted.pop()
            if p not in self._pages:
                self._wanted.clear()
                return p
        return None

    def load(self, p: int) -> None:
        """Read page ``p`` back (blocking: call from a worker thread)."""
        n = self.log.n
        lo, hi = p * self.PAGE, min((p + 1) * self.PAGE, n)
        frames = self.log.col("frame", n)[lo:hi]
        if not len(frames) or not self.index.done:
            return
        from iotwatch.captures.tshark.frames import read_frames

        batch = read_frames(self.index, frames)
        shown = display_batch(ClassifiedBatch(packets=batch, proba=np.zeros((len(batch), 1), np.float32),
                                              predicted=np.zeros(len(batch), np.int64),
                                              confidence=np.zeros(len(batch), np.float32),
                                              anomaly=np.zeros(len(batch), bool), labels=None))
        rows = {}
        at = {f: i for i, f in enumerate(shown.packets["frame_number"].tolist())}
        for gid, frame in zip(range(lo, hi), frames.tolist()):
            i = at.get(frame)
            if i is not None:
                rows[gid] = batch_row(shown, i, gid)
            elif self.gone is not None:
                why = self.gone(frame)
                if why is None:   # a live frame not on disk yet: ask again later
                    return
                # the live ring no longer holds it: the row says so
                rows[gid] = Row(gid=gid, frame=frame, time=float("nan"), src="", src_port=-1, dst="", dst_port=-1,
                                proto="", length=0, predicted=0, confidence=0.0, anomaly=False, label=-1, info=why)
        self._pages[p] = rows
        while len(self._pages) > self.keep:
            self._pages.popitem(last=False)
        self.generation += 1


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
