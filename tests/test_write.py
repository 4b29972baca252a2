"""-w FILE (dumpcap's -b ring buffer), -w -, --write-flagged and the live frames API (captures/keep.py).

Every file is read back by Wireshark's own tools (capinfos, tshark), never by our reader. Live tests
capture on ``lo`` with a BPF on one free UDP port and send a bounded number of datagrams to
127.0.0.1 only; deadlines are hang guards, never timing assertions.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcaptools import ether, ipv4, pcap, udp

DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
RING_NAME = re.compile(r"^(?P<stem>.+)_(?P<n>\d{5})_(?P<t>\d{14})(?P<ext>\.pcapng)?$")
GUARD = 60.0


def iotwatch(*args, **kw):
    return subprocess.run([sys.executable, "-m", "iotwatch", *map(str, args)], capture_output=True,
                          timeout=300, **kw)


def frames_in(path) -> int:
    """Packets in a capture file, counted by capinfos (fails on a cut or damaged file)."""
    r = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "cut short" not in r.stderr, (path, r.stderr)
    m = re.search(r"Number of packets:\s+(\d+)", r.stdout)
    assert m, r.stdout
    return int(m.group(1))


def tshark_fields(path, *fields, read_filter=None) -> list[list[str]]:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=/t"]
    for f in fields:
        argv += ["-e", f]
    if read_filter:
        argv += ["-Y", read_filter]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0 and "cut short" not in r.stderr, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def ring_files(folder: Path, stem: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (m := RING_NAME.match(p.name)) and m["stem"] == stem)


# ------------------------------------------------------------------------------ replay -w
def test_replay_w_copies_every_frame_of_the_demo(tmp_path):
    out, rep = tmp_path / "all.pcapng", tmp_path / "r.json"
    r = iotwatch("-r", DEMO, "--headless", "-w", out, "--report", rep)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    assert frames_in(out) == report["packets"] == report["capture_file"]["packets"] == frames_in(DEMO)
    # the demo is pcapng already: the copy is the same blocks in the same order
    assert out.read_bytes() == DEMO.read_bytes()


def test_replay_w_with_count_keeps_only_what_was_read(tmp_path):
    out = tmp_path / "first.pcapng"
    r = iotwatch("-r", DEMO, "--headless", "-c", "123", "-w", out)
    assert r.returncode == 0, r.stderr
    assert frames_in(out) == 123
    ours = tshark_fields(out, "frame.time_epoch", "frame.len")
    theirs = tshark_fields(DEMO, "frame.time_epoch", "frame.len", read_filter="frame.number <= 123")
    assert ours == theirs


def test_replay_w_converts_pcap_to_pcapng_with_the_same_packets(tmp_path):
    frames = [ether(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000 + i, 53, b"q" * i)))
              for i in range(50)]
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap(frames))
    out = tmp_path / "out.pcapng"
    r = iotwatch("-r", src, "--headless", "-w", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"   # pcapng, like tshark -w
    fields = ("frame.time_epoch", "frame.len", "udp.srcport", "eth.src")
    assert tshark_fields(out, *fields) == tshark_fields(src, *fields)
    assert frames_in(out) == 50


@pytest.mark.parametrize("opts, expect_files", [(("packets:1000",), 6), (("packets:1000", "files:3"), 3)])
def test_replay_ring_by_packets_names_and_counts(tmp_path, opts, expect_files):
    base, rep = tmp_path / "ring.pcapng", tmp_path / "r.json"
    b = [a for o in opts for a in ("-b", o)]
    r = iotwatch("-r", DEMO, "--headless", "-w", base, *b, "--report", rep)
    assert r.returncode == 0, r.stderr
    assert not base.exists()             # with -b only the numbered files exist, like dumpcap
    files = ring_files(tmp_path, "ring")
    assert len(files) == expect_files, files
    numbers = [int(RING_NAME.match(p.name)["n"]) for p in files]
    assert numbers == list(range(7 - expect_files, 7))   # the newest kept; numbering never restarts
    counts = [frames_in(p) for p in files]
    total = frames_in(DEMO)
    assert counts == [1000] * (expect_files - 1) + [total - 5000]
    report = json.loads(rep.read_text())
    cf = report["capture_file"]
    assert cf["packets"] == total and cf["files_written"] == 6 and cf["files_deleted"] == 6 - expect_files
    assert [Path(p).name for p in cf["files"]] == [p.name for p in files]
    # the frames add up: the last kept files hold the last frames of the capture, in order
    kept_times = [row for p in files for row in tshark_fields(p, "frame.time_epoch")]
    first_kept = total - sum(counts) + 1
    assert kept_times == tshark_fields(DEMO, "frame.time_epoch", read_filter=f"frame.number >= {first_kept}")


def test_replay_ring_by_filesize_switches_after_the_size(tmp_path):
    base = tmp_path / "cap"   # no extension: names are cap_00001_<time>, like dumpcap
    r = iotwatch("-r", DEMO, "--headless", "-w", base, "-b", "filesize:300")
    assert r.returncode == 0, r.stderr
    files = ring_files(tmp_path, "cap")
    assert len(files) >= 5
    for p in files:
        assert RING_NAME.match(p.name)["ext"] is None
    sizes = [p.stat().st_size for p in files]
    biggest_block = 70_000   # no demo packet is anywhere near this
    assert all(300_000 <= s < 300_000 + biggest_block for s in sizes[:-1]), sizes
    assert 0 < sizes[-1] < 300_000 + biggest_block
    assert sum(frames_in(p) for p in files) == frames_in(DEMO)


def test_replay_ring_by_duration_uses_capture_time(tmp_path):
    r = iotwatch("-r", DEMO, "--headless", "-w", tmp_path / "d.pcapng", "-b", "duration:20")
    assert r.returncode == 0, r.stderr
    files = ring_files(tmp_path, "d")
    assert len(files) >= 3
    starts = []
    for p in files:
        t = [float(row[0]) for row in tshark_fields(p, "frame.time_epoch")]
        assert t and max(t) - t[0] < 20, (p, t[0], max(t))
        starts.append(t[0])
    # each next file starts 20 s or more after the previous one started
    assert all(b - a >= 20 for a, b in zip(starts, starts[1:])), starts
    assert sum(frames_in(p) for p in files) == frames_in(DEMO)


def test_w_dash_writes_pcapng_to_stdout_and_the_summary_to_stderr(tmp_path):
    r = iotwatch("-r", DEMO, "--headless", "-c", "300", "-w", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout[:4] == b"\x0a\x0d\x0d\x0a"
    assert b"300 packets" in r.stderr
    out = tmp_path / "piped.pcapng"
    out.write_bytes(r.stdout)
    assert frames_in(out) == 300


# ------------------------------------------------------------------------------ --write-flagged
def test_write_flagged_demo_holds_exactly_the_flagged_frames_with_comments(tmp_path):
    flag, rep, pred = tmp_path / "flag.pcapng", tmp_path / "r.json", tmp_path / "p.csv"
    r = iotwatch("-r", DEMO, "--headless", "--write-flagged", flag, "--report", rep, "--predictions", pred)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    assert report["anomalies"] > 100
    assert frames_in(flag) == report["anomalies"] == report["flagged_file"]["packets"]
    with open(pred, newline="") as fh:
        rows = {int(row["frame_number"]): row for row in csv.DictReader(fh)}
    incidents = {inc["id"]: inc for inc in report["incidents"]}
    seen, with_incident = [], 0
    for t, comment in tshark_fields(flag, "frame.time_epoch", "frame.comment"):
        m = re.search(r"iotwatch: (\w+) confidence=([\d.]+)(?: incident=(\d+))? frame=(\d+)", comment)
        assert m, comment
        cls, conf, inc, frame = m[1], float(m[2]), m[3], int(m[4])
        row = rows[frame]
        assert row["predicted"] == cls and abs(float(row["confidence"]) - conf) < 1e-3
        assert cls != "normal"
        if inc:
            with_incident += 1
            i = incidents[int(inc)]
            assert i["class"] == cls and i["first_frame"] <= frame <= i["last_frame"]
        seen.append((frame, t))
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)   # frame order
    assert with_incident == report["flagged_file"]["with_incident"] > 0
    # the packets themselves are the source's: same timestamps as those frames of the demo
    frames = ",".join(str(f) for f, _ in seen[:200])
    assert [t for _, t in seen[:200]] == [row[0] for row in tshark_fields(DEMO, "frame.time_epoch",
                                                                           read_filter=f"frame.number in {{{frames}}}")]
    # the ground-truth comments of the demo are kept next to ours
    assert any("label=" in c for (c,) in tshark_fields(flag, "frame.comment"))


def test_write_flagged_in_a_tui_run(tmp_path):
    """The TUI's run (CaptureSession = MonitorRun) writes the flagged file too."""
    from iotwatch.detector.classifier import PacketClassifier
    from iotwatch.detector.config import OutputConfig, RunConfig, SourceConfig
    from iotwatch.tui.session import CaptureSession

    flag = tmp_path / "f.pcapng"
    cfg = RunConfig(source=SourceConfig(read=str(DEMO)), outputs=OutputConfig(write_flagged=str(flag)), speed="max")
    session = CaptureSession(cfg, PacketClassifier.load(None), None)
    report = session.run()
    assert frames_in(flag) == report["anomalies"] > 0


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("flag", ["-w", "--write-flagged"])
def test_existing_file_is_refused_without_force(tmp_path, flag):
    out = tmp_path / "x.pcapng"
    out.write_bytes(b"precious")
    r = iotwatch("-r", DEMO, "--headless", "-c", "10", flag, out)
    assert r.returncode == 2 and b"already exists" in r.stderr and r.stderr.count(b"\n") == 1, r.stderr
    assert out.read_bytes() == b"precious"
    rep = tmp_path / "r.json"
    r = iotwatch("-r", DEMO, "--headless", "-c", "300", flag, out, "--force", "--report", rep)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    assert frames_in(out) == (300 if flag == "-w" else report["anomalies"])


