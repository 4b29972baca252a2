"""The wider space of the ``varied`` scenario: address plans, host stacks, name resolution, benign look-alikes.

A real network differs from our classic simulated home in ways a detector must not lean on. Per
home (seed) :func:`draw_plan` draws

* the **address plan**: a /24 inside 192.168/16, 10/8, 172.16/12, the CGNAT range 100.64/10 or a
  public-looking block some networks use internally (25/8, 11/8, 44/8, 5/8), and whether Internet
  peers come from the documentation blocks or from anywhere in the global unicast space;
* **host stacks and TTLs**: a share of devices gets another OS stack or an unusual TTL (32, 128,
  255) and some sit behind a mesh repeater (TTL one lower); Internet peers are 1-30 hops away;
* **how names are resolved**: through the router (visible), by a resolver outside the capture
  (no lookups at all), by DNS-over-HTTPS (TLS to 1.1.1.1/8.8.8.8/9.9.9.9, no port 53), by a
  public resolver, partly cached, or a mix per device;
* how much of the capture start is cut (``--start-offset``; capture starts mid-conversation).

It also holds the benign traffic that resembles attacks (label ``normal``): HTTPS backups to
addresses nobody resolved, browser bursts of many TLS connections to many hosts, adaptive video
streaming over TCP, smart-home pairing bursts (DHCP/ARP/mDNS/SSDP storms, SmartConfig broadcasts,
many short HTTP connections to the new device), uptime health checks (TCP connects to many
ports), NTP bursts, and uploads shaped like exfiltration: periodic HTTPS POSTs of event segments or
log batches to one server (the twin of the staged HTTPS POST exfiltration), sleepy devices that
wake and push a clip or a backlog as their first traffic (a quiet host suddenly uploading to an
address nobody named, as the lab's idle attacker does), and browsers with their own DoH client.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from . import frames as P
from .core import (ANDROID, APPLE, EMBEDDED_LINUX, LINUX, LWIP, LWIP255, MS, SECOND, SERVER_LINUX, SERVER_WIN,
                   WINDOWS, Host, Process, Sim, Stack)
from .devices import (Env, cloud_conn, dhcp_join, eph_port, jitter, lan_conn, lan_delay, tls_handshake, wan_rtt)

# ----------------------------------------------------------------------------- plan
DNS_MODES = ("router", "hidden", "doh", "public", "partial")
DOH_SERVERS = (("1.1.1.1", "cloudflare-dns.com"), ("1.0.0.1", "cloudflare-dns.com"), ("8.8.8.8", "dns.google"),
               ("8.8.4.4", "dns.google"), ("9.9.9.9", "dns.quad9.net"), ("94.140.14.14", "dns.adguard-dns.com"))
PUBLIC_RESOLVERS = ("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222", "64.6.64.6")

_RESERVED = ((0x00000000, 8), (0x0A000000, 8), (0x64400000, 10), (0x7F000000, 8), (0xA9FE0000, 16),
             (0xAC100000, 12), (0xC0000000, 24), (0xC0A80000, 16), (0xC6120000, 15), (0xE0000000, 3),
             (0x19000000, 8), (0x0B000000, 8), (0x2C000000, 8), (0x05000000, 8))  # + the odd LAN blocks


def _in(v: int, base: int, bits: int) -> bool:
    return (v >> (32 - bits)) == (base >> (32 - bits))


@dataclass
class Plan:
    """What one varied home looks like (drawn per seed by :func:`draw_plan`)."""

    prefix: str
    wide_public: bool
    dns: str                       # one of DNS_MODES or "mixed"
    stack_share: float             # share of devices with another stack/TTL
    cut_us: int                    # capture starts this long after the simulation
    mss_clamp: int = 0             # the router clamps the MSS (PPPoE 1452, VPN/tunnel 1360-1400); 0: none
    wan_scale: float = 1.0         # uplink round trips vs the classic 12-90 ms (fibre 0.3 .. satellite 8)
    lan_scale_range: tuple[float, float] = (1.0, 1.0)  # per-host LAN reaction time factor
    doh: tuple[str, str] = DOH_SERVERS[0]
    resolver: str = PUBLIC_RESOLVERS[0]
    client_dns: dict[bytes, str] = field(default_factory=dict)

    def reserved(self, v: int) -> bool:
        return any(_in(v, b, n) for b, n in _RESERVED)

    def host_stack(self, sim: Sim, name: str, kind: str, stack: Stack) -> tuple[Stack, int | None]:
        r = sim.rng("variety/stack/" + name)
        if kind not in ("attacker",) and r.random() < self.stack_share:
            if kind in ("laptop", "phone", "hub"):
                stack = r.choice((LINUX, WINDOWS, APPLE, ANDROID))
            elif kind != "router":
                stack = r.choice((LWIP, LWIP255, EMBEDDED_LINUX, LINUX, WINDOWS))
            if r.random() < 0.3:  # an unusual initial TTL (old RTOS, Windows CE, network gear)
                stack = replace(stack, ttl=r.choice((32, 60, 128, 255)))
        ttl = stack.ttl - 1 if r.random() < 0.12 else None  # behind a mesh repeater / second router
        return stack, ttl

    def lan_scale(self, sim: Sim, name: str) -> float:
        lo, hi = self.lan_scale_range
        return sim.rng("variety/lan/" + name).uniform(lo, hi)

    def clamp(self, stack: Stack) -> Stack:
        return replace(stack, mss=self.mss_clamp) if self.mss_clamp and stack.mss > self.mss_clamp else stack

    def peer_stack(self, r: random.Random, stack: Stack | None, hops: int | None) -> tuple[Stack | None, int | None]:
        if stack is None:
            x = r.random()
            stack = (SERVER_WIN if x < 0.15 else replace(SERVER_LINUX, ttl=255) if x < 0.22
                     else replace(SERVER_LINUX, ttl=128) if x < 0.25 else SERVER_LINUX)
        if hops is None:
            hops = r.randint(1, 30)
        return self.clamp(stack), hops

    def dns_mode(self, sim: Sim, client: Host) -> str:
        mode = self.client_dns.get(client.mac)
        if mode is None:
            if self.dns != "mixed":
                mode = self.dns
            else:
                mode = sim.rng("variety/dns/" + client.name).choice(DNS_MODES)
            self.client_dns[client.mac] = mode
        return mode


def _odd_prefix(r: random.Random) -> str:
    x = r.random()
    if x < 0.35:
        return f"192.168.{r.randrange(256)}"
    if x < 0.6:
        return f"10.{r.randrange(256)}.{r.randrange(256)}"
    if x < 0.75:
        return f"172.{r.randint(16, 31)}.{r.randrange(256)}"
    if x < 0.88:
        return f"100.{r.randint(64, 127)}.{r.randrange(256)}"
    return f"{r.choice((25, 11, 44, 5))}.{r.randrange(256)}.{r.randrange(256)}"


def draw_plan(seed: int, duration_us: int, cut_us: int | None = None) -> Plan:
    r = random.Random(f"iotwatch-sim/{seed}/variety/plan")
    dns = r.choices(DNS_MODES + ("mixed",), weights=(30, 20, 15, 8, 7, 20))[0]
    if cut_us is None:  # a capture started later than the devices: every long conversation is mid-stream
        cut_us = 0 if r.random() < 0.3 else int(r.uniform(5, 120) * SECOND)
    plan = Plan(prefix=_odd_prefix(r), wide_public=r.random() < 0.7, dns=dns, stack_share=r.choice((0.0, 0.2, 0.5)),
                cut_us=cut_us, doh=r.choice(DOH_SERVERS), resolver=r.choice(PUBLIC_RESOLVERS))
    plan.mss_clamp = r.choice((0, 0, 0, 1452, 1400, 1360))  # drawn last: earlier draws stay as they were
    plan.wan_scale = r.choice((0.3, 0.5, 1.0, 1.0, 2.0, 8.0))
    plan.lan_scale_range = r.choice(((0.3, 1.0), (1.0, 1.0), (0.5, 3.0), (1.0, 10.0)))
    return plan


# ----------------------------------------------------------------------------- name resolution
class Resolver:
    """Answers :meth:`Home.lookup` for clients whose DNS is not the router's (see ``Plan.dns_mode``)."""

    def __init__(self, env: Env, plan: Plan):
        self.env, self.plan, self.sim, self.home = env, plan, env.sim, env.home
        self.doh_tag = env.normal("doh")
        self._conns: dict[bytes, list] = {}

    def __call__(self, t: int, client: Host, name: str, rng: random.Random, qtype: int):
        mode = self.plan.dns_mode(self.sim, client)
        if mode == "router" or (mode == "partial" and rng.random() < 0.35):
            return None
        if mode in ("hidden", "partial"):
            return t + rng.randint(1 * MS, 40 * MS)
        if mode == "public":
            return self.home.peer(P.ip4(self.plan.resolver))
        return self._doh(t, client, rng)

    def _doh(self, t: int, client: Host, rng: random.Random) -> int:
        st = self._conns.get(client.mac)
        if st is None or st[1] > t or t - st[1] > st[2]:
            if st is not None and st[1] <= t and st[0].open:
                st[0].close(t, from_a=rng.random() < 0.5)
                t += rng.randint(1 * MS, 5 * MS)
            ip, sni = self.plan.doh
            port = 853 if rng.random() < 0.15 else 443  # DNS over TLS now and then
            c = cloud_conn(self.env, client, self.home.peer(P.ip4(ip)), port, self.doh_tag, rng)
            t = c.connect(t)
            t = tls_handshake(self.env, c, t, rng, sni)
            st = self._conns[client.mac] = [c, t, rng.choice((30, 60, 120, 300)) * SECOND]
        c = st[0]
        t = c.send(t, True, self.env.tls_records(rng.randint(60, 140), rng), ack=False)
        t = c.send(t + c.db + rng.randint(1 * MS, 25 * MS), False, self.env.tls_records(rng.randint(90, 520), rng))
        st[1] = t
        return t


