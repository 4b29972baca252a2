"""Cross-source generalisation matrix and feature-block ablation (issue 12).

    nice .venv/bin/python bench/generalisation.py --sim-train D/sim-train --sim-held D/sim-held \
        --lab-train LAB/train --lab-held LAB/held --real /work/shared/data/real \
        [--manifest captures/real/manifest.csv] [--cache DIR] [--rows-per-class 20000] [--epochs 8]
        [--ablation] [--json OUT.json] [--only-cache]

Trains the bundled model's network (``detector.train.fit``, the default preset: behaviour-v2 features,
scaler std floor, label smoothing) on

* ``sim``            simulator training captures only,
* ``lab``            namespace-lab training recordings only,
* ``sim+lab``        both,
* ``sim+lab+real``   both plus the TRAIN part of the real-world set (captures/real/manifest.csv,
                     ``split=train``; the ``eval`` part is never trained on),

and tests each on the simulator held-out captures, the lab held-out recordings and the real EVAL
part (per source repository and overall): macro-F1 (over the classes present in the labels, as
bench/realworld.py), benign packets flagged (% of normal-labelled frames predicted as an attack),
attack packets flagged (% of attack frames predicted as any attack class), per-class F1. Predictions
are the argmax, as ``iotwatch --predictions`` writes them.

Reduced size (CPU is scarce): at most ``--rows-per-class`` random rows per (source group, class) --
the simulator is one group, the lab one, each real repository one -- and at most ``--epochs`` epochs
(early stopping as the default preset). The final bundle is trained by bench/train_default.sh with
larger caps; the numbers here are for comparing recipes and feature blocks, not the bundle's.

Comparing recipes: ``--seeds 0,1,2`` trains every config once per seed (the features read once),
``--variants 'base;src:val_sources=0.2;ema:weight_ema_epochs=1'`` once per variant (TrainConfig fields),
and a summary table prints each run's sim/lab/real numbers, the benign case captures' frames called
exfiltration (argmax / above the threshold calibrated on the run's validation rows, as ``iotwatch``
alerts) and that threshold. ``--val-sources F`` validates on whole held-out training sources
(detector.train.validation_sources) instead of random rows.

``--ablation`` retrains the ``sim+lab+real`` recipe once per feature block with that block's columns
removed (features.FEATURE_BLOCKS) and reports the change of each cross-source number; ``--blocks`` picks
blocks or parts of one (``conn/svc_``: its columns starting with ``svc_``). A retrain's seed-to-seed spread
is large, so run the ablation with several ``--seed`` values and summarise their --json outputs with
``--combine A.json B.json ...`` (mean change per block next to the baselines' seed spread; files of the
same seed, e.g. a second run with other ``--blocks``, count as one seed).

``--model BUNDLE --permute`` (no training): permutation importance of the bundle -- each block's columns
shuffled jointly (one row permutation for the block) within each test capture and/or across each test
part (``--permute-scope``; most real files are labelled as a whole, so only the part scope removes what a
block says about a file's class), fixed rng; ``--permute-columns BLOCK,..`` does the same per column.
``--lab-victim DIR``: the victim view of the lab recordings (bench/lab_victim_view.py), trained as its
own source group as bench/train_default.sh does.

Features are computed once per capture (the same streaming extractor as a replay, one per capture;
unlabelled frames still feed the context) and cached under ``--cache`` as ``iotwatch train --cache``
does (detector/featcache.py): the rows keyed by the capture's sha256, its labels and the feature code,
the parsed tshark batches (``batches/``) keyed without the feature code, so after a feature change the
rows are rebuilt without tshark. ``--only-cache`` fills both levels and stops.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
RECIPES = {"sim": ["sim-train"], "lab": ["lab-train"], "sim+lab": ["sim-train", "lab-train"],
           "sim+real": ["sim-train", "real-train"], "sim+lab+real": ["sim-train", "lab-train", "real-train"]}
SUFFIXES = (".pcap", ".pcapng", ".cap")


def featurise(path: Path, cache: Path, log=print) -> tuple[np.ndarray, np.ndarray]:
    """(X float32, y int8 with -1 = unlabelled) for every frame of ``path``, cached (the cache of
    ``iotwatch train --cache``: the same files serve both)."""
    from iotwatch.detector.features import FEATURIZER_VERSION
    from iotwatch.detector.train import featurise_capture

    t0 = time.time()
    X, y, _ = featurise_capture(path, CLASSES, FEATURIZER_VERSION, cache)
    if time.time() - t0 > 2:
        log(f"  featurised {path} ({len(y):,} frames, {int((y >= 0).sum()):,} labelled) in {time.time() - t0:.0f} s")
    return X, y


def _captures(folders) -> list[tuple[str, Path]]:
    """(folder name, capture) for every labelled capture under the folders."""
    out = []
    for folder in folders or []:
        p = Path(folder)
        if p.is_dir():
            out += [(p.name, f) for f in sorted(p.rglob("*")) if f.is_file() and f.name.endswith(SUFFIXES)
                    and Path(str(f) + ".labels.csv").is_file()]
    return out


def local_name(path: str) -> str:
    """captures/real/extract.py's file naming."""
    member = path.split("#", 1)[1] if "#" in path else path
    name = member.replace("/", "__").replace(" ", "_")
    return name[:-3] if name.endswith(".gz") else name


