"""The incident engine's cost per packet, and key latency in a real terminal during a full-speed replay.

    .venv/bin/python bench/incidents.py [FILE...] [--repeat 3] [--against REV] [--tmux FILE] [--keys 20]
    .venv/bin/python bench/incidents.py [FILE...] --same-as REV

1. Engine cost. Each FILE (default: the demo, plus a 2-minute simulated home capture and a
   10-minute benign one written to a temporary folder) is classified once (tshark source, features,
   model); then, ``--repeat`` times, the classified batches go through a fresh ``IncidentEngine``
   (8192-row batches as headless runs use, and 256-row pieces) and, as the reference measured in the
   same run on the same batches, through the feature extractor (``transform``) and the model
   (``predict_proba``). Times are CPU seconds of this (single-threaded) process, so other load on
   the machine changes them little. Prints best µs per packet (target <= 1 µs/pkt), µs per
   anomalous packet, and ``ratio=engine/features``. ``--against REV``: also times the engine of
   git revision REV (its ``detector/incidents.py``) on the same batches, alternating with this one,
   and prints ``ratio=engine/REV`` (before/after a change, measured in the same run).
   ``--same-as REV``: no timing; checks that this tree's engine gives exactly the output of the
   engine of REV on each FILE at batch sizes all / 8192 / 256 / 7 (and 1 under 20,000 packets):
   every event (kind, frame, time, snapshot, its EVE line), the frames each batch assigns to
   which incident, the final incidents; exit 1 and the first difference when they differ (for
   changes meant to keep the output, e.g. speed-ups).
2. ``--tmux FILE``: ``iotwatch -r FILE`` (max speed) in a private tmux server (120x42); while it
   replays, the anomaly filter key ``a`` is sent ``--keys`` times and the screen polled until the
   table's subtitle shows the change (so the figure includes tmux's own round trip); then ``i`` +
   ``enter`` open an incident and ``escape`` closes it, timed the same way. Prints median/p95/max
   milliseconds (target < 100 ms) and whether the replay was still running when the last key landed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from iotwatch.captures.sources import open_source
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.incidents import IncidentEngine
from iotwatch.detector.pipeline import classify_stream
from iotwatch.options import demo_capture


def classified(path: str, clf, rows: int = 8192) -> list:
    src = open_source(read=path)
    try:
        return list(classify_stream(src, clf, None, max_rows=rows))
    finally:
        src.close()


def engine_at(rev: str):
    """The IncidentEngine class of ``detector/incidents.py`` at git revision ``rev``."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:detector/incidents.py"], capture_output=True,
                         text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("iotwatch.detector._incidents_at_rev", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "iotwatch.detector"
    sys.modules[spec.name] = mod
    exec(compile(src, f"{rev}:detector/incidents.py", "exec"), mod.__dict__)
    return mod.IncidentEngine


def time_engine(cbs: list, classes, piece: int, engine=IncidentEngine) -> float:
    eng = engine(classes, 0)
    t0 = time.process_time()
    for cb in cbs:
        for s in range(0, len(cb), piece):
            eng.update(cb.slice(s, min(len(cb), s + piece)) if piece < len(cb) else cb)
    eng.finish()
    return time.process_time() - t0


def time_reference(cbs: list, clf) -> tuple[float, float]:
    ext = clf.new_extractor()
    t0 = time.process_time()
    xs = [ext.transform(cb.packets) for cb in cbs]
    t1 = time.process_time()
    for x in xs:
        clf.predict_proba(x)
    return t1 - t0, time.process_time() - t1


def bench_engine(paths: list[str], repeat: int, against: str | None = None) -> None:
    clf = PacketClassifier.load(None)
    ref_engine = engine_at(against) if against else None
    for path in paths:
        cbs = classified(path, clf)
        n = sum(len(cb) for cb in cbs)
        anom = int(sum(int(cb.anomaly.sum()) for cb in cbs))
        best = {8192: float("inf"), 256: float("inf")}
        feat = model = ref = float("inf")
        time_engine(cbs, clf.classes_, 8192)   # warm-up: the first run pays for first calls and cold caches
        if ref_engine is not None:
            time_engine(cbs, clf.classes_, 8192, ref_engine)
        for r in range(repeat):
            # this engine and REV's in turn, first one then the other (whichever runs right after the
            # features reference below finds colder caches)
            for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                if which == 0:
                    for piece in best:
                        best[piece] = min(best[piece], time_engine(cbs, clf.classes_, piece))
                elif ref_engine is not None:
                    ref = min(ref, time_engine(cbs, clf.classes_, 8192, ref_engine))
            f, m = time_reference(cbs, clf)
            feat, model = min(feat, f), min(model, m)
        eng = IncidentEngine(clf.classes_, 0)
        for cb in cbs:
            eng.update(cb)
        eng.finish()
        us = lambda s: s / n * 1e6  # noqa: E731
        print(f"{Path(path).name}: {n:,} packets, {anom:,} anomalous ({100 * anom / max(n, 1):.0f}%), "
              f"{eng.opened} incidents")
        print(f"  engine  8192-row batches {us(best[8192]):.3f} us/pkt ({best[8192] / max(anom, 1) * 1e6:.2f} us per "
              f"anomalous packet); 256-row pieces {us(best[256]):.3f} us/pkt")
        print(f"  reference (same batches): features {us(feat):.3f} us/pkt, model {us(model):.3f} us/pkt")
        print(f"  ratio=engine/features {best[8192] / feat:.3f}  engine/model {best[8192] / model:.3f}")
        if ref_engine is not None:
            print(f"  engine at {against}: {us(ref):.3f} us/pkt (8192-row batches); ratio=engine/{against} "
                  f"{best[8192] / ref:.3f}")


def engine_output(engine, cbs: list, classes, batch: int) -> tuple:
    """Everything the engine tells its callers when fed ``cbs`` in ``batch``-row pieces."""
    import json

    from iotwatch.detector.eve import eve_record

    eng = engine(classes, 0)
    events, assigned, keep = [], [], []

    def sig(e):
        return (e.kind, e.frame, e.time, json.dumps(e.snapshot, sort_keys=True, default=str),
                json.dumps(eve_record(e, source="capture", host="sensor", model="m"), sort_keys=True, default=str))
    for cb in _pieces(cbs, batch):
        evs = eng.update(cb)
        d = {}
        for fr, tr in eng.assigned:
            keep.append(tr)
            d.update(dict.fromkeys(fr.tolist(), tr))
        assigned.append(d)
        events += [sig(e) for e in evs]
    events += [sig(e) for e in eng.finish()]
    who = [{f: (tr.cls, tr.key, tr.first_frame, tr.seq) for f, tr in d.items()} for d in assigned]
    final = [json.dumps(t.to_dict(), sort_keys=True, default=str) for t in eng.incidents()]
    return events, who, final, eng.opened, eng.dropped


def _pieces(cbs: list, batch: int):
    """The classified batches re-cut into ``batch``-row pieces (whole stream order kept)."""
    from iotwatch.captures.batch import PacketBatch
    from iotwatch.detector.pipeline import ClassifiedBatch

    if len(cbs) > 1:
        cbs = [ClassifiedBatch(PacketBatch.concat([c.packets for c in cbs]), np.concatenate([c.proba for c in cbs]),
                               np.concatenate([c.predicted for c in cbs]), np.concatenate([c.confidence for c in cbs]),
                               np.concatenate([c.anomaly for c in cbs]), None)]
    cb = cbs[0]
    for s in range(0, len(cb), batch):
        yield cb.slice(s, min(len(cb), s + batch)) if batch < len(cb) else cb


def same_as(paths: list[str], rev: str) -> int:
    clf = PacketClassifier.load(None)
    ref_engine = engine_at(rev)
    bad = 0
    for path in paths:
        cbs = classified(path, clf)
        n = sum(len(cb) for cb in cbs)
        for batch in [n, 8192, 256, 7] + ([1] if n < 20_000 else []):
            a = engine_output(ref_engine, cbs, clf.classes_, batch)
            b = engine_output(IncidentEngine, cbs, clf.classes_, batch)
            ok = a == b
            print(f"{Path(path).name} batch {batch}: {'same' if ok else 'DIFFERENT'} ({len(a[0])} events)", flush=True)
            if not ok:
                bad += 1
                for part, x, y in zip(("events", "assigned frames", "incidents", "opened", "dropped"), a, b):
                    if x != y:
                        i = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), None) \
                            if isinstance(x, list) else None
                        print(f"  {part} differ" + (f" first at #{i}:\n    {rev}: {str(x[i])[:400]}\n    this: "
                                                     f"{str(y[i])[:400]}" if i is not None else f": {x} vs {y}"))
    print(f"same output as {rev}" if not bad else f"{bad} runs differ from {rev}")
    return 1 if bad else 0