# ----------------------------------------------------------------------------- benign look-alikes
def unresolved_backup(env: Env, dev: Host, rng: random.Random, size_mb: tuple[float, float]) -> Process:
    """A backup/sync client (rclone, Backblaze, a NAS's cloud sync) uploading to a hard-coded or
    long-cached endpoint: bulk HTTPS egress to an address no lookup in the capture names."""
    tag = env.normal("backup-upload")
    t = env.sim.now
    server = env.home.unseen_peer(rng)
    port = rng.choice((443, 443, 443, 8443))
    while True:
        streams = rng.choice((1, 1, 2, 4))
        end = t
        for i in range(streams):
            c = cloud_conn(env, dev, server, port, tag, rng, loss=0.002)
            e = c.connect(t + i * rng.randint(2 * MS, 30 * MS))
            e = tls_handshake(env, c, e, rng, rng.choice(("", "s3.example-cloud.net", "f003.backblaze.example")))
            size = int(rng.uniform(*size_mb) * 1024 * 1024 / streams)
            e = c.send(e, True, env.tls_records(size, rng), rate=rng.uniform(0.5e6, 12e6))
            e = c.send(e + c.db, False, env.tls_records(rng.randint(100, 900), rng))
            e = c.close(e + rng.randint(5 * MS, 200 * MS), from_a=rng.random() < 0.7)
            end = max(end, e)
        t = end
        if rng.random() < 0.3:
            server = env.home.unseen_peer(rng)
        t += jitter(rng, rng.choice((60, 180, 600)), 0.6)
        yield t


