"""Derive a bundle that votes per flow from one that does not: the same weights, scaler, threshold and
training record, meta ``flow_vote`` set (detector/flowvote.py), a new version, and where it came from.

    .venv/bin/python bench/vote_bundle.py detector/models/default.iotw OUT.iotw --alpha 0.85 --version 10

How ``iotwatch-default/10`` was made from ``iotwatch-default/9`` (detector/MODEL_CARD.md): the vote is a
policy over the model's outputs, like the anomaly threshold, not something the network learns, so adding
it needs no retraining. ``iotwatch train`` (preset default) writes it into every new bundle itself.
"""
from __future__ import annotations

import argparse
import sys

from iotwatch.captures.errors import InputError
from iotwatch.captures.files import sha256_file
from iotwatch.detector.bundle import load_bundle, save_bundle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--alpha", type=float, required=True, help="the vote's alpha, in [0, 1) (0 = off)")
    ap.add_argument("--version", required=True, help="the new bundle's version")
    args = ap.parse_args(argv)
    if not 0.0 <= args.alpha < 1.0:
        print(f"vote_bundle: --alpha must be in [0, 1), got {args.alpha}", file=sys.stderr)
        return 2
    try:
        src = load_bundle(args.bundle)
    except InputError as exc:
        print(f"vote_bundle: {exc}", file=sys.stderr)
        return 2
    meta = dict(src.meta)
    meta["training"] = dict(meta.get("training") or {})
    meta["training"]["derived_from"] = {"bundle": src.display_name, "sha256": sha256_file(args.bundle),
                                        "change": f"flow_vote {meta.get('flow_vote', 0.0)} -> {args.alpha}"}
    meta["flow_vote"] = args.alpha
    meta["version"] = args.version
    out = save_bundle(args.out, src.tensors, meta)
    print(f"wrote {out}: {meta['name']}/{args.version} = {src.display_name} with flow vote {args.alpha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
