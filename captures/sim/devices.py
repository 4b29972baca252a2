"""Benign behaviour of a simulated smart home (every packet here is labelled ``normal``).

Each behaviour is a *process* for :class:`~iotwatch.captures.sim.core.Sim`: a generator that emits
packets through the shared helpers and ``yield``\\ s the absolute time (µs) it wants to run next.
They are modelled on what the real devices do on the wire:

* MQTT sensors (ESP32/ESP8266, lwIP): CONNECT/CONNACK, SUBSCRIBE, periodic PUBLISH (QoS 0/1),
  PINGREQ/PINGRESP keepalives, occasional reconnects.
* CoAP devices polled and observed by the hub (CON GET -> piggybacked ACK 2.05, NON notifications).
* Smart plugs: persistent TLS session to the vendor cloud with heartbeats (Kasa style) or a fresh
  TLS connection per poll (Tuya style), plus Tuya's UDP 6667 LAN broadcast.
* Cameras: RTSP session + RTP/RTCP video to the NVR/hub (high packet rate, a hard negative for
  ``dos``), TLS heartbeats and motion-clip uploads to their cloud (bulk upload to a *known*,
  DNS-resolved host: a hard negative for ``exfiltration``).
* Smart speakers: long-lived TLS, voice round trips, music streaming, mDNS announcements.
* Firmware downloads over HTTPS from the vendor CDN.
* The hub (Home Assistant style): mDNS/SSDP discovery, ICMP presence pings and HTTP polls of many
  LAN devices (a hard negative for ``recon``).
* Laptops/phones: web browsing over TLS with parallel connections, QUIC video, push keepalives,
  speed tests (bulk both ways to a resolved host).
* Housekeeping: DHCP join/renew with ARP probe/announce, ARP refreshes, DNS, NTP, SSDP, mDNS.
"""
from __future__ import annotations

import base64
import random
import struct

from . import frames as P
from .core import MS, SECOND, Home, Host, Process, Sim, Tcp

# ----------------------------------------------------------------------------- shared helpers


