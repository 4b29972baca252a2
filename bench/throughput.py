"""Throughput of iotwatch's capture path against raw tshark on the same file, in one run.

    .venv/bin/python bench/make_mixed_pcap.py /tmp/mixed100k.pcapng     # the 100k mixed IoT reference file
    .venv/bin/python bench/throughput.py FILE [--repeat N] [--rows 8192]

Times (best of ``--repeat``):
  1. raw ``tshark -T fields`` with the same fields and prefs, output discarded (the reference);
  2. ``open_source(read=FILE)`` iterated to the end (the capture layer alone, one tshark);
  3. the same with ``workers=N`` (the file in N chunks, one tshark each, merged in frame order);
  4. ``iotwatch -r FILE --headless`` end to end, when a classifier is installed.
Prints packets/s of each and, as the LAST line, ``ratio=<iotwatch/tshark>`` (the headless run when
available, else the source alone). Ratios, not absolute numbers, are comparable across machines.
On a busy machine wall-clock ratios swing; ``source cpu ratio`` (tshark's CPU seconds over the
source's, tshark included) and ``headless cpu ratio`` (the same for the whole headless run: capture,
features, model, outputs) are what the ratios converge to when both cores are saturated.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time

from iotwatch.captures.sources import open_source
from iotwatch.captures.tshark.args import tshark_fields_command
from pyshark.tshark.tshark import get_process_path


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def time_tshark(path: str) -> tuple[float, int, float]:
    """(wall seconds, frames, CPU seconds) of raw tshark with our fields, its output only counted."""
    argv = tshark_fields_command(get_process_path(), read=path, line_buffered=False)
    c0, t0 = cpu_seconds(), time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = 0
    while chunk := proc.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    proc.wait()
    return time.perf_counter() - t0, lines, cpu_seconds() - c0


def time_source(path: str, rows: int, **options) -> tuple[float, int, float]:
    c0, t0 = cpu_seconds(), time.perf_counter()
    src = open_source(read=path, **options)
    n = 0
    try:
        for b in src.batches(max_rows=rows):
            n += len(b)
    finally:
        src.close()
    return time.perf_counter() - t0, n, cpu_seconds() - c0


def classifier_available() -> bool:
    return importlib.util.find_spec("iotwatch.detector.classifier") is not None


def time_headless(path: str) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the run and its tshark)."""
    argv = [sys.executable, "-m", "iotwatch", "-r", path, "--headless"]
    c0, t0 = cpu_seconds(), time.perf_counter()
    cp = subprocess.run(argv, capture_output=True)
    return time.perf_counter() - t0, cp.returncode, cpu_seconds() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs each (default 2)")
    ap.add_argument("--rows", type=int, default=8192, help="batch size for the source (default 8192)")
    ap.add_argument("--no-headless", action="store_true", help="skip the end-to-end iotwatch run")
    ap.add_argument("--workers", type=int, default=2,
                    help="also time the source with N tsharks side by side (default 2; 1 = skip)")
    ns = ap.parse_args(argv)
    t_ref, n_ref, c_ref = min(time_tshark(ns.file) for _ in range(ns.repeat))
    print(f"tshark -T fields : {n_ref:>9,} pkts  {t_ref:7.2f} s  {n_ref / t_ref:>10,.0f} pkt/s  cpu {c_ref:6.2f} s")
    t_src, n_src, c_src = min(time_source(ns.file, ns.rows) for _ in range(ns.repeat))
    print(f"iotwatch source  : {n_src:>9,} pkts  {t_src:7.2f} s  {n_src / t_src:>10,.0f} pkt/s  cpu {c_src:6.2f} s")
    if n_src != n_ref:
        print(f"MISMATCH: source yielded {n_src} frames, tshark printed {n_ref}", file=sys.stderr)
        return 1
    print(f"source cpu ratio={c_ref / c_src:.3f}  (tshark CPU / source CPU: the ratio on a saturated machine)")
    ratio = t_ref / t_src
    if ns.workers > 1:
        t_par, n_par, _ = min(time_source(ns.file, ns.rows, workers=ns.workers) for _ in range(ns.repeat))
        print(f"source, {ns.workers} tsharks: {n_par:>9,} pkts  {t_par:7.2f} s  {n_par / t_par:>10,.0f} pkt/s")
        print(f"parallel source ratio={t_ref / t_par:.3f}")
    if not ns.no_headless and classifier_available():
        t_hl, rc, c_hl = min(time_headless(ns.file) for _ in range(ns.repeat))
        if rc == 0:
            print(f"iotwatch headless: {n_ref:>9,} pkts  {t_hl:7.2f} s  {n_ref / t_hl:>10,.0f} pkt/s  cpu {c_hl:6.2f} s")
            print(f"headless cpu ratio={c_ref / c_hl:.3f}  (tshark CPU / headless CPU, its tshark included)")
            print(f"source ratio={ratio:.3f}")
            ratio = t_ref / t_hl
        else:
            print(f"iotwatch headless failed (exit {rc}); reporting the source alone", file=sys.stderr)
    print(f"ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
