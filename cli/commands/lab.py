"""``iotwatch lab``: the command line of :mod:`iotwatch.captures.lab.recorder`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from iotwatch.captures.errors import InputError
from iotwatch.captures.lab.attacks import FAMILIES
from iotwatch.captures.lab.recorder import SCENARIOS, cleanup, record, relabel, setup

from ..usage import UsageParser


def build_parser() -> UsageParser:
    p = UsageParser(prog="iotwatch lab", description="Record real attack tools in an isolated network-namespace lab.",
                epilog="exit codes: 0 ok, 2 usage error, 3 not root or a lab tool missing (names the apt package)")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=UsageParser)
    r = sub.add_parser("record", help="record a labelled capture (root)")
    r.add_argument("--out", required=True, metavar="DIR", help="output directory")
    r.add_argument("--scenario", default="all", choices=SCENARIOS, help="attack family to record (default all)")
    r.add_argument("--duration", type=float, default=None, metavar="S",
                   help="target length in seconds (default 60 per family, 60 for benign); each step keeps a minimum")
    r.add_argument("--seed", type=int, default=1, help="seed for victims, sizes, timing and the attacker address")
    r.add_argument("--force", action="store_true", help="overwrite an existing capture")
    r.add_argument("--keep-workdir", action="store_true", help="keep the lab's logs and configs (printed path)")
    r.add_argument("--max-steps", type=int, default=0, metavar="N",
                   help="only N (seeded random) attack steps per family, for short recordings (default: all)")
    rl = sub.add_parser("relabel", help="re-derive labels of recorded captures from their .lab.json (after a labelling change)")
    rl.add_argument("captures", nargs="+", metavar="CAPTURE", help="lab-*.pcapng written by lab record")
    c = sub.add_parser("cases", help="record the small labelled captures of the detector's specific cases (root)")
    c.add_argument("--out", required=True, metavar="DIR", help="output directory (the repository keeps them in tests/data/cases)")
    c.add_argument("--only", nargs="+", metavar="CASE", help="record only these cases")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--keep-workdir", action="store_true", help="keep the lab's logs and configs (printed path)")
    sub.add_parser("setup", help="apt-get install the lab's Debian packages (root)")
    sub.add_parser("cleanup", help="delete namespaces left by a killed recorder (root)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(list(argv or []))
    if ns.cmd == "cleanup":
        return cleanup()
    if ns.cmd == "setup":
        return setup()
    if ns.cmd == "cases":
        from iotwatch.captures.lab.cases import CASES, make_cases

        unknown = [n for n in ns.only or [] if n not in CASES]
        if unknown:
            raise InputError(f"unknown case(s): {', '.join(unknown)}", hint="cases: " + ", ".join(CASES))
        make_cases(Path(ns.out), ns.only, ns.seed, keep_workdir=ns.keep_workdir)
        return 0
    if ns.cmd == "relabel":
        for c in ns.captures:
            relabel(Path(c))
        return 0
    n_fam = len(FAMILIES) if ns.scenario == "all" else 1
    duration = ns.duration if ns.duration is not None else 60.0 * n_fam
    if duration <= 0:
        raise InputError(f"--duration must be positive, got {duration}")
    try:
        summary = record(Path(ns.out), ns.scenario, duration, ns.seed, force=ns.force, keep_workdir=ns.keep_workdir,
                         max_steps=ns.max_steps)
    except KeyboardInterrupt:
        print("iotwatch lab: interrupted; the lab was torn down", file=sys.stderr)
        return 130
    counts = ", ".join(f"{k}={v}" for k, v in sorted(summary["class_counts"].items()))
    print(f"lab: wrote {summary['capture']} ({summary['frames']} frames: {counts})")
    print(f"lab: labels {summary['labels']}")
    if "workdir" in summary:
        print(f"lab: logs and configs kept in {summary['workdir']}")
    for n in summary["notes"]:
        print(f"lab: note: {n}")
    return 0
