"""Live capture in successive tshark runs, so a capture that runs for hours keeps flat memory.

tshark keeps per-session state for every packet it has read (~7.6 MB per 100k packets on a live
loopback capture here; ``-M`` session resets made it worse). File replay bounds it with chunks
(``chunking.py``); a live capture has no file to chunk, so :class:`PcapngSplitter` chunks dumpcap's
pcapng *stream*: a thread reads it block by block (type + total length framing), keeps the
section header and the interface descriptions, and forwards whole blocks to the current tshark's
stdin. After ``per_segment`` packets it closes that stdin (tshark dissects what it has, then exits)
and carries on into the next tshark's stdin, which first receives the saved header blocks. No
packet is dropped or sent twice, and since every segment but the last holds exactly
``per_segment`` packets, frame numbers continue across tsharks (segment k starts at frame
``k * per_segment + 1``; the source renumbers like chunked replay).

The splitter never starts a process: processes belong to the thread that owns the source
(``process.py``), so the source starts each tshark and hands its stdin over with
:meth:`PcapngSplitter.attach` when :meth:`PcapngSplitter.wants_output` says one is needed. Until
then the splitter waits and dumpcap's kernel buffer holds the traffic.
"""
from __future__ import annotations

import os
import time

from .process import ByteMover, grow_pipe, read_some
from ..keep import PcapngWalker

_READ_SIZE = 1 << 20


