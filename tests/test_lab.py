"""Tests of the real-tool lab recorder (captures/lab*.py).

Unit tests: the labelling rules on hand-made packet tables, the tshark field-line parser, the
schedule, stale-namespace detection, and the one-line exit-3 errors (not root, missing tool).
Smoke test (root, about a minute, marker ``lab``): a short recon recording; tshark reads it,
every frame is labelled, recon packets exist, and no namespace or process is left behind.
"""
from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import tempfile
import time
import sys
from pathlib import Path

import psutil
import pytest

from iotwatch.captures.lab import recorder as lab
from iotwatch.commands.lab import main as lab_cmd
from iotwatch.captures.lab import attacks as lab_attacks
from iotwatch.captures.errors import EnvironmentProblem
from iotwatch.captures.lab.labelling import (TSHARK_FIELDS, AttackWindow, Packet, class_counts, label_packets,
                                          parse_fields_line, write_labels_csv)
from iotwatch.captures.lab.net import LAB_ENV
from iotwatch.captures.labels import read_sidecar

ATK_MAC, ATK_IP = "02:77:00:00:00:42", "10.77.0.66"
LAB_IPS = ["10.77.0.1", "10.77.0.10", "10.77.0.11", ATK_IP]


def P(n, t, **kw):
    return Packet(frame_number=n, time=t, **kw)


def window(label, start, end, **kw):
    return AttackWindow(label=label, start=start, end=end, attacker_mac=ATK_MAC, attacker_ip=ATK_IP, **kw)


# ---------------------------------------------------------------------------------------------------
# labelling rules
# ---------------------------------------------------------------------------------------------------
def test_attacker_frames_in_window_get_the_class_and_replies_too():
    pkts = [
        P(1, 9.0, eth_src=ATK_MAC, eth_dst="02:77:00:00:00:0a", ip_src=ATK_IP, ip_dst="10.77.0.10"),   # before
        P(2, 10.5, eth_src=ATK_MAC, eth_dst="02:77:00:00:00:0a", ip_src=ATK_IP, ip_dst="10.77.0.10"),  # probe
        P(3, 10.6, eth_src="02:77:00:00:00:0a", eth_dst=ATK_MAC, ip_src="10.77.0.10", ip_dst=ATK_IP),  # reply
        P(4, 10.7, eth_src="02:77:00:00:00:0b", eth_dst="02:77:00:00:00:0a", ip_src="10.77.0.11",
          ip_dst="10.77.0.10"),                                                                       # benign
        P(5, 10.8, eth_src="02:77:00:00:00:0a", eth_dst="ff:ff:ff:ff:ff:ff", arp_spa="10.77.0.10",
          arp_tpa=ATK_IP),                                                                            # ARP about it
        P(6, 12.1, eth_src=ATK_MAC, eth_dst="02:77:00:00:00:0a", ip_src=ATK_IP, ip_dst="10.77.0.10"),  # after
    ]
    got = dict(label_packets(pkts, [window("recon", 10.0, 12.0)], LAB_IPS))
    assert got == {1: "normal", 2: "recon", 3: "recon", 4: "normal", 5: "recon", 6: "normal"}


def test_mac_alone_identifies_the_attacker_for_forged_ip_headers():
    # arpspoof-relayed frame: victim's IPs, attacker's MAC
    pkts = [P(1, 5.0, eth_src=ATK_MAC, eth_dst="02:77:00:00:00:01", ip_src="10.77.0.11", ip_dst="10.77.0.1"),
            P(2, 5.0, eth_src="02:77:00:00:00:0b", eth_dst=ATK_MAC, ip_src="10.77.0.11", ip_dst="10.77.0.1")]
    assert [lab for _, lab in label_packets(pkts, [window("spoofing", 4, 6)], LAB_IPS)] == ["spoofing"] * 2


