"""Attack traffic for the synthetic lab, modelled on the packets real tools put on the wire.

Every attack is a process (see :mod:`~iotwatch.captures.sim.core`) that labels its own packets
*and the victims' replies* with its class; everything else in a capture is ``normal``. The
header details follow the tools (checked against loopback recordings, see docs/sim_vs_real.md):

``recon``
    nmap -sS (raw SYN: window 1024, MSS-only option, TTL 37-59, random IP ID, no DF, one source
    port and one sequence number per scan; RST/ACK from closed ports, SYN/ACK + kernel RST from
    open ports, filtered ports silent and probed twice), nmap -sU (empty or protocol payloads,
    ICMP port unreachable, rate-limited by Linux targets), nmap -sV (full connects, 6 s NULL probe,
    GET/OPTIONS/RTSP/TLS probes), ARP sweeps (nmap -sn / arp-scan), ICMP ping sweeps, masscan
    (TTL 255, window 1024, no options, fixed source port, to the router MAC), Mirai SYN scanning
    (sequence number = destination IP).
``dos``
    hping3 SYN floods (window 512, no options, random seq/ack, incrementing source port; own IP
    or --rand-source), hping3 UDP floods (8-byte datagrams, incrementing source port), hping3
    ICMP floods (echo id = pid, sequence stepping by 256), slowloris (many connections with
    partial headers and 15 s ``X-a:`` keepalives), Mirai attack commands run by an infected device
    (DNS water torture, SYN flood with Mirai's option block).
``bruteforce``
    hydra ssh (libssh client, KEX, encrypted auth attempts), hydra telnet/ftp/http-get
    (basic auth), MQTT CONNECT guessing (CONNACK 4/5), Mirai telnet logins with its dictionary.
``spoofing``
    arpspoof / bettercap ARP poisoning of a device<->gateway pair (unsolicited replies every
    1-10 s, the relayed traffic seen twice, cleanup re-ARPs), forged DNS answers racing the
    router's, rogue IPv6 router advertisements.
``exfiltration``
    iodine (NULL/TXT/CNAME/MX/SRV/PRIVATE queries with long base32/base64 labels), dnscat2
    (hex-encoded labels, TXT/CNAME/MX), ICMP tunnels (ptunnel magic, large echo payloads),
    bulk uploads to a host nobody resolved or contacted before.
"""
from __future__ import annotations

import base64
import random
import struct

from . import frames as P
from .core import MS, SECOND, Host, Process, Tcp, syn_options
from .devices import (Env, arp_resolve, b32, cloud_conn, eph_port, jitter, lan_conn, lan_delay,
                          router_advertisement, ssh_kex, tls_handshake, wan_rtt)

# Ports nmap probes first (nmap-services top ports, in frequency order).
NMAP_TOP_PORTS = (80, 23, 443, 21, 22, 25, 3389, 110, 445, 139, 143, 53, 135, 3306, 8080, 1723, 111, 995, 993,
                  5900, 1025, 587, 8888, 199, 1720, 465, 548, 113, 81, 6001, 10000, 514, 5060, 179, 1026, 2000,
                  8443, 8000, 32768, 554, 26, 1433, 49152, 2001, 515, 8008, 49154, 1027, 5666, 646, 5000, 5631,
                  631, 49153, 8081, 2049, 88, 79, 5800, 106, 2121, 1110, 49155, 6000, 513, 990, 5357, 427,
                  49156, 543, 544, 5101, 144, 7, 389, 8009, 3128, 444, 9999, 5009, 7070, 5190, 3000, 5432,
                  1900, 3986, 13, 1029, 9, 5051, 6646, 49157, 1028, 873, 1755, 2717, 4899, 9100, 119, 37, 1883,
                  8883, 5683, 7547, 2323, 8291, 37777, 34567, 9000, 49000, 5555, 6668, 4840, 502, 1911, 20000)
NMAP_UDP_PORTS = (631, 161, 137, 123, 138, 1434, 445, 135, 67, 53, 139, 500, 68, 520, 1900, 4500, 514, 49152,
                  162, 69, 5353, 111, 49154, 1701, 998, 996, 997, 999, 3283, 49153, 1812, 136, 2222, 2049,
                  3278, 5060, 1025, 1026, 1027, 1028, 5683, 1812, 17185, 47808, 20000)

MIRAI_CREDS = ((b"root", b"xc3511"), (b"root", b"vizxv"), (b"root", b"admin"), (b"admin", b"admin"),
               (b"root", b"888888"), (b"root", b"xmhdipc"), (b"root", b"default"), (b"root", b"juantech"),
               (b"root", b"123456"), (b"root", b"54321"), (b"support", b"support"), (b"root", b""),
               (b"admin", b"password"), (b"root", b"root"), (b"root", b"12345"), (b"user", b"user"),
               (b"admin", b""), (b"root", b"pass"), (b"admin", b"admin1234"), (b"root", b"1111"),
               (b"admin", b"smcadmin"), (b"admin", b"1111"), (b"root", b"666666"), (b"root", b"password"),
               (b"root", b"1234"), (b"root", b"klv123"), (b"Administrator", b"admin"), (b"service", b"service"),
               (b"supervisor", b"supervisor"), (b"guest", b"guest"), (b"guest", b"12345"), (b"admin1", b"password"),
               (b"administrator", b"1234"), (b"666666", b"666666"), (b"888888", b"888888"), (b"ubnt", b"ubnt"),
               (b"root", b"klv1234"), (b"root", b"Zte521"), (b"root", b"hi3518"), (b"root", b"jvbzd"),
               (b"root", b"anko"), (b"root", b"zlxx."), (b"root", b"7ujMko0vizxv"), (b"root", b"7ujMko0admin"),
               (b"root", b"system"), (b"root", b"ikwb"), (b"root", b"dreambox"), (b"root", b"user"),
               (b"root", b"realtek"), (b"root", b"00000000"), (b"admin", b"1111111"), (b"admin", b"1234"),
               (b"admin", b"12345"), (b"admin", b"54321"), (b"admin", b"123456"), (b"admin", b"7ujMko0admin"),
               (b"admin", b"pass"), (b"admin", b"meinsm"), (b"tech", b"tech"), (b"mother", b"fucker"))
