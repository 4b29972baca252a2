"""Frame index of a pcap/pcapng file, and read-back of any frames through tshark (no Textual here).

``FrameIndex(path).build()`` walks the record headers once (``ChunkPlanner``: mmap, ~1 us per packet,
walked pages given back) and keeps the byte offset of every ``STEP``-th packet record plus the header
blocks a reader needs there: 1M packets -> ~4k entries, so memory is bounded by the file's size / STEP,
never by its packets. Everything else reads only the bytes it needs:

* ``records(first, last)``: a valid pcap/pcapng stream (header + the records of frames first..last):
  seek to the nearest indexed record and walk at most STEP-1 record headers;
* ``read_fields(first, last)``: those frames as a ``PacketBatch`` through ``tshark -r -`` (the same
  fields, preferences and parser as the capture), frame numbers renumbered to the file's: what the
  table shows for rows no longer in memory;
* ``dissect(frame)`` / ``packet_bytes(frame)``: one frame's PDML tree (Wireshark's ``showname`` lines,
  nested as in Wireshark) and raw bytes, from a one-frame stream: the cost does not depend on where
  the frame sits in the file;
* ``filter_frames(expr)``: frame numbers matching a display filter over the whole file;
* ``write(frames, out)``: those frames as a new capture file of the same format (export);
* ``follow(frame, ...)``: ``tshark -z follow`` for the TCP/UDP conversation of one frame.

Frames are dissected on their own when read back (as the capture does: no reassembly, no sequence
analysis), so fields that need earlier frames (``[Response In]``, reassembled PDUs) are absent.
"""
from __future__ import annotations

import bisect
import os
import re
import select
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ..batch import PacketBatch
from .args import DISSECTION_PREFS, pref_args, tshark_fields_command
from ..pcapfile import PCAP_MAGICS, PCAPNG_BOM_LE, PCAPNG_HEADER_BLOCKS, PCAPNG_PACKET_BLOCKS, SECTION_HEADER
from .chunking import ChunkPlanner

STEP = 256           # packets between indexed offsets
TIMEOUT = 120.0      # seconds for any one tshark run over the whole file (filter, follow)


@dataclass
class Node:
    """One line of a dissection tree (Wireshark's summary line) and its children."""

    text: str
    children: list["Node"] = field(default_factory=list)


def _tshark() -> str:
    from .preflight import check_tools

    return check_tools().tshark


