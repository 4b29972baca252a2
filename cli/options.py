"""What one monitoring run needs, shared by the headless runner and the TUI (no Textual here)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from iotwatch.captures.errors import InputError


def demo_capture() -> Path:
    """The bundled demo capture (with its sidecar labels): the default source of plain ``iotwatch``."""
    import iotwatch.captures

    return Path(iotwatch.captures.__file__).resolve().parent / "demo" / "demo.pcapng"


@dataclass
class RunConfig:
    read: str | None = None
    iface: str | None = None
    bpf: str | None = None
    display_filter: str | None = None
    labels: str | None = None
    model: str | None = None
    report: str | None = None
    predictions: str | None = None
    alerts: str | None = None
    force: bool = False
    fail_on: str | None = None
    count: int | None = None        # stop after N packets (like tshark -c)
    duration: float | None = None   # stop after S seconds of capture (like tshark -a duration:S)
    buffer_mib: int | None = None   # live: kernel capture buffer in MiB (like tshark -B)
    headless: bool = False
    speed: str = "max"              # replay pacing in the TUI: max | 1x | 10x

    @property
    def source_name(self) -> str:
        return self.read if self.read else (self.iface or "")

    def validate(self) -> None:
        if self.read and self.iface:
            raise InputError("use either -r FILE or -i IFACE, not both")
        if self.bpf and not self.iface:
            raise InputError("-f/--bpf applies to live capture only", hint="use -Y/--display-filter on files")
        if self.count is not None and self.count <= 0:
            raise InputError(f"-c/--count must be a positive number of packets, got {self.count}")
        if self.duration is not None and not (0 < self.duration <= 366 * 86400):  # also NaN and inf
            raise InputError(f"-a/--duration must be a positive number of seconds (at most a year), got {self.duration}")
        if self.buffer_mib is not None and not (self.iface and 1 <= self.buffer_mib <= 4096):
            raise InputError("-B/--buffer-size takes 1..4096 MiB and applies to live capture only")
        if self.fail_on not in (None, "anomaly"):
            raise InputError(f"--fail-on takes 'anomaly', got {self.fail_on!r}")


def load_classifier(model: str | None):
    from iotwatch.detector.classifier import PacketClassifier

    return PacketClassifier.load(model)


def load_labels(cfg: RunConfig, classes):
    """LabelSet for a replay (sidecar/--labels/comments) or for live with --labels; else None."""
    from iotwatch.captures.labels import LabelSet

    if cfg.read:
        return LabelSet.load(classes, capture=cfg.read, labels_path=cfg.labels)
    if cfg.labels:
        return LabelSet.load(classes, labels_path=cfg.labels)
    return None


def source_factory(cfg: RunConfig) -> Callable[[], object]:
    """A zero-argument callable that opens the packet source. Call it in the worker thread:
    building a pyshark capture on Textual's event loop fails."""
    from iotwatch.captures.sources import open_source

    def _open():
        extra = {"buffer_mib": cfg.buffer_mib} if cfg.buffer_mib else {}
        return open_source(read=cfg.read, iface=cfg.iface, bpf=cfg.bpf, display_filter=cfg.display_filter, **extra)

    return _open
