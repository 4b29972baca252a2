"""Pilot tests of the Textual app: keys, counters and confusion equal to the headless report on
the same capture, outputs, errors and exit codes, packet detail."""
from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import sys
import time

import numpy as np
import pytest

from iotwatch.captures.errors import InputError
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.metrics import RunTotals
from iotwatch.detector.pipeline import classify_stream
from iotwatch.tui.app import IotWatchApp, make_app
from iotwatch.tui.messages import BatchClassified, CaptureFailed, CaptureFinished
from iotwatch.tui.widgets.incidents import IncidentsPane
from iotwatch.tui.widgets.class_counters import ClassCounters
from iotwatch.tui.widgets.confusion import ConfusionSummary
from iotwatch.tui.widgets.detail import DetailScreen, StreamScreen
from iotwatch.tui.widgets.help import HelpScreen
from iotwatch.tui.widgets.packet_table import PacketTable
from iotwatch.tui.widgets.status_bar import StatusBar

from fakes import ReplaySource, make_tiny_bundle, run_config
from tui_support import CLASSES, FakeClassifier, finish, make_labels, make_packets, truth, write_capture


def fake_app(n=1200, **kw) -> IotWatchApp:
    pk = make_packets(n)
    kw.setdefault("batch_rows", 256)
    speed = kw.pop("speed", "max")
    return make_app(run_config("fake.pcapng", speed=speed), FakeClassifier(), make_labels(pk),
                    source_factory=lambda: ReplaySource(pk, "fake.pcapng"), clock=lambda: 0.0, **kw)


def text_of(widget) -> str:
    """What a Static-based pane shows, as plain text."""
    from rich.console import Console

    con = Console(width=200, record=True, file=open("/dev/null", "w"))
    con.print(widget.content)
    return con.export_text()


async def test_replay_counts_every_packet_and_shows_messages():
    msgs = []
    app = fake_app(1200)
    async with app.run_test(size=(120, 40), message_hook=msgs.append) as pilot:
        await finish(pilot)
        pk = make_packets(1200)
        t = truth(pk)
        expected = np.bincount(t, minlength=len(CLASSES))
        assert app.session.totals.class_counts.tolist() == expected.tolist()
        assert app.session.totals.anomalies == int(np.count_nonzero(t != 0))
        batches = [m for m in msgs if isinstance(m, BatchClassified)]
        assert sum(len(m.batch) for m in batches) == 1200
        assert any(isinstance(m, CaptureFinished) for m in msgs)
        table = app.query_one(PacketTable)
        assert len(table.view) == 1200
        assert table.border_subtitle == "1,200 of 1,200 packets"
        counters = text_of(app.query_one(ClassCounters))
        for name, n in zip(CLASSES, expected):
            assert f"{name}" in counters and f"{n:,}" in counters
        status = text_of(app.query_one(StatusBar))
        assert "finished" in status and "1,200 pkts" in status and "fake/1" in status
        assert app.state == "finished"
        await pilot.press("q")
    assert app.return_code == 0


async def test_view_cap_drops_rows_from_view_never_from_counts():
    app = fake_app(3000, view_cap=500)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        table = app.query_one(PacketTable)
        assert len(table.view) == 500
        assert table.border_subtitle == "500 of 3,000 packets"
        assert app.session.totals.packets == 3000
        assert "500 shown, 2,500 dropped" in text_of(app.query_one(StatusBar))
        # the newest row is followed: the last frame is on screen
        assert table.view.row(len(table.view) - 1).frame == 3000
        assert int(table.scroll_y) == table.max_scroll_y


