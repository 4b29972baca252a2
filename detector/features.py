"""Packet features: ONE vectorised pipeline for training, replay and live capture.

``new_extractor(featurizer)`` returns a stateful, per-stream extractor whose
``transform(PacketBatch) -> float32 (n, F)`` turns every frame (ARP and non-IP included) into a row.
Two featurizers exist:

``behaviour-v2`` (the default, ``FEATURE_NAMES``)
    Features of *behaviour*, assembled from small **feature blocks** (nfstream-plugin style: each block
    is a class that declares its column ``names`` next to the vectorised ``compute(ctx)`` that writes
    them, plus any state it keeps; ``BLOCKS`` lists them in order, ``FEATURE_BLOCKS`` maps a block to its
    columns for ablations). No raw identities (IP/MAC values, frame numbers, absolute times), no
    address-space conventions (private/public, "was the peer resolved over DNS"), no absolute TTLs:

    * ``packet``       header fields: lengths, protocol, TCP flags/window/options, service-port buckets,
                       direction, ICMP type, ARP opcode, broadcast/multicast, hop distance from the
                       nearest initial TTL (not the TTL itself);
    * ``application``  DNS name shape/type/rcode, MQTT/HTTP/FTP result codes, failed logins;
    * ``flow``         per connection (5-tuple, either direction): packets and bytes each way so far,
                       duration, SYN/SYN-ACK/handshake completed, no SYN seen (started before the capture),
                       closed, reset before establishment, who initiated (Zeek ``conn_state`` at packet time);
    * ``conn``         connections, failed and short connections per host pair and per service
                       (server, port) over decayed 10 s / 60 s windows (hydra/ncrack against SSH: many short
                       connections to one service, whatever the encryption);
    * ``fan``          fan-out and fan-in: distinct servers, service ports and (server, port) pairs per
                       client, distinct clients and ports per server, over decayed 1/10/60 s windows, and
                       their share of the packets (rate-free: a fast scan and a slow scan look alike, a
                       SYN flood to one port does not);
    * ``balance``      request/response balance: packets of flows whose initiator sent nothing (replies
                       without requests: reflection), per packet and per receiving host, DNS answers and
                       ICMP echo replies against the queries/requests the host sent;
    * ``host_rates``   Kitsune/AfterImage-style decayed counters per source and destination host (packets,
                       bytes, SYN, SYN-ACK, RST, failures, ICMP, DNS queries/new names, ARP replies,
                       failed logins) and their ratios;
    * ``pair``         decayed counters per host pair (packets, bytes each way and their balance, SYNs,
                       failed logins, DNS answers per query) and how long the pair has talked;
    * ``spoofing``     IP->MAC binding changes of the sender, ARP claims of another host's address, rogue
                       router advertisements, ARP replies nobody asked for (per reply, and per MAC for
                       the frames a poisoner sends or receives) and the addresses one MAC claims in ARP.
    * ``clisvc``       one client on one service (client, server, port): connections, failed and short
                       connections, failed logins (guessing is per service; pair/host counters mix a
                       client's other traffic to the same server into it).

    Distinct counts come from first-seen events of capped LRU key sets (``RecentSet``; bounded memory,
    approximate once a set is full) summed with exponential decay, the same decayed sums as the counters.

``paper`` (``PAPER_FEATURE_NAMES``)
    The seed paper's 11 raw fields (frame number, lengths, protocol, TCP ports and the addresses as
    integers), kept only so ``iotwatch train --preset paper`` reproduces the paper's protocol.

Determinism and bounds: only packet time is used (never the wall clock), made monotonic per stream;
host/pair identities are hashed with a fixed 64-bit FNV-1a (no per-process salt); every state table
expires idle keys and is capped in size, so memory is bounded on any stream. Features do not depend
on how the stream is cut into batches (tested).

``FEATURE_SCHEMA`` hashes the featurizer version and its feature names; a model bundle records it and
``load_bundle`` refuses a bundle built for another schema (``RETIRED_FEATURIZERS`` names the old ones).
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from collections import Counter

import numpy as np

from iotwatch.captures.batch import PacketBatch

try:  # the grouped decayed sums in C (detector/_tables.c), bit-identical to DecayTable's numpy path
    from iotwatch.detector import _tables
    _TABLES_ERROR = ""
except ImportError as _e:  # pragma: no cover - no C compiler at install time
    _tables = None
    _TABLES_ERROR = f"iotwatch.detector._tables not importable ({_e}); reinstall with `bash dev.sh setup`"


def _recycle_limit() -> int:
    """Bytes the recycling allocator may keep: ``IOTWATCH_FEATURE_CACHE_MB`` (MiB); 0 (off) when unset or
    not a whole number."""
    v = os.environ.get("IOTWATCH_FEATURE_CACHE_MB", "").strip()
    return int(v) << 20 if v.isdigit() else 0


# numpy array data of the extractor from _tables' recycling allocator: OFF unless IOTWATCH_FEATURE_CACHE_MB
# gives it a byte limit. Measured (session 8): 48 MiB makes features + model ~1.2x faster at 8192 rows
# (bench/inference.py) but adds ~40 MB to the peak RSS of a 1M-packet replay (bench/memory.py: 381 -> 423 MB
# against the 400 MB target), so the default keeps numpy's allocator and the memory target.
_RECYCLE_BYTES = _recycle_limit() if _tables is not None else 0
RECYCLE_MEMORY = _RECYCLE_BYTES > 0
if RECYCLE_MEMORY:
    _tables.recycling_clear(_RECYCLE_BYTES)


def _recycling_on():
    """Switch numpy's data allocator, in this context only, to ``_tables``' recycling one; returns what
    ``_recycling_restore`` needs. Why: the capture layer pins glibc's mmap threshold at 128 KiB
    (captures/tshark/malloc.py), so each of the hundreds of numpy temporaries of 128 KiB or more a batch
    makes would be a fresh mmap faulted in page by page (20-35% of the extractor's time at 8192 rows).
    Values never depend on it (bench/features_equal.py, tests/test_features.py)."""
    if not RECYCLE_MEMORY or _tables is None:
        return None
    try:
        return _tables.recycling_on()
    except RuntimeError:  # numpy without NEP 49 handlers: its default allocator
        return None


def _recycling_restore(previous) -> None:
    if previous is not None:
        _tables.recycling_restore(previous)


def tables_kernel_status() -> tuple[str, str]:
    """("C" | "numpy", why): which path DecayTable runs (the values are the same, the speed is not)."""
    if _tables is None:
        return "numpy", _TABLES_ERROR
    return "C", "detector/_tables.c"

FEATURIZER_VERSION = "behaviour-v2"
# featurizers of earlier iotwatch versions: a bundle built for one is refused with this explanation
RETIRED_FEATURIZERS = {
    "context-v1": "iotwatch-default/1 and /2 era features (resolved-peer and address-class shortcuts), "
                  "replaced by behaviour-v1",
    "behaviour-v1": "iotwatch-default/3 features (IPv6 extension headers read as an unknown protocol, ARP "
                    "replies without request matching), replaced by behaviour-v2",
}

PAPER_FEATURE_NAMES: tuple[str, ...] = (
    "frame_number", "frame_len", "eth_src", "eth_dst", "ip_src", "ip_dst", "ip_proto", "ip_len",
    "tcp_len", "tcp_srcport", "tcp_dstport",
)


def schema_hash(featurizer: str, names) -> str:
    """``<featurizer>:<sha256 prefix of the names>``; what a bundle must match."""
    h = hashlib.sha256(("\n".join([featurizer, *names])).encode()).hexdigest()[:16]
    return f"{featurizer}:{h}"


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
    cache = _HASHES
    try:  # the usual case: every string (host, MAC, name) was hashed in an earlier batch
        return np.fromiter(map(cache.__getitem__, items), dtype=np.uint64, count=n)
    except KeyError:
        pass
    distinct = dict.fromkeys(items)
    if len(distinct) * 2 > n and len(distinct) > _HASHES_ALWAYS:  # mostly new strings (spoofed sources)
        return _fnv1a(np.asarray(items, dtype=str))
    hashes = _fnv1a(np.asarray(list(distinct), dtype=str)).tolist()
    lookup = dict(zip(distinct, hashes))
    if len(cache) + len(lookup) > _HASHES_CAP:
        cache.clear()
    cache.update(lookup)
    return np.fromiter(map(lookup.__getitem__, items), dtype=np.uint64, count=n)


# hash of each string hashed before (a pure function of the string: sharing it between extractors and
# threads changes no value); cleared when it would exceed the cap
_HASHES: dict = {}
_HASHES_CAP = 1 << 17
# batches with at most this many distinct strings always fill the cache: live batches of one or two rows
# (every string distinct) would otherwise never find their hosts there and hash them again each time
_HASHES_ALWAYS = 64


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


MERGE_KERNEL = True  # _merge_state's merge in C when built (False: numpy, for tests)


def _merge_state(keys_old, cols_old, keep_old, keys_new, cols_new, now, idle, cap, time_col=0):
    """Union of the old rows not updated (``keep_old``) and the new rows, minus idle ones, capped.

    Both key arrays are sorted and unique, and disjoint (an updated key is not kept from the old
    state): the union is a merge by ``searchsorted``, no sort. Over the cap, the ``cap`` most recently
    used keys are kept: when they are unambiguous (no tie of last-use times across the cut) they are
    those at or after the cap-th latest time; otherwise ``_merge_state_capped`` picks them exactly as
    it always did (``argpartition`` of the concatenation)."""
    limit = now - idle
    last_old, last_new = cols_old[time_col], cols_new[time_col]
    alive_old = keep_old & (last_old >= limit)
    alive_new = last_new >= limit
    na, nb = int(np.count_nonzero(alive_old)), int(np.count_nonzero(alive_new))
    if na + nb > cap:
        last = np.concatenate([last_old[alive_old], last_new[alive_new]])
        cut = np.partition(last, len(last) - cap)[len(last) - cap]  # the cap-th latest
        if int(np.count_nonzero(last >= cut)) != cap:  # ties across the cut: the old, exact choice
            return _merge_state_capped(keys_old, cols_old, keep_old, keys_new, cols_new, now, idle, cap, time_col)
        alive_old &= last_old >= cut
        alive_new &= last_new >= cut
        na, nb = int(np.count_nonzero(alive_old)), int(np.count_nonzero(alive_new))
    if na and nb and _tables is not None and MERGE_KERNEL:  # the same merge in one pass (_tables.c)
        kinds = [(o.dtype, o.shape[1:]) for o in cols_old]
        if kinds == [(nw.dtype, nw.shape[1:]) for nw in cols_new] and len(kinds) <= 8:
            keys = np.empty(na + nb, dtype=np.uint64)
            cols = [np.empty((na + nb,) + shape, dtype=dt) for dt, shape in kinds]
            _tables.merge_state(np.ascontiguousarray(keys_old, dtype=np.uint64), alive_old,
                                np.ascontiguousarray(keys_new, dtype=np.uint64), alive_new,
                                tuple(np.ascontiguousarray(o) for o in cols_old),
                                tuple(np.ascontiguousarray(nw) for nw in cols_new), keys, tuple(cols))
            return keys, cols
    if na < len(keys_old):
        keys_old = keys_old[alive_old]
        cols_old = [c[alive_old] for c in cols_old]
    if nb < len(keys_new):
        keys_new = keys_new[alive_new]
        cols_new = [c[alive_new] for c in cols_new]
    if na == 0:
        return keys_new, list(cols_new)
    if nb == 0:
        return keys_old, list(cols_old)
    at_new = np.searchsorted(keys_old, keys_new)
    at_new += np.arange(nb)
    at_old = np.ones(na + nb, dtype=bool)
    at_old[at_new] = False
    keys = np.empty(na + nb, dtype=keys_old.dtype)
    keys[at_new] = keys_new
    keys[at_old] = keys_old
    cols = []
    for o, nw in zip(cols_old, cols_new):
        c = np.empty((na + nb,) + o.shape[1:], dtype=np.result_type(o, nw))
        c[at_new] = nw
        c[at_old] = o
        cols.append(c)
    return keys, cols


def _merge_state_capped(keys_old, cols_old, keep_old, keys_new, cols_new, now, idle, cap, time_col=0):
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
    order = _stable_argsort(keys)
    return keys[order], [c[order] for c in cols]


def _take(values: np.ndarray, pos: np.ndarray, found: np.ndarray, fill) -> np.ndarray:
    """``values[pos]`` where found, else ``fill`` (safe on an empty table)."""
    if len(values) == 0:
        return np.full(len(pos), fill, dtype=values.dtype)
    return np.where(found, values[pos], fill)


def _run_starts(ks: np.ndarray) -> np.ndarray:
    """True where a run of equal values starts in the sorted, non-empty array ``ks``."""
    head = np.empty(len(ks), dtype=bool)
    head[0] = True
    np.not_equal(ks[1:], ks[:-1], out=head[1:])
    return head


GROUP_KERNEL = True  # _group_by_key/_stable_argsort by _tables.group_keys when built (False: numpy, for tests)


def _group_kernel(k: np.ndarray):
    """``(order, heads, uk, inv)`` of the uint64 key array ``k`` by ``_tables.group_keys`` (a hash table
    finds the distinct keys, only those are sorted, a counting sort places the entries: ~20x faster than
    a stable argsort of a batch's few hundred distinct hosts/pairs/flows), or None without the kernel, for
    other key types, or when the kernel gives up on keys that collide in its table."""
    if _tables is None or not GROUP_KERNEL or k.dtype != np.uint64:
        return None
    n = len(k)
    order, heads, inv = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
    uk = np.empty(n, dtype=np.uint64)
    g = _tables.group_keys(np.ascontiguousarray(k), order, heads, uk, inv)
    if g < 0:
        return None
    return order, heads[:g], uk[:g], inv


def _stable_argsort(k: np.ndarray) -> np.ndarray:
    """``np.argsort(k, kind="stable")`` (the unique order by (key, position)): ``_tables.group_keys`` for
    uint64 keys; else numpy's unstable SIMD argsort by key, then equal keys put back in stream order by
    one SIMD sort of (group, position) composites (distinct, so any sort gives the same order)."""
    n = len(k)
    grouped = _group_kernel(k)
    if grouped is not None:
        return grouped[0]
    if n < 1024:
        return np.argsort(k, kind="stable")
    o = np.argsort(k)
    ks = k[o]
    head = _run_starts(ks)
    base = np.cumsum(head, dtype=np.int64)
    base -= 1
    base *= n
    comp = base + o
    comp.sort()  # groups keep their places (the group is the major part): only positions move
    comp -= base
    return comp


def _group_by_key(k: np.ndarray):
    """Entries of the non-empty key array ``k`` grouped by key as one stable sort groups them (stream order
    kept within a key): ``(order, heads, uk, inv)`` = the sort, the sorted positions where a key's group
    starts, the distinct keys (ascending), the group (index into ``uk``) of each entry in entry order. The
    grouping step of every state table (``_unique_first_inverse`` for ``BindingTable``); tables keyed alike
    share one (``Ctx.groups``)."""
    grouped = _group_kernel(k)
    if grouped is not None:
        return grouped
    order = _stable_argsort(k)
    ks = k[order]
    head = _run_starts(ks)
    heads = np.flatnonzero(head)
    inv = np.empty(len(order), dtype=np.intp)
    inv[order] = np.cumsum(head) - 1
    return order, heads, ks[heads], inv


def _head_mask(n: int, heads: np.ndarray) -> np.ndarray:
    """True at the sorted positions ``heads`` where a group starts (of ``n`` entries)."""
    head = np.zeros(n, dtype=bool)
    head[heads] = True
    return head


def _unique_first_inverse(k: np.ndarray):
    """``np.unique(k, return_index=True, return_inverse=True)`` (first occurrences) by one stable sort."""
    order, heads, uk, inv = _group_by_key(k)
    return uk, order[heads], inv


def _group_ends(heads: np.ndarray, n: int) -> np.ndarray:
    """Each group's last sorted position, for the ``heads`` of ``n`` grouped entries."""
    ends = np.empty(len(heads), dtype=np.intp)
    ends[:-1] = heads[1:] - 1
    ends[-1] = n - 1
    return ends


def _lookup(keys_sorted: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, found) of each query key in a sorted key array."""
    if len(keys_sorted) == 0:
        return np.zeros(len(query), dtype=np.int64), np.zeros(len(query), dtype=bool)
    pos = np.searchsorted(keys_sorted, query)
    pos_c = np.minimum(pos, len(keys_sorted) - 1)
    return pos_c, keys_sorted[pos_c] == query


# np.log(1.0) is +0.0 (what lets _tables.decay_accumulate take the logs of 0/1 inputs itself): checked once
_LOG_ONE_IS_ZERO = not np.log(np.ones(67)).view(np.uint64).any()


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
        self._utaus, inv = np.unique(self.taus, return_inverse=True)
        # columns sharing a time constant share their time offsets: computed once per distinct tau
        self._tau_of_col = None if np.array_equal(self._utaus, self.taus) else inv
        self._col_tau = np.asarray(inv, dtype=np.int64).reshape(m)
        self.kernel = True  # use detector/_tables.c when built (False: the numpy path, for tests)
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)
        self.logs = np.empty((0, m), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, x: np.ndarray, groups=None) -> np.ndarray:
        """``groups``: ``_group_by_key(keys)`` when the caller has it (keys shared by tables)."""
        n = len(keys)
        m = len(self.taus)
        if n == 0:
            return np.empty((0, m), dtype=np.float64)
        kernel = self.kernel and _tables is not None
        if kernel:  # the kernel takes x == 0 as log 0 = -inf, and takes the logs itself when x is all 0 or 1
            x = np.ascontiguousarray(x, dtype=np.float64)
        else:
            with np.errstate(divide="ignore"):
                logx = np.log(x)
        # one stable sort by key (stream order kept per key); a key in the state gets a carry entry
        # right before its group's first entry: the layout a stable sort of [carries, entries] gives
        order, heads, uk, inv = groups if groups is not None else _group_by_key(keys)
        pos, found = _lookup(self.keys, uk)
        cpos = pos[found]
        c = len(cpos)
        if kernel:
            t = np.ascontiguousarray(t, dtype=np.float64)
            out = np.empty((n, m))
            end_t = np.empty(len(uk))
            end_logs = np.empty((len(uk), m))
            args = (t, order.astype(np.int64, copy=False), heads.astype(np.int64, copy=False),
                    np.where(found, pos, -1).astype(np.int64), np.ascontiguousarray(self.last_t),
                    np.ascontiguousarray(self.logs), self._utaus, self._col_tau, self.GAP, out, end_t, end_logs, x)
            if not (_LOG_ONE_IS_ZERO and _tables.decay_accumulate(None, *args)):
                # log of x with its zeros as 1 (numpy's log is slow on 0), in place: one (n, m) array
                logx = np.add(x, x == 0)
                _tables.decay_accumulate(np.log(logx, out=logx), *args)
            now = float(t.max())
            if c:
                now = max(now, float(self.last_t[cpos].max()))
            keep_old = np.ones(len(self.keys), dtype=bool)
            keep_old[cpos] = False
            self.keys, (self.last_t, self.logs) = _merge_state(
                self.keys, [self.last_t, self.logs], keep_old, uk, [end_t, end_logs], now, self.idle, self.cap)
            return out
        head = _head_mask(n, heads)
        gid0 = inv[order]
        N = n + c
        if c:
            carries = np.cumsum(found)  # carries up to and including each group
            at = np.arange(n) + carries[gid0]  # combined position of each sorted entry
            cat = heads[found] + carries[found] - 1
            tt = np.empty(N)
            tt[at] = t[order]
            tt[cat] = self.last_t[cpos]
            ll = np.empty((N, m))
            ll[at] = logx[order]
            ll[cat] = self.logs[cpos]
            start = np.zeros(N, dtype=bool)
            start[at[heads[~found]]] = True
            start[cat] = True
            gid = np.cumsum(start)
            gid -= 1
        else:
            at = None
            tt = t[order]
            ll = logx[order]
            start = head
            gid = gid0
        first_t = tt[start]
        rel = tt - first_t[gid]
        end = np.empty(N, dtype=bool)
        end[-1] = True
        end[:-1] = start[1:]
        span = rel[end]  # per group
        # offset of group g (per column): sum over earlier groups of span/tau + GAP; columns that share
        # a time constant share it (the same arithmetic, done once)
        steps = span[:, None] / self._utaus[None, :] + self.GAP
        offset = np.zeros_like(steps)
        np.cumsum(steps[:-1], axis=0, out=offset[1:])
        g = rel[:, None] / self._utaus[None, :] + offset[gid]
        if self._tau_of_col is not None:
            g = g[:, self._tau_of_col]
        ll += g
        acc = np.logaddexp.accumulate(ll, axis=0)
        acc -= g
        out = np.empty((n, m))
        out[order] = acc if at is None else acc[at]
        # new state: last entry of each group
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[cpos] = False
        now = float(tt.max())
        self.keys, (self.last_t, self.logs) = _merge_state(
            self.keys, [self.last_t, self.logs], keep_old, uk, [tt[end], acc[end]], now, self.idle, self.cap)
        return out


class CountTable:
    """Running sums per key (no decay): ``update(keys, t, x)`` returns, for every entry, the key's
    sums including that entry, for the whole batch at once (stable sort by key, grouped cumulative
    sums, previous state as a carry). Keys idle for ``idle`` seconds start again from zero; at most
    ``cap`` keys are kept (the most recently used)."""

    def __init__(self, columns: int, idle: float = 300.0, cap: int = 65536):
        self.m = columns
        self.idle = idle
        self.cap = cap
        self.kernel = True  # use detector/_tables.c when built (False: the numpy path, for tests)
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)
        self.sums = np.empty((0, columns), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, x: np.ndarray, groups=None) -> np.ndarray:
        """``groups``: ``_group_by_key(keys)`` when the caller has it (keys shared by tables)."""
        n = len(keys)
        if n == 0:
            return np.empty((0, self.m), dtype=np.float64)
        order, heads, uk, inv = groups if groups is not None else _group_by_key(keys)
        pos, found = _lookup(self.keys, uk)
        tt = t[order]
        alive = found & (_take(self.last_t, pos, found, -np.inf) >= tt[heads] - self.idle)
        ends = _group_ends(heads, n)
        if self.kernel and _tables is not None:  # the same sums in one pass (_tables.c), no (n, m) temporaries
            out = np.empty((n, self.m))
            end_sums = np.empty((len(heads), self.m))
            _tables.count_accumulate(np.ascontiguousarray(x, dtype=np.float64), order.astype(np.int64, copy=False),
                                     heads.astype(np.int64, copy=False), np.where(alive, pos, -1).astype(np.int64),
                                     np.ascontiguousarray(self.sums), out, end_sums)
        else:
            carry = np.zeros((len(heads), self.m))
            if alive.any():
                carry[alive] = self.sums[pos[alive]]
            cs = np.cumsum(x[order], axis=0)
            gid = inv[order]
            before = np.vstack([np.zeros((1, self.m)), cs[:-1]])[heads]  # running total before each group
            acc = cs - before[gid] + carry[gid]
            out = np.empty_like(acc)
            out[order] = acc
            end_sums = acc[ends]
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t, self.sums) = _merge_state(
            self.keys, [self.last_t, self.sums], keep_old, uk, [tt[ends], end_sums], float(tt.max()),
            self.idle, self.cap)
        return out


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
               values: np.ndarray | None = None, groups=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(new, age, value) per entry: ``new`` for the first entry of a key not seen within the
        window, ``age`` seconds since the key was first seen, ``value`` recorded at that moment.
        Entries outside ``mask`` are neither tested nor remembered (new False, age 0, value 0).
        ``groups``: ``_group_by_key(keys)`` when the caller has it (only used without a mask)."""
        n = len(keys)
        if mask is None:
            idx, k, tk = None, keys, t
        else:
            idx = np.flatnonzero(mask)
            k, tk, groups = keys[idx], t[idx], None
        new = np.zeros(n, dtype=bool)
        age = np.zeros(n, dtype=np.float64)
        val = np.zeros(n, dtype=np.float64)
        if len(k) == 0:
            return new, age, val
        # grouped by one stable sort: first occurrence, group of each entry, latest time per key
        order, heads, uk, inv = groups if groups is not None else _group_by_key(k)
        first = order[heads]
        pos, found = _lookup(self.keys, uk)
        alive = _take(self.last_t, pos, found, -np.inf) >= tk[first] - self.window
        new[first[~alive] if idx is None else idx[first[~alive]]] = True
        first_t = np.where(alive, _take(self.first_t, pos, found, 0.0), tk[first])
        v_new = np.zeros(len(uk)) if values is None else (values[first] if idx is None else values[idx][first])
        first_v = np.where(alive, _take(self.value, pos, found, 0.0), v_new)
        if idx is None:
            age[:] = tk - first_t[inv]
            val[:] = first_v[inv]
        else:
            age[idx] = tk - first_t[inv]
            val[idx] = first_v[inv]
        last = np.maximum.reduceat(tk[order], heads)
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
        uk, first, inv = _unique_first_inverse(k)
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


class LastSeen:
    """When each key was last *set*: ``update(keys, t, set_mask, query_mask)`` returns, for every query
    entry, the seconds since the latest set entry of its key strictly earlier in the stream (inf when
    none within ``idle``), for the whole batch at once (stable sort by key; the previous state enters as
    a carry at the head of its key's group). E.g. "was this ARP reply asked for?"."""

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        self.idle = idle
        self.cap = cap
        self.keys = np.empty(0, dtype=np.uint64)
        self.last_t = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, keys: np.ndarray, t: np.ndarray, set_mask: np.ndarray, query_mask: np.ndarray) -> np.ndarray:
        n = len(keys)
        since = np.full(n, np.inf)
        idx = np.flatnonzero(set_mask | query_mask)
        if len(idx) == 0:
            return since
        k, tk, is_set = keys[idx], t[idx], set_mask[idx]
        # one grouping by key; the key's state (its last set time) counts as a set entry at the head of
        # its group: the latest set entry strictly before each entry, else the state, else none (inf)
        order, heads, uk, inv = _group_by_key(k)
        pos, found = _lookup(self.keys, uk)
        carry_t = _take(self.last_t, pos, found, -np.inf)  # -inf: no state
        tt, ss = tk[order], is_set[order]
        m = len(tt)
        start = _head_mask(m, heads)
        # index of the latest set entry at or before each position, not crossing a group start
        mark = np.where(ss | start, np.arange(m), 0)
        np.maximum.accumulate(mark, out=mark)
        prev = np.empty(m, dtype=np.int64)  # the latest set entry strictly before: shift by one in-group
        prev[0] = -1
        prev[1:] = np.where(start[1:], -1, mark[:-1])
        ok = prev >= 0
        ok[ok] = ss[prev[ok]]
        ref_t = carry_t[inv[order]]
        ref_t[ok] = tt[prev[ok]]
        dt = tt - ref_t  # tt - (-inf) = inf: nothing set before
        dt[dt > self.idle] = np.inf
        res = np.empty(m)
        res[order] = dt
        since[idx] = res
        grp_last = np.maximum.reduceat(np.where(ss, tt, -np.inf), heads)
        np.maximum(grp_last, carry_t, out=grp_last)
        live = np.isfinite(grp_last)
        now = float(tk.max())
        if found.any():
            now = max(now, float(carry_t[found].max()))
        keep_old = np.ones(len(self.keys), dtype=bool)
        keep_old[pos[found]] = False
        self.keys, (self.last_t,) = _merge_state(self.keys, [self.last_t], keep_old, uk[live], [grp_last[live]],
                                                now, self.idle, self.cap)
        return since


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
    """``np.isin(values, choices)`` for a few choices: one comparison per choice (~3x faster than
    np.isin's general machinery on a batch)."""
    out = np.zeros(values.shape, dtype=bool)
    for c in np.asarray(choices, dtype=values.dtype).tolist():
        out |= values == c
    return out


def _flag(values: np.ndarray, bit: int) -> np.ndarray:
    return (values >= 0) & ((values & bit) != 0)


# IPv6 extension headers (hop-by-hop, routing, fragment, ESP, AH, destination options, mobility, HIP,
# shim6): the fixed header's next-header field names these, not the upper-layer protocol
_IPV6_EXT_HEADERS = (0, 43, 44, 50, 51, 60, 135, 139, 140)


def upper_protocol(b) -> np.ndarray:
    """The packet's upper-layer protocol number: the IP protocol field, except behind IPv6 extension
    headers (THC ``denial6``, covert channels in destination options, AH), where the dissected layers
    tell it (ICMPv6 58, TCP 6, UDP 17; the extension header's number when no upper layer follows).
    An ICMP error that quotes a TCP/UDP header stays ICMP (its own protocol field says so)."""
    proto = np.asarray(b["ip_proto"])
    ext = (np.asarray(b["ip_version"]) == 6) & _isin(proto, _IPV6_EXT_HEADERS)
    if not ext.any():
        return proto
    inner = np.where(b["icmp_type"] >= 0, 58, np.where(b["tcp_srcport"] >= 0, 6,
                                                       np.where(b["udp_srcport"] >= 0, 17, proto)))
    return np.where(ext, inner, proto)


def _log1p_pos(a: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(a, 0))


# ---------------------------------------------------------------------------------------------------
# Feature blocks
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
_INITIAL_TTLS = np.array([32, 64, 128, 255])


_EXP_MIN_SIZE = 256  # smaller arrays: np.exp directly (two more C calls would cost more than they save)


def _exp(a: np.ndarray) -> np.ndarray:
    """``np.exp(a)``, the same values, without numpy's slow scalar path for results that are exactly 0:
    -inf (log 0, what DecayTable gives for a sum that is 0) and logs below -800 (a column with nothing in
    its key's group: ~ -1000 per group of DecayTable's offset). numpy's float64 exp is elementwise but
    6-17x slower on vectors holding them; they go in as 0 and come out as +0.0 (``_tables.c``)."""
    a = np.asarray(a, dtype=np.float64)
    if _tables is None or a.size < _EXP_MIN_SIZE:
        return np.exp(a)
    a = np.ascontiguousarray(a)
    e = np.empty_like(a)
    if _tables.to_exp_input(a, e) == 0:
        return np.exp(e, out=e)
    np.exp(e, out=e)
    _tables.zero_where_exp_zero(e, a)
    return e


def _log1(a):
    """log(1 + S) from log S (what DecayTable returns); S stays far below overflow."""
    e = _exp(a)
    return np.log1p(e, out=e)


def _share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a / np.maximum(b, 1e-9), 0.0, 1.0)


