"""Live tshark rotation (issue 7 item 4): dumpcap's pcapng stream split over successive tsharks.

Unit tests drive :class:`PcapngSplitter` with hand-built pcapng streams through real pipes (odd read
sizes, both byte orders, an interface added mid-stream, damage, stop); one test has tshark read the
rotated segments; the live tests capture on ``lo`` with a tiny rotation size while a subprocess sends
a bounded number of UDP datagrams to 127.0.0.1. Deadlines are hang guards, never timing assertions.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time

import psutil
import pytest
from pyshark.tshark.tshark import get_process_path

from iotwatch.captures.tshark.rotation import PcapngSplitter
from iotwatch.captures.sources import open_source

from pcaptools import udp_frames

GUARD = 30.0
SHB, IDB, EPB = 0x0A0D0D0A, 1, 6


# -- hand-built pcapng streams (independent of captures/, either byte order) ------------------------

def block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def shb(order: str = "<") -> bytes:
    return block(SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(order: str = "<", linktype: int = 1) -> bytes:
    return block(IDB, struct.pack(order + "HHI", linktype, 0, 65535), order)


def epb(frame: bytes, i: int, order: str = "<", iface: int = 0) -> bytes:
    ts = 1_700_000_000_000_000 + i * 1000
    return block(EPB, struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame, order)


def blocks_of(data: bytes) -> list[tuple[int, bytes]]:
    """(type, whole block) for every block; the byte order follows each section header."""
    out, off, order = [], 0, "<"
    while off < len(data):
        if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", data, off)
        assert blen >= 12 and off + blen <= len(data), f"bad block at {off}"
        out.append((btype, data[off:off + blen]))
        off += blen
    return out


def run_splitter(stream: bytes, per: int, piece: int = 997, hold_input: threading.Event | None = None, tee=None):
    """Feed ``stream`` through a pipe in ``piece``-byte writes; attach a fresh output pipe whenever the
    splitter wants one (each drained by a thread). Returns the splitter and [(first_frame, bytes)]."""
    r, w = os.pipe()

    def feed():
        try:
            for i in range(0, len(stream), piece):
                os.write(w, stream[i:i + piece])
            if hold_input is not None:
                hold_input.wait(GUARD)
        finally:
            os.close(w)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    sp = PcapngSplitter(r, per, tee=tee)
    outputs, readers = [], []

    def drain(fd, sink):
        with os.fdopen(fd, "rb") as fh:
            sink.append(fh.read())

    deadline = time.monotonic() + GUARD
    while sp.alive:
        assert time.monotonic() < deadline, "splitter never finished"
        if sp.wants_output():
            ro, wo = os.pipe()
            sink: list[bytes] = []
            t = threading.Thread(target=drain, args=(ro, sink), daemon=True)
            t.start()
            readers.append(t)
            outputs.append((sp.attach(wo), sink))
        time.sleep(0.001)
    feeder.join(GUARD)
    for t in readers:
        t.join(GUARD)
    return sp, [(first, sink[0]) for first, sink in outputs]


def packets_of(data: bytes) -> list[bytes]:
    return [b for t, b in blocks_of(data) if t == EPB]


# -- the splitter alone ---------------------------------------------------------------------------

@pytest.mark.parametrize("piece", [1, 997, 1 << 20])
def test_every_packet_once_in_order_and_each_segment_a_whole_capture(piece):
    frames = udp_frames(103, size=40)
    head = shb() + idb()
    sent = [epb(f, i) for i, f in enumerate(frames)]
    sp, outs = run_splitter(head + b"".join(sent), per=10, piece=piece)
    assert sp.problem is None
    assert [first for first, _ in outs] == [1 + 10 * k for k in range(11)]
    assert [len(packets_of(data)) for _, data in outs] == [10] * 10 + [3]
    for _, data in outs:
        assert data.startswith(head)  # the first one in the stream's own order, later ones replayed
    assert [p for _, data in outs for p in packets_of(data)] == sent
    assert sp.packets == 103 and sp.rotations == 10


@pytest.mark.parametrize("piece", [1, 997, 1 << 20])
def test_a_teed_keeper_takes_the_splitters_walk_and_keeps_what_its_own_walk_would(piece, tmp_path, monkeypatch):
    """With a keeper teed in (-w, the flagged window), the stream's blocks are walked once: the keeper
    gets the splitter's runs (its own walk never runs) and keeps the same file and frames as when it
    walks the stream itself."""
    from iotwatch.captures.keep import CaptureKeeper, PcapngRing, PcapngWalker

    frames = udp_frames(53, size=40)
    stream = shb() + idb() + b"".join(epb(f, i) for i, f in enumerate(frames[:30]))
    stream += idb(linktype=101) + b"".join(epb(f[14:], i, iface=1) for i, f in enumerate(frames[30:], 30))
    ref = CaptureKeeper(PcapngRing(str(tmp_path / "ref.pcapng"), None), window_bytes=1 << 30)
    for i in range(0, len(stream), piece):
        ref.feed(stream[i:i + piece])
    ref.close()
    monkeypatch.setattr(PcapngWalker, "feed", lambda self, data: pytest.fail("the stream was walked twice"))
    keeper = CaptureKeeper(PcapngRing(str(tmp_path / "k.pcapng"), None), window_bytes=1 << 30)
    sp, outs = run_splitter(stream, per=10, piece=piece, tee=keeper)
    keeper.close()
    assert sp.problem is None and keeper.problem is None and sp.packets == 53
    assert keeper.frames == ref.frames == 53 and keeper.header() == ref.header()
    assert (tmp_path / "k.pcapng").read_bytes() == (tmp_path / "ref.pcapng").read_bytes()
    taken = keeper.take(range(1, 54))
    assert [(f.number, f.block, f.ts) for f in taken] == [(f.number, f.block, f.ts) for f in ref.take(range(1, 54))]
    assert [f.block for f in taken] == [b for t, b in blocks_of(stream) if t == EPB]
    assert [p for _, d in outs for p in packets_of(d)] == [b for t, b in blocks_of(stream) if t == EPB]


def test_exact_multiple_leaves_at_most_an_empty_valid_segment():
    head = shb() + idb()
    sent = [epb(f, i) for i, f in enumerate(udp_frames(30))]
    sp, outs = run_splitter(head + b"".join(sent), per=10)
    assert sp.rotations == 3 and sp.packets == 30
    assert [len(packets_of(d)) for _, d in outs][:3] == [10, 10, 10]
    for _, data in outs[3:]:  # the tshark started after the last rotation reads a capture with no packets
        assert data == head
    assert [p for _, d in outs for p in packets_of(d)] == sent


def test_interface_added_mid_stream_is_in_later_headers():
    frames = udp_frames(30)
    stream = shb() + idb() + b"".join(epb(f, i) for i, f in enumerate(frames[:15]))
    stream += idb(linktype=101) + b"".join(epb(f[14:], i, iface=1) for i, f in enumerate(frames[15:], 15))
    sp, outs = run_splitter(stream, per=10)
    types = [[t for t, _ in blocks_of(d)] for _, d in outs]
    assert types[0] == [SHB, IDB] + [EPB] * 10
    assert types[1] == [SHB, IDB] + [EPB] * 5 + [IDB] + [EPB] * 5
    assert types[2] == [SHB, IDB, IDB] + [EPB] * 10  # both interfaces described before its packets


def test_big_endian_stream():
    frames = udp_frames(9)
    head = shb(">") + idb(">")
    sent = [epb(f, i, ">") for i, f in enumerate(frames)]
    sp, outs = run_splitter(head + b"".join(sent), per=4, piece=7)
    assert sp.problem is None
    assert [len(packets_of(d)) for _, d in outs] == [4, 4, 1]
    assert all(d.startswith(head) for _, d in outs)
    assert [p for _, d in outs for p in packets_of(d)] == sent


def test_damaged_block_is_passed_through_without_more_rotations():
    frames = udp_frames(20)
    good = shb() + idb() + b"".join(epb(f, i) for i, f in enumerate(frames[:12]))
    bad = struct.pack("<II", EPB, 13) + b"\0" * 40
    sp, outs = run_splitter(good + bad, per=5)
    assert sp.problem and "bad pcapng block" in sp.problem and f"byte {len(good)}" in sp.problem
    assert sp.rotations == 2 and len(outs) == 3
    assert outs[2][1].endswith(bad)  # the rest went to the current tshark as is (tshark reports it)
    assert sum(len(packets_of(d[:-len(bad)] if i == 2 else d)) for i, (_, d) in enumerate(outs)) == 12


def test_stop_while_waiting_for_a_tshark_drains_and_ends():
    r, w = os.pipe()
    sp = PcapngSplitter(r, 5)
    os.write(w, shb() + idb() + epb(udp_frames(1)[0], 0))
    assert sp.wants_output()
    sp.stop()  # nobody ever attaches: the splitter must not wait forever
    os.write(w, b"\0" * 100_000)  # keeps draining after the stop (dumpcap can finish writing)
    os.close(w)
    sp.join(GUARD)
    assert not sp.alive and not sp.wants_output()


def test_stop_while_blocked_on_a_tshark_that_died():
    r, w = os.pipe()
    sp = PcapngSplitter(r, 1 << 30)
    ro, wo = os.pipe()
    sp.attach(wo)
    stream = shb() + idb() + epb(udp_frames(1)[0], 0) * 40_000  # ~4 MB: more than the pipes hold

    def feed():
        try:
            os.write(w, stream)
        except OSError:
            pass
        finally:
            os.close(w)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(0.2)  # the output pipe is full: the splitter is blocked writing
    assert sp.alive
    os.close(ro)  # "tshark" died: the write fails, the splitter drains the rest and ends
    feeder.join(GUARD)
    sp.join(GUARD)
    assert not sp.alive
    assert sp.problem == "tshark stopped reading the live capture"


def test_tshark_reads_every_rotated_segment():
    frames = udp_frames(25)
    stream = shb() + idb() + b"".join(epb(f, i) for i, f in enumerate(frames))
    _, outs = run_splitter(stream, per=10)
    tshark = get_process_path()
    ports = []
    for first, data in outs:
        out = subprocess.run([tshark, "-n", "-r", "-", "-T", "fields", "-e", "frame.number", "-e", "udp.srcport"],
                             input=data, capture_output=True, timeout=GUARD, check=True)
        rows = [line.split("\t") for line in out.stdout.decode().splitlines()]
        assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
        ports += [int(p) for _, p in rows]
    assert ports == [40000 + i for i in range(25)]


# -- live on lo -----------------------------------------------------------------------------------

SENDER = """
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
end = time.monotonic() + 20
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for i in range(n):
        s.sendto(b"rotation %d" % i, ("127.0.0.1", port))
        if i % 500 == 499 and time.monotonic() > end:
            break
