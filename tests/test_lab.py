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
from iotwatch.captures.lab.net import CLOUD_NET, LAB_ENV, cloud_hops
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


def test_packet_table_through_tshark_and_its_errors(tmp_path):
    """read_packet_table (captures/tshark/table.py underneath): every frame in order, the same
    addresses the runtime source reads; a file tshark cannot read is one InputError line."""
    from iotwatch.captures.errors import InputError
    from iotwatch.captures.lab.labelling import read_packet_table
    from iotwatch.captures.sources import open_source

    cap = Path(__file__).resolve().parent / "data" / "cases" / "pairing.pcapng"
    table = read_packet_table(cap)
    src = open_source(read=str(cap))
    try:
        frames = [b for b in src.batches(max_rows=4096)]
    finally:
        src.close()
    numbers = [int(n) for b in frames for n in b["frame_number"]]
    assert [p.frame_number for p in table] == numbers == list(range(1, len(table) + 1)) and len(table) > 100
    macs = [str(m).lower() for b in frames for m in b["eth_src"]]
    assert [p.eth_src for p in table] == macs and len(set(macs)) > 1
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(InputError, match="tshark cannot read") as ei:
        read_packet_table(bad)
    assert "\n" not in str(ei.value)


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
            if cmd[0] in ("hping3", "nping", "arping"):
                assert "-c" in cmd or "--scan" in cmd  # floods are bounded in count, scans by the port list
                assert "--flood" not in cmd


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
                             "--scenario", "recon", "--duration", "20", "--seed", "7",
                             "--max-steps", "3"],
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
    # the lab's Internet hosts arrive many hops away, as real ones do (not at their initial TTL like a neighbour)
    cloud = subprocess.run(["tshark", "-n", "-r", str(capture), "-Y", f"ip.src == {CLOUD_NET}", "-T", "fields",
                            "-e", "ip.src", "-e", "ip.ttl"], capture_output=True, text=True, check=True).stdout
    seen = {tuple(line.split("\t")) for line in cloud.splitlines() if line}
    assert seen, "no frame from the lab's cloud hosts"
    assert {(ip, int(ttl)) for ip, ttl in seen} == {(ip, 64 - cloud_hops(ip)) for ip, _ in seen}
    assert all(10 <= cloud_hops(ip) <= 18 for ip, _ in seen)


# ---------------------------------------------------------------------------------------------------
# the wider tool set (issue 12): plans, payloads, labelling rules, cases
# ---------------------------------------------------------------------------------------------------
def _argv_text(steps) -> list[str]:
    return [" ".join(c) for s in steps for c in s.commands]


def test_recon_plan_covers_every_timing_and_scan_kind(tmp_path):
    text = " ".join(_argv_text(lab_attacks.plan("recon", _ctx(tmp_path), random.Random(1))))
    for t in ("-T0", "-T1", "-T2", "-T3", "-T4", "-T5"):
        assert f" {t} " in text + " ", t
    for kind in ("-sS", "-sT", "-sA", "-sF", "-sX", "-sN", "-sU", "-sV", "-sn"):
        assert f" {kind} " in text, kind
    assert "arp-scan" in text and "hping3 -I eth0 -S --scan" in text
    fast = [c for s in lab_attacks.plan("recon", _ctx(tmp_path), random.Random(1)) for c in s.commands
            if c[0] == "masscan" and int(c[c.index("--rate") + 1]) >= 10000]
    assert fast, "masscan at >= 10k packets/s"
    slow = [s for s in lab_attacks.plan("recon", _ctx(tmp_path), random.Random(1)) if "-T0" in s.commands[0]]
    assert slow and all(len(c[c.index("-p") + 1].split(",")) <= 5 for s in slow for c in s.commands)  # short lists


def test_bruteforce_plan_uses_several_tools_per_service(tmp_path):
    steps = lab_attacks.plan("bruteforce", _ctx(tmp_path), random.Random(2))
    tools_by_service: dict[str, set[str]] = {}
    for s in steps:
        for c in s.commands:
            tool = Path(c[0]).name if c[0] != sys.executable else c[3]  # helper name for our loops
            joined = " ".join(c)
            for svc in ("ssh", "telnet", "ftp", "mqtt", "http"):
                if f"{svc}://" in joined or f"-M {svc}" in joined or f"{svc}_login" in joined or f"guess-{svc}" in joined \
                        or (svc == "http" and "http-get://" in joined):
                    tools_by_service.setdefault(svc, set()).add(tool)
    assert tools_by_service["ssh"] >= {"hydra", "medusa", "ncrack", "patator"}
    for svc in ("telnet", "ftp", "mqtt", "http"):
        assert len(tools_by_service[svc]) >= 2, (svc, tools_by_service[svc])
    ncrack_timings = {c[1] for s in steps for c in s.commands if c[0] == "ncrack" and "ssh://" in " ".join(c)}
    assert len(ncrack_timings) >= 3 and ncrack_timings <= {"-T2", "-T3", "-T4", "-T5"}