class Tmux:
    def __init__(self, folder: Path):
        self.sock = f"iotwatch-bench-{uuid.uuid4().hex[:8]}"
        conf = folder / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -s escape-time 0\n", encoding="utf-8")
        self.conf = str(conf)

    def __call__(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(["tmux", "-L", self.sock, "-f", self.conf, *args], capture_output=True, text=True,
                              timeout=30, env=env, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def until(self, pred, timeout: float = 5.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if pred(self.screen()):
                return time.perf_counter() - t0
        raise TimeoutError("the screen did not change")


def bench_tmux(path: str, keys: int) -> None:
    exe = str(Path(sys.executable).parent / "iotwatch")
    with tempfile.TemporaryDirectory() as tmp:
        tm = Tmux(Path(tmp))
        tm("new-session", "-d", "-s", "app", "-x", "120", "-y", "42", exe, "-r", path)
        try:
            tm.until(lambda s: "replay" in s and "Incidents" in s, timeout=60)
            lat = []
            for k in range(keys):
                want = k % 2 == 0       # the filter turns on, then off
                t0 = time.perf_counter()
                tm("send-keys", "-t", "app", "a")
                tm.until(lambda s: ("match anomalies" in s) == want)
                lat.append(time.perf_counter() - t0)
                time.sleep(0.1)
            opened = []
            for _ in range(3):
                t0 = time.perf_counter()
                tm("send-keys", "-t", "app", "i", "Enter")
                try:
                    tm.until(lambda s: "Incident #" in s, timeout=3)
                except TimeoutError:
                    break   # no incident yet
                opened.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                tm("send-keys", "-t", "app", "Escape")
                tm.until(lambda s: "Incident #" not in s)
                opened.append(time.perf_counter() - t0)
            running = "replay" in tm.screen().splitlines()[0]
        finally:
            tm("send-keys", "-t", "app", "q")
            time.sleep(0.5)
            tm("kill-server")
    ms = sorted(x * 1000 for x in lat)
    print(f"tmux key latency ('a' filter, screen polled), {len(ms)} keys: median {statistics.median(ms):.1f} ms, "
          f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms; replay still running: {running}")
    if opened:
        om = sorted(x * 1000 for x in opened)
        print(f"tmux incident open/close (i+enter / escape): median {statistics.median(om):.1f} ms, max {om[-1]:.1f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also time the engine of this git revision (before/after)")
    ap.add_argument("--tmux", metavar="FILE", help="measure key latency in tmux replaying FILE at max speed")
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--same-as", metavar="REV", help="check the engine's output equals REV's (no timing)")
    ns = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = ns.files
        if not files and not ns.tmux:
            from iotwatch.captures.sim.simulate import simulate

            files = [str(demo_capture()),
                     str(simulate(tmp, seed=7, duration_us=120_000_000, devices=8).pcap),
                     str(simulate(tmp, seed=201, duration_us=600_000_000, devices=3, scenario="benign").pcap)]
        if files and ns.same_as:
            return same_as(files, ns.same_as)
        if files:
            bench_engine(files, ns.repeat, ns.against)
        if ns.tmux:
            bench_tmux(ns.tmux, ns.keys)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