print(i + 1)
"""


def sink_port() -> socket.socket:
    """A bound UDP socket on 127.0.0.1 that swallows the datagrams (no ICMP port unreachable)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def send(port: int, n: int) -> int:
    out = subprocess.run([sys.executable, "-c", SENDER, str(port), str(n)], capture_output=True, text=True,
                         timeout=GUARD, check=True)
    return int(out.stdout)


def tshark_children() -> set[int]:
    pids = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name() == "tshark":
                pids.add(p.pid)
        except psutil.Error:
            pass
    return pids


def capture_while_sending(n: int, rotate: int, max_rows: int = 64):
    """Open lo with rotation, send ``n`` datagrams from a subprocess once dumpcap captures, read until
    all arrived (plus a second in which nothing more may arrive); returns (frames, ports, src, pids)."""
    sink = sink_port()
    port = sink.getsockname()[1]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    src = open_source(iface="lo", bpf=f"udp dst port {port}", rotate_packets=rotate)
    frames, ports, pids, sent, settle = [], [], set(), None, None
    deadline = time.monotonic() + 3 * GUARD
    try:
        for b in src.batches(max_rows=max_rows, max_wait=0.1):
            assert len(b) <= max_rows
            frames += b["frame_number"].tolist()
            ports += b["udp_dstport"].tolist()
            pids |= tshark_children()
            if sent is None and src.capturing:   # dumpcap's filter is in place
                time.sleep(0.2)
                sent = send(port, n)
                settle = time.monotonic() + 1.0
            if sent is not None and len(frames) >= sent and time.monotonic() > settle:
                break
            assert time.monotonic() < deadline, f"only {len(frames)} of {sent} datagrams"
    finally:
        src.close()
        sink.close()
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in left if psutil.pid_exists(pid)], timeout=GUARD)
    assert not alive, f"left running: {[p.name() for p in alive]}"
    return sent, frames, ports, src, pids


