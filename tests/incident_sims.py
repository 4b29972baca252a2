"""Small simulated captures with chosen attack episodes, for the incident tests of attacks the
standard scenarios do not schedule (the lab's held-out kinds): a slow ``nmap -sS -T1`` scan, FIN /
NULL / Xmas scans and a DHCP starvation. ``iotwatch simulate``'s own writer runs with a schedule
that places exactly the given episodes (so the capture has its ``.labels.csv`` and
``.episodes.json``, like any simulated capture); the home and its benign traffic are the usual ones.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

from iotwatch.captures.sim import frames as P
from iotwatch.captures.sim import simulate as S
from iotwatch.captures.sim import tools as T
from iotwatch.captures.sim.attacks import Attack
from iotwatch.captures.sim.core import LINUX, MS, SECOND, Episode
from iotwatch.captures.sim.home import _after_join

STARVE_OUI = bytes.fromhex("02dead")   # as the lab's helper (captures/lab/services.py)


def dhcp_starvation_lab(env, attacker, rng: random.Random, *, count: int, pause_ms: int = 10):
    """The lab's ``dhcp-starve`` helper: per forged client (random MAC under STARVE_OUI, also the
    Ethernet source) a DISCOVER; the router OFFERs from a small pool, the client REQUESTs it, the
    router ACKs; once the pool is dry the DISCOVERs go unanswered. Labelled ``dos`` as in the lab."""
    atk = Attack(env, "dos", "dhcp-starvation-lab", attacker, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    free = [x for x in range(150, 181) if home.lan_ip(x) not in {h.ip for h in home.hosts}]
    t = sim.now
    for i in range(count):
        m = STARVE_OUI + rng.randbytes(3)
        xid = rng.getrandbits(32)
        disc = P.dhcp(1, xid, m, P.DHCP_DISCOVER, options=[(61, b"\x01" + m), (55, bytes((1, 3, 6, 15)))])
        sim.emit(t, P.udp4_frame(P.BROADCAST, m, bytes(4), b"\xff\xff\xff\xff", 64, rng.getrandbits(16), False, 68, 67,
                                 disc), atk.tag)
        if free:
            ip = home.lan_ip(free.pop())
            rt = t + rng.randint(1 * MS, 5 * MS)
            sim.emit(rt, P.udp4_frame(m, gw.mac, gw.ip, ip, 64, gw.next_id(), False, 67, 68,
                                      P.dhcp(2, xid, m, P.DHCP_OFFER, yiaddr=ip, siaddr=gw.ip)), atk.tag)
            rt += rng.randint(1 * MS, 5 * MS)
            req = P.dhcp(1, xid, m, P.DHCP_REQUEST, options=[(61, b"\x01" + m), (50, ip), (54, gw.ip)])
            sim.emit(rt, P.udp4_frame(P.BROADCAST, m, bytes(4), b"\xff\xff\xff\xff", 64, rng.getrandbits(16), False,
                                      68, 67, req), atk.tag)
            rt += rng.randint(1 * MS, 5 * MS)
            sim.emit(rt, P.udp4_frame(m, gw.mac, gw.ip, ip, 64, gw.next_id(), False, 67, 68,
                                      P.dhcp(2, xid, m, P.DHCP_ACK, yiaddr=ip, siaddr=gw.ip)), atk.tag)
            t = rt
        else:
            t += 100 * MS          # the helper's wait for an offer
        t += pause_ms * MS
        if i % 20 == 19:
            yield t
    yield t


def nmap(kind: str, timing: int, ports: int, seconds: float = 600) -> Callable:
    def make(env, attacker, victims, rng):
        return T.nmap_scan(env, attacker, victims[:1], rng, kind=kind, timing=timing, ports=ports, seconds=seconds)
    return make


def starvation(count: int) -> Callable:
    def make(env, attacker, victims, rng):
        return dhcp_starvation_lab(env, attacker, rng, count=count)
    return make


def capture(out: Path, name: str, episodes: list[tuple[str, str, float, Callable]], *, seed: int = 5,
            seconds: int = 240, devices: int = 5) -> Path:
    """Write ``out/name.pcapng`` (+ labels, episodes) with the home of ``seed`` and the given episodes:
    ``(family, kind, start second, make(env, attacker, victims, rng) -> process)``. A DHCP
    starvation's victim in the episodes file is the home's DHCP server, the router (the wire would
    name the broadcast address its DISCOVERs go to)."""
    gateway = []

    def schedule(env, by_kind, families, profile, first_us=0, variant_cycle=None):
        sim, home = env.sim, env.home
        gateway.append(".".join(map(str, home.gateway.ip)))
        rng = sim.rng("attacks")
        kali = home.add_host("attacker", "attacker", "intel", LINUX, v6=True)
        join = sim.start + 2 * SECOND
        kali.present_from = join
        sim.spawn(_after_join(env, kali, rng), join)
        lan = [h for h in home.hosts if h.local and h is not kali and h is not home.gateway]
        for k, (family, kind, at_s, make) in enumerate(episodes):
            at = sim.start + int(at_s * SECOND)
            ep = sim.scheduling = Episode(len(sim.episodes), family, kind, at)
            ep.declared["attacker"] = kali
            sim.episodes.append(ep)
            r = sim.rng(f"episode/{k}")
            victims = [r.choice(lan)]
            try:
                sim.spawn(make(env, kali, victims, r), at)
            finally:
                sim.scheduling = None
            ep.kind = kind
        return [kind for _, kind, _, _ in episodes]

    real = S.schedule_attacks
    S.schedule_attacks = schedule
    try:
        pcap = S.simulate(out, seed=seed, duration_us=seconds * SECOND, devices=devices, scenario="home",
                          name=name).pcap
    finally:
        S.schedule_attacks = real
    side = Path(str(pcap) + ".episodes.json")
    doc = json.loads(side.read_text())
    for e in doc["episodes"]:
        if "dhcp-starvation" in e["kind"]:
            e["victims"] = gateway[:1]
    side.write_text(json.dumps(doc, indent=1))
    return pcap
