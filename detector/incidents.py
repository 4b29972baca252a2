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
recon, ``distinct`` connections and evidence of guessing for brute force (``_guessing``), an
impersonation for spoofing, tunnel-like traffic or an upload to an address no DNS answer named for
exfiltration (``_exfil_evidence``); it *ends* after ``QUIET`` seconds without one (a slow scan:
``SCAN_HORIZON``).
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
import operator
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .community_id import community_id
from .features import address_class

WINDOW = 60.0      # s of packet time: the opening packets must fall within this window
QUIET = 60.0       # s without an anomalous packet of the key: the incident ends
MAX_TRACKS = 4096  # keys tracked at once (pending + active)
MAX_DISTINCT = 20_000
MAX_COUNTER = 256
MAX_KEPT = 10_000
REPLY_WAIT = 60.0  # s: an ARP request for an address that sent IP traffic to the asker this recently awaits a reply
MAX_HEARD_ROWS = 200_000     # packets of the last REPLY_WAIT seconds kept for that (references, hashed on demand)
MAX_NAMED = 65_536  # addresses named by DNS answers remembered (exfiltration: uploads to bare addresses)
PING_PAYLOAD = 64   # B: an ICMP tunnel's echoes carry more on average than any standard ping (Linux/macOS/BusyBox
                    # 56, Windows 32, 48 and 64 in other tools): a host pinging its gateway is no tunnel
UPLOAD_MIN_BYTES = 16_384  # B the key sent (frame bytes of its flagged packets) before a bulk upload can open: an
                           # upload moves data; a TLS handshake and a request or a DoH exchange are 1-5 kB
_NEVER = np.iinfo(np.int64).max
OVERLAP = 5.0      # s: a pending track whose pair's running incident of another class had a packet this recently
                   # and has more packets is that incident's minority (see IncidentEngine._dominated)
RELAY_RATIO = 2    # a resolver's flagged packets up to this many times a DNS tunnel's it relays stay with the tunnel
UPDATE_EVERY = 10  # an ``updated`` event each time the packet count grows by this factor
MAX_VICTIMS = 10   # victims named by an attacker's incident (its peers with the most packets)
# Upload after an attack (``Uploads``): a correlation over packets the model calls normal
BULK_BYTES = 1_000_000     # B of data segments between a host and an external peer that are one bulk exchange
                           # (a file, not a request or a form: the lab's smallest HTTPS POST is 4 MB)
SEGMENT_MIN = 512          # B: a TCP segment this large carries data (ACKs, handshakes and most requests are smaller)
UPLOAD_RATIO = 4           # an upload: the host sent at least this many times the data segments' bytes it received
LOOKBACK = 1800.0          # s: a host is an attacker for the rule while one of its incidents had a packet this recently
MAX_CONTACTS = 65_536      # (host, external peer) pairs whose first SYN is remembered (least recently used dropped)
MAX_PAIRS = 4096           # uploads after an attack running at once (the oldest dropped)

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
    if len(v) and (v.min() < -1 or v.max() >= len(table)):
        v = np.where((v >= 0) & (v < len(table) - 1), v, len(table) - 1)
    return table[v]     # (-1 is the last slot: "missing")


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
    "recon": ("scan", "syn-scan", "udp-scan", "arp-sweep", "icmp-sweep", "service-probe", "fin-scan", "null-scan",
              "xmas-scan", "slow-scan"),
    "dos": ("flood", "syn-flood", "spoofed-syn-flood", "udp-flood", "icmp-flood", "reflection",
            "connection-exhaustion", "dns-flood", "spoofed-udp-flood", "dhcp-starvation"),
    "bruteforce": ("login-guessing", "ssh", "telnet", "ftp", "http", "mqtt"),
    "spoofing": ("spoofing", "arp-poisoning", "dns-forgery", "rogue-router-advertisement"),
    "exfiltration": ("exfiltration", "dns-tunnel", "icmp-tunnel", "bulk-upload", "upload-after-attack"),
}

# evidence counters (index into Track.n)
# (the 0/1-per-packet ones first, then the sums of sizes: see _SMALL / _BIG)
(C_SYN, C_SYNACK, C_RST, C_ICMP_REQ, C_ICMP_BACK, C_ARP_REQ, C_ARP_REP, C_UDP, C_DNS_Q, C_AUTHFAIL, C_RA, C_DNS_R,
 C_TCP, C_FWD_PKTS, C_FIN_PROBE, C_NULL_PROBE, C_XMAS_PROBE, C_DHCP, C_FAILED, C_SURE, C_UNNAMED,
 C_DNS_LEN, C_FWD_BYTES, C_REV_BYTES, C_ICMP_LEN) = range(25)
N_COUNTERS = 25


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
        self.conf_q = 0                  # sum of confidences in units of 1 / CONF_SCALE
        self.recent: np.ndarray = np.empty(0)      # last (packets-1) times while pending
        self.peers: Counter = Counter()
        self._top: tuple = (-1, [])     # (packets, peers.most_common(MAX_VICTIMS)) at that count
        self._svc: tuple = (-1, [])     # (packets, services) at that count
        self.peer_set: set = set()
        self.client_macs: set = set()   # Ethernet sources of its DHCP client messages (DISCOVER/REQUEST)
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
        self.quiet = QUIET              # s without a packet that end it (a slow scan's: SCAN_HORIZON)
        self.lapse: tuple | None = None  # slow scan: the first packet after QUIET idle (frame, time)
        self.conn_times: dict = {}      # brute force, pending: server port -> its last new connections' times
        self.guess_rate = False         # brute force: BRUTE_CONNS connections to one service within WINDOW seen
        self.by_behaviour = False       # opened by a behaviour rule (``Behaviour``), not the class's rule
        self.scan_targets = 0           # slow scan (Behaviour): distinct targets refused / left half-open
        self.scan_since = np.inf        # slow scan: time of the source's first such failure
        self.rep: dict | None = None    # the packet that opened the incident, oriented attacker -> victim
        self.minor: dict = {}           # seq -> [label, pending track held back as part of this one (see
                                        # _dominated); its packet count once it left the engine]
        self.under: Track | None = None  # pending: the incident that held it back
        self.under_label = ""
        self.bno, self.pk0, self.lt0 = -1, 0, -np.inf   # batch number, packets and last time before it
        self.log: list = []             # its rows of this batch applied so far: (frames, times, peers) slices
        self.unsnapped: list = []       # its events whose snapshot is not made yet (see IncidentEvent)
        self.uploads: dict = {}         # UploadInfo -> [bytes sent, connections, last time] of its rows (Uploads)

    def freeze(self) -> None:
        """Make the snapshots of its events waiting for one (before the track changes: ``_apply``,
        ``_close``; or when one is read)."""
        events, self.unsnapped = self.unsnapped, []
        for e in events:
            e._snapshot = self.to_dict(secondary=False)

    def leave(self) -> None:
        """Out of the engine's tracks: a pending track held back leaves its packet count with its
        holder (not the whole track)."""
        if self.under is not None:
            held = self.under.minor.get(self.seq)
            if held is not None:
                held[1] = self.packets
            self.under = None

    # --- roles ---------------------------------------------------------------------------------
    @property
    def spoofed_sources(self) -> bool:
        """A flood whose sources are many and each rare: forged source addresses."""
        if self.rule.role != "victim" or len(self.peer_set) < 20:
            return False
        top = self.top_peer_counts()[0][1] if self.peers else 0
        return top * 4 < self.packets

    @property
    def is_reflection(self) -> bool:
        return self.rule.role == "victim" and self.reflection * 2 > self.packets

    def top_peers(self, n: int = 5) -> list[str]:
        return [p for p, _ in self.top_peer_counts(n) if p]

    def top_peer_counts(self, n: int = 5) -> list[tuple[str, int]]:
        """``peers.most_common(n)``, the first MAX_VICTIMS kept until the track's next packets."""
        if n > MAX_VICTIMS:
            return _most_common(self.peers, n)
        if self._top[0] != self.packets:
            self._top = (self.packets, _most_common(self.peers, MAX_VICTIMS))
        return self._top[1][:n]

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
        return self.top_peers(MAX_VICTIMS)

    @property
    def services(self) -> list[str]:
        """Its 4 most common server ports, named (kept until the track's next packets)."""
        if self._svc[0] != self.packets:
            out = []
            for port, _ in _most_common(self.ports, 4):
                name = SERVICE_NAMES.get(port)
                out.append(f"{name}/{port}" if name else str(port))
            self._svc = (self.packets, out)
        return list(self._svc[1])

    @property
    def confidence(self) -> float:
        return self.conf_q / CONF_SCALE / self.packets if self.packets else 0.0

    @property
    def distinct_peers(self) -> int:
        return len(self.peer_set)

    def _capped(self, n: int) -> str:
        return f"{n:,}+" if n >= MAX_DISTINCT else f"{n:,}"

    # --- kind and evidence -----------------------------------------------------------------------
    def classify_kind(self) -> str:
        n, c = self.n, self.cls_name
        pk = max(self.packets, 1)
        port = _most_common(self.ports, 1)[0][0] if self.ports else -1
        if c == "recon":
            stealth = (n[C_FIN_PROBE], n[C_NULL_PROBE], n[C_XMAS_PROBE])
            if sum(stealth) > pk / 2:
                return ("fin-scan", "null-scan", "xmas-scan")[int(np.argmax(stealth))]
            if self.by_behaviour:
                return "slow-scan"
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
            # most of what reaches the victim is DHCP client messages (the server's own OFFER/ACK
            # answers, the track's forward packets, do not dilute it)
            if n[C_DHCP] > (pk - n[C_FWD_PKTS]) / 2:
                return "dhcp-starvation"
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
            if self.correlated:
                return "upload-after-attack"
            if n[C_DNS_Q] + n[C_DNS_R] > pk / 2:
                return "dns-tunnel"
            if n[C_ICMP_REQ] + n[C_ICMP_BACK] > pk / 2:
                return "icmp-tunnel"
            return "bulk-upload"
        return KINDS.get(c, ("generic",))[0]

    @property
    def correlated(self) -> bool:
        """Opened by the upload-after-attack correlation (its exfiltration rows came from Uploads), not
        by the model."""
        return self.by_behaviour and bool(self.uploads)

    @property
    def duration(self) -> float:
        return max(0.0, self.last_time - self.first_time)

    def evidence(self, secondary: bool = True) -> str:
        """One sentence with numbers, from the behaviour counted for this incident (and with
        ``secondary`` the packets held back as part of it: ``minor``)."""
        text = self._evidence()
        if self.uploads:
            up = self._upload_evidence()
            text = up if self.correlated else f"{text}; then {up}"
        if secondary and self.minor:
            text += "; with " + ", ".join(f"{n:,} packets " + (c if c.startswith("relayed") else
                                                                 f"the model called {c}")
                                          for c, n in self.secondary().items())
        return text

    def _upload_evidence(self) -> str:
        """The uploads after an attack among its rows (``Uploads``), in words and numbers."""
        out = []
        for info, (sent, conns, last) in self.uploads.items():
            total, nc = info.sent + sent, info.conns + conns
            incs = info.incidents
            names = ", ".join(f"#{x.id} ({x.cls_name})" for x in incs[:5]) + \
                (f" and {len(incs) - 5} more" if len(incs) > 5 else "")
            over = f" over {nc:,} connection{'s' if nc != 1 else ''}" if nc > 0 else ""   # (SYNs the model did not flag)
            out.append(f"{_size(total)} sent from {info.host} to {info.peer}:{info.port} in "
                       f"{max(0.0, last - info.since):,.1f} s{over}, "
                       f"a peer it first contacted after its attack began; {info.host} is the attacker of "
                       f"incident{'s' if len(incs) != 1 else ''} {names} (correlation: the model called "
                       f"these packets normal)")
        return "; ".join(out)

    def correlated_with(self) -> list[int]:
        """Ids of the incidents that made its uploads exfiltration (``Uploads``), in order."""
        return sorted({x.id for info in self.uploads for x in info.incidents})

    def secondary(self) -> dict:
        """Label -> packets held back as part of this incident (``minor``, summed per label)."""
        out: dict = {}
        for c, x in self.minor.values():
            out[c] = out.get(c, 0) + (x if isinstance(x, int) else x.packets)
        return out

    def _evidence(self) -> str:
        n, pk, dur = self.n, max(self.packets, 1), self.duration
        kind = self.kind or self.classify_kind()
        victim = (self.victims or ["?"])[0]
        d = f"in {dur:,.1f} s"
        if self.cls_name == "recon":
            if kind == "arp-sweep":
                return (f"ARP who-has for {self._capped(self.distinct_peers)} addresses {d}, "
                        f"{n[C_ARP_REP]:,} answered")
            if kind == "icmp-sweep":
                return f"ICMP echo to {self._capped(self.distinct_peers)} hosts {d}, {n[C_ICMP_BACK]:,} replies"
            if kind in ("fin-scan", "null-scan", "xmas-scan"):
                probes = int(n[C_FIN_PROBE] + n[C_NULL_PROBE] + n[C_XMAS_PROBE])
                what = {"fin-scan": "FIN", "null-scan": "NULL (no flags)", "xmas-scan": "Xmas (FIN+PSH+URG)"}[kind]
                return (f"{probes:,} {what} probes without a handshake to {self._capped(len(self.distinct))} "
                        f"distinct ports/hosts ({self._capped(self.distinct_peers)} hosts, e.g. {victim}) {d}, "
                        f"{n[C_RST]:,} answered by RST")
            if kind == "slow-scan":
                span = max(0.0, self.last_time - min(self.scan_since, self.first_time))
                targets = max(self.scan_targets, len(self.distinct))
                return (f"probes refused or left half-open (SYN, then RST before any handshake) at {targets:,} "
                        f"distinct ports/hosts (e.g. {victim}) in {span:,.1f} s, about one every "
                        f"{span / max(targets - 1, 1):,.1f} s")
            probes = max(n[C_SYN] + n[C_FIN_PROBE] + n[C_NULL_PROBE] + n[C_XMAS_PROBE], 1)
            rst = min(100.0, 100.0 * n[C_RST] / probes)   # (stealth probes' answers count too)
            return (f"{n[C_SYN]:,} SYN probes to {self._capped(len(self.distinct))} distinct ports/hosts "
                    f"({self._capped(self.distinct_peers)} hosts, e.g. {victim}) {d}, {rst:.0f}% answered by RST, "
                    f"{n[C_SYNACK]:,} SYN/ACK")
        if self.cls_name == "dos":
            if kind == "dhcp-starvation":
                return (f"{n[C_DHCP]:,} DHCP DISCOVER/REQUEST messages from {self._capped(len(self.client_macs))} "
                        f"distinct client MACs (DHCP server {victim}) {d}, peak {self.peak:,} pkt/s")
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
            bare = ", to an address no DNS answer named" if n[C_UNNAMED] * 2 > pk else ""
            return f"{_size(n[C_FWD_BYTES])} sent from {self.key} to {victim} {d} ({self.packets:,} packets){bare}"
        return f"{self.packets:,} {self.cls_name} packets involving {self.key} {d}"

    def to_dict(self, classes: Sequence[str] | None = None, secondary: bool = True) -> dict:
        """The incident as plain data. ``secondary``: with the packets held back as part of it
        (``minor``: known once the stream is read up to them; events' snapshots leave them out, so
        that they are the same for any batch size)."""
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
            "evidence": self.evidence(secondary),
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
        if secondary and self.minor:
            d["secondary"] = self.secondary()
        if self.uploads:
            d["raised_by"] = "correlation" if self.correlated else "model"
            d["correlated_with"] = self.correlated_with()
        if self.end_reason:
            d["end_reason"] = self.end_reason
        return d


