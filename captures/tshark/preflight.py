"""Checks that run BEFORE any capture starts, and the probes of ``iotwatch doctor``.

Every failure is an ``InputError`` (exit 2) or ``EnvironmentProblem`` (exit 3) whose text is one
line saying what is wrong, where, and the exact fix. Nothing here can hang: every probe process
has a timeout (pyshark's LiveCapture waits forever when dumpcap lacks permission; we ask
``dumpcap -i IFACE -L`` first, which fails in milliseconds).

* tools: tshark/dumpcap found through pyshark's discovery (``get_process_path``), executable;
* files: exists, is a regular readable file, not empty, pcap/pcapng magic (or a compressed or
  modified-pcap capture tshark reads itself), at least one whole packet record
  (``chunking.packet_problem``);
* live: interface known (pyshark's ``tshark -D`` names, numbers, /sys/class/net), capture
  permission (``dumpcap -L``), BPF compiles (``dumpcap -d -f``);
* display filter compiles (tshark against an empty capture on stdin).
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyshark.tshark.tshark import TSharkNotFoundException, get_all_tshark_interfaces_names, get_process_path

from .chunking import CUT, NO_PACKETS, packet_problem
from ..pcapfile import capture_format, pcap_header
from ..errors import EnvironmentProblem, InputError, one_line
from .args import (dumpcap_bpf_check_command, dumpcap_monitor_probe_command, dumpcap_permission_command,
                          display_filter_check_command)

INSTALL_HINT = "install it: sudo apt-get install tshark"
PROBE_TIMEOUT = 1.5  # seconds per probe; permission problems must surface within 2 s
_NOISE = ("Running as user", "Capturing on")
# An empty little-endian pcap (header only): input for compiling a display filter.
EMPTY_PCAP = pcap_header()
# Captures tshark reads that we pass to it whole: gzip, zstd, lz4, and the modified (Kuznetzov) pcap.
OTHER_CAPTURE_MAGICS = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18",
                        b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1")
SYS_NET = Path("/sys/class/net")


@dataclass
class Tools:
    tshark: str
    dumpcap: str | None


def permission_fix(dumpcap: str | None = None) -> str:
    dc = dumpcap or "$(which dumpcap)"
    return (f"fix: sudo usermod -aG wireshark $USER and log in again, "
            f"or: sudo setcap cap_net_raw,cap_net_admin+eip {dc}")


def find_tool(name: str, tshark_path: str | None) -> str | None:
    try:
        return get_process_path(tshark_path=tshark_path, process_name=name)
    except TSharkNotFoundException:
        return None


def check_tools(need_dumpcap: bool = False, tshark_path: str | None = None) -> Tools:
    """Locate tshark (and dumpcap for live capture) the way pyshark does; exit 3 if unusable."""
    tshark = find_tool("tshark", tshark_path)
    if tshark is None:
        raise EnvironmentProblem("tshark not found on PATH", hint=INSTALL_HINT)
    if not os.access(tshark, os.X_OK):
        raise EnvironmentProblem(f"tshark at {tshark} is not executable by this user",
                                 hint=f"fix its permissions or {INSTALL_HINT}")
    dumpcap = find_tool("dumpcap", tshark_path)
    if need_dumpcap:
        if dumpcap is None:
            raise EnvironmentProblem("dumpcap not found on PATH (live capture needs it)", hint=INSTALL_HINT)
        if not os.access(dumpcap, os.X_OK):
            raise EnvironmentProblem(f"no permission to capture: this user may not run {dumpcap}",
                                     hint=permission_fix(dumpcap))
    return Tools(tshark, dumpcap)


def _run(argv: list[str], timeout: float = PROBE_TIMEOUT, stdin: bytes | None = None):
    """Run a probe; (returncode, meaningful stderr lines). Timeout -> returncode None."""
    try:
        cp = subprocess.run(argv, input=stdin if stdin is not None else b"", capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, []
    except OSError as e:
        return -1, [str(e)]
    lines = [ln.strip() for ln in cp.stderr.decode("utf-8", "replace").splitlines()]
    return cp.returncode, [ln for ln in lines if ln and not ln.startswith(_NOISE)]


def _reason(lines: list[str], prog: str) -> str:
    """First meaningful stderr line(s) joined into one, without the ``prog:`` prefix."""
    text = " ".join(ln for ln in lines if not ln.startswith("^") and not ln.startswith("See the User"))
    return text.removeprefix(f"{prog}: ").strip() or "no reason given"


# --- files -------------------------------------------------------------------------------------

def check_capture_file(path: str | os.PathLike) -> None:
    """Missing, unreadable, empty, non-capture or packet-less file -> InputError (exit 2)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"capture file not found: {p}", hint="check the path given to -r")
    if not p.is_file():
        raise InputError(f"not a capture file: {p} is a {'directory' if p.is_dir() else 'special file'}")
    try:
        with p.open("rb") as fh:
            head = fh.read(64)
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise InputError(f"capture file is empty (0 bytes): {p}")
            fmt = capture_format(head)
            if fmt is not None:
                _check_records(p, size, pcap=fmt == "pcap")
            elif not head.startswith(OTHER_CAPTURE_MAGICS):
                raise InputError(f"not a pcap/pcapng capture: {p} (starts with {head[:8]!r})",
                                 hint="give a file written by tcpdump, dumpcap, tshark or Wireshark")
    except PermissionError:
        raise InputError(f"cannot read capture file {p}: permission denied",
                         hint="check its permissions or run as a user who may read it") from None