WORDLIST = (b"123456", b"password", b"12345678", b"qwerty", b"123456789", b"12345", b"1234", b"111111",
            b"1234567", b"dragon", b"123123", b"baseball", b"abc123", b"football", b"monkey", b"letmein",
            b"shadow", b"master", b"666666", b"qwertyuiop", b"123321", b"mustang", b"1234567890", b"michael",
            b"654321", b"superman", b"1qaz2wsx", b"7777777", b"121212", b"000000", b"qazwsx", b"123qwe",
            b"killer", b"trustno1", b"jordan", b"jennifer", b"zxcvbnm", b"asdfgh", b"hunter", b"buster",
            b"soccer", b"harley", b"batman", b"andrew", b"tigger", b"sunshine", b"iloveyou", b"2000", b"charlie",
            b"robert", b"thomas", b"hockey", b"ranger", b"daniel", b"starwars", b"klaster", b"112233", b"george",
            b"computer", b"michelle", b"jessica", b"pepper", b"1111", b"zxcvbn", b"555555", b"11111111",
            b"131313", b"freedom", b"777777", b"pass", b"maggie", b"159753", b"aaaaaa", b"ginger", b"princess",
            b"joshua", b"cheese", b"amanda", b"summer", b"love", b"ashley", b"6969", b"nicole", b"chelsea",
            b"admin", b"raspberry", b"toor", b"changeme", b"default", b"camera", b"hikvision", b"root")
USERS = (b"admin", b"root", b"user", b"pi", b"ubnt", b"support", b"guest", b"test", b"operator")


class Attack:
    """Shared state of one attack episode: its tag, attacker host and RNG."""

    def __init__(self, env: Env, label: str, activity: str, attacker: Host | None, rng: random.Random):
        self.env, self.sim, self.home = env, env.sim, env.home
        self.tag = env.sim.tag(label, activity)
        self.attacker = attacker  # None: no attacking host on the wire (reflection floods)
        self.rng = rng
        ep = env.sim.episode
        if ep is not None and attacker is not None and attacker not in ep.attackers:  # ground truth for incidents
            ep.attackers.append(attacker)

    def raw_syn(self, t: int, dst: Host, sport: int, dport: int, seq: int, *, ttl: int, window: int,
                options: bytes, ident: int | None = None, df: bool = False, ack: int = 0, flags: int = P.SYN,
                src_ip: bytes | None = None) -> None:
        a = self.attacker
        self.sim.emit(t, P.tcp4_frame(dst.mac, a.mac, src_ip or a.ip, dst.ip, ttl,
                                      self.rng.getrandbits(16) if ident is None else ident, df, sport, dport, seq, ack,
                                      flags, window, options), self.tag)

    def reply(self, t: int, src: Host, dst: Host, sport: int, dport: int, seq: int, ack: int, flags: int,
              window: int, options: bytes = b"") -> None:
        """A kernel's answer to a probe: Linux sends SYN/ACKs and socket-less RSTs with IP ID 0 and
        DF; other stacks (lwIP) use their IP ID counter."""
        ident = 0 if src.stack.linux else src.next_id()
        self.sim.emit(t, P.tcp4_frame(dst.mac, src.mac, src.ip, dst.ip, src.ttl, ident, src.stack.df, sport,
                                      dport, seq, ack, flags, window, options), self.tag)


def open_ports(dev: Host) -> tuple[int, ...]:
    return {"camera": (23, 80, 443, 554, 8000, 49152), "hub": (21, 22, 80, 1883, 8123), "plug": (80, 9999),
            "router": (53, 80, 443),
            "speaker": (8008, 8009, 8443, 49152), "coap": (80,), "sensor": (), "laptop": (), "phone": (62078,),
            "nvr": (80, 554, 8000)}.get(dev.kind, (80,))


def _udp_services(dev: Host) -> dict[int, bytes]:
    """UDP services a device runs, with what they answer to a garbage datagram."""
    coap_rst = bytes((0x70, 0x00, 0x00, 0x00))
    formerr = P.dns_message(0, 0x8001, [])
    return {"coap": {5683: coap_rst}, "router": {53: formerr}, "hub": {5683: coap_rst},
            "bridge": {5683: coap_rst}}.get(dev.kind, {})


def _filtered(dev: Host) -> bool:
    return dev.kind in ("laptop", "phone") or dev.stack.name == "windows"


# ----------------------------------------------------------------------------- recon
def nmap_syn_scan(env: Env, attacker: Host, target: Host, rng: random.Random, *, ports: int = 1000,
                  timing: int = 4) -> Process:
    """``nmap -sS [-T3|-T4] --top-ports N TARGET`` from a LAN host (with its ARP ping first)."""
    atk = Attack(env, "recon", f"nmap-sS-T{timing}", attacker, rng)
    sim = env.sim
    t = sim.now
    t = arp_resolve(env, t, attacker, target, rng, tag=atk.tag) + rng.randint(5 * MS, 40 * MS)
    plist = list(NMAP_TOP_PORTS)
    extra = rng.sample(range(1, 65536), max(0, ports - len(plist)))
    plist = (plist + [p for p in extra if p not in NMAP_TOP_PORTS])[:ports]
    head, tail = plist[:10], plist[10:]
    rng.shuffle(tail)
    order = head + tail
    sport = rng.randint(32768, 65000)
    seq = rng.getrandbits(32)
    gap = {3: 900, 4: 150, 5: 30}[timing]  # -T5 / --min-rate: tens of thousands of probes per second
    listening = set(open_ports(target))
    silent = _filtered(target)
    retry: list[int] = []
    for i, port in enumerate(order):
        atk.raw_syn(t, target, sport, port, seq, ttl=rng.randint(37, 59), window=1024,
                    options=P.tcp_options(mss=1460, order="plain"))
        rt = t + lan_delay(rng, target)
        if silent and port not in listening:
            retry.append(port)
        elif port in listening:
            synack = P.tcp_options(mss=target.stack.mss, order="plain")
            isn = rng.getrandbits(32)
            atk.reply(rt, target, attacker, port, sport, isn, seq + 1, P.SYN | P.ACK,
                      target.stack.syn_window, synack)
            atk.reply(rt + rng.randint(20, 120), attacker, target, sport, port, seq + 1, 0, P.RST, 0)
        else:
            atk.reply(rt, target, attacker, port, sport, 0, seq + 1, P.RST | P.ACK, 0)
        t += gap + rng.randint(0, gap)
        if i % 50 == 49:
            yield t
    t += rng.randint(200 * MS, 1000 * MS)
    for port in retry:  # nmap probes unanswered ports once more
        atk.raw_syn(t, target, sport, port, seq, ttl=rng.randint(37, 59), window=1024,
                    options=P.tcp_options(mss=1460, order="plain"))
        t += gap + rng.randint(0, gap)
    yield t