def test_every_family_tool_has_a_package_and_optional_tools_are_known():
    for fam, tools in lab_attacks.FAMILY_TOOLS.items():
        assert set(tools) <= set(lab_attacks.TOOLS), fam
    assert set(lab_attacks.OPTIONAL) <= set(lab_attacks.TOOLS)
    assert set(lab_attacks.BASE_TOOLS) <= set(lab_attacks.TOOLS)


@pytest.mark.parametrize("family", lab_attacks.FAMILIES)
def test_every_step_binary_is_declared(tmp_path, family):
    declared = set(lab_attacks.BASE_TOOLS) | set(lab_attacks.FAMILY_TOOLS[family])
    for s in lab_attacks.plan(family, _ctx(tmp_path), random.Random(4)):
        assert s.tools() <= declared, (s.name, s.tools() - declared)


def test_reflection_steps_forge_the_victim_and_name_real_reflectors(tmp_path):
    ctx = _ctx(tmp_path)
    steps = [s for s in lab_attacks.plan("dos", ctx, random.Random(3)) if s.reflectors]
    kinds = set()
    for s in steps:
        assert s.label == "dos" and s.victim_ip in ctx.ips.values() and s.spoof_port > 1024
        for c in s.commands:
            assert c[c.index("-a") + 1] == s.victim_ip and c[c.index("-s") + 1] == str(s.spoof_port) and "-k" in c
            payload = Path(c[c.index("-E") + 1]).read_bytes()
            assert c[c.index("-d") + 1] == str(len(payload))
            assert f"{c[-1]}:{c[c.index('-p') + 1]}" in s.reflectors
        kinds |= {r.rsplit(":", 1)[1] for r in s.reflectors}
    assert kinds == {"53", "123", "161", "1900", "5683"}


def _decode(frames_payloads, fields):
    """tshark's reading of UDP datagrams carrying the given payloads (dport decides the dissector)."""
    from pcaptools import MAC_A, MAC_B, ether, ipv4, pcap, udp

    frames = [ether(MAC_B, MAC_A, 0x0800, ipv4("10.77.0.11", "10.77.0.1", 17, udp(41000, dport, data)))
              for dport, data in frames_payloads]
    path = Path(tempfile.mkdtemp()) / "p.pcap"
    path.write_bytes(pcap(frames))
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()


def test_reflection_payloads_are_valid_requests_for_tshark():
    P = lab_attacks.REFLECTION_PAYLOADS
    rows = _decode([(53, P["dns"][1]()), (161, P["snmp"][1]()), (123, P["ntp"][1]()), (5683, P["coap"][1]()),
                    (1900, P["ssdp"][1]())],
                   ["_ws.col.Protocol", "dns.qry.name", "dns.qry.type", "snmp.community", "ntp.flags.mode",
                    "coap.code", "http.request.method"])
    proto = [r.split("|")[0] for r in rows]
    assert proto == ["DNS", "SNMP", "NTP", "CoAP", "SSDP"]
    assert rows[0].split("|")[1:3] == ["big.lab", "16"]
    assert rows[1].split("|")[3] == "public"
    assert rows[2].split("|")[4] == "3"        # NTP client mode
    assert rows[3].split("|")[5] == "1"        # CoAP GET
    assert rows[4].split("|")[6] == "M-SEARCH"


def test_dhcp_starvation_frames_decode_as_discover_and_request():
    from iotwatch.captures.lab.services import STARVE_OUI, dhcp_frame

    mac = bytes.fromhex(STARVE_OUI.replace(":", "") + "010203")
    frames = [dhcp_frame(mac, 0x1234, 1), dhcp_frame(mac, 0x1234, 3, requested=bytes([10, 77, 0, 120]),
                                                     server=bytes([10, 77, 0, 1]))]
    path = Path(tempfile.mkdtemp()) / "d.pcap"
    from pcaptools import pcap

    path.write_bytes(pcap(frames))
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
                          "-e", "eth.src",
                          "-e", "dhcp.hw.mac_addr", "-e", "dhcp.option.dhcp", "-e", "dhcp.option.requested_ip_address",
                          "-e", "ip.checksum.status", "-e", "_ws.expert"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    want = STARVE_OUI + ":01:02:03"
    assert [r.split("|")[:4] for r in out] == [[want, want, "1", ""], [want, want, "3", "10.77.0.120"]]


