"""Byte-exact packet builders for the synthetic lab (``iotwatch simulate``): struct packing, no scapy.

Every builder returns ``bytes`` laid out exactly as on the wire, with correct lengths and
checksums (IPv4 header, TCP/UDP/ICMP/ICMPv6 over the pseudo header), so Wireshark dissects the
result without "malformed" or checksum complaints.

Layers:
* link:       :func:`eth` (unpadded, as captured on the router's LAN bridge), :func:`arp`
* network:    :func:`ipv4`, :func:`ipv6`
* transport:  :func:`tcp4_frame` / :func:`tcp6_frame` (one call = Ethernet+IP+TCP, the hot path),
              :func:`udp4_frame` / :func:`udp6_frame`, :func:`icmp4_frame`, :func:`icmp6_frame`,
              :func:`tcp_options`
* application payloads: DNS/mDNS (:func:`dns_message`), MQTT, CoAP, TLS records, NTP, DHCP,
              SSDP, RTP/RTCP, telnet IAC, SSH binary packets.

Addresses are raw ``bytes`` (6 for MAC, 4 for IPv4, 16 for IPv6); :func:`mac` / :func:`ip4` /
:func:`ip6` convert from text. The one's-complement checksum uses the identity
``sum(16-bit words) ≡ int.from_bytes(data) (mod 0xFFFF)``, which runs at C speed.
"""
from __future__ import annotations

import ipaddress
import struct

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_pack_eth = struct.Struct("!6s6sH").pack
_pack_ip4 = struct.Struct("!BBHHHBBH4s4s").pack
_pack_ip6 = struct.Struct("!IHBB16s16s").pack
_pack_tcp = struct.Struct("!HHIIBBHHH").pack
_pack_udp = struct.Struct("!HHHH").pack
_pack_pseudo4 = struct.Struct("!4s4sBBH").pack
_pack_pseudo6 = struct.Struct("!16s16sIxxxB").pack