def nmap_udp_scan(env: Env, attacker: Host, target: Host, rng: random.Random, *, ports: int = 60) -> Process:
    """``nmap -sU -T4``: empty datagrams (payloads for well-known ports) from one source port, a
    retransmission round from source port + 2 for the silent ports.

    Closed ports answer ICMP port unreachable, which Linux targets rate-limit (burst of 6, then
    1/s), so most probes go unanswered; open services answer, and since no socket owns the
    scanner's port its kernel replies port unreachable too.
    """
    atk = Attack(env, "recon", "nmap-sU", attacker, rng)
    sim = env.sim
    sport = rng.randint(32768, 65000)
    limited = target.stack.name in ("linux", "embedded-linux", "android")
    payloads = {53: P.dns_message(0, 0x0000, []), 123: P.ntp(3, 0, sim.now),
                161: bytes.fromhex("302602010104067075626c6963a11902044c33a756020100020100300b300906052b060102010500"),
                1900: b"M-SEARCH * HTTP/1.1\r\nHost:239.255.255.250:1900\r\nST:upnp:rootdevice\r\n"
                      b"Man:\"ssdp:discover\"\r\nMX:3\r\n\r\n",
                5353: P.dns_message(0, 0, [P.dns_question("_services._dns-sd._udp.local", P.DNS_PTR)])}
    answering = {"router": {53: b"\x00\x00\x81\x80" + bytes(8), 123: P.ntp(4, 2, sim.now)},
                 "hub": {5353: P.dns_message(0, P.MDNS_RESPONSE_FLAGS, [])},
                 "speaker": {5353: P.dns_message(0, P.MDNS_RESPONSE_FLAGS, [])},
                 "camera": {1900: b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n"}}.get(target.kind, {})
    answering.update(_udp_services(target))
    plist = list(NMAP_UDP_PORTS[:ports]) + rng.sample(range(1, 65536), max(0, ports - len(NMAP_UDP_PORTS)))
    t = sim.now
    tokens, last_refill = 6.0, t
    silent: list[int] = []
    for rnd, batch in enumerate((plist, None)):
        if batch is None:
            batch, silent = silent, []
        for port in batch:
            data = payloads.get(port, b"")
            sp = sport + 2 * rnd
            f = P.udp4_frame(target.mac, attacker.mac, attacker.ip, target.ip, rng.randint(37, 59), rng.getrandbits(16),
                             False, sp, port, data)
            sim.emit(t, f, atk.tag)
            rt = t + lan_delay(rng, target)
            tokens = min(6.0, tokens + (rt - last_refill) / SECOND)
            last_refill = rt
            if port in answering:
                sim.udp(rt, target, attacker, port, sp, answering[port], atk.tag)
                back = P.udp4_frame(attacker.mac, target.mac, target.ip, attacker.ip, target.ttl, 0, True, port, sp,
                                    answering[port])
                sim.icmp(rt + 50, attacker, target, 3, 3, bytes(4), P.quoted_ip(back, 28 + len(answering[port])),
                         atk.tag, df=False)
            elif _filtered(target):
                silent.append(port)
            elif not limited or tokens >= 1:
                tokens -= 1
                sim.icmp(rt, target, attacker, 3, 3, bytes(4), P.quoted_ip(f, 28 + len(data)), atk.tag, df=False)
            else:
                silent.append(port)
            t += rng.randint(1 * MS, 30 * MS)
            yield t
        t += rng.randint(300 * MS, 900 * MS)
    yield t


def nmap_version_probe(env: Env, attacker: Host, target: Host, rng: random.Random) -> Process:
    """``nmap -sV``: connect to each open port, wait for a banner, then send GetRequest/RTSP/TLS probes."""
    atk = Attack(env, "recon", "nmap-sV", attacker, rng)
    t = env.sim.now
    probes = (b"GET / HTTP/1.0\r\n\r\n", b"OPTIONS / HTTP/1.0\r\n\r\n", b"OPTIONS / RTSP/1.0\r\n\r\n", b"\r\n\r\n",
              b"GET /nice%20ports%2C/Tri%6Eity.txt%2ebak HTTP/1.0\r\n\r\n")
    for port in open_ports(target) or (80,):
        for probe in probes[:rng.randint(2, len(probes))]:
            c = lan_conn(env, attacker, target, port, atk.tag, rng)
            t = c.connect(t)
            if port in (22, 23, 21):
                banner = b"SSH-2.0-dropbear_2019.78\r\n" if port == 22 else b"\xff\xfd\x18\xff\xfd\x20"
                t = c.send(t + c.db, False, banner)
            else:
                t += 6 * SECOND if probe is probes[0] else rng.randint(1 * MS, 5 * MS)
                resp = (b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"
                        if port == 554 else
                        b"HTTP/1.1 400 Bad Request\r\nServer: " + rng.choice((b"lighttpd/1.4.59", b"App-webs/",
                                                                           b"nginx", b"GoAhead-Webs"))
                        + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                t = c.request(t, probe, resp, server_time=rng.randint(1 * MS, 10 * MS))
            t = c.close(t + rng.randint(1 * MS, 5 * MS), from_a=False)
            yield t
        yield t


def arp_sweep(env: Env, attacker: Host, rng: random.Random, *, tool: str = "nmap-sn") -> Process:
    """ARP who-has for every address of the /24; live hosts answer.

    ``nmap-sn``: bursts of ~25 requests every ~100 ms in random order, one retry round for the
    silent addresses; ``arp-scan``: one request every ~2 ms in address order. Linux hosts that
    learned the scanner's MAC confirm it later with a unicast request (neighbour probing).
    """
    atk = Attack(env, "recon", f"arp-sweep-{tool}", attacker, rng)
    sim, home = env.sim, env.home
    live = {h.ip: h for h in home.live_hosts(sim.now) if h is not attacker}
    t = sim.now
    targets = [last for last in range(1, 255) if home.lan_ip(last) != attacker.ip]
    if tool != "arp-scan":
        rng.shuffle(targets)
    rounds = (targets, [x for x in targets if home.lan_ip(x) not in live]) if tool != "arp-scan" else (targets,)
    for rnd, batch in enumerate(rounds):
        for k, last in enumerate(batch):
            ip = home.lan_ip(last)
            sim.arp(t, P.BROADCAST, attacker.mac, 1, attacker.mac, attacker.ip, bytes(6), ip, atk.tag)
            h = live.get(ip)
            if h is not None:
                rt = t + lan_delay(rng, h)
                sim.arp(rt, attacker.mac, h.mac, 2, h.mac, h.ip, attacker.mac, attacker.ip, atk.tag)
                if h.stack.name in ("linux", "embedded-linux", "android") and rng.random() < 0.3:
                    vt = rt + rng.randint(1 * SECOND, 6 * SECOND)
                    sim.arp(vt, attacker.mac, h.mac, 1, h.mac, h.ip, bytes(6), attacker.ip, atk.tag)
                    sim.arp(vt + lan_delay(rng, attacker), h.mac, attacker.mac, 2, attacker.mac, attacker.ip, h.mac,
                            h.ip, atk.tag)
            if tool == "arp-scan":
                t += 2 * MS + rng.randint(0, 300)
            elif k % 25 == 24:
                t += rng.randint(90 * MS, 110 * MS)
            else:
                t += rng.randint(10, 150)
            if k % 25 == 24:
                yield t
        t += rng.randint(500 * MS, 700 * MS)
        yield t


def ping_sweep(env: Env, attacker: Host, rng: random.Random) -> Process:
    """``nmap -sn -PE --send-ip`` style ICMP echo sweep of the /24 (8-byte echo, random TTL/ID)."""
    atk = Attack(env, "recon", "ping-sweep", attacker, rng)
    sim, home = env.sim, env.home
    live = {h.ip: h for h in home.live_hosts(sim.now) if h is not attacker}
    t = sim.now
    ident = rng.getrandbits(16)
    order = list(range(1, 255))
    rng.shuffle(order)
    for i, last in enumerate(order):
        ip = home.lan_ip(last)
        if ip == attacker.ip:
            continue
        h = live.get(ip)
        if h is None:  # the attacker's kernel ARPs for absent hosts; nobody answers
            sim.arp(t, P.BROADCAST, attacker.mac, 1, attacker.mac, attacker.ip, bytes(6), ip, atk.tag)
        else:
            f = P.icmp4_frame(h.mac, attacker.mac, attacker.ip, ip, rng.randint(37, 59), rng.getrandbits(16), False,
                              8, 0, P.icmp_echo(ident, 0))
            sim.emit(t, f, atk.tag)
            if not _filtered(h):
                sim.icmp(t + lan_delay(rng, h), h, attacker, 0, 0, P.icmp_echo(ident, 0), b"", atk.tag, df=False)
        t += rng.randint(1 * MS, 6 * MS)
        if i % 32 == 31:
            yield t
    yield t


def masscan(env: Env, attacker: Host, rng: random.Random, *, rate: int = 2000, count: int = 6000,
            target: Host | None = None) -> Process:
    """masscan: TTL 255, window 1024, no options, one source port, SYN-cookie sequence numbers.

    Without ``target`` it sweeps an Internet range through the router (``-p`` a few IoT ports);
    with ``target`` it sweeps a port range of one LAN host. masscan's own stack answers every
    SYN/ACK or RST/ACK with a RST (TTL 255, window 1200).
    """
    atk = Attack(env, "recon", "masscan", attacker, rng)
    home = env.home
    ports = rng.choice(((80, 443, 8080), (23, 2323), (22,), (554, 8554, 37777), (1883, 8883), (5555, 7547, 8291)))
    top = rng.choice((1000, 2000, 5000, 10000))
    sport = rng.randint(32768, 61000)
    base = rng.choice((0xC6120000, 0xC6130000))
    listening = set(open_ports(target)) if target is not None else set()
    t = env.sim.now
    for i in range(count):
        if target is None:
            peer = home.peer((base + rng.randrange(65536)).to_bytes(4, "big"))
            dport = rng.choice(ports)
            r = rng.random()
            answer = "synack" if r < 0.03 else "rst" if r > 0.985 else None
            rt = t + wan_rtt(rng)
        else:
            peer = target
            dport = rng.randint(1, top)
            answer = "synack" if dport in listening else (None if _filtered(target) else "rst")
            rt = t + lan_delay(rng, target)
        seq = rng.getrandbits(32)
        ident = rng.getrandbits(16)
        atk.raw_syn(t, peer, sport, dport, seq, ttl=255, window=1024, options=b"", ident=ident)
        if answer == "synack":
            atk.reply(rt, peer, attacker, dport, sport, rng.getrandbits(32), seq + 1, P.SYN | P.ACK,
                      peer.stack.syn_window, syn_options(peer.stack, rng.getrandbits(32)))
        elif answer == "rst":
            atk.reply(rt, peer, attacker, dport, sport, 0, seq + 1, P.RST | P.ACK, 0)
        if answer:
            atk.raw_syn(rt + rng.randint(20, 100), peer, sport, dport, seq + 1, ttl=255, window=1200, options=b"",
                        ident=(ident - 3) & 0xFFFF, flags=P.RST)
        t += int(SECOND / rate * rng.uniform(0.8, 1.2))
        if i % 100 == 99:
            yield t
    yield t


def mirai_scan(env: Env, bot: Host, rng: random.Random, *, count: int = 3000, rate: int = 150) -> Process:
    """Mirai's telnet scanner from an infected device: SYN to 23 (90%) / 2323, seq = destination IP."""
    atk = Attack(env, "recon", "mirai-scan", bot, rng)
    home = env.home
    sport = rng.randint(1024, 65535)
    t = env.sim.now
    for i in range(count):
        ip = home.new_public_ip(rng)
        peer = home.peer(ip)
        dport = 2323 if rng.random() < 0.1 else 23
        seq = int.from_bytes(ip, "big")
        atk.raw_syn(t, peer, sport, dport, seq, ttl=64, window=rng.getrandbits(16) or 1, options=b"")
        if rng.random() < 0.02:
            atk.reply(t + wan_rtt(rng), peer, bot, dport, sport, 0, seq + 1, P.RST | P.ACK, 0)
        t += int(SECOND / rate * rng.uniform(0.5, 1.5))
        if i % 50 == 49:
            yield t
    yield t


# ----------------------------------------------------------------------------- dos
def hping3_syn_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int, seconds: float,
                     spoof: str = "none", dport: int = 80) -> Process:
    """``hping3 -S --flood -p PORT [--rand-source | -a IP] TARGET``.

    hping3: window 512, no options, no DF, random IP ID, random seq *and* ack (ACK flag clear),
    source port incrementing from a random base. The victim answers SYN/ACK (to the spoofed
    sources through the router, or to the attacker, whose kernel resets them).
    """
    atk = Attack(env, "dos", f"hping3-syn-flood-{spoof}", attacker, rng)
    sim, home = env.sim, env.home
    sport = rng.randint(1024, 60000)
    t = sim.now
    end = t + int(seconds * SECOND)
    gap = SECOND / rate
    acc = 0.0
    spoofed_ip = home.new_public_ip(rng) if spoof == "fixed" else None
    opts = P.tcp_options(mss=target.stack.mss, order="plain")
    n = 0
    while t < end:
        if spoof == "random":
            src_ip = rng.getrandbits(32).to_bytes(4, "big")
        elif spoof == "fixed":
            src_ip = spoofed_ip
        else:
            src_ip = attacker.ip
        seq = rng.getrandbits(32)
        atk.raw_syn(t, target, sport, dport, seq, ttl=64, window=512, options=b"", ack=rng.getrandbits(32),
                    src_ip=src_ip)
        if n % 3 == 0 or spoof == "none":  # the victim's backlog answers a share of the flood
            rt = t + lan_delay(rng, target) // 4
            dmac = attacker.mac if spoof == "none" else home.gateway.mac
            sim.emit(rt, P.tcp4_frame(dmac, target.mac, target.ip, src_ip, target.ttl,
                                      0 if target.stack.linux else target.next_id(), target.stack.df, dport, sport,
                                      rng.getrandbits(32), seq + 1, P.SYN | P.ACK,
                                      target.stack.syn_window, opts), atk.tag)
            if spoof == "none":
                atk.reply(rt + 30, attacker, target, sport, dport, seq + 1, 0, P.RST, 0)
        sport = sport + 1 if sport < 65535 else 1024
        n += 1
        acc += gap
        step = int(acc)
        acc -= step
        t += step
        if n % 200 == 0:
            yield t
    yield t


def hping3_udp_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int, seconds: float,
                     dport: int = 53, data: int = 0, spoof: bool = False) -> Process:
    """``hping3 --udp --flood -p PORT [-d N]``: port unreachable replies, rate-limited by the victim."""
    atk = Attack(env, "dos", "hping3-udp-flood", attacker, rng)
    sim = env.sim
    sport = rng.randint(1024, 60000)
    t = sim.now
    end = t + int(seconds * SECOND)
    payload = b"X" * data  # hping3 -d pads with 'X'
    last_icmp = 0
    step = max(1, SECOND // rate)
    n = 0
    gw = env.home.gateway
    limited = not target.stack.name.startswith("lwip")
    services = _udp_services(target)
    last_kernel = 0
    while t < end:
        src = rng.getrandbits(32).to_bytes(4, "big") if spoof else attacker.ip
        f = P.udp4_frame(target.mac, attacker.mac, src, target.ip, 64, rng.getrandbits(16), False, sport, dport,
                         payload)
        sim.emit(t, f, atk.tag)
        # Linux limits ICMP errors per destination (burst 6, then 1/s) and globally (~1000/s); lwIP does not
        if dport not in services and (not limited or (spoof and t - last_icmp >= 1000)
                                                  or (not spoof and (n < 6 or t - last_icmp >= SECOND))):
            rt = t + 200
            sim.emit(rt, P.icmp4_frame(gw.mac if spoof else attacker.mac, target.mac, target.ip, src, target.ttl,
                                       target.next_id(), False, 3, 3, bytes(4), P.quoted_ip(f, 28 + min(data, 548))),
                     atk.tag)
            last_icmp = rt
        elif dport in services and data >= 4 and not spoof and rng.random() < 0.5:  # the service answers ...
            rt = t + 300
            sim.udp(rt, target, attacker, dport, sport, services[dport], atk.tag)
            if n < 6 or rt - last_kernel >= SECOND:  # ... and the attacker's kernel: port unreachable
                reply = P.udp4_frame(attacker.mac, target.mac, target.ip, attacker.ip, target.ttl, 0, True, dport,
                                     sport, services[dport])
                sim.icmp(rt + 40, attacker, target, 3, 3, bytes(4), P.quoted_ip(reply, 28 + len(services[dport])),
                         atk.tag, df=False)
                last_kernel = rt
        sport = sport + 1 if sport < 65535 else 1024
        t += step
        n += 1
        if n % 200 == 0:
            yield t
    yield t


def hping3_icmp_flood(env: Env, attacker: Host, target: Host, rng: random.Random, *, rate: int,
                      seconds: float, data: int = 0) -> Process:
    """``hping3 --icmp --flood [-d N]``: echo requests (no data by default), id = pid, sequence
    stepping by 256 (hping3 writes it little-endian)."""
    atk = Attack(env, "dos", "hping3-icmp-flood", attacker, rng)
    sim = env.sim
    ident = rng.randint(1000, 40000)
    t = sim.now
    end = t + int(seconds * SECOND)
    step = max(1, SECOND // rate)
    seq = 0
    n = 0
    payload = b"X" * data  # hping3 -d pads with 'X'
    while t < end:
        rest = struct.pack("!HH", ident, ((seq & 0xFF) << 8) | (seq >> 8 & 0xFF))
        sim.emit(t, P.icmp4_frame(target.mac, attacker.mac, attacker.ip, target.ip, 64, rng.getrandbits(16), False,
                                  8, 0, rest, payload), atk.tag)
        sim.icmp(t + 150, target, attacker, 0, 0, rest, payload, atk.tag, df=False)  # echo replies copy DF
        seq = (seq + 1) & 0xFFFF
        t += step
        n += 1
        if n % 200 == 0:
            yield t
    yield t


def slowloris(env: Env, attacker: Host, target: Host, rng: random.Random, *, sockets: int = 150,
              seconds: float = 120, port: int = 80) -> Process:
    """slowloris.py: open many connections, send a partial request, then ``X-a: N`` every 15 s."""
    atk = Attack(env, "dos", "slowloris", attacker, rng)
    t = env.sim.now
    end = t + int(seconds * SECOND)
    uas = (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 "
           b"Safari/537.36",
           b"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0")
    conns: list[Tcp] = []
    limit = rng.randint(40, 120) if target.stack.name.startswith("lwip") else sockets
    for i in range(sockets):
        c = lan_conn(env, attacker, target, port, atk.tag, rng)
        if i >= limit:  # the server is out of connection slots
            c.connect(t, refuse=True)
        else:
            e = c.connect(t)
            c.send(e + 200, True, b"GET /?%d HTTP/1.1\r\nUser-Agent: %s\r\nAccept-language: en-US,en,q=0.5\r\n"
                   % (rng.randint(0, 2000), rng.choice(uas)))
            conns.append(c)
        t += rng.randint(2 * MS, 12 * MS)
    yield t
    while t < end:
        t += 15 * SECOND
        yield t
        for c in conns:
            t += rng.randint(100, 3 * MS)
            c.send(t, True, b"X-a: %d\r\n" % rng.randint(1, 5000))
        yield t
    for c in conns:
        t += rng.randint(100, 1 * MS)
        c.close(t)
    yield t


def botnet_flood(env: Env, bot: Host, rng: random.Random, *, rate: int, seconds: float, method: str) -> Process:
    """A Mirai attack command run by an infected device (attack.c methods).

    ``dns``: DNS water torture, random 12-character labels under the victim's domain sent to the
    resolver, which answers SERVFAIL/NXDOMAIN; ``syn``: raw SYNs with Mirai's option block
    (MSS, SACK, TS, NOP, WS) and random source ports and windows to an Internet victim.
    """
    atk = Attack(env, "dos", f"mirai-{method}-flood", bot, rng)
    sim, home = env.sim, env.home
    victim = home.unseen_peer(rng)
    domain = rng.choice(("shop.example.com", "game.example.net", "bank.example.org"))
    t = sim.now
    end = t + int(seconds * SECOND)
    step = max(1, SECOND // rate)
    dport = rng.choice((80, 443, 22, 25565))
    opts = P.tcp_options(mss=rng.randint(1400, 1460), sack_perm=True, ts=(rng.getrandbits(32), 0), wscale=6)
    n = 0
    gw = home.gateway
    while t < end:
        sport = rng.randint(1024, 65535)
        if method == "dns":
            q = P.dns_question("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
                               + "." + domain, P.DNS_A)
            qid = rng.getrandbits(16)
            sim.udp(t, bot, gw, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), atk.tag)
            if n % 4 == 0:  # the resolver keeps up with a share of them
                sim.udp(t + rng.randint(20 * MS, 400 * MS), gw, bot, 53, sport,
                        P.dns_message(qid, rng.choice((0x8182, 0x8183)), [q]), atk.tag)
        else:
            sim.emit(t, P.tcp4_frame(victim.mac, bot.mac, bot.ip, victim.ip, 64, rng.getrandbits(16), True, sport,
                                     dport, rng.getrandbits(32), 0, P.SYN, rng.getrandbits(16) or 1, opts), atk.tag)
        t += step
        n += 1
        if n % 200 == 0:
            yield t
    yield t


# ----------------------------------------------------------------------------- bruteforce
def hydra(env: Env, attacker: Host, target: Host, rng: random.Random, *, service: str, tasks: int,
          attempts: int) -> Process:
    """``hydra -l USER -P wordlist -t TASKS SERVICE://TARGET`` for ssh, telnet, ftp, http-get and mqtt."""
    atk = Attack(env, "bruteforce", f"hydra-{service}", attacker, rng)
    sim = env.sim
    port = {"ssh": 22, "telnet": 23, "ftp": 21, "http-get": 80, "mqtt": 1883}[service]
    user = rng.choice(USERS)
    words = list(WORDLIST)
    rng.shuffle(words)
    t0 = sim.now
    per_conn = {"ssh": rng.randint(1, 3), "telnet": 1, "ftp": rng.randint(1, 3), "http-get": rng.randint(2, 8),
                "mqtt": 1}[service]
    lanes = [t0 + i * rng.randint(1 * MS, 20 * MS) for i in range(tasks)]
    banner = rng.choice((b"SSH-2.0-dropbear_2019.78\r\n", b"SSH-2.0-OpenSSH_8.4p1 Raspbian-5+deb11u3\r\n",
                         b"SSH-2.0-OpenSSH_7.4\r\n"))
    i = 0
    while i < attempts:
        lane = min(range(tasks), key=lanes.__getitem__)
        t = lanes[lane]
        c = lan_conn(env, attacker, target, port, atk.tag, rng)
        t = c.connect(t)
        if service == "ssh":
            t = ssh_kex(env, c, t, rng, banner, b"SSH-2.0-libssh_0.10.5\r\n")
            for _ in range(per_conn):
                t = c.send(t + 500, True, env.noise(rng.choice((96, 112, 128)), rng), ack=False)
                t = c.send(t + c.db + rng.randint(50 * MS, 2 * SECOND), False, env.noise(rng.choice((48, 64)), rng))
                i += 1
            t = c.send(t + 200, True, env.noise(64, rng))
            t = c.close(t, from_a=rng.random() < 0.5)
        elif service == "telnet":
            t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_DO, 24), (P.TELNET_DO, 32), (P.TELNET_DO, 35),
                                                      (P.TELNET_DO, 39)))
            t = c.send(t + c.da, True, P.telnet_opts((P.TELNET_WONT, 24), (P.TELNET_WONT, 32), (P.TELNET_WONT, 35),
                                                     (P.TELNET_WONT, 39)))
            t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_WILL, 1), (P.TELNET_WILL, 3)) + b"\r\nlogin: ")
            for _ in range(per_conn):
                t = c.request(t + c.da, user + b"\r\n", user + b"\r\nPassword: ")
                t = c.request(t + c.da, words[i % len(words)] + b"\r\n",
                              b"\r\nLogin incorrect\r\nlogin: ", server_time=rng.randint(1 * SECOND, 3 * SECOND))
                i += 1
            t = c.close(t, from_a=True)
        elif service == "ftp":
            t = c.send(t + c.db, False, rng.choice((b"220 (vsFTPd 3.0.3)\r\n", b"220 ProFTPD Server ready.\r\n",
                                                    b"220 Welcome to the NAS FTP service\r\n")))
            for _ in range(per_conn):
                t = c.request(t + c.da, b"USER " + user + b"\r\n", b"331 Please specify the password.\r\n")
                t = c.request(t + c.da, b"PASS " + words[i % len(words)] + b"\r\n", b"530 Login incorrect.\r\n",
                              server_time=rng.randint(300 * MS, 3 * SECOND))
                i += 1
            t = c.request(t + c.da, b"QUIT\r\n", b"221 Goodbye.\r\n")
            t = c.close(t, from_a=False)
        elif service == "http-get":
            for _ in range(per_conn):
                cred = base64.b64encode(user + b":" + words[i % len(words)])
                req = (b"GET / HTTP/1.1\r\nHost: " + P.ip_str(target.ip).encode() + b"\r\nConnection: keep-alive\r\n"
                       b"User-Agent: Mozilla/4.0 (Hydra)\r\nAuthorization: Basic " + cred + b"\r\n\r\n")
                t = c.request(t + c.da, req, b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"index\"\r\n"
                                             b"Content-Length: 0\r\n\r\n", server_time=rng.randint(2 * MS, 30 * MS))
                i += 1
            t = c.close(t, from_a=True)
        else:  # mqtt
            cid = b"hydra" + str(rng.randint(0, 99999)).encode() if rng.random() < 0.5 else b""
            t = c.request(t + c.da, P.mqtt_connect(cid, 60, user=user, password=words[i % len(words)]),
                          P.mqtt_connack(rng.choice((4, 5))), server_time=rng.randint(1 * MS, 10 * MS))
            i += 1
            t = c.close(t + rng.randint(100, 2 * MS), from_a=False)
        lanes[lane] = t + rng.randint(1 * MS, 30 * MS)
        yield min(lanes)
    yield max(lanes)