class Ctx:
    """What one batch shares between blocks: the batch, packet times, host hashes and the per-packet
    and per-flow facts earlier blocks publish (``p``: a dict of arrays)."""

    def __init__(self, batch: PacketBatch, t: np.ndarray):
        self.b = batch
        self.n = len(batch)
        self.t = t
        self.p: dict[str, np.ndarray] = {}
        self._groups: dict[str, tuple] = {}
        self._hashes: dict[str, np.ndarray] = {}

    def hashes(self, column: str) -> np.ndarray:
        """``hash_strings`` of a string column of the batch, once per batch (identities and spoofing share
        the MAC and address columns' hashes). Read-only."""
        h = self._hashes.get(column)
        if h is None:
            h = self._hashes[column] = hash_strings(self.b[column])
        return h

    def groups(self, name: str) -> tuple:
        """``_group_by_key(p[name])``, computed once per batch (tables keyed alike share it)."""
        g = self._groups.get(name)
        if g is None:
            g = self._groups[name] = _group_by_key(self.p[name])
        return g


class FeatureBlock:
    """A group of feature columns and their computation: ``names`` (declared once, in order) and
    ``compute(ctx, out)`` writing every column of ``out`` (an (n, len(names)) view of the row block).
    Stateful blocks keep bounded tables, created per stream in ``__init__``."""

    name = ""
    names: tuple[str, ...] = ()

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        self.idle, self.cap = idle, cap
        self.col = {n: i for i, n in enumerate(self.names)}

    def tables(self) -> list:
        return []

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def put(self, out: np.ndarray, name: str, values) -> None:
        out[:, self.col[name]] = values


