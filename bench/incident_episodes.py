"""Incidents against ground truth on recorded or simulated captures (issue 13's acceptance).

    .venv/bin/python bench/incident_episodes.py CAPTURE... [--against REV] [--model BUNDLE] [-v]

Each CAPTURE needs its ``<capture>.episodes.json`` (``iotwatch simulate``) or ``<capture>.lab.json``
(``iotwatch lab record``). The capture is classified once with the bundled model; the incident
engine (and with ``--against REV`` the engine of that git revision, on the same batches) runs over
it; the matching is ``tests/incident_truth.py``'s (same class, overlapping time, right attacker and
victims). Prints per engine the episodes that do not map to exactly one incident, the incidents that
match no episode (allowed: one per hour of capture, at least one) and, with ``-v``, the model's
verdicts on each episode's labelled packets.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from incident_truth import load_episodes, match_all  # noqa: E402

from iotwatch.captures.labels import read_sidecar  # noqa: E402
from iotwatch.captures.sources import open_source  # noqa: E402
from iotwatch.detector.classifier import PacketClassifier  # noqa: E402
from iotwatch.detector.incidents import IncidentEngine  # noqa: E402
from iotwatch.detector.pipeline import classify_stream  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--against", metavar="REV", help="also run the engine of this git revision")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--model", metavar="BUNDLE", help="classify with this bundle (default: the bundled model)")
    ns = ap.parse_args(argv)
    clf = PacketClassifier.load(ns.model)
    engines = [("this tree", IncidentEngine)]
    if ns.against:
        from incidents import engine_at   # bench/incidents.py

        engines.append((ns.against, engine_at(ns.against)))
    for cap in ns.captures:
        src = open_source(read=cap)
        try:
            cbs = list(classify_stream(src, clf, None, max_rows=8192))
        finally:
            src.close()
        episodes = load_episodes(cap)
        t = np.concatenate([cb.packets["time_epoch"] for cb in cbs])
        hours = float(np.nanmax(t) - np.nanmin(t)) / 3600
        print(f"{Path(cap).name}: {sum(len(cb) for cb in cbs):,} packets, {len(episodes)} episodes, {hours:.2f} h")
        for name, engine in engines:
            eng = engine(clf.classes_, 0)
            for cb in cbs:
                eng.update(cb)
            eng.finish()
            incidents = [tr.to_dict() for tr in eng.incidents()]
            per, unmatched = match_all(episodes, incidents)
            bad = [e for e in episodes if len(per[e["id"]]) != 1]
            print(f"  {name}: {len(incidents)} incidents; episodes without exactly one incident {len(bad)}; "
                  f"incidents matching no episode {len(unmatched)} (allowed {max(1, int(hours))})")
            for e in bad:
                print(f"    episode {e['id']} {e['class']} {e['kind']!r}: incidents {per[e['id']]}")
            for i in unmatched:
                print(f"    unmatched #{i['id']} {i['class']}/{i['kind']} {i['attacker']} -> {i['victims'][:3]}: "
                      f"{i['evidence'][:110]}")
        if ns.verbose:
            labels_path = Path(cap + ".labels.csv")
            frames = np.concatenate([cb.packets["frame_number"] for cb in cbs])
            pred = np.concatenate([cb.predicted for cb in cbs])
            anom = np.concatenate([cb.anomaly for cb in cbs])
            names = list(clf.classes_)
            lab = read_sidecar(labels_path, names) if labels_path.is_file() else {}
            labels = np.array([names[lab[f]] if f in lab else "" for f in frames.tolist()], dtype=object)
            for e in episodes:
                m = (labels == e["class"]) & (t >= e["start"] - 1) & (t <= e["end"] + 1)
                c = Counter(clf.classes_[p] if a else "unflagged" for p, a in zip(pred[m], anom[m]))
                print(f"    model on episode {e['id']} {e['kind'][:50]!r}: {dict(c)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    np.seterr(all="ignore")
    raise SystemExit(main())