def chunked_uploads(env: Env, dev: Host, rng: random.Random) -> Process:
    """A periodic uploader: a cloud camera pushing event segments while motion lasts, a log/metrics
    shipper (fluent-bit, a Datadog agent), a sync client: every 3-60 s an HTTPS POST of 20-800 kB to
    the same server, on a fresh TLS connection or one kept alive, a tiny answer, for minutes, then a
    pause. The server is named by a lookup or by nothing in the capture (hard-coded/cached address),
    the SNI names it or is empty. The benign twin of the staged HTTPS POST exfiltration
    (``tools.https_post_exfil``): same shape, label ``normal``."""
    tag = env.normal("chunked-upload")
    home = env.home
    t = env.sim.now
    name = rng.choice(("events.example-cam.com", "logs.example-telemetry.net", "ingest.example-metrics.io",
                       "sync.example-drive.com", "upload.example-doorbell.com"))
    resolved = rng.random() < 0.5
    server = None if resolved else home.unseen_peer(rng)
    port = rng.choice((443, 443, 443, 8443))
    sni = name if rng.random() < 0.7 else ""
    while True:
        end = t + int(rng.uniform(30, 300) * SECOND)
        period = math.exp(rng.uniform(math.log(3), math.log(60)))
        keep = rng.random() < 0.3  # HTTP/2 keep-alive: every chunk on one connection
        c = None
        while t < end:
            if c is None:
                peer = server
                if peer is None:
                    t, ip = home.lookup(t, dev, name, rng)
                    peer = home.peer(ip)
                c = cloud_conn(env, dev, peer, port, tag, rng, loss=0.001)
                t = c.connect(t + rng.randint(100, 2 * MS))
                t = tls_handshake(env, c, t, rng, sni)
            t = c.send(t, True, env.tls_records(rng.randint(20, 800) * 1024, rng), rate=rng.uniform(0.3e6, 5e6))
            t = c.send(t + c.db, False, env.tls_records(rng.randint(40, 300), rng))
            if not keep:
                t = c.close(t + rng.randint(5 * MS, 100 * MS), from_a=rng.random() < 0.7)
                c = None
            t += jitter(rng, period, 0.4)
            yield t
        if c is not None:
            t = c.close(t, from_a=True)
        t += jitter(rng, rng.choice((60, 180, 600)), 0.6)
        yield t


