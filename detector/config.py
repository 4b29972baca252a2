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


def os_path_join_probe(base: str) -> str:
    """A name next to ``base`` that no file has: checks the ring's folder (exists, writable)."""
    from iotwatch.captures.keep import ring_file_name

    return str(ring_file_name(base, 0))


@dataclass(frozen=True)
class OutputConfig:
    report: str | None = None        # --report R.json
    predictions: str | None = None   # --predictions P.csv
    alerts: str | None = None        # --alerts A.jsonl
    force: bool = False              # overwrite existing files
    sensor: str | None = None        # EVE "host" of the alerts (default: this machine's name)
    append: bool = False             # predictions/alerts continue existing files; SIGHUP reopens them
    stats_interval: float | None = None  # seconds between EVE "stats" events in the alerts file
    write: str | None = None         # -w FILE: keep every packet as pcapng ("-" = standard output)
    ring: tuple[str, ...] = ()       # -b filesize:KB / duration:S / packets:N / files:N (dumpcap's ring buffer)
    write_flagged: str | None = None  # --write-flagged FILE: the anomalous packets, commented, as pcapng

    @property
    def ring_options(self):
        """The parsed ``-b`` options (``captures.keep.RingOptions``) or None."""
        from iotwatch.captures.keep import RingOptions

        return RingOptions.parse(self.ring)

    def specs(self, report_stub: bytes = b"") -> list[tuple]:
        """``(path, what, options)`` of every output, for ``captures.files.plan_outputs``."""
        stream = {"direct": True, "append": self.append}
        return [(self.report, "report", {"stub": report_stub}), (self.predictions, "predictions", dict(stream)),
                (self.alerts, "alerts", dict(stream)),
                # -w with -b writes FILE_00001_<time>.ext ... (checked one by one as they are opened)
                # with --append an existing pcapng gets a new section (never wiped)
                (None if self.ring else self.write, "capture file", dict(stream)),
                (self.write_flagged, "flagged packets file", dict(stream))]

    def validate(self) -> None:
        if self.ring:
            if not self.write:
                raise InputError("-b (ring buffer) needs -w FILE", hint="e.g. -w cap.pcapng -b filesize:100000 -b files:10")
            if self.write == "-":
                raise InputError("-b (ring buffer) needs a file name, not -w - (standard output)")
            self.ring_options  # noqa: B018 -- raises InputError on a bad -b
        if self.write_flagged == "-":
            raise InputError("--write-flagged needs a file name (standard output is for -w -)")
        if self.stats_interval is not None:
            if not self.alerts:
                raise InputError("--stats-interval writes EVE stats events into the --alerts file; give --alerts")
            if not (1 <= self.stats_interval <= 86400):  # also NaN and inf
                raise InputError(f"--stats-interval takes 1..86400 seconds, got {self.stats_interval}")

    def check(self, inputs=()) -> None:
        """InputError before anything runs when a file exists without --force (or --append), cannot be
        written, is not a regular file, is shared by two outputs or is one of the run's ``inputs``
        (``captures.files``)."""
        from iotwatch.captures.files import OutputFile, plan_outputs

        plan_outputs(self.specs(), self.force, inputs)
        if self.append:
            from iotwatch.captures.keep import check_appendable

            for path, what in ((None if self.ring else self.write, "capture file"),
                               (self.write_flagged, "flagged packets file")):
                if path and path != "-":
                    check_appendable(path, what)
        if self.ring:   # the ring's files are named when opened: check their folder now
            import os

            if self.write.endswith(os.sep) or os.path.isdir(self.write):
                raise InputError(f"-w {self.write} names a folder; with -b give a file name the ring's files are "
                                 "named after", hint="e.g. -w capture/ring.pcapng -b filesize:100000")
            OutputFile(os_path_join_probe(self.write), "capture file").check()


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
        o = self.outputs
        if o.write == "-" and not self.headless:
            raise InputError("-w - (pcapng on standard output) works with --headless only: the TUI needs the terminal")
        if (o.write or o.write_flagged) and self.source.read == "-":
            raise InputError("-w/--write-flagged need a capture file they can read again, not -r - (standard input)",
                             hint="save the capture first (tee it into a file), or write it with the tool that feeds the pipe")
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
