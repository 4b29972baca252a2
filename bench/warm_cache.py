"""Fill the training cache (``--cache DIR`` of ``iotwatch train`` and bench/generalisation.py) for every
labelled capture under the given folders: both levels, the parsed batches and the current feature
code's rows (detector/featcache.py). One capture at a time, nothing kept in memory.

    nice -n 10 .venv/bin/python bench/warm_cache.py --cache /work/data/featcache \
        /work/data/detector/sim-held /work/shared/data/real ... [--min-free-gb 12]

A capture counts when it has labels (``<capture>.labels.csv``, or ``label=`` pcapng comments); one
whose sidecar is still missing (a recording in progress) is skipped and listed, so a second run picks
it up. Stops (exit 3) when the cache's file system has less than ``--min-free-gb`` free. Prints per
capture: frames, seconds and how it was served (rows / batches / tshark); at the end the totals and
the cache's size per level.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="captures or folders of them (searched recursively)")
    ap.add_argument("--cache", required=True)
    ap.add_argument("--min-free-gb", type=float, default=12.0)
    args = ap.parse_args(argv)

    from iotwatch.captures import sources
    from iotwatch.captures.errors import InputError
    from iotwatch.captures.labels import LabelSet
    from iotwatch.detector.bundle import CONTRACT_CLASSES
    from iotwatch.detector.features import FEATURIZER_VERSION
    from iotwatch.detector.featcache import level_bytes
    from iotwatch.detector.train import featurise_capture, find_captures

    try:
        files = find_captures(args.paths)
    except InputError as e:
        print(f"warm_cache: {e}", file=sys.stderr)
        return 2
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    opened = [0]
    real_open = sources.open_source

    def counting_open(*a, **kw):
        opened[0] += 1
        return real_open(*a, **kw)

    sources.open_source = counting_open
    served = {"rows": 0, "batches": 0, "tshark": 0}
    skipped: list[str] = []
    frames = 0
    t_all = time.monotonic()
    print(f"{len(files)} capture files under {len(args.paths)} paths -> {cache}", flush=True)
    for i, f in enumerate(files, 1):
        free = shutil.disk_usage(cache).free / 1e9
        if free < args.min_free_gb:
            print(f"STOP: {free:.1f} GB free on the cache's disk (< {args.min_free_gb})", flush=True)
            return 3
        try:
            if LabelSet.load(CONTRACT_CLASSES, capture=f) is None:
                skipped.append(f"{f} (no labels yet)")
                continue
        except InputError as e:
            skipped.append(f"{f} ({e})")
            continue
        before = opened[0]
        rows_before = len(list(cache.glob(glob.escape(f.name) + ".*.npz")))
        t0 = time.monotonic()
        try:
            X, y, _ = featurise_capture(f, CONTRACT_CLASSES, FEATURIZER_VERSION, cache)
        except InputError as e:
            skipped.append(f"{f} ({e})")
            continue
        how = "tshark" if opened[0] > before else (
            "batches" if len(list(cache.glob(glob.escape(f.name) + ".*.npz"))) > rows_before else "rows")
        served[how] += 1
        frames += len(y)
        print(f"[{i}/{len(files)}] {f}: {len(y):,} frames, {int((y >= 0).sum()):,} labelled, "
              f"{time.monotonic() - t0:.1f} s ({how})", flush=True)
        del X, y
    size = {level: n / 1e9 for level, n in level_bytes(cache).items()}
    print(f"done: {sum(served.values())} captures, {frames:,} frames in {time.monotonic() - t_all:.0f} s; "
          f"served from rows {served['rows']}, from batches {served['batches']}, read with tshark {served['tshark']}; "
          f"cache: batches {size['batches']:.2f} GB, rows {size['rows']:.2f} GB (all feature codes); "
          f"{shutil.disk_usage(cache).free / 1e9:.1f} GB free", flush=True)
    for s in skipped:
        print(f"skipped: {s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
