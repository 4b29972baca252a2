"""Derive a bundle that votes otherwise from another: the same weights, scaler, threshold and training
record, meta ``flow_vote`` and ``pair_vote`` set (detector/flowvote.py), a new version, and where it came from.

    .venv/bin/python bench/vote_bundle.py detector/models/default.iotw OUT.iotw --alpha 0.85 --version 10
    .venv/bin/python bench/vote_bundle.py detector/models/default.iotw OUT.iotw --alpha 0.85 --pair 0.6 --version 11

How ``iotwatch-default/10`` was made from ``iotwatch-default/9``, and /11 from /10 (detector/MODEL_CARD.md):
the votes are a policy over the model's outputs, like the anomaly threshold, not something the network
learns, so changing them needs no retraining. ``iotwatch train`` (preset default) writes both itself.
"""
from __future__ import annotations

import argparse
import sys

from iotwatch.captures.errors import InputError
from iotwatch.captures.files import sha256_file
from iotwatch.detector.bundle import load_bundle, pair_vote_meta, save_bundle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--alpha", type=float, required=True, help="the vote's alpha, in [0, 1) (0 = off)")
    ap.add_argument("--pair", type=float, default=None,
                    help="the pair vote's weight, in [0, 1] (0 = off; default: as the bundle has it)")
    ap.add_argument("--version", required=True, help="the new bundle's version")
    args = ap.parse_args(argv)
    try:   # bad values are refused by save_bundle's checks (those of load_bundle) before anything is written
        src = load_bundle(args.bundle)
        meta = dict(src.meta)
        meta["training"] = dict(meta.get("training") or {})
        change = [f"flow_vote {meta.get('flow_vote', 0.0)} -> {args.alpha}"]
        meta["flow_vote"] = args.alpha
        if args.pair is not None:
            old = (meta.get("pair_vote") or {}).get("weight", 0.0)
            change.append(f"pair_vote weight {old} -> {args.pair}")
            meta.pop("pair_vote", None)
            pair = pair_vote_meta(args.pair, meta["classes"])
            if pair is not None:
                meta["pair_vote"] = pair
        earlier = meta["training"].get("derived_from")   # /11 from /10 from /9: the chain is kept
        meta["training"]["derived_from"] = {"bundle": src.display_name, "sha256": sha256_file(args.bundle),
                                            "change": ", ".join(change), **({"earlier": earlier} if earlier else {})}
        meta["version"] = args.version
        out = save_bundle(args.out, src.tensors, meta)
    except InputError as exc:
        print(f"vote_bundle: {exc}", file=sys.stderr)
        return 2
    pair = (meta.get("pair_vote") or {}).get("weight", 0.0)
    print(f"wrote {out}: {meta['name']}/{args.version} = {src.display_name} with flow vote {args.alpha}, "
          f"pair vote {pair:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
