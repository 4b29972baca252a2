"""Keeping captured packets as pcapng files: ``-w FILE`` with dumpcap's ``-b`` ring buffer, the
flagged-packets file (``--write-flagged``) and the frames a live TUI shows in its detail view.

Public API (captures layer; detector/run.py and the TUI build on it):

* :class:`RingOptions` -- dumpcap's ``-b`` options: ``RingOptions.parse(["filesize:1000", "files:8"])``
  (``filesize:KB`` with kB = 1000 bytes as dumpcap, ``duration:SECONDS`` of capture time, ``packets:N``,
  ``files:N`` = keep only the newest N files; ``files`` alone is an error like dumpcap's).
* :class:`KeptFile` -- ``(path, first_frame, last_frame)``: one file that holds frames
  ``first_frame..last_frame`` (global frame numbers as iotwatch numbers them, i.e. ``frame.number`` of
  the whole capture). In a live capture the frames of a file are contiguous, so frame ``n`` is frame
  ``n - first_frame + 1`` of that file (``tshark -r path -Y frame.number==...``).
* ``source.kept_frames() -> list[KeptFile]`` (on ``TsharkFieldsSource``; oldest first, thread-safe, may
  be called from any thread while the capture runs): live, the files the capture tee wrote so far and
  still on disk (a ring's deleted files are gone from the list; only frames already flushed to disk are
  listed); a replay or standard input: ``[]`` (a replay's frames are in the file it reads).
  (A ``-w FILE --append`` file also holds earlier runs' sections before this run's frames: the offset
  rule above holds only for files this run created -- ring files and private rings always are.)
  A live run keeps files only when it was given a :class:`CaptureKeeper`: the user's ``-w`` (MonitorRun
  builds it), or :meth:`CaptureKeeper.private` -- a bounded ring in a private temporary folder
  (``PRIVATE_RING_FILES`` x ``PRIVATE_RING_KB``) removed by ``close()`` -- which MonitorRun uses for a
  live TUI run without ``-w``.
* :class:`CaptureKeeper` -- the live tee: the ``PcapngSplitter`` (``tshark/rotation.py``) hands it every
  run of whole pcapng blocks of dumpcap's stream *before* tshark gets them (``feed``); it writes them
  into one file or a ring (each ring file a valid pcapng starting with the section header and the
  interface descriptions), and, when asked to (``window_bytes``), keeps the most recent packet blocks in
  memory so ``take(frames)`` can hand the flagged ones to the flagged writer.
* :class:`FileFrames` -- the same ``take(frames)`` for a replayed file (pcapng as is, pcap converted to
  pcapng blocks, gzip-compressed either way), read once, front to back.
* :class:`PcapngRing` -- the writer under both: one file (or standard output, ``-``) or dumpcap's ring,
  named ``FILE_00001_YYYYmmddHHMMSS.pcapng`` when ``-b`` is given; optional per-packet comments
  (``opt_comment``); every file goes through ``captures.files.OutputFile`` (never replaces a
  non-regular file; an existing file only with ``--force``).

A file is always whole blocks: a run that is stopped (Ctrl-C, -c, -a) closes its files at a block
boundary, so every kept file reads back with tshark/capinfos.
"""
from __future__ import annotations

import atexit
import bisect
import collections
import errno
import gzip
import os
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from .errors import InputError
from .files import OutputFile, appended_head, write_error
from .pcapfile import (ENHANCED_PACKET, IF_TSRESOL, INTERFACE_DESCRIPTION, MAX_RECORD, OBSOLETE_PACKET, OPT_COMMENT,
                       OPT_ENDOFOPT, PCAP_HEADER_LEN, PCAP_MAGICS, PCAP_MAGICS_NS, PCAP_RECORD_LEN,
                       PCAPNG_HEADER_BLOCKS,
                       SECTION_HEADER, SIMPLE_PACKET, capture_format, interface_description_block,
                       section_byte_order, section_header_block)

PRIVATE_RING_FILES = 8        # a live TUI run without -w keeps this many files ...
PRIVATE_RING_KB = 16_000      # ... of this many kB each (dumpcap's kB: 1000 bytes)
WINDOW_BYTES = 64 << 20       # live --write-flagged: packet blocks kept in memory until classified
_WRITE_BUFFER = 1 << 20      # bytes collected before they are written
_PIECE = 256 << 10            # at most this much of a run in one write (what a write error can cost)
_READ_SIZE = 1 << 20