def test_relayed_victim_traffic_is_spoofing_after_the_window_and_inside_later_windows():
    """As the simulator labels it: victims' frames forwarded by the poisoning attacker are spoofing
    while their ARP caches stay poisoned, not normal after the window nor the next step's class."""
    V, GW = "02:77:00:00:00:0b", "02:77:00:00:00:01"
    ws = [window("spoofing", 4.0, 6.0), window("exfiltration", 8.0, 12.0, dns_suffix="t.lab"),
          window("dos", 13.0, 15.0, victim_ip="10.77.0.11")]
    pkts = [
        P(1, 3.0, eth_src=V, eth_dst=ATK_MAC, ip_src="10.77.0.11", ip_dst="10.77.0.1"),   # before any poisoning
        P(2, 5.0, eth_src=V, eth_dst=ATK_MAC, ip_src="10.77.0.11", ip_dst="10.77.0.1"),   # in the window
        P(3, 7.0, eth_src=ATK_MAC, eth_dst=GW, ip_src="10.77.0.11", ip_dst="10.77.0.1"),  # after it, relayed
        P(4, 7.0, eth_src=GW, eth_dst=V, ip_src="10.77.0.1", ip_dst="10.77.0.11"),        # not via the attacker
        P(5, 9.0, eth_src=ATK_MAC, eth_dst=GW, ip_src="10.77.0.11", ip_dst="10.77.0.1"),  # inside the exfil window
        P(6, 9.0, eth_src=ATK_MAC, eth_dst=GW, ip_src=ATK_IP, ip_dst="10.77.0.200"),      # the attacker's own upload
        P(7, 9.0, eth_src=ATK_MAC, eth_dst=GW, ip_src="10.77.0.11", ip_dst="10.77.0.1",
          dns_qry_name="abc.t.lab"),                                                     # relayed tunnel query
        P(8, 9.5, eth_src=ATK_MAC, eth_dst="ff:ff:ff:ff:ff:ff", arp_spa=ATK_IP, arp_tpa="10.77.0.1"),  # its ARP
        P(9, 14.0, eth_src=ATK_MAC, eth_dst=V, ip_src="198.51.100.9", ip_dst="10.77.0.11"),  # forged flood source
        P(10, 7.5, eth_src=ATK_MAC, eth_dst=V, ip_src=ATK_IP, ip_dst="10.77.0.11", icmp_type="5"),  # its redirect
        P(11, 7.5, eth_src=ATK_MAC, eth_dst=V, ip_src=ATK_IP, ip_dst="10.77.0.11", icmp_type="8"),  # its own ping
        P(12, 2.0, eth_src=ATK_MAC, eth_dst=V, ip_src=ATK_IP, ip_dst="10.77.0.11", icmp_type="5"),  # before
    ]
    got = [lab for _, lab in label_packets(pkts, ws, LAB_IPS)]
    assert got == ["normal", "spoofing", "spoofing", "normal", "spoofing", "exfiltration", "exfiltration",
                   "exfiltration", "dos", "spoofing", "normal", "normal"]


def test_relabel_rewrites_the_sidecar_from_the_lab_summary(tmp_path, capsys):
    from iotwatch.captures.errors import InputError
    from iotwatch.detector.bundle import CONTRACT_CLASSES

    cap = tmp_path / "lab-x.pcapng"
    cap.write_bytes((Path(__file__).parent / "data" / "pcaps" / "loopback.pcapng").read_bytes())
    w = AttackWindow(label="recon", start=0.0, end=4e9, attacker_mac="", attacker_ip="127.0.0.1")
    summary = {"hosts": {"a": {"ip": "127.0.0.1", "mac": ""}}, "class_counts": {"normal": 0}, "windows": [w.to_json()]}
    Path(str(cap) + ".lab.json").write_text(json.dumps(summary))
    assert lab_cmd(["relabel", str(cap)]) == 0
    rows = read_sidecar(Path(str(cap) + ".labels.csv"), CONTRACT_CLASSES)
    meta = json.loads(Path(str(cap) + ".lab.json").read_text())
    assert len(rows) == meta["frames"] == sum(meta["class_counts"].values()) > 0
    assert meta["class_counts"]["recon"] > 0  # frames of 127.0.0.1 (the ::1 ones stay normal)
    assert "relabelled" in capsys.readouterr().out
    Path(str(cap) + ".lab.json").unlink()
    with pytest.raises(InputError, match="lab.json"):
        lab.relabel(cap)


def test_spoofed_source_flood_rule_covers_victim_and_forged_peers_only():
    w = window("dos", 1.0, 3.0, victim_ip="10.77.0.10")
    pkts = [
        P(1, 2.0, eth_src="02:77:00:00:00:0a", eth_dst="02:77:00:00:00:99", ip_src="10.77.0.10", ip_dst="203.0.113.7"),
        P(2, 2.0, eth_src="02:77:00:00:00:0a", eth_dst="ff:ff:ff:ff:ff:ff", arp_spa="10.77.0.10", arp_tpa="10.77.0.123"),
        P(3, 2.0, ip_src="10.77.0.11", ip_dst="10.77.0.10"),          # lab peer: benign
        P(4, 2.0, ip_src="198.51.100.1", ip_dst="10.77.0.11"),        # not the victim
        P(5, 4.0, ip_src="10.77.0.10", ip_dst="203.0.113.7"),         # after the window
    ]
    assert [lab for _, lab in label_packets(pkts, [w], LAB_IPS)] == ["dos", "dos", "normal", "normal", "normal"]


