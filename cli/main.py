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
import math
import sys
from typing import Sequence

from iotwatch.captures.errors import EXIT_ENV, EnvironmentProblem, IotwatchError

from .commands import SUBCOMMANDS
from .console import silence_stdout
from .options import config_from_args
from .usage import UsageParser


EPILOG = """subcommands:
  doctor      check tshark/dumpcap, versions and capture permission per interface
  simulate    write synthetic labelled IoT captures (iotwatch simulate --help)
  train       train a model bundle (iotwatch train --help)
  lab         record real attack tools in network namespaces (iotwatch lab --help)
  model       inspect a model bundle: iotwatch model show [FILE]
  completion  shell completion: iotwatch completion bash | sudo tee /etc/bash_completion.d/iotwatch

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
    src.add_argument("-a", "--autostop", action="append", type=autostop, default=[], metavar="COND",
                     help="stop after duration:SECONDS (of capture time) or packets:N, like tshark -a "
                          "(a bare number means duration); repeatable, the first condition met stops")
    src.add_argument("--duration", type=float, metavar="SECONDS", help="same as -a duration:SECONDS")
    src.add_argument("-D", "--list-interfaces", action="store_true",
                     help="print the interfaces dumpcap can capture on and exit (like tshark -D)")
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
    return p


def autostop(text: str) -> tuple[str, float]:
    """tshark's ``-a`` conditions we support: ``duration:S``, ``packets:N``; a bare number is a duration."""
    kind, sep, value = text.partition(":")
    if not sep:
        kind, value = "duration", text
    kind = kind.strip().lower()
    if kind not in ("duration", "packets"):
        raise argparse.ArgumentTypeError(f"unsupported condition {kind!r}: use duration:SECONDS or packets:N")
    try:
        number = float(value) if kind == "duration" else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{kind} needs a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"{kind} must be a positive finite number, got {value!r}")
    return kind, number


def list_interfaces(out=None) -> int:
    """``iotwatch -D``: dumpcap's capture interfaces, numbered like ``tshark -D``."""
    from iotwatch.captures.tshark.preflight import INSTALL_HINT, dumpcap_interfaces, find_tool

    dumpcap = find_tool("dumpcap", None)
    if dumpcap is None:
        raise EnvironmentProblem("dumpcap not found", hint=INSTALL_HINT)
    out = out or sys.stdout
    for i, (name, desc) in enumerate(dumpcap_interfaces(dumpcap), 1):
        out.write(f"{i}. {name}" + (f" ({desc})" if desc else "") + "\n")
    return 0


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
        if ns.list_interfaces:
            return list_interfaces()
        for kind, number in ns.autostop:  # the first condition met stops: keep the smallest of each kind
            if kind == "duration":
                ns.duration = number if ns.duration is None else min(ns.duration, number)
            else:
                ns.count = int(number) if ns.count is None else min(ns.count, int(number))
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
    except BrokenPipeError:  # the reader of stdout went away (iotwatch ... | head): end quietly, like tshark
        silence_stdout()
        return 0
    except MemoryError:
        print("iotwatch: error: out of memory", file=sys.stderr)
        return EXIT_ENV


if __name__ == "__main__":
    raise SystemExit(main())
