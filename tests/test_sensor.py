"""A sensor that runs as a service: its name in every record, ..."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"


def iotwatch(*args, **kw):
    return subprocess.run([sys.executable, "-m", "iotwatch", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def test_sensor_name_is_in_every_alert_and_the_report(tmp_path):
    rep, al = tmp_path / "r.json", tmp_path / "a.jsonl"
    r = iotwatch("-r", DEMO, "--headless", "--sensor-name", "attic-pi", "--report", rep, "--alerts", al)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in al.read_text().splitlines()]
    assert lines and all(x["host"] == "attic-pi" for x in lines)
    assert json.loads(rep.read_text())["sensor"] == "attic-pi"


def test_sensor_name_defaults_to_the_host_name(tmp_path):
    rep = tmp_path / "r.json"
    assert iotwatch("-r", DEMO, "--headless", "-c", "10", "--report", rep).returncode == 0
    assert json.loads(rep.read_text())["sensor"] == socket.gethostname()
