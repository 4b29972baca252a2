"""Every preflight error path: one line, the documented exit code, no traceback, never a hang.

Subprocess runs use a timeout only as a hang guard (never a timing assertion). The unprivileged
cases run as ``nobody`` through ``setpriv`` (CI runs as root)."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from iotwatch.captures.tshark import preflight
from iotwatch.captures.errors import EnvironmentProblem, InputError
from iotwatch.captures.sources import open_source
from iotwatch.main import main

from make_golden import PCAPS

GOLDEN = PCAPS / "loopback.pcapng"
PY = sys.executable
HANG_GUARD = 30  # seconds; a hang fails the test instead of blocking CI
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
OPEN_LO = ("import sys\nfrom iotwatch.captures.sources import open_source\n"
           "from iotwatch.captures.errors import IotwatchError\n"
           "try:\n    open_source(iface='lo')\nexcept IotwatchError as e:\n"
           "    print(e, file=sys.stderr); sys.exit(e.exit_code)\nprint('opened')\n")


@pytest.fixture
def world_dir():
    """A directory user nobody can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="iotwatch-preflight-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def run(argv, env=None, user_nobody=False, cwd="/"):
    argv = (AS_NOBODY if user_nobody else []) + list(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=HANG_GUARD, env=env, cwd=cwd)


def one_clean_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    return lines[0]


