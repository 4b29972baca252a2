"""Ground truth per attack episode, written beside a simulated capture as ``<capture>.episodes.json``.

The simulator knows each attack episode (:class:`~iotwatch.captures.sim.core.Episode`: family, tool
variant, the hosts that ran the tools). :class:`EpisodeLog` watches the frames the sink writes and
adds what only the wire shows: the time window, frame range and packet count of the episode's
frames, the victims (addresses other than the attacker's in at least ``VICTIM_SHARE`` of the
episode's frames: the scanned/flooded/brute-forced host, the poisoned host, the tunnel's resolver;
spoofed random sources never reach that share) and, for ARP claims made with the attacker's MAC,
the IP addresses it claimed. File format (one object)::

    {"capture": "x.pcapng", "scenario": "home", "seed": 3,
     "episodes": [{"id": 0, "class": "dos", "kind": "syn-random", "attacker": {"ip": .., "ip6": .., "mac": ..},
                   "attackers": [...], "victims": ["192.168.1.20"], "peers": 4012, "claimed_ips": [],
                   "start": 1712.5, "end": 1718.1, "first_frame": 901, "last_frame": 22013, "packets": 14000,
                   "tool": "...", "declared": {"attacker": {..}, "victims": [..], "reflectors": [..], ...}}]}

A host with a global IPv6 address (scenario varied) also has ``"gua6"``; an attacker's addresses, that one
included, are never among the victims. Scenario ``varied`` adds ``tool`` and ``declared``: what the schedule chose (tool, attacker, victims, reflectors with ``reflector_count``,
``targets`` lan/internet for sweeps); ``victims`` above is what the wire shows.

Times are seconds since the epoch (the capture's clock), frames 1-based as tshark numbers them.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from . import frames as P
from .core import SECOND, Episode, Host

VICTIM_SHARE = 0.25


class _Stats:
    __slots__ = ("first_t", "last_t", "first_frame", "last_frame", "packets", "addrs", "claimed")

    def __init__(self):
        self.first_t = self.last_t = 0
        self.first_frame = self.last_frame = 0
        self.packets = 0
        self.addrs: Counter = Counter()
        self.claimed: Counter = Counter()


class EpisodeLog:
    """Per-episode statistics of the frames handed to the sink (cheap: attack frames only)."""

    def __init__(self, episodes: list[Episode], declared: bool = False):
        self.episodes = episodes
        self.declared = declared  # add "tool" and "declared" (scenario varied; the classic files stay as they were)
        self.stats = [_Stats() for _ in episodes]

    def add(self, ep: Episode, t: int, frame_no: int, frame: bytes) -> None:
        st = self.stats[ep.index]
        if not st.packets:
            st.first_t, st.first_frame = t, frame_no
        st.last_t, st.last_frame = t, frame_no
        st.packets += 1
        etype = frame[12:14]
        if etype == b"\x08\x00":
            a, b = frame[26:30], frame[30:34]
        elif etype == b"\x86\xdd":
            a, b = frame[22:38], frame[38:54]
        elif etype == b"\x08\x06":
            a, b = frame[28:32], frame[38:42]
            macs = [h.mac for h in ep.attackers]
            if frame[22:28] in macs and a not in [h.ip for h in ep.attackers]:
                st.claimed[a] += 1
        else:
            return
        st.addrs[a] += 1
        if b != a:
            st.addrs[b] += 1

    @staticmethod
    def _host(h: Host) -> dict:
        d = {"ip": P.ip_str(h.ip), "ip6": P.ip_str(h.ip6) if h.ip6 else None, "mac": P.mac_str(h.mac)}
        if h.gua6:  # scenario varied: the host's global IPv6 address too (hosts without one: the file as before)
            d["gua6"] = P.ip_str(h.gua6)
        return d

    @classmethod
    def _declared(cls, d: dict) -> dict:
        """What the schedule chose (home._Episodes.note): hosts as ip/ip6/mac(+name, local), the
        reflectors as a count and their first 50 addresses."""
        out = {}
        for k, v in d.items():
            if isinstance(v, Host):
                out[k] = dict(cls._host(v), name=v.name, local=v.local)
            elif isinstance(v, list) and k == "reflectors":
                out["reflector_count"] = len(v)
                out[k] = [P.ip_str(h.ip) for h in v[:50]]
            elif isinstance(v, list):
                out[k] = [dict(cls._host(h), name=h.name, local=h.local) if isinstance(h, Host) else h for h in v]
            else:
                out[k] = v
        return out

    def records(self) -> list[dict]:
        out = []
        for ep, st in zip(self.episodes, self.stats):
            own = {a for h in ep.attackers for a in (h.ip, h.ip6, h.gua6) if a}
            victims = [a for a, n in st.addrs.most_common() if a not in own and n >= VICTIM_SHARE * st.packets
                       and a != b"\x00\x00\x00\x00"]
            out.append({
                "id": ep.index, "class": ep.family, "kind": ep.kind,
                "attacker": self._host(ep.attackers[0]) if ep.attackers else None,
                "attackers": [self._host(h) for h in ep.attackers],
                "victims": [P.ip_str(a) for a in victims],
                "peers": sum(1 for a in st.addrs if a not in own),
                "claimed_ips": [P.ip_str(a) for a, _ in st.claimed.most_common()],
                "start": st.first_t / SECOND if st.packets else ep.at / SECOND,
                "end": st.last_t / SECOND if st.packets else ep.at / SECOND,
                "first_frame": st.first_frame or None, "last_frame": st.last_frame or None,
                "packets": st.packets,
            })
            if self.declared:
                out[-1].update(tool=ep.declared.get("tool", ep.kind), declared=self._declared(ep.declared))
        return out

    def write(self, path: Path, capture: Path, scenario: str, seed: int) -> None:
        doc = {"capture": capture.name, "scenario": scenario, "seed": seed, "episodes": self.records()}
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
