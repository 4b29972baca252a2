"""IPv6 attack tools and benign traceroutes for the synthetic lab (scenario ``varied6``, opt-in).

Only started with :class:`~iotwatch.captures.sim.home.Profile` knobs ``ipv6_attacks`` > 0 or
``traceroutes``; every draw here comes from the episode's or the traceroute's own stream, so the
other scenarios keep their bytes.

``dos`` (IPv6 floods, the IPv4 ones of :mod:`.attacks` moved to the victim's global address, or its
    link-local ``fe80::`` one from the attacker on the same link): :func:`syn6_flood` (thcsyn6 /
    ``nping -6 --tcp --flags syn`` style: no options or MSS only, random seq, incrementing or random
    source ports, own or random spoofed sources; SYN/ACKs back, the attacker's kernel RSTs them),
    :func:`udp6_flood` (ICMPv6 port unreachable, rate-limited like Linux: burst 6, then 1/s per
    destination) and :func:`icmp6_flood` (``ping -6 -f``: iputils' 56-byte payload, or THC's
    ``thcping6``-like fixed-size echoes; echo replies), from the LAN attacker or from spoofed
    Internet sources through the router.
``exfiltration``: :func:`icmp6_tunnel` (ptunnel-ng magic or icmpsh-like: large echo payloads both
    ways to an IPv6 relay nobody contacted before) and :func:`dns6_tunnel` (iodine/dnscat2 names of
    :func:`~iotwatch.captures.sim.attacks.tunnel_query` over IPv6 transport: to the router's
    link-local address as RDNSS announces it, or to a public resolver's IPv6 address).
``recon``: :func:`alive6` (thc-ipv6 alive6: echo request to ff02::1 answered by every IPv6 host,
    or a sweep of low interface IDs of the /64 with neighbour solicitations for each probe).
``normal``: :func:`traceroute` (Linux ``traceroute`` UDP to 33434+, 16 probes in flight, 3 per hop;
    Windows ``tracert`` ICMP echo one at a time; ``mtr -r`` rounds of one echo per hop), IPv4 or
    IPv6, answered by the router (hop 1), invented ISP/transit routers (time exceeded) and the
    destination (port unreachable / echo reply).
"""
from __future__ import annotations

import math
import random
import struct

from . import frames as P
from .attacks import Attack, _filtered, open_ports, tunnel_answer, tunnel_query
from .core import MS, SECOND, Host, Process
from .devices import Env, eph_port, lan_delay, wan_rtt

ALL_NODES = P.ip6("ff02::1")
PUBLIC_RESOLVERS6 = ((P.ip4("8.8.8.8"), P.ip6("2001:4860:4860::8888")),
                     (P.ip4("1.1.1.1"), P.ip6("2606:4700:4700::1111")),
                     (P.ip4("9.9.9.9"), P.ip6("2620:fe::fe")))


def _snm(addr: bytes) -> bytes:
    """Solicited-node multicast address of ``addr``."""
    return P.ip6("ff02::1:ff00:0")[:13] + addr[13:]


def neighbour_solicit(env: Env, t: int, asker: Host, src6: bytes, target6: bytes, tag) -> None:
    snm = _snm(target6)
    env.sim.emit(t, P.icmp6_frame(P.multicast_mac6(snm), asker.mac, src6, snm, 255, 135, 0,
                                  bytes(4) + target6 + b"\x01\x01" + asker.mac), tag)


def neighbour_advert(env: Env, t: int, owner: Host, own6: bytes, asker: Host, dst6: bytes, tag) -> None:
    env.sim.emit(t, P.icmp6_frame(asker.mac, owner.mac, own6, dst6, 255, 136, 0,
                                  struct.pack("!I", 0x60000000) + own6 + b"\x02\x01" + owner.mac), tag)


def _random_global(rng: random.Random) -> bytes:
    """A random address of 2000::/4 (spoofed sources, transit routers)."""
    return bytes((0x20 | rng.randrange(16),)) + rng.randbytes(15)


