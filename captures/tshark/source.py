"""The packet source: tshark emitting ``-T fields`` (``args.py``), parsed column-wise (``parser.py``).

:class:`TsharkFieldsSource` is the :class:`~iotwatch.captures.sources.PacketSource`:

* files: batches of ``max_rows`` frames, every frame in frame order; a file that ends early
  (cut mid-packet, damaged) yields what was read and sets ``stats.truncated`` to a one-line reason.
  A big file is replayed in chunks (``chunking.py``), one short-lived tshark each (flat memory),
  ``workers`` of them side by side, merged in frame order;
* live: dumpcap (BPF in the kernel) -> tshark; a batch closes at ``max_rows`` rows or ``max_wait``
  seconds (an idle interface yields empty batches so callers can check for cancellation);
  ``stats.capture_drops`` comes from dumpcap's statistics when it stops. By default dumpcap's stream
  goes through a :class:`~iotwatch.captures.tshark.rotation.PcapngSplitter` that hands it to a new tshark
  every ``LIVE_ROTATE_PACKETS`` packets (tshark's memory grows with the flows it has seen), frames
  renumbered so they run on; the next tshark starts once the previous one has ended.

Threads and processes: see ``process.py`` (the opening thread owns the source and its children;
byte-moving daemon threads; one Condition per hand-over). pyshark is used only for tool discovery
and interface names (``preflight.py``) and the detail view's dissection (``dissect.py``).
"""
from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import sys
import threading
import time
from typing import Iterator, Mapping, Sequence

from . import preflight
from ..batch import PacketBatch
from .chunking import Chunk, ChunkPlanner
from ..pcapfile import capture_format
from ..errors import InputError
from .malloc import pin_mmap_threshold
from .parser import FieldsParser, nth_newline
from .process import STDERR_KEEP, PipeReader, ToolProcess, feed_file_range, start_into_pipe, start_tshark
from .rotation import PcapngSplitter
from .gunzip import GunzipFeeder, gzip_pcapng
from .watchdog import Lifeline, stop_watched
from ..keep import CaptureKeeper, KeptFile
from ..batch import SourceStats
from .args import DISSECTION_PREFS, dumpcap_command, tshark_fields_command, wlan_decryption_args

DUMPCAP_BUFFER_MIB = 128      # live capture kernel buffer (dumpcap -B)
_PARSE_ROWS = 2048            # lines parsed in one go unless a batch is bigger (bounds the parser's transient
                              # memory and how long one parse holds the GIL: ~10 ms, not ~40, beside a UI)
_FILE_READ_PAUSE = 0.01       # replay: wait this long after a small read (the pipe holds ~0.1 s of output)
_READ_AHEAD = 8 << 20         # tshark output buffered ahead of the parser (one stream)
_PREFETCH_LIMIT = 1 << 26     # ... for a chunk read ahead by a parallel tshark
_NOISE = ("Running as user", "Capturing on", "File: ", "Packets captured:")
CHUNK_PACKETS = 200_000        # packets per tshark run when chunking: keeps tshark's memory flat
CHUNK_MIN_BYTES = 64 << 20     # smaller files are read by one tshark
LIVE_ROTATE_PACKETS = 200_000  # live: packets per tshark before the next takes over (flat memory over hours)
# Display filters whose meaning depends on frames before a chunk: never chunk with those.
_STATEFUL_FILTER = re.compile(r"frame\.(number|time_relative|time_delta|ref_time|offset)|\.stream\b|analysis|reassembl")
_DROPS_RE = re.compile(r"Packets received/dropped on interface '.*?': (\d+)/(\d+)")
_WRITTEN_RE = re.compile(r"Packets captured: (\d+)")   # what dumpcap wrote to its output


class _Segment:
    """One tshark run: the whole source, or one chunk of a file (frames renumbered by ``first_frame``)."""

    def __init__(self, process: ToolProcess, stdout_fd: int, reader_limit: int, first_frame: int = 1,
                 chunk: Chunk | None = None, feeder: threading.Thread | None = None, live: bool = False):
        self.process = process
        self.reader = PipeReader(stdout_fd, reader_limit, pause=0.0 if live else _FILE_READ_PAUSE,
                                 name=f"iotwatch-tshark-{process.pid}")
        self.first_frame = first_frame
        self.chunk = chunk
        self.feeder = feeder
        self.rows = 0

    def stop(self) -> None:
        """Kill tshark if running, end the reader and feeder threads."""
        self.reader.stop()
        self.process.kill()
        self.reader.join(5)
        if self.feeder is not None:
            self.feeder.join(5)


