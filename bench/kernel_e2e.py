"""Does the C inference kernel pay off end to end? CPU seconds of ``iotwatch -r FILE --headless``.

    .venv/bin/python bench/make_mixed_pcap.py /tmp/mixed100k.pcapng
    .venv/bin/python bench/kernel_e2e.py /tmp/mixed100k.pcapng [--runs 3]

Each run is a fresh process with BLAS pinned to one thread (threadpoolctl), once with the default
kernel and once with ``IOTWATCH_MLP_KERNEL=numpy``, interleaved; the CPU time is user + system of
the whole process tree (iotwatch and its tshark). Prints each run, the medians, and as the LAST line
``gain=<(numpy - kernel) / numpy of the medians>``. The kernel is worth keeping while gain >= 0.10
(detector/MODEL_CARD.md has the measured numbers).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

CHILD = ("import sys\nfrom threadpoolctl import threadpool_limits\nthreadpool_limits(1)\n"
         "from iotwatch.detector.model import kernel_status\nprint('kernel', kernel_status()[0], file=sys.stderr)\n"
         "from iotwatch.main import main\nsys.exit(main(['-r', sys.argv[1], '--headless']))\n")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped descendants: iotwatch, and through it tshark
    return r.ru_utime + r.ru_stime


def run_once(path: str, numpy: bool) -> tuple[float, float, str]:
    env = {k: v for k, v in os.environ.items() if k != "IOTWATCH_MLP_KERNEL"}
    if numpy:
        env["IOTWATCH_MLP_KERNEL"] = "numpy"
    c0, t0 = children_cpu(), time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, path], env=env, capture_output=True, text=True)
    cpu, wall = children_cpu() - c0, time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"iotwatch failed (exit {p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
    kernel = next((ln.split()[1] for ln in p.stderr.splitlines() if ln.startswith("kernel ")), "?")
    return cpu, wall, kernel


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    cpu: dict[str, list[float]] = {"kernel": [], "numpy": []}
    for i in range(args.runs):
        for mode in cpu:
            c, w, k = run_once(args.file, numpy=mode == "numpy")
            cpu[mode].append(c)
            print(f"run {i + 1} {mode:6s} (runs {k}): cpu {c:6.2f} s  wall {w:6.2f} s", flush=True)
    med = {m: statistics.median(v) for m, v in cpu.items()}
    for m, v in cpu.items():
        print(f"{m}: cpu {', '.join(f'{x:.2f}' for x in v)} s, median {med[m]:.2f} s")
    print(f"gain={(med['numpy'] - med['kernel']) / med['numpy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