def _size(b: float) -> str:
    b = float(b)
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= f:
            return f"{b / f:.1f} {unit}"
    return f"{b:.0f} B"


class IncidentEvent:
    """``kind`` is "opened", "updated" or "closed"; ``frame`` is the frame that caused it (for a
    quiet-period close: the first packet later than the quiet period); ``incident`` the track;
    ``snapshot`` the incident as of the event (``Track.to_dict`` without the held-back packets).
    The snapshot is made on demand: when first read, or before its track changes (``Track.freeze``),
    whichever comes first -- the same dict either way; a run that reads none (headless without
    ``--alerts``) formats no evidence for its events. Like the engine, not thread-safe: read it in
    the thread that runs ``update`` (as the TUI's worker and the EVE writer do), or between updates."""

    __slots__ = ("kind", "frame", "time", "incident", "_snapshot")

    def __init__(self, kind: str, frame: int, time: float, incident: Track):
        self.kind, self.frame, self.time, self.incident = kind, frame, time, incident
        self._snapshot: dict | None = None
        incident.unsnapped.append(self)

    @property
    def snapshot(self) -> dict:
        if self._snapshot is None:
            self.incident.freeze()
        return self._snapshot

    def __repr__(self) -> str:
        return f"IncidentEvent({self.kind!r}, frame={self.frame}, time={self.time}, incident #{self.incident.id})"


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
        self._long: set = set()             # active tracks with a longer quiet period (slow scans)
        self._answers: dict | None = None   # this batch's DNS answers (see _batch_answers)
        self.assigned: list = []            # see update()
        self.behaviour = Behaviour(self.classes)
        self._victim_role = np.array([r.role == "victim" for r in self.rules] + [False])
        self._spoof_index = self.classes.index("spoofing") if "spoofing" in self.classes else -1
        self._dos_index = self.classes.index("dos") if "dos" in self.classes else -1
        self._exfil_index = self.classes.index("exfiltration") if "exfiltration" in self.classes else -1
        self._named: dict = {}              # addresses DNS answers named (the most recent MAX_NAMED)
        self._recon_index = self.classes.index("recon") if "recon" in self.classes else -1
        self._heard: list = []              # recent batches' IP senders (see _drop_awaited): [t, src, dst, eth_dst, hash]
        self._heard_rows = 0
        self._batch_hash = None
        self._bno = 0                       # batches seen (see Track.bno)
        self._ended_now: list = []          # incidents ended in this batch
        self._gpos: dict = {}               # (class, key) -> its rows' positions in this batch's _Sorted
        self._logged: list = []             # tracks with rows applied in this batch (Track.log; see _peers_at)
        self._todo: dict = {}               # (class, key) -> group of this batch not processed yet
        self._uploads = Uploads(self._exfil_index, self) if self._exfil_index >= 0 else None

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
        plan = None
        if self._uploads is not None:
            split, plan = self._uploads.plan(p, t, cb.anomaly)
            if split:   # a decision that needs the incidents opened before its row: those rows first
                self._answers = None    # (plan read the whole batch's DNS answers: each slice reads its own)
                events = self.update(cb.slice(0, split))
                assigned = self.assigned
                events += self.update(cb.slice(split, n))
                self.assigned = assigned + self.assigned
                return events
        self._bno += 1
        self._ended_now = []
        frames = np.asarray(p["frame_number"])
        self._t, self._frames = t, frames
        self.assigned = []   # (frame numbers, Track) of this batch's anomalous rows (--write-flagged)
        if self._ra_owner is None:   # the first router advertisement's sender is the router
            ra = ((p["ip_proto"] == 58) & (p["icmp_type"] == 134)).nonzero()[0]
            if len(ra):
                self._ra_owner = str(p["eth_src"][ra[0]])
        beh = self.behaviour.run(p, t, cb.predicted, cb.anomaly)
        if plan is not None:
            self._uploads.commit(plan, p, beh)
        over = beh.cls >= 0
        idx = (cb.anomaly | over).nonzero()[0]
        cls_all = np.where(over, beh.cls, cb.predicted)
        if self._recon_index >= 0 and len(idx):
            idx = self._drop_awaited(p, t, idx, cls_all)
        self._arp_learnt = False
        if len(idx):
            self._process(cb, idx, t, cls_all, beh)
        if not self._arp_learnt:   # no spoofing rows in this batch: just learn the ARP senders
            arp = (p["arp_opcode"] >= 0).nonzero()[0]
            if len(arp):
                owner = self._owner   # only an address without an owner yet can be learnt
                hw, ip, es = p["arp_src_hw"][arp].tolist(), p["arp_src_ip"][arp].tolist(), p["eth_src"][arp].tolist()
                for a, h, e in zip(ip, hw, es):
                    if a not in owner:
                        self._learn(a, h or e)
        for tr in self._logged:     # (views of this batch's arrays: not kept past it)
            tr.log = []
        self._logged = []
        self.now = float(t[-1])
        self._hear(p, t)
        self._learn_names(p)
        self._expire(float(t[-1]))
        if self._long:
            self._lapses(float(t[-1]))
        return self._flush()

    def finish(self) -> list[IncidentEvent]:
        """Close every active incident (end of the source)."""
        for tr in sorted(self.tracks.values(), key=lambda x: (x.last_frame, x.seq)):
            if tr.state == "active":
                self._close(tr, tr.last_frame, tr.last_time, "end of capture")
        self.tracks.clear()
        self._deadlines.clear()
        self._long.clear()
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
            if e._snapshot is not None:   # (made already: its track changed since; else made with this id)
                e._snapshot["id"] = e.incident.id
            out.append(e)
        return out

    def _emit(self, kind: str, tr: Track, frame: int, time: float) -> None:
        self._events.append(IncidentEvent(kind, int(frame), float(time), tr))   # (snapshot on demand)

    def _close(self, tr: Track, frame: int, time: float, reason: str) -> None:
        if tr.unsnapped:
            tr.freeze()
        tr.state = "ended"
        self._ended_now.append(tr)
        tr.end_reason = reason
        self._emit("closed", tr, frame, time)
        self.ended.append(tr)
        if len(self.ended) > MAX_KEPT:
            self.ended.pop(0)
            self.dropped += 1

    def _cause(self, deadline: float) -> tuple[int, float] | None:
        """Frame and time of the first packet of the current batch later than ``deadline``."""
        k = int(self._t.searchsorted(deadline, side="right"))
        if k >= len(self._t):
            return None
        return int(self._frames[k]), float(self._t[k])

    def _expire(self, now: float) -> None:
        dl = self._deadlines
        while dl and dl[0][0] < now:
            deadline, _, tr = heapq.heappop(dl)
            if self.tracks.get((tr.cls, tr.key)) is not tr or tr.last_time + tr.quiet != deadline:
                continue  # stale entry
            self._end_track(tr, deadline)

    def _end_track(self, tr: Track, deadline: float, quiet: float | None = None) -> None:
        del self.tracks[(tr.cls, tr.key)]
        tr.leave()
        self._long.discard(tr)
        if tr.cls_name == "spoofing":
            self._poisoners.discard(tr.key)
        if tr.state == "active":
            cause = tr.lapse if quiet is not None and tr.lapse is not None else self._cause(deadline)
            frame, time = cause if cause is not None else (tr.last_frame, tr.last_time)
            self._close(tr, frame, time, f"quiet for {(quiet or tr.quiet):.0f} s")

    def _lapses(self, now: float) -> None:
        """Slow scans (quiet SCAN_HORIZON) idle longer than QUIET: remember the first packet after
        that, which closes them if what comes next is no probe of theirs (see _group)."""
        for tr in self._long:
            if tr.lapse is None and now > tr.last_time + self.quiet:
                tr.lapse = self._cause(tr.last_time + self.quiet)

    def _process(self, cb, idx: np.ndarray, tall: np.ndarray, cls_all: np.ndarray, beh: "Verdicts") -> None:
        p = cb.packets
        t = tall[idx]
        cls = cls_all[idx]
        ip_src, ip_dst = p["ip_src"][idx], p["ip_dst"][idx]
        eth_src, eth_dst = p["eth_src"][idx], p["eth_dst"][idx]
        is_arp = p["arp_opcode"][idx] >= 0
        arp_op = p["arp_opcode"][idx]
        noip = (ip_src == "").nonzero()[0]
        if len(noip):   # ARP: its addresses, else the MACs
            src, dst = ip_src.copy(), ip_dst.copy()
            ni = idx[noip]
            asrc, adst = p["arp_src_ip"][ni], p["arp_dst_ip"][ni]
            src[noip] = np.where(is_arp[noip] & (asrc != ""), asrc, eth_src[noip])
            dst[noip] = np.where(is_arp[noip] & (adst != ""), adst, eth_dst[noip])
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
        # a RST/ACK between two ports neither of which is a service's refuses (or aborts) the
        # receiver's attempt: a scanned high port's answer goes back to the scanner
        client_src &= ~(rst & ack & ~syn & ~svc_s & ~svc_d)
        icmp4 = proto == 1
        icmp6 = proto == 58
        client_src &= ~(icmp4 & _lookup(_BACK4, icmp))
        client_src &= ~(icmp6 & _lookup(_BACK6, icmp))
        client_src &= ~(is_arp & (arp_op == 2))
        server_port = np.where(client_src, dp, sp)
        client_port = np.where(client_src, sp, dp)
        udp = proto == 17
        refl = udp & ~client_src & _lookup(_REFL, sp) & ~_lookup(_REFL, dp)

        names = self.classes
        # the key is the client (attacker roles) or the server (victim roles; responses from
        # reflection ports: their destination); ``fwd``: the packet was sent by the key entity
        victim = self._victim_role[np.minimum(cls, len(names))]
        # requests to a reflection port from a forged source (its Ethernet source is not the MAC
        # that owns the address): the reflection's victim is that source (see _forged_sources)
        forged = np.empty(0, dtype=np.int64)
        if self._dos_index >= 0:
            cand = np.flatnonzero((cls == self._dos_index) & udp & client_src & _lookup(_REFL, dp)
                                  & ~_lookup(_REFL, sp))
            if len(cand):
                cand = cand[ip_src[cand] != ""]
            if len(cand):
                forged = cand[self._forged_sources(p, idx[cand], ip_src[cand], eth_src[cand])]
                refl[forged] = True
        fwd = np.where(victim, ~client_src & ~refl, client_src)
        key = np.where(fwd, src, dst)
        peer = np.where(fwd, dst, src)
        if len(forged):
            key[forged], peer[forged] = src[forged], dst[forged]
        claimed = None                      # the IP each spoofing row claims (made only when there are some)
        if self._spoof_index >= 0:
            m = cls == self._spoof_index
            if m.any():
                claimed = np.full(len(idx), "", dtype=object)
                self._spoof_keys(m, key, peer, fwd, claimed, is_arp, eth_src, eth_dst, src, dst, p, idx)
        ov = beh.rows[idx].nonzero()[0]
        if len(ov):   # keyed by a behaviour rule (see Behaviour)
            bi = idx[ov]
            key[ov], peer[ov], fwd[ov], server_port[ov] = beh.key[bi], beh.peer[bi], beh.fwd[bi], beh.server_port[bi]
        # group rows by (class, key): one stable sort of a hash of both, so each group's rows stay in
        # stream order and its first row is its first appearance (groups are taken in that order below)
        ncls = np.uint64(len(self.classes) + 1)
        gk = _key_hash(key) * ncls + cls.astype(np.uint64)
        order = gk.argsort(kind="stable")
        sk = gk[order]
        starts = _run_heads(sk).nonzero()[0]
        bounds = starts.tolist() + [len(order)]
        dns = p["dns_flags"][idx]
        has_dns = dns >= 0
        unnamed = np.zeros(len(idx), dtype=bool)
        if self._exfil_index >= 0:
            ex = (cls == self._exfil_index).nonzero()[0]
            if len(ex):
                unnamed[ex] = self._unnamed(p, idx[ex], peer[ex])
        conf = cb.confidence[idx]
        upload = None
        if beh.upload is not None:
            upload = beh.upload[idx]
            m = (upload != None).nonzero()[0]   # noqa: E711 (elementwise)
            if len(m) and cb.proba is not None and self._exfil_index < cb.proba.shape[1]:
                conf = conf.copy()     # the model's own probability of the class, not of "normal"
                conf[m] = cb.proba[idx[m], self._exfil_index]
        cols = dict(unnamed=unnamed, t=t, frame=p["frame_number"][idx], flen=p["frame_len"][idx], conf=conf, upload=upload,
                    peer=peer, server_port=server_port, client_port=client_port, fwd=fwd, syn=syn, ack=ack,
                    rst=rst, tcp=tcp, icmp4=icmp4, icmp6=icmp6, icmp=icmp, is_arp=is_arp, arp_op=arp_op, udp=udp,
                    dns_q=has_dns & ((dns & 0x8000) == 0), dns_r=has_dns & ((dns & 0x8000) != 0),
                    dns_len=_lengths(p["dns_qry_name"][idx], has_dns) if has_dns.any() else np.zeros(len(idx), np.int64),
                    authfail=_authfail(p, idx), eth_src=eth_src, claimed=claimed, refl=refl,
                    ip_len=p["ip_len"][idx], dst=dst, ip_src=ip_src, ip_dst=ip_dst, sp=sp, dp=dp, proto=proto,
                    packets=p, idx=idx, cls=cls, flags=flags,
                    sure=beh.sure[idx], failed=beh.failed[idx], scan_targets=beh.scan_targets[idx],
                    scan_since=beh.scan_since[idx],
                    dhcp=udp & (sp == 68) & (dp == 67), ra=icmp6 & (icmp == 134))
        sb = _Sorted(self, cols, order, bounds)
        heads = order[bounds[:-1]]
        gcls, gkey = cls[heads].tolist(), key[heads].tolist()
        # a group of a victim-role class with responses from reflection ports is a reflection group,
        # whichever of its rows comes first in this batch (the answers may be redirected: see below)
        grefl = np.logical_or.reduceat((refl & victim)[order], bounds[:-1]).tolist() if len(order) else []
        groups = list(range(len(heads)))
        # reflection groups last, so the attacker of a running incident is known
        groups.sort(key=lambda g: (grefl[g], int(heads[g])))
        self._gpos = {(c, k): (bounds[g], bounds[g + 1]) for g, (c, k) in enumerate(zip(gcls, gkey))}
        # groups not processed yet that a pending track of the same pair may need first (_pull)
        self._todo = {(gcls[g], gkey[g]): g for g in groups if not grefl[g]}
        breaks = bounds
        for g in groups:
            c, k = gcls[g], gkey[g]
            g0, g1 = bounds[g], bounds[g + 1]
            if not grefl[g] and self._todo.pop((c, k), None) is None:
                continue   # processed already (see _pull)
            k = self._group_key(c, k, sb, g0)
            rows = order[g0:g1]
            if grefl[g] and not (len(forged) and np.isin(rows, forged).any()):
                r = refl[rows]
                first = g0 + int(r.argmax())    # (as of its first answer)
                host = self._attacker_incident(c, k, at=(int(sb.frame[first]), float(sb.t[first])))
                if host is not None:  # the answers to a running flood's requests (DNS water torture)
                    # only the responses from reflection ports join the attacker's incident; the key's
                    # other rows (e.g. its ICMP errors about those answers) stay its own, as they would
                    # in batches of any size: the group is split, each part in stream order
                    mid = g0
                    if not r.all():
                        order = order.copy()
                        order[g0:g1] = np.concatenate([rows[~r], rows[r]])
                        mid = g0 + int(np.count_nonzero(~r))
                        breaks = sorted(breaks + [mid])
                        self._gpos[(c, k)] = (g0, mid)
                        rows = rows[r]
                    cols["peer"][rows] = cols["dst"][rows]
                    cols["fwd"][rows] = True
                    cols["refl"][rows] = False
                    sb = _Sorted(self, cols, order, breaks)
                    if mid > g0:
                        self._group(c, k, g0, mid, sb)
                    g0, k = mid, host
            self._group(c, k, g0, g1, sb)
        self._todo = {}

    def _pull(self, tr: Track, keys, before: int, sb: "_Sorted") -> bool:
        """Process now the groups of this batch not processed yet and beginning before frame
        ``before`` that pending track ``tr``'s opening there depends on: of another class, keyed by
        one of ``keys``; for an exfiltration track also the other exfiltration groups (a tunnel it
        may relay). True when it processed one."""
        c, relay = tr.cls, tr.cls_name == "exfiltration"
        pull = [(cc, k) for cc, k in self._todo if ((cc != c and k in keys) or (relay and cc == c and k != tr.key))
                and sb.frame[self._gpos[(cc, k)][0]] < before]
        carry = sb.carry, sb.carry_until   # (the per-second count of the group being processed)
        for cc, k in pull:
            if self._todo.pop((cc, k), None) is None:
                continue    # processed meanwhile (a pull of its own)
            g0, g1 = self._gpos[(cc, k)]
            self._group(cc, self._group_key(cc, k, sb, g0), g0, g1, sb)
        sb.carry, sb.carry_until = carry
        return bool(pull)

    def _drop_awaited(self, p, t: np.ndarray, idx: np.ndarray, cls_all: np.ndarray) -> np.ndarray:
        """``idx`` without the ARP requests the model calls recon that are no discovery:

        * sent to a unicast MAC: a host checking a neighbour it already has in its ARP cache (RFC
          1122 2.3.2.1; Linux's NUD probes, e.g. a DHCP server's to the clients it leased to); a
          sweep asks the broadcast address, it does not know the MACs;
        * for an address that sent IP traffic to (or through) the asking host within
          ``REPLY_WAIT`` before them: a host -- a flood's victim, the gateway routing it -- looking
          up where to send its answers (SYN/ACKs, ICMP replies to a spoofed-source flood's forged
          addresses). "To or through": the packet's destination address or its Ethernet
          destination is the asker's (learnt in stream order from every packet, the last
          ``REPLY_WAIT`` seconds, at most ``MAX_HEARD_ROWS`` packets)."""
        q = idx[(cls_all[idx] == self._recon_index) & (p["arp_opcode"][idx] == 1)]
        if not len(q):
            return idx
        ed = p["eth_dst"][q]
        uni = (ed != "ff:ff:ff:ff:ff:ff") & (ed != "") & (ed != "00:00:00:00:00:00")
        if uni.any():
            idx = idx[~np.isin(idx, q[uni])]
            q = q[~uni]
            if not len(q):
                return idx
        target = p["arp_dst_ip"][q]
        es = p["eth_src"][q]         # the frame's sender (the ARP payload's sender MAC only without it)
        asker_mac = np.where(es != "", es, p["arp_src_hw"][q]).tolist()
        asker_ip = p["arp_src_ip"][q].tolist()
        th = _unique(_ip_hash(target[target != ""]))
        if not len(th):
            return idx
        tq = t[q]
        since = float(tq[0]) - REPLY_WAIT
        heard: dict = {}            # (sender, destination address or MAC) -> last time

        def senders(tt, src, dst, edst, h):   # rows (of the first len(h)) sent by a target since ``since``
            k = np.minimum(th.searchsorted(h), len(th) - 1)
            rows = ((th[k] == h) & (tt[:len(h)] >= since)).nonzero()[0]
            return rows, src[rows].tolist(), dst[rows].tolist(), edst[rows].tolist(), tt[rows].tolist()
        for e in self._heard:
            if e[0][-1] < since:
                continue
            if e[4] is None:
                e[4] = _ip_hash(e[1])
            _, src, dst, edst, tt = senders(*e)
            for a, b, c, x in zip(src, dst, edst, tt):
                heard[(a, b)] = heard[(a, c)] = x
        # this batch: senders before each request, in stream order (the whole column hashed: kept
        # for the next batches by _hear)
        h = _ip_hash(p["ip_src"])
        self._batch_hash = h
        rows, src, dst, edst, tt = senders(t, p["ip_src"], p["ip_dst"], p["eth_dst"], h)
        rows = rows.tolist()
        drop = np.zeros(len(q), dtype=bool)
        k = 0
        for i, (r, x, mac, ip, tr) in enumerate(zip(q.tolist(), target.tolist(), asker_mac, asker_ip, tq.tolist())):
            while k < len(rows) and rows[k] < r:
                heard[(src[k], dst[k])] = heard[(src[k], edst[k])] = tt[k]
                k += 1
            last = max(heard.get((x, mac), -np.inf), heard.get((x, ip), -np.inf) if ip else -np.inf)
            drop[i] = tr - last <= REPLY_WAIT
        if not drop.any():
            return idx
        return idx[~np.isin(idx, q[drop])]

    def _hear(self, p, t: np.ndarray) -> None:
        """Keep this batch's IP senders for ``_drop_awaited`` (references to its columns; hashed only
        when a request needs them): the last REPLY_WAIT seconds, at most MAX_HEARD_ROWS packets."""
        if self._recon_index < 0:
            return
        h, self._batch_hash = self._batch_hash, None
        self._heard.append([t, p["ip_src"], p["ip_dst"], p["eth_dst"], h if h is not None and len(h) == len(t)
                            else None])
        self._heard_rows += len(t)
        while self._heard and (self._heard[0][0][-1] < float(t[-1]) - REPLY_WAIT
                               or self._heard_rows - len(self._heard[0][0]) >= MAX_HEARD_ROWS):
            self._heard_rows -= len(self._heard.pop(0)[0])

    def _unnamed(self, p, rows: np.ndarray, peers: np.ndarray) -> np.ndarray:
        """Per row (batch rows, in order): its peer is an address no DNS answer named before it (the
        names learnt so far, or an answer earlier in this batch; ``dns_a``: the first A record)."""
        first = self._batch_answers(p)
        named = self._named
        pl = peers.tolist()
        # per distinct peer: the batch row of the answer that names it (-1: named before the batch)
        at = {a: -1 if a in named else first.get(a, _NEVER) for a in dict.fromkeys(pl)}
        return np.fromiter(map(at.__getitem__, pl), dtype=np.int64, count=len(pl)) >= rows

    def _batch_answers(self, p) -> dict:
        """Address -> the batch row of its first DNS answer in this batch (computed once per batch)."""
        if self._answers is None:
            r = (p["dns_flags"] >= 0x8000).nonzero()[0]     # responses (the QR bit; missing: -1)
            a = p["dns_a"][r] if len(r) else np.empty(0, dtype=object)
            has = a != ""
            self._answers = {}
            for row, addr in zip(r[has].tolist(), a[has].tolist()):
                self._answers.setdefault(addr, row)
        return self._answers

    def _learn_names(self, p) -> None:
        """Remember the addresses this batch's DNS answers named (most recent last, MAX_NAMED kept)."""
        named = self._named
        for addr in self._batch_answers(p):
            named.pop(addr, None)
            named[addr] = None
        while len(named) > MAX_NAMED:
            named.pop(next(iter(named)))
        self._answers = None

    def _attacker_incident(self, c: int, host: str, top: int = 1, tracks=None, opened: bool = False,
                           at: tuple | None = None):
        """The key of a running incident of class ``c`` with ``host`` among its ``top`` peers (a
        pending track too unless ``opened``). With ``tracks`` (an iterable of Tracks): every such
        track of it instead, as an iterator. Otherwise ``at`` (frame, time of a packet of this batch): as
        the incidents were at that packet -- running then (begun before it, no quiet gap since), open
        then, their peers counted up to it -- not as this batch's later rows made them (the
        incidents' groups of this batch are processed first), so the answer is the same for any
        batch size."""
        if tracks is not None:
            return (tr for tr in tracks if tr.cls == c and tr.key != host
                    and any(p == host for p, _ in tr.top_peer_counts(top)))
        for (cc, k), tr in self.tracks.items():
            if cc != c or k == host:
                continue
            if (opened and not (tr.state == "active" and tr.open_frame <= at[0])) or host not in tr.peers:
                continue    # (not one of its peers now: none of its top peers then)
            peers = self._peers_at(tr, *at)
            if peers is not None and any(p == host for p, _ in peers(top)):
                return k
        return None

    def _peers_at(self, tr: Track, frame: int, t: float):
        """``tr.top_peer_counts`` as of the packet ``frame`` (time ``t``) of this batch, or None when
        the track was not running then (none of its packets yet, or more than its quiet period since
        its last one)."""
        if tr.bno != self._bno or not tr.log:        # no rows in this batch: as it is
            return tr.top_peer_counts if t - tr.last_time <= tr.quiet and tr.packets else None
        last, later = tr.lt0, []
        for fr, tt, pp in tr.log:
            k = int(fr.searchsorted(frame, side="right"))
            if k:
                last = max(last, float(tt[k - 1]))
            if k < len(fr):
                later.append(pp[k:])
        if not (t - last <= tr.quiet):               # (-inf: no packet before it)
            return None
        if not later:
            return tr.top_peer_counts
        later = np.concatenate(later)
        heads = _run_heads(later).nonzero()[0]     # (a flood's rows share their peer: counted per run)
        runs = np.diff(np.append(heads, len(later))).tolist()
        counts = tr.peers.copy()
        for p, n in zip(later[heads].tolist(), runs):
            counts[p] -= n
        counts = Counter({p: n for p, n in counts.items() if n > 0})
        return lambda n: _most_common(counts, n)

    def _group_key(self, c: int, k: str, sb: "_Sorted", g0: int) -> str:
        """The key of this batch's group ``(c, k)`` (its first row at position ``g0`` of ``sb``): for
        exfiltration rows of a host without a track of its own, a resolver forwarding a running
        tunnel's queries, the tunnel incident's key (an open incident: a pending client's flagged
        lookups do not take the resolver's rows), as the incidents were at the group's first row."""
        if c == self._exfil_index and (c, k) not in self.tracks:
            return self._attacker_incident(c, k, 3, opened=True, at=(int(sb.frame[g0]), float(sb.t[g0]))) or k
        return k

    def _spoof_keys(self, m, key, peer, fwd, claimed, is_arp, eth_src, eth_dst, src, dst, p, idx) -> None:
        """Spoofing rows: keyed by the forging MAC (see module doc). ARP senders of the whole batch
        are learnt in frame order (first claim of an IP = its owner), interleaved with these rows."""
        arp_all = (p["arp_opcode"] >= 0).nonzero()[0]
        rows = m.nonzero()[0]
        mine = idx[rows]
        arp_hw, arp_sip, arp_dip = p["arp_src_hw"], p["arp_src_ip"], p["arp_dst_ip"]
        owner, impostor, known = self._owner, self._impostor, self._poisoners
        dns_r = np.zeros(len(idx), dtype=bool)
        dfl = p["dns_flags"][mine]
        dns_r[rows] = (dfl >= 0) & ((dfl & 0x8000) != 0)
        # the batch's ARP rows that are not among these (``mine`` ascends, as ``idx``)
        at = np.minimum(mine.searchsorted(arp_all), len(mine) - 1)
        learn = arp_all[mine[at] != arp_all].tolist()
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

    def _forged_sources(self, p, rows: np.ndarray, ips: np.ndarray, macs: np.ndarray) -> np.ndarray:
        """Per packet (batch rows, in order): its source IP is owned by another MAC than the one
        that sent it -- the owner as known at that packet (learnt from ARP in stream order: the
        state before this batch, else the address's first ARP claim earlier in the batch)."""
        out = np.zeros(len(rows), dtype=bool)
        distinct, inv = _codes(ips)
        arp = arp_ip = None
        for k, ip in enumerate(distinct):
            mine = (inv == k).nonzero()[0]
            owner = self._owner.get(ip)
            since = -1
            if owner is None:
                if arp is None:
                    arp = (p["arp_opcode"] >= 0).nonzero()[0]
                    arp_ip = p["arp_src_ip"][arp]
                claims = arp[arp_ip == ip]
                if not len(claims):
                    continue
                since = int(claims[0])
                owner = p["arp_src_hw"][since] or p["eth_src"][since]
            out[mine] = (rows[mine] > since) & (macs[mine] != owner)
        return out

    def _learn(self, ip: str, mac: str) -> None:
        if ip and ip != "0.0.0.0" and mac and ip not in self._owner and len(self._owner) < MAX_DISTINCT:
            self._owner[ip] = mac

    def _group(self, c: int, key: str, g0: int, g1: int, sb: "_Sorted") -> None:
        """Rows ``g0:g1`` (positions in ``sb``, one class and key, in stream order)."""
        t = sb.t
        tr = self.tracks.get((c, key))
        start = g0
        while start < g1:
            if tr is not None and t[start] - tr.last_time > tr.quiet:
                self._end_track(tr, tr.last_time + tr.quiet)
                tr = None
            elif tr is not None and t[start] - tr.last_time > self.quiet and not sb.is_probe(start):
                # a slow scan's quiet spell ends with its next probe (a SYN, or a refused / half-open
                # handshake); anything else of its attacker after QUIET is a new incident
                self._end_track(tr, tr.last_time + self.quiet, self.quiet)
                tr = None
            if tr is None:
                if len(self.tracks) >= MAX_TRACKS:
                    self._evict()
                tr = Track(c, self.classes[c] if c < len(self.classes) else str(c), key, self.rules[c],
                           next(self._seq))
                tr.quiet = self.quiet
                self.tracks[(c, key)] = tr
            # the per-second count goes on from the track's last second (a previous batch or group)
            sb.carry_until = sb.run_end(start)
            sb.carry = tr.bucket_count if tr.bucket == sb.sec[start] else 0
            # rows up to the next quiet gap belong to this track
            stop = sb.gap_after(start, g1)
            self._segment(tr, start, stop, sb)
            heapq.heappush(self._deadlines, (tr.last_time + tr.quiet, tr.seq, tr))
            start = stop

    def _evict(self) -> None:
        """Too many keys: forget the pending one idle longest (active incidents are kept)."""
        pending = [tr for tr in self.tracks.values() if tr.state == "pending"]
        if pending:
            old = min(pending, key=lambda x: (x.last_time, x.seq))
            del self.tracks[(old.cls, old.key)]
            old.leave()

    def _segment(self, tr: Track, a: int, b: int, sb: "_Sorted") -> None:
        """Rows ``a:b`` of one key without a quiet gap: update, opening and update events at exact rows."""
        pos = a
        while pos < b:
            if tr.state == "pending":
                j = self._open_index(tr, pos, b, sb)
                if j is None:
                    self._apply(tr, pos, b, sb)
                    self._remember(tr, sb.t[pos:b])
                    return
                self._apply(tr, pos, j + 1, sb)
                pos = j + 1
                tr.state = "active"
                tr.open_time, tr.open_frame = tr.last_time, tr.last_frame
                if tr.under is not None:
                    tr.under.minor.pop(tr.seq, None)
                    tr.under = None
                tr.rep = _representative(tr, int(sb.order[pos - 1]), sb.cols)
                tr.kind = tr.classify_kind()
                if tr.kind == "slow-scan":   # its probes come up to SCAN_HORIZON apart: so may its quiet spells
                    tr.quiet = max(tr.quiet, SCAN_HORIZON)
                    self._long.add(tr)
                tr.next_update = tr.packets * UPDATE_EVERY
                tr.recent = np.empty(0)
                if self._uploads is not None:
                    self._uploads.note(tr)
                self._emit("opened", tr, tr.last_frame, tr.last_time)
            else:
                need = tr.next_update - tr.packets
                if need > b - pos:
                    self._apply(tr, pos, b, sb)
                    return
                self._apply(tr, pos, pos + need, sb)
                pos += need
                tr.next_update *= UPDATE_EVERY
                self._emit("updated", tr, tr.last_frame, tr.last_time)

    def _remember(self, tr: Track, t: np.ndarray) -> None:
        k = tr.rule.packets - 1
        if k > 0:
            tr.recent = np.concatenate([tr.recent, t])[-k:]

    def _open_index(self, tr: Track, a: int, b: int, sb: "_Sorted") -> int | None:
        """Position (in ``sb``, within ``a:b``) of the packet that opens the incident, or None."""
        rule = tr.rule
        K = rule.packets
        if tr.n[C_SURE] or sb.sure[a:b].any():    # a behaviour rule decided (Behaviour)
            sure = (tr.n[C_SURE] + sb.sure[a:b].cumsum()) >= 1
        elif tr.packets + (b - a) < K:            # too few packets to open (the common case of a stray row)
            if tr.cls_name == "bruteforce":       # ... still remember its new connections' times
                _guessing(tr, a, b, sb, self._new_firsts(tr, a, b, sb))
            return None
        else:
            sure = np.zeros(b - a, dtype=bool)
        t = sb.t[a:b]
        allt = np.concatenate([tr.recent, t])
        off = len(tr.recent)
        firsts = self._new_firsts(tr, a, b, sb) if tr.cls_name == "bruteforce" else None
        guess = _guessing(tr, a, b, sb, firsts) if firsts is not None else None
        if len(allt) < K:
            k = self._first_free(tr, a, sure.nonzero()[0], sb)
            if k is not None:
                tr.by_behaviour = True
            return None if k is None else a + k
        ok = np.zeros(b - a, dtype=bool)
        j = np.arange(max(K - 1, off), len(allt))
        ok[j - off] = allt[j] - allt[j - K + 1] <= self.window
        if rule.distinct > 1 and tr.cls_name in _DISTINCT_CLASSES:
            if firsts is None:
                firsts = self._new_firsts(tr, a, b, sb)
            cum = firsts.searchsorted(np.arange(b - a), side="right")
            ok &= (len(tr.distinct) + cum) >= rule.distinct
        elif rule.distinct > 1:
            ok &= len(tr.distinct) >= rule.distinct
        if tr.cls_name == "spoofing":   # an impersonation must be seen: a claim against an owner, a rogue RA
            ok &= (tr.impersonations + sb.ev[a:b].cumsum()) >= 1
        elif tr.cls_name == "exfiltration":
            ok &= _exfil_evidence(tr, a, b, sb)
        elif guess is not None:
            ok &= guess
        k = self._first_free(tr, a, (ok | sure).nonzero()[0], sb)
        if k is None:
            return None
        tr.by_behaviour = not ok[k]
        return a + k

    def _first_free(self, tr: Track, a: int, hit: np.ndarray, sb: "_Sorted") -> int | None:
        """The first of the candidate rows ``hit`` (relative to ``a``) that ``_dominated`` does not
        hold back, looked at in growing chunks (usually the first one decides)."""
        lo, size = 0, 1
        while lo < len(hit):
            h = hit[lo:lo + size]
            free = (~self._dominated(tr, a, h, sb)).nonzero()[0]
            if len(free):
                return int(h[free[0]])
            lo, size = lo + size, size * 8
        return None

    def _dominated(self, tr: Track, a: int, hit: np.ndarray, sb: "_Sorted") -> np.ndarray:
        """Per candidate opening row ``a + hit`` of a pending track: is its pair (attacker, victim)
        part of a running incident of another class that has more packets of that pair so far and
        a packet within ``OVERLAP`` seconds before the row? Then the track is that incident's
        minority (a flood whose packets the model calls something else now and then: an hping3
        ICMP flood with a few "exfiltration" echoes) and does not open there; its packets are
        named with that incident (``Track.minor``). Once the other incident pauses or ends, or the
        track outgrows it, it opens as usual. The other incident's state is taken as of each row
        (its packets in earlier batches and its rows of this batch up to the row), so the result is
        the same for any batch size."""
        pos = a + hit
        peers = sb.peer_arr[pos]
        frames = sb.frame[pos]
        pset = set(peers.tolist())
        keys = pset | {tr.key}
        # guessing the server itself refused (BRUTE_FAILS logins: FTP 530, HTTP 401/403, MQTT CONNACK) is
        # nobody's minority: a flood makes no server refuse a login, so a slowloris running on the same
        # service of the same pair does not swallow the password guessing next to it
        if tr.cls_name == "bruteforce" and len(hit):
            proven = _refused(tr, a, a + int(hit[-1]) + 1, sb)[hit]
        else:
            proven = np.zeros(len(hit), dtype=bool)
        while True:
            out = self._held(tr, hit, pos, peers, pset, proven, sb)
            # the incidents of the pair whose rows of this batch begin before the first row not held
            # (later in the loop over groups): theirs first, then decide again
            free = (~out).nonzero()[0]
            if not (self._todo and len(free) and self._pull(tr, keys, int(frames[free[0]]), sb)):
                return out

    def _held(self, tr: Track, hit: np.ndarray, pos: np.ndarray, peers: np.ndarray, pset: set,
              proven: np.ndarray, sb: "_Sorted") -> np.ndarray:
        out = np.zeros(len(hit), dtype=bool)
        # incidents of another class keyed by the track's key (same role) or by one of its peers
        mine_role = tr.rule.role
        others = [x for x in itertools.chain(self.tracks.values(), self._ended_now)
                  if x.cls != tr.cls and x.state != "pending"
                  and ((x.key == tr.key) if x.rule.role == mine_role else (x.key in pset))]
        if not others and tr.cls_name != "exfiltration":
            return out
        frames, times = sb.frame[pos], sb.t[pos]
        # the pair of each row: the track's key is its attacker (or victim), the row's peer the other
        att, vic = (tr.key, peers) if tr.rule.role == "attacker" else (peers, tr.key)
        mine = tr.packets + hit + 1          # the track's packets when that row is applied
        who, first = None, len(hit)          # the incident holding back the earliest row
        for x in others:
            victim = x.rule.role == "victim"
            # the incident's key is the row's victim (attacker), its peer the row's attacker (victim)
            keyed = np.broadcast_to(np.asarray((vic if victim else att) == x.key, dtype=bool), len(hit))
            if not keyed.any():
                continue
            other = np.broadcast_to(np.asarray(att if victim else vic, dtype=object), len(hit))
            pk0, lt0, gf, gt, gp = self._state_at(x, sb)
            done = x.packets - pk0 if x.bno == self._bno else 0   # its rows of this batch applied so far
            k = gf.searchsorted(frames, side="right")   # the incident's rows of this batch up to each row
            last = np.where(k > 0, gt[np.maximum(k - 1, 0)] if len(gt) else lt0, lt0)
            count = np.zeros(len(hit), dtype=np.int64)
            for o in dict.fromkeys(other[keyed].tolist()):
                mask = gp == o
                base = x.peers.get(o, 0) - int(mask[:done].sum())
                cum = np.concatenate([[0], mask.cumsum()])
                sel = keyed & (other == o)
                count[sel] = base + cum[k[sel]]
            held = keyed & (x.open_frame <= frames) & (times - last <= OVERLAP) & (count > mine) & ~proven
            if held.any() and int(held.argmax()) < first:
                first, who = int(held.argmax()), x
            out |= held
        if tr.cls_name == "exfiltration":
            # a resolver relaying the queries of a DNS tunnel (incident, or one about to open: the
            # client's queries come first, the resolver may still have more flagged packets) that is
            # still running: a packet within its quiet period before the row (the resolver's
            # retries and late answers come after the client's last query), and the resolver's
            # flagged packets at most RELAY_RATIO times the tunnel's as of the row (a relay forwards
            # each query once and passes each answer back: about as many; a client's trickle of
            # flagged lookups does not hold back the resolver's own tunnel)
            for x in self._attacker_incident(tr.cls, tr.key, 3, itertools.chain(self.tracks.values(), self._ended_now)):
                if not x.packets \
                        or (x.kind != "dns-tunnel" if x.kind else (x.n[C_DNS_Q] + x.n[C_DNS_R]) * 2 <= x.packets):
                    continue
                pk0, lt0, gf, gt, gp = self._state_at(x, sb)
                k = gf.searchsorted(frames, side="right")
                last = np.where(k > 0, gt[np.maximum(k - 1, 0)] if len(gt) else lt0, lt0)
                held = (times - last <= x.quiet) & (mine <= RELAY_RATIO * (pk0 + k))
                if held.any() and int(held.argmax()) < first:
                    first, who = int(held.argmax()), x
                out |= held
        if who is not None and tr.under is None:
            tr.under = who
            tr.under_label = tr.cls_name if who.cls != tr.cls else f"relayed by {tr.key}"
            who.minor[tr.seq] = [tr.under_label, tr]
        return out

    def _state_at(self, x: Track, sb: "_Sorted") -> tuple:
        """Incident ``x`` before this batch (packets, last time) and its rows in this batch (frames,
        times, peers; those of its class and key before any quiet gap, from its first row)."""
        pk0, lt0 = (x.pk0, x.lt0) if x.bno == self._bno else (x.packets, x.last_time if x.packets else -np.inf)
        g = self._gpos.get((x.cls, x.key))
        if g is None:
            return pk0, lt0, np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=object)
        gf, gt, gp = sb.frame[g[0]:g[1]], sb.t[g[0]:g[1]], sb.peer_arr[g[0]:g[1]]
        if x.bno == self._bno and pk0 == 0:      # begun in this batch: its rows from its first
            k = int(gf.searchsorted(x.first_frame))
            gf, gt, gp = gf[k:], gt[k:], gp[k:]
        gap = (np.diff(np.concatenate([[lt0], gt]) if np.isfinite(lt0) else gt) > x.quiet).nonzero()[0]
        gap += int(not np.isfinite(lt0))
        if len(gap):                              # rows after a quiet gap are another incident's
            gf, gt, gp = gf[:gap[0]], gt[:gap[0]], gp[:gap[0]]
        return pk0, lt0, gf, gt, gp

    @staticmethod
    def _new_firsts(tr: Track, a: int, b: int, sb: "_Sorted") -> np.ndarray:
        """Positions (relative to ``a``, ascending) of the first row of each probe target /
        connection in a:b that the track has not seen yet."""
        seen = tr.distinct
        if b - a <= 64:
            keys = sb.dk_list[a:b]
            first = dict(zip(reversed(keys), range(b - a - 1, -1, -1)))   # each key's first position
            pos = [i for k, i in first.items() if k not in seen] if seen else list(first.values())
            return np.sort(np.array(pos, dtype=np.int64))
        u, pos = _unique_first(sb.dk[a:b])      # (a probe target / connection has many rows)
        if seen:
            pos = pos[np.array([k not in seen for k in u.tolist()], dtype=bool)]
        return np.sort(pos)

    def _apply(self, tr: Track, a: int, b: int, sb: "_Sorted") -> None:
        """Add rows ``a:b`` (positions in ``sb``: one key, in order) to the track's counts; every sum
        is a difference of the batch's running sums, every counter a C-level update of a list slice."""
        if a >= b:
            return
        if tr.unsnapped:     # its events' snapshots are of the state before these rows
            tr.freeze()
        self.assigned.append((sb.frame[a:b], tr))
        if tr.bno != self._bno:
            tr.bno, tr.pk0, tr.lt0 = self._bno, tr.packets, (tr.last_time if tr.packets else -np.inf)
            tr.log = []     # (emptied at the end of every batch too; this keeps a batch that raised from leaking)
            self._logged.append(tr)
        tr.log.append((sb.frame[a:b], sb.t[a:b], sb.peer_arr[a:b]))
        t0, t1, f0, f1 = float(sb.t[a]), float(sb.t[b - 1]), int(sb.frame[a]), int(sb.frame[b - 1])
        if tr.packets == 0:
            tr.first_time, tr.first_frame = t0, f0
        elif t0 < tr.first_time:   # another key's rows joining (a relay, a flood's answers): earlier ones
            tr.first_time, tr.first_frame = t0, min(tr.first_frame, f0)
        if tr.packets == 0 or t1 >= tr.last_time:
            tr.last_time, tr.last_frame = t1, max(f1, tr.last_frame)
        tr.packets += b - a
        tr.lapse = None
        ds = sb.vs[:, a:b].sum(axis=1, dtype=np.int64)
        db = sb.vb[:, a:b].sum(axis=1)
        n = tr.n
        n[:_N_SMALL] += ds[:_N_SMALL]     # (_SMALL and _BIG are the counters in index order)
        n[_N_SMALL:] += db[:N_COUNTERS - _N_SMALL]
        tr.bytes += int(db[_B_BYTES])
        tr.conf_q += int(db[_B_CONF])
        tr.reflection += int(ds[_S_REFL])
        # peers (and below, source MACs) counted per run of equal ones when the runs are long (a
        # flood's, a scan's, a brute force's rows share their peer): same counts, same first-seen order
        pl = _runs(sb.peer_list, sb.peer_new, a, b)
        _count(tr.peers, pl)
        if len(tr.peer_set) < MAX_DISTINCT:
            if len(tr.peer_set) + (b - a) <= MAX_DISTINCT:
                tr.peer_set.update(pl)
            else:
                tr.peer_set.update(list(dict.fromkeys(pl))[: MAX_DISTINCT - len(tr.peer_set)])
        pa, pb = sb.port_at[a], sb.port_at[b]
        if pb > pa:          # (a flood's, a brute force's rows share their port: counted per run)
            _count(tr.ports, _runs(sb.port_list, sb.port_new, pa, pb))
        if tr.cls_name in _DISTINCT_CLASSES and len(tr.distinct) < MAX_DISTINCT:
            _add_first(tr.distinct, sb.dk_list[a:b])
            if tr.cls_name == "bruteforce" and len(tr.conn_bytes) < MAX_DISTINCT:
                cbytes = tr.conn_bytes
                if b - a <= 64:
                    for x, y in zip(sb.dk_list[a:b], sb.fb[a:b].tolist()):
                        cbytes[x] = cbytes.get(x, 0) + y
                else:
                    u, inv2 = _unique_inverse(sb.dk[a:b])
                    sums = np.bincount(inv2, weights=sb.fb[a:b], minlength=len(u))
                    for x, y in zip(u.tolist(), sums.tolist()):
                        cbytes[x] = cbytes.get(x, 0) + int(y)
        if ds[C_DHCP] and len(tr.client_macs) < MAX_DISTINCT:   # (the server's answers' peers are no clients)
            _add_first(tr.client_macs, sb.eth_src[a:b][sb.vs[C_DHCP, a:b] != 0].tolist())
        ma, mb = sb.mac_at[a], sb.mac_at[b]
        if mb > ma:
            _count(tr.macs, _runs(sb.macs, sb.mac_new, ma, mb))
        ca, cb_ = sb.claim_at[a], sb.claim_at[b]
        if cb_ > ca:
            tr.impersonations += int(cb_ - ca)
            _count(tr.claimed, sb.claims[ca:cb_])
        if sb.upload is not None:
            up = sb.upload[a:b]
            hit = (up != None).nonzero()[0]   # noqa: E711 (elementwise)
            if len(hit):
                infos = up[hit].tolist()
                fb = sb.vb[C_FWD_BYTES - _N_SMALL, a:b][hit].tolist()
                sy = sb.vs[C_SYN, a:b][hit].tolist()
                tt = sb.t[a:b][hit].tolist()
                for info, x, y, z in zip(infos, fb, sy, tt):
                    e = tr.uploads.get(info)
                    if e is None:
                        e = tr.uploads[info] = [0, 0, z]
                    e[0] += x
                    e[1] += y
                    e[2] = max(e[2], z)
        if tr.n[C_SURE] and tr.cls_name == "recon":
            tr.scan_targets = max(tr.scan_targets, int(sb.scan_targets[a:b].max()))
            tr.scan_since = min(tr.scan_since, float(sb.scan_since[a:b].min()))
        # peak packets per second: the running count within each second (carried over from the
        # track's last second for the rows of the group's first run)
        peak = int(sb.runpos[a:b].max())
        if sb.carry and a < sb.carry_until:
            peak = max(peak, int(sb.runpos[min(b, sb.carry_until) - 1]) + sb.carry)
        tr.peak = max(tr.peak, peak)
        tr.bucket = int(sb.sec[b - 1])
        tr.bucket_count = int(sb.runpos[b - 1]) + (sb.carry if b - 1 < sb.carry_until else 0)


