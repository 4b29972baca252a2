"""``iotwatch train``: fit a model bundle from labelled captures or from the seed paper's CSV.

    iotwatch train --captures DIR_OR_FILE... --out model.iotw [--preset default|paper]
                   [--epochs N] [--seed N] [--eval DIR_OR_FILE...] [--max-rows-per-class N]
                   [--upweight DIR_OR_FILE... [--upweight-factor N]] [--val-sources FRACTION]
                   [--weight-ema EPOCHS] [--class-weight-power P] [--init BUNDLE] [--lr LR]
    iotwatch train --csv FILE --schema kaggle --out model.iotw [--preset paper]

Captures (pcap/pcapng, labels from ``<capture>.labels.csv`` or ``label=`` comments, CONTRACT §2) are
read with ``captures.open_source`` and featurised by THE SAME extractor the classifier uses at
inference (``features.new_extractor``), one fresh extractor per capture, as a replay would.

``--cache DIR`` keeps two levels per capture (detector/featcache.py): the feature rows
(``DIR/*.npz``, keyed by the capture, its labels and the feature code) and the parsed tshark batches
(``DIR/batches/*.npz``, keyed by the capture, its labels and the capture-side code only). After an
edit of detector/features.py the rows are rebuilt from the batches (no tshark: only the feature
code's own cost remains, bench/refeaturise.py), through the same ``transform(batch)`` path. Stale
files are never served, only kept: clear everything with ``rm -r DIR``, only the rows with
``rm DIR/*.npz`` (rebuilt from the batches), only the batches with ``rm -r DIR/batches`` (the next
run re-reads every capture with tshark).

Presets:
  ``paper``   the seed paper's protocol: its 11 raw fields (addresses included), three-sigma outlier
              removal, standard scaling, stratified 80/20 split, the 128-64-32 network with dropout 0.5,
              Adam (lr 1e-3), sparse categorical cross-entropy, batch 32, 10 epochs.
  ``default`` behaviour-v2 features, the same network and optimiser, a scaler whose std is floored at
              0.5 (rare binary columns stay O(1)), a loss weighted by the square root
              of inverse class frequency, batch 256,
              up to 40 epochs with early stopping on validation macro-F1 (patience 5), and an anomaly
              threshold calibrated on validation normal traffic.

Validation: a random stratified 20% of the rows, or with ``--val-sources F`` whole held-out sources
(``validation_sources``: a fraction F of each simulator/lab folder's recordings and of the --upweight
repositories, picked by name), so early stopping and the threshold reward what carries to a source the
network never saw rather than each training source's own conventions. ``--weight-ema E`` validates and
keeps an exponential moving average of the weights over ~E epochs (same network and bundle shape).
``--init BUNDLE`` continues training that bundle's network and scaler (same features, classes and layers)
instead of starting from random weights; the bundle records it, with the init's own training data, so
the sources its weights have seen stay listed (iotwatch-default/12 is /11's network continued for 5
epochs at ``--lr 3e-4`` on the session-15 data: bench/train_default.sh).

Everything is seeded (numpy, torch, split, shuffling; one torch thread), and the bundle holds no
timestamps, so the same command on the same data writes a byte-identical bundle. ``--eval`` replays
held-out captures through the trained classifier (the headless data path) and stores the numbers in
the bundle's metrics. This module is never imported by the UI or the classifier.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.errors import InputError
from iotwatch.captures.files import check_output_folder, output_folder, require_regular_input, sha256_file

from .bundle import CONTRACT_CLASSES, Bundle, load_bundle, make_meta, pair_vote_meta, save_bundle
from .evaluate import evaluate_capture, summarize
from .features import new_extractor
from .model import ModelConfig

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
KAGGLE_COLUMNS = ("frame.number", "frame.time", "frame.len", "eth.src", "eth.dst", "ip.src", "ip.dst",
                  "ip.proto", "ip.len", "tcp.len", "tcp.srcport", "tcp.dstport", "Value", "normality")


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    featurizer: str
    epochs: int
    batch_size: int
    lr: float = 1e-3
    hidden: tuple[int, ...] = (128, 64, 32)
    dropout: float = 0.5
    outlier_sigma: float | None = None
    class_weight_power: float = 0.0  # loss weight of class c ~ (1 / frequency_c) ** power; 0 = unweighted
    early_stopping_patience: int | None = None
    val_fraction: float = 0.2
    calibrate_false_alarms: float | None = None  # target rate on validation normal packets
    scale_floor: float = 0.0      # the scaler's std is at least this (rare binary columns stay O(1))
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0.1 measured: fewer benign flags on the lab
                                  # cases, but the simulator's spoofing F1 fell 0.65 -> 0.2-0.3; off in the preset)
    val_sources: float | None = None  # validation = whole held-out SOURCES (Dataset.holdout, picked by
                                      # validation_sources with this fraction) instead of random rows
    weight_ema_epochs: float = 0.0    # > 0: validate, early-stop and keep an exponential moving average of the
                                      # weights with a horizon of this many epochs (0 = the raw weights)
    flow_vote: float = 0.0  # the bundle's per-flow vote (detector/flowvote.py): alpha of the moving average of a
                            # flow's probabilities over its packets, 0 = each packet alone
    pair_vote: float = 0.0  # weight of the pull of a connection voted exfiltration toward the two hosts' other,
                            # normal traffic (detector/flowvote.py PairVote; tau 600 s, ramp 20, floor 0.9), 0 = off


PRESETS = {
    "paper": TrainConfig(preset="paper", featurizer="paper", epochs=10, batch_size=32, outlier_sigma=3.0),
    "default": TrainConfig(preset="default", featurizer="behaviour-v2", epochs=40, batch_size=256,
                           class_weight_power=0.5, early_stopping_patience=5, calibrate_false_alarms=0.001,
                           scale_floor=0.5, flow_vote=0.85, pair_vote=0.6),
}


@dataclass
class Dataset:
    X: np.ndarray          # float32 (n, F)
    y: np.ndarray          # int64 (n,)
    classes: list[str]
    normal_class: str
    sources: list[dict]    # what the rows came from (file, sha256, packets, labelled)
    repeat: np.ndarray | None = None  # int (n,): times each row counts (--upweight); None = once each
    groups: np.ndarray | None = None  # int (n,): source group of each row (--per-source); None = one group
    holdout: np.ndarray | None = None  # bool (n,): the row's source is held out whole as the validation set
                                       # (validation_sources); None = a random stratified split of the rows


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
def find_captures(paths: Sequence[str]) -> list[Path]:
    """Capture files named directly or found (recursively, sorted) under the given folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.exists() and not p.is_dir():
            require_regular_input(p, "capture")   # a FIFO or device is refused by name, not "does not exist"
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(CAPTURE_SUFFIXES))
            if not found:
                raise InputError(f"no pcap/pcapng captures under {p}", hint="point --captures at capture files or folders")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"capture path {p} does not exist")
    return list(dict.fromkeys(out))