def wake_uploads(env: Env, dev: Host, rng: random.Random, size_mb: tuple[float, float]) -> Process:
    """A device that sleeps and wakes to upload at once: a battery camera or doorbell pushing a clip,
    a laptop whose lid opens and whose sync client pushes its backlog, a phone leaving power saving.
    Silent for minutes (or since the capture began), then its first traffic is TLS -- a DoH lookup
    when its resolver is DoH, or nothing visible at all (a cached/hard-coded address) -- and a bulk
    upload of 0.1-20 MB, one or two streams, then silent again: a quiet host suddenly pushing data
    to a server nobody named, all normal (the lab's idle attacker host does the same)."""
    tag = env.normal("wake-upload")
    home = env.home
    t = env.sim.now
    name = rng.choice(("clips.example-doorbell.com", "api.example-battcam.net", "sync.example-drive.com",
                       "backup.example-cloud.org"))
    while True:
        x = rng.random()
        if x < 0.3:
            t, ip = home.lookup(t, dev, name, rng)  # router / hidden / DoH / public, as the home resolves
            server = home.peer(ip)
        elif x < 0.6:
            t = doh_exchange(env, dev, rng, t, rng.randint(1, 4))  # its own DoH client, whatever the home does
            server = home.peer(home.resolve(name))
        else:
            server = home.unseen_peer(rng)
        port = rng.choice((443, 443, 443, 8443))
        sni = name if rng.random() < 0.6 else ""
        size = rng.uniform(*size_mb) * 1024 * 1024
        streams = rng.choice((1, 1, 1, 2))
        end = t
        for i in range(streams):
            c = cloud_conn(env, dev, server, port, tag, rng, loss=0.002)
            e = c.connect(t + i * rng.randint(2 * MS, 30 * MS))
            e = tls_handshake(env, c, e, rng, sni)
            e = c.send(e, True, env.tls_records(int(size / streams), rng), rate=rng.uniform(0.4e6, 8e6))
            e = c.send(e + c.db, False, env.tls_records(rng.randint(60, 600), rng))
            e = c.close(e + rng.randint(5 * MS, 200 * MS), from_a=rng.random() < 0.7)
            end = max(end, e)
        t = end + jitter(rng, rng.choice((60, 150, 400)), 0.6)
        yield t


def doh_exchange(env: Env, dev: Host, rng: random.Random, t: int, queries: int) -> int:
    """An application's own DNS-over-HTTPS client (Firefox/Chrome secure DNS, curl --doh-url, an app
    SDK): a TLS connection to a public DoH server (SNI its name, or none for an address literal),
    ``queries`` small request/answer pairs, then closed or left open. Returns the time of the last answer."""
    ip, sni = rng.choice(DOH_SERVERS)
    c = cloud_conn(env, dev, env.home.peer(P.ip4(ip)), 443, env.normal("doh"), rng)
    t = c.connect(t + rng.randint(100, 2 * MS))
    t = tls_handshake(env, c, t, rng, sni if rng.random() < 0.6 else "")
    for _ in range(queries):
        t = c.send(t + rng.randint(0, 3 * MS), True, env.tls_records(rng.randint(60, 160), rng), ack=False)
        t = c.send(t + c.db + rng.randint(1 * MS, 25 * MS), False, env.tls_records(rng.randint(90, 700), rng))
    if rng.random() < 0.6:
        c.close(t + rng.randint(10 * MS, 2 * SECOND), from_a=rng.random() < 0.5)
    return t


def doh_browsing(env: Env, dev: Host, rng: random.Random) -> Process:
    """A browser with secure DNS on: every page is a DoH exchange followed by HTTPS fetches from the
    answers, no port-53 lookup in the capture (the DoH case of issue 12), from time to time."""
    tag = env.normal("web-doh")
    home = env.home
    t = env.sim.now
    while True:
        t = doh_exchange(env, dev, rng, t, rng.randint(1, 6))
        end = t
        for i in range(rng.randint(1, 5)):
            name = f"{rng.choice(('www', 'api', 'cdn', 'status', 'news'))}{rng.randint(1, 30)}.example.{rng.choice(('com', 'net', 'org'))}"
            c = cloud_conn(env, dev, home.peer(home.resolve(name)), 443, tag, rng)
            e = c.connect(t + i * rng.randint(1 * MS, 30 * MS))
            e = tls_handshake(env, c, e, rng, name)
            e = c.send(e, True, env.tls_records(rng.randint(300, 1500), rng), ack=False)
            e = c.send(e + c.db + rng.randint(2 * MS, 60 * MS), False, env.tls_records(rng.randint(500, 80_000), rng),
                       rate=rng.uniform(2e6, 20e6))
            e = c.close(e + rng.randint(20 * MS, 2 * SECOND), from_a=rng.random() < 0.6)
            end = max(end, e)
        t = end + jitter(rng, rng.choice((15, 60, 240)), 0.7)
        yield t