class PacketBlock(FeatureBlock):
    """Header fields of the packet itself (no identities, no absolute TTL)."""

    name = "packet"
    names = tuple(
        ["frame_len_log", "payload_log", "payload_frac", "ip_hops", "ip_df", "ip_mf", "ip_fragment", "ipv4",
         "ipv6", "non_ip", "proto_tcp", "proto_udp", "proto_icmp", "proto_icmpv6", "proto_other_ip", "arp",
         "tcp_fin", "tcp_syn", "tcp_rst", "tcp_psh", "tcp_ack", "tcp_urg", "tcp_syn_only", "tcp_synack",
         "tcp_window_log", "tcp_window_zero", "tcp_syn_bare"]
        + [f"port_{b}" for b, _ in PORT_BUCKETS]
        + ["port_other_system", "port_other_registered", "port_both_ephemeral", "port_none",
           "to_service", "from_service"]
        + [f"icmp_{n}" for n, _, _ in _ICMP_TYPES] + ["icmp_other", "icmp_code_nonzero"]
        + ["arp_request", "arp_reply", "arp_gratuitous", "eth_broadcast", "eth_multicast", "dst_group"])

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self._addr_class: dict[str, int] = {}
        self._mac_group: dict[str, bool] = {}

    @staticmethod
    def _per_string(values: np.ndarray, cache: dict, of, dtype) -> np.ndarray:
        """``of(v)`` for each string of ``values``, computed once per distinct string (a batch holds few)."""
        items = values.tolist()
        todo = [v for v in dict.fromkeys(items) if v not in cache]
        if todo:
            if len(cache) > 65536:
                cache.clear()
                todo = list(dict.fromkeys(items))  # the batch's strings that were cached are gone too
            for v in todo:
                cache[v] = of(v)
        return np.fromiter(map(cache.__getitem__, items), dtype=dtype, count=len(items))

    def _group(self, values: np.ndarray) -> np.ndarray:
        return self._per_string(values, self._addr_class, address_class, np.int8) == 2

    @staticmethod
    def _is_group_mac(mac) -> bool:
        """A multicast Ethernet destination of IPv4 (01:...) or IPv6 (33:...)."""
        return str(mac).startswith(("01:", "33:"))

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        b, n, p = ctx.b, ctx.n, ctx.p

        def put(name, v):
            out[:, self.col[name]] = v

        flen = b["frame_len"].astype(np.float64)
        ip_len = b["ip_len"].astype(np.float64)
        tcp_len = b["tcp_len"].astype(np.float64)
        udp = (b["udp_srcport"] >= 0) & (b["tcp_srcport"] < 0)
        payload = np.where(tcp_len >= 0, tcp_len, np.where(udp & (ip_len >= 0), ip_len - 28, 0))
        put("frame_len_log", _log1p_pos(flen) / 7.3)
        put("payload_log", _log1p_pos(payload) / 7.3)
        put("payload_frac", np.clip(payload / np.maximum(flen, 1), 0, 1))
        ttl = b["ip_ttl"]
        init = _INITIAL_TTLS[np.minimum(np.searchsorted(_INITIAL_TTLS, np.maximum(ttl, 0)), 3)]
        put("ip_hops", np.where(ttl >= 0, np.log1p(np.maximum(init - ttl, 0)) / 3.5, 0))
        ipf = b["ip_flags"]
        put("ip_df", _flag(ipf, 0x40))
        put("ip_mf", _flag(ipf, 0x20))
        put("ip_fragment", b["ip_frag_offset"] > 0)
        ver = b["ip_version"]
        has_ip = b["ip_src"] != ""
        put("ipv4", ver == 4)
        put("ipv6", ver == 6)
        put("non_ip", ~has_ip)
        proto = upper_protocol(b)
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
        # options on a SYN are what every OS stack sends; a bare SYN (20-byte header) is crafted (hping3,
        # masscan, zmap, flood tools). Options on other segments are NOT a feature: whether data segments
        # carry timestamps fingerprints the sender's stack (Linux yes, lwIP/Windows mostly not), which a
        # model learns as "attacker" when its training attacks come from one stack (MODEL_CARD session 10).
        put("tcp_syn_bare", syn_only & (b["tcp_hdr_len"] == 20))

        sp = np.where(b["tcp_srcport"] >= 0, b["tcp_srcport"], b["udp_srcport"])
        dp = np.where(b["tcp_dstport"] >= 0, b["tcp_dstport"], b["udp_dstport"])
        has_port = (sp >= 0) & (dp >= 0)
        known_s = np.zeros(n, dtype=bool)
        known_d = np.zeros(n, dtype=bool)
        for name, plist in PORT_BUCKETS:
            ins, ind = _isin(sp, plist), _isin(dp, plist)
            put(f"port_{name}", ins | ind)
            known_s |= ins
            known_d |= ind
        lo = np.minimum(sp, dp)
        rest = has_port & ~(known_s | known_d)
        put("port_other_system", rest & (lo < 1024))
        put("port_other_registered", rest & (lo >= 1024) & (lo < 49152))
        put("port_both_ephemeral", rest & (lo >= 49152))
        put("port_none", ~has_port)
        to_service = has_port & (known_d | (~known_s & (dp < sp)))
        from_service = has_port & ~to_service
        put("to_service", to_service)
        put("from_service", from_service)

        icmp_any = is_icmp | is_icmp6
        it = np.where(icmp_any, b["icmp_type"], -1)
        hit = np.zeros(n, dtype=bool)
        icmp = {}
        for name, v4, v6 in _ICMP_TYPES:
            m = (is_icmp & _isin(it, v4)) | (is_icmp6 & _isin(it, v6))
            put(f"icmp_{name}", m)
            icmp[name] = m
            hit |= m
        put("icmp_other", icmp_any & ~hit)
        put("icmp_code_nonzero", icmp_any & (b["icmp_code"] > 0))

        arp_src_ip = b["arp_src_ip"]
        put("arp_request", arp_op == 1)
        put("arp_reply", arp_op == 2)
        put("arp_gratuitous", is_arp & (arp_src_ip == b["arp_dst_ip"]) & (arp_src_ip != ""))
        eth_dst = b["eth_dst"]
        bcast = eth_dst == "ff:ff:ff:ff:ff:ff"
        put("eth_broadcast", bcast)
        eth_group = self._per_string(eth_dst, self._mac_group, self._is_group_mac, bool)
        put("eth_multicast", eth_group & ~bcast)
        put("dst_group", bcast | eth_group | self._group(b["ip_dst"]))
        size = np.maximum(flen, 0)
        p.update(has_ip=has_ip, proto=proto, is_tcp=is_tcp, is_udp=proto == 17, is_arp=is_arp, arp_reply=arp_op == 2,
                 fin=fin, rst=rst, syn_only=syn_only, synack=synack, sp=sp, dp=dp, has_port=has_port,
                 to_service=to_service, from_service=from_service, icmp_any=icmp_any, it=it,
                 sp_service=known_s | ((sp >= 0) & (sp < 1024)),
                 icmp_unreach=icmp["unreachable"], echo_req=icmp["echo_request"], echo_rep=icmp["echo_reply"],
                 router_adv=icmp["router_adv"], eth_group=eth_group, size=size)


