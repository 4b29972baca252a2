"""``--alerts`` lines are Suricata EVE alert events (issue 13).

The check is written from Suricata's documented EVE format (docs.suricata.io, "Eve JSON Format",
and the field types its ``schema.json`` declares): which fields an ``alert`` event has and of which
JSON type, IP fields holding IP addresses, ports in 0..65535, severity 1..3 (1 highest),
``alert.metadata`` as rule metadata (each value a list of strings). Unknown top-level fields are
not allowed here (a consumer would keep them, but we promise not to add any). Plus: ``flow_id`` and
``signature_id`` are stable, and ``community_id`` equals what tshark's ``communityid`` computes.
"""
from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess

import pytest

from iotwatch.captures.sim.simulate import simulate
from iotwatch.detector.eve import community_id, signature_id
from iotwatch.detector.incidents import KINDS
from iotwatch.main import main
from iotwatch.options import demo_capture

from fakes import require

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d{4}$")
COMMUNITY_ID = re.compile(r"^1:[A-Za-z0-9+/]{27}=$")

# Suricata EVE: field -> JSON type(s) of the common section and of "alert"
COMMON = {"timestamp": str, "flow_id": int, "pcap_cnt": int, "event_type": str, "src_ip": str, "src_port": int,
          "dest_ip": str, "dest_port": int, "proto": str, "community_id": str, "in_iface": str,
          "pcap_filename": str, "host": str, "icmp_type": int, "icmp_code": int, "alert": dict}
ALERT = {"action": str, "gid": int, "signature_id": int, "rev": int, "signature": str, "category": str,
         "severity": int, "metadata": dict}
REQUIRED = {"timestamp", "flow_id", "event_type", "host", "alert"}


def check_eve_alert(rec: dict) -> None:
    """Raise AssertionError naming the first field that breaks the EVE alert format."""
    for k, v in rec.items():
        assert k in COMMON, f"unknown top-level field {k!r}"
        assert isinstance(v, COMMON[k]) and not isinstance(v, bool), f"{k}: {type(v).__name__}"
    assert REQUIRED <= rec.keys(), REQUIRED - rec.keys()
    assert rec["event_type"] == "alert"
    assert TIMESTAMP.match(rec["timestamp"]), rec["timestamp"]
    assert 0 <= rec["flow_id"] < 2 ** 63
    assert ("pcap_filename" in rec) != ("in_iface" in rec)
    for k in ("src_ip", "dest_ip"):
        if k in rec:
            ipaddress.ip_address(rec[k])       # IP fields only ever hold IP addresses
    for k in ("src_port", "dest_port"):
        if k in rec:
            assert 0 <= rec[k] <= 65535
    if "src_port" in rec or "dest_port" in rec:
        assert rec["proto"] in ("TCP", "UDP", "SCTP")
    if "community_id" in rec:
        assert COMMUNITY_ID.match(rec["community_id"]) and "src_ip" in rec
    a = rec["alert"]
    for k, v in a.items():
        assert k in ALERT, f"unknown alert field {k!r}"
        assert isinstance(v, ALERT[k]) and not isinstance(v, bool), f"alert.{k}: {type(v).__name__}"
    assert set(ALERT) <= a.keys()
    assert a["action"] in ("allowed", "blocked") and a["gid"] >= 1 and a["rev"] >= 1
    assert 1 <= a["severity"] <= 3
    for k, v in a["metadata"].items():
        assert isinstance(v, list) and v and all(isinstance(x, str) for x in v), f"alert.metadata.{k}"


@pytest.fixture(scope="module")
def alerts(tmp_path_factory):
    out = tmp_path_factory.mktemp("eve")
    runs = {}
    for name, cap in (("demo", demo_capture()),
                      ("sim2m", simulate(out, seed=7, duration_us=120_000_000, devices=8).pcap)):
        al = out / f"{name}.jsonl"
        rep = out / f"{name}.json"
        assert main(["-r", str(cap), "--headless", "--alerts", str(al), "--report", str(rep)]) == 0
        runs[name] = (cap, [json.loads(x) for x in al.read_text().splitlines()], json.loads(rep.read_text()))
    return runs


