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
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes import require
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


@pytest.mark.slow
def test_replay_w_with_count_keeps_only_what_was_read(tmp_path):
    out = tmp_path / "first.pcapng"
    r = iotwatch("-r", DEMO, "--headless", "-c", "123", "-w", out)
    assert r.returncode == 0, r.stderr
    assert frames_in(out) == 123
    ours = tshark_fields(out, "frame.time_epoch", "frame.len")
    theirs = tshark_fields(DEMO, "frame.time_epoch", "frame.len", read_filter="frame.number <= 123")
    assert ours == theirs


@pytest.mark.slow
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_replay_w_converts_pcap_to_pcapng_with_the_same_packets(tmp_path, nanoseconds):
    frames = [ether(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000 + i, 53, b"q" * i)))
              for i in range(50)]
    src = tmp_path / "in.pcap"
    if nanoseconds:   # big-endian, nanosecond magic, odd nanoseconds
        body = [struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
        body += [struct.pack(">IIII", 1_700_000_000 + i, 123_456_789 + i, len(f), len(f)) + f for i, f in enumerate(frames)]
        src.write_bytes(b"".join(body))
    else:
        src.write_bytes(pcap(frames))
    out = tmp_path / "out.pcapng"
    r = iotwatch("-r", src, "--headless", "-w", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"   # pcapng, like tshark -w
    fields = ("frame.time_epoch", "frame.len", "udp.srcport", "eth.src")
    assert tshark_fields(out, *fields) == tshark_fields(src, *fields)
    assert frames_in(out) == 50


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
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
            require(False, "root (mknod of a fake device node)")
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
    (["-w", "{tmp}/", "-b", "packets:5"], b"names a folder"),
    (["-w", "{tmp}/", ], b"names a folder"),
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


def _start_live(tmp_path, port, *extra):
    bpf = ["-f", f"udp port {port}"] if port else []
    p = subprocess.Popen([sys.executable, "-m", "iotwatch", "-i", "lo", *bpf, "--headless",
                          "--report", str(tmp_path / "r.json"), *map(str, extra)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert "capturing on" in line, line + p.stderr.read()
    return p


@pytest.mark.slow
@pytest.mark.live
def test_live_ring_rotation_on_lo_frames_add_up(tmp_path, live_lo):
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


@pytest.mark.slow
@pytest.mark.live
def test_ctrl_c_leaves_complete_ring_files(tmp_path, live_lo):
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


@pytest.mark.slow
@pytest.mark.live
def test_kept_frames_api_serves_live_frames_for_dissection(tmp_path, live_lo):
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


@pytest.mark.slow
@pytest.mark.live
def test_live_write_flagged_from_the_tee_on_a_loopback_scan(tmp_path, live_lo):
    """Bounded TCP connect scan of 600 closed ports on 127.0.0.1: the flagged file holds exactly the
    packets the report counts as anomalous, taken from the live tee, commented."""
    p = _start_live(tmp_path, 0, "-f", "tcp portrange 41000-41599", "-w", tmp_path / "all.pcapng",
                    "--write-flagged", tmp_path / "flag.pcapng", "-a", "packets:1200")
    try:
        for port in range(41000, 41600):
            with socket.socket() as s:
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
        out, err = p.communicate(timeout=GUARD)
    finally:
        p.kill()
    assert p.returncode == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["packets"] == 1200 == frames_in(tmp_path / "all.pcapng")
    assert report["anomalies"] > 0, "the bundled model no longer flags a loopback port scan"
    assert frames_in(tmp_path / "flag.pcapng") == report["anomalies"] == report["flagged_file"]["packets"]
    assert "missing" not in report["flagged_file"]
    comments = [c for (c,) in tshark_fields(tmp_path / "flag.pcapng", "frame.comment")]
    assert all(re.match(r"iotwatch: \w+ confidence=[\d.]+( incident=\d+)? frame=\d+$", c) for c in comments)
    # the flagged packets are those frames of the full capture, byte for byte
    frames = [int(c.rsplit("frame=", 1)[1]) for c in comments]
    ours = [row[0] for row in tshark_fields(tmp_path / "flag.pcapng", "frame.time_epoch")]
    wanted = ",".join(map(str, frames[:300]))
    theirs = [row[0] for row in tshark_fields(tmp_path / "all.pcapng", "frame.time_epoch",
                                              read_filter=f"frame.number in {{{wanted}}}")]
    assert ours[:300] == theirs


@pytest.mark.live
def test_live_tui_run_without_w_keeps_a_private_bounded_ring(live_lo):
    """What the TUI's live detail view reads: MonitorRun (not headless, no -w) keeps a private ring."""
    import threading

    from iotwatch.detector.classifier import PacketClassifier
    from iotwatch.detector.config import RunConfig, SourceConfig
    from iotwatch.detector.run import MonitorRun

    port = free_udp_port()
    cfg = RunConfig(source=SourceConfig(iface="lo", bpf=f"udp port {port}"), headless=False)
    run = MonitorRun(cfg, PacketClassifier.load(None), None, max_wait=0.1)
    sender = threading.Thread(target=send_udp, args=(port, 300), daemon=True)
    deadline = time.monotonic() + GUARD
    report = run.run(capturing=sender.start,
                     cancelled=lambda: run.totals.packets >= 300 or time.monotonic() > deadline)
    sender.join(5)
    folder = Path(run.keeper.private_dir)
    kept = run.source.kept_frames()
    assert report["packets"] == 300 and "capture_file" not in report   # not the user's file
    assert kept and kept[0].first_frame == 1 and kept[-1].last_frame == 300
    assert all(Path(k.path).parent == folder for k in kept)
    assert sum(frames_in(k.path) for k in kept) == 300
    run.keeper.cleanup()
    assert not folder.exists()


def test_private_ring_is_removed_at_exit(tmp_path):
    code = ("from iotwatch.captures.keep import CaptureKeeper\n"
            "k = CaptureKeeper.private()\n"
            "open(k.private_dir + '/x', 'w').write('x')\n"
            "print(k.private_dir)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip())
    assert folder.name.startswith("iotwatch-live-") and not folder.exists()


# ------------------------------------------------------------------------------ pcapng corner cases
def _blk(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def odd_pcapng() -> bytes:
    """Two sections: little-endian (ns interface, an interface described after packets, a packet that
    already has a comment) then big-endian (a simple packet block, then an enhanced one)."""
    frames = [ether(b"\x02" * 6, b"\x04" * 6, 0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(5000 + i, 53, b"x" * i)))
              for i in range(8)]
    out = []
    for order in ("<", ">"):
        out.append(_blk(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        tsres = _opt(order, 9, b"\x09") + _opt(order, 0, b"")
        out.append(_blk(order, 1, struct.pack(order + "HHI", 1, 0, 65535) + tsres))
    le, be = out[:2], out[2:]

    def epb(order, iface, t, f, comment=None):
        opts = (_opt(order, 1, comment.encode()) + _opt(order, 0, b"")) if comment else b""
        pad = b"\0" * (-len(f) % 4)
        return _blk(order, 6, struct.pack(order + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(f), len(f)) + f + pad + opts)

    t0 = 1_700_000_000_000_000_000
    le += [epb("<", 0, t0, frames[0]), epb("<", 0, t0 + 10**9, frames[1], "label=normal"),
           _blk("<", 1, struct.pack("<HHI", 1, 0, 65535)),     # a second interface (µs), described late
           epb("<", 1, (t0 // 1000) + 2 * 10**6, frames[2]), epb("<", 0, t0 + 3 * 10**9, frames[3])]
    spb = _blk(">", 3, struct.pack(">I", len(frames[4])) + frames[4])
    be += [spb, epb(">", 0, t0 + 5 * 10**9, frames[5]), epb(">", 0, t0 + 6 * 10**9, frames[6])]
    return b"".join(le + be)


@pytest.mark.slow
def test_multi_section_big_endian_file_copies_and_comments(tmp_path):
    from iotwatch.captures.keep import FileFrames, PcapngRing

    src = tmp_path / "odd.pcapng"
    src.write_bytes(odd_pcapng())
    fields = ("frame.time_epoch", "frame.len", "frame.interface_id", "udp.srcport")
    original = tshark_fields(src, *fields)
    assert len(original) == 7
    # -w on a replay: the same packets, same interfaces and times
    r = iotwatch("-r", src, "--headless", "-w", tmp_path / "copy.pcapng")
    assert r.returncode == 0, r.stderr
    assert tshark_fields(tmp_path / "copy.pcapng", *fields) == original
    # a ring of 2-packet files: each starts with its section's header (the late interface included)
    r = iotwatch("-r", src, "--headless", "-w", tmp_path / "r.pcapng", "-b", "packets:2")
    assert r.returncode == 0, r.stderr
    files = ring_files(tmp_path, "r")
    assert [frames_in(p) for p in files] == [2, 2, 2, 1]
    assert [row for p in files for row in tshark_fields(p, *fields)] == original
    # comments on every kind of packet block, next to an existing one
    frames = FileFrames(str(src))
    got = frames.take(range(1, 8))
    frames.close()
    ring = PcapngRing(str(tmp_path / "c.pcapng"), None)
    for f in got:
        assert ring.packet(f, f"iotwatch: test frame={f.number}")
    ring.close()
    comments = tshark_fields(tmp_path / "c.pcapng", "frame.comment", "udp.srcport")
    assert [c for c, _ in comments] == [("label=normal," if n == 2 else "") + f"iotwatch: test frame={n}"
                                        for n in range(1, 8)]
    assert [p for _, p in comments] == [row[3] for row in original]


@pytest.mark.slow
def test_w_dash_reader_going_away_ends_quietly(tmp_path):
    """tshark -w - | head: a closed standard output is not an error (exit 0, no traceback); the
    report says where the pcapng stream stopped."""
    rep = tmp_path / "r.json"
    p = subprocess.Popen([sys.executable, "-m", "iotwatch", "-r", DEMO, "--headless", "-w", "-", "--report", rep],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = p.stdout.read(1000)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 0, err
    assert head[:4] == b"\x0a\x0d\x0d\x0a" and b"Traceback" not in err and b"Broken pipe" not in err
    report = json.loads(rep.read_text())
    assert report["truncated"].startswith("standard output (-w -) was closed")
    assert report["capture_file"]["packets"] < frames_in(DEMO)


@pytest.mark.slow
def test_append_adds_a_section_to_an_existing_pcapng_and_refuses_other_files(tmp_path):
    out = tmp_path / "a.pcapng"
    assert iotwatch("-r", DEMO, "--headless", "-c", "100", "-w", out).returncode == 0
    r = iotwatch("-r", DEMO, "--headless", "-c", "50", "-w", out, "--append")
    assert r.returncode == 0, r.stderr
    assert frames_in(out) == 150                 # never wiped: the first run's 100 + this run's 50
    times = [row[0] for row in tshark_fields(out, "frame.time_epoch")]
    first = [row[0] for row in tshark_fields(DEMO, "frame.time_epoch", read_filter="frame.number <= 100")]
    assert times == first + first[:50]
    bad = tmp_path / "old.pcap"
    bad.write_bytes(pcap([b"\x00" * 60]))
    r = iotwatch("-r", DEMO, "--headless", "-c", "5", "--write-flagged", bad, "--append")
    assert r.returncode == 2 and b"not a pcapng file" in r.stderr, r.stderr
    assert bad.read_bytes() == pcap([b"\x00" * 60])


@pytest.mark.slow
def test_gzip_input_and_display_filter_copy_what_was_read(tmp_path):
    import gzip

    gz = tmp_path / "demo.pcapng.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes(), 1))
    r = iotwatch("-r", gz, "--headless", "-w", tmp_path / "g.pcapng")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.pcapng").read_bytes() == DEMO.read_bytes()
    rep = tmp_path / "r.json"
    r = iotwatch("-r", DEMO, "--headless", "-Y", "arp", "-w", tmp_path / "arp.pcapng", "--report", rep)
    assert r.returncode == 0, r.stderr
    n = json.loads(rep.read_text())["packets"]
    assert 0 < n == frames_in(tmp_path / "arp.pcapng") == len(tshark_fields(DEMO, "frame.number", read_filter="arp"))
    assert {row[0] for row in tshark_fields(tmp_path / "arp.pcapng", "eth.type")} == {"0x0806"}


def test_ring_files_are_the_stream_cut_at_block_boundaries_whatever_the_feed_sizes(tmp_path):
    """Fed in odd pieces (cut inside blocks too), the ring files are exactly the source's bytes: each
    file = the section header + the next run of blocks, and the runs concatenated = the source after
    its header. A window returns the exact block of any frame asked for."""
    import random

    from iotwatch.captures.keep import CaptureKeeper, PcapngRing, RingOptions

    src = DEMO.read_bytes()
    (shb_len,) = struct.unpack_from("<I", src, 4)
    (idb_len,) = struct.unpack_from("<I", src, shb_len + 4)
    header = src[:shb_len + idb_len]
    assert struct.unpack_from("<I", src, shb_len)[0] == 1           # the demo: SHB + one IDB, then packets
    rnd = random.Random(7)
    keeper = CaptureKeeper(PcapngRing(str(tmp_path / "k.pcapng"), RingOptions(packets=700)), window_bytes=1 << 30)
    pos = 0
    asked, got = [], []
    while pos < len(src):
        step = rnd.choice([1, 7, 100, 1500, 4096, 65536])
        keeper.feed(src[pos:pos + step])
        pos += step
        if keeper.frames and rnd.random() < 0.05:    # the flagged writer asks as classification catches up
            want = sorted(rnd.sample(range(asked[-1] + 1 if asked else 1, keeper.frames + 1),
                                     k=min(3, keeper.frames - (asked[-1] if asked else 0))))
            asked += want
            got += keeper.take(want)
    keeper.close()
    files = ring_files(tmp_path, "k")
    assert [frames_in(p) for p in files] == [700] * 7 + [5411 - 4900]
    body = b""
    for p in files:
        data = p.read_bytes()
        assert data.startswith(header)
        body += data[len(header):]
    assert body == src[len(header):]
    assert keeper.missed == 0 and [f.number for f in got] == asked and len(asked) > 10
    # each block taken is the frame's block in the source: find it by walking the source's block lengths
    offsets, off = [], len(header)
    while off < len(src):
        offsets.append(off)
        off += struct.unpack_from("<I", src, off + 4)[0]
    for f in got:
        start = offsets[f.number - 1]
        assert f.block == src[start:start + len(f.block)] and len(f.block) == struct.unpack_from("<I", src, start + 4)[0]


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["-w", "--write-flagged"])
def test_disk_full_keeps_whole_blocks_and_says_so(tmp_path, flag):
    """RLIMIT_FSIZE makes writes fail like a full disk (EFBIG): exit 3, one line; the file holds whole
    blocks (capinfos reads it) and as many packets as the report says."""
    out, rep = tmp_path / "x.pcapng", tmp_path / "r.json"
    p = subprocess.run(["prlimit", "--fsize=300000", sys.executable, "-m", "iotwatch", "-r", str(DEMO), "--headless",
                        flag, str(out), "--report", str(rep)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1 and "cannot write" in p.stderr, p.stderr
    report = json.loads(rep.read_text())
    assert "stopped" in report["truncated"]
    key = "capture_file" if flag == "-w" else "flagged_file"
    assert 0 < frames_in(out) == report[key]["packets"]
    assert out.stat().st_size <= 300000