def mirai_telnet_login(env: Env, bot: Host, target: Host, rng: random.Random, *, attempts: int) -> Process:
    """Mirai's loader: one credential pair per telnet connection, from its built-in dictionary."""
    atk = Attack(env, "bruteforce", "mirai-telnet", bot, rng)
    sim = env.sim
    t = sim.now
    port = 23 if rng.random() < 0.8 else 2323
    for i in range(attempts):
        user, pw = rng.choice(MIRAI_CREDS)
        c = Tcp(sim, bot, target, eph_port(rng, bot), port, atk.tag, rng,
                da=wan_rtt(rng) if not bot.local else lan_delay(rng, bot), db=lan_delay(rng, target))
        t = c.connect(t)
        t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_DO, 24), (P.TELNET_DO, 31)))
        t = c.send(t + c.da, True, P.telnet_opts((P.TELNET_WONT, 24), (P.TELNET_WONT, 31)))
        t = c.send(t + c.db, False, b"\r\n(none) login: ")
        t = c.request(t + c.da, user + b"\r\n", b"Password: ")
        t = c.request(t + c.da, pw + b"\r\n", b"\r\nLogin incorrect\r\n(none) login: ",
                      server_time=rng.randint(500 * MS, 2 * SECOND))
        t = c.close(t + rng.randint(1 * MS, 50 * MS), from_a=True)
        t += rng.randint(50 * MS, 2 * SECOND)
        yield t


