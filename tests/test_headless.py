"""`iotwatch --headless` end to end (CONTRACT §3/§4): report, predictions, alerts, exit codes."""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from fakes import make_tiny_bundle
from iotwatch.main import main

from pcaptools import MAC_A, MAC_B, ether, pcap, udp_frames

CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
N_UDP, N_ARP = 40, 6


def arp_frame(i: int) -> bytes:
    body = (bytes.fromhex("0001080006040001") + MAC_A + bytes([192, 0, 2, 10]) + b"\0" * 6 + bytes([192, 0, 2, 100 + i]))
    return ether(b"\xff" * 6, MAC_A, 0x0806, body)


@pytest.fixture
def capture(tmp_path) -> Path:
    frames = udp_frames(N_UDP // 2) + [arp_frame(i) for i in range(N_ARP)] + udp_frames(N_UDP // 2, size=300)
    p = tmp_path / "mix.pcap"
    p.write_bytes(pcap(frames))
    # frames 1..30 labelled (classes cycling), the rest unlabelled
    rows = "".join(f"{i},{CLASSES[i % 6]}\n" for i in range(1, 31))
    (tmp_path / "mix.pcap.labels.csv").write_text("frame_number,label\n" + rows)
    return p


@pytest.fixture
def model(tmp_path) -> Path:
    return make_tiny_bundle(tmp_path / "tiny.iotw", seed=3, hidden=(16, 16), anomaly_threshold=0.0)


def run(capsys, *args):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap


def test_report_predictions_and_alerts_agree(capture, model, tmp_path, capsys):
    rep, pred, alerts = tmp_path / "r.json", tmp_path / "p.csv", tmp_path / "a.jsonl"
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", model, "--report", rep,
                  "--predictions", pred, "--alerts", alerts)
    assert rc == 0, cap.err
    r = json.loads(rep.read_text())
    n = N_UDP + N_ARP
    for key in ("source", "model", "packets", "seconds", "packets_per_second", "class_counts", "labelled_packets",
                "confusion", "per_class", "accuracy", "macro_f1"):
        assert key in r, key
    assert r["source"] == str(capture) and r["model"] == "tiny-test/seed3"
    assert r["packets"] == n and sum(r["class_counts"].values()) == n
    assert list(r["class_counts"]) == CLASSES == r["confusion"]["classes"]

    rows = list(csv.DictReader(pred.open()))
    assert [int(x["frame_number"]) for x in rows] == list(range(1, n + 1))  # every frame, ARP included, in order
    assert list(rows[0]) == ["frame_number", "predicted", "confidence", "label"]
    assert {c: sum(x["predicted"] == c for x in rows) for c in CLASSES} == r["class_counts"]
    # recompute the confusion matrix independently from the predictions file
    m = np.zeros((6, 6), dtype=int)
    for x in rows:
        if x["label"]:
            m[CLASSES.index(x["label"]), CLASSES.index(x["predicted"])] += 1
    assert m.tolist() == r["confusion"]["matrix"]
    assert r["labelled_packets"] == 30 == m.sum()
    assert [r["per_class"][c]["support"] for c in CLASSES] == m.sum(axis=1).tolist()
    assert r["accuracy"] == pytest.approx(np.trace(m) / m.sum(), abs=1e-6)
    assert all(x["label"] == "" for x in rows[30:])

    # --alerts: incidents as Suricata EVE events (tests/test_eve.py checks the format); the per-packet
    # view is --predictions
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    opened = [a for a in lines if a["alert"]["metadata"]["incident_state"] == ["opened"]]
    assert len(opened) == r["incidents_opened"] == len(r["incidents"])
    for a in lines:
        assert a["event_type"] == "alert" and a["alert"]["category"] in CLASSES[1:] and "frame_number" not in a
        assert a["timestamp"].startswith("2023-11-14T") and a["pcap_cnt"] <= n
        assert a.get("src_ip", "192.0.2.1").startswith("192.0.2.")   # IP fields hold IPs only
    assert "macro-F1" in cap.out and "packets" in cap.out


def test_fail_on_anomaly_exit_codes(capture, tmp_path, capsys):
    flagging = make_tiny_bundle(tmp_path / "flag.iotw", seed=3, hidden=(16, 16), anomaly_threshold=0.0)
    silent = make_tiny_bundle(tmp_path / "silent.iotw", seed=3, hidden=(16, 16), anomaly_threshold=1.0)
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", flagging, "--fail-on", "anomaly")
    assert rc == 1, cap.err
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", silent, "--fail-on", "anomaly")
    assert rc == 0, cap.err