def _check_records(p: Path, size: int, pcap: bool) -> None:
    """At least one whole packet record before the file ends (walks record headers only)."""
    if pcap and size < 24:
        raise InputError(f"capture file is cut short inside its pcap header ({size} bytes): {p}")
    problem = packet_problem(p)
    if problem == NO_PACKETS:
        raise InputError(f"capture file contains no packets: {p}")
    if problem == CUT:
        raise InputError(f"capture file is cut short before its first packet: {p}")
    if problem:
        detail = problem.partition("(")[2].rstrip(")") or problem
        raise InputError(f"capture file is damaged before its first packet: {p} ({detail})")


# --- filters -----------------------------------------------------------------------------------

def check_display_filter(expr: str, tshark: str) -> None:
    """Compile a Wireshark display filter; InputError quoting tshark's reason when it is bad."""
    rc, lines = _run(display_filter_check_command(tshark, expr), timeout=15, stdin=EMPTY_PCAP)
    if rc != 0:
        reason = _reason(lines, "tshark") if rc is not None else "tshark did not answer"
        raise InputError(f"bad display filter {expr!r}: {reason}", hint="see 'man wireshark-filter'")


def check_bpf(expr: str, iface: str, dumpcap: str) -> None:
    """Compile a BPF capture filter for ``iface``; InputError quoting dumpcap's reason when it is bad."""
    rc, lines = _run(dumpcap_bpf_check_command(dumpcap, iface, expr))
    bad = [ln for ln in lines if "capture filter" in ln or "isn't a valid" in ln]
    if rc != 0 or bad:
        detail = [ln for ln in lines if ln.startswith("That string")]
        reason = _reason(detail or bad or lines, "dumpcap")
        raise InputError(f"bad BPF capture filter {expr!r}: {reason}", hint="see 'man pcap-filter'")


# --- interfaces --------------------------------------------------------------------------------

def interface_names(tshark: str) -> list[str]:
    """Interface names and aliases from pyshark's ``tshark -D`` parser, plus /sys/class/net."""
    names: list[str] = []
    try:
        names = get_all_tshark_interfaces_names(tshark)
    except (subprocess.CalledProcessError, OSError):
        pass
    return list(dict.fromkeys(names + _sys_net()))


def capture_interfaces(tools: Tools) -> list[str]:
    """Names of the real capture interfaces for an error message: ``dumpcap -D`` (no extcap tools such
    as sshdump or randpkt, no descriptions), else /sys/class/net."""
    names = [n for n, _ in dumpcap_interfaces(tools.dumpcap)] if tools.dumpcap else []
    return list(dict.fromkeys(names or _sys_net()))


def sys_net() -> list[str]:
    """Interface names from /sys/class/net."""
    return _sys_net()


def _sys_net() -> list[str]:
    return sorted(d.name for d in SYS_NET.iterdir()) if SYS_NET.is_dir() else []


