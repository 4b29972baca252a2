"""More attack tools for the ``varied`` scenario: the breadth users meet (see docs/sim_vs_real.md).

Like :mod:`.attacks`, every process labels its own packets *and the answers they provoke* with
its class.

``recon``
    nmap ``-sS/-sT/-sA/-sF/-sX/-sN`` at timing templates -T0 (5 min between probes) to -T5 /
    ``--min-rate`` (tens of thousands of probes per second), against one or several hosts;
    masscan/zmap Internet sweeps at 10k-100k packets/s over many hosts and ports; hping3 ``--scan``.
``dos``
    UDP reflection/amplification seen at the victim: DNS (EDNS answers of 1-4 KB, fragmented
    like real ANY/TXT answers), NTP monlist (mode 7, 440-byte items, up to 100 datagrams per
    request), SNMP GetBulk responses, SSDP, CoAP ``/.well-known/core``, Memcached ``stats``,
    chargen — from many reflectors to a victim that sent no requests; HTTP GET floods over many
    connections (one attacker or a botnet).
``bruteforce``
    encrypted SSH password guessing with the shapes of hydra (libssh, 4-16 parallel tasks),
    medusa (libssh2, one connection at a time), ncrack (OpenSSH-derived, timing templates down
    to a connection every 10+ s), patator (paramiko) and Metasploit (net-ssh): key exchange, then
    only encrypted USERAUTH requests and failures, server failure delays, MaxAuthTries
    disconnects.
"""
from __future__ import annotations

import random
import struct

from . import frames as P
from .attacks import NMAP_TOP_PORTS, USERS, WORDLIST, Attack, _filtered, open_ports
from .core import MS, SECOND, Host, Process, Tcp, syn_options
from .devices import Env, arp_resolve, eph_port, jitter, lan_conn, lan_delay, ssh_kex, wan_rtt

# ----------------------------------------------------------------------------- recon
NMAP_GAP_US = {0: 300 * SECOND, 1: 15 * SECOND, 2: 400 * MS, 3: 2 * MS, 4: 300, 5: 60}
_SCAN_FLAGS = {"sS": P.SYN, "sA": P.ACK, "sF": P.FIN, "sX": P.FIN | P.PSH | P.URG, "sN": 0}


