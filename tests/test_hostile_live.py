"""Issue 16, capture-layer items: a killed live capture leaves no dumpcap (2), an interface removed
mid-capture is reported (5), stopping drains dumpcap's backlog (10), and a .pcapng.gz replay is
chunked (6). Live tests capture on lo or inside a network namespace created here (no route out)."""
from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
from fakes import require
from fuzzgen import PROBE, wireshark_user

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "captures" / "demo" / "demo.pcapng"

pytestmark = [pytest.mark.live, pytest.mark.slow]  # live captures, namespaces, other users (1-3 s each)


def _can_capture(iface: str = "lo") -> bool:
    from iotwatch.captures.tshark.preflight import capture_permission

    return capture_permission(iface, "/usr/bin/dumpcap")[0]




def _python_for(user: str) -> list[str]:
    """A command running ``iotwatch`` as ``user``: this interpreter when that user may execute it,
    else the system python of the same minor version with this environment's site-packages."""
    exe = os.path.realpath(sys.executable)
    probe = subprocess.run(["setpriv", "--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--init-groups",
                            exe, "-c", PROBE], capture_output=True, timeout=30)
    site = sysconfig.get_paths()["purelib"]
    code = (f"import site,sys; site.addsitedir({site!r}); from iotwatch.main import main; "
            "sys.exit(main(sys.argv[1:]))")
    if probe.returncode == 0:
        return [exe, "-c", code]
    other = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    require(os.access(other, os.X_OK), f"{user} cannot run {exe} and there is no {other}")
    return [other, "-c", code]


def _start(cmd: list[str], cwd: Path, user: str | None = None, env=None) -> subprocess.Popen:
    if user is not None:
        pw = pwd.getpwnam(user)
        cmd = ["setpriv", "--reuid", user, "--regid", str(pw.pw_gid), "--init-groups", "env", f"HOME={cwd}",
               f"USER={user}", *cmd]
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stderr.readline()
    assert "capturing on" in line, line + p.stderr.read()
    return p


def _dumpcaps(root: psutil.Process) -> list[psutil.Process]:
    return [c for c in root.children(recursive=True) if c.name() == "dumpcap"]


# ------------------------------------------------------------------------------ item 2
@pytest.mark.parametrize("how", ["SIGKILL", "SIGHUP"])
def test_item2_killed_nonroot_live_capture_leaves_no_dumpcap(how):
    require(os.geteuid() == 0, "root (to run iotwatch as another user)")
    user = wireshark_user()
    require(user is not None, "a non-root user in the wireshark group (useradd -G wireshark NAME)")
    require(_can_capture(), "capture permission on lo")
    work = Path(tempfile.mkdtemp(prefix="iw16-", dir="/tmp"))   # pytest's tmp_path is root-only (0700)
    os.chmod(work, 0o777)
    try:
        _kill_and_check(work, user, how)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_and_check(tmp_path: Path, user: str, how: str) -> None:
    cmd = _python_for(user) + ["-i", "lo", "-f", "udp port 9", "--headless", "--report", str(tmp_path / "r.json")]
    p = _start(cmd, tmp_path, user)
    proc = psutil.Process(p.pid)
    caps = _dumpcaps(proc)
    assert caps and all(c.uids().real != 0 for c in caps)   # dumpcap really runs as the user
    p.send_signal(getattr(signal, how))
    p.wait(timeout=30)
    gone, alive = psutil.wait_procs(caps, timeout=10)
    for c in alive:
        c.kill()
    assert not alive, f"dumpcap still running {len(alive)} after {how} of iotwatch"
    if how == "SIGHUP":
        assert json.loads((tmp_path / "r.json").read_text())["interrupted"] is True


