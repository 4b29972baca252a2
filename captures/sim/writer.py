"""Minimal, fast pcapng writer: one Section Header, one Ethernet interface, Enhanced Packet Blocks
with an optional per-packet comment (``opt_comment``; the lab writes ``label=<class>`` there).

Deterministic by construction: no wall clock, no host name; the caller gives every timestamp
(microseconds since the epoch, the default ``if_tsresol``). Blocks are struct-packed and written
in large chunks, so writing costs well under a microsecond per packet on top of the frame bytes.

The format's constants and block packing live in ``captures/pcapfile.py`` (also its reader, ``read_packets``).
"""
from __future__ import annotations

from typing import BinaryIO

from ..pcapfile import enhanced_packet_block, interface_description_block, section_header_block


class PcapngWriter:
    """``write(ts_us, frame, options)``: one EPB; ``options`` from ``pcapfile.comment_option`` or ``b""``."""

    def __init__(self, fh: BinaryIO, *, application: str = "iotwatch simulate", if_name: str = "sim0",
                 if_description: str = "", snaplen: int = 262144, chunk: int = 4096):
        self._fh = fh
        self._buf: list[bytes] = []
        self._chunk = chunk
        self.packets = 0
        self.bytes_written = 0
        self._buf.append(section_header_block(application)
                         + interface_description_block(snaplen=snaplen, name=if_name, description=if_description))

    def write(self, ts_us: int, frame: bytes, options: bytes = b"") -> None:
        self._buf.append(enhanced_packet_block(ts_us, frame, options))
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