# --- dumpcap's -b --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RingOptions:
    """dumpcap's ring-buffer options (``-b KEY:VALUE``, repeatable)."""

    filesize_kb: int | None = None   # switch to the next file once this one holds this many kB (1000 bytes)
    duration: float | None = None    # ... once it spans this many seconds of capture time
    packets: int | None = None       # ... once it holds this many packets
    files: int | None = None         # keep only the newest N files (delete the oldest ones this run wrote)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> "RingOptions | None":
        """``["filesize:1000", "files:5"]`` -> RingOptions; ``[]`` -> None. InputError on anything else."""
        if not specs:
            return None
        values: dict = {}
        names = {"filesize": "filesize_kb", "duration": "duration", "packets": "packets", "files": "files"}
        for spec in specs:
            key, sep, value = str(spec).partition(":")
            key = key.strip().lower()
            if not sep or key not in names:
                raise InputError(f"-b {spec!r}: expected filesize:KB, duration:SECONDS, packets:N or files:N",
                                 hint="dumpcap's ring buffer options, e.g. -b filesize:100000 -b files:10")
            try:
                number = float(value) if key == "duration" else int(value)
            except ValueError:
                raise InputError(f"-b {spec!r}: {key} needs a number, got {value!r}") from None
            if not number > 0 or number != number or number == float("inf"):
                raise InputError(f"-b {spec!r}: {key} must be a positive number")
            if key == "filesize" and number > 2 * 1000 ** 3:   # dumpcap's limit: 2 TB
                raise InputError(f"-b {spec!r}: at most 2000000000 kB")
            values[names[key]] = number
        ring = cls(**values)
        if ring.filesize_kb is None and ring.duration is None and ring.packets is None:
            raise InputError("-b files:N needs a condition to switch files: filesize:KB, duration:SECONDS or packets:N",
                             hint="e.g. -b filesize:100000 -b files:10 (like dumpcap)")
        return ring


def ring_file_name(base: str | os.PathLike, number: int, when: float | None = None) -> Path:
    """dumpcap's name for ring file ``number``: ``out.pcapng`` -> ``out_00001_20261205134500.pcapng``
    (local time the file was opened)."""
    base = Path(base)
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() if when is None else when))
    suffix = base.suffix if base.stem else ""
    stem = base.stem if base.stem else base.name
    return base.with_name(f"{stem}_{number:05d}_{stamp}{suffix}")


def check_appendable(path, what: str) -> None:
    """``--append`` continues a pcapng file with a new section: refuse an existing file that is not pcapng."""
    head = appended_head(path, what, 4)
    if head and capture_format(head) != "pcapng":
        raise InputError(f"{what} {path} is not a pcapng file; --append adds a section to a pcapng file",
                         hint="give another file name, or --force to replace it")


class KeptFile(NamedTuple):
    path: str
    first_frame: int
    last_frame: int


# --- reading pcapng / pcap blocks ----------------------------------------------------------------

class Frame(NamedTuple):
    """One packet block with what a writer needs around it."""

    number: int          # global frame number (1-based)
    block: bytes         # the packet block as in the source (EPB/OPB/SPB; pcap records become EPBs)
    ts: float | None     # seconds (capture time), None for a simple packet block
    section: int         # which section of the source it belongs to (0, 1, ...)
    header: bytes        # that section's SHB + interface descriptions (+ secrets) seen so far
    order: str           # struct byte order of the section


class Run:
    """Consecutive packet blocks of one chunk of the stream, under one header: ``data[starts[i]:ends[i]]``
    is frame ``first + i``. Blocks that are neither packets nor header blocks (name resolution,
    interface statistics) sit between them and travel with a contiguous range. Cheap to make (one
    offset pair per packet, no copy); :meth:`frame` builds a :class:`Frame` when one is needed."""

    __slots__ = ("data", "starts", "ends", "first", "section", "header", "order", "tsres")

    def __init__(self, data: bytes, first: int, section: int, header: bytes, order: str, tsres: list):
        self.data, self.first, self.section, self.header, self.order, self.tsres = data, first, section, header, order, tsres
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def last(self) -> int:
        return self.first + len(self.starts) - 1

    @property
    def nbytes(self) -> int:
        return self.ends[-1] - self.starts[0] if self.starts else 0

    def ts(self, i: int) -> float | None:
        """Capture time of packet ``i`` in seconds (None for a simple packet block)."""
        data, p = self.data, self.starts[i]
        btype = struct.unpack_from(self.order + "I", data, p)[0]
        if btype == SIMPLE_PACKET or self.ends[i] - p < 28:
            return None
        if btype == ENHANCED_PACKET:
            iface, hi, lo = struct.unpack_from(self.order + "III", data, p + 8)
        else:
            iface, _, hi, lo = struct.unpack_from(self.order + "HHII", data, p + 8)
        res = self.tsres[iface] if iface < len(self.tsres) else 1e-6
        return ((hi << 32) | lo) * res

    def frame(self, i: int) -> Frame:
        return Frame(self.first + i, self.data[self.starts[i]:self.ends[i]], self.ts(i), self.section,
                     self.header, self.order)


