"""Pilot tests of the Wireshark habits on a real capture file: the whole file browsable beyond the
in-memory rows, the display-filter bar (valid / invalid / cleared), jump to a frame, search, sort
and export (w) checked with tshark."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from iotwatch.detector.classifier import PacketClassifier
from iotwatch.tui.app import make_app
from iotwatch.tui.widgets.packet_table import PacketTable
from iotwatch.tui.widgets.prompt import PromptBar
from iotwatch.tui.widgets.status_bar import StatusBar

from fakes import make_tiny_bundle, run_config
from test_tui import text_of
from tui_support import finish, settle, tshark_frames, write_capture

pytestmark = pytest.mark.slow  # whole-app runs with tshark read-back (1.5-4.5 s each)

N = 600


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("cap")
    return write_capture(d / "mix.pcapng", n=N), make_tiny_bundle(d / "tiny.iotw", seed=1)


def app_on(capture, **kw):
    path, bundle = capture
    return make_app(run_config(str(path), model=str(bundle)), PacketClassifier.load(bundle), None, **kw)


async def index_ready(pilot):
    await settle(pilot, lambda: pilot.app.index is not None)


async def test_rows_beyond_memory_are_read_back_from_the_file(capture):
    app = app_on(capture, view_cap=100, batch_rows=64)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await index_ready(pilot)
        app.refresh_screen()
        table = app.query_one(PacketTable)
        assert len(app.rows) <= 100 + 64 and len(table.view) == N   # the whole file, not the memory
        await pilot.press("g")
        assert table.cursor_pos == 0
        await settle(pilot, lambda: not table.view.row(0).loading)
        row = table.view.row(0)
        assert row.frame == 1 and row.src.startswith("192.168.1.") and row.info
        # the read-back row equals what the capture showed for it (frame 1 of a full read)
        cp = subprocess.run(["tshark", "-n", "-r", str(capture[0]), "-c", "1", "-T", "fields", "-e", "frame.len",
                             "-e", "_ws.col.Info"], capture_output=True, text=True, check=True)
        length, info = cp.stdout.rstrip("\n").split("\t")
        assert row.length == int(length) and row.info == info
        assert "0 dropped" not in text_of(app.query_one(StatusBar))


async def test_display_filter_bar_valid_invalid_cleared(capture):
    app = app_on(capture)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        prompt = app.query_one(PromptBar)
        table = app.query_one(PacketTable)
        await pilot.press("slash")
        assert prompt.has_class("-visible") and prompt.has_focus
        await pilot.press(*"udp &&")
        await settle(pilot, lambda: prompt.has_class("-invalid"))
        assert "udp" in prompt.border_subtitle or "&&" in prompt.border_subtitle or "expect" in prompt.border_subtitle.lower()
        await pilot.press("enter")           # an invalid filter is not applied
        await settle(pilot, lambda: prompt.has_class("-invalid"))
        assert app.dfilter is None and len(table.view) == N
        for _ in range(3):
            await pilot.press("backspace")
        await settle(pilot, lambda: prompt.has_class("-valid"))
        await pilot.press("enter")
        await settle(pilot, lambda: app.dfilter == "udp")
        want = tshark_frames(capture[0], "udp")
        assert 0 < len(want) < N
        assert [table.view.row(i).frame for i in range(len(table.view))] == want
        assert "-Y udp" in text_of(app.query_one(StatusBar))
        await pilot.press("a")               # combines with the anomaly filter
        assert all(table.view.row(i).anomaly and table.view.row(i).frame in want for i in range(len(table.view)))
        await pilot.press("a", "slash")
        assert prompt.value == "udp"
        for _ in range(3):
            await pilot.press("backspace")
        await pilot.press("enter")           # empty: cleared
        await settle(pilot, lambda: app.dfilter is None)
        assert len(table.view) == N and "-Y" not in text_of(app.query_one(StatusBar))


async def test_jump_search_and_sort(capture):
    app = app_on(capture)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        table = app.query_one(PacketTable)
        await pilot.press("colon", *"123", "enter")
        assert table.view.row(table.cursor_pos).frame == 123
        await pilot.press("colon")
        prompt = app.query_one(PromptBar)
        prompt.value = "arp"
        await pilot.press("enter")
        arp = tshark_frames(capture[0], "arp")
        await settle(pilot, lambda: table.view.row(table.cursor_pos).frame != 123)
        assert table.view.row(table.cursor_pos).frame == min(f for f in arp if f > 123)
        await pilot.press("j", "k", "k")
        assert table.view.row(table.cursor_pos).frame == min(f for f in arp if f > 123) - 1
        # sort by length: ascending, then descending; back to frame order
        await pilot.press("o")
        assert app.sort == ("Len", False)
        lens = [table.view.row(i).length for i in range(len(table.view))]
        assert lens == sorted(lens) and len(lens) == N
        await pilot.press("o")
        assert app.sort == ("Len", True)
        lens = [table.view.row(i).length for i in range(len(table.view))]
        assert lens == sorted(lens, reverse=True)
        for _ in range(6):
            await pilot.press("o")
            if app.sort is None:
                break
        assert app.sort is None and [table.view.row(i).frame for i in range(5)] == [1, 2, 3, 4, 5]


async def test_export_writes_the_view_and_a_marked_range(capture, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = app_on(capture)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await index_ready(pilot)
        table = app.query_one(PacketTable)
        prompt = app.query_one(PromptBar)
        await pilot.press("slash", *"udp")            # the view: a display filter (whatever the model says)
        await settle(pilot, lambda: prompt.has_class("-valid"))
        await pilot.press("enter")
        await settle(pilot, lambda: app.dfilter == "udp")
        shown = [table.view.row(i).frame for i in range(len(table.view))]
        assert 0 < len(shown) < N and shown == tshark_frames(capture[0], "udp")
        await pilot.press("w")
        prompt.value = "anomalies.pcapng"
        await pilot.press("enter")
        await settle(pilot, lambda: (tmp_path / "anomalies.pcapng").exists() and not prompt.has_class("-visible"))
        await pilot.press("slash", "backspace", "backspace", "backspace", "enter")   # cleared
        await settle(pilot, lambda: app.dfilter is None)
        # a marked range: frames 10..14 of the unfiltered view
        await pilot.press("colon", *"10", "enter", "v", "j", "j", "j", "j", "w")
        prompt.value = "range.pcapng"
        await pilot.press("enter")
        await settle(pilot, lambda: (tmp_path / "range.pcapng").exists() and not prompt.has_class("-visible"))
        await pilot.press("w")
        prompt.value = "range.pcapng"                 # exists: refused, nothing replaced
        before = (tmp_path / "range.pcapng").read_bytes()
        await pilot.press("enter")
        await settle(pilot, lambda: prompt.has_class("-invalid"))
        assert (tmp_path / "range.pcapng").read_bytes() == before
    original = subprocess.run(["tshark", "-n", "-r", str(capture[0]), "-T", "fields", "-e", "frame.len", "-e", "ip.id"],
                              capture_output=True, text=True, check=True).stdout.splitlines()

    def lines(p):
        return subprocess.run(["tshark", "-n", "-r", str(p), "-T", "fields", "-e", "frame.len", "-e", "ip.id"],
                              capture_output=True, text=True, check=True).stdout.splitlines()

    assert lines(tmp_path / "anomalies.pcapng") == [original[f - 1] for f in shown]
    assert lines(tmp_path / "range.pcapng") == [original[f - 1] for f in range(10, 15)]


async def test_truncation_stays_in_the_status_bar_until_dismissed(tmp_path):
    from pathlib import Path

    cut = Path(__file__).parent / "data" / "pcaps" / "loopback_cut.pcap"
    bundle = make_tiny_bundle(tmp_path / "tiny.iotw", seed=1)
    app = make_app(run_config(str(cut), model=str(bundle)), PacketClassifier.load(bundle), None)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await pilot.pause(1.0)        # well after the end-of-capture toast would have gone
        status = text_of(app.query_one(StatusBar))
        assert "capture ended early" in status and "cut short" in status
        await pilot.press("x")
        assert "capture ended early" not in text_of(app.query_one(StatusBar))


async def test_resize_keeps_following_the_newest_row(capture):
    app = app_on(capture)
    async with app.run_test(size=(120, 30)) as pilot:
        await finish(pilot)
        table = app.query_one(PacketTable)
        assert table.follow and int(table.scroll_y) == table.max_scroll_y > 0
        await pilot.resize_terminal(120, 50)
        await pilot.pause(0.2)
        assert table.follow and int(table.scroll_y) == table.max_scroll_y
        await pilot.resize_terminal(100, 24)
        await pilot.pause(0.2)
        assert int(table.scroll_y) == table.max_scroll_y
        last = table.view.row(len(table.view) - 1).frame
        assert last == N


async def test_frame_numbers_beyond_five_digits_keep_the_columns_aligned():
    from fakes import ReplaySource
    from tui_support import FakeClassifier, make_packets

    pk = make_packets(300)
    pk["frame_number"][:] += 1_234_000          # a long live capture: 7-digit frame numbers
    app = make_app(run_config(iface="lo"), FakeClassifier(), source_factory=lambda: ReplaySource(pk, "lo"),
                   clock=lambda: 0.0, batch_rows=100)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        table = app.query_one(PacketTable)
        width = table.scrollable_content_region.width
        header = "".join(seg.text for seg in table.render_line(0))
        last = "".join(seg.text for seg in table.render_line(table.scrollable_content_region.height - 1))
        assert "1234300" in last and len(last) == len(header) == width
        # the columns line up: the endpoints start where their title does
        assert last.index("192.168.1.") == header.index("Source")