def v6_browsing(env: Env, dev: Host, rng: random.Random) -> Process:
    """Dual-stack browsing: AAAA lookups, then HTTPS over IPv6 to the named server (global addresses)."""
    tag = env.normal("web-v6")
    home = env.home
    home.give_gua6(dev)
    t = env.sim.now
    while True:
        name = rng.choice(("www.example-video.com", "v6.example.net", "api.example-app.com", "cdn.example.org"))
        t, ip = home.lookup(t, dev, name, rng, qtype=P.DNS_AAAA, force=True)
        c = cloud_conn(env, dev, home.peer6(ip), 443, tag, rng, v6=True)
        t = c.connect(t + rng.randint(100, 2 * MS))
        t = tls_handshake(env, c, t, rng, name)
        for _ in range(rng.randint(1, 5)):
            t = c.send(t, True, env.tls_records(rng.randint(300, 1500), rng), ack=False)
            t = c.send(t + c.db + rng.randint(5 * MS, 60 * MS), False, env.tls_records(rng.randint(2000, 200_000), rng),
                       rate=rng.uniform(2e6, 15e6))
        t = c.close(t + rng.randint(20 * MS, 2 * SECOND), from_a=rng.random() < 0.7)
        t += jitter(rng, rng.choice((10, 40, 120)), 0.8)
        yield t


def browser_burst(env: Env, dev: Host, rng: random.Random) -> Process:
    """Opening a news/shopping page: 15-70 TLS connections to 8-40 distinct hosts within a second
    or two, mostly small, some aborted with RST (many short connections: a hard negative for scans
    and for brute force)."""
    tag = env.normal("web-burst")
    home = env.home
    t = env.sim.now
    site = f"{rng.choice(('news', 'shop', 'blog', 'portal', 'media'))}{rng.randint(1, 99)}.example.com"
    while True:
        t += jitter(rng, rng.choice((20, 60, 180, 400)), 0.7)
        yield t
        hosts = [f"{rng.choice(('cdn', 'img', 'static', 'ads', 'track', 'api', 'fonts', 'js'))}{rng.randint(1, 40)}."
                 f"{rng.choice(('example.com', 'example.net', 'cdn.example.org', site))}"
                 for _ in range(rng.randint(8, 40))]
        end = t
        for i in range(rng.randint(15, 70)):
            name = hosts[i % len(hosts)]
            s = t + i * rng.randint(1 * MS, 40 * MS)
            s, ip = home.lookup(s, dev, name, rng)
            c = cloud_conn(env, dev, home.peer(ip), 443, tag, rng)
            e = c.connect(s)
            e = tls_handshake(env, c, e, rng, name)
            e = c.send(e, True, env.tls_records(rng.randint(300, 1500), rng), ack=False)
            e = c.send(e + c.db + rng.randint(2 * MS, 80 * MS), False,
                       env.tls_records(rng.randint(500, 60_000), rng), rate=rng.uniform(2e6, 30e6))
            if rng.random() < 0.25:
                e = c.reset(e + rng.randint(5 * MS, 300 * MS))
            else:
                e = c.close(e + rng.randint(50 * MS, 3 * SECOND), from_a=rng.random() < 0.6)
            end = max(end, e)
        t = end
        yield t


