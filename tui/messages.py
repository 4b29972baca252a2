"""Messages the app's workers post to the UI (past-tense events; ``post_message`` is thread-safe)."""
from __future__ import annotations

from textual.message import Message

from iotwatch.captures.tshark.dissect import DissectedLayer
from iotwatch.detector.pipeline import ClassifiedBatch


class CaptureStarted(Message):
    """The source is open and packets are flowing."""

    def __init__(self, description: str, live: bool) -> None:
        super().__init__()
        self.description = description
        self.live = live


class BatchClassified(Message):
    """One classified batch for the screen, in ``store.display_batch`` form (already counted)."""

    def __init__(self, batch: ClassifiedBatch) -> None:
        super().__init__()
        self.batch = batch


class IncidentsChanged(Message):
    """Snapshots (``Track.to_dict``) of incidents that opened, grew or ended; never dropped."""

    def __init__(self, snapshots: list[dict]) -> None:
        super().__init__()
        self.snapshots = snapshots


class CaptureFailed(Message):
    """The source could not be opened or broke mid-run: one line and the CLI exit code."""

    def __init__(self, reason: str, exit_code: int, started: bool) -> None:
        super().__init__()
        self.reason = reason
        self.exit_code = exit_code
        self.started = started  # False: failed before any packet (the app exits at once)


class CaptureFinished(Message):
    """The source ended (end of file, -c/-a reached, or cancelled); ``report`` is the run report."""

    def __init__(self, report: dict) -> None:
        super().__init__()
        self.report = report


class DetailLoaded(Message):
    """The full dissection of one frame (built in a thread worker): Wireshark's tree (``Node``s from
    ``captures.tshark.frames``), the frame's bytes and how long it took."""

    def __init__(self, frame: int, layers: list, raw: bytes = b"", seconds: float = 0.0) -> None:
        super().__init__()
        self.frame = frame
        self.layers = layers
        self.raw = raw
        self.seconds = seconds


class StreamFollowed(Message):
    """``tshark -z follow`` text of one frame's conversation (or why there is none)."""

    def __init__(self, frame: int, title: str, text: str) -> None:
        super().__init__()
        self.frame = frame
        self.title = title
        self.text = text


class DetailFailed(Message):
    def __init__(self, frame: int, reason: str) -> None:
        super().__init__()
        self.frame = frame
        self.reason = reason
