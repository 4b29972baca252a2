"""Matching incidents against ground-truth attack episodes (simulator ``*.episodes.json`` or lab
``*.lab.json``), shared by the incident tests."""
from __future__ import annotations

import json
from pathlib import Path

SPOOFED_KINDS = ("syn-random", "syn-fixed")


def load_episodes(capture: str | Path) -> list[dict]:
    """Episodes of a simulated capture (``<capture>.episodes.json``) or of a lab recording
    (``<capture>.lab.json``: one episode per attack window), only those that produced packets."""
    cap = Path(capture)
    sim = Path(str(cap) + ".episodes.json")
    if sim.is_file():
        doc = json.loads(sim.read_text())
        return [e for e in doc["episodes"] if e["packets"] > 0]
    lab = json.loads(Path(str(cap) + ".lab.json").read_text())
    hosts = {h["ip"] for h in lab.get("hosts", {}).values() if h.get("ip")}
    out = []
    for i, w in enumerate(lab["windows"]):
        if w["label"] == "normal":
            continue
        att = {"ip": w["attacker_ip"], "ip6": None, "mac": w["attacker_mac"]}
        if w.get("victim_ip"):
            victims = [w["victim_ip"]]
        elif w.get("mac_prefix") and lab.get("hosts", {}).get("gw", {}).get("ip"):
            # forged DHCP clients (starvation): the victim is the pool's server, dnsmasq on the lab's gw
            victims = [lab["hosts"]["gw"]["ip"]]
        else:   # the lab hosts the tool's command line names (its targets), not the attacker
            words = " ".join(w.get("argv", [])).replace(",", " ").replace("/", " ").replace(":", " ").split()
            victims = sorted({x for x in words if x in hosts and x != w["attacker_ip"]})
        out.append({"id": i, "class": w["label"], "kind": w.get("step", ""), "attacker": att, "attackers": [att],
                    "victims": victims, "claimed_ips": [], "start": w["start"], "end": w["end"], "packets": 1,
                    "reflection": bool(w.get("reflectors"))})
    return out


def _addresses(ep: dict) -> set[str]:
    return {a for h in ep["attackers"] for a in (h["ip"], h.get("ip6"), h.get("gua6"), h["mac"]) if a}


def matches(ep: dict, inc: dict, slack: float = 1.0) -> bool:
    """Same class, overlapping time and the right roles (see tests/test_incidents.py)."""
    if inc["class"] != ep["class"]:
        return False
    if inc["first_time"] > ep["end"] + slack or inc["last_time"] < ep["start"] - slack:
        return False
    mine = _addresses(ep)
    if ep["class"] == "spoofing":
        return inc.get("attacker_mac") in {h["mac"] for h in ep["attackers"]}
    if inc["key_role"] == "victim":
        if ep["victims"] and inc["victims"][0] not in ep["victims"]:
            return False
        if inc.get("spoofed_sources") or inc.get("reflectors") or ep.get("reflection") \
                or ep["kind"].split(":")[0] in SPOOFED_KINDS:
            return True   # forged sources (or reflectors answering them): the victim is what counts
        return inc["attacker"] in mine or (inc["attacker"] is None and bool(set(inc.get("source_macs", [])) & mine))
    if inc["attacker"] not in mine:
        return False
    return not ep["victims"] or bool(set(ep["victims"]) & set(inc["victims"]))


def match_all(episodes: list[dict], incidents: list[dict]) -> tuple[dict[int, list[int]], list[dict]]:
    """For each episode id the ids of the incidents matching it, and the incidents matching none. When
    several incidents match an episode and some overlap its time window itself, those that match only
    within the ``slack`` of ``matches`` are left out (one attacker's IPv6 scan of a host ending 0.1 s
    before its masscan of the Internet begins: the scan's incident is not also the masscan's)."""
    by_id = {i["id"]: i for i in incidents}
    per_ep = {}
    for e in episodes:
        ids = [i["id"] for i in incidents if matches(e, i)]
        inside = [k for k in ids if by_id[k]["first_time"] <= e["end"] and by_id[k]["last_time"] >= e["start"]]
        per_ep[e["id"]] = inside if len(ids) > 1 and inside else ids
    used = {i for ids in per_ep.values() for i in ids}
    return per_ep, [i for i in incidents if i["id"] not in used]
