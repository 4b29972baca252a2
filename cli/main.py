"""The ``iotwatch`` command line (CONTRACT §3). Flags follow tshark's habits.

    iotwatch                      TUI replaying the bundled demo capture (with labels)
    iotwatch -r FILE [--labels F] TUI replaying a pcap/pcapng file
    iotwatch -i IFACE [-f BPF]    TUI on live traffic
    ... --headless [--report R.json] [--predictions P.csv] [--alerts A.jsonl]
    iotwatch doctor | simulate | train | lab | model

Exit codes: 0 ok, 1 anomalies found with --fail-on anomaly, 2 usage/input error,
3 environment error (tshark missing, no capture permission). Errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from iotwatch import __version__
from iotwatch.captures.errors import EXIT_ENV, IotwatchError

from .commands import SUBCOMMANDS
from .options import RunConfig, demo_capture
from .usage import UsageParser


EPILOG = """subcommands:
  doctor      check tshark/dumpcap, versions and capture permission per interface
  simulate    write synthetic labelled IoT captures (iotwatch simulate --help)
  train       train a model bundle (iotwatch train --help)
  lab         record real attack tools in network namespaces (iotwatch lab --help)
  model       inspect a model bundle: iotwatch model show [FILE]

exit codes: 0 success, 1 anomalies found (--fail-on anomaly), 2 usage or input error,
3 environment error (tshark missing, no capture permission)"""


def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog="iotwatch", description="Terminal network monitor that finds attacks in IoT traffic.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("source (default: the bundled demo capture)")
    src.add_argument("-r", "--read", metavar="FILE", help="replay a pcap or pcapng file")
    src.add_argument("-i", "--iface", metavar="IFACE", help="capture live traffic from IFACE")
    src.add_argument("--labels", metavar="FILE", help="labels CSV frame_number,label for a replay")
    src.add_argument("-f", "--bpf", metavar="EXPR", help="BPF capture filter (live)")
    src.add_argument("-Y", "--display-filter", metavar="EXPR", help="Wireshark display filter")
    src.add_argument("-c", "--count", type=int, metavar="N", help="stop after N packets")
    src.add_argument("-a", "--duration", type=float, metavar="SECONDS", help="stop after SECONDS (live)")
    src.add_argument("-B", "--buffer-size", type=int, metavar="MiB", dest="buffer_mib",
                     help="live capture kernel buffer in MiB (default 128): absorbs bursts")
    src.add_argument("-I", "--monitor-mode", action="store_true",
                     help="capture 802.11 in monitor mode (live Wi-Fi: every station's frames, not only this host's)")
    src.add_argument("--wpa-pwd", action="append", default=[], metavar="PASSPHRASE:SSID",
                     help="decrypt WPA/WPA2-PSK 802.11 traffic (tshark's wpa-pwd; repeatable); a station's "
                          "frames decrypt once its EAPOL handshake was captured")
    src.add_argument("--wpa-psk", action="append", default=[], metavar="HEX",
                     help="decrypt WPA/WPA2-PSK with the 64-hex-digit pre-shared key instead (repeatable)")
    run = p.add_argument_group("run")
    run.add_argument("--headless", action="store_true", help="no TUI: process the source, write outputs, print a summary")
    run.add_argument("--model", metavar="FILE", help="model bundle to use instead of the bundled one")
    run.add_argument("--speed", choices=["max", "1x", "10x"], default="max", help="replay pacing in the TUI")
    out = p.add_argument_group("outputs")
    out.add_argument("--report", metavar="FILE.json", help="run report (JSON)")
    out.add_argument("--predictions", metavar="FILE.csv", help="frame_number,predicted,confidence[,label] per frame")
    out.add_argument("--alerts", metavar="FILE.jsonl", help="one EVE-like JSON object per anomalous packet")
    out.add_argument("--force", action="store_true", help="overwrite existing output files")
    out.add_argument("--fail-on", choices=["anomaly"], help="exit 1 when anomalies were found (headless)")
    p.add_argument("-V", "--version", action="version", version=f"iotwatch {__version__}")
    return p


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    cfg = RunConfig(read=ns.read, iface=ns.iface, bpf=ns.bpf, display_filter=ns.display_filter,
                    labels=ns.labels, model=ns.model, report=ns.report, predictions=ns.predictions,
                    alerts=ns.alerts, force=ns.force, fail_on=ns.fail_on, count=ns.count,
                    duration=ns.duration, buffer_mib=ns.buffer_mib, headless=ns.headless, speed=ns.speed,
                    monitor_mode=ns.monitor_mode, wpa_pwd=tuple(ns.wpa_pwd), wpa_psk=tuple(ns.wpa_psk))
    if not cfg.read and not cfg.iface:
        demo = demo_capture()
        if not demo.is_file():
            raise IotwatchError(f"bundled demo capture missing at {demo}", hint="reinstall iotwatch or pass -r FILE")
        cfg.read = str(demo)
    cfg.validate()
    return cfg


def _run_subcommand(name: str, argv: Sequence[str]) -> int:
    import importlib

    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(list(argv)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return _run_subcommand(argv[0], argv[1:])
        ns = build_parser().parse_args(argv)
        cfg = config_from_args(ns)
        if cfg.headless:
            from .headless import run_headless

            return run_headless(cfg)
        from iotwatch.tui.app import run_tui

        return run_tui(cfg)
    except IotwatchError as e:
        print(f"iotwatch: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("iotwatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("iotwatch: error: out of memory", file=sys.stderr)
        return EXIT_ENV


if __name__ == "__main__":
    raise SystemExit(main())
