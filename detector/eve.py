"""Suricata-compatible EVE events for incidents (``--alerts``), no UI here.

One ``alert`` event when an incident opens, one each time it grows tenfold (``updated``) and one
when it ends (``closed``); the three share ``flow_id`` (a stable int64 per incident) and
``alert.metadata.incident_id``. Field names and types follow Suricata's EVE format
(docs.suricata.io, "Eve JSON Format"): ``timestamp`` ISO 8601 with microseconds and offset,
``flow_id`` int64, ``pcap_cnt`` (the frame number of a capture file) + ``pcap_filename`` or
``in_iface``, the 5-tuple ``src_ip/src_port/dest_ip/dest_port/proto`` of the packet that opened the
incident, oriented attacker -> victim (IP fields hold IP addresses only: an ARP incident has no
5-tuple; its MAC and claimed IPs are in the metadata), ``community_id`` (Community ID v1, the value
tshark's ``communityid`` field gives for that packet), ``host`` (the sensor), and
``alert.{action, gid, signature_id, rev, signature, category, severity}``. Everything of ours is in
``alert.metadata`` as Suricata rule metadata is: every value a list of strings.

``signature_id`` is stable per (class, kind): ``SID_BASE + 100 * class slot + kind slot`` with the
slots of ``incidents.KINDS`` (classes a user's model adds get a slot from a CRC of the name).
Severity is per class (``incidents.CLASS_RULES``: 1 highest). ``category`` is the class name.
"""
from __future__ import annotations

import json
import socket
import zlib
from datetime import datetime, timezone

from .community_id import community_id  # noqa: F401  (re-exported: part of the EVE record)
from .incidents import KINDS, IncidentEvent, Track, incident_id_hash

SID_BASE = 9_130_000
GID = 1
REV = 1
_KNOWN = list(KINDS)


def signature_id(cls_name: str, kind: str) -> int:
    if cls_name in KINDS:
        kinds = KINDS[cls_name]
        slot = kinds.index(kind) if kind in kinds else 99
        return SID_BASE + 100 * (_KNOWN.index(cls_name) + 1) + slot
    return SID_BASE + 100 * (10 + zlib.crc32(cls_name.encode()) % 80) + zlib.crc32(kind.encode()) % 100


def iso(ts: float) -> str:
    """ISO 8601 UTC, or "" for a time a datetime cannot hold (NaN, year 586524 from a crafted
    ``if_tsresol``, before year 1)."""
    try:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    except (ValueError, OverflowError, OSError):
        return ""


# ICMP "ports" for Community ID v1: (type, code) and the reply type that makes a flow two-way


def sensor_name() -> str:
    return socket.gethostname() or "iotwatch"


class EveWriter:
    """Writes incident events as EVE lines (``write(events)``), flushed as written."""

    def __init__(self, path, *, source: str = "", live: bool = False, host: str | None = None, model: str = "",
                 opener=None):
        self.source, self.live = source, live
        self.host = host or sensor_name()
        self.model = model
        self._fh = opener(path) if opener else open(path, "w", encoding="utf-8")
        self.events = 0
        self.alerts = 0

    def record(self, ev: IncidentEvent) -> dict:
        return eve_record(ev, source=self.source, live=self.live, host=self.host, model=self.model)

    def write(self, events: list[IncidentEvent]) -> None:
        if not events:
            return
        recs = [self.record(e) for e in events]
        self._fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))
        self._fh.flush()
        self.events += len(recs)
        self.alerts += sum(1 for e in events if e.kind == "opened")

    def close(self) -> None:
        self._fh.close()