def real_parts(data: str | None, manifest: Path) -> dict[str, list[tuple[str, Path]]]:
    """{"train": [(source, path)], "eval": [...]} for manifest rows present under ``data``."""
    out: dict[str, list[tuple[str, Path]]] = {"train": [], "eval": []}
    if not data or not manifest.is_file():
        return out
    with open(manifest, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            f = Path(data) / r["source"] / local_name(r["path"])
            if f.is_file() and Path(str(f) + ".labels.csv").is_file() and r["split"] in out:
                out[r["split"]].append((r["source"], f))
    return out


# ---------------------------------------------------------------------------------------------------
# metrics (the definitions of bench/realworld.py)
# ---------------------------------------------------------------------------------------------------
def score(y: np.ndarray, pred: np.ndarray, alert: np.ndarray | None = None) -> dict:
    """``alert`` (bool per frame, optional): the frame is an anomaly under the model's calibrated
    threshold (detector/anomaly.py: non-normal argmax at least that sure), as `iotwatch` alerts."""
    ok = y >= 0
    if alert is not None:
        alert = alert[ok]
    y, pred = y[ok].astype(np.int64), pred[ok].astype(np.int64)
    k = len(CLASSES)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    present = [c for c in range(k) if cm[c].sum()]
    per_class = {}
    for c in present:
        tp, sup, npred = cm[c, c], cm[c].sum(), cm[:, c].sum()
        prec = tp / npred if npred else 0.0
        rec = tp / sup if sup else 0.0
        per_class[CLASSES[c]] = round(2 * prec * rec / (prec + rec) if prec + rec else 0.0, 4)
    normal_n = cm[0].sum()
    attack_n = cm[1:].sum()
    extra = {}
    if alert is not None:  # benign frames alerted, by predicted class
        a = alert & (y == 0)
        extra["benign_alerted"] = {CLASSES[c]: int(n) for c, n in enumerate(np.bincount(pred[a], minlength=k)) if n}
    return extra | {
        "frames": int(len(y)),
        "macro_f1": round(float(np.mean(list(per_class.values()))), 4) if per_class else None,
        "benign_flagged_pct": round(100 * (normal_n - cm[0, 0]) / normal_n, 3) if normal_n else None,
        "attack_flagged_pct": round(100 * cm[1:, 1:].sum() / attack_n, 3) if attack_n else None,
        "per_class_f1": per_class,
        "confusion": cm.tolist(),
    }


# ---------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------
def sample_rows(groups: list[tuple[str, np.ndarray]], cap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the concatenation of the groups' label arrays) keeping at most ``cap`` random
    labelled rows per (group, class)."""
    from iotwatch.detector.train import cap_per_class

    keep, offset = [], 0
    for _, y in groups:
        lab = np.flatnonzero(y >= 0)
        sel = lab[cap_per_class(y[lab].astype(np.int64), cap, rng)]
        keep.append(sel + offset)
        offset += len(y)
    return np.concatenate(keep) if keep else np.zeros(0, np.int64), np.array([])


def take_rows(arrays: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    """``np.concatenate(arrays)[idx]`` without building the concatenation (all training captures'
    rows at once: ~4 GB more at peak, which got the run OOM-killed beside other jobs)."""
    bounds = np.cumsum([0] + [len(a) for a in arrays])
    out = np.empty((len(idx), arrays[0].shape[1]), dtype=arrays[0].dtype)
    which = np.searchsorted(bounds, idx, side="right") - 1
    for k in np.unique(which):
        sel = which == k
        out[sel] = arrays[k][idx[sel] - bounds[k]]
    return out


def vote_inputs(path: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flow key, time, host-pair key) of every frame of ``path``, what the flow vote (detector/flowvote.py)
    needs beside the probabilities: from the feature cache's parsed batches when it holds them, else read with
    tshark."""
    from iotwatch.captures.labels import LabelSet
    from iotwatch.captures.sources import open_source
    from iotwatch.detector import featcache
    from iotwatch.detector.flowvote import vote_keys
    from iotwatch.detector.train import capture_digests

    digests = capture_digests(path, LabelSet.load(CLASSES, capture=path))   # the keys featurise's entries have
    file, key = featcache.batch_cache_file(Path(cache), path, *digests)
    stored = featcache.load_batches(file, key)
    if stored is not None:
        batches = [b for b, _ in stored]
    else:
        src = open_source(read=str(path))
        try:
            batches = list(src.batches(max_rows=8192, max_wait=1.0))
        finally:
            src.close()
    keys = [vote_keys(b) for b in batches]
    times = [np.asarray(b["time_epoch"], dtype=np.float64) for b in batches]
    return (np.concatenate([k[0] for k in keys]) if keys else np.empty(0, np.uint64),
            np.concatenate(times) if times else np.empty(0),
            np.concatenate([k[1] for k in keys]) if keys else np.empty(0, np.uint64))


class Trained:
    """``vote``: the flow vote's alpha (0 = none) and ``pair`` its ``PairVote`` (None = none), applied when
    predict_alert gets the frames' flow keys."""

    def __init__(self, mlp, cols: np.ndarray, threshold: float | None = None, vote: float = 0.0, pair=None):
        self.mlp, self.cols, self.threshold, self.vote, self.pair = mlp, cols, threshold, vote, pair

    def predict(self, X: np.ndarray, flows=None) -> np.ndarray:
        return self.predict_alert(X, flows)[0]

    def predict_alert(self, X: np.ndarray, flows=None) -> tuple[np.ndarray, np.ndarray | None]:
        """(argmax, alerted under the calibrated threshold or None without one). ``flows``: (keys, times) of
        the capture's frames and their host-pair keys (vote_inputs): with a vote, each frame's probabilities are
        voted as `iotwatch` votes them (one FlowVote over the capture, in frame order)."""
        from iotwatch.detector.flowvote import new_vote

        vote = new_vote(self.vote, self.pair) if flows is not None else None
        if vote is not None and len(flows[0]) != len(X):
            raise ValueError(f"flow keys for {len(flows[0])} frames, features for {len(X)}")
        out = np.empty(len(X), np.int64)
        conf = np.empty(len(X), np.float32)
        for s in range(0, len(X), 65536):
            p = self.mlp.proba(np.ascontiguousarray(X[s:s + 65536][:, self.cols]))
            if vote is not None:
                p = vote.update(flows[0][s:s + 65536], flows[1][s:s + 65536], p, flows[2][s:s + 65536])
            out[s:s + 65536] = p.argmax(1)
            conf[s:s + 65536] = p.max(1)
        if self.threshold is None:
            return out, None
        return out, (out != 0) & (conf >= self.threshold)


def train(X: np.ndarray, y: np.ndarray, cols: np.ndarray, epochs: int, seed: int, class_weight_power: float,
          holdout: np.ndarray | None = None, **overrides) -> Trained:
    """fit() with the default preset (patience 3); ``holdout`` (bool per row): validate on these rows
    (whole held-out sources, --val-sources) instead of random rows; ``overrides``: TrainConfig fields."""
    from dataclasses import replace

    from rich.console import Console

    from iotwatch.detector.anomaly import calibrate_threshold
    from iotwatch.detector.bundle import pair_vote_meta
    from iotwatch.detector.flowvote import PairVote
    from iotwatch.detector.model import FoldedMLP, ModelConfig
    from iotwatch.detector.train import PRESETS, Dataset, fit

    overrides = dict(overrides)
    refit = bool(overrides.pop("refit", 0))     # then train on ALL rows for the epochs the held-out sources chose
    drop = bool(overrides.pop("drop_held", 0))  # control: the held-out sources' rows unused, random-row validation
    base = PRESETS["default"]
    fields = {"epochs": epochs, "early_stopping_patience": 3, "class_weight_power": class_weight_power, **overrides}
    fields = {k: int(v) if isinstance(getattr(base, k), int) and v is not None else v for k, v in fields.items()}
    cfg = replace(base, **fields)
    Xc = np.ascontiguousarray(X[:, cols])
    y = y.astype(np.int64)
    if drop and holdout is not None:
        Xc, y, holdout = Xc[~holdout], y[~holdout], None
    data = Dataset(Xc, y, list(CLASSES), "normal", [], holdout=holdout)
    res = fit(data, cfg, seed, Console(quiet=True))
    mcfg = ModelConfig(len(cols), len(CLASSES), cfg.hidden, cfg.dropout)
    threshold = calibrate_threshold(res.val_proba[res.val_y == 0], 0, cfg.calibrate_false_alarms)
    history = [h["val_macro_f1"] for h in res.history]
    if refit and holdout is not None:
        again = replace(cfg, epochs=res.best_epoch, early_stopping_patience=None, val_fraction=0.0)
        res = fit(Dataset(Xc, y, list(CLASSES), "normal", []), again, seed, Console(quiet=True))
    out = Trained(FoldedMLP.from_tensors(mcfg, res.tensors, res.mean, res.std), cols, threshold, cfg.flow_vote,
                  PairVote.from_meta(pair_vote_meta(cfg.pair_vote, CLASSES), CLASSES, "normal"))
    out.best_epoch, out.val_history = res.best_epoch, history
    return out


def evaluate(model: Trained, tests: dict[str, list[tuple[str, np.ndarray, np.ndarray]]], on_pred=None,
             shuffle=None, flows: dict | None = None) -> dict:
    """{test part: {"all": metrics, per source: metrics}}. ``on_pred(part, i, pred)``: also hands each
    test capture's predictions (the i-th of its part) to the caller (--save-pred). ``shuffle(part, i, X)``
    (PartShuffle, --permute): the model sees that instead of each capture's X, one shuffled capture in
    memory at a time."""
    out = {}
    for part, items in tests.items():
        if not items:
            continue
        by_src: dict[str, list] = {}
        for i, (src, X, y) in enumerate(items):
            pred, alert = model.predict_alert(X if shuffle is None else shuffle(part, i, X),
                                              None if flows is None else flows.get((part, i)))
            if on_pred is not None:
                on_pred(part, i, pred)
            by_src.setdefault(src, []).append((y, pred, alert))
        res = {}
        ys_all, ps_all, as_all = [], [], []
        for src, triples in sorted(by_src.items()):
            ys = np.concatenate([a for a, _, _ in triples])
            ps = np.concatenate([b for _, b, _ in triples])
            al = None if triples[0][2] is None else np.concatenate([c for _, _, c in triples])
            ys_all.append(ys)
            ps_all.append(ps)
            as_all.append(al)
            if len(by_src) > 1:
                res[src] = score(ys, ps, al)
        res["all"] = score(np.concatenate(ys_all), np.concatenate(ps_all),
                           None if as_all[0] is None else np.concatenate(as_all))
        out[part] = res
    return out


# ---------------------------------------------------------------------------------------------------
# permutation importance (--permute, --permute-columns: the bundle, no retraining)
# ---------------------------------------------------------------------------------------------------
def permute_columns(X: np.ndarray, cols, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``X`` whose columns ``cols`` are shuffled across the rows JOINTLY: one row permutation
    for all of them, so the block keeps its own joint distribution but loses its link to the other
    columns and to the label. ``X`` itself is not changed (it may be the cache's array)."""
    cols = np.asarray(cols, dtype=np.int64)
    out = np.array(X, dtype=X.dtype, copy=True)
    if len(X) > 1 and len(cols):
        out[:, cols] = X[rng.permutation(len(X))[:, None], cols[None, :]]
    return out


def block_columns(unit: str, blocks: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """--blocks entry -> its columns: ``BLOCK`` (all of the block's) or ``BLOCK/PREFIX`` (the block's columns
    whose name starts with PREFIX, e.g. ``conn/svc_``); () when it names nothing."""
    block, _, prefix = unit.partition("/")
    return tuple(c for c in blocks.get(block, ()) if c.startswith(prefix))


def permutation_units(names: list[str], blocks: dict[str, tuple[str, ...]], columns_of: list[str] | None) -> dict:
    """{unit label: column indices}: every block (``columns_of`` None), or the single columns of the
    blocks in ``columns_of`` (each preceded by its whole block, for reference)."""
    index = {n: i for i, n in enumerate(names)}
    if not columns_of:
        return {b: [index[c] for c in cols] for b, cols in blocks.items()}
    units = {}
    for b in columns_of:
        units[b] = [index[c] for c in blocks[b]]
        for c in blocks[b]:
            units[f"{b}:{c}"] = [index[c]]
    return units


HEADLINE = ("macro_f1", "benign_flagged_pct", "attack_flagged_pct")   # the numbers a comparison is judged on


def _headline(res: dict) -> dict:
    """{part: (macro-F1, benign flagged %, attack flagged %)} of an evaluate() result (None = absent)."""
    return {p: tuple(r["all"].get(k) for k in HEADLINE) for p, r in res.items()}


class PartShuffle:
    """``shuffle`` of evaluate(): the columns ``cols`` shuffled jointly within each test capture
    (``scope`` "capture") or across all rows of its test part (``scope`` "part": the captures'
    rows of the block pooled and permuted, so a capture labelled as one class as a whole -- most of the
    real part -- also loses what its block values say about its class). The rng of each (part, capture)
    or part is seeded by (seed, unit, repeat, part[, capture]) with ``unit`` the unit's POSITION in
    run_permutation's units and part/capture positions too: deterministic for the same flags, but a block's
    draws depend on where it stands in the list (--blocks order, --permute with or without
    --permute-columns)."""

    def __init__(self, tests: dict, cols, scope: str, seed: int, unit: int, repeat: int):
        self.tests, self.cols, self.scope = tests, np.asarray(cols, dtype=np.int64), scope
        self.key = [seed, unit, repeat]
        self.part_no = {p: k for k, p in enumerate(sorted(tests))}
        self._part, self._pool, self._bounds = None, None, None

    def __call__(self, part: str, i: int, X: np.ndarray) -> np.ndarray:
        if self.scope == "capture":
            return permute_columns(X, self.cols, np.random.default_rng(self.key + [self.part_no[part], i]))
        if part != self._part:   # pool the part's block once (only the block's columns)
            items = self.tests[part]
            pool = np.concatenate([x[:, self.cols] for _, x, _ in items])
            rng = np.random.default_rng(self.key + [self.part_no[part]])
            self._pool = pool[rng.permutation(len(pool))]
            self._bounds = np.cumsum([0] + [len(x) for _, x, _ in items])
            self._part = part
        out = np.array(X, copy=True)
        out[:, self.cols] = self._pool[self._bounds[i]:self._bounds[i + 1]]
        return out


def run_permutation(model: Trained, tests: dict, units: dict, seed: int, repeats: int, scope: str, base: dict,
                    log=print, flows: dict | None = None) -> dict:
    """Permutation importance: for each unit (columns) and repeat, the test parts scored with those columns
    shuffled (PartShuffle, ``scope``). ``base``: evaluate() without shuffling. Returns {label: {"columns":
    [...], "repeats": [evaluate(), ...], "mean_change": {part: [dF1, dbenign, dattack]}}}."""
    bh = _headline(base)
    out = {}
    for u, (label, cols) in enumerate(units.items()):
        t0 = time.time()
        reps = [evaluate(model, tests, shuffle=PartShuffle(tests, cols, scope, seed, u, r), flows=flows)
                for r in range(repeats)]
        change = {}
        heads = [_headline(x) for x in reps]
        for p, b in bh.items():
            vals = [h[p] for h in heads]
            change[p] = [None if b[k] is None else round(float(np.mean([v[k] for v in vals])) - b[k], 4)
                         for k in range(3)]
        out[label] = {"columns": [int(c) for c in cols], "repeats": reps, "mean_change": change}
        log(f"permuted {label} ({len(cols)} columns, within each {scope}): {time.time() - t0:.0f} s")
    return out


def print_permutation(base: dict, units: dict, title: str) -> None:
    parts = list(base)
    print(f"\n{title} (each cell: change of macro-F1 / benign flagged pp / attack flagged pp when the "
          "columns are shuffled; first row: unshuffled values)\n")
    print("| permuted | cols | " + " | ".join(parts) + " |")
    print("|---|---:|" + "---|" * len(parts))
    print("| (none) | | " + " | ".join(cell(base[p]["all"]) for p in parts) + " |")
    for label, r in units.items():
        cells = [" / ".join(sgn(v, 3 if k == 0 else 2) for k, v in enumerate(r["mean_change"][p])) for p in parts]
        print(f"| {label} | {len(r['columns'])} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def sgn(v, nd: int) -> str:
    return "-" if v is None else f"{v:+.{nd}f}"


def num(v, key: str) -> str:
    """A HEADLINE value: macro-F1 with 3 decimals, a percentage with 2 (no % sign); "-" when absent."""
    return "-" if v is None else f"{v:.3f}" if key == "macro_f1" else f"{v:.2f}"


def fmt(m: dict | None, key: str) -> str:
    """``m[key]`` as num(), percentages with their % sign."""
    v = None if not m else m.get(key)
    return num(v, key) + ("" if v is None or key == "macro_f1" else "%")


def cell(m: dict | None) -> str:
    """macro-F1 / benign flagged % / attack flagged % of one metrics dict (the unchanged rows)."""
    return " / ".join(fmt(m, k) for k in HEADLINE)


TEST_PARTS = ("sim-held", "lab-held", "real-eval", "cases")   # what a trained config or --model is scored on


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim-train", nargs="+", default=[])
    ap.add_argument("--sim-held", nargs="+", default=[])
    ap.add_argument("--lab-train", nargs="+", default=[])
    ap.add_argument("--lab-held", nargs="+", default=[])
    ap.add_argument("--cases", nargs="+", default=[], help="small case captures (tests/data/cases) to report "
                    "per file, never trained on")
    ap.add_argument("--real", help="data folder of the real-world set (captures/real/extract.py)")
    ap.add_argument("--manifest", default=str(ROOT / "captures" / "real" / "manifest.csv"))
    ap.add_argument("--cache", default="/work/data/featcache")
    ap.add_argument("--rows-per-class", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--class-weight-power", type=float, default=0.5)
    ap.add_argument("--real-repeat", type=int, default=1, help="repeat the real training rows N times (after the cap)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", help="comma-separated seeds: train every config (and variant) once per seed, the "
                                    "features read once (default: --seed)")
    ap.add_argument("--val-sources", type=float, help="validate on whole held-out training sources (this fraction "
                    "of each simulator folder's recordings, of the lab's recordings and of the real training "
                    "repositories; detector.train.validation_sources) instead of random rows")
    ap.add_argument("--variants", default="", help="recipe variants to compare, ';'-separated NAME:FIELD=VALUE,... "
                    "with FIELD a detector.train.TrainConfig field or real_repeat / val_sources, e.g. "
                    "'base;src:val_sources=0.2;ema:weight_ema_epochs=1' (default: one, the flags' recipe); also "
                    "refit=1 (after validating on held-out sources, train on all rows for the epochs they chose), "
                    "drop_held=1 (control: the held-out sources' rows unused, random-row validation), "
                    "sample_seed=N (the same row sample for every seed), drop_source=A+B (training sources left out), "
                    "drop_cols=P+Q (feature columns whose name starts with P or Q left out)")
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--configs", default="sim,lab,sim+lab,sim+lab+real")
    ap.add_argument("--blocks", help="comma-separated feature blocks for --ablation/--permute (default: all; "
                    "BLOCK/PREFIX: the block's columns starting with PREFIX). "
                    "--configs: comma-separated, of " + ", ".join(RECIPES) + "; --ablation retrains sim+lab+real "
                    "once per block with that block removed and needs sim+lab+real in --configs (the baseline)")
    ap.add_argument("--lab-victim", nargs="+", default=[], help="the victim's view of the lab training recordings "
                    "(bench/lab_victim_view.py LAB/train OUT), trained with the lab as its own source group")
    ap.add_argument("--permute", action="store_true", help="with --model: permutation importance of each feature "
                    "block (its columns shuffled jointly within each test capture), no retraining")
    ap.add_argument("--permute-columns", help="with --model: comma-separated blocks whose single columns are "
                    "permuted one at a time (each after its whole block)")
    ap.add_argument("--permute-repeats", type=int, default=1, help="shuffles per unit, the changes averaged")
    ap.add_argument("--permute-scope", default="capture,part", help="comma-separated: shuffle within each test "
                    "capture (a whole-file-labelled capture keeps its class's values) and/or across each test part")
    ap.add_argument("--combine", nargs="+", metavar="JSON", help="no training: the --json outputs of ablation "
                    "runs with different --seed, summarised (mean change per block vs the baseline's seed spread; "
                    "files of one seed merged)")
    ap.add_argument("--only-cache", action="store_true", help="featurise (fill the cache) and stop")
    ap.add_argument("--model", help="score this bundle on the test parts instead of training (no matrix)")
    ap.add_argument("--json")
    ap.add_argument("--save-pred", help="folder: write each trained config's argmax per frame of every test "
                                        "capture as CONFIG-CAPTURE.npy (error analysis)")
    args = ap.parse_args(argv)
    if args.combine:
        try:
            runs = [(f, json.loads(Path(f).read_text())) for f in args.combine]
        except (OSError, ValueError) as exc:
            print(f"generalisation: cannot read --combine input: {exc}", file=sys.stderr)
            return 2
        try:
            print_combined(runs)
        except ValueError as exc:
            print(f"generalisation: --combine: {exc}", file=sys.stderr)
            return 2
        return 0

    from iotwatch.detector.features import FEATURE_BLOCKS, FEATURE_NAMES

    configs = args.configs.split(",")
    bad = [c or "''" for c in configs if c not in RECIPES]   # '' (e.g. "sim,"): no such recipe either
    blocks = dict(FEATURE_BLOCKS)
    if args.blocks:
        blocks = {b: block_columns(b, FEATURE_BLOCKS) for b in args.blocks.split(",") if b}
        bad += [b for b, cols in blocks.items() if not cols]
    col_blocks = [b for b in (args.permute_columns or "").split(",") if b]
    bad += [b for b in col_blocks if b not in FEATURE_BLOCKS]
    if bad:
        print(f"generalisation: unknown config or block: {', '.join(bad)} (configs: {', '.join(RECIPES)}; "
              f"blocks: {', '.join(FEATURE_BLOCKS)})", file=sys.stderr)
        return 2
    if args.ablation and "sim+lab+real" not in configs:
        print("generalisation: --ablation needs sim+lab+real in --configs (its run is the baseline)", file=sys.stderr)
        return 2
    scopes = [x for x in args.permute_scope.split(",") if x]
    if not scopes or any(x not in ("capture", "part") for x in scopes) or args.permute_repeats < 1:
        print("generalisation: --permute-scope takes capture and/or part, --permute-repeats >= 1", file=sys.stderr)
        return 2
    if (args.permute or col_blocks) and not args.model:
        print("generalisation: --permute/--permute-columns score a bundle: give --model", file=sys.stderr)
        return 2
    clf = None
    if args.model:   # the bundle is checked before any capture is read
        from iotwatch.captures.errors import InputError
        from iotwatch.detector.classifier import PacketClassifier

        try:
            clf = PacketClassifier.load(args.model)
        except InputError as exc:
            print(f"generalisation: {exc}", file=sys.stderr)
            return 2
        if list(clf.feature_names_in_) != list(FEATURE_NAMES):
            print(f"generalisation: {args.model} was trained on other feature columns than the current code's",
                  file=sys.stderr)
            return 2

    import torch

    torch.set_num_threads(1)
    cache = Path(args.cache)
    real = real_parts(args.real, Path(args.manifest))
    files = {
        "sim-train": _captures(args.sim_train),
        "sim-held": _captures(args.sim_held),
        "lab-train": [("lab", f) for _, f in _captures(args.lab_train)]
        + [("lab-victim", f) for _, f in _captures(args.lab_victim)],
        "lab-held": [("lab", f) for _, f in _captures(args.lab_held)],
        "real-train": real["train"],
        "real-eval": real["eval"],
        "cases": [(f.name.split(".")[0], f) for _, f in _captures(args.cases)],
    }
    print("captures: " + ", ".join(f"{k} {len(v)}" for k, v in files.items()), flush=True)
    feats: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for part, items in files.items():
        feats[part] = []
        if clf is not None and part not in TEST_PARTS:   # a bundle is only scored: its training data unread
            continue
        for src, f in items:
            X, y = featurise(f, cache, log=lambda s: print(s, flush=True))
            feats[part].append((src, X, y))
    if args.only_cache:
        return 0

    tests = {p: feats[p] for p in TEST_PARTS}
    flows: dict[tuple[str, int], tuple] = {}   # (part, i) -> vote_inputs of that capture
    if clf is None or clf.new_vote() is not None:   # trained models vote (the preset's flow vote)
        for part in TEST_PARTS:   # the flow keys of every test frame, once (the vote needs them besides X)
            for i, (_, f) in enumerate(files[part]):
                flows[(part, i)] = vote_inputs(f, cache)
    if clf is not None:
        model = Trained(clf._mlp, np.arange(len(FEATURE_NAMES)), clf.policy.threshold,
                        clf.flow_vote, clf.pair_vote)  # + alerts and the flow/pair vote as iotwatch
        if args.permute or col_blocks:
            units = {}
            if args.permute:
                units.update(permutation_units(list(FEATURE_NAMES), blocks, None))
            if col_blocks:
                units.update(permutation_units(list(FEATURE_NAMES), FEATURE_BLOCKS, col_blocks))
            base = evaluate(model, tests, flows=flows)
            print_matrix({clf.name: {"train_rows": None, "results": base}})
            perm = {"baseline": base, "scopes": {}}
            for scope in scopes:
                perm["scopes"][scope] = run_permutation(model, tests, units, args.seed, args.permute_repeats, scope,
                                                        base, log=lambda s: print(s, flush=True), flows=flows)
                print_permutation(base, perm["scopes"][scope],
                                  f"permutation importance of {clf.name}, shuffled within each {scope} "
                                  f"(seed {args.seed}, {args.permute_repeats} shuffle(s) per unit)")
            if args.json:
                perm["settings"] = {"model": args.model, "seed": args.seed, "repeats": args.permute_repeats,
                                    "feature_names": list(FEATURE_NAMES),
                                    "files": {k: [str(f) for _, f in v] for k, v in files.items()}}
                Path(args.json).write_text(json.dumps(perm, indent=1))
            return 0
        res = {clf.name: {"train_rows": None, "results": evaluate(model, tests, flows=flows)}}
        print_matrix(res)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return 0

    def build(parts: list[str], rng_seed: int, real_repeat: int, val_sources: float | None = None,
              exclude: frozenset = frozenset()):
        """(X, y, holdout or None) of the training parts: capped per (group, class), real rows repeated;
        with ``val_sources`` the rows of whole held-out sources (validation_sources) are marked, once each."""
        from iotwatch.detector.train import source_unit, validation_sources

        groups: dict[str, list] = {}
        families: dict[str, list[str]] = {}
        for part in parts:
            for (src, X, y), (_, f) in zip(feats[part], files[part]):
                if src in exclude:
                    continue
                unit = src if part == "real-train" else source_unit(f)  # a real repository is ONE source
                family = "real" if part == "real-train" else src        # a simulator folder, the lab
                groups.setdefault(src, []).append((X, y, unit))
                families.setdefault(family, []).append(unit)
        glist = [(g, np.concatenate([y for _, y, _ in v])) for g, v in groups.items()]
        Xparts = [X for v in groups.values() for X, _, _ in v]
        idx, _ = sample_rows(glist, args.rows_per_class, np.random.default_rng(rng_seed))
        yall = np.concatenate([y for _, y in glist])
        held = None
        if val_sources:
            names = set(validation_sources(families, val_sources))
            held = np.concatenate([np.full(len(y), u in names) for v in groups.values() for _, y, u in v])
            print(f"  validation sources ({len(names)}): {', '.join(sorted(names))}", flush=True)
        if real_repeat > 1:  # rows of real sources (not simulator folders, not the lab) count more
            real_src = {s for s, _ in files["real-train"]}
            owner = np.repeat([g in real_src for g, _ in glist], [len(y) for _, y in glist])
            if held is not None:
                owner &= ~held   # validation rows once each
            idx = np.repeat(idx, np.where(owner[idx], real_repeat, 1))
        return take_rows(Xparts, idx), yall[idx], None if held is None else held[idx]

    results: dict = {"settings": {"rows_per_class_per_group": args.rows_per_class, "epochs_max": args.epochs,
                                  "class_weight_power": args.class_weight_power, "seed": args.seed,
                                  "files": {k: [str(f) for _, f in v] for k, v in files.items()}},
                     "matrix": {}, "ablation": {}}
    if args.save_pred:
        Path(args.save_pred).mkdir(parents=True, exist_ok=True)

    def save_pred(part: str, i: int, pred: np.ndarray) -> None:
        """--save-pred: the predictions evaluate() makes anyway (no second pass of the model)."""
        np.save(Path(args.save_pred) / f"{name.replace('/', '_')}-{files[part][i][1].name}.npy", pred.astype(np.int8))

    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    variants = parse_variants(args.variants)
    results["settings"].update(seeds=seeds, variants=variants, val_sources=args.val_sources)
    for base_name in configs:
        parts = RECIPES[base_name]
        if not all(feats[p] for p in parts):
            print(f"{base_name}: skipped (no data for {', '.join(p for p in parts if not feats[p])})", flush=True)
            continue
        for vname, fields in variants.items():
            fields = dict(fields)
            repeat = int(fields.pop("real_repeat", args.real_repeat))
            vs = fields.pop("val_sources", args.val_sources)
            sample_seed = fields.pop("sample_seed", None)  # fixed row sample: the seed then varies the training only
            exclude = frozenset(str(fields.pop("drop_source", "")).split("+")) - {""}  # sources left out
            cols = columns_without(FEATURE_NAMES, str(fields.pop("drop_cols", "") or ""))  # drop_cols=P+Q
            for seed in seeds:
                name = base_name + (f"/{vname}" if vname else "") + (f"/s{seed}" if len(seeds) > 1 else "")
                t0 = time.time()
                X, y, held = build(parts, seed if sample_seed is None else int(sample_seed), repeat, vs, exclude)
                cwp = fields.get("class_weight_power", args.class_weight_power)
                epochs = int(fields.get("epochs", args.epochs))
                model = train(X, y, cols, epochs, seed, cwp, held,
                              **{k: v for k, v in fields.items() if k not in ("class_weight_power", "epochs")})
                del X
                results["matrix"][name] = {"train_rows": int(len(y)), "threshold": model.threshold,
                                           "best_epoch": model.best_epoch, "val_macro_f1": model.val_history,
                                           "results": evaluate(model, tests, save_pred if args.save_pred else None,
                                                                       flows=flows)}
                print(f"{name}: trained on {len(y):,} rows in {time.time() - t0:.0f} s", flush=True)
                print_matrix({name: results["matrix"][name]})
                if args.json:  # after every run: a long comparison keeps what it measured
                    Path(args.json).write_text(json.dumps(results, indent=1))
    if len(results["matrix"]) > 1:
        print_summary(results["matrix"])
    if args.ablation and "sim+lab+real" in results["matrix"]:
        X, y, _ = build(RECIPES["sim+lab+real"], args.seed, args.real_repeat)
        names = list(FEATURE_NAMES)
        for block, cols in blocks.items():   # --blocks
            drop = {names.index(c) for c in cols}
            keep = np.array([i for i in range(len(names)) if i not in drop])
            t0 = time.time()
            model = train(X, y, keep, args.epochs, args.seed, args.class_weight_power)
            results["ablation"][block] = {"dropped_columns": len(cols),
                                          "results": evaluate(model, tests, flows=flows)}
            print(f"ablation -{block}: {time.time() - t0:.0f} s", flush=True)
            if args.json:   # after every block: a run stopped early keeps what it finished
                Path(args.json).write_text(json.dumps(results, indent=1))
        print_ablation(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def columns_without(names, drop: str) -> np.ndarray:
    """Indices of the columns whose name starts with none of the '+'-separated prefixes of ``drop``."""
    prefixes = tuple(x for x in drop.split("+") if x)
    return np.array([i for i, c in enumerate(names) if not (prefixes and c.startswith(prefixes))], dtype=np.int64)


def parse_variants(spec: str) -> dict[str, dict]:
    """--variants 'a;b:f=1,g=2' -> {"a": {}, "b": {"f": 1.0, "g": 2.0}} (values as numbers when they parse)."""
    out: dict[str, dict] = {}
    for item in filter(None, (x.strip() for x in spec.split(";"))):
        name, _, rest = item.partition(":")
        fields = {}
        for kv in filter(None, rest.split(",")):
            k, _, v = kv.partition("=")
            v = v.strip()
            try:
                fields[k.strip()] = float(v) if v.lower() not in ("none", "") else None
            except ValueError:
                fields[k.strip()] = v   # a name (drop_source)
        out[name.strip()] = fields
    return out or {"": {}}


def print_summary(matrix: dict) -> None:
    """One line per run: the numbers the comparison is judged on (cases: benign frames called and
    alerted exfiltration)."""
    print("\n| run | sim-held F1 | lab-held F1 | real EVAL F1 | benign flagged | attack flagged | "
          "doh exfil argmax/alerted | https-no-dns exfil argmax/alerted | threshold |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in matrix.items():
        res = r["results"]

        def f1(part):
            return fmt(res.get(part, {}).get("all"), "macro_f1")

        ev = res.get("real-eval", {}).get("all")
        cells = []
        for case in ("doh", "https-no-dns"):
            m = res.get("cases", {}).get(case)
            if not m:
                cells.append("-")
                continue
            argmax = m["confusion"][0][CLASSES.index("exfiltration")]
            cells.append(f"{argmax}/{m.get('benign_alerted', {}).get('exfiltration', 0)}")
        th = r.get("threshold")
        name = f"{name} (e{r['best_epoch']})" if r.get("best_epoch") else name
        print(f"| {name} | {f1('sim-held')} | {f1('lab-held')} | {f1('real-eval')} | {fmt(ev, 'benign_flagged_pct')} | "
              f"{fmt(ev, 'attack_flagged_pct')} | {cells[0]} | {cells[1]} | {'-' if th is None else f'{th:.3f}'} |")
    sys.stdout.flush()


def print_matrix(matrix: dict) -> None:
    print("\n| trained on | tested on | macro-F1 | benign flagged | attack flagged | per-class F1 |")
    print("|---|---|---:|---:|---:|---|")
    for name, r in matrix.items():
        for part, res in r["results"].items():
            m = res["all"]
            pc = " ".join(f"{c[:5]} {v:.2f}" for c, v in m["per_class_f1"].items())
            print(f"| {name} | {part} | {fmt(m, 'macro_f1')} | {fmt(m, 'benign_flagged_pct')} | "
                  f"{fmt(m, 'attack_flagged_pct')} | {pc} |")
    for part in ("sim-held", "real-eval", "cases"):
        last = list(matrix.values())[-1]["results"].get(part, {})
        if len(last) <= 1:
            continue
        print(f"\nper source of {part} ({list(matrix)[-1]}):\n")
        print("| source | frames | macro-F1 | benign flagged | attack flagged | per-class F1 |")
        print("|---|---:|---:|---:|---:|---|")
        for src, m in last.items():
            pc = " ".join(f"{c[:5]} {v:.2f}" for c, v in m["per_class_f1"].items())
            print(f"| {src} | {m['frames']:,} | {fmt(m, 'macro_f1')} | {fmt(m, 'benign_flagged_pct')} | "
                  f"{fmt(m, 'attack_flagged_pct')} | {pc} |")
    sys.stdout.flush()


def print_ablation(results: dict) -> None:
    base = results["matrix"]["sim+lab+real"]["results"]
    parts = list(base)
    print("\nablation (sim+lab+real recipe; each cell: macro-F1 / benign flagged % / attack flagged %, change vs all blocks)\n")
    print("| dropped block | cols | " + " | ".join(parts) + " |")
    print("|---|---:|" + "---|" * len(parts))
    print("| (none) | | " + " | ".join(cell(base[p]["all"]) for p in parts) + " |")
    for block, r in results["ablation"].items():
        cells = []
        for p in parts:
            m, b = r["results"][p]["all"], base[p]["all"]
            cells.append(f"{m['macro_f1']:.3f} ({m['macro_f1'] - b['macro_f1']:+.3f}) / "
                         f"{fmt(m, 'benign_flagged_pct')} / {fmt(m, 'attack_flagged_pct')}")
        print(f"| {block} | {r['dropped_columns']} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def combine_ablations(runs: list[tuple[str, dict]]) -> dict:
    """Ablation runs of different seeds (their --json) -> {"seeds", "parts", "baseline": {part: [per seed
    (F1, benign, attack)]}, "spread": {part: [max-min of each]}, "blocks": {block: {part: {"changes":
    [per seed (dF1, dbenign, dattack)], "mean": [...], "beyond": [bool]}}}}. "beyond": every seed's change
    has the same sign and is larger than the baseline's seed spread (the noise of a retrain).
    Files of the same seed (e.g. the whole blocks and, in another run, --blocks conn/pair_,conn/svc_) are one
    seed: their "ablation" blocks merged. ValueError when two of them have different baselines."""
    by_seed: dict = {}   # seed -> (file, sim+lab+real results, merged ablation), in first-seen order
    for f, r in runs:
        if "sim+lab+real" not in r.get("matrix", {}):
            continue
        seed = r.get("settings", {}).get("seed")
        res = r["matrix"]["sim+lab+real"]["results"]
        if seed not in by_seed:
            by_seed[seed] = (f, res, {})
        elif _headline(by_seed[seed][1]) != _headline(res):
            raise ValueError(f"{by_seed[seed][0]} and {f} are both seed {seed} but have different sim+lab+real "
                             "baselines (other data or settings)")
        by_seed[seed][2].update(r.get("ablation", {}))
    runs = [(f, {"ablation": abl}) for f, _, abl in by_seed.values()]
    seeds = list(by_seed)
    bases = [_headline(res) for _, res, _ in by_seed.values()]
    parts = [p for p in bases[0] if all(p in b for b in bases)] if bases else []
    spread = {p: [None if any(b[p][k] is None for b in bases) else round(max(b[p][k] for b in bases)
                  - min(b[p][k] for b in bases), 4) for k in range(3)] for p in parts}
    blocks: dict = {}
    for (_, r), b in zip(runs, bases):
        for block, a in r.get("ablation", {}).items():
            h = _headline(a["results"])
            blocks.setdefault(block, {p: {"changes": []} for p in parts})
            for p in parts:
                blocks[block][p]["changes"].append([None if h[p][k] is None or b[p][k] is None
                                                    else round(h[p][k] - b[p][k], 4) for k in range(3)])
    for block, per in blocks.items():
        for p, c in per.items():
            ch = c["changes"]
            c["mean"] = [None if any(x[k] is None for x in ch) else round(float(np.mean([x[k] for x in ch])), 4)
                         for k in range(3)]
            c["beyond"] = [bool(len(ch) == len(runs) > 1 and spread[p][k] is not None
                                and all(x[k] is not None and abs(x[k]) > spread[p][k] for x in ch)
                                and len({x[k] > 0 for x in ch}) == 1) for k in range(3)]
    return {"seeds": seeds, "parts": parts, "baseline": {p: [b[p] for b in bases] for p in parts},
            "spread": spread, "blocks": blocks}


def print_combined(runs: list[tuple[str, dict]]) -> None:
    c = combine_ablations(runs)   # ValueError: files of one seed disagree (main: exit 2)
    if not c["parts"]:
        print("no sim+lab+real baseline in the inputs")
        return
    seeds = ", ".join(str(s) for s in c["seeds"])
    print(f"\nablation of sim+lab+real over seeds {seeds}: each cell macro-F1 change mean (per seed) / benign "
          "flagged pp mean / attack flagged pp mean; * = every seed moved the same way by more than the baseline's "
          "seed spread\n")
    print("| dropped block | " + " | ".join(c["parts"]) + " |")
    print("|---|" + "---|" * len(c["parts"]))
    print("| baseline (per seed) | " + " | ".join(
        " / ".join(",".join(num(b[k], key) for b in c["baseline"][p]) for k, key in enumerate(HEADLINE))
        for p in c["parts"]) + " |")
    print("| seed spread | " + " | ".join(
        " / ".join(num(v, key) for v, key in zip(c["spread"][p], HEADLINE)) for p in c["parts"]) + " |")
    for block, per in c["blocks"].items():
        cells = []
        for p in c["parts"]:
            m, b, ch = per[p]["mean"], per[p]["beyond"], per[p]["changes"]
            f1 = f"{sgn(m[0], 3)}{'*' if b[0] else ''} ({','.join(sgn(x[0], 3) for x in ch)})"
            cells.append(" / ".join([f1] + [f"{sgn(m[k], 2)}{'*' if b[k] else ''}" for k in (1, 2)]))
        print(f"| {block} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
