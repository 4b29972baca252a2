"""The ground-truth matching of incidents to episodes (tests/incident_truth.py) that the incident tests and
bench/incident_episodes.py use."""
from __future__ import annotations

from incident_truth import match_all

ATT = {"ip": "10.0.0.9", "ip6": "fe80::9", "gua6": "2001:db8::9", "mac": "02:00:00:00:00:09"}


def _ep(i, kind, start, end, victims):
    return {"id": i, "class": "recon", "kind": kind, "attackers": [ATT], "victims": victims, "start": start, "end": end}


def _inc(i, attacker, victims, first, last):
    return {"id": i, "class": "recon", "key_role": "attacker", "attacker": attacker, "victims": victims,
            "first_time": first, "last_time": last}


def test_an_attackers_global_ipv6_address_is_the_attacker_and_a_scan_just_before_a_masscan_is_not_the_masscans():
    # an IPv6 scan of one host from the attacker's global address, then 0.13 s later its masscan of the Internet
    # (no victim on record) merged by the engine with the next scan of a LAN host
    eps = [_ep(0, "nmap-sS-T4-v6", 85.46, 86.59, ["2001:db8::cca"]), _ep(1, "masscan", 86.72, 87.34, []),
           _ep(2, "nmap-sS-T4", 100.0, 138.7, ["10.0.0.20"])]
    incs = [_inc(7, "2001:db8::9", ["2001:db8::cca"], 85.47, 86.59), _inc(9, "10.0.0.9", ["10.0.0.20"], 86.72, 138.74)]
    per, unmatched = match_all(eps, incs)
    assert per == {0: [7], 1: [9], 2: [9]} and unmatched == []


def test_two_incidents_inside_one_episode_both_stay_its_matches():
    # the rule only drops matches that fall in the slack; two real incidents in one episode still show as two
    eps = [_ep(0, "nmap-sS-T4", 100.0, 200.0, ["10.0.0.20"])]
    incs = [_inc(1, "10.0.0.9", ["10.0.0.20"], 100.0, 120.0), _inc(2, "10.0.0.9", ["10.0.0.20"], 150.0, 199.0)]
    per, _ = match_all(eps, incs)
    assert per == {0: [1, 2]}