_DISTINCT_CLASSES = ("recon", "bruteforce")


def _refused(tr: Track, a: int, b: int, sb: "_Sorted") -> np.ndarray:
    """Per position a:b of a pending brute-force track: has the server refused ``BRUTE_FAILS`` of its
    logins so far (the track's count before the rows plus the rows up to each)?"""
    af = sb.vs[C_AUTHFAIL, a:b]
    if tr.n[C_AUTHFAIL] or af.any():
        return (int(tr.n[C_AUTHFAIL]) + af.cumsum(dtype=np.int64)) >= BRUTE_FAILS
    return np.zeros(b - a, dtype=bool)


def _guessing(tr: Track, a: int, b: int, sb: "_Sorted", firsts: np.ndarray) -> np.ndarray:
    """Per position a:b of a pending brute-force track: is there evidence of password guessing so
    far -- ``BRUTE_FAILS`` logins the server refused (where the protocol shows its verdict: FTP 530,
    HTTP 401/403, MQTT CONNACK), or ``BRUTE_CONNS`` connections to one service (server port) of
    its peers within ``WINDOW`` (where it hides it: SSH, telnet)? A user's logins succeed and come
    a few a minute. Remembers the last new-connection times per port (the rows a:b are applied
    to the track unless it opens)."""
    fails = _refused(tr, a, b, sb)
    rate = np.full(b - a, tr.guess_rate)
    if len(firsts) and not tr.guess_rate:
        ft, fp = sb.t[a:b][firsts], sb.server_port[a:b][firsts]
        k = BRUTE_CONNS - 1
        hit = b - a
        for port in dict.fromkeys(fp.tolist()):
            sel = fp == port
            allt = np.concatenate([tr.conn_times.get(port, np.empty(0)), ft[sel]])
            j = np.arange(k, len(allt))
            new = len(allt) - int(sel.sum())
            h = ((allt[j] - allt[j - k] <= WINDOW) & (j >= new)).nonzero()[0]
            if len(h):
                hit = min(hit, int(firsts[sel][j[h[0]] - new]))
            tr.conn_times.pop(port, None)
            tr.conn_times[port] = allt[-k:]
        while len(tr.conn_times) > MAX_COUNTER:
            tr.conn_times.pop(next(iter(tr.conn_times)))
        if hit < b - a:
            rate[hit:] = True
            tr.guess_rate = True
    return fails | rate


