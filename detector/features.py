"""Packet features: ONE vectorised pipeline for training, replay and live capture.

``new_extractor(featurizer)`` returns a stateful, per-stream extractor whose
``transform(PacketBatch) -> float32 (n, F)`` turns every frame (ARP and non-IP included) into a row.
Two featurizers exist:

``context-v1`` (the default, ``FEATURE_NAMES``)
    Per-packet fields without raw identities (no IP/MAC values, frame numbers or absolute times):
    lengths, protocol, port *categories*, TCP flags, window, TTL, ICMP type, ARP opcode, DNS name shape
    (length, character entropy, labels), MQTT/HTTP/FTP result codes. Plus streaming context over packet
    timestamps, Kitsune/AfterImage style: exponentially decayed counters (time constants 1 s and 10 s)
    per source host, per destination host and per host pair (packets, bytes, SYN, SYN-ACK, RST,
    failed connections, new peers, new ports, DNS queries and new names, ICMP, ARP replies, failed logins,
    upload/download bytes), a new-peer indicator and an IP->MAC binding-change indicator (ARP poisoning,
    forged answers from a spoofed address).

``paper`` (``PAPER_FEATURE_NAMES``)
    The seed paper's 11 raw fields (frame number, lengths, protocol, TCP ports and the addresses as
    integers), kept only so ``iotwatch train --preset paper`` reproduces the paper's protocol.

Determinism and bounds: only packet time is used (never the wall clock), made monotonic per stream;
host/pair identities are hashed with a fixed 64-bit FNV-1a (no per-process salt); every state table
expires idle keys and is capped in size, so memory is bounded on any stream.

``FEATURE_SCHEMA`` hashes the featurizer version and its feature names; a model bundle records it and
``load_bundle`` refuses a bundle built for another schema.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter

import numpy as np

from iotwatch.captures.batch import PacketBatch

FEATURIZER_VERSION = "context-v1"

# ---------------------------------------------------------------------------------------------------
# Feature names
# ---------------------------------------------------------------------------------------------------
# Service-port buckets: the lower-numbered / known side of a TCP/UDP conversation.
PORT_BUCKETS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("ftp", (20, 21)), ("ssh", (22,)), ("telnet", (23, 2323)), ("smtp", (25, 465, 587)),
    ("dns", (53,)), ("dhcp", (67, 68, 546, 547)), ("http", (80, 8000, 8008, 8080, 8081, 8888)),
    ("ntp", (123,)), ("https", (443, 8443)), ("mdns", (5353,)), ("ssdp", (1900,)),
    ("mqtt", (1883, 8883)), ("coap", (5683, 5684)), ("rtsp", (554, 8554)),
)
# (name, ICMPv4 types, ICMPv6 types)
_ICMP_TYPES = (("echo_request", (8,), (128,)), ("echo_reply", (0,), (129,)), ("unreachable", (3,), (1,)),
               ("time_exceeded", (11,), (3,)), ("router_adv", (9,), (134,)), ("router_sol", (10,), (133,)),
               ("neighbor", (), (135, 136)))
_DNS_QTYPES = (("a", 1), ("aaaa", 28), ("txt", 16), ("null", 10), ("cname", 5), ("mx", 15), ("any", 255))

_PACKET_NAMES = (
    ["frame_len_log", "ip_len_log", "tcp_len_log", "payload_frac", "ip_ttl", "ip_df", "ip_mf",
     "ip_fragment", "ipv4", "ipv6", "non_ip",
     "proto_tcp", "proto_udp", "proto_icmp", "proto_icmpv6", "proto_other_ip", "arp",
     "tcp_fin", "tcp_syn", "tcp_rst", "tcp_psh", "tcp_ack", "tcp_urg", "tcp_syn_only", "tcp_synack",
     "tcp_window_log", "tcp_window_zero", "tcp_hdr_len", "tcp_options"]
    + [f"port_{b}" for b, _ in PORT_BUCKETS]
    + ["port_other_system", "port_other_registered", "port_both_ephemeral", "port_none",
       "to_service", "from_service"]
    + [f"icmp_{n}" for n, _, _ in _ICMP_TYPES] + ["icmp_other", "icmp_code_nonzero"]
    + ["arp_request", "arp_reply", "arp_gratuitous", "eth_broadcast", "eth_multicast"]
    + ["dns", "dns_response", "dns_rcode_error", "dns_answers_log"]
    + [f"dns_qtype_{n}" for n, _ in _DNS_QTYPES]
    + ["dns_name_len", "dns_name_entropy", "dns_label_max", "dns_labels", "dns_digit_frac"]
    + ["mqtt", "mqtt_connect", "mqtt_connack", "mqtt_publish", "mqtt_refused",
       "http_request", "http_post", "http_status_2xx", "http_status_401_403", "http_status_4xx_5xx",
       "ftp_reply", "ftp_230", "ftp_331", "ftp_530", "auth_fail"]
)

# Host-table columns (name, time constant in seconds). "s_" = sent by the host, "r_" = received.
HOST_COLUMNS: tuple[tuple[str, float], ...] = (
    ("s_pkts_1s", 1.0), ("s_pkts_10s", 10.0), ("s_bytes_1s", 1.0), ("s_bytes_10s", 10.0),
    ("s_syn_1s", 1.0), ("s_syn_10s", 10.0), ("s_synack_10s", 10.0), ("s_rst_10s", 10.0),
    ("s_newpeer_10s", 10.0), ("s_newport_10s", 10.0), ("s_dnsq_10s", 10.0), ("s_dnsnew_10s", 10.0),
    ("s_icmp_1s", 1.0), ("s_arp_reply_10s", 10.0), ("s_authfail_30s", 30.0), ("s_macchange_30s", 30.0),
    ("r_pkts_1s", 1.0), ("r_pkts_10s", 10.0), ("r_bytes_10s", 10.0), ("r_syn_1s", 1.0),
    ("r_fail_10s", 10.0), ("r_newpeer_10s", 10.0), ("r_dnsresp_200ms", 0.2),
)
# Pair (unordered host pair) columns; "fwd"/"rev" are turned into sent/received per packet.
PAIR_COLUMNS: tuple[tuple[str, float], ...] = (
    ("pkts_1s", 1.0), ("pkts_10s", 10.0), ("fwd_bytes_10s", 10.0), ("rev_bytes_10s", 10.0),
    ("syn_10s", 10.0), ("authfail_30s", 30.0), ("dnsq_10s", 10.0), ("dnsr_10s", 10.0), ("macchange_30s", 30.0),
)

_CONTEXT_NAMES = (
    [f"src_{n}" for n, _ in HOST_COLUMNS]
    + [f"dst_{n}" for n, _ in HOST_COLUMNS]
    + ["pair_pkts_1s", "pair_pkts_10s", "pair_sent_bytes_10s", "pair_recv_bytes_10s", "pair_updown_ratio",
       "pair_syn_10s", "pair_authfail_30s", "pair_dns_resp_per_query"]
    + ["src_syn_ratio", "src_fail_ratio", "src_rst_ratio", "src_updown_ratio", "dst_syn_ratio",
       "new_peer", "new_port", "mac_changed", "dst_mac_changed", "pair_macchange_30s"]
    + ["src_local", "dst_local", "dst_group", "src_public", "dst_public", "src_age_log", "dst_age_log",
       "pair_age_log", "pair_dns_before", "ra_rogue"]
    + ["peer_resolved", "pair_upload_unresolved_log"]
)

FEATURE_NAMES: tuple[str, ...] = tuple(_PACKET_NAMES + _CONTEXT_NAMES)

PAPER_FEATURE_NAMES: tuple[str, ...] = (
    "frame_number", "frame_len", "eth_src", "eth_dst", "ip_src", "ip_dst", "ip_proto", "ip_len",
    "tcp_len", "tcp_srcport", "tcp_dstport",
)


def schema_hash(featurizer: str, names) -> str:
    """``<featurizer>:<sha256 prefix of the names>``; what a bundle must match."""
    h = hashlib.sha256(("\n".join([featurizer, *names])).encode()).hexdigest()[:16]
    return f"{featurizer}:{h}"


FEATURE_SCHEMA = schema_hash(FEATURIZER_VERSION, FEATURE_NAMES)
PAPER_FEATURE_SCHEMA = schema_hash("paper", PAPER_FEATURE_NAMES)

FEATURIZERS = {"context-v1": (FEATURE_NAMES, FEATURE_SCHEMA), "paper": (PAPER_FEATURE_NAMES, PAPER_FEATURE_SCHEMA)}


def featurizer_info(featurizer: str) -> tuple[tuple[str, ...], str]:
    """(feature names, schema hash) of a featurizer; KeyError for an unknown one."""
    return FEATURIZERS[featurizer]


def new_extractor(featurizer: str = FEATURIZER_VERSION, **options):
    """A fresh stateful extractor for one packet stream."""
    if featurizer == "context-v1":
        return ContextExtractor(**options)
    if featurizer == "paper":
        return PaperExtractor()
    raise KeyError(f"unknown featurizer {featurizer!r}")


# ---------------------------------------------------------------------------------------------------
# Hashing and bounded state tables (all vectorised over a batch)
# ---------------------------------------------------------------------------------------------------
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def hash_strings(values: np.ndarray) -> np.ndarray:
    """Deterministic 64-bit FNV-1a of each string (code points); "" hashes to the offset.

    A batch holds few distinct strings (hosts, names) many times over: hash each distinct one once
    (vectorised), then map back."""
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    distinct = dict.fromkeys(items)
    if len(distinct) * 2 > n:
        return _fnv1a(np.asarray(items, dtype=str))
    hashes = _fnv1a(np.asarray(list(distinct), dtype=str)).tolist()
    lookup = dict(zip(distinct, hashes))
    return np.array(list(map(lookup.__getitem__, items)), dtype=np.uint64)  # 2x a generator


def _fnv1a(u: np.ndarray) -> np.ndarray:
    """FNV-1a over the code points of a numpy unicode array, one column of characters at a time."""
    n = len(u)
    width = u.dtype.itemsize // 4
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if width == 0:
        return h
    codes = u.view(np.uint32).reshape(n, width).astype(np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            c = codes[:, j]
            live = c != 0  # numpy pads short strings with NUL: keep them from changing the hash
            h = np.where(live, (h ^ c) * _FNV_PRIME, h)
    return h


def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order-dependent combination of two uint64 hashes."""
    with np.errstate(over="ignore"):
        return (a * np.uint64(0x9E3779B97F4A7C15)) ^ (b + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)


