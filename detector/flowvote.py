"""The per-flow vote: a packet's class probabilities averaged with those of its flow's earlier packets.

The model judges each packet from its features alone; a connection's packets then get verdicts that
flicker (a backup upload whose server ACKs look like exfiltration one in three, a TLS session whose
first records look odd). An IDS judges connections. ``FlowVote`` keeps, per flow (IP 5-tuple, both
directions; ICMP and other IP protocols per host pair and protocol; each end also by the MAC address it is
reached through, so the part of a connection an ARP poisoner relays, or an answer forged from its MAC, is
voted apart from the direct packets), a bias-corrected exponential moving average of the probabilities over
the flow's packets, in stream order:

    s <- alpha * s + p ;  w <- alpha * w + 1 ;  voted p = s / w

The first packet of a flow keeps its own probabilities; later ones weigh their own by 1 / w (at least
1 - alpha) and the flow's recent packets by the rest, about 1 / (1 - alpha) packets back. Non-IP frames
(ARP, 802.11 management) are not voted: each stands alone. Flows idle for ``idle`` seconds start again;
at most ``cap`` flows are held (the most recently used), as the feature tables do.

**The hosts' other connections** (optional, ``PairVote``; the bundle's ``meta["pair_vote"]``): a new
connection between two hosts is judged with what their other connections of the last minutes were voted.
Per host pair (each end with its MAC, as above) the voted probabilities of every packet are summed with
exponential decay over ``tau`` seconds; so are the packet's own connection's, and their difference is the
pair's *other* traffic: its mean ``o`` and weight ``W`` (decayed packets). Where the connection's vote
names one of ``classes`` (the bundle's: ``exfiltration``) and the other traffic was normal -- at least
``floor`` of it (the bundle's: 0.9), the pull growing to its full weight as that share reaches 1 --

    pull = weight * min(W / ramp, 1) * clip((o[normal] - floor) / (1 - floor), 0, 1) ;  p' = pull * o + (1 - pull) * p

A NAS's third backup to the server it pushed two backups to minutes ago, judged normal then, is not
exfiltration now because of its upload rate; a host pushing data to a peer it never exchanged anything with
has no other traffic to be judged by (``W`` = 0: p' = p), nor one whose other connections to that peer were
themselves partly attacks (a staged exfiltration whose first chunk passed as normal, its second did not:
``o[normal]`` below the floor). What it costs: data sent to a peer the host talks to every day is not
called exfiltration on the evidence of one connection (measured in detector/MODEL_CARD.md, session 14).

Causal (only earlier packets count, never later ones) and batch-size independent: the same stream cut
into any batches gives the same votes. ``alpha`` comes from the model bundle (``meta["flow_vote"]``,
0 = off); measured in detector/MODEL_CARD.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iotwatch.captures.batch import PacketBatch

from .features import (DecayTable, _exp, _group_by_key, _group_ends, _lookup, _merge_state, _tables, _take,
                       hash_strings, mix)

_TCP, _UDP = 6, 17


def flow_keys(batch: PacketBatch) -> np.ndarray:
    """uint64 per packet: its flow (5-tuple for TCP/UDP, host pair + protocol otherwise; each end with the
    MAC it is reached through), the same for both directions; 0 for packets without an IP source and
    destination (not voted)."""
    return vote_keys(batch)[0]


def vote_keys(batch: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """(flow keys as ``flow_keys``, host-pair keys): uint64 per packet, the pair of its two ends (address and
    the MAC it is reached through), the same for both directions; 0 where the flow key is 0."""
    n = len(batch)
    if n == 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    src, dst = batch["ip_src"], batch["ip_dst"]
    proto = np.asarray(batch["ip_proto"], dtype=np.int64)
    tcp, udp = proto == _TCP, proto == _UDP
    sp = np.where(tcp, batch["tcp_srcport"], np.where(udp, batch["udp_srcport"], -1)).astype(np.int64)
    dp = np.where(tcp, batch["tcp_dstport"], np.where(udp, batch["udp_dstport"], -1)).astype(np.int64)
    # each end is (address, port, the MAC it is reached through): a flow that an ARP poisoner starts to relay
    # (or a forged answer in a DNS exchange, sent from the poisoner's MAC) is another vote than the direct one
    hs = mix(hash_strings(src), hash_strings(batch["eth_src"]))
    hd = mix(hash_strings(dst), hash_strings(batch["eth_dst"]))
    a = mix(hs, (sp + 2).astype(np.uint64))
    b = mix(hd, (dp + 2).astype(np.uint64))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = mix(mix(lo, hi), (proto + 2).astype(np.uint64))
    pair = mix(np.minimum(hs, hd), np.maximum(hs, hd))
    has_ip = (src != "") & (dst != "")
    for k in (key, pair):
        k[~has_ip] = 0
        k[has_ip & (k == 0)] = 1  # 0 means "no flow"
    return key, pair


@dataclass(frozen=True)
class PairVote:
    """How a connection's vote is pulled toward what the two hosts' other connections were voted (module doc):
    ``weight`` in [0, 1] (0 = off), ``tau`` seconds of the decayed sums, ``ramp`` decayed packets of other
    traffic for the full pull, ``floor`` in [0, 1) the normal share of the other traffic below which nothing
    is pulled, ``classes`` the voted classes it may overrule (indices), ``normal`` the index of the normal
    class. The bundle's ``meta["pair_vote"]`` holds them with class names."""

    weight: float
    tau: float = 600.0
    ramp: float = 20.0
    floor: float = 0.9
    classes: tuple[int, ...] = ()
    normal: int = 0
    HORIZON = 3.0  # a pair's sums are kept this many tau after its last packet

    @classmethod
    def from_meta(cls, meta: dict | None, classes, normal_class: str) -> "PairVote | None":
        """The bundle's ``pair_vote`` (class names; validated by load_bundle) for a model with ``classes``;
        None when absent or its weight is 0."""
        if not meta or not meta["weight"]:
            return None
        classes = list(classes)
        return cls(float(meta["weight"]), float(meta["tau"]), float(meta["ramp"]), float(meta["floor"]),
                   tuple(classes.index(c) for c in meta["classes"]), classes.index(normal_class))


