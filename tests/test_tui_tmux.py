"""The real thing in a real terminal: ``iotwatch -r <demo capture>`` inside tmux (120x40), read
the screen with capture-pane, quit with the key and check the exit code; and a bad file exits 2
with one line. The expected numbers come from a headless run on the same capture."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from iotwatch.options import demo_capture

pytestmark = pytest.mark.slow  # a real terminal per test (1-9 s each)

HERE = Path(__file__).parent

IOTWATCH = str(Path(sys.executable).parent / "iotwatch")


class Tmux:
    """A private tmux server (own socket) whose panes stay readable after their process exits."""

    def __init__(self, folder: Path):
        self.sock = f"iotwatch-test-{uuid.uuid4().hex[:8]}"
        self.folder = folder
        self.conf = folder / "tmux.conf"
        # keep dead panes readable; no escape delay so Escape then q are two keys, not alt+q
        self.conf.write_text("set -g remain-on-exit on\nset -s escape-time 0\n", encoding="utf-8")

    def __call__(self, *args: str) -> str:
        # COLUMNS/LINES (set under pytest) would override the pane's real size in the app
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        out = subprocess.run(["tmux", "-L", self.sock, "-f", str(self.conf), *args], capture_output=True,
                             text=True, timeout=30, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, name: str, argv: list[str], width: int = 120, height: int = 40) -> None:
        """Run ``argv`` in a new pane; a small Python wrapper (no shell) records its exit code."""
        rc_file = self.folder / f"{name}.rc"
        wrapper = ("import subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
                   "open(sys.argv[1], 'w').write(str(rc))")
        self("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
             sys.executable, "-c", wrapper, str(rc_file), *argv)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name)

    def transcript(self, name: str) -> str:
        """Everything the pane printed, history included, wrapped lines joined."""
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", name)

    def wait_for(self, name: str, text: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen(name)
            if text in screen:
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen(name)}")

    def settled(self, name: str, quiet: float = 1.0, timeout: float = 30) -> str:
        """The screen once it has not changed for ``quiet`` seconds."""
        end = time.monotonic() + timeout
        last, since = self.screen(name), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.1)
            now = self.screen(name)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return last

    def wait_for_gone(self, name: str, text: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text not in self.screen(name):
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} still on screen:\n{self.screen(name)}")

    def exit_status(self, name: str, timeout: float = 60) -> int:
        rc_file = self.folder / f"{name}.rc"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if rc_file.is_file() and rc_file.read_text():
                return int(rc_file.read_text())
            time.sleep(0.1)
        raise AssertionError(f"iotwatch did not exit:\n{self.screen(name)}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


@pytest.mark.slow
def test_demo_replay_in_a_real_terminal(tmux, tmp_path):
    demo = demo_capture()
    assert demo.is_file(), f"demo capture missing at {demo}"
    head = subprocess.run([IOTWATCH, "-r", str(demo), "--headless", "--report", str(tmp_path / "h.json")],
                          capture_output=True, text=True, timeout=300)
    assert head.returncode == 0, head.stderr
    report = json.loads((tmp_path / "h.json").read_text())
    n = report["packets"]

    tmux.start("app", [IOTWATCH, "-r", str(demo), "--report", str(tmp_path / "t.json")])
    tmux.wait_for("app", "finished")
    screen = tmux.settled("app")    # the panes of the last tick drawn too (a loaded machine paints in pieces)
    lines = screen.splitlines()
    assert len(lines) == 40 and all(len(line) <= 120 for line in lines)
    assert f"{n:,} pkts" in lines[0] and demo.name in lines[0]
    assert f"{n:,} of {n:,} packets" in screen
    for title in ("Packets", "Classes", "Incidents", "attacker → victim", "Source → Destination"):
        assert title in screen
    for inc in report["incidents"]:   # every incident of the headless run has its line (class/kind, attacker)
        assert any(f"{inc['class']}/{inc['kind']}" in line and (inc["attacker"] or "spoofed") in line
                   for line in lines), f"incident {inc['id']} not on:\n{screen}"
    for cls, count in report["class_counts"].items():
        assert any(cls in line and f"{count:,}" in line for line in lines), f"{cls} {count} not on:\n{screen}"
    if report.get("labelled_packets"):
        assert "Confusion (labelled)" in screen and f"macro-F1 {report['macro_f1']:.3f}" in screen
    assert "Quit" in lines[-1] and "Help" in lines[-1]

    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0
    tui = json.loads((tmp_path / "t.json").read_text())
    assert tui["class_counts"] == report["class_counts"]
    assert tui.get("confusion") == report.get("confusion")


@pytest.mark.slow
def test_help_and_quit_keys_in_a_real_terminal(tmux):
    tmux.start("app", [IOTWATCH, "-r", str(demo_capture())], width=80, height=24)
    tmux.wait_for("app", "finished")
    tmux("send-keys", "-t", "app", "?")
    screen = tmux.wait_for("app", "iotwatch help")
    assert "Anomalies" in screen and "Pause" in screen
    tmux("send-keys", "-t", "app", "Escape")
    tmux.wait_for_gone("app", "iotwatch help")   # ESC then q at once would read as alt+q
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0


def test_missing_capture_exits_2_with_one_line(tmux, tmp_path):
    missing = tmp_path / "nope.pcapng"
    tmux.start("app", [IOTWATCH, "-r", str(missing)])
    assert tmux.exit_status("app") == 2
    text = [line for line in tmux.transcript("app").splitlines() if line.strip()]
    errors = [line for line in text if line.startswith("iotwatch: error:")]
    assert len(errors) == 1 and str(missing.name) in errors[0], text
    assert not any("Traceback" in line for line in text)


# --- issue 14: the Wireshark habits, in a real terminal with real keys ---------------------------------

def table_frames(screen: str) -> list[int]:
    """Frame numbers of the packet rows on screen (the No. column, '!' marker allowed)."""
    out = []
    for line in screen.splitlines():
        if line.startswith("│") and len(line) > 3:
            cell = line[2:].split()    # after the border and the '!' marker column
            if cell and cell[0].isdigit():
                out.append(int(cell[0]))
    return out


def type_goto(tmux, name: str, frame: int) -> None:
    """: FRAME Enter, each step seen on screen first (on a loaded machine keys typed before the bar
    showed its last value were lost)."""
    hint = "a frame number, or a display filter"
    tmux("send-keys", "-t", name, ":")
    tmux.wait_for(name, hint)
    # the bar holds the last value: clear it and see it empty (its placeholder = the hint, shown twice)
    # before typing; a binding's action (ctrl+u) can run after characters typed behind it
    tmux("send-keys", "-t", name, "C-u")
    end = time.monotonic() + 10
    while tmux.screen(name).count(hint) < 2:
        assert time.monotonic() < end, tmux.screen(name)
        time.sleep(0.1)
    tmux("send-keys", "-t", name, "-l", str(frame))
    end = time.monotonic() + 10
    while not any(line.strip("│▊▎ ") == str(frame) for line in tmux.screen(name).splitlines()):   # the bar's text
        assert time.monotonic() < end, tmux.screen(name)
        time.sleep(0.1)
    tmux("send-keys", "-t", name, "Enter")


def tshark_count(path, expr=None) -> int:
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number"] + (["-Y", expr] if expr else [])
    return len(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())


def status_line(tmux, name) -> str:
    return tmux.screen(name).splitlines()[0]


def test_80x24_shows_number_marker_and_full_class_names(tmux):
    tmux.start("app", [IOTWATCH, "-r", str(demo_capture())], width=80, height=24)
    tmux.wait_for("app", "finished")
    tmux("send-keys", "-t", "app", "a", "g")       # anomalies only, from the first one
    screen = tmux.wait_for("app", "match anomalies")
    lines = screen.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "No." in lines[2] and "Class" in lines[2]
    rows = [line for line in lines if line.startswith("│!")]
    assert len(rows) >= 4, screen
    tmux("send-keys", "-t", "app", "G")
    names = set()
    for key in ["G"] + ["f"] * 6:   # each attack class in turn: the full name is in the table
        tmux("send-keys", "-t", "app", key)
        time.sleep(0.4)
        names |= {w for line in tmux.screen("app").splitlines() if line.startswith("│") for w in line.split()}
    assert {"spoofing", "exfiltration", "bruteforce"} <= names, names
    footer = lines[-1]
    for key in ("Quit", "Pause", "Filter", "Go to", "Pane", "Help"):
        assert key in footer, footer
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0


def test_filter_bar_valid_invalid_cleared_and_jump(tmux):
    demo = demo_capture()
    n = tshark_count(demo)
    tmux.start("app", [IOTWATCH, "-r", str(demo)])
    tmux.wait_for("app", "finished")
    tmux("send-keys", "-t", "app", "/")
    tmux.wait_for("app", "Display filter")
    tmux("send-keys", "-t", "app", "-l", "dns &&")
    screen = tmux.wait_for("app", "tshark", timeout=30)   # tshark's reason under the bar
    tmux("send-keys", "-t", "app", "Enter")
    time.sleep(1)
    assert "-Y" not in status_line(tmux, "app")          # an invalid filter is not applied
    tmux("send-keys", "-t", "app", "BSpace", "BSpace", "BSpace")
    tmux.wait_for("app", "valid display filter", timeout=30)
    tmux("send-keys", "-t", "app", "Enter")
    want = tshark_count(demo, "dns")
    screen = tmux.wait_for("app", f"{want:,} match dns", timeout=60)
    assert "-Y dns" in screen.splitlines()[0]
    assert all(f <= n for f in table_frames(screen)) and table_frames(screen)
    tmux("send-keys", "-t", "app", "/")
    tmux.wait_for("app", "Display filter")
    tmux("send-keys", "-t", "app", "BSpace", "BSpace", "BSpace", "Enter")
    tmux.wait_for_gone("app", "match dns", timeout=30)
    assert "-Y" not in status_line(tmux, "app")
    # jump to a frame: it is on screen
    tmux("send-keys", "-t", "app", ":")
    tmux.wait_for("app", "a frame number, or a display filter")
    tmux("send-keys", "-t", "app", "-l", "1234")
    tmux("send-keys", "-t", "app", "Enter")
    end = time.monotonic() + 20
    while 1234 not in table_frames(tmux.screen("app")):
        assert time.monotonic() < end, tmux.screen("app")
        time.sleep(0.2)
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0


def test_export_is_read_by_tshark_with_the_views_frame_count(tmux, tmp_path):
    demo = demo_capture()
    tmux.start("app", [IOTWATCH, "-r", str(demo)])
    tmux.wait_for("app", "finished")
    tmux("send-keys", "-t", "app", "a")
    screen = tmux.wait_for("app", "match anomalies")
    shown = int(screen.splitlines()[0].split(" shown")[0].rsplit("· ", 1)[-1].replace(",", ""))
    out = tmp_path / "anomalies.pcapng"
    tmux("send-keys", "-t", "app", "w")
    tmux.wait_for("app", "frames to write")
    tmux("send-keys", "-t", "app", "C-u")     # clear the suggested name, type ours (at a typist's pace)
    tmux.wait_for("app", "file to write the table's frames to")
    tmux("send-keys", "-t", "app", "-l", str(out))
    tmux.wait_for("app", out.name)
    tmux("send-keys", "-t", "app", "Enter")
    tmux.wait_for("app", "frames written to", timeout=60)
    assert tshark_count(out) == shown > 0
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0


def test_ctrl_c_exits_130_and_restores_the_terminal(tmux):
    tmux.start("app", [IOTWATCH, "-r", str(demo_capture()), "--speed", "1x"], width=80, height=24)
    tmux.wait_for("app", "replay")
    tmux("send-keys", "-t", "app", "C-c")
    assert tmux.exit_status("app") == 130
    assert "Packets" not in tmux.screen("app")   # the alternate screen is gone


@pytest.mark.slow
def test_home_on_a_200k_packet_replay_shows_frame_1(tmux, tmp_path):
    big = tmp_path / "m200k.pcapng"
    subprocess.run([sys.executable, str(HERE.parent / "bench" / "make_mixed_pcap.py"), str(big), "--packets", "200000"],
                   check=True, capture_output=True, timeout=600)
    tmux.start("app", [IOTWATCH, "-r", str(big)])
    end = time.monotonic() + 600
    while True:   # beyond the 50,000 rows kept in memory
        line = status_line(tmux, "app")
        pk = next((w for w in line.split(" · ") if w.endswith(" pkts")), "0 pkts").split()[0].replace(",", "")
        if pk.isdigit() and int(pk) > 80_000:
            break
        assert time.monotonic() < end, line
        time.sleep(0.5)
    tmux("send-keys", "-t", "app", "g")
    end = time.monotonic() + 60
    # frame 1 at the top, read back from the file (a row shows "…" until its page arrives)
    while not (table_frames(tmux.screen("app"))[:1] == [1] and " → " in tmux.screen("app").splitlines()[3]):
        assert time.monotonic() < end, tmux.screen("app")
        time.sleep(0.2)
    screen = tmux.screen("app")
    assert table_frames(screen)[:5] == [1, 2, 3, 4, 5]
    assert all(" → " in line for line in screen.splitlines()[3:8]), screen
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0


@pytest.mark.live
def test_pause_resume_during_a_live_flood_keeps_every_row(tmux):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmux.start("app", [IOTWATCH, "-i", "lo", "-f", f"udp port {port}"])
    tmux.wait_for("app", "live", timeout=60)
    time.sleep(1.0)    # dumpcap's filter in place
    total = 3000       # bounded: 3000 datagrams to 127.0.0.1 over ~3 s
    sender = subprocess.Popen([sys.executable, "-c", (
        "import socket, time\n"
        f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t0 = time.monotonic()\n"
        f"for i in range({total}):\n"
        f"    s.sendto(b'x' * 32, ('127.0.0.1', {port}))\n"
        "    time.sleep(max(0.0, t0 + i / 1000 - time.monotonic()))\n")])
    tmux.wait_for("app", " pkts", timeout=30)
    time.sleep(0.5)
    tmux("send-keys", "-t", "app", "Space")
    tmux.wait_for("app", "paused")
    time.sleep(2.0)
    paused_screen = tmux.screen("app")
    tmux("send-keys", "-t", "app", "Space")
    assert sender.wait(timeout=30) == 0
    screen = tmux.wait_for("app", f"{total:,} pkts", timeout=60)
    time.sleep(1.0)
    screen = tmux.screen("app")
    assert f"{total:,} shown" in screen.splitlines()[0] and "dropped" not in screen.splitlines()[0], screen
    assert "+" in paused_screen.splitlines()[0] and "new" in paused_screen.splitlines()[0]
    # every row reachable: the first, one from the pause, the last
    tmux("send-keys", "-t", "app", "g")
    end = time.monotonic() + 20
    while table_frames(tmux.screen("app"))[:3] != [1, 2, 3]:
        assert time.monotonic() < end, tmux.screen("app")
        time.sleep(0.2)
    for frame in (total // 2, total):
        type_goto(tmux, "app", frame)
        end = time.monotonic() + 20
        while frame not in table_frames(tmux.screen("app")):
            assert time.monotonic() < end, tmux.screen("app")
            time.sleep(0.2)
    tmux("send-keys", "-t", "app", "q")
    assert tmux.exit_status("app") == 0
