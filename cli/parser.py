"""The main command's parser (``iotwatch [options]``), apart from main() so that ``iotwatch completion``
can build the whole command tree without importing main (no import cycle)."""
from __future__ import annotations

import argparse
import math

from .usage import UsageParser

EPILOG = """subcommands:
  doctor      check tshark/dumpcap, versions and capture permission per interface
  simulate    write synthetic labelled IoT captures (iotwatch simulate --help)
  train       train a model bundle (iotwatch train --help)
  lab         record real attack tools in network namespaces (iotwatch lab --help)
  model       inspect a model bundle: iotwatch model show [FILE]
  completion  shell completion: iotwatch completion bash | sudo tee /etc/bash_completion.d/iotwatch

exit codes: 0 success, 1 anomalies / incidents found (--fail-on anomaly|incident), 2 usage or input error,
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
    run.add_argument("--speed", choices=["max", "1x", "10x"], default=None,
                     help="replay pacing in the TUI (default: max; the demo: 10x, so the attacks arrive in view)")
    out = p.add_argument_group("outputs")
    out.add_argument("--report", metavar="FILE.json", help="run report (JSON)")
    out.add_argument("--predictions", metavar="FILE.csv", help="frame_number,predicted,confidence[,label] per frame")
    out.add_argument("--alerts", metavar="FILE.jsonl",
                     help="incidents as Suricata EVE alert events (opened / updated / closed, one JSON per line)")
    out.add_argument("-w", "--write", metavar="FILE",
                     help="keep every packet as pcapng in FILE (like tshark/dumpcap -w; - = standard output, "
                          "--headless only); a replay copies the frames it read")
    out.add_argument("-b", "--ring-buffer", action="append", default=[], metavar="KEY:VALUE",
                     help="with -w, dumpcap's ring buffer: filesize:KB (1 kB = 1000 bytes), duration:SECONDS, "
                          "packets:N switch to the next file FILE_00001_YYYYmmddHHMMSS.ext; files:N keeps the newest N "
                          "(repeatable)")
    out.add_argument("--write-flagged", metavar="FILE",
                     help="the anomalous packets as pcapng, each with a comment giving class, confidence and "
                          "incident id (open it in Wireshark)")
    out.add_argument("--force", action="store_true", help="overwrite existing output files")
    out.add_argument("--append", action="store_true",
                     help="sensor mode: --predictions/--alerts continue existing files (never wiped); SIGHUP "
                          "reopens them after log rotation; -w/--write-flagged add a new pcapng section")
    out.add_argument("--stats-interval", type=float, metavar="SECONDS",
                     help="write an EVE 'stats' event (packets, drops, rates, incidents, model) into --alerts "
                          "every SECONDS, and one at the end")
    out.add_argument("--sensor-name", metavar="NAME", help="this sensor's name in every EVE record (\"host\") and "
                     "in the report (default: the machine's host name)")
    out.add_argument("--fail-on", choices=["anomaly", "incident"],
                     help="exit 1 when anomalous packets were found / when any incident opened")
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
