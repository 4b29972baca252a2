"""``iotwatch model show FILE``: print a bundle's card (classes, features, training data with sha256,
metrics, history); ``--json`` prints its metadata as JSON instead (for jq)."""
from __future__ import annotations

import json
import sys
from typing import Sequence

from ..console import console
from ..usage import UsageParser


def build_parser() -> UsageParser:
    p = UsageParser(prog="iotwatch model", description="Inspect model bundles (.iotw).")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="print a bundle's card", description="Print a bundle's card: classes, "
                          "features, training data with sha256, metrics and per-epoch history.")
    show.add_argument("bundle", nargs="?", metavar="FILE", help="bundle to show (default: the bundled model)")
    show.add_argument("--json", action="store_true", help="print the bundle's metadata as JSON")
    return p


def main(argv: Sequence[str]) -> int:
    from iotwatch.detector.bundle import default_bundle_path, load_bundle
    from iotwatch.detector.card import card

    args = build_parser().parse_args(list(argv))
    path = args.bundle or str(default_bundle_path())
    bundle = load_bundle(path)
    if args.json:
        json.dump(bundle.meta, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    con = console(soft_wrap=False)
    for part in card(bundle.meta, path):
        con.print(part)
        con.print()
    return 0