def select(runs: Iterable[Run], wanted: Sequence[int]) -> list[tuple[Run, int, int]]:
    """The contiguous ranges ``(run, i, j)`` (packets ``i..j-1``) of ``runs`` whose frame numbers are in
    ``wanted`` (ascending)."""
    out: list[tuple[Run, int, int]] = []
    k, n = 0, len(wanted)
    for run in runs:
        first, last = run.first, run.last
        while k < n and wanted[k] < first:
            k += 1
        while k < n and wanted[k] <= last:
            i = wanted[k] - first
            j = i + 1
            k += 1
            while k < n and wanted[k] == first + j and j < len(run):
                j += 1
                k += 1
            out.append((run, i, j))
        if k >= n:
            break
    return out


def pick(ranges: Sequence[tuple[Run, int, int]], numbers: Sequence[int]) -> list[Frame]:
    """The frames ``numbers`` (ascending) out of ``ranges`` (from :func:`select`), as :class:`Frame` objects."""
    out: list[Frame] = []
    k, n = 0, len(numbers)
    for run, i, j in ranges:
        lo, hi = run.first + i, run.first + j
        while k < n and numbers[k] < lo:
            k += 1
        while k < n and numbers[k] < hi:
            out.append(run.frame(numbers[k] - run.first))
            k += 1
    return out