class PcapngSplitter(ByteMover):
    """Reads a pcapng stream from ``read_fd`` (ours: closed when done) in a thread and forwards it to
    the stdin of one tshark after another, ``per_segment`` packets each.

    Owner side (the thread that starts tsharks): ``wants_output()`` -> start a tshark on a new pipe
    -> ``attach(write_fd)`` (returns the frame number its first packet will have); ``stop()`` on
    close (the splitter then drains and discards the stream, so dumpcap can still exit cleanly and
    report its statistics); ``join()``.
    """

    def __init__(self, read_fd: int, per_segment: int, name: str = "iotwatch-live-splitter", tee=None):
        if per_segment <= 0:
            raise ValueError("per_segment must be positive")
        super().__init__(name)
        self.per_segment = per_segment
        self.tee = tee                 # a captures.keep.CaptureKeeper: gets every run of whole blocks first
        self._fd = read_fd
        self._next: int | None = None  # write fd attached by the owner, not used yet
        self._attached = 0             # outputs handed over so far
        self._want = True              # an output is needed: the first one, or the next after a rotation
        self._done = False             # the stream ended (or we stopped): no output wanted any more
        self.header = b""              # section header + interface descriptions: what a new tshark reads first
        self.packets = 0               # packet blocks forwarded
        self.rotations = 0             # tshark stdins closed after per_segment packets
        self.waited = 0.0              # seconds spent waiting for the next tshark (dumpcap's buffer holds the traffic)
        self.longest_wait = 0.0
        self.problem: str | None = None  # why the stream could not be split / forwarded, when it could not
        grow_pipe(read_fd)
        self._thread.start()

    # -- owner side -------------------------------------------------------------------------------

    def wants_output(self) -> bool:
        """True when the splitter needs the next tshark's stdin (it waits for it)."""
        with self._cond:
            return self._want and not self._done

    def attach(self, write_fd: int) -> int:
        """Hand over the next tshark's stdin (the splitter closes it). Returns the 1-based frame number
        of the first packet it will get. If the stream already ended, that tshark gets the header
        blocks alone (a valid capture with no packets) and ends at once."""
        grow_pipe(write_fd)
        with self._cond:
            first = self._attached * self.per_segment + 1
            self._attached += 1
            self._want = False
            if not self._done:
                if self._next is not None:  # never happens when the owner asks wants_output() first
                    os.close(self._next)
                self._next = write_fd
                self._cond.notify_all()
                return first
        _write_all(write_fd, self.header)
        os.close(write_fd)
        return first

    # stop() (inherited): stop forwarding, close the current tshark's stdin, then read and discard
    # until the stream ends

    # -- splitter thread --------------------------------------------------------------------------

    def _take_output(self) -> int | None:
        t0 = time.monotonic()
        with self._cond:
            while self._next is None and not self._stopped:
                self._cond.wait()
            if self.rotations:
                wait = time.monotonic() - t0
                self.waited += wait
                self.longest_wait = max(self.longest_wait, wait)
            if self._stopped:
                return None
            fd, self._next = self._next, None
            return fd

    def _run(self) -> None:
        buf = bytearray()
        out: int | None = None
        in_segment = 0   # packets forwarded to the current tshark
        split = True     # False after a framing problem: pass bytes through to one tshark, never rotate
        # one walk of the stream's blocks serves the rotation and the keeper (the tee's own walker)
        walker = self.tee.walker if self.tee is not None else PcapngWalker()
        try:
            while True:
                data = read_some(self._fd, _READ_SIZE)
                if not data:
                    break
                if self._stopped:
                    out = _close(out)
                    buf.clear()
                    continue  # drain: dumpcap must be able to write its last blocks and exit
                buf += data
                pos = 0
                while pos < len(buf):
                    header = self.header  # what a tshark starting at ``pos`` needs first
                    end, packets, runs = pos, 0, []
                    if split:
                        end, packets, runs = walker.walk(buf, pos, self.per_segment - in_segment,
                                                         runs=self.tee is not None)
                        self.header = walker.header
                        if walker.problem:
                            split = False
                            self.problem = f"live capture stream: {walker.problem}; no tshark rotation from there"
                    if not split:
                        end = len(buf)  # from here on: raw pass-through
                    if end == pos:
                        break  # the next whole block is not in yet
                    if split and self.tee is not None:
                        self._feed_tee(bytes(memoryview(buf)[pos:end]), runs)   # one copy, not two
                    if out is None:
                        out = self._take_output()
                        if out is None or (self.rotations and not _write_all(out, header)):
                            out = self._broken(out)
                            buf.clear()
                            break
                    if not _write_all(out, memoryview(buf)[pos:end]):
                        out = self._broken(out)
                        buf.clear()
                        break
                    self.packets += packets
                    in_segment += packets
                    pos = end
                    if in_segment >= self.per_segment and split:
                        with self._cond:
                            self._want = True  # before the close: the owner sees the old tshark end after this
                            self.rotations += 1
                        out = _close(out)
                        in_segment = 0
                if pos:
                    del buf[:pos]
        finally:
            if buf and out is not None and not self._stopped:
                _write_all(out, bytes(buf))  # a partial last block: tshark reports the cut
            _close(out)
            with self._cond:
                self._done = True
                leftover, self._next = self._next, None
            if leftover is not None:  # attached after the last rotation, before the stream ended
                _write_all(leftover, self.header)
                os.close(leftover)
            os.close(self._fd)

    def _feed_tee(self, chunk: bytes, runs: list) -> None:
        """The packets of whole blocks (``chunk``, walked into ``runs``) to the keeper (-w files, the
        flagged window) before tshark sees them."""
        for run in runs:
            run.data = chunk
        try:
            self.tee.feed_runs(runs)
        except Exception as e:  # noqa: BLE001 -- a keeper bug must not stop the capture
            self.tee.problem = f"keeping the capture failed: {type(e).__name__}: {e}"
            self.tee = None

    def _broken(self, out: int | None) -> None:
        """No tshark to write to (stopped), or it stopped reading (killed on close, or failed): stop
        forwarding and drain; the source reports a failed tshark from its exit."""
        if not self._stopped:
            self.problem = "tshark stopped reading the live capture"
        self.stop()
        return _close(out)


def _write_all(fd: int, data) -> bool:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:  # BrokenPipeError: the reader is gone
            return False
    return True


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
    return None