def _exfil_evidence(tr: Track, a: int, b: int, sb: "_Sorted") -> np.ndarray:
    """Per position a:b of a pending exfiltration track: with the rows up to it, is the incident
    tunnel-like (more than half its packets DNS, queries among them -- answers alone, as the victim of a
    DNS reflection receives them, carry nothing out --, or ICMP echoes whose mean payload is larger than a
    standard ping's, ``PING_PAYLOAD``: the kinds dns-tunnel / icmp-tunnel) or, for a bulk upload
    (not mostly ICMP: pings to a bare address are no upload), do more than half go to addresses no
    DNS answer named (data pushed to a bare address: a client uploading to its own cloud service
    looked the name up first) and has the key sent at least ``UPLOAD_MIN_BYTES`` (data left)?"""
    pk = tr.packets + np.arange(1, b - a + 1)
    vs = sb.vs

    def cum(*cs):
        return sum(int(tr.n[c]) for c in cs) + np.cumsum(sum(vs[c, a:b].astype(np.int64) for c in cs))
    echo = cum(C_ICMP_REQ, C_ICMP_BACK)
    echo_bytes = int(tr.n[C_ICMP_LEN]) + sb.vb[C_ICMP_LEN - _N_SMALL, a:b].cumsum()
    icmp = echo * 2 > pk
    sent = int(tr.n[C_FWD_BYTES]) + sb.vb[C_FWD_BYTES - _N_SMALL, a:b].cumsum()
    queries = cum(C_DNS_Q)
    return ((((queries + cum(C_DNS_R)) * 2 > pk) & (queries >= 1))
            | (icmp & (echo_bytes > PING_PAYLOAD * echo))
            | (~icmp & (cum(C_UNNAMED) * 2 > pk) & (sent >= UPLOAD_MIN_BYTES)))
