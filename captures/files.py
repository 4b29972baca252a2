"""Opening inputs and outputs safely: the one place every writer (report, predictions, alerts, ``train
--out``, ``simulate``) goes through.

Rules (issue 16):
* nothing that is not a regular file is ever replaced or written through: a device node, FIFO,
  socket or folder at the output path is refused up front (``train --out /dev/null`` once replaced
  the device node); a symbolic link is refused unless it points at an existing regular file and
  ``--force`` is given (a dangling link is never followed);
* an existing file is refused without ``--force``; two outputs of one run may not share a path, and
  no output may be one of the run's inputs (``--force`` once destroyed the capture);
* the path is *reserved* when the run starts (``O_CREAT|O_EXCL``), so a second run started later
  sees it at once instead of both writing at the end; a reserved report holds a stub saying the run
  is in progress / interrupted until the real one replaces it (what a ``kill -9`` leaves);
* content goes to a temporary file in the same folder and is renamed over the target when complete
  (``commit``): a reader never sees half a JSON report and ``--force`` keeps the old file until the
  new one is whole. A stream (predictions, alerts) written to a file this run created goes straight
  into it (``direct``), so a killed run leaves the rows written so far. ``discard`` removes
  everything this run created (exit-2 errors leave no header-only outputs behind).

Write errors (disk full, file size limit) surface as ``EnvironmentProblem`` (exit 3) naming the file.

Inputs: ``require_regular_input`` stats a path the user names as an input (label file, model bundle)
and refuses anything but a regular file (``open()`` on a FIFO blocks forever, ``/dev/zero`` never ends).
It lives in ``captures/`` so the simulator can use it too (captures never imports detector).
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import EnvironmentProblem, InputError

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (model cards and caches name captures by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is ("a FIFO", "a folder", ...)."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def require_regular_input(path, what: str, hint: str = "check the path") -> os.stat_result:
    """``stat`` an input (following links) and refuse anything but a regular file; returns the stat."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist", hint=hint) from None
    except OSError as e:
        raise InputError(f"cannot read {what} {p}: {e.strerror}") from None
    kind = file_kind(st.st_mode)
    if kind:
        raise InputError(f"{what} {p} is {kind}, not a regular file", hint="pass a regular file")
    return st


_kind = file_kind


def check_output_folder(path, what: str) -> Path:
    """An output folder given on the command line, checked before any work: an existing path that is
    not a folder (``--report /dev/null``, a file) is refused now, not with a traceback at the end."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        kind = file_kind(os.stat(p).st_mode) or "a file"
        raise InputError(f"{what} {p} is {kind}, not a folder", hint="give a folder path (created if missing)")
    return p


def output_folder(path, what: str) -> Path:
    """Create (or reuse) an output folder; one InputError line when that is impossible."""
    p = check_output_folder(path, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {what} {p}: {e.strerror}", hint="give a writable folder") from None
    return p

_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def write_error(path, what: str, e: OSError) -> Exception:
    """An OSError while writing an output as the user-facing error (exit 3 for a full disk)."""
    reason = e.strerror or type(e).__name__
    if e.errno == errno.ENOENT:   # checked before the run: the folder (or the run's temporary file) went away
        return EnvironmentProblem(f"cannot write {what} {path}: its folder or temporary file was removed during the run",
                                  hint="keep the output folder until the run ends")
    if e.errno in _ENV_ERRNOS:
        return EnvironmentProblem(f"cannot write {what} {path}: {reason}", hint="free some space or choose another place")
    return InputError(f"cannot write {what} {path}: {reason}")


def _start_on_a_new_line(fh, path) -> None:
    """``--append`` to a text file whose last line was cut (a crash, a full disk, a copytruncate in
    mid-line): end it first, so the cut line stays alone and this run's first row or event is whole
    (it was glued onto the cut line: one corrupt CSV row, one JSON event lost to every reader)."""
    with open(path, "rb") as r:
        if r.seek(0, os.SEEK_END) and (r.seek(-1, os.SEEK_END), r.read(1))[1] != b"\n":
            fh.write("\n")
            fh.flush()


def appended_head(path, what: str, size: int, *, line: bool = False, shown=None) -> bytes | None:
    """The first ``size`` bytes (``line``: its first line, at most ``size`` bytes) of a file ``--append``
    would continue, for a check that it can be continued; None when there is no such file yet.
    InputError (named ``shown``, default ``path``) when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.readline(size) if line else fh.read(size)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"cannot read {what} {path if shown is None else shown}: {e.strerror}") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


