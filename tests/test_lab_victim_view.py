"""bench/lab_victim_view.py: the victim's view of a lab recording's reflection windows."""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

from iotwatch.captures.pcapfile import (enhanced_packet_block, interface_description_block, iter_packets,
                                        section_header_block)

from fakes import load_script

ROOT = Path(__file__).resolve().parent.parent


def _module():
    return load_script(ROOT / "bench" / "lab_victim_view.py", "lab_victim_view")


def _mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def _udp(src_mac, dst_mac, src_ip, dst_ip, sport, dport, payload=b"x" * 20):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(map(int, src_ip.split("."))), bytes(map(int, dst_ip.split("."))))
    return _mac(dst_mac) + _mac(src_mac) + b"\x08\x00" + ip + udp


ATT, VIC, REF, OTHER = "02:77:00:00:00:4d", "02:77:00:00:00:0d", "02:77:00:00:00:01", "02:77:00:00:00:0b"


def test_forged_requests_leave_the_rest_keeps_its_labels(tmp_path):
    t0 = 1_796_497_000.0
    frames = [  # (time, frame, label)
        (t0 + 1, _udp(OTHER, REF, "10.77.0.11", "10.77.0.1", 40000, 53), "normal"),             # before the span
        (t0 + 95, _udp(OTHER, REF, "10.77.0.11", "10.77.0.1", 40001, 53), "normal"),            # context
        (t0 + 100, _udp(ATT, REF, "10.77.0.13", "10.77.0.1", 24897, 53), "dos"),                # forged request
        (t0 + 100.001, _udp(REF, VIC, "10.77.0.1", "10.77.0.13", 53, 24897, b"y" * 400), "dos"),  # the answer
        (t0 + 100.002, _udp(ATT, REF, "10.77.0.66", "10.77.0.1", 24897, 53), "normal"),         # attacker as itself
        (t0 + 101, _udp(ATT, REF, "10.77.0.13", "10.77.0.1", 24897, 123), "dos"),               # forged (NTP)
        (t0 + 101.001, _udp(REF, VIC, "10.77.0.1", "10.77.0.13", 123, 24897, b"z" * 400), "dos"),
        (t0 + 200, _udp(OTHER, REF, "10.77.0.11", "10.77.0.1", 40002, 53), "normal"),           # after the span
    ]
    cap = tmp_path / "lab-all-seed1.pcapng"
    cap.write_bytes(section_header_block("test") + interface_description_block()
                    + b"".join(enhanced_packet_block(int(t * 1e6), f) for t, f, _ in frames))
    with open(f"{cap}.labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("frame_number", "label")] + [(i + 1, lab) for i, (_, _, lab) in enumerate(frames)])
    win = dict(label="dos", start=t0 + 99.9, end=t0 + 101.5, attacker_mac=ATT, attacker_ip="10.77.0.66",
               victim_ip="10.77.0.13", reflectors=["10.77.0.1:53", "10.77.0.1:123"], spoof_port=24897,
               step="reflection via dns/ntp at nas")
    other = dict(label="recon", start=t0 + 150, end=t0 + 160, attacker_mac=ATT, attacker_ip="10.77.0.66")
    Path(f"{cap}.lab.json").write_text(json.dumps({"windows": [other, win]}))
    plain = tmp_path / "lab-benign-seed2.pcapng"                       # no reflection window: skipped
    plain.write_bytes(cap.read_bytes())
    Path(f"{plain}.labels.csv").write_text(Path(f"{cap}.labels.csv").read_text())
    Path(f"{plain}.lab.json").write_text(json.dumps({"windows": [other]}))

    out = tmp_path / "out"
    assert _module().main([str(tmp_path), str(out), "--before", "10", "--after", "5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lab-all-seed1.victim.pcapng", "lab-all-seed1.victim.pcapng.labels.csv"]
    got = [f for _, f, _ in iter_packets(out / "lab-all-seed1.victim.pcapng")]
    assert got == [frames[i][1] for i in (1, 3, 4, 6)]
    with open(out / "lab-all-seed1.victim.pcapng.labels.csv", newline="") as fh:
        rows = [(int(r["frame_number"]), r["label"]) for r in csv.DictReader(fh)]
    assert rows == [(1, "normal"), (2, "dos"), (3, "normal"), (4, "dos")]
    first = (out / "lab-all-seed1.victim.pcapng").read_bytes()
    _module().main([str(tmp_path), str(out), "--before", "10", "--after", "5"])
    assert (out / "lab-all-seed1.victim.pcapng").read_bytes() == first        # deterministic
