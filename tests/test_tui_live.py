"""The live TUI in a real terminal (tmux, real keys) on ``lo``, with bounded UDP traffic to 127.0.0.1
that each test sends itself: a long pause beyond the rows held in memory (read back from the ring
files the capture keeps), the detail of a live frame, a frame that left the ring, and a display
filter applied to a live capture. Expected numbers come from the datagrams sent."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from test_tui_tmux import IOTWATCH, Tmux, table_frames, type_goto

pytestmark = [pytest.mark.slow, pytest.mark.live]


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_udp(port: int, count: int, rate: int) -> subprocess.Popen:
    """``count`` datagrams ``hello <i>`` to 127.0.0.1:port at ``rate`` per second (bounded in count
    and, by the rate, in time; the process also gives up after 30 s)."""
    return subprocess.Popen([sys.executable, "-c", (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t0 = time.monotonic()\n"
        f"for i in range({count}):\n"
        "    if time.monotonic() - t0 > 30: break\n"
        f"    s.sendto(b'hello %d' % i, ('127.0.0.1', {port}))\n"
        f"    time.sleep(max(0.0, t0 + i / {rate} - time.monotonic()))\n")])


def start_live(tmux: Tmux, port: int, *extra: str, rows: int | None = None) -> None:
    argv = [IOTWATCH, "-i", "lo", "-f", f"udp port {port}", *extra]
    if rows is not None:   # a small in-memory window: rows beyond it come back from the ring files
        argv = ["env", f"IOTWATCH_VIEW_ROWS={rows}", *argv]
    tmux.start("app", argv)
    tmux.wait_for("app", "live", timeout=60)
    time.sleep(1.0)    # dumpcap's filter in place


def keys(tmux: Tmux, *k: str) -> None:
    tmux("send-keys", "-t", "app", *k)


def goto(tmux: Tmux, frame: int) -> None:
    type_goto(tmux, "app", frame)


def wait_rows(tmux: Tmux, pred, what: str, timeout: float = 20) -> str:
    end = time.monotonic() + timeout
    while True:
        screen = tmux.screen("app")
        if pred(table_frames(screen)):
            return screen
        assert time.monotonic() < end, f"{what}:\n{screen}"
        time.sleep(0.2)


def status(tmux: Tmux) -> str:
    return tmux.screen("app").splitlines()[0]


def packets(tmux: Tmux) -> int:
    """The packet count in the status bar."""
    for part in status(tmux).split(" · "):
        if part.endswith(" pkts"):
            return int(part.split()[-2].replace(",", ""))
    return 0


def wait_packets(tmux: Tmux, at_least: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while packets(tmux) < at_least:
        assert time.monotonic() < end, status(tmux)
        time.sleep(0.05)


def test_long_live_pause_beyond_memory_loses_no_row(tmux):
    """1,000 rows in memory, 4,000 datagrams: paused early, the frozen rows that left memory come
    back from the ring files while still paused; after resume every frame is reachable."""
    port = free_udp_port()
    start_live(tmux, port, rows=1000)
    total = 4000
    sender = send_udp(port, total, rate=1500)
    wait_packets(tmux, 300)
    keys(tmux, "Space")
    tmux.wait_for("app", "paused")
    assert sender.wait(timeout=40) == 0
    tmux.wait_for("app", "new", timeout=30)
    # still paused, everything arrived: memory holds only the newest 1,000 rows, the frozen view's
    # first rows are read back from the ring
    keys(tmux, "g")
    wait_rows(tmux, lambda f: f[:3] == [1, 2, 3], "frame 1 while paused")
    assert "paused" in status(tmux) and "dropped" not in status(tmux), status(tmux)
    keys(tmux, "Space")
    tmux.wait_for("app", f"{total:,} pkts", timeout=30)
    time.sleep(1.0)
    line = status(tmux)
    assert f"{total:,} shown" in line and "dropped" not in line, line
    keys(tmux, "g")
    wait_rows(tmux, lambda f: f[:3] == [1, 2, 3], "frame 1 after resume")
    goto(tmux, total // 2)
    wait_rows(tmux, lambda f: total // 2 in f, f"frame {total // 2}")
    keys(tmux, "G")
    wait_rows(tmux, lambda f: f and f[-1] == total, f"frame {total}")
    keys(tmux, "q")
    assert tmux.exit_status("app") == 0


def test_live_detail_and_a_frame_that_left_the_ring(tmux, tmp_path):
    """Enter on a live row dissects it from the ring (its payload in the hex pane); with -w and a
    ring of 2 files x 100 packets, frame 5 has left it and the detail says so in one line."""
    port = free_udp_port()
    out = tmp_path / "ring.pcapng"
    start_live(tmux, port, "-w", str(out), "-b", "packets:100", "-b", "files:2")
    total = 450
    sender = send_udp(port, total, rate=1000)
    assert sender.wait(timeout=30) == 0
    tmux.wait_for("app", f"{total:,} pkts", timeout=30)
    time.sleep(1.0)
    goto(tmux, 420)
    wait_rows(tmux, lambda f: 420 in f, "frame 420")
    keys(tmux, "Enter")
    tmux.wait_for("app", "Frame 420:", timeout=30)
    # the tree and the hex pane are mounted together but may reach the screen in two frames
    screen = tmux.wait_for("app", "0000  00 00 00 00 00 00", timeout=10)
    # the 420th datagram is "hello 419": 9 bytes of UDP payload; the hex pane shows the frame's bytes
    assert "User Datagram Protocol" in screen and "UDP payload (9 bytes)" in screen, screen
    assert "0000  00 00 00 00 00 00" in screen and "51 bytes" in screen, screen
    keys(tmux, "Escape")
    tmux.wait_for_gone("app", "Frame 420:")
    keys(tmux, "g")      # frame 1: its row is in memory, its bytes left the ring (it keeps 301-450)
    wait_rows(tmux, lambda f: f[:1] == [1], "frame 1")
    keys(tmux, "Enter")
    screen = tmux.wait_for("app", "fell out of the live ring", timeout=30)
    line = next(ln for ln in screen.splitlines() if "fell out of the live ring" in ln)
    assert "frame 1 " in line and "301" in screen, screen
    keys(tmux, "Escape")
    tmux.wait_for_gone("app", "fell out of the live ring")
    keys(tmux, "q")
    assert tmux.exit_status("app") == 0


def test_display_filter_on_a_live_capture(tmux):
    """/ on a live capture: an invalid filter is refused as you type; a valid one keeps the rows
    whose frames tshark matches in the ring, also those that arrive afterwards; Enter on an empty
    bar clears it."""
    port = free_udp_port()
    start_live(tmux, port)
    first = send_udp(port, 300, rate=1000)
    assert first.wait(timeout=30) == 0
    tmux.wait_for("app", "300 pkts", timeout=30)
    keys(tmux, "/")
    tmux.wait_for("app", "Display filter")
    keys(tmux, "-l", "udp &&")
    tmux.wait_for("app", "tshark", timeout=30)   # tshark's reason under the bar
    keys(tmux, "Enter")
    time.sleep(1)
    assert "-Y" not in status(tmux)               # an invalid filter is not applied
    keys(tmux, *["BSpace"] * len("udp &&"))
    tmux.wait_for("app", "a Wireshark display filter, e.g. dns")   # empty: its placeholder (keys typed
    keys(tmux, "-l", 'data.data contains "hello 1"')                # sooner could land before the deletes)
    tmux.wait_for("app", "valid display filter", timeout=30)
    keys(tmux, "Enter")
    # "hello 1" is in datagrams 1, 10-19 and 100-199 of 0..299: 111 rows
    tmux.wait_for("app", '111 match data.data contains "hello 1"', timeout=30)
    assert "-Y data.data" in status(tmux)
    # frames that arrive later are checked as they come: 300..1299 add 1000-1299 (300 more)
    second = subprocess.Popen([sys.executable, "-c", (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t0 = time.monotonic()\n"
        "for i in range(300, 1300):\n"
        f"    s.sendto(b'hello %d' % i, ('127.0.0.1', {port}))\n"
        "    time.sleep(max(0.0, t0 + (i - 300) / 1000 - time.monotonic()))\n")])
    assert second.wait(timeout=30) == 0
    tmux.wait_for("app", "1,300 pkts", timeout=30)
    tmux.wait_for("app", '411 match data.data contains "hello 1"', timeout=30)
    keys(tmux, "g")
    screen = wait_rows(tmux, lambda f: f[:3] == [2, 11, 12], "the first matching frames")
    keys(tmux, "/")
    tmux.wait_for("app", "Display filter")
    keys(tmux, *["BSpace"] * len('data.data contains "hello 1"'))
    keys(tmux, "Enter")
    time.sleep(1.0)
    assert "-Y" not in status(tmux) and "1,300 shown" in status(tmux), status(tmux)
    keys(tmux, "q")
    assert tmux.exit_status("app") == 0