class ApplicationBlock(FeatureBlock):
    """DNS name shape and type, MQTT/HTTP/FTP results, failed logins (per packet)."""

    name = "application"
    names = tuple(
        ["dns", "dns_response", "dns_rcode_error", "dns_answers_log"]
        + [f"dns_qtype_{n}" for n, _ in _DNS_QTYPES]
        + ["dns_name_len", "dns_name_entropy", "dns_label_max", "dns_labels", "dns_digit_frac"]
        + ["mqtt", "mqtt_connect", "mqtt_connack", "mqtt_publish", "mqtt_refused",
           "http_request", "http_post", "http_status_2xx", "http_status_401_403", "http_status_4xx_5xx",
           "ftp_reply", "ftp_230", "ftp_331", "ftp_530", "auth_fail"])

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self._shapes = _NameShapeCache()

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        b, p = ctx.b, ctx.p

        def put(name, v):
            out[:, self.col[name]] = v

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
        for name in ("dns_name_len", "dns_name_entropy", "dns_label_max", "dns_labels", "dns_digit_frac"):
            put(name, 0.0)
        if has_name.any():
            idx = np.flatnonzero(has_name)
            sh = self._shapes.shapes(qname[idx])
            c = self.col
            out[idx, c["dns_name_len"]] = sh[:, 0] / 64.0
            out[idx, c["dns_name_entropy"]] = sh[:, 1] / 6.0
            out[idx, c["dns_label_max"]] = sh[:, 2] / 63.0
            out[idx, c["dns_labels"]] = sh[:, 3] / 8.0
            out[idx, c["dns_digit_frac"]] = sh[:, 4]
        mt = b["mqtt_msgtype"]
        mqtt_refused = b["mqtt_conack"] > 0
        put("mqtt", mt >= 0)
        put("mqtt_connect", mt == 1)
        put("mqtt_connack", mt == 2)
        put("mqtt_publish", mt == 3)
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
        p.update(is_dns=is_dns, dns_resp=dns_resp, dns_query=is_dns & ~dns_resp, has_name=has_name,
                 auth_fail=auth_fail)


