"""The ``iotwatch`` command line (CONTRACT §3). Flags follow tshark's habits.

    iotwatch                      TUI replaying the bundled demo capture (with labels)
    iotwatch -r FILE [--labels F] TUI replaying a pcap/pcapng file
    iotwatch -i IFACE [-f BPF]    TUI on live traffic
    ... --headless [--report R.json] [--predictions P.csv] [--alerts A.jsonl]
    ... [-w FILE [-b filesize:KB|duration:S|packets:N|files:N]] [--write-flagged FILE]
    iotwatch doctor | simulate | train | lab | model

Exit codes: 0 ok, 1 anomalies / incidents found with --fail-on anomaly|incident, 2 usage/input error,
3 environment error (tshark missing, no capture permission). Errors are one line on stderr.
"""
from __future__ import annotations

import sys
from typing import Sequence

from iotwatch.captures.errors import EXIT_ENV, EnvironmentProblem, IotwatchError

from .commands import SUBCOMMANDS
from .console import silence_stdout
from .options import config_from_args
from .parser import build_parser


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
