"""Deterministic mixed IoT capture for the benches: exactly N packets (default 100,000).

    .venv/bin/python bench/make_mixed_pcap.py OUT.pcapng [--packets 100000] [--seed 1]

Uses the struct-packing simulator (``iotwatch simulate``: MQTT, CoAP, DNS/mDNS, HTTP, TLS records,
NTP, DHCP, SSDP, ARP, ICMP, RTP, QUIC and the five attack families), then ``editcap -r`` keeps the
first N frames. Same arguments -> byte-identical file. The sidecar labels are trimmed alongside.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from iotwatch.commands.simulate import main as simulate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        # the default home writes ~450 packets per simulated second: simulate more than needed, then cut
        seconds = max(30, int(args.packets / 350) + 10)
        rc = simulate(["--out", tmp, "--seed", str(args.seed), "--duration", f"{seconds}s", "--name", "mixed"])
        if rc:
            return rc
        full = Path(tmp) / "mixed.pcapng"
        subprocess.run(["editcap", "-r", str(full), str(out), f"1-{args.packets}"], check=True)
        labels = Path(tmp) / "mixed.pcapng.labels.csv"
        with open(labels) as src, open(str(out) + ".labels.csv", "w") as dst:
            for i, line in enumerate(src):
                if i > args.packets:
                    break
                dst.write(line)
    n = subprocess.run(["capinfos", "-c", "-M", str(out)], capture_output=True, text=True).stdout
    print(n.strip().splitlines()[-1] if n else out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
