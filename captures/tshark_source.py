"""The fast packet source: pyshark's process plumbing, tshark emitting ``-T fields``, parsed column-wise.

pyshark's packet objects cost ~0.3x of raw tshark, so we keep everything pyshark does well
(tshark/dumpcap discovery, argument building, interface checks, the dumpcap -> tshark pipe,
asyncio process handling) and replace only the output format: :class:`FieldsFileCapture` and
:class:`FieldsLiveCapture` are pyshark ``FileCapture``/``LiveCapture`` subclasses whose tshark
runs ``-T fields -e ...`` (``tshark_args.field_args``). :class:`FieldsParser` turns the tab
separated lines into numpy columns a chunk at a time (one ``split`` for the whole chunk, one
conversion per column), so tshark's dissector, not Python, is the limit.

:class:`TsharkFieldsSource` is the :class:`~iotwatch.captures.sources.PacketSource`:

* files: batches of ``max_rows`` frames, every frame in frame order; a file that ends early
  (cut mid-packet, damaged) yields what was read and sets ``stats.truncated`` to a one-line reason;
* live: dumpcap (BPF in the kernel) -> tshark; a batch closes at ``max_rows`` rows or ``max_wait``
  seconds (an idle interface yields empty batches so callers can check for cancellation);
  ``stats.capture_drops`` comes from dumpcap's statistics when it stops.

Build and use a source in ONE thread (pyshark binds an asyncio loop to the creating thread; on
Textual's running loop it fails): the TUI builds it inside its capture worker.
"""
from __future__ import annotations

import asyncio
import collections
import fcntl
import os
import re
import signal
import subprocess
from typing import Iterator

import numpy as np
from pyshark.capture.capture import Capture
from pyshark.capture.file_capture import FileCapture
from pyshark.capture.live_capture import LiveCapture
from pyshark.tshark.tshark import get_process_path

from . import preflight
from .batch import PacketBatch
from .errors import InputError
from .fields import FIELDS, TSHARK_FIELDS
from .sources import SourceStats
from .tshark_args import DISSECTION_PREFS, field_args

_READ_SIZE = 1 << 20
_PIPE_SIZE = 4 << 20
_F_SETPIPE_SZ = 1031
_STDERR_KEEP = 200
_NOISE = ("Running as user", "Capturing on", "File: ", "Packets captured:")
_DROPS_RE = re.compile(r"Packets received/dropped on interface '.*?': (\d+)/(\d+)")


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
                if alt.count("") != n:
                    col = [a or b for a, b in zip(col, alt)]
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
    if col.count("") == n:
        return np.full(n, np.nan, dtype=np.float64) if kind == "float" else np.full(n, -1, dtype=np.int64)
    if kind == "hex":
        return np.fromiter((int(v, 16) if v else -1 for v in col), dtype=np.int64, count=n)
    missing, dtype = ("nan", np.float64) if kind == "float" else ("-1", np.int64)
    try:  # numpy's C text parser: ~30 ns per value
        arr = np.fromstring(",".join([v or missing for v in col]), dtype=dtype, sep=",")
        if len(arr) == n:
            return arr
    except ValueError:
        pass
    # a value that is not a plain number (e.g. "1,2"): keep what parses, missing for the rest
    return np.fromiter((_number_or_missing(v, kind) for v in col), dtype=dtype, count=n)


def _number_or_missing(v: str, kind: str):
    try:
        return float(v) if kind == "float" else int(v, 0)
    except ValueError:
        return float("nan") if kind == "float" else -1


class _FieldsCapture(Capture):
    """A pyshark Capture whose tshark prints our fields instead of PDML; stderr kept for diagnosis."""

    line_buffered = True

    def _init_fields(self):
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=_STDERR_KEEP)

    async def _get_tshark_process(self, packet_count=None, stdin=None):
        self._verify_capture_parameters()
        argv = [self._get_tshark_path()] + (["-l"] if self.line_buffered else []) + ["-n", *field_args()]
        argv += self.get_parameters(packet_count=packet_count)
        self.tshark_argv = argv
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin)
        self._create_stderr_handling_task(process.stderr)
        self._created_new_process(argv, process)
        return process

    async def _handle_process_stderr_forever(self, stderr):
        while True:
            line = await stderr.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._last_error_line = text
                self.stderr_lines.append(text)

    async def _cleanup_subprocess(self, process):
        """Kill our own process if still running; exit codes are judged by the source, not here."""
        if process.returncode is None:
            try:
                process.kill()
                await asyncio.wait_for(process.wait(), 2)
            except (ProcessLookupError, asyncio.TimeoutError):
                pass