def nmap_scan(env: Env, attacker: Host, targets: list[Host], rng: random.Random, *, kind: str = "sS",
              timing: int = 4, ports: int = 1000, min_rate: int = 0, seconds: float = 600, v6: bool = False) -> Process:
    """``nmap -<kind> -T<timing> [--min-rate N] --top-ports N TARGETS`` from a LAN host.

    Raw probes (all kinds but -sT): window 1024, no DF, random IP ID, TTL 37-59, one source port per
    scan, MSS-only option on SYNs, no options otherwise. -sT uses the kernel's connect(): full
    OS options, handshake completed, then RST. Answers: SYN -> SYN/ACK (open) or RST/ACK;
    ACK -> RST (unfiltered); FIN/Xmas/NULL -> RST/ACK from closed ports, silence from open ones
    (Windows stacks answer RST to everything). ``seconds`` bounds slow templates. ``v6``: ``nmap -6``
    over the hosts' global IPv6 addresses (hop limit instead of TTL, no IP ID).
    """
    atk = Attack(env, "recon", f"nmap-{kind}-T{timing}" + ("-v6" if v6 else ""), attacker, rng)
    sim = env.sim
    if v6:
        for h in [attacker] + targets:
            env.home.give_gua6(h)

    def raw(t: int, src: Host, dst: Host, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
            options: bytes = b"", ttl: int | None = None) -> None:
        """A raw probe (src = attacker) or a kernel's answer, over IPv4 or IPv6."""
        if v6:
            sim.emit(t, P.tcp6_frame(dst.mac, src.mac, src.gua6, dst.gua6, ttl or src.ttl, 0, sport, dport, seq, ack,
                                     flags, window, options), atk.tag)
        elif src is attacker:
            atk.raw_syn(t, dst, sport, dport, seq, ttl=ttl or src.ttl, window=window, options=options, ack=ack,
                        flags=flags)
        else:
            atk.reply(t, src, dst, sport, dport, seq, ack, flags, window, options)

    t = sim.now
    end = t + int(seconds * SECOND)
    gap = max(1, SECOND // min_rate) if min_rate else NMAP_GAP_US[timing]
    plist = list(NMAP_TOP_PORTS)
    plist += [p for p in rng.sample(range(1, 65536), max(0, ports - len(plist))) if p not in NMAP_TOP_PORTS]
    plist = plist[:ports]
    sport = rng.randint(32768, 65000)
    seq = rng.getrandbits(32)
    for target in targets:
        if target.local and not v6:
            t = arp_resolve(env, t, attacker, target, rng, tag=atk.tag) + rng.randint(1 * MS, 20 * MS)
    probes = [(h, p) for p in plist for h in targets]
    head, tail = probes[:10 * len(targets)], probes[10 * len(targets):]
    rng.shuffle(tail)
    flags = _SCAN_FLAGS.get(kind, P.SYN)
    syn_opts = P.tcp_options(mss=1460, order="plain")
    syn_opts6 = P.tcp_options(mss=1440, order="plain")
    for i, (target, port) in enumerate(head + tail):
        if t >= end:
            break
        listening = port in open_ports(target)
        silent = _filtered(target) and not listening
        rt = t + (lan_delay(rng, target) if target.local else wan_rtt(rng))
        if kind == "sT":
            c = Tcp(sim, attacker, target, eph_port(rng, attacker), port, atk.tag, rng, da=lan_delay(rng, attacker),
                    db=lan_delay(rng, target), v6=v6)
            if silent:
                c.seg(t, True, P.SYN, options=syn_options(attacker.stack, attacker.tsval(t),
                                                           mss=attacker.stack.mss - 20 if v6 else None),
                      window=attacker.stack.syn_window)
            elif listening:
                e = c.connect(t)
                c.reset(e + rng.randint(50, 400))
            else:
                c.connect(t, refuse=True)
        else:
            raw(t, attacker, target, sport, port, seq if flags == P.SYN else rng.getrandbits(32),
                rng.getrandbits(32) if flags & P.ACK else 0, flags, 1024,
                (syn_opts6 if v6 else syn_opts) if flags == P.SYN else b"", ttl=rng.randint(37, 59))
            if silent:
                pass
            elif flags == P.SYN:
                if listening:
                    raw(rt, target, attacker, port, sport, rng.getrandbits(32), seq + 1, P.SYN | P.ACK,
                        target.stack.syn_window, P.tcp_options(mss=target.stack.mss - (20 if v6 else 0), order="plain"))
                    raw(rt + rng.randint(20, 120), attacker, target, sport, port, seq + 1, 0, P.RST, 0,
                        ttl=attacker.ttl)
                else:
                    raw(rt, target, attacker, port, sport, 0, seq + 1, P.RST | P.ACK, 0)
            elif flags == P.ACK:
                raw(rt, target, attacker, port, sport, rng.getrandbits(32), 0, P.RST, 0)
            elif not listening or target.stack.name.startswith("windows"):
                raw(rt, target, attacker, port, sport, 0, rng.getrandbits(32), P.RST | P.ACK, 0)
        t += gap + rng.randint(0, gap // 2 + 1)
        if i % 50 == 49 or gap >= 100 * MS:
            yield t
    yield t


def internet_sweep(env: Env, scanner: Host, rng: random.Random, *, tool: str, rate: int, count: int,
                   ports: tuple[int, ...]) -> Process:
    """masscan / zmap from a LAN host towards the Internet, through the router's MAC.

    masscan: TTL 255, window 1024, no options, one source port, its own RST after answers.
    zmap: IP ID 54321, TTL 255, window 65535, no options, source port drawn from a range, one port
    per run. Rates of 10k-100k probes per second; a few per cent of targets answer.
    """
    atk = Attack(env, "recon", f"{tool}-sweep", scanner, rng)
    home = env.home
    t = env.sim.now
    sport = rng.randint(32768, 61000)
    for i in range(count):
        peer = home.peer(home.new_public_ip(rng))
        dport = rng.choice(ports)
        seq = rng.getrandbits(32)
        if tool == "zmap":
            sp = rng.randint(32768, 61000)
            atk.raw_syn(t, peer, sp, dport, seq, ttl=255, window=65535, options=b"", ident=54321)
        else:
            sp = sport
            atk.raw_syn(t, peer, sp, dport, seq, ttl=255, window=1024, options=b"")
        x = rng.random()
        if x < 0.03 or x > 0.985:
            rt = t + wan_rtt(rng)
            if x < 0.03:
                atk.reply(rt, peer, scanner, dport, sp, rng.getrandbits(32), seq + 1, P.SYN | P.ACK,
                          peer.stack.syn_window, syn_options(peer.stack, rng.getrandbits(32)))
            else:
                atk.reply(rt, peer, scanner, dport, sp, 0, seq + 1, P.RST | P.ACK, 0)
            atk.raw_syn(rt + rng.randint(20, 100), peer, sp, dport, seq + 1, ttl=255 if tool == "masscan" else 64,
                        window=1200 if tool == "masscan" else 0, options=b"", flags=P.RST)
        t += max(1, int(SECOND / rate * rng.uniform(0.7, 1.3)))
        if i % 200 == 199:
            yield t
    yield t


def hping3_scan(env: Env, attacker: Host, target: Host, rng: random.Random, *, first: int, last: int) -> Process:
    """``hping3 --scan FIRST-LAST -S TARGET``: window 512, TTL 64, no options, ports in order, the
    source port incremented per probe."""
    atk = Attack(env, "recon", "hping3-scan", attacker, rng)
    t = arp_resolve(env, env.sim.now, attacker, target, rng, tag=atk.tag) + rng.randint(1 * MS, 10 * MS)
    sport = rng.randint(1024, 60000)
    listening = set(open_ports(target))
    for i, port in enumerate(range(first, last + 1)):
        seq = rng.getrandbits(32)
        atk.raw_syn(t, target, sport, port, seq, ttl=64, window=512, options=b"")
        rt = t + lan_delay(rng, target)
        if port in listening:
            atk.reply(rt, target, attacker, port, sport, rng.getrandbits(32), seq + 1, P.SYN | P.ACK,
                      target.stack.syn_window, P.tcp_options(mss=target.stack.mss, order="plain"))
            atk.reply(rt + 50, attacker, target, sport, port, seq + 1, 0, P.RST, 0)
        elif not _filtered(target):
            atk.reply(rt, target, attacker, port, sport, 0, seq + 1, P.RST | P.ACK, 0)
        sport = sport + 1 if sport < 65535 else 1024
        t += rng.randint(50, 2 * MS)
        if i % 100 == 99:
            yield t
    yield t


# ----------------------------------------------------------------------------- dos: reflection
def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    if n < 0x100:
        return bytes((tag, 0x81, n)) + body
    return bytes((tag, 0x82)) + n.to_bytes(2, "big") + body


def _oid(parts: tuple[int, ...]) -> bytes:
    out = bytearray((40 * parts[0] + parts[1],))
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return _ber(0x06, bytes(out))


_TEXT = b"abcdefghijklmnopqrstuvwxyz0123456789 -_.:/ABCDEFGHIJKLMNOPQRSTUVWXYZ"


_TEXT_RNG = random.Random("iotwatch-sim/text")
_TEXT_POOL = bytes(_TEXT_RNG.choice(_TEXT) for _ in range(1 << 16))


def _text(rng: random.Random, n: int) -> bytes:
    """``n`` printable bytes (a slice of a fixed pool at a random offset: fast)."""
    if n >= len(_TEXT_POOL):
        return (_TEXT_POOL * (n // len(_TEXT_POOL) + 1))[:n]
    o = rng.randrange(len(_TEXT_POOL) - n)
    return _TEXT_POOL[o:o + n]


def reflection_payload(proto: str, rng: random.Random, size: int) -> tuple[int, bytes]:
    """(source port, UDP payload) of one amplified answer of ``proto`` of about ``size`` bytes."""
    if proto == "dns":
        name = rng.choice(("isc.example.org", "any.example.com", "big.example.net", "dnssec.example.org"))
        q = P.dns_question(name, rng.choice((P.DNS_ANY, P.DNS_TXT, P.DNS_ANY)))
        answers = [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, rng.randbytes(4), 3600)]
        left = size - 60
        while left > 40:
            k = min(255, left - 13)
            answers.append(P.dns_rr(P.PTR_TO_QNAME, P.DNS_TXT, P.dns_txt(_text(rng, k)), 3600))
            left -= k + 13
        return 53, P.dns_message(rng.getrandbits(16), 0x8180, [q], answers, additional=[P.edns_opt(4096)])
    if proto == "ntp":  # monlist (mode 7, request 42): up to 6 items of 72 bytes per datagram
        items = 6
        head = struct.pack("!BBBBHH", 0xD7, rng.randrange(128), 3, 42, items, 72)
        return 123, head + b"".join(struct.pack("!IIIIIIII", rng.getrandbits(32), rng.getrandbits(32),
                                                rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32),
                                                rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32))
                                    + bytes(40) for _ in range(items))
    if proto == "snmp":  # GetBulk answer: many varbinds of the interfaces table
        vbs = b""
        i = 1
        while len(vbs) < size - 60:
            val = _ber(0x04, _text(rng, rng.randint(8, 40)))
            vbs += _ber(0x30, _oid((1, 3, 6, 1, 2, 1, 2, 2, 1, 2, i)) + val)
            i += 1
        pdu = _ber(0xA2, _ber(0x02, struct.pack("!I", rng.getrandbits(31))) + _ber(0x02, b"\x00") + _ber(0x02, b"\x00")
                   + _ber(0x30, vbs))
        return 161, _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, b"public") + pdu)
    if proto == "ssdp":
        st = rng.choice(("upnp:rootdevice", "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                         "urn:schemas-upnp-org:service:WANIPConnection:1", "urn:dial-multiscreen-org:service:dial:1"))
        return 1900, (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nDATE: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                      f"EXT:\r\nLOCATION: http://192.168.{rng.randrange(256)}.1:{rng.choice((1900, 49152, 5000))}/"
                      f"rootDesc.xml\r\nSERVER: Linux/3.14 UPnP/1.0 IpBridge/1.26.0\r\nST: {st}\r\n"
                      f"USN: uuid:{rng.getrandbits(128):032x}::{st}\r\n\r\n").encode()
    if proto == "coap":  # ACK 2.05 Content, link-format /.well-known/core
        links = b",".join(b"</" + _text(rng, rng.randint(3, 12)).replace(b" ", b"") + b">;rt=\"" +
                          _text(rng, 6).replace(b" ", b"") + b"\";ct=40" for _ in range(max(1, size // 40)))
        return 5683, P.coap(2, 0x45, rng.getrandbits(16), rng.randbytes(4), [(12, b"\x28")], links[:max(40, size)])
    if proto == "memcached":  # UDP frame header + "stats" lines
        lines = b"".join(b"STAT " + _text(rng, rng.randint(4, 14)).replace(b" ", b"_") + b" "
                         + str(rng.getrandbits(32)).encode() + b"\r\n" for _ in range(max(1, size // 30)))
        # request id < 0x8000: a first byte 0x80/0x81 would read as the binary protocol's magic
        return 11211, struct.pack("!HHHH", rng.getrandbits(15), 0, 1, 0) + lines + b"END\r\n"
    # chargen
    line = bytes(range(33, 33 + 72)) + b"\r\n"
    return 19, (line * (size // 74 + 1))[:size]


_REFLECT_SIZE = {"dns": (1200, 4000), "ntp": (440, 440), "snmp": (600, 1400), "ssdp": (280, 360),
                 "coap": (200, 1000), "memcached": (900, 1400), "chargen": (200, 1400)}


def udp4_fragments(frame: bytes, ident: int, mtu: int = 1500) -> list[bytes]:
    """Split an Ethernet+IPv4 frame into fragments that fit ``mtu`` (what a reflector's kernel does)."""
    eth, ip = frame[:14], frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    hdr, data = ip[:ihl], ip[ihl:]
    step = (mtu - ihl) // 8 * 8
    out = []
    for off in range(0, len(data), step):
        chunk = data[off:off + step]
        more = off + step < len(data)
        h = bytearray(hdr)
        h[2:4] = (ihl + len(chunk)).to_bytes(2, "big")
        h[4:6] = (ident & 0xFFFF).to_bytes(2, "big")
        h[6:8] = (((0x2000 if more else 0) | (off // 8))).to_bytes(2, "big")
        h[10:12] = b"\x00\x00"
        h[10:12] = P.checksum(bytes(h)).to_bytes(2, "big")
        out.append(eth + bytes(h) + chunk)
    return out


def reflection_flood(env: Env, victim: Host, rng: random.Random, *, proto: str, rate: int, seconds: float,
                     reflectors: list[Host]) -> Process:
    """Amplified answers from many reflectors to ``victim``, which sent no request (the attacker
    spoofed the victim's address elsewhere). The victim's kernel answers a few with ICMP port
    unreachable (rate-limited)."""
    atk = Attack(env, "dos", f"reflection-{proto}", None, rng)  # the spoofing sender is not on this wire
    sim, home = env.sim, env.home
    refl = reflectors
    dport = rng.choice((rng.randint(1024, 65535), 80, 443, rng.randint(1024, 65535)))
    t = sim.now
    end = t + int(seconds * SECOND)
    lo, hi = _REFLECT_SIZE[proto]
    gw = home.gateway
    last_icmp = -SECOND
    n = 0
    # a reflector answers the same request with the same bytes: a pool of answers per episode
    # (DNS answers get fresh query IDs) keeps generation fast
    pool = [reflection_payload(proto, rng, rng.randint(lo, hi)) for _ in range(48)]
    while t < end:
        r = rng.choice(refl)
        sport, payload = rng.choice(pool)
        if proto == "dns":
            payload = rng.randbytes(2) + payload[2:]
        frame = P.udp4_frame(victim.mac, gw.mac, r.ip, victim.ip, r.ttl, r.next_id(), False, sport,
                             rng.randint(1024, 65535) if rng.random() < 0.2 else dport, payload)
        if len(frame) > 1514:
            for f in udp4_fragments(frame, r.next_id()):
                sim.emit(t, f, atk.tag)
                t += 2
        else:
            sim.emit(t, frame, atk.tag)
        if t - last_icmp >= SECOND and rng.random() < 0.2:
            sim.icmp(t + 100, victim, r, 3, 3, bytes(4), P.quoted_ip(frame, 28), atk.tag, df=False)
            last_icmp = t
        n += 1
        t += max(1, int(SECOND / rate * rng.uniform(0.3, 1.7)))
        if n % 200 == 0:
            yield t
    yield t


def http_flood(env: Env, sources: list[Host], victim: Host, rng: random.Random, *, rate: float, seconds: float,
               port: int = 80) -> Process:
    """HTTP GET flood (LOIC/HOIC/GoldenEye-like): many connections, each one or a few requests,
    randomised paths and headers, the server answering until it saturates."""
    atk = Attack(env, "dos", "http-flood", sources[0], rng)
    sim = env.sim
    ep = sim.episode
    if ep is not None:  # a botnet: every source is an attacker
        ep.attackers.extend(h for h in sources if h not in ep.attackers)
    t = sim.now
    end = t + int(seconds * SECOND)
    uas = (b"Mozilla/5.0 (Windows NT 10.0; Win64; x64)", b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101",
           b"Mozilla/5.0 (compatible; Googlebot/2.1)", b"python-requests/2.31.0")
    n = 0
    while t < end:
        src = rng.choice(sources)
        if src.local:
            c = lan_conn(env, src, victim, port, atk.tag, rng)
        else:
            c = Tcp(sim, src, victim, eph_port(rng, src), port, atk.tag, rng, da=wan_rtt(rng),
                    db=lan_delay(rng, victim))
        busy = n > rate * 2 and rng.random() < 0.4  # backlog full: some SYNs go unanswered / refused
        if busy and rng.random() < 0.5:
            c.seg(t, True, P.SYN, options=syn_options(src.stack, src.tsval(t)), window=src.stack.syn_window)
        else:
            e = c.connect(t, refuse=busy)
            if e is not None:
                for _ in range(rng.randint(1, 3)):
                    req = (b"GET /?" + str(rng.getrandbits(32)).encode() + b" HTTP/1.1\r\nHost: "
                           + P.ip_str(victim.ip).encode() + b"\r\nUser-Agent: " + rng.choice(uas)
                           + b"\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n")
                    e = c.request(e, req, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 612\r\n\r\n"
                                  + _text(rng, 612), server_time=rng.randint(1 * MS, 80 * MS))
                c.close(e + rng.randint(100, 5 * MS), from_a=rng.random() < 0.7)
        n += 1
        t += max(1, int(SECOND / rate * rng.uniform(0.2, 1.8)))
        if n % 50 == 0:
            yield t
    yield t


# ----------------------------------------------------------------------------- bruteforce: SSH
SSH_TOOLS = {
    # tool: (client banner, parallel connections, attempts per connection, gap between connections µs)
    "hydra": (b"SSH-2.0-libssh_0.10.5\r\n", (4, 16), (1, 3), (1 * MS, 50 * MS)),
    "medusa": (b"SSH-2.0-libssh2_1.10.0\r\n", (1, 2), (1, 1), (50 * MS, 400 * MS)),
    "ncrack": (b"SSH-2.0-OpenSSH_7.4\r\n", (1, 10), (3, 6), (10 * MS, 1 * SECOND)),
    "patator": (b"SSH-2.0-paramiko_3.4.0\r\n", (2, 10), (1, 1), (5 * MS, 200 * MS)),
    "metasploit": (b"SSH-2.0-Ruby/Net::SSH_7.2.0 x86_64-linux\r\n", (1, 1), (1, 1), (100 * MS, 1 * SECOND)),
}
SSH_SERVERS = (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",
               b"SSH-2.0-dropbear_2022.83\r\n", b"SSH-2.0-OpenSSH_8.4p1 Raspbian-5+deb11u3\r\n",
               b"SSH-2.0-OpenSSH_7.4\r\n")


def ssh_guess(env: Env, attacker: Host, target: Host, rng: random.Random, *, tool: str, attempts: int,
              slow: float = 0.0, port: int = 22, v6: bool = False) -> Process:
    """Password guessing against SSH: every connection does the version exchange and key exchange,
    then sends encrypted USERAUTH_REQUESTs and gets encrypted USERAUTH_FAILUREs after the server's
    failure delay; no plaintext reply tells a failure. ``slow``: seconds between connections
    (ncrack -T0/-T1, a patient bot)."""
    atk = Attack(env, "bruteforce", f"ssh-guess-{tool}" + ("-v6" if v6 else ""), attacker, rng)
    sim = env.sim
    if v6:
        for h in (attacker, target):
            if h.local:
                env.home.give_gua6(h)
            elif h.gua6 is None:
                env.home.peer6(h.ip, rng)
    banner, par, per, gap = SSH_TOOLS[tool]
    tasks = 1 if slow else rng.randint(*par)
    server_banner = rng.choice(SSH_SERVERS)
    dropbear = b"dropbear" in server_banner
    mac = rng.choice((16, 32))  # chacha20-poly1305 / aes-ctr + hmac-sha2-256
    delay = (200 * MS, 800 * MS) if dropbear else (1500 * MS, 3500 * MS)  # pam_faildelay ~2 s
    t0 = sim.now
    if target.local and attacker.local and not v6:
        t0 = arp_resolve(env, t0, attacker, target, rng, tag=atk.tag) + rng.randint(1 * MS, 10 * MS)
    lanes = [t0 + i * rng.randint(1 * MS, 30 * MS) for i in range(tasks)]
    i = 0
    while i < attempts:
        lane = min(range(tasks), key=lanes.__getitem__)
        t = lanes[lane]
        if attacker.local and target.local:
            c = lan_conn(env, attacker, target, port, atk.tag, rng, v6=v6)
        else:
            c = Tcp(sim, attacker, target, eph_port(rng, attacker), port, atk.tag, rng,
                    da=wan_rtt(rng) if not attacker.local else lan_delay(rng, attacker),
                    db=wan_rtt(rng) if not target.local else lan_delay(rng, target), v6=v6)
        t = c.connect(t)
        t = ssh_kex(env, c, t, rng, server_banner, banner)
        # ssh-userauth service accepted above; now the guesses
        k = rng.randint(*per)
        for j in range(k):
            size = 16 * rng.randint(5, 9) + mac  # user, "ssh-connection", "password", the guess
            t = c.send(t + rng.randint(200, 3 * MS), True, env.noise(size, rng), ack=False)
            t = c.send(t + c.db + rng.randint(*delay), False, env.noise(16 * rng.randint(2, 3) + mac, rng))
            i += 1
            if i >= attempts:
                break
        if k >= 6 and rng.random() < 0.7:  # MaxAuthTries reached: the server disconnects
            t = c.send(t + 200, False, env.noise(16 * 4 + mac, rng))
            t = c.close(t, from_a=False)
        else:
            t = c.close(t + rng.randint(100, 5 * MS), from_a=rng.random() < 0.8)
        lanes[lane] = t + (int(slow * SECOND * rng.uniform(0.5, 1.5)) if slow else rng.randint(*gap))
        yield min(lanes)
    yield max(lanes)


def telnet_guess(env: Env, attacker: Host, target: Host, rng: random.Random, *, tool: str, attempts: int,
                 slow: float = 0.0) -> Process:
    """medusa / ncrack telnet guessing: one connection per 1-5 attempts, plaintext prompts."""
    atk = Attack(env, "bruteforce", f"telnet-guess-{tool}", attacker, rng)
    user = rng.choice(USERS)
    words = list(WORDLIST)
    rng.shuffle(words)
    t = env.sim.now
    i = 0
    while i < attempts:
        c = lan_conn(env, attacker, target, 23, atk.tag, rng) if attacker.local else Tcp(
            env.sim, attacker, target, eph_port(rng, attacker), 23, atk.tag, rng, da=wan_rtt(rng),
            db=lan_delay(rng, target))
        t = c.connect(t)
        t = c.send(t + c.db, False, P.telnet_opts((P.TELNET_DO, 24), (P.TELNET_DO, 31)) + b"\r\nlogin: ")
        for _ in range(rng.randint(1, 5) if tool == "ncrack" else 1):
            t = c.request(t + c.da, user + b"\r\n", b"Password: ")
            t = c.request(t + c.da, words[i % len(words)] + b"\r\n", b"\r\nLogin incorrect\r\nlogin: ",
                          server_time=rng.randint(300 * MS, 3 * SECOND))
            i += 1
        t = c.close(t + rng.randint(1 * MS, 20 * MS), from_a=True)
        t += int(slow * SECOND * rng.uniform(0.5, 1.5)) if slow else rng.randint(5 * MS, 300 * MS)
        yield t
    yield t


def http_form_guess(env: Env, attacker: Host, target: Host, rng: random.Random, *, tool: str, attempts: int,
                    port: int = 80) -> Process:
    """hydra http-post-form / Burp-intruder-like: POST login forms, 200 "invalid" or 302 back to the form."""
    atk = Attack(env, "bruteforce", f"http-form-{tool}", attacker, rng)
    user = rng.choice(USERS)
    words = list(WORDLIST)
    rng.shuffle(words)
    t = env.sim.now
    i = 0
    keep = tool == "burp"
    while i < attempts:
        c = lan_conn(env, attacker, target, port, atk.tag, rng)
        t = c.connect(t)
        for _ in range(rng.randint(5, 20) if keep else 1):
            body = b"username=" + user + b"&password=" + words[i % len(words)] + b"&login=Login"
            req = (b"POST /login HTTP/1.1\r\nHost: " + P.ip_str(target.ip).encode()
                   + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\nUser-Agent: " + (b"Mozilla/5.0 (Hydra)" if tool == "hydra"
                                                                      else b"Mozilla/5.0") + b"\r\n\r\n" + body)
            resp = (b"HTTP/1.1 302 Found\r\nLocation: /login?error=1\r\nContent-Length: 0\r\n\r\n" if rng.random() < 0.5
                    else b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 40\r\n\r\n"
                         b"<html>Invalid username or password</html>")
            t = c.request(t + rng.randint(100, 2 * MS), req, resp, server_time=rng.randint(5 * MS, 120 * MS))
            i += 1
        t = c.close(t + rng.randint(100, 2 * MS), from_a=True)
        t += rng.randint(1 * MS, 100 * MS)
        yield t
    yield t


def mqtt_guess(env: Env, attacker: Host, broker: Host, rng: random.Random, *, tool: str, attempts: int,
               port: int = 1883) -> Process:
    """MQTT password guessing: ``mosquitto`` (a mosquitto_pub loop: one connection per guess,
    client id ``mosqpub|PID-host``, one at a time), ``ncrack`` (its mqtt module, parallel
    connections), ``mqtt-pwn`` (paho client ids, a few at once). The broker answers CONNACK 4/5 and
    closes."""
    atk = Attack(env, "bruteforce", f"mqtt-guess-{tool}", attacker, rng)
    user = rng.choice(USERS)
    words = list(WORDLIST)
    rng.shuffle(words)
    par = {"mosquitto": 1, "ncrack": rng.randint(3, 10), "mqtt-pwn": rng.randint(2, 4)}[tool]
    lanes = [env.sim.now + k * rng.randint(1 * MS, 20 * MS) for k in range(par)]
    pid = rng.randint(1000, 60000)
    for i in range(attempts):
        lane = min(range(par), key=lanes.__getitem__)
        t = lanes[lane]
        c = lan_conn(env, attacker, broker, port, atk.tag, rng) if attacker.local else Tcp(
            env.sim, attacker, broker, eph_port(rng, attacker), port, atk.tag, rng, da=wan_rtt(rng),
            db=lan_delay(rng, broker))
        t = c.connect(t)
        cid = {"mosquitto": b"mosqpub|%d-kali" % (pid + i), "ncrack": b"",
               "mqtt-pwn": b"paho%d" % rng.getrandbits(40)}[tool]
        t = c.request(t + rng.randint(100, 2 * MS), P.mqtt_connect(cid, 60, user=user, password=words[i % len(words)]),
                      P.mqtt_connack(rng.choice((4, 5))), server_time=rng.randint(1 * MS, 10 * MS))
        t = c.close(t + rng.randint(100, 2 * MS), from_a=False)
        lanes[lane] = t + (rng.randint(20 * MS, 200 * MS) if tool == "mosquitto" else rng.randint(1 * MS, 30 * MS))
        if i % 5 == 4:
            yield min(lanes)
    yield max(lanes)


# ----------------------------------------------------------------------------- spoofing
DHCP_NAK = 6


def _dhcp_server_opts(server_ip: bytes, router: bytes, dns: bytes, bcast: bytes, lease: int) -> list:
    return [(54, server_ip), (51, struct.pack("!I", lease)), (1, b"\xff\xff\xff\x00"), (3, router), (6, dns),
            (28, bcast)]


def dhcp_starvation(env: Env, attacker: Host, rng: random.Random, *, tool: str, count: int, rate: float) -> Process:
    """DHCP starvation: DISCOVERs from random MACs until the router's pool is empty.

    ``yersinia`` (attack 1): DISCOVERs only, random Ethernet source = chaddr, as fast as it can;
    ``dhcpig``: the full DISCOVER/OFFER/REQUEST/ACK per fake client, slower, so every address is
    leased. The router OFFERs (and ACKs) from its pool, then stays silent (or NAKs) once it is empty.
    """
    atk = Attack(env, "dos", f"dhcp-starvation-{tool}", attacker, rng)  # dos: the pool is exhausted
    sim, home = env.sim, env.home
    gw = home.gateway
    zero = bytes(4)
    free = [x for x in range(2, 255) if home.lan_ip(x) not in {h.ip for h in home.hosts}]
    rng.shuffle(free)
    free = free[:rng.randint(20, min(200, len(free)))] if free else []
    opts = _dhcp_server_opts(gw.ip, gw.ip, gw.ip, home.bcast.ip, 86400)
    t = sim.now
    for i in range(count):
        m = bytes([(rng.randrange(256) & 0xFC) | (0x02 if rng.random() < 0.5 else 0)]) + rng.randbytes(5)
        smac = m if tool != "scapy-fixed" else attacker.mac
        xid = rng.getrandbits(32)
        disc = P.dhcp(1, xid, m, P.DHCP_DISCOVER, options=[(61, b"\x01" + m), (55, bytes((1, 3, 6, 15)))])
        sim.emit(t, P.udp4_frame(P.BROADCAST, smac, zero, b"\xff\xff\xff\xff", 64, rng.getrandbits(16), False, 68, 67,
                                 disc), atk.tag)
        if free:
            ip = home.lan_ip(free.pop())
            rt = t + rng.randint(1 * MS, 15 * MS)
            sim.emit(rt, P.udp4_frame(m, gw.mac, gw.ip, ip, 64, gw.next_id(), False, 67, 68,
                                      P.dhcp(2, xid, m, P.DHCP_OFFER, yiaddr=ip, siaddr=gw.ip, options=opts)),
                     atk.tag)
            if tool == "dhcpig":
                rt += rng.randint(1 * MS, 10 * MS)
                req = P.dhcp(1, xid, m, P.DHCP_REQUEST, options=[(61, b"\x01" + m), (50, ip), (54, gw.ip)])
                sim.emit(rt, P.udp4_frame(P.BROADCAST, smac, zero, b"\xff\xff\xff\xff", 64, rng.getrandbits(16), False,
                                          68, 67, req), atk.tag)
                rt += rng.randint(1 * MS, 10 * MS)
                sim.emit(rt, P.udp4_frame(m, gw.mac, gw.ip, ip, 64, gw.next_id(), False, 67, 68,
                                          P.dhcp(2, xid, m, P.DHCP_ACK, yiaddr=ip, siaddr=gw.ip, options=opts)),
                         atk.tag)
        t += max(50, int(SECOND / rate * rng.uniform(0.5, 1.5)))
        if i % 50 == 49:
            yield t
    yield t


def rogue_dhcp(env: Env, attacker: Host, victim: Host, rng: random.Random, *, tool: str, seconds: float) -> Process:
    """DHCP spoofing (yersinia attack 2 / ettercap / bettercap-like rogue server): the victim
    rejoins, the attacker's OFFER/ACK beat the router's and name the attacker as router and DNS
    server; the victim then resolves through the attacker (forged answers) and its Internet
    traffic passes the attacker (seen twice). The victim's DISCOVER and the router's late OFFER
    are normal; everything the rogue server provokes is spoofing."""
    from .attacks import _relayed_session
    atk = Attack(env, "spoofing", f"dhcp-spoof-{tool}", attacker, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    dtag = env.normal("dhcp")
    t = sim.now
    end = t + int(seconds * SECOND)
    xid = rng.getrandbits(32)
    zero = bytes(4)
    bc = b"\xff\xff\xff\xff"
    copts = [(61, b"\x01" + victim.mac), (12, victim.name.encode()), (55, bytes((1, 3, 6, 15, 28, 42)))]
    sim.emit(t, P.udp4_frame(P.BROADCAST, victim.mac, zero, bc, 64, rng.getrandbits(16), False, 68, 67,
                             P.dhcp(1, xid, victim.mac, P.DHCP_DISCOVER, options=copts)), dtag)
    rogue = _dhcp_server_opts(attacker.ip, attacker.ip, attacker.ip, home.bcast.ip, rng.choice((600, 3600, 43200)))
    real = _dhcp_server_opts(gw.ip, gw.ip, gw.ip, home.bcast.ip, 86400)
    t += rng.randint(300, 3 * MS)
    sim.emit(t, P.udp4_frame(victim.mac, attacker.mac, attacker.ip, victim.ip, 64, attacker.next_id(), False, 67, 68,
                             P.dhcp(2, xid, victim.mac, P.DHCP_OFFER, yiaddr=victim.ip, siaddr=attacker.ip,
                                    options=rogue)), atk.tag)
    sim.emit(t + rng.randint(5 * MS, 40 * MS),
             P.udp4_frame(victim.mac, gw.mac, gw.ip, victim.ip, 64, gw.next_id(), False, 67, 68,
                          P.dhcp(2, xid, victim.mac, P.DHCP_OFFER, yiaddr=victim.ip, siaddr=gw.ip, options=real)), dtag)
    t += rng.randint(2 * MS, 20 * MS)
    sim.emit(t, P.udp4_frame(P.BROADCAST, victim.mac, zero, bc, 64, rng.getrandbits(16), False, 68, 67,
                             P.dhcp(1, xid, victim.mac, P.DHCP_REQUEST, options=copts + [(50, victim.ip),
                                                                                     (54, attacker.ip)])), atk.tag)
    t += rng.randint(300, 3 * MS)
    sim.emit(t, P.udp4_frame(victim.mac, attacker.mac, attacker.ip, victim.ip, 64, attacker.next_id(), False, 67, 68,
                             P.dhcp(2, xid, victim.mac, P.DHCP_ACK, yiaddr=victim.ip, siaddr=attacker.ip,
                                    options=rogue)), atk.tag)
    sim.spawn(_relayed_session(env, attacker, victim, atk, rng, end), t + rng.randint(1 * SECOND, 4 * SECOND))
    names = ("www.bank.example.com", "login.example.com", "api.example-app.com", "mail.example.net")
    while t < end:  # the victim now asks the attacker for names
        t += jitter(rng, rng.choice((3, 8, 20)), 0.5)
        name = rng.choice(names)
        q = P.dns_question(name, P.DNS_A)
        qid = rng.getrandbits(16)
        sport = eph_port(rng, victim)
        sim.udp(t, victim, attacker, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), atk.tag)
        sim.udp(t + lan_delay(rng, attacker), attacker, victim, 53, sport,
                P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q], [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, attacker.ip, 60)]),
                atk.tag)
        yield t
    yield t


def arp_subnet_poison(env: Env, attacker: Host, rng: random.Random, *, tool: str, seconds: float,
                      interval: float) -> Process:
    """Whole-subnet ARP poisoning: bettercap ``arp.spoof`` without targets (a unicast reply to every
    live host claiming the gateway, every ``interval``) or gratuitous broadcasts
    (``arping -U``/ettercap-like: who-has gateway from the attacker's MAC to everyone)."""
    atk = Attack(env, "spoofing", f"arp-subnet-{tool}", attacker, rng)
    sim, home = env.sim, env.home
    gw = home.gateway
    t = sim.now
    end = t + int(seconds * SECOND)
    while t < end:
        if tool == "gratuitous":
            op = rng.choice((1, 2))
            sim.arp(t, P.BROADCAST, attacker.mac, op, attacker.mac, gw.ip, bytes(6) if op == 1 else P.BROADCAST,
                    gw.ip, atk.tag)
        else:
            for h in home.live_hosts(t):
                if h is attacker or h is gw:
                    continue
                sim.arp(t, h.mac, attacker.mac, 2, attacker.mac, gw.ip, h.mac, h.ip, atk.tag)
                t += rng.randint(50, 800)
        t += jitter(rng, interval, 0.1)
        yield t
    yield t


# ----------------------------------------------------------------------------- exfiltration
def _tunnel_resolver(env: Env, rng: random.Random) -> Host:
    """Where a DNS tunnel sends its queries: the router (70 %) or a hard-coded public resolver, so a
    tunnel is visible even in a home whose own lookups are not (resolver outside the capture)."""
    if rng.random() < 0.7:
        return env.home.gateway
    return env.home.peer(P.ip4(rng.choice(("8.8.8.8", "1.1.1.1", "9.9.9.9", "208.67.222.222"))))


def dns2tcp(env: Env, client: Host, rng: random.Random, *, seconds: float, qps: float) -> Process:
    """dns2tcp: TXT queries whose first labels carry base64-like data (``<data>.<domain>``), TXT
    answers with base64 data back, through the router's resolver."""
    import base64
    atk = Attack(env, "exfiltration", "dns-tunnel-dns2tcp", client, rng)
    sim, home = env.sim, env.home
    domain = rng.choice(("dns2tcp.example.net", "t.example-cdn.org", "x.example.com"))
    gw = _tunnel_resolver(env, rng)
    t = sim.now
    end = t + int(seconds * SECOND)
    while t < end:
        data = base64.b64encode(env.noise(rng.randint(30, 140), rng), altchars=b"-_").decode().rstrip("=")
        name = ".".join(data[i:i + 63] for i in range(0, len(data), 63)) + "." + domain
        q = P.dns_question(name[:250], P.DNS_TXT)
        qid = rng.getrandbits(16)
        sport = eph_port(rng, client)
        sim.udp(t, client, gw, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), atk.tag)
        down = base64.b64encode(env.noise(rng.randint(16, 180), rng)).rstrip(b"=")
        sim.udp(t + wan_rtt(rng), gw, client, 53, sport,
                P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q], [P.dns_rr(P.PTR_TO_QNAME, P.DNS_TXT, P.dns_txt(down), 0)]),
                atk.tag)
        t += max(1, int(SECOND / qps * rng.uniform(0.3, 1.7)))
        yield t
    yield t


def dns_beacon(env: Env, client: Host, rng: random.Random, *, seconds: float, period: float) -> Process:
    """Slow DNS exfiltration (DNSExfiltrator / C2 DNS beacon): an A query every ``period`` seconds
    whose first label is 30-60 hex characters of data, answered with an innocent-looking A record."""
    atk = Attack(env, "exfiltration", "dns-beacon", client, rng)
    sim, home = env.sim, env.home
    domain = rng.choice(("cdn-stats.example.net", "updates.example-soft.com", "metrics.example.org"))
    t = sim.now
    end = t + int(seconds * SECOND)
    seq = rng.randrange(1000)
    resolver = _tunnel_resolver(env, rng)
    while t < end:
        label = f"{seq:x}" + env.noise(rng.randint(15, 30), rng).hex()
        q = P.dns_question(label[:63] + "." + domain, rng.choice((P.DNS_A, P.DNS_A, P.DNS_AAAA)))
        qid = rng.getrandbits(16)
        sport = eph_port(rng, client)
        sim.udp(t, client, resolver, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q]), atk.tag)
        sim.udp(t + wan_rtt(rng), resolver, client, 53, sport,
                P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q], [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, rng.randbytes(4), 5)])
                if q[-4:-2] == b"\x00\x01" else P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q]), atk.tag)
        seq += 1
        t += jitter(rng, period, 0.3)
        yield t
    yield t