def video_stream(env: Env, dev: Host, rng: random.Random) -> Process:
    """Adaptive streaming over HTTPS/TCP (DASH/HLS): one connection, a 0.5-4 MB segment every 2-6 s
    for minutes (high packet rate towards one client: a hard negative for floods)."""
    tag = env.normal("video-stream")
    home = env.home
    t = env.sim.now
    while True:
        t += jitter(rng, rng.choice((60, 240, 600)), 0.6)
        yield t
        name = rng.choice(("vod.example-stream.com", "edge.example-video.net", "cdn.example-tv.org"))
        t, ip = home.lookup(t, dev, name, rng)
        c = cloud_conn(env, dev, home.peer(ip), 443, tag, rng, loss=0.001)
        t = c.connect(t)
        t = tls_handshake(env, c, t, rng, name)
        end = t + jitter(rng, rng.choice((20, 45, 90)), 0.4)
        mbps = rng.uniform(0.5, 5)
        while t < end:
            t = c.send(t, True, env.tls_records(rng.randint(300, 700), rng), ack=False)
            seg = int(mbps * 1e6 / 8 * rng.uniform(2, 6))
            t = c.send(t + c.db, False, env.tls_records(seg, rng), rate=rng.uniform(3e6, 15e6))
            t += rng.randint(200 * MS, 3 * SECOND)
            yield t
        t = c.close(t, from_a=True)


def pairing_burst(env: Env, phone: Host, device: Host, rng: random.Random) -> Process:
    """Adding a smart-home device with the phone app: the device (re)joins by DHCP a few times,
    SmartConfig/ESP-Touch broadcasts carry the Wi-Fi credentials in datagram lengths, the app
    hammers mDNS/SSDP and opens many short HTTP connections to the device's setup API, the device
    then registers with its cloud. Seconds of storm, all normal."""
    sim, home = env.sim, env.home
    tag = env.normal("pairing")
    t = sim.now
    if rng.random() < 0.6:  # SmartConfig: UDP broadcasts whose lengths encode SSID/password
        for i in range(rng.randint(200, 600)):
            sim.udp(t, phone, home.all_ones, eph_port(rng, phone), rng.choice((7001, 18266, 8266)),
                    bytes(rng.randint(40, 600)), tag)
            t += rng.randint(5 * MS, 12 * MS)
            if i % 50 == 49:
                yield t
    for _ in range(rng.randint(1, 3)):
        t = dhcp_join(env, device, t, rng, device.name.encode()) + rng.randint(200 * MS, 2 * SECOND)
        yield t
    services = ("_hap._tcp", "_matter._tcp", "_matterc._udp", "_hue._tcp", "_esphomelib._tcp", "_googlecast._tcp",
                "_tuya._tcp", "_http._tcp", "_services._dns-sd._udp")
    end = t + rng.randint(5, 25) * SECOND
    port = rng.choice((80, 8080, 8081, 8888))
    n = 0
    while t < end:
        qs = [P.dns_question(f"{s}.local", P.DNS_PTR) for s in rng.sample(services, rng.randint(1, 4))]
        sim.udp(t, phone, home.mdns, 5353, 5353, P.dns_message(0, 0, qs), tag, ttl=255)
        if rng.random() < 0.5:
            full = f"Setup-{device.mac[3:].hex()}._hap._tcp.local"
            rr = [P.dns_rr("_hap._tcp.local", P.DNS_PTR, P.dns_name(full), 4500),
                  P.dns_rr(f"{device.name}.local", P.DNS_A, device.ip, 120, 0x8001)]
            sim.udp(t + rng.randint(5 * MS, 60 * MS), device, home.mdns, 5353, 5353,
                    P.dns_message(0, P.MDNS_RESPONSE_FLAGS, [], rr), tag, ttl=255)
        if rng.random() < 0.3:
            for _ in range(rng.randint(2, 4)):  # the app repeats its M-SEARCH
                sim.udp(t, phone, home.ssdp, eph_port(rng, phone), 1900,
                        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
                        b"ST: ssdp:all\r\n\r\n", tag, ttl=2)
                t += rng.randint(1 * MS, 20 * MS)
        for _ in range(rng.randint(1, 6)):  # setup API: short HTTP exchanges, many connections
            c = lan_conn(env, phone, device, port, tag, rng)
            e = c.connect(t)
            path = rng.choice((b"/info", b"/setup", b"/wifi/scan", b"/api/v1/status", b"/pair-setup", b"/config"))
            e = c.request(e, b"POST " + path + b" HTTP/1.1\r\nHost: " + P.ip_str(device.ip).encode()
                          + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                          b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                          b'{"status":"ok"}\n', server_time=rng.randint(2 * MS, 60 * MS))
            e = c.close(e + rng.randint(1 * MS, 30 * MS), from_a=rng.random() < 0.5)
            t = max(t + rng.randint(10 * MS, 200 * MS), e if rng.random() < 0.3 else t)
            n += 1
        yield t
    for _ in range(rng.randint(2, 6)):  # the device registers with its cloud
        name = rng.choice(("register.example-iot.com", "a1.tuyaeu.example.com", "provision.example-cloud.net"))
        t, ip = home.lookup(t, device, name, rng)
        c = cloud_conn(env, device, home.peer(ip), rng.choice((443, 8883)), tag, rng)
        t = c.connect(t)
        t = tls_handshake(env, c, t, rng, name, tls13=rng.random() < 0.5)
        t = c.request(t, env.tls_records(rng.randint(200, 1200), rng), env.tls_records(rng.randint(200, 3000), rng))
        t = c.close(t + rng.randint(50 * MS, 2 * SECOND))
        yield t


