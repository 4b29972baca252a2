"""One monitoring run, UI-free: the loop shared by ``iotwatch --headless`` and the TUI's worker.

``MonitorRun.run`` opens the source (in the calling thread: its tshark/dumpcap die with that
thread, and opening blocks, so never on Textual's event loop), resolves deferred labels (``labels``
may be a zero-argument loader: a big sidecar CSV is then parsed while tshark starts instead of
before it), runs the ``classify_stream`` pipeline, counts every packet in ``RunTotals``, writes
``--predictions`` / ``--alerts`` incrementally (and ``-w`` / ``--write-flagged`` pcapng files through
``captures/keep.py``), honours ``-c`` (count), ``-a`` (duration) and
cancellation on every source batch (idle live batches included), turns the classified packets into
incidents (``IncidentEngine``: ``--alerts`` gets their EVE events, ``on_events`` sees them, the
report lists them), and finally writes ``--report``.
Subclasses hook ``pieces`` (the TUI paces replays there) and ``run(on_batch=...)`` sees every counted
(sub-)batch.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Callable, Iterator

from iotwatch.captures.errors import IotwatchError
from iotwatch.captures.files import plan_outputs, reserve_all, write_error
from iotwatch.captures.keep import WINDOW_BYTES, CaptureKeeper, FileFrames, PcapngRing, pick

from .config import RunConfig
from .eve import sensor_name, stats_record
from .flagged import FlaggedWriter
from .incidents import IncidentEngine
from .metrics import RunTotals
from .outputs import AlertsWriter, PredictionsWriter
from .pipeline import ClassifiedBatch, classify_stream


DRAIN_SECONDS = 10.0   # a stopped live capture's backlog is processed for at most this long


class MonitorRun:
    """Counts and outputs of one run. Reads of ``totals`` from another thread go through ``lock``.

    Outputs go through ``captures.files.OutputFile``: checked and reserved when ``run`` starts (a
    second run on the same paths is refused at once; a reserved report says "interrupted" until the
    real one replaces it), predictions/alerts streamed into files this run created (or temporary
    files renamed over old ones with ``--force``). A batch is written to every output *before* it is
    counted and cut back off every output if any write fails, so the report's counts always match
    the lines written. An input error (exit 2) leaves no outputs behind; a write error (disk full)
    stops the run, keeps what was written whole and marks the report ``truncated`` before the error
    is raised (exit 3)."""

    def __init__(self, config: RunConfig, classifier, labels=None, *,
                 source_factory: Callable[[], object] | None = None, batch_rows: int = 8192, max_wait: float = 0.1):
        """``labels``: a LabelSet, None, or a zero-argument loader called once the source is open.
        ``source_factory``: opens the source (default ``config.source.open``; tests inject fakes)."""
        self.config = config
        self._own_source = source_factory is None
        self.source_factory = source_factory or (lambda: config.source.open(keeper=self.keeper))
        self.classifier = classifier
        self.classes = list(classifier.classes_)
        self.labels = labels
        self.source_name = config.source_name
        self.count = config.count
        self.duration = config.duration
        self.report_path = config.outputs.report
        self.predictions_path = config.outputs.predictions
        self.alerts_path = config.outputs.alerts
        self.batch_rows = batch_rows
        self.max_wait = max_wait
        self.totals = RunTotals(self.classes)
        self.lock = threading.Lock()
        self.done = threading.Event()      # set once outputs are written and the source is closed
        self.source = None
        self.live = False
        self.report: dict | None = None
        # classified packets -> incidents (packet time only: the same at any speed or batch size)
        self.incidents = IncidentEngine(self.classes, int(getattr(classifier, "normal_index", 0)))
        self.sensor = config.outputs.sensor
        self.stopped_early: str | None = None   # why a file was not read to its end (-a on a file)
        self.write_failure: Exception | None = None
        self.last_frame = 0
        self.reopen_requested = False   # --append + SIGHUP: reopen predictions/alerts between batches
        self.reopens = 0
        self.stats_interval = config.outputs.stats_interval
        # -w / --write-flagged / the live TUI's frames (captures/keep.py)
        self.keeper: CaptureKeeper | None = None     # live: tees dumpcap's stream (files, flagged window)
        self._frames: FileFrames | None = None       # replay: the input read once for -w/--write-flagged
        self._capture_w: PcapngRing | None = None    # replay: -w
        self.flagged: FlaggedWriter | None = None     # --write-flagged

    def request_reopen(self) -> None:
        """Ask the run to reopen its streamed outputs (log rotation); safe from a signal handler."""
        self.reopen_requested = True

    def _stats(self, started: float, last: tuple[float, int], alert_w) -> dict:
        st = getattr(self.source, "stats", None)
        now = time.perf_counter()
        received = st.extra.get("captured") if st is not None else None
        with self.lock:
            packets, anomalies = self.totals.packets, self.totals.anomalies
            counts = {c: int(n) for c, n in zip(self.classes, self.totals.class_counts.tolist())}
        return stats_record(now=time.time(), uptime=now - started, host=self.sensor or sensor_name(),
                            source=getattr(self.source, "description", self.source_name), live=self.live,
                            packets=packets, anomalies=anomalies, drops=self.capture_drops,
                            received=None if received is None else int(received),
                            interval_packets=packets - last[1], interval_seconds=now - last[0],
                            incidents_open=len(self.incidents.active), incidents_opened=self.incidents.opened,
                            alerts=alert_w.alerts, class_counts=counts, model=getattr(self.classifier, "name", ""))

    def _outputs(self) -> dict:
        out = self.config.outputs
        stub = (json.dumps({"source": self.source_name, "in_progress": True, "interrupted": True,
                            "note": "written when the run ends; this run is still going or was killed"}) + "\n").encode()
        return plan_outputs(out.specs(stub), out.force, self.config.inputs())

    @property
    def capture_drops(self) -> int:
        st = getattr(self.source, "stats", None)
        return int(st.capture_drops) if st is not None else 0

    def pieces(self, cb: ClassifiedBatch, cancelled: Callable[[], bool]) -> Iterator[ClassifiedBatch]:
        """How a classified batch is released to counting and display (whole, by default)."""
        yield cb

    def run(self, on_batch: Callable[[ClassifiedBatch], None] = lambda cb: None,
            cancelled: Callable[[], bool] = lambda: False, opened: Callable[[], None] = lambda: None,
            capturing: Callable[[], None] = lambda: None,
            on_events: Callable[[list], None] = lambda events: None,
            drain: Callable[[], bool] = lambda: False) -> dict:
        """Process the whole source (or until count/duration/cancel/Ctrl-C); returns the run report.

        ``capturing()`` is called once the source really captures (a live capture's filter is in place;
        at once for files). ``drain()`` true asks for a graceful stop: a live capture stops capturing
        and what it already captured is still processed (at most ``DRAIN_SECONDS``); ``cancelled()``
        true stops at once. Raises IotwatchError on bad input; a KeyboardInterrupt ends the run like a
        user stop."""
        pred_w = alert_w = None
        writers: list = []
        interrupted = False
        started = False
        failed: BaseException | None = None
        outs: dict = {}
        t0 = time.perf_counter()   # the report's "seconds": wall time of the whole run
        stats_last = [(t0, 0)]     # (when, packets) of the last stats event
        try:
            outs = self._outputs()
            reserve_all(outs)
            self._open_keeping(outs)
            self.source = self.source_factory()
            self.live = bool(getattr(self.source, "live", False))
            if callable(self.labels):  # deferred: read while tshark loads its dissectors
                self.labels = self.labels()
            started = True
            opened()
            if "predictions" in outs:
                pred_w = PredictionsWriter(outs["predictions"], self.classes, with_labels=self.labels is not None)
                writers.append(pred_w)
            if "alerts" in outs:
                alert_w = AlertsWriter(outs["alerts"], source=self.source.description, live=self.live,
                                       host=self.sensor, model=getattr(self.classifier, "name", ""))
                writers.append(alert_w)
            # -a counts from the moment packets are captured (dumpcap needs ~1 s to start; tshark's
            # -a duration does the same), for files from the start of the run
            deadline = (time.perf_counter() + self.duration) if self.duration and not self.live else None

            announced = False
            drain_until: list = [None]

            def housekeeping() -> None:
                """Between batches: reopen the streamed outputs after a rotation, write a stats event when due."""
                if self.reopen_requested:
                    self.reopen_requested = False
                    for w in writers:
                        w.reopen()
                    self.reopens += 1
                if alert_w is not None and self.stats_interval and \
                        time.perf_counter() - stats_last[0][0] >= self.stats_interval:
                    alert_w.write_stats(self._stats(t0, stats_last[0], alert_w))
                    stats_last[0] = (time.perf_counter(), self.totals.packets)

            def stop() -> bool:  # called on every source batch, idle live ones included
                nonlocal announced, deadline
                try:
                    housekeeping()
                except OSError as e:
                    self.write_failure = write_error(alert_w.out.path if alert_w else "output", "alerts", e)
                    return True
                if not announced and getattr(self.source, "capturing", True):
                    announced = True
                    if self.duration and self.live:
                        deadline = time.perf_counter() + self.duration
                    capturing()
                if cancelled() or self._check_writers():
                    return True
                timed_out = deadline is not None and time.perf_counter() >= deadline
                if drain() or (timed_out and self.live):
                    # a live capture stops capturing; what dumpcap already has is still processed
                    if not (self.live and hasattr(self.source, "stop_capture")):
                        return True
                    if drain_until[0] is None:
                        self.source.stop_capture()
                        drain_until[0] = time.perf_counter() + DRAIN_SECONDS
                    return time.perf_counter() >= drain_until[0]
                if timed_out:
                    if not self.live and self.stopped_early is None:
                        self.stopped_early = (f"stopped by -a/--duration after {self.duration:g} s, "
                                              "before the end of the file")
                    return True
                return False

            try:
                for cb in classify_stream(self.source, self.classifier, self.labels, max_rows=self.batch_rows,
                                          max_wait=self.max_wait, cancelled=stop):
                    if self.count is not None and self.totals.packets + len(cb) >= self.count:
                        cb = cb.slice(0, self.count - self.totals.packets)
                    for piece in self.pieces(cb, cancelled):
                        events = self._write(piece, pred_w, alert_w, writers)
                        if events is None:
                            break
                        on_batch(piece)
                        if events:
                            on_events(events)
                    if self.write_failure is not None:
                        break
                    if stop() or (self.count is not None and self.totals.packets >= self.count):
                        break
            except KeyboardInterrupt:
                interrupted = True
            interrupted = interrupted or cancelled() or drain()
        except BaseException as e:
            failed = e
            raise
        finally:
            if self.source is not None:
                self.source.close()
            if not started or (failed is not None and not isinstance(failed, KeyboardInterrupt)):
                # an input error (or nothing ran): leave no header-only outputs behind
                self._discard_keeping()
                for f in outs.values():
                    f.discard()
            else:
                events = self.incidents.finish()   # incidents still active end with the source
                if alert_w and self.write_failure is None:
                    try:
                        alert_w.write(events)
                    except OSError as e:
                        alert_w.rollback()
                        self.write_failure = write_error(alert_w.out.path, alert_w.out.what, e)
                if events:
                    on_events(events)
                if alert_w and self.stats_interval and self.write_failure is None:
                    try:  # the last word of a run: its final counters
                        alert_w.write_stats(self._stats(t0, stats_last[0], alert_w))
                    except OSError as e:
                        alert_w.rollback()
                        self.write_failure = write_error(alert_w.out.path, alert_w.out.what, e)
                self._finish(outs, writers, time.perf_counter() - t0, interrupted or failed is not None)
            self.done.set()
        if self.write_failure is not None:
            raise self.write_failure
        return self.report

    def _write(self, piece: ClassifiedBatch, pred_w, alert_w, writers: list):
        """Write one piece to every output, then count it; returns its incident events. A failed
        write (disk full) cuts the piece back off every output and records the error (returns None);
        the piece is then not counted."""
        current = None
        for w in writers:
            w.mark()
        try:
            events = self.incidents.update(piece)
            if pred_w:
                current = pred_w
                pred_w.write(piece)
            if alert_w:
                current = alert_w
                alert_w.write(events)
        except OSError as e:
            for w in writers:
                w.rollback()
            self.write_failure = write_error(current.out.path if current else "output",
                                             current.out.what if current else "output", e)
            return None
        except BaseException:
            for w in writers:
                w.rollback()
            raise
        with self.lock:
            self.totals.update(piece.predicted, piece.anomaly, piece.labels)
        self._keep(piece)
        if len(piece):
            self.last_frame = int(piece.packets["frame_number"][-1])
        return events

    # -- -w / --write-flagged (captures/keep.py) ------------------------------------------------------
    def _open_keeping(self, outs: dict) -> None:
        """Writers for -w and --write-flagged (reserved in ``outs``) and where their packets come from:
        live, a keeper teeing dumpcap's stream (a private bounded ring for a TUI run without -w, so
        its detail view can dissect live frames: ``source.kept_frames()``); replay, the input file."""
        o, src = self.config.outputs, self.config.source
        if o.write_flagged:
            ring = PcapngRing(o.write_flagged, None, force=o.force, output=outs.get("flagged packets file"),
                              what="flagged packets file")
            self.flagged = FlaggedWriter(ring, self.classes, self.incidents)
        writer = PcapngRing(o.write, o.ring_options, force=o.force, output=outs.get("capture file")) if o.write else None
        if src.iface:
            window = WINDOW_BYTES if self.flagged is not None else 0
            if writer is None and not self.config.headless and self._own_source:
                self.keeper = CaptureKeeper.private(window_bytes=window)
            elif writer is not None or window:
                self.keeper = CaptureKeeper(writer, window_bytes=window, max_frames=self.count)
        elif writer is not None or self.flagged is not None:
            self._capture_w = writer
            self._frames = FileFrames(src.read)

    def _keep(self, piece: ClassifiedBatch) -> None:
        """Copy a counted piece's frames into -w (replay) and its flagged ones into --write-flagged."""
        if len(piece) and (self._frames is not None or self.flagged is not None):
            self._copy(piece)
        self._check_writers()

    def _check_writers(self) -> bool:
        """A -w / flagged file that cannot be written stops the run (exit 3, report truncated); a
        closed standard output (``-w - | head``) stops it quietly. True when the run must stop."""
        self._take_writer_problem()
        for w in self._user_writers():
            if w.stdout_closed and self.stopped_early is None:
                self.stopped_early = f"standard output (-w -) was closed by its reader after {w.packets} packets"
        return self.write_failure is not None or (self.stopped_early is not None and self.stopped_early.startswith("standard output"))

    def _copy(self, piece: ClassifiedBatch) -> None:
        frames = piece.packets["frame_number"]
        flagged = self.flagged is not None and bool(piece.anomaly.any())
        got: list = []
        if self._frames is not None and self._capture_w is not None:   # replay -w: every frame read
            ranges = self._frames.take_ranges(frames.tolist())
            for run, i, j in ranges:
                if not self._capture_w.write_range(run, i, j):
                    break
            self._capture_w.flush()   # a piece at a time on disk: what a later write error leaves
            if flagged:
                got = pick(ranges, sorted(frames[piece.anomaly].tolist()))
        elif flagged:   # replay: the input, read on; live: the tee's window
            supplier = self._frames if self._frames is not None else self.keeper
            got = supplier.take(frames[piece.anomaly].tolist()) if supplier is not None else []
        if flagged and got:
            self._flag(piece, frames, got)

    def _user_writers(self) -> list:
        """The pcapng writers of the user's -w / --write-flagged (not the private ring)."""
        return [w for w in (self._capture_w, self._keeper_user_writer, self.flagged.ring if self.flagged else None)
                if w is not None]

    @property
    def _keeper_user_writer(self):
        """The keeper's writer when it writes the user's -w files (not the private ring of a live TUI)."""
        return self.keeper.writer if self.keeper is not None and not self.keeper.private_dir else None

    def _flag(self, piece: ClassifiedBatch, frames, got: list) -> None:
        """The flagged frames of a piece with their class, confidence and incident track."""
        idx = piece.anomaly.nonzero()[0]
        info = dict(zip(frames[idx].tolist(), zip(piece.predicted[idx].tolist(), piece.confidence[idx].tolist())))
        tracks = {}
        for fr, tr in getattr(self.incidents, "assigned", ()):   # this piece's rows -> their incident track
            for n in fr.tolist():
                tracks[n] = tr
        self.flagged.add([f for f in got if f.number in info], info, tracks)

    def _close_keeping(self) -> None:
        """Complete -w / --write-flagged (after the source closed: the tee has stopped)."""
        header = None
        if self.keeper is not None:
            self.keeper.close()
            header = self.keeper.header()
        if self._frames is not None:
            header = self._frames.header()
            self._frames.close()
        if self._capture_w is not None:
            self._capture_w.close(header)
        if self.flagged is not None:
            self.flagged.close(header)
        self._take_writer_problem()

    def _take_writer_problem(self) -> None:
        """The first problem of a -w / flagged writer becomes the run's write failure."""
        for w in self._user_writers():
            if w.problem is not None and self.write_failure is None:
                self.write_failure = w.problem

    def _discard_keeping(self) -> None:
        if self.keeper is not None:
            self.keeper.close()
            if self.keeper.writer is not None:
                self.keeper.writer.discard()
            self.keeper.cleanup()
        if self._frames is not None:
            self._frames.close()
        for w in (self._capture_w, self.flagged.ring if self.flagged else None):
            if w is not None:
                w.discard()

    def _keeping_report(self) -> dict:
        extra: dict = {}
        w = self._capture_w or self._keeper_user_writer
        if w is not None:
            kept = w.kept()
            extra["capture_file"] = {"path": self.config.outputs.write, "packets": w.packets,
                                     "files": [k.path for k in kept],
                                     "files_written": w.files_written, "files_deleted": len(w.deleted)}
            if self.keeper is not None and self.keeper.problem:
                extra["capture_file"]["problem"] = self.keeper.problem
        if self.flagged is not None:
            missed = (self.keeper.missed if self.keeper is not None else 0) + \
                (self._frames.missed if self._frames is not None else 0)
            written = self.flagged.ring.packets   # after a write error: what the file really holds
            extra["flagged_file"] = {"path": self.config.outputs.write_flagged, "packets": written,
                                     "with_incident": min(self.flagged.with_incident, written)}
            if missed:
                extra["flagged_file"]["missing"] = missed
        return extra

    def _finish(self, outs: dict, writers: list, seconds: float, interrupted: bool) -> None:
        """Commit the streamed outputs, then build and commit the report (last, so it never counts
        lines a file does not hold)."""
        self._close_keeping()
        for w in writers:
            try:
                w.flush()
                w.commit()
            except (OSError, IotwatchError) as e:
                if self.write_failure is None:
                    self.write_failure = e if isinstance(e, IotwatchError) else write_error(w.out.path, w.out.what, e)
                w.discard()
        self.report = self._report(seconds, interrupted)
        rep = outs.get("report")
        if rep is not None:
            try:
                fh = rep.open("w")
                json.dump(self.report, fh, indent=2)
                fh.write("\n")
                rep.commit()
            except OSError as e:
                rep.discard()
                if self.write_failure is None:
                    self.write_failure = write_error(rep.path, "report", e)
            except IotwatchError as e:
                if self.write_failure is None:
                    self.write_failure = e

    def _report(self, seconds: float, interrupted: bool) -> dict:
        extra: dict = {}
        st = getattr(self.source, "stats", None)
        truncated = []
        if st is not None:
            extra["capture_drops"] = int(st.capture_drops)
            if st.extra.get("captured") is not None:  # live: what dumpcap itself received
                extra["capture_received"] = int(st.extra["captured"])
            if st.extra.get("written") is not None:   # live: what dumpcap wrote for tshark to read
                extra["capture_written"] = int(st.extra["written"])
            if st.truncated:
                truncated.append(st.truncated)
        if self.stopped_early:
            truncated.append(self.stopped_early)
        if self.write_failure is not None:
            truncated.append(f"stopped: {self.write_failure}")
        if truncated:
            extra["truncated"] = "; ".join(truncated)
        if self.labels is not None:
            extra["labels_source"] = self.labels.source
            whole = not (interrupted or truncated or self.count is not None and self.totals.packets >= self.count)
            beyond = self.labels.labelled_beyond(self.last_frame) if whole and hasattr(self.labels, "labelled_beyond") else 0
            if beyond:
                extra["labels_beyond_capture"] = beyond
        if interrupted:
            extra["interrupted"] = True
        extra["sensor"] = self.sensor or sensor_name()
        extra.update(self._keeping_report())
        extra["incidents_opened"] = self.incidents.opened
        extra["incidents"] = [t.to_dict() for t in self.incidents.incidents()]
        if self.incidents.dropped:
            extra["incidents_truncated"] = self.incidents.dropped
        model = getattr(self.classifier, "name", "")
        with self.lock:
            return self.totals.report(self.source_name, model, seconds, extra)
