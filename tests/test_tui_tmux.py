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


def test_demo_replay_in_a_real_terminal(tmux, tmp_path):
    demo = demo_capture()
    assert demo.is_file(), f"demo capture missing at {demo}"
    head = subprocess.run([IOTWATCH, "-r", str(demo), "--headless", "--report", str(tmp_path / "h.json")],
                          capture_output=True, text=True, timeout=300)
    assert head.returncode == 0, head.stderr
    report = json.loads((tmp_path / "h.json").read_text())
    n = report["packets"]

    tmux.start("app", [IOTWATCH, "-r", str(demo), "--report", str(tmp_path / "t.json")])
    screen = tmux.wait_for("app", "finished")
    lines = screen.splitlines()
    assert len(lines) == 40 and all(len(line) <= 120 for line in lines)
    assert f"{n:,} pkts" in lines[0] and demo.name in lines[0]
    assert f"showing last {n:,} of {n:,}" in screen
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
