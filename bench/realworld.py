"""Score a model bundle on the real-world development set (captures/real/manifest.csv).

    python bench/realworld.py --data /work/shared/data/real [--split eval] [--model FILE] [--json OUT]

For every manifest row of the chosen part whose capture is present under DATA (extract it first:
``python -m iotwatch.captures.real.extract``), runs the stable CLI

    iotwatch -r FILE --headless --report R.json --predictions P.csv [--model FILE]

and scores its predictions per frame against the sidecar labels ``FILE.labels.csv`` (frames without
a label are left out). Prints per source and overall: files, frames, macro-F1 (over the classes
present in the labels), benign packets flagged (% of normal-labelled frames predicted non-normal),
attack packets flagged (% of attack-labelled frames predicted non-normal), per-class F1 and the
confusion matrix (rows = label, columns = prediction). ``--json OUT`` writes the same numbers.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "captures" / "real" / "manifest.csv"
CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
NORMAL = "normal"


def local_name(path: str) -> str:
    # same rule as captures/real/extract.py
    member = path.split("#", 1)[1] if "#" in path else path
    name = member.replace("/", "__").replace(" ", "_")
    return name[:-3] if name.endswith(".gz") else name


def find_iotwatch() -> str:
    for cand in (Path(sys.executable).with_name("iotwatch"), ROOT / ".venv" / "bin" / "iotwatch",
                 Path("/work/main/.venv/bin/iotwatch")):
        if cand.is_file():
            return str(cand)
    found = shutil.which("iotwatch")
    if not found:
        sys.exit("realworld: iotwatch command not found (run `bash dev.sh setup` or pass --iotwatch)")
    return found


def read_labels(path: Path) -> dict[int, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {int(r["frame_number"]): r["label"] for r in csv.DictReader(fh) if r.get("label")}


def read_predictions(path: Path) -> dict[int, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {int(r["frame_number"]): r["predicted"] for r in csv.DictReader(fh)}


class Score:
    """Per-frame confusion counts (label -> predicted -> n) plus file/frame tallies."""

    def __init__(self) -> None:
        self.cm: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.files = 0
        self.frames = 0          # labelled frames scored
        self.missing = 0         # labelled frames with no prediction (counted as wrong: "<none>")

    def add(self, labels: dict[int, str], preds: dict[int, str]) -> None:
        self.files += 1
        for f, lab in labels.items():
            p = preds.get(f)
            if p is None:
                self.missing += 1
                p = "<none>"
            self.cm[lab][p] += 1
            self.frames += 1

    def merge(self, other: "Score") -> None:
        self.files += other.files
        self.frames += other.frames
        self.missing += other.missing
        for lab, row in other.cm.items():
            for p, n in row.items():
                self.cm[lab][p] += n

    def metrics(self) -> dict:
        present = [c for c in self.cm if sum(self.cm[c].values())]
        classes = [c for c in CLASSES if c in present] + sorted(set(present) - set(CLASSES))
        predicted = {p for row in self.cm.values() for p in row}
        per_class = {}
        for c in classes:
            tp = self.cm[c].get(c, 0)
            support = sum(self.cm[c].values())
            npred = sum(row.get(c, 0) for row in self.cm.values())
            prec = tp / npred if npred else 0.0
            rec = tp / support if support else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_class[c] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                            "support": support}
        macro = sum(v["f1"] for v in per_class.values()) / len(per_class) if per_class else None
        normal_n = sum(self.cm[NORMAL].values()) if NORMAL in self.cm else 0
        normal_flag = normal_n - self.cm[NORMAL].get(NORMAL, 0) if normal_n else 0
        attack_n = sum(sum(row.values()) for c, row in self.cm.items() if c != NORMAL)
        attack_flag = sum(n for c, row in self.cm.items() if c != NORMAL
                          for p, n in row.items() if p not in (NORMAL, "<none>"))
        cols = [c for c in CLASSES if c in predicted or c in present] + sorted(
            predicted - set(CLASSES) - {"<none>"}) + (["<none>"] if "<none>" in predicted else [])
        return {
            "files": self.files, "frames": self.frames, "frames_without_prediction": self.missing,
            "macro_f1": None if macro is None else round(macro, 4),
            "benign_flagged_pct": round(100 * normal_flag / normal_n, 3) if normal_n else None,
            "attack_flagged_pct": round(100 * attack_flag / attack_n, 3) if attack_n else None,
            "normal_frames": normal_n, "attack_frames": attack_n,
            "per_class": per_class,
            "confusion": {"labels": classes, "predicted": cols,
                          "matrix": [[self.cm[c].get(p, 0) for p in cols] for c in classes]},
        }


def fmt_pct(v) -> str:
    return "   -  " if v is None else f"{v:6.2f}"


def print_summary(name: str, m: dict) -> None:
    mf = "  -  " if m["macro_f1"] is None else f"{m['macro_f1']:.3f}"
    pcs = " ".join(f"{c[:5]}={v['f1']:.2f}" for c, v in m["per_class"].items())
    print(f"{name:28s} {m['files']:5d} {m['frames']:9d}  {mf}  {fmt_pct(m['benign_flagged_pct'])}%"
          f"  {fmt_pct(m['attack_flagged_pct'])}%  {pcs}")


def print_confusion(m: dict) -> None:
    cm = m["confusion"]
    cols = cm["predicted"]
    print("  label\\pred    " + " ".join(f"{c[:8]:>9s}" for c in cols))
    for lab, row in zip(cm["labels"], cm["matrix"]):
        print(f"  {lab[:12]:12s}  " + " ".join(f"{n:9d}" for n in row))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("IOTWATCH_REAL_DATA", "/work/shared/data/real"))
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--split", choices=["train", "eval", "all"], default="eval")
    ap.add_argument("--model", help="model bundle (default: the bundled one)")
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--keep", help="keep per-file reports/predictions in this folder")
    ap.add_argument("--source", action="append", help="only this source slug (repeatable)")
    ap.add_argument("--scope", choices=["all", "whole", "partial"], default="all",
                    help="only rows of this label scope (issue 12 quotes whole-file-labelled files)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: score predictions already in that folder instead of re-running")
    ap.add_argument("--iotwatch", help="path of the iotwatch command")
    ap.add_argument("--quiet", action="store_true", help="no per-file lines")
    args = ap.parse_args(argv)

    with open(args.manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if args.split != "all":
        rows = [r for r in rows if r["split"] == args.split]
    if args.source:
        rows = [r for r in rows if r["source"] in set(args.source)]
    if args.scope != "all":
        rows = [r for r in rows if r["scope"] == args.scope]
    data = Path(args.data)
    exe = args.iotwatch or find_iotwatch()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="realworld-"))
    work.mkdir(parents=True, exist_ok=True)

    by_source: dict[str, Score] = defaultdict(Score)
    per_file: list[dict] = []
    absent, failed = [], []
    model_name = None
    t0 = time.time()
    for r in rows:
        cap = data / r["source"] / local_name(r["path"])
        lab_path = cap.with_name(cap.name + ".labels.csv")
        if not cap.is_file() or not lab_path.is_file():
            absent.append(str(cap))
            continue
        stem = work / r["source"] / cap.name
        stem.parent.mkdir(parents=True, exist_ok=True)
        rep, pred = Path(str(stem) + ".report.json"), Path(str(stem) + ".pred.csv")
        cmd = [exe, "-r", str(cap), "--headless", "--report", str(rep), "--predictions", str(pred),
               "--labels", str(lab_path), "--force"]
        if args.model:
            cmd += ["--model", args.model]
        if args.reuse and args.keep and pred.is_file() and rep.is_file():
            proc = subprocess.CompletedProcess(cmd, 0, "", "")
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 1) or not pred.is_file():
            failed.append(f"{cap}: exit {proc.returncode}: {proc.stderr.strip()[:200]}")
            print(f"realworld: FAILED {cap}: {proc.stderr.strip()[:200]}", file=sys.stderr)
            continue
        if model_name is None and rep.is_file():
            try:
                model_name = json.loads(rep.read_text()).get("model")
            except (OSError, ValueError):
                pass
        s = Score()
        s.add(read_labels(lab_path), read_predictions(pred))
        by_source[r["source"]].merge(s)
        fm = s.metrics()
        per_file.append({"source": r["source"], "path": r["path"], "class": r["class"],
                         "scope": r["scope"], **{k: fm[k] for k in (
                             "frames", "macro_f1", "benign_flagged_pct", "attack_flagged_pct")},
                         "predicted": dict(sorted(
                             {p: n for row in s.cm.values() for p, n in row.items()}.items()))})
        if not args.quiet:
            top = sorted(per_file[-1]["predicted"].items(), key=lambda kv: -kv[1])[:3]
            print(f"  {r['source']:24s} {cap.name[:48]:48s} {r['class']:12s} {fm['frames']:8d}  "
                  + ", ".join(f"{p} {n}" for p, n in top), flush=True)

    if not by_source:
        print(f"realworld: no capture of the {args.split} part found under {data} "
              f"({len(absent)} absent); extract it first: python -m iotwatch.captures.real.extract "
              f"--out {data}", file=sys.stderr)
        return 2
    total = Score()
    for s in by_source.values():
        total.merge(s)
    print(f"\nreal-world set, split {args.split}, scope {args.scope}, model {model_name or args.model or 'bundled'}"
          f" ({time.time() - t0:.0f} s)")
    print(f"{'source':28s} {'files':>5s} {'frames':>9s}  macF1  benign-fl  attack-fl  per-class F1")
    results = {"split": args.split, "scope": args.scope, "model": model_name, "data": str(data), "sources": {},
               "files": per_file, "absent": absent, "failed": failed}
    for src in sorted(by_source):
        m = by_source[src].metrics()
        results["sources"][src] = m
        print_summary(src, m)
    mt = total.metrics()
    for key in ("benign_flagged_pct", "attack_flagged_pct"):
        vals = [f[key] for f in per_file if f[key] is not None]
        mt[key.replace("_pct", "_file_mean_pct")] = round(sum(vals) / len(vals), 3) if vals else None
    results["overall"] = mt
    print_summary("OVERALL", mt)
    print(f"{'  mean over files':28s} {'':5s} {'':9s}  {'':5s}  {fmt_pct(mt['benign_flagged_file_mean_pct'])}%"
          f"  {fmt_pct(mt['attack_flagged_file_mean_pct'])}%")
    print("\nconfusion (overall, frames):")
    print_confusion(mt)
    if absent:
        print(f"\nrealworld: {len(absent)} manifest files absent under {data} (run "
              "python -m iotwatch.captures.real.extract)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
