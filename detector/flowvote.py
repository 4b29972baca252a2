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

Causal (only earlier packets count, never later ones) and batch-size independent: the same stream cut
into any batches gives the same votes. ``alpha`` comes from the model bundle (``meta["flow_vote"]``,
0 = off); measured in detector/MODEL_CARD.md.
"""
from __future__ import annotations

import numpy as np

from iotwatch.captures.batch import PacketBatch

from .features import _group_by_key, _group_ends, _lookup, _merge_state, _tables, _take, hash_strings, mix

_TCP, _UDP = 6, 17


def flow_keys(batch: PacketBatch) -> np.ndarray:
    """uint64 per packet: its flow (5-tuple for TCP/UDP, host pair + protocol otherwise; each end with the
    MAC it is reached through), the same for both directions; 0 for packets without an IP source and
    destination (not voted)."""
    n = len(batch)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
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
    has_ip = (src != "") & (dst != "")
    key[~has_ip] = 0
    key[has_ip & (key == 0)] = 1  # 0 means "no flow"
    return key


class FlowVote:
    """Stateful vote for one packet stream (one per extractor): ``update(keys, t, proba)``."""

    def __init__(self, alpha: float, idle: float = 300.0, cap: int = 65536):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"flow vote alpha must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)
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

    def update(self, keys: np.ndarray, t: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """The voted probabilities (float32, rows sum to 1) of a batch: ``keys`` from ``flow_keys``
        (0 = not voted), ``t`` the packets' (monotonic) times, ``proba`` the model's (n, k)."""
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
        out[voted] = res
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t, self.w, self.sums) = _merge_state(
            self.keys, [self.last_t, self.w, self.sums], keep_old, uk, [tt[ends], end_w, end_sums],
            float(tt.max()), self.idle, self.cap)
        return out

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