def test_dns_suffix_rule_labels_forwarded_tunnel_queries():
    w = window("exfiltration", 0.0, 10.0, dns_suffix="t.lab")
    pkts = [P(1, 1.0, ip_src="10.77.0.1", ip_dst="10.77.0.200", dns_qry_name="mfrgg43fmzxw6.0001.t.lab"),
            P(2, 1.0, ip_src="10.77.0.200", ip_dst="10.77.0.1", dns_qry_name="MFRGG.0002.T.LAB."),
            P(3, 1.0, ip_src="10.77.0.11", ip_dst="10.77.0.1", dns_qry_name="hub.lab"),
            P(4, 1.0, ip_src="10.77.0.11", ip_dst="10.77.0.1", dns_qry_name="nott.lab.example")]
    assert [lab for _, lab in label_packets(pkts, [w], LAB_IPS)] == ["exfiltration", "exfiltration", "normal", "normal"]


def test_overlapping_windows_earliest_start_wins_and_every_frame_gets_one_label():
    ws = [window("dos", 5.0, 9.0), window("recon", 1.0, 6.0)]
    pkts = [P(i, float(i), eth_src=ATK_MAC) for i in range(1, 11)]
    got = label_packets(pkts, ws, LAB_IPS)
    assert [n for n, _ in got] == list(range(1, 11))
    assert [lab for _, lab in got] == ["recon"] * 6 + ["dos"] * 3 + ["normal"]
    assert class_counts(got) == {"recon": 6, "dos": 3, "normal": 1}


def test_fields_line_parser_and_sidecar_round_trip(tmp_path):
    assert [f for f, _ in TSHARK_FIELDS][:2] == ["frame_number", "time"]
    line = "7\t1795926721.5\t02:77:00:00:00:42\tFF:FF:FF:FF:FF:FF\t\t\t10.77.0.66\t10.77.0.10"
    p = parse_fields_line(line)
    assert (p.frame_number, p.time, p.eth_dst, p.arp_spa, p.arp_tpa, p.ip_src, p.dns_qry_name) == \
        (7, 1795926721.5, "ff:ff:ff:ff:ff:ff", "10.77.0.66", "10.77.0.10", "", "")
    out = tmp_path / "x.pcapng.labels.csv"
    write_labels_csv(out, [(1, "normal"), (2, "recon"), (3, "exfiltration")])
    classes = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    assert read_sidecar(out, classes) == {1: 0, 2: 1, 3: 5}


# ---------------------------------------------------------------------------------------------------
# plans, schedule, errors
# ---------------------------------------------------------------------------------------------------
def _ctx(tmp_path):
    ips = lab.topology(3)
    return lab_attacks.LabContext(ips=ips, macs={r: "02:77:00:00:00:%02x" % int(a.rsplit(".", 1)[1])
                                                 for r, a in ips.items()}, workdir=tmp_path)


@pytest.mark.parametrize("family", lab_attacks.FAMILIES)
def test_plans_target_only_lab_addresses_and_are_bounded(tmp_path, family):
    ctx = _ctx(tmp_path)
    steps = lab_attacks.plan(family, ctx, random.Random(5))
    assert steps and all(s.label == family for s in steps)
    lab_ips = set(ctx.ips.values())
    for s in steps:
        for cmd in s.commands:
            assert cmd[0] in lab_attacks.TOOLS or cmd[0] == sys.executable
            addrs = {a for a in cmd if a.count(".") == 3 and a.replace(".", "").isdigit()}
            urls = {a.split("//", 1)[1].split("/")[0].split(":")[0] for a in cmd if "://" in a}
            assert (addrs | urls) <= lab_ips | {"10.77.0.0/24", ctx.iodine_peer}, (s.name, cmd)
            if cmd[0] == "hping3":
                assert "-c" in cmd  # floods are bounded in count


