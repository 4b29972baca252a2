"""Detector throughput on one core: model inference (rows/s) and feature extraction (packets/s).

    .venv/bin/python bench/inference.py [--model FILE] [--capture PCAP] [--packets 100000] [--rows 262144] [--repeat 5]

Prints, for the bundle's network, all measured in the same run:
* the inference kernel ``PacketClassifier.predict_proba`` uses (``iotwatch doctor`` says the same);
* the fused C kernel (``iotwatch.detector._mlp``, every ISA this CPU runs), the numpy matmul path
  (``FoldedMLP`` with kernel="numpy", the fallback) and the torch module in ``eval()`` under
  ``torch.inference_mode()``, in rows/s per core at several call sizes, with the ratio to the 2M
  rows/s target and to torch. Rows are REAL feature rows: the bundled model's extractor run over
  ``--capture`` (default: the bundled demo capture), tiled to ``--rows``. The C kernel skips zero
  inputs and zero hidden units, so its speed depends on the data; dense random rows (every input
  nonzero, its worst case) are timed too;
* the largest probability difference of each path from torch, and the argmax agreement;
* ``extractor.transform`` packets/s on a synthetic stream (``tests/fakes.synthetic_packets``)
  in 8192-row batches (replay) and 256-row batches (live), and features + ``predict_proba`` in 8192-row
  batches (the cost target of issue 12: >= 100k packets/s), against the ~20k pkt/s raw tshark rate the
  headless replay is bounded by; with ``--reference-features REV`` also the extractor of
  ``detector/features.py`` at git revision REV (e.g. the commit of an older bundle's featurizer) on the
  same stream, interleaved pass by pass, and the ratio new / reference, plus features + model packets/s
  in 8192-row batches for both when ``--reference-model`` names that bundle.
Everything runs on ONE thread (BLAS and torch), so the numbers are per core: best of ``--repeat``
passes, timed with the thread's CPU clock (``time.thread_time``) so other processes on a shared
machine count less; wall-clock rates are printed beside them.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

TARGET_ROWS = 2_000_000
TSHARK_PKTS = 20_000


def best_rate(fn, items: int, repeat: int) -> tuple[float, float]:
    """(best rows/s by thread CPU time, best rows/s by wall clock) over ``repeat`` passes."""
    fn()  # warm up
    cpu = wall = 0.0
    for _ in range(repeat):
        t, w = time.thread_time(), time.perf_counter()
        fn()
        t, w = time.thread_time() - t, time.perf_counter() - w
        cpu, wall = max(cpu, items / max(t, 1e-9)), max(wall, items / w)
    return cpu, wall


def feature_rows(clf, capture: str, rows: int) -> np.ndarray:
    """The model's feature rows for every packet of ``capture``, tiled to ``rows`` rows."""
    from iotwatch.captures.sources import open_source

    ext = clf.new_extractor()
    parts = [ext.transform(b) for b in open_source(read=capture).batches(max_rows=8192, max_wait=1.0) if len(b)]
    X = np.concatenate(parts).astype(np.float32)
    return np.ascontiguousarray(np.resize(X, (rows, X.shape[1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="bundle (default: the bundled model)")
    ap.add_argument("--capture", help="capture whose feature rows are timed (default: the bundled demo)")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=262_144)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference-features", metavar="REV",
                    help="git revision whose detector/features.py is timed beside this one (same stream, same run)")
    ap.add_argument("--reference-model", help="bundle of the reference featurizer (read raw: its schema is old)")
    ap.add_argument("--only-features", action="store_true", help="skip the kernel tables")
    args = ap.parse_args()

    import torch

    from iotwatch.detector import model as mdl
    from iotwatch.detector.classifier import PacketClassifier
    from iotwatch.detector.features import new_extractor
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fakes import synthetic_packets  # test fakes live in tests/, not in the package
    from iotwatch.options import demo_capture

    torch.set_num_threads(1)
    clf = PacketClassifier.load(args.model)
    cfg = clf.bundle.config
    print(f"model {clf.name}: {cfg.n_features} features -> {list(cfg.hidden)} -> {cfg.n_classes} classes; 1 thread")
    _, why = mdl.kernel_status()
    print(f"predict_proba kernel: {clf.kernel} ({why})")
    from iotwatch.detector.features import tables_kernel_status
    print("feature-table kernel: %s (%s)" % tables_kernel_status())
    capture = args.capture or str(demo_capture())
    X = feature_rows(clf, capture, args.rows)
    Xd = np.random.default_rng(0).standard_normal((args.rows, cfg.n_features)).astype(np.float32)
    nnz = (X != 0).sum(1)
    print(f"rows: {len(X):,} real feature rows from {capture} (nonzero inputs per row: mean {nnz.mean():.1f}, "
          f"max {nnz.max()} of {cfg.n_features}); dense random rows for the worst case")

    module = build_module(clf, cfg, torch)
    mean, std = clf.bundle.scaler
    tensors, fold = clf.bundle.tensors, mdl.FoldedMLP.from_tensors
    paths = {"numpy matmuls (fallback)": fold(cfg, tensors, mean, std, kernel="numpy")}
    isas = mdl._mlp.available_isas() if mdl._mlp is not None else ()
    for isa in isas:
        paths[f"C kernel {isa}"] = fold(cfg, tensors, mean, std, kernel=isa)
    if not isas:
        print(f"C kernel: not available ({mdl._MLP_ERROR})")

    def torch_probs(A, chunk):
        At = torch.from_numpy(((A - mean) / std).astype(np.float32))
        def run():
            with torch.inference_mode():
                return [torch.softmax(module(At[i:i + chunk]), 1) for i in range(0, len(At), chunk)]
        return run

    ref = torch.cat(torch_probs(X[:65536], 16384)()).numpy()
    print(f"\nagreement with torch on {len(ref):,} real rows:")
    for name, f in paths.items():
        p = f.proba(X[:65536])
        print(f"  {name:<28} max |p - torch| {float(np.abs(p - ref).max()):.2e}   "
              f"argmax equal {float((p.argmax(1) == ref.argmax(1)).mean()):.6f}")

    def path_run(f, A, chunk):
        def run():
            for i in range(0, len(A), chunk):
                f.proba(A[i:i + chunk])
        return run

    for label, A in (() if args.only_features else (("real feature rows", X), ("dense random rows (worst case for the C kernel)", Xd))):
        torch_rate, torch_wall = best_rate(torch_probs(A, 16384), len(A), args.repeat)
        print(f"\n{label}:")
        print(f"{'path, rows per call':<40}{'rows/s/core':>14}{'x target':>10}{'x torch':>9}{'wall rows/s':>14}")
        print(f"{'torch eval, inference_mode, 16384':<40}{torch_rate:>14,.0f}{torch_rate / TARGET_ROWS:>10.2f}"
              f"{1.0:>9.2f}{torch_wall:>14,.0f}")
        for name, f in paths.items():
            for chunk in (256, 4096, 16384, 65536):
                r, w = best_rate(path_run(f, A, chunk), len(A), args.repeat)
                print(f"{f'{name}, {chunk}':<40}{r:>14,.0f}{r / TARGET_ROWS:>10.2f}{r / torch_rate:>9.2f}{w:>14,.0f}")

    stream = synthetic_packets(args.packets, seed=0)
    print(f"\nfeature extraction ({clf.featurizer}) on {args.packets:,} synthetic packets:")
    print(f"{'batch rows':<40}{'packets/s':>14}{'x tshark':>10}")
    for rows in (8192, 256):
        def extract():
            ext = new_extractor(clf.featurizer)
            for s in range(0, len(stream), rows):
                ext.transform(stream.slice(s, s + rows))
        r, _ = best_rate(extract, len(stream), max(1, args.repeat // 2))
        print(f"{rows:<40}{r:>14,.0f}{r / TSHARK_PKTS:>10.1f}")

    def extract_and_classify():
        ext = new_extractor(clf.featurizer)
        for s in range(0, len(stream), 8192):
            clf.predict_proba(ext.transform(stream.slice(s, s + 8192)))
    r, _ = best_rate(extract_and_classify, len(stream), max(1, args.repeat // 2))
    print(f"{'8192, features + model (predict_proba)':<40}{r:>14,.0f}{r / TSHARK_PKTS:>10.1f}")
    if clf.new_vote() is not None:   # what the pipeline runs per batch: + the bundle's flow vote
        from iotwatch.detector.flowvote import vote_keys

        def extract_classify_vote():
            ext, vote = new_extractor(clf.featurizer), clf.new_vote()
            for s in range(0, len(stream), 8192):
                b = stream.slice(s, s + 8192)
                flows, pairs = vote_keys(b)
                vote.update(flows, b["time_epoch"], clf.predict_proba(ext.transform(b)), pairs)
        r, _ = best_rate(extract_classify_vote, len(stream), max(1, args.repeat // 2))
        pair = f", pair {clf.pair_vote.weight:g}" if clf.pair_vote is not None else ""
        print(f"{f'8192, + flow vote (alpha {clf.flow_vote:g}{pair})':<40}{r:>14,.0f}{r / TSHARK_PKTS:>10.1f}")
    if args.reference_features:
        compare_reference(args, clf, stream)


def reference_module(rev: str):
    """detector/features.py as of git revision ``rev`` (the loader of bench/features_equal.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from features_equal import reference_module as load

    return load(rev)


def reference_mlp(path: str):
    """FoldedMLP of a bundle read without the schema check (its featurizer is not this iotwatch's)."""
    import json

    from safetensors import safe_open

    from iotwatch.detector.model import FoldedMLP, ModelConfig

    with safe_open(path, "numpy") as fh:
        meta = json.loads(fh.metadata()["iotwatch"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    cfg = ModelConfig.from_dict(meta["model_config"])
    return FoldedMLP.from_tensors(cfg, tensors, np.asarray(meta["scaler_mean"]), np.asarray(meta["scaler_std"]))


def compare_reference(args, clf, stream) -> None:
    """This featurizer (+ model) against the reference revision's, interleaved on the same stream."""
    from iotwatch.detector.features import new_extractor

    ref = reference_module(args.reference_features)
    ref_mlp = reference_mlp(args.reference_model) if args.reference_model else None
    print(f"\nagainst {args.reference_features} ({ref.FEATURIZER_VERSION}, {len(ref.FEATURE_NAMES)} columns) "
          f"on the same {len(stream):,} packets, interleaved, best of {args.repeat}:")
    print(f"{'batch rows':<12}{'this pkt/s':>14}{'ref pkt/s':>14}{'ratio':>8}{'this+model':>14}{'ref+model':>14}{'ratio':>8}")
    for rows in (8192, 256):
        def run(make, mlp):
            def go():
                ext = make()
                for s in range(0, len(stream), rows):
                    X = ext.transform(stream.slice(s, s + rows))
                    if mlp is not None:
                        mlp.proba(X)
            return go
        best = {k: 0.0 for k in ("new", "ref", "new_m", "ref_m")}
        for _ in range(max(1, args.repeat)):
            for key, fn in (("new", run(lambda: new_extractor(clf.featurizer), None)),
                            ("ref", run(ref.new_extractor, None)),
                            ("new_m", run(lambda: new_extractor(clf.featurizer), clf._mlp)),
                            ("ref_m", run(ref.new_extractor, ref_mlp))):
                if key == "ref_m" and ref_mlp is None:
                    continue
                best[key] = max(best[key], best_rate(fn, len(stream), 1)[0])
        rm = best["ref_m"] or float("nan")
        print(f"{rows:<12}{best['new']:>14,.0f}{best['ref']:>14,.0f}{best['new'] / best['ref']:>8.2f}"
              f"{best['new_m']:>14,.0f}{rm:>14,.0f}{best['new_m'] / rm:>8.2f}")


def build_module(clf, cfg, torch):
    from iotwatch.detector.model import build_model

    module = build_model(cfg)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in clf.bundle.tensors.items()})
    return module.eval()


if __name__ == "__main__":
    main()
