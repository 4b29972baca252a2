"""One run's configuration, built once by the CLI (cli/options.py) and passed whole to ``MonitorRun``
and the TUI's app factory. Frozen: nothing downstream edits it.

``RunConfig`` = ``SourceConfig`` (captures/sources.py: file or interface, filters, labels) +
``OutputConfig`` (report, predictions, alerts files) + the run's own knobs (model, -c, -a, --fail-on,
headless, replay speed).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from iotwatch.captures.errors import InputError
from iotwatch.captures.sources import SourceConfig

__all__ = ["OutputConfig", "RunConfig", "SourceConfig"]


@dataclass(frozen=True)
class OutputConfig:
    report: str | None = None        # --report R.json
    predictions: str | None = None   # --predictions P.csv
    alerts: str | None = None        # --alerts A.jsonl
    force: bool = False              # overwrite existing files
    sensor: str | None = None        # EVE "host" of the alerts (default: this machine's name)
    append: bool = False             # predictions/alerts continue existing files; SIGHUP reopens them
    stats_interval: float | None = None  # seconds between EVE "stats" events in the alerts file

    def specs(self, report_stub: bytes = b"") -> list[tuple]:
        """``(path, what, options)`` of every output, for ``captures.files.plan_outputs``."""
        stream = {"direct": True, "append": self.append}
        return [(self.report, "report", {"stub": report_stub}), (self.predictions, "predictions", dict(stream)),
                (self.alerts, "alerts", dict(stream))]

    def validate(self) -> None:
        if self.stats_interval is not None:
            if not self.alerts:
                raise InputError("--stats-interval writes EVE stats events into the --alerts file; give --alerts")
            if not (1 <= self.stats_interval <= 86400):  # also NaN and inf
                raise InputError(f"--stats-interval takes 1..86400 seconds, got {self.stats_interval}")

    def check(self, inputs=()) -> None:
        """InputError before anything runs when a file exists without --force (or --append), cannot be
        written, is not a regular file, is shared by two outputs or is one of the run's ``inputs``
        (``captures.files``)."""
        from iotwatch.captures.files import plan_outputs

        plan_outputs(self.specs(), self.force, inputs)


@dataclass(frozen=True)
class RunConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    model: str | None = None         # bundle path; None = the bundled model
    count: int | None = None         # stop after N packets (like tshark -c)
    duration: float | None = None    # stop after S seconds of capture (like tshark -a duration:S)
    fail_on: str | None = None       # "anomaly" / "incident": exit 1 when any was found
    headless: bool = False
    speed: str = "max"               # replay pacing in the TUI: max | 1x | 10x

    @property
    def source_name(self) -> str:
        return self.source.name

    def validate(self) -> None:
        self.source.validate()
        self.outputs.validate()
        if self.source.read == "-" and not self.headless:
            raise InputError("-r - (a capture on standard input) works with --headless only: the TUI needs the terminal",
                             hint="save the capture to a file for the TUI, or add --headless")
        if self.count is not None and self.count <= 0:
            raise InputError(f"-c/--count must be a positive number of packets, got {self.count}")
        if self.duration is not None and not (0 < self.duration <= 366 * 86400):  # also NaN and inf
            raise InputError(f"-a/--duration must be a positive number of seconds (at most a year), got {self.duration}")
        if self.fail_on not in (None, "anomaly", "incident"):
            raise InputError(f"--fail-on takes 'anomaly' or 'incident', got {self.fail_on!r}")

    def inputs(self) -> tuple[str, ...]:
        """The files this run reads (capture, labels, model, a discovered sidecar): no output may be
        one of them, even with --force."""
        from iotwatch.captures.labels import discover_sidecar

        src = self.source
        sidecar = discover_sidecar(src.read) if src.read and not src.labels else None
        return tuple(str(p) for p in (src.read, src.labels, self.model, sidecar) if p)

    def load_classifier(self):
        from .classifier import PacketClassifier

        return PacketClassifier.load(self.model)