@pytest.mark.slow
def test_every_alert_line_is_a_suricata_eve_alert(alerts):
    for cap, lines, _ in alerts.values():
        assert lines
        for rec in lines:
            check_eve_alert(rec)
            assert rec["pcap_filename"] == str(cap) and rec["pcap_cnt"] >= 1


@pytest.mark.slow
def test_the_check_catches_what_the_old_alerts_did(alerts):
    rec = alerts["demo"][1][0]
    bad = [dict(rec, frame_number=3), dict(rec, src_port=None), dict(rec, src_ip="00:0c:29:99:6e:23"),
           dict(rec, alert=dict(rec["alert"], confidence=0.9)),
           dict(rec, alert=dict(rec["alert"], metadata={"confidence": 0.9}))]
    for r in bad:
        with pytest.raises((AssertionError, ValueError)):
            check_eve_alert(r)


@pytest.mark.slow
def test_a_two_minute_capture_gives_tens_of_events_sharing_flow_ids(alerts):
    _, lines, report = alerts["sim2m"]
    assert report["anomalies"] > 10_000                  # per-packet alerts would have been this many
    assert 5 <= len(lines) <= 100
    by_incident = {}
    for rec in lines:
        m = rec["alert"]["metadata"]
        by_incident.setdefault(m["incident_id"][0], []).append((m["incident_state"][0], rec["flow_id"],
                                                                rec["alert"]["signature_id"]))
    assert len(by_incident) == report["incidents_opened"]
    for events in by_incident.values():
        states = [s for s, _, _ in events]
        assert states[0] == "opened" and states[-1] == "closed" and states.count("opened") == 1
        assert len({f for _, f, _ in events}) == 1 and len({s for _, _, s in events}) == 1


def test_signature_ids_are_stable_per_class_and_kind():
    sids = {(c, k): signature_id(c, k) for c, kinds in KINDS.items() for k in kinds}
    assert len(set(sids.values())) == len(sids)          # one per (class, kind)
    assert signature_id("dos", "spoofed-syn-flood") == 9_130_202
    assert signature_id("recon", "syn-scan") == 9_130_101
    assert signature_id("mymodel-class", "x") == signature_id("mymodel-class", "x")


@pytest.mark.slow
def test_same_capture_same_alert_lines(alerts, tmp_path):
    cap, lines, _ = alerts["demo"]
    again = tmp_path / "again.jsonl"
    assert main(["-r", str(cap), "--headless", "--alerts", str(again)]) == 0
    assert [json.loads(x) for x in again.read_text().splitlines()] == lines


@pytest.mark.slow
def test_community_id_is_what_tshark_computes(alerts):
    require(shutil.which("tshark"), "tshark")
    cap, lines, _ = alerts["demo"]
    wanted = {rec["pcap_cnt"]: rec["community_id"] for rec in lines
              if rec["alert"]["metadata"]["incident_state"] == ["opened"] and "community_id" in rec}
    assert len(wanted) >= 3
    out = subprocess.run(["tshark", "-r", str(cap), "-n", "--enable-protocol", "communityid", "-T", "fields",
                          "-e", "frame.number", "-e", "communityid",
                          "-Y", " or ".join(f"frame.number=={f}" for f in wanted)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    got = dict(line.split("\t") for line in out.strip().splitlines())
    assert {int(k): v for k, v in got.items()} == wanted
    # and the protocol cases tshark's own test vectors cover: TCP, UDP, ICMP echo both ways
    a = community_id("192.168.1.2", "10.0.0.1", 1, 8, 0)
    assert a == community_id("10.0.0.1", "192.168.1.2", 1, 0, 0)
    assert community_id("aa:bb:cc:dd:ee:ff", "10.0.0.1", 6, 1, 2) is None
