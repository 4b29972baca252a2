"""The TUI during a live flood on ``lo`` (issue 7): every packet counted, keys still handled while the
burst is being worked through. Traffic goes only to 127.0.0.1, bounded in count and time; waits are
hang guards, not timing assertions (bench/tui.py measures key latency)."""
from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual import events

from iotwatch.detector.classifier import PacketClassifier
from fakes import make_tiny_bundle, run_config
from iotwatch.tui.app import make_app

from test_live import GUARD, free_udp_port

pytestmark = [pytest.mark.live, pytest.mark.slow]


async def test_keys_work_and_every_packet_counts_during_a_live_flood(tmp_path):
    port = free_udp_port()
    clf = PacketClassifier.load(make_tiny_bundle(tmp_path / "tiny.iotw", seed=1))
    cfg = run_config(iface="lo")
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, bpf=f"udp port {port}"))
    app = make_app(cfg, clf, None)
    sent: list[int] = []
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + GUARD
        # until dumpcap's filter is in place (before that libpcap discards what arrives)
        while app.session.source is None or not app.session.source.capturing:
            assert time.monotonic() < deadline, "the capture never started"
            await pilot.pause(0.05)
        # a 4 s burst from another process (like a real flood: no share of this process's GIL);
        # the key presses below must be handled while it is still going on
        sender = subprocess.Popen([sys.executable, "-c", f"from test_flood import flood; print(flood({port}, 6.0, 4.0))"],
                                  cwd=Path(__file__).parent, stdout=subprocess.PIPE, text=True)
        while app.session.totals.packets == 0:  # the burst reached the app
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        # post the key like a terminal would (pilot.press waits for an idle screen, which a flood never has)
        for want in (True, False):
            app.post_message(events.Key("space", " "))
            while app.paused != want:
                assert sender.poll() is None, "a key press was only handled after the burst ended"
                await asyncio.sleep(0.005)
            if want:
                counted_at_pause = app.session.totals.packets
        sent.append(int(sender.communicate(timeout=GUARD)[0]))
        # wait until the pipeline has drained the burst (count reached, or no progress for 10 s), then quit
        last, still = -1, time.monotonic()
        while app.session.totals.packets < sent[0]:
            now_count = app.session.totals.packets
            if now_count != last:
                last, still = now_count, time.monotonic()
            elif time.monotonic() - still > 10.0:
                break
            assert time.monotonic() < deadline + 3 * GUARD, (app.session.totals.packets, sent)
            await pilot.pause(0.1)
        await pilot.press("q")
    assert app.session.done.wait(GUARD)  # the worker closed the source: dumpcap's drop count is final
    total, drops = app.session.totals.packets, app.session.capture_drops
    # the key presses were handled while the burst was still being worked through
    assert 0 < counted_at_pause < total
    # every datagram sent is captured and counted; nothing is dropped by the capture
    stats = app.session.source.stats
    assert total == stats.extra["captured"] == sent[0], (sent[0], total, stats.extra)
    assert drops == 0
