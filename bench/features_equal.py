"""Feature values of this checkout against another revision's ``detector/features.py``: must be identical.

    .venv/bin/python bench/features_equal.py [--reference main] [--capture FILE ...] [--max-packets 200000]
                                             [--sizes 1,257,8192] [--prefix-small 4000]

For a speed-up of the extractor's internals (no new or changed columns): every capture (default: the
bundled demo, plus ``--capture`` files) is read once, then the full feature matrix is computed by this
checkout's extractor and by the reference revision's (imported from ``git show REV:detector/features.py``)
for every batch size of ``--sizes`` (batch size 1 and other sizes below 64 on the first ``--prefix-small``
packets only: per-batch overhead), plus random batch cuts (1..3000 rows), plus once with tiny state caps
and a short idle time (so that eviction and expiry paths run). Compared with ``np.array_equal`` on the
float32 matrices (exact: NaN never occurs, and no tolerance). Also the bundled model's predictions
(argmax and probabilities) on the demo capture, both matrices through the same classifier.

Prints one line per (capture, batching) and, LAST, ``equal=yes`` or ``equal=NO`` (exit 1 on any
difference, 2 on bad input).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def reference_module(rev: str):
    """detector/features.py as of git revision ``rev``, imported under another name."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:detector/features.py"], capture_output=True,
                         text=True, check=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "features_reference.py"
    tmp.write_text(src)
    spec = importlib.util.spec_from_file_location("features_reference", tmp)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_capture(path: str, max_packets: int, cache_dir: Path | None):
    """The capture's packets as one PacketBatch (first ``max_packets``). With ``cache_dir``, the parsed
    batches are kept in the training cache's pickle-free format (``detector/featcache.py``), keyed by
    the capture's sha256, ``max_packets`` and the capture-side code."""
    from iotwatch.captures.batch import PacketBatch
    from iotwatch.captures.files import sha256_file
    from iotwatch.captures.sources import open_source
    from iotwatch.detector import featcache
    from iotwatch.detector.train import READ_BATCH_ROWS

    file = key = cached = None
    if cache_dir is not None:
        file, key = featcache.batch_cache_file(cache_dir, Path(path), sha256_file(path), f"first-{max_packets}")
        cached = featcache.load_batches(file, key)
    if cached is not None:
        parts = [b for b, _ in cached]
    else:
        rec = featcache.BatchRecorder()
        src = open_source(read=path)
        parts, n = [], 0
        try:
            for b in src.batches(max_rows=READ_BATCH_ROWS, max_wait=1.0):
                parts.append(b)
                rec.add(b, np.full(len(b), -1, dtype=np.int8))
                n += len(b)
                if n >= max_packets:
                    break
        finally:
            src.close()
        arrays = rec.arrays(key) if file is not None else None
        if arrays is not None:
            featcache.save_npz(file, arrays)
    return PacketBatch.concat(parts).slice(0, max_packets)


def run(make, batch, cuts) -> np.ndarray:
    ext = make()
    return np.concatenate([ext.transform(batch.slice(a, b)) for a, b in zip(cuts[:-1], cuts[1:])])


def fixed_cuts(n: int, size: int) -> list[int]:
    return list(range(0, n, size)) + [n]


def random_cuts(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + int(rng.integers(1, 3001))))
    return cuts