class PcapngWalker:
    """Incremental pcapng parser: ``feed(data)`` returns the packet blocks completed by ``data`` as
    :class:`Run` objects (an incomplete block waits for the next feed; a run ends at every header
    block, so each has one header). ``problem`` is set (and nothing more is returned) on a malformed
    block."""

    def __init__(self):
        self.frames = 0                   # packets seen
        self.section = -1
        self.header = b""
        self.order = "<"
        self._tsres: list[float] = []     # seconds per timestamp unit, per interface of the section
        self._rest = b""                  # an incomplete block from the last feed
        self.problem: str | None = None
        self.offset = 0                   # stream offset of the next unread byte

    def feed(self, data) -> list[Run]:
        if self.problem:
            return []
        buf = self._rest + bytes(data) if self._rest else bytes(data)
        end, _, runs = self.walk(buf)
        for run in runs:
            run.data = buf
        self._rest = buf[end:] if end < len(buf) else b""
        return runs

    def walk(self, buf, pos: int = 0, max_packets: int | None = None, runs: bool = True) -> tuple[int, int, list[Run]]:
        """Walk the whole blocks of ``buf`` (bytes or bytearray) from ``pos``, the next bytes of the
        stream: up to ``max_packets`` packet blocks (None: all), stopping at an incomplete block or at
        a malformed one (``problem`` set). Returns the offset after the last whole block walked, the
        packet blocks walked and, with ``runs``, their :class:`Run` objects, whose offsets count from
        ``pos`` and whose ``data`` the caller sets (``buf[pos:end]`` as bytes). The live splitter
        walks dumpcap's stream with this once, for its rotation and for the keeper (``feed_runs``)."""
        out: list[Run] = []
        base, n, packets = pos, len(buf), 0
        head = struct.Struct(self.order + "II").unpack_from
        run: Run | None = None
        packet_types = (ENHANCED_PACKET, OBSOLETE_PACKET, SIMPLE_PACKET)
        while pos + 12 <= n and (max_packets is None or packets < max_packets):
            btype, blen = head(buf, pos)
            if btype == SECTION_HEADER:
                self.order = section_byte_order(buf[pos + 8:pos + 12])
                head = struct.Struct(self.order + "II").unpack_from
                btype, blen = head(buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self.problem = (f"bad pcapng block at byte {self.offset + pos - base} (type {btype:#x}, "
                                f"length {blen})")
                break
            end = pos + blen
            if end > n:
                break
            if btype in packet_types:
                if runs:
                    if run is None:
                        run = Run(None, self.frames + 1, self.section, self.header, self.order, self._tsres)
                        out.append(run)
                    run.starts.append(pos - base)
                    run.ends.append(end - base)
                packets += 1
                self.frames += 1
            elif btype == SECTION_HEADER:
                run = None
                self.section += 1
                self.header = bytes(buf[pos:end])
                self._tsres = []
            elif btype in PCAPNG_HEADER_BLOCKS:
                run = None
                self.header += bytes(buf[pos:end])
                if btype == INTERFACE_DESCRIPTION:
                    self._tsres = self._tsres + [_tsresol(buf[pos:end], self.order)]
            pos = end
        self.offset += pos - base
        return pos, packets, out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete block waiting for more data."""
        return len(self._rest)


def _tsresol(block: bytes, order: str) -> float:
    """Seconds per timestamp unit of an interface description block (if_tsresol; default 10^-6)."""
    p, end = 16, len(block) - 4
    while p + 4 <= end:
        code, ln = struct.unpack_from(order + "HH", block, p)
        if code == OPT_ENDOFOPT:
            break
        if code == IF_TSRESOL and ln >= 1:
            v = block[p + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        p += 4 + ln + (-ln & 3)
    return 1e-6


class PcapWalker:
    """pcap records as pcapng runs: one section header and one interface description (link type,
    snap length, µs or ns resolution from the magic), each record an enhanced packet block."""

    def __init__(self):
        self.frames = 0
        self.section = 0
        self.order = "<"
        self._buf = bytearray()
        self._byte_order: str | None = None
        self._units = 1_000_000
        self._tsres: list[float] = [1e-6]
        self.header = b""
        self.problem: str | None = None
        self._rec = None

    def feed(self, data) -> list[Run]:
        if self.problem:
            return []
        buf = self._buf
        buf += data
        pos = 0
        if self._byte_order is None:
            if len(buf) < PCAP_HEADER_LEN:
                return []
            magic = bytes(buf[:4])
            self._byte_order = PCAP_MAGICS[magic]
            ns = magic in PCAP_MAGICS_NS
            self._units = 1_000_000_000 if ns else 1_000_000
            self._tsres = [1.0 / self._units]
            _, _, _, _, snaplen, linktype = struct.unpack_from(self._byte_order + "HHiIII", buf, 4)
            idb = interface_description_block(linktype & 0xFFFF, snaplen or 262144, tsresol=9 if ns else None)
            self.header = section_header_block("iotwatch") + idb
            self._rec = struct.Struct(self._byte_order + "IIII").unpack_from
            pos = PCAP_HEADER_LEN
        n = len(buf)
        units = self._units
        blocks: list[bytes] = []
        starts: list[int] = []
        ends: list[int] = []
        off = 0
        head = struct.Struct("<IIIIIII").pack
        while pos + PCAP_RECORD_LEN <= n:
            sec, sub, incl, orig = self._rec(buf, pos)
            if incl > MAX_RECORD:
                self.problem = f"damaged pcap record at byte {pos} ({incl} bytes)"
                break
            if pos + PCAP_RECORD_LEN + incl > n:
                break
            t = sec * units + sub
            pad = -incl & 3
            total = 32 + incl + pad
            blocks += (head(ENHANCED_PACKET, total, 0, t >> 32, t & 0xFFFFFFFF, incl, orig),
                       bytes(buf[pos + 16:pos + 16 + incl]), b"\x00" * pad + struct.pack("<I", total))
            starts.append(off)
            off += total
            ends.append(off)
            pos += PCAP_RECORD_LEN + incl
        if pos:
            del buf[:pos]
        if not starts:
            return []
        run = Run(b"".join(blocks), self.frames + 1, 0, self.header, "<", self._tsres)
        run.starts, run.ends = starts, ends
        self.frames += len(starts)
        return [run]

    @property
    def pending(self) -> int:
        return len(self._buf)


def with_comment(frame: Frame, text: str) -> bytes:
    """The frame's packet block with an ``opt_comment`` added after its own options (a simple packet
    block, which has none, becomes an enhanced packet block on interface 0 with timestamp 0)."""
    b, order = frame.block, frame.order
    btype, blen = struct.unpack_from(order + "II", b, 0)
    if btype == SIMPLE_PACKET:
        (orig,) = struct.unpack_from(order + "I", b, 8)
        data = b[12:blen - 4]
        cap = min(orig, len(data))
        fixed = struct.pack(order + "IIIII", 0, 0, 0, cap, orig) + data[:cap] + b"\x00" * (-cap & 3)
        btype, opts = ENHANCED_PACKET, b""
    else:
        (cap,) = struct.unpack_from(order + "I", b, 20)
        end_fixed = 28 + cap + (-cap & 3)
        fixed = b[8:end_fixed]
        opts = b""
        p, end = end_fixed, blen - 4
        while p + 4 <= end:   # keep every option but the end marker
            code, ln = struct.unpack_from(order + "HH", b, p)
            if code == OPT_ENDOFOPT:
                break
            step = 4 + ln + (-ln & 3)
            opts += b[p:p + step]
            p += step
    value = text.encode("utf-8")[:65000]
    opts += struct.pack(order + "HH", OPT_COMMENT, len(value)) + value + b"\x00" * (-len(value) & 3)
    opts += struct.pack(order + "HH", OPT_ENDOFOPT, 0)
    total = 12 + len(fixed) + len(opts)
    return struct.pack(order + "II", btype, total) + fixed + opts + struct.pack(order + "I", total)


# --- writing ---------------------------------------------------------------------------------------

class PcapngRing:
    """pcapng output: one file (``ring`` None; ``-`` = standard output) or dumpcap's ring buffer.

    ``packet(frame, comment=None)`` writes one frame (preceded by its section's header blocks the
    current file does not hold yet); ``close()`` completes the last file (an empty run still leaves a
    valid pcapng with the header it knew, or a bare section header). Files are created through
    ``OutputFile`` (``output``: a pre-checked/reserved one for the single-file case). Not thread-safe
    except ``kept()``. A write error sets ``problem`` (the user-facing error) and stops writing."""

    def __init__(self, path: str, ring: RingOptions | None = None, *, force: bool = False,
                 output: OutputFile | None = None, what: str = "capture file", keep_deleted: bool = False):
        self.path = path
        self.ring = ring
        self.force = force
        self.what = what
        self._output = output
        self._out: OutputFile | None = None
        self._fh = None
        self._number = 0
        self._size = 0
        self._file_packets = 0
        self._file_first_ts: float | None = None
        self._switch = False
        self._section: int | None = None
        self._header_len = 0
        self._files: list[list] = []       # [path, first, last, OutputFile] oldest first
        self._lock = threading.Lock()
        self.packets = 0                   # packets written, all files
        self.files_written = 0
        self.deleted: list[str] = []       # ring files removed (files:N)
        self.problem: Exception | None = None
        self.stdout_closed = False         # -w -: the reader of standard output went away (| head): stop quietly
        self._flushed_last = 0
        self.last_header: tuple[int, bytes, str] | None = None

    # -- public ---------------------------------------------------------------------------------
    def packet(self, frame: Frame, comment: str | None = None) -> bool:
        """One frame, with ``comment`` added to its options when given."""
        if self.problem is not None or self.stdout_closed:
            return False
        try:
            self._open_for(frame.ts, frame.section, frame.header, frame.order)
            block = with_comment(frame, comment) if comment else frame.block
            self._put(block, (self.packets + 1, frame.number))
        except (OSError, InputError) as e:
            return self._stopped_by(e)
        self._wrote(1, len(block), frame.number, frame.ts)
        return True if getattr(self._fh, "pending", 0) < _WRITE_BUFFER else self.flush()

    def write_range(self, run: Run, i: int, j: int) -> bool:
        """Packets ``i..j-1`` of ``run`` (frames ``run.first + i`` ...), written as few slices as the
        ring's switching allows (one per run without ``-b``)."""
        r = self.ring
        data, starts, ends = run.data, run.starts, run.ends
        while i < j:
            if self.problem is not None or self.stdout_closed:
                return False
            ts = run.ts(i) if r is not None and r.duration is not None else None
            try:
                self._open_for(ts, run.section, run.header, run.order)
                k = j
                if r is not None:
                    if r.packets is not None:
                        k = min(k, i + max(1, r.packets - self._file_packets))
                    if r.filesize_kb is not None:   # the first packet that reaches the size ends the file
                        need = r.filesize_kb * 1000 - self._size
                        k = min(k, bisect.bisect_left(ends, starts[i] + need, i, k) + 1)
                    if r.duration is not None:      # a packet S seconds after the file's first starts the next
                        t0 = self._file_first_ts if self._file_first_ts is not None else ts
                        m = i + 1
                        while m < k:
                            t = run.ts(m)
                            if t is not None and t0 is not None and t - t0 >= r.duration:
                                break
                            m += 1
                        k = m
                # pieces of at most _PIECE bytes: a write error loses at most that much
                k = min(k, bisect.bisect_left(ends, starts[i] + _PIECE, i, k) + 1)
                self._put(memoryview(data)[starts[i]:ends[k - 1]], (self.packets + k - i, run.first + k - 1))
            except (OSError, InputError) as e:
                return self._stopped_by(e)
            self._wrote(k - i, ends[k - 1] - starts[i], run.first + k - 1, ts, first=run.first + i)
            i = k
            if getattr(self._fh, "pending", 0) >= _WRITE_BUFFER and not self.flush():
                return False
        return True

    def _wrote(self, packets: int, nbytes: int, last: int, ts: float | None, first: int | None = None) -> None:
        self._size += nbytes
        self._file_packets += packets
        self.packets += packets
        if self._file_first_ts is None:
            self._file_first_ts = ts
        entry = self._files[-1]
        if entry[1] == 0:
            entry[1] = last if first is None else first
        entry[2] = last
        r = self.ring
        if r is not None and ((r.filesize_kb is not None and self._size >= r.filesize_kb * 1000)
                              or (r.packets is not None and self._file_packets >= r.packets)):
            self._switch = True

    def flush(self) -> bool:
        """Push buffered blocks to the file (a reader -- the TUI's dissector -- sees them); what is
        flushed is what a later write error leaves in the file. False after a write error."""
        if self.problem is not None or self.stdout_closed:
            return False
        if self._fh is not None:
            try:
                self._fh.flush()
            except OSError as e:
                self._fail(e)
                return False
        with self._lock:
            if self._files:
                self._flushed_last = self._files[-1][2]
        return True

    def kept(self) -> list[KeptFile]:
        """The files written so far and still on disk, with their (flushed) frame ranges."""
        with self._lock:
            out = []
            for i, (p, first, last, _) in enumerate(self._files):
                if i == len(self._files) - 1:
                    last = min(last, self._flushed_last)
                if first and last >= first:
                    out.append(KeptFile(p, first, last))
            return out

    def close(self, header: tuple[int, bytes, str] | None = None) -> None:
        """Complete the last file. ``header`` ``(section, header bytes, order)``: what an empty output
        starts with (else the last header seen, else a bare section header)."""
        if self.problem is None:
            try:
                if self._fh is None and not self._files:
                    self._next_file()
                    hdr = header or self.last_header
                    self._put(hdr[1] if hdr else section_header_block("iotwatch"), self._mark())
                self._commit()
            except OSError as e:
                self._fail(e)
            except InputError as e:
                self.problem = e
        if self.problem is not None:
            self._salvage()
        self._fh = None

    def _salvage(self) -> None:
        """After a write error (disk full): drop the unwritten buffer, cut the file back to what the
        last successful flush left (whole blocks) and put it in place; the counts say what it holds."""
        out, fh = self._out, self._fh
        self._out = self._fh = None
        if out is None or fh is None or out.stdout:
            return
        size, (packets, last) = fh.durable
        fh.drop()         # what did not reach the disk is not written now
        try:
            fh.close()
        except OSError:
            pass
        if size == 0 and not out.append:   # nothing whole reached the disk: leave no empty file
            out.discard()
            with self._lock:
                self._files.pop()
            self.packets = packets
            return
        try:
            os.truncate(out.tmp_path, size)
        except OSError:
            pass
        self.packets = packets
        with self._lock:
            entry = self._files[-1]
            if last < entry[1]:
                entry[1] = entry[2] = 0
            else:
                entry[2] = last
            self._flushed_last = entry[2]
        try:
            out.commit()
        except Exception:  # noqa: BLE001 -- already failing; the first error is the one reported
            pass

    def discard(self) -> None:
        """Remove every file this run wrote (an input error before anything ran)."""
        if self._out is not None:
            self._out.discard()
        for p, *_ in self._files:
            try:
                if self._output is None or p != str(self._output.path):
                    os.unlink(p)
            except OSError:
                pass
        self._fh = None

    # -- internals --------------------------------------------------------------------------------
    def _duration_up(self, ts: float | None) -> bool:
        r = self.ring
        return (r is not None and r.duration is not None and ts is not None and self._file_first_ts is not None
                and ts - self._file_first_ts >= r.duration)

    def _next_file(self) -> None:
        self._commit()
        self._number += 1
        if self.ring is None:
            if self._number > 1:
                raise AssertionError("one output file without a ring")
            out = self._output or OutputFile(self.path, self.what, self.force, direct=True)
            if self._output is None:
                out.check()
                out.reserve()
            name = self.path if out.stdout else str(out.path)
        else:
            name = str(ring_file_name(self.path, self._number))
            out = OutputFile(name, self.what, self.force, direct=True)
            out.check()
            out.reserve()
        self._out = out
        # --append: a new section at the end of an existing pcapng (checked by check_appendable)
        self._fh = out.open("wb") if out.stdout else _BlockFile(out.tmp_path, out.append, self._mark())
        out._fh = self._fh
        self.files_written += 1
        self._size = 0
        self._file_packets = 0
        self._file_first_ts = None
        self._switch = False
        self._section = None
        self._header_len = 0
        with self._lock:
            self._files.append([name, 0, 0, out])
            if self.ring is not None and self.ring.files is not None:
                while len(self._files) > self.ring.files:
                    old = self._files.pop(0)
                    try:
                        os.unlink(old[0])
                    except OSError:
                        pass
                    self.deleted.append(old[0])

    def _put(self, data, mark) -> None:
        if isinstance(self._fh, _BlockFile):
            self._fh.write(data, mark)
        else:
            self._fh.write(data)

    def _mark(self) -> tuple[int, int]:
        return self.packets, (self._files[-1][2] if self._files else 0)

    def _write_header(self, section: int, hdr: bytes, order: str) -> None:
        self.last_header = (section, hdr, order)
        if section != self._section:
            self._put(hdr, self._mark())
            self._size += len(hdr)
            self._section, self._header_len = section, len(hdr)
        elif len(hdr) > self._header_len:   # interfaces described after the file started
            self._put(hdr[self._header_len:], self._mark())
            self._size += len(hdr) - self._header_len
            self._header_len = len(hdr)

    def _commit(self) -> None:
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            if self._fh is not None and not self.stdout_closed:
                self._fh.flush()
            if not self.stdout_closed:
                out.commit()
        finally:
            self._fh = None
        with self._lock:
            if self._files:
                self._flushed_last = self._files[-1][2]

    def _open_for(self, ts: float | None, section: int, header: bytes, order: str) -> None:
        """The file the next packets go to (a new one when the ring switches) with their section header."""
        if self._fh is None or self._switch or self._duration_up(ts):
            self._next_file()
        self._write_header(section, header, order)

    def _stopped_by(self, e: OSError | InputError) -> bool:
        """A write step failed: an OSError is a write error (or a closed stdout), an InputError a
        target that may not be written; either way the writer stops. Always False."""
        if isinstance(e, OSError):
            self._fail(e)
        else:
            self.problem = e
        return False

    def _fail(self, e: OSError) -> None:
        if e.errno == errno.EPIPE and self._out is not None and self._out.stdout:
            self.stdout_closed = True   # like tshark -w - | head: not an error, the run just stops
            _silence_stdout()
            return
        self.problem = write_error(self._out.path if self._out else self.path, self.what, e)