def pairing_sessions(env: Env, phones: list[Host], devices: list[Host], rng: random.Random) -> Process:
    t = env.sim.now
    for _ in range(rng.randint(1, 3)):
        t += jitter(rng, rng.choice((30, 120, 300)), 0.8)
        yield t
        t = yield from _run(pairing_burst(env, rng.choice(phones), rng.choice(devices), rng))


def _run(proc: Process):
    t = 0
    for t in proc:
        yield t
    return t


def health_checks(env: Env, monitor: Host, targets: list[Host], rng: random.Random) -> Process:
    """An uptime monitor (Uptime Kuma, Nagios, a NAS): every 20-60 s a TCP connect to several ports
    of each watched host (closed ports answer RST), HTTP GETs, pings: many hosts and ports on a
    schedule, all normal."""
    sim = env.sim
    tag = env.normal("health-check")
    period = rng.choice((20, 30, 60))
    checks = [(h, rng.sample((22, 23, 53, 80, 443, 554, 1883, 8080, 8123, 8443, 9100, 5000, 3306), rng.randint(1, 5)))
              for h in targets]
    t = sim.now
    while True:
        for h, ports in checks:
            for port in ports:
                c = lan_conn(env, monitor, h, port, tag, rng)
                if h.present_from > t:
                    break
                if rng.random() < 0.5:  # a plain TCP check: connect, close (or RST if nobody listens)
                    e = c.connect(t, refuse=rng.random() < 0.3)
                    if e is not None:
                        c.close(e + rng.randint(100, 2 * MS))
                else:
                    e = c.connect(t)
                    e = c.request(e, b"GET /health HTTP/1.1\r\nHost: " + P.ip_str(h.ip).encode()
                                  + b"\r\nUser-Agent: Uptime-Kuma/1.23\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", server_time=rng.randint(1 * MS, 40 * MS))
                    c.close(e + rng.randint(100, 2 * MS))
                t += rng.randint(2 * MS, 40 * MS)
            if h.present_from <= t and rng.random() < 0.5:
                sim.icmp(t, monitor, h, 8, 0, P.icmp_echo(rng.getrandbits(16), 1), bytes(56), tag)
                sim.icmp(t + lan_delay(rng, h), h, monitor, 0, 0, P.icmp_echo(0, 1), bytes(56), tag)
        t += jitter(rng, period, 0.1)
        yield t


