"""The frame index (captures/tshark/frames.py): any frame read back through tshark equals the same
frame of a full read; exports are captures tshark opens with the right frames; PDML tree nesting."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.tshark import frames as frames_mod
from iotwatch.captures.tshark.frames import Dissector, FrameIndex
from iotwatch.captures.tshark.source import open_tshark_source

pytestmark = pytest.mark.slow  # tshark runs per parameter (~1-2 s each)

PCAPS = Path(__file__).parent / "data" / "pcaps"


def full_read(path) -> PacketBatch:
    src = open_tshark_source(read=str(path), chunk_packets=0)
    try:
        return PacketBatch.concat(list(src.batches(1000)))
    finally:
        src.close()


def tshark_lens(path) -> list[str]:
    cp = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "ip.id"],
                        capture_output=True, text=True, check=True)
    return cp.stdout.splitlines()


@pytest.mark.parametrize("name", ["loopback.pcapng", "loopback.pcap", "veth_arp.pcapng", "loopback_cut.pcap"])
@pytest.mark.parametrize("step", [4, 256])
def test_index_reads_back_any_range_like_a_full_read(name, step, monkeypatch):
    monkeypatch.setattr(frames_mod, "STEP", step)
    path = PCAPS / name
    whole = full_read(path)
    ix = FrameIndex(path).build()
    assert ix.done and ix.frames == len(whole)
    assert (ix.problem is not None) == (name == "loopback_cut.pcap")
    n = ix.frames
    for first, last in [(1, n), (2, 2), (n, n), (3, min(n, 9)), (max(1, n - 5), n)]:
        got = ix.read_fields(first, last)
        assert got["frame_number"].tolist() == list(range(first, last + 1))
        for col in ("frame_len", "ip_src", "tcp_flags", "protocols", "time_epoch"):
            assert got[col].tolist() == whole[col][first - 1:last].tolist(), (col, first, last)
    with pytest.raises(LookupError):
        ix.select([n + 1])


@pytest.mark.parametrize("name", ["loopback.pcapng", "loopback.pcap", "veth_arp.pcapng"])
def test_export_writes_exactly_the_chosen_frames(name, tmp_path, monkeypatch):
    monkeypatch.setattr(frames_mod, "STEP", 4)   # frames spread over several indexed spans
    path = PCAPS / name
    ix = FrameIndex(path).build()
    chosen = [1, 2, 5, 6, 7, ix.frames] if ix.frames > 7 else [1, 3, ix.frames]
    out = tmp_path / ("export" + path.suffix)
    assert ix.write(chosen, out) == len(chosen)
    original = tshark_lens(path)
    assert tshark_lens(out) == [original[f - 1] for f in chosen]
    with pytest.raises(FileExistsError):   # never replaces a file
        ix.write(chosen, out)


def test_packet_bytes_and_dissection_tree():
    ix = FrameIndex(PCAPS / "loopback.pcapng").build()
    raw = ix.packet_bytes(6)
    hexdump = subprocess.run(["tshark", "-r", str(PCAPS / "loopback.pcapng"), "-Y", "frame.number==6", "-T", "fields",
                              "-e", "frame.len"], capture_output=True, text=True).stdout.strip()
    assert len(raw) == int(hexdump)
    tree = ix.dissect(6)
    assert tree[0].text.startswith("Frame 6:")
    names = [n.text.split(",")[0] for n in tree]
    assert "Ethernet II" in names and any(t.startswith("Internet Protocol Version") for t in names)
    ip = next(n for n in tree if n.text.startswith("Internet Protocol Version 4"))
    # nesting as in Wireshark: the flags line holds its bit fields
    flags = next(c for c in ip.children if "= Flags: " in c.text)
    assert flags.children and any("Don't fragment:" in c.text for c in flags.children)


def test_filter_frames_matches_tshark():
    path = PCAPS / "loopback.pcapng"
    ix = FrameIndex(path).build()
    got = ix.filter_frames("udp && !dns")
    cp = subprocess.run(["tshark", "-r", str(path), "-Y", "udp && !dns", "-T", "fields", "-e", "frame.number"],
                        capture_output=True, text=True, check=True)
    assert got.tolist() == [int(x) for x in cp.stdout.split()] and len(got) > 0
    with pytest.raises(RuntimeError):
        ix.filter_frames("udp &&")


def flat(nodes, depth=0):
    out = []
    for n in nodes:
        out.append((depth, n.text))
        out += flat(n.children, depth + 1)
    return out


@pytest.mark.parametrize("name", ["loopback.pcapng", "loopback.pcap", "veth_arp.pcapng"])
def test_long_running_dissector_equals_one_shot_in_any_order(name, monkeypatch):
    ix = FrameIndex(PCAPS / name).build()
    d = Dissector(ix)
    monkeypatch.setattr(Dissector, "RECYCLE", 4)   # restarts along the way
    try:
        order = [ix.frames, 1, 3, 2, ix.frames // 2, 1, ix.frames]
        for f in order:
            got = flat(d.dissect(f))
            assert got == flat(ix.dissect(f)), f
            assert got[0][1].startswith(f"Frame {f}: ") and (1, f"Frame Number: {f}") in got
            # nothing that refers to tshark's own run (deltas, other frames' numbers)
            assert not any(t.startswith("Time delta from previous") for _, t in got)
    finally:
        d.close()
    assert d._proc is None


def test_info_field_follows_the_installed_tshark(monkeypatch):
    from iotwatch.captures.tshark import version
    from iotwatch.captures.tshark.args import tshark_fields_command

    for ver, want in (((4, 0), "_ws.col.Info"), ((4, 2), "_ws.col.info"), ((4, 6), "_ws.col.info")):
        monkeypatch.setattr(version, "tshark_version", lambda t, v=ver: v)
        argv = tshark_fields_command("/usr/bin/tshark")
        assert want in argv and ({"_ws.col.Info", "_ws.col.info"} - {want}).isdisjoint(argv)
    monkeypatch.undo()
    real = version.tshark_version("tshark")
    assert real >= (2, 0)   # this machine's tshark answers -v
    # and accepts the name we give it
    cp = subprocess.run(["tshark", "-n", "-r", str(PCAPS / "loopback.pcap"), "-c", "1", "-T", "fields",
                         "-e", version.field_name("_ws.col.Info", "tshark")], capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stdout.strip()


def test_a_slow_answer_does_not_cost_the_warm_tshark(monkeypatch):
    ix = FrameIndex(PCAPS / "loopback.pcapng").build()
    d = Dissector(ix)
    try:
        d.start()
        proc = d._proc
        with pytest.raises(TimeoutError):
            d.dissect(5, timeout=0.0)            # gives up at once: the answer comes later
        assert d._proc is proc and d._late == 1
        got = flat(d.dissect(6))                 # the late answer for 5 is skipped, 6 is 6
        assert got == flat(ix.dissect(6)) and d._proc is proc and d._late == 0
    finally:
        d.close()
