"""A real live capture on ``lo`` (CI runs as root): every datagram we send to 127.0.0.1 is counted.

Traffic goes to 127.0.0.1 only, a bounded number of datagrams. The BPF filter keeps other loopback
traffic (other tests, other tools) out, so the count must be exact. Deadlines are hang guards,
never timing assertions.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from iotwatch.captures.sources import open_source

pytestmark = pytest.mark.live

N = 40
GUARD = 30.0  # seconds: fail instead of hanging


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_udp(port: int, n: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(b"datagram %d" % i, ("127.0.0.1", port))


def capturing(src) -> bool:
    """dumpcap says 'File: -' once the device is open and it writes packets."""
    return any(line.startswith("File:") for line in src.stderr_lines)


def test_live_lo_counts_every_datagram():
    port = free_udp_port()
    src = open_source(iface="lo", bpf=f"udp port {port}")
    assert src.live and src.description == "lo"
    got, sent, batches, empty = [], False, 0, 0
    deadline = time.monotonic() + GUARD
    try:
        for b in src.batches(max_rows=16, max_wait=0.1):
            batches += 1
            empty += len(b) == 0
            got += b["udp_dstport"].tolist()
            assert len(b) <= 16
            if not sent and capturing(src):
                time.sleep(0.2)
                send_udp(port, N)
                sent = True
                settle = time.monotonic() + 1.0  # keep reading briefly: nothing extra may arrive
            if sent and len(got) >= N and time.monotonic() > settle:
                break
            assert time.monotonic() < deadline, f"only {len(got)} of {N} datagrams after {GUARD} s"
        procs = list(src.processes)
    finally:
        src.close()
    assert sent
    assert got == [port] * N
    assert empty >= 1  # an idle interface still yields (empty) batches, so callers can stop
    assert src.stats.packets == N
    assert src.stats.capture_drops == 0
    assert src.stats.extra["captured"] == N  # dumpcap's own count, read when it stopped
    assert all(p.returncode is not None for p in procs)  # close() ended dumpcap and tshark


def test_live_close_leaves_no_child_processes():
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    src = open_source(iface="lo", bpf=f"udp port {free_udp_port()}")
    it = src.batches(max_rows=8, max_wait=0.05)
    next(it)
    deadline = time.monotonic() + GUARD
    while True:  # dumpcap is started by its watchdog (captures/tshark/watchdog.py) a moment later
        running = {p.pid for p in me.children(recursive=True)} - before
        names = {psutil.Process(pid).name() for pid in running if psutil.pid_exists(pid)}
        if names >= {"dumpcap", "tshark"} or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert names >= {"dumpcap", "tshark"}
    src.close()
    deadline = time.monotonic() + GUARD
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in running):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _wait_for_dumpcap(proc: subprocess.Popen) -> None:
    """Until ``iotwatch --headless -i`` says it is capturing (dumpcap's filter is in place: from then on
    libpcap keeps every packet; what arrives while the filter is being set is discarded, which made
    a fixed sleep after the socket opened lose the first datagrams on a loaded machine)."""
    import selectors

    deadline = time.monotonic() + GUARD
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = []
    while time.monotonic() < deadline:
        if sel.select(timeout=0.1):
            line = proc.stderr.readline()
            if not line:
                pytest.fail(f"iotwatch exited before capturing: {''.join(seen)}")
            seen.append(line)
            if line.startswith("iotwatch: capturing on "):
                return
        assert proc.poll() is None, "".join(seen) + proc.stderr.read()
    pytest.fail(f"iotwatch never said it was capturing: {''.join(seen)}")


def _has_packet_socket(pid: int) -> bool:
    """dumpcap opened its AF_PACKET socket: listed in /proc/net/packet by inode."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/packet") as fh:
        return any(line.split()[-1] in inodes for line in fh.readlines()[1:])


def test_headless_cli_live_count(tmp_path):
    port = free_udp_port()
    report = tmp_path / "live.json"
    proc = subprocess.Popen([sys.executable, "-m", "iotwatch", "-i", "lo", "--headless", "-f", f"udp port {port}",
                             "-c", str(N), "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for_dumpcap(proc)
        send_udp(port, N)
        out, err = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # iotwatch and its dumpcap/tshark
            proc.wait()
    assert proc.returncode == 0, err
    data = json.loads(report.read_text())
    assert data["packets"] == N and data["source"] == "lo"


@pytest.mark.slow
def test_killed_iotwatch_leaves_no_capture_running():
    """SIGKILL the process that owns a live source: its dumpcap and tshark must not keep capturing."""
    script = ("import sys, time\nfrom iotwatch.captures.sources import open_source\n"
              f"src = open_source(iface='lo', bpf='udp port {free_udp_port()}')\n"
              "for b in src.batches(max_wait=0.1):\n    print('batch', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "batch"
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert {k.name() for k in kids} >= {"dumpcap", "tshark"}
    finally:
        proc.kill()
        proc.wait()
    gone, alive = psutil.wait_procs(kids, timeout=GUARD)
    assert not alive
