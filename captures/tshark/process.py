"""Child processes of the capture layer (tshark, dumpcap) and the threads that move their bytes.

Concurrency model (no asyncio anywhere in the capture layer):

1. The thread that opens a source owns it: it starts every child (``subprocess.Popen``) and is the
   only one that parses and yields batches (``source.py``).
2. Each child gets daemon threads that only move bytes: :class:`ToolProcess` collects its stderr
   lines, :class:`PipeReader` drains tshark's stdout into a bounded buffer, :func:`feed_file_range`
   writes a chunk of a file into tshark's stdin (the live splitter in ``rotation.py`` likewise).
3. Threads hand data over through one ``threading.Condition`` each; stopping = set a flag, kill the
   child (its pipes close, so every blocked read/write returns) and join with a timeout.
"""
from __future__ import annotations

import collections
import ctypes
import fcntl
import os
import signal
import subprocess
import threading
import time
from typing import Callable

READ_SIZE = 1 << 20
STDOUT_PIPE_SIZE = 4 << 20
STDERR_KEEP = 200
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20


def grow_pipe(fd: int, size: int = _PIPE_SIZE) -> None:
    """Enlarge a pipe (Linux) so writer and reader take fewer turns. Unprivileged users may go up to
    /proc/sys/fs/pipe-max-size (1 MiB by default): then that; silently keep the pipe when not allowed."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        try:
            with open("/proc/sys/fs/pipe-max-size") as fh:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, min(int(fh.read()), size))
        except (OSError, ValueError):
            pass  # not Linux, or not allowed: correct, only slower


def read_some(fd: int, size: int = READ_SIZE) -> bytes:
    """Up to ``size`` bytes from a pipe; b"" at EOF or once the pipe is gone (closed on stop)."""
    try:
        return os.read(fd, size)
    except OSError:
        return b""


class ByteMover:
    """Base of the byte-moving threads (:class:`PipeReader`, ``rotation.PcapngSplitter``): a daemon
    thread running ``self._run``, one Condition guarding the hand-over, a stop flag. Subclasses
    start ``self._thread`` once their state is set."""

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the thread to stop; it ends at its next wake-up."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


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
    thread that opened it."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ToolProcess:
    """One tshark or dumpcap child and a thread keeping its last stderr lines.

    ``stdin``/``stdout``: file descriptors (the caller closes its copies) or ``subprocess.PIPE``.
    ``on_line(text)`` is called from the stderr thread for every non-empty line."""

    def __init__(self, argv: list[str], *, stdin=None, stdout=subprocess.PIPE,
                 on_line: Callable[[str], None] | None = None, pass_fds: tuple = (), die_with_parent: bool = True):
        self.argv = argv
        self.lines: collections.deque[str] = collections.deque(maxlen=STDERR_KEEP)
        self._on_line = on_line
        # die_with_parent=False for dumpcap's watchdog (watchdog.py): it must outlive us long enough
        # to stop dumpcap, and it goes by itself when our end of its lifeline closes
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, pass_fds=pass_fds,
                                      preexec_fn=_die_with_parent if die_with_parent else None)
        self.pid = self.popen.pid
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True, name=f"iotwatch-stderr-{self.pid}")
        self._stderr.start()

    def _read_stderr(self) -> None:
        with self.popen.stderr as fh:
            for raw in fh:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    self.lines.append(text)
                    if self._on_line is not None:
                        self._on_line(text)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_lines(self, timeout: float = 5) -> list[str]:
        """Its stderr once fully read (the stream ends when the process exits)."""
        self._stderr.join(timeout)
        return list(self.lines)

    def kill(self, timeout: float = 2) -> None:
        """SIGKILL if still running, then reap it."""
        if self.popen.poll() is None:
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
        self.wait(timeout)

    def terminate(self, timeout: float = 2, *, then_kill: bool = True) -> None:
        """SIGTERM (dumpcap then prints its statistics) and wait; SIGKILL if it does not go
        (unless ``then_kill`` is false: the caller has another way to end it first)."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None and then_kill:
                self.kill()


class PipeReader(ByteMover):
    """A thread draining a pipe (tshark's stdout) into memory, up to ``limit`` bytes ahead of the consumer.

    tshark never waits for the parser (or, with parallel chunks, for the chunks before its own),
    and reading costs a syscall per ~MB. ``pause``: after a small read, sleep that long so the pipe
    fills (fewer wake-ups and GIL hand-offs on replay). The reader owns ``fd`` and closes it."""

    def __init__(self, fd: int, limit: int, pause: float = 0.0, name: str = "iotwatch-pipe"):
        super().__init__(name)
        os.set_blocking(fd, True)
        grow_pipe(fd, STDOUT_PIPE_SIZE)  # tshark keeps dissecting while we parse a batch
        self._fd = fd
        self._limit = limit
        self._pause = pause
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._eof = False
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = read_some(self._fd)
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
                if len(data) < READ_SIZE // 4 and self._pause:
                    time.sleep(self._pause)
        finally:
            os.close(self._fd)

    def read(self, timeout: float | None) -> bytes | None:
        """Everything buffered so far (at least 1 byte); b"" at EOF; None after ``timeout`` with nothing."""
        with self._cond:
            if not self._chunks and not self._eof and not self._stopped:
                self._cond.wait_for(lambda: self._chunks or self._eof or self._stopped, timeout)
            if not self._chunks:
                return b"" if self._eof or self._stopped else None
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()
            return data

    # stop() (inherited): reads return EOF from then on (the writer is being killed)


def start_tshark(argv: list[str], stdin: int | None = None, on_line=None) -> tuple[ToolProcess, int]:
    """Start tshark with its stdout on a pipe; returns (process, the pipe's read end, ours to read)."""
    proc = ToolProcess(argv, stdin=stdin, on_line=on_line)
    fd = os.dup(proc.popen.stdout.fileno())
    proc.popen.stdout.close()
    return proc, fd


def start_into_pipe(argv: list[str], on_line=None, **options) -> tuple[ToolProcess, int]:
    """Start a child (dumpcap) writing its stdout into a new pipe; returns (it, the read end, ours).
    ``options``: ``pass_fds`` / ``die_with_parent`` of :class:`ToolProcess`."""
    read, write = os.pipe()
    try:
        proc = ToolProcess(argv, stdout=write, on_line=on_line, **options)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return proc, read


def feed_file_range(write_fd: int, path: str, header: bytes, start: int, stop: int) -> None:
    """Writer thread body: ``header`` then ``path[start:stop]``, copied by the kernel (sendfile); closes ``write_fd``."""
    try:
        with open(path, "rb") as fh:
            view = memoryview(header)
            while view:
                view = view[os.write(write_fd, view):]
            offset, left = start, stop - start
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