def _endpoints(env: Env, attacker: Host, victim: Host, link_local: bool,
               spoof: bool) -> tuple[bytes, bytes, bytes]:
    """(attacker source address, victim address, MAC the victim answers to) of an IPv6 flood; the
    answers to ``spoof``ed sources go to the router."""
    home = env.home
    if link_local and attacker.local and attacker.ip6 is not None and victim.ip6 is not None:
        src, dst, back = attacker.ip6, victim.ip6, attacker.mac
    elif attacker.local:
        src, dst, back = home.give_gua6(attacker), home.give_gua6(victim), attacker.mac
    else:
        if attacker.gua6 is None:
            attacker.gua6 = _random_global(env.sim.rng("v6/peer/" + attacker.name))
        src, dst, back = attacker.gua6, home.give_gua6(victim), home.gateway.mac
    return src, dst, home.gateway.mac if spoof else back


# ----------------------------------------------------------------------------- dos
def syn6_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int, seconds: float,
               spoof: bool = False, dport: int = 80, link_local: bool = False, tool: str = "thcsyn6") -> Process:
    """SYN flood over IPv6 (``thcsyn6`` / ``nping -6 --tcp --flags syn --rate N``); ``spoof``: a random
    global source per packet (answers go to the router). The victim answers a share with SYN/ACK
    (all of them when not spoofed; the attacker's kernel then resets them)."""
    atk = Attack(env, "dos", f"{tool}-syn6-flood" + ("-spoofed" if spoof else ""), attacker, rng)
    sim = env.sim
    src0, dst, back = _endpoints(env, attacker, target, link_local, spoof)
    smac = attacker.mac
    window = rng.choice((512, 1024, 5760, 65535)) if tool == "thcsyn6" else 1480
    opts = P.tcp_options(mss=1440, order="plain") if tool == "nping" or rng.random() < 0.5 else b""
    hlim = 64 if tool == "nping" else rng.choice((64, 255))
    sport = rng.randint(1024, 60000)
    t, end = sim.now, sim.now + int(seconds * SECOND)
    gap, acc, n = SECOND / rate, 0.0, 0
    if attacker.local:
        neighbour_solicit(env, t, attacker, src0, dst, atk.tag)
        t += lan_delay(rng, target)
        neighbour_advert(env, t, target, dst, attacker, src0, atk.tag)
        t += rng.randint(100, 2 * MS)
    ropts = P.tcp_options(mss=target.stack.mss - 20, order="plain")
    while t < end:
        src = _random_global(rng) if spoof else src0
        seq = rng.getrandbits(32)
        sim.emit(t, P.tcp6_frame(target.mac, smac, src, dst, hlim, 0, sport, dport, seq, 0, P.SYN, window, opts),
                 atk.tag)
        if n % 3 == 0 or not spoof:
            rt = t + lan_delay(rng, target) // 4
            sim.emit(rt, P.tcp6_frame(back, target.mac, dst, src, target.ttl, 0, dport, sport, rng.getrandbits(32),
                                      seq + 1, P.SYN | P.ACK, target.stack.syn_window, ropts), atk.tag)
            if not spoof and attacker.local:
                sim.emit(rt + 30, P.tcp6_frame(target.mac, smac, src, dst, attacker.ttl, 0, sport, dport, seq + 1, 0,
                                               P.RST, 0), atk.tag)
        sport = (sport + 1 if sport < 65535 else 1024) if tool == "nping" or not spoof else rng.randint(1024, 65535)
        n += 1
        acc += gap
        step = int(acc)
        acc -= step
        t += step
        if n % 200 == 0:
            yield t
    yield t