def test_reflection_rule_labels_forged_requests_answers_and_icmp_errors():
    R, V = "10.77.0.1", "10.77.0.11"
    w = window("dos", 1.0, 3.0, victim_ip=V, reflectors=[f"{R}:53"], spoof_port=41234)
    pkts = [
        P(1, 2.0, eth_src=ATK_MAC, ip_src=V, ip_dst=R, udp_sport="41234", udp_dport="53"),          # forged
        P(2, 2.0, eth_src="02:77:00:00:00:01", ip_src=R, ip_dst=V, udp_sport="53", udp_dport="41234"),  # answer
        P(3, 2.0, ip_src=V, ip_dst=R, icmp_type="3", udp_sport="53", udp_dport="41234"),           # ICMP error
        P(4, 2.0, ip_src=V, ip_dst=R, udp_sport="50000", udp_dport="53"),                          # victim's own DNS
        P(5, 2.0, ip_src=R, ip_dst=V, udp_sport="53", udp_dport="50000"),                          # its answer
        P(6, 4.0, ip_src=R, ip_dst=V, udp_sport="53", udp_dport="41234"),                          # after the window
        P(7, 2.0, ip_src="10.77.0.10", ip_dst=V, udp_sport="53", udp_dport="41234"),               # not a reflector
    ]
    assert [lab for _, lab in label_packets(pkts, [w], LAB_IPS)] == \
        ["dos", "dos", "dos", "normal", "normal", "normal", "normal"]


def test_mac_prefix_rule_labels_forged_dhcp_clients_and_the_servers_answers():
    w = window("dos", 1.0, 3.0, mac_prefix="02:de:ad")
    pkts = [
        P(1, 2.0, eth_src="02:de:ad:01:02:03", eth_dst="ff:ff:ff:ff:ff:ff", ip_src="0.0.0.0", ip_dst="255.255.255.255",
          dhcp_chaddr="02:de:ad:01:02:03"),
        P(2, 2.0, eth_src="02:77:00:00:00:01", eth_dst="02:de:ad:01:02:03", ip_src="10.77.0.1", ip_dst="10.77.0.120"),
        P(3, 2.0, eth_src="02:77:00:00:00:01", eth_dst="ff:ff:ff:ff:ff:ff", ip_src="10.77.0.1",
          ip_dst="255.255.255.255", dhcp_chaddr="02:de:ad:01:02:03"),                                 # broadcast OFFER
        P(4, 2.0, eth_src="02:77:00:00:00:1e", eth_dst="ff:ff:ff:ff:ff:ff", ip_src="0.0.0.0",
          ip_dst="255.255.255.255", dhcp_chaddr="02:77:00:00:00:1e"),                                 # the plug's own
        P(5, 9.0, eth_src="02:77:00:00:00:01", eth_dst="02:de:ad:01:02:03"),                         # late OFFER
        P(6, 0.5, eth_src="02:de:ad:01:02:03", eth_dst="ff:ff:ff:ff:ff:ff"),                         # before
    ]
    assert [lab for _, lab in label_packets(pkts, [w], LAB_IPS)] == ["dos", "dos", "dos", "normal", "dos", "normal"]


def test_lab_accepts_cloud_hosts_only_in_test_net_3(tmp_path):
    from iotwatch.captures.lab.net import CLOUD_NET, Lab, in_lab

    assert in_lab("203.0.113.10") and in_lab("10.77.0.5") and not in_lab("192.0.2.2") and not in_lab("8.8.8.8")
    assert str(CLOUD_NET) == "203.0.113.0/24"
    Lab({"cam": "10.77.0.11", "cloud": "203.0.113.10"}, tmp_path / "w")
    with pytest.raises(ValueError, match="outside"):
        Lab({"cam": "10.77.0.11", "cloud": "198.51.100.10"}, tmp_path / "w")