CONF_SCALE = float(1 << 32)   # confidences are summed as integers (exact, the same for any batch size)


def _add_first(s: set, items: list) -> None:
    """Add ``items`` to ``s`` until it holds ``MAX_DISTINCT``: the first ones in stream order, whatever the batches."""
    if len(s) >= MAX_DISTINCT:
        return
    if len(s) + len(items) <= MAX_DISTINCT:
        s.update(items)
        return
    for x in items:
        s.add(x)
        if len(s) >= MAX_DISTINCT:
            break


def _count(counter: Counter, items) -> None:
    """Count ``items`` (a list, or a dict of counts), new keys in first-seen order, then keep the
    ``MAX_COUNTER`` most common when the counter has grown past twice that."""
    counter.update(items)
    if len(counter) > MAX_COUNTER * 2:
        keep = _most_common(counter, MAX_COUNTER)
        counter.clear()
        counter.update(dict(keep))


def _most_common(counter: Counter, n: int) -> list:
    """``counter.most_common(n)`` (count descending, ties in insertion order), sorted by numpy
    when the counter is large."""
    if len(counter) <= 64:
        return counter.most_common(n)
    counts = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
    top = (-counts).argsort(kind="stable")[:n].tolist()
    keys = list(counter)
    return list(zip([keys[i] for i in top], counts[top].tolist()))


class _Sorted:
    """The anomalous rows of one batch in group order (``order``: position -> row), with what
    ``_apply`` needs as running sums, list slices and compressed lists, computed once per batch."""

    def __init__(self, eng: "IncidentEngine", cols: dict, order: np.ndarray, bounds: list):
        self.cols, self.order = cols, order
        names = eng.classes
        n = len(order)
        o = {k: cols[k][order] for k in _SORTED_COLS}
        ccls = np.minimum(o["cls"], len(names))   # per class (the last slot: a class the model does not name)
        victim_role = np.array([r.role == "victim" for r in eng.rules] + [False])[ccls]
        recon = np.array([c == "recon" for c in names] + [False])[ccls]
        dist = np.array([c in _DISTINCT_CLASSES for c in names] + [False])[ccls]
        fwd = o["fwd"]
        # per-row counters (computed on the unsorted rows, gathered once): ``_apply`` sums a slice
        spoof = np.array([c == "spoofing" for c in names] + [False])[np.minimum(cols["cls"], len(names))]
        small, big = _counters(cols, spoof)
        self.vs, self.vb = small[:, order], big[:, order]
        self.fb = self.vb[_B_BYTES]
        self.t = t = o["t"]
        self.frame = o["frame"]
        self.peer_arr = o["peer"]
        self.peer_list = self.peer_arr.tolist()
        self.peer_new = _run_heads(o["peer"])
        # distinct probe targets (recon: peer, server port) / connections (bruteforce: peer, client port)
        self.dk = self.dk_list = None
        if dist.any():
            rd = dist.nonzero()[0]
            dk = np.zeros(n, dtype=np.int64)
            port = np.where(recon[rd], o["server_port"][rd], o["client_port"][rd])
            dk[rd] = _ip_hash(o["peer"][rd]) * 65537 + port + 1
            self.dk = dk
            self.dk_list = dk.tolist()
        # compressed lists: server ports seen, source MACs on the attacker's (victim's) side, claims
        sport = o["server_port"]
        has = sport >= 0
        ports = sport[has]
        self.port_list = ports.tolist()
        self.port_new = _run_heads(ports)
        self.port_at = _at(has)
        sel = np.where(victim_role, ~fwd, fwd)
        self.eth_src = o["eth_src"]
        macs = o["eth_src"][sel]
        self.macs = macs.tolist()
        self.mac_new = _run_heads(macs)
        self.mac_at = _at(sel)
        hc = np.zeros(n, dtype=bool)   # claims are made by spoofing rows only (_spoof_keys)
        sr = spoof[order].nonzero()[0]
        self.claims = []
        if len(sr):
            cl = cols["claimed"][order[sr]]
            has = cl != ""
            hc[sr] = has
            self.claims = cl[has].tolist()
        self.claim_at = _at(hc)
        ra = o["ra"].nonzero()[0]
        hc[ra] |= o["eth_src"][ra] != eng._ra_owner
        self.ev = hc                  # impersonation evidence: a claim against an owner, a rogue RA
        self.sure = o["sure"]
        self.upload = cols["upload"][order] if cols.get("upload") is not None else None
        self.server_port = o["server_port"]
        self.scan_targets, self.scan_since = o["scan_targets"], o["scan_since"]
        # runs of one key within one second (and no quiet gap): each row's position in its run
        self.sec = sec = np.floor(t).astype(np.int64)
        brk = np.ones(n, dtype=bool)
        gap = (t[1:] - t[:-1]) > eng.quiet
        brk[1:] = (sec[1:] != sec[:-1]) | gap
        brk[np.array(bounds[:-1], dtype=np.int64)] = True
        self.run_starts = starts = brk.nonzero()[0]
        self.runpos = np.arange(1, n + 1) - starts[brk.cumsum() - 1]
        self.gaps = gap.nonzero()[0] + 1   # positions that follow a quiet gap
        self.n = n
        self.carry, self.carry_until = 0, 0

    def is_probe(self, pos: int) -> bool:
        """The row at ``pos`` is a scan probe: a SYN, or a refused / half-open handshake."""
        r = int(self.order[pos])
        c = self.cols
        return bool((c["syn"][r] and not c["ack"][r]) or c["failed"][r])

    def run_end(self, pos: int) -> int:
        k = int(self.run_starts.searchsorted(pos, side="right"))
        return int(self.run_starts[k]) if k < len(self.run_starts) else self.n

    def gap_after(self, pos: int, stop: int) -> int:
        """The first position after ``pos`` (and before ``stop``) that follows a quiet gap, else stop."""
        k = int(self.gaps.searchsorted(pos, side="right"))
        return min(int(self.gaps[k]), stop) if k < len(self.gaps) else stop


# np.unique by one sort: numpy 2's np.unique (hash-based) costs 0.1-1 ms per call on a few thousand
# integers, 10-50x one np.sort (bench/incidents.py: most of the demo's engine time)
def _run_heads(s: np.ndarray) -> np.ndarray:
    """True where a run of equal values starts in ``s`` (at 0 and where a value differs from the one
    before it; for a sorted ``s``, each distinct value's first place)."""
    head = np.empty(len(s), dtype=bool)
    if len(s):
        head[0] = True
        np.not_equal(s[1:], s[:-1], out=head[1:])
    return head


def _unique(k: np.ndarray) -> np.ndarray:
    """``np.unique(k)``."""
    s = np.sort(k)
    return s[_run_heads(s)]


def _unique_first(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(k, return_index=True)`` (the first occurrence of each value)."""
    order = k.argsort(kind="stable")
    ks = k[order]
    heads = (_run_heads(ks)).nonzero()[0]
    return ks[heads], order[heads]


def _unique_inverse(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(k, return_inverse=True)``."""
    order = k.argsort()
    ks = k[order]
    head = _run_heads(ks)
    inv = np.empty(len(k), dtype=np.intp)
    inv[order] = head.cumsum() - 1
    return ks[head], inv


def _runs(items: list, new: np.ndarray, a: int, b: int) -> list | dict:
    """``items[a:b]`` for ``_count``, or when its runs of equal items (``new``: see ``_run_heads``) are
    long, the same counts as a dict in first-seen order."""
    if b - a > 32:
        heads = new[a + 1:b].nonzero()[0]
        if len(heads) * 4 < b - a:
            starts = [a] + (heads + (a + 1)).tolist()
            agg: dict = {}
            for s, c in zip(starts, map(operator.sub, starts[1:] + [b], starts)):
                k = items[s]
                agg[k] = agg.get(k, 0) + c
            return agg
    return items[a:b]


def _at(mask: np.ndarray) -> np.ndarray:
    """Running count of ``mask`` with a leading 0: items of positions a:b are [at[a]:at[b]]."""
    out = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=out[1:])
    return out


