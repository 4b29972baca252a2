"""Scenario varied6 (opt-in): IPv6 floods, tunnels and sweeps, benign traceroutes, and the other
scenarios untouched by the new code paths (docs/sim_vs_real.md)."""
from __future__ import annotations

import json
import struct
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from iotwatch.captures.pcapfile import read_packets
from iotwatch.captures.sim import simulate as S
from iotwatch.captures.sim import v6 as V6
from iotwatch.captures.sim.core import LINUX, WINDOWS, Home, Sim
from iotwatch.captures.sim.devices import Env
from iotwatch.captures.sim.home import Profile
from iotwatch.captures.sim.writer import PcapngWriter
from incident_truth import _addresses
from test_simulate import _bad_frames, comment_fields, read_labels

NEW_ACTIVITY_MARKS = ("syn6-flood", "udp6-flood", "icmp6-flood", "icmp6-tunnel", "dns6-tunnel", "alive6", "traceroute")


def _ethertype(frame: bytes) -> int:
    return struct.unpack_from("!H", frame, 12)[0]


def _icmp6_type(frame: bytes) -> int | None:
    if _ethertype(frame) == 0x86DD and frame[14 + 6] == 58:
        return frame[14 + 40]
    return None


def _icmp4_type(frame: bytes) -> int | None:
    if _ethertype(frame) == 0x0800 and frame[14 + 9] == 1:
        return frame[14 + (frame[14] & 0x0F) * 4]
    return None


@pytest.fixture(scope="module")
def all6(tmp_path_factory):
    """A varied6 home whose dos / exfiltration / recon episodes are all IPv6 ones."""
    out = tmp_path_factory.mktemp("varied6")
    prof = replace(S.SCENARIOS["varied6"][0], ipv6_attacks=1.0)
    res = S.simulate(out, seed=232, duration_us=150 * S.SECOND, devices=10, scenario="varied6", profile=prof)
    packets = read_packets(res.pcap)
    doc = json.loads(Path(str(res.pcap) + ".episodes.json").read_text())
    return res, packets, [comment_fields(c) for _, _, c in packets], doc["episodes"]


def test_varied6_is_opt_in_and_the_only_scenario_with_the_knobs():
    assert Profile().ipv6_attacks == 0.0 and Profile().traceroutes is False
    for name, (prof, _) in S.SCENARIOS.items():
        if name != "varied6":
            assert prof.ipv6_attacks == 0.0 and not prof.traceroutes, name
    prof = S.SCENARIOS["varied6"][0]
    assert prof.varied and 0 < prof.ipv6_attacks < 1 and prof.traceroutes


def test_ipv6_episodes_are_ipv6_and_labelled_their_family(all6):
    res, packets, comments, episodes = all6
    labels = read_labels(res.labels)
    for (_, _, c), lab in zip(packets, labels):  # sidecar and comments agree
        assert comment_fields(c)["label"] == lab
    kinds = {r["class"]: [] for r in episodes}
    for r in episodes:
        kinds[r["class"]].append(r["kind"])
    for fam in ("dos", "exfiltration", "recon"):
        assert kinds[fam] and all(k.endswith("-v6") for k in kinds[fam]), kinds
    by_activity: dict[str, Counter] = defaultdict(Counter)
    for (_, frame, _), c in zip(packets, comments):
        by_activity[c["activity"]][(c["label"], _ethertype(frame))] += 1
    family_of = {"syn6-flood": "dos", "udp6-flood": "dos", "icmp6-flood": "dos", "icmp6-tunnel": "exfiltration",
                 "dns6-tunnel": "exfiltration", "alive6": "recon"}
    seen = set()
    for activity, counts in by_activity.items():
        for mark, fam in family_of.items():
            if mark in activity:
                seen.add(fam)
                assert set(counts) == {(fam, 0x86DD)}, (activity, counts)  # every frame IPv6, labelled its family
                assert sum(counts.values()) >= 10, (activity, counts)
    assert seen == {"dos", "exfiltration", "recon"}
    for r in episodes:  # the episodes file names the attacker (and the victim of a flood)
        if r["kind"].endswith("-v6") and r["packets"]:
            assert r["declared"]["attacker"] is not None
            if r["class"] == "dos":
                assert len(r["declared"]["victims"]) == 1
            assert labels[r["first_frame"] - 1] == r["class"] == labels[r["last_frame"] - 1]


def test_ipv6_floods_get_the_victims_answers(all6):
    _, packets, comments, _ = all6
    flood = [(f, c) for (_, f, _), c in zip(packets, comments) if "6-flood" in c["activity"]]
    assert flood
    victims = Counter(f[14 + 8:14 + 24] for f, _ in flood)  # IPv6 sources
    dsts = Counter(f[14 + 24:14 + 40] for f, _ in flood)
    victim = dsts.most_common(1)[0][0]
    assert victims[victim] > 0  # the victim answers (SYN/ACK, echo reply or port unreachable)


