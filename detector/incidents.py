"""From classified packets to incidents: who attacks whom, since when, and why (no UI here).

``IncidentEngine.update(cb)`` takes each ``ClassifiedBatch`` of a run in stream order and returns
the incident events it caused (``opened``, ``updated``, ``closed``); ``finish()`` closes what is
still active at the end of the source. The engine depends on packet timestamps and frame numbers
only (never the wall clock), so a replay at any speed and any batch size gives the same incidents
and the same events in the same order (the tests check this).

**Roles.** Each anomalous packet is given a *key* entity by its class (see ``CLASS_RULES``):

* ``recon``, ``bruteforce``, ``exfiltration`` are keyed by the **client** side of the packet (the
  scanner, the client of the failed logins, the host sending data out); its peers are victims. The
  client is the sender of a SYN, an ICMP/ARP request or a request to a service port, and the
  receiver of a SYN/ACK, a reply, an ICMP error or a packet from a service port -- so a scanned
  host's RST/ACKs count for the scanner, not for the host that answers.
* ``dos`` is keyed by the **server** side (the victim): a spoofed-source flood is one incident on its
  victim with "N distinct sources" (and the source MACs it arrived from); a flood of *responses*
  from a reflection service port (DNS, NTP, SSDP, memcached, ...) to one host is keyed by that
  host (``reflection``: victim and reflectors), unless that host is the attacker of an incident
  already running (a DNS water torture's answers return to the bot). Likewise an ``exfiltration``
  key that is the main destination of a running exfiltration (a resolver forwarding a DNS tunnel's
  queries to the tunnel's server) joins that incident.
* ``spoofing`` is keyed by the **sender MAC** of the forged packets (ARP claims, forged DNS answers,
  rogue router advertisements); an ARP claim names the claimed IP (``claimed_ips``) and the
  poisoned target (victims). Victims' traffic sent *to* a known poisoner's MAC joins its incident.

**Hysteresis** (documented thresholds, the same for every capture; times are packet times):
a key's incident *opens* when ``packets`` anomalous packets of its class fall within ``WINDOW``
seconds and the behaviour the class needs is present -- ``distinct`` probe targets (host, port) for
recon, ``distinct`` connections for brute force; it *ends* after ``QUIET`` seconds without one.
The thresholds are the least the attack needs to exist at all (a scan touches many ports or hosts;
guessing passwords needs several logins; a flood is many packets; ARP claims repeat), not values
fitted to a capture; isolated false positives of the model never reach them.

**Evidence** is counted while the incident runs (SYN/SYN-ACK/RST/ICMP/ARP/DNS counts, distinct
ports and hosts, connections and their sizes, bytes each way, peak packets per second, model
confidence) and rendered as one sentence with numbers (``Incident.evidence``).

**Bounded memory**: tracked keys expire after ``QUIET`` seconds; at most ``MAX_TRACKS`` keys are
tracked, per-incident sets and counters are capped (``MAX_DISTINCT``, ``MAX_COUNTER``) and say
so (``+``), and only the last ``MAX_KEPT`` ended incidents are kept.
"""
from __future__ import annotations

import heapq
import itertools
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

WINDOW = 60.0      # s of packet time: the opening packets must fall within this window
QUIET = 60.0       # s without an anomalous packet of the key: the incident ends
MAX_TRACKS = 4096  # keys tracked at once (pending + active)
MAX_DISTINCT = 20_000
MAX_COUNTER = 256
MAX_KEPT = 10_000
UPDATE_EVERY = 10  # an ``updated`` event each time the packet count grows by this factor

SERVICE_PORTS = frozenset({1883, 8883, 5683, 5684, 8080, 8443, 8000, 8008, 8009, 8081, 8888, 2323, 8554, 3306,
                           5432, 6379, 27017, 5353, 1900, 49152, 62078, 9999, 8123, 37777, 5555, 7547, 8291,
                           25565, 4444, 9001, 3389, 5900, 11211, 3702})
REFLECTION_PORTS = frozenset({19, 53, 111, 123, 137, 161, 389, 1900, 3702, 5353, 5683, 11211})
SERVICE_NAMES = {20: "ftp", 21: "ftp", 22: "ssh", 23: "telnet", 2323: "telnet", 25: "smtp", 53: "dns", 67: "dhcp",
                 80: "http", 8080: "http", 8000: "http", 8008: "http", 8081: "http", 123: "ntp", 443: "https",
                 8443: "https", 554: "rtsp", 8554: "rtsp", 1883: "mqtt", 8883: "mqtt", 5683: "coap",
                 1900: "ssdp", 5353: "mdns", 3389: "rdp", 5900: "vnc", 161: "snmp", 11211: "memcached"}
_ICMP_BACK = {0, 14, 16, 18, 3, 4, 5, 11, 12}      # v4 replies and errors: go back to the client
_ICMP6_BACK = {129, 1, 2, 3, 4}


def _table(size: int, members) -> np.ndarray:
    t = np.zeros(size + 1, dtype=bool)   # the last slot answers for "missing" (-1)
    t[list(members)] = True
    return t


_SVC = _table(65536, set(range(1024)) | SERVICE_PORTS)
_REFL = _table(65536, REFLECTION_PORTS)
_BACK4 = _table(256, _ICMP_BACK)
_BACK6 = _table(256, _ICMP6_BACK)
_REQ4 = _table(256, (8, 13, 15, 17))


def _lookup(table: np.ndarray, v: np.ndarray) -> np.ndarray:
    """table[v] with -1 (missing) and out-of-range values -> False."""
    v = np.where((v >= 0) & (v < len(table) - 1), v, len(table) - 1)
    return table[v]


@dataclass(frozen=True)
class Rule:
    role: str          # what the key is: "attacker" or "victim"
    packets: int       # anomalous packets within WINDOW to open
    distinct: int      # distinct targets (recon) / connections (bruteforce) to open
    severity: int      # Suricata-style: 1 highest, 3 lowest