def _meta(snap: dict, ev: IncidentEvent, model: str) -> dict[str, list[str]]:
    m: dict[str, list[str]] = {
        "incident_id": [str(snap["id"])], "incident_state": [ev.kind], "class": [snap["class"]],
        "kind": [snap["kind"]], "confidence": [f"{snap['confidence']:.4f}"], "evidence": [snap["evidence"]],
        "first_frame": [str(snap["first_frame"])], "last_frame": [str(snap["last_frame"])],
        "first_seen": [iso(snap["first_time"])], "last_seen": [iso(snap["last_time"])],
        "packets": [str(snap["packets"])], "bytes": [str(snap["bytes"])], "peak_pps": [str(snap["peak_pps"])],
        "distinct_peers": [str(snap["distinct_peers"])],
    }
    if model:
        m["model"] = [model]
    if snap.get("attacker"):
        m["attacker"] = [snap["attacker"]]
    if snap.get("victims"):
        m["victims"] = list(snap["victims"])
    if snap.get("services"):
        m["services"] = list(snap["services"])
    for k in ("attacker_mac", "claimed_ips", "source_macs", "reflectors", "attackers",
              "raised_by", "correlated_with"):   # (raised_by/correlated_with: an upload after an attack)
        v = snap.get(k)
        if v:
            m[k] = [str(x) for x in (v if isinstance(v, list) else [v])]
    if snap.get("spoofed_sources"):
        m["spoofed_sources"] = ["true"]
    if snap.get("end_reason"):
        m["end_reason"] = [snap["end_reason"]]
    return m


def eve_record(ev: IncidentEvent, *, source: str = "", live: bool = False, host: str = "", model: str = "") -> dict:
    tr: Track = ev.incident
    snap = ev.snapshot
    rec: dict = {"timestamp": iso(ev.time), "flow_id": incident_id_hash(source, tr)}
    if source and not live:
        rec["pcap_cnt"] = int(ev.frame)
    rec["event_type"] = "alert"
    if source:
        rec["in_iface" if live else "pcap_filename"] = source
    rep = tr.rep
    if rep is not None and rep["ip"]:
        rec["src_ip"] = rep["src"]
        if rep["sport"] >= 0 and rep["proto"] in (6, 17, 132):
            rec["src_port"] = int(rep["sport"])
        rec["dest_ip"] = rep["dst"]
        if rep["dport"] >= 0 and rep["proto"] in (6, 17, 132):
            rec["dest_port"] = int(rep["dport"])
        if rep["proto"] in (1, 58):
            rec["icmp_type"], rec["icmp_code"] = int(rep["sport"]), int(max(rep["dport"], 0))
        rec["proto"] = _PROTO.get(rep["proto"], str(rep["proto"]))
        if rep["cid"]:
            rec["community_id"] = rep["cid"]
    elif rep is not None:
        rec["proto"] = rep["proto_name"]
    if host:
        rec["host"] = host
    kind = snap["kind"]
    rec["alert"] = {
        "action": "allowed", "gid": GID, "signature_id": signature_id(snap["class"], kind), "rev": REV,
        "signature": f"IOTWATCH {snap['class']} {kind}", "category": snap["class"],
        "severity": int(snap["severity"]), "metadata": _meta(snap, ev, model),
    }
    return rec


def stats_record(*, now: float, uptime: float, host: str, source: str, live: bool, packets: int, anomalies: int,
                 drops: int, received: int | None, interval_packets: int, interval_seconds: float, incidents_open: int,
                 incidents_opened: int, alerts: int, class_counts: dict, model: str) -> dict:
    """A Suricata-style ``stats`` event (``stats.uptime``, ``stats.capture.kernel_packets/kernel_drops``,
    ``stats.decoder.pkts``, ``stats.detect.alert``) with iotwatch's own counters under ``stats.iotwatch``."""
    rec: dict = {"timestamp": iso(now), "event_type": "stats"}
    if source:
        rec["in_iface" if live else "pcap_filename"] = source
    if host:
        rec["host"] = host
    capture = {"kernel_drops": int(drops)}
    if received is not None:
        capture["kernel_packets"] = int(received)
    rec["stats"] = {
        "uptime": int(uptime),
        "capture": capture,
        "decoder": {"pkts": int(packets)},
        "detect": {"alert": int(alerts)},
        "iotwatch": {"packets_per_second": round(interval_packets / max(interval_seconds, 1e-9), 1),
                     "anomalies": int(anomalies), "incidents_open": int(incidents_open),
                     "incidents_opened": int(incidents_opened), "class_counts": class_counts, "model": model},
    }
    return rec


_PROTO = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP", 47: "GRE", 50: "ESP", 2: "IGMP"}
