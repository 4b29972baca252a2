"""Keep glibc from holding on to the capture layer's freed buffers.

The source allocates and frees large buffers all the time (1 MiB pipe reads, a batch's text, numpy
columns). glibc serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB) with their own mmap and unmaps
them on free, but it *raises* that threshold to the size of every mmapped block freed (up to 32 MiB).
After a few batches the big buffers come from the heap instead, where freed space fragments and is
not returned: measured on a 1M-packet live capture, the Python process crept from 42 MB to 115-160 MB
with allocated Python objects flat. Pinning the threshold (which also turns off the adjustment)
kept it at ~50 MB, throughput unchanged (bench/memory.py --live, bench/throughput.py).

Process-wide and idempotent; a no-op off glibc or when the user set ``MALLOC_MMAP_THRESHOLD_``.
"""
from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value
_done = False


def pin_mmap_threshold() -> bool:
    """mallopt(M_MMAP_THRESHOLD, 128 KiB) once; True when it is in effect."""
    global _done
    if _done:
        return True
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return _done