# ----------------------------------------------------------------------------- spoofing
def arp_poison(env: Env, attacker: Host, victim: Host, rng: random.Random, *, seconds: float, interval: float,
               both: bool, tool: str, relay_traffic: bool = True) -> Process:
    """arpspoof/bettercap: unsolicited ARP replies claiming the gateway's IP (and the victim's with -r),
    the victim's Internet traffic relayed through the attacker, then the cleanup re-ARPs."""
    atk = Attack(env, "spoofing", f"arp-poison-{tool}", attacker, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    t = sim.now
    end = t + int(seconds * SECOND)
    op = 1 if tool == "ettercap-req" else 2

    def poison(at: int, real: bool = False) -> None:
        a_mac = gw.mac if real else attacker.mac
        sim.arp(at, victim.mac, attacker.mac, op, a_mac, gw.ip, victim.mac if op == 2 else bytes(6), victim.ip, atk.tag)
        if both:
            v_mac = victim.mac if real else attacker.mac
            sim.arp(at + 50, gw.mac, attacker.mac, op, v_mac, victim.ip, gw.mac if op == 2 else bytes(6), gw.ip,
                    atk.tag)

    for who in (victim, gw):  # arpspoof first resolves the real MACs of its targets
        t = arp_resolve(env, t, attacker, who, rng, tag=atk.tag) + rng.randint(1 * MS, 10 * MS)
    if relay_traffic:
        sim.spawn(_relayed_session(env, attacker, victim, atk, rng, end), t + rng.randint(1 * SECOND, 5 * SECOND))
    while t < end:
        poison(t)
        t += jitter(rng, interval, 0.02)
        yield t
    for _ in range(3):  # arpspoof's cleanup: restore the real mapping
        poison(t, real=True)
        t += SECOND
        yield t


def _relayed_session(env: Env, attacker: Host, victim: Host, atk: Attack, rng: random.Random, end: int) -> Process:
    """The victim's traffic while poisoned: every packet twice (victim -> attacker MAC -> gateway)."""
    sim, home = env.sim, env.home
    t = sim.now
    while t < end - 2 * SECOND:
        name = rng.choice(("api.weather.example.com", "www.example.org", "status.example.net"))
        server = home.cloud(name)
        c = Tcp(sim, victim, server, eph_port(rng, victim), rng.choice((80, 443)), atk.tag, rng,
                da=lan_delay(rng, victim), db=wan_rtt(rng), relay=attacker)
        t = c.connect(t)
        if c.dport == 80:
            t = c.request(t, b"GET /v1/current?city=home HTTP/1.1\r\nHost: " + name.encode() + b"\r\n\r\n",
                          b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
                          b'{"temp":21.5,"sky":"clear"}')
        else:
            t = tls_handshake(env, c, t, rng, name)
            t = c.request(t, env.tls_records(rng.randint(200, 600), rng), env.tls_records(rng.randint(500, 8000), rng))
        t = c.close(t + rng.randint(10 * MS, 300 * MS))
        t += jitter(rng, rng.choice((2, 5, 10)), 0.5)
        yield t


def dns_spoof(env: Env, attacker: Host, victim: Host, rng: random.Random, *, count: int, tool: str) -> Process:
    """dnsspoof/bettercap dns.spoof: a forged answer (attacker's IP) beats the router's real one;
    the victim then talks HTTP to the attacker."""
    atk = Attack(env, "spoofing", f"dns-spoof-{tool}", attacker, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    t = sim.now
    ttl = 60 if tool == "dnsspoof" else 1024
    names = ("www.bank.example.com", "login.example.com", "update.vendor.example.net", "connectivitycheck.gstatic.com",
             "api.smartthings.com", "portal.example.org")
    for _ in range(count):
        name = rng.choice(names)
        q = P.dns_question(name, P.DNS_A)
        qid = rng.getrandbits(16)
        sport = eph_port(rng, victim)
        sim.udp(t, victim, gw, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), home.dns_tag)
        ft = t + rng.randint(200, 1500)
        forged = P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q], [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, attacker.ip, ttl)])
        sim.emit(ft, P.udp4_frame(victim.mac, attacker.mac, gw.ip, victim.ip, 64, rng.getrandbits(16), True, 53, sport,
                                  forged), atk.tag)
        real = P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q],
                             [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, home.resolve(name), 300)])
        sim.udp(ft + rng.randint(5 * MS, 40 * MS), gw, victim, 53, sport, real, atk.tag)
        c = lan_conn(env, victim, attacker, 80, atk.tag, rng)
        t = c.connect(ft + rng.randint(2 * MS, 20 * MS))
        t = c.request(t, b"GET / HTTP/1.1\r\nHost: " + name.encode() + b"\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
                      b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 120\r\n\r\n"
                      + b"<html><body><form action=/login method=post><input name=user><input name=pass type=password>"
                      + b"</form></body></html>"[:120 - 96])
        t = c.close(t + rng.randint(50 * MS, 500 * MS))
        t += jitter(rng, rng.choice((5, 15, 40)), 0.5)
        yield t


