"""The command line's options -> one frozen ``RunConfig`` (detector/config.py), built once here."""
from __future__ import annotations

import argparse
from pathlib import Path

from iotwatch.captures.errors import IotwatchError
from iotwatch.detector.config import OutputConfig, RunConfig, SourceConfig


def demo_capture() -> Path:
    """The bundled demo capture (with its sidecar labels): the default source of plain ``iotwatch``."""
    import iotwatch.captures

    return Path(iotwatch.captures.__file__).resolve().parent / "demo" / "demo.pcapng"


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    read = ns.read
    speed = ns.speed or "max"
    if not read and not ns.iface:
        speed = ns.speed or "10x"   # the demo: slow enough to watch the attacks arrive
        demo = demo_capture()
        if not demo.is_file():
            raise IotwatchError(f"bundled demo capture missing at {demo}", hint="reinstall iotwatch or pass -r FILE")
        read = str(demo)
    cfg = RunConfig(
        source=SourceConfig(read=read, iface=ns.iface, bpf=ns.bpf, display_filter=ns.display_filter,
                            labels=ns.labels, buffer_mib=ns.buffer_mib, monitor_mode=ns.monitor_mode,
                            wpa_pwd=tuple(ns.wpa_pwd), wpa_psk=tuple(ns.wpa_psk)),
        outputs=OutputConfig(report=ns.report, predictions=ns.predictions, alerts=ns.alerts, force=ns.force,
                             sensor=ns.sensor_name, append=ns.append, stats_interval=ns.stats_interval,
                             write=ns.write, ring=tuple(ns.ring_buffer), write_flagged=ns.write_flagged),
        model=ns.model, count=ns.count, duration=ns.duration, fail_on=ns.fail_on, headless=ns.headless,
        speed=speed)
    cfg.validate()
    return cfg
