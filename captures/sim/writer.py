"""Minimal, fast pcapng writer: one Section Header, one Ethernet interface, Enhanced Packet Blocks
with an optional per-packet comment (``opt_comment``; the lab writes ``label=<class>`` there).

Deterministic by construction: no wall clock, no host name; the caller gives every timestamp
(microseconds since the epoch, the default ``if_tsresol``). Blocks are struct-packed and written
in large chunks, so writing costs well under a microsecond per packet on top of the frame bytes.

Format reference: draft-ietf-opsawg-pcapng (SHB 0x0A0D0D0A, IDB 1, EPB 6, options TLV padded to 32 bits).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_ENDOFOPT = b"\x00\x00\x00\x00"
_pack_epb_head = struct.Struct("<IIIIIII").pack
_pack_u32 = struct.Struct("<I").pack
_PADS = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + _PADS[len(value) & 3]


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + _pack_u32(total)


def comment_option(text: str) -> bytes:
    """Pre-encoded EPB options (``opt_comment`` + end of options) for a comment; reuse it per packet."""
    return _option(1, text.encode("utf-8")) + _OPT_ENDOFOPT


class PcapngWriter:
    """``write(ts_us, frame, options)``: one EPB; ``options`` from :func:`comment_option` or ``b""``."""

    def __init__(self, fh: BinaryIO, *, application: str = "iotwatch simulate", if_name: str = "sim0",
                 if_description: str = "", snaplen: int = 262144, chunk: int = 4096):
        self._fh = fh
        self._buf: list[bytes] = []
        self._chunk = chunk
        self.packets = 0
        self.bytes_written = 0
        shb_opts = _option(4, application.encode()) + _OPT_ENDOFOPT  # shb_userappl
        shb = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + shb_opts
        idb_opts = _option(2, if_name.encode())  # if_name
        if if_description:
            idb_opts += _option(3, if_description.encode())
        idb = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + idb_opts + _OPT_ENDOFOPT
        head = _block(0x0A0D0D0A, shb) + _block(1, idb)
        self._buf.append(head)

    def write(self, ts_us: int, frame: bytes, options: bytes = b"") -> None:
        n = len(frame)
        total = 32 + n + (-n & 3) + len(options)
        self._buf.append(b"".join((_pack_epb_head(6, total, 0, ts_us >> 32, ts_us & 0xFFFFFFFF, n, n),
                                   frame, _PADS[n & 3], options, _pack_u32(total))))
        self.packets += 1
        if len(self._buf) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._fh.write(data)
            self.bytes_written += len(data)
            self._buf.clear()

    def close(self) -> None:
        self.flush()
        self._fh.flush()


def read_packets(path) -> "list[tuple[int, bytes, str]]":
    """``(ts_us, frame, comment)`` for every EPB of a file written by :class:`PcapngWriter`.

    A deliberately small reader (one section, one interface, little-endian, microsecond
    timestamps): tests and tools use it to check what the writer produced without tshark.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    out = []
    o = 0
    unpack = struct.unpack_from
    while o + 12 <= len(data):
        btype, blen = unpack("<II", data, o)
        if blen < 12 or o + blen > len(data):
            raise ValueError(f"{path}: truncated block at offset {o}")
        if btype == 6:
            hi, lo, cap = unpack("<III", data, o + 12)
            frame = data[o + 28:o + 28 + cap]
            p = o + 28 + cap + (-cap & 3)
            comment = ""
            while p + 4 <= o + blen - 4:
                code, ln = unpack("<HH", data, p)
                if code == 0:
                    break
                if code == 1:
                    comment = data[p + 4:p + 4 + ln].decode("utf-8")
                p += 4 + ln + (-ln & 3)
            out.append(((hi << 32) | lo, frame, comment))
        o += blen
    return out