CLASS_RULES: dict[str, Rule] = {
    "recon": Rule("attacker", 10, 8, 3),
    "dos": Rule("victim", 50, 1, 2),
    "bruteforce": Rule("attacker", 10, 4, 2),
    "spoofing": Rule("attacker", 5, 1, 1),
    "exfiltration": Rule("attacker", 10, 1, 1),
}
DEFAULT_RULE = Rule("attacker", 10, 1, 2)

# Kinds per class, in a fixed order: the EVE signature_id is derived from (class, kind) and never
# changes for a kind (new kinds are appended).
KINDS: dict[str, tuple[str, ...]] = {
    "recon": ("scan", "syn-scan", "udp-scan", "arp-sweep", "icmp-sweep", "service-probe"),
    "dos": ("flood", "syn-flood", "spoofed-syn-flood", "udp-flood", "icmp-flood", "reflection",
            "connection-exhaustion", "dns-flood", "spoofed-udp-flood"),
    "bruteforce": ("login-guessing", "ssh", "telnet", "ftp", "http", "mqtt"),
    "spoofing": ("spoofing", "arp-poisoning", "dns-forgery", "rogue-router-advertisement"),
    "exfiltration": ("exfiltration", "dns-tunnel", "icmp-tunnel", "bulk-upload"),
}

# evidence counters (index into Track.n)
(C_SYN, C_SYNACK, C_RST, C_ICMP_REQ, C_ICMP_BACK, C_ARP_REQ, C_ARP_REP, C_UDP, C_DNS_Q, C_DNS_LEN, C_AUTHFAIL,
 C_FWD_BYTES, C_REV_BYTES, C_RA, C_DNS_R, C_TCP, C_FWD_PKTS, C_ICMP_LEN) = range(18)
N_COUNTERS = 18


def _capped_update(counter: Counter, keys, counts) -> None:
    for k, c in zip(keys, counts):
        counter[k] += int(c)
    if len(counter) > MAX_COUNTER * 2:
        keep = counter.most_common(MAX_COUNTER)
        counter.clear()
        counter.update(dict(keep))


def _codes(values) -> tuple[list, np.ndarray]:
    """Distinct values (first-seen order) and each row's index into them."""
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    distinct = list(dict.fromkeys(items))
    pos = {v: i for i, v in enumerate(distinct)}
    return distinct, np.fromiter(map(pos.__getitem__, items), dtype=np.int64, count=len(items))


