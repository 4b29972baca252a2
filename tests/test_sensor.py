"""A sensor that runs as a service: its name in every record, --append, SIGHUP reopen (logrotate), stats events."""
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


# -- --append, SIGHUP reopen, stats events -----------------------------------------------------------------

import csv  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from test_live import _wait_for_dumpcap, free_udp_port, send_udp  # noqa: E402


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path))) if path.exists() else []


def wait_until(cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_append_continues_files_and_never_wipes_them(tmp_path):
    pred, al = tmp_path / "p.csv", tmp_path / "a.jsonl"
    for n in (40, 25):
        r = iotwatch("-r", DEMO, "--headless", "-c", n, "--append", "--predictions", pred, "--alerts", al)
        assert r.returncode == 0, r.stderr
    lines = pred.read_text().splitlines()
    assert lines[0].startswith("frame_number,") and sum(x.startswith("frame_number,") for x in lines) == 1
    assert [int(x["frame_number"]) for x in rows(pred)] == list(range(1, 41)) + list(range(1, 26))
    # without --append (and without --force) an existing file is refused, untouched
    before = pred.read_bytes()
    r = iotwatch("-r", DEMO, "--headless", "-c", 5, "--predictions", pred)
    assert r.returncode == 2 and "already exists" in r.stderr and pred.read_bytes() == before


def test_append_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = iotwatch("-r", DEMO, "--headless", "-c", 5, "--append", "--alerts", fifo)
    assert r.returncode == 2 and "FIFO" in r.stderr and r.stderr.count("\n") == 1


def test_stats_events_carry_the_counters(tmp_path):
    al, rep = tmp_path / "a.jsonl", tmp_path / "r.json"
    r = iotwatch("-r", DEMO, "--headless", "--alerts", al, "--report", rep, "--stats-interval", "1",
                 "--sensor-name", "s1")
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in al.read_text().splitlines()]
    stats = [e for e in events if e["event_type"] == "stats"]
    report = json.loads(rep.read_text())
    last = stats[-1]
    assert last["host"] == "s1" and last["stats"]["decoder"]["pkts"] == report["packets"]
    assert last["stats"]["detect"]["alert"] == report["incidents_opened"]
    assert last["stats"]["iotwatch"]["anomalies"] == report["anomalies"]
    assert last["stats"]["iotwatch"]["class_counts"] == report["class_counts"]
    assert sum(e["event_type"] == "alert" for e in events) == len(events) - len(stats)
    r = iotwatch("-r", DEMO, "--headless", "--stats-interval", "1")
    assert r.returncode == 2 and "--alerts" in r.stderr


@pytest.mark.slow
def test_sighup_reopens_after_rotation_without_losing_or_repeating_a_line(tmp_path):
    """logrotate renames the files, then SIGHUP: rows before go to the old file, rows after to a new one."""
    port = free_udp_port()
    pred, al, rep = tmp_path / "p.csv", tmp_path / "a.jsonl", tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "iotwatch", "-i", "lo", "--headless", "-f", f"udp port {port}",
                             "--append", "--predictions", str(pred), "--alerts", str(al), "--report", str(rep),
                             "--stats-interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_dumpcap(proc)
        send_udp(port, 300)
        wait_until(lambda: len(rows(pred)) >= 300, "the first 300 rows")
        wait_until(lambda: '"event_type":"stats"' in al.read_text(), "a stats event before the rotation")
        os.rename(pred, tmp_path / "p.csv.1")
        os.rename(al, tmp_path / "a.jsonl.1")
        proc.send_signal(signal.SIGHUP)
        wait_until(pred.exists, "the reopened predictions file")
        assert proc.poll() is None, "SIGHUP stopped a sensor run with --append"
        send_udp(port, 200)
        wait_until(lambda: len(rows(pred)) >= 200, "200 rows in the new file")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    old, new = rows(tmp_path / "p.csv.1"), rows(pred)
    frames = [int(x["frame_number"]) for x in old + new]
    assert len(old) == 300 and len(new) == 200
    assert frames == list(range(1, 501)), "a row lost or written twice across the rotation"
    assert json.loads(rep.read_text())["packets"] == 500
    old_events = [json.loads(x) for x in (tmp_path / "a.jsonl.1").read_text().splitlines()]
    new_events = [json.loads(x) for x in al.read_text().splitlines()]
    assert any(e["event_type"] == "stats" for e in old_events) and new_events[-1]["event_type"] == "stats"
    assert new_events[-1]["stats"]["decoder"]["pkts"] == 500
