"""The shipping recipe (docs/shipping/): rsyslog reads iotwatch's --alerts file with imfile, parses it
with mmjsonparse and maps it to ECS documents — run for real on a sample of our alerts."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULESET = ROOT / "docs" / "shipping" / "iotwatch-ruleset.conf"
DEMO = ROOT / "captures" / "demo" / "demo.pcapng"


def rsyslog_config(work: Path, alerts: Path, out: Path, unparsed: Path) -> str:
    return f'''global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
include(file="{RULESET}")
ruleset(name="iotwatch_ship") {{ action(type="omfile" file="{out}" template="iotwatch_ecs") }}
ruleset(name="iotwatch_unparsed") {{ action(type="omfile" file="{unparsed}") }}
input(type="imfile" file="{alerts}" tag="iotwatch" ruleset="iotwatch" freshStartTail="off")
'''


def ship(tmp_path: Path, alerts: Path, expect: int, timeout: float = 60.0) -> tuple[list[dict], list[str]]:
    """Run rsyslogd in the foreground on the recipe until ``expect`` records arrived (or timeout)."""
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    assert Path(rsyslogd).exists(), "rsyslog is not installed (bash dev.sh setup installs it)"
    work, out, unparsed = tmp_path / "work", tmp_path / "ecs.jsonl", tmp_path / "unparsed.log"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(rsyslog_config(work, alerts, out, unparsed))
    check = subprocess.run([rsyslogd, "-N1", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        def count():
            n = sum(1 for _ in open(out)) if out.exists() else 0
            return n + (sum(1 for _ in open(unparsed)) if unparsed.exists() else 0)
        while count() < expect and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    docs = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    bad = unparsed.read_text().splitlines() if unparsed.exists() else []
    return docs, bad


@pytest.fixture(scope="module")
def alerts(tmp_path_factory):
    d = tmp_path_factory.mktemp("alerts")
    path = d / "alerts.jsonl"
    r = subprocess.run([sys.executable, "-m", "iotwatch", "-r", str(DEMO), "--headless", "--alerts", str(path),
                        "--stats-interval", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = path.read_text().splitlines()
    assert len(lines) >= 3
    return [json.loads(x) for x in lines]


def test_every_alert_arrives_as_an_ecs_document_with_its_fields_mapped(tmp_path, alerts):
    src = tmp_path / "alerts.jsonl"
    src.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    docs, bad = ship(tmp_path, src, len(alerts))
    assert bad == []
    assert len(docs) == len(alerts), "records dropped or duplicated"
    assert {a["event_type"] for a in alerts} == {"alert", "stats"}
    for a, d in zip(alerts, docs):
        assert d["@timestamp"] == a["timestamp"]
        assert d["observer"]["hostname"] == a["host"]
        if a["event_type"] == "stats":
            assert d["event"]["kind"] == "metric" and d["suricata"]["eve"]["stats"] == a["stats"]
            assert "rule" not in d and "source" not in d
            continue
        assert d["event"]["kind"] == "alert" and d["event"]["severity"] == a["alert"]["severity"]
        assert d["rule"] == {"id": a["alert"]["signature_id"], "name": a["alert"]["signature"],
                             "category": a["alert"]["category"]}
        assert d["observer"]["hostname"] == a["host"]
        assert d["suricata"]["eve"]["flow_id"] == a["flow_id"]
        assert d["suricata"]["eve"]["alert"] == a["alert"], "the EVE alert object (metadata too) is kept whole"
        for ours, theirs in (("src_ip", ("source", "ip")), ("dest_ip", ("destination", "ip")),
                             ("src_port", ("source", "port")), ("dest_port", ("destination", "port")),
                             ("community_id", ("network", "community_id")), ("proto", ("network", "transport"))):
            if ours in a:
                assert d[theirs[0]][theirs[1]] == a[ours], ours
        assert isinstance(d["rule"]["id"], int) and isinstance(d["suricata"]["eve"]["flow_id"], int)


def test_a_line_that_is_not_json_is_kept_aside_not_dropped(tmp_path, alerts):
    src = tmp_path / "alerts.jsonl"
    src.write_text(json.dumps(alerts[0]) + "\n" + "not json {\n" + json.dumps(alerts[1]) + "\n")
    docs, bad = ship(tmp_path, src, 3)
    assert len(docs) == 2 and len(bad) == 1 and "not json {" in bad[0]
