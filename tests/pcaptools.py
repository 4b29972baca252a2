"""Tiny, dependency-free pcap/pcapng builders for odd inputs (link types, unknown blocks, cut files).

Independent of captures/sim/writer.py on purpose: robustness tests must not share code with what they test.
"""
from __future__ import annotations

import struct

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, flags_frag: int = 0x4000, ttl: int = 64) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag, ttl, proto, 0, s, d)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def ipv6(src16: bytes, dst16: bytes, nxt: int, payload: bytes, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), nxt, hlim) + src16 + dst16 + payload


def ether(dst: bytes, src: bytes, ethertype: int, payload: bytes, vlan: int | None = None) -> bytes:
    if vlan is not None:
        return dst + src + struct.pack("!HHH", 0x8100, vlan, ethertype) + payload
    return dst + src + struct.pack("!H", ethertype) + payload


def sll(ethertype: int, payload: bytes, src_mac: bytes = b"\x02\0\0\0\0\x01") -> bytes:
    return struct.pack("!HHH", 0, 1, 6) + src_mac + b"\0\0" + struct.pack("!H", ethertype) + payload


def pcap(frames: list[bytes], linktype: int = LINKTYPE_ETHERNET, t0: float = 1_700_000_000.0, snaplen: int = 65535) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, f in enumerate(frames):
        t = t0 + i * 0.001
        sec, usec = int(t), int(round((t - int(t)) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(f), len(f)) + f)
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng(frames: list[bytes], linktype: int = LINKTYPE_ETHERNET, extra_blocks: list[tuple[int, bytes]] = (),
           t0: float = 1_700_000_000.0) -> bytes:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(0x00000001, struct.pack("<HHI", linktype, 0, 65535))
    out = [shb, idb]
    for btype, body in extra_blocks:
        out.append(_block(btype, body))
    for i, f in enumerate(frames):
        ts = int((t0 + i * 0.001) * 1e6)
        out.append(_block(0x00000006, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f))
    return b"".join(out)


MAC_A = b"\x02\x00\x00\x00\x00\x0a"
MAC_B = b"\x02\x00\x00\x00\x00\x0b"


def udp_frames(n: int = 10, size: int = 32, vlan: int | None = None) -> list[bytes]:
    return [ether(MAC_B, MAC_A, 0x0800, ipv4("192.0.2.10", "192.0.2.20", 17, udp(40000 + i, 5683, bytes(size))), vlan)
            for i in range(n)]
