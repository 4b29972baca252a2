"""``iotwatch simulate`` (the command line is cli/commands/simulate.py): write a synthetic, labelled smart-home capture (pcapng + sidecar labels).

    iotwatch simulate --out DIR [--seed N] [--duration 10m] [--devices 12]
                      [--attacks recon,dos,bruteforce,spoofing,exfiltration|all|none]
                      [--scenario home|demo|benign|busy] [--name NAME]

Writes ``DIR/NAME.pcapng`` (every packet carries the comment ``label=<class> activity=<what>``),
``DIR/NAME.pcapng.labels.csv`` (``frame_number,label``, CONTRACT §2) and
``DIR/NAME.pcapng.episodes.json`` (per attack episode: class, attacker, victims, time window, frame
range; :mod:`~iotwatch.captures.sim.episodes`), then prints one summary
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

from ..errors import InputError
from ..pcapfile import comment_option
from .writer import PcapngWriter
from .core import SECOND, Sim
from .episodes import EpisodeLog
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
             attacks: tuple[str, ...] | None = None, scenario: str = "home", name: str | None = None) -> Result:
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
    episodes_path = out / f"{stem}.pcapng.episodes.json"

    wall0, cpu0 = time.perf_counter(), time.process_time()
    sim = Sim(seed, start_time(seed), duration_us)
    env, by_kind = build_home(sim, devices, profile)
    episodes = schedule_attacks(env, by_kind, families, profile)
    log = EpisodeLog(sim.episodes)
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
        tag_episode: list = []
        rows: list[str] = ["frame_number,label\n"]
        write = writer.write
        frame_no = 0

        def sink(t: int, frame: bytes, tag: int) -> None:
            nonlocal frame_no
            while tag >= len(options):
                tg = sim.tags[len(options)]
                options.append(comment_option(f"label={tg.label} activity={tg.activity}"))
                tag_class.append(class_index[tg.label])
                tag_label.append(tg.label)
                tag_episode.append(tg.episode if tg.label != "normal" else None)
            frame_no += 1
            if tag_episode[tag] is not None:
                log.add(tag_episode[tag], t, frame_no, frame)
            write(t, frame, options[tag])
            counts[tag_class[tag]] += 1
            rows.append(f"{frame_no},{tag_label[tag]}\n")
            if len(rows) >= 8192:
                lh.write("".join(rows))
                rows.clear()

        sim.run(sink)
        lh.write("".join(rows))
        writer.close()
    try:
        log.write(episodes_path, pcap_path, scenario, seed)
    except OSError as e:
        raise InputError(f"cannot write {episodes_path}: {e.strerror}", hint="choose a writable --out") from None
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Result(pcap_path, labels_path, frame_no, dict(zip(CLASSES, counts)), seconds, cpu, episodes)
