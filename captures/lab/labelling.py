"""Labelling rules of the lab recorder: attack windows + a per-frame packet table -> one class per frame.

The lab (``iotwatch lab record``) knows exactly when each real tool ran and from which host, so the
ground truth is rule-based, not guessed:

* A frame inside an attack window (``start <= time <= end``) whose Ethernet or IP/ARP addresses
  touch the attacker (sent by it, sent to it, ARP about it) gets the window's class. Victims'
  replies are therefore included.
* Spoofed-source floods carry random source addresses: a frame inside the window that involves the
  window's ``victim_ip`` and an address that belongs to no lab host gets the class too (the flood
  and the victim's answers or ARP look-ups for the forged peers).
* Reflection/amplification: requests forged with the victim's address go to lab reflectors (real
  DNS/NTP/SNMP/SSDP/CoAP servers) from a fixed UDP source port; inside the window, every frame
  between the victim and a reflector's service port on that port -- the forged request, the
  reflector's answer to the victim, the victim's ICMP error quoting it -- gets the class (``dos``).
* Forged clients (DHCP starvation): frames sent by, sent to or about (DHCP client hardware address) a
  MAC under the window's ``mac_prefix`` get the class -- the forged DISCOVERs/REQUESTs and the
  server's OFFERs/ACKs to them -- from the window's start on, also after its end (the server answers
  seconds late); no lab host has such a MAC.
* DNS tunnels through the lab resolver: a frame inside the window whose DNS query name ends in the
  window's ``dns_suffix`` gets the class (the resolver's forwarded queries never touch the attacker).
* Traffic relayed by an ARP-poisoning attacker (man in the middle) is ``spoofing``, as the
  simulator labels it: once a ``spoofing`` window of an attacker has started, an IP frame sent to
  or by the attacker's MAC whose IP addresses are neither the attacker's (the victims' own traffic,
  forwarded by the attacker) is ``spoofing`` whenever it appears -- inside that window, after it
  (victims' ARP caches stay poisoned until they expire) and inside later windows of other classes
  (the attacker's MAC alone does not make it, say, exfiltration); so are the ICMP redirects the
  attacker's kernel sends while forwarding them. Only relayed frames that carry
  another window's own traffic (a spoofed-source flood's victim, a DNS tunnel's names) keep that
  window's class.
* Every other frame is ``normal``. When windows overlap the earliest-starting one wins.

The packet table comes from ``tshark -T fields`` (:data:`TSHARK_FIELDS`, :func:`read_packet_table`)
and the result is written as the CONTRACT §2 sidecar CSV (:func:`write_labels_csv`).
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..tshark.table import fields_lines

NORMAL = "normal"

#: tshark fields read per frame (column name, tshark field); order = column order of the table.
TSHARK_FIELDS: tuple[tuple[str, str], ...] = (
    ("frame_number", "frame.number"),
    ("time", "frame.time_epoch"),
    ("eth_src", "eth.src"),
    ("eth_dst", "eth.dst"),
    ("ip_src", "ip.src"),
    ("ip_dst", "ip.dst"),
    ("arp_spa", "arp.src.proto_ipv4"),
    ("arp_tpa", "arp.dst.proto_ipv4"),
    ("dns_qry_name", "dns.qry.name"),
    ("icmp_type", "icmp.type"),
    ("udp_sport", "udp.srcport"),   # first occurrence: inside an ICMP error, the quoted datagram's ports
    ("udp_dport", "udp.dstport"),
    ("dhcp_chaddr", "dhcp.hw.mac_addr"),
)


@dataclass(frozen=True)
class Packet:
    """One frame of the table (strings as tshark prints them, "" when absent)."""

    frame_number: int
    time: float
    eth_src: str = ""
    eth_dst: str = ""
    ip_src: str = ""
    ip_dst: str = ""
    arp_spa: str = ""
    arp_tpa: str = ""
    dns_qry_name: str = ""
    icmp_type: str = ""
    udp_sport: str = ""
    udp_dport: str = ""
    dhcp_chaddr: str = ""


@dataclass
class AttackWindow:
    """One real-tool run: its class, the attacker and the time span (epoch seconds, grace included)."""

    label: str
    start: float
    end: float
    attacker_mac: str
    attacker_ip: str
    step: str = ""                 # e.g. "nmap -sS" (documentation only)
    victim_ip: str = ""            # spoofed-source floods: frames victim <-> unknown address
    dns_suffix: str = ""           # DNS tunnels: frames whose query name ends with this
    argv: list[str] = field(default_factory=list)
    reflectors: list[str] = field(default_factory=list)  # reflection: "ip:udp-port" of each reflector
    spoof_port: int = 0            # reflection: the UDP source port the forged requests carry
    mac_prefix: str = ""           # forged client MACs (DHCP starvation): frames from/to/about them

    def to_json(self) -> dict:
        return asdict(self)


def _attacker_match(p: Packet, mac: str, ip: str) -> bool:
    return (p.eth_src == mac or p.eth_dst == mac
            or (ip != "" and ip in (p.ip_src, p.ip_dst, p.arp_spa, p.arp_tpa)))


def _spoofed_match(p: Packet, victim: str, lab_ips: frozenset[str]) -> bool:
    if p.ip_src and p.ip_dst:
        pair = (p.ip_src, p.ip_dst)
    elif p.arp_spa and p.arp_tpa:
        pair = (p.arp_spa, p.arp_tpa)
    else:
        return False
    if victim not in pair:
        return False
    other = pair[1] if pair[0] == victim else pair[0]
    return other not in lab_ips


def _reflection_match(p: Packet, victim: str, reflectors: Sequence[str], spoof_port: int) -> bool:
    """A forged request (victim's address -> reflector service, from ``spoof_port``), the reflector's
    answer to the victim, or the victim's ICMP error quoting that answer."""
    if not (victim and spoof_port and p.ip_src and p.ip_dst and victim in (p.ip_src, p.ip_dst)):
        return False
    other = p.ip_dst if p.ip_src == victim else p.ip_src
    ports = {p.udp_sport, p.udp_dport}
    for r in reflectors:
        ip, _, port = r.rpartition(":")
        if other == ip and ports == {port, str(spoof_port)}:
            return True
    return False


SPOOFING = "spoofing"


def poison_starts(windows: Sequence[AttackWindow]) -> dict[str, tuple[float, str]]:
    """Attacker MAC -> (start of its first ``spoofing`` window, its IP): from then on it may relay
    victims' traffic."""
    out: dict[str, tuple[float, str]] = {}
    for w in windows:
        if w.label == SPOOFING and w.attacker_mac:
            mac = w.attacker_mac.lower()
            start = min(out[mac][0], w.start) if mac in out else w.start
            out[mac] = (start, w.attacker_ip)
    return out


def relayed(p: Packet, poisoned: dict[str, tuple[float, str]]) -> bool:
    """An IP frame between two other hosts that went to or came from a poisoning attacker's MAC, or
    an ICMP redirect its kernel sent because it forwards such frames back out of the same link."""
    if not (p.ip_src and p.ip_dst):
        return False
    for mac in (p.eth_src, p.eth_dst):
        hit = poisoned.get(mac)
        if hit is None or p.time < hit[0]:
            continue
        if hit[1] not in (p.ip_src, p.ip_dst):
            return True
        if mac == p.eth_src and p.ip_src == hit[1] and p.icmp_type == "5":
            return True
    return False


def label_for(p: Packet, windows: Sequence[AttackWindow], lab_ips: frozenset[str],
              poisoned: dict[str, tuple[float, str]] | None = None) -> str:
    """The class of one frame (``windows`` sorted by start; the first match wins)."""
    if poisoned is None:
        poisoned = poison_starts(windows)
    # a relayed frame is spoofing even when the attacker's MAC puts it in a window of another class;
    # only another window's own traffic (spoofed-source victim, tunnel names) keeps that class
    relay = bool(poisoned) and relayed(p, poisoned)
    for w in windows:
        # forged clients' MACs belong to the attack whenever they appear after it started (a DHCP
        # server answers seconds later: dnsmasq pings each address before offering it)
        if w.mac_prefix and p.time >= w.start and any(m.startswith(w.mac_prefix)
                                                      for m in (p.eth_src, p.eth_dst, p.dhcp_chaddr)):
            return w.label
        if not (w.start <= p.time <= w.end):
            continue
        if not relay and _attacker_match(p, w.attacker_mac, w.attacker_ip):
            return w.label
        if w.victim_ip and _spoofed_match(p, w.victim_ip, lab_ips):
            return w.label
        if w.dns_suffix and p.dns_qry_name.lower().rstrip(".").endswith(w.dns_suffix.lower().strip(".")):
            return w.label
        if w.reflectors and _reflection_match(p, w.victim_ip, w.reflectors, w.spoof_port):
            return w.label
    return SPOOFING if relay else NORMAL


def label_packets(packets: Iterable[Packet], windows: Sequence[AttackWindow],
                  lab_ips: Iterable[str]) -> list[tuple[int, str]]:
    """``(frame_number, label)`` for every packet, in input order."""
    ordered = sorted(windows, key=lambda w: w.start)
    ips = frozenset(lab_ips)
    poisoned = poison_starts(ordered)
    return [(p.frame_number, label_for(p, ordered, ips, poisoned)) for p in packets]


def parse_fields_line(line: str) -> Packet:
    """One ``tshark -T fields -E separator=/t -E occurrence=f`` line (columns of TSHARK_FIELDS)."""
    cols = line.rstrip("\n").split("\t")
    cols += [""] * (len(TSHARK_FIELDS) - len(cols))
    values = dict(zip((name for name, _ in TSHARK_FIELDS), cols))
    return Packet(frame_number=int(values.pop("frame_number")), time=float(values.pop("time")),
                  **{k: v.strip().lower() for k, v in values.items()})


def read_packet_table(capture: str | Path, tshark: str = "tshark") -> list[Packet]:
    """Every frame of ``capture`` as a :class:`Packet` (needs tshark)."""
    return [parse_fields_line(line) for line in fields_lines(capture, [f for _, f in TSHARK_FIELDS], tshark=tshark)]


def write_labels_csv(path: str | Path, labels: Sequence[tuple[int, str]]) -> None:
    """The CONTRACT §2 sidecar: header ``frame_number,label`` then one row per frame."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["frame_number", "label"])
        w.writerows(labels)


def class_counts(labels: Sequence[tuple[int, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, name in labels:
        out[name] = out.get(name, 0) + 1
    return out