@pytest.mark.slow
async def test_keys_filter_jump_clear_pause_speed_help():
    app = fake_app(900)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        table = app.query_one(PacketTable)
        t = truth(make_packets(900))
        await pilot.press("a")
        assert app.filter == ("anomaly",)
        assert len(table.view) == int(np.count_nonzero(t != 0))
        assert all(table.view.row(i).anomaly for i in range(len(table.view)))
        assert "match anomalies" in table.border_subtitle
        await pilot.press("a")
        assert app.filter == ("all",) and len(table.view) == 900
        await pilot.press("f", "f", "f")     # normal -> recon -> dos
        assert app.filter == ("class", 2)
        assert len(table.view) == int(np.count_nonzero(t == 2))
        for _ in range(len(CLASSES) - 2):
            await pilot.press("f")
        assert app.filter == ("all",)
        # jump to the first anomaly from the top, then the next one
        await pilot.press("home")
        assert table.cursor_pos == 0 and table.follow is False
        await pilot.press("n")
        first = int(np.flatnonzero(t != 0)[np.flatnonzero(t != 0) > 0][0])
        assert table.cursor_pos == first and table.view.row(first).anomaly
        await pilot.press("n")
        assert table.cursor_pos == int(np.flatnonzero(t != 0)[np.flatnonzero(t != 0) > first][0])
        await pilot.press("end")
        assert table.cursor_gid is None and table.follow is True
        # pause / resume and speed reach the session
        await pilot.press("space")
        assert app.paused and not app.session.running.is_set()
        await pilot.press("space")
        assert not app.paused and app.session.running.is_set()
        await pilot.press("s")
        assert app.session.speed == "1x"
        await pilot.press("s", "s")
        assert app.session.speed == "max"
        # clear empties the table, never the counts nor the run's incidents
        incidents = len(app.incidents)
        await pilot.press("c")
        assert len(table.view) == 0 and len(app.incidents) == incidents
        assert app.session.totals.packets == 900
        # help screen lists the bindings and closes with escape
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = dict(app.key_help())
        assert keys["a"] == "Anomalies" and keys["q"] == "Quit"
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_scrolling_away_stops_following_and_keeps_rows_in_place():
    pk = make_packets(4000, spacing=0.001)     # 4 s of capture: at 1x the replay is still running
    app = make_app(run_config("x", speed="1x"), FakeClassifier(), source_factory=lambda: ReplaySource(pk),
                   clock=lambda: 0.0, batch_rows=500)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.rows.added < 100:
            await pilot.pause(0.05)
        app.action_toggle_pause()         # hold the replay while we scroll
        await pilot.pause(0.2)
        app.refresh_screen()
        table = app.query_one(PacketTable)
        before = len(table.view)
        await pilot.press("up", "up", "up")
        assert table.follow is False and table.cursor_gid is not None
        top_frame = table.view.row(int(table.scroll_y)).frame
        app.set_speed("max")
        app.action_toggle_pause()
        await finish(pilot)
        assert len(table.view) == 4000 and before < 4000
        assert table.view.row(int(table.scroll_y)).frame == top_frame
        await pilot.press("end")
        assert int(table.scroll_y) == table.max_scroll_y and table.follow


async def test_command_palette_provider_lists_filters_and_speeds():
    from iotwatch.tui.commands import IotwatchCommands

    app = fake_app(50)
    async with app.run_test(size=(100, 30)) as pilot:
        await finish(pilot)
        provider = IotwatchCommands(app.screen)
        titles = [t for t, _, _ in provider._commands()]
        assert "filter: class dos" in titles and "replay: speed 10x" in titles
        hits = [h async for h in provider.search("anomalies only")]
        assert hits and hits[0].text == "filter: anomalies only"
        hits[0].command()
        assert app.filter == ("anomaly",)


async def test_failure_before_any_packet_exits_with_the_error_code():
    def broken():
        raise InputError("capture file /nope.pcap does not exist", hint="check the -r path")

    app = make_app(run_config("/nope.pcap"), FakeClassifier(), source_factory=broken)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            if app.return_code is not None:
                break
            await pilot.pause(0.05)
    assert app.return_code == 2
    assert app.error == "capture file /nope.pcap does not exist (check the -r path)"


async def test_failure_mid_run_is_shown_and_sets_the_exit_code():
    pk = make_packets(300)

    class Breaks(ReplaySource):
        def batches(self, max_rows=256, max_wait=0.1):
            yield from list(super().batches(100, max_wait))[:2]
            raise InputError("capture cut mid-packet at frame 201")

    msgs = []
    app = make_app(run_config("cut.pcap"), FakeClassifier(), source_factory=lambda: Breaks(pk), batch_rows=100)
    async with app.run_test(size=(100, 30), message_hook=msgs.append) as pilot:
        await finish(pilot)
        failed = [m for m in msgs if isinstance(m, CaptureFailed)]
        assert failed and failed[0].started and failed[0].exit_code == 2
        assert app.state == "failed" and app.session.totals.packets == 200
        assert any("cut mid-packet" in str(n.message) for n in app._notifications)
        await pilot.press("q")
    assert app.return_code == 2


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("cap")
    path = write_capture(d / "mix.pcapng", n=600)
    bundle = make_tiny_bundle(d / "tiny.iotw", seed=1)
    return path, bundle


