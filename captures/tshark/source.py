"""The fast packet source: pyshark's process plumbing, tshark emitting ``-T fields``, parsed column-wise.

pyshark's packet objects cost ~0.3x of raw tshark, so we keep everything pyshark does well
(tshark/dumpcap discovery, argument building, interface checks, the dumpcap -> tshark pipe,
asyncio process handling) and replace only the output format: :class:`FieldsFileCapture` and
:class:`FieldsLiveCapture` are pyshark ``FileCapture``/``LiveCapture`` subclasses whose tshark
runs ``-T fields -e ...`` (``args.field_args``). :class:`FieldsParser` turns the tab
separated lines into numpy columns a chunk at a time (one ``split`` for the whole chunk, one
conversion per column), so tshark's dissector, not Python, is the limit.

:class:`TsharkFieldsSource` is the :class:`~iotwatch.captures.sources.PacketSource`:

* files: batches of ``max_rows`` frames, every frame in frame order; a file that ends early
  (cut mid-packet, damaged) yields what was read and sets ``stats.truncated`` to a one-line reason;
* live: dumpcap (BPF in the kernel) -> tshark; a batch closes at ``max_rows`` rows or ``max_wait``
  seconds (an idle interface yields empty batches so callers can check for cancellation);
  ``stats.capture_drops`` comes from dumpcap's statistics when it stops. By default dumpcap's stream
  goes through a :class:`~iotwatch.captures.tshark.rotation.PcapngSplitter` that hands it to a new tshark
  every ``LIVE_ROTATE_PACKETS`` packets (tshark's memory grows with the flows it has seen), frames
  renumbered so they run on; the next tshark starts once the previous one has ended.

Build and use a source in ONE thread (pyshark binds an asyncio loop to the creating thread; on
Textual's running loop it fails): the TUI builds it inside its capture worker.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from typing import Iterator

import numpy as np
from pyshark.capture.capture import Capture
from pyshark.capture.file_capture import FileCapture
from pyshark.capture.live_capture import LiveCapture
from pyshark.tshark.tshark import get_process_path

from . import preflight
from ..batch import PacketBatch
from .chunking import Chunk, ChunkPlanner, capture_format
from ..errors import InputError
from .malloc import pin_mmap_threshold
from .gunzip import GunzipFeeder, gzip_pcapng
from .watchdog import Lifeline
from .rotation import PcapngSplitter, grow_pipe
from ..fields import FIELDS, TSHARK_FIELDS
from ..sources import SourceStats
from .args import DISSECTION_PREFS, field_args

_READ_SIZE = 1 << 20
_PIPE_SIZE = 4 << 20
DUMPCAP_BUFFER_MIB = 128      # live capture kernel buffer (dumpcap -B)
_PARSE_ROWS = 8192            # lines parsed in one go (bounds the parser's transient memory)
_FILE_READ_PAUSE = 0.01       # replay: wait this long after a small read (the pipe holds ~0.1 s of output)
_READ_AHEAD = 8 << 20         # tshark output buffered ahead of the parser (one stream)
_PREFETCH_LIMIT = 1 << 26     # ... for a chunk read ahead by a parallel tshark
_STDERR_KEEP = 200
_NOISE = ("Running as user", "Capturing on", "File: ", "Packets captured:")
CHUNK_PACKETS = 200_000        # packets per tshark run when chunking: keeps tshark's memory flat
CHUNK_MIN_BYTES = 64 << 20     # smaller files are read by one tshark
LIVE_ROTATE_PACKETS = 200_000  # live: packets per tshark before the next takes over (flat memory over hours)
# Display filters whose meaning depends on frames before a chunk: never chunk with those.
_STATEFUL_FILTER = re.compile(r"frame\.(number|time_relative|time_delta|ref_time|offset)|\.stream\b|analysis|reassembl")
_DROPS_RE = re.compile(r"Packets received/dropped on interface '.*?': (\d+)/(\d+)")
_WRITTEN_RE = re.compile(r"Packets captured: (\d+)")   # what dumpcap wrote to its output


class FieldsParser:
    """Turns complete lines of ``tshark -T fields`` output into a :class:`PacketBatch`.

    ``tshark_fields`` is the ``-e`` order (default ``TSHARK_FIELDS``); each ``Field`` takes the first
    non-empty of its tshark fields. Missing values: -1 (int/hex), NaN (float), "" (str).
    """

    def __init__(self, tshark_fields: tuple[str, ...] = TSHARK_FIELDS):
        self.ncols = len(tshark_fields)
        pos = {t: i for i, t in enumerate(tshark_fields)}
        self._plan = [(f.name, f.kind, [pos[t] for t in f.tshark]) for f in FIELDS]
        self.malformed_lines = 0

    def parse(self, text: str) -> PacketBatch:
        """``text``: zero or more complete lines, each ending in ``\\n``."""
        n = text.count("\n")
        if n == 0:
            return PacketBatch.empty()
        k = self.ncols
        flat = text.replace("\n", "\t").split("\t")
        if len(flat) != n * k + 1:  # a line with the wrong number of columns: re-split line by line
            flat = self._regular(text)
        cols = [flat[j:n * k:k] for j in range(k)]
        out = {}
        for name, kind, idx in self._plan:
            col = cols[idx[0]]
            for j in idx[1:]:  # first non-empty of several tshark fields (ip.src / ipv6.src)
                alt = cols[j]
                if any(alt):
                    col = [a or b for a, b in zip(col, alt)] if any(col) else alt
            out[name] = _convert(col, kind, n)
        return PacketBatch(out)

    def _regular(self, text: str) -> list[str]:
        k = self.ncols
        flat: list[str] = []
        for line in text.split("\n")[:-1]:
            parts = line.split("\t")
            if len(parts) != k:
                self.malformed_lines += 1
                parts = (parts + [""] * k)[:k]
            flat += parts
        flat.append("")
        return flat


def _convert(col: list[str], kind: str, n: int) -> np.ndarray:
    """One column of strings -> numpy with the kind's dtype and missing value."""
    if kind == "str":
        arr = np.empty(n, dtype=object)
        arr[:] = col
        return arr
    if not any(col):
        return np.full(n, np.nan, dtype=np.float64) if kind == "float" else np.full(n, -1, dtype=np.int64)
    if kind == "hex":
        return _hex_column(col, n)
    missing, dtype = (",nan,", np.float64) if kind == "float" else (",-1,", np.int64)
    text = "," + ",".join(col) + ","
    text = text.replace(",,", missing).replace(",,", missing)  # empty fields, also runs of them
    try:  # numpy's C text parser: ~30 ns per value
        arr = np.fromstring(text[1:-1], dtype=dtype, sep=",")
        if len(arr) == n:
            return arr
    except ValueError:
        pass
    # a value that is not a plain number (e.g. "1,2"): keep what parses, missing for the rest
    return np.fromiter((_number_or_missing(v, kind) if v else float(missing[1:-1]) for v in col),
                       dtype=dtype, count=n)


