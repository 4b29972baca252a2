"""The frames a live capture keeps on disk, read back like a capture file (no Textual here).

A live TUI run keeps dumpcap's stream in a bounded ring of pcapng files (``captures/keep.py``; the
user's ``-w`` or a private temporary ring, 8 x 16 MB); ``source.kept_frames()`` lists them as
``(path, first_frame, last_frame)`` in the run's frame numbers. ``LiveFrames`` maps a frame number to
its file and that file's own numbering, and answers what the TUI asks of a capture file's
``FrameIndex``: the dissection and bytes of one frame (detail), rows read back (``PageCache``: a long
pause beyond the rows held in memory), and the frames matching a display filter (``LiveFilter``).
A frame that fell out of the ring raises ``NotKept`` with one line that says so.
"""
from __future__ import annotations

import threading
from typing import Iterable

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.tshark.frames import FrameIndex, Node

FILTER_BLOCK = 20_000   # frames per tshark run of the live display filter


class NotKept(LookupError):
    """The frame is not (or no longer, or not yet) in the files the live capture keeps."""


class LiveFrames:
    """``FrameIndex``-like access to the files of a live capture's ring (thread-safe)."""

    done = True          # what PageCache asks of an index: always ready (files are indexed on demand)
    format = "pcapng"

    def __init__(self, source):
        self.source = source
        self._indexes: dict[str, FrameIndex] = {}
        self._lock = threading.Lock()

    def kept(self) -> list:
        """The kept files, oldest first (``[]`` when the source keeps none)."""
        try:
            return list(self.source.kept_frames())
        except Exception:   # the source is closing: nothing to read back
            return []

    def span(self) -> tuple[int, int] | None:
        """(first, last) frame number still kept, or None."""
        kept = self.kept()
        return (kept[0].first_frame, kept[-1].last_frame) if kept else None

    def why_not(self, frame: int, kept: list | None = None) -> str:
        kept = self.kept() if kept is None else kept
        if not kept:
            return f"frame {frame:,} is not kept: this live capture keeps no frames on disk (yet)"
        first, last = kept[0].first_frame, kept[-1].last_frame
        if frame < first:
            return (f"frame {frame:,} fell out of the live ring (it keeps the newest {len(kept)} files: "
                    f"frames {first:,}-{last:,}); -w FILE -b files:N keeps more")
        return f"frame {frame:,} is not on disk yet (kept: frames {first:,}-{last:,}); try again in a moment"

    def _index(self, path: str, local: int) -> FrameIndex:
        with self._lock:
            idx = self._indexes.get(path)
            if idx is None or idx.frames < local:   # new, or the file still being written grew
                try:
                    idx = FrameIndex(path).build()
                except (OSError, ValueError) as e:   # deleted by the ring meanwhile
                    raise NotKept(f"{path}: {e}") from None
                self._indexes[path] = idx
                kept = {k.path for k in self.kept()}
                for p in [p for p in self._indexes if p not in kept and p != path]:
                    del self._indexes[p]
        return idx

    def locate(self, frame: int) -> tuple[FrameIndex, int, int]:
        """(index of its file, its number in that file, the file's first frame) or ``NotKept``."""
        kept = self.kept()
        for k in kept:
            if k.first_frame <= frame <= k.last_frame:
                local = frame - k.first_frame + 1
                idx = self._index(k.path, local)
                if idx.frames < local:
                    break
                return idx, local, k.first_frame
        raise NotKept(self.why_not(frame, kept))

    # --- what the detail view asks -----------------------------------------------------------------
    def dissect(self, frame: int) -> list[Node]:
        idx, local, _ = self.locate(frame)
        try:
            return idx.dissect(local, number_as=frame)
        except (OSError, LookupError) as e:
            raise NotKept(f"frame {frame:,}: {e}") from None

    def packet_bytes(self, frame: int) -> bytes:
        idx, local, _ = self.locate(frame)
        return idx.packet_bytes(local)

    # --- rows read back (PageCache) ----------------------------------------------------------------
    def read(self, frames: Iterable[int]) -> PacketBatch:
        """The kept ones of ``frames`` (ascending) as the capture's fields with their run frame
        numbers; frames no longer kept are left out."""
        frames = [int(f) for f in frames]
        parts = []
        for k in self.kept():
            mine = [f for f in frames if k.first_frame <= f <= k.last_frame]
            if not mine:
                continue
            try:
                idx = self._index(k.path, mine[-1] - k.first_frame + 1)
                local = [f - k.first_frame + 1 for f in mine if f - k.first_frame + 1 <= idx.frames]
                if not local:
                    continue
                batch = idx.read(local)
            except (NotKept, OSError, LookupError, RuntimeError):
                continue   # the file left the ring meanwhile
            if len(batch) == len(local):
                batch["frame_number"][:] = np.asarray(local, dtype=np.int64) + (k.first_frame - 1)
                parts.append(batch)
        if not parts:
            return PacketBatch.empty()
        return parts[0] if len(parts) == 1 else PacketBatch.concat(parts)

    def select(self, frames):   # never used for live files (export needs a capture file)
        raise NotKept("saving needs a capture file (-r FILE), or start the live capture with -w FILE")


class LiveFilter:
    """A display filter over a live capture: tshark runs it over the kept files' new frames, block by
    block (``step``), and the matching run frame numbers accumulate. ``upto`` = the last frame
    checked; frames that left the ring before they were checked are counted in ``lost``."""

    def __init__(self, frames: LiveFrames, expr: str):
        self.frames = frames
        self.expr = expr
        self.upto = 0
        self.lost = 0
        self.matched = np.zeros(0, np.int64)

    def step(self, cancelled=lambda: False) -> bool:
        """Check up to FILTER_BLOCK new kept frames; True when something new was checked."""
        moved = False
        for k in self.frames.kept():
            if cancelled():
                break
            lo = max(k.first_frame, self.upto + 1)
            if lo > k.last_frame:
                continue
            if lo > self.upto + 1:
                self.lost += lo - self.upto - 1
            hi = min(k.last_frame, lo + FILTER_BLOCK - 1)
            try:
                idx = self.frames._index(k.path, hi - k.first_frame + 1)
                hi = min(hi, idx.frames + k.first_frame - 1)
                if hi < lo:
                    break
                hits = idx.filter_range(self.expr, lo - k.first_frame + 1, hi - k.first_frame + 1)
            except NotKept:
                continue
            if len(hits):
                self.matched = np.concatenate([self.matched, hits + (k.first_frame - 1)])
            self.upto = hi
            moved = True
            break   # one block per step: the caller posts progress in between
        return moved
