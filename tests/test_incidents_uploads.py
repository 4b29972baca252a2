"""Upload after an attack (detector/incidents.py ``Uploads``; issue 13): a host the engine has named
the attacker of an incident that then sends a bulk upload to an external address it first contacted
after its attack began is exfiltrating, even when the model calls every packet of the upload normal
(the lab's HTTPS POST to the attacker's drop server). Hand-made packets with the model's verdicts
chosen; each rule's look-alike (a host with no incident, a peer it talked to before, a download)
must stay quiet; the same events for any batch size."""
from __future__ import annotations

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.detector.eve import eve_record, signature_id
from iotwatch.detector.incidents import BULK_BYTES, KINDS
from iotwatch.detector.pipeline import ClassifiedBatch

from test_eve import check_eve_alert
from test_incidents_behaviour import run

CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
ATTACKER, VICTIM, HOST, DROP = "10.0.0.66", "10.0.0.5", "10.0.0.7", "203.0.113.200"
RECON = CLASSES.index("recon")


def tcp(t, src, dst, sp, dp, flags, size=66, cls=0):
    return dict(time_epoch=t, frame_len=size, protocols="eth:ethertype:ip:tcp", ip_src=src, ip_dst=dst, ip_proto=6,
                tcp_srcport=sp, tcp_dstport=dp, tcp_flags=flags, eth_src="aa:00:00:00:00:01",
                eth_dst="aa:00:00:00:00:02", cls=cls)


def scan(start, src=ATTACKER):
    """A fast SYN scan of 60 ports the model flags (recon), closed ports answering RST/ACK."""
    recs = []
    for i in range(60):
        recs.append(tcp(start + 0.01 * i, src, VICTIM, 41000, 20 + i, 0x02, cls=RECON))
        recs.append(tcp(start + 0.01 * i + 0.001, VICTIM, src, 20 + i, 41000, 0x14, cls=RECON))
    return recs


def upload(start, src=ATTACKER, dst=DROP, segments=3000, down=False, sport=50500):
    """An HTTPS POST of ``segments`` full-size segments in about a second (the model: all normal);
    ``down``: the same volume the other way (a download)."""
    recs = [tcp(start, src, dst, sport, 443, 0x02), tcp(start + .001, dst, src, 443, sport, 0x12),
            tcp(start + .002, src, dst, sport, 443, 0x10), tcp(start + .003, src, dst, sport, 443, 0x18, 583),
            tcp(start + .004, dst, src, 443, sport, 0x18, 1514), tcp(start + .005, dst, src, 443, sport, 0x18, 1200)]
    for i in range(segments):
        t = start + 0.01 + 0.0003 * i
        if down:
            recs.append(tcp(t, dst, src, 443, sport, 0x10, 1514))
        else:
            recs.append(tcp(t, src, dst, sport, 443, 0x10, 1514))
        if i % 2:
            recs.append(tcp(t + 0.0001, *((src, dst, sport, 443) if down else (dst, src, 443, sport)), 0x10))
    t = start + 0.02 + 0.0003 * segments
    recs += [tcp(t, src, dst, sport, 443, 0x11), tcp(t + .001, dst, src, 443, sport, 0x11),
             tcp(t + .002, src, dst, sport, 443, 0x10)]
    return recs


def batch(recs):
    recs = sorted(recs, key=lambda r: r["time_epoch"])
    pred = np.array([r.pop("cls") for r in recs], dtype=np.int64)
    for i, r in enumerate(recs):
        r["frame_number"] = i + 1
    pk = PacketBatch.from_records(recs)
    n = len(recs)
    proba = np.zeros((n, len(CLASSES)), dtype=np.float32)
    proba[np.arange(n), pred] = 0.9
    proba[:, CLASSES.index("exfiltration")] += 0.01
    return ClassifiedBatch(pk, proba, pred, proba.max(axis=1), pred != 0, None)


def incidents(cb, size=None):
    return [t.to_dict() for t in run(cb, size)[0].incidents()]


def test_an_attackers_upload_to_a_new_external_peer_is_one_exfiltration_incident():
    cb = batch(scan(1000) + upload(1100))
    inc = incidents(cb)
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER), ("exfiltration", ATTACKER)], inc
    ex = inc[1]
    assert ex["kind"] == "upload-after-attack" and ex["victims"] == [DROP] and ex["services"] == ["https/443"]
    assert ex["raised_by"] == "correlation" and ex["correlated_with"] == [1]
    assert 1100 < ex["first_time"] < ex["last_time"] < 1102
    # the evidence: bytes (3,000 segments of 1,514 B), the peer, its one connection, the incident that named the host
    ev = ex["evidence"]
    assert f"4.5 MB sent from {ATTACKER} to {DROP}:443 in 0.9 s over 1 connection" in ev, ev
    assert "first contacted after its attack began" in ev and "incident #1 (recon)" in ev and "normal" in ev
    # the model's own confidence in the class, not its confidence in "normal"
    assert ex["confidence"] < 0.05
    # the rows before BULK_BYTES was reached stay normal: the incident opens once the upload is bulk
    assert (ex["packets"] - 1500) * 1514 < 3000 * 1514 - BULK_BYTES + 20 * 1514


