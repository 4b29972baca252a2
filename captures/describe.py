"""Human-facing packet descriptions shared by the TUI, alerts and predictions (no Textual)."""
from __future__ import annotations

import numpy as np

from .batch import PacketBatch

# frame.protocols layers that are containers, not what a user calls "the protocol"
_SKIP = {"eth", "ethertype", "sll", "vlan", "ip", "ipv6", "frame", "data", "_ws.malformed",
         "_ws.short", "_ws.expert", "tcp.segments", "ipv6.hopopts", "llc", "raw", "null", "loop",
         "ppp", "mpls", "pkt_comment", "_ws.unreassembled"}
_PRETTY = {"icmp": "ICMP", "icmpv6": "ICMPv6", "arp": "ARP", "tcp": "TCP", "udp": "UDP", "dns": "DNS",
           "mdns": "mDNS", "mqtt": "MQTT", "coap": "CoAP", "http": "HTTP", "tls": "TLS", "ssh": "SSH",
           "ftp": "FTP", "telnet": "Telnet", "ntp": "NTP", "dhcp": "DHCP", "ssdp": "SSDP", "quic": "QUIC",
           "rtp": "RTP", "rtsp": "RTSP", "igmp": "IGMP", "llmnr": "LLMNR", "nbns": "NBNS", "icmpv6.nd": "ICMPv6"}

_PROTO_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 47: "GRE", 50: "ESP"}


def protocol_name(protocols: str) -> str:
    """The top meaningful layer of a ``frame.protocols`` string, e.g. ``eth:...:tcp:mqtt`` -> ``MQTT``."""
    if not protocols:
        return "?"
    layers = protocols.split(":")
    for layer in reversed(layers):
        if layer in _SKIP or layer.startswith("_ws"):
            continue
        return _PRETTY.get(layer, layer.upper())
    return layers[-1].upper()


def transport_name(ip_proto: int, protocols: str = "") -> str:
    """EVE-style ``proto``: TCP/UDP/ICMP/IPv6-ICMP..., ARP or the top layer for non-IP frames."""
    if ip_proto >= 0:
        if ip_proto == 58:
            return "IPv6-ICMP"
        return _PROTO_NAMES.get(int(ip_proto), str(int(ip_proto)))
    if ":arp" in protocols or protocols.endswith("arp"):
        return "ARP"
    return protocol_name(protocols)


def ports(batch: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Source and destination ports (TCP or UDP), -1 where none."""
    sp = np.where(batch["tcp_srcport"] >= 0, batch["tcp_srcport"], batch["udp_srcport"])
    dp = np.where(batch["tcp_dstport"] >= 0, batch["tcp_dstport"], batch["udp_dstport"])
    return sp, dp


def endpoints(batch: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Source and destination as shown to a user: IP if any, else ARP sender/target IP, else MAC."""
    src = batch["ip_src"].copy()
    dst = batch["ip_dst"].copy()
    noip = src == ""
    if noip.any():
        arp_s, arp_d = batch["arp_src_ip"], batch["arp_dst_ip"]
        src[noip] = np.where(arp_s[noip] != "", arp_s[noip], batch["eth_src"][noip])
        dst[noip] = np.where(arp_d[noip] != "", arp_d[noip], batch["eth_dst"][noip])
    return src, dst
