"""Re-featurising after a feature-code change: from the cached parsed batches vs from tshark.

    nice .venv/bin/python bench/refeaturise.py /work/data/detector/sim-held [MORE_DIRS_OR_FILES...]
        [--featurizer behaviour-v2] [--keep-cache DIR]

For the labelled captures given (``<capture>.labels.csv`` or ``label=`` comments), in one run:

1. ``tshark``  ``featurise_capture`` with an empty cache: the tshark read that every capture costs
   today after a change of detector/features.py, plus writing both cache levels (rows, batches/);
2. ``batches`` the feature code's digest changed (as an edit of detector/features.py changes it): the
   rows miss and are rebuilt from the cached batches through the same ``transform(batch)`` calls;
3. ``rows``    the same code again: the rows are served from the cache.

Prints each step's seconds and packets/s, the ratio tshark / batches, and whether the rows of step 2
are bit-identical to step 1's (and the labels equal). The cache is a temporary folder (deleted at the
end unless ``--keep-cache``), so the shared cache is neither used nor touched.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="labelled captures or folders of them")
    ap.add_argument("--featurizer", default=None, help="default: the bundled model's (behaviour-v2)")
    ap.add_argument("--keep-cache", metavar="DIR", help="use (and keep) this empty folder as the cache")
    args = ap.parse_args(argv)

    from iotwatch.captures.labels import LabelSet
    from iotwatch.detector import train
    from iotwatch.detector.bundle import CONTRACT_CLASSES
    from iotwatch.detector.features import FEATURIZER_VERSION

    featurizer = args.featurizer or FEATURIZER_VERSION
    paths = [p for p in train.find_captures(args.paths) if LabelSet.load(CONTRACT_CLASSES, capture=p) is not None]
    if not paths:
        print("no labelled captures", file=sys.stderr)
        return 2
    if args.keep_cache:
        cache = Path(args.keep_cache)
        if cache.exists() and any(cache.iterdir()):
            print(f"--keep-cache {cache}: not empty", file=sys.stderr)
            return 2
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = Path(tempfile.mkdtemp(prefix="iotwatch-refeaturise-"))
    try:
        return _run(paths, cache, featurizer, train, CONTRACT_CLASSES)
    finally:
        if not args.keep_cache:
            shutil.rmtree(cache, ignore_errors=True)


def _run(paths, cache: Path, featurizer: str, train, classes) -> int:
    from iotwatch.detector import featcache

    frames = 0
    t = {"tshark": 0.0, "batches": 0.0, "rows": 0.0}
    identical = True
    code = train.feature_code_digest()
    for p in paths:
        train._FEATURE_CODE_DIGEST = code
        t0 = time.perf_counter()
        X1, y1, _ = train.featurise_capture(p, classes, featurizer, cache)
        t1 = time.perf_counter()
        train._FEATURE_CODE_DIGEST = code + "-edited"   # what an edit of detector/features.py does to the key
        X2, y2, _ = train.featurise_capture(p, classes, featurizer, cache)
        t2 = time.perf_counter()
        X3, _, _ = train.featurise_capture(p, classes, featurizer, cache)
        t3 = time.perf_counter()
        same = (X1.shape == X2.shape and np.array_equal(X1.view(np.uint32), X2.view(np.uint32))
                and np.array_equal(y1, y2) and np.array_equal(X2.view(np.uint32), X3.view(np.uint32)))
        identical &= same
        frames += len(y1)
        t["tshark"] += t1 - t0
        t["batches"] += t2 - t1
        t["rows"] += t3 - t2
        print(f"{p}: {len(y1):,} frames  tshark {t1 - t0:.1f} s  batches {t2 - t1:.1f} s  rows {t3 - t2:.2f} s  "
              f"bit-identical {'yes' if same else 'NO'}", flush=True)
    train._FEATURE_CODE_DIGEST = code
    size = featcache.level_bytes(cache)
    print(f"\n{len(paths)} captures, {frames:,} frames")
    for k, v in t.items():
        print(f"  {k:8} {v:8.1f} s  {frames / max(v, 1e-9):>10,.0f} frames/s")
    print(f"  ratio tshark / batches: {t['tshark'] / max(t['batches'], 1e-9):.1f}x"
          f"   (rows hit: {t['tshark'] / max(t['rows'], 1e-9):.0f}x)")
    print(f"  cache bytes per frame: batches {size['batches'] / max(frames, 1):.0f}, rows {size['rows'] / max(frames, 1) / 2:.0f}"
          " (per feature code)")
    print(f"  rows from batches bit-identical to the tshark read: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