def rogue_ra(env: Env, attacker: Host, rng: random.Random, *, count: int, interval: float) -> Process:
    """fake_router6-style rogue IPv6 router advertisements to all nodes (ff02::1) for a foreign prefix."""
    atk = Attack(env, "spoofing", "rogue-ra", attacker, rng)
    prefix = bytes.fromhex("20010db8") + rng.randbytes(4)
    flags = rng.choice((0x08, 0x08, 0x00, 0x40))
    lifetime = rng.choice((1800, 9000, 65535))
    t = env.sim.now
    for _ in range(count):
        router_advertisement(env, t, attacker, prefix, atk.tag, flags=flags, lifetime=lifetime,
                             hop_limit=rng.choice((64, 255)))
        t += jitter(rng, interval, 0.1)
        yield t


# ----------------------------------------------------------------------------- exfiltration
def _b64u(data: bytes) -> str:
    return base64.b64encode(data, altchars=b"-+").decode().rstrip("=")


def _labels(s: str, size: int = 63) -> str:
    return ".".join(s[i:i + size] for i in range(0, len(s), size))


def tunnel_query(env: Env, rng: random.Random, tool: str, domain: str, uid: int, qtype: int | None,
                 seqno: int) -> tuple[str, int]:
    """The next query name and type of an iodine / dnscat2 tunnel (shared by :func:`dns_tunnel` and
    the IPv6 transport in :mod:`.v6`)."""
    if tool == "iodine" and rng.random() < 0.3:  # lazy-mode ping: short name, keeps a query pending
        return f"r{uid:x}{b32(rng.randbytes(4))}.{domain}", qtype
    if tool == "iodine":
        raw = env.noise(rng.randint(80, 150), rng)
        enc = b32(raw) if rng.random() < 0.5 else _b64u(raw)
        return _labels(f"{uid:x}{enc}")[: 250 - len(domain)].rstrip(".") + "." + domain, qtype
    raw = struct.pack("!HBH", rng.getrandbits(16), 1, seqno) + env.noise(rng.randint(8, 100), rng)
    return _labels(raw.hex()) + "." + domain, rng.choice((P.DNS_TXT, P.DNS_CNAME, P.DNS_MX))