_SORTED_COLS = ("cls", "fwd", "t", "frame", "peer", "server_port", "client_port", "eth_src", "ra", "sure",
                "scan_targets", "scan_since")


def _representative(tr: Track, r: int, cols: dict) -> dict:
    """The opening packet's addresses, ports (ICMP: type/code) and protocol, attacker side first;
    ``cid`` is its Community ID (computed in the packet's own direction, as tshark does)."""
    proto = int(cols["proto"][r])
    src, dst = str(cols["ip_src"][r]), str(cols["ip_dst"][r])
    icmp = proto in (1, 58)
    sp = int(cols["icmp"][r]) if icmp else int(cols["sp"][r])
    row = int(cols["idx"][r])
    dp = int(cols["packets"]["icmp_code"][row]) if icmp else int(cols["dp"][r])
    sent_by_attacker = bool(cols["fwd"][r]) == (tr.rule.role == "attacker")
    rep = {"ip": bool(src), "proto": proto, "frame": int(cols["frame"][r]),
           "proto_name": "ARP" if cols["is_arp"][r] else str(cols["packets"]["protocols"][row]).split(":")[-1].upper(),
           "cid": community_id(src, dst, proto, sp, dp) if src else None}
    if not sent_by_attacker and not icmp:
        src, dst, sp, dp = dst, src, dp, sp
    elif not sent_by_attacker:
        src, dst = dst, src
    rep.update(src=src, dst=dst, sport=sp, dport=dp)
    return rep


# counters that are 0/1 per packet (summed from an int8 matrix) and the others (int64), see _counters
_SMALL = np.array([C_SYN, C_SYNACK, C_RST, C_ICMP_REQ, C_ICMP_BACK, C_ARP_REQ, C_ARP_REP, C_UDP, C_DNS_Q, C_AUTHFAIL,
                   C_RA, C_DNS_R, C_TCP, C_FWD_PKTS, C_FIN_PROBE, C_NULL_PROBE, C_XMAS_PROBE, C_DHCP, C_FAILED, C_SURE,
                   C_UNNAMED])
_N_SMALL = len(_SMALL)
_BIG = np.array([C_DNS_LEN, C_FWD_BYTES, C_REV_BYTES, C_ICMP_LEN])
# in index order: a small counter C is row C of ``_Sorted.vs``, a big one row C - _N_SMALL of ``_Sorted.vb``
assert _SMALL.tolist() == list(range(_N_SMALL)) and _BIG.tolist() == list(range(_N_SMALL, N_COUNTERS))
_S_REFL = len(_SMALL)                 # small row: response from a reflection port
_B_BYTES, _B_CONF = len(_BIG), len(_BIG) + 1   # big rows: frame bytes, confidence x CONF_SCALE


def _counters(cols: dict, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per anomalous packet (columns), the evidence counters: ``small`` (int8, the 0/1 ones in
    ``_SMALL`` order, then reflection) and ``big`` (int64: ``_BIG``, then bytes and confidence)."""
    n = len(cols["t"])
    small = np.empty((len(_SMALL) + 1, n), dtype=bool)   # (summed as int8: the same bytes)
    big = np.empty((len(_BIG) + 2, n), dtype=np.int64)
    syn, ack, fwd = cols["syn"], cols["ack"], cols["fwd"]
    icmp, ic4, ic6 = cols["icmp"], cols["icmp4"], cols["icmp6"]
    req = (ic4 & _lookup(_REQ4, icmp)) | (ic6 & (icmp == 128))
    back = (ic4 & _lookup(_BACK4, icmp)) | (ic6 & _lookup(_BACK6, icmp))
    fl = cols["flags"]
    stealth = cols["tcp"] & (fl >= 0) & ((fl & STEALTH_FLAGS) == 0)
    xmas = stealth & ((fl & 0x29) == 0x29)
    dr = cols["dns_r"]
    for c, v in ((C_SYN, syn & ~ack), (C_SYNACK, syn & ack), (C_RST, cols["rst"] & ~fwd),   # RSTs answering the key
                 (C_ICMP_REQ, req), (C_ICMP_BACK, back), (C_ARP_REQ, cols["arp_op"] == 1),
                 (C_ARP_REP, cols["arp_op"] == 2), (C_UDP, cols["udp"]), (C_DNS_Q, cols["dns_q"]),
                 (C_AUTHFAIL, cols["authfail"]), (C_RA, ic6 & (icmp == 134)),
                 (C_DNS_R, np.where(spoof, dr & fwd, dr)), (C_TCP, cols["tcp"]), (C_FWD_PKTS, fwd),
                 (C_FIN_PROBE, stealth & ((fl & 0x01) != 0) & ~xmas), (C_NULL_PROBE, stealth & ((fl & 0x3F) == 0)),
                 (C_XMAS_PROBE, xmas), (C_DHCP, cols["dhcp"]), (C_FAILED, cols["failed"]), (C_SURE, cols["sure"]),
                 (C_UNNAMED, cols["unnamed"])):
        small[c] = v
    small[_S_REFL] = cols["refl"]
    fb = np.maximum(cols["flen"], 0)
    big[C_DNS_LEN - _N_SMALL] = np.where(cols["dns_q"], cols["dns_len"], 0)
    big[C_FWD_BYTES - _N_SMALL] = np.where(fwd, fb, 0)
    big[C_REV_BYTES - _N_SMALL] = np.where(fwd, 0, fb)
    big[C_ICMP_LEN - _N_SMALL] = np.where(req | back, np.maximum(cols["ip_len"], 28) - 28, 0)
    big[_B_BYTES] = fb
    big[_B_CONF] = cols["conf"].astype(np.float64) * CONF_SCALE
    return small.view(np.int8), big


def _lengths(names: np.ndarray, has: np.ndarray) -> np.ndarray:
    out = np.zeros(len(names), dtype=np.int64)
    k = has.nonzero()[0]
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


# --- behaviour evidence that does not need the model ---------------------------------------------
STEALTH_FLAGS = 0x16          # SYN|RST|ACK: a TCP segment with none of them is no part of any connection
DHCP_COUNT = 40               # DHCP client messages (DISCOVER/REQUEST, UDP 68 -> 67) ...
DHCP_WINDOW = 10.0            # ... within this many seconds: the segment's DHCP pool is being drained
FLOW_IDLE = 30.0              # s: a TCP conversation idle this long starts afresh
SCAN_TARGETS = 3              # distinct (host, port) probes refused or left half-open by one source ...
SCAN_HORIZON = 600.0          # ... each within this many seconds of the previous one: a (slow) scan
SCAN_SPAN = 10.0              # s since its first failure (faster scans are the model's: see Behaviour)
BUSY_PACKETS = 10             # flagged packets in a run that make a host busy with another attack
BRUTE_FAILS = 5               # refused logins that show password guessing (fail2ban's default maxretry)
BRUTE_CONNS = 10              # ... or connections to one service within WINDOW (one every 6 s and faster)
MAX_FLOWS = 65_536            # handshakes remembered across batches (those that can still fail)
MAX_SCANNERS = 4096           # sources with refused/half-open probes remembered
MAX_TARGETS = 64              # distinct targets remembered per source (enough to decide)
_H1 = np.uint64(0x9E3779B97F4A7C15)
_H2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53], dtype=np.uint64)


def _by_runs(f):
    """``f`` (a hash of each string of an object array) computed once per run of equal strings:
    a batch's rows come in runs (a flood's, a scan's, a brute force's share their addresses), and
    comparing neighbours costs a third of encoding a string."""
    def hashed(values: np.ndarray) -> np.ndarray:
        if len(values) < 64:
            return f(values)
        head = _run_heads(values)
        k = np.count_nonzero(head)
        if k * 3 > len(values) * 2:
            return f(values)
        return f(values[head])[head.cumsum() - 1]
    hashed.__doc__ = f.__doc__
    return hashed


@_by_runs
def _key_hash(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash per key string (uint64; as ``_ip_hash``), for grouping rows by key."""
    try:
        words = values.astype("S48").view(np.uint64).reshape(len(values), 6)
    except (UnicodeEncodeError, ValueError, TypeError):
        _, inv = _codes(values)
        return inv.astype(np.uint64)
    h = words @ _MIX
    h ^= h >> np.uint64(31)
    h *= _H2
    h ^= h >> np.uint64(29)
    return h


@_by_runs
def _ip_hash(values: np.ndarray) -> np.ndarray:
    """A stable 32-bit hash per address string (as int64): its first 48 bytes (an IPv6 address has
    at most 45 characters, a MAC 17) as six 64-bit words, mixed vectorised; crc32 per distinct value
    if one is not ASCII."""
    try:
        if not len(values):
            return np.empty(0, dtype=np.int64)
        words = values.astype("S48").view(np.uint64).reshape(len(values), 6)
    except (UnicodeEncodeError, ValueError, TypeError):
        distinct, inv = _codes(values)
        return np.array([zlib.crc32(str(x).encode()) for x in distinct], dtype=np.int64)[inv]
    h = words @ _MIX             # a different odd multiplier per word, summed modulo 2**64
    h ^= h >> np.uint64(29)
    h *= _H2
    return ((h ^ (h >> np.uint64(31))) >> np.uint64(32)).astype(np.int64)