def check_live(iface: str, bpf: str | None, tools: Tools) -> None:
    """Interface exists (exit 2), we may capture on it (exit 3), the BPF compiles (exit 2)."""
    known = iface.isdigit() or iface.startswith("rpcap://") or iface in _sys_net()
    if not known:  # pseudo-interfaces (any, nflog, ...) and aliases: ask tshark (~0.3 s)
        names = interface_names(tools.tshark)
        known = iface.lower() in (n.lower() for n in names)
    if not known:
        raise InputError(f"unknown interface {iface!r}; available: {', '.join(capture_interfaces(tools)) or 'none found'}",
                         hint="see 'iotwatch doctor'")
    ok, reason = capture_permission(iface, tools.dumpcap)
    if not ok and is_permission_problem(reason):
        raise EnvironmentProblem(f"no permission to capture on {iface}: {reason}", hint=permission_fix(tools.dumpcap))
    if not ok:
        raise EnvironmentProblem(f"cannot capture on {iface}: {reason}", hint="see 'iotwatch doctor'")
    if bpf:
        check_bpf(bpf, iface, tools.dumpcap)


def capture_permission(iface: str, dumpcap: str | None) -> tuple[bool, str]:
    """(True, "") when dumpcap may open ``iface``; else (False, dumpcap's reason, shortened)."""
    if dumpcap is None:
        return False, "dumpcap not found"
    if not os.access(dumpcap, os.X_OK):
        return False, f"this user may not run {dumpcap}"
    rc, lines = _run(dumpcap_permission_command(dumpcap, iface))
    if rc == 0:
        return True, ""
    if rc is None:
        return False, f"dumpcap did not answer within {PROBE_TIMEOUT} s"
    first = _reason(lines[:1], "dumpcap")
    m = re.search(r"\(pcap_activate\(\) failed: (.*)\)\.?$", first)
    return False, m.group(1) if m else first


def is_permission_problem(reason: str) -> bool:
    return any(k in reason.lower() for k in ("permission", "not permitted", "may not run"))


def wifi_mode(iface: str) -> str | None:
    """'managed' or 'monitor' for a Wi-Fi interface, None for anything else."""
    base = SYS_NET / iface
    if not ((base / "wireless").exists() or (base / "phy80211").exists()):
        return None
    try:
        arphrd = int((base / "type").read_text().strip())
    except (OSError, ValueError):
        return "managed"
    return "monitor" if arphrd in (802, 803) else "managed"  # ARPHRD_IEEE80211_PRISM / _RADIOTAP


WIFI_WARNING = ("Wi-Fi in managed mode: only this host's and broadcast traffic is visible; "
                "to see other devices use monitor mode (-I, with --wpa-pwd 'PASSPHRASE:SSID' to decrypt "
                "WPA2-PSK after each device's handshake), a switch mirror port, or capture on the access point")


def monitor_mode_support(iface: str, dumpcap: str | None) -> tuple[bool, str]:
    """(True, "") when dumpcap can open ``iface`` in 802.11 monitor mode; else (False, dumpcap's reason)."""
    if dumpcap is None or not os.access(dumpcap, os.X_OK):
        return False, "dumpcap not available"
    if wifi_mode(iface) is None:  # libpcap lists link types with -I even where activation then fails
        return False, "not a Wi-Fi interface"
    rc, lines = _run(dumpcap_monitor_probe_command(dumpcap, iface))
    if rc == 0:
        return True, ""
    if rc is None:
        return False, f"dumpcap did not answer within {PROBE_TIMEOUT} s"
    return False, _reason(lines[:1], "dumpcap")


def check_monitor_mode(iface: str, dumpcap: str) -> None:
    """-I on an interface that cannot do monitor mode: one line naming it (exit 2)."""
    ok, reason = monitor_mode_support(iface, dumpcap)
    if not ok:
        raise InputError(f"{iface} cannot capture in monitor mode (-I): {reason}",
                         hint="only Wi-Fi adapters whose driver supports monitor mode can; see 'iotwatch doctor'")


# --- probes for iotwatch doctor (cli/commands/doctor.py) ---------------------------------------------------------------------------

def tool_version(path: str) -> str:
    """"4.0.17" from the first line of ``tshark -v`` / ``dumpcap -v``."""
    try:
        out = subprocess.run([path, "-v"], capture_output=True, timeout=10).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"\d+\.\d+\.\d+", out.partition("\n")[0])
    return m.group(0) if m else "unknown"


def dumpcap_interfaces(dumpcap: str) -> list[tuple[str, str]]:
    """(name, description) from ``dumpcap -D`` (real interfaces only, no extcap)."""
    try:
        out = subprocess.run([dumpcap, "-D"], capture_output=True, timeout=10).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = []
    for line in out.splitlines():
        parts = line.split(". ", 1)
        if len(parts) == 2:
            name, _, desc = parts[1].partition(" (")
            rows.append((name.strip(), desc.rstrip(")")))
    return rows
