"""captures/pcapfile.py against the independent builders of tests/pcaptools.py (and the other way round)."""
from __future__ import annotations

import pytest

from iotwatch.captures.pcapfile import (capture_format, comment_option, enhanced_packet_block,
                                        interface_description_block, pcap_header, read_packets,
                                        section_header_block)
from pcaptools import pcap, pcapng, udp_frames

FRAMES = udp_frames(5, size=33)  # odd length: padding in pcapng


def test_reads_what_the_independent_builders_write(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcapng"
    a.write_bytes(pcap(FRAMES))
    b.write_bytes(pcapng(FRAMES, extra_blocks=[(0x0A, b"\x01\x02\x03\x04")]))
    assert capture_format(a.read_bytes()) == "pcap" and capture_format(b.read_bytes()) == "pcapng"
    got_a, got_b = read_packets(a), read_packets(b)
    assert [f for _, f, _ in got_a] == FRAMES == [f for _, f, _ in got_b]
    assert [t for t, _, _ in got_a] == [t for t, _, _ in got_b]  # both µs since the epoch
    assert got_a[1][0] - got_a[0][0] == 1000


def test_written_blocks_read_back_with_comments(tmp_path):
    f = tmp_path / "c.pcapng"
    f.write_bytes(section_header_block("test") + interface_description_block(name="x0")
                  + enhanced_packet_block(7, FRAMES[0], comment_option("label=dos"))
                  + enhanced_packet_block(2**33 + 5, FRAMES[1]))
    assert read_packets(f) == [(7, FRAMES[0], "label=dos"), (2**33 + 5, FRAMES[1], "")]


def test_not_a_capture_and_cut_files_are_value_errors(tmp_path):
    bad, cut = tmp_path / "bad", tmp_path / "cut.pcapng"
    bad.write_bytes(b"hello world")
    cut.write_bytes(pcapng(FRAMES)[:-7])
    assert capture_format(bad.read_bytes()) is None
    with pytest.raises(ValueError):
        read_packets(bad)
    with pytest.raises(ValueError, match="truncated"):
        read_packets(cut)
    assert pcap_header() == pcap([])  # the empty capture the display-filter check feeds tshark