def feature_code_digest() -> str:
    """sha256 of the source of the code that turns a capture into feature rows (the capture side of
    ``featcache.capture_code_digest``: tshark fields, parser, argv, batches, labels, the tshark version;
    plus the features): part of the feature-row cache's key, so a change of how a column is computed
    misses the cache even when the column names (the schema hash) stay the same."""
    global _FEATURE_CODE_DIGEST
    if _FEATURE_CODE_DIGEST is None:
        from . import features
        from .featcache import capture_code_digest

        h = hashlib.sha256(capture_code_digest().encode())
        h.update(Path(features.__file__).read_bytes())
        kernel = Path(features.__file__).with_name("_tables.c")  # DecayTable's C path (same values)
        if kernel.is_file():
            h.update(kernel.read_bytes())
        _FEATURE_CODE_DIGEST = h.hexdigest()[:16]
    return _FEATURE_CODE_DIGEST


_FEATURE_CODE_DIGEST: str | None = None
READ_BATCH_ROWS = 8192   # the batches featurise_capture reads (and caches) a capture in


def capture_digests(path: Path, labels) -> tuple[str, str]:
    """(the capture's sha256, its label sidecar's or "nolabels"): what keys its feature-cache entries (the rows
    and the parsed batches, detector/featcache.py). ``labels``: its ``LabelSet`` (None: no sidecar)."""
    side = labels.sidecar_path if labels is not None else None
    return sha256_file(path), (sha256_file(side) if side is not None and side.is_file() else "nolabels")