def tunnel_answer(env: Env, rng: random.Random, tool: str, qt: int, domain: str) -> bytes:
    """The answer record data of an iodine / dnscat2 tunnel to a query of type ``qt``."""
    down = env.noise(rng.randint(16, 200), rng)
    if qt == P.DNS_TXT:
        return P.dns_txt((down.hex() if tool == "dnscat2" else _b64u(down)).encode()[:250])
    if qt in (P.DNS_CNAME, P.DNS_MX):
        target = P.dns_name(_labels(down.hex()[:120]) + "." + domain)
        return (struct.pack("!H", 10) + target) if qt == P.DNS_MX else target
    if qt == P.DNS_SRV:
        return struct.pack("!HHH", 0, 0, 0) + P.dns_name(_labels(b32(down)[:120]) + "." + domain)
    return down


def dns_tunnel(env: Env, client: Host, rng: random.Random, *, tool: str, seconds: float, qps: float,
               direct: bool = False) -> Process:
    """iodine / dnscat2 tunnels: data encoded into long query names, answers carrying data back."""
    atk = Attack(env, "exfiltration", f"dns-tunnel-{tool}", client, rng)
    sim, home = env.sim, env.home
    domain = rng.choice(("t1.example.net", "tun.example.org", "d.example.com", "x.badcdn.example"))
    server = home.unseen_peer(rng) if direct else home.gateway
    t = sim.now
    end = t + int(seconds * SECOND)
    sport = eph_port(rng, client)
    qtype = None
    if tool == "iodine":
        qtype = rng.choice((P.DNS_NULL, P.DNS_NULL, P.DNS_TXT, P.DNS_CNAME, P.DNS_MX, P.DNS_SRV, 65399))
    uid = rng.randrange(16)
    seqno = 0
    while t < end:
        name, qt = tunnel_query(env, rng, tool, domain, uid, qtype, seqno)
        seqno = (seqno + 1) & 0xFFFF
        q = P.dns_question(name, qt)
        qid = rng.getrandbits(16)
        if rng.random() < 0.3:
            sport = eph_port(rng, client)
        sim.udp(t, client, server, sport, 53, P.dns_message(qid, 0x0100, [q], additional=[P.edns_opt(4096)]), atk.tag)
        rdata = tunnel_answer(env, rng, tool, qt, domain)
        rt = t + (wan_rtt(rng) if not direct else wan_rtt(rng) + rng.randint(0, 20 * MS))
        sim.udp(rt, server, client, 53, sport,
                P.dns_message(qid, 0x8180, [q], [P.dns_rr(P.PTR_TO_QNAME, qt, rdata, 0)],
                              additional=[P.edns_opt(4096)]),
                atk.tag)
        t += int(SECOND / qps * rng.uniform(0.3, 1.7))
        yield t