def _hex_column(col: list[str], n: int) -> np.ndarray:
    """tshark prints hex fields zero-padded ("0x0012"): decode them all at once when widths agree."""
    present = np.fromiter(map(bool, col), dtype=bool, count=n)
    m = int(present.sum())
    digits = "".join(col).replace("0x", "")
    width = len(digits) // m
    if len(digits) == m * width and width % 2 == 0 and 0 < width <= 14:
        try:
            raw = np.frombuffer(bytes.fromhex(digits), dtype=np.uint8).reshape(m, width // 2)
        except ValueError:  # not all hex digits after all
            raw = None
        if raw is not None:
            out = np.full(n, -1, dtype=np.int64)
            out[present] = raw.astype(np.int64) @ (256 ** np.arange(width // 2 - 1, -1, -1, dtype=np.int64))
            return out
    return np.fromiter((_number_or_missing(v, "hex") for v in col), dtype=np.int64, count=n)


def _number_or_missing(v: str, kind: str):
    """One value the fast paths could not take: parse it alone; missing when it is not a number."""
    try:
        if kind == "float":
            return float(v)
        value = int(v, 16 if kind == "hex" else 0)
        return value if -1 <= value < 2**63 else -1
    except ValueError:
        return float("nan") if kind == "float" else -1


class _FieldsCapture(Capture):
    """A pyshark Capture whose tshark prints our fields instead of PDML; stderr kept for diagnosis."""

    line_buffered = True

    def _setup_eventloop(self):
        # A private loop per capture: pyshark would reuse (or install) the thread's current loop and,
        # on the main thread, a process-wide SafeChildWatcher; neither is ours to change.
        self.eventloop = asyncio.new_event_loop()

    def _init_fields(self):
        # set once dumpcap reports its output file ("File: -"): its capture filter is in place and every
        # packet from now on is captured (libpcap discards what arrived while the filter was being set)
        self.capturing = threading.Event()
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=_STDERR_KEEP)
        self.stderr_by_stream: dict[int, collections.deque[str]] = {}
        self.stderr_tasks: dict[int, asyncio.Task] = {}

    async def _get_tshark_process(self, packet_count=None, stdin=None):
        self._verify_capture_parameters()
        argv = [self._get_tshark_path()] + (["-l"] if self.line_buffered else []) + ["-n", *field_args()]
        argv += self.get_parameters(packet_count=packet_count)
        self.tshark_argv = argv
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin,
            preexec_fn=_die_with_parent)
        self._create_stderr_handling_task(process.stderr)
        self._created_new_process(argv, process)
        return process

    def _create_stderr_handling_task(self, stderr):
        super()._create_stderr_handling_task(stderr)
        self.stderr_tasks[id(stderr)] = self._stderr_handling_tasks[-1]

    async def stderr_done(self, process) -> None:
        """Wait until ``process``'s stderr is fully read (it ends when the process exits)."""
        task = self.stderr_tasks.get(id(process.stderr))
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), 5)

    async def _handle_process_stderr_forever(self, stderr):
        mine = self.stderr_by_stream.setdefault(id(stderr), collections.deque(maxlen=_STDERR_KEEP))
        while True:
            line = await stderr.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").strip()
            if text:
                if text.startswith("File: "):
                    self.capturing.set()
                self._last_error_line = text
                self.stderr_lines.append(text)
                mine.append(text)

    def release(self, process) -> list[str]:
        """Forget a finished process (its transport, task and stderr); return its stderr lines."""
        self._running_processes.discard(process)
        self._stderr_handling_tasks = [t for t in self._stderr_handling_tasks if not t.done()]
        self.stderr_tasks.pop(id(process.stderr), None)
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()
        return list(self.stderr_by_stream.pop(id(process.stderr), ()))

    async def _cleanup_subprocess(self, process):
        """Kill our own process if still running; exit codes are judged by the source, not here."""
        _close_stdout(process)
        if process.returncode is None:
            try:
                process.kill()
                await asyncio.wait_for(process.wait(), 2)
            except (ProcessLookupError, asyncio.TimeoutError):
                pass


