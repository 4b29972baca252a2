"""Split a pcap/pcapng file into packet-exact chunks without copying it.

tshark's memory grows with the packets it has seen (conversation tables, allocator fragmentation;
``-M`` session resets do not give it back): ~350 MB for 1.4M packets here. Replaying a big file as
consecutive chunks, one short-lived tshark each, keeps it flat. A chunk is described, not copied:
the header a reader needs (pcap file header, or the pcapng section header plus the interface
descriptions seen so far) and a byte range of whole packet records. The source streams
``header + file[start:stop]`` into ``tshark -r -`` with ``os.sendfile``, and renumbers frames with
``first_frame``. Because every chunk's packet count is known before tshark starts, chunks can also
run side by side (one tshark per core) and still be merged in frame order.

The walk reads only record headers through ``mmap`` (~0.8 us per packet) and gives the walked pages
back as it goes (they would otherwise count in our RSS).
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Iterator

from ..pcapfile import (MAX_RECORD, PCAP_HEADER_LEN, PCAP_MAGICS, PCAP_RECORD_LEN, PCAPNG_HEADER_BLOCKS,
                        PCAPNG_PACKET_BLOCKS, SECTION_HEADER, capture_format, section_byte_order)

_WALK_STEP = 8192  # packets walked between releases of mapped pages
CUT = "file appears to have been cut short in the middle of a packet"
NO_PACKETS = "contains no packets"


@dataclass(frozen=True)
class Chunk:
    header: bytes       # bytes a reader needs before the records
    start: int          # file offset of the first record
    stop: int           # file offset just after the last whole record
    packets: int        # packet records in [start, stop)
    first_frame: int    # 1-based frame number (in the whole file) of the first packet
    problem: str | None = None  # set on the last chunk when the file ends early or is damaged


class ChunkPlanner:
    """Walks record headers of a pcap/pcapng file and hands out chunks of ``per_chunk`` packets."""

    def __init__(self, path: str | os.PathLike, per_chunk: int):
        if per_chunk <= 0:
            raise ValueError("per_chunk must be positive")
        self.path = os.fspath(path)
        self.per_chunk = per_chunk
        with open(self.path, "rb") as fh:
            self.size = os.fstat(fh.fileno()).st_size
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        head = self._mm[:4] if self._mm is not None else b""
        self.format = capture_format(head)
        if self.format is None:
            raise ValueError(f"{self.path}: not an uncompressed pcap/pcapng file")
        self._frames = 0
        self._problem: str | None = None
        if self.format == "pcap":
            self._order = PCAP_MAGICS[head]
            self._header_blocks = [bytes(self._mm[:PCAP_HEADER_LEN])]
            self._off = PCAP_HEADER_LEN
        else:  # the first section header is streamed as part of the first chunk's range
            self._order = "<"
            self._header_blocks = []
            self._off = 0

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    @property
    def remaining(self) -> bool:
        """Bytes left to walk (the next chunk may still hold no packet)."""
        return self._mm is not None and self._off < self.size and not self._problem

    def __iter__(self) -> Iterator[Chunk]:
        while (chunk := self.next_chunk()) is not None:
            yield chunk

    def next_chunk(self) -> Chunk | None:
        """The next ``per_chunk`` packets, or None at the end. Its header holds the header blocks seen
        before its byte range; header blocks inside the range are streamed in place and join the
        headers of later chunks. A chunk with ``problem`` set is the last one."""
        walk = self._walk_pcap if self.format == "pcap" else self._walk_pcapng
        while self.remaining:
            header, start, count = b"".join(self._header_blocks), self._off, 0
            while count < self.per_chunk and self.remaining:  # in steps, so walked pages go early
                step_start = self._off
                step, self._problem = walk(min(_WALK_STEP, self.per_chunk - count))
                self._release(step_start, self._off)
                count += step
            chunk = Chunk(header, start, self._off, count, self._frames + 1, self._problem)
            self._frames += count
            if count or self._problem:
                return chunk
        self.close()
        return None

    def _release(self, start: int, stop: int) -> None:
        """Drop walked pages from our mapping: they would count as our RSS (the page cache keeps them)."""
        first = start - start % mmap.PAGESIZE
        if stop > first:
            self._mm.madvise(mmap.MADV_DONTNEED, first, stop - first)

    def _walk_pcap(self, limit: int) -> tuple[int, str | None]:
        mm, size, off, n = self._mm, self.size, self._off, 0
        incl_len = struct.Struct(self._order + "I").unpack_from
        problem = None
        while n < limit and off < size:
            if off + PCAP_RECORD_LEN > size:
                problem = CUT
                break
            (incl,) = incl_len(mm, off + 8)
            if incl > MAX_RECORD:
                problem = f"file appears to be damaged or corrupt (a {incl}-byte packet at byte {off})"
                break
            if off + PCAP_RECORD_LEN + incl > size:
                problem = CUT
                break
            off += PCAP_RECORD_LEN + incl
            n += 1
        self._off = off
        return n, problem

    def _walk_pcapng(self, limit: int) -> tuple[int, str | None]:
        mm, size, off, n = self._mm, self.size, self._off, 0
        block = struct.Struct(self._order + "II").unpack_from
        packet_blocks = PCAPNG_PACKET_BLOCKS
        problem = None
        while n < limit and off < size:
            if off + 12 > size:
                problem = CUT
                break
            btype, blen = block(mm, off)
            if btype == SECTION_HEADER:  # palindromic type; the byte order of what follows may change
                self._order = section_byte_order(mm[off + 8:off + 12])
                block = struct.Struct(self._order + "II").unpack_from
                btype, blen = block(mm, off)
            if blen < 12 or blen % 4 or blen > MAX_RECORD:
                problem = f"file appears to be damaged or corrupt (bad pcapng block at byte {off})"
                break
            if off + blen > size:
                problem = CUT
                break
            if btype in packet_blocks:
                n += 1
            elif btype == SECTION_HEADER:
                self._header_blocks = [bytes(mm[off:off + blen])]
            elif btype in PCAPNG_HEADER_BLOCKS:
                self._header_blocks.append(bytes(mm[off:off + blen]))
            off += blen
        self._off = off
        return n, problem


def packet_problem(path: str | os.PathLike) -> str | None:
    """Why the file holds no whole packet ("contains no packets", cut, damaged), or None."""
    planner = ChunkPlanner(path, 1)
    chunk = planner.next_chunk()
    planner.close()
    if chunk is None:
        return NO_PACKETS
    return chunk.problem if chunk.packets == 0 else None