def compare(label: str, X: np.ndarray, R: np.ndarray, names) -> bool:
    if X.shape != R.shape:
        print(f"  {label:<44} DIFFERENT shape {X.shape} vs {R.shape}")
        return False
    same = np.array_equal(X, R)
    if same:
        print(f"  {label:<44} equal ({X.shape[0]:,} rows x {X.shape[1]})")
        return True
    bad = np.flatnonzero((X != R).any(axis=0))
    rows = np.flatnonzero((X != R).any(axis=1))
    worst = float(np.abs(X - R).max())
    print(f"  {label:<44} DIFFERENT in {len(rows):,} rows, columns {[names[j] for j in bad[:8]]}"
          f"{' ...' if len(bad) > 8 else ''}; max |diff| {worst:.3g}; first row {rows[0]}")
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default="main", help="git revision of the reference features.py (default main)")
    ap.add_argument("--capture", action="append", default=[], help="more captures (repeatable)")
    ap.add_argument("--no-demo", action="store_true", help="skip the bundled demo capture")
    ap.add_argument("--max-packets", type=int, default=200_000, help="first N packets of each capture")
    ap.add_argument("--sizes", default="1,257,8192", help="batch sizes (default 1,257,8192)")
    ap.add_argument("--prefix-small", type=int, default=4000,
                    help="packets timed with batch sizes below 64 (default 4000)")
    ap.add_argument("--cache", default="/tmp/iotwatch-features-equal", help="cache of the parsed batches of read captures, pickle-free as the training cache ('' = none)")
    args = ap.parse_args(argv)

    from iotwatch.captures.errors import IotwatchError
    from iotwatch.detector.classifier import PacketClassifier
    from iotwatch.detector.features import FEATURE_NAMES, new_extractor
    from iotwatch.options import demo_capture

    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        print(f"features_equal: bad --sizes {args.sizes!r}", file=sys.stderr)
        return 2
    captures = ([] if args.no_demo else [str(demo_capture())]) + args.capture
    for c in captures:
        if not Path(c).is_file():
            print(f"features_equal: no such capture {c}", file=sys.stderr)
            return 2
    try:
        ref = reference_module(args.reference)
    except subprocess.CalledProcessError as exc:
        print(f"features_equal: cannot read detector/features.py at {args.reference}: {exc.stderr.strip()}",
              file=sys.stderr)
        return 2
    if tuple(ref.FEATURE_NAMES) != tuple(FEATURE_NAMES):
        print(f"features_equal: {args.reference} has other columns ({len(ref.FEATURE_NAMES)} vs {len(FEATURE_NAMES)}):"
              " compare against a revision with the same blocks", file=sys.stderr)
        return 2
    cache = Path(args.cache) if args.cache else None
    ok = True
    demo_X = demo_R = None
    for path in captures:
        t0 = time.perf_counter()
        try:
            batch = read_capture(path, args.max_packets, cache)
        except IotwatchError as exc:
            print(f"features_equal: {path}: {exc}", file=sys.stderr)
            return 2
        n = len(batch)
        print(f"{path}: {n:,} packets (read in {time.perf_counter() - t0:.1f} s)")
        plans = []
        for size in sizes:
            m = min(n, args.prefix_small) if size < 64 else n
            plans.append((f"batch {size}" + (f", first {m:,}" if m < n else ""), batch.slice(0, m),
                          fixed_cuts(m, size), {}))
        plans.append(("random batches 1..3000", batch, random_cuts(n, 7), {}))
        plans.append(("8192, cap=256 idle=20 s (eviction, expiry)", batch, fixed_cuts(n, 8192),
                      dict(cap=256, idle=20.0)))
        plans.append(("97, cap=64 idle=5 s", batch.slice(0, min(n, 20000)), fixed_cuts(min(n, 20000), 97),
                      dict(cap=64, idle=5.0)))
        for label, b, cuts, opts in plans:
            X = run(lambda: new_extractor(**opts), b, cuts)
            R = run(lambda: ref.new_extractor(**opts), b, cuts)
            ok &= compare(label, X, R, FEATURE_NAMES)
            if path == captures[0] and not args.no_demo and label == f"batch {sizes[-1]}":
                demo_X, demo_R = X, R
    if demo_X is not None:
        clf = PacketClassifier.load()
        px, pr = clf.predict_proba(demo_X), clf.predict_proba(demo_R)
        same_arg = np.array_equal(px.argmax(1), pr.argmax(1))
        same_p = np.array_equal(px, pr)
        print(f"model {clf.name} on the demo: predictions {'identical' if same_arg else 'DIFFERENT'}, "
              f"probabilities {'identical' if same_p else 'DIFFERENT'} ({len(px):,} rows)")
        ok &= same_arg and same_p
    print(f"equal={'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