def test_doh_server_answers_a_queries_with_the_cloud_address():
    from iotwatch.captures.lab.services import doh_answer

    q = lab_attacks.dns_query_payload("api.example.com", qtype=1, qid=0x4242)
    ans = doh_answer(q, "203.0.113.10")
    assert ans[:2] == b"\x42\x42" and ans[3] & 0x0F == 0 and int.from_bytes(ans[6:8], "big") == 1
    assert ans.endswith(bytes([203, 0, 113, 10]))
    assert int.from_bytes(doh_answer(lab_attacks.dns_query_payload("x.example", qtype=28), "203.0.113.10")[6:8],
                          "big") == 0  # AAAA: no data
    assert doh_answer(b"\x00\x01junk", "203.0.113.10")[3] & 0x0F == 1  # FORMERR


def test_cases_are_defined_for_every_acceptance_case_and_target_only_lab_hosts(tmp_path):
    from iotwatch.captures.lab.cases import CASES
    from iotwatch.captures.lab.net import in_lab

    assert {c.expect for c in CASES.values()} == {"normal", "bruteforce", "recon", "dos"}
    assert set(CASES) >= {"https-no-dns", "doh", "pairing", "ssh-guessing", "syn-scan-10k", "syn-flood", "reflection"}
    for case in CASES.values():
        assert all(in_lab(ip) for ip in case.hosts.values())
        ctx = lab_attacks.LabContext(ips=dict(case.hosts), macs={r: "02:77:00:00:00:01" for r in case.hosts},
                                     workdir=tmp_path)
        steps = case.steps(ctx, random.Random(1))
        assert steps and all(s.role in case.hosts for s in steps)
        assert all((s.label == "normal") == (case.expect == "normal") for s in steps)
        for s in steps:
            for c in s.commands:
                addrs = {a for a in c if a.count(".") == 3 and a.replace(".", "").isdigit()}
                assert all(in_lab(a) for a in addrs), (case.name, c)
                assert "--flood" not in c
    ssh = [s.commands[0][0] for s in CASES["ssh-guessing"].steps(lab_attacks.LabContext(
        ips=dict(CASES["ssh-guessing"].hosts), macs={}, workdir=tmp_path), random.Random(1))]
    assert len(set(ssh)) >= 2


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_reflection_case_smoke(tmp_path):
    """A real reflection case: only the victim's interface is captured, the reflectors' answers are dos."""
    assert os.geteuid() == 0, "the lab smoke test runs as root (CI is root)"
    ns_before = _netns()
    proc = subprocess.run([sys.executable, "-m", "iotwatch", "lab", "cases", "--out", str(tmp_path), "--only", "reflection"],
                          capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stderr
    cap = tmp_path / "reflection.pcapng"
    rows = subprocess.run(["tshark", "-n", "-r", str(cap), "-T", "fields", "-E", "separator=|", "-e", "frame.number",
                           "-e", "ip.src", "-e", "ip.dst", "-e", "udp.srcport"], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    with open(f"{cap}.labels.csv", newline="") as fh:
        labels = {int(r["frame_number"]): r["label"] for r in csv.DictReader(fh)}
    answers = [int(r.split("|")[0]) for r in rows if r.split("|")[1] in ("10.77.0.1", "10.77.0.10")
               and r.split("|")[2] == "10.77.0.11" and r.split("|")[3] in ("53", "161")]
    assert len(answers) >= 150 and all(labels[n] == "dos" for n in answers)
    assert not any(r.split("|")[1] == "10.77.0.66" for r in rows)  # the attacker is never seen at the victim
    others = re.compile(r"^iw-(\d+)-")
    assert {n for n in _netns() - ns_before if not others.match(n)} == set()


# ---------------------------------------------------------------------------------------------------
# HTTPS POST exfiltration goes to the attacker's own drop server, not to the cloud the NAS backs up to
# ---------------------------------------------------------------------------------------------------
_ADDR = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


class _FakeProc:
    def wait(self, timeout=None):
        return 0


class _FakeLab:
    """Records what start_services/start_benign/run_step would start, in which namespace."""

    def __init__(self, ips: dict[str, str], workdir: Path):
        from iotwatch.captures.lab.net import Host, mac_for

        self.hosts = {r: Host(r, "ns-" + r, ip, mac_for(ip)) for r, ip in ips.items()}
        self.workdir = workdir
        self.spawned: list[tuple[str, list[str], str]] = []

    def spawn(self, role, argv, name, stdin=None):
        self.spawned.append((role, [str(a) for a in argv], name))
        return _FakeProc()

    def ctx(self) -> "lab_attacks.LabContext":
        return lab_attacks.LabContext(ips={r: h.ip for r, h in self.hosts.items()},
                                      macs={r: h.mac for r, h in self.hosts.items()}, workdir=self.workdir)


def _https_posts(ctx, seed):
    steps = lab_attacks.plan("exfiltration", ctx, random.Random(seed))
    return [s for s in steps if any(a.startswith("https://") for c in s.commands for a in c)]


def test_the_drop_server_is_served_alone_and_no_benign_device_talks_to_it(tmp_path):
    import ipaddress

    from iotwatch.captures.lab.net import CLOUD_NET

    ips = lab.topology(90)
    drop = ips["drop"]
    assert drop == lab.DROP_IP and drop != ips["cloud"]
    assert ipaddress.ip_address(drop) in CLOUD_NET          # outside the LAN, on-link like the cloud
    fake = _FakeLab(ips, tmp_path)
    until = time.time() + 60
    lab.start_services(fake, tmp_path, until)
    lab.start_benign(fake, 90, until, max_actions=100)
    # the drop server is the only process that names the drop address: HTTPS with its own certificate
    naming = [(role, argv) for role, argv, _ in fake.spawned if drop in _ADDR.findall(" ".join(argv))]
    assert [role for role, _ in naming] == ["drop"]
    serve = " ".join(naming[0][1])
    assert "--https 443" in serve and str(tmp_path / "drop.crt") in serve and "cloud.crt" not in serve
    # peers of the benign devices: every address their drivers name (the cloud is one: NAS backups)
    drivers = [" ".join(argv) for _, argv, name in fake.spawned if name.startswith("drive-")]
    assert len(drivers) >= 6
    assert ips["cloud"] in {a for t in drivers for a in _ADDR.findall(t)}
    assert any("--limit-rate 2M --data-binary" in t and "/upload" in t for t in drivers)  # the backups stay


@pytest.mark.parametrize("seed", [90, 11, 12, 15])
def test_https_post_exfiltration_goes_to_the_drop_server(tmp_path, seed):
    ips = lab.topology(seed)
    posts = _https_posts(_FakeLab(ips, tmp_path).ctx(), seed)
    assert len(posts) == 1 and posts[0].label == "exfiltration"
    cmd = posts[0].commands[0]
    assert cmd[0] == "curl" and "--data-binary" in cmd
    assert [a for a in cmd if a.startswith("https://")] == [f"https://{ips['drop']}/upload"]
    assert set(_ADDR.findall(" ".join(cmd))) == {ips["drop"]}


def test_drop_server_exfiltration_episode_names_the_drop_and_labels_only_its_frames(tmp_path):
    """run_step's window for the POST step -> a .lab.json episode whose victim is the drop server; its
    frames are exfiltration, the NAS's backup to the cloud in the same seconds stays normal."""
    from incident_truth import load_episodes

    ips = lab.topology(90)
    fake = _FakeLab(ips, tmp_path)
    step = _https_posts(fake.ctx(), 90)[0]
    atk, drop, nas, cloud = (fake.hosts[r] for r in ("attacker", "drop", "nas", "cloud"))
    w = lab.run_step(fake, step, 5.0, atk.mac, atk.ip, 0)
    assert [role for role, _, _ in fake.spawned] == ["attacker"]
    cap = tmp_path / "lab-exfiltration-seed90.pcapng"
    summary = {"hosts": {r: {"ip": h.ip, "mac": h.mac} for r, h in fake.hosts.items()}, "windows": [w.to_json()]}
    Path(str(cap) + ".lab.json").write_text(json.dumps(summary))
    eps = load_episodes(cap)
    assert len(eps) == 1 and eps[0]["class"] == "exfiltration" and eps[0]["victims"] == [drop.ip]
    assert eps[0]["attacker"]["ip"] == atk.ip
    t = (w.start + w.end) / 2
    pkts = [P(1, t, eth_src=atk.mac, eth_dst=drop.mac, ip_src=atk.ip, ip_dst=drop.ip),     # the POST
            P(2, t, eth_src=drop.mac, eth_dst=atk.mac, ip_src=drop.ip, ip_dst=atk.ip),     # the drop's ACKs
            P(3, t, eth_src=nas.mac, eth_dst=cloud.mac, ip_src=nas.ip, ip_dst=cloud.ip),   # a backup meanwhile
            P(4, t, eth_src=cloud.mac, eth_dst=nas.mac, ip_src=cloud.ip, ip_dst=nas.ip)]
    got = [lab_ for _, lab_ in label_packets(pkts, [w], [h.ip for h in fake.hosts.values()])]
    assert got == ["exfiltration", "exfiltration", "normal", "normal"]