@pytest.mark.slow
async def test_tui_equals_headless_report_on_the_same_capture(capture, tmp_path):
    path, bundle = capture
    # the headless CLI on the same capture (a subprocess: pyshark needs a thread without a running loop)
    argv = [sys.executable, "-m", "iotwatch", "-r", str(path), "--model", str(bundle), "--headless",
            "--report", str(tmp_path / "h.json"), "--predictions", str(tmp_path / "h.csv"),
            "--alerts", str(tmp_path / "h.jsonl")]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    headless = json.loads((tmp_path / "h.json").read_text())

    cfg = run_config(str(path), model=str(bundle), report=str(tmp_path / "t.json"),
                     predictions=str(tmp_path / "t.csv"), alerts=str(tmp_path / "t.jsonl"))
    clf = cfg.load_classifier()
    app = make_app(cfg, clf, cfg.source.load_labels(clf.classes_))
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        tui = app.session.report
        shown_counts = app.session.totals.class_counts.tolist()
        shown_matrix = app.query_one(ConfusionSummary).matrix.tolist()
        await pilot.press("q")
    assert headless["packets"] == tui["packets"] == 600
    assert tui["class_counts"] == headless["class_counts"]
    assert shown_counts == list(headless["class_counts"].values())
    assert headless["labelled_packets"] == 600
    assert tui["confusion"] == headless["confusion"]
    assert shown_matrix == headless["confusion"]["matrix"]
    assert tui["per_class"] == headless["per_class"] and tui["macro_f1"] == headless["macro_f1"]
    assert json.loads((tmp_path / "t.json").read_text())["confusion"] == headless["confusion"]
    assert (tmp_path / "t.csv").read_text() == (tmp_path / "h.csv").read_text()
    assert (tmp_path / "t.jsonl").read_text() == (tmp_path / "h.jsonl").read_text()