class FlowBlock(FeatureBlock):
    """Per connection (5-tuple, both directions; ICMP and ARP per host pair): Zeek-style state at
    packet time. "sent"/"recv" = by this packet's sender / by the other side, so far in the flow.
    The initiator is the side of the flow's first packet seen, unless that packet looks like a reply
    (SYN-ACK, from a service port, ARP reply): a capture that starts mid-conversation still gets it
    right, and replies nobody asked for (reflection) are attributed to the silent "initiator"."""

    name = "flow"
    names = ("flow_sent_pkts_log", "flow_recv_pkts_log", "flow_sent_bytes_log", "flow_recv_bytes_log",
             "flow_sent_share", "flow_duration_log", "flow_new", "flow_by_initiator", "flow_no_syn",
             "flow_syn_seen", "flow_synack_seen", "flow_established", "flow_unanswered", "flow_rejected",
             "flow_closed", "flow_pkts_per_s_log")
    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.table = CountTable(8, idle=idle, cap=cap)  # running sums over a flow's life
        self.seen = RecentSet(window=idle, cap=cap)

    def tables(self):
        return [self.table, self.seen]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        fwd = p["fwd"]
        sp, dp = p["sp"], p["dp"]
        proto = p["proto"]
        ports = p["has_port"]
        pa = np.where(ports, np.where(fwd, sp, dp), -1) + 1
        pb = np.where(ports, np.where(fwd, dp, sp), -1) + 1
        fkey = mix(mix(p["pkey"], (proto + 2).astype(np.uint64)), (pa * 65537 + pb).astype(np.uint64))
        # a UDP packet between two unregistered ports is a reply only from a known/system port: a flood with
        # rotating source ports below the target's port is not "replies from many services" (a port scan)
        from_svc = p["from_service"] & ~p["syn_only"] & (p["is_tcp"] | p["sp_service"])
        looks_reply = p["synack"] | from_svc | p["arp_reply"] | p["echo_rep"]
        init_a = np.where(looks_reply, ~fwd, fwd).astype(np.float64)
        fgroups = _group_by_key(fkey)
        new, age, first_a = self.seen.update(fkey, t, values=init_a, groups=fgroups)
        by_init = fwd == (first_a > 0.5)
        size = p["size"]
        e = np.zeros((n, 8))
        e[:, 0] = fwd
        e[:, 1] = ~fwd
        e[:, 2] = np.where(fwd, size, 0)
        e[:, 3] = np.where(fwd, 0, size)
        e[:, 4] = p["syn_only"]
        e[:, 5] = p["synack"]
        e[:, 6] = p["fin"] | p["rst"]
        e[:, 7] = p["rst"]
        cnt = self.table.update(fkey, t, e, fgroups)
        sent_p = np.where(fwd, cnt[:, 0], cnt[:, 1])
        recv_p = np.where(fwd, cnt[:, 1], cnt[:, 0])
        sent_b = np.where(fwd, cnt[:, 2], cnt[:, 3])
        recv_b = np.where(fwd, cnt[:, 3], cnt[:, 2])
        total = sent_p + recv_p
        init_p = np.where(by_init, sent_p, recv_p)
        resp_p = total - init_p
        tcp = p["is_tcp"]
        syn_seen = cnt[:, 4] > 0.5
        synack_seen = cnt[:, 5] > 0.5
        established = tcp & syn_seen & synack_seen & (total > 2.5)
        no_syn = tcp & ~syn_seen & ~synack_seen
        closed = cnt[:, 6] > 0.5
        put = self.put
        put(out, "flow_sent_pkts_log", np.log1p(sent_p) / 6.0)
        put(out, "flow_recv_pkts_log", np.log1p(recv_p) / 6.0)
        put(out, "flow_sent_bytes_log", np.log1p(sent_b) / 12.0)
        put(out, "flow_recv_bytes_log", np.log1p(recv_b) / 12.0)
        put(out, "flow_sent_share", _share(sent_b, sent_b + recv_b))
        put(out, "flow_duration_log", np.log1p(age) / 6.0)
        put(out, "flow_new", new)
        put(out, "flow_by_initiator", by_init)
        put(out, "flow_no_syn", no_syn)
        put(out, "flow_syn_seen", tcp & syn_seen)
        put(out, "flow_synack_seen", tcp & synack_seen)
        put(out, "flow_established", established)
        put(out, "flow_unanswered", tcp & syn_seen & ~synack_seen & (resp_p < 0.5))
        put(out, "flow_rejected", tcp & (cnt[:, 7] > 0.5) & ~established & ~no_syn)
        put(out, "flow_closed", closed)
        put(out, "flow_pkts_per_s_log", np.log1p(total / np.maximum(age, 0.05)) / 10.0)
        hs, hd = p["hs"], p["hd"]
        p.update(new_flow=new, by_init=by_init, init_pkts=init_p, flow_total=total, flow_age=age,
                 established=established, closed=closed, no_syn=no_syn,
                 cli=np.where(by_init, hs, hd), srv=np.where(by_init, hd, hs),
                 svc_port=np.where(ports, np.where(by_init, dp, sp), np.where(p["icmp_any"], 70000, 70001)))