class TsharkFieldsSource:
    """PacketSource running tshark on a file (``path``) or on dumpcap's stream (``iface``).

    ``planner`` (files only): a :class:`~iotwatch.captures.tshark.chunking.ChunkPlanner`; each chunk runs in
    its own short-lived tshark fed through a pipe (flat memory), ``workers`` of them at a time.
    ``rotate_packets`` (live only): a :class:`~iotwatch.captures.tshark.rotation.PcapngSplitter` feeds
    dumpcap's stream to one tshark after another, that many packets each (flat memory); 0 = one tshark.
    """

    def __init__(self, description: str, live: bool, *, tshark: str, path: str | None = None,
                 display_filter: str | None = None, prefs: Mapping[str, str] = DISSECTION_PREFS,
                 extra: Sequence[str] = (), planner: ChunkPlanner | None = None, workers: int = 1,
                 dumpcap: str | None = None, iface: str | None = None, bpf: str | None = None,
                 buffer_mib: int = DUMPCAP_BUFFER_MIB, rotate_packets: int = 0, monitor_mode: bool = False,
                 gzip_packets: int = 0, keeper: CaptureKeeper | None = None):
        self.description = description
        self.live = live
        self.path = path
        self.stats = SourceStats()
        self._tshark = tshark
        self._display_filter = display_filter or None
        self._prefs = dict(prefs)
        self._extra = list(extra)
        self._dumpcap_argv = dumpcap_command(dumpcap, iface, bpf, buffer_mib, monitor_mode) if live else None
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
        # live: a keeper (-w, a private ring, the flagged window) tees dumpcap's stream, which needs the splitter
        self.keeper = keeper if live else None
        if self.keeper is not None and not self._rotate:
            self._rotate = 1 << 62   # one tshark for the whole capture, through the splitter
        self._gunzip: GunzipFeeder | None = None
        self._splitter: PcapngSplitter | None = None
        self._dumpcap: ToolProcess | None = None
        self._lifeline: Lifeline | None = None
        self._stopping = False     # stop_capture() was called: dumpcap ends, the backlog drains
        self._capturing = threading.Event()
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=STDERR_KEEP)  # every child's
        self.processes: list[ToolProcess] = []   # every child started, in order
        self.tshark_argv: list[str] | None = None  # the last tshark's
        self.tsharks_started = 0

    @property
    def capturing(self) -> bool:
        """Live: dumpcap's filter is installed and packets are being captured (it said "File: -").
        Files: always."""
        return not self.live or self._capturing.is_set()

    def kept_frames(self) -> list[KeptFile]:
        """The files holding this live capture's frames so far, ``[(path, first_frame, last_frame)]``
        oldest first (see ``captures/keep.py``): what the keeper wrote and still has on disk; ``[]``
        without a keeper and for a replay (its frames are in the file it reads). Thread-safe."""
        return self.keeper.kept_frames() if self.keeper is not None else []

    @property
    def _process(self) -> ToolProcess | None:
        """The tshark process currently read (None before the first batch)."""
        return self._pending[0].process if self._pending else None

    def _on_stderr(self, text: str) -> None:  # stderr threads
        if text.startswith("File: "):  # dumpcap's filter is in place: every packet from now on is captured
            self._capturing.set()
        self.stderr_lines.append(text)

    # -- starting processes (the owner thread) ---------------------------------------------------------

    def _start_tshark(self, read: str, stdin: int | None = None) -> tuple[ToolProcess, int]:
        argv = tshark_fields_command(self._tshark, read=read, display_filter=self._display_filter,
                                     prefs=self._prefs, line_buffered=self.live, extra=self._extra)
        proc, out = start_tshark(argv, stdin=stdin, on_line=self._on_stderr)
        self.tshark_argv = argv
        self.processes.append(proc)
        self.tsharks_started += 1
        return proc, out

    def _tshark_on_pipe(self) -> tuple[ToolProcess, int, int]:
        """A tshark reading ``-r -`` from a new pipe: (process, its stdout, the pipe's write end)."""
        read, write = os.pipe()
        try:
            proc, out = self._start_tshark("-", stdin=read)
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        return proc, out, write

    def _start_dumpcap(self) -> int:
        """dumpcap writing its pcapng stream into a pipe; returns the read end (caller closes it)."""
        # under a watchdog tied to us by a pipe: dumpcap's file capabilities clear the parent-death
        # signal, so a killed non-root iotwatch left it capturing (watchdog.py)
        self._lifeline = Lifeline()
        try:
            self._dumpcap, read = start_into_pipe(self._lifeline.argv(self._dumpcap_argv), on_line=self._on_stderr,
                                                  pass_fds=(self._lifeline.read_fd,), die_with_parent=False)
        except BaseException:
            self._lifeline.close()
            raise
        self._lifeline.started()
        self.processes.append(self._dumpcap)
        return read

    def _start_segment(self) -> bool:
        """Start the next tshark (the only one, the next chunk's, or the next live rotation's). False when there is none."""
        if self._rotate:
            return self._start_live_segment()
        if self._planner is None:
            if self._started:
                return False
            self._started = True
            if self.live:
                read = self._start_dumpcap()
                try:
                    proc, out = self._start_tshark("-", stdin=read)
                finally:
                    os.close(read)
            else:
                proc, out = self._start_tshark(self.path)
            self._pending.append(_Segment(proc, out, _READ_AHEAD, live=self.live))
            return True
        if not self._planner.remaining:
            return False
        proc, out, write = self._tshark_on_pipe()
        chunk = self._planner.next_chunk()  # walked while tshark starts up
        if chunk is None or chunk.packets == 0:  # nothing left, or only a cut/damaged tail
            os.close(write)
            os.close(out)
            proc.kill()
            self.tsharks_started -= 1
            if chunk is not None:
                self._tail_problem = f"{chunk.problem}; stopped after frame {chunk.first_frame - 1}"
            return False
        feeder = threading.Thread(target=feed_file_range, args=(write, self.path, chunk.header, chunk.start, chunk.stop),
                                  daemon=True, name=f"iotwatch-chunk-{chunk.first_frame}")
        feeder.start()
        limit = _PREFETCH_LIMIT if self._workers > 1 else _READ_AHEAD
        self._pending.append(_Segment(proc, out, limit, chunk.first_frame, chunk, feeder))
        return True

    def _start_live_segment(self) -> bool:
        """Live with rotation: dumpcap and the splitter first, then a tshark whenever the splitter needs one
        (after the previous tshark ended, so two never hold memory at once)."""
        if self._splitter is None:
            if self._started:
                return False
            self._started = True
            if self.live:
                read = self._start_dumpcap()
            else:
                self._gunzip = GunzipFeeder(self.path)
                read = self._gunzip.read_fd
            self._splitter = PcapngSplitter(read, self._rotate, tee=self.keeper)
        elif not self._splitter.wants_output():
            return False
        proc, out, write = self._tshark_on_pipe()
        first = self._splitter.attach(write)
        self._pending.append(_Segment(proc, out, _READ_AHEAD, first_frame=first, live=self.live))
        return True

    # -- reading (the owner thread) --------------------------------------------------------------------

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
            deadline = time.monotonic() + max_wait if self.live else None
            while lines < max_rows:
                data = seg.reader.read(None if deadline is None else max(deadline - time.monotonic(), 0.0))
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
                cut = nth_newline(buf, min(take, lines - lines % max_rows)) + 1
            else:
                cut = buf.rfind(b"\n") + 1
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
        rc = seg.process.wait(5)
        if seg.feeder is not None:
            seg.feeder.join(5)
        lines = seg.process.stderr_lines(5)
        self._note_drops()
        if self._closed:
            return
        reason = _tshark_reason(lines)
        failed = rc not in (0, None) or reason is not None
        filtered = bool(self._display_filter)  # with -Y, fewer rows than packets is normal
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
        if self._dumpcap is not None and self._dumpcap.returncode is None:
            try:
                self._dumpcap.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _check_dumpcap(self) -> None:
        """tshark ended although nobody stopped the capture: if dumpcap gave up (the interface went
        away, it lost permission), say so; the run's outputs are then marked truncated."""
        if self._dumpcap is None:
            return
        rc = self._dumpcap.wait(2)
        raw = self._dumpcap.stderr_lines(2)
        # dumpcap's complaint may share a line with its "Packets: N" progress counter (\r-separated)
        lines = [m.group(1).strip() for ln in raw for m in re.finditer(r"dumpcap: (.*?)(?=\rPackets|$)", ln)]
        if not lines and rc not in (0, None):
            lines = [ln.strip() for ln in raw if ln.strip() and not ln.startswith(_NOISE + ("Packets",))
                     and "received/dropped" not in ln]
        if rc in (0, None) and not lines:
            return
        reason = " ".join(lines) or f"dumpcap exited with code {rc}"
        reason = f"the capture on {self.description} stopped: {reason.rstrip('.')}"
        self.stats.extra["capture_failed"] = reason
        if not self._tail_problem:
            self._tail_problem = f"{reason}; stopped after frame {self.stats.packets}"

    def _note_drops(self) -> None:
        for line in tuple(self.stderr_lines):
            w = _WRITTEN_RE.search(line)
            if w:
                self.stats.extra["written"] = int(w.group(1))
            m = _DROPS_RE.search(line)
            if m:
                self.stats.extra["captured"] = int(m.group(1))
                self.stats.capture_drops = int(m.group(2))

    def _stop_pending(self) -> None:
        """Stop every started tshark (a chunk ended the file early, or the source closes)."""
        while self._pending:
            self._pending.popleft().stop()

    def close(self) -> None:
        """Stop our own processes (dumpcap first, politely, so it reports drops), then tshark."""
        if self._closed:
            return
        self._closed = True
        if self._gunzip is not None:
            self._gunzip.stop()
        if self._splitter is not None:
            # rotation: stop forwarding and end the tsharks first; the splitter drains dumpcap's stream,
            # so dumpcap exits at once on SIGTERM and reports its statistics
            self._splitter.stop()
            self._stop_pending()
        if self._dumpcap is not None:
            stop_watched(self._dumpcap, self._lifeline)
        self._stop_pending()
        for proc in self.processes:  # a chunk's tshark killed before its segment existed, ...
            proc.kill()
        if self._dumpcap is not None:
            self._dumpcap.stderr_lines(5)  # its statistics, printed on the way out
        if self._planner is not None:
            self._planner.close()
        if self._splitter is not None:
            self._splitter.join(5)
        self._note_drops()


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
    ``keeper`` (live: a ``captures.keep.CaptureKeeper`` that tees dumpcap's stream into -w files / a
    private ring / the flagged window; ``source.kept_frames()`` lists its files),
    ``rotate_packets`` (live: packets per tshark run, default ``LIVE_ROTATE_PACKETS``; 0 = one tshark
    for the whole capture, whose memory grows with packets; also 0 under a display filter that
    depends on earlier frames, like ``frame.number`` or ``tcp.stream``), ``monitor_mode`` (live: 802.11
    monitor mode, dumpcap -I), ``wpa_pwd`` / ``wpa_psk`` (sequences of ``PASSPHRASE:SSID`` / hex keys:
    802.11 WPA/WPA2-PSK decryption by tshark, see ``args.wlan_decryption_args``).
    Raises InputError/EnvironmentProblem, never hangs.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # the checks and tshark's start block for up to seconds: never on a UI loop
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
    keeper = options.pop("keeper", None)
    rotate_packets = options.pop("rotate_packets", None)
    rotate_packets = LIVE_ROTATE_PACKETS if rotate_packets is None else int(rotate_packets)
    monitor_mode = bool(options.pop("monitor_mode", False))
    decrypt = wlan_decryption_args(options.pop("wpa_pwd", ()) or (), options.pop("wpa_psk", ()) or ())
    if rotate_packets < 0:
        raise ValueError("rotate_packets must be >= 0")
    if options:
        raise TypeError(f"unknown source options: {', '.join(sorted(options))}")
    tools = preflight.check_tools(need_dumpcap=bool(iface), tshark_path=tshark_path)
    if isinstance(custom, Mapping):
        custom = [arg for pair in custom.items() for arg in pair]
    if monitor_mode and not iface:
        raise InputError("-I/--monitor-mode applies to live capture only (-i IFACE)")
    common = dict(tshark=tools.tshark, display_filter=display_filter or None, prefs=prefs,
                  extra=[*decrypt, *(custom or ())])
    if read == "-":  # tshark reads the capture from our standard input (a pipe: no chunks, no sidecar)
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("-r - reads a capture from standard input, but standard input is a terminal",
                             hint="pipe a capture in: tcpdump -w - ... | iotwatch -r - --headless")
        if display_filter:
            preflight.check_display_filter(display_filter, tools.tshark)
        return TsharkFieldsSource("stdin", False, path="-", **common)
    if read:
        preflight.check_capture_file(read)
        if display_filter:
            preflight.check_display_filter(display_filter, tools.tshark)
        planner = _plan_chunks(str(read), display_filter, chunk_packets, workers)
        gz = 0
        if planner is None and chunk_packets != 0 and not (display_filter and _STATEFUL_FILTER.search(display_filter)):
            gz = (chunk_packets or CHUNK_PACKETS) if gzip_pcapng(str(read)) else 0
        return TsharkFieldsSource(str(read), False, path=str(read), planner=planner,
                                  workers=workers if planner is not None else 1, gzip_packets=gz, **common)
    preflight.check_live(iface, bpf=bpf, tools=tools)
    if display_filter:
        preflight.check_display_filter(display_filter, tools.tshark)
    if display_filter and _STATEFUL_FILTER.search(display_filter):
        rotate_packets = 0  # frame numbers / streams would restart with every tshark
    if monitor_mode:
        preflight.check_monitor_mode(iface, tools.dumpcap)
    return TsharkFieldsSource(iface, True, dumpcap=tools.dumpcap, iface=iface, bpf=bpf or None,
                              buffer_mib=buffer_mib, rotate_packets=rotate_packets, monitor_mode=monitor_mode,
                              keeper=keeper, **common)


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
