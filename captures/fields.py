"""The per-packet fields every packet source yields: the one schema shared by capture, features and UI.

Each ``Field`` names one numpy column of a :class:`~iotwatch.captures.batch.PacketBatch` and the tshark
field(s) it comes from (``-T fields -E occurrence=f``; the first non-empty of the listed tshark fields
wins, so IPv4 and IPv6 share ``ip_src``). Kinds:

* ``int``   decimal integer; missing -> -1 (int64)
* ``hex``   tshark prints ``0x0012``; missing -> -1 (int64)
* ``float`` missing -> NaN (float64)
* ``str``   missing -> "" (numpy object array of str)

Add a field here and every source, golden file generator and the feature pipeline see it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    tshark: tuple[str, ...]
    kind: str  # "int" | "hex" | "float" | "str"
    doc: str = ""


FIELDS: tuple[Field, ...] = (
    Field("frame_number", ("frame.number",), "int", "1-based frame number as tshark shows it"),
    Field("time_epoch", ("frame.time_epoch",), "float", "capture time, seconds since the epoch"),
    Field("frame_len", ("frame.len",), "int", "bytes on the wire"),
    Field("protocols", ("frame.protocols",), "str", "dissector stack, e.g. eth:ethertype:ip:tcp:mqtt"),
    Field("eth_src", ("eth.src", "wlan.sa"), "str", "source MAC (802.11: the frame's source address)"),
    Field("eth_dst", ("eth.dst", "wlan.da"), "str", "destination MAC (802.11: the frame's destination address)"),
    Field("ip_version", ("ip.version", "ipv6.version"), "int", "4, 6 or -1"),
    Field("ip_src", ("ip.src", "ipv6.src"), "str"),
    Field("ip_dst", ("ip.dst", "ipv6.dst"), "str"),
    Field("ip_proto", ("ip.proto", "ipv6.nxt"), "int", "IP protocol / IPv6 next header"),
    Field("ip_len", ("ip.len", "ipv6.plen"), "int"),
    Field("ip_ttl", ("ip.ttl", "ipv6.hlim"), "int"),
    Field("ip_flags", ("ip.flags",), "hex", "IPv4 flags, 3 bits as tshark 4 prints them: DF 0x2, MF 0x1, reserved 0x4"),
    Field("ip_frag_offset", ("ip.frag_offset",), "int"),
    Field("tcp_srcport", ("tcp.srcport",), "int"),
    Field("tcp_dstport", ("tcp.dstport",), "int"),
    Field("udp_srcport", ("udp.srcport",), "int"),
    Field("udp_dstport", ("udp.dstport",), "int"),
    Field("tcp_len", ("tcp.len",), "int", "TCP payload bytes"),
    Field("tcp_flags", ("tcp.flags",), "hex", "FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20"),
    Field("tcp_window", ("tcp.window_size_value",), "int", "raw window field (unscaled)"),
    Field("tcp_hdr_len", ("tcp.hdr_len",), "int", "TCP header length incl. options"),
    Field("icmp_type", ("icmp.type", "icmpv6.type"), "int"),
    Field("icmp_code", ("icmp.code", "icmpv6.code"), "int"),
    Field("arp_opcode", ("arp.opcode",), "int", "1 request, 2 reply"),
    Field("arp_src_hw", ("arp.src.hw_mac",), "str"),
    Field("arp_src_ip", ("arp.src.proto_ipv4",), "str"),
    Field("arp_dst_hw", ("arp.dst.hw_mac",), "str"),
    Field("arp_dst_ip", ("arp.dst.proto_ipv4",), "str"),
    Field("dns_qry_name", ("dns.qry.name",), "str"),
    Field("dns_qry_type", ("dns.qry.type",), "int"),
    Field("dns_flags", ("dns.flags",), "hex", "response bit 0x8000, rcode low 4 bits"),
    Field("dns_answers", ("dns.count.answers",), "int"),
    Field("dns_a", ("dns.a",), "str", "first IPv4 address of a DNS answer (A record), e.g. the peer a name resolved to"),
    Field("mqtt_msgtype", ("mqtt.msgtype",), "int"),
    Field("mqtt_conack", ("mqtt.conack.val",), "int", "CONNACK return code (non-zero = refused)"),
    Field("http_method", ("http.request.method",), "str"),
    Field("http_status", ("http.response.code",), "int"),
    Field("ftp_code", ("ftp.response.code",), "int"),
    Field("frame_comment", ("frame.comment",), "str", "pcapng packet comment (labels: label=<class>)"),
    # tshark 4.0/4.0.x spell the column field _ws.col.Info (4.2 renamed the column fields to lower case)
    Field("info", ("_ws.col.Info",), "str", "Wireshark's Info column (the TUI shows it; costs tshark ~4% CPU)"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

# Every distinct tshark field in emission order (what goes after ``-e``).
TSHARK_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(t for f in FIELDS for t in f.tshark))
