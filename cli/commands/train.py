"""``iotwatch train``: the command line of :func:`iotwatch.detector.train.train`."""
from __future__ import annotations

from typing import Sequence

from iotwatch.detector.train import PRESETS, TrainRequest, train

from ..console import console
from ..usage import UsageParser


def build_parser() -> UsageParser:
    p = UsageParser(prog="iotwatch train", description="Train a model bundle (.iotw) from labelled captures or a CSV.",
                epilog="The same command on the same data writes a byte-identical bundle.")
    src = p.add_mutually_exclusive_group(required=True)  # --upweight adds to --captures
    src.add_argument("--captures", nargs="+", metavar="PATH", help="labelled pcap/pcapng files or folders of them")
    src.add_argument("--csv", metavar="FILE", help="packets in the seed paper's 14-column CSV (with --schema kaggle)")
    p.add_argument("--schema", choices=["kaggle"], help="CSV schema (required with --csv)")
    p.add_argument("--out", required=True, metavar="FILE.iotw", help="bundle to write")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="training protocol (default: default)")
    p.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed for sampling, split, init and shuffling")
    p.add_argument("--max-rows-per-class", type=int, metavar="N", help="keep at most N random rows per class of the --captures rows "
                   "(--upweight rows are all kept)")
    p.add_argument("--cache", metavar="DIR", help="keep each capture's feature rows here (keyed by the capture's and its "
                   "labels' sha256 and the feature code) and its parsed tshark batches (DIR/batches, keyed without the "
                   "feature code: after a feature change the rows are rebuilt without tshark) and reuse them on the "
                   "next run (the same bundle either way); rm -r DIR clears both")
    p.add_argument("--per-source", action="store_true",
                   help="each --captures and --upweight PATH is one source: --max-rows-per-class applies per "
                        "(source, class), also to --upweight sources (then repeated), so a large simulated set cannot "
                        "drown small real ones")
    p.add_argument("--upweight", nargs="+", metavar="PATH", default=[],
                   help="more labelled captures whose rows count --upweight-factor times (e.g. small real-tool "
                        "recordings next to large simulated sets)")
    p.add_argument("--upweight-factor", type=int, default=10, metavar="N", help="repeat factor for --upweight (default 10)")
    p.add_argument("--val-sources", dest="val_sources", type=float, metavar="FRACTION",
                   help="validate (early stopping, the anomaly threshold) on whole held-out SOURCES instead of random "
                        "rows: this fraction of each --captures folder's recordings (a recording and its derived "
                        "views, same name up to the first dot, are one) and of the --upweight PATHs, picked by name; "
                        "they are not trained on")
    p.add_argument("--weight-ema", dest="weight_ema", type=float, metavar="EPOCHS",
                   help="validate and keep an exponential moving average of the weights over about EPOCHS epochs "
                        "(same network; default: the raw weights)")
    p.add_argument("--class-weight-power", dest="class_weight_power", type=float, metavar="P",
                   help="loss weight of a class ~ (1 / its frequency) ** P (default: the preset's; 0 = unweighted)")
    p.add_argument("--init", metavar="BUNDLE",
                   help="continue training this bundle's network and scaler instead of random weights (same "
                        "features, classes and layers; columns its first layer does not read get a fitted scaler)")
    p.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate (default: the preset's, 1e-3)")
    p.add_argument("--eval", nargs="+", metavar="PATH", help="held-out labelled captures to report metrics on")
    p.add_argument("--name", default=None, help="bundle name (default: custom-<preset>; names starting with "
                   "'iotwatch-' are the bundled models')")
    p.add_argument("--model-version", dest="model_version", default="1", metavar="V",
                   help="bundle version string (default 1; the bundle is NAME/V)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--report", metavar="DIR", help="write the training figures (accuracy/loss vs epochs, confusion "
                   "matrix, prediction distribution, ROC per class, loss vs training-set size) and a Markdown/HTML "
                   "report into DIR (needs matplotlib: pip install 'iotwatch[train]')")
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    command = "iotwatch train " + " ".join(_recorded_argv(argv))
    train(TrainRequest(**vars(ns)), console(), command)
    return 0


def _recorded_argv(argv: Sequence[str]) -> list[str]:
    """The command line without what does not change the bundle (--force, --cache DIR)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--force":
            continue
        elif a == "--cache":
            skip = True
        elif not a.startswith("--cache="):
            out.append(a)
    return out