class FrameIndex:
    """Offsets of every STEP-th packet record of a capture file; ``frames`` = packets indexed so far."""

    def __init__(self, path: str | os.PathLike, tshark: str | None = None):
        self.path = os.fspath(path)
        self._tshark = tshark
        self.frames = 0
        self.done = False
        self.problem: str | None = None    # file cut short / damaged after ``frames``
        self.format: str | None = None
        self._first: list[int] = []        # frame number of each indexed record
        self._start: list[int] = []        # its byte offset
        self._header: list[int] = []       # index into _headers (header blocks before it)
        self._headers: list[bytes] = []
        self._header_ids: dict[bytes, int] = {}
        self._end = 0                       # offset after the last whole record walked

    @property
    def tshark(self) -> str:
        if self._tshark is None:
            self._tshark = _tshark()
        return self._tshark

    # --- building ---------------------------------------------------------------------------------
    def build(self, cancelled: Callable[[], bool] = lambda: False) -> "FrameIndex":
        """Walk the whole file once (call from a worker thread); ``frames`` grows as it goes."""
        planner = ChunkPlanner(self.path, STEP)
        self.format = planner.format
        try:
            for chunk in planner:
                if cancelled():
                    return self
                if chunk.packets:
                    hid = self._header_ids.get(chunk.header)
                    if hid is None:
                        hid = self._header_ids[chunk.header] = len(self._headers)
                        self._headers.append(chunk.header)
                    self._first.append(chunk.first_frame)
                    self._start.append(chunk.start)
                    self._header.append(hid)
                    self._end = chunk.stop
                    self.frames = chunk.first_frame + chunk.packets - 1
                if chunk.problem:
                    self.problem = chunk.problem
        finally:
            planner.close()
        self.done = True
        return self

    # --- walking records ----------------------------------------------------------------------------
    def _span(self, k: int) -> tuple[int, int]:
        start = self._start[k]
        stop = self._start[k + 1] if k + 1 < len(self._start) else self._end
        return start, stop

    def _walk(self, k: int) -> Iterable[tuple[int, int, int, bytes | None]]:
        """(frame, offset, length, header-block) for the records of indexed span ``k``: packet
        records have frame > 0; header blocks (pcapng SHB/IDB) come with frame 0 and their bytes."""
        start, stop = self._span(k)
        with open(self.path, "rb") as fh:
            data = os.pread(fh.fileno(), stop - start, start)
        frame, off = self._first[k], 0
        if self.format == "pcap":
            order = PCAP_MAGICS.get(self._headers[self._header[k]][:4], ">")
            incl = struct.Struct(order + "I").unpack_from
            while off + 16 <= len(data):
                n = 16 + incl(data, off + 8)[0]
                yield frame, start + off, n, None
                frame += 1
                off += n
            return
        order = self._pcapng_order(k)
        block = struct.Struct(order + "II").unpack_from
        while off + 12 <= len(data):
            btype, blen = block(data, off)
            if btype == SECTION_HEADER:
                order = "<" if data[off + 8:off + 12] == PCAPNG_BOM_LE else ">"
                block = struct.Struct(order + "II").unpack_from
                btype, blen = block(data, off)
            if blen < 12:
                return
            if btype in PCAPNG_PACKET_BLOCKS:
                yield frame, start + off, blen, None
                frame += 1
            elif btype == SECTION_HEADER or btype in PCAPNG_HEADER_BLOCKS:
                yield 0, start + off, blen, data[off:off + blen]
            off += blen

    def _pcapng_order(self, k: int) -> str:
        head = self._headers[self._header[k]]
        if len(head) >= 12:
            return "<" if head[8:12] == PCAPNG_BOM_LE else ">"
        with open(self.path, "rb") as fh:   # first span: the section header is inside the range
            return "<" if os.pread(fh.fileno(), 4, 8) == PCAPNG_BOM_LE else ">"

    def _span_of(self, frame: int) -> int:
        if not 1 <= frame <= self.frames:
            raise LookupError(f"frame {frame} is not in {self.path} ({self.frames:,} frames)")
        return bisect.bisect_right(self._first, frame) - 1

    # --- reading back -------------------------------------------------------------------------------
    def records(self, first: int, last: int) -> bytes:
        """A capture stream (header blocks + records) holding exactly frames first..last."""
        last = min(last, self.frames)
        return self.select(range(first, last + 1))

    def select(self, frames: Iterable[int]) -> bytes:
        """A capture stream holding the given frames (ascending), in the file's format."""
        out: list[bytes] = []
        header: bytes | None = None      # header blocks in force for what was written so far
        wanted = iter(sorted(set(int(f) for f in frames)))
        f = next(wanted, None)
        fh = open(self.path, "rb")
        try:
            while f is not None:
                k = self._span_of(f)
                span_header = self._headers[self._header[k]]
                blocks = [span_header] if span_header else []
                for frame, off, n, hdr in self._walk(k):
                    if hdr is not None:   # pcapng header block inside the span
                        blocks = [hdr] if struct.unpack_from("<I", hdr)[0] == SECTION_HEADER else blocks + [hdr]
                        continue
                    if frame != f:
                        continue
                    now = b"".join(blocks)
                    if now != header:
                        if header and now.startswith(header):
                            out.append(now[len(header):])   # interfaces added in the same section
                        else:
                            out.append(now)                   # the first header, or a new section
                        header = now
                    out.append(os.pread(fh.fileno(), n, off))
                    f = next(wanted, None)
                    if f is None or self._span_of(f) != k:
                        break
                else:
                    if f is not None and self._span_of(f) == k:
                        raise LookupError(f"frame {f} not found in {self.path}")
        finally:
            fh.close()
        return b"".join(out)

    def write(self, frames: Iterable[int], out: str | os.PathLike) -> int:
        """Write the given frames to a new capture file ``out`` (same format); returns the count.
        ``out`` must not exist (nothing is ever replaced)."""
        frames = sorted(set(int(f) for f in frames))
        data = self.select(frames)
        with open(out, "xb") as fh:
            fh.write(data)
        return len(frames)

    def packet_bytes(self, frame: int) -> bytes:
        """The captured bytes of one frame (what the hex pane shows)."""
        rec = self.select([frame])
        if self.format == "pcap":
            return rec[24 + 16:]
        # the stream is header blocks, then the packet record last
        order = "<" if rec[8:12] == PCAPNG_BOM_LE else ">"
        off, last = 0, b""
        while off + 12 <= len(rec):
            blen = struct.unpack_from(order + "I", rec, off + 4)[0]
            if blen < 12:
                break
            last = rec[off:off + blen]
            off += blen
        btype = struct.unpack_from(order + "I", last)[0]
        if btype == 3:                       # simple packet block
            orig = struct.unpack_from(order + "I", last, 8)[0]
            return last[12:12 + min(orig, len(last) - 16)]
        caplen = struct.unpack_from(order + "I", last, 20)[0]
        return last[28:28 + caplen]

    def _run(self, argv: list[str], stdin: bytes | None = None, timeout: float = TIMEOUT) -> str:
        cp = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True,
                            timeout=timeout)
        if cp.returncode != 0:
            lines = [ln for ln in cp.stderr.decode("utf-8", "replace").splitlines()
                     if ln.strip() and not ln.startswith("Running as user")]
            raise RuntimeError((lines[0] if lines else f"tshark exited {cp.returncode}").removeprefix("tshark: "))
        return cp.stdout.decode("utf-8", "replace")

    def read_fields(self, first: int, last: int) -> PacketBatch:
        """Frames first..last as the capture's fields (Info column included), file frame numbers."""
        return self.read(range(first, min(last, self.frames) + 1))

    def read(self, frames) -> PacketBatch:
        """The given frames (ascending frame numbers) as the capture's fields, with their frame numbers."""
        from .parser import FieldsParser

        frames = np.asarray(list(frames) if not isinstance(frames, np.ndarray) else frames, dtype=np.int64)
        text = self._run(tshark_fields_command(self.tshark, read="-", line_buffered=False),
                         stdin=self.select(frames.tolist()))
        batch = FieldsParser().parse(text)
        if len(batch) == len(frames):
            batch["frame_number"][:] = frames
        return batch

    def dissect(self, frame: int, number_as: int | None = None) -> list[Node]:
        """Wireshark's tree for one frame: one ``Node`` per protocol (its summary line), nested fields,
        numbered as ``number_as`` if given (a ring file's frame shown with its number in the run).
        A one-shot tshark (~170 ms of start-up); ``Dissector`` keeps one running instead."""
        xml = self._run([self.tshark, "-n", "-T", "pdml", *pref_args(DISSECTION_PREFS), "-r", "-"],
                        stdin=self.select([frame]), timeout=30)
        return pdml_tree(xml, frame if number_as is None else number_as)

    def filter_frames(self, expr: str, cancelled: Callable[[], bool] = lambda: False) -> np.ndarray:
        """Frame numbers (ascending) of the whole file matching display filter ``expr``."""
        argv = [self.tshark, "-n", "-Y", expr, "-T", "fields", "-e", "frame.number",
                *pref_args(DISSECTION_PREFS), "-r", self.path]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            chunks = []
            while True:
                if cancelled():
                    proc.kill()
                    return np.zeros(0, dtype=np.int64)
                buf = proc.stdout.read1(1 << 16)
                if not buf:
                    break
                chunks.append(buf)
            err = proc.stderr.read().decode("utf-8", "replace")
            rc = proc.wait(TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        if rc != 0:
            lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Running as user")]
            raise RuntimeError((lines[0] if lines else f"tshark exited {rc}").removeprefix("tshark: "))
        text = b"".join(chunks)
        return np.fromstring(text.decode(), dtype=np.int64, sep="\n") if text.strip() else np.zeros(0, np.int64)

    def filter_range(self, expr: str, first: int, last: int) -> np.ndarray:
        """Frame numbers (of this file, ascending) among ``first..last`` matching display filter
        ``expr``: tshark reads only those records, so a filter that needs earlier frames (TCP
        analysis, reassembly, stream numbers) sees the range on its own (the live TUI's filter)."""
        last = min(last, self.frames)
        if last < first:
            return np.zeros(0, np.int64)
        text = self._run([self.tshark, "-n", "-Y", expr, "-T", "fields", "-e", "frame.number",
                          *pref_args(DISSECTION_PREFS), "-r", "-"], stdin=self.records(first, last))
        nums = np.array(text.split(), dtype=np.int64) if text.strip() else np.zeros(0, np.int64)
        return nums + (first - 1)

    def follow(self, proto: str, a: str, b: str) -> str:
        """``tshark -z follow,<proto>,ascii,<a>,<b>`` over the file (``a``/``b`` = ``ip:port``)."""
        if proto not in ("tcp", "udp"):
            raise ValueError("follow works for tcp and udp")
        text = self._run([self.tshark, "-n", "-q", "-z", f"follow,{proto},ascii,{a},{b}", "-r", self.path])
        lines = text.splitlines()
        body = [ln for ln in lines if not ln.startswith("=====")]
        return "\n".join(body).strip("\n")


# generated cross-references to other frames: their numbers belong to tshark's own run, not the file
_XREF = re.compile(r"^\[?[^\]]*\b(?:[Ff]rame|[Ii]n|[Tt]o|[Ss]tream index)\b: \d+\]?$")
_RUN_RELATIVE = ("Time delta from previous captured frame", "Time delta from previous displayed frame",
                 "Time since reference or first frame", "Frame Number:")


def pdml_tree(xml: str | bytes, frame: int) -> list[Node]:
    """The protocols of the (one) packet of a PDML document as ``Node`` trees, numbered as frame
    ``frame`` of the file; lines that only make sense within tshark's own run (deltas to the frame it
    saw before, references to other frames) are left out."""
    root = ET.fromstring(xml)
    packet = root if root.tag == "packet" else root.find("packet")
    if packet is None:
        raise LookupError(f"tshark returned no packet for frame {frame}")
    out = []
    for proto in packet.findall("proto"):
        if proto.get("name") in ("geninfo", "fake-field-wrapper"):
            continue
        node = _node(proto)
        if node is None:
            continue
        if proto.get("name") == "frame":
            node.text = re.sub(r"^Frame \d+:", f"Frame {frame}:", node.text, count=1)
            node.children = [c for c in node.children if not c.text.startswith(_RUN_RELATIVE)]
            node.children.insert(0, Node(f"Frame Number: {frame}"))
        out.append(node)
    return out


class Dissector:
    """One long-running ``tshark -T pdml -r -`` fed one frame at a time: its start-up (~170 ms,
    several times that on a loaded machine) is paid once, then a frame costs a few ms. The capture
    header goes first; a frame that needs other header blocks restarts it. Thread-safe (one lock).
    Restarted every ``RECYCLE`` frames so its memory stays flat."""

    RECYCLE = 500

    def __init__(self, index: FrameIndex):
        self.index = index
        self._proc: subprocess.Popen | None = None
        self._header: bytes | None = None
        self._buf = b""
        self._served = 0
        self._late = 0       # questions whose answers have not been read yet (timed out)
        self._lock = threading.Lock()

    def start(self, frame: int = 1) -> None:
        """Start tshark now and let it dissect ``frame`` once, so the user's first frame is fast too."""
        self.dissect(frame)

    def _restart(self, header: bytes) -> None:
        self._stop()
        self._proc = subprocess.Popen([self.index.tshark, "-l", "-n", "-T", "pdml", *pref_args(DISSECTION_PREFS),
                                       "-r", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
        self._proc.stdin.write(header)
        self._proc.stdin.flush()
        self._header, self._buf, self._served, self._late = header, b"", 0, 0

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()

    @property
    def ready(self) -> bool:
        """tshark is running and idle: a frame now costs milliseconds."""
        return self._proc is not None and self._proc.poll() is None and not self._lock.locked()

    def dissect(self, frame: int, timeout: float = 20.0, only_if_ready: bool = False) -> list[Node] | None:
        """The tree of ``frame``. ``only_if_ready``: None instead of starting or waiting for tshark
        (so a caller that must not block can try first and fall back to a worker)."""
        header, record = _split_record(self.index.select([frame]), self.index.format)
        if only_if_ready and not self._lock.acquire(blocking=False):
            return None
        if not only_if_ready:
            self._lock.acquire()
        try:
            if (self._proc is None or self._proc.poll() is not None or header != self._header
                    or self._served >= self.RECYCLE):
                if only_if_ready:
                    return None
                self._restart(header)
            try:
                while self._late:          # answers to earlier questions that timed out
                    self._read_packet(max(timeout, 5.0))
                    self._late -= 1
                self._proc.stdin.write(record)
                self._proc.stdin.flush()
            except (OSError, TimeoutError):
                self._stop()
                raise
            try:
                xml = self._read_packet(timeout)
            except TimeoutError:
                # slow (a loaded machine), not broken: keep it warm, its answer is skipped next time
                self._late += 1
                raise
            except OSError:
                self._stop()
                raise
            self._served += 1
        finally:
            self._lock.release()
        return pdml_tree(xml, frame)

    def _read_packet(self, timeout: float) -> bytes:
        end = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while b"</packet>" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("tshark did not answer")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise OSError("tshark ended")
            self._buf += chunk
        start = self._buf.find(b"<packet>")
        stop = self._buf.index(b"</packet>") + len(b"</packet>")
        xml, self._buf = self._buf[start:stop], self._buf[stop:]
        return xml


def _split_record(stream: bytes, fmt: str | None) -> tuple[bytes, bytes]:
    """(header, last record) of a one-frame stream from ``FrameIndex.select``."""
    if fmt == "pcap":
        return stream[:24], stream[24:]
    order = "<" if stream[8:12] == PCAPNG_BOM_LE else ">"
    off, last = 0, 0
    while off + 12 <= len(stream):
        last = off
        off += struct.unpack_from(order + "I", stream, off + 4)[0]
    return stream[:last], stream[last:]


def _node(el: ET.Element) -> Node | None:
    if el.get("hide") == "yes":
        return None
    text = el.get("showname") or el.get("show") or el.get("name") or ""
    if _XREF.match(text):
        return None
    node = Node(text)
    for child in el:
        if child.tag not in ("field", "proto"):
            continue
        sub = _node(child)
        if sub is not None and (sub.text or sub.children):
            node.children.append(sub)
    return node


def read_frames(index: FrameIndex, frames) -> PacketBatch:
    return index.read(frames)