class Track:
    """One key's incident (``state`` pending -> active -> ended)."""

    def __init__(self, cls: int, cls_name: str, key: str, rule: Rule, seq: int):
        self.cls, self.cls_name, self.key, self.rule, self.seq = cls, cls_name, key, rule, seq
        self.state = "pending"
        self.id = 0                     # 1-based once opened, in order of opening
        self.kind = ""
        self.first_time = self.last_time = 0.0
        self.first_frame = self.last_frame = 0
        self.open_time = 0.0
        self.open_frame = 0
        self.packets = 0
        self.bytes = 0
        self.conf_sum = 0.0
        self.recent: np.ndarray = np.empty(0)      # last (packets-1) times while pending
        self.peers: Counter = Counter()
        self.peer_set: set = set()
        self.ports: Counter = Counter()
        self.distinct: set = set()                 # probe targets / connections (hashes)
        self.conn_bytes: dict = {}
        self.macs: Counter = Counter()
        self.claimed: Counter = Counter()
        self.n = np.zeros(N_COUNTERS, dtype=np.int64)
        self.bucket = -1
        self.bucket_count = 0
        self.peak = 0
        self.reflection = 0
        self.impersonations = 0
        self.next_update = 0
        self.end_reason = ""
        self.rep: dict | None = None    # the packet that opened the incident, oriented attacker -> victim

    # --- roles ---------------------------------------------------------------------------------
    @property
    def spoofed_sources(self) -> bool:
        """A flood whose sources are many and each rare: forged source addresses."""
        if self.rule.role != "victim" or len(self.peer_set) < 20:
            return False
        top = self.peers.most_common(1)[0][1] if self.peers else 0
        return top * 4 < self.packets

    @property
    def is_reflection(self) -> bool:
        return self.rule.role == "victim" and self.reflection * 2 > self.packets

    def top_peers(self, n: int = 5) -> list[str]:
        return [p for p, _ in self.peers.most_common(n) if p]

    @property
    def attacker(self) -> str:
        """The attacking entity: the key, or for floods the dominant source (empty when spoofed)."""
        if self.rule.role == "attacker":
            return self.key
        if self.spoofed_sources or self.is_reflection:
            return ""
        return (self.top_peers(1) or [""])[0]

    @property
    def victims(self) -> list[str]:
        if self.rule.role == "victim":
            return [self.key]
        return self.top_peers(5)

    @property
    def services(self) -> list[str]:
        out = []
        for port, _ in self.ports.most_common(4):
            name = SERVICE_NAMES.get(port)
            out.append(f"{name}/{port}" if name else str(port))
        return out

    @property
    def confidence(self) -> float:
        return self.conf_sum / self.packets if self.packets else 0.0

    @property
    def distinct_peers(self) -> int:
        return len(self.peer_set)

    def _capped(self, n: int) -> str:
        return f"{n:,}+" if n >= MAX_DISTINCT else f"{n:,}"

    # --- kind and evidence -----------------------------------------------------------------------
    def classify_kind(self) -> str:
        n, c = self.n, self.cls_name
        pk = max(self.packets, 1)
        port = self.ports.most_common(1)[0][0] if self.ports else -1
        if c == "recon":
            if n[C_ARP_REQ] + n[C_ARP_REP] > pk / 2:
                return "arp-sweep"
            if n[C_ICMP_REQ] + n[C_ICMP_BACK] > pk / 2 and n[C_UDP] < pk / 4:
                return "icmp-sweep"
            if n[C_SYN] + n[C_SYNACK] + n[C_RST] > pk / 2:
                return "syn-scan" if len(self.distinct) >= 8 else "service-probe"
            if n[C_UDP] > pk / 2:
                return "udp-scan"
            return "scan"
        if c == "dos":
            if self.is_reflection:
                return "reflection"
            if n[C_SYN] + n[C_SYNACK] > pk / 2:
                return "spoofed-syn-flood" if self.spoofed_sources else "syn-flood"
            if n[C_DNS_Q] + n[C_DNS_R] > pk / 2:
                return "dns-flood"
            if n[C_UDP] > pk / 2:
                return "spoofed-udp-flood" if self.spoofed_sources else "udp-flood"
            if n[C_ICMP_REQ] + n[C_ICMP_BACK] > pk / 2:
                return "icmp-flood"
            if n[C_TCP] > pk / 2 and n[C_SYN] >= 20:
                return "connection-exhaustion"
            return "flood"
        if c == "bruteforce":
            name = SERVICE_NAMES.get(port, "")
            name = {"https": "http"}.get(name, name)
            return name if name in KINDS["bruteforce"] else "login-guessing"
        if c == "spoofing":
            if n[C_RA] > 0 and n[C_RA] * 2 >= pk - n[C_ARP_REP] - n[C_ARP_REQ]:
                return "rogue-router-advertisement"
            if n[C_ARP_REP] + n[C_ARP_REQ] > 0 and self.claimed:
                return "arp-poisoning"
            if n[C_DNS_R] > 0:
                return "dns-forgery"
            return "spoofing"
        if c == "exfiltration":
            if n[C_DNS_Q] + n[C_DNS_R] > pk / 2:
                return "dns-tunnel"
            if n[C_ICMP_REQ] + n[C_ICMP_BACK] > pk / 2:
                return "icmp-tunnel"
            return "bulk-upload"
        return KINDS.get(c, ("generic",))[0]

    @property
    def duration(self) -> float:
        return max(0.0, self.last_time - self.first_time)

    def evidence(self) -> str:
        """One sentence with numbers, from the behaviour counted for this incident."""
        n, pk, dur = self.n, max(self.packets, 1), self.duration
        kind = self.kind or self.classify_kind()
        victim = (self.victims or ["?"])[0]
        ports = len({p for p in self.ports})
        d = f"in {dur:,.1f} s"
        if self.cls_name == "recon":
            if kind == "arp-sweep":
                return (f"ARP who-has for {self._capped(self.distinct_peers)} addresses {d}, "
                        f"{n[C_ARP_REP]:,} answered")
            if kind == "icmp-sweep":
                return f"ICMP echo to {self._capped(self.distinct_peers)} hosts {d}, {n[C_ICMP_BACK]:,} replies"
            probes = max(n[C_SYN], 1)
            rst = 100.0 * n[C_RST] / probes
            return (f"{n[C_SYN]:,} SYN probes to {self._capped(len(self.distinct))} distinct ports/hosts "
                    f"({self._capped(self.distinct_peers)} hosts, e.g. {victim}) {d}, {rst:.0f}% answered by RST, "
                    f"{n[C_SYNACK]:,} SYN/ACK")
        if self.cls_name == "dos":
            head = f"{self.packets:,} packets ({_size(self.bytes)}) to {victim} {d}, peak {self.peak:,} pkt/s"
            if kind == "reflection":
                return head + f", responses from {self._capped(self.distinct_peers)} reflectors " \
                              f"(e.g. {', '.join(self.top_peers(3))})"
            if self.spoofed_sources:
                macs = ", ".join(m for m, _ in self.macs.most_common(2) if m)
                return head + f", from {self._capped(self.distinct_peers)} distinct sources" + \
                    (f" (sent by MAC {macs})" if macs else "")
            share = 100.0 * n[C_SYN] / pk
            return head + f", {share:.0f}% SYN, from {', '.join(self.top_peers(2)) or '?'}"
        if self.cls_name == "bruteforce":
            conns = len(self.distinct)
            sizes = sorted(self.conn_bytes.values())
            med = sizes[len(sizes) // 2] if sizes else 0
            svc = " + ".join(self.services[:2]) or "?"
            fails = f", {n[C_AUTHFAIL]:,} refused logins" if n[C_AUTHFAIL] else ""
            return (f"{self._capped(conns)} {svc} connections from {self.key} to {victim} {d}, "
                    f"median {_size(med)} each{fails}")
        if self.cls_name == "spoofing":
            if kind == "rogue-router-advertisement":
                return f"{n[C_RA]:,} router advertisements from MAC {self.key} {d}"
            claimed = ", ".join(ip for ip, _ in self.claimed.most_common(3))
            dns = f", {n[C_DNS_R]:,} forged DNS answers" if n[C_DNS_R] else ""
            arp = n[C_ARP_REP] + n[C_ARP_REQ]
            if claimed:
                return (f"MAC {self.key} claimed {claimed} in {arp:,} ARP packets to "
                        f"{', '.join(self.top_peers(3)) or '?'} {d}{dns}")
            return f"{self.packets:,} forged packets from MAC {self.key} {d}{dns}"
        if self.cls_name == "exfiltration":
            if kind == "dns-tunnel" and n[C_DNS_Q]:
                return (f"{n[C_DNS_Q]:,} DNS queries from {self.key} (mean name length "
                        f"{n[C_DNS_LEN] / n[C_DNS_Q]:.0f}) to {victim} {d}, {_size(n[C_FWD_BYTES])} out")
            if kind == "dns-tunnel":
                return (f"{n[C_DNS_R]:,} DNS answers between {self.key} and {victim} {d} "
                        f"({_size(n[C_REV_BYTES])} in, {_size(n[C_FWD_BYTES])} out)")
            if kind == "icmp-tunnel":
                return (f"{n[C_ICMP_REQ]:,} ICMP echo requests from {self.key} to {victim} {d}, "
                        f"mean payload {n[C_ICMP_LEN] / max(n[C_ICMP_REQ] + n[C_ICMP_BACK], 1):.0f} B")
            return f"{_size(n[C_FWD_BYTES])} sent from {self.key} to {victim} {d} ({self.packets:,} packets)"
        return f"{self.packets:,} {self.cls_name} packets involving {self.key} {d}"

    def to_dict(self, classes: Sequence[str] | None = None) -> dict:
        d = {
            "id": self.id, "class": self.cls_name, "kind": self.kind or self.classify_kind(),
            "state": "active" if self.state == "active" else "ended",
            "severity": self.rule.severity,
            "attacker": self.attacker or None,
            "victims": self.victims,
            "key_role": self.rule.role,
            "services": self.services,
            "first_frame": self.first_frame, "last_frame": self.last_frame,
            "open_frame": self.open_frame,
            "first_time": self.first_time, "last_time": self.last_time,
            "packets": self.packets, "bytes": self.bytes, "peak_pps": self.peak,
            "distinct_peers": self.distinct_peers,
            "confidence": round(self.confidence, 4),
            "evidence": self.evidence(),
        }
        if self.rule.role == "victim":
            d["attackers"] = [] if (self.spoofed_sources or self.is_reflection) else self.top_peers(5)
            d["spoofed_sources"] = self.spoofed_sources
            if self.is_reflection:
                d["reflectors"] = self.top_peers(5)
            d["source_macs"] = [m for m, _ in self.macs.most_common(3) if m]
        if self.cls_name == "spoofing":
            d["attacker_mac"] = self.key if ":" in self.key and "." not in self.key else None
            d["claimed_ips"] = [ip for ip, _ in self.claimed.most_common(5)]
        if self.end_reason:
            d["end_reason"] = self.end_reason
        return d


def _size(b: float) -> str:
    b = float(b)
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= f:
            return f"{b / f:.1f} {unit}"
    return f"{b:.0f} B"


@dataclass
class IncidentEvent:
    """``kind`` is "opened", "updated" or "closed"; ``frame`` is the frame that caused it (for a
    quiet-period close: the first packet later than the quiet period); ``incident`` the track."""

    kind: str
    frame: int
    time: float
    incident: Track
    snapshot: dict


_ORDER = {"closed": 0, "opened": 1, "updated": 2}


class IncidentEngine:
    """Turns the classified packets of one run into incidents (see the module doc)."""

    def __init__(self, classes: Sequence[str], normal_index: int = 0, *, rules: dict[str, Rule] | None = None,
                 window: float = WINDOW, quiet: float = QUIET):
        self.classes = list(classes)
        self.normal_index = normal_index
        rules = CLASS_RULES if rules is None else rules
        self.rules = [rules.get(c, DEFAULT_RULE) for c in self.classes]
        self.window, self.quiet = window, quiet
        self.tracks: dict[tuple[int, str], Track] = {}
        self.ended: list[Track] = []
        self.opened = 0           # incidents ever opened
        self.dropped = 0          # ended incidents no longer kept (MAX_KEPT)
        self.now = -np.inf        # monotonic packet time
        self._seq = itertools.count()
        self._deadlines: list = []  # (deadline, seq, track)
        self._poisoners: set = set()        # MACs that claimed another host's IP
        self._owner: dict = {}              # IP -> MAC of its first ARP claim
        self._impostor: dict = {}           # IP -> the MAC that claimed it against its owner
        self._ra_owner: str | None = None   # MAC of the first router advertisement seen
        self._events: list[IncidentEvent] = []
        self.assigned: list = []            # see update()

    # --- public ------------------------------------------------------------------------------------
    @property
    def active(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.state == "active"]

    def incidents(self) -> list[Track]:
        """Every incident kept (ended and active), in order of opening."""
        return sorted(self.ended + self.active, key=lambda t: t.id)

    def update(self, cb) -> list[IncidentEvent]:
        """Process one classified batch (any size); returns its events in stream order."""
        p = cb.packets
        n = len(cb)
        if n == 0:
            return []
        t = np.asarray(p["time_epoch"], dtype=np.float64)
        t = np.where(np.isfinite(t), t, -np.inf)
        t = np.maximum.accumulate(np.concatenate([[self.now], t]))[1:]
        if not np.isfinite(t[0]):
            t = np.where(np.isfinite(t), t, 0.0)
        frames = np.asarray(p["frame_number"])
        self._t, self._frames = t, frames
        self.assigned = []   # (frame numbers, Track) of this batch's anomalous rows (--write-flagged)
        if self._ra_owner is None:   # the first router advertisement's sender is the router
            ra = np.flatnonzero((p["ip_proto"] == 58) & (p["icmp_type"] == 134))
            if len(ra):
                self._ra_owner = str(p["eth_src"][ra[0]])
        idx = np.flatnonzero(cb.anomaly)
        self._arp_learnt = False
        if len(idx):
            self._process(cb, idx, t)
        if not self._arp_learnt:   # no spoofing rows in this batch: just learn the ARP senders
            arp = np.flatnonzero(p["arp_opcode"] >= 0)
            if len(arp):
                hw, ip, es = p["arp_src_hw"][arp].tolist(), p["arp_src_ip"][arp].tolist(), p["eth_src"][arp].tolist()
                for a, h, e in zip(ip, hw, es):
                    self._learn(a, h or e)
        self.now = float(t[-1])
        self._expire(float(t[-1]))
        return self._flush()

    def finish(self) -> list[IncidentEvent]:
        """Close every active incident (end of the source)."""
        for tr in sorted(self.tracks.values(), key=lambda x: (x.last_frame, x.seq)):
            if tr.state == "active":
                self._close(tr, tr.last_frame, tr.last_time, "end of capture")
        self.tracks.clear()
        self._deadlines.clear()
        return self._flush()

    # --- internals -----------------------------------------------------------------------------------
    def _flush(self) -> list[IncidentEvent]:
        # stream order; closings caused by the same packet in the order their incidents began
        ev = sorted(self._events, key=lambda e: (e.frame, _ORDER[e.kind], e.incident.first_frame, e.incident.seq))
        self._events = []
        out = []
        for e in ev:
            if e.kind == "opened":
                self.opened += 1
                e.incident.id = self.opened
            e.snapshot["id"] = e.incident.id
            out.append(e)
        return out

    def _emit(self, kind: str, tr: Track, frame: int, time: float) -> None:
        self._events.append(IncidentEvent(kind, int(frame), float(time), tr, tr.to_dict()))

    def _close(self, tr: Track, frame: int, time: float, reason: str) -> None:
        tr.state = "ended"
        tr.end_reason = reason
        self._emit("closed", tr, frame, time)
        self.ended.append(tr)
        if len(self.ended) > MAX_KEPT:
            self.ended.pop(0)
            self.dropped += 1

    def _cause(self, deadline: float) -> tuple[int, float] | None:
        """Frame and time of the first packet of the current batch later than ``deadline``."""
        k = int(np.searchsorted(self._t, deadline, side="right"))
        if k >= len(self._t):
            return None
        return int(self._frames[k]), float(self._t[k])

    def _expire(self, now: float) -> None:
        dl = self._deadlines
        while dl and dl[0][0] < now:
            deadline, _, tr = heapq.heappop(dl)
            if self.tracks.get((tr.cls, tr.key)) is not tr or tr.last_time + self.quiet != deadline:
                continue  # stale entry
            self._end_track(tr, deadline)

    def _end_track(self, tr: Track, deadline: float) -> None:
        del self.tracks[(tr.cls, tr.key)]
        if tr.cls_name == "spoofing":
            self._poisoners.discard(tr.key)
        if tr.state == "active":
            cause = self._cause(deadline)
            frame, time = cause if cause is not None else (tr.last_frame, tr.last_time)
            self._close(tr, frame, time, f"quiet for {self.quiet:.0f} s")

    def _process(self, cb, idx: np.ndarray, tall: np.ndarray) -> None:
        p = cb.packets
        t = tall[idx]
        cls = cb.predicted[idx]
        ip_src, ip_dst = p["ip_src"][idx], p["ip_dst"][idx]
        eth_src, eth_dst = p["eth_src"][idx], p["eth_dst"][idx]
        is_arp = p["arp_opcode"][idx] >= 0
        arp_op = p["arp_opcode"][idx]
        noip = ip_src == ""
        if noip.any():
            src = np.where(noip, np.where(is_arp & (p["arp_src_ip"][idx] != ""), p["arp_src_ip"][idx], eth_src),
                           ip_src)
            dst = np.where(noip, np.where(is_arp & (p["arp_dst_ip"][idx] != ""), p["arp_dst_ip"][idx], eth_dst),
                           ip_dst)
        else:
            src, dst = ip_src, ip_dst
        sp = np.where(p["tcp_srcport"][idx] >= 0, p["tcp_srcport"][idx], p["udp_srcport"][idx])
        dp = np.where(p["tcp_dstport"][idx] >= 0, p["tcp_dstport"][idx], p["udp_dstport"][idx])
        proto = p["ip_proto"][idx]
        flags = p["tcp_flags"][idx]
        icmp = p["icmp_type"][idx]
        tcp = proto == 6
        syn = tcp & (flags >= 0) & ((flags & 0x02) != 0)
        ack = tcp & (flags >= 0) & ((flags & 0x10) != 0)
        rst = tcp & (flags >= 0) & ((flags & 0x04) != 0)
        svc_s = _lookup(_SVC, sp)
        svc_d = _lookup(_SVC, dp)
        # is the sender the client? default yes; replies, errors and packets from a service port: no
        client_src = np.ones(len(idx), dtype=bool)
        has_ports = (sp >= 0) & (dp >= 0)
        back = has_ports & ((svc_s & ~svc_d) | (svc_s & svc_d & (sp < dp)))
        client_src &= ~back
        client_src = np.where(syn & ~ack, True, np.where(syn & ack, False, client_src))
        icmp4 = proto == 1
        icmp6 = proto == 58
        client_src &= ~(icmp4 & _lookup(_BACK4, icmp))
        client_src &= ~(icmp6 & _lookup(_BACK6, icmp))
        client_src &= ~(is_arp & (arp_op == 2))
        client = np.where(client_src, src, dst)
        server = np.where(client_src, dst, src)
        server_port = np.where(client_src, dp, sp)
        client_port = np.where(client_src, sp, dp)
        udp = proto == 17
        refl = udp & ~client_src & _lookup(_REFL, sp) & ~_lookup(_REFL, dp)

        names = self.classes
        key = np.empty(len(idx), dtype=object)
        peer = np.empty(len(idx), dtype=object)
        fwd = np.ones(len(idx), dtype=bool)          # the packet was sent by the key entity
        claimed = np.full(len(idx), "", dtype=object)
        for c in np.unique(cls).tolist():
            m = cls == c
            role = self.rules[c].role
            name = names[c] if c < len(names) else str(c)
            if name == "spoofing":
                self._spoof_keys(m, key, peer, fwd, claimed, is_arp, eth_src, eth_dst, src, dst, p, idx)
            elif role == "victim":
                key[m] = server[m]
                peer[m] = client[m]
                fwd[m] = ~client_src[m]
                r = m & refl
                if r.any():  # responses from reflection ports: keyed by their destination
                    key[r] = dst[r]
                    peer[r] = src[r]
                    fwd[r] = False
            else:
                key[m] = client[m]
                peer[m] = server[m]
                fwd[m] = client_src[m]
        # group rows by (class, key), in order of first appearance
        _, kinv = _codes(key)
        ncls = len(self.classes) + 1
        _, first, inv = np.unique(kinv * ncls + cls, return_index=True, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(first) + 1))
        cols = dict(t=t, frame=p["frame_number"][idx], flen=p["frame_len"][idx], conf=cb.confidence[idx],
                    peer=peer, server_port=server_port, client_port=client_port, fwd=fwd, syn=syn, ack=ack,
                    rst=rst, tcp=tcp, icmp4=icmp4, icmp6=icmp6, icmp=icmp, is_arp=is_arp, arp_op=arp_op, udp=udp,
                    dns_q=(p["dns_flags"][idx] >= 0) & ((p["dns_flags"][idx] & 0x8000) == 0),
                    dns_r=(p["dns_flags"][idx] >= 0) & ((p["dns_flags"][idx] & 0x8000) != 0),
                    dns_len=_lengths(p["dns_qry_name"][idx], p["dns_flags"][idx] >= 0),
                    authfail=_authfail(p, idx), eth_src=eth_src, claimed=claimed, refl=refl,
                    ip_len=p["ip_len"][idx], dst=dst, ip_src=ip_src, ip_dst=ip_dst, sp=sp, dp=dp, proto=proto,
                    icmp_code=p["icmp_code"][idx], protocols=p["protocols"][idx])
        cols["static"] = _static_counters(cols)
        groups = []
        for g in range(len(first)):
            rows = order[bounds[g]:bounds[g + 1]]
            c = int(cls[rows[0]])
            groups.append((int(rows[0]), c, key[rows[0]], rows))
        # reflection groups last, so the attacker of a running incident is known
        groups.sort(key=lambda x: (bool(refl[x[3][0]]) and self.rules[x[1]].role == "victim", x[0]))
        for _, c, k, rows in groups:
            if names[c] == "exfiltration" and (c, k) not in self.tracks:
                relay = self._attacker_incident(c, k, 3)   # a resolver forwarding a running tunnel's queries
                if relay is not None:
                    k = relay
            if self.rules[c].role == "victim" and refl[rows[0]]:
                host = self._attacker_incident(c, k)
                if host is not None:  # the answers to a running flood's requests (DNS water torture)
                    k = host
                    cols["peer"][rows] = cols["dst"][rows]
                    cols["fwd"][rows] = True
                    cols["refl"][rows] = False
            self._group(c, k, rows, cols)

    def _attacker_incident(self, c: int, host: str, top: int = 1) -> str | None:
        """The key of a running incident of class ``c`` with ``host`` among its ``top`` peers."""
        for (cc, k), tr in self.tracks.items():
            if cc == c and k != host and any(p == host for p, _ in tr.peers.most_common(top)):
                return k
        return None

    def _spoof_keys(self, m, key, peer, fwd, claimed, is_arp, eth_src, eth_dst, src, dst, p, idx) -> None:
        """Spoofing rows: keyed by the forging MAC (see module doc). ARP senders of the whole batch
        are learnt in frame order (first claim of an IP = its owner), interleaved with these rows."""
        arp_all = np.flatnonzero(p["arp_opcode"] >= 0)
        rows = np.flatnonzero(m)
        mine = idx[rows]
        arp_hw, arp_sip, arp_dip = p["arp_src_hw"], p["arp_src_ip"], p["arp_dst_ip"]
        owner, impostor, known = self._owner, self._impostor, self._poisoners
        dns_r = (p["dns_flags"][idx] >= 0) & ((p["dns_flags"][idx] & 0x8000) != 0)
        learn = arp_all[~np.isin(arp_all, mine)].tolist()
        self._arp_learnt = True
        if len(impostor) > MAX_DISTINCT:
            impostor.clear()
        li = 0
        for i, b in zip(rows.tolist(), mine.tolist()):
            while li < len(learn) and learn[li] < b:
                self._learn(arp_sip[learn[li]], arp_hw[learn[li]] or p["eth_src"][learn[li]])
                li += 1
            if is_arp[i]:
                mac = arp_hw[b] or eth_src[i]
                ip = arp_sip[b] if arp_sip[b] != "0.0.0.0" else ""
                own = owner.get(ip) if ip else None
                if mac in known or (own is not None and own != mac):
                    key[i], fwd[i] = mac, True
                    peer[i] = arp_dip[b] if arp_dip[b] and arp_dip[b] != "0.0.0.0" else eth_dst[i]
                    if ip and own != mac:
                        claimed[i] = ip
                        impostor[ip] = mac
                    known.add(mac)
                elif ip in impostor:                           # the real owner answering
                    key[i], peer[i], fwd[i] = impostor[ip], ip, False
                elif eth_dst[i] in known:                      # a victim answering the poisoner
                    key[i], peer[i], fwd[i] = eth_dst[i], ip or src[i], False
                else:
                    key[i], fwd[i] = mac, True
                    peer[i] = arp_dip[b] if arp_dip[b] and arp_dip[b] != "0.0.0.0" else eth_dst[i]
                if ip:
                    self._learn(ip, mac)
            elif eth_src[i] in known:
                key[i], peer[i], fwd[i] = eth_src[i], dst[i], True
                if dns_r[i] and owner.get(src[i]) not in (None, eth_src[i]):   # forged answer
                    claimed[i] = src[i]
            elif eth_dst[i] in known:
                key[i], peer[i], fwd[i] = eth_dst[i], src[i], False
            elif src[i] in impostor and owner.get(src[i]) == eth_src[i]:   # the real owner's own packets
                key[i], peer[i], fwd[i] = impostor[src[i]], src[i], False
            else:
                key[i], peer[i], fwd[i] = eth_src[i], dst[i], True
                if dns_r[i] and owner.get(src[i]) not in (None, eth_src[i]):   # forged answer
                    claimed[i] = src[i]
        for b in learn[li:]:
            self._learn(arp_sip[b], arp_hw[b] or p["eth_src"][b])

    def _learn(self, ip: str, mac: str) -> None:
        if ip and ip != "0.0.0.0" and mac and ip not in self._owner and len(self._owner) < MAX_DISTINCT:
            self._owner[ip] = mac

    def _group(self, c: int, key: str, rows: np.ndarray, cols: dict) -> None:
        t = cols["t"][rows]
        tr = self.tracks.get((c, key))
        start = 0
        while start < len(rows):
            if tr is not None and t[start] - tr.last_time > self.quiet:
                self._end_track(tr, tr.last_time + self.quiet)
                tr = None
            if tr is None:
                if len(self.tracks) >= MAX_TRACKS:
                    self._evict()
                tr = Track(c, self.classes[c] if c < len(self.classes) else str(c), key, self.rules[c],
                           next(self._seq))
                self.tracks[(c, key)] = tr
            # rows up to the next quiet gap belong to this track
            gaps = np.flatnonzero(np.diff(t[start:]) > self.quiet)
            stop = start + (int(gaps[0]) + 1 if len(gaps) else len(rows) - start)
            self._segment(tr, rows[start:stop], cols)
            heapq.heappush(self._deadlines, (tr.last_time + self.quiet, tr.seq, tr))
            start = stop

    def _evict(self) -> None:
        """Too many keys: forget the pending one idle longest (active incidents are kept)."""
        pending = [tr for tr in self.tracks.values() if tr.state == "pending"]
        if pending:
            old = min(pending, key=lambda x: (x.last_time, x.seq))
            del self.tracks[(old.cls, old.key)]

    def _segment(self, tr: Track, rows: np.ndarray, cols: dict) -> None:
        """Rows of one key without a quiet gap: update, opening and update events at exact rows."""
        pos = 0
        while pos < len(rows):
            if tr.state == "pending":
                j = self._open_index(tr, rows[pos:], cols)
                if j is None:
                    self._apply(tr, rows[pos:], cols)
                    self._remember(tr, cols["t"][rows[pos:]])
                    return
                self._apply(tr, rows[pos:pos + j + 1], cols)
                pos += j + 1
                tr.state = "active"
                tr.open_time, tr.open_frame = tr.last_time, tr.last_frame
                tr.rep = _representative(tr, int(rows[pos - 1]), cols)
                tr.kind = tr.classify_kind()
                tr.next_update = tr.packets * UPDATE_EVERY
                tr.recent = np.empty(0)
                self._emit("opened", tr, tr.last_frame, tr.last_time)
            else:
                need = tr.next_update - tr.packets
                if need > len(rows) - pos:
                    self._apply(tr, rows[pos:], cols)
                    return
                self._apply(tr, rows[pos:pos + need], cols)
                pos += need
                tr.next_update *= UPDATE_EVERY
                self._emit("updated", tr, tr.last_frame, tr.last_time)

    def _remember(self, tr: Track, t: np.ndarray) -> None:
        k = tr.rule.packets - 1
        if k > 0:
            tr.recent = np.concatenate([tr.recent, t])[-k:]

    def _distinct_keys(self, tr: Track, rows: np.ndarray, cols: dict) -> np.ndarray | None:
        """Per-row identity of what must be distinct for the class (probe target / connection)."""
        name = tr.cls_name
        if name == "recon":
            peers, inv = _codes(cols["peer"][rows])
            ph = np.array([zlib.crc32(str(x).encode()) for x in peers], dtype=np.int64)[inv]
            return ph * 65537 + cols["server_port"][rows] + 1
        if name == "bruteforce":
            peers, inv = _codes(cols["peer"][rows])
            ph = np.array([zlib.crc32(str(x).encode()) for x in peers], dtype=np.int64)[inv]
            return ph * 65537 + cols["client_port"][rows] + 1
        return None

    def _open_index(self, tr: Track, rows: np.ndarray, cols: dict) -> int | None:
        """Index (into ``rows``) of the packet that opens the incident, or None."""
        rule = tr.rule
        t = cols["t"][rows]
        allt = np.concatenate([tr.recent, t])
        off = len(tr.recent)
        K = rule.packets
        if len(allt) < K:
            return None
        ok = np.zeros(len(rows), dtype=bool)
        j = np.arange(max(K - 1, off), len(allt))
        ok[j - off] = allt[j] - allt[j - K + 1] <= self.window
        if rule.distinct > 1:
            keys = self._distinct_keys(tr, rows, cols)
            have = tr.distinct
            new = np.fromiter((k not in have for k in keys.tolist()), dtype=bool, count=len(keys))
            _, first = np.unique(np.where(new, keys, -1), return_index=True)
            firsts = np.sort(first[np.where(new, keys, -1)[first] != -1]) if new.any() else np.empty(0, int)
            cum = np.searchsorted(firsts, np.arange(len(rows)), side="right")
            ok &= (len(have) + cum) >= rule.distinct
        if tr.cls_name == "spoofing":   # an impersonation must be seen: a claim against an owner, a rogue RA
            ev = (cols["claimed"][rows] != "") | (cols["icmp6"][rows] & (cols["icmp"][rows] == 134)
                                                  & (cols["eth_src"][rows] != self._ra_owner))
            ok &= (tr.impersonations + np.cumsum(ev)) >= 1
        hit = np.flatnonzero(ok)
        return int(hit[0]) if len(hit) else None

    def _apply(self, tr: Track, rows: np.ndarray, cols: dict) -> None:
        """Add rows (one key, in order) to the track's counts."""
        if not len(rows):
            return
        t = cols["t"][rows]
        fr = cols["frame"][rows]
        self.assigned.append((fr, tr))
        if tr.packets == 0:
            tr.first_time, tr.first_frame = float(t[0]), int(fr[0])
        tr.last_time, tr.last_frame = float(t[-1]), int(fr[-1])
        k = len(rows)
        tr.packets += k
        flen = cols["flen"][rows]
        tr.bytes += int(flen[flen > 0].sum())
        tr.conf_sum += float(cols["conf"][rows].sum())
        peers, inv = _codes(cols["peer"][rows])
        counts = np.bincount(inv, minlength=len(peers))
        _capped_update(tr.peers, peers, counts.tolist())
        if len(tr.peer_set) < MAX_DISTINCT:
            tr.peer_set.update(peers[: MAX_DISTINCT - len(tr.peer_set)])
        sport = cols["server_port"][rows]
        sp = sport[sport >= 0]
        if len(sp):
            u, cnt = np.unique(sp, return_counts=True)
            _capped_update(tr.ports, u.tolist(), cnt.tolist())
        dk = self._distinct_keys(tr, rows, cols)
        if dk is not None and len(tr.distinct) < MAX_DISTINCT:
            tr.distinct.update(dk.tolist()[: MAX_DISTINCT])
            if tr.cls_name == "bruteforce" and len(tr.conn_bytes) < MAX_DISTINCT:
                u, inv2 = np.unique(dk, return_inverse=True)
                sums = np.bincount(inv2, weights=flen.clip(0), minlength=len(u))
                for a, b in zip(u.tolist(), sums.tolist()):
                    tr.conn_bytes[a] = tr.conn_bytes.get(a, 0) + int(b)
        fwd = cols["fwd"][rows]
        macs = cols["eth_src"][rows][~fwd] if tr.rule.role == "victim" else cols["eth_src"][rows][fwd]
        if len(macs):
            mu, minv = _codes(macs)
            _capped_update(tr.macs, mu, np.bincount(minv).tolist())
        cl = cols["claimed"][rows]
        cl = cl[cl != ""]
        tr.impersonations += len(cl)
        if len(cl):
            cu, cinv = _codes(cl)
            _capped_update(tr.claimed, cu, np.bincount(cinv).tolist())
        n = tr.n
        n += cols["static"][rows].sum(axis=0)      # the counters that do not depend on the key's side
        n[C_RST] += int((cols["rst"][rows] & ~fwd).sum())     # RSTs answering the key (not its own)
        dr = cols["dns_r"][rows]
        n[C_DNS_R] += int((dr & fwd).sum() if tr.cls_name == "spoofing" else dr.sum())
        fb = flen.clip(0)
        fwd_bytes = int(fb[fwd].sum())
        n[C_FWD_BYTES] += fwd_bytes
        n[C_REV_BYTES] += int(fb.sum()) - fwd_bytes
        n[C_FWD_PKTS] += int(fwd.sum())
        tr.reflection += int(cols["refl"][rows].sum())
        sec = np.floor(t).astype(np.int64)
        u, cnt = np.unique(sec, return_counts=True)
        if u[0] == tr.bucket:
            cnt[0] += tr.bucket_count
        tr.peak = max(tr.peak, int(cnt.max()))
        tr.bucket, tr.bucket_count = int(u[-1]), int(cnt[-1])