def test_the_upload_alert_is_a_valid_eve_alert_with_its_own_signature():
    eng, events = run(batch(scan(1000) + upload(1100)))
    opened = [e for e in events if e.kind == "opened" and e.snapshot["class"] == "exfiltration"]
    assert len(opened) == 1
    rec = eve_record(opened[0], source="x.pcapng", host="sensor", model="m")
    check_eve_alert(rec)
    assert rec["alert"]["signature_id"] == signature_id("exfiltration", "upload-after-attack") == \
        9130500 + KINDS["exfiltration"].index("upload-after-attack")
    assert rec["src_ip"] == ATTACKER and rec["dest_ip"] == DROP and rec["dest_port"] == 443
    m = rec["alert"]["metadata"]
    assert m["raised_by"] == ["correlation"] and m["correlated_with"] == ["1"]


def test_the_same_upload_by_a_host_without_an_incident_is_none():
    inc = incidents(batch(scan(1000) + upload(1100, src=HOST)))
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER)], inc


def test_an_upload_to_a_peer_contacted_before_the_attack_is_none():
    # the attacker's backup to its usual server: first contacted before the scan began
    recs = scan(1000) + upload(900, segments=100, sport=50400) + upload(1100)
    inc = incidents(batch(recs))
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER)], inc


def test_a_download_and_a_small_upload_by_the_attacker_are_none():
    inc = incidents(batch(scan(1000) + upload(1100, down=True) + upload(1200, segments=300, sport=50600)))
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER)], inc


def test_an_upload_to_an_address_a_dns_answer_named_is_none():
    # the device looked its cloud up first (in an earlier batch, or earlier in the same one)
    answer = dict(time_epoch=1099.5, frame_len=120, protocols="eth:ethertype:ip:udp:dns", ip_src="10.0.0.1",
                  ip_dst=ATTACKER, ip_proto=17, udp_srcport=53, udp_dstport=53000, dns_flags=0x8180,
                  dns_qry_name="cloud.example", dns_a=DROP, eth_src="aa:00:00:00:00:02", eth_dst="aa:00:00:00:00:01",
                  cls=0)
    cb = batch(scan(1000) + [answer] + upload(1100))
    for size in (None, 130):
        inc = incidents(cb, size)
        assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER)], (size, inc)


def test_an_upload_long_after_the_attack_is_none():
    inc = incidents(batch(scan(1000) + upload(1000 + 1800 + 60 + 5)))
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER)], inc


def test_the_upload_joins_the_attackers_running_exfiltration_incident():
    # a DNS-tunnel-like run of flagged packets just before: one exfiltration incident, naming both
    ex = CLASSES.index("exfiltration")
    tunnel = []
    for i in range(40):
        r = dict(time_epoch=1090 + 0.1 * i, frame_len=180, protocols="eth:ethertype:ip:udp:dns", ip_src=ATTACKER,
                 ip_dst="10.0.0.1", ip_proto=17, udp_srcport=53000, udp_dstport=53, dns_flags=0x0100,
                 dns_qry_name="a" * 60 + ".t.example", eth_src="aa:00:00:00:00:01", eth_dst="aa:00:00:00:00:02", cls=ex)
        tunnel.append(r)
    inc = incidents(batch(scan(1000) + tunnel + upload(1100)))
    assert [(i["class"], i["attacker"]) for i in inc] == [("recon", ATTACKER), ("exfiltration", ATTACKER)], inc
    e = inc[1]
    assert e["kind"] == "dns-tunnel" and e["raised_by"] == "model" and DROP in e["victims"]
    assert "; then 4.5 MB sent from" in e["evidence"], e["evidence"]


@pytest.mark.parametrize("recs", ["lab", "backup"])
def test_same_events_for_any_batch_size(recs):
    recs = scan(1000) + upload(1100) if recs == "lab" else \
        scan(1000) + upload(900, segments=800, sport=50400) + upload(1100) + upload(1130, src=HOST)
    cb = batch(recs)
    ref = [(e.kind, e.frame, e.snapshot) for e in run(cb)[1]]
    assert any(s["class"] == "exfiltration" for _, _, s in ref) == (len(recs) < 9000)
    for size in (1, 7, 8192):
        assert [(e.kind, e.frame, e.snapshot) for e in run(cb, size)[1]] == ref, size


@pytest.mark.parametrize("addr,local", [("10.77.0.77", True), ("192.168.1.1", True), ("172.20.0.1", True),
                                        ("100.64.0.1", True), ("169.254.1.1", True), ("224.0.0.251", True),
                                        ("fe80::1", True), ("fd00::1", True), ("ff02::1", True), ("", True),
                                        ("203.0.113.200", False), ("172.32.0.1", False), ("8.8.8.8", False),
                                        ("2001:db8::1", False)])
def test_local_and_external_addresses(addr, local):
    from iotwatch.detector.incidents import _is_local
    assert _is_local(addr) is local