def _merge_state(keys_old, cols_old, keep_old, keys_new, cols_new, now, idle, cap, time_col=0):
    """Union of the old rows not updated (``keep_old``) and the new rows, minus idle ones, capped."""
    keys = np.concatenate([keys_old[keep_old], keys_new])
    cols = [np.concatenate([o[keep_old], n]) for o, n in zip(cols_old, cols_new)]
    last = cols[time_col]
    alive = last >= now - idle
    if not alive.all():
        keys = keys[alive]
        cols = [c[alive] for c in cols]
        last = cols[time_col]
    if len(keys) > cap:
        keep = np.argpartition(-last, cap - 1)[:cap]
        keys = keys[keep]
        cols = [c[keep] for c in cols]
    order = np.argsort(keys, kind="stable")
    return keys[order], [c[order] for c in cols]


def _take(values: np.ndarray, pos: np.ndarray, found: np.ndarray, fill) -> np.ndarray:
    """``values[pos]`` where found, else ``fill`` (safe on an empty table)."""
    if len(values) == 0:
        return np.full(len(pos), fill, dtype=values.dtype)
    return np.where(found, values[pos], fill)


def _lookup(keys_sorted: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, found) of each query key in a sorted key array."""
    if len(keys_sorted) == 0:
        return np.zeros(len(query), dtype=np.int64), np.zeros(len(query), dtype=bool)
    pos = np.searchsorted(keys_sorted, query)
    pos_c = np.minimum(pos, len(keys_sorted) - 1)
    return pos_c, keys_sorted[pos_c] == query


class DecayTable:
    """Exponentially decayed sums per key: S <- S * exp(-dt / tau) + x, one time constant per column.

    ``update(keys, t, x)`` returns log S for every entry right after adding it, computed for the whole
    batch at once: entries are grouped by key (stable sort keeps stream order) and each group's
    recurrence is solved with ``logaddexp.accumulate`` over log x + t/tau. Groups are separated by a
    gap of 1000 time constants so they never leak into each other. Previous state enters as a carry
    entry at the head of its group.
    """

    GAP = 1000.0

    def __init__(self, taus, idle: float = 300.0, cap: int = 65536):
        self.taus = np.asarray(taus, dtype=np.float64)
        self.idle = idle
        self.cap = cap
        m = len(self.taus)
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)
        self.logs = np.empty((0, m), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        n = len(keys)
        m = len(self.taus)
        if n == 0:
            return np.empty((0, m), dtype=np.float64)
        uk = np.unique(keys)
        pos, found = _lookup(self.keys, uk)
        cpos = pos[found]
        c = len(cpos)
        with np.errstate(divide="ignore"):
            logx = np.log(x)
        all_keys = np.concatenate([uk[found], keys])
        all_t = np.concatenate([self.last_t[cpos], t])
        all_l = np.concatenate([self.logs[cpos], logx])
        seq = np.concatenate([np.full(c, -1, dtype=np.int64), np.arange(n, dtype=np.int64)])
        order = np.lexsort((seq, all_keys))
        k = all_keys[order]
        tt = all_t[order]
        ll = all_l[order]
        start = np.empty(len(k), dtype=bool)
        start[0] = True
        np.not_equal(k[1:], k[:-1], out=start[1:])
        gid = np.cumsum(start) - 1
        first_t = tt[start]
        rel = tt - first_t[gid]
        end = np.empty(len(k), dtype=bool)
        end[-1] = True
        end[:-1] = start[1:]
        span = rel[end]  # per group
        # offset of group g (per column): sum over earlier groups of span/tau + GAP
        steps = span[:, None] / self.taus[None, :] + self.GAP
        offset = np.zeros_like(steps)
        np.cumsum(steps[:-1], axis=0, out=offset[1:])
        g = rel[:, None] / self.taus[None, :] + offset[gid]
        acc = np.logaddexp.accumulate(ll + g, axis=0) - g
        out = np.empty_like(acc)
        out[order] = acc
        # new state: last entry of each group
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[cpos] = False
        now = float(tt.max())
        self.keys, (self.last_t, self.logs) = _merge_state(
            self.keys, [self.last_t, self.logs], keep_old, k[end], [tt[end], acc[end]], now, self.idle, self.cap)
        return out[c:]


class RecentSet:
    """Keys seen within ``window`` seconds: is an entry new, how long ago was its key first seen,
    and an optional value recorded when the key was first seen (e.g. "was a DNS answer just
    received when this conversation started")."""

    def __init__(self, window: float = 300.0, cap: int = 131072):
        self.window = window
        self.cap = cap
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)
        self.first_t = np.empty(0, dtype=np.float64)
        self.value = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, mask: np.ndarray | None = None,
               values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(new, age, value) per entry: ``new`` for the first entry of a key not seen within the
        window, ``age`` seconds since the key was first seen, ``value`` recorded at that moment.
        Entries outside ``mask`` are neither tested nor remembered (new False, age 0, value 0)."""
        n = len(keys)
        new = np.zeros(n, dtype=bool)
        age = np.zeros(n, dtype=np.float64)
        val = np.zeros(n, dtype=np.float64)
        idx = np.arange(n) if mask is None else np.flatnonzero(mask)
        if len(idx) == 0:
            return new, age, val
        k = keys[idx]
        tk = t[idx]
        uk, first, inv = np.unique(k, return_index=True, return_inverse=True)
        pos, found = _lookup(self.keys, uk)
        alive = _take(self.last_t, pos, found, -np.inf) >= tk[first] - self.window
        new[idx[first[~alive]]] = True
        first_t = np.where(alive, _take(self.first_t, pos, found, 0.0), tk[first])
        v_new = np.zeros(len(uk)) if values is None else values[idx][first]
        first_v = np.where(alive, _take(self.value, pos, found, 0.0), v_new)
        age[idx] = tk - first_t[inv]
        val[idx] = first_v[inv]
        last = np.full(len(uk), -np.inf)
        np.maximum.at(last, inv, tk)
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t, self.first_t, self.value) = _merge_state(
            self.keys, [self.last_t, self.first_t, self.value], keep_old, uk, [last, first_t, first_v],
            float(tk.max()), self.window, self.cap)
        return new, age, val


class BindingTable:
    """The established value (e.g. MAC) of each key (e.g. IP): first value seen, kept while in use.

    ``changed`` is True for an entry whose value differs from the established binding. The binding is
    refreshed only by entries that agree with it, so an impostor never replaces the real owner until
    the real owner has been silent for ``idle`` seconds.
    """

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        self.idle = idle
        self.cap = cap
        self.keys = np.empty(0, dtype=np.uint64)
        self.values = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def changed(self, keys: np.ndarray, values: np.ndarray, t: np.ndarray, mask: np.ndarray) -> np.ndarray:
        n = len(keys)
        out = np.zeros(n, dtype=bool)
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return out
        k, v, tk = keys[idx], values[idx], t[idx]
        uk, first, inv = np.unique(k, return_index=True, return_inverse=True)
        pos, found = _lookup(self.keys, uk)
        seen_t = _take(self.last_t, pos, found, -np.inf)
        alive = found & (seen_t >= tk[first] - self.idle)
        bound = np.where(alive, _take(self.values, pos, found, 0), v[first])
        agree = v == bound[inv]
        out[idx] = ~agree
        last = np.where(alive, seen_t, -np.inf)
        np.maximum.at(last, inv[agree], tk[agree])
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t, self.values) = _merge_state(
            self.keys, [self.last_t, self.values], keep_old, uk, [last, bound], float(tk.max()), self.idle, self.cap)
        return out


class MarkTable:
    """Keys marked at some moments (e.g. "host H resolved address A": a DNS answer to H carrying A),
    queried in stream order: is the key marked, i.e. was it marked at or before this query with no
    silence longer than ``window`` seconds since?

    A query that finds its key refreshes the mark, so a conversation with a resolved peer stays
    resolved while it is in use. Marks and queries of a batch are resolved together in stream order
    (``*_pos``: the packet index; a packet's marks precede its own queries), so the answer does not
    depend on how the stream is cut into batches.
    """

    def __init__(self, window: float = 1800.0, cap: int = 65536):
        self.window = window
        self.cap = cap
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, mark_keys: np.ndarray, mark_t: np.ndarray, mark_pos: np.ndarray,
               query_keys: np.ndarray, query_t: np.ndarray, query_pos: np.ndarray) -> np.ndarray:
        """``found`` per query."""
        c, nm, nq = len(self.keys), len(mark_keys), len(query_keys)
        if nm + nq == 0:
            return np.zeros(0, dtype=bool)
        k = np.concatenate([self.keys, mark_keys, query_keys])
        t = np.concatenate([self.last_t, mark_t, query_t])
        seq = np.concatenate([np.full(c, -1, dtype=np.int64), 2 * np.asarray(mark_pos, dtype=np.int64),
                              2 * np.asarray(query_pos, dtype=np.int64) + 1])
        order = np.lexsort((seq, k))
        ks, ts = k[order], t[order]
        is_mark = (order < c + nm)
        pos = np.arange(len(ks))
        start = np.empty(len(ks), dtype=bool)
        start[0] = True
        np.not_equal(ks[1:], ks[:-1], out=start[1:])
        group_start = np.maximum.accumulate(np.where(start, pos, 0))
        last_mark = np.maximum.accumulate(np.where(is_mark, pos, -1))
        gap = np.zeros(len(ks), dtype=bool)
        gap[1:] = (ts[1:] - ts[:-1] > self.window) & ~start[1:]
        last_gap = np.maximum.accumulate(np.where(gap & ~is_mark, pos, -1))
        ok = (last_mark >= group_start) & (last_gap < last_mark) & ~is_mark
        found = np.empty(len(ks), dtype=bool)
        found[order] = ok
        # new state: per key, the time of its last mark or found query
        live = is_mark | ok
        lk, lt = ks[live], ts[live]
        if len(lk):
            end = np.empty(len(lk), dtype=bool)
            end[-1] = True
            np.not_equal(lk[1:], lk[:-1], out=end[:-1])
            self.keys, (self.last_t,) = _merge_state(self.keys, [self.last_t], np.zeros(c, dtype=bool),
                                                     lk[end], [lt[end]], float(t.max()), self.window, self.cap)
        return found[c + nm:]


# ---------------------------------------------------------------------------------------------------
# Per-packet helpers
# ---------------------------------------------------------------------------------------------------
_LOCAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
    "0.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128", "::/128"))


def _ipv4_class(text: str) -> int | None:
    """``address_class`` for dotted-quad IPv4 without ``ipaddress`` (~40x faster: spoofed-source
    floods bring thousands of new addresses per batch). None when ``text`` is not plain IPv4."""
    parts = text.split(".")
    if len(parts) != 4 or not all(x.isdigit() and len(x) <= 3 and (x[0] != "0" or x == "0") for x in parts):
        return None  # not canonical dotted-quad: ipaddress decides
    a, b, c, d = (int(x) for x in parts)
    if max(a, b, c, d) > 255:
        return 0
    if 224 <= a <= 239 or (a == b == c == d == 255):
        return 2
    if (a in (0, 10, 127) or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168)
            or (a == 169 and b == 254) or (a == 100 and 64 <= b <= 127)):
        return 1
    return 3


def address_class(text: str) -> int:
    """0 none/unparsable, 1 local, 2 multicast or 255.255.255.255, 3 public (documentation and
    benchmark ranges count as public: simulated Internet hosts live there)."""
    if not text:
        return 0
    fast = _ipv4_class(text)
    if fast is not None:
        return fast
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return 0
    if a.is_multicast or (a.version == 4 and int(a) == 0xFFFFFFFF):
        return 2
    if any(a in n for n in _LOCAL_NETS if n.version == a.version):
        return 1
    return 3


def _entropy(s: str) -> float:
    n = len(s)
    if n == 0:
        return 0.0
    return -sum((c / n) * math.log2(c / n) for c in Counter(s).values())


def _name_shape(name: str) -> tuple[float, float, float, float, float]:
    """(length, entropy, longest label, labels, digit fraction) of a DNS name."""
    labels = name.split(".")
    digits = sum(ch.isdigit() for ch in name)
    return (float(len(name)), _entropy(name.replace(".", "")), float(max(len(x) for x in labels)),
            float(len(labels)), digits / max(len(name), 1))


class _NameShapeCache:
    """Bounded memo of DNS name shapes (tunnels produce many names; repeated lookups are common)."""

    def __init__(self, cap: int = 4096):
        self.cap = cap
        self._d: dict[str, tuple] = {}

    def shapes(self, names: np.ndarray) -> np.ndarray:
        out = np.empty((len(names), 5), dtype=np.float64)
        d = self._d
        for i, name in enumerate(names.tolist()):
            s = d.get(name)
            if s is None:
                if len(d) >= self.cap:
                    d.clear()
                s = d[name] = _name_shape(name)
            out[i] = s
        return out


def _isin(values: np.ndarray, choices) -> np.ndarray:
    return np.isin(values, np.asarray(choices, dtype=values.dtype))


def _flag(values: np.ndarray, bit: int) -> np.ndarray:
    return (values >= 0) & ((values & bit) != 0)


def _log1p_pos(a: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(a, 0))


class ContextExtractor:
    """Stateful ``context-v1`` extractor for one packet stream (see module doc)."""

    names = FEATURE_NAMES
    schema = FEATURE_SCHEMA

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        self._col = {n: i for i, n in enumerate(FEATURE_NAMES)}
        self.hosts = DecayTable([tau for _, tau in HOST_COLUMNS], idle=idle, cap=cap)
        self.pairs = DecayTable([tau for _, tau in PAIR_COLUMNS], idle=idle, cap=cap)
        self.peers = RecentSet(window=idle, cap=2 * cap)
        self.ports = RecentSet(window=idle, cap=2 * cap)
        self.names_seen = RecentSet(window=idle, cap=cap)
        self.hosts_seen = RecentSet(window=idle, cap=2 * cap)
        self.pairs_seen = RecentSet(window=idle, cap=2 * cap)
        self.ra_bindings = BindingTable(idle=6 * idle, cap=16)
        self.resolved = MarkTable(window=6 * idle, cap=cap)
        self._addr_class: dict[str, int] = {}
        self.bindings = BindingTable(idle=idle, cap=cap)
        self._shapes = _NameShapeCache()
        self._last_time = -np.inf

    @property
    def state_size(self) -> int:
        """Keys held across all tables (bounded by the caps)."""
        return sum(len(x) for x in (self.hosts, self.pairs, self.peers, self.ports, self.names_seen, self.bindings))

    # -- per-packet ------------------------------------------------------------------------------
    def _packet_features(self, b: PacketBatch, X: np.ndarray) -> dict:
        c = self._col
        n = len(b)

        def put(name, values):
            X[:, c[name]] = values

        flen = b["frame_len"].astype(np.float64)
        ip_len = b["ip_len"].astype(np.float64)
        tcp_len = b["tcp_len"].astype(np.float64)
        put("frame_len_log", _log1p_pos(flen))
        put("ip_len_log", _log1p_pos(ip_len))
        put("tcp_len_log", _log1p_pos(tcp_len))
        udp = (b["udp_srcport"] >= 0) & (b["tcp_srcport"] < 0)
        payload = np.where(tcp_len >= 0, tcp_len, np.where(udp & (ip_len >= 0), ip_len - 28, 0))
        put("payload_frac", np.clip(payload / np.maximum(flen, 1), 0, 1))
        ttl = b["ip_ttl"]
        put("ip_ttl", np.where(ttl >= 0, ttl / 255.0, 0))
        ipf = b["ip_flags"]
        put("ip_df", _flag(ipf, 0x40))
        put("ip_mf", _flag(ipf, 0x20))
        put("ip_fragment", b["ip_frag_offset"] > 0)
        ver = b["ip_version"]
        has_ip = b["ip_src"] != ""
        put("ipv4", ver == 4)
        put("ipv6", ver == 6)
        put("non_ip", ~has_ip)
        proto = b["ip_proto"]
        is_tcp = proto == 6
        is_icmp = proto == 1
        is_icmp6 = proto == 58
        put("proto_tcp", is_tcp)
        put("proto_udp", proto == 17)
        put("proto_icmp", is_icmp)
        put("proto_icmpv6", is_icmp6)
        put("proto_other_ip", (proto >= 0) & ~_isin(proto, (1, 6, 17, 58)))
        arp_op = b["arp_opcode"]
        is_arp = arp_op >= 0
        put("arp", is_arp)

        fl = np.where(is_tcp, b["tcp_flags"], -1)
        fin, syn, rst = _flag(fl, 0x01), _flag(fl, 0x02), _flag(fl, 0x04)
        psh, ack, urg = _flag(fl, 0x08), _flag(fl, 0x10), _flag(fl, 0x20)
        for name, v in (("tcp_fin", fin), ("tcp_syn", syn), ("tcp_rst", rst), ("tcp_psh", psh),
                        ("tcp_ack", ack), ("tcp_urg", urg)):
            put(name, v)
        syn_only = syn & ~ack
        synack = syn & ack
        put("tcp_syn_only", syn_only)
        put("tcp_synack", synack)
        win = b["tcp_window"]
        put("tcp_window_log", np.where(win >= 0, _log1p_pos(win.astype(np.float64)) / 11.1, 0))
        put("tcp_window_zero", (win == 0) & is_tcp)
        hdr = b["tcp_hdr_len"]
        put("tcp_hdr_len", np.where(hdr >= 0, hdr / 60.0, 0))
        put("tcp_options", hdr > 20)

        sp = np.where(b["tcp_srcport"] >= 0, b["tcp_srcport"], b["udp_srcport"])
        dp = np.where(b["tcp_dstport"] >= 0, b["tcp_dstport"], b["udp_dstport"])
        has_port = (sp >= 0) & (dp >= 0)
        known_s = np.zeros(n, dtype=bool)
        known_d = np.zeros(n, dtype=bool)
        bucket_hit = np.zeros(n, dtype=bool)
        for name, plist in PORT_BUCKETS:
            ins, ind = _isin(sp, plist), _isin(dp, plist)
            put(f"port_{name}", ins | ind)
            known_s |= ins
            known_d |= ind
            bucket_hit |= ins | ind
        lo = np.minimum(sp, dp)
        rest = has_port & ~bucket_hit
        put("port_other_system", rest & (lo < 1024))
        put("port_other_registered", rest & (lo >= 1024) & (lo < 49152))
        put("port_both_ephemeral", rest & (lo >= 49152))
        put("port_none", ~has_port)
        to_service = has_port & (known_d | (~known_s & (dp < sp)))
        put("to_service", to_service)
        put("from_service", has_port & ~to_service)

        icmp_any = is_icmp | is_icmp6
        it = np.where(icmp_any, b["icmp_type"], -1)
        hit = np.zeros(n, dtype=bool)
        for name, v4, v6 in _ICMP_TYPES:
            m = (is_icmp & _isin(it, v4)) | (is_icmp6 & _isin(it, v6))
            put(f"icmp_{name}", m)
            hit |= m
        put("icmp_other", icmp_any & ~hit)
        put("icmp_code_nonzero", icmp_any & (b["icmp_code"] > 0))
        icmp_unreach = X[:, c["icmp_unreachable"]] > 0

        arp_src_ip = b["arp_src_ip"]
        put("arp_request", arp_op == 1)
        put("arp_reply", arp_op == 2)
        put("arp_gratuitous", is_arp & (arp_src_ip == b["arp_dst_ip"]) & (arp_src_ip != ""))
        eth_dst = b["eth_dst"]
        bcast = eth_dst == "ff:ff:ff:ff:ff:ff"
        put("eth_broadcast", bcast)
        eth_u = eth_dst.astype(str)
        eth_group = np.char.startswith(eth_u, "01:") | np.char.startswith(eth_u, "33:")
        put("eth_multicast", eth_group & ~bcast)

        qname = b["dns_qry_name"]
        dflags = b["dns_flags"]
        is_dns = (dflags >= 0) | (qname != "")
        dns_resp = _flag(dflags, 0x8000)
        put("dns", is_dns)
        put("dns_response", dns_resp)
        put("dns_rcode_error", (dflags >= 0) & ((dflags & 0xF) != 0))
        put("dns_answers_log", np.where(b["dns_answers"] > 0, np.log1p(np.maximum(b["dns_answers"], 0)), 0))
        qt = b["dns_qry_type"]
        for name, v in _DNS_QTYPES:
            put(f"dns_qtype_{name}", qt == v)
        has_name = qname != ""
        if has_name.any():
            idx = np.flatnonzero(has_name)
            sh = self._shapes.shapes(qname[idx])
            X[idx, c["dns_name_len"]] = sh[:, 0] / 64.0
            X[idx, c["dns_name_entropy"]] = sh[:, 1] / 6.0
            X[idx, c["dns_label_max"]] = sh[:, 2] / 63.0
            X[idx, c["dns_labels"]] = sh[:, 3] / 8.0
            X[idx, c["dns_digit_frac"]] = sh[:, 4]

        mt = b["mqtt_msgtype"]
        conack = b["mqtt_conack"]
        put("mqtt", mt >= 0)
        put("mqtt_connect", mt == 1)
        put("mqtt_connack", mt == 2)
        put("mqtt_publish", mt == 3)
        mqtt_refused = conack > 0
        put("mqtt_refused", mqtt_refused)
        method = b["http_method"]
        put("http_request", method != "")
        put("http_post", method == "POST")
        hs = b["http_status"]
        http_denied = (hs == 401) | (hs == 403)
        put("http_status_2xx", (hs >= 200) & (hs < 300))
        put("http_status_401_403", http_denied)
        put("http_status_4xx_5xx", (hs >= 400) & ~http_denied)
        fc = b["ftp_code"]
        put("ftp_reply", fc >= 0)
        put("ftp_230", fc == 230)
        put("ftp_331", fc == 331)
        ftp_fail = fc == 530
        put("ftp_530", ftp_fail)
        auth_fail = ftp_fail | mqtt_refused | http_denied
        put("auth_fail", auth_fail)
        return dict(syn_only=syn_only, synack=synack, rst=rst, icmp_any=icmp_any, icmp_unreach=icmp_unreach,
                    is_arp=is_arp, arp_reply=arp_op == 2, is_dns=is_dns, dns_resp=dns_resp,
                    dns_query=is_dns & ~dns_resp, has_name=has_name, auth_fail=auth_fail, dp=dp,
                    has_ip=has_ip, it=it, eth_group=eth_group,
                    icmp_router_adv=X[:, c["icmp_router_adv"]] > 0)

    def _classify_addresses(self, values: np.ndarray) -> np.ndarray:
        """Per address: 0 none, 1 local (private, link-local, loopback, CGNAT, ULA), 2 multicast or
        limited broadcast, 3 anything else (public). Memoised per distinct string, bounded."""
        cache = self._addr_class
        todo = [v for v in dict.fromkeys(values.tolist()) if v not in cache]
        if todo:
            if len(cache) > 65536:
                cache.clear()
            for v in todo:
                cache[v] = address_class(v)
        return np.array(list(map(cache.__getitem__, values.tolist())), dtype=np.int8)

    # -- context ---------------------------------------------------------------------------------
    def transform(self, batch: PacketBatch) -> np.ndarray:
        n = len(batch)
        F = len(FEATURE_NAMES)
        X = np.zeros((n, F), dtype=np.float32)
        if n == 0:
            return X
        c = self._col
        p = self._packet_features(batch, X)

        # packet time, made monotonic over the stream (missing -> previous)
        t = np.asarray(batch["time_epoch"], dtype=np.float64).copy()
        bad = ~np.isfinite(t)
        if bad.any():
            t[bad] = -np.inf
        t = np.maximum.accumulate(np.concatenate([[self._last_time], t]))[1:]
        if not np.isfinite(t[0]):
            first = t[np.isfinite(t)]
            t = np.where(np.isfinite(t), t, first[0] if len(first) else 0.0)
        self._last_time = float(t[-1])

        # host identities: IP; for ARP the sender MAC and the target IP; else MACs
        is_arp = p["is_arp"]
        has_ip = p["has_ip"]
        src_s = np.where(has_ip, batch["ip_src"], batch["eth_src"])
        dst_s = np.where(has_ip, batch["ip_dst"], np.where(is_arp & (batch["arp_dst_ip"] != ""),
                                                          batch["arp_dst_ip"], batch["eth_dst"]))
        hs = hash_strings(src_s)
        hd = hash_strings(dst_s)
        mac = hash_strings(batch["eth_src"])

        # new peer / new port (directed), IP->MAC binding change (IP packets and ARP sender claims)
        pair_dir = mix(hs, hd)
        new_peer = self.peers.update(pair_dir, t)[0]
        port_key = mix(pair_dir, (np.where(p["icmp_any"], p["it"] + 70000, p["dp"]) + 1).astype(np.uint64))
        new_port = self.ports.update(port_key, t)[0]
        # IP->MAC bindings as seen on the wire: the sender side (IP source or ARP sender claim with the
        # frame's source MAC) and the unicast receiver side (IP destination with the frame's target MAC)
        bind_ip = np.where(is_arp, batch["arp_src_ip"], batch["ip_src"])
        src_mask = (bind_ip != "") & (batch["eth_src"] != "")
        eth_dst = batch["eth_dst"]
        dst_mask = has_ip & (eth_dst != "") & (eth_dst != "ff:ff:ff:ff:ff:ff") & ~p["eth_group"]
        bkeys = np.empty(2 * n, dtype=np.uint64)
        bkeys[0::2] = hash_strings(np.where(src_mask, bind_ip, ""))
        bkeys[1::2] = np.where(dst_mask, hd, 0)
        bvals = np.empty(2 * n, dtype=np.uint64)
        bvals[0::2] = mac
        bvals[1::2] = hash_strings(eth_dst)
        bmask = np.empty(2 * n, dtype=bool)
        bmask[0::2] = src_mask
        bmask[1::2] = dst_mask
        changed = self.bindings.changed(bkeys, bvals, np.repeat(t, 2), bmask)
        mac_changed, dst_mac_changed = changed[0::2], changed[1::2]
        X[:, c["dst_mac_changed"]] = dst_mac_changed
        new_name = self.names_seen.update(mix(hs, hash_strings(batch["dns_qry_name"])), t,
                                          p["has_name"] & p["dns_query"])[0]
        X[:, c["new_peer"]] = new_peer
        X[:, c["new_port"]] = new_port
        X[:, c["mac_changed"]] = mac_changed

        # host table: one "sent" entry per packet for its source, one "received" entry for its target
        size = np.maximum(batch["frame_len"], 0).astype(np.float64)
        ones = np.ones(n)
        hc = {name: i for i, (name, _) in enumerate(HOST_COLUMNS)}
        ent = np.zeros((2 * n, len(HOST_COLUMNS)))
        s, r = ent[0::2], ent[1::2]
        for name, v in (("s_pkts_1s", ones), ("s_pkts_10s", ones), ("s_bytes_1s", size), ("s_bytes_10s", size),
                        ("s_syn_1s", p["syn_only"]), ("s_syn_10s", p["syn_only"]), ("s_synack_10s", p["synack"]),
                        ("s_rst_10s", p["rst"]), ("s_newpeer_10s", new_peer), ("s_newport_10s", new_port),
                        ("s_dnsq_10s", p["dns_query"]), ("s_dnsnew_10s", new_name), ("s_icmp_1s", p["icmp_any"]),
                        ("s_arp_reply_10s", p["arp_reply"]), ("s_authfail_30s", p["auth_fail"]),
                        ("s_macchange_30s", mac_changed)):
            s[:, hc[name]] = v
        failed = p["rst"] | p["icmp_unreach"]
        for name, v in (("r_pkts_1s", ones), ("r_pkts_10s", ones), ("r_bytes_10s", size),
                        ("r_syn_1s", p["syn_only"]), ("r_fail_10s", failed), ("r_newpeer_10s", new_peer),
                        ("r_dnsresp_200ms", p["dns_resp"])):
            r[:, hc[name]] = v
        keys = np.empty(2 * n, dtype=np.uint64)
        keys[0::2] = hs
        keys[1::2] = hd
        hl = self.hosts.update(keys, np.repeat(t, 2), ent)
        host = np.logaddexp(0.0, hl)  # log1p(S)
        nh = len(HOST_COLUMNS)
        base = c[f"src_{HOST_COLUMNS[0][0]}"]
        X[:, base:base + nh] = host[0::2]
        based = c[f"dst_{HOST_COLUMNS[0][0]}"]
        X[:, based:based + nh] = host[1::2]
        src_lin = np.exp(hl[0::2])
        dst_lin = np.exp(hl[1::2])

        def ratio(a, b_):
            return np.clip(a / np.maximum(b_, 1e-9), 0, 1)

        X[:, c["src_syn_ratio"]] = ratio(src_lin[:, hc["s_syn_10s"]], src_lin[:, hc["s_pkts_10s"]])
        X[:, c["src_fail_ratio"]] = ratio(src_lin[:, hc["r_fail_10s"]], src_lin[:, hc["s_pkts_10s"]])
        X[:, c["src_rst_ratio"]] = ratio(src_lin[:, hc["s_rst_10s"]], src_lin[:, hc["s_pkts_10s"]])
        X[:, c["src_updown_ratio"]] = np.tanh((hl[0::2, hc["s_bytes_10s"]].clip(-50) -
                                               hl[0::2, hc["r_bytes_10s"]].clip(-50)) / 4.0)
        X[:, c["dst_syn_ratio"]] = ratio(dst_lin[:, hc["r_syn_1s"]], dst_lin[:, hc["r_pkts_1s"]])

        # pair table (unordered pair; "fwd" = from the lower hash)
        fwd = hs <= hd
        lo_h, hi_h = np.where(fwd, hs, hd), np.where(fwd, hd, hs)
        pkey = mix(lo_h, hi_h)
        pc = {name: i for i, (name, _) in enumerate(PAIR_COLUMNS)}
        pe = np.zeros((n, len(PAIR_COLUMNS)))
        pe[:, pc["pkts_1s"]] = 1
        pe[:, pc["pkts_10s"]] = 1
        pe[:, pc["fwd_bytes_10s"]] = np.where(fwd, size, 0)
        pe[:, pc["rev_bytes_10s"]] = np.where(fwd, 0, size)
        pe[:, pc["syn_10s"]] = p["syn_only"]
        pe[:, pc["authfail_30s"]] = p["auth_fail"]
        pe[:, pc["dnsq_10s"]] = p["dns_query"]
        pe[:, pc["dnsr_10s"]] = p["dns_resp"]
        pe[:, pc["macchange_30s"]] = mac_changed | dst_mac_changed
        pl = self.pairs.update(pkey, t, pe)
        sent_l = np.where(fwd, pl[:, pc["fwd_bytes_10s"]], pl[:, pc["rev_bytes_10s"]]).clip(-50)
        recv_l = np.where(fwd, pl[:, pc["rev_bytes_10s"]], pl[:, pc["fwd_bytes_10s"]]).clip(-50)
        X[:, c["pair_pkts_1s"]] = np.logaddexp(0.0, pl[:, pc["pkts_1s"]])
        X[:, c["pair_pkts_10s"]] = np.logaddexp(0.0, pl[:, pc["pkts_10s"]])
        X[:, c["pair_sent_bytes_10s"]] = np.logaddexp(0.0, sent_l)
        X[:, c["pair_recv_bytes_10s"]] = np.logaddexp(0.0, recv_l)
        X[:, c["pair_updown_ratio"]] = np.tanh((sent_l - recv_l) / 4.0)
        X[:, c["pair_syn_10s"]] = np.logaddexp(0.0, pl[:, pc["syn_10s"]])
        X[:, c["pair_authfail_30s"]] = np.logaddexp(0.0, pl[:, pc["authfail_30s"]])
        X[:, c["pair_dns_resp_per_query"]] = np.clip(
            np.exp(pl[:, pc["dnsr_10s"]]) / np.maximum(np.exp(pl[:, pc["dnsq_10s"]]), 1.0), 0, 4) / 4.0
        X[:, c["pair_macchange_30s"]] = np.logaddexp(0.0, pl[:, pc["macchange_30s"]])
        # how long the endpoints and the conversation have been around; whether the conversation
        # started right after one side received a DNS answer (resolved peer vs. hard-coded/unseen)
        hkeys = keys  # src/dst interleaved, as for the host table
        _, hage, _ = self.hosts_seen.update(hkeys, np.repeat(t, 2))
        X[:, c["src_age_log"]] = np.log1p(hage[0::2]) / 6.0
        X[:, c["dst_age_log"]] = np.log1p(hage[1::2]) / 6.0
        dns_recent = np.maximum(src_lin[:, hc["r_dnsresp_200ms"]], dst_lin[:, hc["r_dnsresp_200ms"]]).clip(0, 1)
        _, page, pdns = self.pairs_seen.update(pkey, t, values=dns_recent)
        X[:, c["pair_age_log"]] = np.log1p(page) / 6.0
        X[:, c["pair_dns_before"]] = pdns
        ra = p["icmp_router_adv"]
        X[:, c["ra_rogue"]] = self.ra_bindings.changed(np.where(ra, np.uint64(1), np.uint64(0)), mac, t, ra)
        sc = self._classify_addresses(batch["ip_src"])
        dc = self._classify_addresses(batch["ip_dst"])
        X[:, c["src_local"]] = sc == 1
        X[:, c["dst_local"]] = dc == 1
        X[:, c["dst_group"]] = (dc == 2) | p["eth_group"] | (batch["eth_dst"] == "ff:ff:ff:ff:ff:ff")
        X[:, c["src_public"]] = sc == 3
        X[:, c["dst_public"]] = dc == 3

        # resolved peers: a DNS answer (A record) to host H naming address A marks (H, A); a packet
        # between H and A then has a resolved peer (kept while the conversation goes on). Bulk data
        # pushed to a public host nobody resolved is the bulk-upload exfiltration pattern.
        dns_a = batch["dns_a"]
        mark = p["dns_resp"] & has_ip & (dns_a != "")
        midx = np.flatnonzero(mark)
        qidx = np.flatnonzero(has_ip)
        found = self.resolved.update(
            mix(hd[midx], hash_strings(dns_a[midx])), t[midx], midx,
            np.concatenate([mix(hs[qidx], hd[qidx]), mix(hd[qidx], hs[qidx])]), np.tile(t[qidx], 2),
            np.tile(qidx, 2))
        resolved = np.zeros(n, dtype=bool)
        resolved[qidx] = found[:len(qidx)] | found[len(qidx):]
        X[:, c["peer_resolved"]] = resolved
        up = np.where(dc == 3, sent_l, np.where(sc == 3, recv_l, -50.0))
        X[:, c["pair_upload_unresolved_log"]] = np.where(resolved | ~((dc == 3) ^ (sc == 3)), 0.0,
                                                         np.logaddexp(0.0, up))
        return X


# ---------------------------------------------------------------------------------------------------
# The seed paper's raw fields
# ---------------------------------------------------------------------------------------------------
_LOW24 = 0xFFFFFF


def ip_to_number(values: np.ndarray) -> np.ndarray:
    """Address as an integer: the low 24 bits of an IPv4 address (exact in float32), a 24-bit hash
    of anything else (IPv6); "" -> 0. float64."""
    out = np.zeros(len(values), dtype=np.float64)
    for i, v in enumerate(values.tolist()):
        if not v:
            continue
        parts = v.split(".")
        if len(parts) == 4 and all(x.isdigit() for x in parts):
            out[i] = float(((int(parts[1]) << 16) | (int(parts[2]) << 8) | int(parts[3])) & _LOW24)
        else:
            out[i] = float(int(hash_strings(np.array([v], dtype=object))[0]) & _LOW24)
    return out


def mac_to_number(values: np.ndarray) -> np.ndarray:
    """MAC aa:bb:cc:dd:ee:ff -> its low 24 bits (the device part; exact in float32); else 0."""
    out = np.zeros(len(values), dtype=np.float64)
    for i, v in enumerate(values.tolist()):
        if v:
            try:
                out[i] = float(int(v.replace(":", "").replace("-", ""), 16) & _LOW24)
            except ValueError:
                out[i] = 0.0
    return out


class PaperExtractor:
    """The seed paper's 11 raw fields, addresses as integers, missing numbers as 0 (stateless).

    The paper feeds addresses as numbers; we keep their low 24 bits so they survive float32 exactly
    (a full 48-bit MAC or 32-bit IPv4 would be rounded to the same value for neighbouring devices).
    """

    names = PAPER_FEATURE_NAMES
    schema = PAPER_FEATURE_SCHEMA

    def __init__(self):
        self._ip: dict[str, float] = {}
        self._mac: dict[str, float] = {}

    @staticmethod
    def _cached(values: np.ndarray, cache: dict, convert) -> np.ndarray:
        uniq = [v for v in dict.fromkeys(values.tolist()) if v not in cache]
        if uniq:
            if len(cache) > 65536:
                cache.clear()
            cache.update(zip(uniq, convert(np.array(uniq, dtype=object)).tolist()))
        return np.fromiter((cache[v] for v in values.tolist()), dtype=np.float64, count=len(values))

    def transform(self, batch: PacketBatch) -> np.ndarray:
        n = len(batch)
        X = np.zeros((n, len(PAPER_FEATURE_NAMES)), dtype=np.float32)
        if n == 0:
            return X
        for j, name in enumerate(PAPER_FEATURE_NAMES):
            if name in ("eth_src", "eth_dst"):
                X[:, j] = self._cached(batch[name], self._mac, mac_to_number)
            elif name in ("ip_src", "ip_dst"):
                X[:, j] = self._cached(batch[name], self._ip, ip_to_number)
            else:
                v = batch[name]
                X[:, j] = np.where(v >= 0, v, 0)
        return X