class ConnBlock(FeatureBlock):
    """Connections, failed and short connections per host pair and per service (server, port),
    decayed over 10 s and 60 s: credential guessing = many short connections to one service."""

    name = "conn"
    _COLS = (("conns_10s", 10.0), ("conns_60s", 60.0), ("failed_60s", 60.0), ("short_60s", 60.0), ("pkts_60s", 60.0))
    names = tuple(f"{w}_{c}" for w in ("pair", "svc") for c in (
        "conns_10s", "conns_60s", "failed_60s", "short_60s", "conns_per_pkt", "short_share", "failed_share"))
    SHORT_PKTS, SHORT_SECONDS = 60, 30.0

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        taus = [tau for _, tau in self._COLS]
        self.pair = DecayTable(taus, idle=idle, cap=cap)
        self.svc = DecayTable(taus, idle=idle, cap=cap)

    def tables(self):
        return [self.pair, self.svc]

    @classmethod
    def events(cls, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per packet: a new connection; a failed one (refused by RST before the handshake completed, or
        ICMP unreachable); a short one closing (FIN/RST within SHORT_PKTS packets and SHORT_SECONDS)."""
        conn = p["new_flow"] & p["has_ip"]
        fail = (p["is_tcp"] & p["rst"] & ~p["established"]) | p["icmp_unreach"]
        short = (p["is_tcp"] & (p["fin"] | p["rst"]) & (p["flow_total"] < cls.SHORT_PKTS)
                 & (p["flow_age"] < cls.SHORT_SECONDS))
        return conn, fail, short

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        conn, fail, short = self.events(p)
        e = np.zeros((n, 5))
        e[:, 0] = conn
        e[:, 1] = conn
        e[:, 2] = fail
        e[:, 3] = short
        e[:, 4] = 1.0
        skey = mix(p["srv"], (p["svc_port"] + 1).astype(np.uint64))
        for w, tab, key, groups in (("pair", self.pair, p["pkey"], ctx.groups("pkey")), ("svc", self.svc, skey, None)):
            lg = tab.update(key, t, e, groups)
            c = _exp(lg)
            self.put(out, f"{w}_conns_10s", _log1(lg[:, 0]) / 6.0)
            self.put(out, f"{w}_conns_60s", _log1(lg[:, 1]) / 6.0)
            self.put(out, f"{w}_failed_60s", _log1(lg[:, 2]) / 6.0)
            self.put(out, f"{w}_short_60s", _log1(lg[:, 3]) / 6.0)
            self.put(out, f"{w}_conns_per_pkt", _share(c[:, 1], c[:, 4]))
            self.put(out, f"{w}_short_share", _share(c[:, 3], np.maximum(c[:, 1], 1.0)))
            self.put(out, f"{w}_failed_share", _share(c[:, 2], np.maximum(c[:, 1], 1.0)))


class FanBlock(FeatureBlock):
    """Fan-out and fan-in of the flow's client and server: distinct servers, service ports and
    (server, port) pairs a client reached, distinct clients and ports a server was reached on, over
    decayed windows, and their share of the host's packets (independent of the rate)."""

    name = "fan"
    # host table columns: (name, tau); "c_" = the host as a client, "s_" = as a server
    _CCOLS = (("c_pkts_10s", 10.0), ("c_pkts_60s", 60.0), ("c_srv_1s", 1.0), ("c_srv_10s", 10.0), ("c_srv_60s", 60.0),
              ("c_svc_10s", 10.0), ("c_svc_60s", 60.0), ("c_port_1s", 1.0), ("c_port_10s", 10.0), ("c_port_60s", 60.0))
    _SCOLS = (("s_pkts_10s", 10.0), ("s_cli_1s", 1.0), ("s_cli_10s", 10.0), ("s_cli_60s", 60.0),
              ("s_port_10s", 10.0), ("s_port_60s", 60.0))
    names = ("cli_servers_1s", "cli_servers_10s", "cli_servers_60s", "cli_services_10s", "cli_services_60s",
             "cli_ports_1s", "cli_ports_10s", "cli_ports_60s", "cli_server_share_10s", "cli_port_share_10s",
             "cli_service_share_60s", "cli_port_servers_60s",
             "srv_clients_1s", "srv_clients_10s", "srv_clients_60s", "srv_ports_10s", "srv_ports_60s",
             "srv_client_share_10s", "srv_port_share_10s", "new_server", "new_service", "new_client_port")

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.clients = DecayTable([tau for _, tau in self._CCOLS], idle=idle, cap=cap)  # the host as a client
        self.servers = DecayTable([tau for _, tau in self._SCOLS], idle=idle, cap=cap)  # ... as a server
        self.cli_port = DecayTable([60.0], idle=idle, cap=cap)
        self.cs = RecentSet(window=idle, cap=2 * cap)
        self.csp = RecentSet(window=idle, cap=2 * cap)
        self.cp = RecentSet(window=idle, cap=2 * cap)
        self.sp = RecentSet(window=idle, cap=2 * cap)

    def tables(self):
        return [self.clients, self.servers, self.cli_port, self.cs, self.csp, self.cp, self.sp]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        cli, srv = p["cli"], p["srv"]
        port = (p["svc_port"] + 1).astype(np.uint64)
        m = p["has_ip"] | p["is_arp"]
        new_srv = self.cs.update(mix(cli, srv), t, m)[0]
        new_svc = self.csp.update(mix(mix(cli, srv), port), t, m)[0]
        new_port = self.cp.update(mix(cli, port), t, m)[0]
        new_sport = self.sp.update(mix(srv, port), t, m)[0]
        hc = {name: i for i, (name, _) in enumerate(self._CCOLS)}
        hs_ = {name: i for i, (name, _) in enumerate(self._SCOLS)}
        ce = np.zeros((n, len(self._CCOLS)))
        se = np.zeros((n, len(self._SCOLS)))
        for name, v in (("c_pkts_10s", 1.0), ("c_pkts_60s", 1.0), ("c_srv_1s", new_srv), ("c_srv_10s", new_srv),
                        ("c_srv_60s", new_srv), ("c_svc_10s", new_svc), ("c_svc_60s", new_svc),
                        ("c_port_1s", new_port), ("c_port_10s", new_port), ("c_port_60s", new_port)):
            ce[:, hc[name]] = v
        for name, v in (("s_pkts_10s", 1.0), ("s_cli_1s", new_srv), ("s_cli_10s", new_srv), ("s_cli_60s", new_srv),
                        ("s_port_10s", new_sport), ("s_port_60s", new_sport)):
            se[:, hs_[name]] = v
        cl = self.clients.update(cli, t, ce)
        sl = self.servers.update(srv, t, se)
        cc, sc = _exp(cl), _exp(sl)
        put = self.put
        for name, col in (("cli_servers_1s", "c_srv_1s"), ("cli_servers_10s", "c_srv_10s"),
                          ("cli_servers_60s", "c_srv_60s"), ("cli_services_10s", "c_svc_10s"),
                          ("cli_services_60s", "c_svc_60s"), ("cli_ports_1s", "c_port_1s"),
                          ("cli_ports_10s", "c_port_10s"), ("cli_ports_60s", "c_port_60s")):
            put(out, name, _log1(cl[:, hc[col]]) / 8.0)
        for name, col in (("srv_clients_1s", "s_cli_1s"), ("srv_clients_10s", "s_cli_10s"),
                          ("srv_clients_60s", "s_cli_60s"), ("srv_ports_10s", "s_port_10s"),
                          ("srv_ports_60s", "s_port_60s")):
            put(out, name, _log1(sl[:, hs_[col]]) / 8.0)
        put(out, "cli_server_share_10s", _share(cc[:, hc["c_srv_10s"]], cc[:, hc["c_pkts_10s"]]))
        put(out, "cli_port_share_10s", _share(cc[:, hc["c_port_10s"]], cc[:, hc["c_pkts_10s"]]))
        put(out, "cli_service_share_60s", _share(cc[:, hc["c_svc_60s"]], cc[:, hc["c_pkts_60s"]]))
        put(out, "srv_client_share_10s", _share(sc[:, hs_["s_cli_10s"]], sc[:, hs_["s_pkts_10s"]]))
        put(out, "srv_port_share_10s", _share(sc[:, hs_["s_port_10s"]], sc[:, hs_["s_pkts_10s"]]))
        # horizontal spread: distinct servers per (client, service port)
        put(out, "cli_port_servers_60s", _log1(self.cli_port.update(mix(cli, port), t, new_svc[:, None].astype(float))[:, 0]) / 8.0)
        put(out, "new_server", new_srv)
        put(out, "new_service", new_svc)
        put(out, "new_client_port", new_port)


class BalanceBlock(FeatureBlock):
    """Request/response balance: packets of flows whose initiator has sent nothing (replies nobody
    asked for: reflection/backscatter at the victim), per packet and per receiving host; and per host
    pair, the DNS answers, ICMP echo replies and SYN-ACKs the packet's receiver got from its sender
    against the queries/requests/SYNs it sent it."""

    name = "balance"
    _COLS = (("r_unsol_1s", 1.0), ("r_unsol_10s", 10.0), ("r_unsolflow_10s", 10.0), ("r_pkts_10s", 10.0))
    # per unordered pair, "a" = lower host hash: (answers a got, requests a sent) x 3 kinds, and for b
    _PAIR = ("dnsr_a", "dnsq_a", "echorep_a", "echoreq_a", "synack_a", "syn_a",
             "dnsr_b", "dnsq_b", "echorep_b", "echoreq_b", "synack_b", "syn_b")
    names = ("flow_unsolicited", "dst_unsolicited_1s", "dst_unsolicited_10s", "dst_unsolicited_share",
             "dst_unsolicited_flows_10s", "dst_dns_answer_excess", "dst_echo_reply_excess", "dst_synack_excess")

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.hosts = DecayTable([tau for _, tau in self._COLS], idle=idle, cap=cap)
        self.pairs = DecayTable([10.0] * len(self._PAIR), idle=idle, cap=cap)

    def tables(self):
        return [self.hosts, self.pairs]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        # a TCP flow with neither SYN nor SYN-ACK started before the capture: its first packets from
        # the server are not unsolicited
        unsol = p["has_ip"] & ~p["by_init"] & (p["init_pkts"] < 0.5) & ~p["no_syn"]
        e = np.empty((n, 4))
        e[:, 0] = unsol
        e[:, 1] = unsol
        e[:, 2] = unsol & p["new_flow"]
        e[:, 3] = 1.0
        dl = self.hosts.update(p["hd"], t, e)
        put = self.put
        put(out, "flow_unsolicited", unsol)
        put(out, "dst_unsolicited_1s", _log1(dl[:, 0]) / 8.0)
        put(out, "dst_unsolicited_10s", _log1(dl[:, 1]) / 8.0)
        put(out, "dst_unsolicited_share", _share(_exp(dl[:, 1]), _exp(dl[:, 3])))
        put(out, "dst_unsolicited_flows_10s", _log1(dl[:, 2]) / 8.0)
        fwd = p["fwd"]  # sender is a
        pe = np.zeros((n, 12))
        kinds = ((p["dns_resp"], p["dns_query"]), (p["echo_rep"], p["echo_req"]), (p["synack"], p["syn_only"]))
        for j, (reply, request) in enumerate(kinds):
            # a reply sent by a is received by b; a request sent by a counts for a
            pe[:, 2 * j] = reply & ~fwd          # answers a received (sent by b)
            pe[:, 2 * j + 1] = request & fwd     # requests a sent
            pe[:, 6 + 2 * j] = reply & fwd       # answers b received
            pe[:, 6 + 2 * j + 1] = request & ~fwd
        pl = _log1(self.pairs.update(p["pkey"], t, pe, ctx.groups("pkey")))
        for j, name in enumerate(("dst_dns_answer_excess", "dst_echo_reply_excess", "dst_synack_excess")):
            # the receiver is b when the sender is a
            got = np.where(fwd, pl[:, 6 + 2 * j], pl[:, 2 * j])
            asked = np.where(fwd, pl[:, 6 + 2 * j + 1], pl[:, 2 * j + 1])
            put(out, name, np.tanh((got - asked) / 2.0))


# Host-table columns (name, time constant in seconds). "s_" = sent by the host, "r_" = received.
HOST_COLUMNS: tuple[tuple[str, float], ...] = (
    ("s_pkts_1s", 1.0), ("s_pkts_10s", 10.0), ("s_bytes_1s", 1.0), ("s_bytes_10s", 10.0),
    ("s_syn_1s", 1.0), ("s_syn_10s", 10.0), ("s_synack_10s", 10.0), ("s_rst_10s", 10.0),
    ("s_dnsq_10s", 10.0), ("s_dnsnew_10s", 10.0), ("s_icmp_1s", 1.0), ("s_arp_reply_10s", 10.0),
    ("s_authfail_30s", 30.0),
    ("r_pkts_1s", 1.0), ("r_pkts_10s", 10.0), ("r_bytes_10s", 10.0), ("r_syn_1s", 1.0), ("r_fail_10s", 10.0),
)


class HostRatesBlock(FeatureBlock):
    """Decayed per-host counters (Kitsune/AfterImage) of the packet's source and destination."""

    name = "host_rates"
    names = tuple([f"src_{n}" for n, _ in HOST_COLUMNS] + [f"dst_{n}" for n, _ in HOST_COLUMNS]
                  + ["src_syn_ratio", "src_fail_ratio", "src_rst_ratio", "src_updown_ratio", "dst_syn_ratio"])

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.hosts = DecayTable([tau for _, tau in HOST_COLUMNS], idle=idle, cap=cap)
        self.names_seen = RecentSet(window=idle, cap=cap)

    def tables(self):
        return [self.hosts, self.names_seen]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n, b = ctx.p, ctx.t, ctx.n, ctx.b
        hs, hd = p["hs"], p["hd"]
        asked = p["has_name"] & p["dns_query"]
        name_keys = np.zeros(n, dtype=np.uint64)  # (host, name) of each query; only read where asked
        q = np.flatnonzero(asked)
        name_keys[q] = mix(hs[q], hash_strings(b["dns_qry_name"][q]))
        new_name = self.names_seen.update(name_keys, t, asked)[0]
        size = p["size"]
        hc = {name: i for i, (name, _) in enumerate(HOST_COLUMNS)}
        ent = np.zeros((2 * n, len(HOST_COLUMNS)))
        s, r = ent[0::2], ent[1::2]
        for name, v in (("s_pkts_1s", 1.0), ("s_pkts_10s", 1.0), ("s_bytes_1s", size), ("s_bytes_10s", size),
                        ("s_syn_1s", p["syn_only"]), ("s_syn_10s", p["syn_only"]), ("s_synack_10s", p["synack"]),
                        ("s_rst_10s", p["rst"]), ("s_dnsq_10s", p["dns_query"]), ("s_dnsnew_10s", new_name),
                        ("s_icmp_1s", p["icmp_any"]), ("s_arp_reply_10s", p["arp_reply"]),
                        ("s_authfail_30s", p["auth_fail"])):
            s[:, hc[name]] = v
        failed = p["rst"] | p["icmp_unreach"]
        for name, v in (("r_pkts_1s", 1.0), ("r_pkts_10s", 1.0), ("r_bytes_10s", size), ("r_syn_1s", p["syn_only"]),
                        ("r_fail_10s", failed)):
            r[:, hc[name]] = v
        keys = np.empty(2 * n, dtype=np.uint64)
        keys[0::2] = hs
        keys[1::2] = hd
        hl = self.hosts.update(keys, np.repeat(t, 2), ent)
        lin = _exp(hl)  # _log1(hl) is log1p of it: exp once
        host = np.log1p(lin)
        nh = len(HOST_COLUMNS)
        out[:, :nh] = host[0::2]
        out[:, nh:2 * nh] = host[1::2]
        src_lin = lin[0::2]
        dst_lin = lin[1::2]
        put = self.put
        put(out, "src_syn_ratio", _share(src_lin[:, hc["s_syn_10s"]], src_lin[:, hc["s_pkts_10s"]]))
        put(out, "src_fail_ratio", _share(src_lin[:, hc["r_fail_10s"]], src_lin[:, hc["s_pkts_10s"]]))
        put(out, "src_rst_ratio", _share(src_lin[:, hc["s_rst_10s"]], src_lin[:, hc["s_pkts_10s"]]))
        put(out, "src_updown_ratio", np.tanh((hl[0::2, hc["s_bytes_10s"]].clip(-50)
                                              - hl[0::2, hc["r_bytes_10s"]].clip(-50)) / 4.0))
        put(out, "dst_syn_ratio", _share(dst_lin[:, hc["r_syn_1s"]], dst_lin[:, hc["r_pkts_1s"]]))


PAIR_COLUMNS: tuple[tuple[str, float], ...] = (
    ("pkts_1s", 1.0), ("pkts_10s", 10.0), ("fwd_bytes_10s", 10.0), ("rev_bytes_10s", 10.0),
    ("syn_10s", 10.0), ("authfail_30s", 30.0), ("dnsq_10s", 10.0), ("dnsr_10s", 10.0),
)


class PairBlock(FeatureBlock):
    """Decayed counters per (unordered) host pair, turned into sent/received for the packet."""

    name = "pair"
    names = ("pair_pkts_1s", "pair_pkts_10s", "pair_sent_bytes_10s", "pair_recv_bytes_10s", "pair_updown_ratio",
             "pair_syn_10s", "pair_authfail_30s", "pair_dns_resp_per_query", "pair_age_log")

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.pairs = DecayTable([tau for _, tau in PAIR_COLUMNS], idle=idle, cap=cap)
        self.pairs_seen = RecentSet(window=idle, cap=2 * cap)

    def tables(self):
        return [self.pairs, self.pairs_seen]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        fwd, size = p["fwd"], p["size"]
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
        pl = self.pairs.update(p["pkey"], t, pe, ctx.groups("pkey"))
        sent_l = np.where(fwd, pl[:, pc["fwd_bytes_10s"]], pl[:, pc["rev_bytes_10s"]]).clip(-50)
        recv_l = np.where(fwd, pl[:, pc["rev_bytes_10s"]], pl[:, pc["fwd_bytes_10s"]]).clip(-50)
        put = self.put
        put(out, "pair_pkts_1s", _log1(pl[:, pc["pkts_1s"]]))
        put(out, "pair_pkts_10s", _log1(pl[:, pc["pkts_10s"]]))
        put(out, "pair_sent_bytes_10s", _log1(sent_l))
        put(out, "pair_recv_bytes_10s", _log1(recv_l))
        put(out, "pair_updown_ratio", np.tanh((sent_l - recv_l) / 4.0))
        put(out, "pair_syn_10s", _log1(pl[:, pc["syn_10s"]]))
        put(out, "pair_authfail_30s", _log1(pl[:, pc["authfail_30s"]]))
        put(out, "pair_dns_resp_per_query", np.clip(
            _exp(pl[:, pc["dnsr_10s"]]) / np.maximum(_exp(pl[:, pc["dnsq_10s"]]), 1.0), 0, 4) / 4.0)
        _, page, _ = self.pairs_seen.update(p["pkey"], t, groups=ctx.groups("pkey"))
        put(out, "pair_age_log", np.log1p(page) / 6.0)


class SpoofingBlock(FeatureBlock):
    """IP->MAC bindings as seen on the wire (IP source or ARP sender claim with the frame's source MAC),
    ARP claims of another host's address per sender over 30 s, and router advertisements from a new
    router MAC.

    ARP replies nobody asked for (no request from the reply's target for the claimed address in the
    last 10 s; gratuitous replies included) and the distinct addresses one MAC claims in ARP over 60 s:
    a poisoner repeats unsolicited replies and claims other hosts' addresses, whether or not the capture
    saw the binding it replaced (a capture that starts mid-poisoning has no "changed" binding)."""

    name = "spoofing"
    names = ("mac_changed", "arp_claim_changed", "dst_mac_changed", "src_macchange_30s", "src_arpclaim_30s",
             "pair_macchange_30s", "ra_rogue", "arp_unsolicited", "relay_src_arp_unsolicited_30s",
             "relay_dst_arp_unsolicited_30s", "src_arp_addrs_60s", "relay_copy", "src_mac_relayed_30s",
             "dst_mac_relayed_30s")
    ARP_ASK_WINDOW = 10.0
    RELAY_WINDOW = 1.0   # a forwarded copy of an IP packet follows the original within this many seconds

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.bindings = BindingTable(idle=idle, cap=cap)
        self.ra_bindings = BindingTable(idle=6 * idle, cap=16)
        self.changes = DecayTable([30.0, 30.0, 60.0], idle=idle, cap=cap)
        # per MAC: unsolicited ARP replies it sent, forwarded copies it sent; per address (either end of
        # a frame, ARP claims included; keys of their own namespace): frames through a MAC other than its
        # established one (all over 30 s)
        self.mac_unsolicited = DecayTable([30.0, 30.0], idle=idle, cap=cap)
        self.arp_asked = LastSeen(idle=self.ARP_ASK_WINDOW, cap=cap)
        self.arp_claims = LastSeen(idle=60.0, cap=cap)  # per occurrence: exact for any batching
        # an IP packet's content (without TTL and MACs), and the same from one source MAC (one table, two
        # key namespaces)
        self.copies = LastSeen(idle=self.RELAY_WINDOW, cap=2 * cap)
        # (address, MAC) pairs an address was sent from (IP source or ARP claim): a unicast frame to an
        # address through a MAC it has never been sent from goes to a next hop (a router, or a poisoner)
        self.spoke = LastSeen(idle=idle, cap=cap)

    def tables(self):
        return [self.bindings, self.changes, self.mac_unsolicited, self.arp_asked, self.arp_claims, self.copies,
                self.spoke]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n, b = ctx.p, ctx.t, ctx.n, ctx.b
        is_arp = p["is_arp"]
        # the MAC of an ARP frame is its sender's, the Ethernet source; a forged reply sent from a null
        # Ethernet address is the MAC it claims (the ARP sender hardware address an ARP cache learns). Not
        # the claim otherwise: a poisoner's clean-up replies restore the real owner's address from the
        # poisoner's MAC and must not count for the owner
        eth_src = b["eth_src"]
        mac = ctx.hashes("eth_src").copy()
        has_src_mac = eth_src != ""
        # the ARP fields (strings) are only read on ARP frames: hashed and compared there
        arp = np.flatnonzero(is_arp)
        a_src, a_dst = b["arp_src_ip"][arp], b["arp_dst_ip"][arp]
        ha_src, ha_dst = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)
        claims, asks_other, claims_real = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        if len(arp):
            ha_src[arp], ha_dst[arp] = hash_strings(a_src), hash_strings(a_dst)
            claims[arp] = a_src != ""                          # the sender claims an address
            asks_other[arp] = a_src != a_dst                   # not a gratuitous request
            claims_real[arp] = (a_src != "") & (a_src != "0.0.0.0")  # not an ARP probe
            arp_hw = b["arp_src_hw"][arp]
            forged = (arp_hw != "") & ((eth_src[arp] == "00:00:00:00:00:00") | ~has_src_mac[arp])
            if forged.any():
                mac[arp[forged]] = hash_strings(arp_hw[forged])
        src_mask = np.where(is_arp, claims, p["has_ip"]) & has_src_mac  # the ARP claim's or the IP source
        # bindings learnt from both ends of a frame (sender: IP source or ARP claim with the source MAC;
        # receiver: unicast IP destination with the destination MAC), one table: a frame sent as an
        # address, or to an address, through a MAC that is not that address's established one
        eth_dst = b["eth_dst"]
        has_dst_mac = eth_dst != ""
        dst_mask = p["has_ip"] & has_dst_mac & (eth_dst != "ff:ff:ff:ff:ff:ff") & ~p["eth_group"]
        op = b["arp_opcode"]
        h_eth_dst = ctx.hashes("eth_dst")
        bkeys = np.empty(2 * n, dtype=np.uint64)
        # the hash of the bound address: the ARP sender's (ha_src) or the IP source's (= hs: an IP frame's
        # source identity is its IP source), "" (the FNV offset) outside the mask
        bkeys[0::2] = np.where(src_mask, np.where(is_arp, ha_src, p["hs"]), _FNV_OFFSET)
        bkeys[1::2] = np.where(dst_mask, p["hd"], 0)
        bvals = np.empty(2 * n, dtype=np.uint64)
        bvals[0::2] = mac
        bvals[1::2] = h_eth_dst
        bmask = np.empty(2 * n, dtype=bool)
        bmask[0::2] = src_mask
        bmask[1::2] = dst_mask
        t2 = np.repeat(t, 2)   # the time of both rows of each frame's pair (sender, receiver side)
        changed = self.bindings.changed(bkeys, bvals, t2, bmask)
        mac_changed, dst_changed = changed[0::2], changed[1::2]
        # an ARP sender claiming an address bound to another MAC (poisoning) vs. an IP packet whose
        # source MAC differs (also two routers, a capture on both sides of a bridge, VRRP)
        arp_claim = mac_changed & is_arp
        # was this ARP reply asked for: a request from its target for the address it claims
        req, rep = is_arp & (op == 1), is_arp & (op == 2)
        ask = mix(np.where(rep, ha_dst, ha_src), np.where(rep, ha_src, ha_dst))  # (asker, asked-for)
        since = self.arp_asked.update(ask, t, req & asks_other, rep)
        unsolicited = rep & ~(since <= self.ARP_ASK_WINDOW)
        cmask = is_arp & claims_real
        claim_new = cmask & ~(self.arp_claims.update(mix(mac, ha_src), t, cmask, cmask) <= 60.0)
        keys = np.empty(2 * n, dtype=np.uint64)
        keys[0::2] = p["hs"]
        keys[1::2] = p["pkey"] ^ np.uint64(0x5BD1E995)
        x = np.zeros((2 * n, 3))
        x[0::2, 0] = mac_changed
        x[0::2, 1] = arp_claim
        x[0::2, 2] = claim_new
        x[1::2, 0] = mac_changed | dst_changed
        lg = self.changes.update(keys, t2, x)
        # the frame's own MACs (IP frames too): has the sender / the next hop been answering ARP nobody
        # asked for? Traffic a poisoner intercepts goes to and comes from its MAC, whatever the IPs say
        # a forwarded copy: the same IP packet (addresses, protocol, length, ports, TCP flags/window/payload
        # length, ICMP type/code; not the TTL a forwarding kernel lowers) seen within RELAY_WINDOW from another
        # source MAC -- a host on this link re-sending other hosts' packets onto the same link (a man in the
        # middle; a router forwards between links, a capture on one link sees one copy)
        ipm = dst_mask & has_src_mac  # unicast: clients' identical DHCP/mDNS broadcasts are no copies
        num = np.zeros(n, dtype=np.uint64)
        for col, mul in (("ip_proto", 1), ("ip_len", 1 << 8), ("tcp_flags", 1 << 24), ("tcp_len", 1 << 36)):
            num = num ^ (np.asarray(b[col], dtype=np.int64).astype(np.uint64) * np.uint64(mul))
        num2 = np.zeros(n, dtype=np.uint64)
        for col, mul in (("tcp_window", 1), ("icmp_type", 1 << 20), ("icmp_code", 1 << 28)):
            num2 = num2 ^ (np.asarray(b[col], dtype=np.int64).astype(np.uint64) * np.uint64(mul))
        ident = mix(mix(mix(p["hs"], p["hd"]), num), mix((p["sp"] + 2).astype(np.uint64) * np.uint64(65537)
                                                         + (p["dp"] + 2).astype(np.uint64), num2))
        ipm2 = np.concatenate([ipm, ipm])
        seen = self.copies.update(np.concatenate([ident, mix(ident, mac)]), np.concatenate([t, t]), ipm2, ipm2)
        relay_copy = ipm & (seen[:n] <= self.RELAY_WINDOW) & ~(seen[n:] <= self.RELAY_WINDOW)
        # addresses seen through two MACs in the last ~30 s (on either end of a frame, ARP claims included):
        # which one is the impostor is not known here, but frames whose MAC also answers ARP nobody asked for
        # are the poisoner's, whichever binding the capture saw first (a capture that starts mid-poisoning
        # binds the victims' peers to the poisoner's MAC)
        mkeys = np.empty(4 * n, dtype=np.uint64)
        mkeys[0:2 * n:2] = mac
        mkeys[1:2 * n:2] = np.where(has_dst_mac, h_eth_dst, np.uint64(0))
        mkeys[2 * n:] = np.where(bmask, bkeys, np.uint64(0)) ^ np.uint64(0x2545F4914F6CDD1D)
        mx = np.zeros((4 * n, 2))
        mx[0:2 * n:2, 0] = unsolicited
        mx[0:2 * n:2, 1] = relay_copy
        mx[2 * n:, 0] = changed
        mlog = self.mac_unsolicited.update(mkeys, np.concatenate([t2, t2]), mx)
        shared = bmask & (_exp(mlog[2 * n:, 0]) >= 0.5)
        src_shared, dst_shared = shared[0::2], shared[1::2]
        mlog = _log1(mlog[:2 * n])
        ml = mlog[:, 0]
        spoke_from = self.spoke.update(mix(bkeys, bvals), t2, np.tile([True, False], n) & bmask,
                                       np.tile([False, True], n) & bmask)[1::2]
        next_hop = dst_mask & ~(spoke_from <= self.idle)
        put = self.put
        put(out, "mac_changed", mac_changed)
        put(out, "arp_claim_changed", arp_claim)
        put(out, "dst_mac_changed", dst_changed)
        put(out, "src_macchange_30s", _log1(lg[0::2, 0]))
        put(out, "src_arpclaim_30s", _log1(lg[0::2, 1]))
        put(out, "pair_macchange_30s", _log1(lg[1::2, 0]))
        put(out, "arp_unsolicited", unsolicited)
        # only where the frame passes through that MAC in another host's name (forwarded/intercepted):
        # the poisoner's own traffic (its floods, its uploads) is not spoofing
        put(out, "relay_src_arp_unsolicited_30s", np.where(mac_changed | is_arp | src_shared, ml[0::2], 0.0))
        # (dst_changed and dst_shared are only ever set inside dst_mask: unicast IP frames)
        put(out, "relay_dst_arp_unsolicited_30s", np.where(dst_changed | dst_shared | next_hop, ml[1::2], 0.0))
        put(out, "src_arp_addrs_60s", _log1(lg[0::2, 2]))
        put(out, "relay_copy", relay_copy)
        put(out, "src_mac_relayed_30s", mlog[0::2, 1])
        put(out, "dst_mac_relayed_30s", np.where(dst_mask, mlog[1::2, 1], 0.0))
        ra = p["router_adv"]
        put(out, "ra_rogue", self.ra_bindings.changed(np.where(ra, np.uint64(1), np.uint64(0)), mac, t, ra))


