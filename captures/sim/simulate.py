"""``iotwatch simulate``: write a synthetic, labelled smart-home capture (pcapng + sidecar labels).

    iotwatch simulate --out DIR [--seed N] [--duration 10m] [--devices 12]
                      [--attacks recon,dos,bruteforce,spoofing,exfiltration|all|none]
                      [--scenario home|demo|benign|busy] [--name NAME]

Writes ``DIR/NAME.pcapng`` (every packet carries the comment ``label=<class> activity=<what>``)
and ``DIR/NAME.pcapng.labels.csv`` (``frame_number,label``, CONTRACT §2), then prints one summary
line (packets per class, file, speed). The same arguments always give byte-identical files: the
capture clock starts at a date derived from the seed and nothing reads the wall clock.

The bundled demo capture (``captures/demo/demo.pcapng`` + ``.labels.csv``, the default source of
plain ``iotwatch``) is generated with::

    iotwatch simulate --scenario demo --seed 11 --duration 3m --devices 10 --out captures/demo --name demo

What is simulated: :mod:`~iotwatch.captures.sim.home` (device mix, attack schedule),
:mod:`~iotwatch.captures.sim.devices` (benign behaviour, hard negatives),
:mod:`~iotwatch.captures.sim.attacks` (the tools of the five attack families),
:mod:`~iotwatch.captures.sim.core` (scheduler, TCP, addressing), :mod:`~iotwatch.captures.sim.frames`
and :mod:`~iotwatch.captures.sim.writer` (bytes). docs/sim_vs_real.md compares the attacks with the
real tools.
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError, UsageParser
from ..files import plan_outputs, reserve_all, write_error
from .writer import PcapngWriter, comment_option
from .core import SECOND, Sim
from .home import ATTACK_FAMILIES, CLASSES, DEMO_PROFILE, Profile, build_home, schedule_attacks

SCENARIOS: dict[str, tuple[Profile, tuple[str, ...]]] = {
    "home": (Profile(), ATTACK_FAMILIES),
    "busy": (Profile(extra_clients=3, episodes_per_10min=4.5), ATTACK_FAMILIES),
    "benign": (Profile(), ()),
    "demo": (DEMO_PROFILE, ATTACK_FAMILIES),
}


# ----------------------------------------------------------------------------- arguments
def parse_duration(text: str) -> int:
    """``"10m"``, ``"90s"``, ``"1h30m"``, ``"600"`` -> microseconds."""
    m = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text or "")
    if not m or not any(m.groups()):
        raise InputError(f"--duration: cannot parse {text!r}", hint="use e.g. 90s, 10m, 1h30m")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    us = int((h * 3600 + mi * 60 + s) * SECOND)
    if us < 10 * SECOND or us > 24 * 3600 * SECOND:
        raise InputError(f"--duration {text!r} out of range", hint="between 10s and 24h")
    return us


def parse_attacks(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if text is None:
        return default
    t = text.strip().lower()
    if t == "all":
        return ATTACK_FAMILIES
    if t in ("none", ""):
        return ()
    out = []
    for part in t.split(","):
        p = part.strip()
        if p not in ATTACK_FAMILIES:
            raise InputError(f"--attacks: unknown attack family {p!r}", hint="choose from " + ",".join(ATTACK_FAMILIES)
                             + " (or all/none)")
        if p not in out:
            out.append(p)
    return tuple(a for a in ATTACK_FAMILIES if a in out)


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
    p.add_argument("--force", action="store_true", help="overwrite an existing capture/labels of the same name")
    return p


# ----------------------------------------------------------------------------- run
@dataclass
class Result:
    pcap: Path
    labels: Path
    packets: int
    class_counts: dict[str, int]
    seconds: float
    cpu_seconds: float
    episodes: list[str]

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0

    @property
    def packets_per_cpu_second(self) -> float:
        return self.packets / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def start_time(seed: int) -> int:
    """A fixed capture start derived from the seed: 2024-01-01 + up to a year (µs since the epoch)."""
    rng = random.Random(f"iotwatch-sim/{seed}/clock")
    return (1_704_067_200 + rng.randrange(365) * 86400 + rng.randrange(6 * 3600, 22 * 3600)) * SECOND \
        + rng.randrange(SECOND)


def simulate(out_dir: str | Path, *, seed: int = 1, duration_us: int = 600 * SECOND, devices: int = 12,
             attacks: tuple[str, ...] | None = None, scenario: str = "home", name: str | None = None,
             force: bool = True) -> Result:
    """Generate one capture; returns what was written (see module docstring)."""
    if scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    if not 3 <= devices <= 60:
        raise InputError(f"--devices must be between 3 and 60, got {devices}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    profile, default_attacks = SCENARIOS[scenario]
    families = default_attacks if attacks is None else attacks
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output directory {out}: {e.strerror}",
                         hint="choose a writable --out") from None
    stem = name or f"{scenario}-seed{seed}"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", stem):
        raise InputError(f"--name {stem!r}: use letters, digits, '.', '_' or '-'")
    pcap_path = out / f"{stem}.pcapng"
    labels_path = out / f"{stem}.pcapng.labels.csv"

    wall0, cpu0 = time.perf_counter(), time.process_time()
    sim = Sim(seed, start_time(seed), duration_us)
    env, by_kind = build_home(sim, devices, profile)
    episodes = schedule_attacks(env, by_kind, families, profile)
    counts = [0] * len(CLASSES)
    class_index = {c: i for i, c in enumerate(CLASSES)}
    # both files through files.OutputFile: refused when they exist (without --force) or are not
    # regular files, written to temporary files and renamed into place only when complete (a full
    # disk once left a cut pcapng and an empty CSV)
    outs = plan_outputs([(pcap_path, "capture"), (labels_path, "labels CSV")], force)
    reserve_all(outs)
    try:
        with outs["capture"].open("wb") as fh, outs["labels CSV"].open("w") as lh:
            frame_no = _write_capture(sim, scenario, seed, fh, lh, counts, class_index)
        outs["capture"].commit()
        outs["labels CSV"].commit()
    except OSError as e:
        for f in outs.values():
            f.discard()
        bad = pcap_path if getattr(e, "_iotwatch_what", "capture") == "capture" else labels_path
        raise write_error(bad, getattr(e, "_iotwatch_what", "capture"), e) from None
    except BaseException:
        for f in outs.values():
            f.discard()
        raise
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Result(pcap_path, labels_path, frame_no, dict(zip(CLASSES, counts)), seconds, cpu, episodes)


def _write_capture(sim, scenario: str, seed: int, fh, lh, counts: list[int], class_index: dict) -> int:
    """Run the simulation into the open capture (``fh``) and labels CSV (``lh``); returns frames."""
    writer = PcapngWriter(fh, if_name="sim0", if_description=f"iotwatch simulate scenario={scenario} seed={seed}")
    options: list[bytes] = []
    tag_class: list[int] = []
    tag_label: list[str] = []
    rows: list[str] = ["frame_number,label\n"]
    write = writer.write
    frame_no = 0

    def flush_rows() -> None:
        try:
            lh.write("".join(rows))
        except OSError as e:
            e._iotwatch_what = "labels CSV"
            raise
        rows.clear()

    def sink(t: int, frame: bytes, tag: int) -> None:
        nonlocal frame_no
        while tag >= len(options):
            tg = sim.tags[len(options)]
            options.append(comment_option(f"label={tg.label} activity={tg.activity}"))
            tag_class.append(class_index[tg.label])
            tag_label.append(tg.label)
        frame_no += 1
        write(t, frame, options[tag])
        counts[tag_class[tag]] += 1
        rows.append(f"{frame_no},{tag_label[tag]}\n")
        if len(rows) >= 8192:
            flush_rows()

    sim.run(sink)
    flush_rows()
    writer.close()
    return frame_no


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    if ns.scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {ns.scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    res = simulate(ns.out, seed=ns.seed, duration_us=parse_duration(ns.duration), devices=ns.devices,
                   attacks=parse_attacks(ns.attacks, SCENARIOS[ns.scenario][1]), scenario=ns.scenario, name=ns.name,
                   force=ns.force)
    per_class = " ".join(f"{c}={n}" for c, n in res.class_counts.items())
    size_mb = res.pcap.stat().st_size / 1e6
    print(f"wrote {res.pcap} ({size_mb:.1f} MB, {res.packets} packets: {per_class}) + {res.labels.name} "
          f"in {res.seconds:.1f} s ({res.packets_per_second:,.0f} packets/s; "
          f"{res.packets_per_cpu_second:,.0f} per CPU-second)")
    return 0