@pytest.mark.slow
async def test_enter_shows_the_frame_dissection(capture):
    path, bundle = capture
    cfg = run_config(str(path), model=str(bundle))
    clf = PacketClassifier.load(bundle)
    app = make_app(cfg, clf, None)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await pilot.press("home", "down", "down", "enter")   # frame 3 (telnet in write_capture's mix)
        assert isinstance(app.screen, DetailScreen) and app.screen.frame == 3
        await app.workers.wait_for_complete()
        await pilot.pause()
        tree = app.screen.query_one("#detail-tree")
        layers = [str(node.label) for node in tree.root.children]
        # Wireshark's summary lines, in Wireshark's order
        assert layers[0].startswith("Frame 3: ") and layers[1].startswith("Ethernet II, Src: 02:00:00:00:00:")
        assert layers[2].startswith("Internet Protocol Version 4, Src: 192.168.1.") and "Dst: 192.168.1.1" in layers[2]
        assert layers[3].startswith("Transmission Control Protocol, Src Port: ")
        ip = tree.root.children[2]
        flags = next(n for n in ip.children if "= Flags: " in str(n.label))   # nested like Wireshark
        assert any("Don't fragment" in str(c.label) for c in flags.children) or flags.children
        hexpane = app.screen.query_one("#detail-hex")
        assert hexpane.border_title.endswith(" bytes")
        assert len(str(app.screen.query_one("#detail-hex Static").render()).splitlines()) >= 4
        await pilot.press("F")                                  # follow the TCP stream of frame 3
        for _ in range(500):
            if isinstance(app.screen, StreamScreen):
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, StreamScreen) and app.screen.title_text.startswith("Follow TCP stream 192.168.1.")
        assert "Node 0:" in app.screen.text or "192.168.1." in app.screen.text
        await pilot.press("escape", "escape")
        # with tshark warm the tree is there as the modal opens (no loading state, no worker)
        for _ in range(500):
            if app.dissector.ready:
                break
            await pilot.pause(0.02)
        await pilot.press("up", "enter")
        assert isinstance(app.screen, DetailScreen) and app.screen.frame == 2
        assert str(app.screen.query_one("#detail-tree").root.children[0].label).startswith("Frame 2: ")
        await pilot.press("escape")
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_detail_without_a_capture_file_says_so():
    app = fake_app(20)
    async with app.run_test(size=(100, 30)) as pilot:
        await finish(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        note = app.screen.query_one("#detail-note")
        assert "needs a capture file" in str(note.render())


async def test_compact_layout_cycles_panes():
    def shown(widget) -> bool:
        return widget.display and widget.parent.display

    app = fake_app(200)
    async with app.run_test(size=(80, 24)) as pilot:
        await finish(pilot)
        counters, alerts, confusion = (app.query_one(ClassCounters), app.query_one(IncidentsPane),
                                       app.query_one(ConfusionSummary))
        assert shown(counters) and not shown(alerts) and not shown(confusion)
        await pilot.press("m")
        assert shown(alerts) and not shown(counters) and not shown(confusion)
        await pilot.press("m")
        assert shown(confusion) and not shown(counters) and not shown(alerts)
        await pilot.press("m")
        assert shown(counters)


async def test_wide_layout_shows_every_pane():
    app = fake_app(200)
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        for w in (app.query_one(ClassCounters), app.query_one(IncidentsPane), app.query_one(ConfusionSummary)):
            assert w.display and w.parent.display and w.region.height > 3


def test_totals_reference_is_the_pipeline():
    # the fake classifier really yields the labels' confusion: guards the pilot tests' expectations
    pk = make_packets(300)
    ref = RunTotals(CLASSES)
    for cb in classify_stream(ReplaySource(pk), FakeClassifier(), make_labels(pk)):
        ref.update(cb.predicted, cb.anomaly, cb.labels)
    assert ref.labelled > 0 and ref.confusion.accuracy() < 1.0


async def test_pausing_a_live_capture_keeps_counting():
    pk = make_packets(600)

    pressed = threading.Event()

    class Live(ReplaySource):
        live = True

        def batches(self, max_rows=256, max_wait=0.1):
            for i, b in enumerate(super().batches(100, max_wait)):
                if i == 1:  # the rest of the capture arrives only once the user has paused
                    pressed.wait(30)
                yield b

    app = make_app(run_config(iface="lo"), FakeClassifier(), source_factory=lambda: Live(pk, "lo"), batch_rows=100)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.state != "live":
            await pilot.pause(0.01)
        table = app.query_one(PacketTable)
        await pilot.press("space")
        assert app.paused
        held = len(table.view)
        held_rows = [table.view.row(i).frame for i in range(held)]
        pressed.set()
        await finish(pilot)
        assert app.session.totals.packets == 600          # the capture never stopped
        assert app.rows.added == 600 and app.skipped == 0  # ... and the store kept every row
        # the screen is frozen: same rows, and it says how many arrived meanwhile
        assert [table.view.row(i).frame for i in range(len(table.view))] == held_rows
        status = text_of(app.query_one(StatusBar))
        assert f"paused (+{600 - held:,} new" in status and "capture drops" in status
        top = int(table.scroll_y)
        await pilot.press("space")                         # resume: every row, from where it was
        await pilot.pause()
        assert not app.paused and len(table.view) == 600
        assert [table.view.row(i).frame for i in range(600)] == list(range(1, 601))
        assert int(table.scroll_y) == top and not table.follow
        await pilot.press("end")
        assert table.follow


def test_build_app_refuses_bad_input_before_the_screen_switches(tmp_path):
    from iotwatch.tui.app import build_app

    existing = tmp_path / "r.json"
    existing.write_text("{}")
    with pytest.raises(InputError, match="already exists"):
        build_app(run_config(str(write_capture(tmp_path / "c.pcapng", n=20)), report=str(existing)))
    with pytest.raises(InputError, match="not found"):
        build_app(run_config(str(tmp_path / "missing.pcapng")))
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all")
    with pytest.raises(InputError, match="not a pcap"):
        build_app(run_config(str(junk)))
