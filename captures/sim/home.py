"""Composition of a simulated home: which devices live there and when which attack happens.

:func:`build_home` picks the device mix for a seed (a hub, cameras, MQTT sensors, plugs, speakers,
laptops, phones, CoAP devices, thermostats, a light bridge), gives them vendor MACs and addresses,
and spawns their behaviours from :mod:`.devices`. :func:`schedule_attacks` adds an attacker
laptop (which also browses and syncs its clock like any machine) and places attack episodes of
:mod:`.attacks` over the capture, drawing tool, victim and intensity per episode, so every
seed gives another mix. :class:`Profile` holds the volume knobs of a scenario.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Callable

from . import attacks as A
from . import devices as D
from . import tools as T
from . import v6 as V6
from . import variety as V
from .core import (ANDROID, APPLE, EMBEDDED_LINUX, LINUX, LWIP, LWIP255, MS, SECOND, WINDOWS, Episode, Home, Host,
                   Process, Sim)

CLASSES = ("normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration")
ATTACK_FAMILIES = CLASSES[1:]


@dataclass(frozen=True)
class Profile:
    """Volume knobs of a scenario (the demo must stay under 2 MB; training data can be heavy)."""

    camera_kbps: tuple[int, int] = (600, 1500)
    camera_fps: tuple[int, int] = (12, 25)
    continuous_stream: bool = True
    stream_seconds: tuple[int, ...] = (20, 45, 90, 180)
    clip_kb: tuple[int, int] = (800, 4000)
    firmware_kb: tuple[int, int] = (2000, 8000)
    heavy_web: bool = True
    flood_rate: tuple[int, int] = (800, 4000)
    flood_seconds: tuple[float, float] = (4, 12)
    scan_ports: tuple[int, ...] = (100, 1000)
    upload_mb: tuple[float, float] = (4, 20)
    backup_mb: tuple[float, float] = (2, 15)
    tunnel_seconds: tuple[float, float] = (30, 120)
    tunnel_rate: tuple[float, float] = (5, 30)
    snapshot_kb: tuple[int, int] = (20, 60)
    episodes_per_10min: float = 3.0
    min_episodes: int = 2
    extra_clients: int = 0
    varied: bool = False      # draw address plan, stacks, DNS visibility, wider attack kinds (variety.py)
    upload_lookalikes: bool = False  # varied: also the uploads shaped like exfiltration (variety.py)
    exfil_lookups: bool = False  # half the upload exfiltrations resolve a name first (EXFIL_NAMES)
    cloud_cameras: float = 0.0  # share of cameras that are cloud-only (Ring/Blink/Arlo style): no local RTSP
    #                             stream, no local API for the hub to poll, no NAS snapshots -- an idle host
    #                             whose only traffic is its vendor cloud and the clips it uploads
    ipv6_attacks: float = 0.0  # share of the dos / exfiltration / recon episodes done over IPv6 (v6.py: floods,
    #                            ICMPv6 and DNS-over-IPv6 tunnels, alive6); also nmap -6 and ssh-over-IPv6's share
    traceroutes: bool = False  # laptops and phones run traceroute / tracert / mtr now and then (normal)


DEMO_PROFILE = Profile(camera_kbps=(20, 35), camera_fps=(4, 6), continuous_stream=False, stream_seconds=(15, 20),
                       clip_kb=(40, 120), firmware_kb=(30, 80), heavy_web=False, flood_rate=(150, 300),
                       flood_seconds=(3, 4), scan_ports=(100,), upload_mb=(0.3, 0.6), backup_mb=(0.1, 0.3),
                       tunnel_seconds=(10, 20), tunnel_rate=(4, 10), snapshot_kb=(3, 8), episodes_per_10min=2.5,
                       min_episodes=1)

# scenario "varied": wide volume ranges; the rest is drawn per home and per episode
VARIED_PROFILE = Profile(camera_kbps=(50, 1500), camera_fps=(4, 25), continuous_stream=False,
                         stream_seconds=(10, 30, 90), clip_kb=(100, 4000), firmware_kb=(500, 6000),
                         flood_rate=(100, 8000), flood_seconds=(2, 8), scan_ports=(100, 1000, 3000),
                         upload_mb=(0.5, 10), backup_mb=(0.5, 8), tunnel_seconds=(20, 180), tunnel_rate=(0.5, 40),
                         episodes_per_10min=6.0, min_episodes=2, varied=True)

EXFIL_NAMES = ("transfer.example-share.com", "api.example-paste.net", "upload.example-files.io",
               "s3.example-bucket.com", "cdn-sync.example-c2.net", "drive.example-storage.org")
# scenario "uploads" (opt-in, not in the training data of the bundled model: measured no better, see
# docs/sim_vs_real.md): a varied home plus the uploads shaped like exfiltration (variety.chunked_uploads,
# wake_uploads, doh_browsing), clips and backups as large as the exfiltration uploads, and half the upload
# exfiltrations to a name looked up first
UPLOADS_PROFILE = replace(VARIED_PROFILE, clip_kb=(100, 12000), backup_mb=(0.3, 20), upload_lookalikes=True,
                          exfil_lookups=True, cloud_cameras=0.4)

# scenario "varied6" (opt-in): a varied home plus IPv6 attacks (a third of the dos, exfiltration and recon
# episodes, nmap -6 and ssh over IPv6 at that share too) and benign traceroutes (docs/sim_vs_real.md)
VARIED6_PROFILE = replace(VARIED_PROFILE, ipv6_attacks=0.35, traceroutes=True)

CORE_KINDS = ("hub", "camera", "sensor", "plug", "speaker", "laptop", "phone", "coap")
EXTRA_KINDS = ("sensor", "sensor", "plug", "plug", "camera", "speaker", "phone", "laptop", "thermostat", "bridge",
               "coap")
_CAMERA_CLOUDS = (("hikvision", "dev.hik-connect.example.com", "clips.hik-connect.example.com"),
                  ("dahua", "p2p.easy4ip.example.com", "upload.easy4ip.example.com"),
                  ("wyze", "api.wyzecam.example.com", "kvs.wyze-upload.example.com"))
_PLUG_CLOUDS = (("tplink", "n-devs.tplinkcloud.example.com"), ("espressif", "a1.tuyaus.example.com"))
_SPEAKER_CLOUDS = (("amazon", "avs-alexa-na.amazon.example.com", "music.amazon.example.com", "_amzn-wplay._tcp"),
                   ("google", "clients4.google.example.com", "rr5.googlevideo.example.com", "_googlecast._tcp"),
                   ("sonos", "api.ws.sonos.example.com", "audio.spotify.example.com", "_sonos._tcp"))
SITES = ("www.wikipedia.example.org", "news.example.com", "www.shop.example.com", "mail.example.net",
         "docs.example.org", "www.video.example.com", "forum.example.net", "www.bank.example.com")


class _Builder:
    """State shared while one home is assembled."""

    def __init__(self, sim: Sim, profile: Profile, plan: V.Plan | None = None):
        self.sim, self.profile = sim, profile
        self.home = Home(sim, plan)
        self.env = D.Env(sim, self.home)
        self.by_kind: dict[str, list[Host]] = {}
        self.hub_host: Host | None = None
        self.cloud_only: set[Host] = set()  # cloud-only cameras (Profile.cloud_cameras)
        self.t0 = sim.start
        self.span = sim.end - sim.start

    def at_some_point(self, r: random.Random, lo_s: int, frac: float) -> int:
        """A time between ``lo_s`` seconds in and ``frac`` of the capture."""
        return self.t0 + r.randint(lo_s * SECOND, max((lo_s + 1) * SECOND, int(self.span * frac)))

    def spawn(self, proc: Process, at: int) -> None:
        self.sim.spawn(proc, at)

    # --- one function per device kind: create the host, spawn its behaviours from ``at``
    def hub(self, name: str, r: random.Random, at: int) -> Host:
        h = self.home.add_host(name, "hub", r.choice(("raspberrypi", "raspberrypi", "samjin")), LINUX, v6=True)
        self.hub_host = h
        return h

    def camera(self, name: str, r: random.Random, at: int) -> Host:
        p, env = self.profile, self.env
        vendor, cloud, upload = r.choice(_CAMERA_CLOUDS)
        h = self.home.add_host(name, "camera", vendor, r.choice((EMBEDDED_LINUX, LINUX)))
        first = not self.by_kind.get("camera")
        # its own stream of draws: homes without cloud-only cameras keep every other draw
        cloud_only = p.cloud_cameras > 0 and self.sim.rng("cloud-camera/" + name).random() < p.cloud_cameras
        stream = D.camera_stream(env, h, self.hub_host or self.home.gateway, r, fps=r.randint(*p.camera_fps),
                                 kbps=r.randint(*p.camera_kbps), continuous=p.continuous_stream and first,
                                 session_s=p.stream_seconds)
        if cloud_only:
            self.cloud_only.add(h)
        else:
            self.spawn(stream, at)
        self.spawn(D.camera_cloud(env, h, r, cloud, upload, clip_kb=p.clip_kb), at + r.randint(1, 4) * SECOND)
        self.spawn(D.ntp_client(env, h, r, "time.vendor.example.com", r.choice((300, 900))), at + 2 * SECOND)
        if vendor in ("dahua", "wyze") or r.random() < 0.3:
            self.spawn(D.camera_p2p(env, h, r, relay_kb=p.clip_kb), at + r.randint(1, 10) * SECOND)
        if self.hub_host is not None and r.random() < 0.5 and not cloud_only:  # the hub doubles as a NAS
            self.spawn(D.ftp_snapshots(env, h, self.hub_host, r, r.choice((60, 180, 400)), snapshot_kb=p.snapshot_kb),
                       at + 5 * SECOND)
        return h

    def sensor(self, name: str, r: random.Random, at: int) -> Host:
        env = self.env
        h = self.home.add_host(name, "sensor", "espressif", LWIP)
        room = r.choice(("livingroom", "kitchen", "garage", "bedroom"))
        self.spawn(D.mqtt_sensor(env, h, self.hub_host or self.home.gateway, r, period=r.choice((10, 15, 30, 60)),
                                 keepalive=r.choice((30, 60, 120)), topic=f"home/{room}/{name}",
                                 qos=r.choice((0, 0, 1))), at)
        self.spawn(D.ntp_client(env, h, r, "pool.ntp.example.org", r.choice((600, 1800, 3600))), at + SECOND)
        if self.hub_host is not None and r.random() < 0.25:  # a second, misconfigured client on the same board
            self.spawn(D.misconfigured_mqtt(env, h, self.hub_host, r), at + r.randint(5, 60) * SECOND)
        return h

    def plug(self, name: str, r: random.Random, at: int) -> Host:
        env = self.env
        vendor, cloud = r.choice(_PLUG_CLOUDS)
        h = self.home.add_host(name, "plug", vendor, r.choice((LWIP, LWIP255)) if vendor == "espressif"
                               else EMBEDDED_LINUX)
        self.spawn(D.smart_plug(env, h, r, cloud, persistent=vendor == "tplink" or r.random() < 0.3), at)
        if vendor == "espressif":
            self.spawn(D.tuya_broadcast(env, h, r), at + r.randint(0, 5 * SECOND))
        self.spawn(D.firmware_check(env, h, r, "fw.vendor-cdn.example.net", self.profile.firmware_kb),
                   at + r.randint(30, 300) * SECOND)
        return h

    def speaker(self, name: str, r: random.Random, at: int) -> Host:
        env = self.env
        vendor, cloud, music, service = r.choice(_SPEAKER_CLOUDS)
        h = self.home.add_host(name, "speaker", vendor, r.choice((LINUX, ANDROID)), v6=True)
        self.spawn(D.smart_speaker(env, h, r, cloud, music), at)
        self.spawn(D.mdns_announcer(env, h, r, service, f"{vendor.title()}-{h.mac[3:].hex()}", 8009,
                                    r.choice((60, 120))), at)
        self.spawn(D.ntp_client(env, h, r, "time.speaker.example.com", 900), at + SECOND)
        self.spawn(D.dns_chatter(env, h, r, r.choice((60, 120))), at + r.randint(1, 30) * SECOND)
        return h

    def laptop(self, name: str, r: random.Random, at: int) -> Host:
        env = self.env
        vendor = r.choice(("intel", "dell", "apple"))
        stack = APPLE if vendor == "apple" else r.choice((WINDOWS, WINDOWS, LINUX))
        h = self.home.add_host(name, "laptop", vendor, stack, v6=True)
        self.spawn(D.web_client(env, h, r, SITES, quic=r.random() < 0.7, heavy=self.profile.heavy_web), at)
        self.spawn(D.firmware_check(env, h, r, "update.os-vendor.example.com", self.profile.firmware_kb),
                   at + 60 * SECOND)
        self.spawn(D.mdns_browser(env, h, r, ("_airplay._tcp", "_googlecast._tcp", "_ipp._tcp",
                                              "_spotify-connect._tcp"), r.choice((60, 120))), at + 5 * SECOND)
        self.spawn(D.dns_chatter(env, h, r, r.choice((20, 40, 90))), at + r.randint(1, 20) * SECOND)
        if self.hub_host is not None and r.random() < 0.7:
            self.spawn(D.admin_ssh(env, h, self.hub_host, r), self.at_some_point(r, 20, 1 / 3))
        self.spawn(D.connectivity_check(env, h, r, r.choice((60, 300))), at + r.randint(0, 5 * SECOND))
        cameras = self.by_kind.get("camera")
        if cameras and r.random() < 0.4:
            self.spawn(D.admin_telnet(env, h, r.choice(cameras), r), self.at_some_point(r, 30, 1 / 2))
        return h

    def phone(self, name: str, r: random.Random, at: int) -> Host:
        env = self.env
        vendor = r.choice(("apple", "google"))
        h = self.home.add_host(name, "phone", vendor, APPLE if vendor == "apple" else ANDROID,
                               randomized_mac=r.random() < 0.7, v6=True)
        joins = r.random() < 0.5
        if joins:  # comes home during the capture: DHCP + ARP probes first
            at = self.at_some_point(r, 10, 1 / 2)
            h.present_from = at
            self.spawn(_after_join(env, h, r), at)
            at += 3 * SECOND
        self.spawn(D.web_client(env, h, r, SITES, quic=True, heavy=self.profile.heavy_web), at)
        if vendor == "apple":
            self.spawn(D.apple_push(env, h, r), at)
        self.spawn(D.dns_chatter(env, h, r, r.choice((15, 30, 60))), at + r.randint(1, 10) * SECOND)
        self.spawn(D.connectivity_check(env, h, r, r.choice((30, 120, 300))), at + r.randint(0, 5 * SECOND))
        backup = "photos-upload.example.com" if vendor == "google" else "p52-content.icloud.example.com"
        self.spawn(D.photo_backup(env, h, r, backup, self.profile.backup_mb), at)
        if not joins and h.mac[0] & 0x02 and r.random() < 0.5:
            self.spawn(D.mac_rotation(env, h, r), self.at_some_point(r, 30, 3 / 4))
        self.spawn(D.mdns_browser(env, h, r, ("_homekit._tcp", "_hap._tcp", "_airplay._tcp", "_companion-link._tcp",
                                              "_googlecast._tcp"), r.choice((30, 90))), at + 2 * SECOND)
        return h

    def thermostat(self, name: str, r: random.Random, at: int) -> Host:
        h = self.home.add_host(name, "thermostat", r.choice(("nest", "ecobee")), LWIP)
        self.spawn(D.smart_plug(self.env, h, r, f"{h.vendor}.api.example.com", persistent=False), at)
        return h

    def bridge(self, name: str, r: random.Random, at: int) -> Host:
        h = self.home.add_host(name, "bridge", "signify", EMBEDDED_LINUX, v6=True)
        self.spawn(D.smart_plug(self.env, h, r, "bridge.meethue.example.com", persistent=True), at)
        self.spawn(D.mdns_announcer(self.env, h, r, "_hue._tcp", f"Hue Bridge - {h.mac[3:].hex()}", 443, 120), at)
        return h

    def coap(self, name: str, r: random.Random, at: int) -> Host:
        return self.home.add_host(name, "coap", r.choice(("signify", "xiaomi", "espressif")), LWIP255)

    def hub_services(self) -> None:
        """The hub watches everyone (pings, HTTP polls, SSDP, mDNS) and polls the CoAP devices."""
        hub, env, home = self.hub_host, self.env, self.home
        if hub is None:
            return
        r = self.sim.rng("hub")
        targets = [h for h in home.hosts if h.local and h is not hub and h is not home.gateway
                   and h not in self.cloud_only]
        self.spawn(D.hub_discovery(env, hub, r, targets, r.choice((30, 60)), snapshot_kb=self.profile.snapshot_kb),
                   self.t0 + r.randint(2 * SECOND, 10 * SECOND))
        responders = [(h, h.name) for h in self.by_kind.get("speaker", []) + self.by_kind.get("bridge", [])]
        self.spawn(D.mdns_browser(env, hub, r, ("_hap._tcp", "_googlecast._tcp", "_hue._tcp", "_esphomelib._tcp",
                                                "_printer._tcp", "_sonos._tcp", "_airplay._tcp"), 60,
                                  responders=responders), self.t0 + r.randint(1 * SECOND, 20 * SECOND))
        for dev in self.by_kind.get("coap", []):
            self.spawn(D.coap_poller(env, hub, dev, self.sim.rng("coap/" + dev.name), r.choice((5, 10, 20))),
                       self.t0 + r.randint(1 * SECOND, 10 * SECOND))
        self.spawn(D.ntp_client(env, hub, r, "pool.ntp.example.org", 1024), self.t0 + r.randint(SECOND, 2 * SECOND))


def build_home(sim: Sim, devices: int, profile: Profile, plan: V.Plan | None = None
               ) -> tuple[D.Env, dict[str, list[Host]]]:
    """Create ``devices`` devices (+ the router), spawn their behaviour; returns the environment and
    the hosts by kind. The first eight are one of each core kind, the rest drawn per seed.
    ``plan`` (scenario varied): address plan, stacks, name resolution and benign look-alikes."""
    b = _Builder(sim, profile, plan)
    rng = sim.rng("layout")
    n = devices + profile.extra_clients
    kinds = list(CORE_KINDS[:n]) + [rng.choice(EXTRA_KINDS) for _ in range(max(0, n - len(CORE_KINDS)))]
    makers: dict[str, Callable[[str, random.Random, int], Host]] = {
        "hub": b.hub, "camera": b.camera, "sensor": b.sensor, "plug": b.plug, "speaker": b.speaker,
        "laptop": b.laptop, "phone": b.phone, "thermostat": b.thermostat, "bridge": b.bridge, "coap": b.coap}
    for i, kind in enumerate(kinds):
        name = f"{kind}{len(b.by_kind.get(kind, ())) + 1}"
        r = sim.rng("dev/" + name)
        at = b.t0 + rng.randint(0, 8 * SECOND) + i * rng.randint(50 * MS, 400 * MS)
        h = makers[kind](name, r, at)
        b.by_kind.setdefault(kind, []).append(h)
        if h.ip6 is not None:
            sim.spawn(_v6_join(b.env, h, r), at + r.randint(0, 2 * SECOND))
    b.hub_services()
    sim.spawn(D.router_housekeeping(b.env, sim.rng("router")), b.t0)
    if plan is not None:
        b.home.resolver_hook = V.Resolver(b.env, plan)
        V.spawn_lookalikes(b.env, b.by_kind, sim.rng("variety/lookalikes"), b.t0, b.span, profile.backup_mb,
                           uploads=profile.upload_lookalikes)
    people = b.by_kind.get("laptop", []) + b.by_kind.get("phone", [])
    if profile.traceroutes and people:  # a stream of its own: homes without traceroutes keep every draw
        rt = sim.rng("traceroute")
        cut = plan.cut_us if plan is not None else 0  # the first one after the part --start-offset cuts away
        sim.spawn(V6.traceroutes(b.env, people, rt), b.t0 + cut + int(rt.uniform(0.02, 0.4) * (b.span - cut)))
    return b.env, b.by_kind


def _after_join(env: D.Env, dev: Host, rng: random.Random) -> Process:
    yield D.dhcp_join(env, dev, env.sim.now, rng, dev.name.encode())


def _v6_join(env: D.Env, dev: Host, rng: random.Random) -> Process:
    yield D.ipv6_join(env, dev, env.sim.now, rng)


# ----------------------------------------------------------------------------- attacks
class _Episodes:
    """Draws one attack episode of a family: tool, victim and intensity (returns its description)."""

    # probes/flood packets per episode: 100 per second of capture, 3k-25k (a 2-minute home is not one flood)
    cap = 25_000

    def __init__(self, env: D.Env, by_kind: dict[str, list[Host]], attacker: Host, profile: Profile):
        self.env, self.sim, self.home, self.by_kind = env, env.sim, env.home, by_kind
        self.kali, self.p = attacker, profile
        home = self.home
        self.lan = [h for h in home.hosts if h.local and h.kind != "attacker" and h is not home.gateway]
        self.iot = [h for h in self.lan if h.kind in ("camera", "plug", "sensor", "thermostat", "coap", "bridge")]
        self.iot = self.iot or self.lan
        self.servers = [h for h in self.lan if h.kind in ("camera", "hub", "plug", "bridge")] or self.lan

    def present(self, at: int) -> list[Host]:
        """LAN devices connected at ``at`` (a phone that comes home later is no victim before that)."""
        return [h for h in self.lan if h.present_from <= at]

    # --- ground truth per episode: who, whom, what (see schedule_attacks)
    rec: Episode | None = None

    def spawn(self, proc: Process, at: int) -> None:
        """Start an attack process (it joins the episode being scheduled, see ``Sim.spawn``)."""
        self.sim.spawn(proc, at)

    def note(self, **kw) -> None:
        if self.rec is not None:
            self.rec.declared.update(kw)

    VARIANTS = {
        "recon": ("syn", "version", "udp", "arp", "ping", "masscan", "masscan-lan", "mirai"),
        "dos": ("syn-none", "syn-random", "syn-fixed", "udp", "icmp", "slowloris", "mirai"),
        "bruteforce": ("ssh", "telnet", "ftp", "http-get", "mqtt", "mirai"),
        "spoofing": ("arp", "dns", "ra"),
        "exfiltration": ("iodine", "dnscat2", "icmp", "upload"),
    }

    def recon(self, r: random.Random, at: int, what: str) -> str:
        env, kali, p, victim = self.env, self.kali, self.p, r.choice(self.servers)
        self.note(attacker=kali, victims=[victim])
        if what == "syn":
            proc = A.nmap_syn_scan(env, kali, victim, r, ports=r.choice(p.scan_ports), timing=r.choice((3, 4, 5)))
        elif what == "version":
            self.spawn(A.nmap_version_probe(env, kali, victim, r), at + 2 * SECOND)
            proc = A.nmap_syn_scan(env, kali, victim, r, ports=100, timing=4)
        elif what == "udp":
            target = r.choice(self.present(at) + [self.home.gateway])
            self.note(victims=[target])
            proc = A.nmap_udp_scan(env, kali, target, r, ports=r.randint(20, 45))
        elif what == "arp":
            self.note(victims=[], targets="lan")
            proc = A.arp_sweep(env, kali, r, tool=r.choice(("nmap-sn", "arp-scan")))
        elif what == "ping":
            self.note(victims=[], targets="lan")
            proc = A.ping_sweep(env, kali, r)
        elif what == "masscan":
            self.note(victims=[], targets="internet")
            proc = A.masscan(env, kali, r, rate=r.choice((500, 1000, 2000)),
                             count=r.randint(800, 3000) if p.heavy_web else r.randint(300, 600))
        elif what == "masscan-lan":
            proc = A.masscan(env, kali, r, rate=r.choice((300, 500, 1000)), count=r.randint(300, 2000), target=victim)
        else:
            bot = r.choice(self.iot)
            self.note(attacker=bot, victims=[], targets="internet")
            proc = A.mirai_scan(env, bot, r, count=r.randint(300, 1500) if p.heavy_web else 300,
                                rate=r.randint(80, 200))
        self.spawn(proc, at)
        return what

    def dos(self, r: random.Random, at: int, what: str) -> str:
        env, kali, p, victim = self.env, self.kali, self.p, r.choice(self.servers)
        rate, secs = r.randint(*p.flood_rate), r.uniform(*p.flood_seconds)
        self.note(attacker=kali, victims=[victim])
        if what.startswith("syn-"):
            proc = A.hping3_syn_flood(env, kali, victim, r, rate=rate, seconds=secs, spoof=what[4:],
                                      dport=r.choice(A.open_ports(victim) or (80,)))
        elif what == "udp":
            # hping3's default empty datagrams: with -d N ('X' padding) the sweeping source port lands on
            # registered ports whose Wireshark dissectors call the padding malformed
            proc = A.hping3_udp_flood(env, kali, victim, r, rate=rate, seconds=secs,
                                      dport=r.choice((53, 80, 123, 1900, 5683, 0, r.randint(1024, 65535))),
                                      spoof=r.random() < 0.3)
        elif what == "icmp":
            proc = A.hping3_icmp_flood(env, kali, victim, r, rate=rate, seconds=secs,
                                       data=r.choice((0, 0, 56, 120, 512)))
        elif what == "slowloris":
            proc = A.slowloris(env, kali, victim, r, sockets=r.choice((50, 100, 150)),
                               seconds=r.uniform(40, 120) if p.heavy_web else 35)
        else:
            method = r.choice(("dns", "syn"))
            what = f"mirai-{method}"
            bot = r.choice(self.iot)
            self.note(attacker=bot, victims=[], targets="internet")
            proc = A.botnet_flood(env, bot, r, rate=rate, seconds=secs, method=method)
        self.spawn(proc, at)
        return what

    def bruteforce(self, r: random.Random, at: int, what: str) -> str:
        cameras = self.by_kind.get("camera") or self.servers
        if what == "mirai":
            bot = self.home.unseen_peer(r) if r.random() < 0.6 else r.choice(self.iot)
            target = r.choice(cameras)
            if target is bot:  # a compromised camera does not guess its own password (only then a new draw)
                target = r.choice([h for h in cameras if h is not bot] or [self.home.gateway])
            self.note(attacker=bot, victims=[target])
            proc = A.mirai_telnet_login(self.env, bot, target, r, attempts=r.randint(8, 30))
        else:
            hubs = self.by_kind.get("hub") or self.servers
            target = r.choice(cameras if what in ("telnet", "http-get") else hubs)
            self.note(attacker=self.kali, victims=[target])
            proc = A.hydra(self.env, self.kali, target, r, service=what, tasks=r.choice((2, 4, 4, 8, 16)),
                           attempts=r.randint(30, 120))
        self.spawn(proc, at)
        return what

    def spoofing(self, r: random.Random, at: int, what: str) -> str:
        env, kali = self.env, self.kali
        victim = r.choice(self.present(at))
        self.note(attacker=kali, victims=[victim, self.home.gateway])
        if what == "ra":
            self.note(victims=[], targets="lan")
            self.spawn(A.rogue_ra(env, kali, r, count=r.randint(10, 40), interval=r.choice((1, 3, 5))), at)
            return what
        tool = r.choice(("arpspoof", "bettercap", "ettercap-req"))
        secs = r.uniform(30, 120) if self.p.heavy_web else r.uniform(20, 40)
        self.spawn(A.arp_poison(env, kali, victim, r, seconds=secs,
                                    interval={"arpspoof": 2.0, "bettercap": 1.0, "ettercap-req": 10.0}[tool],
                                    both=r.random() < 0.7, tool=tool), at)
        if what == "dns":
            self.spawn(A.dns_spoof(env, kali, victim, r, count=r.randint(3, 8),
                                       tool=r.choice(("dnsspoof", "bettercap"))), at + 3 * SECOND)
        return f"{what}:{tool}"

    def exfiltration(self, r: random.Random, at: int, what: str) -> str:
        env, p = self.env, self.p
        client = r.choice(self.present(at))
        self.note(attacker=client, victims=[])
        if what in ("iodine", "dnscat2"):
            proc = A.dns_tunnel(env, client, r, tool=what, seconds=r.uniform(*p.tunnel_seconds),
                                qps=r.uniform(*p.tunnel_rate), direct=r.random() < 0.25)
        elif what == "icmp":
            what = "icmp-" + r.choice(("ptunnel", "icmptunnel", "hping3"))
            proc = A.icmp_tunnel(env, client, r, seconds=r.uniform(*p.tunnel_seconds), pps=r.uniform(*p.tunnel_rate),
                                 tool=what[5:])
        else:
            proc = A.bulk_upload(env, client, r, megabytes=r.uniform(*p.upload_mb),
                                 port=r.choice((443, 443, 8443, 80, 8080, 4444, 9001)), name=self._exfil_name(r))
        self.spawn(proc, at)
        return what

    # Profile.ipv6_attacks: the share of a family's episodes replaced by one of these (v6.py)
    V6_VARIANTS = {
        "dos": ("syn6", "syn6-spoofed", "udp6", "icmp6", "icmp6", "inbound-syn6", "inbound-icmp6", "inbound-udp6"),
        "exfiltration": ("icmp6-tunnel", "icmp6-tunnel", "dns6-tunnel"),
        "recon": ("alive6-multicast", "alive6-range"),
    }

    def over_ipv6(self, r: random.Random, at: int, what: str) -> str:
        """One IPv6 episode (``V6_VARIANTS``); returns its description (``...-v6`` kinds)."""
        env, p, home = self.env, self.p, self.home
        present = self.present(at)
        if what.startswith("alive6"):
            self.note(attacker=self.kali, victims=[], targets="lan", tool="alive6")
            mode = what[7:]
            self.spawn(V6.alive6(env, self.kali, r, mode=mode, count=r.choice((64, 256, 1024)),
                                 rate=_loguniform(r, 50, 2000)), at)
            return f"alive6-{mode}-v6"
        if what.endswith("tunnel"):
            v6_hosts = [h for h in present if h.ip6 is not None]
            client = r.choice(v6_hosts or present)
            self.note(attacker=client, victims=[])
            if what == "dns6-tunnel":
                tool = r.choice(("iodine", "dnscat2"))
                self.spawn(V6.dns6_tunnel(env, client, r, tool=tool, seconds=r.uniform(*p.tunnel_seconds),
                                          qps=_loguniform(r, *p.tunnel_rate)), at)
                return f"dns6-tunnel-{tool}-v6"
            tool = r.choice(("ptunnel", "icmpsh"))
            self.note(tool=tool)
            self.spawn(V6.icmp6_tunnel(env, client, r, seconds=r.uniform(*p.tunnel_seconds),
                                       pps=_loguniform(r, *p.tunnel_rate), tool=tool), at)
            return f"icmp6-tunnel-{tool}-v6"
        # dos: a flood at one victim's IPv6 address, from the attacker or spoofed Internet sources
        victim = r.choice(present)
        rate, secs = int(_loguniform(r, *p.flood_rate)), r.uniform(*p.flood_seconds)
        inbound = what.startswith("inbound-")
        # the victim's answers count too (and the attacker's kernel RSTs when a SYN flood is not spoofed)
        secs = min(secs, self.cap / rate) / (3 if what == "syn6" else 2)
        src = home.unseen_peer(r) if inbound else self.kali
        link_local = not inbound and victim.ip6 is not None and r.random() < 0.4
        self.note(attacker=src, victims=[victim])
        kind = what[8:] if inbound else what
        if kind.startswith("syn6"):
            tool = r.choice(("thcsyn6", "nping"))
            servers = [h for h in present if A.open_ports(h)]
            if servers and r.random() < 0.7:
                victim = r.choice(servers)
                self.note(victims=[victim])
            link_local = link_local and victim.ip6 is not None
            self.spawn(V6.syn6_flood(env, src, victim, r, rate=rate, seconds=secs, spoof=kind.endswith("spoofed"),
                                     dport=r.choice(A.open_ports(victim) or (80, 443, 22)), link_local=link_local,
                                     tool=tool), at)
            what = f"{tool}-{kind}"
        elif kind == "udp6":
            self.spawn(V6.udp6_flood(env, src, victim, r, rate=rate, seconds=secs,
                                     dport=r.choice((53, 80, 123, 1900, 5683, r.randint(1024, 65535))),
                                     spoof=not inbound and r.random() < 0.3,
                                     link_local=link_local), at)
            what = kind
        else:
            tool = r.choice(("ping6", "thc"))
            self.spawn(V6.icmp6_flood(env, src, victim, r, rate=rate, seconds=secs, tool=tool,
                                      data=r.choice((8, 56, 512, 1232)), spoof=not inbound and r.random() < 0.2,
                                      link_local=link_local), at)
            what = f"{kind}-{tool}"
        self.note(tool=what)
        return ("inbound-" if inbound else "") + what + ("-ll" if link_local else "") + "-v6"

    def _exfil_name(self, r: random.Random) -> str | None:
        """``Profile.exfil_lookups`` (scenario uploads): half the uploads go to a name the tool looks
        up first (a file-sharing service, a bucket, the attacker's domain), so "no lookup before the
        upload" marks no class; other profiles keep their draws (the demo stays byte-identical)."""
        if not self.p.exfil_lookups or r.random() < 0.5:
            return None
        return r.choice(EXFIL_NAMES)


def _loguniform(r: random.Random, lo: float, hi: float) -> float:
    return math.exp(r.uniform(math.log(lo), math.log(hi)))


class _WideEpisodes(_Episodes):
    """Scenario ``varied``: the kinds of docs/sim_vs_real.md, rates and timings drawn per episode
    (slow scans and fast ones, floods from 100 to 20k packets/s, slow and parallel guessing), the
    attacker a LAN machine, a compromised device or an Internet host."""

    VARIANTS = {
        "recon": ("nmap", "nmap-fast", "nmap-slow", "nmap", "sweep", "hping3-scan", "udp", "arp", "ping", "version",
                  "masscan", "mirai"),
        "dos": ("reflection", "reflection", "http-flood", "syn-none", "syn-random", "inbound-syn", "udp", "icmp",
                "inbound-udp", "slowloris", "mirai"),
        "bruteforce": ("ssh-guess", "ssh-guess", "ssh-slow", "ssh-inbound", "telnet-guess", "http-form", "mqtt-guess",
                       "telnet", "http-get", "ftp", "mirai"),
        "spoofing": ("arp", "dns", "ra", "dhcp-starvation", "dhcp-spoof", "arp-subnet"),
        "exfiltration": ("iodine", "dnscat2", "icmp", "upload", "dns2tcp", "dns-beacon", "https-post"),
    }

    def _who(self, r: random.Random, target: Host | None = None) -> Host:
        """The attacking machine: usually the attacker's laptop, sometimes a compromised device (never the
        ``target`` itself: a device does not guess its own passwords over the wire)."""
        if r.random() < 0.75:
            return self.kali
        who = r.choice(self.iot)  # the draws of a home without the collision stay as they were
        return who if who is not target else r.choice([h for h in self.iot if h is not target] or [self.kali])

    def recon(self, r: random.Random, at: int, what: str) -> str:
        env, p = self.env, self.p
        if what in ("udp", "arp", "ping", "version", "masscan", "mirai"):
            return super().recon(r, at, what)
        who = self._who(r)
        victims = [h for h in r.sample(self.present(at), min(len(self.present(at)), r.choice((1, 1, 1, 2, 4))))
                   if h is not who] or [self.home.gateway]
        self.note(attacker=who, victims=victims)
        if what == "sweep":
            tool = r.choice(("masscan", "zmap"))
            rate = int(_loguniform(r, 10_000, 100_000))
            ports = (r.choice((23, 80, 443, 22, 8080, 7547)),) if tool == "zmap" else tuple(
                r.sample((21, 22, 23, 80, 443, 554, 1883, 2323, 3389, 5555, 7547, 8080, 8443, 37777), r.randint(1, 8)))
            self.note(victims=[], targets="internet", tool=tool)
            self.spawn(T.internet_sweep(env, who, r, tool=tool, rate=rate,
                                        count=min(self.cap, int(rate * r.uniform(1, 4))),
                                        ports=ports), at)
            return f"{tool}-{rate}pps"
        if what == "hping3-scan":
            first = r.choice((1, 1, 20, 1000))
            self.spawn(T.hping3_scan(env, who, victims[0], r, first=first, last=first + r.choice((100, 500, 1024))),
                       at)
            return what
        kind = r.choice(("sS", "sS", "sS", "sT", "sT", "sA", "sF", "sX", "sN"))
        if what == "nmap-fast":
            timing, min_rate = 5, r.choice((0, 5000, 10_000, 20_000))
            ports = min(r.choice((1000, 3000, 10_000)), max(100, self.cap // len(victims)))
        elif what == "nmap-slow":
            timing, min_rate, ports = r.choice((0, 1, 1, 2)), 0, r.choice((20, 100, 1000))
        else:
            timing, min_rate, ports = r.choice((3, 4, 4, 5)), 0, r.choice(p.scan_ports)
        v6 = r.random() < (p.ipv6_attacks or 0.15)  # nmap -6 over the global IPv6 addresses
        self.note(tool=f"nmap -{kind} -T{timing}" + (f" --min-rate {min_rate}" if min_rate else "") + (" -6" if v6 else ""))
        self.spawn(T.nmap_scan(env, who, victims, r, kind=kind, timing=timing, ports=ports, min_rate=min_rate,
                               seconds=r.uniform(120, 600), v6=v6), at)
        return f"nmap-{kind}-T{timing}" + (f"-{min_rate}pps" if min_rate else "") + ("-v6" if v6 else "")

    def dos(self, r: random.Random, at: int, what: str) -> str:
        env, p = self.env, self.p
        victim = r.choice(self.present(at))
        rate, secs = int(_loguniform(r, *p.flood_rate)), r.uniform(*p.flood_seconds)
        secs = min(secs, self.cap / rate)  # bounded flood packets per episode (class balance, file sizes)
        if what == "reflection":
            proto = r.choice(("dns", "dns", "ntp", "snmp", "ssdp", "coap", "memcached", "chargen"))
            refl = [self.home.peer(self.home.new_public_ip(r)) for _ in range(int(_loguniform(r, 5, 400)))]
            self.note(attacker=None, victims=[victim], reflectors=refl, tool=f"{proto} reflection")
            self.spawn(T.reflection_flood(env, victim, r, proto=proto, rate=min(rate, 15_000), seconds=secs,
                                          reflectors=refl), at)
            return f"reflection-{proto}"
        if what == "http-flood":
            web = [h for h in self.present(at) if 80 in A.open_ports(h)] or [victim]
            victim = r.choice(web)
            if r.random() < 0.5:
                sources = [self.kali]
            else:
                sources = [self.home.unseen_peer(r) for _ in range(r.randint(5, 200))]
            self.note(attacker=sources[0] if len(sources) == 1 else None, attackers=sources, victims=[victim])
            self.spawn(T.http_flood(env, sources, victim, r, rate=min(rate, 1500) / 5, seconds=secs), at)
            return what
        if what == "inbound-udp":  # a UDP/ICMP flood from the Internet with spoofed sources, at a forwarded host
            src = self.home.unseen_peer(r)
            self.note(attacker=src, victims=[victim])
            if r.random() < 0.5:
                self.spawn(A.hping3_udp_flood(env, src, victim, r, rate=rate, seconds=secs,
                                              dport=r.choice((53, 80, 123, 0, r.randint(1024, 65535))), spoof=True), at)
                return "inbound-udp"
            self.spawn(A.hping3_icmp_flood(env, src, victim, r, rate=rate, seconds=secs,
                                           data=r.choice((0, 56, 512, 1400))), at)
            return "inbound-icmp"
        if what == "inbound-syn":
            src = self.home.unseen_peer(r)
            servers = [h for h in self.present(at) if A.open_ports(h)] or [victim]
            victim = r.choice(servers)
            self.note(attacker=src, victims=[victim])
            self.spawn(A.hping3_syn_flood(env, src, victim, r, rate=rate, seconds=secs, spoof="random",
                                          dport=r.choice(A.open_ports(victim) or (80,))), at)
            return what
        if what == "mirai":
            method = r.choice(("dns", "syn"))
            bot = r.choice(self.iot)
            self.note(attacker=bot, victims=[], targets="internet")
            self.spawn(A.botnet_flood(env, bot, r, rate=rate, seconds=secs, method=method), at)
            return f"mirai-{method}"
        if what in ("udp", "icmp") or what.startswith("syn-"):
            kali = self.kali
            self.note(attacker=kali, victims=[victim])
            secs /= 3 if what == "syn-none" else 2  # the victim's answers (and the attacker's RSTs) count too
            if what == "udp":
                proc = A.hping3_udp_flood(env, kali, victim, r, rate=rate, seconds=secs,
                                          dport=r.choice((53, 80, 123, 1900, 5683, 0, r.randint(1024, 65535))),
                                          spoof=r.random() < 0.3)
            elif what == "icmp":
                proc = A.hping3_icmp_flood(env, kali, victim, r, rate=rate, seconds=secs,
                                           data=r.choice((0, 0, 56, 120, 512, 1400)))
            else:
                proc = A.hping3_syn_flood(env, kali, victim, r, rate=rate, seconds=secs, spoof=what[4:],
                                          dport=r.choice(A.open_ports(victim) or (80, 443, 22)))
            self.spawn(proc, at)
            return what
        return super().dos(r, at, what)

    def bruteforce(self, r: random.Random, at: int, what: str) -> str:
        env = self.env
        ssh_hosts = [h for h in self.present(at) if h.kind in ("hub", "camera", "laptop", "bridge")] or self.servers
        if what.startswith("ssh"):
            tool = r.choice(tuple(T.SSH_TOOLS))
            target = r.choice(ssh_hosts)
            who = self.home.unseen_peer(r) if what == "ssh-inbound" else self._who(r, target)
            slow = r.choice((5.0, 15.0, 40.0)) if what == "ssh-slow" else 0.0
            self.note(attacker=who, victims=[target], tool=tool)
            v6 = r.random() < (self.p.ipv6_attacks or 0.2)
            self.spawn(T.ssh_guess(env, who, target, r, tool=tool, attempts=r.randint(10, 40) if slow else
                                   r.randint(20, 150), slow=slow, port=22 if r.random() < 0.85 else 2222, v6=v6), at)
            return (f"ssh-{tool}" + ("-slow" if slow else "") + ("-inbound" if what == "ssh-inbound" else "")
                    + ("-v6" if v6 else ""))
        if what == "telnet-guess":
            tool = r.choice(("medusa", "ncrack"))
            target = r.choice(self.by_kind.get("camera") or self.servers)
            who = self._who(r, target)
            self.note(attacker=who, victims=[target], tool=tool)
            self.spawn(T.telnet_guess(env, who, target, r, tool=tool, attempts=r.randint(10, 60),
                                      slow=r.choice((0.0, 0.0, 8.0))), at)
            return f"telnet-{tool}"
        if what == "mqtt-guess":
            tool = r.choice(("mosquitto", "ncrack", "mqtt-pwn"))
            brokers = [h for h in self.present(at) if 1883 in A.open_ports(h)] or self.servers
            target = r.choice(brokers)
            who = self._who(r, target)
            self.note(attacker=who, victims=[target], tool=tool)
            self.spawn(T.mqtt_guess(env, who, target, r, tool=tool, attempts=r.randint(20, 150)), at)
            return f"mqtt-guess-{tool}"
        if what == "http-form":
            tool = r.choice(("hydra", "burp"))
            web = [h for h in self.present(at) if 80 in A.open_ports(h)] or self.servers
            target = r.choice(web)
            self.note(attacker=self.kali, victims=[target], tool=tool)
            self.spawn(T.http_form_guess(env, self.kali, target, r, tool=tool, attempts=r.randint(30, 200)), at)
            return f"http-form-{tool}"
        return super().bruteforce(r, at, what)

    def spoofing(self, r: random.Random, at: int, what: str) -> str:
        env, kali = self.env, self.kali
        if what == "dhcp-starvation":
            # labelled dos, as the lab, the real manifest and the incident engine call it (it exhausts the
            # router's address pool); drawn from this family's tuple so the seeded schedules stay the same
            self.rec.family = "dos"
            tool = r.choice(("yersinia", "dhcpig", "scapy-fixed"))
            self.note(attacker=kali, victims=[self.home.gateway], tool=tool)
            self.spawn(T.dhcp_starvation(env, kali, r, tool=tool, count=r.randint(100, 1500),
                                         rate=_loguniform(r, 5, 2000) if tool != "dhcpig" else r.uniform(5, 50)), at)
            return f"dhcp-starvation-{tool}"
        if what == "dhcp-spoof":
            tool = r.choice(("yersinia", "ettercap", "bettercap"))
            victim = r.choice([h for h in self.present(at) if h.kind in ("phone", "laptop", "camera", "speaker")]
                              or self.present(at))
            self.note(attacker=kali, victims=[victim], tool=tool)
            if r.random() < 0.4:  # starve the real server first
                self.spawn(T.dhcp_starvation(env, kali, r, tool="yersinia", count=r.randint(100, 400),
                                             rate=r.uniform(100, 1000)), at)
                at += 3 * SECOND
            self.spawn(T.rogue_dhcp(env, kali, victim, r, tool=tool, seconds=r.uniform(20, 90)), at)
            return f"dhcp-spoof-{tool}"
        if what == "arp-subnet":
            tool = r.choice(("bettercap", "gratuitous"))
            self.note(attacker=kali, victims=[], targets="lan", tool=tool)
            self.spawn(T.arp_subnet_poison(env, kali, r, tool=tool, seconds=r.uniform(15, 90),
                                           interval=_loguniform(r, 0.2, 10)), at)
            return f"arp-subnet-{tool}"
        return super().spoofing(r, at, what)

    def exfiltration(self, r: random.Random, at: int, what: str) -> str:
        env, p = self.env, self.p
        client = r.choice(self.present(at))
        if what == "dns2tcp":
            self.note(attacker=client, victims=[])
            self.spawn(T.dns2tcp(env, client, r, seconds=r.uniform(*p.tunnel_seconds),
                                 qps=_loguniform(r, *p.tunnel_rate)), at)
            return what
        if what == "dns-beacon":
            self.note(attacker=client, victims=[])
            self.spawn(T.dns_beacon(env, client, r, seconds=r.uniform(60, 400), period=_loguniform(r, 1, 30)), at)
            return what
        if what == "https-post":
            self.note(attacker=client, victims=[])
            self.spawn(T.https_post_exfil(env, client, r, seconds=r.uniform(30, 300), period=_loguniform(r, 3, 60),
                                          chunk_kb=(20, 800), name=self._exfil_name(r)), at)
            return what
        return super().exfiltration(r, at, what)


def schedule_attacks(env: D.Env, by_kind: dict[str, list[Host]], families: tuple[str, ...],
                     profile: Profile, first_us: int = 0, variant_cycle: int | None = None) -> list[str]:
    """Place attack episodes over the capture; returns ``family:tool@offset`` per episode.

    Each episode is a :class:`~iotwatch.captures.sim.core.Episode` in ``sim.episodes``; its
    ``declared`` dict holds what the schedule chose (``tool``, ``attacker``/``attackers``,
    ``victims``, ``reflectors``, ``targets`` = lan/internet for sweeps), written to
    ``*.episodes.json`` by :mod:`.episodes`. ``first_us``: no episode starts in the first
    ``first_us`` of the capture (half the part ``--start-offset`` cuts away: some attacks are
    already under way when the capture starts).
    ``variant_cycle`` K (``iotwatch simulate --variant-cycle``): the episodes of each family take the
    family's distinct variants in turn, starting at K x episodes, instead of a seed-shuffled draw, so a
    series of homes K = 0, 1, 2, ... covers every variant of every family (a training set of a few short
    homes otherwise misses some by chance). Everything else of the home (devices, times, rates, the
    episode draws of each variant) stays what the seed gives.
    """
    sim, home = env.sim, env.home
    if not families:
        return []
    rng = sim.rng("attacks")
    t0 = sim.start + first_us
    span = sim.end - t0
    vendor = rng.choice(("intel", "dell", "raspberrypi", "vmware", "virtualbox", "apple"))
    kali = home.add_host("attacker", "attacker", vendor, LINUX, v6=True)
    if profile.varied:
        r = sim.rng("variety/attacker")
        kali.stack = r.choice((LINUX, LINUX, WINDOWS, APPLE))
        kali.ttl = kali.stack.ttl
    join = t0 + rng.randint(2 * SECOND, max(3 * SECOND, span // 10))
    kali.present_from = join
    sim.spawn(_after_join(env, kali, rng), join)
    # the attacker's machine also does ordinary things: its host context is not "attacks only"
    sim.spawn(D.web_client(env, kali, sim.rng("attacker-web"), SITES, quic=False, heavy=profile.heavy_web),
              join + 5 * SECOND)
    sim.spawn(D.ntp_client(env, kali, sim.rng("attacker-ntp"), "ntp.ubuntu.example.com", 1800), join + 4 * SECOND)
    draw = (_WideEpisodes if profile.varied else _Episodes)(env, by_kind, kali, profile)
    if profile.varied:
        draw.cap = int(min(25_000, max(3_000, span / SECOND * 100)))
    episodes = max(profile.min_episodes, round(span / (600 * SECOND) * profile.episodes_per_10min))
    notes = []
    for family in families:
        # cycle through the family's tools in a seed-shuffled order: every capture covers several
        variants = list(draw.VARIANTS[family])
        rng.shuffle(variants)
        if variant_cycle is not None:
            distinct = list(dict.fromkeys(draw.VARIANTS[family]))
            variants = [distinct[(variant_cycle * episodes + k) % len(distinct)] for k in range(len(distinct))]
        for k, frac in enumerate(sorted(rng.uniform(0.08, 0.92) for _ in range(episodes))):
            at = t0 + int(frac * span)
            # processes spawned now belong to this episode (ground truth: simulate writes *.episodes.json)
            variant, method = variants[k % len(variants)], getattr(draw, family)
            if profile.ipv6_attacks > 0 and family in draw.V6_VARIANTS:  # its own stream: other scenarios keep theirs
                r6 = sim.rng(f"v6/{family}/{k}")
                if r6.random() < profile.ipv6_attacks:
                    variant, method = r6.choice(draw.V6_VARIANTS[family]), draw.over_ipv6
            ep = sim.scheduling = draw.rec = Episode(len(sim.episodes), family, variant, at)
            ep.declared["attacker"] = draw.kali
            sim.episodes.append(ep)
            try:
                what = method(sim.rng(f"episode/{family}/{k}"), at, variant)
            finally:
                sim.scheduling = draw.rec = None
            ep.kind = what
            ep.declared.setdefault("tool", what)
            victims = ep.declared.get("victims") or []
            if len(victims) == 1:
                ep.target = victims[0]
            notes.append(f"{family}:{what}@{(at - sim.start) / SECOND:.0f}s")
    return notes