def test_item2_watchdog_stops_dumpcap_when_its_owner_dies(tmp_path):
    """The lifeline alone (any user): a process that owns a watched child dies by SIGKILL."""
    code = ("import os, sys, time, subprocess\n"
            "from iotwatch.captures.tshark.watchdog import Lifeline\n"
            "lf = Lifeline()\n"
            "p = subprocess.Popen(lf.argv(['sleep', '300']), pass_fds=(lf.read_fd,))\n"
            "lf.started()\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(300)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    watchdog = psutil.Process(int(owner.stdout.readline()))
    for _ in range(100):
        kids = watchdog.children()
        if kids:
            break
        time.sleep(0.05)
    assert kids and kids[0].name() == "sleep"
    owner.kill()
    owner.wait()
    gone, alive = psutil.wait_procs([watchdog, kids[0]], timeout=10)
    for c in alive:
        c.kill()
    assert not alive


STUBBORN = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n")


@pytest.mark.parametrize("early", [False, True], ids=["running", "signal-at-start"])
def test_item2_closing_never_orphans_a_slow_dumpcap(early):
    """A dumpcap that does not go on SIGTERM (a loaded machine; here: one that ignores it) is still
    stopped by close's sequence (stop_watched): SIGTERM, then the lifeline cut, the watchdog killed
    only last. SIGTERM-then-SIGKILL of the watchdog left it running (seen as a flaky
    test_live_close_leaves_no_child_processes at load 11). ``signal-at-start``: the SIGTERM reaches
    the watchdog right after it started, before (old code) its handlers were installed."""
    from iotwatch.captures.tshark.process import ToolProcess
    from iotwatch.captures.tshark.watchdog import Lifeline, stop_watched
    lf = Lifeline()
    proc = ToolProcess(lf.argv([sys.executable, "-c", STUBBORN]), pass_fds=(lf.read_fd,), die_with_parent=False)
    lf.started()
    watchdog = psutil.Process(proc.pid)
    if early:
        proc.popen.send_signal(signal.SIGTERM)
    else:
        assert proc.popen.stdout.readline() == b"ready\n"
    kids = []
    for _ in range(200):
        kids = watchdog.children() if watchdog.is_running() else kids
        if kids or not watchdog.is_running():
            break
        time.sleep(0.01)
    stop_watched(proc, lf, grace=0.5)
    gone, alive = psutil.wait_procs(kids, timeout=8)
    for c in alive:
        c.kill()
    assert not alive, f"left running: {[c.pid for c in alive]}"
    assert proc.returncode is not None


# ------------------------------------------------------------------------------ item 5
@pytest.fixture
def netns():
    require(os.geteuid() == 0, "root (for a network namespace)")
    name = f"iw16-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_item5_interface_removed_mid_capture(tmp_path, netns):
    ns = ["ip", "netns", "exec", netns]
    subprocess.run(ns + ["ip", "link", "add", "iwv0", "type", "veth", "peer", "name", "iwv1"], check=True)
    for dev in ("iwv0", "iwv1"):
        subprocess.run(ns + ["ip", "link", "set", dev, "up"], check=True)
    rep = tmp_path / "r.json"
    p = _start(ns + [sys.executable, "-m", "iotwatch", "-i", "iwv0", "--headless", "--report", str(rep)], tmp_path)
    subprocess.run(ns + ["ip", "link", "del", "iwv0"], check=True)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("iotwatch: error: the capture on iwv0 stopped")
    r = json.loads(rep.read_text())
    assert "stopped" in r["truncated"]


# ------------------------------------------------------------------------------ item 10
def test_item10_stopping_drains_what_dumpcap_captured(tmp_path):
    require(_can_capture(), "capture permission on lo")
    port = 47000 + os.getpid() % 1000
    rep = tmp_path / "r.json"
    p = _start([sys.executable, "-m", "iotwatch", "-i", "lo", "-f", f"udp port {port}", "--headless",
                "--report", str(rep)], tmp_path)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", port))
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        t_end = time.monotonic() + 10
        while sent < 30_000 and time.monotonic() < t_end:   # a burst: tshark falls behind dumpcap
            s.sendto(b"iotwatch-drain %d" % sent, ("127.0.0.1", port))
            sent += 1
    p.send_signal(signal.SIGTERM)   # at once, while tshark still has a backlog
    _, err = p.communicate(timeout=60)
    sink.close()
    assert p.returncode == 0, err
    r = json.loads(rep.read_text())
    assert r["interrupted"] is True
    assert r["capture_received"] > 0
    # every packet dumpcap wrote was processed, but one: a dumpcap blocked writing into the pipe when
    # SIGTERM arrives counts the packet whose write the signal interrupted (plain dumpcap | tshark
    # shows the same); the unfixed stop lost thousands here (16,250 of 19,130 in the issue)
    assert r["capture_written"] - 1 <= r["packets"] <= r["capture_written"], r


# ------------------------------------------------------------------------------ item 6 (.pcapng.gz)
def test_item6_gzip_pcapng_replay_is_chunked(tmp_path):
    from iotwatch.captures.sources import open_source

    gz = tmp_path / "demo.pcapng.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes()) * 2)   # two gzip members, like `cat a.gz b.gz`
    src = open_source(read=str(gz), chunk_packets=1000)
    frames = np.concatenate([b["frame_number"] for b in src.batches(max_rows=4096)])
    src.close()
    ref = subprocess.run(["tshark", "-n", "-r", str(gz), "-T", "fields", "-e", "frame.number"], capture_output=True,
                         text=True, timeout=120).stdout.split()
    assert src.tsharks_started > 5                          # was 1: one tshark holding the whole file
    assert frames.tolist() == list(range(1, len(ref) + 1))
    assert src.stats.truncated is None


def test_item6_cut_gzip_replay_is_marked_truncated(tmp_path):
    from iotwatch.captures.sources import open_source

    gz = tmp_path / "cut.pcapng.gz"
    gz.write_bytes(gzip.compress(DEMO.read_bytes())[:300_000])
    src = open_source(read=str(gz), chunk_packets=1000)
    n = sum(len(b) for b in src.batches(max_rows=4096))
    src.close()
    assert n > 100 and src.stats.truncated