def cli(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr()


# --- tools missing -------------------------------------------------------------------------------

def test_missing_tshark_exits_3_with_install_command(world_dir):
    env = dict(os.environ, PATH=str(world_dir))
    cp = run([PY, "-m", "iotwatch", "-r", str(GOLDEN), "--headless"], env=env)
    assert cp.returncode == 3
    line = one_clean_line(cp.stderr)
    assert "tshark not found" in line and "apt-get install tshark" in line


def test_missing_tshark_check_tools(monkeypatch, world_dir):
    monkeypatch.setenv("PATH", str(world_dir))
    with pytest.raises(EnvironmentProblem) as ei:
        open_source(read=str(GOLDEN))
    assert ei.value.exit_code == 3 and "apt-get install tshark" in str(ei.value)


def test_missing_dumpcap_for_live_exits_3(monkeypatch, world_dir):
    (world_dir / "tshark").symlink_to(shutil.which("tshark"))
    monkeypatch.setenv("PATH", str(world_dir))
    with pytest.raises(EnvironmentProblem) as ei:
        open_source(iface="lo")
    assert "dumpcap not found" in str(ei.value) and "apt-get install tshark" in str(ei.value)
    # replaying a file needs no dumpcap
    src = open_source(read=str(GOLDEN))
    assert len(next(src.batches())) > 0
    src.close()


# --- no capture permission -----------------------------------------------------------------------

def test_nobody_live_capture_exits_3_with_fix():
    cp = run([PY, "-c", OPEN_LO], user_nobody=True)
    assert cp.returncode == 3, cp.stderr
    line = one_clean_line(cp.stderr)
    assert "no permission to capture" in line
    assert "usermod -aG wireshark" in line and "setcap cap_net_raw,cap_net_admin+eip" in line


def test_nobody_headless_cli_exits_3():
    cp = run([PY, "-m", "iotwatch", "-i", "lo", "--headless"], user_nobody=True)
    assert cp.returncode == 3, cp.stderr
    assert "usermod -aG wireshark" in one_clean_line(cp.stderr)


def test_nobody_with_runnable_dumpcap_lacking_capabilities_exits_3(world_dir):
    """dumpcap runs but may not open the device: the `dumpcap -L` probe answers, no hang."""
    shutil.copy(shutil.which("dumpcap"), world_dir / "dumpcap")  # a copy carries no file capabilities
    (world_dir / "dumpcap").chmod(0o755)
    (world_dir / "tshark").symlink_to(shutil.which("tshark"))
    env = dict(os.environ, PATH=f"{world_dir}:/usr/bin:/bin")
    cp = run([PY, "-c", OPEN_LO], env=env, user_nobody=True)
    assert cp.returncode == 3, cp.stderr
    line = one_clean_line(cp.stderr)
    assert "no permission to capture on lo" in line and "setcap" in line


def test_nobody_doctor_exits_3_and_prints_the_fix():
    cp = run([PY, "-m", "iotwatch", "doctor"], user_nobody=True)
    assert cp.returncode == 3
    assert "Traceback" not in cp.stderr
    assert "usermod -aG wireshark" in cp.stdout and "tshark" in cp.stdout


def test_unreadable_file_exits_2(world_dir):
    f = world_dir / "secret.pcapng"
    shutil.copy(GOLDEN, f)
    f.chmod(0o600)
    cp = run([PY, "-c", OPEN_LO.replace("iface='lo'", f"read={str(f)!r}")], user_nobody=True)
    assert cp.returncode == 2
    assert "permission denied" in one_clean_line(cp.stderr)


# --- interfaces and filters ------------------------------------------------------------------------

def test_unknown_interface_exits_2_listing_available(capsys):
    rc, out = cli(["-i", "nosuch0", "--headless"], capsys)
    assert rc == 2
    line = one_clean_line(out.err)
    assert "unknown interface 'nosuch0'" in line and "lo" in line.split("available:")[1]


def test_bad_bpf_exits_2_quoting_dumpcap(capsys):
    rc, out = cli(["-i", "lo", "-f", "udp prot 5", "--headless"], capsys)
    assert rc == 2
    line = one_clean_line(out.err)
    assert "bad BPF capture filter 'udp prot 5'" in line and "syntax error" in line


def test_bad_display_filter_exits_2_quoting_tshark(capsys):
    rc, out = cli(["-r", str(GOLDEN), "-Y", "tcp.port ==", "--headless"], capsys)
    assert rc == 2
    line = one_clean_line(out.err)
    assert "bad display filter 'tcp.port =='" in line and "Unexpected end of filter" in line


def test_bad_display_filter_live_exits_2():
    with pytest.raises(InputError) as ei:
        open_source(iface="lo", display_filter="frame.nosuch")
    assert "frame.nosuch" in str(ei.value)


def test_good_filters_pass():
    tools = preflight.check_tools(need_dumpcap=True)
    preflight.check_display_filter("udp.port == 53 && !icmp", tools.tshark)
    preflight.check_bpf("udp port 53 or icmp", "lo", tools.dumpcap)
    preflight.check_live("lo", "udp port 53", tools)


# --- bad files -------------------------------------------------------------------------------------

def _pcap_header() -> bytes:
    return preflight.EMPTY_PCAP


def _pcapng_blocks_before_first_packet() -> bytes:
    data = GOLDEN.read_bytes()
    off = 0
    while int.from_bytes(data[off:off + 4], "little") != 6:  # up to the first enhanced packet block
        off += int.from_bytes(data[off + 4:off + 8], "little")
    return data[:off]


@pytest.mark.parametrize("name,content,expect", [
    ("missing.pcap", None, "capture file not found"),
    ("empty.pcap", b"", "empty (0 bytes)"),
    ("notes.pcap", b"hello, I am a text file\n", "not a pcap/pcapng capture"),
    ("short.pcap", _pcap_header()[:10], "cut short inside its pcap header"),
    ("header_only.pcap", _pcap_header(), "contains no packets"),
    ("header_only.pcapng", _pcapng_blocks_before_first_packet(), "contains no packets"),
    ("cut_first.pcapng", GOLDEN.read_bytes()[:len(_pcapng_blocks_before_first_packet()) + 20],
     "cut short before its first packet"),
])
def test_bad_file_exits_2_with_one_line(tmp_path, capsys, name, content, expect):
    f = tmp_path / name
    if content is not None:
        f.write_bytes(content)
    rc, out = cli(["-r", str(f), "--headless"], capsys)
    assert rc == 2
    line = one_clean_line(out.err)
    assert expect in line and str(f) in line


def test_directory_is_not_a_capture(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        open_source(read=str(tmp_path))


def test_corrupt_first_packet_is_an_input_error(tmp_path):
    data = bytearray((PCAPS / "loopback.pcap").read_bytes())
    data[24 + 8:24 + 12] = (0x7FFFFFFF).to_bytes(4, "little")  # first record claims a 2 GB packet
    f = tmp_path / "corrupt.pcap"
    f.write_bytes(bytes(data))
    with pytest.raises(InputError) as ei:
        open_source(read=str(f))
    assert "damaged before its first packet" in str(ei.value) and "2147483647-byte packet" in str(ei.value)


def test_corrupt_after_some_packets_yields_them_and_says_why(tmp_path):
    data = bytearray((PCAPS / "loopback.pcap").read_bytes())
    off = 24
    for _ in range(3):  # skip three records
        off += 16 + int.from_bytes(data[off + 8:off + 12], "little")
    data[off + 8:off + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    f = tmp_path / "corrupt3.pcap"
    f.write_bytes(bytes(data))
    src = open_source(read=str(f))
    n = sum(len(b) for b in src.batches())
    src.close()
    assert n == 3
    assert "damaged or corrupt" in src.stats.truncated and "after frame 3" in src.stats.truncated


# --- doctor ------------------------------------------------------------------------------------------

def test_doctor_as_root_exits_0_with_versions_and_interfaces(capsys):
    rc, out = cli(["doctor"], capsys)
    assert rc == 0
    assert re.search(r"tshark\s.*/tshark\s.*\d+\.\d+\.\d+", out.out)
    assert re.search(r"dumpcap\s.*/dumpcap\s.*\d+\.\d+\.\d+", out.out)
    assert "lo" in out.out and "ok" in out.out


def test_doctor_warns_about_managed_wifi(monkeypatch, tmp_path, capsys):
    wlan = tmp_path / "wlan7"
    (wlan / "wireless").mkdir(parents=True)
    (wlan / "type").write_text("1\n")
    mon = tmp_path / "mon7"
    (mon / "phy80211").mkdir(parents=True)
    (mon / "type").write_text("803\n")
    monkeypatch.setattr(preflight, "SYS_NET", tmp_path)
    assert preflight.wifi_mode("wlan7") == "managed"
    assert preflight.wifi_mode("mon7") == "monitor"
    assert preflight.wifi_mode("lo") is None
    rc, out = cli(["doctor", "-i", "wlan7", "-i", "lo"], capsys)
    text = " ".join(out.out.split())
    assert "only this host's and broadcast traffic is visible" in text
    assert "mirror port" in text
    assert rc == 0  # lo is capturable


def test_doctor_exits_3_without_tshark(monkeypatch, world_dir, capsys):
    monkeypatch.setenv("PATH", str(world_dir))
    rc, out = cli(["doctor"], capsys)
    assert rc == 3
    assert "apt-get install tshark" in " ".join(out.out.split())


def test_permission_probe_does_not_hang_on_a_stuck_dumpcap(monkeypatch, world_dir):
    stuck = world_dir / "dumpcap"
    stuck.write_text("#!/bin/sh\nsleep 60\n")
    stuck.chmod(stuck.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setattr(preflight, "PROBE_TIMEOUT", 0.3)
    ok, reason = preflight.capture_permission("lo", str(stuck))
    assert not ok and "did not answer" in reason