@pytest.mark.live
@pytest.mark.slow
def test_live_rotation_counts_every_datagram_with_continuous_frames():
    n, rotate = 300, 25
    sent, frames, ports, src, pids = capture_while_sending(n, rotate)
    assert sent == n
    assert frames == list(range(1, n + 1))  # no packet lost or doubled at the 12 rotations
    assert len(set(ports)) == 1 and len(ports) == n
    assert src.stats.packets == n
    assert src.stats.extra["captured"] == n and src.stats.capture_drops == 0  # dumpcap's own count
    assert src.stats.truncated is None
    assert src._splitter.rotations == n // rotate
    assert src.tsharks_started >= n // rotate  # (+1 started after the last rotation, idle until close)
    assert len(pids) >= 2  # seen side by side with the batches: really different tshark processes


@pytest.mark.live
@pytest.mark.slow
def test_live_rotation_under_a_burst_loses_nothing():
    """30k datagrams as fast as a subprocess can send them, a new tshark every 2,000: while one starts,
    dumpcap's kernel buffer holds the burst; every datagram is counted once, frames run on."""
    sent, frames, ports, src, _ = capture_while_sending(30_000, 2_000, max_rows=512)
    assert sent >= 10_000
    assert src.stats.capture_drops == 0
    assert frames == list(range(1, sent + 1))
    assert src._splitter.rotations == sent // 2_000


