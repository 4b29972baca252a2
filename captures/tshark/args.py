"""Argv builders for tshark/dumpcap (unit-tested without privileges; the only process they start is
one ``tshark -v`` per executable, for field names that changed between releases: ``version.py``).

The capture layer asks tshark for *field* output instead of PDML/JSON, one line per frame::

    tshark -l -n -T fields -E separator=/t -E occurrence=f -E quote=n -e frame.number -e ... [-o pref:val ...]

* ``occurrence=f`` keeps the first occurrence only (an ICMP error quoting an IP header would
  otherwise give ``127.0.0.1,127.0.0.1``).
* tshark escapes tabs and newlines inside values (``\\t``, ``\\n``), so one line = one frame and
  one tab = one column separator.
* ``DISSECTION_PREFS`` make every frame dissect on its own (no TCP/IP reassembly, no TCP sequence
  analysis). That keeps per-frame fields independent of neighbouring frames, bounds tshark's
  per-session memory, and is cheaper. Measured on a 100k-frame loopback capture (see bench/).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from ..errors import InputError
from ..fields import TSHARK_FIELDS
from .version import field_name

# Preferences that cut per-packet state and cost without changing the per-frame fields we read.
DISSECTION_PREFS: Mapping[str, str] = {
    "tcp.analyze_sequence_numbers": "FALSE",   # no retransmission/dup-ack state per stream
    "tcp.desegment_tcp_streams": "FALSE",      # each segment dissected on its own
    "tcp.calculate_timestamps": "FALSE",
    "udp.calculate_timestamps": "FALSE",
    "ip.defragment": "FALSE",                  # first fragment shows the L4 header, like a sniffer sees it
    "ipv6.defragment": "FALSE",
    "tls.desegment_ssl_records": "FALSE",
    "tls.desegment_ssl_application_data": "FALSE",
    "http.desegment_headers": "FALSE",
    "http.desegment_body": "FALSE",
    # MQTT messages decode per the version in the session's CONNECT; when CONNECT was not seen
    # (live capture started mid-session, or a replay chunk boundary) assume the common 3.1.1.
    "mqtt.default_version": "MQTT v3.1.1",
}

FIELD_OUTPUT_ARGS: tuple[str, ...] = (
    "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f", "-E", "quote=n",
)


def field_args(fields: Sequence[str] = TSHARK_FIELDS) -> list[str]:
    """``-T fields ... -e f1 -e f2 ...`` for ``fields`` (default: every tshark field of FIELDS)."""
    args = list(FIELD_OUTPUT_ARGS)
    for f in fields:
        args += ["-e", f]
    return args


def pref_args(prefs: Mapping[str, str]) -> list[str]:
    """``-o name:value`` for every preference."""
    args: list[str] = []
    for name, value in prefs.items():
        args += ["-o", f"{name}:{value}"]
    return args


def tshark_fields_command(tshark: str, *, read: str = "-", display_filter: str | None = None,
                          prefs: Mapping[str, str] = DISSECTION_PREFS, line_buffered: bool = True,
                          fields: Sequence[str] = TSHARK_FIELDS, extra: Iterable[str] = ()) -> list[str]:
    """Full tshark argv emitting our fields from ``read``: a file, or ``-`` = a capture file on stdin
    (a chunk of a file, or dumpcap's pcapng stream). The only place the source's tshark argv is built."""
    argv = [tshark]
    if line_buffered:
        argv.append("-l")
    argv += ["-n", *field_args([field_name(f, tshark) for f in fields])]
    if display_filter:
        argv += ["-Y", display_filter]
    argv += pref_args(prefs)
    argv += list(extra)
    argv += ["-r", read]
    return argv


def dumpcap_command(dumpcap: str, iface: str, bpf: str | None = None, buffer_mib: int = 128,
                    monitor_mode: bool = False) -> list[str]:
    """dumpcap capturing ``iface`` (BPF in the kernel) as a pcapng stream on stdout.

    No ``-q``: dumpcap's final "Packets received/dropped" line is how drops are counted. ``-B``: a
    kernel buffer large enough to absorb bursts while tshark (~20k pkt/s) catches up; dumpcap's
    default 2 MiB holds only ~9k small packets, the rest of a burst is dropped."""
    argv = [dumpcap]
    if bpf:
        argv += ["-f", bpf]
    argv += ["-i", iface]
    if monitor_mode:
        argv.append("-I")  # 802.11 monitor mode (rfmon): every station's frames, radiotap headers
    return argv + ["-w", "-", "-B", str(buffer_mib)]


def dumpcap_monitor_probe_command(dumpcap: str, iface: str) -> list[str]:
    """List the link types of ``iface`` in monitor mode: fails when the adapter/driver cannot do it."""
    return [dumpcap, "-i", iface, "-I", "-L"]


def _uat_string(text: str) -> str:
    """A value inside a double-quoted UAT field: quote and backslash as \\xNN escapes."""
    return text.replace("\\", "\\x5c").replace('"', "\\x22")


def wlan_decryption_args(wpa_pwd: Sequence[str] = (), wpa_psk: Sequence[str] = ()) -> list[str]:
    """tshark's 802.11 decryption (what Wireshark's "Decryption keys" dialog stores in 80211_keys).

    ``wpa_pwd``: ``PASSPHRASE:SSID`` (as tshark's ``wpa-pwd``; the SSID follows the last colon, colons
    inside the passphrase are sent percent-encoded); ``wpa_psk``: the 64-hex-digit pre-shared key.
    tshark decrypts a station's frames once it has seen that station's EAPOL handshake.
    Raises InputError naming the bad value."""
    if not wpa_pwd and not wpa_psk:
        return []
    argv = ["-o", "wlan.enable_decryption:TRUE"]
    for item in wpa_pwd:
        pw, sep, ssid = item.rpartition(":")
        if not sep or not ssid:
            raise InputError(f"--wpa-pwd {_shown(item)}: expected PASSPHRASE:SSID",
                             hint="e.g. --wpa-pwd 'my passphrase:MyNetwork'")
        if not 8 <= len(pw) <= 63:
            raise InputError(f"--wpa-pwd: a WPA passphrase has 8 to 63 characters, got {len(pw)}")
        if len(ssid.encode()) > 32:
            raise InputError(f"--wpa-pwd: an SSID has at most 32 bytes, got {len(ssid.encode())}")
        key = pw.replace(":", "%3a") + ":" + ssid
        argv += ["-o", f'uat:80211_keys:"wpa-pwd","{_uat_string(key)}"']
    for item in wpa_psk:
        hexkey = item.lower().removeprefix("0x")
        if len(hexkey) != 64 or any(c not in "0123456789abcdef" for c in hexkey):
            raise InputError("--wpa-psk: expected the 256-bit pre-shared key as 64 hex digits",
                             hint="derive it with wpa_passphrase SSID PASSPHRASE, or use --wpa-pwd")
        argv += ["-o", f'uat:80211_keys:"wpa-psk","{hexkey}"']
    return argv


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def dumpcap_permission_command(dumpcap: str, iface: str) -> list[str]:
    """Cheap capture-permission probe: list the link types of ``iface`` (opens the device, captures nothing)."""
    return [dumpcap, "-i", iface, "-L"]


def dumpcap_bpf_check_command(dumpcap: str, iface: str, bpf: str) -> list[str]:
    """Compile ``bpf`` for ``iface`` and print the BPF code (fails with dumpcap's reason when invalid)."""
    return [dumpcap, "-d", "-f", bpf, "-i", iface]


def display_filter_check_command(tshark: str, expr: str) -> list[str]:
    """Compile display filter ``expr`` against an empty capture fed on stdin."""
    return [tshark, "-n", "-Y", expr, "-r", "-"]
