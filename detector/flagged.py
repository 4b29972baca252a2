"""``--write-flagged FILE``: the packets the detector flagged (anomalous), as a pcapng an analyst opens in
Wireshark, each with a frame comment (``opt_comment``, Wireshark's ``frame.comment``)::

    iotwatch: dos confidence=0.973 incident=3 frame=1234

``incident=N`` (the report's incident id) is given when the packet belongs to an incident; ``frame``
is its frame number in the source (the flagged file numbers its own frames 1, 2, ...). Comments the
source already had (e.g. ``label=<class>`` ground truth) are kept.

A flagged packet's incident may not be decided yet when it is classified (a key's first packets are
*pending* until the incident opens, see ``incidents.py``), so packets wait in a FIFO queue until their
track opened (id known) or ended without opening; the queue holds at most ``MAX_WAITING`` packets
(beyond that the oldest are written without an id). Written in frame order; the blocks come from
``captures.keep`` (``FileFrames`` for a replay, the live ``CaptureKeeper``'s window).
"""
from __future__ import annotations

import collections

from iotwatch.captures.keep import Frame, PcapngRing

MAX_WAITING = 50_000


class FlaggedWriter:
    def __init__(self, ring: PcapngRing, classes, engine):
        self.ring = ring
        self.classes = list(classes)
        self.engine = engine          # the run's IncidentEngine: whose tracks are still pending
        self._queue: collections.deque = collections.deque()   # (Frame, cls, conf, Track|None)
        self.with_incident = 0        # ... of which with an incident id

    def add(self, frames: list[Frame], info: dict, tracks: dict) -> None:
        """``frames`` (ascending) with ``info[frame] = (class index, confidence)`` and ``tracks[frame]``
        = the incident Track the packet was grouped into (if any)."""
        for f in frames:
            cls, conf = info[f.number]
            self._queue.append((f, cls, conf, tracks.get(f.number)))
        self._drain(final=False)
        self.ring.flush()

    def _resolved(self, tr) -> bool:
        return tr is None or tr.id > 0 or self.engine.tracks.get((tr.cls, tr.key)) is not tr

    def _drain(self, final: bool) -> None:
        q = self._queue
        while q and (final or len(q) > MAX_WAITING or self._resolved(q[0][3])):
            f, cls, conf, tr = q.popleft()
            name = self.classes[cls] if 0 <= cls < len(self.classes) else str(cls)
            text = f"iotwatch: {name} confidence={conf:.3f}"
            if tr is not None and tr.id > 0:
                text += f" incident={tr.id}"
                self.with_incident += 1
            text += f" frame={f.number}"
            if not self.ring.packet(f, text):
                q.clear()
                return

    def close(self, header) -> None:
        """Write every waiting packet (the run ended: incidents are final) and complete the file."""
        self._drain(final=True)
        self.ring.close(header)