def icmp_tunnel(env: Env, client: Host, rng: random.Random, *, seconds: float, pps: float, tool: str) -> Process:
    """Data in ICMP echo payloads to an Internet relay nobody contacted before.

    ``ptunnel``: ptunnel-ng packets (magic 0xD5200880 header), variable sizes, replies carry data;
    ``icmptunnel``: raw IP packets as payload, both ways; ``hping3``: ``hping3 -1 -E FILE -d N``
    (fixed-size chunks, no DF, random IP ID, sequence stepping by 256, the relay echoes them).
    """
    atk = Attack(env, "exfiltration", f"icmp-tunnel-{tool}", client, rng)
    sim = env.sim
    proxy = env.home.unseen_peer(rng)
    ident = rng.getrandbits(16)
    t = sim.now
    end = t + int(seconds * SECOND)
    seq = 0
    size = rng.choice((500, 1000, 1400))
    while t < end:
        if tool == "hping3":
            rest = struct.pack("!HH", ident, ((seq & 0xFF) << 8) | (seq >> 8 & 0xFF))
            data = env.noise(size, rng)
            sim.emit(t, P.icmp4_frame(proxy.mac, client.mac, client.ip, proxy.ip, 64, rng.getrandbits(16), False,
                                      8, 0, rest, data), atk.tag)
            sim.icmp(t + wan_rtt(rng), proxy, client, 0, 0, rest, data, atk.tag, df=False)
        else:
            up = rng.randint(300, 1024) if rng.random() < 0.7 else rng.randint(28, 100)
            if tool == "ptunnel":
                head = struct.pack("!IIHHIHH", 0xD5200880, rng.getrandbits(32), 22, 0x2000, 0, seq, 0)
                data = head + env.noise(up, rng)
            else:
                data = env.noise(up, rng)
            sim.icmp(t, client, proxy, 8, 0, P.icmp_echo(ident, seq), data, atk.tag)
            reply = (data[:20] if tool == "ptunnel" else b"") + env.noise(rng.randint(28, 200), rng)
            sim.icmp(t + wan_rtt(rng), proxy, client, 0, 0, P.icmp_echo(ident, seq), reply, atk.tag)
        seq = (seq + 1) & 0xFFFF
        t += int(SECOND / pps * rng.uniform(0.5, 1.5))
        yield t


def bulk_upload(env: Env, client: Host, rng: random.Random, *, megabytes: float, port: int,
                name: str | None = None) -> Process:
    """Data pushed to an Internet host nobody talked to before: an HTTP POST (``curl --data-binary
    @loot``) on 80/8080, TLS elsewhere (https, rclone, ``ncat --ssl`` on 4444). With ``name`` the
    tool resolves it first (a file-sharing service, a bucket, the attacker's domain: a lookup right
    before the upload, as benign uploaders do); without, a bare address nobody resolved."""
    atk = Attack(env, "exfiltration", f"bulk-upload-{port}", client, rng)
    sim = env.sim
    t = sim.now
    if name is not None:
        t, ip = env.home.lookup(t, client, name, rng)
        server = env.home.peer(ip)
    else:
        server = env.home.unseen_peer(rng)
    c = cloud_conn(env, client, server, port, atk.tag, rng, loss=0.002)
    t = c.connect(t)
    total = int(megabytes * 1024 * 1024)
    http = port in (80, 8080)
    if http:
        head = (f"POST /{rng.choice(('upload', 'u', 'api/v1/files', 'data'))} HTTP/1.1\r\nHost: {name or P.ip_str(server.ip)}"
                f":{port}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {total}\r\n\r\n").encode()
        t = c.send(t, True, head, ack=False)
    else:
        t = tls_handshake(env, c, t, rng, name or P.ip_str(server.ip))
    chunk = 256 * 1024
    sent = 0
    rate = rng.uniform(1.5e6, 6e6)
    while sent < total:
        n = min(chunk, total - sent)
        t = c.send(t, True, env.noise(n, rng) if http else env.tls_records(n, rng), rate=rate)
        sent += n
        yield t
    if http:
        t = c.send(t + c.db, False, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    t = c.close(t + rng.randint(10 * MS, 200 * MS))
    yield t