def featurise_capture(path: Path, classes: Sequence[str], featurizer: str, cache: Path | None = None,
                      on_batch=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(X float32 for every frame, labels int8 with -1 = unlabelled, label source) of one capture, read
    with a fresh extractor as a replay would.

    With ``cache`` (detector/featcache.py), two levels: the feature rows, keyed by the capture's
    sha256, its sidecar's sha256, the feature schema and the feature code's digest, so a changed
    capture, label file or featurizer is never served stale rows; and the capture's parsed tshark
    batches (``cache/batches/``), keyed without the feature code. When only the feature code changed,
    the rows are rebuilt from the cached batches -- the same ``transform(batch)`` calls on the same
    batches as a tshark read, no tshark. Unreadable cache files are rebuilt."""
    from iotwatch.captures.labels import LabelSet

    from . import featcache
    from .features import featurizer_info

    labels = LabelSet.load(classes, capture=path)
    if labels is None:
        raise InputError(f"capture {path} has no labels",
                         hint="add <capture>.labels.csv (frame_number,label) or label= packet comments")
    label_source = labels.source if labels.sidecar_path is None else labels.sidecar_path.name
    names, schema = featurizer_info(featurizer)
    rows_file = stored = recorder = None
    if cache is not None and list(classes) == list(CONTRACT_CLASSES):
        capture_sha, side_sha = capture_digests(path, labels)
        key = hashlib.sha256(f"{capture_sha}:{side_sha[:12]}:{schema}:{feature_code_digest()}".encode()
                             ).hexdigest()[:24]
        rows_file = Path(cache) / f"{path.name}.{key}.npz"
        hit = featcache.load_rows(rows_file, len(names))
        if hit is not None:
            return hit[0], hit[1], label_source
        batches_file, batches_key = featcache.batch_cache_file(Path(cache), path, capture_sha, side_sha)
        stored = featcache.load_batches(batches_file, batches_key)
        if stored is None:
            recorder = featcache.BatchRecorder()
    extractor = new_extractor(featurizer)   # a rows hit needs none (every block and its tables)
    Xs, ys = [], []
    if stored is not None:   # the feature code changed, the capture side did not: no tshark
        for batch, lab in stored:
            Xs.append(extractor.transform(batch))
            ys.append(lab)
            if on_batch is not None:
                on_batch(len(batch))
    else:
        from iotwatch.captures.sources import open_source

        source = open_source(read=str(path))
        try:
            for batch in source.batches(max_rows=READ_BATCH_ROWS, max_wait=1.0):
                if len(batch):
                    Xs.append(extractor.transform(batch))
                    ys.append(labels.for_batch(batch).astype(np.int8))
                    if recorder is not None:
                        recorder.add(batch, ys[-1])
                    if on_batch is not None:
                        on_batch(len(batch))
                elif batch.truncated and recorder is not None:
                    recorder.truncated = batch.truncated
        finally:
            source.close()
    X = np.concatenate(Xs) if Xs else np.zeros((0, len(extractor.names)), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.int8)
    if rows_file is not None:
        output_folder(rows_file.parent, "--cache folder")
        if recorder is not None:
            arrays = recorder.arrays(batches_key)
            if arrays is not None:
                featcache.save_npz(batches_file, arrays)
        featcache.save_npz(rows_file, {"X": X, "y": y})
    return X, y, label_source


def load_captures(paths: Sequence[Path], classes: Sequence[str], featurizer: str, console=None,
                  cache: Path | None = None) -> Dataset:
    """Featurise every labelled frame of every capture (unlabelled frames still feed the context).

    With a ``console``, a rich progress bar shows files done, packets, packets/s and the time left
    (estimated from the bytes of the files still to read). With ``cache``, see ``featurise_capture``."""
    from contextlib import nullcontext

    sizes = [max(p.stat().st_size, 1) for p in paths]
    progress = _reading_progress(console) if console is not None else None
    task = progress.add_task("reading", total=sum(sizes), files=f"0/{len(paths)}", packets=0, rate=0.0) \
        if progress is not None else None
    started = time.monotonic()
    total_packets = 0
    Xs, ys, sources = [], [], []
    with progress if progress is not None else nullcontext():
        for i, (path, size) in enumerate(zip(paths, sizes)):
            seen = [0]

            def on_batch(n, i=i, size=size, seen=seen):
                seen[0] += n
                if progress is not None:
                    done = total_packets + seen[0]
                    progress.update(task, completed=sum(sizes[:i]) + min(size, size * 0.99),
                                    packets=done, rate=done / max(time.monotonic() - started, 1e-6))

            X, lab, label_source = featurise_capture(path, classes, featurizer, cache, on_batch)
            keep = lab >= 0
            packets, labelled = len(lab), int(keep.sum())
            if labelled == 0:
                raise InputError(f"capture {path} has no labelled frames",
                                 hint="add <capture>.labels.csv (frame_number,label) or label= packet comments")
            Xs.append(X[keep])
            ys.append(lab[keep].astype(np.int64))
            total_packets += packets
            sources.append({"file": path.name, "sha256": sha256_file(path), "packets": packets, "labelled": labelled,
                            "labels": label_source})
            if progress is not None:
                progress.update(task, completed=sum(sizes[:i + 1]), files=f"{i + 1}/{len(paths)}",
                                packets=total_packets, rate=total_packets / max(time.monotonic() - started, 1e-6))
                console.print(f"  {path}: {packets:,} packets, {labelled:,} labelled")
    return Dataset(np.concatenate(Xs), np.concatenate(ys), list(classes), "normal", sources)


def _reading_progress(console):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]reading captures"), BarColumn(), TextColumn("files {task.fields[files]}"),
                    TextColumn("{task.fields[packets]:,} packets"), TextColumn("{task.fields[rate]:,.0f} pkt/s"),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console, transient=True)


_TIME_FORMATS = ("%b %d, %Y %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%b %d, %Y %H:%M:%S")


def _parse_time(s: str) -> float:
    """frame.time as epoch seconds: a number, or tshark's 'Nov 10, 2021 09:45:23.123456789 UTC'."""
    s = s.strip()
    try:
        return float(s)
    except ValueError:
        pass
    parts = s.split()
    if parts and parts[-1].isalpha() and len(parts) > 1:  # time zone name: ignored (relative times matter)
        s = " ".join(parts[:-1])
    if "." in s:  # nanoseconds -> microseconds for strptime
        head, frac = s.rsplit(".", 1)
        s = f"{head}.{frac[:6]}"
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(s, fmt).timestamp()
        except ValueError:
            continue
    return math.nan


def _int_or_missing(s: str) -> int:
    s = s.strip()
    if not s:
        return -1
    try:
        return int(float(s.split(",")[0]))
    except ValueError:
        return -1


def read_kaggle_csv(path: str | Path) -> tuple[PacketBatch, list[str], np.ndarray, str]:
    """The seed paper's 14-column CSV -> (PacketBatch, classes, labels, normal class).

    Labels: ``normality`` is the class; when it is numeric it gives the class index and ``Value``
    names it (class names fall back to ``class<N>``). The normal class is the one called
    normal/benign, else index 0.
    """
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read CSV {path}: {e.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames or []
            missing = [c for c in KAGGLE_COLUMNS if c not in header]
            if missing:
                raise InputError(f"{path}:1: not the kaggle schema, missing columns {', '.join(missing)}",
                                 hint="expected: " + ",".join(KAGGLE_COLUMNS))
            rows = list(reader)
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file") from None
        except csv.Error as e:
            raise InputError(f"{path}:{reader.line_num}: {e}") from None
    if not rows:
        raise InputError(f"{path}: no data rows")
    recs = []
    for r in rows:
        recs.append({
            "frame_number": _int_or_missing(r["frame.number"]), "time_epoch": _parse_time(r["frame.time"]),
            "frame_len": _int_or_missing(r["frame.len"]), "eth_src": r["eth.src"].strip(),
            "eth_dst": r["eth.dst"].strip(), "ip_src": r["ip.src"].strip(), "ip_dst": r["ip.dst"].strip(),
            "ip_version": 4 if r["ip.src"].strip() else -1, "ip_proto": _int_or_missing(r["ip.proto"]),
            "ip_len": _int_or_missing(r["ip.len"]), "tcp_len": _int_or_missing(r["tcp.len"]),
            "tcp_srcport": _int_or_missing(r["tcp.srcport"]), "tcp_dstport": _int_or_missing(r["tcp.dstport"]),
        })
    batch = PacketBatch.from_records(recs)
    norm = [r["normality"].strip() for r in rows]
    value = [r["Value"].strip() for r in rows]
    if all(_is_int(v) for v in norm):
        codes = np.array([int(float(v)) for v in norm], dtype=np.int64)
        if codes.min() < 0:
            raise InputError(f"{path}: negative normality code {codes.min()}")
        names: dict[int, str] = {}
        for code, name in zip(codes.tolist(), value):
            names.setdefault(code, name if name and not _is_int(name) else f"class{code}")
        classes = [names.get(k, f"class{k}") for k in range(int(codes.max()) + 1)]
        if len(set(classes)) != len(classes):
            classes = [f"class{k}" for k in range(len(classes))]
        y = codes
    else:
        uniq = sorted(set(norm))
        classes = sorted(uniq, key=lambda c: (c.lower() not in ("normal", "benign"), c))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[v] for v in norm], dtype=np.int64)
    normal = next((c for c in classes if c.lower() in ("normal", "benign")), classes[0])
    if len(classes) < 2:
        raise InputError(f"{path}: only one class ({classes[0]}) in the data; nothing to learn")
    return batch, classes, y, normal


