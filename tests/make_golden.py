"""Golden captures and their expected field CSVs (nfstream-style exact comparison).

    .venv/bin/python tests/make_golden.py            # regenerate tests/data/expected/*.csv
    .venv/bin/python tests/make_golden.py --record   # re-record tests/data/pcaps/* first (root)

Expected values come straight from raw ``tshark -T fields`` output, converted here line by line
with plain Python (first non-empty of a field's tshark fields; ``int(x, 16)`` for hex; missing
-> -1 / nan / ""). This deliberately shares nothing with ``captures/tshark/source.FieldsParser``
except the field list and the tshark argv, so the golden test checks the parser independently.

``--record`` captures loopback traffic with dumpcap (all of it sent by this script to 127.0.0.1
and ::1 only, bounded in count): UDP to a closed port (-> ICMP port unreachable), a DNS query and
answer on 127.0.0.1:53, a TCP handshake with an HTTP request/response, an MQTT CONNECT refused by
CONNACK, ICMP/ICMPv6 echo via ping. editcap then derives a pcap copy, a copy with
``label=<class>`` packet comments, and a copy cut in the middle of a packet. ARP (which loopback
lacks) comes from a ping between two throw-away network namespaces joined by a veth pair.
"""
from __future__ import annotations

import argparse
import csv
import math
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAPS = HERE / "data" / "pcaps"
EXPECTED = HERE / "data" / "expected"
RECORDED = "loopback.pcapng"
BPF = "udp port 47001 or port 53 or tcp port 47002 or tcp port 1883 or icmp or icmp6"
LABELS = {1: "normal", 2: "recon", 5: "dos", 9: "bruteforce", 12: "exfiltration"}
CUT_FRAMES = 10  # loopback_cut.pcap ends in the middle of frame CUT_FRAMES + 1


def canonical(kind: str, raw: str) -> str:
    """One tshark field string -> the CSV spelling of the value our source must produce."""
    if kind == "str":
        return raw
    if raw == "":
        return "nan" if kind == "float" else "-1"
    if kind == "float":
        return repr(float(raw))
    return str(int(raw, 16) if kind == "hex" else int(raw))


def expected_rows(pcap: Path) -> list[list[str]]:
    from iotwatch.captures.fields import FIELDS, TSHARK_FIELDS
    from iotwatch.captures.tshark.args import tshark_fields_command

    cp = subprocess.run(tshark_fields_command("tshark", read=str(pcap), line_buffered=False),
                        capture_output=True, text=True)
    rows = []
    for line in cp.stdout.splitlines():
        raw = dict(zip(TSHARK_FIELDS, line.split("\t")))
        row = []
        for f in FIELDS:
            value = next((raw[t] for t in f.tshark if raw[t] != ""), "")
            row.append(canonical(f.kind, value))
        rows.append(row)
    return rows


def write_expected() -> None:
    from iotwatch.captures.fields import FIELD_NAMES

    EXPECTED.mkdir(parents=True, exist_ok=True)
    for pcap in sorted(PCAPS.iterdir()):
        rows = expected_rows(pcap)
        out = EXPECTED / (pcap.name + ".csv")
        with out.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(FIELD_NAMES)
            w.writerows(rows)
        print(f"{out.relative_to(HERE.parent)}: {len(rows)} frames")


def read_expected(pcap_name: str) -> list[dict[str, str]]:
    with (EXPECTED / (pcap_name + ".csv")).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def same_value(kind: str, expected: str, actual: str) -> bool:
    if kind == "float" and expected == "nan":
        return actual == "nan" or (actual not in ("", "-1") and math.isnan(float(actual)))
    return expected == actual


# --- recording (root) ---------------------------------------------------------------------------

def _dns_query(ident: int, name: str, qtype: int) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def _dns_answer(query: bytes) -> bytes:
    ident = query[:2]
    question = query[12:]
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 7])
    return ident + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + answer


