"""Floods on ``lo`` (issue 7): send as fast as possible for a bounded time and count.

Every datagram sent is either counted or reported as a capture drop; nothing disappears silently.
Traffic goes only to 127.0.0.1, bounded in count and in time. Deadlines are hang guards, never
timing assertions.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from test_live import GUARD, _wait_for_dumpcap, free_udp_port

pytestmark = [pytest.mark.live, pytest.mark.slow]

MAX_DATAGRAMS = 150_000
MAX_SECONDS = 2.0


def flood(port: int, seconds: float = MAX_SECONDS, min_seconds: float = 0.0) -> int:
    """Blast UDP datagrams at 127.0.0.1:port (a bound socket swallows them, so no ICMP replies), at
    most MAX_DATAGRAMS and ``seconds``; ``min_seconds`` spreads them so the burst lasts that long."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", port))
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        start = time.monotonic()
        end = start + seconds
        payload = b"f" * 48
        while sent < MAX_DATAGRAMS and time.monotonic() < end:
            for _ in range(500):
                s.sendto(payload, ("127.0.0.1", port))
            sent += 500
            ahead = start + min_seconds * sent / MAX_DATAGRAMS - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    sink.close()
    return sent


def run_flood(tmp_path, *extra):
    port = free_udp_port()
    report, pred = tmp_path / "flood.json", tmp_path / "flood.csv"
    proc = subprocess.Popen([sys.executable, "-m", "iotwatch", "-i", "lo", "--headless", "-f", f"udp port {port}",
                             "--report", str(report), "--predictions", str(pred), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_dumpcap(proc)
        sent = flood(port)
        # let the pipeline drain what the kernel buffered, then stop the run like a user (Ctrl-C)
        deadline = time.monotonic() + 3 * GUARD
        last, still = -1, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            rows = sum(1 for _ in pred.open()) - 1 if pred.exists() else 0
            if rows >= sent:
                break
            if rows != last:
                last, still = rows, time.monotonic()
            elif time.monotonic() - still > 10.0:  # no progress for 10 s: drained (or stuck)
                break
        proc.send_signal(2)
        out, err = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    data = json.loads(report.read_text())
    assert data.get("interrupted") is True
    assert sum(1 for _ in pred.open()) - 1 == data["packets"]  # every counted packet has its prediction row
    return sent, data["packets"], data["capture_drops"], data["capture_received"]


def test_flood_default_buffer_counts_every_datagram(tmp_path):
    """The default 128 MiB kernel buffer absorbs a 2 s burst while tshark catches up: every datagram
    sent is received by dumpcap and counted, none is dropped."""
    sent, counted, drops, received = run_flood(tmp_path)
    assert sent >= 10_000
    assert counted == received == sent, f"sent {sent}, received {received}, counted {counted}"
    assert drops == 0, f"sent {sent}, counted {counted}, drops {drops}"


def test_flood_small_buffer_reports_the_loss_as_capture_drops(tmp_path):
    """A 1 MiB buffer cannot hold the burst: what is not counted shows up as capture drops.

    On ``lo`` the kernel ring sees each datagram twice (outgoing and incoming copy; libpcap keeps one),
    so its drop counter can exceed the real loss; it never under-reports it."""
    sent, counted, drops, received = run_flood(tmp_path, "-B", "1")
    assert counted == received
    assert 0 < counted < sent, f"sent {sent}, counted {counted}: the burst was expected to overflow 1 MiB"
    assert drops >= sent - counted, f"sent {sent}, counted {counted}, reported drops {drops}"
