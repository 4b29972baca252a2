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
  listed); a replayed file: ``[(the file, 1, frames read so far)]``; standard input: ``[]``.
  ``MonitorRun.kept_frames()`` (detector/run.py; the TUI's ``CaptureSession``) forwards to it.
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
import collections
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
from .files import OutputFile, write_error
from .pcapfile import (ENHANCED_PACKET, INTERFACE_DESCRIPTION, MAX_RECORD, OBSOLETE_PACKET, OPT_COMMENT,
                       OPT_ENDOFOPT, PCAP_HEADER_LEN, PCAP_MAGICS, PCAP_RECORD_LEN, PCAPNG_HEADER_BLOCKS,
                       SECTION_HEADER, SIMPLE_PACKET, capture_format, interface_description_block,
                       section_byte_order, section_header_block)

PRIVATE_RING_FILES = 8        # a live TUI run without -w keeps this many files ...
PRIVATE_RING_KB = 16_000      # ... of this many kB each (dumpcap's kB: 1000 bytes)
WINDOW_BYTES = 64 << 20       # live --write-flagged: packet blocks kept in memory until classified
_WRITE_BUFFER = 1 << 20
_READ_SIZE = 1 << 20
_IF_TSRESOL = 9


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


class PcapngWalker:
    """Incremental pcapng parser: ``feed(data)`` returns the packet blocks completed by ``data`` as
    :class:`Frame` objects (an incomplete block waits for the next feed). Numbers packets from
    ``first_frame``. ``problem`` is set (and nothing more is returned) on a malformed block."""

    def __init__(self, first_frame: int = 1):
        self.frames = first_frame - 1     # packets seen
        self.section = -1
        self.header = b""
        self.order = "<"
        self._tsres: list[float] = []     # seconds per timestamp unit, per interface of the section
        self._buf = bytearray()
        self.problem: str | None = None
        self.offset = 0                   # stream offset of the next unread byte

    def feed(self, data) -> list[Frame]:
        if self.problem:
            return []
        buf = self._buf
        buf += data
        out: list[Frame] = []
        pos, n = 0, len(buf)
        head = struct.Struct(self.order + "II").unpack_from
        while pos + 12 <= n:
            btype, blen = head(buf, pos)
            if btype == SECTION_HEADER:
                self.order = section_byte_order(bytes(buf[pos + 8:pos + 12]))
                head = struct.Struct(self.order + "II").unpack_from
                btype, blen = head(buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                self.problem = f"bad pcapng block at byte {self.offset + pos} (type {btype:#x}, length {blen})"
                break
            if pos + blen > n:
                break
            block = bytes(buf[pos:pos + blen])
            if btype in (ENHANCED_PACKET, OBSOLETE_PACKET, SIMPLE_PACKET):
                self.frames += 1
                ts = None
                if btype != SIMPLE_PACKET and blen >= 28:
                    if btype == ENHANCED_PACKET:
                        iface, hi, lo = struct.unpack_from(self.order + "III", block, 8)
                    else:
                        iface, _, hi, lo = struct.unpack_from(self.order + "HHII", block, 8)
                    res = self._tsres[iface] if iface < len(self._tsres) else 1e-6
                    ts = ((hi << 32) | lo) * res
                out.append(Frame(self.frames, block, ts, self.section, self.header, self.order))
            elif btype == SECTION_HEADER:
                self.section += 1
                self.header = block
                self._tsres = []
            elif btype in PCAPNG_HEADER_BLOCKS:
                self.header += block
                if btype == INTERFACE_DESCRIPTION:
                    self._tsres.append(_tsresol(block, self.order))
            pos += blen
        if pos:
            del buf[:pos]
            self.offset += pos
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete block waiting for more data."""
        return len(self._buf)


def _tsresol(block: bytes, order: str) -> float:
    """Seconds per timestamp unit of an interface description block (if_tsresol; default 10^-6)."""
    p, end = 16, len(block) - 4
    while p + 4 <= end:
        code, ln = struct.unpack_from(order + "HH", block, p)
        if code == OPT_ENDOFOPT:
            break
        if code == _IF_TSRESOL and ln >= 1:
            v = block[p + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        p += 4 + ln + (-ln & 3)
    return 1e-6


class PcapWalker:
    """pcap records as pcapng frames: one section header and one interface description (link type,
    snap length, µs or ns resolution from the magic), each record an enhanced packet block."""

    def __init__(self):
        self.frames = 0
        self._buf = bytearray()
        self._order: str | None = None
        self._frac = 1e-6
        self._units = 1_000_000
        self.header = b""
        self.problem: str | None = None
        self._rec = None

    def feed(self, data) -> list[Frame]:
        if self.problem:
            return []
        buf = self._buf
        buf += data
        pos = 0
        if self._order is None:
            if len(buf) < PCAP_HEADER_LEN:
                return []
            magic = bytes(buf[:4])
            self._order = PCAP_MAGICS[magic]
            ns = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
            self._units = 1_000_000_000 if ns else 1_000_000
            _, _, _, _, snaplen, linktype = struct.unpack_from(self._order + "HHiIII", buf, 4)
            idb = interface_description_block(linktype & 0xFFFF, snaplen or 262144)
            if ns:  # if_tsresol = 9 (nanoseconds): rebuild the IDB with the option
                body = struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen or 262144)
                opts = struct.pack("<HHB3x", _IF_TSRESOL, 1, 9) + b"\x00\x00\x00\x00"
                total = 12 + len(body) + len(opts)
                idb = struct.pack("<II", INTERFACE_DESCRIPTION, total) + body + opts + struct.pack("<I", total)
            self.header = section_header_block("iotwatch") + idb
            self._rec = struct.Struct(self._order + "IIII").unpack_from
            pos = PCAP_HEADER_LEN
        out: list[Frame] = []
        n = len(buf)
        units = self._units
        while pos + PCAP_RECORD_LEN <= n:
            sec, sub, incl, orig = self._rec(buf, pos)
            if incl > MAX_RECORD:
                self.problem = f"damaged pcap record at byte {pos} ({incl} bytes)"
                break
            if pos + PCAP_RECORD_LEN + incl > n:
                break
            self.frames += 1
            data = bytes(buf[pos + 16:pos + 16 + incl])
            t = sec * units + sub
            total = 32 + incl + (-incl & 3)
            block = b"".join((struct.pack("<IIIIIII", ENHANCED_PACKET, total, 0, t >> 32, t & 0xFFFFFFFF, incl, orig),
                              data, b"\x00" * (-incl & 3), struct.pack("<I", total)))
            out.append(Frame(self.frames, block, t / units, 0, self.header, "<"))
            pos += PCAP_RECORD_LEN + incl
        if pos:
            del buf[:pos]
        return out

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
        self._flushed_last = 0
        self.last_header: tuple[int, bytes, str] | None = None

    # -- public ---------------------------------------------------------------------------------
    def packet(self, frame: Frame, comment: str | None = None) -> bool:
        if self.problem is not None:
            return False
        try:
            if self._fh is None or self._switch or self._duration_up(frame.ts):
                self._next_file()
            self._write_header(frame)
            block = with_comment(frame, comment) if comment else frame.block
            self._fh.write(block)
        except OSError as e:
            self._fail(e)
            return False
        except InputError as e:
            self.problem = e
            return False
        self._size += len(block)
        self._file_packets += 1
        self.packets += 1
        if self._file_first_ts is None:
            self._file_first_ts = frame.ts
        entry = self._files[-1]
        if entry[1] == 0:
            entry[1] = frame.number
        entry[2] = frame.number
        r = self.ring
        if r is not None and ((r.filesize_kb is not None and self._size >= r.filesize_kb * 1000)
                              or (r.packets is not None and self._file_packets >= r.packets)):
            self._switch = True
        return True

    def flush(self) -> None:
        """Push buffered blocks to the file (a reader -- the TUI's dissector -- sees them)."""
        if self._fh is not None and self.problem is None:
            try:
                self._fh.flush()
            except OSError as e:
                self._fail(e)
                return
        with self._lock:
            if self._files:
                self._flushed_last = self._files[-1][2]

    def kept(self) -> list[KeptFile]:
        """The files written so far and still on disk, with their (flushed) frame ranges."""
        with self._lock:
            out = []
            for p, first, last, _ in self._files:
                if p is self._files[-1][0]:
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
                    self._fh.write(hdr[1] if hdr else section_header_block("iotwatch"))
                self._commit()
            except OSError as e:
                self._fail(e)
            except InputError as e:
                self.problem = e
        if self.problem is not None and self._out is not None and self._fh is not None:
            # keep what was written whole: the blocks before the failing write
            try:
                self._out.commit()
            except Exception:  # noqa: BLE001 -- already failing; the first error is the one reported
                pass
        self._fh = None

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
        self._fh = out.open("wb") if out.stdout else open(out.tmp_path, "wb", buffering=_WRITE_BUFFER)
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

    def _write_header(self, frame: Frame) -> None:
        hdr = frame.header
        self.last_header = (frame.section, hdr, frame.order)
        if frame.section != self._section:
            self._fh.write(hdr)
            self._size += len(hdr)
            self._section, self._header_len = frame.section, len(hdr)
        elif len(hdr) > self._header_len:   # interfaces described after the file started
            self._fh.write(hdr[self._header_len:])
            self._size += len(hdr) - self._header_len
            self._header_len = len(hdr)

    def _commit(self) -> None:
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            if self._fh is not None:
                self._fh.flush()
            out.commit()
        finally:
            self._fh = None
        with self._lock:
            if self._files:
                self._flushed_last = self._files[-1][2]

    def _fail(self, e: OSError) -> None:
        self.problem = write_error(self._out.path if self._out else self.path, self.what, e)


# --- the live tee --------------------------------------------------------------------------------

class CaptureKeeper:
    """What a live capture keeps of dumpcap's stream: files (``ring``) and/or an in-memory window of
    recent packet blocks (``window_bytes``, for ``take``). ``feed`` runs in the splitter thread;
    ``kept_frames`` and ``take`` in any other thread. ``max_frames``: write no frame beyond this one
    (``-c``). ``private``: the folder is ours and removed by ``close``."""

    def __init__(self, writer: PcapngRing | None = None, *, window_bytes: int = 0, max_frames: int | None = None,
                 private_dir: str | None = None):
        self.writer = writer
        self.window_bytes = window_bytes
        self.max_frames = max_frames
        self.private_dir = private_dir
        self._walker = PcapngWalker()
        self._window: collections.deque[Frame] = collections.deque()
        self._window_size = 0
        self._lock = threading.Lock()
        self.missed = 0            # frames asked of take() no longer (or never) in the window
        self.problem: str | None = None
        self.closed = False

    @classmethod
    def private(cls, files: int = PRIVATE_RING_FILES, kb: int = PRIVATE_RING_KB, window_bytes: int = 0) -> "CaptureKeeper":
        """A bounded ring in a new private temporary folder (removed by ``close``): the frames a live
        TUI run without ``-w`` can still show in its detail view."""
        folder = tempfile.mkdtemp(prefix="iotwatch-live-")
        ring = PcapngRing(os.path.join(folder, "live.pcapng"), RingOptions(filesize_kb=kb, files=files))
        keeper = cls(ring, window_bytes=window_bytes, private_dir=folder)
        atexit.register(keeper.cleanup)   # removed at exit even when nobody calls cleanup()
        return keeper

    @property
    def frames(self) -> int:
        """Packets seen in the stream so far."""
        return self._walker.frames

    def feed(self, data) -> None:
        """Whole pcapng blocks of the capture stream, in order (the splitter calls this before tshark
        gets them, so a frame is here before it can be classified)."""
        if self.closed:
            return
        frames = self._walker.feed(data)
        if self._walker.problem and not self.problem:
            self.problem = f"live capture stream: {self._walker.problem}; nothing kept from there"
        w = self.writer
        if w is not None and w.problem is None:
            for f in frames:
                if self.max_frames is not None and f.number > self.max_frames:
                    break
                if not w.packet(f):
                    break
            w.flush()
            if w.last_header is None and self._walker.header:
                w.last_header = (self._walker.section, self._walker.header, self._walker.order)
        if self.window_bytes and frames:
            with self._lock:
                for f in frames:
                    self._window.append(f)
                    self._window_size += len(f.block)
                while self._window_size > self.window_bytes and self._window:
                    self._window_size -= len(self._window.popleft().block)

    def take(self, frames: Iterable[int]) -> list[Frame]:
        """The blocks of ``frames`` (ascending) from the window; frames up to the last one asked for
        leave the window. Frames no longer there are counted in ``missed``."""
        want = sorted(set(int(f) for f in frames))
        if not want:
            return []
        top = want[-1]
        got: list[Frame] = []
        wanted = set(want)
        with self._lock:
            win = self._window
            while win and win[0].number <= top:
                f = win.popleft()
                self._window_size -= len(f.block)
                if f.number in wanted:
                    got.append(f)
        self.missed += len(want) - len(got)
        return got

    def kept_frames(self) -> list[KeptFile]:
        return self.writer.kept() if self.writer is not None else []

    def header(self) -> tuple[int, bytes, str] | None:
        w = self._walker
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

class FileFrames:
    """``take(frames)`` over a capture file read once, front to back (pcapng, pcap, either gzipped)."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head[:2] == b"\x1f\x8b":
            self._fh = gzip.open(path, "rb")
            head = self._fh.peek(4)[:4]
        else:
            self._fh = open(path, "rb")
        fmt = capture_format(head)
        if fmt is None:
            self._fh.close()
            raise InputError(f"cannot copy frames of {path}: not a pcap or pcapng file (or compressed other than gzip)",
                             hint="convert it with editcap -F pcapng")
        self._walker = PcapngWalker() if fmt == "pcapng" else PcapWalker()
        self._ready: collections.deque[Frame] = collections.deque()
        self._eof = False
        self.missed = 0

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            data = self._fh.read(_READ_SIZE)
        except (OSError, EOFError):
            data = b""
        if not data:
            self._eof = True
            return False
        self._ready.extend(self._walker.feed(data))
        return True

    def take(self, frames: Iterable[int]) -> list[Frame]:
        want = sorted(set(int(f) for f in frames))
        if not want:
            return []
        wanted, top = set(want), want[-1]
        got: list[Frame] = []
        ready = self._ready
        while True:
            while ready and ready[0].number <= top:
                f = ready.popleft()
                if f.number in wanted:
                    got.append(f)
            if (ready and ready[0].number > top) or not self._fill():
                break
        self.missed += len(want) - len(got)
        return got

    def header(self) -> tuple[int, bytes, str] | None:
        if not self._walker.header:
            self._fill()
        w = self._walker
        return (getattr(w, "section", 0), w.header, getattr(w, "order", "<")) if w.header else None

    def close(self) -> None:
        self._fh.close()