# ----------------------------------------------------------------------------- addresses
def mac(text: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` -> 6 bytes."""
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def ip_str(b: bytes) -> str:
    return str(ipaddress.ip_address(b))


BROADCAST = b"\xff" * 6


def multicast_mac4(group: bytes) -> bytes:
    """01:00:5e + low 23 bits of an IPv4 multicast group."""
    return b"\x01\x00\x5e" + bytes((group[1] & 0x7F, group[2], group[3]))


def multicast_mac6(group: bytes) -> bytes:
    """33:33 + low 32 bits of an IPv6 multicast group."""
    return b"\x33\x33" + group[12:]


# ----------------------------------------------------------------------------- checksum
def checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071) of ``data`` (odd length is zero-padded)."""
    return _fold(_payload_sum(data))


# ----------------------------------------------------------------------------- link layer
def eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    """Ethernet II frame, unpadded (as a router's LAN bridge or a Wi-Fi capture shows it: the
    60-byte minimum is added by Ethernet NICs on the wire, not seen there)."""
    return _pack_eth(dst, src, ethertype) + payload


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """ARP for Ethernet/IPv4 (op 1 request, 2 reply)."""
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, op, sha, spa, tha, tpa)


def arp_frame(dst: bytes, src: bytes, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return eth(dst, src, ETH_ARP, arp(op, sha, spa, tha, tpa))


# ----------------------------------------------------------------------------- network layer
def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ttl: int = 64, ident: int = 0,
         df: bool = True, tos: int = 0) -> bytes:
    total = 20 + len(payload)
    hdr = _pack_ip4(0x45, tos, total, ident & 0xFFFF, 0x4000 if df else 0, ttl, proto, 0, src, dst)
    c = checksum(hdr)
    return hdr[:10] + c.to_bytes(2, "big") + hdr[12:] + payload


def ipv6(src: bytes, dst: bytes, nh: int, payload: bytes, hlim: int = 64, flow: int = 0, tc: int = 0) -> bytes:
    return _pack_ip6((6 << 28) | (tc << 20) | (flow & 0xFFFFF), len(payload), nh, hlim, src, dst) + payload


# ----------------------------------------------------------------------------- transport (hot path)
def tcp_options(*, mss: int | None = None, sack_perm: bool = False, ts: tuple[int, int] | None = None,
                wscale: int | None = None, order: str = "linux") -> bytes:
    """TCP options in the byte order real stacks use.

    ``order``: ``linux`` (MSS,SACK_PERM,TS,NOP,WS), ``windows`` (MSS,NOP,WS,NOP,NOP,SACK_PERM),
    ``apple`` (MSS,NOP,WS,NOP,NOP,TS,SACK_PERM,EOL,EOL), ``nots`` (MSS,NOP,NOP,SACK_PERM,NOP,WS),
    ``plain`` (in the given order, NOP-padded). Always padded to a multiple of 4 bytes.
    """
    m = struct.pack("!BBH", 2, 4, mss) if mss is not None else b""
    w = struct.pack("!BBB", 3, 3, wscale) if wscale is not None else b""
    s = b"\x04\x02" if sack_perm else b""
    t = struct.pack("!BBII", 8, 10, ts[0] & 0xFFFFFFFF, ts[1] & 0xFFFFFFFF) if ts else b""
    if order == "linux":
        out = m + (s + t if s and t else (b"\x01\x01" + s if s else (b"\x01\x01" + t if t else b"")))
        out += (b"\x01" + w) if w else b""
    elif order == "windows":
        out = m + ((b"\x01" + w) if w else b"") + ((b"\x01\x01" + s) if s else b"") + ((b"\x01\x01" + t) if t else b"")
    elif order == "apple":
        out = m + ((b"\x01" + w) if w else b"") + ((b"\x01\x01" + t) if t else b"") + s
    elif order == "nots":
        out = m + ((b"\x01\x01" + s) if s else b"") + ((b"\x01" + w) if w else b"")
    else:
        out = m + s + t + w
    if len(out) % 4:
        pad = 4 - len(out) % 4
        out += (b"\x00" * pad) if order == "apple" else (b"\x01" * pad)
    return out


def ts_option(tsval: int, tsecr: int) -> bytes:
    """NOP,NOP,TS: the 12-byte timestamps option of established segments."""
    return struct.pack("!BBBBII", 1, 1, 8, 10, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def _fold(n: int) -> int:
    """Checksum field from the integer value of the summed data (see :func:`checksum`)."""
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    return ~s & 0xFFFF


def _payload_sum(payload) -> int:
    """Integer whose value mod 0xFFFF is the 16-bit word sum of ``payload`` (odd length zero-padded)."""
    n = int.from_bytes(payload, "big")
    return n << 8 if len(payload) & 1 else n


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
                options: bytes = b"", payload: bytes = b"", urg: int = 0) -> bytes:
    """TCP header+payload with the checksum over the IPv4 (4-byte addresses) or IPv6 pseudo header."""
    hlen = 20 + len(options)
    n = hlen + len(payload)
    ph = _pack_pseudo4(src, dst, 0, PROTO_TCP, n) if len(src) == 4 else _pack_pseudo6(src, dst, n, PROTO_TCP)
    hdr = _pack_tcp(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (hlen >> 2) << 4, flags, window, 0, urg) + options
    c = _fold(int.from_bytes(ph + hdr, "big") + _payload_sum(payload))
    return b"".join((hdr[:16], c.to_bytes(2, "big"), hdr[18:], payload))


def tcp4_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, ttl: int, ident: int, df: bool,
               sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
               options: bytes = b"", payload=b"") -> bytes:
    """Ethernet + IPv4 + TCP in one pass (the hot path: one copy of the payload)."""
    hlen = 20 + len(options)
    plen = len(payload)
    n = hlen + plen
    tcp_nock = _pack_tcp(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, hlen << 2, flags, window, 0, 0)
    c = _fold(int.from_bytes(_pack_pseudo4(src, dst, 0, PROTO_TCP, n) + tcp_nock + options, "big")
              + ((int.from_bytes(payload, "big") << 8) if plen & 1 else int.from_bytes(payload, "big")))
    iph = _pack_ip4(0x45, 0, 20 + n, ident & 0xFFFF, 0x4000 if df else 0, ttl, PROTO_TCP, 0, src, dst)
    ipc = _fold(int.from_bytes(iph, "big"))
    frame = b"".join((dmac, smac, b"\x08\x00", iph[:10], ipc.to_bytes(2, "big"), iph[12:], tcp_nock[:16],
                      c.to_bytes(2, "big"), tcp_nock[18:], options, payload))
    return frame


def tcp6_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, hlim: int, flow: int,
               sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
               options: bytes = b"", payload: bytes = b"") -> bytes:
    seg = tcp_segment(src, dst, sport, dport, seq, ack, flags, window, options, payload)
    return eth(dmac, smac, ETH_IPV6, ipv6(src, dst, PROTO_TCP, seg, hlim, flow))


def udp_datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    n = 8 + len(payload)
    ph = _pack_pseudo4(src, dst, 0, PROTO_UDP, n) if len(src) == 4 else _pack_pseudo6(src, dst, n, PROTO_UDP)
    c = _fold(int.from_bytes(ph + _pack_udp(sport, dport, n, 0), "big") + _payload_sum(payload)) or 0xFFFF
    return _pack_udp(sport, dport, n, c) + payload


def udp4_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, ttl: int, ident: int, df: bool,
               sport: int, dport: int, payload, tos: int = 0) -> bytes:
    """Ethernet + IPv4 + UDP in one pass."""
    plen = len(payload)
    n = 8 + plen
    c = _fold(int.from_bytes(_pack_pseudo4(src, dst, 0, PROTO_UDP, n) + _pack_udp(sport, dport, n, 0), "big")
              + ((int.from_bytes(payload, "big") << 8) if plen & 1 else int.from_bytes(payload, "big"))) or 0xFFFF
    iph = _pack_ip4(0x45, tos, 20 + n, ident & 0xFFFF, 0x4000 if df else 0, ttl, PROTO_UDP, 0, src, dst)
    ipc = _fold(int.from_bytes(iph, "big"))
    frame = b"".join((dmac, smac, b"\x08\x00", iph[:10], ipc.to_bytes(2, "big"), iph[12:],
                      _pack_udp(sport, dport, n, c), payload))
    return frame


def udp6_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, hlim: int, sport: int, dport: int,
               payload: bytes, flow: int = 0) -> bytes:
    dgram = udp_datagram(src, dst, sport, dport, payload)
    return eth(dmac, smac, ETH_IPV6, ipv6(src, dst, PROTO_UDP, dgram, hlim, flow))


def icmp4(icmp_type: int, code: int, rest: bytes, data: bytes = b"") -> bytes:
    """ICMP message; ``rest`` is the 4 bytes after the checksum (id/seq, unused, MTU...)."""
    body = bytes((icmp_type, code)) + b"\x00\x00" + rest + data
    c = checksum(body)
    return body[:2] + c.to_bytes(2, "big") + body[4:]


def icmp4_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, ttl: int, ident: int, df: bool,
                icmp_type: int, code: int, rest: bytes, data: bytes = b"") -> bytes:
    return eth(dmac, smac, ETH_IPV4, ipv4(src, dst, PROTO_ICMP, icmp4(icmp_type, code, rest, data), ttl, ident, df))


def icmp_echo(ident: int, seq: int) -> bytes:
    return struct.pack("!HH", ident & 0xFFFF, seq & 0xFFFF)


def icmp6(src: bytes, dst: bytes, icmp_type: int, code: int, body: bytes) -> bytes:
    msg = bytes((icmp_type, code)) + b"\x00\x00" + body
    c = checksum(_pack_pseudo6(src, dst, len(msg), PROTO_ICMPV6) + msg)
    return msg[:2] + c.to_bytes(2, "big") + msg[4:]


def icmp6_frame(dmac: bytes, smac: bytes, src: bytes, dst: bytes, hlim: int, icmp_type: int, code: int,
                body: bytes) -> bytes:
    return eth(dmac, smac, ETH_IPV6, ipv6(src, dst, PROTO_ICMPV6, icmp6(src, dst, icmp_type, code, body), hlim))


def quoted_ip(frame: bytes, limit: int = 28) -> bytes:
    """The original IP header + first bytes of a frame, as quoted by ICMP errors (skips Ethernet)."""
    return frame[14:14 + limit]


# ----------------------------------------------------------------------------- DNS / mDNS
DNS_A, DNS_NS, DNS_CNAME, DNS_NULL, DNS_PTR, DNS_MX, DNS_TXT = 1, 2, 5, 10, 12, 15, 16
DNS_AAAA, DNS_SRV, DNS_OPT, DNS_HTTPS, DNS_ANY = 28, 33, 41, 65, 255


def dns_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            b = label.encode("ascii")
            if len(b) > 63:
                raise ValueError(f"DNS label longer than 63 bytes: {label!r}")
            out.append(len(b))
            out += b
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"DNS name longer than 255 bytes: {name!r}")
    return bytes(out)


def dns_question(name: str, qtype: int, qclass: int = 1) -> bytes:
    return dns_name(name) + struct.pack("!HH", qtype, qclass)


def dns_rr(name: str | bytes, rtype: int, rdata: bytes, ttl: int = 300, rclass: int = 1) -> bytes:
    """Resource record; ``name`` may be a pre-encoded name or compression pointer (bytes)."""
    n = name if isinstance(name, bytes) else dns_name(name)
    return n + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def dns_txt(*strings: bytes) -> bytes:
    out = b""
    for s in strings:
        for i in range(0, max(len(s), 1), 255):
            chunk = s[i:i + 255]
            out += bytes((len(chunk),)) + chunk
    return out


def dns_message(ident: int, flags: int, questions: list[bytes], answers: list[bytes] = (),
                authority: list[bytes] = (), additional: list[bytes] = ()) -> bytes:
    return (struct.pack("!HHHHHH", ident & 0xFFFF, flags, len(questions), len(answers), len(authority), len(additional))
            + b"".join(questions) + b"".join(answers) + b"".join(authority) + b"".join(additional))


DNS_QUERY_FLAGS = 0x0100      # RD
DNS_RESPONSE_FLAGS = 0x8180   # QR RD RA, NOERROR
DNS_NXDOMAIN_FLAGS = 0x8183
MDNS_RESPONSE_FLAGS = 0x8400  # QR AA
PTR_TO_QNAME = b"\xc0\x0c"    # compression pointer to the first question's name


def edns_opt(udp_size: int = 1232) -> bytes:
    return b"\x00" + struct.pack("!HHIH", DNS_OPT, udp_size, 0, 0)


# ----------------------------------------------------------------------------- MQTT 3.1.1
def _mqtt_len(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def mqtt_connect(client_id: bytes, keepalive: int = 60, user: bytes | None = None, password: bytes | None = None,
                 clean: bool = True) -> bytes:
    flags = (0x02 if clean else 0) | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    var = _mqtt_str(b"MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive)
    pl = _mqtt_str(client_id) + (_mqtt_str(user) if user is not None else b"") + (
        _mqtt_str(password) if password is not None else b"")
    body = var + pl
    return b"\x10" + _mqtt_len(len(body)) + body


def mqtt_connack(rc: int, session_present: bool = False) -> bytes:
    return bytes((0x20, 2, 1 if session_present else 0, rc))


def mqtt_publish(topic: bytes, payload: bytes, qos: int = 0, pid: int = 1, retain: bool = False) -> bytes:
    body = _mqtt_str(topic) + (struct.pack("!H", pid) if qos else b"") + payload
    return bytes((0x30 | (qos << 1) | (1 if retain else 0),)) + _mqtt_len(len(body)) + body


def mqtt_puback(pid: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", pid)


def mqtt_subscribe(pid: int, topics: list[tuple[bytes, int]]) -> bytes:
    body = struct.pack("!H", pid) + b"".join(_mqtt_str(t) + bytes((q,)) for t, q in topics)
    return b"\x82" + _mqtt_len(len(body)) + body


def mqtt_suback(pid: int, codes: list[int]) -> bytes:
    body = struct.pack("!H", pid) + bytes(codes)
    return b"\x90" + _mqtt_len(len(body)) + body


MQTT_PINGREQ = b"\xc0\x00"
MQTT_PINGRESP = b"\xd0\x00"
MQTT_DISCONNECT = b"\xe0\x00"


# ----------------------------------------------------------------------------- CoAP (RFC 7252)
COAP_CON, COAP_NON, COAP_ACK, COAP_RST = 0, 1, 2, 3
COAP_GET, COAP_POST, COAP_PUT = 0x01, 0x02, 0x03
COAP_CONTENT, COAP_CHANGED = 0x45, 0x44  # 2.05, 2.04


def _coap_ext(v: int) -> tuple[int, bytes]:
    if v < 13:
        return v, b""
    if v < 269:
        return 13, bytes((v - 13,))
    return 14, struct.pack("!H", v - 269)


def coap(mtype: int, code: int, mid: int, token: bytes = b"", options: list[tuple[int, bytes]] = (),
         payload: bytes = b"") -> bytes:
    out = bytearray((0x40 | (mtype << 4) | len(token), code))
    out += struct.pack("!H", mid & 0xFFFF) + token
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        dn, de = _coap_ext(num - last)
        ln, le = _coap_ext(len(val))
        out.append((dn << 4) | ln)
        out += de + le + val
        last = num
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def coap_uri(path: str) -> list[tuple[int, bytes]]:
    return [(11, seg.encode()) for seg in path.strip("/").split("/") if seg]


def coap_uint(v: int) -> bytes:
    return v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""


# ----------------------------------------------------------------------------- TLS records
TLS_CCS, TLS_ALERT, TLS_HANDSHAKE, TLS_APPDATA = 20, 21, 22, 23


def tls_record(ctype: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ctype, version, len(body)) + body


def _ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


_CIPHERS13 = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
              0x009D, 0x002F, 0x0035)
_CIPHERS12 = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xC013, 0xC014, 0x009C, 0x002F, 0x0035)


def tls_client_hello(sni: str, random32: bytes, session_id: bytes, key_share: bytes, tls13: bool = True,
                     alpn: tuple[bytes, ...] = (b"h2", b"http/1.1")) -> bytes:
    """A complete ClientHello record (TLS 1.3 capable when ``tls13``; else a TLS 1.2 embedded-stack hello)."""
    ciphers = _CIPHERS13 if tls13 else _CIPHERS12
    host = sni.encode()
    exts = _ext(0, struct.pack("!HBH", len(host) + 3, 0, len(host)) + host) if host else b""  # no SNI for IPs
    exts += _ext(23, b"") + _ext(0xFF01, b"\x00")
    exts += _ext(10, struct.pack("!H", 6) + struct.pack("!HHH", 29, 23, 24))
    exts += _ext(11, b"\x01\x00")
    if alpn:
        a = b"".join(bytes((len(p),)) + p for p in alpn)
        exts += _ext(16, struct.pack("!H", len(a)) + a)
    exts += _ext(13, struct.pack("!H", 8) + struct.pack("!HHHH", 0x0403, 0x0804, 0x0401, 0x0503))
    if tls13:
        exts += _ext(43, b"\x04\x03\x04\x03\x03")
        exts += _ext(45, b"\x01\x01")
        exts += _ext(51, struct.pack("!HHH", len(key_share) + 4, 29, len(key_share)) + key_share)
    body = (b"\x03\x03" + random32 + bytes((len(session_id),)) + session_id
            + struct.pack("!H", 2 * len(ciphers)) + struct.pack(f"!{len(ciphers)}H", *ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return tls_record(TLS_HANDSHAKE, hs, 0x0301)


def tls_server_hello(random32: bytes, session_id: bytes, key_share: bytes, tls13: bool = True) -> bytes:
    """ServerHello record (TLS 1.3: followed by the caller's CCS + encrypted records)."""
    if tls13:
        exts = _ext(43, b"\x03\x04") + _ext(51, struct.pack("!HH", 29, len(key_share)) + key_share)
        cipher = 0x1301
    else:
        exts = _ext(0xFF01, b"\x00") + _ext(23, b"")
        cipher = 0xC02F
    body = (b"\x03\x03" + random32 + bytes((len(session_id),)) + session_id + struct.pack("!HB", cipher, 0)
            + struct.pack("!H", len(exts)) + exts)
    return tls_record(TLS_HANDSHAKE, b"\x02" + len(body).to_bytes(3, "big") + body)


TLS_CCS_RECORD = tls_record(TLS_CCS, b"\x01")


# ----------------------------------------------------------------------------- NTP, DHCP, SSDP, RTP
NTP_EPOCH_OFFSET = 2208988800


def ntp_ts(t_us: int) -> bytes:
    sec = t_us // 1_000_000 + NTP_EPOCH_OFFSET
    frac = ((t_us % 1_000_000) << 32) // 1_000_000
    return struct.pack("!II", sec & 0xFFFFFFFF, frac)


def ntp(mode: int, stratum: int, t_us: int, origin: bytes = bytes(8), refid: bytes = bytes(4),
        xmit_noise: int = 0) -> bytes:
    """NTPv4 packet; mode 3 client (SNTP: only transmit timestamp set), 4 server."""
    if mode == 3:
        return struct.pack("!BBbb", (0 << 6) | (4 << 3) | 3, 0, 17, -24) + bytes(36) + ntp_ts(t_us + xmit_noise)
    return (struct.pack("!BBbbII", (0 << 6) | (4 << 3) | 4, stratum, 0, -23, 0x0000_0100, 0x0000_0300) + refid
            + ntp_ts(t_us - 30_000_000) + origin + ntp_ts(t_us) + ntp_ts(t_us + 40))


DHCP_DISCOVER, DHCP_OFFER, DHCP_REQUEST, DHCP_ACK = 1, 2, 3, 5


def dhcp(op: int, xid: int, chaddr: bytes, msgtype: int, ciaddr: bytes = bytes(4), yiaddr: bytes = bytes(4),
         siaddr: bytes = bytes(4), options: list[tuple[int, bytes]] = (), secs: int = 0,
         broadcast: bool = False) -> bytes:
    body = struct.pack("!BBBBIHH4s4s4s4s16s64s128sI", op, 1, 6, 0, xid, secs, 0x8000 if broadcast else 0, ciaddr,
                       yiaddr,
                       siaddr, bytes(4), chaddr + bytes(10), b"", b"", 0x63825363)
    opts = bytes((53, 1, msgtype)) + b"".join(bytes((c, len(v))) + v for c, v in options) + b"\xff"
    out = body + opts
    if len(out) < 300:
        out += bytes(300 - len(out))
    return out


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtcp_sender_report(ssrc: int, t_us: int, rtp_ts: int, packets: int, octets: int) -> bytes:
    return struct.pack("!BBHI", 0x80, 200, 6, ssrc) + ntp_ts(t_us) + struct.pack("!III", rtp_ts & 0xFFFFFFFF,
                                                                                    packets, octets)


# ----------------------------------------------------------------------------- SSH, telnet
def ssh_packet(payload: bytes, pad_to: int = 8, mac_len: int = 0, filler: bytes = b"") -> bytes:
    """Unencrypted SSH binary packet (KEXINIT etc.): len, padding len, payload, padding."""
    pad = pad_to - (len(payload) + 5) % pad_to
    if pad < 4:
        pad += pad_to
    return struct.pack("!IB", len(payload) + pad + 1, pad) + payload + bytes(pad) + filler[:mac_len]


def ssh_kexinit(cookie: bytes, kex: bytes, hostkey: bytes, ciphers: bytes, macs: bytes) -> bytes:
    def nl(s: bytes) -> bytes:
        return struct.pack("!I", len(s)) + s
    body = (b"\x14" + cookie + nl(kex) + nl(hostkey) + nl(ciphers) + nl(ciphers) + nl(macs) + nl(macs)
            + nl(b"none,zlib@openssh.com") * 2 + nl(b"") * 2 + b"\x00" + bytes(4))
    return ssh_packet(body)


TELNET_IAC = 255
TELNET_DO, TELNET_DONT, TELNET_WILL, TELNET_WONT = 253, 254, 251, 252


def telnet_opts(*pairs: tuple[int, int]) -> bytes:
    return b"".join(bytes((TELNET_IAC, verb, opt)) for verb, opt in pairs)