class _BlockFile:
    """A pcapng file written in whole blocks: ``write`` collects pieces (each whole blocks, with the
    writer's counters after it as ``mark``), ``flush`` writes them one by one with ``os.write`` and
    remembers how far whole pieces reached the disk (``durable``: file size, mark), so after a failed
    write the file can be cut back to whole blocks (a buffered writer may already have written part
    of a block) and the counters set to what it holds."""

    def __init__(self, path, append: bool, mark):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
        self._buf: list = []
        self.pending = 0
        self.closed = False
        self.mode = "ab" if append else "wb"
        self.durable = (os.fstat(self.fd).st_size, mark)

    def fileno(self) -> int:
        return self.fd

    def write(self, data, mark) -> None:
        self._buf.append((data, mark))
        self.pending += len(data)

    def flush(self) -> None:
        buf, self._buf, self.pending = self._buf, [], 0
        size = self.durable[0]
        for data, mark in buf:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            size += len(data)
            self.durable = (size, mark)

    def drop(self) -> None:
        self._buf, self.pending = [], 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self.closed = True
            os.close(self.fd)


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null: nothing more (not even the interpreter's last flush) hits the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


# --- the live tee --------------------------------------------------------------------------------

class _Runs:
    """A queue of runs consumed front to back by ``take`` / ``take_ranges`` (frames asked for in
    ascending order across calls)."""

    def __init__(self):
        self._runs: collections.deque[Run] = collections.deque()
        self.missed = 0            # frames asked for that were not (or no longer) there

    def _more(self) -> bool:
        """Fetch more runs (a file reads on); False when there are none."""
        return False

    def take_ranges(self, frames: Iterable[int]) -> list[tuple[Run, int, int]]:
        """Contiguous ranges ``(run, i, j)`` holding ``frames``; runs up to the last frame asked for
        leave the queue."""
        want = sorted(set(int(f) for f in frames))
        if not want:
            return []
        top = want[-1]
        runs = self._runs
        while (not runs or runs[-1].last < top) and self._more():
            pass
        ranges = select(runs, want)
        while runs and runs[0].last <= top:
            self._drop(runs.popleft())
        self.missed += len(want) - sum(j - i for _, i, j in ranges)
        return ranges

    def take(self, frames: Iterable[int]) -> list[Frame]:
        """The frames asked for (ascending), as :class:`Frame` objects."""
        return [run.frame(k) for run, i, j in self.take_ranges(frames) for k in range(i, j)]

    def _drop(self, run: Run) -> None:
        pass


class CaptureKeeper(_Runs):
    """What a live capture keeps of dumpcap's stream: files (``writer``) and/or an in-memory window of
    recent packet blocks (``window_bytes``, for ``take``). ``feed`` runs in the splitter thread;
    ``kept_frames`` and ``take`` in any other thread. ``max_frames``: write no frame beyond this one
    (``-c``). ``private_dir``: a folder of ours, removed by ``cleanup`` (and at exit)."""

    def __init__(self, writer: PcapngRing | None = None, *, window_bytes: int = 0, max_frames: int | None = None,
                 private_dir: str | None = None):
        super().__init__()
        self.writer = writer
        self.window_bytes = window_bytes
        self.max_frames = max_frames
        self.private_dir = private_dir
        self.walker = PcapngWalker()   # the stream's blocks: the live splitter walks with it (feed_runs)
        self._window_size = 0
        self._lock = threading.Lock()
        self.problem: str | None = None
        self.closed = False

    @classmethod
    def private(cls, files: int = PRIVATE_RING_FILES, kb: int = PRIVATE_RING_KB, window_bytes: int = 0) -> "CaptureKeeper":
        """A bounded ring in a new private temporary folder (removed by ``cleanup`` and at exit): the
        frames a live TUI run without ``-w`` can still show in its detail view."""
        folder = tempfile.mkdtemp(prefix="iotwatch-live-")
        ring = PcapngRing(os.path.join(folder, "live.pcapng"), RingOptions(filesize_kb=kb, files=files))
        keeper = cls(ring, window_bytes=window_bytes, private_dir=folder)
        atexit.register(keeper.cleanup)   # removed at exit even when nobody calls cleanup()
        return keeper

    @property
    def frames(self) -> int:
        """Packets seen in the stream so far."""
        return self.walker.frames

    def feed(self, data) -> None:
        """The next bytes of the capture stream (``walker`` walks them; see ``feed_runs``)."""
        if self.closed:
            return
        runs = self.walker.feed(data)
        if self.walker.problem and not self.problem:
            self.problem = f"live capture stream: {self.walker.problem}; nothing kept from there"
        self.feed_runs(runs)

    def feed_runs(self, runs: list[Run]) -> None:
        """The packets of the next whole blocks of the stream, as ``walker`` walked them (the live
        splitter walks dumpcap's stream once and calls this before tshark gets the blocks, so a
        frame is here before it can be classified)."""
        if self.closed:
            return
        w = self.writer
        if w is not None and w.problem is None and runs:
            for run in runs:
                j = len(run)
                if self.max_frames is not None:
                    j = min(j, self.max_frames - run.first + 1)
                if j <= 0 or not w.write_range(run, 0, j):
                    break
            w.flush()
        if self.window_bytes and runs:
            with self._lock:
                for run in runs:
                    self._runs.append(run)
                    self._window_size += run.nbytes
                while self._window_size > self.window_bytes and self._runs:
                    self._drop(self._runs.popleft())

    def take_ranges(self, frames):
        with self._lock:
            return super().take_ranges(frames)

    def _drop(self, run: Run) -> None:
        self._window_size -= run.nbytes

    def kept_frames(self) -> list[KeptFile]:
        return self.writer.kept() if self.writer is not None else []

    def header(self) -> tuple[int, bytes, str] | None:
        w = self.walker
        return (w.section, w.header, w.order) if w.header else None

    def close(self) -> None:
        """Complete the files (the private folder is removed by ``cleanup``, after the TUI is done)."""
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            self.writer.close(self.header())

    def cleanup(self) -> None:
        """Remove the private folder (and its files); no-op for the user's ``-w``."""
        self.close()
        if self.private_dir:
            shutil.rmtree(self.private_dir, ignore_errors=True)
            self.private_dir = None


# --- a replayed file -------------------------------------------------------------------------------

class FileFrames(_Runs):
    """``take`` / ``take_ranges`` over a capture file read once, front to back (pcapng, pcap, either
    gzipped; pcap records become pcapng enhanced packet blocks)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == b"\x1f\x8b":
            self._fh = gzip.open(path, "rb")
            try:
                head = self._fh.peek(4)[:4]
            except (OSError, EOFError):
                head = b""
        else:
            self._fh = open(path, "rb")
        fmt = capture_format(head)
        if fmt is None:
            self._fh.close()
            raise InputError(f"cannot copy frames of {path}: not a pcap or pcapng file (or compressed other than gzip)",
                             hint="convert it with editcap -F pcapng")
        self._walker = PcapngWalker() if fmt == "pcapng" else PcapWalker()
        self._eof = False

    def _more(self) -> bool:
        if self._eof:
            return False
        try:
            data = self._fh.read(_READ_SIZE)
        except (OSError, EOFError):
            data = b""
        if not data:
            self._eof = True
            return False
        self._runs.extend(self._walker.feed(data))
        return True

    def header(self) -> tuple[int, bytes, str] | None:
        if not self._walker.header:
            self._more()
        w = self._walker
        return (w.section, w.header, w.order) if w.header else None

    def close(self) -> None:
        self._fh.close()