def udp6_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int, seconds: float,
               dport: int = 53, data: int = 0, spoof: bool = False, link_local: bool = False) -> Process:
    """UDP flood over IPv6 (``nping -6 --udp`` / THC): ICMPv6 port unreachable back, limited as Linux
    limits ICMPv6 errors (burst 6, then one per second and destination); lwIP answers every one."""
    atk = Attack(env, "dos", "udp6-flood" + ("-spoofed" if spoof else ""), attacker, rng)
    sim = env.sim
    src0, dst, back = _endpoints(env, attacker, target, link_local, spoof)
    payload = env.noise(data, rng) if data and rng.random() < 0.5 else b"X" * data
    sport = rng.randint(1024, 60000)
    t, end = sim.now, sim.now + int(seconds * SECOND)
    step = max(1, SECOND // rate)
    limited = not target.stack.name.startswith("lwip")
    last, n = -SECOND, 0
    while t < end:
        src = _random_global(rng) if spoof else src0
        f = P.udp6_frame(target.mac, attacker.mac, src, dst, 64, sport, dport, payload)
        sim.emit(t, f, atk.tag)
        if not limited or n < 6 or t - last >= (1000 if spoof else SECOND):
            rt = t + 200
            sim.emit(rt, P.icmp6_frame(back, target.mac, dst, src, target.ttl, 1, 4, bytes(4) + f[14:14 + 1232]),
                     atk.tag)
            last = rt
        sport = sport + 1 if sport < 65535 else 1024
        t += step
        n += 1
        if n % 200 == 0:
            yield t
    yield t


def icmp6_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int, seconds: float,
                tool: str = "ping6", data: int = 56, spoof: bool = False, link_local: bool = False) -> Process:
    """ICMPv6 echo-request flood: ``ping -6 -f`` (id = pid, sequence + 1, iputils' 56 bytes: 16-byte
    timestamp then 0x10, 0x11, ...) or a fixed-size THC/nping flood; the victim echoes every one."""
    atk = Attack(env, "dos", f"icmp6-flood-{tool}" + ("-spoofed" if spoof else ""), attacker, rng)
    sim = env.sim
    src0, dst, back = _endpoints(env, attacker, target, link_local, spoof)
    ident = rng.randint(1000, 40000)
    t, end = sim.now, sim.now + int(seconds * SECOND)
    step = max(1, SECOND // rate)
    seq, n = (1 if tool == "ping6" else 0), 0
    fill = bytes(range(16, 56)) if tool == "ping6" else b"\x00" * data
    while t < end:
        src = _random_global(rng) if spoof else src0
        if tool == "ping6":
            now_s = t // SECOND
            payload = struct.pack("<QQ", now_s, t % SECOND) + fill
        else:
            payload = fill
        body = struct.pack("!HH", ident, seq & 0xFFFF) + payload
        sim.emit(t, P.icmp6_frame(target.mac, attacker.mac, src, dst, 64, 128, 0, body), atk.tag)
        sim.emit(t + 150 + (lan_delay(rng, target) // 8 if n % 50 == 0 else 0),
                 P.icmp6_frame(back, target.mac, dst, src, target.ttl, 129, 0, body), atk.tag)
        seq += 1
        t += step
        n += 1
        if n % 200 == 0:
            yield t
    yield t


# ----------------------------------------------------------------------------- exfiltration
def icmp6_tunnel(env: Env, client: Host, rng: random.Random, *, seconds: float, pps: float, tool: str) -> Process:
    """Data in ICMPv6 echo payloads to an Internet relay nobody contacted before: ``ptunnel`` (ptunnel-ng
    magic header, large requests, replies carrying data back) or ``icmpsh`` (the victim's echo requests
    carry command output, the master's echo replies carry the commands)."""
    atk = Attack(env, "exfiltration", f"icmp6-tunnel-{tool}", client, rng)
    sim, home = env.sim, env.home
    src = home.give_gua6(client)
    relay = home.unseen_peer(rng)
    if relay.gua6 is None:
        relay.gua6 = _random_global(rng)
    ident = rng.getrandbits(16)
    t, end = sim.now, sim.now + int(seconds * SECOND)
    seq = 0
    while t < end:
        up = rng.randint(300, 1200) if rng.random() < 0.7 else rng.randint(28, 100)
        if tool == "ptunnel":
            data = struct.pack("!IIHHIHH", 0xD5200880, rng.getrandbits(32), 22, 0x2000, 0, seq, 0) + env.noise(up, rng)
            reply = data[:20] + env.noise(rng.randint(28, 600), rng)
        else:  # icmpsh: output up, short commands down (or empty keepalive replies)
            data = env.noise(up, rng)
            reply = env.noise(rng.randint(4, 80), rng) if rng.random() < 0.5 else b""
        body = P.icmp_echo(ident, seq)
        sim.emit(t, P.icmp6_frame(relay.mac, client.mac, src, relay.gua6, client.ttl, 128, 0, body + data), atk.tag)
        sim.emit(t + wan_rtt(rng), P.icmp6_frame(client.mac, relay.mac, relay.gua6, src, relay.ttl, 129, 0,
                                                 body + reply), atk.tag)
        seq = (seq + 1) & 0xFFFF
        t += int(SECOND / pps * rng.uniform(0.5, 1.5))
        yield t
    yield t


def dns6_tunnel(env: Env, client: Host, rng: random.Random, *, tool: str, seconds: float, qps: float) -> Process:
    """iodine / dnscat2 over IPv6 transport: to the router's link-local address (announced as the
    resolver) when the client speaks IPv6 on the link, else to a public resolver's IPv6 address."""
    atk = Attack(env, "exfiltration", f"dns6-tunnel-{tool}", client, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    if client.ip6 is not None and gw.ip6 is not None and rng.random() < 0.5:
        src, server, dst, smac = client.ip6, gw, gw.ip6, gw.mac
    else:
        ip4, ip6 = rng.choice(PUBLIC_RESOLVERS6)
        server = home.peer(ip4)
        src, dst, smac = home.give_gua6(client), ip6, server.mac
    domain = rng.choice(("t1.example.net", "tun.example.org", "d.example.com", "x.badcdn.example"))
    qtype = None
    if tool == "iodine":
        qtype = rng.choice((P.DNS_NULL, P.DNS_NULL, P.DNS_TXT, P.DNS_CNAME, P.DNS_MX, P.DNS_SRV, 65399))
    uid, seqno = rng.randrange(16), 0
    sport = eph_port(rng, client)
    t, end = sim.now, sim.now + int(seconds * SECOND)
    while t < end:
        name, qt = tunnel_query(env, rng, tool, domain, uid, qtype, seqno)
        seqno = (seqno + 1) & 0xFFFF
        q = P.dns_question(name, qt)
        qid = rng.getrandbits(16)
        if rng.random() < 0.3:
            sport = eph_port(rng, client)
        sim.emit(t, P.udp6_frame(smac, client.mac, src, dst, client.ttl, sport, 53,
                                 P.dns_message(qid, 0x0100, [q], additional=[P.edns_opt(4096)])), atk.tag)
        rdata = tunnel_answer(env, rng, tool, qt, domain)
        sim.emit(t + wan_rtt(rng), P.udp6_frame(client.mac, smac, dst, src, server.ttl if server is not gw else 64,
                                                53, sport, P.dns_message(qid, 0x8180, [q],
                                                                         [P.dns_rr(P.PTR_TO_QNAME, qt, rdata, 0)],
                                                                         additional=[P.edns_opt(4096)])), atk.tag)
        t += int(SECOND / qps * rng.uniform(0.3, 1.7))
        yield t
    yield t


# ----------------------------------------------------------------------------- recon
def alive6(env: Env, attacker: Host, rng: random.Random, *, mode: str = "multicast", count: int = 256,
           rate: float = 500) -> Process:
    """thc-ipv6 ``alive6``: ``multicast`` pings ff02::1 from the link-local address (every IPv6 host
    answers from its own, most after resolving the attacker's address), 2-3 rounds a second apart;
    ``range`` walks ``prefix::1 .. ::count`` plus guessed interface IDs with a neighbour solicitation
    per address, live ones answering the NS and the echo request that follows."""
    atk = Attack(env, "recon", f"alive6-{mode}", attacker, rng)
    sim, home = env.sim, env.home
    t = sim.now
    live = [h for h in home.live_hosts(t) if h is not attacker and h.ip6 is not None and h.kind != "group"]
    ident = rng.getrandbits(16)
    if mode == "multicast":
        src = attacker.ip6 or (bytes.fromhex("fe80000000000000") + sim.rng("v6/ll/" + attacker.name).randbytes(8))
        for rnd in range(rng.randint(2, 3)):
            body = struct.pack("!HH", ident, rnd) + b"alive6" + rng.randbytes(2)
            sim.emit(t, P.icmp6_frame(P.multicast_mac6(ALL_NODES), attacker.mac, src, ALL_NODES, 255, 128, 0, body),
                     atk.tag)
            for h in live:
                if _filtered(h) and h.stack.name == "windows":
                    continue
                rt = t + lan_delay(rng, h) + rng.randint(0, 3 * MS)
                if rnd == 0 and rng.random() < 0.7:
                    neighbour_solicit(env, rt, h, h.ip6, src, atk.tag)
                    rt += lan_delay(rng, attacker)
                    neighbour_advert(env, rt, attacker, src, h, h.ip6, atk.tag)
                    rt += 200
                sim.emit(rt, P.icmp6_frame(attacker.mac, h.mac, h.ip6, src, h.ttl, 129, 0, body), atk.tag)
            t += SECOND + rng.randint(0, 50 * MS)
            yield t
        return
    src = home.give_gua6(attacker)
    prefix = home.v6_prefix
    targets = {prefix + i.to_bytes(8, "big"): None for i in range(1, count + 1)}
    for h in live:  # EUI-64 / known interface IDs: the live hosts are among the guesses
        targets[home.give_gua6(h)] = h
    order = list(targets.items())
    rng.shuffle(order)
    gap = max(1, int(SECOND / rate))
    for i, (addr, h) in enumerate(order):
        neighbour_solicit(env, t, attacker, src, addr, atk.tag)
        if h is not None:
            rt = t + lan_delay(rng, h)
            neighbour_advert(env, rt, h, addr, attacker, src, atk.tag)
            rt += rng.randint(100, 1 * MS)
            body = struct.pack("!HH", ident, i & 0xFFFF) + b"alive6" + rng.randbytes(2)
            sim.emit(rt, P.icmp6_frame(h.mac, attacker.mac, src, addr, 64, 128, 0, body), atk.tag)
            if not (_filtered(h) and h.stack.name == "windows"):
                sim.emit(rt + lan_delay(rng, h), P.icmp6_frame(attacker.mac, h.mac, addr, src, h.ttl, 129, 0, body),
                         atk.tag)
        t += gap + rng.randint(0, gap // 2 + 1)
        if i % 50 == 49:
            yield t
    yield t


# ----------------------------------------------------------------------------- benign traceroute
TRACE_NAMES = ("www.example.com", "news.example.com", "docs.example.org", "mail.example.net",
               "www.video.example.com", "speedtest.example.net")


class _Path:
    """The routers between the home and one destination: hop 1 the home router, then the ISP's
    (CGNAT or private addresses now and then) and transit routers; per hop its address (v4, v6),
    initial TTL, how much it quotes, whether it answers, and the round trip."""

    def __init__(self, env: Env, rng: random.Random, hops: int):
        home = env.home
        isp = env.sim.rng("traceroute/isp")  # the same first ISP hops for every trace of the home
        isp_hops = [(bytes((100, 64 + isp.randrange(64), isp.randrange(256), isp.randrange(1, 255))),
                     bytes.fromhex("2a02") + isp.randbytes(14))] + [
            (bytes((isp.choice((62, 80, 84, 195, 212)), isp.randrange(256), isp.randrange(256), isp.randrange(1, 255))),
             bytes.fromhex("2a02") + isp.randbytes(14)) for _ in range(2)]
        self.hops = [(home.gateway.ip, home.v6_prefix + bytes(7) + b"\x01", 64, False, True, 0)]
        rtt = rng.randint(4 * MS, 15 * MS)
        for k in range(1, hops):
            if k - 1 < len(isp_hops):
                v4, v6 = isp_hops[k - 1]
            else:
                first = rng.choice((4, 23, 62, 63, 64, 66, 68, 80, 81, 84, 87, 89, 94, 108, 129, 130, 154, 176, 185, 193,
                                    194, 195, 199, 203, 206, 207, 208, 209, 212, 213, 216, 217))
                v4, v6 = bytes((first,)) + rng.randbytes(2) + bytes((rng.randrange(1, 255),)), _random_global(rng)
                rtt += rng.randint(0, 12 * MS)
            self.hops.append((v4, v6, rng.choice((255, 255, 64)), rng.random() < 0.3, rng.random() > 0.12, rtt))
        self.dest_rtt = rtt + rng.randint(0, 5 * MS)


def traceroute(env: Env, dev: Host, rng: random.Random, t: int, *, style: str, v6: bool) -> int:
    """One traceroute from ``dev`` (see module docstring); returns when it is done."""
    sim, home = env.sim, env.home
    tag = env.normal("traceroute" + ("6" if v6 else ""))
    name = rng.choice(TRACE_NAMES)
    t, ip = home.lookup(t, dev, name, rng, qtype=P.DNS_AAAA if v6 else P.DNS_A, force=v6)
    dest = home.peer6(ip) if v6 else home.peer(ip)
    src = home.give_gua6(dev) if v6 else dev.ip
    dst = dest.gua6 if v6 else dest.ip
    # as many hops as the destination's answers lost TTL (Home.peer: 8-22), one more for the router
    hops_to = min(25, max(4, dest.stack.ttl - dest.ttl + 1)) if dest.ttl < dest.stack.ttl else rng.randint(8, 16)
    path = _Path(env, rng, hops_to - 1)
    gw = home.gateway
    t += rng.randint(1 * MS, 10 * MS)

    def probe(t: int, ttl: int, k: int) -> tuple[bytes, bytes]:
        """(frame on the wire, the same packet as it reaches the router that drops it)."""
        if style == "linux":
            sport, dport, data = eph_port(rng, dev) + k, 33434 + k, bytes(range(0x40, 0x60))
            if v6:
                f = P.udp6_frame(gw.mac, dev.mac, src, dst, ttl, sport, dport, data)
                return f, f[:21] + b"\x01" + f[22:]
            ident = dev.next_id()
            f = P.udp4_frame(gw.mac, dev.mac, src, dst, ttl, ident, False, sport, dport, data)
            return f, P.udp4_frame(gw.mac, dev.mac, src, dst, 1, ident, False, sport, dport, data)
        body = P.icmp_echo(1 if style == "tracert" else ident_mtr, (seq0 + k) & 0xFFFF)
        data = bytes(64 if style == "tracert" else 36)
        if v6:
            f = P.icmp6_frame(gw.mac, dev.mac, src, dst, ttl, 128, 0, body + data)
            return f, f[:21] + b"\x01" + f[22:]
        ident = dev.next_id()
        return (P.icmp4_frame(gw.mac, dev.mac, src, dst, ttl, ident, False, 8, 0, body, data),
                P.icmp4_frame(gw.mac, dev.mac, src, dst, 1, ident, False, 8, 0, body, data))

    def answer(t: int, ttl: int, f: bytes, expired: bytes) -> int | None:
        """The router's or the destination's answer to a probe sent at ``t`` (None: no answer)."""
        if ttl >= hops_to:  # reached the destination
            rt = t + path.dest_rtt + rng.randint(0, 3 * MS)
            if style == "linux":
                quote = f[14:]
                if v6:
                    sim.emit(rt, P.icmp6_frame(dev.mac, gw.mac, dst, src, dest.ttl, 1, 4, bytes(4) + quote), tag)
                else:
                    ttl_left = ttl - hops_to + 1
                    q = bytearray(quote)
                    q[8] = ttl_left
                    q[10:12] = b"\0\0"
                    q[10:12] = P.checksum(bytes(q[:20])).to_bytes(2, "big")
                    sim.emit(rt, P.icmp4_frame(dev.mac, gw.mac, dst, src, dest.ttl, rng.getrandbits(16), False,
                                               3, 3, bytes(4), bytes(q)), tag)
            else:
                off = 14 + (40 if v6 else 20)
                echo = f[off:]
                if v6:
                    sim.emit(rt, P.icmp6_frame(dev.mac, gw.mac, dst, src, dest.ttl, 129, 0, echo[4:]), tag)
                else:
                    sim.emit(rt, P.icmp4_frame(dev.mac, gw.mac, dst, src, dest.ttl, rng.getrandbits(16), False,
                                               0, 0, echo[4:8], echo[8:]), tag)
            return rt
        v4a, v6a, init, short, answers, rtt = path.hops[ttl - 1]
        if not answers:
            return None
        rt = t + (rng.randint(300, 3 * MS) if ttl == 1 else rtt + rng.randint(0, 4 * MS))
        arrive = init - (ttl - 1)
        if v6:
            sim.emit(rt, P.icmp6_frame(dev.mac, gw.mac, v6a, src, 64 if ttl == 1 else arrive, 3, 0,
                                       bytes(4) + expired[14:14 + 1232]), tag)
        else:
            quote = expired[14:14 + 28] if short else expired[14:14 + 548]
            sim.emit(rt, P.icmp4_frame(dev.mac, gw.mac, v4a, src, 64 if ttl == 1 else arrive,
                                       0 if ttl == 1 else rng.getrandbits(16), False, 11, 0, bytes(4), quote), tag)
        return rt

    ident_mtr, seq0 = rng.randint(1000, 60000), rng.randint(0, 30000) if style == "tracert" else 33000
    last = t
    if style == "linux":  # 16 probes in flight, 3 per hop, until a hop reaches the destination
        k, ttl_max = 0, min(30, hops_to + 2)
        sent = t
        for ttl in range(1, ttl_max + 1):
            for _ in range(3):
                f, expired = probe(sent, ttl, k)
                sim.emit(sent, f, tag)
                got = answer(sent, ttl, f, expired)
                last = max(last, got or sent)
                k += 1
                sent += rng.randint(20, 200) if k % 16 else max(path.dest_rtt // 2, 5 * MS)
        return max(last, sent) + 5 * MS
    rounds = rng.randint(5, 10) if style == "mtr" else 1
    k = 0
    for r in range(rounds):
        for ttl in range(1, hops_to + 1):
            for _ in range(3 if style == "tracert" else 1):
                f, expired = probe(t, ttl, k)
                sim.emit(t, f, tag)
                got = answer(t, ttl, f, expired)
                k += 1
                if style == "tracert":
                    t = (got + rng.randint(1 * MS, 3 * MS)) if got else t + 4 * SECOND  # request timed out
                else:
                    t += rng.randint(5 * MS, 30 * MS)
                last = max(last, got or t)
        if style == "mtr":
            t += SECOND
    return max(last, t)


def traceroutes(env: Env, hosts: list[Host], rng: random.Random, per_10min: float = 3.0) -> Process:
    """A laptop or phone runs a traceroute now and then (exponential gaps, ``per_10min`` on average)."""
    sim = env.sim
    t = sim.now
    while True:
        present = [h for h in hosts if h.present_from <= t]
        if present:
            dev = rng.choice(present)
            style = rng.choice(("linux", "linux", "tracert", "mtr")) if dev.stack.name != "windows" \
                else rng.choice(("tracert", "tracert", "mtr"))
            if dev.kind == "phone":
                style = rng.choice(("linux", "mtr"))  # network-tools apps
            v6 = dev.ip6 is not None and rng.random() < 0.4
            t = traceroute(env, dev, rng, t, style=style, v6=v6)
        t += max(5 * SECOND, int(-math.log(1.0 - rng.random()) * 600 / per_10min * SECOND))
        yield t


__all__ = ["syn6_flood", "udp6_flood", "icmp6_flood", "icmp6_tunnel", "dns6_tunnel", "alive6", "traceroute",
           "traceroutes", "neighbour_solicit", "neighbour_advert"]
