"""Generation speed of ``iotwatch simulate`` against a raw pcapng write of the same frames, in one run.

    .venv/bin/python bench/simulate_speed.py [--seed 1] [--duration 10m] [--repeat 3] [--out DIR]

Times (best of ``--repeat``):
  1. the full simulator (``simulate()``: devices, attacks, packet building, pcapng + labels CSV);
  2. the reference: re-writing the very same frames and comments with ``PcapngWriter`` alone
     (what any generator must pay at least for the output).
Prints packets/s (wall and per CPU-second) of both and, as the LAST line,
``ratio=<simulate/raw-write>`` (packets/s). The issue's floor is 100k packets/s for the simulator.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from iotwatch.captures.pcapfile import comment_option, read_packets
from iotwatch.captures.sim.writer import PcapngWriter
from iotwatch.captures.sim.simulate import parse_duration, simulate


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", default="10m")
    ap.add_argument("--scenario", default="home")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", help="directory for the output (default: a temporary directory, /dev/shm if present)")
    ns = ap.parse_args(argv)
    base = ns.out or ("/dev/shm" if Path("/dev/shm").is_dir() else None)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        best = None
        for _ in range(ns.repeat):
            res = simulate(tmp, seed=ns.seed, duration_us=parse_duration(ns.duration), scenario=ns.scenario)
            if best is None or res.seconds < best.seconds:
                best = res
        print(f"simulate: {best.packets} packets, {best.pcap.stat().st_size / 1e6:.0f} MB in {best.seconds:.2f} s "
              f"= {best.packets_per_second:,.0f} packets/s wall, {best.packets_per_cpu_second:,.0f} per CPU-second")
        packets = read_packets(best.pcap)
        options = {c: comment_option(c) for c in {c for _, _, c in packets}}
        raw_best = None
        for _ in range(ns.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            with open(Path(tmp) / "raw.pcapng", "wb") as fh:
                w = PcapngWriter(fh)
                for ts, frame, comment in packets:
                    w.write(ts, frame, options[comment])
                w.close()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            if raw_best is None or wall < raw_best[0]:
                raw_best = (wall, cpu)
        raw_pps = len(packets) / raw_best[0]
        print(f"raw pcapng write of the same frames: {raw_best[0]:.2f} s = {raw_pps:,.0f} packets/s wall, "
              f"{len(packets) / raw_best[1]:,.0f} per CPU-second")
        print(f"ratio={best.packets_per_second / raw_pps:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