def https_post_exfil(env: Env, client: Host, rng: random.Random, *, seconds: float, period: float,
                     chunk_kb: tuple[int, int], name: str | None = None) -> Process:
    """Staged exfiltration over HTTPS: every ``period`` seconds a TLS connection to the same
    server POSTs a chunk; tiny answers. The server is never-resolved (no SNI or an IP literal) or,
    with ``name``, looked up first (cached for the answer's TTL) and named in the SNI."""
    atk = Attack(env, "exfiltration", "https-post-exfil", client, rng)
    sim = env.sim
    server = env.home.unseen_peer(rng) if name is None else None
    port = rng.choice((443, 443, 8443, 4443))
    t = sim.now
    end = t + int(seconds * SECOND)
    from .devices import cloud_conn, tls_handshake
    while t < end:
        peer = server
        if peer is None:
            t, ip = env.home.lookup(t, client, name, rng)
            peer = env.home.peer(ip)
        c = cloud_conn(env, client, peer, port, atk.tag, rng)
        t = c.connect(t)
        t = tls_handshake(env, c, t, rng, name if name is not None else rng.choice((P.ip_str(peer.ip), "")))
        t = c.send(t, True, env.tls_records(rng.randint(*chunk_kb) * 1024, rng), rate=rng.uniform(0.3e6, 5e6))
        t = c.send(t + c.db, False, env.tls_records(rng.randint(40, 200), rng))
        t = c.close(t + rng.randint(5 * MS, 100 * MS))
        t += jitter(rng, period, 0.4)
        yield t
    yield t


__all__ = ["mqtt_guess", "dhcp_starvation", "rogue_dhcp", "arp_subnet_poison", "dns2tcp", "dns_beacon", "https_post_exfil",
           "nmap_scan", "internet_sweep", "hping3_scan", "reflection_flood", "http_flood", "ssh_guess",
           "telnet_guess", "http_form_guess", "udp4_fragments", "reflection_payload"]