class OutputFile:
    """One reserved output path. ``check`` validates it; ``reserve`` claims it; ``open`` gives the
    handle to write (a temporary file next to the target); ``commit`` renames it into place."""

    def __init__(self, path, what: str, force: bool = False, stub: bytes = b"", direct: bool = False,
                 append: bool = False):
        self.raw = os.fspath(path)
        self.path = Path(path)
        self.what = what
        self.force = force
        self.stub = stub        # what the reserved file holds until the content arrives (a report says "in progress")
        self.direct = direct    # a stream (predictions, alerts): written straight into a file we created
        self.append = append    # a sensor's stream (--append): continue an existing regular file, never wipe it
        self._direct = False
        self.target = self.path          # where the content finally lands (a link's target with --force)
        self._placeholder = False        # we created the target empty at reserve time
        self._tmp: Path | None = None
        self._fh = None
        self.committed = False

    @property
    def stdout(self) -> bool:
        """``-`` means standard output (tshark's habit): written there as it comes, never renamed."""
        return self.raw == "-"

    # -- checks -----------------------------------------------------------------------------
    def check(self) -> None:
        if self.stdout:
            return
        p = self.path
        if str(self.raw).endswith(os.sep) or p.name in ("", ".", ".."):
            raise InputError(f"{self.what} {p} names a folder, not a file", hint="give a file name")
        try:
            lst = os.lstat(p)
        except FileNotFoundError:
            lst = None
        except NotADirectoryError:
            raise InputError(f"cannot write {self.what} {p}: a part of the path is not a folder") from None
        except OSError as e:
            raise InputError(f"cannot write {self.what} {p}: {e.strerror}") from None
        if lst is not None:
            if stat.S_ISLNK(lst.st_mode):
                try:
                    st = os.stat(p)
                except OSError:
                    raise InputError(f"{self.what} {p} is a symbolic link to a missing file; refusing to follow it",
                                     hint="remove the link or give another path") from None
                kind = _kind(st.st_mode)
                if kind:
                    raise InputError(f"{self.what} {p} links to {kind}; refusing to replace it",
                                     hint="give a regular file path")
                if not (self.force or self.append):
                    raise InputError(f"{self.what} file {p} already exists", hint="pass --force to overwrite it")
                self.target = Path(os.path.realpath(p))
            else:
                kind = _kind(lst.st_mode)
                if kind:
                    raise InputError(f"{self.what} {p} is {kind}; refusing to replace it",
                                     hint="give a regular file path")
                if not (self.force or self.append):
                    raise InputError(f"{self.what} file {p} already exists", hint="pass --force to overwrite it")
        parent = self.target.parent if str(self.target.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"cannot write {self.what} {p}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {self.what} {p}: folder {parent} is not writable")

    # -- lifecycle ----------------------------------------------------------------------------
    def reserve(self) -> "OutputFile":
        """Claim the path now: create it empty (exclusive) when it does not exist, so a run started
        later refuses it; then open the temporary file the content goes to. Append mode writes the
        target itself, created when missing and never truncated; ``-`` (standard output) claims nothing."""
        if self.stdout:
            self._direct = True
            return self
        if self.append:
            try:
                os.close(os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            except OSError as e:
                raise write_error(self.path, self.what, e) from None
            self._direct = True
            return self
        if not self.target.exists() and not os.path.islink(self.path):
            try:
                fd = os.open(self.target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise InputError(f"{self.what} file {self.path} already exists (another run just created it)",
                                 hint="pass --force to overwrite it") from None
            except OSError as e:
                raise write_error(self.path, self.what, e) from None
            self._placeholder = True
            try:
                if self.stub:
                    os.write(fd, self.stub)
            except OSError as e:
                os.close(fd)
                self.discard()
                raise write_error(self.path, self.what, e) from None
            os.close(fd)
            if self.direct:   # ours alone: stream into it (a kill -9 leaves what was written, not a hidden .part)
                self._direct = True
                return self
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent)
        except OSError as e:
            self.discard()
            raise write_error(self.path, self.what, e) from None
        os.fchmod(fd, 0o644)
        os.close(fd)
        self._tmp = Path(name)
        return self

    @property
    def tmp_path(self) -> Path:
        """Where the content is written: the temporary file, or the reserved target itself (direct)."""
        if self._direct:
            return self.target
        assert self._tmp is not None, "reserve() first"
        return self._tmp

    def open(self, mode: str = "w"):
        """The temporary file, opened for writing (text mode: utf-8, no newline translation)."""
        kw = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        if self.stdout:
            self._fh = _StdoutHandle(binary="b" in mode)
            return self._fh
        if self.append:
            mode = mode.replace("w", "a")
        try:
            self._fh = open(self.tmp_path, mode, **kw)
            if self.append and "b" not in mode:
                _start_on_a_new_line(self._fh, self.tmp_path)
        except OSError as e:   # e.g. the folder removed since reserve(): one line, not a traceback
            raise write_error(self.path, self.what, e) from None
        return self._fh

    def reopen(self):
        """Append mode after log rotation (SIGHUP): close the handle and open the path again, so the
        lines that follow go to the new file (created if the old one was renamed away)."""
        assert self.append and self._fh is not None, "reopen() is for an open append-mode output"
        if self.stdout:
            return self._fh
        mode = self._fh.mode
        try:
            self._fh.close()
        except OSError as e:
            raise write_error(self.path, self.what, e) from None
        try:
            return self.open(mode)
        except OSError as e:
            raise write_error(self.path, self.what, e) from None

    def commit(self) -> Path:
        """Flush, fsync-free close and rename the temporary file over the target."""
        if self._fh is not None and not self._fh.closed:
            try:
                self._fh.close()
            except OSError as e:
                self.discard()
                raise write_error(self.path, self.what, e) from None
        if not self._direct and not self.stdout:
            try:
                os.replace(self.tmp_path, self.target)
            except OSError as e:
                self.discard()
                raise write_error(self.path, self.what, e) from None
        self._direct = False
        self._tmp = None
        self._placeholder = False
        self.committed = True
        return self.path

    def discard(self) -> None:
        """Remove what this run created (the temporary file; the placeholder if we made it)."""
        if self._fh is not None and not self._fh.closed:
            try:
                self._fh.close()
            except OSError:
                pass
        if self.stdout:
            return
        for p, ours in ((self._tmp, True), (self.target, self._placeholder and not self.append)):
            if p is not None and ours:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        self._tmp = None
        self._placeholder = False
        self._direct = False


class _StdoutHandle:
    """Standard output as an output's handle: writes and flushes go through, close only flushes (stdout
    stays open for the rest of the run); no seeking (a failed batch cannot be taken back from a pipe)."""

    def __init__(self, binary: bool):
        import sys

        self._fh = sys.stdout.buffer if binary else sys.stdout
        self.closed = False
        self.mode = "ab" if binary else "a"
        self._written = 0

    def write(self, data):
        self._written += len(data)
        return self._fh.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        self._fh.flush()

    def tell(self) -> int:
        return self._written

    def seek(self, *_):
        raise OSError(29, "standard output cannot seek")

    def truncate(self, *_):
        raise OSError(29, "standard output cannot be truncated")

    def close(self):
        self._fh.flush()
        self.closed = True


def plan_outputs(outputs: Iterable[tuple[str | os.PathLike | None, str]], force: bool,
                 inputs: Iterable[str | os.PathLike | None] = ()) -> dict[str, OutputFile]:
    """Validate every output of one run together: each ``(path, what)`` pair with a path becomes a
    checked (not yet reserved) ``OutputFile`` keyed by ``what``. Refuses two outputs on one path and
    an output that is one of ``inputs`` (the capture, label file or model)."""
    files: dict[str, OutputFile] = {}
    for path, what, *opts in outputs:
        if path is None or path == "":
            continue
        f = OutputFile(path, what, force, **(opts[0] if opts else {}))
        f.check()
        for other in files.values():
            if f.stdout and other.stdout:
                raise InputError(f"{what} and {other.what} both go to standard output (-)",
                                 hint="only one output can be -; give the other a file")
            if _same_file(f.target, other.target):
                raise InputError(f"{what} and {other.what} are the same file {path}", hint="give each output its own path")
        for src in inputs:
            if src and Path(src).exists() and _same_file(f.target, Path(src)):
                raise InputError(f"{what} {path} is an input of this run; refusing to overwrite it",
                                 hint="write the output somewhere else")
        files[what] = f
    return files


def reserve_all(files: dict[str, OutputFile]) -> None:
    done = []
    try:
        for f in files.values():
            f.reserve()
            done.append(f)
    except BaseException:
        for f in done:
            f.discard()
        raise


def write_atomic(path, data: bytes, what: str, force: bool = False, inputs=()) -> Path:
    """Check, reserve, write ``data`` and commit one output in one call."""
    f = plan_outputs([(path, what)], force, inputs)[what]
    f.reserve()
    try:
        fh = f.open("wb")
        fh.write(data)
        return f.commit()
    except OSError as e:
        f.discard()
        raise write_error(path, what, e) from None
    except BaseException:
        f.discard()
        raise
