"""Broken, fuzzed and unusual captures (issue 7): each run ends with a complete report (saying what was
cut) or a one-line exit-2 error; never a traceback, never a hang (pytest-timeout guards every test)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iotwatch.main import main

from pcaptools import (LINKTYPE_LINUX_SLL, LINKTYPE_RAW, MAC_A, MAC_B, ether, ipv4, ipv6, pcap, pcapng, sll,
                       udp, udp_frames)

DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
N_FUZZ = 50


def tshark_frames(path: Path) -> int:
    """Frames tshark itself can read from the file (the reference count)."""
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=120)
    return sum(1 for line in out.stdout.splitlines() if line.strip())


def run_cli(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and "Traceback" not in cap.out
    return rc, cap


def headless(path: Path, tmp_path: Path, capsys):
    rep = tmp_path / f"{path.name}.report.json"
    pred = tmp_path / f"{path.name}.pred.csv"
    rc, cap = run_cli(["-r", str(path), "--headless", "--report", str(rep), "--predictions", str(pred),
                       "--force"], capsys)
    report = json.loads(rep.read_text()) if rc == 0 else None
    rows = pred.read_text().splitlines()[1:] if rc == 0 else None
    return rc, cap, report, rows


def assert_one_line_error(cap):
    lines = [line for line in cap.err.splitlines() if line.strip()]
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("iotwatch: error: ")


@pytest.fixture(scope="module")
def base_capture(tmp_path_factory) -> Path:
    """The first 600 frames of the bundled demo: every protocol the simulator writes."""
    out = tmp_path_factory.mktemp("base") / "base.pcapng"
    subprocess.run(["editcap", "-r", str(DEMO), str(out), "1-600"], check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def fuzzed(base_capture, tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("fuzz")
    files = []
    for seed in range(N_FUZZ):
        out = d / f"fuzz{seed:02d}.pcapng"
        # -E: byte error probability; -o 14 keeps Ethernet headers intact in half the files so the
        # corruption lands in IP/TCP/UDP/app layers, where dissectors are most stressed.
        extra = ["-o", "14"] if seed % 2 else []
        subprocess.run(["editcap", "-E", str(0.002 + 0.002 * (seed % 10)), "--seed", str(seed + 1), *extra,
                        str(base_capture), str(out)], check=True, capture_output=True, timeout=60)
        files.append(out)
    return files


@pytest.mark.slow
def test_fuzzed_captures_all_complete_with_every_frame(fuzzed, tmp_path, capsys):
    assert len(fuzzed) >= 50
    for f in fuzzed:
        rc, cap, report, rows = headless(f, tmp_path, capsys)
        assert rc == 0, f"{f.name}: {cap.err}"
        n = tshark_frames(f)
        assert report["packets"] == n, f.name
        assert len(rows) == n, f.name
        assert [int(r.split(",")[0]) for r in rows] == list(range(1, n + 1)), f.name


@pytest.mark.parametrize("cut_back", [1, 7, 33, 200])
def test_file_cut_mid_packet_reports_truncation(base_capture, tmp_path, capsys, cut_back):
    data = base_capture.read_bytes()
    f = tmp_path / f"cut{cut_back}.pcapng"
    f.write_bytes(data[: len(data) - cut_back])
    rc, cap, report, rows = headless(f, tmp_path, capsys)
    assert rc == 0, cap.err
    assert report["packets"] == tshark_frames(f) == len(rows)
    assert report["packets"] > 500
    assert "cut" in report.get("truncated", ""), report
    assert "cut" in cap.out.lower() or "ended early" in cap.out.lower()


def test_file_cut_inside_header_is_input_error(base_capture, tmp_path, capsys):
    f = tmp_path / "header_only.pcapng"
    f.write_bytes(base_capture.read_bytes()[:20])
    rc, cap, _, _ = headless(f, tmp_path, capsys)
    assert rc == 2
    assert_one_line_error(cap)


@pytest.mark.parametrize("name,content", [
    ("empty.pcap", b""),
    ("notes.pcap", b"this is a text file, not a capture\n" * 20),
    ("random.pcapng", bytes((i * 37 + 11) % 256 for i in range(4096))),
    ("html.pcapng", b"<html><body>404</body></html>\n"),
])
def test_non_capture_files_are_input_errors(tmp_path, capsys, name, content):
    f = tmp_path / name
    f.write_bytes(content)
    rc, cap, _, _ = headless(f, tmp_path, capsys)
    assert rc == 2
    assert_one_line_error(cap)
    assert name in cap.err


def test_missing_and_directory_inputs(tmp_path, capsys):
    for target in (tmp_path / "nope.pcap", tmp_path):
        rc, cap, _, _ = headless(Path(target), tmp_path, capsys)
        assert rc == 2
        assert_one_line_error(cap)


def _v6(i: int) -> bytes:
    return bytes.fromhex("20010db8000000000000000000000000")[:15] + bytes([i])


def _fragments() -> list[bytes]:
    payload = udp(5000, 5683, bytes(range(256)) * 8)  # 2056 bytes -> 2 fragments + tail
    frags, off = [], 0
    while off < len(payload):
        chunk = payload[off: off + 1480]
        more = 0x2000 if off + len(chunk) < len(payload) else 0
        frags.append(ether(MAC_B, MAC_A, 0x0800, ipv4("192.0.2.10", "192.0.2.20", 17, chunk, ident=77,
                                                       flags_frag=more | (off // 8))))
        off += len(chunk)
    return frags


ODD = {
    "linux_cooked.pcap": lambda: pcap([sll(0x0800, ipv4("192.0.2.1", "192.0.2.2", 17, udp(1000 + i, 53, b"x" * 30)))
                                       for i in range(12)], LINKTYPE_LINUX_SLL),
    "raw_ip.pcap": lambda: pcap([ipv4("192.0.2.1", "192.0.2.2", 17, udp(1000 + i, 123, b"y" * 48))
                                 for i in range(12)], LINKTYPE_RAW),
    "ipv6_only.pcapng": lambda: pcapng([ether(MAC_B, MAC_A, 0x86DD, ipv6(_v6(1), _v6(2), 17, udp(1000 + i, 5683, b"z" * 20)))
                                        for i in range(12)]),
    "vlan.pcap": lambda: pcap(udp_frames(12, vlan=42)),
    "fragments.pcap": lambda: pcap(_fragments() * 4),
    "jumbo.pcap": lambda: pcap(udp_frames(6, size=8900)),
    "unknown_blocks.pcapng": lambda: pcapng(udp_frames(12), extra_blocks=[(0x0BADBEEF, b"unknown block body"),
                                                                         (0x00000BAD, b"\0\0\x7e\x6dcustom")]),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_unusual_link_types_and_layouts(tmp_path, capsys, name):
    f = tmp_path / name
    f.write_bytes(ODD[name]())
    rc, cap, report, rows = headless(f, tmp_path, capsys)
    assert rc == 0, cap.err
    n = tshark_frames(f)
    assert n >= 6
    assert report["packets"] == n == len(rows)
    assert sum(report["class_counts"].values()) == n


def test_subprocess_bad_file_has_no_traceback(tmp_path):
    f = tmp_path / "bad.pcap"
    f.write_text("definitely not pcap")
    out = subprocess.run([sys.executable, "-m", "iotwatch", "-r", str(f), "--headless"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("iotwatch: error:")
