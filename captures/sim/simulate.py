"""``iotwatch simulate`` (the command line is cli/commands/simulate.py): write a synthetic, labelled smart-home capture (pcapng + sidecar labels).

    iotwatch simulate --out DIR [--seed N] [--duration 10m] [--devices 12]
                      [--attacks recon,dos,bruteforce,spoofing,exfiltration|all|none]
                      [--scenario home|demo|benign|busy|varied|uploads|varied6] [--name NAME] [--start-offset T|random]
                      [--variant-cycle K]

Writes ``DIR/NAME.pcapng`` (every packet carries the comment ``label=<class> activity=<what>``),
``DIR/NAME.pcapng.labels.csv`` (``frame_number,label``, CONTRACT §2) and
``DIR/NAME.pcapng.episodes.json`` (per attack episode: class, attacker, victims, time window, frame
range; :mod:`~iotwatch.captures.sim.episodes`), then prints one summary
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
Scenario ``uploads`` (opt-in) adds exfiltration-shaped benign uploads; scenario ``varied6`` (opt-in)
adds IPv6 attacks (floods, ICMPv6 and DNS-over-IPv6 tunnels, alive6 sweeps: about a third of the dos,
exfiltration and recon episodes, :mod:`~iotwatch.captures.sim.v6`) and benign traceroutes.

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
from ..files import plan_outputs, reserve_all, write_error
from ..pcapfile import comment_option
from .writer import PcapngWriter
from .core import SECOND, Sim
from .episodes import EpisodeLog
from .home import ATTACK_FAMILIES, CLASSES, DEMO_PROFILE, UPLOADS_PROFILE, VARIED6_PROFILE, VARIED_PROFILE, Profile, build_home, schedule_attacks
from .variety import draw_plan

SCENARIOS: dict[str, tuple[Profile, tuple[str, ...]]] = {
    "home": (Profile(), ATTACK_FAMILIES),
    "busy": (Profile(extra_clients=3, episodes_per_10min=4.5), ATTACK_FAMILIES),
    "benign": (Profile(), ()),
    "demo": (DEMO_PROFILE, ATTACK_FAMILIES),
    "varied": (VARIED_PROFILE, ATTACK_FAMILIES),
    "uploads": (UPLOADS_PROFILE, ATTACK_FAMILIES),
    "varied6": (VARIED6_PROFILE, ATTACK_FAMILIES),
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
             start_offset_us: int | None = None, profile: Profile | None = None, force: bool = True,
             variant_cycle: int | None = None) -> Result:
    """Generate one capture; returns what was written (see module docstring). ``profile``
    (Python API only) replaces the scenario's volume knobs, e.g. for tests. ``force=False`` (the
    command line without --force) refuses to replace existing files. ``variant_cycle`` K
    (``--variant-cycle``): each family's episodes take its variants in turn from K x episodes on
    (:func:`~iotwatch.captures.sim.home.schedule_attacks`), so homes K = 0, 1, 2, ... cover them all."""
    if scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    if not 3 <= devices <= 60:
        raise InputError(f"--devices must be between 3 and 60, got {devices}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    if variant_cycle is not None and variant_cycle < 0:
        raise InputError(f"--variant-cycle must be >= 0, got {variant_cycle}")
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
    episodes_path = out / f"{stem}.pcapng.episodes.json"

    wall0, cpu0 = time.perf_counter(), time.process_time()
    plan = draw_plan(seed, duration_us, start_offset_us) if profile.varied else None
    cut = plan.cut_us if plan is not None else (start_offset_us or 0)
    sim = Sim(seed, start_time(seed), duration_us + cut)
    env, by_kind = build_home(sim, devices, profile, plan)
    episodes = schedule_attacks(env, by_kind, families, profile, first_us=cut // 2,
                                variant_cycle=variant_cycle)
    log = EpisodeLog(sim.episodes, declared=profile.varied)
    first_t = sim.start + cut  # frames before it are cut away (--start-offset)
    counts = [0] * len(CLASSES)
    class_index = {c: i for i, c in enumerate(CLASSES)}
    # every file through files.OutputFile: refused when it exists (without --force) or is not a
    # regular file, written to a temporary file and renamed into place only when all are complete
    # (a full disk once left a cut pcapng and an empty CSV)
    outs = plan_outputs([(pcap_path, "capture"), (labels_path, "labels CSV"), (episodes_path, "episodes JSON")],
                        force)
    reserve_all(outs)
    try:
        with outs["capture"].open("wb") as fh, outs["labels CSV"].open("w") as lh:
            frame_no = _write_capture(sim, scenario, seed, fh, lh, counts, class_index, first_t, log)
        try:
            log.write(outs["episodes JSON"].tmp_path, pcap_path, scenario, seed)
        except OSError as e:
            e._iotwatch_what = "episodes JSON"
            raise
        for f in outs.values():
            f.commit()
    except OSError as e:
        for f in outs.values():
            f.discard()
        what = getattr(e, "_iotwatch_what", "capture")
        bad = {"capture": pcap_path, "labels CSV": labels_path, "episodes JSON": episodes_path}[what]
        raise write_error(bad, what, e) from None
    except BaseException:
        for f in outs.values():
            f.discard()
        raise
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Result(pcap_path, labels_path, frame_no, dict(zip(CLASSES, counts)), seconds, cpu, episodes)


def _write_capture(sim, scenario: str, seed: int, fh, lh, counts: list[int], class_index: dict, first_t: int,
                   log) -> int:
    """Run the simulation into the open capture (``fh``) and labels CSV (``lh``); returns frames."""
    writer = PcapngWriter(fh, if_name="sim0", if_description=f"iotwatch simulate scenario={scenario} seed={seed}")
    options: list[bytes] = []
    tag_class: list[int] = []
    tag_label: list[str] = []
    tag_episode: list = []
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
        if t < first_t:
            return
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
            flush_rows()

    sim.run(sink)
    flush_rows()
    writer.close()
    return frame_no