class FieldsFileCapture(FileCapture, _FieldsCapture):
    """pyshark FileCapture emitting ``-T fields`` (not line-buffered: fewer writes, same output).

    With ``from_stdin`` tshark reads ``-r -``: the source streams chunks of the file into it."""

    line_buffered = False

    def __init__(self, input_file, from_stdin: bool = False, **kw):
        super().__init__(input_file=input_file, keep_packets=False, **kw)
        self._packet_generator = None  # FileCapture pre-builds a PDML generator we never use
        self.from_stdin = from_stdin
        self._init_fields()

    def get_parameters(self, packet_count=None):
        if not self.from_stdin:
            return super().get_parameters(packet_count=packet_count)
        return Capture.get_parameters(self, packet_count=packet_count) + ["-r", "-"]


class FieldsLiveCapture(LiveCapture, _FieldsCapture):
    """pyshark LiveCapture (dumpcap -> pipe -> tshark) emitting ``-T fields``.

    Unlike pyshark 0.6 it closes its copies of the pipe after spawning, so tshark sees EOF when
    dumpcap exits (pyshark hangs forever there), and it keeps dumpcap's process for a clean stop.
    """

    def __init__(self, interface, buffer_mib: int = DUMPCAP_BUFFER_MIB, **kw):
        super().__init__(interface=interface, **kw)
        self._init_fields()
        self.dumpcap_process = None
        self.buffer_mib = buffer_mib

    async def start_dumpcap(self) -> int:
        """Start dumpcap writing its pcapng stream into a pipe; return the pipe's read end (caller closes it)."""
        read, write = os.pipe()
        try:
            argv = [get_process_path(process_name="dumpcap", tshark_path=self.tshark_path)]
            argv += self._get_dumpcap_parameters()
            self.dumpcap_argv = argv
            # under a watchdog tied to us by a pipe: dumpcap's file capabilities clear the
            # parent-death signal, so a killed iotwatch left it capturing (watchdog.py)
            self.lifeline = Lifeline()
            dumpcap = await asyncio.create_subprocess_exec(*self.lifeline.argv(argv), stdout=write,
                                                           stderr=subprocess.PIPE, pass_fds=(self.lifeline.read_fd,))
            self.lifeline.started()
            self._create_stderr_handling_task(dumpcap.stderr)
            self._created_new_process(argv, dumpcap, process_name="Dumpcap")
            self.dumpcap_process = dumpcap
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        return read

    async def _get_tshark_process(self, packet_count=None, stdin=None):
        """dumpcap + the tshark reading it; with ``stdin`` only a tshark on that pipe (rotation)."""
        if stdin is not None:
            return await _FieldsCapture._get_tshark_process(self, packet_count=packet_count, stdin=stdin)
        read = await self.start_dumpcap()
        try:
            return await _FieldsCapture._get_tshark_process(self, packet_count=packet_count, stdin=read)
        finally:
            os.close(read)

    def get_parameters(self, packet_count=None):
        # tshark reads dumpcap's pcapng stream as a file (-r -). pyshark's "-i -" makes tshark start a
        # second dumpcap on the pipe that copies every packet into an ever-growing temp file.
        return Capture.get_parameters(self, packet_count=packet_count) + ["-r", "-"]

    def _verify_capture_parameters(self):
        pass  # preflight.check_live already checked the interface (pyshark's tshark -D names) and permission

    def _get_dumpcap_parameters(self):
        # pyshark passes -q, which also silences dumpcap's final drop statistics; we want them.
        # -B: a kernel capture buffer large enough to absorb bursts while tshark (~20k pkt/s) catches
        # up; dumpcap's default 2 MiB holds only ~9k small packets, the rest of a burst is dropped.
        params = [p for p in super()._get_dumpcap_parameters() if p != "-q"]
        return params + ["-B", str(self.buffer_mib)]


