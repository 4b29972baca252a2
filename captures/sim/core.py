"""Discrete-event core of the synthetic lab: hosts, TCP stacks, the home network and the scheduler.

* :class:`Sim` runs *processes* (generators that ``yield`` the absolute time, in µs, at which they
  want to run next) in time order. A process may emit packets at or after its current time
  (replies "arrive later"); the scheduler keeps every emitted packet in a heap and hands it to the
  sink only once no process can emit anything earlier, so the output is in timestamp order.
* :class:`Host` is one interface as seen from the capture point (the home router's LAN
  bridge): MAC, IPv4 (+IPv6), the TTL its packets arrive with, and its TCP/IP :class:`Stack`
  fingerprint. Internet peers carry the router's MAC and a TTL reduced by their hop count.
* :class:`Tcp` is one TCP connection with real handshakes, delayed ACKs, consistent sequence
  numbers, timestamps when both stacks negotiate them, optional retransmissions and FIN/RST
  teardown; an optional ``relay`` host (ARP-poisoning man in the middle) makes every packet
  appear twice, as it does on the wire.
* :class:`Home` allocates LAN addresses and vendor MACs, resolves names to test-net addresses
  and runs DNS lookups through the router.

Every random choice comes from ``random.Random`` instances seeded with strings derived from the
run seed, so a seed always gives the same bytes (string seeds hash with SHA-512, independent of
``PYTHONHASHSEED``).
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from typing import Callable, Generator

from . import frames as P

SECOND = 1_000_000
MS = 1_000

Process = Generator[int, None, None]


# ----------------------------------------------------------------------------- stacks
@dataclass(frozen=True)
class Stack:
    """TCP/IP fingerprint of an operating system (what p0f would see)."""

    name: str
    ttl: int
    syn_window: int
    mss: int
    wscale: int | None
    sack: bool
    timestamps: bool
    order: str          # tcp_options order
    window: int         # raw window field once established (already scaled)
    df: bool = True
    synack_window: int = 0   # SYN/ACK window when timestamps are on (0: same as syn_window)
    linux: bool = False      # IP ID 0 on SYN/ACKs and socket-less RSTs, per-connection IP IDs otherwise


LINUX = Stack("linux", 64, 64240, 1460, 7, True, True, "linux", 502, synack_window=65160, linux=True)
ANDROID = Stack("android", 64, 65535, 1460, 9, True, True, "linux", 343, synack_window=65160, linux=True)
WINDOWS = Stack("windows", 128, 64240, 1460, 8, True, False, "windows", 1026)
APPLE = Stack("apple", 64, 65535, 1460, 6, True, True, "apple", 2058)
LWIP = Stack("lwip", 64, 5744, 1436, None, False, False, "plain", 5744, df=False)
LWIP255 = Stack("lwip255", 255, 2920, 1460, None, False, False, "plain", 2920, df=False)
EMBEDDED_LINUX = Stack("embedded-linux", 64, 29200, 1460, 6, True, True, "linux", 457, synack_window=28960,
                       linux=True)
SERVER_LINUX = Stack("server", 64, 65160, 1460, 7, True, True, "linux", 509, linux=True)
SERVER_WIN = Stack("server-win", 128, 65535, 1460, 8, True, False, "windows", 1024)


def syn_options(stack: Stack, tsval: int, tsecr: int = 0, mss: int | None = None) -> bytes:
    return P.tcp_options(mss=mss or stack.mss, sack_perm=stack.sack,
                         ts=(tsval, tsecr) if stack.timestamps else None, wscale=stack.wscale, order=stack.order)


# ----------------------------------------------------------------------------- hosts
class Host:
    """One interface on (or reachable through) the home LAN."""

    __slots__ = ("name", "kind", "mac", "ip", "ip6", "ttl", "stack", "local", "_ipid", "ts_base", "vendor",
                 "present_from", "gua6", "delay_scale")

    def __init__(self, name: str, kind: str, mac: bytes, ip: bytes, stack: Stack, *, local: bool = True,
                 ttl: int | None = None, ip6: bytes | None = None, rng: random.Random | None = None, vendor: str = ""):
        rng = rng or random.Random(name)
        self.name, self.kind, self.mac, self.ip, self.ip6 = name, kind, mac, ip, ip6
        self.stack = stack
        self.local = local
        self.ttl = stack.ttl if ttl is None else ttl
        self._ipid = rng.randrange(65536)
        self.ts_base = rng.randrange(1 << 31)
        self.vendor = vendor
        self.present_from = 0  # µs; a device that joins later answers nothing before that
        self.gua6: bytes | None = None  # global IPv6 address (scenario varied: IPv6 conversations)
        # scenario varied: how much slower/faster this host answers than the classic defaults (LAN
        # reaction for local hosts, round trip for Internet peers); 1.0 = classic
        self.delay_scale = 1.0

    def next_id(self) -> int:
        self._ipid = (self._ipid + 1) & 0xFFFF
        return self._ipid

    def tsval(self, t: int) -> int:
        return (self.ts_base + t // 1000) & 0xFFFFFFFF

    def __repr__(self) -> str:
        return f"Host({self.name}, {P.ip_str(self.ip)})"


# ----------------------------------------------------------------------------- scheduler
class Tag:
    """Ground truth for emitted packets: class ``label`` plus the ``activity`` that produced it, and the
    attack :class:`Episode` it belongs to (None for benign activity)."""

    __slots__ = ("index", "label", "activity", "episode")

    def __init__(self, index: int, label: str, activity: str, episode: "Episode | None" = None):
        self.index, self.label, self.activity, self.episode = index, label, activity, episode


class Episode:
    """One scheduled attack episode (ground truth for incident tests): family, tool variant, start,
    the hosts that ran the attack tools (``attackers``, filled by ``attacks.Attack``) and the
    declared ``target`` when the schedule chose one. Processes spawned while an episode is being
    scheduled, or by one of its processes, belong to it (``Sim.spawn``), so their packets carry
    episode-specific tags (same label and comment: the bytes do not change)."""

    __slots__ = ("index", "family", "kind", "at", "attackers", "target", "declared")

    def __init__(self, index: int, family: str, kind: str, at: int):
        self.index, self.family, self.kind, self.at = index, family, kind, at
        self.attackers: list = []
        self.target = None
        # what the schedule chose (home._Episodes.note): tool, attacker, victims, reflectors, targets
        self.declared: dict = {}


def _in_episode(sim: "Sim", ep: Episode, proc: Process) -> Process:
    """Run ``proc`` with ``sim.episode`` set while it executes (tags and child processes join ``ep``)."""
    while True:
        prev, sim.episode = sim.episode, ep
        try:
            nxt = next(proc)
        except StopIteration:
            return
        finally:
            sim.episode = prev
        yield nxt


class Sim:
    def __init__(self, seed: int, start_us: int, duration_us: int):
        self.seed = seed
        self.start = start_us
        self.end = start_us + duration_us
        self.now = start_us
        self._out: list[tuple[int, int, bytes, int]] = []
        self._procs: list[tuple[int, int, Process]] = []
        self._seq = itertools.count()
        self._pid = itertools.count()
        self.tags: list[Tag] = []
        self._tag_ids: dict[tuple, Tag] = {}
        self.episodes: list[Episode] = []
        self.episode: Episode | None = None        # the episode whose process runs right now
        self.scheduling: Episode | None = None     # the episode being scheduled (see home.schedule_attacks)

    def rng(self, name: str) -> random.Random:
        """An independent, reproducible random stream for one component."""
        return random.Random(f"iotwatch-sim/{self.seed}/{name}")

    def tag(self, label: str, activity: str) -> Tag:
        ep = self.episode
        key = (label, activity) if ep is None else (label, activity, ep.index)
        t = self._tag_ids.get(key)
        if t is None:
            t = self._tag_ids[key] = Tag(len(self.tags), label, activity, ep)
            self.tags.append(t)
        return t

    def emit(self, t: int, frame: bytes, tag: Tag) -> None:
        if t < self.now:
            raise RuntimeError(f"packet emitted in the past ({t} < {self.now}) by {tag.activity}")
        heapq.heappush(self._out, (t, next(self._seq), frame, tag.index))

    def spawn(self, proc: Process, at: int) -> None:
        ep = self.scheduling or self.episode
        if ep is not None:
            proc = _in_episode(self, ep, proc)
        heapq.heappush(self._procs, (max(at, self.now), next(self._pid), proc))

    def run(self, sink: Callable[[int, bytes, int], None]) -> None:
        """Drive all processes to ``end``; ``sink(t_us, frame, tag_index)`` gets packets in time order."""
        out, procs, end = self._out, self._procs, self.end
        pop, push = heapq.heappop, heapq.heappush
        while procs:
            wake, pid, proc = pop(procs)
            if wake > end:
                break
            while out and out[0][0] <= wake:
                t, _, frame, tag = pop(out)
                sink(t, frame, tag)
            self.now = wake
            try:
                nxt = next(proc)
            except StopIteration:
                continue
            push(procs, (max(int(nxt), wake), pid, proc))
        while out and out[0][0] <= end:
            t, _, frame, tag = pop(out)
            sink(t, frame, tag)
        for _, _, proc in procs:
            proc.close()
        procs.clear()
        out.clear()

    # --- stateless one-packet helpers (every frame goes through emit)
    def udp(self, t: int, src: Host, dst: Host, sport: int, dport: int, payload: bytes, tag: Tag,
            ttl: int | None = None) -> bytes:
        f = P.udp4_frame(dst.mac, src.mac, src.ip, dst.ip, ttl or src.ttl, src.next_id(), src.stack.df, sport, dport,
                         payload)
        self.emit(t, f, tag)
        return f

    def icmp(self, t: int, src: Host, dst: Host, itype: int, code: int, rest: bytes, data: bytes, tag: Tag,
             ttl: int | None = None, df: bool | None = None) -> bytes:
        f = P.icmp4_frame(dst.mac, src.mac, src.ip, dst.ip, ttl or src.ttl, src.next_id(),
                          src.stack.df if df is None else df, itype, code, rest, data)
        self.emit(t, f, tag)
        return f

    def arp(self, t: int, dmac: bytes, smac: bytes, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes,
            tag: Tag) -> None:
        self.emit(t, P.arp_frame(dmac, smac, op, sha, spa, tha, tpa), tag)


# ----------------------------------------------------------------------------- TCP
class Tcp:
    """One TCP connection between ``a`` (client) and ``b`` (server), seen from the capture point.

    ``da``/``db``: how long after a packet of the other side ``a``/``b`` answers, as seen at the
    capture point (a LAN device answers in ~1 ms, an Internet peer after the WAN round trip).
    Methods take the time to start and return the time the exchange is complete.
    """

    def __init__(self, sim: Sim, a: Host, b: Host, sport: int, dport: int, tag: Tag, rng: random.Random, *,
                 da: int = 2 * MS, db: int = 30 * MS, a_syn: bytes | None = None, loss: float = 0.0,
                 relay: Host | None = None, relay_tag: Tag | None = None, v6: bool = False):
        self.sim, self.a, self.b, self.sport, self.dport, self.tag, self.rng = sim, a, b, sport, dport, tag, rng
        # v6: over both hosts' global IPv6 addresses (gua6); the MSS is 20 bytes smaller
        self.v6 = v6
        self.flow = rng.getrandbits(20) if v6 else 0
        self.da, self.db = da, db
        self.seq_a = rng.getrandbits(32)
        self.seq_b = rng.getrandbits(32)
        self.ts_ok = a.stack.timestamps and b.stack.timestamps
        self.a_syn = a_syn
        self.loss = loss
        self.relay, self.relay_tag = relay, relay_tag or tag
        self._ts_a = self._ts_b = 0
        self._id_a = rng.getrandbits(16) if a.stack.linux else None
        self._id_b = rng.getrandbits(16) if b.stack.linux else None
        self.open = False

    # -- one segment
    def seg(self, t: int, from_a: bool, flags: int, payload: bytes = b"", options: bytes | None = None,
            window: int | None = None) -> None:
        if from_a:
            s, d, sp, dp, seq, ack = self.a, self.b, self.sport, self.dport, self.seq_a, self.seq_b
        else:
            s, d, sp, dp, seq, ack = self.b, self.a, self.dport, self.sport, self.seq_b, self.seq_a
        if options is None:
            options = b""
            if self.ts_ok and not flags & P.RST:
                tsv = s.tsval(t)
                options = P.ts_option(tsv, self._ts_b if from_a else self._ts_a)
                if from_a:
                    self._ts_a = tsv
                else:
                    self._ts_b = tsv
        win = s.stack.window if window is None else window
        if not flags & P.ACK:
            ack = 0
        if from_a:
            if self._id_a is None:
                ident = s.next_id()
            else:
                ident = self._id_a = (self._id_a + 1) & 0xFFFF
        elif self._id_b is None:
            ident = s.next_id()
        elif flags & P.SYN or (flags & P.RST and not self.open):  # listener SYN/ACK, socket-less RST
            ident = 0
        else:
            ident = self._id_b = (self._id_b + 1) & 0xFFFF
        emit = self.sim.emit
        if self.v6:
            emit(t, P.tcp6_frame(d.mac, s.mac, s.gua6, d.gua6, s.ttl, self.flow, sp, dp, seq, ack, flags, win, options,
                                 payload), self.tag)
        elif self.relay is None:
            emit(t, P.tcp4_frame(d.mac, s.mac, s.ip, d.ip, s.ttl, ident, s.stack.df, sp, dp, seq, ack, flags,
                                 win, options, payload), self.tag)
        else:  # poisoned path: sender -> attacker's MAC, then attacker forwards (TTL - 1)
            r = self.relay.mac
            emit(t, P.tcp4_frame(r, s.mac, s.ip, d.ip, s.ttl, ident, s.stack.df, sp, dp, seq, ack, flags, win,
                                 options, payload), self.relay_tag)
            emit(t + 30 + (ident & 0x3F), P.tcp4_frame(d.mac, r, s.ip, d.ip, s.ttl - 1, ident, s.stack.df, sp, dp,
                                                         seq, ack, flags, win, options, payload), self.relay_tag)
        n = len(payload) + (1 if flags & (P.SYN | P.FIN) else 0)
        if from_a:
            self.seq_a = (self.seq_a + n) & 0xFFFFFFFF
        else:
            self.seq_b = (self.seq_b + n) & 0xFFFFFFFF

    # -- exchanges
    def connect(self, t: int, refuse: bool = False) -> int | None:
        """SYN, SYN/ACK, ACK. ``refuse``: the server answers RST/ACK; returns None then."""
        a, b = self.a, self.b
        self._ts_a = a.tsval(t)
        adj = 20 if self.v6 else 0
        syn_opts = self.a_syn if self.a_syn is not None else syn_options(a.stack, self._ts_a,
                                                                        mss=a.stack.mss - adj if adj else None)
        self.seg(t, True, P.SYN, options=syn_opts, window=a.stack.syn_window)
        t += self.db
        if refuse:
            self.seq_b = 0
            self.seg(t, False, P.RST | P.ACK, options=b"", window=0)
            return None
        opts = b""
        if self.a_syn is None or b"\x02\x04" in self.a_syn[:4]:
            ts_both = self.ts_ok
            self._ts_b = b.tsval(t)
            opts = P.tcp_options(mss=b.stack.mss - adj, sack_perm=b.stack.sack and a.stack.sack,
                                 ts=(self._ts_b, self._ts_a) if ts_both else None,
                                 wscale=b.stack.wscale if a.stack.wscale is not None else None, order=b.stack.order)
        # Linux rounds its SYN/ACK window to the MSS left after the timestamps option (45 x 1448)
        ts_on = self.ts_ok and self.a_syn is None
        win = b.stack.synack_window if (ts_on and b.stack.synack_window) else b.stack.syn_window
        self.seg(t, False, P.SYN | P.ACK, options=opts, window=win)
        t += self.da
        self.seg(t, True, P.ACK)
        self.open = True
        return t

    def send(self, t: int, from_a: bool, data: bytes, *, rate: float = 2e6, ack: bool = True, push: bool = True) -> int:
        """Send ``data`` in MSS-sized segments at ``rate`` bytes/s; the peer ACKs every 2nd segment.

        With ``loss`` (per segment), the last segment may be lost behind the capture point: it is
        seen twice, the second time after the retransmission timeout, and only then ACKed (a tail
        loss; retransmitting before newer data keeps Wireshark's reassembly consistent).
        Returns the time of the last ACK (or of the last segment when ``ack`` is False).
        """
        mss = min(self.a.stack.mss, self.b.stack.mss) - (12 if self.ts_ok else 0) - (20 if self.v6 else 0)
        delay = self.db if from_a else self.da
        n = len(data)
        data = memoryview(data)
        gap = max(150 if self.relay else 1, int((mss + 54) / rate * SECOND))
        lost_tail = self.loss and self.rng.random() < min(0.3, self.loss * (n // mss + 1))
        i = 0
        k = 0
        last_ack = t
        seg = self.seg
        while i < n:
            chunk = data[i:i + mss]
            i += len(chunk)
            k += 1
            last = i >= n
            seg(t, from_a, P.ACK | (P.PSH if last and push else 0), chunk)
            if last and lost_tail and len(chunk) > 1:  # (a 1-byte resend would read as a keep-alive)
                t += max(200 * MS, 3 * delay)
                self._retransmit(t, from_a, chunk)
            if ack and (last or k % 2 == 0):
                last_ack = t + delay
                seg(last_ack, not from_a, P.ACK)
            if not last:
                t += gap
        return last_ack if ack else t

    def _retransmit(self, t: int, from_a: bool, chunk: bytes) -> None:
        """Re-emit the segment just sent, with the same sequence number."""
        if from_a:
            saved = self.seq_a
            self.seq_a = (saved - len(chunk)) & 0xFFFFFFFF
            self.seg(t, True, P.ACK | P.PSH, chunk)
            self.seq_a = saved
        else:
            saved = self.seq_b
            self.seq_b = (saved - len(chunk)) & 0xFFFFFFFF
            self.seg(t, False, P.ACK | P.PSH, chunk)
            self.seq_b = saved

    def request(self, t: int, req: bytes, resp: bytes, *, server_time: int = 5 * MS, rate: float = 4e6) -> int:
        """Client request, server response (ACKed); returns the time the client ACKed the response."""
        t = self.send(t, True, req, ack=False, rate=rate)
        t += self.db + server_time
        return self.send(t, False, resp, rate=rate)

    def close(self, t: int, from_a: bool = True) -> int:
        """FIN/ACK, FIN/ACK, ACK."""
        d_other = self.db if from_a else self.da
        d_self = self.da if from_a else self.db
        self.seg(t, from_a, P.FIN | P.ACK)
        t += d_other
        self.seg(t, not from_a, P.FIN | P.ACK)
        t += d_self
        self.seg(t, from_a, P.ACK)
        self.open = False
        return t

    def reset(self, t: int, from_a: bool = True) -> int:
        self.seg(t, from_a, P.RST | P.ACK, window=0, options=b"")
        self.open = False
        return t


# ----------------------------------------------------------------------------- addresses
# Real IEEE OUIs per vendor (public registry), used for the upper half of device MACs.
OUIS: dict[str, tuple[str, ...]] = {
    "espressif": ("24:0a:c4", "30:ae:a4", "84:f3:eb", "a4:cf:12", "5c:cf:7f", "ec:fa:bc", "3c:71:bf", "8c:aa:b5",
                  "c8:2b:96", "24:6f:28"),
    "tplink": ("50:c7:bf", "b0:be:76", "1c:3b:f3", "60:a4:b7", "98:da:c4", "ac:84:c6", "54:af:97", "68:ff:7b"),
    "hikvision": ("44:19:b6", "54:c4:15", "bc:ad:28", "c0:56:e3", "4c:bd:8f"),
    "dahua": ("3c:ef:8c", "90:02:a9", "e0:50:8b", "4c:11:bf"),
    "wyze": ("2c:aa:8e", "7c:78:b2", "d0:3f:27"),
    "amazon": ("44:65:0d", "f0:d2:f1", "68:54:fd", "fc:65:de", "74:c2:46", "0c:47:c9", "4c:ef:c0"),
    "google": ("f4:f5:d8", "54:60:09", "1c:f2:9a", "20:df:b9", "3c:28:6d", "d8:6c:63", "f8:0f:f9", "48:d6:d5"),
    "signify": ("00:17:88", "ec:b5:fa"),
    "raspberrypi": ("b8:27:eb", "dc:a6:32", "e4:5f:01", "d8:3a:dd", "2c:cf:67"),
    "apple": ("f0:18:98", "a4:83:e7", "3c:22:fb", "88:66:5a", "bc:d0:74", "14:7d:da", "ac:bc:32", "f4:0f:24"),
    "samjin": ("28:6d:97",),
    "intel": ("8c:8d:28", "a4:34:d9", "f8:94:c2", "7c:b2:7d", "3c:a9:f4"),
    "sonos": ("00:0e:58", "48:a6:b8", "5c:aa:fd", "94:9f:3e", "b8:e9:37"),
    "xiaomi": ("28:6c:07", "64:09:80", "78:11:dc", "7c:49:eb"),
    "nest": ("18:b4:30", "64:16:66"),
    "ecobee": ("44:61:32",),
    "ubiquiti": ("24:5a:4c", "74:83:c2", "78:8a:20", "f0:9f:c2", "fc:ec:da", "18:e8:29"),
    "avm": ("38:10:d5", "c8:0e:14", "2c:91:ab", "3c:a6:2f", "44:4e:6d", "98:9b:cb", "e0:28:6d"),
    "netgear": ("a0:40:a0", "9c:3d:cf", "c4:04:15", "20:e5:2a"),
    "asus": ("04:d9:f5", "2c:fd:a1", "50:eb:f5", "ac:9e:17", "f0:2f:74"),
    "vmware": ("00:0c:29", "00:50:56"),
    "virtualbox": ("08:00:27",),
    "dell": ("18:66:da", "f8:bc:12", "b0:83:fe"),
}

LAN_PREFIXES = ("192.168.0", "192.168.1", "192.168.178", "10.0.0", "192.168.86", "192.168.50", "10.0.1",
                "192.168.68", "192.168.2", "10.1.10", "172.16.0", "192.168.31")

# Documentation and benchmarking ranges: public-looking, never routed (RFC 5737, RFC 2544).
_CLOUD_BLOCKS = ((0xC0000200, 256), (0xC6336400, 256), (0xCB007100, 256), (0xC6120000, 131072))


class Home:
    """The home network: LAN addressing, the router, name resolution and Internet peers."""

    def __init__(self, sim: Sim, plan=None):
        self.sim = sim
        self.rng = sim.rng("home")
        r = self.rng
        self.prefix = r.choice(LAN_PREFIXES)
        # ``plan`` (scenario varied, see variety.Plan): address plan, public address space, host
        # stacks and how names are resolved; None keeps the classic home (and its bytes)
        self.plan = plan
        if plan is not None:
            self.prefix = plan.prefix
        # varied: callable(t, client, name, rng, qtype) -> int (answered without a visible router
        # exchange, at that time) | Host (plain DNS to that resolver) | None (the router)
        self.resolver_hook = None
        self.gw_last = r.choice((1, 1, 1, 254))
        self._used_ips: set[int] = {0, 255, self.gw_last}
        self._used_macs: set[bytes] = set()
        self.pool = (2, 99) if r.random() < 0.3 else (100, 249)
        self.v6_prefix = bytes.fromhex("20010db8") + r.getrandbits(32).to_bytes(4, "big")
        gw_vendor = r.choice(("ubiquiti", "avm", "netgear", "asus", "tplink"))
        self.gateway = Host("router", "router", self.new_mac(gw_vendor), P.ip4(f"{self.prefix}.{self.gw_last}"),
                            LINUX, ip6=self.link_local(), rng=sim.rng("router"), vendor=gw_vendor)
        self.hosts: list[Host] = [self.gateway]
        self._dns: dict[str, bytes] = {}
        self._remote: dict[bytes, Host] = {}
        self._used_remote: set[int] = set()
        self.mdns = Host("mdns", "group", P.multicast_mac4(P.ip4("224.0.0.251")), P.ip4("224.0.0.251"), LINUX,
                         ip6=P.ip6("ff02::fb"), rng=sim.rng("mdns"))
        self.ssdp = Host("ssdp", "group", P.multicast_mac4(P.ip4("239.255.255.250")), P.ip4("239.255.255.250"), LINUX,
                         rng=sim.rng("ssdp"))
        self.bcast = Host("broadcast", "group", P.BROADCAST, P.ip4(f"{self.prefix}.255"), LINUX, rng=sim.rng("bc"))
        self.all_ones = Host("broadcast", "group", P.BROADCAST, b"\xff\xff\xff\xff", LINUX, rng=sim.rng("bc1"))
        self.dns_cache: dict[tuple[bytes, str], int] = {}
        self.dns_tag = sim.tag("normal", "dns")

    # --- LAN
    def new_mac(self, vendor: str, randomized: bool = False) -> bytes:
        r = self.rng
        while True:
            if randomized:  # locally administered, unicast (phones' private Wi-Fi addresses)
                first = (r.randrange(256) & 0xFC) | 0x02
                m = bytes([first]) + r.randbytes(5)
            else:
                m = P.mac(r.choice(OUIS[vendor])) + r.randbytes(3)
            if m not in self._used_macs:
                self._used_macs.add(m)
                return m

    def new_lan_ip(self, static: int | None = None) -> bytes:
        if static is not None and static not in self._used_ips:
            self._used_ips.add(static)
            return P.ip4(f"{self.prefix}.{static}")
        while True:
            last = self.rng.randint(*self.pool)
            if last not in self._used_ips:
                self._used_ips.add(last)
                return P.ip4(f"{self.prefix}.{last}")

    def link_local(self) -> bytes:
        return bytes.fromhex("fe80000000000000") + self.rng.randbytes(8)

    def add_host(self, name: str, kind: str, vendor: str, stack: Stack, *, randomized_mac: bool = False,
                 static: int | None = None, v6: bool = False) -> Host:
        ttl = None
        if self.plan is not None:
            stack, ttl = self.plan.host_stack(self.sim, name, kind, stack)
        h = Host(name, kind, self.new_mac(vendor, randomized_mac), self.new_lan_ip(static), stack,
                 ip6=self.link_local() if v6 else None, rng=self.sim.rng("host/" + name), vendor=vendor, ttl=ttl)
        if self.plan is not None:
            h.delay_scale = self.plan.lan_scale(self.sim, name)
        self.hosts.append(h)
        return h

    def give_gua6(self, h: Host) -> bytes:
        """A global IPv6 address for a LAN host (SLAAC in the router's /64, random interface ID)."""
        if h.gua6 is None:
            h.gua6 = self.v6_prefix + self.sim.rng("gua6/" + h.name).randbytes(8)
        return h.gua6

    def peer6(self, ip: bytes, rng: random.Random | None = None) -> Host:
        """The Internet peer at ``ip`` with a global IPv6 address: 2001:db8::/32 + the IPv4 address for a
        name (what :meth:`lookup` answers to AAAA), a random one in 2000::/4 for an unnamed host."""
        h = self.peer(ip)
        if h.gua6 is None:
            h.gua6 = (bytes.fromhex("20010db8") + ip * 3) if rng is None else (
                bytes((0x20 | rng.randrange(16),)) + rng.randbytes(15))
        return h

    def lan_ip(self, last: int) -> bytes:
        return P.ip4(f"{self.prefix}.{last}")

    def live_hosts(self, t: int) -> list[Host]:
        """LAN hosts connected at time ``t``."""
        return [h for h in self.hosts if h.local and h.present_from <= t]

    # --- Internet
    def new_public_ip(self, rng: random.Random) -> bytes:
        """A fresh address from the documentation/benchmarking blocks, never handed out before."""
        if self.plan is not None and self.plan.wide_public:
            while True:  # anywhere in the global unicast space, as real peers are
                v = rng.getrandbits(32)
                if v & 0xFF in (0, 255) or v in self._used_remote or self.plan.reserved(v):
                    continue
                self._used_remote.add(v)
                return v.to_bytes(4, "big")
        while True:
            base, size = rng.choice(_CLOUD_BLOCKS)
            v = base + rng.randrange(1, size - 1)
            if v & 0xFF in (0, 255) or v in self._used_remote:
                continue
            self._used_remote.add(v)
            return v.to_bytes(4, "big")

    def resolve(self, name: str) -> bytes:
        ip = self._dns.get(name)
        if ip is None:
            ip = self._dns[name] = self.new_public_ip(self.sim.rng("dns/" + name))
        return ip

    def peer(self, ip: bytes, stack: Stack | None = None, hops: int | None = None) -> Host:
        """The Internet host at ``ip`` as seen on the LAN (router's MAC, TTL minus hops); most
        servers run Linux, some Windows (TTL 128, no TCP timestamps)."""
        h = self._remote.get(ip)
        if h is None:
            r = self.sim.rng("peer/" + P.ip_str(ip))
            if self.plan is not None:
                stack, hops = self.plan.peer_stack(r, stack, hops)
            stack = stack or (SERVER_WIN if r.random() < 0.2 else SERVER_LINUX)
            hops = hops if hops is not None else r.randint(8, 22)
            h = Host(P.ip_str(ip), "internet", self.gateway.mac, ip, stack, local=False, ttl=stack.ttl - hops, rng=r)
            if self.plan is not None:
                h.delay_scale = self.plan.wan_scale * r.choice((0.3, 0.6, 1.0, 1.0, 1.5, 3.0))  # CDN edge .. far away
            self._remote[ip] = h
        return h

    def cloud(self, name: str) -> Host:
        return self.peer(self.resolve(name))

    def unseen_peer(self, rng: random.Random) -> Host:
        """An Internet host no name resolves to and nobody contacted before."""
        return self.peer(self.new_public_ip(rng))

    def lookup(self, t: int, client: Host, name: str, rng: random.Random, *, qtype: int = P.DNS_A,
               tag: Tag | None = None, force: bool = False) -> tuple[int, bytes]:
        """Resolve ``name`` through the router (the client's stub caches answers for their TTL).

        Returns ``(time the answer arrived, IPv4 address)``; no packets when the cache is fresh.
        """
        ip = self.resolve(name)
        key = (client.mac, name)
        if not force and self.dns_cache.get(key, -1) > t:
            return t, ip
        server = self.gateway
        if self.resolver_hook is not None:
            got = self.resolver_hook(t, client, name, rng, qtype)
            if isinstance(got, int):
                if qtype == P.DNS_A:
                    self.dns_cache[key] = got + rng.choice((60, 300, 3600)) * SECOND
                return got, ip
            server = got or server
        ttl = rng.choice((30, 60, 60, 120, 300, 300, 600))
        if qtype == P.DNS_A:
            self.dns_cache[key] = t + ttl * SECOND
        tag = tag or self.dns_tag
        qid = rng.getrandbits(16)
        sport = rng.randint(32768, 60999) if client.stack.name != "lwip" else rng.randint(49152, 65535)
        q = P.dns_question(name, qtype)
        edns = [P.edns_opt()] if client.stack.name in ("linux", "android", "apple", "windows") else []
        self.sim.udp(t, client, server, sport, 53, P.dns_message(qid, P.DNS_QUERY_FLAGS, [q], additional=edns), tag)
        t += (rng.randint(300, 1500) if rng.random() < 0.5 else rng.randint(8 * MS, 45 * MS))
        answers = []
        if rng.random() < 0.3 and qtype == P.DNS_A:
            cname = name.split(".")[0] + rng.choice((".edgekey.net", ".cdn.cloudflare.net", ".elb.amazonaws.com",
                                                     ".akamaiedge.net", ".trafficmanager.net"))
            answers.append(P.dns_rr(P.PTR_TO_QNAME, P.DNS_CNAME, P.dns_name(cname), ttl))
            answers.append(P.dns_rr(cname, P.DNS_A, ip, min(ttl, 60)))
        elif qtype == P.DNS_A:
            answers.append(P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, ip, ttl))
            if rng.random() < 0.3:
                answers.append(P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, self.new_public_ip(rng), ttl))
        elif qtype == P.DNS_AAAA:
            answers.append(P.dns_rr(P.PTR_TO_QNAME, P.DNS_AAAA, bytes.fromhex("20010db8") + ip * 3, ttl))
        self.sim.udp(t, server, client, 53, sport,
                     P.dns_message(qid, P.DNS_RESPONSE_FLAGS, [q], answers, additional=edns), tag)
        return t, ip
