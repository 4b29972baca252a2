"""Community ID v1 of a flow (the value tshark's ``communityid`` field gives): used by the incident
engine for each incident's representative packet and written into EVE records (``eve.py``).
Its own module so that incidents.py and eve.py do not import each other."""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket
import struct

_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130}


def community_id(src: str, dst: str, proto: int, sport: int, dport: int, seed: int = 0) -> str | None:
    """Community ID v1 (``1:`` + base64 SHA-1) of a flow; ``sport/dport`` are ICMP type/code for ICMP.
    None when the addresses are not IP addresses."""
    sa, da = _packed(src), _packed(dst)
    if sa is None or da is None or len(sa) != len(da):
        return None
    one_way = False
    if proto in (1, 58):
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        itype, icode = sport, dport
        if itype in pairs:
            sport, dport = itype, pairs[itype]
        else:
            sport, dport, one_way = itype, icode, True
    has_ports = proto in (1, 6, 17, 58, 132)
    if not one_way and (sa, sport) > (da, dport):
        sa, da, sport, dport = da, sa, dport, sport
    data = struct.pack("!H", seed) + sa + da + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", max(sport, 0), max(dport, 0))
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def _packed(addr: str) -> bytes | None:
    """The address's network-order bytes (4 or 16), as ``ipaddress.ip_address(addr).packed``;
    inet_pton first (a hundred times faster), ipaddress for what it refuses (a scoped IPv6)."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)
    except (OSError, TypeError, ValueError):
        pass
    try:
        return ipaddress.ip_address(addr).packed
    except ValueError:
        return None