class Behaviour:
    """Attack behaviour that holds on any network, decided per packet in stream order whatever the
    model says (Zeek-style; the same for any batch size, bounded memory):

    * **stealth probes** -- a TCP segment without SYN, ACK and RST (nmap -sF/-sN/-sX, hping3 -F):
      no conforming stack sends one (every segment after the opening SYN carries ACK), so each is
      a ``recon`` row keyed like any probe (by its sender); the recon rule (packets, distinct
      targets within ``WINDOW``) still decides whether they are a scan;
    * **refused or half-open probes over a long horizon** (slow scans: nmap -T0/-T1/-T2, one probe
      every 0.4 s to 5 min) -- a TCP conversation that began with a SYN and ends in a RST before
      the handshake completes (the RST is its 2nd or 3rd packet: RST/ACK from a closed port, or the
      prober's bare RST after the SYN/ACK of an open one). A source with such failures at
      ``SCAN_TARGETS`` distinct (host, port) targets, each within ``SCAN_HORIZON`` of the previous,
      is scanning once ``SCAN_SPAN`` seconds have passed since its first failure: its failure rows
      from then on are ``recon`` rows that open its incident at once (``sure``; a fast scan has
      met the recon rule by then, so its incident and kind stay the model's). Ordinary clients
      complete their handshakes; an occasional refused connection to one service never reaches
      three distinct targets. Only failures the model does not flag, or flags as recon, count (a
      flood's RSTs belong to the flood), and none of a host that sent packets the model flags as
      another attack (not recon; a run of ``BUSY_PACKETS``, see ``run``) within ``SCAN_HORIZON``:
      its refused connections are that attack's. The incident of a slow scan ends after
      ``SCAN_HORIZON`` without a packet (``Track.quiet``), the horizon that links its probes;
      after ``QUIET`` only its next probe (a SYN or a failed handshake) continues it;
    * **DHCP starvation** -- ``DHCP_COUNT`` DHCP client messages (UDP 68 -> 67: DISCOVER/REQUEST)
      within ``DHCP_WINDOW`` seconds on the segment (RFC 2131 clients wait 4 s and more between
      retries, so one client sends two or three in that time: it takes more than a dozen clients
      joining at the same moment): from the row that reaches it, each client message is a ``dos``
      row keyed by the DHCP server (the first one seen answering, else the broadcast address; a
      flood already running on that server takes them in) with the client MAC (its Ethernet
      source) as peer, so forged random MACs read as "N distinct sources". Tools that forge only
      the BOOTP client address behind one Ethernet source show as that one source.
    """

    def __init__(self, classes: Sequence[str]):
        self.recon = classes.index("recon") if "recon" in classes else -1
        self.dos = classes.index("dos") if "dos" in classes else -1
        self.dhcp_times = np.empty(0)          # the last DHCP_COUNT - 1 client-message times
        self.dhcp_server: str | None = None   # the first DHCP server seen answering
        self.dhcp_key: str | None = None      # the key of the current starvation
        self.dhcp_last = -np.inf
        # handshakes that can still fail: flow key -> (packets so far, last time), sorted by key
        self.flow_keys = np.empty(0, dtype=np.uint64)
        self.flow_n = np.empty(0, dtype=np.int64)
        self.flow_t = np.empty(0)
        self.flow_pp = np.empty(0, dtype=np.int64)   # their port pairs (low << 16 | high)
        self.scanners: dict = {}               # source -> [distinct targets (dict, ordered), last time, first]
        self.busy_h = np.empty(0, dtype=np.int64)   # hosts the model saw in another attack (hash, sorted)
        self.busy_t = np.empty(0)                   # ... and when, last
        self._ev_h = np.empty(0, dtype=np.int64)
        self._ev_t = self._ev_last = np.empty(0)
        self._run: tuple | None = None         # the last run of flagged packets: (host, packets, last time)

    def run(self, p, t: np.ndarray, predicted: np.ndarray, anomaly: np.ndarray) -> "Verdicts":
        """Per packet of the batch, in stream order (see the class doc)."""
        v = Verdicts(len(t))
        proto = p["ip_proto"]
        flags = p["tcp_flags"]
        tcp = (proto == 6) & (flags >= 0)
        if self.recon >= 0:
            # senders of packets the model flags as another attack (see _busy_before), as runs: one
            # host's flagged packets with no other host's and no 1 s gap between them (a run may go
            # on from the previous batch), busy from the run's BUSY_PACKETS-th packet on (a spoofed
            # source's single packet, or one connection the model calls an attack, is no attack)
            ev = (anomaly & (predicted != self.recon)).nonzero()[0]
            sv, te = p["ip_src"][ev], t[ev]
            brk = np.ones(len(ev) + 1, dtype=bool)
            brk[1:-1] = (sv[1:] != sv[:-1]) | (te[1:] - te[:-1] > 1.0)
            edges = brk.nonzero()[0]
            heads, tails = edges[:-1], edges[1:] - 1
            before = np.zeros(len(heads), dtype=np.int64)   # the run's packets in earlier batches
            if len(ev) and self._run is not None and self._run[0] == sv[0] and te[0] - self._run[2] <= 1.0:
                before[0] = self._run[1]
            if len(ev):
                self._run = (sv[-1], int(before[-1] + tails[-1] - heads[-1] + 1), float(te[-1]))
            need = np.maximum(BUSY_PACKETS - before, 1) - 1   # the row of this batch that makes it busy
            keep = heads + need <= tails
            since, tails = heads[keep] + need[keep], tails[keep]
            eh = _ip_hash(sv[since])
            o = eh.argsort(kind="stable")          # by host, in time order within one
            self._ev_h, self._ev_t, self._ev_last = eh[o], te[since][o], te[tails][o]
            stealth = (tcp & ((flags & STEALTH_FLAGS) == 0)).nonzero()[0]
            if len(stealth):
                v.set(stealth, self.recon, False, p["ip_src"][stealth], p["ip_dst"][stealth], True,
                      p["tcp_dstport"][stealth])
            # the packets that tell a handshake's fate: SYN, RST, FIN and the bare ACK completing it
            # (data segments come after that ACK)
            rows = (tcp & (((flags & 0x07) != 0) | (((flags & 0x3F) == 0x10) & (p["tcp_len"] <= 0)))).nonzero()[0]
            if len(rows):
                self._handshakes(p, t, rows, flags[rows], predicted, anomaly, v)
            self._busy_merge(float(t[-1]))
        if self.dos >= 0:
            self._dhcp(p, t, v)
        return v

    def _dhcp(self, p, t: np.ndarray, v: "Verdicts") -> None:
        udp = p["ip_proto"] == 17
        sport, dport = p["udp_srcport"], p["udp_dstport"]
        server = (udp & (sport == 67) & (dport == 68)).nonzero()[0]
        client = (udp & (sport == 68) & (dport == 67)).nonzero()[0]
        if len(client):
            allt = np.concatenate([self.dhcp_times, t[client]])
            k = len(self.dhcp_times)
            j = np.arange(k, len(allt))
            lo = allt.searchsorted(allt[j] - DHCP_WINDOW, side="right")
            hit = client[(j - lo + 1) >= DHCP_COUNT]
            self.dhcp_times = allt[-(DHCP_COUNT - 1):]
            # one key per starvation (hits no more than QUIET apart): the server known at its first hit
            for run in np.split(hit, (np.diff(t[hit]) > QUIET).nonzero()[0] + 1) if len(hit) else []:
                r0 = int(run[0])
                if self.dhcp_key is None or t[r0] - self.dhcp_last > QUIET:
                    before = server[server < r0]
                    if self.dhcp_server is None and len(before):
                        self.dhcp_server = str(p["ip_src"][before[0]]) or None
                    self.dhcp_key = self.dhcp_server or "255.255.255.255"
                self.dhcp_last = float(t[run[-1]])
                v.set(run, self.dos, True, np.full(len(run), self.dhcp_key, dtype=object), p["eth_src"][run], False,
                      np.full(len(run), 67))
        if self.dhcp_server is None and len(server):
            self.dhcp_server = str(p["ip_src"][server[0]]) or None

    def _handshakes(self, p, t: np.ndarray, rows: np.ndarray, fl: np.ndarray, predicted: np.ndarray,
                    anomaly: np.ndarray, v: "Verdicts") -> None:
        """Failed handshakes (a conversation that began with a SYN and gets a RST as its 2nd or 3rd
        packet, counting SYN, RST, FIN and bare ACK segments), then the per-source sketch of their
        distinct targets."""
        sp, dp = np.maximum(p["tcp_srcport"][rows], 0), np.maximum(p["tcp_dstport"][rows], 0)
        # only conversations that begin here (a SYN) or are remembered can fail: others by port pair out
        pp = (np.minimum(sp, dp) << 16) | np.maximum(sp, dp)
        # a conversation begins with a SYN the model does not flag or flags as recon (not a flood's)
        opening = ((fl & 0x12) == 0x02) & (~anomaly[rows] | (predicted[rows] == self.recon))
        want = _unique(np.concatenate([pp[opening], self.flow_pp]))
        mine = want[np.minimum(want.searchsorted(pp), max(len(want) - 1, 0))] == pp if len(want) else \
            np.zeros(len(pp), dtype=bool)
        if not mine.all():
            rows, fl, sp, dp, pp, opening = rows[mine], fl[mine], sp[mine], dp[mine], pp[mine], opening[mine]
        if not len(rows):
            keep = self.flow_t > float(t[-1]) - FLOW_IDLE
            self.flow_keys, self.flow_n, self.flow_t, self.flow_pp = (self.flow_keys[keep], self.flow_n[keep],
                                                                      self.flow_t[keep], self.flow_pp[keep])
            return
        src, dst = p["ip_src"][rows], p["ip_dst"][rows]
        h = _ip_hash(np.concatenate([src, dst]))
        a = (h[:len(rows)] << 16) | sp
        b = (h[len(rows):] << 16) | dp
        fk = np.minimum(a, b).astype(np.uint64) * _H1 ^ np.maximum(a, b).astype(np.uint64)
        o = fk.argsort(kind="stable")            # by conversation, in stream order within one
        fks, ts, f0 = fk[o], t[rows][o], fl[o]
        m = len(o)
        newgrp = np.ones(m, dtype=bool)
        newgrp[1:] = fks[1:] != fks[:-1]
        start = newgrp.copy()
        start[1:] |= ts[1:] - ts[:-1] > FLOW_IDLE       # idle: the 4-tuple starts a new conversation
        # packets already seen of conversations carried over from earlier batches
        base = np.zeros(m, dtype=np.int64)
        if len(self.flow_keys):
            si = np.minimum(self.flow_keys.searchsorted(fks), len(self.flow_keys) - 1)
            hit = newgrp & (self.flow_keys[si] == fks) & (ts - self.flow_t[si] <= FLOW_IDLE)
            base[hit] = self.flow_n[si[hit]]
        seg_start = start.nonzero()[0]
        seg = start.cumsum() - 1
        index = np.arange(m) - seg_start[seg] + base[seg_start][seg]   # 0-based packet of its conversation
        began = ((base > 0) | opening[o])[seg_start][seg]
        rst = (f0 & 0x04) != 0
        fail = rst & began & (index >= 1) & (index <= 2)
        # conversations that can still fail: began with a SYN, fewer than 3 packets, no RST yet
        seg_end = np.concatenate([seg_start[1:], [m]]) - 1
        last_of_group = np.concatenate([newgrp[1:], [True]])
        anyrst = np.add.reduceat(rst.astype(np.int64), seg_start) > 0
        keep = last_of_group[seg_end] & began[seg_start] & (index[seg_end] < 2) & ~anyrst
        kk, kn, kt = fks[seg_end[keep]], index[seg_end[keep]] + 1, ts[seg_end[keep]]
        kp = pp[o][seg_end[keep]]
        now = float(t[-1])
        seen = np.minimum(fks.searchsorted(self.flow_keys), m - 1)
        old = (self.flow_t > now - FLOW_IDLE) & (fks[seen] != self.flow_keys)
        keys = np.concatenate([self.flow_keys[old], kk])
        ns = np.concatenate([self.flow_n[old], kn])
        tt = np.concatenate([self.flow_t[old], kt])
        pps = np.concatenate([self.flow_pp[old], kp])
        if len(keys) > MAX_FLOWS:
            recent = tt.argsort(kind="stable")[-MAX_FLOWS:]
            keys, ns, tt, pps = keys[recent], ns[recent], tt[recent], pps[recent]
        so = keys.argsort(kind="stable")
        self.flow_keys, self.flow_n, self.flow_t, self.flow_pp = keys[so], ns[so], tt[so], pps[so]
        fr = np.sort(rows[o[fail]])
        if not len(fr):
            return
        v.failed[fr] = True
        # the sketch: only rows the model does not flag or flags as recon (a flood's RSTs are the flood's)
        fr = fr[~anomaly[fr] | (predicted[fr] == self.recon)]
        if not len(fr):
            return
        ack = (p["tcp_flags"][fr] & 0x10) != 0          # RST/ACK: the server refusing; bare RST: the prober
        client = np.where(ack, p["ip_dst"][fr], p["ip_src"][fr])
        host = np.where(ack, p["ip_src"][fr], p["ip_dst"][fr])
        port = np.where(ack, p["tcp_srcport"][fr], p["tcp_dstport"][fr])
        target = (_ip_hash(host) << 16) | np.maximum(port, 0)
        sure, notes = [], []
        tf = t[fr]
        busy = self._busy_before(_ip_hash(client), tf)
        clients, inv = _codes(client)
        for ci, c in enumerate(clients):
            mine = (inv == ci).nonzero()[0]
            st = self.scanners.pop(c, None)
            for i, x, tt_, b in zip(mine.tolist(), target[mine].tolist(), tf[mine].tolist(), busy[mine].tolist()):
                if tt_ - b <= SCAN_HORIZON:      # its failures belong to a flood / brute force the model sees
                    st = None
                    continue
                if st is None or tt_ - st[1] > SCAN_HORIZON:
                    st = [{}, tt_, tt_]
                if x not in st[0] and len(st[0]) < MAX_TARGETS:
                    st[0][x] = None
                st[1] = tt_
                if len(st[0]) >= SCAN_TARGETS and tt_ - st[2] >= SCAN_SPAN:
                    sure.append(i)
                    notes.append((len(st[0]), st[2]))
            self.scanners[c] = st
        while len(self.scanners) > MAX_SCANNERS:
            self.scanners.pop(next(iter(self.scanners)))
        if sure:
            s = np.array(sure)
            v.set(fr[s], self.recon, True, client[s], host[s], ~ack[s], port[s])
            v.scan_targets[fr[s]] = [x for x, _ in notes]
            v.scan_since[fr[s]] = [x for _, x in notes]


    def _busy_before(self, hosts: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Per (host hash, time): the last time at or before it that the host sent a packet the model
        flags as an attack other than recon (earlier batches or this one), else -inf."""
        out = np.full(len(hosts), -np.inf)
        if len(self.busy_h):
            k = np.minimum(self.busy_h.searchsorted(hosts), len(self.busy_h) - 1)
            hit = self.busy_h[k] == hosts
            out[hit] = self.busy_t[k[hit]]
        eh, et, el = self._ev_h, self._ev_t, self._ev_last
        if len(eh):
            lo = eh.searchsorted(hosts, side="left")
            hi = eh.searchsorted(hosts, side="right")
            for j in (hi > lo).nonzero()[0].tolist():   # the host's last run begun by then
                q = lo[j] + int(np.searchsorted(et[lo[j]:hi[j]], times[j], side="right")) - 1
                if q >= lo[j]:
                    out[j] = max(out[j], min(el[q], times[j]))
        return out

    def _busy_merge(self, now: float) -> None:
        """Remember each flagged host's last time (within SCAN_HORIZON; the most recent MAX_FLOWS)."""
        if not len(self._ev_h):
            keep = self.busy_t >= now - SCAN_HORIZON
            self.busy_h, self.busy_t = self.busy_h[keep], self.busy_t[keep]
            return
        h = np.concatenate([self.busy_h, self._ev_h])
        tt = np.concatenate([self.busy_t, self._ev_last])
        o = h.argsort(kind="stable")              # earlier batches first within one host
        h, tt = h[o], tt[o]
        last = np.concatenate([h[1:] != h[:-1], [True]])
        h, tt = h[last], tt[last]
        keep = tt >= now - SCAN_HORIZON
        h, tt = h[keep], tt[keep]
        if len(h) > MAX_FLOWS:
            r = np.sort(tt.argsort(kind="stable")[-MAX_FLOWS:])
            h, tt = h[r], tt[r]
        self.busy_h, self.busy_t = h, tt


class Verdicts:
    """What ``Behaviour.run`` decided for the rows of one batch."""

    def __init__(self, n: int):
        self.cls = np.full(n, -1, dtype=np.int64)     # class override (-1: the model's)
        self.sure = np.zeros(n, dtype=bool)            # opens its incident at once
        self.failed = np.zeros(n, dtype=bool)          # a refused / half-open handshake
        self.rows = np.zeros(n, dtype=bool)            # key, peer, fwd and server port below apply
        self.key = self.peer = None                    # (object arrays, made by the first ``set``)
        self.fwd = np.zeros(n, dtype=bool)
        self.server_port = np.full(n, -1, dtype=np.int64)
        self.scan_targets = np.zeros(n, dtype=np.int64)   # slow scan: distinct failed targets so far
        self.scan_since = np.full(n, np.inf)              # slow scan: time of its first failure
        self.upload = None                                # upload after an attack: its UploadInfo (object array)

    def set(self, rows, cls: int, sure: bool, key, peer, fwd, server_port) -> None:
        if self.key is None:
            self.key, self.peer = np.empty(len(self.cls), dtype=object), np.empty(len(self.cls), dtype=object)
        self.cls[rows] = cls
        self.sure[rows] = sure
        self.rows[rows] = True
        self.key[rows] = key
        self.peer[rows] = peer
        self.fwd[rows] = fwd
        self.server_port[rows] = server_port


def _is_local(a: str) -> bool:
    """Not an address on the Internet (``address_class`` is not public: private, CGNAT, loopback,
    link-local, multicast, broadcast, unspecified, IPv6 ULA/link-local/multicast) -- or not an IP
    address at all (a MAC address)."""
    return not isinstance(a, str) or address_class(a) != 3


class _AddrCodes(dict):
    """Address string -> a 63-bit code: a 62-bit hash of it that is the same in every process
    (unlike ``hash``: two CRC-32s, of the string and of it reversed) with the lowest bit saying
    whether the address is local (``_is_local``); at most MAX_CONTACTS kept (a code does not change
    when it starts again)."""

    def __missing__(self, a) -> int:
        if len(self) >= MAX_CONTACTS:
            self.clear()
        b = str(a).encode("utf-8", "surrogatepass")
        h = (zlib.crc32(b) << 30) ^ zlib.crc32(b[::-1])     # (62 bits: an int64 with the bit below)
        v = self[a] = (h << 1) | int(_is_local(a))
        return v


class UploadInfo:
    """What the upload rule saw when it fired for one (host, external peer) pair: the data sent
    before the row that fired (``sent``: data segments of at least SEGMENT_MIN bytes), since when
    (``since``: its first counted row), its connections (SYNs) until then and the host's incidents
    that made it an attacker (``incidents``: Tracks, of any class, whose attack began before that SYN
    and which had a packet within LOOKBACK of the row)."""

    __slots__ = ("host", "peer", "port", "sent", "since", "conns", "incidents")

    def __init__(self, host, peer, port, sent, since, conns, incidents):
        self.host, self.peer, self.port = host, peer, port
        self.sent, self.since, self.conns, self.incidents = sent, since, conns, incidents


class Uploads:
    """**Upload after an attack** (a correlation; the model calls these packets normal): a host the
    engine has named the attacker of an incident (any class but this rule's own; open, or with a
    packet within ``LOOKBACK``) that sends a bulk upload to an external address it first contacted
    after that attack began is exfiltrating -- the compromise-then-exfiltrate pattern, whatever the
    upload looks like packet by packet (an HTTPS POST of a few MB is what every backup looks like).

    Per (local host, external peer) pair, in stream order, the same for any batch size:

    * **contact**: the time of the host's first SYN to the peer (the engine's memory: the last
      ``MAX_CONTACTS`` pairs by use); a pair without one (a connection begun before the capture, or
      forgotten) is never new and is not counted;
    * **counting**: the bytes of its TCP data segments (``SEGMENT_MIN`` bytes and more, both
      directions, packets the model does not flag) since its first SYN or its last decision;
    * **decision**, at the segment that brings the count to ``BULK_BYTES``: an upload (the host sent
      at least ``UPLOAD_RATIO`` times what it received) by a host that is then the attacker of an
      incident whose attack began before the pair's first SYN and that had a packet within
      ``LOOKBACK`` -> from that segment on, the pair's packets (both directions, those the model does
      not flag) are ``exfiltration`` rows of the host that open its incident at once (``sure``; kind
      ``upload-after-attack`` unless the host's exfiltration incident is running: they join it).
      The rows stay the host's until the pair is quiet for QUIET. After any other decision the
      pair is decided for its burst: counted again after QUIET without a counted segment.

    The decision depends on the incidents opened before its row; the engine splits a batch at such
    a row (``IncidentEngine.update``) so that it is taken with the same incidents for any batch size.
    """

    def __init__(self, exfil: int, engine: "IncidentEngine"):
        self.exfil, self.engine = exfil, engine
        # (host, external peer) pairs with a first SYN, sorted by key (at most MAX_CONTACTS, the least
        # recently active dropped): first SYN time, SYNs, and the count since its first SYN or last
        # decision -- bytes sent and received, since, SYNs before it, last row
        self.K = np.empty(0, dtype=np.int64)
        self.FIRST, self.SINCE, self.LAST = np.empty(0), np.empty(0), np.empty(0)
        self.SYNS, self.S, self.R, self.SYNB = (np.empty(0, dtype=np.int64) for _ in range(4))
        self.DEC = np.empty(0, dtype=bool)     # decided in its current burst (see plan)
        self.live: dict = {}         # pair -> [UploadInfo, last time]
        self.codes = _AddrCodes()    # address -> its code (see _AddrCodes)
        # each address's code, looked up once per run of equal ones (a connection's segments)
        self._code = _by_runs(lambda v: np.fromiter(map(self.codes.__getitem__, v.tolist()), dtype=np.int64,
                                                    count=len(v)))
        self.registry: dict = {}     # host -> its incidents that name it the attacker (see note())

    # --- incidents that name a host the attacker --------------------------------------------------
    def note(self, tr: "Track") -> None:
        """Remember an incident that just opened by its attacker (an IP address; not the rule's own)."""
        if tr.cls == self.exfil and tr.by_behaviour:
            return
        host = tr.attacker
        if not host or ("." not in host and ":" not in host) or (host.count(":") == 5 and len(host) == 17):
            return
        lst = self.registry.pop(host, [])
        lst.append(tr)
        self.registry[host] = lst[-16:]
        while len(self.registry) > MAX_TRACKS:
            self.registry.pop(next(iter(self.registry)))

    def may_name(self, host: str, row: int, p, anomaly: np.ndarray) -> bool:
        """Could an incident naming ``host`` its attacker have opened in this batch before ``row``
        (then the decision there waits for the rows before it: see ``plan``)? Only if the host has
        incidents already, or is the attacker of a track (its key; a flood's main source), or one of the
        batch's earlier packets involving it is flagged, a RST or a stealth probe (what a behaviour
        rule may flag), or it has an upload running."""
        if host in self.registry or any(x[0].host == host for x in self.live.values()):
            return True
        for tr in self.engine.tracks.values():
            if (tr.key == host) if tr.rule.role == "attacker" else tr.top_peers(1) == [host]:
                return True
        fl = p["tcp_flags"][:row]
        odd = anomaly[:row] | ((p["ip_proto"][:row] == 6) & (fl >= 0) & (((fl & 0x04) != 0) | ((fl & STEALTH_FLAGS) == 0)))
        r = odd.nonzero()[0]
        return bool(len(r)) and bool(((p["ip_src"][r] == host) | (p["ip_dst"][r] == host)).any())

    def named(self, peer: str, row: int, p) -> bool:
        """Did a DNS answer name ``peer`` before ``row`` (the engine's names, or this batch's answers)?
        A device uploading to its cloud looked the name up; data pushed to a bare address did not."""
        return peer in self.engine._named or self.engine._batch_answers(p).get(peer, _NEVER) < row

    def implicating(self, host: str, contact: float, t: float) -> tuple:
        return tuple(x for x in self.registry.get(host, ()) if x.first_time <= contact and x.last_time >= t - LOOKBACK)

    # --- per batch -----------------------------------------------------------------------------------
    def _pairs(self, src: np.ndarray, dst: np.ndarray) -> tuple:
        """Per row: its pair key (host first), sent by a local host to an external one (``out``), or
        the other way (``inn``)."""
        vs, vd = self._code(src), self._code(dst)
        ls, ld = (vs & 1) == 1, (vd & 1) == 1
        out, inn = ls & ~ld, ld & ~ls
        hs, hd = (vs >> 1).astype(np.uint64), (vd >> 1).astype(np.uint64)
        pk = (np.where(out, hs * _H1 ^ hd, hd * _H1 ^ hs)).view(np.int64)
        return pk, out, inn

    def plan(self, p, t: np.ndarray, anomaly: np.ndarray):
        """Read-only pass over a batch: ``(split, plan)``. ``split`` > 0: the first row (> 0) where a
        decision needs the incidents opened before it, or a running upload's quiet gap ends it --
        process the rows before it first. Else ``plan`` for ``commit`` (None: nothing to do)."""
        proto, fl = p["ip_proto"], p["tcp_flags"]
        tcp = (proto == 6) & (fl >= 0)
        clean = tcp & ~anomaly
        syn = clean & ((fl & 0x12) == 0x02)
        data = clean & (p["frame_len"] >= SEGMENT_MIN)
        live = self.live
        rows = (tcp if live else (syn | data)).nonzero()[0]
        if not len(rows):
            return 0, None
        src, dst = p["ip_src"][rows], p["ip_dst"][rows]
        pk, out, inn = self._pairs(src, dst)
        both = out | inn
        rsyn = syn[rows] & out
        rdata = data[rows] & both
        rt = t[rows]
        lv = np.zeros(len(rows), dtype=bool)
        ends: list = []            # running uploads that end (quiet) before this batch's rows of theirs
        verdict: list = []         # (positions in rows, UploadInfo, last time, pair)
        if live:
            lk = np.fromiter(live, dtype=np.int64, count=len(live))
            lv = both & np.isin(pk, lk)
            for k in _unique(pk[lv]).tolist():
                pos = (lv & (pk == k)).nonzero()[0]
                info, last = live[k]
                gap = (np.diff(np.concatenate([[last], rt[pos]])) > QUIET).nonzero()[0]
                if len(gap):
                    g = int(rows[pos[gap[0]]])
                    if g > 0:
                        return g, None     # (its rows from there on are counted afresh)
                    ends.append(k)
                    lv[pos] = False
                    continue
                verdict.append((pos[~anomaly[rows[pos]]], info, float(rt[pos[-1]]), k))
            for k, (info, last) in live.items():
                if k not in ends and float(t[0]) - last > QUIET:
                    ends.append(k)
        sel = ((rsyn | rdata) & ~lv).nonzero()[0]
        if not len(sel):
            return 0, ((rows, src, dst, out, pk, tcp, anomaly, t, None, [], verdict, ends) if verdict or ends
                       else None)
        keys = pk[sel]
        o = keys.argsort(kind="stable")
        sk = keys[o]
        ps = sel[o]                           # positions in rows: by pair, stream order within one
        m = len(ps)
        hd_ = _run_heads(sk).nonzero()[0]
        size = np.diff(np.concatenate([hd_, [m]]))
        gid = np.repeat(np.arange(len(hd_)), size)
        uk = sk[hd_]
        G = len(uk)
        K = self.K
        at = np.minimum(K.searchsorted(uk), max(len(K) - 1, 0))
        known = (K[at] == uk) if len(K) else np.zeros(G, dtype=bool)
        ar = np.arange(m)
        sy = rsyn[ps]
        da = rdata[ps]
        end = hd_ + size
        firstsyn = np.minimum.reduceat(np.where(sy, ar, m), hd_)
        tps = rt[ps]
        # a pair decided in this burst waits for a quiet spell (QUIET without a counted row) to count again
        b_dec = (self.DEC[at] if len(K) else np.zeros(G, dtype=bool)) & known
        gp = np.empty(m, dtype=bool)
        gp[1:] = (tps[1:] - tps[:-1]) > QUIET
        gp[hd_] = tps[hd_] - np.where(known, self.LAST[at] if len(K) else 0.0, -np.inf) > QUIET
        firstgap = np.minimum.reduceat(np.where(gp, ar, m), hd_)
        start = np.where(known, np.where(b_dec, firstgap, hd_), firstsyn)   # a new contact: from its first SYN
        restart = b_dec & (firstgap < hd_ + size)
        act = known | (firstsyn < hd_ + size)      # pairs to remember (counted from ``start``)
        valid = ar >= start[gid]
        vs, vd = sy & valid, da & valid
        fo = out[ps]
        by = p["frame_len"][rows[ps]].astype(np.int64)
        bs = np.where(vd & fo, by, 0)
        br = np.where(vd & ~fo, by, 0)
        zi, zf = np.zeros(G, dtype=np.int64), np.zeros(G)
        b_first = np.where(known, self.FIRST[at] if len(K) else zf, tps[np.minimum(firstsyn, m - 1)])
        b_syns = np.where(known, self.SYNS[at] if len(K) else zi, 0)
        b_s = np.where(known, self.S[at] if len(K) else zi, 0)
        b_r = np.where(known, self.R[at] if len(K) else zi, 0)
        b_since = np.where(known, self.SINCE[at] if len(K) else zf, np.nan)
        b_synb = np.where(known, self.SYNB[at] if len(K) else zi, 0)
        b_s, b_r = np.where(restart, 0, b_s), np.where(restart, 0, b_r)
        b_since = np.where(np.isnan(b_since) | restart, tps[np.minimum(start, m - 1)], b_since)
        b_synb = np.where(restart, b_syns, b_synb)
        c = np.cumsum(bs + br)
        off = c[hd_] - (bs + br)[hd_]
        tot = (b_s + b_r)[gid] + c - off[gid]
        cross = vd & (tot >= BULK_BYTES)
        n_s = b_s + np.add.reduceat(bs, hd_)
        n_r = b_r + np.add.reduceat(br, hd_)
        n_syns = b_syns + np.add.reduceat(vs.astype(np.int64), hd_)
        n_since, n_synb = b_since.copy(), b_synb.copy()
        n_dec = b_dec & ~restart
        n_last = tps[end - 1]
        trig: list = []            # (pair, UploadInfo, batch row of the decision)
        split = 0
        for g in (_unique(gid[cross]).tolist() if cross.any() else ()):
            # the rare pair that reaches BULK_BYTES in this batch: row by row
            k = int(uk[g])
            a0, a1 = int(start[g]), int(end[g])
            first = float(b_first[g])
            st = [int(b_s[g]), int(b_r[g]), float(b_since[g]), int(b_synb[g]), False]
            synb = int(b_syns[g]) + np.cumsum(vs[a0:a1].astype(np.int64))  # SYNs up to each row
            i = a0
            while i < a1:
                cs = st[0] + np.cumsum(bs[i:a1])
                cr = st[1] + np.cumsum(br[i:a1])
                hit = ((cs + cr) >= BULK_BYTES).nonzero()[0]
                if not len(hit):
                    st[0], st[1] = int(cs[-1]), int(cr[-1])
                    break
                j = i + int(hit[0])
                row = int(rows[ps[j]])
                if cs[hit[0]] >= UPLOAD_RATIO * cr[hit[0]]:
                    q = ps[j]
                    host, peer = (str(src[q]), str(dst[q])) if fo[j] else (str(dst[q]), str(src[q]))
                    named = self.named(peer, row, p)
                    if not named and row > 0 and self.may_name(host, row, p, anomaly):
                        split = row if not split else min(split, row)
                        break
                    inc = () if named else self.implicating(host, first, float(tps[j]))
                    if inc:
                        port = int(p["tcp_dstport"][row] if fo[j] else p["tcp_srcport"][row])
                        info = UploadInfo(host, peer, port, int(cs[hit[0]] - bs[j]), st[2],
                                          int(synb[j - a0]) - st[3], inc)
                        trig.append((k, info, row))
                        st = [0, 0, np.nan, int(synb[-1]), True]    # (counted afresh after a quiet spell)
                        break
                # decided, not an exfiltration: counted afresh after the pair's next quiet spell
                q = (gp[j + 1:a1]).nonzero()[0]
                if not len(q):
                    st = [0, 0, np.nan, int(synb[-1]), True]
                    break
                i = j + 1 + int(q[0])
                st = [0, 0, float(tps[i]), int(synb[i - a0 - 1]), False]
            n_s[g], n_r[g], n_since[g], n_synb[g] = st[:4]
            n_dec[g] = st[4]
            if split:
                break
        new = (uk, act, known, at, b_first, n_syns, n_s, n_r, n_since, n_synb, n_last, n_dec)
        if split:
            return split, None
        return 0, (rows, src, dst, out, pk, tcp, anomaly, t, new, trig, verdict, ends)

    def commit(self, plan, p, beh: "Verdicts") -> None:
        """Apply a plan: remember contacts and counts, start the uploads that fired, and set the
        rows of running uploads as ``exfiltration`` rows of their host (not those a behaviour rule
        decided)."""
        rows, src, dst, out, pk, tcp, anomaly, t, new, trig, verdict, ends = plan
        live = self.live
        for k in ends:
            live.pop(k, None)
        if new is not None:
            uk, act, known, at, first, syns, sent, recv, since, synb, last, dec = new
            cols = (self.FIRST, self.SYNS, self.S, self.R, self.SINCE, self.SYNB, self.DEC, self.LAST)
            vals = (first, syns, sent, recv, since, synb, dec, last)
            upd = act & known
            if upd.any():
                for col, v in zip(cols, vals):
                    col[at[upd]] = v[upd]
            add = act & ~known
            if add.any():
                K = np.concatenate([self.K, uk[add]])
                o = K.argsort(kind="stable")
                merged = [np.concatenate([col, v[add]])[o] for col, v in zip(cols, vals)]
                K = K[o]
                if len(K) > MAX_CONTACTS:     # the least recently active go
                    keep = np.sort(merged[-1].argsort(kind="stable")[-MAX_CONTACTS:])
                    K, merged = K[keep], [x[keep] for x in merged]
                self.K = K
                self.FIRST, self.SYNS, self.S, self.R, self.SINCE, self.SYNB, self.DEC, self.LAST = merged
        if trig:
            # the pair's packets from the decision on: every TCP row of the batch (not only the counted)
            allr = tcp.nonzero()[0]
            if len(allr) != len(rows) or not np.array_equal(allr, rows):
                rows, src, dst = allr, p["ip_src"][allr], p["ip_dst"][allr]
                pk, out, inn = self._pairs(src, dst)
                pk[~(out | inn)] = -1
            for k, info, r0 in trig:
                pos = (pk == k).nonzero()[0]
                pos = pos[rows[pos] >= r0]
                pos = pos[~anomaly[rows[pos]]]
                verdict.append((pos, info, float(t[rows[pos[-1]]]) if len(pos) else float(t[r0]), k))
        for pos, info, last, k in verdict:
            live[k] = [info, last]
            while len(live) > MAX_PAIRS:
                live.pop(next(iter(live)))
            r = rows[pos]
            if not len(r):
                continue
            free = ~beh.rows[r]
            r, pos = r[free], pos[free]
            if not len(r):
                continue
            fwd = out[pos]
            peer = np.where(fwd, dst[pos], src[pos])
            sport = np.where(fwd, p["tcp_dstport"][r], p["tcp_srcport"][r])
            beh.set(r, self.exfil, True, np.full(len(r), info.host, dtype=object), peer, fwd, sport)
            if beh.upload is None:
                beh.upload = np.empty(len(beh.cls), dtype=object)
            beh.upload[r] = info