@pytest.mark.live
@pytest.mark.slow
def test_live_close_mid_rotation_leaves_no_process():
    """Close while a burst is rotating tsharks: close returns, dumpcap still reports, nothing is left."""
    sink = sink_port()
    port = sink.getsockname()[1]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    src = open_source(iface="lo", bpf=f"udp dst port {port}", rotate_packets=500)
    sender = None
    try:
        got = 0
        deadline = time.monotonic() + GUARD
        for b in src.batches(max_rows=256, max_wait=0.05):
            got += len(b)
            if sender is None and src.capturing:
                sender = subprocess.Popen([sys.executable, "-c", SENDER, str(port), "20000"], stdout=subprocess.DEVNULL)
            if got >= 3_000:
                break
            assert time.monotonic() < deadline
        t0 = time.monotonic()
        src.close()
        assert time.monotonic() - t0 < GUARD
    finally:
        src.close()
        if sender is not None:
            sender.wait(GUARD)
        sink.close()
    assert src._splitter.rotations >= 3 and not src._splitter.alive
    assert "captured" in src.stats.extra  # dumpcap exited on SIGTERM and printed its statistics
    left = [psutil.Process(pid) for pid in {p.pid for p in psutil.Process().children(recursive=True)} - before
            if psutil.pid_exists(pid)]
    gone, alive = psutil.wait_procs([p for p in left if p.pid != (sender.pid if sender else 0)], timeout=GUARD)
    assert not alive, f"left running: {[p.name() for p in alive]}"


@pytest.mark.live
def test_rotation_is_the_default_and_off_under_filters_that_need_earlier_frames():
    from iotwatch.captures.tshark.source import LIVE_ROTATE_PACKETS

    opened = []
    try:
        for kw in ({}, {"display_filter": "udp"}, {"display_filter": "frame.number > 3"},
                   {"display_filter": "tcp.stream == 1"}, {"rotate_packets": 0}, {"rotate_packets": 7}):
            opened.append(open_source(iface="lo", bpf="udp port 9", **kw))
    finally:
        for src in opened:
            src.close()
    assert [src._rotate for src in opened] == [LIVE_ROTATE_PACKETS, LIVE_ROTATE_PACKETS, 0, 0, 0, 7]
    assert 100_000 <= LIVE_ROTATE_PACKETS <= 200_000


def test_malloc_mmap_threshold_is_pinned_on_glibc():
    """Opening a source pins glibc's mmap threshold (freed batch buffers go back to the OS)."""
    import platform

    from iotwatch.captures.tshark.malloc import pin_mmap_threshold

    if platform.libc_ver()[0] != "glibc":
        pytest.fail(f"expected glibc on the CI machine, got {platform.libc_ver()}")
    assert pin_mmap_threshold() is True
    assert pin_mmap_threshold() is True  # idempotent
