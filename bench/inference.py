"""Detector throughput on one core: feature extraction (packets/s) and model inference (rows/s).

    .venv/bin/python bench/inference.py [--model FILE] [--packets 100000] [--rows 262144] [--repeat 5]

Prints, for the bundle's network:
* ``PacketClassifier.predict_proba`` (float32 numpy matmuls, scaler folded into layer 0) at several
  call sizes, and the torch module in ``eval()`` under ``torch.inference_mode()`` for reference, with
  the ratio of each to the 2M rows/s per core target and to torch measured in the same run;
* ``extractor.transform`` packets/s on a synthetic stream (``detector.testing.synthetic_packets``)
  in 8192-row batches (replay) and 256-row batches (live), against the ~20k pkt/s raw tshark rate the
  headless replay is bounded by.
Everything runs on ONE thread (BLAS and torch), so the numbers are per core; best of ``--repeat``.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

TARGET_ROWS = 2_000_000
TSHARK_PKTS = 20_000


def best_rate(fn, items: int, repeat: int) -> float:
    fn()  # warm up
    best = 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = max(best, items / (time.perf_counter() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="bundle (default: the bundled model)")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=262_144)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import torch

    from iotwatch.detector.classifier import PacketClassifier
    from iotwatch.detector.features import new_extractor
    from iotwatch.detector.model import build_model
    from iotwatch.detector.testing import synthetic_packets

    torch.set_num_threads(1)
    clf = PacketClassifier.load(args.model)
    cfg = clf.bundle.config
    print(f"model {clf.name}: {cfg.n_features} features -> {list(cfg.hidden)} -> {cfg.n_classes} classes; 1 thread")

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, cfg.n_features)).astype(np.float32)
    module = build_model(cfg)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in clf.bundle.tensors.items()})
    module.eval()
    mean, std = clf.bundle.scaler
    Xt = torch.from_numpy(((X - mean) / std).astype(np.float32))

    def torch_run(chunk):
        def run():
            with torch.inference_mode():
                for i in range(0, len(Xt), chunk):
                    torch.softmax(module(Xt[i:i + chunk]), 1)
        return run

    def numpy_run(chunk):
        def run():
            for i in range(0, len(X), chunk):
                clf.predict_proba(X[i:i + chunk])
        return run

    with torch.inference_mode():
        ref = torch.softmax(module(Xt[:4096]), 1).numpy()
    diff = float(np.abs(ref - clf.predict_proba(X[:4096])).max())
    print(f"max |numpy - torch| probability difference: {diff:.2e}")
    torch_rate = best_rate(torch_run(16384), len(X), args.repeat)
    print(f"{'path':<34}{'rows/s/core':>14}{'x target':>10}{'x torch':>9}")
    print(f"{'torch eval, inference_mode, 16384':<34}{torch_rate:>14,.0f}{torch_rate / TARGET_ROWS:>10.2f}{1.0:>9.2f}")
    for chunk in (256, 4096, 16384, 65536):
        r = best_rate(numpy_run(chunk), len(X), args.repeat)
        print(f"{f'predict_proba (numpy), {chunk}':<34}{r:>14,.0f}{r / TARGET_ROWS:>10.2f}{r / torch_rate:>9.2f}")

    stream = synthetic_packets(args.packets, seed=0)
    print(f"\nfeature extraction ({clf.featurizer}) on {args.packets:,} synthetic packets:")
    print(f"{'batch rows':<34}{'packets/s':>14}{'x tshark':>10}")
    for rows in (8192, 256):
        def extract():
            ext = new_extractor(clf.featurizer)
            for s in range(0, len(stream), rows):
                ext.transform(stream.slice(s, s + rows))
        r = best_rate(extract, len(stream), max(1, args.repeat // 2))
        print(f"{rows:<34}{r:>14,.0f}{r / TSHARK_PKTS:>10.1f}")


if __name__ == "__main__":
    main()
