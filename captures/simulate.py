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

    iotwatch simulate --scenario demo --seed 4 --duration 3m --devices 10 --out captures/demo --name demo

What is simulated is described in :mod:`~iotwatch.captures.sim_devices` (benign devices, hard
negatives) and :mod:`~iotwatch.captures.sim_attacks` (tools of the five attack families).
"""
from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from . import sim_attacks as A
from . import sim_devices as D
from .errors import InputError
from .pcapng import PcapngWriter, comment_option
from .sim_core import (ANDROID, APPLE, EMBEDDED_LINUX, LINUX, LWIP, LWIP255, MS, SECOND, WINDOWS, Home, Host, Sim)

CLASSES = ("normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration")
ATTACK_FAMILIES = CLASSES[1:]


@dataclass(frozen=True)
class Profile:
    """Volume knobs of a scenario (the demo must stay under 2 MB; training data can be heavy)."""

    camera_kbps: tuple[int, int] = (600, 1500)
    camera_fps: tuple[int, int] = (12, 25)
    continuous_stream: bool = True
    clip_kb: tuple[int, int] = (800, 4000)
    firmware_kb: tuple[int, int] = (2000, 8000)
    heavy_web: bool = True
    stream_seconds: tuple[int, ...] = (20, 45, 90, 180)
    flood_rate: tuple[int, int] = (800, 4000)
    flood_seconds: tuple[float, float] = (4, 12)
    scan_ports: tuple[int, ...] = (100, 1000)
    upload_mb: tuple[float, float] = (4, 20)
    backup_mb: tuple[float, float] = (2, 15)
    tunnel_seconds: tuple[float, float] = (30, 120)
    tunnel_rate: tuple[float, float] = (5, 30)
    episodes_per_10min: float = 2.0
    extra_clients: int = 0


SCENARIOS: dict[str, tuple[Profile, tuple[str, ...]]] = {
    "home": (Profile(), ATTACK_FAMILIES),
    "busy": (Profile(extra_clients=3, episodes_per_10min=3.0), ATTACK_FAMILIES),
    "benign": (Profile(), ()),
    "demo": (Profile(camera_kbps=(20, 35), camera_fps=(4, 6), continuous_stream=False, stream_seconds=(15, 20),
                     clip_kb=(40, 120), firmware_kb=(30, 80), heavy_web=False, flood_rate=(150, 300), flood_seconds=(3, 4),
                     scan_ports=(100,),
                     upload_mb=(0.3, 0.6), backup_mb=(0.1, 0.3), tunnel_seconds=(10, 20), tunnel_rate=(4, 10), episodes_per_10min=2.5), ATTACK_FAMILIES),
}

CORE_KINDS = ("hub", "camera", "sensor", "plug", "speaker", "laptop", "phone", "coap")
EXTRA_KINDS = ("sensor", "sensor", "plug", "plug", "camera", "speaker", "phone", "laptop", "thermostat", "bridge",
               "coap")


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


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(f"simulate: {message}", hint="see 'iotwatch simulate --help'")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="iotwatch simulate", description="Write a synthetic labelled smart-home capture "
                "(pcapng with label=<class> comments + sidecar frame_number,label CSV).",
                epilog="Same arguments => byte-identical output. Classes: " + ", ".join(CLASSES))
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default 1)")
    p.add_argument("--duration", default="10m", metavar="T", help="capture length, e.g. 90s, 10m, 1h (default 10m)")
    p.add_argument("--devices", type=int, default=12, metavar="N", help="benign devices in the home (3-60, default 12)")
    p.add_argument("--attacks", metavar="LIST", help="comma list of " + ",".join(ATTACK_FAMILIES)
                   + ", or all/none (default: the scenario's)")
    p.add_argument("--scenario", default="home", metavar="NAME", help="one of " + ", ".join(SCENARIOS) + " (default home)")
    p.add_argument("--name", metavar="NAME", help="file name stem (default <scenario>-seed<N>)")
    return p


# ----------------------------------------------------------------------------- the home
_CLOUDS = {
    "camera": (("hikvision", "dev.hik-connect.example.com", "clips.hik-connect.example.com"),
               ("dahua", "p2p.easy4ip.example.com", "upload.easy4ip.example.com"),
               ("wyze", "api.wyzecam.example.com", "kvs.wyze-upload.example.com")),
    "plug": (("tplink", "n-devs.tplinkcloud.example.com"), ("espressif", "a1.tuyaus.example.com")),
    "speaker": (("amazon", "avs-alexa-na.amazon.example.com", "music.amazon.example.com"),
                ("google", "clients4.google.example.com", "rr5.googlevideo.example.com"),
                ("sonos", "api.ws.sonos.example.com", "audio.spotify.example.com")),
}
_SITES = ("www.wikipedia.example.org", "news.example.com", "www.shop.example.com", "mail.example.net",
          "docs.example.org", "www.video.example.com", "forum.example.net", "www.bank.example.com")


def _pick(rng, kinds: list[str], n: int) -> list[str]:
    core = [k for k in CORE_KINDS][:n]
    extra = [rng.choice(EXTRA_KINDS) for _ in range(max(0, n - len(core)))]
    return core + extra


def build_home(sim: Sim, devices: int, profile: Profile) -> tuple[D.Env, dict[str, list[Host]]]:
    """Create the devices, spawn their behaviour; returns the environment and hosts by kind."""
    home = Home(sim)
    env = D.Env(sim, home)
    rng = sim.rng("layout")
    kinds = _pick(rng, list(CORE_KINDS), devices + profile.extra_clients)
    by_kind: dict[str, list[Host]] = {}
    t0 = sim.start
    spawn = sim.spawn

    def start(i: int) -> int:
        return t0 + rng.randint(0, 8 * SECOND) + i * rng.randint(50 * MS, 400 * MS)

    hub = None
    for i, kind in enumerate(kinds):
        n = len(by_kind.get(kind, ()))
        name = f"{kind}{n + 1}"
        r = sim.rng("dev/" + name)
        if kind == "hub":
            h = home.add_host(name, kind, r.choice(("raspberrypi", "raspberrypi", "samjin")), LINUX, v6=True)
            hub = h
        elif kind == "camera":
            vendor, cloud, upload = r.choice(_CLOUDS["camera"])
            h = home.add_host(name, kind, vendor, r.choice((EMBEDDED_LINUX, LINUX)))
        elif kind == "sensor":
            h = home.add_host(name, kind, "espressif", LWIP)
        elif kind == "plug":
            vendor, cloud = r.choice(_CLOUDS["plug"])
            h = home.add_host(name, kind, vendor, r.choice((LWIP, LWIP255)) if vendor == "espressif" else EMBEDDED_LINUX)
        elif kind == "speaker":
            vendor, cloud, music = r.choice(_CLOUDS["speaker"])
            h = home.add_host(name, kind, vendor, r.choice((LINUX, ANDROID)), v6=True)
        elif kind == "laptop":
            vendor = r.choice(("intel", "dell", "apple"))
            h = home.add_host(name, kind, vendor, APPLE if vendor == "apple" else r.choice((WINDOWS, WINDOWS, LINUX)),
                              v6=True)
        elif kind == "phone":
            vendor = r.choice(("apple", "google"))
            h = home.add_host(name, kind, vendor, APPLE if vendor == "apple" else ANDROID, randomized_mac=r.random() < 0.7,
                              v6=True)
        elif kind == "thermostat":
            h = home.add_host(name, kind, r.choice(("nest", "ecobee")), LWIP)
        elif kind == "bridge":
            h = home.add_host(name, kind, "signify", EMBEDDED_LINUX, v6=True)
        else:  # coap
            h = home.add_host(name, "coap", r.choice(("signify", "xiaomi", "espressif")), LWIP255)
        by_kind.setdefault(h.kind, []).append(h)
        at = start(i)
        joins = kind == "phone" and r.random() < 0.5
        if joins:  # arrives home during the capture: DHCP + ARP probes
            at = t0 + r.randint(10 * SECOND, max(11 * SECOND, (sim.end - sim.start) // 2))
            spawn(_after_join(env, h, r), at)
            at += 3 * SECOND
        if h.ip6 is not None:
            spawn(_v6_join(env, h, r), at + r.randint(0, 2 * SECOND))
        if kind == "sensor":
            broker = hub or home.gateway
            spawn(D.mqtt_sensor(env, h, broker, r, period=r.choice((10, 15, 30, 60)), keepalive=r.choice((30, 60, 120)),
                                topic=f"home/{r.choice(('livingroom', 'kitchen', 'garage', 'bedroom'))}/{name}",
                                qos=r.choice((0, 0, 1))), at)
            spawn(D.ntp_client(env, h, r, "pool.ntp.example.org", r.choice((600, 1800, 3600))), at + SECOND)
        elif kind == "camera":
            nvr = hub or home.gateway
            first = len(by_kind["camera"]) == 1
            spawn(D.camera_stream(env, h, nvr, r, fps=r.randint(*profile.camera_fps), kbps=r.randint(*profile.camera_kbps),
                                  continuous=profile.continuous_stream and first, session_s=profile.stream_seconds), at)
            spawn(D.camera_cloud(env, h, r, cloud, upload, clip_kb=profile.clip_kb), at + r.randint(1, 4) * SECOND)
            spawn(D.ntp_client(env, h, r, "time.vendor.example.com", r.choice((300, 900))), at + 2 * SECOND)
        elif kind == "plug":
            spawn(D.smart_plug(env, h, r, cloud, persistent=vendor == "tplink" or r.random() < 0.3), at)
            if vendor == "espressif":
                spawn(D.tuya_broadcast(env, h, r), at + r.randint(0, 5 * SECOND))
            spawn(D.firmware_check(env, h, r, "fw.vendor-cdn.example.net", profile.firmware_kb), at + r.randint(30, 300) * SECOND)
        elif kind == "speaker":
            spawn(D.smart_speaker(env, h, r, cloud, music), at)
            svc = {"amazon": "_amzn-wplay._tcp", "google": "_googlecast._tcp", "sonos": "_sonos._tcp"}[vendor]
            spawn(D.mdns_announcer(env, h, r, svc, f"{vendor.title()}-{h.mac[3:].hex()}", 8009, r.choice((60, 120))), at)
            spawn(D.ntp_client(env, h, r, "time.speaker.example.com", 900), at + SECOND)
        elif kind == "laptop":
            spawn(D.web_client(env, h, r, _SITES, quic=r.random() < 0.7, heavy=profile.heavy_web), at)
            spawn(D.firmware_check(env, h, r, "update.os-vendor.example.com", profile.firmware_kb), at + 60 * SECOND)
            spawn(D.mdns_browser(env, h, r, ("_airplay._tcp", "_googlecast._tcp", "_ipp._tcp", "_spotify-connect._tcp"),
                                 r.choice((60, 120))), at + 5 * SECOND)
            spawn(D.dns_chatter(env, h, r, r.choice((20, 40, 90))), at + r.randint(1, 20) * SECOND)
            if hub is not None and r.random() < 0.7:
                spawn(D.admin_ssh(env, h, hub, r), at + r.randint(20, max(21, (sim.end - sim.start) // SECOND // 3)) * SECOND)
        elif kind == "phone":
            spawn(D.web_client(env, h, r, _SITES, quic=True, heavy=profile.heavy_web), at)
            if vendor == "apple":
                spawn(D.apple_push(env, h, r), at)
            spawn(D.dns_chatter(env, h, r, r.choice((15, 30, 60))), at + r.randint(1, 10) * SECOND)
            spawn(D.photo_backup(env, h, r, "photos-upload.example.com" if vendor == "google"
                                 else "p52-content.icloud.example.com", profile.backup_mb), at)
            if not joins and h.mac[0] & 0x02 and r.random() < 0.5:
                spawn(D.mac_rotation(env, h, r), t0 + r.randint(30 * SECOND, max(31 * SECOND, (sim.end - sim.start) * 3 // 4)))
            spawn(D.mdns_browser(env, h, r, ("_homekit._tcp", "_hap._tcp", "_airplay._tcp", "_companion-link._tcp",
                                             "_googlecast._tcp"), r.choice((30, 90))), at + 2 * SECOND)
        elif kind in ("thermostat", "bridge"):
            spawn(D.smart_plug(env, h, r, f"{h.vendor}.api.example.com", persistent=kind == "bridge"), at)
            if kind == "bridge":
                spawn(D.mdns_announcer(env, h, r, "_hue._tcp", f"Hue Bridge - {h.mac[3:].hex()}", 443, 120), at)
    # the hub watches everyone (pings, HTTP polls, SSDP, mDNS) and polls CoAP devices
    if hub is not None:
        r = sim.rng("hub")
        targets = [h for h in home.hosts if h.local and h is not hub and h is not home.gateway]
        spawn(D.hub_discovery(env, hub, r, targets, r.choice((30, 60))), t0 + r.randint(2, 10) * SECOND)
        spawn(D.mdns_browser(env, hub, r, ("_hap._tcp", "_googlecast._tcp", "_hue._tcp", "_esphomelib._tcp",
                                           "_printer._tcp", "_sonos._tcp", "_airplay._tcp"), 60,
                             responders=[(h, h.name) for h in by_kind.get("speaker", []) + by_kind.get("bridge", [])]),
              t0 + r.randint(1, 20) * SECOND)
        for dev in by_kind.get("coap", []):
            spawn(D.coap_poller(env, hub, dev, sim.rng("coap/" + dev.name), r.choice((5, 10, 20))),
                  t0 + r.randint(1, 10) * SECOND)
        spawn(D.ntp_client(env, hub, r, "pool.ntp.example.org", 1024), t0 + SECOND)
    spawn(D.router_housekeeping(env, sim.rng("router")), t0)
    return env, by_kind


def _after_join(env: D.Env, dev: Host, rng) -> D.Process:
    t = env.sim.now
    yield D.dhcp_join(env, dev, t, rng, dev.name.encode())


def _v6_join(env: D.Env, dev: Host, rng) -> D.Process:
    yield D.ipv6_join(env, dev, env.sim.now, rng)


# ----------------------------------------------------------------------------- attack schedule
def schedule_attacks(env: D.Env, by_kind: dict[str, list[Host]], families: tuple[str, ...], profile: Profile) -> list[str]:
    """Place attack episodes over the capture; returns a description of each episode."""
    sim, home = env.sim, env.home
    rng = sim.rng("attacks")
    if not families:
        return []
    span = sim.end - sim.start
    kali_vendor = rng.choice(("intel", "dell", "raspberrypi", "vmware", "virtualbox", "apple"))
    kali = home.add_host("attacker", "attacker", kali_vendor, LINUX, v6=True)
    lan = [h for h in home.hosts if h.local and h.kind not in ("attacker",) and h is not home.gateway]
    iot = [h for h in lan if h.kind in ("camera", "plug", "sensor", "thermostat", "coap", "bridge")] or lan
    victims_tcp = [h for h in lan if h.kind in ("camera", "hub", "plug", "bridge")] or lan
    join = sim.start + rng.randint(2 * SECOND, max(3 * SECOND, span // 10))
    sim.spawn(_after_join(env, kali, rng), join)
    # the attacker's machine also does ordinary things (its host context is not "attacks only")
    sim.spawn(D.web_client(env, kali, sim.rng("attacker-web"), _SITES, quic=False, heavy=profile.heavy_web),
              join + 5 * SECOND)
    sim.spawn(D.ntp_client(env, kali, sim.rng("attacker-ntp"), "ntp.ubuntu.example.com", 1800), join + 4 * SECOND)
    episodes = max(1, round(span / (600 * SECOND) * profile.episodes_per_10min))
    notes: list[str] = []
    fr = lambda: rng.randint(*profile.flood_rate)  # noqa: E731
    fs = lambda: rng.uniform(*profile.flood_seconds)  # noqa: E731
    for family in families:
        slots = sorted(rng.uniform(0.08, 0.92) for _ in range(episodes))
        for k, frac in enumerate(slots):
            at = sim.start + int(frac * span)
            r = sim.rng(f"episode/{family}/{k}")
            victim = r.choice(victims_tcp)
            if family == "recon":
                what = r.choice(("syn", "syn", "udp", "arp", "ping", "masscan", "mirai", "version"))
                if what == "syn":
                    sim.spawn(A.nmap_syn_scan(env, kali, victim, r, ports=r.choice(profile.scan_ports),
                                              timing=r.choice((3, 4))), at)
                elif what == "version":
                    sim.spawn(A.nmap_syn_scan(env, kali, victim, r, ports=100, timing=4), at)
                    sim.spawn(A.nmap_version_probe(env, kali, victim, r), at + 2 * SECOND)
                elif what == "udp":
                    sim.spawn(A.nmap_udp_scan(env, kali, r.choice(lan + [home.gateway]), r, ports=r.randint(20, 45)), at)
                elif what == "arp":
                    sim.spawn(A.arp_sweep(env, kali, r, tool=r.choice(("nmap-sn", "arp-scan"))), at)
                elif what == "ping":
                    sim.spawn(A.ping_sweep(env, kali, r), at)
                elif what == "masscan":
                    sim.spawn(A.masscan(env, kali, r, rate=r.choice((500, 1000, 2000)),
                                        count=r.randint(800, 3000) if profile.heavy_web else r.randint(300, 600)), at)
                else:
                    sim.spawn(A.mirai_scan(env, r.choice(iot), r, count=r.randint(300, 1500) if profile.heavy_web else 300,
                                           rate=r.randint(80, 200)), at)
            elif family == "dos":
                what = r.choice(("syn", "syn", "udp", "icmp", "slowloris", "botnet"))
                if what == "syn":
                    spoof = r.choice(("none", "random", "random", "fixed"))
                    sim.spawn(A.hping3_syn_flood(env, kali, victim, r, rate=fr(), seconds=fs(), spoof=spoof,
                                                 dport=r.choice(A._open_ports(victim) or (80,))), at)
                elif what == "udp":
                    sim.spawn(A.hping3_udp_flood(env, kali, victim, r, rate=fr(), seconds=fs(),
                                                 dport=r.choice((53, 80, 123, 1900, 5683, 0)), data=r.choice((0, 0, 32, 64, 128, 512)),
                                                 spoof=r.random() < 0.3), at)
                elif what == "icmp":
                    sim.spawn(A.hping3_icmp_flood(env, kali, victim, r, rate=fr(), seconds=fs(),
                                                  data=r.choice((0, 0, 56, 120, 512))), at)
                elif what == "slowloris":
                    sim.spawn(A.slowloris(env, kali, victim, r, sockets=r.choice((50, 100, 150)),
                                          seconds=r.uniform(40, 120) if profile.heavy_web else 35), at)
                else:
                    sim.spawn(A.botnet_udp_flood(env, r.choice(iot), r, rate=fr(), seconds=fs()), at)
            elif family == "bruteforce":
                what = r.choice(("ssh", "telnet", "ftp", "http-get", "mqtt", "mirai"))
                if what == "mirai":
                    external = r.random() < 0.6
                    bot = home.unseen_peer(r) if external else r.choice(iot)
                    target = r.choice(by_kind.get("camera", victims_tcp))
                    sim.spawn(A.mirai_telnet_login(env, bot, target, r, attempts=r.randint(8, 30)), at)
                else:
                    target = {"ssh": by_kind.get("hub"), "mqtt": by_kind.get("hub"), "ftp": by_kind.get("hub"),
                              "telnet": by_kind.get("camera"), "http-get": by_kind.get("camera")}.get(what) or victims_tcp
                    sim.spawn(A.hydra(env, kali, r.choice(target), r, service=what, tasks=r.choice((4, 8, 16)),
                                      attempts=r.randint(30, 120)), at)
            elif family == "spoofing":
                what = r.choice(("arp", "arp", "dns", "ra"))
                victim = r.choice(lan)
                if what in ("arp", "dns"):
                    tool = r.choice(("arpspoof", "bettercap", "ettercap-req"))
                    secs = r.uniform(30, 120) if profile.heavy_web else r.uniform(20, 40)
                    sim.spawn(A.arp_poison(env, kali, victim, r, seconds=secs,
                                           interval={"arpspoof": 2.0, "bettercap": 1.0, "ettercap-req": 10.0}[tool],
                                           both=r.random() < 0.7, tool=tool), at)
                    if what == "dns":
                        sim.spawn(A.dns_spoof(env, kali, victim, r, count=r.randint(3, 8),
                                              tool=r.choice(("dnsspoof", "bettercap"))), at + 3 * SECOND)
                    what = f"{what}:{tool}"
                else:
                    sim.spawn(A.rogue_ra(env, kali, r, count=r.randint(10, 40), interval=r.choice((1, 3, 5))), at)
            else:
                what = r.choice(("iodine", "dnscat2", "icmp", "upload", "upload"))
                client = r.choice(lan)
                if what in ("iodine", "dnscat2"):
                    sim.spawn(A.dns_tunnel(env, client, r, tool=what, seconds=r.uniform(*profile.tunnel_seconds),
                                           qps=r.uniform(*profile.tunnel_rate), direct=r.random() < 0.25), at)
                elif what == "icmp":
                    sim.spawn(A.icmp_tunnel(env, client, r, seconds=r.uniform(*profile.tunnel_seconds),
                                            pps=r.uniform(*profile.tunnel_rate), tool=r.choice(("ptunnel", "icmptunnel", "hping3"))),
                              at)
                else:
                    sim.spawn(A.bulk_upload(env, client, r, megabytes=r.uniform(*profile.upload_mb),
                                            port=r.choice((443, 443, 8443, 80, 8080, 4444, 9001)), tls=r.random() < 0.5),
                              at)
            notes.append(f"{family}:{what}@{(at - sim.start) / SECOND:.0f}s")
    return notes


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
    rng = __import__("random").Random(f"iotwatch-sim/{seed}/clock")
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
        raise InputError(f"cannot create output directory {out}: {e.strerror}", hint="choose a writable --out") from None
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
    try:
        fh = open(pcap_path, "wb")
        lh = open(labels_path, "w", encoding="ascii", newline="")
    except OSError as e:
        raise InputError(f"cannot write {pcap_path}: {e.strerror}", hint="choose a writable --out") from None
    with fh, lh:
        writer = PcapngWriter(fh, if_name="sim0", if_description=f"iotwatch simulate scenario={scenario} seed={seed}")
        options: list[bytes] = []
        tag_class: list[int] = []
        tag_label: list[str] = []
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
            frame_no += 1
            write(t, frame, options[tag])
            counts[tag_class[tag]] += 1
            rows.append(f"{frame_no},{tag_label[tag]}\n")
            if len(rows) >= 8192:
                lh.write("".join(rows))
                rows.clear()

        sim.run(sink)
        lh.write("".join(rows))
        writer.close()
    seconds, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return Result(pcap_path, labels_path, frame_no, dict(zip(CLASSES, counts)), seconds, cpu, episodes)


def main(argv: Sequence[str]) -> int:
    ns = build_parser().parse_args(list(argv))
    if ns.scenario not in SCENARIOS:
        raise InputError(f"--scenario: unknown scenario {ns.scenario!r}", hint="choose from " + ", ".join(SCENARIOS))
    res = simulate(ns.out, seed=ns.seed, duration_us=parse_duration(ns.duration), devices=ns.devices,
                   attacks=parse_attacks(ns.attacks, SCENARIOS[ns.scenario][1]), scenario=ns.scenario, name=ns.name)
    per_class = " ".join(f"{c}={n}" for c, n in res.class_counts.items())
    size_mb = res.pcap.stat().st_size / 1e6
    print(f"wrote {res.pcap} ({size_mb:.1f} MB, {res.packets} packets: {per_class}) + {res.labels.name} "
          f"in {res.seconds:.1f} s ({res.packets_per_second:,.0f} packets/s; "
          f"{res.packets_per_cpu_second:,.0f} per CPU-second)")
    return 0
