"""The pcap and pcapng file formats in one place: magic numbers, block types, block packing, a reader.

Used by the capture layer (``tshark/chunking.py`` walks records, ``tshark/rotation.py`` splits
dumpcap's stream, ``tshark/preflight.py`` checks files), the labels pre-scan, the simulator's
writer and the benches. ``tests/pcaptools.py`` stays independent on purpose (tests must not share
code with what they test).

References: pcap = tcpdump's savefile format (24-byte file header, 16-byte record headers);
pcapng = draft-ietf-opsawg-pcapng (blocks: type, total length, body, total length again; options
are TLVs padded to 32 bits).
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Iterator

# --- pcap -----------------------------------------------------------------------------------------
PCAP_MAGIC = 0xA1B2C3D4        # microsecond timestamps
PCAP_MAGIC_NS = 0xA1B23C4D     # nanosecond timestamps
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",   # first 4 bytes -> byte order
               b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAP_MAGICS_NS = frozenset({b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"})   # the nanosecond ones
PCAP_HEADER_LEN = 24
PCAP_RECORD_LEN = 16           # ts_sec, ts_frac, incl_len, orig_len

# --- pcapng ---------------------------------------------------------------------------------------
SECTION_HEADER = 0x0A0D0D0A    # palindromic: readable before the byte order is known
PCAPNG_MAGIC = struct.pack("<I", SECTION_HEADER)
BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_BOM_LE = struct.pack("<I", BYTE_ORDER_MAGIC)
INTERFACE_DESCRIPTION = 1
OBSOLETE_PACKET = 2
SIMPLE_PACKET = 3
ENHANCED_PACKET = 6
DECRYPTION_SECRETS = 0x0A
PCAPNG_PACKET_BLOCKS = frozenset({OBSOLETE_PACKET, SIMPLE_PACKET, ENHANCED_PACKET})
PCAPNG_HEADER_BLOCKS = frozenset({INTERFACE_DESCRIPTION, DECRYPTION_SECRETS})  # a reader needs them first
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9                 # timestamp units: 10^-value seconds (default 6: microseconds)

LINKTYPE_ETHERNET = 1
MAX_RECORD = 1 << 26  # a record longer than 64 MiB is damage, not a packet

_PADS = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_END_OF_OPTIONS = b"\x00\x00\x00\x00"
_pack_u32 = struct.Struct("<I").pack
_pack_epb_head = struct.Struct("<IIIIIII").pack


def capture_format(head: bytes) -> str | None:
    """'pcap', 'pcapng' or None (compressed or unknown) from a file's first 4 bytes."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def section_byte_order(bom: bytes) -> str:
    """struct byte order of a pcapng section from its byte-order magic (bytes 8..12 of the SHB)."""
    return "<" if bom == PCAPNG_BOM_LE else ">"


def pcap_header(linktype: int = LINKTYPE_ETHERNET, snaplen: int = 65535) -> bytes:
    """A little-endian, microsecond pcap file header (a valid capture with no packets on its own)."""
    return struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, snaplen, linktype)


# --- pcapng block packing (little-endian) -----------------------------------------------------------

def pack_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + _PADS[len(value) & 3]


def pack_block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + _pack_u32(total)


def options(*pairs: tuple[int, bytes]) -> bytes:
    """Option TLVs followed by the end-of-options marker."""
    return b"".join(pack_option(code, value) for code, value in pairs) + _END_OF_OPTIONS


def comment_option(text: str) -> bytes:
    """Pre-encoded EPB options (``opt_comment`` + end of options) for a comment; reuse it per packet."""
    return options((OPT_COMMENT, text.encode("utf-8")))