def ssh_user(env: Env, client: Host, server: Host, rng: random.Random) -> Process:
    """A person logging in with SSH who mistypes the password once or twice, then gets in: the same
    encrypted failures as guessing, but one connection, a human pace and a session afterwards."""
    from .devices import ssh_kex
    tag = env.normal("ssh-login")
    t = env.sim.now
    while True:
        c = lan_conn(env, client, server, 22, tag, rng)
        t = c.connect(t)
        t = ssh_kex(env, c, t, rng, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", b"SSH-2.0-OpenSSH_9.6\r\n")
        for _ in range(rng.choice((0, 1, 1, 2))):  # typos: USERAUTH_REQUEST, failure after the PAM delay
            t = c.send(t + rng.randint(2 * SECOND, 8 * SECOND), True, env.noise(16 * rng.randint(5, 7) + 32, rng),
                       ack=False)
            t = c.send(t + c.db + rng.randint(1500 * MS, 3 * SECOND), False, env.noise(48 + 32, rng))
        t = c.request(t + rng.randint(2 * SECOND, 6 * SECOND), env.noise(112, rng), env.noise(48, rng),
                      server_time=rng.randint(20 * MS, 200 * MS))  # success
        end = t + jitter(rng, rng.choice((20, 60, 200)), 0.5)
        while t < end:
            t = c.request(t + rng.randint(100 * MS, 2 * SECOND), env.noise(48, rng), env.noise(48, rng),
                          server_time=rng.randint(200, 2 * MS))
            yield t
        t = c.close(t, from_a=False)
        t += jitter(rng, rng.choice((300, 900, 1800)), 0.5)
        yield t


def ntp_burst(env: Env, hosts: list[Host], rng: random.Random) -> Process:
    """After a power cut every device syncs its clock at once (tens of NTP exchanges in a second)."""
    sim, home = env.sim, env.home
    tag = env.normal("ntp")
    t = sim.now
    for h in hosts:
        if h.present_from > t:
            continue
        server = home.peer(home.new_public_ip(rng))
        for _ in range(rng.randint(1, 4)):
            sport = 123 if rng.random() < 0.5 else eph_port(rng, h)
            sim.udp(t, h, server, sport, 123, P.ntp(3, 0, t), tag)
            sim.udp(t + wan_rtt(rng), server, h, 123, sport, P.ntp(4, 2, t, refid=P.ip4("192.0.2.1")), tag)
            t += rng.randint(1 * MS, 30 * MS)
    yield t


def spawn_lookalikes(env: Env, by_kind: dict[str, list[Host]], rng: random.Random, t0: int, span: int,
                     backup_mb: tuple[float, float], uploads: bool = False) -> None:
    """Start the benign look-alikes in a varied home."""
    sim = env.sim
    lan = [h for h in env.home.hosts if h.local and h is not env.home.gateway]
    people = by_kind.get("laptop", []) + by_kind.get("phone", [])
    iot = [h for k in ("camera", "plug", "sensor", "thermostat", "bridge", "coap", "speaker") for h in by_kind.get(k, [])]

    def at(lo: float = 0.0, hi: float = 0.9) -> int:
        return t0 + int(rng.uniform(lo, hi) * span)

    for h in people + by_kind.get("speaker", []):
        if h.ip6 is not None and rng.random() < 0.5:
            sim.spawn(v6_browsing(env, h, rng), at(0, 0.3))
    for h in people:
        if rng.random() < 0.6:
            sim.spawn(browser_burst(env, h, rng), at(0, 0.3))
        if rng.random() < 0.4:
            sim.spawn(video_stream(env, h, rng), at(0, 0.5))
    for h in rng.sample(lan, min(len(lan), rng.randint(1, 3))):
        sim.spawn(unresolved_backup(env, h, rng, backup_mb), at(0, 0.5))
    if people and iot and rng.random() < 0.7:
        sim.spawn(pairing_sessions(env, people, iot, rng), at(0, 0.4))
    hub = (by_kind.get("hub") or people or lan)[0]
    servers = [h for h in lan if h.kind in ("hub", "camera", "bridge")]
    if people and servers and rng.random() < 0.5:
        sim.spawn(ssh_user(env, rng.choice(people), rng.choice(servers), rng), at(0, 0.6))
    if rng.random() < 0.5:
        watched = [h for h in rng.sample(lan, min(len(lan), rng.randint(3, 10))) if h is not hub]  # not itself
        sim.spawn(health_checks(env, hub, watched, rng), at(0, 0.2))
    if rng.random() < 0.3:
        sim.spawn(ntp_burst(env, lan, rng), at(0.1, 0.8))
    if uploads:  # uploads shaped like exfiltration (a stream of their own: the draws above stay as they were)
        spawn_upload_lookalikes(env, lan, people, sim.rng("variety/uploads"), at, t0, span)


def spawn_upload_lookalikes(env: Env, lan: list[Host], people: list[Host], ru: random.Random, at, t0: int,
                            span: int) -> None:
    """Start the uploads shaped like exfiltration (scenario uploads, through ``spawn_lookalikes``):
    periodic HTTPS POSTs from 1-2 devices, DoH browsing on some people's devices, 1-2 sleepy devices
    that only ever wake to upload. ``at(lo, hi)`` draws a start time within the capture."""
    sim = env.sim
    for h in ru.sample(lan, min(len(lan), ru.randint(1, 2))):
        sim.spawn(chunked_uploads(env, h, ru), at(0, 0.6))
    for h in people:
        if ru.random() < 0.4:
            sim.spawn(doh_browsing(env, h, ru), at(0, 0.5))
    for i in range(ru.randint(1, 2)):  # sleepy devices: nothing but their uploads in the capture
        kind, vendor, stack = ru.choice((("camera", "amazon", EMBEDDED_LINUX), ("camera", "espressif", LWIP),
                                         ("laptop", "apple", APPLE), ("laptop", "dell", WINDOWS)))
        h = env.home.add_host(f"sleepy{i}-{kind}", kind, vendor, stack)
        sim.spawn(wake_uploads(env, h, ru, (0.1, 20.0)), t0 + int(ru.uniform(0.0, 0.7) * span))


__all__ = ["Plan", "draw_plan", "Resolver", "spawn_lookalikes"]