class _PipeReader:
    """A thread draining tshark's stdout into memory (up to ``limit`` bytes ahead of the consumer).

    tshark never waits for the parser (or, with parallel chunks, for the chunks before its own),
    and reading costs a syscall per ~MB instead of an event-loop pass. The thread reads a dup of the
    pipe, so closing the asyncio transport never races with a read in progress."""

    def __init__(self, process, limit: int, pause: float = 0.0):
        transport = process._transport.get_pipe_transport(1)
        transport.pause_reading()  # before asyncio ever read from it: every byte comes through here
        fd = transport.get_extra_info("pipe").fileno()
        self._fd = os.dup(fd)
        os.set_blocking(self._fd, True)
        self._limit = limit
        self._pause = pause
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"iotwatch-tshark-{process.pid}")
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self._fd, _READ_SIZE)
                except OSError:
                    data = b""
                with self._cond:
                    while data and self._buffered >= self._limit and not self._stopped:
                        self._cond.wait()
                    if self._stopped:
                        return
                    if data:
                        self._chunks.append(data)
                        self._buffered += len(data)
                    else:
                        self._eof = True
                    self._cond.notify_all()
                if not data:
                    return
                if len(data) < _READ_SIZE // 4 and self._pause:
                    time.sleep(self._pause)  # let the pipe fill: fewer wake-ups, fewer GIL hand-offs
        finally:
            os.close(self._fd)

    def read(self, timeout: float | None) -> bytes | None:
        """Everything buffered so far (at least 1 byte); b"" at EOF; None after ``timeout`` with nothing."""
        with self._cond:
            if not self._chunks and not self._eof:
                self._cond.wait_for(lambda: self._chunks or self._eof, timeout)
            if not self._chunks:
                return b"" if self._eof else None
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()
            return data

    def stop(self) -> None:
        """Stop reading (the process is being killed); the thread ends at its next wake-up."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _Segment:
    """One tshark run: the whole source, or one chunk of a file (frames renumbered by ``first_frame``)."""

    def __init__(self, process, reader_limit: int, first_frame: int = 1, chunk: Chunk | None = None,
                 feeder=None, live: bool = False):
        self.process = process
        self.reader = _PipeReader(process, reader_limit, pause=0.0 if live else _FILE_READ_PAUSE)
        self.first_frame = first_frame
        self.chunk = chunk
        self.feeder = feeder
        self.rows = 0

    def stop(self, loop, capture) -> None:
        """Kill tshark if running, end the reader and feeder threads, forget the process."""
        self.reader.stop()
        loop.run_until_complete(capture._cleanup_subprocess(self.process))
        self.reader.join(5)
        if self.feeder is not None:
            self.feeder.join(5)
        capture.release(self.process)


class TsharkFieldsSource:
    """PacketSource over a :class:`FieldsFileCapture` or :class:`FieldsLiveCapture`.

    ``planner`` (files only): a :class:`~iotwatch.captures.tshark.chunking.ChunkPlanner`; each chunk runs in
    its own short-lived tshark fed through a pipe (flat memory), ``workers`` of them at a time.
    ``rotate_packets`` (live only): a :class:`~iotwatch.captures.tshark.rotation.PcapngSplitter` feeds
    dumpcap's stream to one tshark after another, that many packets each (flat memory); 0 = one tshark.
    """

    def __init__(self, capture: _FieldsCapture, description: str, live: bool, path: str | None = None,
                 planner: ChunkPlanner | None = None, workers: int = 1, rotate_packets: int = 0,
                 gzip_packets: int = 0):
        self.capture = capture
        self.description = description
        self.live = live
        self.path = path
        self.stats = SourceStats()
        self._parser = FieldsParser()
        self._planner = planner
        self._workers = max(1, workers)
        self._pending: collections.deque[_Segment] = collections.deque()
        self._started = False
        self._tail_problem: str | None = None
        self._closed = False
        # live: dumpcap's stream split into tsharks; a gzip-compressed pcapng file: its decompressed
        # stream split the same way (one tshark for the whole file grew 343 -> 666 MB over 1.2M packets)
        self._rotate = rotate_packets if live else gzip_packets
        self._gunzip: GunzipFeeder | None = None
        self._splitter: PcapngSplitter | None = None
        self._stopping = False     # stop_capture() was called: dumpcap ends, the backlog drains
        self.tsharks_started = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.capture.eventloop

    @property
    def capturing(self) -> bool:
        """Live: dumpcap's filter is installed and packets are being captured (seen within a batch
        wait of it happening). Files: always."""
        return not self.live or self.capture.capturing.is_set()

    @property
    def _process(self):
        """The tshark process currently read (None before the first batch)."""
        return self._pending[0].process if self._pending else None

    def _start_segment(self) -> bool:
        """Start the next tshark (the only one, the next chunk's, or the next live rotation's). False when there is none."""
        if self._rotate:
            return self._start_live_segment()
        if self._planner is None:
            if self._started:
                return False
            self._started = True
            proc = self.loop.run_until_complete(self.capture._get_tshark_process())
            self.tsharks_started += 1
            _grow_pipe(proc)
            self._pending.append(_Segment(proc, _READ_AHEAD, live=self.live))
            return True
        if not self._planner.remaining:
            return False
        proc, write = self._tshark_on_pipe()
        chunk = self._planner.next_chunk()  # walked while tshark starts up
        if chunk is None or chunk.packets == 0:  # nothing left, or only a cut/damaged tail
            os.close(write)
            self.loop.run_until_complete(self.capture._cleanup_subprocess(proc))
            if chunk is not None:
                self._tail_problem = f"{chunk.problem}; stopped after frame {chunk.first_frame - 1}"
            return False
        self.tsharks_started += 1
        feeder = threading.Thread(target=_feed_chunk, args=(write, self.path, chunk), daemon=True,
                                  name=f"iotwatch-chunk-{chunk.first_frame}")
        feeder.start()
        limit = _PREFETCH_LIMIT if self._workers > 1 else _READ_AHEAD
        self._pending.append(_Segment(proc, limit, chunk.first_frame, chunk, feeder))
        return True

    def _start_live_segment(self) -> bool:
        """Live with rotation: dumpcap and the splitter first, then a tshark whenever the splitter needs one
        (after the previous tshark ended, so two never hold memory at once)."""
        if self._splitter is None:
            if self._started:
                return False
            self._started = True
            if self.live:
                read = self.loop.run_until_complete(self.capture.start_dumpcap())
            else:
                self._gunzip = GunzipFeeder(self.path)
                read = self._gunzip.read_fd
            self._splitter = PcapngSplitter(read, self._rotate)
        elif not self._splitter.wants_output():
            return False
        proc, write = self._tshark_on_pipe()
        self.tsharks_started += 1
        first = self._splitter.attach(write)
        self._pending.append(_Segment(proc, _READ_AHEAD, first_frame=first, live=self.live))
        return True

    def _tshark_on_pipe(self) -> tuple[object, int]:
        """Start a tshark reading ``-r -`` from a new pipe; returns (process, the pipe's write end)."""
        read, write = os.pipe()
        try:
            proc = self.loop.run_until_complete(self.capture._get_tshark_process(stdin=read))
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        _grow_pipe(proc)
        return proc, write

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]:
        if max_rows <= 0:
            raise ValueError("max_rows must be positive")
        while not self._closed:
            while len(self._pending) < self._workers and self._start_segment():
                pass
            if not self._pending:
                if self.live and not self._closed and not self._stopping:
                    self._check_dumpcap()
                if self._gunzip is not None and self._gunzip.problem and not self._tail_problem:
                    if not self.stats.packets:
                        raise InputError(f"cannot read {self.description}: {self._gunzip.problem}")
                    self._tail_problem = f"{self._gunzip.problem}; stopped after frame {self.stats.packets}"
                if self._splitter is not None and self._splitter.problem and not self.stats.truncated:
                    self._tail_problem = f"{self._splitter.problem}; stopped after frame {self._splitter.packets}"
                if self._tail_problem and not self.stats.truncated:
                    self.stats.truncated = self._tail_problem
                    marker = PacketBatch.empty()  # the last batch carries the reason
                    marker.truncated = self._tail_problem
                    yield marker
                return
            yield from self._segment_batches(self._pending[0], max_rows, max_wait)
            if self._closed:
                return
            self._pending.popleft()
            if self.stats.truncated:
                self._stop_pending()
                return

    def _segment_batches(self, seg: _Segment, max_rows: int, max_wait: float) -> Iterator[PacketBatch]:
        buf = bytearray()
        lines = 0
        eof = False
        while not eof and not self._closed:
            deadline = self.loop.time() + max_wait if self.live else None
            while lines < max_rows:
                data = seg.reader.read(None if deadline is None else max(deadline - self.loop.time(), 0.0))
                if data is None:  # live: max_wait passed
                    break
                if not data:
                    eof = True
                    break
                buf += data
                lines += data.count(b"\n")
            # parse whole batches (files) or every complete line (live), at most ~_PARSE_ROWS at a time:
            # a parse holds ~50 bytes of Python string per field while it runs
            take = max_rows * max(1, _PARSE_ROWS // max_rows)
            if lines > take or (lines >= max_rows and not self.live):
                cut = _nth_newline(buf, min(take, lines - lines % max_rows)) + 1
            else:
                cut = buf.rfind(b"\n") + 1
            self.loop.run_until_complete(asyncio.sleep(0))  # let the loop drain stderr pipes
            text = bytes(buf[:cut]).decode("utf-8", "replace")
            del buf[:cut]
            lines = buf.count(b"\n")
            batch = self._parser.parse(text)
            n = len(batch)
            if seg.first_frame != 1:
                batch.columns["frame_number"] += seg.first_frame - 1
            seg.rows += n
            if eof:
                self._finish(seg)
            if n == 0 and self.live and not eof:
                yield batch  # idle interface: let the caller check for cancellation
            for start in range(0, n, max_rows):
                if self._closed:
                    return
                part = batch.slice(start, min(n, start + max_rows))
                self.stats.packets += len(part)
                if eof and start + max_rows >= n:
                    part.truncated = self.stats.truncated
                yield part

    def _finish(self, seg: _Segment) -> None:
        """tshark reached EOF: judge its exit; raise if it failed before any frame, else note why it stopped."""
        _close_stdout(seg.process)
        try:
            rc = self.loop.run_until_complete(asyncio.wait_for(seg.process.wait(), 5))
        except asyncio.TimeoutError:
            rc = None
        if seg.feeder is not None:
            seg.feeder.join(5)
        try:
            self.loop.run_until_complete(self.capture.stderr_done(seg.process))
        except asyncio.TimeoutError:
            pass
        self._note_drops()
        if self._closed:
            return
        reason = _tshark_reason(self.capture.release(seg.process))
        failed = rc not in (0, None) or reason is not None
        filtered = bool(self.capture._display_filter)  # with -Y, fewer rows than packets is normal
        if seg.chunk is not None and not failed and not filtered and seg.rows < seg.chunk.packets:
            failed, reason = True, f"tshark read {seg.rows} of the {seg.chunk.packets} packets of a chunk"
        if not failed and seg.chunk is not None and seg.chunk.problem:
            failed, reason = True, seg.chunk.problem
        if not failed:
            return
        why = (reason or f"tshark exited with code {rc}").rstrip(".")
        last = seg.first_frame - 1 + seg.rows
        if last == 0:
            raise InputError(f"cannot read {self.description}: {why}")
        self.stats.truncated = f"{why}; stopped after frame {last}"

    def stop_capture(self) -> None:
        """Live: ask dumpcap to stop (SIGTERM) and keep the source open, so what dumpcap already
        captured still flows through tshark to the caller until the source ends (stopping used to
        discard that backlog: 16,250 of 19,130 received packets counted)."""
        if not self.live or self._stopping:
            return
        self._stopping = True
        dumpcap = getattr(self.capture, "dumpcap_process", None)
        if dumpcap is not None and dumpcap.returncode is None:
            try:
                dumpcap.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _check_dumpcap(self) -> None:
        """tshark ended although nobody stopped the capture: if dumpcap gave up (the interface went
        away, it lost permission), say so; the run's outputs are then marked truncated."""
        dumpcap = getattr(self.capture, "dumpcap_process", None)
        if dumpcap is None:
            return
        try:
            rc = self.loop.run_until_complete(asyncio.wait_for(dumpcap.wait(), 2))
            self.loop.run_until_complete(self.capture.stderr_done(dumpcap))
        except (asyncio.TimeoutError, RuntimeError):
            rc = dumpcap.returncode
        lines = [ln.strip() for ln in self.capture.stderr_lines
                 if ln.strip() and not ln.startswith(_NOISE) and "received/dropped" not in ln
                 and not ln.startswith("tshark")]
        if rc in (0, None) and not lines:
            return
        reason = " ".join(ln.removeprefix("dumpcap: ") for ln in lines) or f"dumpcap exited with code {rc}"
        reason = f"the capture on {self.description} stopped: {reason.rstrip('.')}"
        self.stats.extra["capture_failed"] = reason
        if not self._tail_problem:
            self._tail_problem = f"{reason}; stopped after frame {self.stats.packets}"

    def _note_drops(self) -> None:
        for line in self.capture.stderr_lines:
            w = _WRITTEN_RE.search(line)
            if w:
                self.stats.extra["written"] = int(w.group(1))
            m = _DROPS_RE.search(line)
            if m:
                self.stats.extra["captured"] = int(m.group(1))
                self.stats.capture_drops = int(m.group(2))

    def _stop_pending(self) -> None:
        """Stop every started tshark (a chunk ended the file early, or the source closes)."""
        for seg in self._pending:
            seg.stop(self.loop, self.capture)
        self._pending.clear()

    def close(self) -> None:
        """Stop our own processes (dumpcap first, politely, so it reports drops), then tshark."""
        if self._closed:
            return
        self._closed = True
        dumpcap = getattr(self.capture, "dumpcap_process", None)
        if self._gunzip is not None:
            self._gunzip.stop()
        if self._splitter is not None:
            # rotation: stop forwarding and end the tsharks first; the splitter drains dumpcap's stream,
            # so dumpcap exits at once on SIGTERM and reports its statistics
            self._splitter.stop()
            try:
                self._stop_pending()
            except RuntimeError:  # called from a thread running another loop: processes die with their pipes
                return
        if dumpcap is not None and dumpcap.returncode is None:
            try:
                dumpcap.send_signal(signal.SIGTERM)
                self.loop.run_until_complete(asyncio.wait_for(dumpcap.wait(), 2))
            except (ProcessLookupError, asyncio.TimeoutError):
                pass
        lifeline = getattr(self.capture, "lifeline", None)
        if lifeline is not None:
            lifeline.close()
        try:
            self._stop_pending()
            self.loop.run_until_complete(self.capture.close_async())
        except RuntimeError:  # called from a thread running another loop: processes die with their pipes
            return
        if dumpcap is not None:
            self.capture.release(dumpcap)
        if self._planner is not None:
            self._planner.close()
        if self._splitter is not None:
            self._splitter.join(5)
        self._note_drops()
        self.loop.run_until_complete(asyncio.sleep(0))  # let closed transports finish before the loop goes
        self.loop.close()


def _feed_chunk(write_fd: int, path: str, chunk: Chunk) -> None:
    """Writer thread: ``chunk.header`` then the chunk's byte range, copied by the kernel (sendfile)."""
    try:
        with open(path, "rb") as fh:
            view = memoryview(chunk.header)
            while view:
                view = view[os.write(write_fd, view):]
            offset, left = chunk.start, chunk.stop - chunk.start
            while left > 0:
                sent = os.sendfile(write_fd, fh.fileno(), offset, min(left, 1 << 24))
                if sent == 0:
                    break
                offset += sent
                left -= sent
    except (BrokenPipeError, OSError):
        pass  # tshark stopped early (closed or failed): the reader reports it
    finally:
        os.close(write_fd)


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the thread that started us ends (Linux), so a
    crashed or killed iotwatch leaves no dumpcap capturing forever. Hence: use a source in the
    thread that opened it (which pyshark requires anyway)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _close_stdout(process) -> None:
    """asyncio reports a process's exit only once all its pipes are disconnected; stdout is ours."""
    transport = process._transport.get_pipe_transport(1) if process._transport else None
    if transport is not None:
        transport.close()


def _grow_pipe(process) -> None:
    """Enlarge tshark's stdout pipe (Linux) so tshark keeps dissecting while we parse a batch;
    with the default 64 KiB it would block within milliseconds and the two would take turns."""
    try:
        fd = process._transport.get_pipe_transport(1).get_extra_info("pipe").fileno()
    except AttributeError:
        return
    grow_pipe(fd, _PIPE_SIZE)


def _nth_newline(buf: bytearray, nth: int) -> int:
    """Offset of the ``nth`` (1-based) newline in ``buf``."""
    positions = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
    return int(positions[nth - 1])


def _tshark_reason(lines) -> str | None:
    """tshark's own explanation from stderr (e.g. 'appears to have been cut short ...'), one line."""
    msgs = [ln for ln in lines if not ln.startswith(_NOISE) and "received/dropped" not in ln]
    if not msgs:
        return None
    text = " ".join(m.removeprefix("tshark: ") for m in msgs)
    return re.sub(r'The file ".*?" ', "file ", text)


def open_tshark_source(read: str | None = None, iface: str | None = None, bpf: str | None = None,
                       display_filter: str | None = None, **options) -> TsharkFieldsSource:
    """Open a file (``read``) or a live interface (``iface``) after preflight checks.

    Options: ``tshark_path`` (another tshark), ``prefs`` (dict replacing ``DISSECTION_PREFS``),
    ``custom_parameters`` (extra tshark argv), ``chunk_packets`` (files: packets per tshark run;
    None = automatic, chunks of ``CHUNK_PACKETS`` for files over ``CHUNK_MIN_BYTES``; 0 = one run),
    ``workers`` (files: tshark runs side by side, e.g. 2 on two cores; needs chunks),
    ``buffer_mib`` (live: dumpcap's kernel capture buffer, default ``DUMPCAP_BUFFER_MIB``),
    ``rotate_packets`` (live: packets per tshark run, default ``LIVE_ROTATE_PACKETS``; 0 = one tshark
    for the whole capture, whose memory grows with packets; also 0 under a display filter that
    depends on earlier frames, like ``frame.number`` or ``tcp.stream``).
    Raises InputError/EnvironmentProblem, never hangs.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("open a packet source in a worker thread, not on a running asyncio loop (e.g. Textual's)")
    pin_mmap_threshold()  # flat memory over long runs (see malloc.py)
    if bool(read) == bool(iface):
        raise InputError("give exactly one packet source: a file (-r FILE) or an interface (-i IFACE)")
    if bpf and not iface:
        raise InputError("-f/--bpf applies to live capture only", hint="use -Y/--display-filter on files")
    tshark_path = options.pop("tshark_path", None)
    prefs = dict(options.pop("prefs", DISSECTION_PREFS))
    custom = options.pop("custom_parameters", None)
    chunk_packets = options.pop("chunk_packets", None)
    workers = int(options.pop("workers", 1))
    buffer_mib = options.pop("buffer_mib", None) or DUMPCAP_BUFFER_MIB
    rotate_packets = options.pop("rotate_packets", None)
    rotate_packets = LIVE_ROTATE_PACKETS if rotate_packets is None else int(rotate_packets)
    if rotate_packets < 0:
        raise ValueError("rotate_packets must be >= 0")
    if options:
        raise TypeError(f"unknown source options: {', '.join(sorted(options))}")
    tools = preflight.check_tools(need_dumpcap=bool(iface), tshark_path=tshark_path)
    common = dict(display_filter=display_filter or None, override_prefs=prefs, tshark_path=tools.tshark,
                  custom_parameters=custom)
    if read:
        preflight.check_capture_file(read)
        if display_filter:
            preflight.check_display_filter(display_filter, tools.tshark)
        planner = _plan_chunks(str(read), display_filter, chunk_packets, workers)
        gz = 0
        if planner is None and chunk_packets != 0 and not (display_filter and _STATEFUL_FILTER.search(display_filter)):
            gz = (chunk_packets or CHUNK_PACKETS) if gzip_pcapng(str(read)) else 0
        capture = FieldsFileCapture(read, from_stdin=planner is not None or bool(gz), **common)
        return TsharkFieldsSource(capture, description=str(read), live=False, path=str(read),
                                  planner=planner, workers=workers if planner is not None else 1, gzip_packets=gz)
    preflight.check_live(iface, bpf=bpf, tools=tools)
    if display_filter:
        preflight.check_display_filter(display_filter, tools.tshark)
    if display_filter and _STATEFUL_FILTER.search(display_filter):
        rotate_packets = 0  # frame numbers / streams would restart with every tshark
    return TsharkFieldsSource(FieldsLiveCapture(iface, bpf_filter=bpf or None, buffer_mib=buffer_mib, **common),
                              description=iface, live=True, rotate_packets=rotate_packets)


def _fits_one_chunk(path: str) -> bool:
    """At most ``CHUNK_PACKETS`` packets in the file (walks record headers, ~1 µs per packet)."""
    probe = ChunkPlanner(path, CHUNK_PACKETS + 1)
    try:
        first = probe.next_chunk()
        return first is None or (first.packets <= CHUNK_PACKETS and not probe.remaining)
    finally:
        probe.close()


def _plan_chunks(path: str, display_filter: str | None, chunk_packets: int | None,
                 workers: int) -> ChunkPlanner | None:
    """A ChunkPlanner when the file should be replayed in chunks, else None (one tshark reads it)."""
    if chunk_packets == 0 or (display_filter and _STATEFUL_FILTER.search(display_filter)):
        return None
    with open(path, "rb") as fh:
        if capture_format(fh.read(4)) is None:  # compressed: tshark reads it itself
            return None
        size = os.fstat(fh.fileno()).st_size
    if chunk_packets is None:
        if size < CHUNK_MIN_BYTES and workers == 1:
            return None
        if workers == 1 and _fits_one_chunk(path):
            return None  # one tshark reading the file itself: same memory, no pipe copy (~7% faster)
        chunk_packets = CHUNK_PACKETS
        if workers > 1:  # one chunk per worker, unless that breaks the memory bound
            total = ChunkPlanner(path, 1 << 62).next_chunk()
            chunk_packets = min(CHUNK_PACKETS, max(1, -(-total.packets // workers))) if total else CHUNK_PACKETS
    return ChunkPlanner(path, chunk_packets)