class Env:
    """What every behaviour needs: the scheduler, the home network and a pool of random bytes."""

    def __init__(self, sim: Sim, home: Home):
        self.sim = sim
        self.home = home
        self._pool = sim.rng("noise").randbytes(1 << 20)
        self.normal = lambda activity: sim.tag("normal", activity)

    def noise(self, n: int, rng: random.Random) -> bytes:
        """``n`` incompressible bytes (ciphertext, compressed video) from the shared pool."""
        pool = self._pool
        if n <= len(pool) - 1:
            o = rng.randrange(len(pool) - n)
            return pool[o:o + n]
        return (pool * (n // len(pool) + 1))[:n]

    def tls_records(self, n: int, rng: random.Random, record: int = 16384) -> bytes:
        """``n`` bytes of TLS application data as full records (+ 22 bytes AEAD overhead each)."""
        out = []
        while n > 0:
            k = min(n, record)
            out.append(P.tls_record(P.TLS_APPDATA, self.noise(k + 17, rng)))
            n -= k
        return b"".join(out)


def jpeg_image(env: Env, rng: random.Random, size: int) -> bytes:
    """A JFIF image: SOI, APP0, SOF0 (640x360 YCbCr), SOS, ``size`` bytes of entropy-coded data
    (0xFF bytes stuffed away, as an encoder does), EOI."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0\x00\x11\x08" + struct.pack("!HH", 360, 640) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + app0 + sof0 + sos + env.noise(size, rng).replace(b"\xff", b"\xfe") + b"\xff\xd9"


def b32(data: bytes) -> str:
    """Unpadded lowercase base32 (how DNS-carried binary data usually looks)."""
    return base64.b32encode(data).decode().rstrip("=").lower()


def jitter(rng: random.Random, seconds: float, frac: float = 0.1) -> int:
    return int(seconds * SECOND * (1 + rng.uniform(-frac, frac)))


def eph_port(rng: random.Random, host: Host) -> int:
    if host.stack.name in ("lwip", "lwip255"):
        return rng.randint(49152, 65535) if host.stack.name == "lwip" else rng.randint(1024, 5000)
    if host.stack.name == "windows":
        return rng.randint(49152, 65535)
    return rng.randint(32768, 60999)


def wan_rtt(rng: random.Random) -> int:
    return rng.randint(12 * MS, 90 * MS)


def lan_delay(rng: random.Random, host: Host) -> int:
    """How fast ``host`` reacts as seen at the capture point (Wi-Fi devices are slower)."""
    base = 3 * MS if host.stack.name.startswith("lwip") else 800
    if host.delay_scale != 1.0:  # scenario varied: wired, busy Wi-Fi, power-saving radios
        base = max(50, int(base * host.delay_scale))
    return base + rng.randint(0, base)


def tls_handshake(env: Env, c: Tcp, t: int, rng: random.Random, sni: str, *, tls13: bool = True) -> int:
    """ClientHello; ServerHello (+CCS + encrypted flight); client CCS + Finished. Returns the end time."""
    sid = rng.randbytes(32)
    hello = P.tls_client_hello(sni, rng.randbytes(32), sid, rng.randbytes(32), tls13=tls13,
                               alpn=(b"h2", b"http/1.1") if tls13 else ())
    t = c.send(t + rng.randint(100, 1500), True, hello, ack=False)
    t += c.db + rng.randint(1 * MS, 8 * MS)
    if tls13:
        flight = (P.tls_server_hello(rng.randbytes(32), sid, rng.randbytes(32)) + P.TLS_CCS_RECORD
                  + P.tls_record(P.TLS_APPDATA, env.noise(rng.randint(2400, 4800), rng)))
        t = c.send(t, False, flight)
        t = c.send(t + c.da, True, P.TLS_CCS_RECORD + P.tls_record(P.TLS_APPDATA, env.noise(53, rng)), ack=False)
    else:  # TLS 1.2 session resumption (abbreviated handshake): what reconnecting embedded clients do
        flight = (P.tls_server_hello(rng.randbytes(32), sid, b"", tls13=False) + P.TLS_CCS_RECORD
                  + P.tls_record(P.TLS_HANDSHAKE, env.noise(40, rng)))
        t = c.send(t, False, flight)
        t = c.send(t + c.da, True, P.TLS_CCS_RECORD + P.tls_record(P.TLS_HANDSHAKE, env.noise(40, rng)), ack=False)
    return t + c.db


def cloud_conn(env: Env, dev: Host, server: Host, dport: int, tag, rng: random.Random, **kw) -> Tcp:
    sport = eph_port(rng, dev)
    da = lan_delay(rng, dev)  # (draw order as before: port, LAN delay, WAN round trip)
    db = wan_rtt(rng)
    if server.delay_scale != 1.0:  # scenario varied: the home's uplink and the server's distance
        db = max(1 * MS, int(db * server.delay_scale))
    return Tcp(env.sim, dev, server, sport, dport, tag, rng, da=da, db=db, **kw)


def lan_conn(env: Env, a: Host, b: Host, dport: int, tag, rng: random.Random, **kw) -> Tcp:
    return Tcp(env.sim, a, b, eph_port(rng, a), dport, tag, rng, da=lan_delay(rng, a), db=lan_delay(rng, b), **kw)


def https_fetch(env: Env, t: int, dev: Host, name: str, rng: random.Random, tag, *, up: int = 600, down: int = 4000,
                tls13: bool = True, rate: float = 3e6, keep: bool = False, port: int = 443):
    """DNS lookup (if needed), TCP+TLS, one request/response, FIN. Returns (end time, connection)."""
    t, ip = env.home.lookup(t, dev, name, rng)
    server = env.home.peer(ip)
    c = cloud_conn(env, dev, server, port, tag, rng, loss=0.002)
    t = c.connect(t + rng.randint(100, 2 * MS))
    t = tls_handshake(env, c, t, rng, name, tls13=tls13)
    t = c.send(t, True, env.tls_records(up, rng), ack=False)
    t += c.db + rng.randint(5 * MS, 60 * MS)
    t = c.send(t, False, env.tls_records(down, rng), rate=rate)
    if not keep:
        if rng.random() < 0.12:  # browsers and Windows often abort with RST instead of FIN
            t = c.reset(t + rng.randint(10 * MS, 200 * MS))
        else:
            t = c.close(t + rng.randint(10 * MS, 200 * MS), from_a=rng.random() < 0.7)
    return t, c


def ssh_kex(env: Env, c: Tcp, t: int, rng: random.Random, server_banner: bytes, client_banner: bytes) -> int:
    """SSH version exchange, KEXINIT both ways, curve25519 ECDH, NEWKEYS, service request."""
    def sstr(b: bytes) -> bytes:
        return struct.pack("!I", len(b)) + b
    t = c.send(t + c.db, False, server_banner)
    t = c.send(t + c.da, True, client_banner)
    t = c.send(t + 200, True, P.ssh_kexinit(
        rng.randbytes(16), b"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
        b"diffie-hellman-group14-sha256", b"ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256",
        b"aes256-ctr,aes192-ctr,aes128-ctr,chacha20-poly1305@openssh.com", b"hmac-sha2-256,hmac-sha2-512"))
    t = c.send(t + c.db, False, P.ssh_kexinit(rng.randbytes(16), b"curve25519-sha256,curve25519-sha256@libssh.org,"
                                              b"diffie-hellman-group14-sha256", b"ssh-ed25519,rsa-sha2-256",
                                              b"aes128-ctr,aes256-ctr,chacha20-poly1305@openssh.com",
                                              b"hmac-sha2-256,hmac-sha1"))
    t = c.send(t + c.da, True, P.ssh_packet(b"\x1e" + sstr(rng.randbytes(32))))
    reply = (b"\x1f" + sstr(sstr(b"ssh-ed25519") + sstr(rng.randbytes(32))) + sstr(rng.randbytes(32))
             + sstr(sstr(b"ssh-ed25519") + sstr(rng.randbytes(64))))
    t = c.send(t + c.db + rng.randint(2 * MS, 15 * MS), False, P.ssh_packet(reply) + P.ssh_packet(b"\x15"))
    t = c.send(t + c.da, True, P.ssh_packet(b"\x15"))
    # from here on everything is encrypted (aes128-ctr + hmac-sha2-256: 32-byte MAC)
    t = c.send(t + 300, True, env.noise(32 + 32, rng))
    return c.send(t + c.db, False, env.noise(32 + 32, rng))


# ----------------------------------------------------------------------------- housekeeping
def dhcp_join(env: Env, dev: Host, t: int, rng: random.Random, hostname: bytes) -> int:
    """DHCP DISCOVER/OFFER/REQUEST/ACK, then ARP probe x3 and announcement (RFC 5227)."""
    sim, home = env.sim, env.home
    tag = env.normal("dhcp")
    gw = home.gateway
    xid = rng.getrandbits(32)
    zero = Host("0.0.0.0", "unconfigured", dev.mac, bytes(4), dev.stack, rng=rng)
    params = (53, bytes((1, 3, 6, 15, 28, 42, 119)))
    opts_c = [(61, b"\x01" + dev.mac), (12, hostname), (55, params[1])]
    server_opts = [(54, gw.ip), (51, struct.pack("!I", 86400)), (1, b"\xff\xff\xff\x00"), (3, gw.ip), (6, gw.ip),
                   (28, home.bcast.ip)]
    sim.udp(t, zero, home.all_ones, 68, 67, P.dhcp(1, xid, dev.mac, P.DHCP_DISCOVER, options=opts_c), tag)
    t += rng.randint(2 * MS, 40 * MS)
    sim.udp(t, gw, Host("c", "c", dev.mac, dev.ip, gw.stack, rng=rng), 67, 68,
            P.dhcp(2, xid, dev.mac, P.DHCP_OFFER, yiaddr=dev.ip, siaddr=gw.ip, options=server_opts), tag, ttl=64)
    t += rng.randint(5 * MS, 30 * MS)
    sim.udp(t, zero, home.all_ones, 68, 67,
            P.dhcp(1, xid, dev.mac, P.DHCP_REQUEST, options=opts_c + [(50, dev.ip), (54, gw.ip)]), tag)
    t += rng.randint(2 * MS, 20 * MS)
    sim.udp(t, gw, Host("c", "c", dev.mac, dev.ip, gw.stack, rng=rng), 67, 68,
            P.dhcp(2, xid, dev.mac, P.DHCP_ACK, yiaddr=dev.ip, siaddr=gw.ip, options=server_opts), tag, ttl=64)
    arp_tag = env.normal("arp")
    for _ in range(3):
        t += rng.randint(150 * MS, 400 * MS)
        sim.arp(t, P.BROADCAST, dev.mac, 1, dev.mac, bytes(4), bytes(6), dev.ip, arp_tag)
    t += rng.randint(200 * MS, 600 * MS)
    sim.arp(t, P.BROADCAST, dev.mac, 1, dev.mac, dev.ip, bytes(6), dev.ip, arp_tag)  # announcement
    return t


def arp_resolve(env: Env, t: int, asker: Host, target: Host, rng: random.Random, tag=None) -> int:
    """who-has / is-at between two LAN hosts (``tag``: default ``normal``/``arp``); returns the reply time."""
    tag = tag or env.normal("arp")
    env.sim.arp(t, P.BROADCAST, asker.mac, 1, asker.mac, asker.ip, bytes(6), target.ip, tag)
    t += lan_delay(rng, target)
    env.sim.arp(t, asker.mac, target.mac, 2, target.mac, target.ip, asker.mac, asker.ip, tag)
    return t


def router_housekeeping(env: Env, rng: random.Random) -> Process:
    """ARP between LAN hosts and the router (broadcast who-has, and Linux-style unicast probes that
    re-confirm a known neighbour), UPnP IGD NOTIFY announcements and IPv6 router advertisements."""
    sim, home = env.sim, env.home
    gw = home.gateway
    ssdp_tag = env.normal("ssdp")
    t = sim.now
    next_notify = t + jitter(rng, 20, 0.9)
    next_ra = t + jitter(rng, 30, 0.9)
    while True:
        t += jitter(rng, 4, 0.8)
        hosts = [h for h in home.live_hosts(t) if h is not gw and h.kind != "attacker"]
        if hosts:
            h = rng.choice(hosts)
            a, b = (gw, h) if rng.random() < 0.5 else (h, gw)
            if rng.random() < 0.5:
                arp_resolve(env, t, a, b, rng)
            else:  # neighbour unreachability detection: unicast request to the cached MAC
                tag = env.normal("arp")
                sim.arp(t, b.mac, a.mac, 1, a.mac, a.ip, bytes(6), b.ip, tag)
                sim.arp(t + lan_delay(rng, b), a.mac, b.mac, 2, b.mac, b.ip, a.mac, a.ip, tag)
        if t >= next_notify:
            location = f"http://{P.ip_str(gw.ip)}:{rng.choice((1900, 5000, 49152))}/rootDesc.xml"
            for nt in ("upnp:rootdevice", "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                       "urn:schemas-upnp-org:service:WANIPConnection:1"):
                msg = (f"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n"
                       f"LOCATION: {location}\r\nNT: {nt}\r\nNTS: ssdp:alive\r\nSERVER: Linux/4.4 UPnP/1.1 "
                       f"MiniUPnPd/2.2\r\nUSN: uuid:{home.rng.getrandbits(64):016x}::{nt}\r\n\r\n").encode()
                sim.udp(t, gw, home.ssdp, 1900, 1900, msg, ssdp_tag, ttl=2)
                t += rng.randint(100, 2 * MS)
            next_notify = t + jitter(rng, 60, 0.5)
        if t >= next_ra:
            router_advertisement(env, t, gw, home.v6_prefix, tag=env.normal("ndp"))
            next_ra = t + jitter(rng, rng.choice((200, 300, 600)), 0.3)
        yield t


def router_advertisement(env: Env, t: int, router: Host, prefix: bytes, tag, *, flags: int = 0x00,
                         lifetime: int = 1800, hop_limit: int = 64) -> None:
    """ICMPv6 RA to all nodes: prefix information (/64, SLAAC), source link-layer address, MTU."""
    dst = P.ip6("ff02::1")
    body = (struct.pack("!BBHII", hop_limit, flags, lifetime, 0, 0)
            + struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix + bytes(8)
            + b"\x01\x01" + router.mac + struct.pack("!BBHI", 5, 1, 0, 1500))
    env.sim.emit(t, P.icmp6_frame(P.multicast_mac6(dst), router.mac, router.ip6, dst, 255, 134, 0, body), tag)


def ipv6_join(env: Env, dev: Host, t: int, rng: random.Random) -> int:
    """Duplicate address detection (NS from ::) and a router solicitation, as a v6 host comes up."""
    tag = env.normal("ndp")
    target = dev.ip6
    snm = P.ip6("ff02::1:ff00:0")[:13] + target[13:]
    env.sim.emit(t, P.icmp6_frame(P.multicast_mac6(snm), dev.mac, bytes(16), snm, 255, 135, 0, bytes(4) + target), tag)
    t += rng.randint(300 * MS, 1000 * MS)
    rs = P.ip6("ff02::2")
    env.sim.emit(t, P.icmp6_frame(P.multicast_mac6(rs), dev.mac, target, rs, 255, 133, 0,
                                  bytes(4) + b"\x01\x01" + dev.mac), tag)
    return t


def ntp_client(env: Env, dev: Host, rng: random.Random, server_name: str, period: float) -> Process:
    sim = env.sim
    tag = env.normal("ntp")
    t = sim.now
    while True:
        t, ip = env.home.lookup(t, dev, server_name, rng)
        server = env.home.peer(ip)
        sport = 123 if rng.random() < 0.5 else eph_port(rng, dev)
        origin = P.ntp_ts(t + rng.randint(-2 * SECOND, 2 * SECOND))
        sim.udp(t, dev, server, sport, 123, P.ntp(3, 0, t), tag)
        t += wan_rtt(rng)
        sim.udp(t, server, dev, 123, sport, P.ntp(4, 2, t, origin=origin, refid=P.ip4("198.51.100.7")), tag)
        t += jitter(rng, period, 0.2)
        yield t


def mdns_announcer(env: Env, dev: Host, rng: random.Random, service: str, instance: str, port: int,
                   period: float) -> Process:
    """Unsolicited mDNS responses (PTR/SRV/TXT/A) for a service, as Cast/AirPlay/Sonos devices send."""
    sim, home = env.sim, env.home
    tag = env.normal("mdns")
    t = sim.now
    host_local = f"{instance.split('.')[0].lower().replace(' ', '-')}.local"
    while True:
        full = f"{instance}.{service}.local"
        rrs = [P.dns_rr(f"{service}.local", P.DNS_PTR, P.dns_name(full), 4500),
               P.dns_rr(full, P.DNS_SRV, struct.pack("!HHH", 0, 0, port) + P.dns_name(host_local), 120, 0x8001),
               P.dns_rr(full, P.DNS_TXT, P.dns_txt(b"id=" + rng.randbytes(8).hex().encode(), b"ve=05", b"md=Device"),
                        4500, 0x8001),
               P.dns_rr(host_local, P.DNS_A, dev.ip, 120, 0x8001)]
        sim.udp(t, dev, home.mdns, 5353, 5353, P.dns_message(0, P.MDNS_RESPONSE_FLAGS, [], rrs), tag, ttl=255)
        t += jitter(rng, period, 0.3)
        yield t


def mdns_browser(env: Env, dev: Host, rng: random.Random, services: tuple[str, ...], period: float,
                 responders: list[tuple[Host, str]] | None = None) -> Process:
    """mDNS queries for service types; LAN responders answer (multicast)."""
    sim, home = env.sim, env.home
    tag = env.normal("mdns")
    t = sim.now
    while True:
        asked = rng.sample(services, min(len(services), rng.randint(1, 4)))
        qs = [P.dns_question(f"{s}.local", P.DNS_PTR) for s in asked]
        sim.udp(t, dev, home.mdns, 5353, 5353, P.dns_message(0, 0, qs), tag, ttl=255)
        for h, inst in (responders or []):
            if rng.random() < 0.6:
                t2 = t + rng.randint(20 * MS, 120 * MS)
                svc = rng.choice(services)
                rr = P.dns_rr(f"{svc}.local", P.DNS_PTR, P.dns_name(f"{inst}.{svc}.local"), 4500)
                sim.udp(t2, h, home.mdns, 5353, 5353, P.dns_message(0, P.MDNS_RESPONSE_FLAGS, [], [rr]), tag, ttl=255)
        t += jitter(rng, period, 0.4)
        yield t


def tuya_broadcast(env: Env, dev: Host, rng: random.Random) -> Process:
    """Tuya devices broadcast an encrypted discovery beacon to UDP 6667 every ~5 s."""
    sim, home = env.sim, env.home
    tag = env.normal("tuya-discovery")
    beacon = (b"\x00\x00\x55\xaa\x00\x00\x00\x00\x00\x00\x00\x13\x00\x00\x00\x9c" + env.noise(140, rng)
              + b"\x00\x00\xaa\x55")
    t = sim.now
    while True:
        sim.udp(t, dev, home.bcast, 6667, 6667, beacon, tag)
        t += jitter(rng, 5, 0.05)
        yield t


# ----------------------------------------------------------------------------- IoT devices
def mqtt_sensor(env: Env, dev: Host, broker: Host, rng: random.Random, *, period: float, keepalive: int = 60,
                topic: str = "home/sensor", qos: int = 0) -> Process:
    """ESP32-style sensor: MQTT over TCP 1883 to the LAN broker, publish + keepalive, rare reconnects."""
    sim = env.sim
    tag = env.normal("mqtt")
    client_id = f"{topic.split('/')[-1]}-{dev.mac[3:].hex()}".encode()
    t = sim.now
    while True:
        c = lan_conn(env, dev, broker, 1883, tag, rng)
        t = c.connect(t)
        t = c.request(t, P.mqtt_connect(client_id, keepalive, user=b"sensor" if rng.random() < 0.5 else None,
                                        password=b"s3cret" if rng.random() < 0.5 else None),
                      P.mqtt_connack(0), server_time=rng.randint(200, 2 * MS))
        t = c.request(t + rng.randint(1 * MS, 20 * MS), P.mqtt_subscribe(1, [(f"{topic}/set".encode(), 1)]),
                      P.mqtt_suback(1, [1]), server_time=rng.randint(200, 1 * MS))
        pid = 2
        last_tx = t
        session_end = t + jitter(rng, rng.choice((900, 1800, 3600, 7200)), 0.5)
        while t < session_end:
            nxt_pub = last_tx + jitter(rng, period, 0.15)
            nxt_ping = last_tx + keepalive * SECOND
            if nxt_ping < nxt_pub:
                t = nxt_ping
                yield t
                t = c.request(t, P.MQTT_PINGREQ, P.MQTT_PINGRESP, server_time=rng.randint(100, 1 * MS))
            else:
                t = nxt_pub
                yield t
                value = f'{{"t":{rng.uniform(18, 26):.1f},"h":{rng.randint(30, 60)},"bat":{rng.randint(60, 100)}}}'
                msg = P.mqtt_publish(f"{topic}/state".encode(), value.encode(), qos=qos, pid=pid)
                if qos:
                    t = c.request(t, msg, P.mqtt_puback(pid), server_time=rng.randint(100, 1 * MS))
                    pid = pid % 65535 + 1
                else:
                    t = c.send(t, True, msg)
            last_tx = t
        t = c.send(t, True, P.MQTT_DISCONNECT)
        t = c.close(t + rng.randint(1 * MS, 10 * MS))
        t += rng.randint(1 * SECOND, 5 * SECOND)
        yield t


def coap_poller(env: Env, hub: Host, dev: Host, rng: random.Random, period: float) -> Process:
    """The hub polls a CoAP device (CON GET -> piggybacked ACK 2.05) and receives NON observe notifications."""
    sim = env.sim
    tag = env.normal("coap")
    mid = rng.getrandbits(16)
    dmid = rng.getrandbits(16)
    paths = ("/sensors/temperature", "/sensors/light", "/.well-known/core", "/15001/65537", "/status")
    sport = eph_port(rng, hub)
    t = sim.now
    while True:
        tok = rng.randbytes(rng.choice((2, 4, 8)))
        path = rng.choice(paths)
        sim.udp(t, hub, dev, sport, 5683, P.coap(P.COAP_CON, P.COAP_GET, mid, tok, P.coap_uri(path)), tag)
        t += lan_delay(rng, dev)
        body = (b'</sensors/temperature>;rt="temperature";obs,</sensors/light>;rt="light-lux";obs'
                if "core" in path else f'{{"v":{rng.uniform(0, 100):.2f}}}'.encode())
        fmt = 40 if "core" in path else 50
        sim.udp(t, dev, hub, 5683, sport, P.coap(P.COAP_ACK, P.COAP_CONTENT, mid, tok, [(12, P.coap_uint(fmt))], body),
                tag)
        mid = (mid + 1) & 0xFFFF
        if rng.random() < 0.4:
            t += jitter(rng, period / 3, 0.5)
            sim.udp(t, dev, hub, 5683, sport,
                    P.coap(P.COAP_NON, P.COAP_CONTENT, dmid, tok, [(6, P.coap_uint(rng.getrandbits(16))),
                                                                   (12, P.coap_uint(50))],
                           f'{{"v":{rng.uniform(0, 100):.2f}}}'.encode()), tag)
            dmid = (dmid + 1) & 0xFFFF
        t += jitter(rng, period, 0.2)
        yield t


def smart_plug(env: Env, dev: Host, rng: random.Random, cloud_name: str, *, persistent: bool) -> Process:
    """Cloud-controlled plug: TLS heartbeats on a long-lived session, or one HTTPS poll per period."""
    sim = env.sim
    tag = env.normal("plug-cloud")
    t = sim.now
    if persistent:
        while True:
            t, ip = env.home.lookup(t, dev, cloud_name, rng)
            c = cloud_conn(env, dev, env.home.peer(ip), rng.choice((443, 8883, 50443)), tag, rng, loss=0.003)
            t = c.connect(t)
            t = tls_handshake(env, c, t, rng, cloud_name, tls13=rng.random() < 0.5)
            end = t + jitter(rng, rng.choice((600, 1800, 3600)), 0.5)
            while t < end:
                t += jitter(rng, rng.choice((30, 45, 60)), 0.05)
                yield t
                if rng.random() < 0.1:  # the cloud pushes a command (app user toggled the plug)
                    t = c.send(t, False, env.tls_records(rng.randint(60, 200), rng))
                    t = c.send(t + rng.randint(5 * MS, 30 * MS), True, env.tls_records(rng.randint(40, 120), rng))
                else:
                    hb = env.tls_records(rng.randint(20, 90), rng)
                    t = c.send(t, True, hb, ack=False)
                    t = c.send(t + c.db, False, env.tls_records(rng.randint(20, 60), rng))
            t = c.close(t, from_a=rng.random() < 0.5)
            t += rng.randint(2 * SECOND, 10 * SECOND)
            yield t
    else:
        while True:
            t, _ = https_fetch(env, t, dev, cloud_name, rng, tag, up=rng.randint(150, 500), down=rng.randint(100, 900),
                               tls13=rng.random() < 0.3)
            t += jitter(rng, rng.choice((20, 30, 60)), 0.1)
            yield t


def camera_stream(env: Env, cam: Host, nvr: Host, rng: random.Random, *, fps: int, kbps: int,
                  continuous: bool, session_s: tuple[int, ...] = (20, 45, 90, 180)) -> Process:
    """RTSP (TCP 554) DESCRIBE/SETUP/PLAY, then RTP (H.264) + RTCP over UDP to the NVR/hub."""
    sim = env.sim
    tag = env.normal("rtsp-rtp")
    t = sim.now
    ip = P.ip_str(cam.ip)
    while True:
        if not continuous:
            t += jitter(rng, rng.choice((15, 60, 120, 240)), 0.6)
            yield t
        c = lan_conn(env, nvr, cam, 554, tag, rng)
        t = c.connect(t)
        url = f"rtsp://{ip}:554/Streaming/Channels/10{rng.choice((1, 2))}"
        cport = rng.randrange(50000, 60000, 2)
        sport = rng.randrange(8000, 9000, 2)
        session = rng.getrandbits(32)
        sdp = (f"v=0\r\no=- {session} 1 IN IP4 {ip}\r\ns=Media Presentation\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
               f"c=IN IP4 0.0.0.0\r\nb=AS:{kbps}\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n")
        steps = [
            (f"OPTIONS {url} RTSP/1.0\r\nCSeq: 2\r\nUser-Agent: LibVLC/3.0.18\r\n\r\n",
             "RTSP/1.0 200 OK\r\nCSeq: 2\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"),
            (f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 3\r\nAccept: application/sdp\r\n\r\n",
             f"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"),
            (f"SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;"
             f"client_port={cport}-{cport + 1}\r\n\r\n",
             f"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: {session};timeout=60\r\nTransport: RTP/AVP;unicast;"
             f"client_port={cport}-{cport + 1};server_port={sport}-{sport + 1}\r\n\r\n"),
            (f"PLAY {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n",
             f"RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: {session}\r\nRTP-Info: url={url}/trackID=1;seq=1\r\n\r\n"),
        ]
        for req, resp in steps:
            t = c.request(t, req.encode(), resp.encode(), server_time=rng.randint(1 * MS, 15 * MS))
        ssrc = rng.getrandbits(32)
        seq = rng.getrandbits(16)
        rtp_ts = rng.getrandbits(32)
        sent_pkts = sent_octets = 0
        frame_gap = SECOND // fps
        gop = fps * rng.choice((1, 2, 4))
        p_size = kbps * 1000 // 8 // fps
        end = t + (jitter(rng, 3600, 0.2) if continuous else jitter(rng, rng.choice(session_s), 0.3))
        n = 0
        next_sr = t + 5 * SECOND
        next_keepalive = t + 30 * SECOND
        udp = sim.udp
        while t < end:
            size = p_size * (6 if n % gop == 0 else 1)
            size = int(size * rng.uniform(0.6, 1.4))
            pkts = max(1, (size + 1399) // 1400)
            for k in range(pkts):
                chunk = min(1400, size - k * 1400) if k < pkts - 1 else max(60, size - k * 1400)
                udp(t + k * 120, cam, nvr, sport, cport, P.rtp(96, seq, rtp_ts, ssrc, env.noise(chunk, rng),
                                                                marker=k == pkts - 1), tag)
                seq += 1
                sent_pkts += 1
                sent_octets += chunk
            n += 1
            rtp_ts += 90000 // fps
            t += frame_gap + rng.randint(-2 * MS, 2 * MS)
            if t >= next_sr:
                udp(t, cam, nvr, sport + 1, cport + 1, P.rtcp_sender_report(ssrc, t, rtp_ts, sent_pkts, sent_octets),
                    tag)
                next_sr = t + 5 * SECOND
            if t >= next_keepalive:
                t = c.request(t, f"GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {5 + n}\r\nSession: {session}\r\n\r\n"
                              .encode(),
                              f"RTSP/1.0 200 OK\r\nCSeq: {5 + n}\r\nSession: {session}\r\n\r\n".encode())
                next_keepalive = t + 30 * SECOND
            yield t
        t = c.request(t, f"TEARDOWN {url} RTSP/1.0\r\nCSeq: 99\r\nSession: {session}\r\n\r\n".encode(),
                      b"RTSP/1.0 200 OK\r\nCSeq: 99\r\n\r\n")
        t = c.close(t)
        if continuous:
            t += jitter(rng, 5, 0.5)
        yield t


def camera_cloud(env: Env, cam: Host, rng: random.Random, cloud_name: str, upload_name: str, *,
                 clip_kb: tuple[int, int]) -> Process:
    """Camera <-> vendor cloud: TLS keepalives and motion-triggered clip uploads (bulk to a known host)."""
    sim = env.sim
    tag = env.normal("camera-cloud")
    up_tag = env.normal("camera-clip-upload")
    t = sim.now
    while True:
        t, c = https_fetch(env, t, cam, cloud_name, rng, tag, up=rng.randint(200, 800), down=rng.randint(200, 1500),
                           keep=True)
        end = t + jitter(rng, 900, 0.5)
        next_motion = t + jitter(rng, rng.choice((30, 60, 120, 240)), 0.5)
        while t < end:
            t += jitter(rng, rng.choice((20, 40, 60)), 0.5)
            yield t
            if t >= next_motion:  # motion event -> clip upload on a separate connection
                next_motion = t + jitter(rng, rng.choice((60, 120, 300, 600)), 0.5)
                size = rng.randint(*clip_kb) * 1024
                t2, ip = env.home.lookup(t, cam, upload_name, rng)
                u = cloud_conn(env, cam, env.home.peer(ip), 443, up_tag, rng, loss=0.002)
                t2 = u.connect(t2)
                t2 = tls_handshake(env, u, t2, rng, upload_name)
                t2 = u.send(t2, True, env.tls_records(size, rng), rate=rng.uniform(0.8e6, 3e6))
                t2 = u.send(t2 + u.db, False, env.tls_records(rng.randint(100, 400), rng))
                t = u.close(t2 + rng.randint(10 * MS, 100 * MS))
            else:
                t = c.send(t, True, env.tls_records(rng.randint(30, 120), rng), ack=False)
                t = c.send(t + c.db, False, env.tls_records(rng.randint(30, 80), rng))
        t = c.close(t)
        yield t


def smart_speaker(env: Env, dev: Host, rng: random.Random, cloud_name: str, music_name: str) -> Process:
    """Echo/Nest style: long-lived TLS with pings, voice requests, music streaming chunks."""
    sim = env.sim
    tag = env.normal("speaker-cloud")
    t = sim.now
    while True:
        t, c = https_fetch(env, t, dev, cloud_name, rng, tag, up=rng.randint(500, 1500), down=rng.randint(500, 3000),
                           keep=True)
        end = t + jitter(rng, 1200, 0.5)
        while t < end:
            t += jitter(rng, 30, 0.3)
            yield t
            r = rng.random()
            if r < 0.05:  # voice request: upload speech, get the answer audio
                t = c.send(t, True, env.tls_records(rng.randint(20_000, 90_000), rng), rate=0.3e6)
                t = c.send(t + rng.randint(200 * MS, 800 * MS), False,
                           env.tls_records(rng.randint(50_000, 300_000), rng))
            elif r < 0.12:  # music: fetch a few hundred KB of audio
                t, _ = https_fetch(env, t, dev, music_name, rng, tag, up=rng.randint(300, 900),
                                   down=rng.randint(200_000, 900_000), rate=rng.uniform(2e6, 8e6))
            else:
                t = c.send(t, True, env.tls_records(rng.randint(40, 100), rng), ack=False)
                t = c.send(t + c.db, False, env.tls_records(rng.randint(40, 100), rng))
        t = c.close(t)
        yield t


def firmware_check(env: Env, dev: Host, rng: random.Random, cdn_name: str, size_kb: tuple[int, int]) -> Process:
    """Periodic update check; once in a while a full firmware image download (bulk download)."""
    tag = env.normal("firmware")
    t = env.sim.now
    while True:
        big = rng.random() < 0.35
        down = rng.randint(*size_kb) * 1024 if big else rng.randint(300, 2000)
        t, _ = https_fetch(env, t, dev, cdn_name, rng, tag, up=rng.randint(300, 700), down=down,
                           rate=rng.uniform(1.5e6, 6e6))
        t += jitter(rng, rng.choice((300, 600, 1200)), 0.4)
        yield t


def hub_discovery(env: Env, hub: Host, rng: random.Random, targets: list[Host], period: float,
                  snapshot_kb: tuple[int, int] = (20, 60)) -> Process:
    """Home Assistant style: ping every tracked device, poll their HTTP APIs, SSDP M-SEARCH.

    Touches many LAN hosts and ports on a regular schedule with complete exchanges: the hard
    negative for ``recon``. Camera snapshots use HTTP digest auth, so every poll starts with a
    benign 401.
    """
    sim, home = env.sim, env.home
    ping_tag = env.normal("hub-ping")
    http_tag = env.normal("hub-poll")
    ssdp_tag = env.normal("ssdp")
    ident = rng.getrandbits(16)
    seq = 0
    t = sim.now
    while True:
        for dev in targets:
            if dev.present_from > t:
                continue
            seq += 1
            data = struct.pack("!Q", t // SECOND) + bytes(range(16, 56))
            sim.icmp(t, hub, dev, 8, 0, P.icmp_echo(ident, seq), data, ping_tag)
            sim.icmp(t + lan_delay(rng, dev), dev, hub, 0, 0, P.icmp_echo(ident, seq), data, ping_tag)
            t += rng.randint(1 * MS, 30 * MS)
        polled = [d for d in targets if d.kind in ("plug", "camera", "speaker", "coap") and d.present_from <= t]
        for dev in rng.sample(polled, min(len(polled), 3)):
            port = {"plug": 80, "camera": 80, "speaker": 8008, "coap": 80}[dev.kind]
            c = lan_conn(env, hub, dev, port, http_tag, rng)
            t = c.connect(t)
            host = f"{P.ip_str(dev.ip)}:{port}"
            ua = "User-Agent: HomeAssistant/2024.5 aiohttp/3.9\r\nAccept: */*\r\n"
            if dev.kind == "camera":  # ONVIF/ISAPI snapshot with HTTP digest auth: 401 first, then 200
                path = "/ISAPI/Streaming/channels/101/picture"
                nonce = rng.randbytes(16).hex()
                t = c.request(t, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{ua}\r\n".encode(),
                              (f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"IP Camera\", "
                               f"qop=\"auth\", nonce=\"{nonce}\"\r\nContent-Length: 0\r\n\r\n").encode(),
                              server_time=rng.randint(2 * MS, 20 * MS))
                auth = (f"Authorization: Digest username=\"admin\", realm=\"IP Camera\", nonce=\"{nonce}\", "
                        f"uri=\"{path}\", qop=auth, nc=00000001, cnonce=\"{rng.randbytes(8).hex()}\", "
                        f"response=\"{rng.randbytes(16).hex()}\"\r\n")
                jpeg = jpeg_image(env, rng, rng.randint(*snapshot_kb) * 1000)
                t = c.request(t + rng.randint(1 * MS, 5 * MS),
                              f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{ua}{auth}\r\n".encode(),
                              f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                              .encode() + jpeg, server_time=rng.randint(20 * MS, 80 * MS))
            else:
                path = rng.choice(("/status", "/api/v1/state", "/setup/eureka_info", "/cgi-bin/info"))
                body = (f'{{"on":{str(rng.random() < 0.5).lower()},"power":{rng.uniform(0, 60):.1f},'
                        f'"uptime":{t // SECOND % 100000}}}')
                t = c.request(t, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{ua}\r\n".encode(),
                              f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                              f"\r\n{body}".encode(), server_time=rng.randint(2 * MS, 20 * MS))
            t = c.close(t, from_a=False)
        if rng.random() < 0.3:
            st = rng.choice(("ssdp:all", "urn:dial-multiscreen-org:service:dial:1", "upnp:rootdevice"))
            msg = (f"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 3\r\n"
                   f"ST: {st}\r\n\r\n").encode()
            sport = eph_port(rng, hub)
            sim.udp(t, hub, home.ssdp, sport, 1900, msg, ssdp_tag, ttl=4)
            answered = t
            for dev in [home.gateway] + [d for d in targets if d.kind in ("speaker", "camera")]:
                resp = (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://{P.ip_str(dev.ip)}"
                        f":49152/description.xml\r\nSERVER: Linux/3.10 UPnP/1.0 Sonos/70.3\r\nST: {st}\r\n"
                        f"USN: uuid:{rng.getrandbits(64):016x}::{st}\r\n\r\n").encode()
                answered = max(answered, t + rng.randint(10 * MS, 2900 * MS))
                sim.udp(answered, dev, hub, 1900, sport, resp, ssdp_tag)
            t = answered + rng.randint(5 * MS, 50 * MS)
            for dev in [d for d in targets if d.kind in ("speaker", "camera")][:2]:  # fetch the descriptions
                c = lan_conn(env, hub, dev, 49152, http_tag, rng)
                t = c.connect(t)
                xml = (f'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>'
                       f'urn:schemas-upnp-org:device:MediaRenderer:1</deviceType><friendlyName>{dev.name}'
                       f'</friendlyName><UDN>uuid:{rng.getrandbits(64):016x}</UDN></device></root>')
                t = c.request(t, f"GET /description.xml HTTP/1.1\r\nHost: {P.ip_str(dev.ip)}:49152\r\n\r\n".encode(),
                              f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(xml)}\r\n\r\n{xml}"
                              .encode(), server_time=rng.randint(2 * MS, 30 * MS))
                t = c.close(t, from_a=False)
        t += jitter(rng, period, 0.1)
        yield t


def web_client(env: Env, dev: Host, rng: random.Random, sites: tuple[str, ...], *, quic: bool,
               heavy: bool = True) -> Process:
    """Laptop/phone browsing: bursts of parallel HTTPS fetches, QUIC video, idle gaps, speed tests.

    ``heavy=False`` keeps pages small and skips video and speed tests (the compact demo capture).
    """
    sim = env.sim
    tag = env.normal("web")
    t = sim.now
    max_down = 400_000 if heavy else 20_000
    while True:
        t += jitter(rng, rng.choice((5, 20, 60, 180) if heavy else (60, 120, 180)), 0.8)
        yield t
        r = rng.random()
        if quic and r < 0.25:
            t = yield from quic_session(env, dev, rng, t, rng.choice(("r3---sn-ab5l6nzr.googlevideo.com",
                                                                   "www.youtube.com", "www.google.com")),
                                        seconds=(5, 15, 40) if heavy else (2, 3), pps=(150, 700) if heavy else (10, 30))
        elif heavy and r < 0.28:
            t = yield from speed_test(env, dev, rng, t)
        else:
            site = rng.choice(sites)
            names = [site, "static." + site, "cdn." + site.split(".", 1)[-1] if "." in site else site,
                     rng.choice(("fonts.gstatic.com", "www.googletagmanager.com", "connect.facebook.net",
                                 "cdnjs.cloudflare.com"))]
            end = t
            for i, name in enumerate(names[:rng.randint(2, 4)]):
                e, _ = https_fetch(env, t + i * rng.randint(5 * MS, 40 * MS), dev, name, rng, tag,
                                   up=rng.randint(400, 1800), down=rng.randint(3_000, max_down),
                                   rate=rng.uniform(3e6, 20e6))
                end = max(end, e)
            t = end


def quic_session(env: Env, dev: Host, rng: random.Random, t: int, name: str, *, seconds: tuple[int, ...],
                 pps: tuple[int, int]):
    """QUIC video on UDP 443 after the DNS lookup: a resumed connection (long-header Handshake packets
    carrying both connection IDs, so Wireshark tracks the flow), then 1-RTT short-header packets,
    mostly server -> client."""
    sim = env.sim
    tag = env.normal("quic")
    t, ip = env.home.lookup(t, dev, name, rng)
    server = env.home.peer(ip)
    sport = eph_port(rng, dev)
    cid_c, cid_s = rng.randbytes(8), rng.randbytes(8)

    def handshake(dcid: bytes, scid: bytes, size: int) -> bytes:
        body = rng.randbytes(2) + env.noise(size, rng)  # packet number + protected payload
        return (b"\xe1\x00\x00\x00\x01" + bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
                + struct.pack("!H", 0x4000 | len(body)) + body)

    sim.udp(t, dev, server, sport, 443, handshake(cid_s, cid_c, rng.randint(1150, 1200)), tag)
    t += wan_rtt(rng)
    sim.udp(t, server, dev, 443, sport, handshake(cid_c, cid_s, rng.randint(600, 1100)), tag)
    t += rng.randint(1 * MS, 5 * MS)
    sim.udp(t, dev, server, sport, 443, handshake(cid_s, cid_c, rng.randint(40, 80)), tag)
    end = t + jitter(rng, rng.choice(seconds), 0.3)
    rate_pps = rng.randint(*pps)
    n = 0
    while t < end:
        for _ in range(max(1, rate_pps // 10)):
            sim.udp(t, server, dev, 443, sport, bytes((0x40 | rng.getrandbits(5),)) + cid_c
                    + env.noise(rng.randint(1150, 1230), rng), tag)
            n += 1
            t += SECOND // rate_pps
            if n % 2 == 0:
                sim.udp(t, dev, server, sport, 443, bytes((0x40 | rng.getrandbits(5),)) + cid_s
                        + env.noise(rng.randint(24, 44), rng), tag)
        yield t
    return t


def speed_test(env: Env, dev: Host, rng: random.Random, t: int):
    """Browser speed test (speedtest.net / fast.com): parallel HTTPS streams down, then up, to a resolved server."""
    tag = env.normal("speedtest")
    name = f"speedtest{rng.randint(1, 9)}.example-isp.net"
    t, ip = env.home.lookup(t, dev, name, rng)
    server = env.home.peer(ip)
    end = t
    for upload in (False, True):
        for i in range(4):
            c = cloud_conn(env, dev, server, 443, tag, rng)
            e = c.connect(t + i * 3 * MS)
            e = tls_handshake(env, c, e, rng, name)
            e = c.send(e, True, env.tls_records(rng.randint(300, 600), rng), ack=False)
            e = c.send(e + c.db, upload, env.tls_records(rng.randint(1_000_000, 2_500_000), rng),
                       rate=rng.uniform(6e6, 12e6))
            e = c.close(e)
            end = max(end, e)
        t = end + 500 * MS
        yield t
    return t


def apple_push(env: Env, dev: Host, rng: random.Random) -> Process:
    """iPhone/Mac push channel: TLS on 5223 with keepalives every few minutes."""
    tag = env.normal("push")
    t = env.sim.now
    while True:
        t, c = https_fetch(env, t, dev, f"{rng.randint(1, 50)}-courier.push.apple.com", rng, tag, up=500, down=1200,
                           keep=True, port=5223)
        end = t + jitter(rng, 1800, 0.5)
        while t < end:
            t += jitter(rng, rng.choice((240, 600)), 0.2)
            yield t
            t = c.send(t, True, env.tls_records(rng.randint(20, 60), rng), ack=False)
            t = c.send(t + c.db, False, env.tls_records(rng.randint(20, 60), rng))
        t = c.close(t)
        yield t


def admin_ssh(env: Env, laptop: Host, server: Host, rng: random.Random) -> Process:
    """Someone SSHes into the hub: OpenSSH KEX, public-key login, an interactive session, logout."""
    sim = env.sim
    tag = env.normal("ssh-admin")
    t = sim.now
    while True:
        c = lan_conn(env, laptop, server, 22, tag, rng)
        t = c.connect(t)
        t = ssh_kex(env, c, t, rng, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", b"SSH-2.0-OpenSSH_9.6\r\n")
        for size_c, size_s in ((64, 96), (400, 64), (112, 48)):  # publickey offer, signature, session open
            t = c.request(t + rng.randint(1 * MS, 20 * MS), env.noise(size_c, rng), env.noise(size_s, rng),
                          server_time=rng.randint(1 * MS, 30 * MS))
        end = t + jitter(rng, rng.choice((30, 90, 240)), 0.5)
        while t < end:
            t += rng.randint(80 * MS, 1500 * MS)
            t = c.request(t, env.noise(48, rng), env.noise(48, rng), server_time=rng.randint(200, 2 * MS))  # keystroke
            if rng.random() < 0.08:  # command output: one encrypted SSH packet per segment
                for _ in range(rng.randint(1, 15)):
                    t = c.send(t + rng.randint(100, 2 * MS), False, env.noise(16 * rng.randint(4, 84) + 32, rng))
            yield t
        t = c.request(t + rng.randint(100 * MS, 1 * SECOND), env.noise(48, rng), env.noise(rng.choice((64, 80)), rng))
        t = c.close(t, from_a=False)
        t += jitter(rng, rng.choice((600, 1200, 2400)), 0.5)
        yield t


def photo_backup(env: Env, phone: Host, rng: random.Random, name: str, size_mb: tuple[float, float]) -> Process:
    """Phone camera-roll backup: a bulk HTTPS upload to its (resolved) cloud, now and then."""
    tag = env.normal("photo-backup")
    t = env.sim.now
    while True:
        t += jitter(rng, rng.choice((120, 300, 900)), 0.5)
        yield t
        size = int(rng.uniform(*size_mb) * 1024 * 1024)
        t, _ = https_fetch(env, t, phone, name, rng, tag, up=size, down=rng.randint(300, 2000),
                           rate=rng.uniform(1e6, 5e6))
        yield t


def mac_rotation(env: Env, phone: Host, rng: random.Random) -> Process:
    """A phone rotates its private Wi-Fi MAC and rejoins; the router hands it the same address.

    A benign IP -> MAC change (hard negative for ARP spoofing)."""
    t = env.sim.now
    phone.mac = env.home.new_mac("apple", randomized=True)
    t = dhcp_join(env, phone, t, rng, phone.name.encode())
    yield t


def dns_chatter(env: Env, dev: Host, rng: random.Random, period: float) -> Process:
    """Background lookups of apps and OS services: CDN and telemetry names with hash-like labels,
    AAAA next to A, the odd NXDOMAIN (benign high-entropy DNS: hard negative for DNS tunnels)."""
    sim, home = env.sim, env.home
    tag = home.dns_tag
    t = sim.now
    while True:
        t += jitter(rng, period, 0.8)
        yield t
        r = rng.random()
        if r < 0.08 and dev.kind == "laptop":  # antivirus cloud lookups carry a file hash (McAfee GTI style)
            name = (f"a-0.19-a3000000.{rng.randbytes(3).hex()}.{rng.randint(1000, 9999)}.{rng.randbytes(2).hex()}."
                    f"{rng.randbytes(2).hex()}.210.0.{b32(rng.randbytes(20))}.avqs.example.com")
        elif r < 0.18 and dev.kind == "laptop":  # load balancer names
            name = (f"dualstack.{rng.choice(('api', 'web', 'edge'))}-{rng.randbytes(4).hex()}-"
                    f"{rng.randint(10**9, 10**10 - 1)}.us-east-1.elb.example.com")
        elif r < 0.25:
            name = f"{rng.randbytes(rng.choice((8, 16))).hex()}.telemetry.example.com"
        elif r < 0.4:
            node = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-") for _ in range(8))
            name = f"r{rng.randint(1, 8)}---sn-{node}.googlevideo.example.com"
        elif r < 0.55:
            name = f"d{rng.randbytes(6).hex()[:13]}.cloudfront.example.net"
        elif r < 0.65:
            name = f"e{rng.randint(1000, 99999)}.dscx.akamaiedge.example.net"
        elif r < 0.75:
            name = rng.choice(("wpad.home.arpa", "printer.local.example", "_ldap._tcp.dc._msdcs.home.example"))
            qid = rng.getrandbits(16)
            sport = eph_port(rng, dev)
            q = P.dns_question(name, P.DNS_A)
            sim.udp(t, dev, home.gateway, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), tag)
            sim.udp(t + rng.randint(500, 30 * MS), home.gateway, dev, 53, sport,
                    P.dns_message(qid, P.DNS_NXDOMAIN_FLAGS, [q]), tag)
            continue
        else:
            name = rng.choice(("api.example-app.com", "graph.example.net", "play.example-store.com",
                               "gateway.icloud.example.com", "mobile.events.example.org"))
        t, _ = home.lookup(t, dev, name, rng)
        if dev.ip6 is not None:
            t, _ = home.lookup(t + rng.randint(50, 2 * MS), dev, name, rng, qtype=P.DNS_AAAA, force=True)


def misconfigured_mqtt(env: Env, dev: Host, broker: Host, rng: random.Random) -> Process:
    """A device with a stale password: one MQTT CONNECT refused (CONNACK 5) every 30-120 s, for
    hours. Sparse failed logins are normal life, not brute force."""
    tag = env.normal("mqtt-auth-retry")
    t = env.sim.now
    client_id = f"shelly-{dev.mac[3:].hex()}".encode()
    backoff = rng.choice((30, 60, 120))
    while True:
        c = lan_conn(env, dev, broker, 1883, tag, rng)
        t = c.connect(t)
        t = c.request(t, P.mqtt_connect(client_id, 60, user=b"shelly", password=b"old-password"), P.mqtt_connack(5),
                      server_time=rng.randint(1 * MS, 5 * MS))
        t = c.close(t + rng.randint(100, 2 * MS), from_a=False)
        t += jitter(rng, backoff, 0.2)
        yield t


def camera_p2p(env: Env, cam: Host, rng: random.Random, *, relay_kb: tuple[int, int]) -> Process:
    """Vendor P2P (the CS2 "PPPP" protocol of many cheap cameras): UDP keepalives to hard-coded server
    IPs on port 32100 (no DNS) and, when someone watches remotely, video pushed over UDP to a relay
    never seen before: a hard negative for exfiltration and for "contacted without a DNS lookup"."""
    sim, home = env.sim, env.home
    tag = env.normal("camera-p2p")
    servers = [home.peer(home.new_public_ip(rng)) for _ in range(rng.randint(2, 4))]
    sport = rng.randint(10000, 60000)

    def pppp(mtype: int, body: bytes = b"") -> bytes:
        return struct.pack("!BBH", 0xF1, mtype, len(body)) + body

    t = sim.now
    for srv in servers:  # MSG_HELLO / MSG_HELLO_ACK (our public address)
        sim.udp(t, cam, srv, sport, 32100, pppp(0x00), tag)
        sim.udp(t + wan_rtt(rng), srv, cam, 32100, sport, pppp(0x01, struct.pack("!HH4s", 2, sport, cam.ip) + bytes(8)),
                tag)
        t += rng.randint(1 * MS, 20 * MS)
    next_view = t + jitter(rng, rng.choice((60, 180, 400)), 0.5)
    while True:
        for srv in servers:  # MSG_ALIVE / MSG_ALIVE_ACK
            sim.udp(t, cam, srv, sport, 32100, pppp(0xE0), tag)
            sim.udp(t + wan_rtt(rng), srv, cam, 32100, sport, pppp(0xE1), tag)
            t += rng.randint(1 * MS, 20 * MS)
        if t >= next_view:  # remote viewing through a relay: MSG_DRW data, MSG_DRW_ACK back
            relay = home.unseen_peer(rng)
            left = rng.randint(*relay_kb) * 1024
            rport = rng.randint(20000, 40000)
            idx = 0
            while left > 0:
                n = min(left, 1024)
                sim.udp(t, cam, relay, sport, rport, pppp(0xD0, struct.pack("!BBH", 0xD1, 1, idx) + env.noise(n, rng)),
                        tag)
                left -= n
                idx = (idx + 1) & 0xFFFF
                t += rng.randint(700, 4 * MS)
                if idx % 16 == 0:
                    sim.udp(t, relay, cam, rport, sport,
                            pppp(0xD1, struct.pack("!BBH", 0xD1, 1, 16) + b"".join(
                                struct.pack("!H", (idx - k) & 0xFFFF) for k in range(16, 0, -1))), tag)
                    yield t
            next_view = t + jitter(rng, rng.choice((300, 600, 1200)), 0.5)
        t += jitter(rng, rng.choice((20, 30, 60)), 0.2)
        yield t


def connectivity_check(env: Env, dev: Host, rng: random.Random, period: float) -> Process:
    """Android/Windows/Apple captive-portal probes: plain HTTP GET answered 204/200 (benign port 80)."""
    tag = env.normal("http-connectivity")
    name, path, resp = rng.choice((
        ("connectivitycheck.gstatic.example.com", "/generate_204",
         b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        ("www.msftconnecttest.example.com", "/connecttest.txt",
         b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\nMicrosoft Connect Test"),
        ("captive.apple.example.com", "/hotspot-detect.html",
         b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 68\r\n\r\n"
         b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")))
    t = env.sim.now
    while True:
        t, ip = env.home.lookup(t, dev, name, rng)
        c = cloud_conn(env, dev, env.home.peer(ip), 80, tag, rng)
        t = c.connect(t)
        t = c.request(t + rng.randint(100, 1 * MS), f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n"
                      f"User-Agent: Dalvik/2.1.0 (Linux; U; Android 14)\r\n\r\n".encode(), resp)
        t = c.close(t + rng.randint(1 * MS, 20 * MS), from_a=False)
        t += jitter(rng, period, 0.5)
        yield t


def ftp_snapshots(env: Env, cam: Host, nas: Host, rng: random.Random, period: float,
                  snapshot_kb: tuple[int, int] = (30, 120)) -> Process:
    """Camera motion snapshots to a NAS over FTP: login (230), passive mode, STOR of a JPEG on a
    data connection. Benign FTP logins (hard negative for FTP brute force)."""
    tag = env.normal("ftp-upload")
    t = env.sim.now
    while True:
        t += jitter(rng, period, 0.6)
        yield t
        c = lan_conn(env, cam, nas, 21, tag, rng)
        t = c.connect(t)
        t = c.send(t + c.db, False, b"220 (vsFTPd 3.0.3)\r\n")
        for req, resp in ((b"USER camera\r\n", b"331 Please specify the password.\r\n"),
                          (b"PASS cam-upload-1\r\n", b"230 Login successful.\r\n"),
                          (b"TYPE I\r\n", b"200 Switching to Binary mode.\r\n")):
            t = c.request(t + c.da, req, resp, server_time=rng.randint(1 * MS, 20 * MS))
        dport = rng.randint(40000, 50000)
        h, l = P.ip_str(nas.ip).replace(".", ","), f"{dport >> 8},{dport & 0xFF}"
        t = c.request(t + c.da, b"PASV\r\n", f"227 Entering Passive Mode ({h},{l}).\r\n".encode())
        d = lan_conn(env, cam, nas, dport, tag, rng)
        t = d.connect(t + c.da)
        name = f"snap_{t // SECOND}.jpg".encode()
        t = c.request(t + c.da, b"STOR " + name + b"\r\n", b"150 Ok to send data.\r\n")
        t = d.send(t + d.da, True, jpeg_image(env, rng, rng.randint(*snapshot_kb) * 1000), rate=rng.uniform(1e6, 4e6))
        t = d.close(t + rng.randint(1 * MS, 5 * MS))
        t = c.send(t + c.db, False, b"226 Transfer complete.\r\n")
        t = c.request(t + c.da, b"QUIT\r\n", b"221 Goodbye.\r\n")
        t = c.close(t, from_a=False)
        yield t


def admin_telnet(env: Env, laptop: Host, device: Host, rng: random.Random) -> Process:
    """Someone manages an old camera/router over telnet: option negotiation, a successful login,
    a few shell commands, exit. Benign telnet logins (hard negative for telnet brute force)."""
    tag = env.normal("telnet-admin")
    t = env.sim.now
    while True:
        c = lan_conn(env, laptop, device, 23, tag, rng)
        t = c.connect(t)
        t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_DO, 24), (P.TELNET_DO, 32), (P.TELNET_DO, 31)))
        t = c.send(t + c.da, True, P.telnet_opts((P.TELNET_WILL, 24), (P.TELNET_WONT, 32), (P.TELNET_WILL, 31)))
        t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_WILL, 1), (P.TELNET_WILL, 3)) + b"\r\nIPCam login: ")
        t = c.request(t + rng.randint(1 * SECOND, 4 * SECOND), b"admin\r\n", b"admin\r\nPassword: ")
        t = c.request(t + rng.randint(1 * SECOND, 3 * SECOND), b"Cam-admin-7\r\n",
                      b"\r\n\r\nBusyBox v1.31.1 built-in shell (ash)\r\n\r\n# ", server_time=rng.randint(50 * MS, 300 * MS))
        for cmd in rng.sample((b"uptime", b"df -h", b"ps", b"cat /proc/meminfo", b"ls /mnt/sd", b"ifconfig"), 3):
            for ch in cmd + b"\r\n":  # character mode: every keystroke echoed
                t = c.request(t + rng.randint(80 * MS, 400 * MS), bytes((ch,)), bytes((ch,)) if ch != 13 else b"\r\n",
                              server_time=rng.randint(1 * MS, 5 * MS))
            t = c.send(t + rng.randint(5 * MS, 50 * MS), False, env.noise(rng.randint(100, 900), rng)
                       .replace(b"\xff", b"\xfe") + b"\r\n# ")
        t = c.request(t + rng.randint(1 * SECOND, 5 * SECOND), b"exit\r\n", b"exit\r\n")
        t = c.close(t, from_a=False)
        t += jitter(rng, rng.choice((900, 1800, 3600)), 0.5)
        yield t