def _is_int(s: str) -> bool:
    try:
        return float(s) == int(float(s))
    except ValueError:
        return False


def load_kaggle(path: str | Path, featurizer: str) -> Dataset:
    batch, classes, y, normal = read_kaggle_csv(path)
    X = new_extractor(featurizer).transform(batch)
    p = Path(path)
    return Dataset(X, y, classes, normal, [{"file": p.name, "sha256": sha256_file(p), "packets": len(y),
                                              "labelled": len(y), "labels": "normality column"}])


# ---------------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------------
def three_sigma_mask(X: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """Rows whose every feature lies within ``sigma`` standard deviations of its mean."""
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    z = np.abs((X - mean) / np.where(std > 0, std, 1.0))
    return (z <= sigma).all(axis=1)


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices with ``fraction`` of each class held out (at least one when possible)."""
    train, held = [], []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        idx = idx[rng.permutation(len(idx))]
        m = int(round(len(idx) * fraction))
        if len(idx) > 1:
            m = min(max(m, 1), len(idx) - 1)
        held.append(idx[:m])
        train.append(idx[m:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def cap_per_class(y: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices keeping at most ``cap`` random rows of each class (all rows when cap is None)."""
    if cap is None:
        return np.arange(len(y))
    keep = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if len(idx) > cap:
            idx = np.sort(rng.choice(idx, size=cap, replace=False))
        keep.append(idx)
    return np.sort(np.concatenate(keep))


def source_unit(path: Path) -> str:
    """The recording a capture file belongs to, for validation by source: its name up to the first dot,
    so a recording and the views derived from it (``lab-all-seed11.pcapng`` and bench/lab_victim_view.py's
    ``lab-all-seed11.victim.pcapng``) are ONE source and never end up on both sides of the split."""
    return path.name.split(".", 1)[0]


def validation_sources(families: dict[str, Sequence[str]], fraction: float) -> list[str]:
    """The source units held out WHOLE as the validation set (``TrainConfig.val_sources``).

    ``families``: family name -> its source units (a simulator folder -> its recordings, the lab -> its
    recordings, the real training part -> its repositories). From each family of n units,
    floor(fraction * n + 0.5) units are held out, never all of them (a family of one unit, e.g. a single
    lab recording, is never held out; of two, one only from fraction 0.25 up); which ones is decided by
    the sha256 of the unit names, so the pick depends on the data only -- not on the seed, the order of
    the arguments or what else is trained on. A unit listed in several families counts in the first."""
    seen: set[str] = set()
    held: list[str] = []
    for units in families.values():
        own = sorted({u for u in units if u not in seen}, key=lambda u: (hashlib.sha256(u.encode()).hexdigest(), u))
        seen.update(own)
        k = min(int(math.floor(fraction * len(own) + 0.5)), len(own) - 1)
        held += own[:max(k, 0)]
    return sorted(held)


def fit_scaler(X: np.ndarray, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std; the std is at least ``floor`` (and 1 for a constant column).

    The floor keeps a rare binary column (an IP protocol, a service port, an ICMP type seen in 0.1% of
    the training rows: std 0.03) from turning into a 30-sigma input on the first capture where it is
    common, which the network then extrapolates wildly (issue 12: THC IPv6 floods, a DHCP flood and
    BlackNurse were classified by such columns alone). Heavy-tailed counts are already logs."""
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std = np.where(std > 1e-6, std, 1.0)
    return mean, np.maximum(std, floor) if floor > 0 else std


def class_weights(y: np.ndarray, k: int, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency weights to the ``power`` (1 = sklearn's 'balanced', 0.5 = its square root),
    normalised so the mean weight per training row is 1; 0 for absent classes."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts > 0, (len(y) / np.maximum(counts, 1)) ** power, 0.0)
    return w * len(y) / max(float((w * counts).sum()), 1e-12)


# ---------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    tensors: dict[str, np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    history: list[dict]
    best_epoch: int
    val_proba: np.ndarray
    val_y: np.ndarray
    rows: dict
    val_rows: np.ndarray | None = None  # indices into data.X of the validation rows (each once)


def fit(data: Dataset, cfg: TrainConfig, seed: int, console, max_rows_per_class: int | None = None,
        init: Bundle | None = None) -> FitResult:
    """``init``: continue from this bundle's network and scaler (same features and classes) instead of
    random weights; columns its first layer does not read (all-zero weights: columns added since) get the
    scaler fitted on this data."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .model import build_model

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # reproducible and polite on a shared machine
    rng = np.random.default_rng(seed)
    X, y = data.X, data.y
    k = len(data.classes)
    if data.groups is not None:  # the cap applies per (source group, class)
        rows = {"labelled": int(len(y))}
        parts = []
        for g in np.unique(data.groups):
            idx = np.flatnonzero(data.groups == g)
            parts.append(idx[cap_per_class(y[idx], max_rows_per_class, rng)])
        sel = np.sort(np.concatenate(parts))
        if data.repeat is not None:
            sel = np.repeat(sel, data.repeat[sel])
    elif data.repeat is None:
        rows = {"labelled": int(len(y))}
        sel = cap_per_class(y, max_rows_per_class, rng)
    else:  # the cap thins the ordinary rows only; upweighted rows are all kept, each repeated
        rows = {"labelled": int(data.repeat.sum())}
        plain = np.flatnonzero(data.repeat == 1)
        heavy = np.flatnonzero(data.repeat != 1)
        keep = np.sort(np.concatenate([plain[cap_per_class(y[plain], max_rows_per_class, rng)], heavy]))
        sel = np.repeat(keep, data.repeat[keep])
    X, y = X[sel], y[sel]
    origin = sel  # the data row of each selected row (repeated rows share it)
    rows["after_cap"] = int(len(y))
    if cfg.outlier_sigma is not None:
        ok = three_sigma_mask(X, cfg.outlier_sigma)
        X, y, origin = X[ok], y[ok], origin[ok]
        rows["after_outlier_removal"] = int(len(y))
    if data.holdout is not None:
        # whole held-out sources validate (early stopping, the threshold): no validation row comes from
        # a source the network trains on; an --upweight repeat only weights training rows (each once here)
        hold = data.holdout[origin]
        tr = np.flatnonzero(~hold)
        va = np.flatnonzero(hold)
        va = va[np.sort(np.unique(origin[va], return_index=True)[1])]
        if len(va) == 0 or len(tr) == 0:
            raise InputError("validation by source: the held-out sources leave no validation or no training rows")
    else:
        tr, va = stratified_split(y, cfg.val_fraction, rng)
    rows["train"], rows["validation"] = int(len(tr)), int(len(va))
    rows["validation_by_source"] = data.holdout is not None
    rows["train_class_counts"] = {c: int(n) for c, n in zip(data.classes, np.bincount(y[tr], minlength=k))}
    if len(np.unique(y[tr])) < 2:
        raise InputError("training data holds fewer than two classes after preprocessing; nothing to learn")
    mean, std = fit_scaler(X[tr], cfg.scale_floor)
    if init is not None:
        unread = ~np.any(init.tensors["layers.0.weight"] != 0, axis=0)
        mean = np.where(unread, mean, np.asarray(init.meta["scaler_mean"], dtype=mean.dtype))
        std = np.where(unread, std, np.asarray(init.meta["scaler_std"], dtype=std.dtype))
    Xs = ((X - mean) / std).astype(np.float32)
    Xt, yt = torch.from_numpy(Xs[tr]), torch.from_numpy(y[tr])
    Xv, yv = torch.from_numpy(Xs[va]), y[va]

    model = build_model(ModelConfig(X.shape[1], k, cfg.hidden, cfg.dropout))
    if init is not None:
        model.load_state_dict({kk: torch.from_numpy(np.array(v)) for kk, v in init.tensors.items()})
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    weight = (torch.tensor(class_weights(y[tr], k, cfg.class_weight_power), dtype=torch.float32)
              if cfg.class_weight_power else None)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    gen = torch.Generator().manual_seed(seed)
    n = len(yt)
    steps = math.ceil(n / cfg.batch_size)
    ema = None
    if cfg.weight_ema_epochs > 0:  # Polyak averaging: the averaged weights are validated and kept
        ema = copy.deepcopy(model).eval()  # a copy draws no random numbers: the training run is unchanged
        ema_params = list(ema.parameters())
        horizon = max(cfg.weight_ema_epochs * steps, 1.0)
        updates = 0
    history: list[dict] = []
    best = (-1.0, math.inf)
    best_state, best_epoch, best_proba = None, 0, None
    stale = 0
    progress = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), console=console, transient=True)
    with progress:
        for epoch in range(1, cfg.epochs + 1):
            task = progress.add_task("train", total=steps, epoch=epoch, loss=0.0)
            model.train()
            perm = torch.randperm(n, generator=gen)
            tot_loss = 0.0
            correct = 0
            for s in range(steps):
                idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                xb, yb = Xt[idx], yt[idx]
                opt.zero_grad(set_to_none=True)
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                if ema is not None:
                    updates += 1
                    # warm-up (fewer than `horizon` updates: a plain running mean), then decay 1 - 1/horizon
                    d = min(1.0 - 1.0 / horizon, (updates - 1) / updates)
                    with torch.no_grad():
                        for pe, pm in zip(ema_params, model.parameters()):
                            pe.mul_(d).add_(pm.detach(), alpha=1.0 - d)
                tot_loss += loss.item() * len(idx)
                correct += int((out.argmax(1) == yb).sum())
                if s % 200 == 0 or s == steps - 1:
                    progress.update(task, completed=s + 1, loss=tot_loss / min(n, (s + 1) * cfg.batch_size))
            progress.remove_task(task)
            model.eval()
            judged = model if ema is None else ema
            with torch.inference_mode():
                logits = torch.cat([judged(Xv[i:i + 65536]) for i in range(0, len(Xv), 65536)])
                val_loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(yv)))
                proba = torch.softmax(logits, 1).numpy()
            val = summarize(yv, proba.argmax(1), None, data.classes, data.classes.index(data.normal_class))
            rec = {"epoch": epoch, "loss": round(tot_loss / n, 6), "accuracy": round(correct / n, 6),
                   "val_loss": round(val_loss, 6), "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]}
            history.append(rec)
            console.print(f"epoch {epoch:>3}  loss {rec['loss']:.4f}  acc {rec['accuracy']:.4f}  "
                          f"val_loss {rec['val_loss']:.4f}  val_acc {rec['val_accuracy']:.4f}  "
                          f"val_macro_f1 {rec['val_macro_f1']:.4f}")
            score = (val["macro_f1"], -val_loss)
            if cfg.early_stopping_patience is None or score > best:
                best = score
                best_state = {kk: v.detach().clone() for kk, v in judged.state_dict().items()}
                best_epoch, best_proba = epoch, proba
                stale = 0
            else:
                stale += 1
                if stale >= cfg.early_stopping_patience:
                    console.print(f"early stop: no validation improvement for {stale} epochs (best epoch {best_epoch})")
                    break
    tensors = {kk: v.numpy().astype(np.float32) for kk, v in best_state.items()}
    return FitResult(tensors, mean, std, history, best_epoch, best_proba, yv, rows, origin[va])


@dataclass(frozen=True)
class TrainRequest:
    """What ``iotwatch train`` asks for (cli/commands/train.py builds it from the command line)."""
    out: str
    captures: Sequence[str] | None = None
    csv: str | None = None
    schema: str | None = None
    preset: str = "default"
    epochs: int | None = None
    seed: int = 0
    max_rows_per_class: int | None = None
    upweight: Sequence[str] = ()
    upweight_factor: int = 10
    cache: str | None = None      # folder of cached per-capture feature rows (featurise_capture)
    per_source: bool = False      # --max-rows-per-class per (--captures PATH, class)
    eval: Sequence[str] | None = None
    name: str | None = None
    model_version: str = "1"
    force: bool = False
    report: str | None = None  # folder for the training report's figures and tables
    val_sources: float | None = None  # hold out whole sources (this fraction of each family) for validation
    weight_ema: float | None = None   # average the weights over this many epochs (TrainConfig.weight_ema_epochs)
    class_weight_power: float | None = None  # None = the preset's (TrainConfig.class_weight_power)
    init: str | None = None       # continue training this bundle's network (same features, classes, layers)
    lr: float | None = None       # None = the preset's (TrainConfig.lr)


def train(args: TrainRequest, console, command: str) -> Path:
    """Check the request, read the data, fit, calibrate, evaluate and write the bundle; returns its path.
    ``console``: a rich Console for progress and the metric tables; ``command`` is recorded in the bundle."""
    if bool(args.captures) == bool(args.csv):
        raise InputError("train: give labelled --captures or a --csv, one of the two")
    cfg = PRESETS[args.preset]
    if args.epochs is not None:
        if args.epochs < 1:
            raise InputError(f"train: --epochs must be >= 1, got {args.epochs}")
        cfg = replace(cfg, epochs=args.epochs)
    if args.val_sources is not None:
        if not 0 < args.val_sources < 1:
            raise InputError(f"train: --val-sources must be a fraction between 0 and 1, got {args.val_sources}")
        if not args.captures:
            raise InputError("train: --val-sources holds out capture sources; it needs --captures")
        cfg = replace(cfg, val_sources=args.val_sources)
    if args.weight_ema is not None:
        if not args.weight_ema >= 0:
            raise InputError(f"train: --weight-ema must be >= 0 epochs, got {args.weight_ema}")
        cfg = replace(cfg, weight_ema_epochs=args.weight_ema)
    if args.class_weight_power is not None:
        if not 0 <= args.class_weight_power <= 2:
            raise InputError(f"train: --class-weight-power must be between 0 and 2, got {args.class_weight_power}")
        cfg = replace(cfg, class_weight_power=args.class_weight_power)
    if args.lr is not None:
        if not 0 < args.lr <= 1:
            raise InputError(f"train: --lr must be in (0, 1], got {args.lr}")
        cfg = replace(cfg, lr=args.lr)
    init = None
    if args.init is not None:
        init = load_bundle(args.init)
        if cfg.featurizer != init.meta["featurizer"] or list(cfg.hidden) != list(init.config.hidden):
            raise InputError(f"train: --init {args.init} is a {init.meta['featurizer']} network with hidden layers "
                             f"{list(init.config.hidden)}; the {cfg.preset} preset trains {cfg.featurizer} "
                             f"{list(cfg.hidden)}")
    if args.max_rows_per_class is not None and args.max_rows_per_class < 10:
        raise InputError("train: --max-rows-per-class must be >= 10")
    if args.csv and args.schema != "kaggle":
        raise InputError("train: --csv needs --schema kaggle (the seed paper's 14-column CSV)")
    out = Path(args.out)
    from iotwatch.captures.files import plan_outputs

    from .bundle import check_bundle_name

    if args.name is not None:
        check_bundle_name(args.name)
    check_bundle_name(args.model_version, "version")
    if not out.parent.exists() and not os.path.islink(out.parent):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the folder of --out {out}: {e.strerror}") from None
    # never a device node, FIFO, folder or an input; claimed now, so a second run on the same --out is
    # refused before it trains (train --out /dev/null --force once replaced the device node)
    out_file = plan_outputs([(out, "model bundle")], args.force, _train_inputs(args))["model bundle"]
    out_file.reserve()
    try:
        return _train(args, console, command, cfg, out, out_file, init)
    except BaseException:
        out_file.discard()
        raise


def source_families(captures: Sequence[str], upweight: Sequence[str]) -> tuple[dict[str, list[str]], dict[Path, str]]:
    """(families for validation_sources, the source unit of every capture file) of a train request:
    each --captures folder is a family whose units are its recordings (source_unit: a recording and its
    derived views are one), the --captures files named directly one family, and the --upweight PATHs
    one family whose units are the PATHs (a real repository's folder is ONE source)."""
    families: dict[str, list[str]] = {}
    unit_of: dict[Path, str] = {}
    for arg in captures:
        p = Path(arg)
        fam = f"captures {p}" if p.is_dir() else "captures"
        for f in find_captures([arg]):
            unit_of.setdefault(f, source_unit(f))
            families.setdefault(fam, []).append(unit_of[f])
    for arg in upweight:
        p = Path(arg)
        for f in find_captures([arg]):
            unit_of.setdefault(f, p.name if p.is_dir() else source_unit(f))
            families.setdefault("upweight", []).append(unit_of[f])
    return families, unit_of


def _train_inputs(args) -> list[str]:
    """Every file this run reads (no --out may replace one of them)."""
    paths = []
    for group in (args.captures, args.upweight, args.eval):
        for p in group or []:
            q = Path(p)
            paths += [str(x) for x in q.rglob("*")] if q.is_dir() else [str(q)]
    for one in (args.csv, args.init):
        if one:
            paths.append(one)
    return paths


def _train(args: TrainRequest, console, command: str, cfg, out: Path, out_file, init=None) -> Path:
    if args.csv:   # a FIFO blocked in open(), /dev/zero was read without end
        require_regular_input(args.csv, "CSV", hint="check the --csv path")
    for folder, what in ((args.cache, "--cache folder"), (args.report, "--report folder")):
        if folder:   # checked before training, not found at the end (a traceback after the whole run)
            check_output_folder(folder, what)
    eval_paths = find_captures(args.eval) if args.eval else []
    if args.upweight and not args.captures:
        raise InputError("train: --upweight adds to --captures; it needs --captures too")
    if args.upweight_factor < 1:
        raise InputError(f"train: --upweight-factor must be >= 1, got {args.upweight_factor}")
    if args.captures:
        paths = find_captures(args.captures)
        heavy = find_captures(args.upweight) if args.upweight else []
        overlap = set(map(Path.resolve, paths + heavy)) & set(map(Path.resolve, eval_paths))
        if overlap:
            raise InputError(f"train: {sorted(overlap)[0]} is both a training and an --eval capture")
        if set(map(Path.resolve, paths)) & set(map(Path.resolve, heavy)):
            raise InputError("train: a capture is given both in --captures and --upweight")
        console.print(f"reading {len(paths) + len(heavy)} capture(s) with the {cfg.featurizer} featurizer")
        cache = Path(args.cache) if args.cache else None
        data = load_captures(paths, CONTRACT_CLASSES, cfg.featurizer, console, cache)
        if args.per_source:
            group_of: dict[Path, int] = {}
            for g, arg in enumerate(args.captures):
                for f in find_captures([arg]):
                    group_of.setdefault(f, g)
            gids = [group_of[f] for f in paths]  # data.sources follow paths
            for src, g in zip(data.sources, gids):
                src["source_group"] = Path(args.captures[g]).name
            data.groups = np.repeat(gids, [src["labelled"] for src in data.sources]).astype(np.int64)
        if heavy:
            extra = load_captures(heavy, CONTRACT_CLASSES, cfg.featurizer, console, cache)
            f = args.upweight_factor
            for src in extra.sources:
                src["upweight"] = f
            groups = None
            if data.groups is not None:  # each --upweight PATH is a source too (capped, then repeated)
                hgroup: dict[Path, int] = {}
                for g, arg in enumerate(args.upweight):
                    for f_ in find_captures([arg]):
                        hgroup.setdefault(f_, len(args.captures) + g)
                hg = [hgroup[f_] for f_ in heavy]
                for src, g in zip(extra.sources, hg):
                    src["source_group"] = Path(args.upweight[g - len(args.captures)]).name
                groups = np.concatenate([data.groups, np.repeat(hg, [src["labelled"] for src in extra.sources])])
            data = Dataset(np.concatenate([data.X, extra.X]), np.concatenate([data.y, extra.y]),
                           data.classes, data.normal_class, data.sources + extra.sources,
                           repeat=np.concatenate([np.ones(len(data.y), np.int64), np.full(len(extra.y), f, np.int64)]),
                           groups=groups)
        if cfg.val_sources is not None:
            families, unit_of = source_families(args.captures, args.upweight or [])
            held = set(validation_sources(families, cfg.val_sources))
            if not held:
                raise InputError(f"train: --val-sources {cfg.val_sources} holds out no source",
                                 hint="it needs a --captures folder of several recordings or several --upweight "
                                      "sources (each family keeps at least one source for training)")
            flags = [unit_of[f] in held for f in paths + heavy]  # data.sources follow paths, then heavy
            for src, flag in zip(data.sources, flags):
                if flag:
                    src["validation_source"] = True
            data.holdout = np.repeat(flags, [src["labelled"] for src in data.sources]).astype(bool)
            console.print(f"validation: {len(held)} whole source(s) held out: {', '.join(sorted(held))}")
    else:
        data = load_kaggle(args.csv, cfg.featurizer)
    counts = np.bincount(data.y, weights=data.repeat, minlength=len(data.classes)).astype(np.int64)
    console.print("labelled rows: " + ", ".join(f"{c} {n:,}" for c, n in zip(data.classes, counts)))

    if init is not None and list(init.meta["classes"]) != list(data.classes):
        raise InputError(f"train: --init {args.init} has the classes {init.meta['classes']}, this data "
                         f"{list(data.classes)}")
    res = fit(data, cfg, args.seed, console, args.max_rows_per_class, init)
    normal_index = data.classes.index(data.normal_class)
    threshold = 0.5
    if cfg.calibrate_false_alarms is not None:
        from .anomaly import calibrate_threshold

        threshold = calibrate_threshold(res.val_proba[res.val_y == normal_index], normal_index,
                                        cfg.calibrate_false_alarms)
        if threshold >= 1.0:   # measured with --val-sources 0.2: unseen sources' benign rows are called attacks
            console.print(f"[bold red]WARNING:[/] more than {cfg.calibrate_false_alarms:.2%} of the validation "
                          "normal packets are called an attack with certainty: the anomaly threshold is 1.0 and "
                          "this bundle will raise almost no alert")
    validation = summarize(res.val_y, res.val_proba.argmax(1), res.val_proba, data.classes, normal_index)
    model_cfg = ModelConfig(data.X.shape[1], len(data.classes), cfg.hidden, cfg.dropout)
    training = {
        "preset": cfg.preset, "config": {**asdict(cfg), "hidden": list(cfg.hidden)}, "seed": args.seed,
        "command": command, "data": data.sources, "rows": res.rows,
        "max_rows_per_class": args.max_rows_per_class, "per_source": bool(args.per_source), "epochs_run": len(res.history),
        "best_epoch": res.best_epoch, "history": res.history,
    }
    if init is not None:
        # the network was trained on the init's data too: its sources (and its own chain) travel with the bundle,
        # so `iotwatch model show` and the model card list every capture the weights have seen
        earlier = init.meta.get("training") or {}
        training["init"] = {"bundle": init.display_name, "sha256": sha256_file(args.init),
                            "data": earlier.get("data", []),
                            **{k: earlier[k] for k in ("init", "derived_from") if k in earlier}}
    if data.holdout is not None:
        training["validation_sources"] = sorted({src["file"] for src in data.sources if src.get("validation_source")})
    meta = make_meta(name=args.name or default_name(cfg.preset), version=args.model_version, classes=data.classes,
                     featurizer=cfg.featurizer, scaler_mean=res.mean, scaler_std=res.std, config=model_cfg,
                     normal_class=data.normal_class, anomaly_threshold=threshold, training=training,
                     metrics={"validation": validation}, flow_vote=cfg.flow_vote,
                     pair_vote=pair_vote_meta(cfg.pair_vote, data.classes))
    if eval_paths:
        from .classifier import PacketClassifier

        clf = PacketClassifier(Bundle(model_cfg, res.tensors, meta))
        held = []
        for p in eval_paths:
            r = evaluate_capture(clf, p)
            r["capture"] = p.name
            held.append(r)
        meta["metrics"]["held_out"] = held
    save_bundle(out, res.tensors, meta, output=out_file)
    print_metrics(console, meta["metrics"], data.classes)
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes), anomaly threshold {threshold:.4f}")
    warn_if_useless(console, validation)
    if args.report:
        from .train_report import RunRecord, write_report

        curve = learning_curve(data, cfg, args.seed, args.max_rows_per_class, res)
        files = write_report(RunRecord(list(data.classes), res.history, res.val_y, res.val_proba, meta, curve),
                             args.report)
        console.print(f"wrote the training report: {files[-3]} ({len(files)} files in {args.report})")
    return out