def _send_traffic() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(3):
        udp.sendto(b"reading=%d" % i, ("127.0.0.1", 47001))
    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.sendto(b"v6 reading", ("::1", 47001))
    # DNS query and answer on 127.0.0.1:53
    dns_srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns_srv.bind(("127.0.0.1", 53))
    dns_srv.settimeout(2)
    for ident, qtype in ((0x1234, 1), (0x1235, 28)):
        udp.sendto(_dns_query(ident, "sensor1.iot.example", qtype), ("127.0.0.1", 53))
        q, peer = dns_srv.recvfrom(512)
        if qtype == 1:
            dns_srv.sendto(_dns_answer(q), peer)
            udp.settimeout(2)
            udp.recvfrom(512)
    dns_srv.close()
    # TCP handshake, HTTP request/response, close
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 47002))
    srv.listen(1)
    cli = socket.create_connection(("127.0.0.1", 47002), timeout=2)
    conn, _ = srv.accept()
    cli.sendall(b"GET /status HTTP/1.1\r\nHost: camera\r\n\r\n")
    conn.recv(1024)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    cli.recv(1024)
    cli.close()
    conn.close()
    srv.close()
    # MQTT CONNECT refused with CONNACK return code 5 (not authorized)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 1883))
    srv.listen(1)
    cli = socket.create_connection(("127.0.0.1", 1883), timeout=2)
    conn, _ = srv.accept()
    payload = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0xC2]) + struct.pack("!H", 60)
    payload += struct.pack("!H", 6) + b"cam-01" + struct.pack("!H", 5) + b"admin" + struct.pack("!H", 6) + b"123456"
    cli.sendall(bytes([0x10, len(payload)]) + payload)
    conn.recv(1024)
    conn.sendall(bytes([0x20, 2, 0, 5]))
    cli.recv(1024)
    cli.close()
    conn.close()
    srv.close()
    subprocess.run(["ping", "-c", "2", "-i", "0.2", "127.0.0.1"], capture_output=True, timeout=10)
    subprocess.run(["ping", "-6", "-c", "1", "::1"], capture_output=True, timeout=10)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def record_veth_arp(out: Path) -> None:
    """ARP request/reply (real MAC addresses) + ICMP echo between two network namespaces joined by a
    veth pair, created here and deleted afterwards: no route out, nothing on the host's interfaces."""
    ns_a, ns_b = "iotw-golden-a", "iotw-golden-b"
    for ns in (ns_a, ns_b):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
    try:
        _ip("netns", "add", ns_a)
        _ip("netns", "add", ns_b)
        _ip("-n", ns_a, "link", "add", "gveth-a", "type", "veth", "peer", "name", "gveth-b", "netns", ns_b)
        _ip("-n", ns_a, "addr", "add", "10.99.0.1/24", "dev", "gveth-a")
        _ip("-n", ns_b, "addr", "add", "10.99.0.2/24", "dev", "gveth-b")
        _ip("-n", ns_a, "link", "set", "gveth-a", "up")
        _ip("-n", ns_b, "link", "set", "gveth-b", "up")
        dumpcap = subprocess.Popen(["ip", "netns", "exec", ns_a, "dumpcap", "-q", "-i", "gveth-a", "-f",
                                    "arp or icmp", "-w", str(out)], stderr=subprocess.PIPE)
        time.sleep(1.5)
        subprocess.run(["ip", "netns", "exec", ns_a, "ping", "-c", "2", "-i", "0.2", "10.99.0.2"],
                       capture_output=True, timeout=10)
        time.sleep(0.5)
        dumpcap.terminate()
        dumpcap.wait(10)
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def record() -> None:
    PCAPS.mkdir(parents=True, exist_ok=True)
    record_veth_arp(PCAPS / "veth_arp.pcapng")
    raw = PCAPS / RECORDED
    dumpcap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", BPF, "-w", str(raw)],
                               stderr=subprocess.PIPE)
    time.sleep(1.5)
    try:
        _send_traffic()
        time.sleep(1.0)
    finally:
        dumpcap.terminate()
        dumpcap.wait(10)
    pcap = PCAPS / "loopback.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(raw), str(pcap)], check=True)
    comments = []
    for frame, label in LABELS.items():
        comments += ["-a", f"{frame}:label={label}"]
    subprocess.run(["editcap", *comments, str(raw), str(PCAPS / "labelled.pcapng")], check=True)
    data = pcap.read_bytes()
    offset = 24
    for _ in range(CUT_FRAMES + 1):
        start = offset
        (incl,) = struct.unpack("<I", data[offset + 8:offset + 12])
        offset += 16 + incl
    (PCAPS / "loopback_cut.pcap").write_bytes(data[:start + 16 + (offset - start - 16) // 2])
    for p in sorted(PCAPS.iterdir()):
        print(f"{p.relative_to(HERE.parent)}: {p.stat().st_size} bytes")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true", help="re-record the golden pcaps on lo first (root)")
    ns = ap.parse_args(argv)
    if ns.record:
        record()
    write_expected()
    return 0


if __name__ == "__main__":
    sys.exit(main())
