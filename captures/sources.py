"""Packet sources: one obvious call, ``open_source(read=PATH)`` or ``open_source(iface="wlan0")``.

A source yields :class:`PacketBatch` objects (numpy columns, frame order, every frame including
non-IP) from ``batches(max_rows, max_wait)``. Live batches close at ``max_rows`` rows or after
``max_wait`` seconds, whichever comes first, so a UI gets steady updates.

Implementations:
* ``TsharkFieldsSource`` (``tshark/source.py``): tshark emitting ``-T fields`` which we parse
  column-wise (fast path).
* ``ReplaySource``: batches from memory (tests, demos).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable

from .batch import PacketBatch


@dataclass
class SourceStats:
    packets: int = 0              # frames yielded so far
    capture_drops: int = 0        # frames the kernel/dumpcap dropped (live), when known
    truncated: str | None = None  # why a file ended early ("cut mid-packet at frame N"), if it did
    extra: dict = field(default_factory=dict)


@runtime_checkable
class PacketSource(Protocol):
    description: str   # path or interface, for the report's "source"
    live: bool
    stats: SourceStats

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]: ...

    def close(self) -> None: ...


class ReplaySource:
    """Yields pre-built batches (re-chunked to ``max_rows``). For tests and demos."""

    live = False

    def __init__(self, batches: list[PacketBatch] | PacketBatch, description: str = "replay", path: str | None = None):
        self._data = PacketBatch.concat(batches if isinstance(batches, list) else [batches])
        self.description = description
        self.path = path
        self.stats = SourceStats()
        self._closed = False

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]:
        n = len(self._data)
        for start in range(0, n, max_rows):
            if self._closed:
                return
            b = self._data.slice(start, min(n, start + max_rows))
            self.stats.packets += len(b)
            yield b

    def close(self) -> None:
        self._closed = True


def open_source(
    read: str | None = None,
    iface: str | None = None,
    bpf: str | None = None,
    display_filter: str | None = None,
    **options,
) -> PacketSource:
    """Open a pcap/pcapng file (``read``) or a live interface (``iface``).

    Raises ``InputError`` (exit 2) / ``EnvironmentProblem`` (exit 3) with one clear line on bad
    input, before any packet is read. Never hangs on missing capture permission.
    """
    from .tshark.source import open_tshark_source

    return open_tshark_source(read=read, iface=iface, bpf=bpf, display_filter=display_filter, **options)