class ClientServiceBlock(FeatureBlock):
    """Connections, failed, short connections and failed logins of ONE client on ONE service (client,
    server, service port), decayed over 10/30/60 s. Credential guessing is a client hammering one login
    service; the pair and host counters add up every service of the two hosts, so a client's other
    traffic to the same server (a slowloris on port 80 while it guesses telnet passwords, a device's web
    UI while its MQTT login fails) reads like the guessing. Robust to a capture that starts mid-stream
    (decayed counts of what is seen) and to any address plan (hashed identities only)."""

    name = "clisvc"
    names = ("cs_conns_10s", "cs_conns_60s", "cs_failed_60s", "cs_short_60s", "cs_authfail_30s",
             "cs_short_share", "cs_failed_share", "cs_authfail_per_conn")
    _TAUS = (10.0, 60.0, 60.0, 60.0, 30.0, 60.0)  # conns, conns, failed, short, authfail, authfail

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        super().__init__(idle, cap)
        self.table = DecayTable(list(self._TAUS), idle=idle, cap=cap)

    def tables(self):
        return [self.table]

    def compute(self, ctx: Ctx, out: np.ndarray) -> None:
        p, t, n = ctx.p, ctx.t, ctx.n
        conn, fail, short = ConnBlock.events(p)
        e = np.zeros((n, len(self._TAUS)))
        e[:, 0] = conn
        e[:, 1] = conn
        e[:, 2] = fail
        e[:, 3] = short
        e[:, 4] = p["auth_fail"]
        e[:, 5] = p["auth_fail"]
        key = mix(mix(p["cli"], p["srv"]), (p["svc_port"] + 1).astype(np.uint64))
        lg = self.table.update(key, t, e)
        c = _exp(lg)
        conns = np.maximum(c[:, 1], 1.0)
        put = self.put
        put(out, "cs_conns_10s", _log1(lg[:, 0]) / 6.0)
        put(out, "cs_conns_60s", _log1(lg[:, 1]) / 6.0)
        put(out, "cs_failed_60s", _log1(lg[:, 2]) / 6.0)
        put(out, "cs_short_60s", _log1(lg[:, 3]) / 6.0)
        put(out, "cs_authfail_30s", _log1(lg[:, 4]))   # scaled as pair_authfail_30s
        put(out, "cs_short_share", _share(c[:, 3], conns))
        put(out, "cs_failed_share", _share(c[:, 2], conns))
        put(out, "cs_authfail_per_conn", _share(c[:, 5], conns))