def new_vote(alpha: float, pair: PairVote | None = None) -> "FlowVote | None":
    """A fresh per-stream vote with the flow vote's ``alpha`` and the ``pair`` vote; None when neither is on."""
    if alpha > 0 or (pair is not None and pair.weight > 0):
        return FlowVote(alpha, pair=pair)
    return None


class FlowVote:
    """Stateful vote for one packet stream (one per extractor): ``update(keys, t, proba, pairs)``; ``pair``: the
    optional ``PairVote`` (used when ``update`` gets the host-pair keys of ``vote_keys``)."""

    def __init__(self, alpha: float, idle: float = 300.0, cap: int = 65536, pair: PairVote | None = None):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"flow vote alpha must be in [0, 1), got {alpha}")
        if pair is not None and not (0.0 <= pair.weight <= 1.0 and pair.tau > 0 and pair.ramp >= 1.0
                                     and 0.0 <= pair.floor < 1.0):
            raise ValueError(f"pair vote: weight in [0, 1], tau > 0, ramp >= 1 and floor in [0, 1), got {pair}")
        self.alpha = float(alpha)
        self.pair = pair if pair is not None and pair.weight > 0 else None
        self._pair_tables: tuple[DecayTable, DecayTable] | None = None
        self.idle = idle
        self.cap = cap
        self.kernel = True  # detector/_tables.c when built (False: the numpy path, for tests)
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)
        self.w = np.empty(0, dtype=np.float64)
        self.sums = np.empty((0, 0), dtype=np.float64)
        self._time = -np.inf

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, proba: np.ndarray, pairs: np.ndarray | None = None) -> np.ndarray:
        """The voted probabilities (float32, rows sum to 1) of a batch: ``keys`` from ``flow_keys``
        (0 = not voted), ``t`` the packets' (monotonic) times, ``proba`` the model's (n, k); ``pairs`` the
        host-pair keys of ``vote_keys`` (needed for a ``PairVote``; without them the pairs are not used)."""
        proba = np.asarray(proba)
        out = np.array(proba, dtype=np.float32, copy=True)
        voted = np.flatnonzero(keys != 0)
        if len(voted) == 0:
            return out
        n, m = len(voted), proba.shape[1]
        if self.sums.shape[1] != m:
            self.keys, self.last_t, self.w = self.keys[:0], self.last_t[:0], self.w[:0]
            self.sums = np.empty((0, m), dtype=np.float64)
        k = np.ascontiguousarray(keys[voted], dtype=np.uint64)
        tv = np.asarray(t, dtype=np.float64)[voted]
        tv = np.maximum.accumulate(np.where(np.isfinite(tv), tv, -np.inf))  # monotonic; a missing time: the last
        tv = np.maximum(tv, self._time)
        self._time = float(tv[-1])
        x = np.ascontiguousarray(proba[voted], dtype=np.float64)
        order, heads, uk, inv = _group_by_key(k)
        pos, found = _lookup(self.keys, uk)
        tt = tv[order]
        alive = found & (_take(self.last_t, pos, found, -np.inf) >= tt[heads] - self.idle)  # idle: starts again
        carry = np.where(alive, pos, -1).astype(np.int64)
        ends = _group_ends(heads, n)
        res = np.empty((n, m))
        end_sums = np.empty((len(heads), m))
        end_w = np.empty(len(heads))
        if self.kernel and _tables is not None:
            _tables.vote_accumulate(x, order.astype(np.int64, copy=False), heads.astype(np.int64, copy=False), carry,
                                    np.ascontiguousarray(self.sums), np.ascontiguousarray(self.w), self.alpha,
                                    res, end_sums, end_w)
        else:
            self._numpy(x, order, heads, ends, carry, res, end_sums, end_w)
        if self.pair is not None and pairs is not None:
            res = self._pair_pull(k, np.ascontiguousarray(pairs[voted], dtype=np.uint64), tv, res)
        out[voted] = res
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t, self.w, self.sums) = _merge_state(
            self.keys, [self.last_t, self.w, self.sums], keep_old, uk, [tt[ends], end_w, end_sums],
            float(tt.max()), self.idle, self.cap)
        return out

    def _pair_pull(self, flows: np.ndarray, pairs: np.ndarray, t: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``PairVote``: the voted rows ``q`` pulled toward the pair's other traffic (module doc). Two decayed
        sums of [q, 1] (features.DecayTable: grouped, causal, batch-size independent, bounded), one per flow and
        one per host pair, each including the packet; their difference is the pair's other connections."""
        pv, m = self.pair, q.shape[1]
        if self._pair_tables is None or self._pair_tables[0].logs.shape[1] != m + 1:
            taus = [pv.tau] * (m + 1)
            self._pair_tables = (DecayTable(taus, idle=self.idle, cap=self.cap),
                                 DecayTable(taus, idle=max(self.idle, pv.HORIZON * pv.tau), cap=self.cap))
        x = np.empty((len(q), m + 1))
        x[:, :m] = q
        x[:, m] = 1.0
        own = _exp(self._pair_tables[0].update(flows, t, x))
        other = _exp(self._pair_tables[1].update(pairs, t, x)) - own
        w = other[:, m]
        target = np.isin(q.argmax(axis=1), np.asarray(pv.classes, dtype=np.int64)) & (w >= 1.0)
        if not target.any():
            return q
        rows = np.flatnonzero(target)
        o = np.maximum(other[rows, :m], 0.0)
        o /= np.maximum(o.sum(axis=1, keepdims=True), 1e-12)
        clean = np.clip((o[:, pv.normal] - pv.floor) / (1.0 - pv.floor), 0.0, 1.0)
        pull = pv.weight * np.minimum(w[rows] / pv.ramp, 1.0) * clean
        q = q.copy()
        q[rows] = pull[:, None] * o + (1.0 - pull[:, None]) * q[rows]
        return q

    def _numpy(self, x, order, heads, ends, carry, res, end_sums, end_w) -> None:
        """The kernel's recurrence without C: one step per position within the groups, all groups at once
        (a batch's longest flow sets the number of steps)."""
        a = self.alpha
        G = len(heads)
        s = np.zeros((G, x.shape[1]))
        w = np.zeros(G)
        c = carry >= 0
        s[c] = self.sums[carry[c]]
        w[c] = self.w[carry[c]]
        size = ends - heads + 1
        for j in range(int(size.max())):
            g = np.flatnonzero(size > j)
            rows = order[heads[g] + j]
            s[g] = a * s[g] + x[rows]
            w[g] = a * w[g] + 1.0
            res[rows] = s[g] / w[g][:, None]
        end_sums[:] = s
        end_w[:] = w