def test_schedule_splits_by_weight_and_keeps_minimums():
    steps = [lab_attacks.Step("a", "dos", [], weight=1, min_seconds=2),
             lab_attacks.Step("b", "dos", [], weight=3, min_seconds=2),
             lab_attacks.Step("c", "dos", [], weight=1, min_seconds=30)]
    assert lab.schedule(steps, 50.0) == [10.0, 30.0, 30.0]


def test_stale_namespace_detection_only_matches_dead_recorders():
    names = ["iw-100-br", "iw-100-gw", "iw-200-atk", "iwx-100-br", "other", "iw-100-"]
    assert lab.stale_namespaces(names, alive=lambda pid: pid == 200) == ["iw-100-br", "iw-100-gw"]


def test_not_root_is_exit_3_with_one_line(monkeypatch, capsys, tmp_path):
    from iotwatch.main import main

    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    assert main(["lab", "record", "--out", str(tmp_path), "--scenario", "recon"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_missing_tool_names_the_apt_package(monkeypatch):
    real = lab.shutil.which
    monkeypatch.setattr(lab.shutil, "which", lambda t: None if t == "hping3" else real(t))
    with pytest.raises(EnvironmentProblem) as e:
        lab.require_tools(["dos"])
    assert "hping3" in str(e.value) and "apt-get install hping3" in str(e.value)
    assert e.value.exit_code == 3


def test_bad_scenario_is_usage_error(capsys):
    from iotwatch.main import main

    assert main(["lab", "record", "--out", "/tmp/x", "--scenario", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_lab_packages_cover_every_tool_and_are_installed():
    pkgs = lab.lab_packages()
    assert set(lab_attacks.TOOLS.values()) - {"coreutils"} <= set(pkgs)
    assert all(" " not in p and "#" not in p for p in pkgs)  # dev.sh greps out whole-line comments only
    assert [p for p in pkgs if not lab._installed(p)] == []   # CI installs them (dev.sh setup)


# ---------------------------------------------------------------------------------------------------
# smoke test: a real recording (root)
# ---------------------------------------------------------------------------------------------------
def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {l.split()[0] for l in out.splitlines() if l.strip()}


def _processes_marked(prefix: str) -> list[str]:
    """Processes carrying the lab's IOTWATCH_LAB=<prefix> mark (every lab process and its children)."""
    mark = f"{LAB_ENV}={prefix}".encode()
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            env = Path(f"/proc/{p.pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in env:
            found.append(" ".join(p.info["cmdline"] or []))
    return found


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_recon_recording_smoke(tmp_path):
    assert os.geteuid() == 0, "the lab smoke test runs as root (CI is root)"
    ns_before = _netns()
    proc = subprocess.Popen([sys.executable, "-m", "iotwatch", "lab", "record", "--out", str(tmp_path),
                             "--scenario", "recon", "--duration", "20", "--seed", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix = f"iw-{proc.pid}-"
    seen_running = 0  # proves the mark is visible while the lab runs, so "none left" below means something
    deadline = time.time() + 220
    while proc.poll() is None and time.time() < deadline:
        seen_running = max(seen_running, len(_processes_marked(prefix)))
        time.sleep(2)
    out, err = proc.communicate(timeout=max(1, deadline - time.time()))
    assert proc.returncode == 0, err
    assert seen_running >= 10  # services, drivers, dumpcap, tools
    assert f"({prefix}*), isolation verified" in out
    # nothing of this lab is left: no namespace, no process (other engineers' labs may run meanwhile)
    others = re.compile(r"^iw-(\d+)-")
    new_ns = {n for n in _netns() - ns_before
              if not (others.match(n) and others.match(n).group(1) != str(proc.pid))}
    assert new_ns == set()
    assert _processes_marked(prefix) == []
    assert not list(Path(tempfile.gettempdir()).glob(prefix + "*"))  # the lab's workdir is gone

    capture = tmp_path / "lab-recon-seed7.pcapng"
    frames = subprocess.run(["tshark", "-n", "-r", str(capture), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(frames) > 100
    with open(str(capture) + ".labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["frame_number"] for r in rows] == frames
    counts = class_counts([(int(r["frame_number"]), r["label"]) for r in rows])
    assert set(counts) <= {"normal", "recon"}
    assert counts.get("recon", 0) > 50 and counts.get("normal", 0) > 10
    meta = json.loads(Path(str(capture) + ".lab.json").read_text())
    assert meta["class_counts"] == counts and meta["windows"]
    assert any("no route" in c for c in meta["isolation_checks"])