class FieldsFileCapture(FileCapture, _FieldsCapture):
    """pyshark FileCapture emitting ``-T fields`` (not line-buffered: fewer writes, same output)."""

    line_buffered = False

    def __init__(self, input_file, **kw):
        super().__init__(input_file=input_file, keep_packets=False, **kw)
        self._packet_generator = None  # FileCapture pre-builds a PDML generator we never use
        self._init_fields()


class FieldsLiveCapture(LiveCapture, _FieldsCapture):
    """pyshark LiveCapture (dumpcap -> pipe -> tshark) emitting ``-T fields``.

    Unlike pyshark 0.6 it closes its copies of the pipe after spawning, so tshark sees EOF when
    dumpcap exits (pyshark hangs forever there), and it keeps dumpcap's process for a clean stop.
    """

    def __init__(self, interface, **kw):
        super().__init__(interface=interface, **kw)
        self._init_fields()
        self.dumpcap_process = None

    async def _get_tshark_process(self, packet_count=None, stdin=None):
        read, write = os.pipe()
        try:
            argv = [get_process_path(process_name="dumpcap", tshark_path=self.tshark_path)]
            argv += self._get_dumpcap_parameters()
            self.dumpcap_argv = argv
            dumpcap = await asyncio.create_subprocess_exec(*argv, stdout=write, stderr=subprocess.PIPE)
            self._create_stderr_handling_task(dumpcap.stderr)
            self._created_new_process(argv, dumpcap, process_name="Dumpcap")
            self.dumpcap_process = dumpcap
            return await _FieldsCapture._get_tshark_process(self, packet_count=packet_count, stdin=read)
        finally:
            os.close(read)
            os.close(write)

    def get_parameters(self, packet_count=None):
        # tshark reads dumpcap's pcapng stream as a file (-r -). pyshark's "-i -" makes tshark start a
        # second dumpcap on the pipe that copies every packet into an ever-growing temp file.
        return Capture.get_parameters(self, packet_count=packet_count) + ["-r", "-"]

    def _verify_capture_parameters(self):
        pass  # preflight.check_live already checked the interface (pyshark's tshark -D names) and permission

    def _get_dumpcap_parameters(self):
        # pyshark passes -q, which also silences dumpcap's final drop statistics; we want them.
        return [p for p in super()._get_dumpcap_parameters() if p != "-q"]


