"""A gzip-compressed pcapng file replayed in chunks like an uncompressed one (issue 16, item 6).

tshark reads ``.pcapng.gz`` itself, but then one tshark keeps per-packet state for the whole file
(343 -> 666 MB over 1.2M packets). Instead a thread decompresses the file into a pipe and the live
capture's :class:`~iotwatch.captures.tshark.rotation.PcapngSplitter` cuts that stream into tshark
runs of ``CHUNK_PACKETS`` packets each, with continuous frame numbers: flat memory.
"""
from __future__ import annotations

import gzip
import os
import threading
import zlib


_GZIP_MAGIC = b"\x1f\x8b"
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_READ = 1 << 20


def gzip_pcapng(path: str) -> bool:
    """True for a gzip file whose content starts like a pcapng file."""
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != _GZIP_MAGIC:
                return False
        with gzip.open(path, "rb") as gz:
            return gz.read(4) == _PCAPNG_MAGIC
    except (OSError, EOFError, zlib.error):
        return False


class GunzipFeeder:
    """Decompresses ``path`` into a pipe in a thread; ``read_fd`` is the pipe's read end (the
    splitter closes it). A corrupt or cut gzip stream just ends early: tshark then reports the
    capture as cut short, and the source marks the run truncated."""

    def __init__(self, path: str):
        self.read_fd, self._write_fd = os.pipe()
        self._path = path
        self._stop = threading.Event()
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="iotwatch-gunzip")
        self._thread.start()

    def _run(self) -> None:
        """zlib on raw pieces (not ``gzip.read``, which drops the last piece of a cut file)."""
        try:
            with open(self._path, "rb") as fh:
                d = zlib.decompressobj(wbits=31)
                fed = False   # the current member has seen input
                while not self._stop.is_set():
                    raw = fh.read(_READ)
                    if not raw:
                        break
                    while raw and not self._stop.is_set():
                        fed = True
                        self._write(d.decompress(raw, _READ))
                        raw = d.unconsumed_tail
                        if d.eof:  # one gzip member ended: another may follow (unused_data holds the rest)
                            raw = d.unused_data
                            d = zlib.decompressobj(wbits=31)
                            fed = False
                if not self._stop.is_set():
                    self._write(d.flush())
                    if fed and not d.eof:
                        self.problem = "the compressed file is cut short"
        except zlib.error as e:
            self.problem = f"the compressed file is damaged ({e})"
        except OSError as e:  # BrokenPipeError: the splitter stopped reading
            if not self._stop.is_set() and not isinstance(e, BrokenPipeError):
                self.problem = e.strerror or type(e).__name__
        finally:
            os.close(self._write_fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            view = view[os.write(self._write_fd, view):]

    def stop(self) -> None:
        self._stop.set()
