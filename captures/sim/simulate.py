"""``iotwatch simulate``: write a synthetic, labelled smart-home capture (pcapng + sidecar labels).

    iotwatch simulate --out DIR [--seed N] [--duration 10m] [--devices 12]
                      [--attacks recon,dos,bruteforce,spoofing,exfiltration|all|none]
                      [--scenario home|demo|benign|busy|varied] [--name NAME] [--start-offset T|random]

Writes ``DIR/NAME.pcapng`` (every packet carries the comment ``label=<class> activity=<what>``)
and ``DIR/NAME.pcapng.labels.csv`` (``frame_number,label``, CONTRACT §2), then prints one summary
line (packets per class, file, speed). The same arguments always give byte-identical files: the
capture clock starts at a date derived from the seed and nothing reads the wall clock.

The bundled demo capture (``captures/demo/demo.pcapng`` + ``.labels.csv``, the default source of
plain ``iotwatch``) is generated with::

    iotwatch simulate --scenario demo --seed 11 --duration 3m --devices 10 --out captures/demo --name demo

Scenario ``varied`` (training data that does not teach the generator's conventions) draws per home
the address plan (192.168/16, 10/8, 172.16/12, CGNAT 100.64/10, public-looking blocks), host stacks
and TTLs, whether DNS is visible (router, a resolver outside the capture, DoH, a public resolver,
partly cached), benign look-alikes (unresolved backups, browser bursts, streaming, pairing storms,
health checks) and the wider attack kinds of :mod:`~iotwatch.captures.sim.tools`, and cuts a random
start (``--start-offset``, default ``random`` there, 0 elsewhere) so the capture begins mid-conversation.

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
from ..pcapfile import comment_option
from .writer import PcapngWriter
from .core import SECOND, Sim
from .home import (ATTACK_FAMILIES, CLASSES, DEMO_PROFILE, VARIED_PROFILE, Profile, build_home, episode_json,
                   schedule_attacks)
from .variety import draw_plan

SCENARIOS: dict[str, tuple[Profile, tuple[str, ...]]] = {
    "home": (Profile(), ATTACK_FAMILIES),
    "busy": (Profile(extra_clients=3, episodes_per_10min=4.5), ATTACK_FAMILIES),
    "benign": (Profile(), ()),
    "demo": (DEMO_PROFILE, ATTACK_FAMILIES),
    "varied": (VARIED_PROFILE, ATTACK_FAMILIES),
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


def parse_offset(text: str | None) -> int | None:
    """``--start-offset``: ``"random"``/None -> None (drawn per seed in scenario varied), else µs (0-1h)."""
    if text is None or text.strip().lower() == "random":
        return None
    t = text.strip()
    if t in ("0", "0s"):
        return 0
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?", t)
    if not m or not any(m.groups()):
        raise InputError(f"--start-offset: cannot parse {text!r}", hint="use e.g. 0, 45s, 2m or random")
    us = int((float(m.group(1) or 0) * 60 + float(m.group(2) or 0)) * SECOND)
    if us > 3600 * SECOND:
        raise InputError(f"--start-offset {text!r} out of range", hint="between 0 and 1h")
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
    p.add_argument("--start-offset", metavar="T", help="cut the first T of the simulation (e.g. 45s, 2m) so the "
                   "capture starts mid-conversation; 'random' draws it per seed (default: random for scenario "
                   "varied, 0 otherwise); the capture still lasts --duration")
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
    episode_records: list[dict] | None = None  # JSON-ready, see home.schedule_attacks / episode_json

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
             start_offset_us: int | None = None, profile: Profile | None = None) -> Result:
    """Generate one capture; returns what was written (see module docstring). ``profile``
    (Python API only) replaces the scenario's volume knobs, e.g. for tests."""
    if scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    if not 3 <= devices <= 60:
        raise InputError(f"--devices must be between 3 and 60, got {devices}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    scenario_profile, default_attacks = SCENARIOS[scenario]
    profile = profile or scenario_profile
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
    plan = draw_plan(seed, duration_us, start_offset_us) if profile.varied else None
    cut = plan.cut_us if plan is not None else (start_offset_us or 0)
    sim = Sim(seed, start_time(seed), duration_us + cut)
    env, by_kind = build_home(sim, devices, profile, plan)
    records: list[dict] = []
    episodes = schedule_attacks(env, by_kind, families, profile, records, first_us=cut // 2)
    first_t = sim.start + cut
    # per episode: [first time, last time, first frame, last frame, packets] of its written frames
    windows = [[0, 0, 0, 0, 0] for _ in records]
    counts = [0] * len(CLASSES)
    class_index = {c: i for i, c in enumerate(CLASSES)}
    try:
        fh = open(pcap_path, "wb")
    except OSError as e:
        raise InputError(f"cannot write {pcap_path}: {e.strerror}", hint="choose a writable --out") from None
    try:
        lh = open(labels_path, "w", encoding="ascii", newline="")
    except OSError as e:
        fh.close()
        raise InputError(f"cannot write {labels_path}: {e.strerror}", hint="choose a writable --out") from None
    with fh, lh:
        writer = PcapngWriter(fh, if_name="sim0", if_description=f"iotwatch simulate scenario={scenario} seed={seed}")
        options: list[bytes] = []
        tag_class: list[int] = []
        tag_label: list[str] = []
        rows: list[str] = ["frame_number,label\n"]
        write = writer.write
        frame_no = 0

        tag_window: list = []

        def sink(t: int, frame: bytes, tag: int) -> None:
            nonlocal frame_no
            if t < first_t:
                return
            while tag >= len(options):
                tg = sim.tags[len(options)]
                options.append(comment_option(f"label={tg.label} activity={tg.activity}"))
                tag_class.append(class_index[tg.label])
                tag_label.append(tg.label)
                tag_window.append(windows[tg.episode] if tg.episode is not None else None)
            frame_no += 1
            write(t, frame, options[tag])
            w = tag_window[tag]
            if w is not None:
                if not w[4]:
                    w[0], w[2] = t, frame_no
                w[1], w[3] = t, frame_no
                w[4] += 1
            counts[tag_class[tag]] += 1
            rows.append(f"{frame_no},{tag_label[tag]}\n")
            if len(rows) >= 8192:
                lh.write("".join(rows))
                rows.clear()

        sim.run(sink)
        lh.write("".join(rows))
        writer.close()
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    recs = []
    for rec, w in zip(records, windows):
        j = episode_json(rec, sim.start)
        j.update(packets=w[4], first_frame=w[2] or None, last_frame=w[3] or None,
                 first_time=w[0] / SECOND if w[4] else None, last_time=w[1] / SECOND if w[4] else None)
        recs.append(j)
    return Result(pcap_path, labels_path, frame_no, dict(zip(CLASSES, counts)), seconds, cpu, episodes, recs)


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    if ns.scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {ns.scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    res = simulate(ns.out, seed=ns.seed, duration_us=parse_duration(ns.duration), devices=ns.devices,
                   attacks=parse_attacks(ns.attacks, SCENARIOS[ns.scenario][1]), scenario=ns.scenario, name=ns.name,
                   start_offset_us=parse_offset(ns.start_offset))
    per_class = " ".join(f"{c}={n}" for c, n in res.class_counts.items())
    size_mb = res.pcap.stat().st_size / 1e6
    print(f"wrote {res.pcap} ({size_mb:.1f} MB, {res.packets} packets: {per_class}) + {res.labels.name} "
          f"in {res.seconds:.1f} s ({res.packets_per_second:,.0f} packets/s; "
          f"{res.packets_per_cpu_second:,.0f} per CPU-second)")
    return 0