def test_existing_outputs_need_force(capture, model, tmp_path, capsys):
    rep = tmp_path / "r.json"
    rep.write_text("precious")
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", model, "--report", rep)
    assert rc == 2 and "--force" in cap.err and cap.err.count("\n") == 1
    assert rep.read_text() == "precious"
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", model, "--report", rep, "--force")
    assert rc == 0 and json.loads(rep.read_text())["packets"] == N_UDP + N_ARP


def test_count_limit_stops_after_n_packets(capture, model, tmp_path, capsys):
    pred = tmp_path / "p.csv"
    rc, _ = run(capsys, "-r", capture, "--headless", "--model", model, "-c", 7, "--predictions", pred)
    assert rc == 0
    assert len(pred.read_text().splitlines()) == 8


def test_unlabelled_plain_pcap_has_no_label_column_or_metrics(tmp_path, model, capsys):
    p = tmp_path / "plain.pcap"
    p.write_bytes(pcap(udp_frames(5)))
    rep, pred = tmp_path / "r.json", tmp_path / "p.csv"
    rc, _ = run(capsys, "-r", p, "--headless", "--model", model, "--report", rep, "--predictions", pred)
    assert rc == 0
    r = json.loads(rep.read_text())
    assert "confusion" not in r and "macro_f1" not in r and r["labelled_packets"] == 0
    assert pred.read_text().splitlines()[0] == "frame_number,predicted,confidence"


@pytest.mark.parametrize("args,needle", [
    (["--labels", "{tmp}/missing.csv"], "missing.csv does not exist"),
    (["--model", "{tmp}/nope.iotw"], "nope.iotw"),
    (["--model", "{tmp}/evil.iotw"], "evil.iotw"),
    (["-f", "udp"], "live capture only"),
    (["--fail-on", "everything"], "invalid choice"),
    (["-c", "0"], "positive"),
    (["-B", "8"], "live capture only"),
])
def test_usage_and_input_errors_exit_2_with_one_line(capture, tmp_path, capsys, args, needle):
    (tmp_path / "evil.iotw").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    args = [a.format(tmp=tmp_path) for a in args]
    rc, cap = run(capsys, "-r", capture, "--headless", *args)
    assert rc == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iotwatch: error: ") and needle in lines[0], cap.err


def test_bad_label_value_names_file_and_line(capture, tmp_path, model, capsys):
    """Labels are read once tshark is starting (headless defers them): a bad file still exits 2 with
    its line, writes no report or outputs, and leaves no tshark behind."""
    import psutil

    bad = tmp_path / "bad.csv"
    bad.write_text("frame_number,label\n1,normal\n2,worm\n")
    rep, pred = tmp_path / "r.json", tmp_path / "p.csv"
    rc, cap = run(capsys, "-r", capture, "--headless", "--model", model, "--labels", bad,
                  "--report", rep, "--predictions", pred)
    assert rc == 2 and f"{bad}:3: unknown class 'worm'" in cap.err
    assert len(cap.err.strip().splitlines()) == 1, cap.err
    assert not rep.exists() and not pred.exists()
    assert [c.name() for c in psutil.Process().children(recursive=True)] == []


def test_alerts_name_the_capture_file_whatever_its_extension(tmp_path, model, capsys):
    cap = tmp_path / "evidence.cap"  # editcap/tcpdump names: not .pcap/.pcapng, still a file replay
    # 20 UDP datagrams of 1.2 kB to a bare address: 24 kB out, above the bulk-upload rule's UPLOAD_MIN_BYTES
    cap.write_bytes(pcap(udp_frames(20, size=1200)))
    alerts = tmp_path / "a.jsonl"
    flagging = make_tiny_bundle(tmp_path / "flag.iotw", seed=3, anomaly_threshold=0.0, favour="exfiltration")
    rc, _ = run(capsys, "-r", cap, "--headless", "--model", flagging, "--alerts", alerts)
    assert rc == 0
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert lines, "the flagging model opened no incident"
    assert all(a["pcap_filename"] == str(cap) and "in_iface" not in a for a in lines)
