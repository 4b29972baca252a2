"""``iotwatch simulate``: the command line of :func:`iotwatch.captures.sim.simulate.simulate`."""
from __future__ import annotations

from typing import Sequence

from iotwatch.captures.errors import InputError
from iotwatch.captures.sim.home import ATTACK_FAMILIES, CLASSES
from iotwatch.captures.sim.simulate import SCENARIOS, parse_attacks, parse_duration, parse_offset, simulate

from ..usage import UsageParser


def build_parser() -> UsageParser:
    p = UsageParser(prog="iotwatch simulate", description="Write a synthetic labelled smart-home capture "
                "(pcapng with label=<class> comments + sidecar frame_number,label CSV).",
                epilog="Same arguments => byte-identical output. Classes: " + ", ".join(CLASSES))
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default 1)")
    p.add_argument("--duration", default="10m", metavar="T", help="capture length, e.g. 90s, 10m, 1h (default 10m)")
    p.add_argument("--devices", type=int, default=12, metavar="N", help="benign devices in the home (3-60, default 12)")
    p.add_argument("--attacks", metavar="LIST", help="comma list of " + ",".join(ATTACK_FAMILIES)
                   + ", or all/none (default: the scenario's)")
    p.add_argument("--scenario", default="home", metavar="NAME",
                   help="one of " + ", ".join(SCENARIOS) + " (default home)")
    p.add_argument("--name", metavar="NAME", help="file name stem (default <scenario>-seed<N>)")
    p.add_argument("--start-offset", metavar="T", help="cut the first T of the simulation (e.g. 45s, 2m) so the "
                   "capture starts mid-conversation; 'random' draws it per seed (default: random for scenario "
                   "varied, 0 otherwise); the capture still lasts --duration")
    p.add_argument("--variant-cycle", type=int, metavar="K", help="take each attack family's variants in turn, "
                   "starting at K x episodes, instead of a seed-shuffled draw: homes K=0,1,2,... together cover every "
                   "variant (training sets of a few short homes); default: the seed's draw")
    p.add_argument("--force", action="store_true", help="overwrite an existing capture/labels of the same name")
    return p


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    if ns.scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {ns.scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    res = simulate(ns.out, seed=ns.seed, duration_us=parse_duration(ns.duration), devices=ns.devices,
                   attacks=parse_attacks(ns.attacks, SCENARIOS[ns.scenario][1]), scenario=ns.scenario, name=ns.name,
                   start_offset_us=parse_offset(ns.start_offset), force=ns.force,
                   variant_cycle=ns.variant_cycle)
    per_class = " ".join(f"{c}={n}" for c, n in res.class_counts.items())
    size_mb = res.pcap.stat().st_size / 1e6
    print(f"wrote {res.pcap} ({size_mb:.1f} MB, {res.packets} packets: {per_class}) + {res.labels.name} "
          f"in {res.seconds:.1f} s ({res.packets_per_second:,.0f} packets/s; "
          f"{res.packets_per_cpu_second:,.0f} per CPU-second)")
    return 0
