"""Packet sources: one obvious call, ``open_source(read=PATH)`` or ``open_source(iface="wlan0")``.

A source yields :class:`PacketBatch` objects (numpy columns, frame order, every frame including
non-IP) from ``batches(max_rows, max_wait)``. Live batches close at ``max_rows`` rows or after
``max_wait`` seconds, whichever comes first, so a UI gets steady updates.

Implementations:
* ``TsharkFieldsSource`` (``tshark/source.py``): tshark emitting ``-T fields`` which we parse
  column-wise (fast path).
* tests/fakes.py ``ReplaySource``: batches from memory (tests).
"""
from __future__ import annotations

from dataclasses import dataclass

from .batch import PacketBatch, PacketSource, SourceStats  # noqa: F401  (the source API, re-exported)
from .errors import InputError


@dataclass(frozen=True)
class SourceConfig:
    """Where packets (and their ground truth) come from: the source part of a run's configuration."""

    read: str | None = None            # pcap/pcapng file (-r)
    iface: str | None = None           # live interface (-i)
    bpf: str | None = None             # live: kernel capture filter (-f)
    display_filter: str | None = None  # Wireshark display filter (-Y)
    labels: str | None = None          # labels CSV frame_number,label (--labels)
    buffer_mib: int | None = None      # live: kernel capture buffer in MiB (-B)
    monitor_mode: bool = False         # live: 802.11 monitor mode (-I)
    wpa_pwd: tuple[str, ...] = ()      # 802.11 WPA/WPA2-PSK decryption: PASSPHRASE:SSID (--wpa-pwd)
    wpa_psk: tuple[str, ...] = ()      # ... or the 64-hex-digit pre-shared key (--wpa-psk)

    @property
    def name(self) -> str:
        """The report's "source": the file path or the interface."""
        return self.read if self.read else (self.iface or "")

    def validate(self) -> None:
        if self.read and self.iface:
            raise InputError("use either -r FILE or -i IFACE, not both")
        if self.bpf and not self.iface:
            raise InputError("-f/--bpf applies to live capture only", hint="use -Y/--display-filter on files")
        if self.buffer_mib is not None and not (self.iface and 1 <= self.buffer_mib <= 4096):
            raise InputError("-B/--buffer-size takes 1..4096 MiB and applies to live capture only")
        if self.monitor_mode and not self.iface:
            raise InputError("-I/--monitor-mode applies to live capture only (-i IFACE)")

    def open(self, keeper=None) -> PacketSource:
        """Open the packet source (blocking: call it in the thread that reads it, never on a UI loop).
        ``keeper``: a ``captures.keep.CaptureKeeper`` teeing a live capture's stream (-w, private ring)."""
        extra = {"buffer_mib": self.buffer_mib} if self.buffer_mib else {}
        if keeper is not None and self.iface:
            extra["keeper"] = keeper
        if self.monitor_mode:
            extra["monitor_mode"] = True
        if self.wpa_pwd or self.wpa_psk:
            extra.update(wpa_pwd=self.wpa_pwd, wpa_psk=self.wpa_psk)
        return open_source(read=self.read, iface=self.iface, bpf=self.bpf, display_filter=self.display_filter, **extra)

    def load_labels(self, classes):
        """LabelSet for a replay (sidecar/--labels/comments) or for live with --labels; else None."""
        from .labels import LabelSet

        if self.read:
            return LabelSet.load(classes, capture=self.read, labels_path=self.labels)
        if self.labels:
            return LabelSet.load(classes, labels_path=self.labels)
        return None


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
