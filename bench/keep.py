"""What keeping the capture costs (issue 15: -w, -b, --write-flagged, the live TUI's private ring).

    nice .venv/bin/python bench/keep.py [CAPTURE.pcapng] [--repeat 3]

Feeds a pcapng file to ``captures.keep.CaptureKeeper`` in ~1 MiB runs of whole blocks (what the live
``PcapngSplitter`` hands it, before tshark) and prints µs per packet for: one file, the private ring
(16 MB x 8), the ring with the flagged window, ``-b duration``; next to the reference measured in the
same run: a plain ``os.write`` of the same runs into one file (the least any tee can cost), as a
ratio. No thresholds: numbers to compare before/after a change.
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

from iotwatch.captures.keep import WINDOW_BYTES, CaptureKeeper, PcapngRing, RingOptions

DEFAULT = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"


def runs_of(data: bytes, size: int = 1 << 20) -> list[memoryview]:
    """Whole-block runs of about ``size`` bytes (little-endian pcapng, as dumpcap writes)."""
    out, pos, start, n = [], 0, 0, len(data)
    view = memoryview(data)
    while pos + 8 <= n:
        blen = struct.unpack_from("<I", data, pos + 4)[0]
        if pos + blen - start > size and pos > start:
            out.append(view[start:pos])
            start = pos
        pos += blen
    out.append(view[start:pos])
    return out


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    data = Path(a.capture).read_bytes()
    runs = runs_of(data)
    folder = Path(tempfile.mkdtemp(prefix="iotwatch-bench-keep-"))
    try:
        def plain():
            fd = os.open(folder / "plain.pcapng", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            for r in runs:
                os.write(fd, r)
            os.close(fd)

        def keeper(ring, window=0):
            def go():
                for p in folder.glob("k*"):
                    p.unlink()
                k = CaptureKeeper(PcapngRing(str(folder / "k.pcapng"), ring), window_bytes=window)
                for r in runs:
                    k.feed(r)
                k.close()
                go.frames = k.frames
            return go

        cases = [("plain os.write (reference)", plain),
                 ("-w FILE", keeper(None)),
                 ("private ring 16 MB x 8", keeper(RingOptions(filesize_kb=16000, files=8))),
                 ("ring + flagged window", keeper(RingOptions(filesize_kb=16000, files=8), WINDOW_BYTES)),
                 ("-b duration:10", keeper(RingOptions(duration=10)))]
        counter = keeper(None)
        counter()
        packets = counter.frames
        print(f"{a.capture}: {packets:,} packets, {len(data) / 1e6:.1f} MB, {len(runs)} runs")
        ref = None
        for name, fn in cases:
            best = min(timed(fn) for _ in range(a.repeat))
            ref = ref or best
            print(f"  {name:30s} {best / packets * 1e6:6.2f} us/packet  {packets / best:>12,.0f} pkt/s  "
                  f"x{best / ref:5.1f} of the reference")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