USELESS_MACRO_F1 = 0.6


def default_name(preset: str) -> str:
    """A trained bundle's default name: never the bundled models' ``iotwatch-*`` names."""
    return f"custom-{preset}"


def warn_if_useless(console, validation: dict) -> bool:
    """A loud warning when the validation macro-F1 says the model is not worth using."""
    if validation["macro_f1"] >= USELESS_MACRO_F1:
        return False
    console.print(f"[bold red]WARNING:[/] validation macro-F1 {validation['macro_f1']:.3f} is below "
                  f"{USELESS_MACRO_F1}: this model misclassifies most classes; check the labels and the "
                  "class balance of the training data before using it")
    return True


def learning_curve(data: Dataset, cfg: TrainConfig, seed: int, max_rows_per_class: int | None, full: FitResult):
    """Loss vs training-set size: the same recipe on stratified fractions of the rows (at most 8 epochs
    each, quietly), plus the full run's best epoch."""
    import io

    from rich.console import Console

    from .train_report import CurvePoint, curve_fractions

    def point(fraction: float, res: FitResult) -> CurvePoint:
        best = res.history[res.best_epoch - 1]
        return CurvePoint(fraction, int(res.rows["train"]), best["loss"], best["val_loss"], best["val_macro_f1"])

    quiet = Console(file=io.StringIO())
    short = replace(cfg, epochs=min(cfg.epochs, 8))
    rng = np.random.default_rng(seed)
    points = []
    for f in curve_fractions(full.rows["train"]):
        _, idx = stratified_split(data.y, f, rng)
        idx = np.sort(idx)
        sub = Dataset(data.X[idx], data.y[idx], data.classes, data.normal_class, data.sources,
                      None if data.repeat is None else data.repeat[idx])
        if len(np.unique(sub.y)) < 2:
            continue
        points.append(point(f, fit(sub, short, seed, quiet, max_rows_per_class)))
    points.append(point(1.0, full))
    return points


def print_metrics(console, metrics: dict, classes: Sequence[str]) -> None:
    from rich.table import Table

    blocks = [("validation split", metrics["validation"])]
    blocks += [(f"held-out {r['capture']}", r) for r in metrics.get("held_out", [])]
    for title, m in blocks:
        t = Table(title=f"{title}: macro-F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}, "
                        f"false alarms {m['false_alarm_rate'] * 100:.3f}% of normal", show_edge=False)
        for col in ("class", "support", "precision", "recall", "f1", "roc_auc"):
            t.add_column(col, justify="left" if col == "class" else "right")
        auc = m.get("roc_auc_ovr", {})
        for c in classes:
            pc = m["per_class"][c]
            if pc["support"] == 0 and pc["precision"] == 0:
                continue
            t.add_row(c, f"{pc['support']:,}", f"{pc['precision']:.4f}", f"{pc['recall']:.4f}", f"{pc['f1']:.4f}",
                      f"{auc[c]:.4f}" if c in auc else "-")
        console.print(t)

