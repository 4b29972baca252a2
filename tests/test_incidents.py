"""From packets to incidents (issue 13): ground truth from the simulator's ``*.episodes.json``.

* the demo and 5 simulated captures of other seeds: every attack episode maps to exactly one
  incident of its class with the right attacker and victim(s) and overlapping time; incidents that
  match no episode stay under one per simulated hour;
* benign traffic (``--scenario benign``) opens no incident;
* the same incidents and events for any batch size, and at replay speeds max and 10x;
* a 2-minute simulated capture gives tens of EVE lines, not one per anomalous packet;
* the demo's episodes file is what ``iotwatch simulate`` writes for the demo command, bytes unchanged.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.sim.simulate import simulate
from iotwatch.captures.sources import open_source
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.incidents import CLASS_RULES, UPLOAD_MIN_BYTES, IncidentEngine
from iotwatch.detector.pipeline import ClassifiedBatch, classify_stream
from iotwatch.detector.run import MonitorRun
from iotwatch.options import demo_capture
from iotwatch.tui.session import CaptureSession

from fakes import ReplaySource, run_config
from incident_truth import load_episodes, match_all

SEEDS = (1, 2, 3, 4, 5)   # the demo is seed 11


@pytest.fixture(scope="module")
def clf():
    return PacketClassifier.load(None)


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    out = tmp_path_factory.mktemp("sims")
    caps = [simulate(out, seed=s, duration_us=180_000_000, devices=10, scenario="demo").pcap for s in SEEDS]
    benign = simulate(out, seed=201, duration_us=600_000_000, devices=3, scenario="benign").pcap
    return caps, benign


def classified(path, clf, rows=8192) -> ClassifiedBatch:
    src = open_source(read=str(path))
    try:
        cbs = list(classify_stream(src, clf, None, max_rows=rows))
    finally:
        src.close()
    pk = PacketBatch.concat([c.packets for c in cbs])
    return ClassifiedBatch(pk, np.concatenate([c.proba for c in cbs]), np.concatenate([c.predicted for c in cbs]),
                           np.concatenate([c.confidence for c in cbs]), np.concatenate([c.anomaly for c in cbs]),
                           None)


def run_engine(cb: ClassifiedBatch, classes, batch: int):
    eng = IncidentEngine(classes, 0)
    events = []
    for s in range(0, len(cb), batch):
        events += eng.update(cb.slice(s, min(len(cb), s + batch)))
    events += eng.finish()
    return eng, events


def _check_against_episodes(path, cb, clf):
    eng, events = run_engine(cb, clf.classes_, 8192)
    incidents = [t.to_dict() for t in eng.incidents()]
    episodes = load_episodes(path)
    assert episodes, f"{path} has no attack episode"
    per_episode, unmatched = match_all(episodes, incidents)
    bad = {e["id"]: (e["class"], e["kind"], per_episode[e["id"]]) for e in episodes if len(per_episode[e["id"]]) != 1}
    assert not bad, f"{path.name}: episodes without exactly one incident {bad}; incidents {incidents}"
    hours = float(np.nanmax(cb.packets["time_epoch"]) - np.nanmin(cb.packets["time_epoch"])) / 3600
    assert len(unmatched) <= max(1, int(hours)), f"{path.name}: incidents matching no episode {unmatched}"
    assert len(events) < 10 * (len(episodes) + 1)    # tens of events, not one per packet
    return incidents


def test_demo_episodes_file_is_what_the_demo_command_writes(tmp_path):
    res = simulate(tmp_path, seed=11, duration_us=180_000_000, devices=10, scenario="demo", name="demo")
    demo = demo_capture()
    sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()  # noqa: E731
    assert sha(res.pcap) == sha(demo), "the demo command no longer reproduces captures/demo/demo.pcapng"
    shipped = json.loads(Path(str(demo) + ".episodes.json").read_text())
    assert json.loads(Path(str(res.pcap) + ".episodes.json").read_text()) == shipped
    eps = shipped["episodes"]
    assert [e["class"] for e in eps] == ["recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    # frames of an episode carry its label in the sidecar CSV
    labels = dict(line.split(",") for line in Path(str(demo) + ".labels.csv").read_text().split()[1:])
    for e in eps:
        assert labels[str(e["first_frame"])] == e["class"] and labels[str(e["last_frame"])] == e["class"]
        assert e["start"] <= e["end"] and e["packets"] > 0


def test_demo_every_episode_is_one_incident_with_the_right_roles(clf):
    demo = demo_capture()
    incidents = _check_against_episodes(demo, classified(demo, clf), clf)
    by_class = {i["class"]: i for i in incidents}
    flood = by_class["dos"]   # spoofed random sources: one incident on the victim, N distinct sources
    assert flood["spoofed_sources"] and flood["attacker"] is None and flood["distinct_peers"] > 100
    assert "distinct sources" in flood["evidence"]
    brute = by_class["bruteforce"]
    assert brute["attacker"] == "192.168.31.78" and brute["victims"] == ["192.168.31.80"]
    assert "ssh/22 connections" in brute["evidence"]
    arp = by_class["spoofing"]
    assert arp["attacker_mac"] == "00:0c:29:99:6e:23" and "192.168.31.254" in arp["claimed_ips"]


@pytest.mark.parametrize("k", range(len(SEEDS)))
@pytest.mark.slow
def test_simulated_captures_every_episode_is_one_incident(sims, clf, k):
    path = sims[0][k]
    _check_against_episodes(path, classified(path, clf), clf)


@pytest.mark.slow
def test_benign_traffic_opens_no_incident(sims, clf):
    """Packet-level false positives of benign traffic open no incident: with the bundle as shipped, with its pair
    vote off and with both votes off (detector/flowvote.py), which leave more of them for the engine to weigh
    (iotwatch-default/12 flags none of this capture's packets with its votes, one without them)."""
    votes_only_flows = PacketClassifier.load(None)
    votes_only_flows.pair_vote = None
    no_votes = PacketClassifier.load(None)
    no_votes.pair_vote, no_votes.flow_vote = None, 0.0
    flagged = 0
    for model in (clf, votes_only_flows, no_votes):
        cb = classified(sims[1], model)
        eng, events = run_engine(cb, model.classes_, 8192)
        flagged += int(cb.anomaly.sum())
        assert eng.opened == 0, [t.to_dict() for t in eng.incidents()]
    assert flagged, "no false positive at all: the check would be vacuous"


def _stream(events):
    return [(e.kind, e.frame, e.incident.id, e.snapshot["class"], e.snapshot["kind"], e.snapshot["attacker"],
             tuple(e.snapshot["victims"]), e.snapshot["first_frame"], e.snapshot["last_frame"],
             e.snapshot["packets"], e.snapshot["bytes"], e.snapshot["peak_pps"], e.snapshot["evidence"])
            for e in events]


@pytest.mark.slow
def test_same_incidents_and_events_for_any_batch_size(clf):
    cb = classified(demo_capture(), clf)
    ref = _stream(run_engine(cb, clf.classes_, len(cb))[1])
    assert ref
    for batch in (1, 7, 256, 4096):
        assert _stream(run_engine(cb, clf.classes_, batch)[1]) == ref, f"batch size {batch}"


@pytest.mark.slow
def test_same_incidents_at_replay_speeds_max_and_10x(tmp_path, clf):
    # 40 s of the demo profile with an attack: 10x paces it over ~4 s, in many small slices
    res = simulate(tmp_path, seed=3, duration_us=40_000_000, devices=5, scenario="demo", attacks=("bruteforce",))
    out = {}
    for speed in ("max", "10x"):
        s = CaptureSession(run_config(str(res.pcap), speed=speed), clf, batch_rows=8192)
        pieces = []
        report = s.run(pieces.append, lambda: False)
        out[speed] = (report["incidents"], len(pieces))
    assert out["max"][0] and out["max"][0] == out["10x"][0]
    assert out["10x"][1] > out["max"][1]      # 10x really arrived in more, smaller pieces


def test_engine_keeps_bounded_state_and_ends_incidents_after_the_quiet_period():
    # a synthetic stream: one host scans 40 ports, then silence; far later unrelated anomalies
    classes = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    recs = [dict(frame_number=i + 1, time_epoch=1000.0 + 0.01 * i, frame_len=60, protocols="eth:ethertype:ip:tcp",
                 ip_src="10.0.0.9", ip_dst="10.0.0.3", ip_proto=6, tcp_srcport=40000, tcp_dstport=1 + i,
                 tcp_flags=0x02, eth_src="aa:aa:aa:aa:aa:09", eth_dst="aa:aa:aa:aa:aa:03") for i in range(40)]
    recs.append(dict(frame_number=41, time_epoch=1000.0 + 200, frame_len=60, protocols="eth:ethertype:ip:udp",
                     ip_src="10.0.0.5", ip_dst="10.0.0.6", ip_proto=17, udp_srcport=5000, udp_dstport=53))
    pk = PacketBatch.from_records(recs)
    n = len(recs)
    pred = np.array([1] * 40 + [0])
    proba = np.zeros((n, 6), dtype=np.float32)
    proba[np.arange(n), pred] = 0.95
    cb = ClassifiedBatch(pk, proba, pred, proba.max(axis=1), pred != 0, None)
    eng = IncidentEngine(classes, 0)
    events = eng.update(cb)
    kinds = [(e.kind, e.frame) for e in events]
    rule = CLASS_RULES["recon"]
    opened_at = max(rule.packets, rule.distinct)     # both thresholds must be met
    assert kinds[0] == ("opened", opened_at)
    assert kinds[-1] == ("closed", 41)               # the first packet after the quiet period ends it
    inc = eng.incidents()[0].to_dict()
    assert inc["attacker"] == "10.0.0.9" and inc["victims"] == ["10.0.0.3"] and inc["kind"] == "syn-scan"
    assert inc["packets"] == 40 and inc["first_frame"] == 1 and inc["last_frame"] == 40 and inc["state"] == "ended"
    assert "40 SYN probes to 40 distinct ports" in inc["evidence"]
    assert not eng.tracks and eng.finish() == []


def _upload(t0, client, server, n=40, port=443):
    return [dict(time_epoch=t0 + 0.01 * i, frame_len=1514, protocols="eth:ethertype:ip:tcp:tls", ip_src=client,
                 ip_dst=server, ip_proto=6, tcp_srcport=50000, tcp_dstport=port, tcp_flags=0x10,
                 eth_src="aa:aa:aa:aa:aa:07", eth_dst="aa:aa:aa:aa:aa:01") for i in range(n)]


def _answer(t, name, addr):
    return dict(time_epoch=t, frame_len=90, protocols="eth:ethertype:ip:udp:dns", ip_src="10.0.0.1", ip_dst="10.0.0.7",
                ip_proto=17, udp_srcport=53, udp_dstport=40000, dns_flags=0x8180, dns_qry_name=name, dns_a=addr,
                eth_src="aa:aa:aa:aa:aa:01", eth_dst="aa:aa:aa:aa:aa:07")


def _incidents_at_batch_sizes(recs, exfil_from=None):
    """Number ``recs`` in time order, let a stub model call them exfiltration (all, or only those
    sent by ``exfil_from``; the rest normal), and run the engine at several batch sizes; asserts the
    event stream is the same at each and returns the incident dicts of each."""
    recs.sort(key=lambda r: r["time_epoch"])
    for i, r in enumerate(recs):
        r["frame_number"] = i + 1
    pk = PacketBatch.from_records(recs)
    n = len(recs)
    pred = np.array([5 if exfil_from in (None, r["ip_src"]) else 0 for r in recs])
    proba = np.zeros((n, 6), dtype=np.float32)
    proba[np.arange(n), pred] = 0.95
    cb = ClassifiedBatch(pk, proba, pred, proba.max(axis=1), pred != 0, None)
    classes = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    out, ref = [], None
    for batch in (n, 1, 7, 33):
        eng, events = run_engine(cb, classes, batch)
        out.append((batch, [t.to_dict() for t in eng.incidents()]))
        assert ref is None or _stream(events) == ref, batch
        ref = _stream(events)
    return out


def test_a_bulk_upload_opens_exfiltration_only_to_an_address_no_dns_answer_named():
    # the model calls three uploads of 10.0.0.7 exfiltration: to its cloud (looked up just before),
    # to a bare address, and to an address whose name is looked up only after the upload began
    recs = [_answer(1000, "photos-upload.example.com", "198.51.100.7")] + _upload(1000.1, "10.0.0.7", "198.51.100.7")
    recs += _upload(1100, "10.0.0.7", "203.0.113.9")
    recs += _upload(1200, "10.0.0.7", "192.0.2.5") + [_answer(1200.05, "late.example.com", "192.0.2.5")]
    for batch, inc in _incidents_at_batch_sizes(recs, exfil_from="10.0.0.7"):
        assert [(i["kind"], i["victims"]) for i in inc] == [("bulk-upload", ["203.0.113.9"]),
                                                          ("bulk-upload", ["192.0.2.5"])], (batch, inc)


def test_a_bulk_upload_needs_data_to_leave_not_only_a_bare_address():
    # the model calls a DoH client's first exchanges with its resolver (configured by address, so no DNS
    # answer named it; 20 small TLS records, 2.4 kB) exfiltration: no incident. Later the same host pushes
    # 1514-byte frames to a bare address: the incident opens once UPLOAD_MIN_BYTES have left, not before.
    small = _upload(1000, "10.0.0.7", "203.0.113.53", n=20)
    for r in small:
        r["frame_len"] = 120
    big = _upload(1100, "10.0.0.7", "203.0.113.9", n=40)
    for batch, inc in _incidents_at_batch_sizes(small + big, exfil_from="10.0.0.7"):
        assert [(i["kind"], i["victims"]) for i in inc] == [("bulk-upload", ["203.0.113.9"])], (batch, inc)
        need = -(-UPLOAD_MIN_BYTES // 1514)       # frames of 1514 B until that many bytes left
        assert need > CLASS_RULES["exfiltration"].packets     # (so the byte rule, not the count, decides)
        assert inc[0]["first_frame"] == 21 and inc[0]["open_frame"] == 20 + need, (batch, inc[0])


def _echoes(t0, client, server, n, payload):
    """``n`` ICMP echo requests of ``payload`` bytes from ``client`` to ``server``, each answered."""
    out = []
    for i in range(n):
        for k, (a, b, typ) in enumerate(((client, server, 8), (server, client, 0))):
            out.append(dict(time_epoch=t0 + 0.5 * i + 0.001 * k, frame_len=14 + 28 + payload,
                            protocols="eth:ethertype:ip:icmp:data", ip_src=a, ip_dst=b, ip_proto=1,
                            ip_len=28 + payload, icmp_type=typ, eth_src="aa:aa:aa:aa:aa:07", eth_dst="aa:aa:aa:aa:aa:01"))
    return out


def test_an_icmp_tunnel_needs_echoes_larger_than_a_standard_ping():
    # the model calls both hosts' echoes exfiltration: 10.0.0.13 pings its gateway (56-byte payloads,
    # as Linux ping), 10.0.0.7 pushes 1000-byte echoes to a relay (hping3 -1 -E FILE -d 1000)
    recs = _echoes(1000, "10.0.0.13", "10.0.0.1", 40, 56) + _echoes(1000.2, "10.0.0.7", "198.51.100.9", 40, 1000)
    for batch, inc in _incidents_at_batch_sizes(recs):
        assert [(i["kind"], i["attacker"], i["victims"]) for i in inc] == [
            ("icmp-tunnel", "10.0.0.7", ["198.51.100.9"])], (batch, inc)
        assert "mean payload 1000 B" in inc[0]["evidence"]



def test_a_host_joins_a_tunnel_as_the_tunnel_was_at_its_first_row_not_after_the_batch():
    # 10.0.0.7 pushes 1000-byte echoes to a relay (an ICMP tunnel); 10.0.0.13 pings its gateway at 1005 s
    # (the model calls both exfiltration) and only at 1010 s does the tunnel's host ping 10.0.0.13. The
    # pings of 10.0.0.13 are no relay of the tunnel: when they came, 10.0.0.13 was none of its peers --
    # also in a batch that holds the tunnel's later echoes to 10.0.0.13 (lab-all-seed12: a host's pings
    # joined a bulk upload at 8192-row batches, not at 256).
    recs = _echoes(1000, "10.0.0.7", "198.51.100.9", 40, 1000) + _echoes(1005, "10.0.0.13", "10.0.0.1", 3, 56)
    recs += _echoes(1010.2, "10.0.0.7", "10.0.0.13", 3, 1000)
    for batch, inc in _incidents_at_batch_sizes(recs):
        assert [(i["kind"], i["attacker"]) for i in inc] == [("icmp-tunnel", "10.0.0.7")], (batch, inc)
        assert inc[0]["packets"] == 86, (batch, inc[0])    # its own 43 echoes and their replies

def _login(t, client, server, port, sport, ftp_code=None):
    """One TCP login session (handshake, banner, user, password, verdict, close)."""
    out = []
    for k, (a, b, fl) in enumerate([(client, server, 0x02), (server, client, 0x12), (client, server, 0x10),
                                    (server, client, 0x18), (client, server, 0x18), (server, client, 0x18),
                                    (client, server, 0x18), (server, client, 0x18), (client, server, 0x11),
                                    (server, client, 0x11)]):
        r = dict(time_epoch=t + 0.01 * k, frame_len=80, protocols="eth:ethertype:ip:tcp", ip_src=a, ip_dst=b,
                 ip_proto=6, tcp_srcport=sport if a == client else port, tcp_dstport=port if a == client else sport,
                 tcp_flags=fl, eth_src="aa:aa:aa:aa:aa:01", eth_dst="aa:aa:aa:aa:aa:02")
        if k == 7 and ftp_code is not None:
            r["ftp_code"] = ftp_code
        out.append(r)
    return out


def _flagged(recs, cls=3):
    recs.sort(key=lambda r: r["time_epoch"])
    for i, r in enumerate(recs):
        r["frame_number"] = i + 1
    pk = PacketBatch.from_records(recs)
    n = len(recs)
    pred = np.full(n, cls)
    proba = np.zeros((n, 6), dtype=np.float32)
    proba[np.arange(n), pred] = 0.9
    return ClassifiedBatch(pk, proba, pred, proba.max(axis=1), pred != 0, None)


def test_ordinary_logins_are_no_brute_force_even_when_the_model_says_so():
    # the lab's user host: a telnet login to the camera every ~20 s and an FTP login to the NAS
    # every ~15 s, all accepted (230), for 10 minutes -- the model calls every packet bruteforce
    import random

    rng = random.Random(4)
    recs, t, port = [], 1000.0, 40000
    while t < 1600:
        recs += _login(t, "10.77.0.20", "10.77.0.11", 23, port)
        port += 1
        t += rng.expovariate(1 / 20)
    t = 1003.0
    while t < 1600:
        recs += _login(t, "10.77.0.20", "10.77.0.13", 21, port, ftp_code=230)
        port += 1
        t += rng.expovariate(1 / 15)
    cb = _flagged(recs)
    classes = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    eng, _ = run_engine(cb, classes, len(cb))
    assert eng.opened == 0, [i.to_dict() for i in eng.incidents()]
    # a single login session never opens one (one connection), nor does a user mistyping twice
    recs = _login(2000, "10.0.0.7", "10.0.0.9", 21, 41000, 530) + _login(2010, "10.0.0.7", "10.0.0.9", 21, 41001, 530)
    recs += _login(2020, "10.0.0.7", "10.0.0.9", 21, 41002, 230) + _login(2040, "10.0.0.7", "10.0.0.9", 21, 41003, 230)
    assert run_engine(_flagged(recs), classes, 5)[0].opened == 0


@pytest.mark.parametrize("case", ["telnet-fast", "ftp-refused"])
def test_password_guessing_opens_one_brute_force(case):
    classes = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    if case == "telnet-fast":    # hydra telnet: a connection every 0.5 s, verdicts unseen
        recs = [r for k in range(30) for r in _login(1000 + 0.5 * k, "10.0.0.66", "10.0.0.11", 23, 42000 + k)]
        opens = 10     # the BRUTE_CONNS-th connection
    else:                        # slow FTP guessing: one try every 8 s, each refused
        recs = [r for k in range(8) for r in _login(1000 + 8 * k, "10.0.0.66", "10.0.0.13", 21, 42000 + k, 530)]
        opens = 5      # the BRUTE_FAILS-th refusal
    cb = _flagged(recs)
    ref = None
    for batch in (len(cb), 1, 7):
        eng, events = run_engine(cb, classes, batch)
        inc = [i.to_dict() for i in eng.incidents()]
        assert len(inc) == 1 and inc[0]["class"] == "bruteforce" and inc[0]["attacker"] == "10.0.0.66", inc
        opened = [e for e in events if e.kind == "opened"][0]
        assert 10 * (opens - 1) < opened.frame <= 10 * opens, opened.frame
        assert ref is None or _stream(events) == ref
        ref = _stream(events)


@pytest.mark.slow
def test_headless_report_and_fail_on_incident(tmp_path, capsys):
    from iotwatch.main import main

    demo = demo_capture()
    rep, al = tmp_path / "r.json", tmp_path / "a.jsonl"
    rc = main(["-r", str(demo), "--headless", "--report", str(rep), "--alerts", str(al), "--fail-on", "incident"])
    assert rc == 1
    report = json.loads(rep.read_text())
    assert report["incidents_opened"] == len(report["incidents"]) == 5
    lines = [json.loads(x) for x in al.read_text().splitlines()]
    assert sum(x["alert"]["metadata"]["incident_state"] == ["opened"] for x in lines) == 5
    assert len(lines) < 30 < report["anomalies"]
    out = capsys.readouterr().out
    assert "5 incidents" in out and "spoofed-syn-flood" in out
    assert main(["-r", str(demo), "--headless", "--fail-on", "incident", "-c", "300"]) == 0   # nothing opened yet


@pytest.mark.slow
def test_monitor_run_reports_incidents_like_the_engine(clf):
    # the run's hook (engine per counted piece, on_events, report) against the engine fed directly
    pk = classified(demo_capture(), clf).packets
    run = MonitorRun(run_config(str(demo_capture())), clf, source_factory=lambda: ReplaySource(pk, "demo"),
                     batch_rows=512)
    seen = []
    report = run.run(on_events=seen.extend)
    cbs = list(classify_stream(ReplaySource(pk, "demo"), clf, None, max_rows=512))
    eng = IncidentEngine(clf.classes_, 0)
    events = [e for cb in cbs for e in eng.update(cb)] + eng.finish()
    assert report["incidents"] == [t.to_dict() for t in eng.incidents()] and report["incidents"]
    assert _stream(seen) == _stream(events)