@pytest.mark.parametrize("kind", ["fifo", "chardev"])
@pytest.mark.parametrize("flag", ["-w", "--write-flagged"])
def test_non_regular_file_is_never_replaced(tmp_path, kind, flag):
    node = tmp_path / "node"
    if kind == "fifo":
        os.mkfifo(node)
    else:
        try:   # a fake device node in tmp (as root), never /dev/null itself
            os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("mknod needs root")
    before = os.lstat(node)
    r = iotwatch("-r", DEMO, "--headless", "-c", "10", flag, node, "--force")
    assert r.returncode == 2 and b"refusing to replace" in r.stderr, r.stderr
    after = os.lstat(node)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino


@pytest.mark.parametrize("argv, words", [
    (["-b", "packets:10"], b"-b (ring buffer) needs -w"),
    (["-w", "{tmp}/a.pcapng", "-b", "files:3"], b"needs a condition"),
    (["-w", "{tmp}/a.pcapng", "-b", "bogus:3"], b"expected filesize"),
    (["-w", "{tmp}/a.pcapng", "-b", "filesize:-1"], b"positive"),
    (["-w", "-", "-b", "packets:5"], b"needs a file name"),
    (["-w", "-", "--report", "-"], b"standard output"),
    (["-w", "{tmp}/nofolder/a.pcapng", "-b", "packets:5"], b"does not exist"),
])
def test_bad_write_options_are_one_line_usage_errors(tmp_path, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    r = iotwatch("-r", DEMO, "--headless", *argv)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count(b"\n") == 1, r.stderr
    assert list(tmp_path.iterdir()) == []   # nothing left behind


def test_w_from_stdin_is_refused(tmp_path):
    with open(DEMO, "rb") as fh:
        r = iotwatch("-r", "-", "--headless", "-w", tmp_path / "x.pcapng", stdin=fh)
    assert r.returncode == 2 and b"standard input" in r.stderr, r.stderr


# ------------------------------------------------------------------------------ live
def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_udp(port: int, n: int, pause: float = 0.0, stop=None) -> int:
    """At most ``n`` datagrams to 127.0.0.1 (payload = their index); stops early when ``stop()``."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            if stop is not None and stop():
                break
            s.sendto(b"datagram %06d " % i + b"." * 200, ("127.0.0.1", port))
            sent += 1
            if pause:
                time.sleep(pause)
    return sent


@pytest.fixture
def lo():
    from iotwatch.captures.tshark.preflight import capture_permission

    ok, why = capture_permission("lo", "/usr/bin/dumpcap")
    if not ok:
        pytest.skip(f"no capture permission on lo: {why}")
    return "lo"


def _start_live(tmp_path, port, *extra):
    p = subprocess.Popen([sys.executable, "-m", "iotwatch", "-i", "lo", "-f", f"udp port {port}", "--headless",
                          "--report", str(tmp_path / "r.json"), *map(str, extra)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert "capturing on" in line, line + p.stderr.read()
    return p


@pytest.mark.live
def test_live_ring_rotation_on_lo_frames_add_up(tmp_path, lo):
    port, n = free_udp_port(), 730
    p = _start_live(tmp_path, port, "-w", tmp_path / "live.pcapng", "-b", "packets:100", "-b", "files:4",
                    "--write-flagged", tmp_path / "flag.pcapng", "-a", "packets:730")
    try:
        assert send_udp(port, n) == n
        out, err = p.communicate(timeout=GUARD)
    finally:
        p.kill()
    assert p.returncode == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["packets"] == n
    files = ring_files(tmp_path, "live")
    counts = [frames_in(f) for f in files]
    assert counts == [100, 100, 100, 30], counts          # 8 files written, the newest 4 kept
    cf = report["capture_file"]
    assert cf["files_written"] == 8 and cf["files_deleted"] == 4 and cf["packets"] == n
    # the kept files hold the last 330 datagrams, in order, none twice
    payloads = [row[0] for f in files for row in tshark_fields(f, "data.data")]
    assert [int(bytes.fromhex(x)[9:15]) for x in payloads] == list(range(400, n))
    assert frames_in(tmp_path / "flag.pcapng") == report["anomalies"] == report["flagged_file"]["packets"]


@pytest.mark.live
def test_ctrl_c_leaves_complete_ring_files(tmp_path, lo):
    port = free_udp_port()
    p = _start_live(tmp_path, port, "-w", tmp_path / "cc.pcapng", "-b", "filesize:20")
    deadline = time.monotonic() + 10
    try:
        # bounded: at most 5000 datagrams, stop sending once the ring has a few files
        sent = send_udp(port, 5000, pause=0.0005,
                        stop=lambda: len(ring_files(tmp_path, "cc")) >= 4 or time.monotonic() > deadline)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=GUARD)
    finally:
        p.kill()
    assert p.returncode == 0 and "Traceback" not in err, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True
    files = ring_files(tmp_path, "cc")
    assert len(files) >= 4
    counts = [frames_in(f) for f in files]                # capinfos: none cut short
    # every packet dumpcap captured before the stop is in the files and was classified (what was still
    # in the kernel's buffer when dumpcap stopped is not captured, by dumpcap or by us)
    assert sum(counts) == report["capture_file"]["packets"] == report["packets"] == report["capture_received"]
    assert 0 < report["packets"] <= sent
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.live
def test_kept_frames_api_serves_live_frames_for_dissection(tmp_path, lo):
    """The API the TUI's live detail view uses: which file holds global frame n, and tshark finds it there."""
    from iotwatch.captures.keep import CaptureKeeper, KeptFile
    from iotwatch.captures.sources import open_source

    port = free_udp_port()
    keeper = CaptureKeeper.private(files=2, kb=10)     # ~45 datagrams a file, only 2 files kept
    folder = keeper.private_dir
    src = open_source(iface="lo", bpf=f"udp port {port}", keeper=keeper)
    got = 0
    deadline = time.monotonic() + GUARD
    try:
        sent = False
        for b in src.batches(max_rows=64, max_wait=0.1):
            got += len(b)
            if not sent and src.capturing:
                time.sleep(0.2)
                send_udp(port, 300)
                sent = True
            if got >= 300:
                break
            assert time.monotonic() < deadline, got
        kept = src.kept_frames()
    finally:
        src.close()
        keeper.close()
    assert all(isinstance(k, KeptFile) for k in kept) and len(kept) == 2
    assert kept[-1].last_frame == 300
    assert kept[0].last_frame + 1 == kept[1].first_frame        # contiguous
    for path, first, last in kept:
        assert Path(path).parent == Path(folder)
        assert frames_in(path) == last - first + 1
        for n in (first, last):
            (data,) = tshark_fields(path, "data.data", read_filter=f"frame.number == {n - first + 1}")[0]
            assert int(bytes.fromhex(data)[9:15]) == n - 1          # datagram index = global frame - 1
    keeper.cleanup()
    assert not Path(folder).exists()