class TsharkFieldsSource:
    """PacketSource over a :class:`FieldsFileCapture` or :class:`FieldsLiveCapture`."""

    def __init__(self, capture: _FieldsCapture, description: str, live: bool, path: str | None = None):
        self.capture = capture
        self.description = description
        self.live = live
        self.path = path
        self.stats = SourceStats()
        self._parser = FieldsParser()
        self._process = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.capture.eventloop

    def _start(self):
        if self._process is None:
            self._process = self.loop.run_until_complete(self.capture._get_tshark_process())
            _grow_pipe(self._process)
        return self._process

    def _read(self, timeout: float | None) -> bytes | None:
        """Up to ``_READ_SIZE`` bytes; b"" at EOF; None when ``timeout`` passed with nothing read."""
        reader = self._process.stdout.read(_READ_SIZE)
        if timeout is None:
            return self.loop.run_until_complete(reader)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(reader, max(timeout, 0.0)))
        except asyncio.TimeoutError:
            return None

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]:
        if max_rows <= 0:
            raise ValueError("max_rows must be positive")
        self._start()
        buf = bytearray()
        lines = 0
        eof = False
        while not eof and not self._closed:
            deadline = self.loop.time() + max_wait if self.live else None
            while lines < max_rows:
                data = self._read(None if deadline is None else deadline - self.loop.time())
                if data is None:  # live: max_wait passed
                    break
                if not data:
                    eof = True
                    break
                buf += data
                lines += data.count(b"\n")
            if lines >= max_rows and not self.live:
                cut = _nth_newline(buf, lines - lines % max_rows) + 1
            else:
                cut = buf.rfind(b"\n") + 1
            text = bytes(buf[:cut]).decode("utf-8", "replace")
            del buf[:cut]
            lines = buf.count(b"\n")
            batch = self._parser.parse(text)
            if eof:
                self._finish(len(batch))
            n = len(batch)
            if n == 0 and (self.live and not eof):
                yield batch  # idle interface: let the caller check for cancellation
            for start in range(0, n, max_rows):
                if self._closed:
                    return
                part = batch.slice(start, min(n, start + max_rows))
                self.stats.packets += len(part)
                if eof and start + max_rows >= n:
                    part.truncated = self.stats.truncated
                yield part

    def _finish(self, last_rows: int) -> None:
        """tshark reached EOF: judge its exit; raise if it failed before any frame, else note why it stopped."""
        proc = self._process
        try:
            rc = self.loop.run_until_complete(asyncio.wait_for(proc.wait(), 5))
        except asyncio.TimeoutError:
            rc = None
        self.loop.run_until_complete(asyncio.gather(*self.capture._stderr_handling_tasks))
        self._note_drops()
        reason = _tshark_reason(self.capture.stderr_lines)
        if (rc not in (0, None) or reason) and not self._closed:
            if self.stats.packets + last_rows == 0 and rc not in (0, None):
                raise InputError(f"cannot read {self.description}: {reason or f'tshark exited with code {rc}'}")
            why = (reason or f"tshark exited with code {rc}").rstrip(".")
            self.stats.truncated = f"{why}; stopped after frame {self.stats.packets + last_rows}"

    def _note_drops(self) -> None:
        for line in self.capture.stderr_lines:
            m = _DROPS_RE.search(line)
            if m:
                self.stats.capture_drops = int(m.group(2))

    def close(self) -> None:
        """Stop our own processes (dumpcap first, politely, so it reports drops), then tshark."""
        if self._closed:
            return
        self._closed = True
        dumpcap = getattr(self.capture, "dumpcap_process", None)
        if dumpcap is not None and dumpcap.returncode is None:
            try:
                dumpcap.send_signal(signal.SIGTERM)
                self.loop.run_until_complete(asyncio.wait_for(dumpcap.wait(), 2))
            except (ProcessLookupError, asyncio.TimeoutError):
                pass
        try:
            self.loop.run_until_complete(self.capture.close_async())
        except RuntimeError:  # loop closed or running elsewhere: processes die with their pipes
            return
        self._note_drops()


def _grow_pipe(process) -> None:
    """Enlarge tshark's stdout pipe (Linux) so tshark keeps dissecting while we parse a batch;
    with the default 64 KiB it would block within milliseconds and the two would take turns."""
    try:
        pipe = process._transport.get_pipe_transport(1).get_extra_info("pipe")
        with open("/proc/sys/fs/pipe-max-size") as fh:
            size = min(int(fh.read()), _PIPE_SIZE)
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, size)
    except (AttributeError, OSError, ValueError):
        pass  # not Linux, or not allowed: correct, only slower


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
    ``custom_parameters`` (extra tshark argv). Raises InputError/EnvironmentProblem, never hangs.
    """
    if bool(read) == bool(iface):
        raise InputError("give exactly one packet source: a file (-r FILE) or an interface (-i IFACE)")
    if bpf and not iface:
        raise InputError("-f/--bpf applies to live capture only", hint="use -Y/--display-filter on files")
    tshark_path = options.pop("tshark_path", None)
    prefs = dict(options.pop("prefs", DISSECTION_PREFS))
    custom = options.pop("custom_parameters", None)
    if options:
        raise TypeError(f"unknown source options: {', '.join(sorted(options))}")
    tools = preflight.check_tools(need_dumpcap=bool(iface), tshark_path=tshark_path)
    common = dict(display_filter=display_filter or None, override_prefs=prefs, tshark_path=tools.tshark,
                  custom_parameters=custom)
    if read:
        preflight.check_capture_file(read)
        if display_filter:
            preflight.check_display_filter(display_filter, tools.tshark)
        return TsharkFieldsSource(FieldsFileCapture(read, **common), description=str(read), live=False,
                                  path=str(read))
    preflight.check_live(iface, bpf=bpf, tools=tools)
    if display_filter:
        preflight.check_display_filter(display_filter, tools.tshark)
    return TsharkFieldsSource(FieldsLiveCapture(iface, bpf_filter=bpf or None, **common),
                              description=iface, live=True)