BLOCKS: tuple[type[FeatureBlock], ...] = (PacketBlock, ApplicationBlock, FlowBlock, ConnBlock, FanBlock,
                                          BalanceBlock, HostRatesBlock, PairBlock, SpoofingBlock,
                                          ClientServiceBlock)
FEATURE_NAMES: tuple[str, ...] = tuple(n for blk in BLOCKS for n in blk.names)
FEATURE_BLOCKS: dict[str, tuple[str, ...]] = {blk.name: blk.names for blk in BLOCKS}
FEATURE_SCHEMA = schema_hash(FEATURIZER_VERSION, FEATURE_NAMES)
PAPER_FEATURE_SCHEMA = schema_hash("paper", PAPER_FEATURE_NAMES)

FEATURIZERS = {FEATURIZER_VERSION: (FEATURE_NAMES, FEATURE_SCHEMA), "paper": (PAPER_FEATURE_NAMES, PAPER_FEATURE_SCHEMA)}


def featurizer_info(featurizer: str) -> tuple[tuple[str, ...], str]:
    """(feature names, schema hash) of a featurizer; KeyError for an unknown one."""
    return FEATURIZERS[featurizer]


def new_extractor(featurizer: str = FEATURIZER_VERSION, **options):
    """A fresh stateful extractor for one packet stream."""
    if featurizer == FEATURIZER_VERSION:
        return BehaviourExtractor(**options)
    if featurizer == "paper":
        return PaperExtractor()
    raise KeyError(f"unknown featurizer {featurizer!r}")


class BehaviourExtractor:
    """Stateful ``behaviour-v2`` extractor for one packet stream: the blocks of ``BLOCKS``, in order,
    each writing its own columns (see module doc)."""

    names = FEATURE_NAMES
    schema = FEATURE_SCHEMA

    def __init__(self, idle: float = 300.0, cap: int = 65536):
        self.blocks = [blk(idle=idle, cap=cap) for blk in BLOCKS]
        self.slices = []
        start = 0
        for blk in self.blocks:
            self.slices.append(slice(start, start + len(blk.names)))
            start += len(blk.names)
        self._last_time = -np.inf
        self._by_name = {blk.name: blk for blk in self.blocks}

    def __getattr__(self, name):  # extractor.fan, extractor.flow, ... for tests and benches
        by_name = self.__dict__.get("_by_name", {})
        if name in by_name:
            return by_name[name]
        raise AttributeError(name)

    @property
    def state_size(self) -> int:
        """Keys held across all tables (bounded by the caps)."""
        return sum(len(tab) for blk in self.blocks for tab in blk.tables())

    def _times(self, batch: PacketBatch) -> np.ndarray:
        """Packet time, made monotonic over the stream (missing -> previous)."""
        t = np.asarray(batch["time_epoch"], dtype=np.float64).copy()
        bad = ~np.isfinite(t)
        if bad.any():
            t[bad] = -np.inf
        t = np.maximum.accumulate(np.concatenate([[self._last_time], t]))[1:]
        if not np.isfinite(t[0]):
            first = t[np.isfinite(t)]
            t = np.where(np.isfinite(t), t, first[0] if len(first) else 0.0)
        self._last_time = float(t[-1])
        return t

    def transform(self, batch: PacketBatch, fill: float = 0.0) -> np.ndarray:
        n = len(batch)
        if n == 0:
            return np.full((n, len(FEATURE_NAMES)), fill, dtype=np.float32)
        previous = _recycling_on()  # numpy temporaries from recycled blocks (see _recycling_on)
        try:
            ctx = Ctx(batch, self._times(batch))
            # every block writes its columns (float64 or bool values, never read back) into one float32 row
            # block, column-major so that each write is contiguous: each value is rounded to float32 once,
            # as converting a float64 block at the end did, at half the memory traffic
            cols = np.full((len(FEATURE_NAMES), n), fill, dtype=np.float32)
            for blk, sl in zip(self.blocks, self.slices):
                blk.compute(ctx, cols[sl].T)
                if blk is self.blocks[0]:
                    self._identities(ctx)  # the packet block found ARP/IP; the others need host identities
            if _tables is None:
                return np.ascontiguousarray(cols.T)
            rows = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
            _tables.transpose32(cols, rows)  # a tiled copy: 4x faster than numpy's strided one
            return rows
        finally:
            _recycling_restore(previous)

    @staticmethod
    def _identities(ctx: Ctx) -> None:
        """Host identities: IP; for ARP the sender MAC and the target IP; else MACs."""
        b, p = ctx.b, ctx.p
        has_ip, is_arp = p["has_ip"], p["is_arp"]
        # the hash of the identity string = the identity of the string's hash: hash the columns (shared with
        # the spoofing block), choose per packet between hashes (uint64, not Python strings)
        hs = np.where(has_ip, ctx.hashes("ip_src"), ctx.hashes("eth_src"))
        hd = np.where(has_ip, ctx.hashes("ip_dst"), ctx.hashes("eth_dst"))
        arp = np.flatnonzero(is_arp & ~has_ip)
        if len(arp):  # an ARP frame's destination is its target address, when it has one
            target = b["arp_dst_ip"][arp]
            named = target != ""
            hd[arp[named]] = hash_strings(target[named])
        fwd = hs <= hd
        p.update(hs=hs, hd=hd, fwd=fwd, pkey=mix(np.where(fwd, hs, hd), np.where(fwd, hd, hs)))


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