def section_header_block(application: str | None = None) -> bytes:
    opts = options((SHB_USERAPPL, application.encode())) if application else b""
    return pack_block(SECTION_HEADER, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def interface_description_block(linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144,
                                name: str | None = None, description: str = "", tsresol: int | None = None) -> bytes:
    opts = [(IF_NAME, name.encode())] if name is not None else []
    if description:
        opts.append((IF_DESCRIPTION, description.encode()))
    if tsresol is not None:
        opts.append((IF_TSRESOL, bytes([tsresol])))
    return pack_block(INTERFACE_DESCRIPTION, struct.pack("<HHI", linktype, 0, snaplen) + options(*opts))


def enhanced_packet_block(ts: int, frame: bytes, opts: bytes = b"", interface: int = 0) -> bytes:
    """One EPB; ``ts`` in the interface's units (microseconds by default); ``opts`` from :func:`comment_option`."""
    n = len(frame)
    total = 32 + n + (-n & 3) + len(opts)
    return b"".join((_pack_epb_head(ENHANCED_PACKET, total, interface, ts >> 32, ts & 0xFFFFFFFF, n, n),
                     frame, _PADS[n & 3], opts, _pack_u32(total)))


# --- reading ----------------------------------------------------------------------------------------

def iter_packets(path: str | Path) -> Iterator[tuple[int, bytes, str]]:
    """``(timestamp, frame, comment)`` for every packet of an uncompressed pcap or pcapng file.

    pcap: timestamp in the file's units (µs, or ns for the nanosecond magic), no comments. pcapng:
    enhanced/obsolete packet blocks in the interface's units (µs unless ``if_tsresol`` says
    otherwise), the first ``opt_comment``; simple packet blocks have timestamp 0. A small, careful
    reader for tests, tools and benches (the monitor itself reads captures through tshark).
    Raises ValueError on a file that is not pcap/pcapng or is cut inside a block."""
    with open(path, "rb") as fh:
        fmt = capture_format(fh.read(4))
        if fmt is None:
            raise ValueError(f"{path}: not an uncompressed pcap/pcapng file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if fmt == "pcap":
                yield from _pcap_records(data, PCAP_MAGICS[data[:4]], path)
            else:
                yield from _pcapng_blocks(data, path)


def read_packets(path: str | Path) -> list[tuple[int, bytes, str]]:
    """:func:`iter_packets` as a list."""
    return list(iter_packets(path))


def _pcap_records(data: bytes, order: str, path) -> Iterator[tuple[int, bytes, str]]:
    record = struct.Struct(order + "IIII").unpack_from
    frac = 1_000_000_000 if data[:4] in PCAP_MAGICS_NS else 1_000_000
    o = PCAP_HEADER_LEN
    while o + PCAP_RECORD_LEN <= len(data):
        sec, sub, incl, _ = record(data, o)
        if o + PCAP_RECORD_LEN + incl > len(data):
            raise ValueError(f"{path}: truncated record at offset {o}")
        yield sec * frac + sub, data[o + 16:o + 16 + incl], ""
        o += PCAP_RECORD_LEN + incl


def _pcapng_blocks(data: bytes, path) -> Iterator[tuple[int, bytes, str]]:
    order = "<"
    o = 0
    while o + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, o)
        if btype == SECTION_HEADER:
            order = section_byte_order(data[o + 8:o + 12])
        btype, blen = struct.unpack_from(order + "II", data, o)
        if blen < 12 or o + blen > len(data):
            raise ValueError(f"{path}: truncated block at offset {o}")
        if btype in (ENHANCED_PACKET, OBSOLETE_PACKET):
            hi, lo, cap = struct.unpack_from(order + "III", data, o + 12)
            frame = data[o + 28:o + 28 + cap]
            yield (hi << 32) | lo, frame, _comment(data, o + 28 + cap + (-cap & 3), o + blen - 4, order)
        elif btype == SIMPLE_PACKET:
            (orig,) = struct.unpack_from(order + "I", data, o + 8)
            yield 0, data[o + 12:o + 12 + min(orig, blen - 16)], ""
        o += blen


def _comment(data: bytes, p: int, end: int, order: str) -> str:
    while p + 4 <= end:
        code, ln = struct.unpack_from(order + "HH", data, p)
        if code == OPT_ENDOFOPT:
            break
        if code == OPT_COMMENT:
            return data[p + 4:p + 4 + ln].decode("utf-8")
        p += 4 + ln + (-ln & 3)
    return ""