def test_varied6_dissects_cleanly(all6):
    assert _bad_frames(all6[0].pcap) == ""


def _trace(style: str, v6: bool, stack=LINUX, pcap: Path | None = None):
    """One traceroute from a laptop in a classic home; returns (laptop, [(frame, tag)]); ``pcap``:
    also written there."""
    sim = Sim(5, 1_700_000_000 * S.SECOND, 120 * S.SECOND)
    home = Home(sim)
    env = Env(sim, home)
    dev = home.add_host("laptop1", "laptop", "dell", stack, v6=True)

    def run():
        V6.traceroute(env, dev, sim.rng("t"), sim.now, style=style, v6=v6)
        yield sim.now + 1

    sim.spawn(run(), sim.start)
    out, times = [], []
    sim.run(lambda t, f, tag: (out.append((f, sim.tags[tag])), times.append(t)))
    if pcap is not None:
        with open(pcap, "wb") as fh:
            w = PcapngWriter(fh)
            for t, (f, _) in zip(times, out):
                w.write(t, f)
            w.close()
    return dev, out


@pytest.mark.parametrize("style,v6", [("linux", False), ("linux", True), ("tracert", False), ("tracert", True),
                                      ("mtr", False)])
def test_traceroute_is_normal_with_increasing_hop_limits(style, v6, tmp_path):
    dev, out = _trace(style, v6, WINDOWS if style == "tracert" else LINUX, tmp_path / "trace.pcapng")
    assert _bad_frames(tmp_path / "trace.pcapng") == ""  # quoted packets, checksums
    assert out and {tag.label for _, tag in out} == {"normal"}
    probes = [f for f, tag in out if tag.activity.startswith("traceroute") and f[6:12] == dev.mac
              and _ethertype(f) == (0x86DD if v6 else 0x0800)]
    hops = [f[14 + 7] if v6 else f[14 + 8] for f in probes]
    assert len(probes) >= 12
    if style == "mtr":
        assert hops[:4] == [1, 2, 3, 4]
    else:
        assert hops == sorted(hops) and hops[0] == 1 and hops[:3] == [1, 1, 1] and hops[3] == 2  # 3 per hop
        assert max(hops) >= 4
    if style == "linux":  # UDP to 33434, 33435, ...
        off = 14 + (40 if v6 else 20)
        dports = [struct.unpack_from("!H", f, off + 2)[0] for f in probes]
        assert dports == list(range(33434, 33434 + len(probes)))
    answers = [f for f, tag in out if f[:6] == dev.mac and tag.activity.startswith("traceroute")]
    if v6:
        types = Counter(_icmp6_type(f) for f in answers)
        assert types[3] >= 3  # time exceeded
        assert types[1 if style == "linux" else 129] >= 1  # port unreachable / echo reply from the destination
    else:
        types = Counter(_icmp4_type(f) for f in answers)
        assert types[11] >= 3
        assert types[3 if style == "linux" else 0] >= 1


def test_varied6_home_runs_traceroutes(tmp_path):
    res = S.simulate(tmp_path, seed=233, duration_us=120 * S.SECOND, devices=8, scenario="varied6")
    acts = Counter((c["activity"], c["label"]) for _, _, c in
                   ((t, f, comment_fields(c)) for t, f, c in read_packets(res.pcap)) if "traceroute" in c["activity"])
    assert acts and {lab for _, lab in acts} == {"normal"}


def test_varied_scenario_has_no_frame_of_the_new_code_paths(tmp_path):
    """The byte-identity guard (the report records the sha256 comparison with main): a varied home
    has no IPv6 flood / tunnel / alive6 activity, no ICMPv6 echo and no ICMP time exceeded."""
    res = S.simulate(tmp_path, seed=201, duration_us=60 * S.SECOND, devices=8, scenario="varied")
    for _, frame, c in read_packets(res.pcap):
        act = comment_fields(c)["activity"]
        assert not any(m in act for m in NEW_ACTIVITY_MARKS), act
        assert _icmp6_type(frame) not in (128, 129, 3), act
        assert _icmp4_type(frame) != 11, act
    doc = json.loads(Path(str(res.pcap) + ".episodes.json").read_text())
    assert not any(r["kind"].startswith(("alive6", "dns6", "icmp6")) or "syn6" in r["kind"] or "udp6" in r["kind"]
                   for r in doc["episodes"])


def test_an_attackers_global_ipv6_address_is_never_one_of_its_victims(all6):
    """The episodes file names each attacker by all its addresses, the global IPv6 one (``gua6``) included, and
    none of them is listed as a victim (an IPv6 scan from the attacker's global address used to list that
    address among the victims, so the incident that named it as the attacker matched no episode)."""
    _, _, _, episodes = all6
    with_gua = [r for r in episodes if r["kind"].endswith("-v6") and any(h.get("gua6") for h in r["attackers"])]
    assert with_gua
    for r in episodes:
        assert not _addresses(r) & set(r["victims"]), r
