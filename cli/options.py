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
    monitor_mode: bool = False      # live: 802.11 monitor mode (like tshark -I)
    wpa_pwd: tuple[str, ...] = ()   # 802.11 WPA/WPA2-PSK decryption: PASSPHRASE:SSID (like tshark's wpa-pwd keys)
    wpa_psk: tuple[str, ...] = ()   # ... or the 64-hex-digit pre-shared key
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
        if self.duration is not None and self.duration <= 0:
            raise InputError(f"--duration must be positive seconds, got {self.duration}")
        if self.buffer_mib is not None and not (self.iface and 1 <= self.buffer_mib <= 4096):
            raise InputError("-B/--buffer-size takes 1..4096 MiB and applies to live capture only")
        if self.monitor_mode and not self.iface:
            raise InputError("-I/--monitor-mode applies to live capture only (-i IFACE)")
        if self.fail_on not in (None, "anomaly", "incident"):
            raise InputError(f"--fail-on takes 'anomaly' or 'incident', got {self.fail_on!r}")


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
        if cfg.monitor_mode:
            extra["monitor_mode"] = True
        if cfg.wpa_pwd or cfg.wpa_psk:
            extra.update(wpa_pwd=cfg.wpa_pwd, wpa_psk=cfg.wpa_psk)
        return open_source(read=cfg.read, iface=cfg.iface, bpf=cfg.bpf, display_filter=cfg.display_filter, **extra)

    return _open
