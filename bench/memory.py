"""Peak RSS of the whole process tree (python + tshark + dumpcap) while replaying a capture.

    .venv/bin/python bench/memory.py FILE                 # iotwatch -r FILE --headless (when a classifier exists)
    .venv/bin/python bench/memory.py FILE --source-only   # the capture layer alone (open_source, iterate, discard)
    .venv/bin/python bench/memory.py FILE --tshark        # raw tshark -T fields, for reference

Samples the RSS sum of the child process and all its descendants with psutil every ``--every``
seconds and prints a sparse timeline (to see whether it is flat or grows with packets), then
``peak_rss_mb=<MB>`` as the LAST line. The issue's target: < 400 MB for a 1M-packet replay.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time

import psutil

SOURCE_ONLY = """
import sys
from iotwatch.captures.sources import open_source
src = open_source(read=sys.argv[1])
n = 0
for b in src.batches(max_rows=8192):
    n += len(b)
src.close()
print(f"{n} packets", file=sys.stderr)
"""


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def command(ns) -> list[str]:
    if ns.tshark:
        from iotwatch.captures.tshark_args import tshark_fields_command
        from pyshark.tshark.tshark import get_process_path

        return tshark_fields_command(get_process_path(), read=ns.file, line_buffered=False, extra=ns.extra)
    if ns.source_only or importlib.util.find_spec("iotwatch.detector.classifier") is None:
        return [sys.executable, "-c", SOURCE_ONLY, ns.file]
    return [sys.executable, "-m", "iotwatch", "-r", ns.file, "--headless"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--source-only", action="store_true", help="measure the capture layer alone")
    mode.add_argument("--tshark", action="store_true", help="measure raw tshark -T fields alone")
    ap.add_argument("--extra", nargs="*", default=[], help="extra tshark arguments with --tshark (e.g. -M 100000)")
    ap.add_argument("--every", type=float, default=0.2, help="sampling interval in seconds (default 0.2)")
    ns = ap.parse_args(argv)
    argv_ = command(ns)
    print("running:", " ".join(argv_[:4]), "...", file=sys.stderr)
    t0 = time.perf_counter()
    child = subprocess.Popen(argv_, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(child.pid)
    peak, samples = 0, []
    while child.poll() is None:
        rss = tree_rss(proc)
        peak = max(peak, rss)
        samples.append((time.perf_counter() - t0, rss))
        time.sleep(ns.every)
    err = child.stderr.read().decode("utf-8", "replace").strip()
    seconds = time.perf_counter() - t0
    step = max(1, len(samples) // 10)
    for t, rss in samples[::step]:
        print(f"t={t:6.1f}s  rss={rss / 2**20:7.1f} MB")
    print(f"exit={child.returncode} seconds={seconds:.1f} {err.splitlines()[-1] if err else ''}")
    print(f"peak_rss_mb={peak / 2**20:.1f}")
    return 0 if child.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