def _representative(tr: Track, r: int, cols: dict) -> dict:
    """The opening packet's addresses, ports (ICMP: type/code) and protocol, attacker side first;
    ``cid`` is its Community ID (computed in the packet's own direction, as tshark does)."""
    from .community_id import community_id

    proto = int(cols["proto"][r])
    src, dst = str(cols["ip_src"][r]), str(cols["ip_dst"][r])
    icmp = proto in (1, 58)
    sp = int(cols["icmp"][r]) if icmp else int(cols["sp"][r])
    dp = int(cols["icmp_code"][r]) if icmp else int(cols["dp"][r])
    sent_by_attacker = bool(cols["fwd"][r]) == (tr.rule.role == "attacker")
    rep = {"ip": bool(src), "proto": proto, "frame": int(cols["frame"][r]),
           "proto_name": "ARP" if cols["is_arp"][r] else str(cols["protocols"][r]).split(":")[-1].upper(),
           "cid": community_id(src, dst, proto, sp, dp) if src else None}
    if not sent_by_attacker and not icmp:
        src, dst, sp, dp = dst, src, dp, sp
    elif not sent_by_attacker:
        src, dst = dst, src
    rep.update(src=src, dst=dst, sport=sp, dport=dp)
    return rep


def _static_counters(cols: dict) -> np.ndarray:
    """(rows, N_COUNTERS) int64: per anomalous packet, the evidence counters that do not depend on
    which side of the packet the key is (summed per slice in ``_apply``)."""
    n = len(cols["t"])
    m = np.zeros((n, N_COUNTERS), dtype=np.int64)
    syn, ack = cols["syn"], cols["ack"]
    icmp, ic4, ic6 = cols["icmp"], cols["icmp4"], cols["icmp6"]
    req = (ic4 & _lookup(_REQ4, icmp)) | (ic6 & (icmp == 128))
    back = (ic4 & _lookup(_BACK4, icmp)) | (ic6 & _lookup(_BACK6, icmp))
    m[:, C_SYN] = syn & ~ack
    m[:, C_SYNACK] = syn & ack
    m[:, C_TCP] = cols["tcp"]
    m[:, C_ICMP_REQ] = req
    m[:, C_ICMP_BACK] = back
    m[:, C_ICMP_LEN] = np.where(req | back, cols["ip_len"].clip(28) - 28, 0)
    m[:, C_RA] = ic6 & (icmp == 134)
    m[:, C_ARP_REQ] = cols["arp_op"] == 1
    m[:, C_ARP_REP] = cols["arp_op"] == 2
    m[:, C_UDP] = cols["udp"]
    m[:, C_DNS_Q] = cols["dns_q"]
    m[:, C_DNS_LEN] = np.where(cols["dns_q"], cols["dns_len"], 0)
    m[:, C_AUTHFAIL] = cols["authfail"]
    return m


def _lengths(names: np.ndarray, has: np.ndarray) -> np.ndarray:
    out = np.zeros(len(names), dtype=np.int64)
    k = np.flatnonzero(has)
    if len(k):
        out[k] = np.fromiter(map(len, names[k].tolist()), dtype=np.int64, count=len(k))
    return out


def _authfail(p, idx: np.ndarray) -> np.ndarray:
    mq = p["mqtt_conack"][idx]
    ftp = p["ftp_code"][idx]
    http = p["http_status"][idx]
    return (mq > 0) | (ftp == 530) | (http == 401) | (http == 403)


def incident_id_hash(source: str, tr: Track) -> int:
    """A stable positive int64 for an incident (EVE ``flow_id``): the same capture gives the same ids."""
    h = zlib.crc32(f"{tr.cls_name}|{tr.key}|{tr.first_frame}".encode())
    h2 = zlib.crc32(f"{source}|{tr.first_time:.6f}".encode())
    return ((h << 31) ^ h2) & 0x7FFFFFFFFFFFFFFF
