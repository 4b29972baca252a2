"""The live TUI's ring read-back in Pilot, without capture permission: a fake live source replays a
600-frame capture's fields and lists that capture cut into ring files (editcap -c 100) as its
``kept_frames()``, the first file gone. Memory holds 300 rows: rows 101-300 come back from the
ring, 1-100 are counted as dropped, Enter dissects a frame from the ring, a display filter runs over
the kept frames and matches what tshark says of the whole file."""
from __future__ import annotations

import shutil
import subprocess
from functools import partial

import pytest

from iotwatch.captures.batch import SourceStats
from iotwatch.captures.keep import KeptFile
from iotwatch.captures.tshark.frames import FrameIndex
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.tui.app import make_app
from iotwatch.tui.messages import DetailLoaded

from fakes import make_tiny_bundle, require, run_config
import tui_support
from tui_support import finish, tshark_frames, write_capture

settle = partial(tui_support.settle, tries=1500)  # reads from the ring's files: a longer wait than the default

pytestmark = pytest.mark.slow   # tshark runs for the fields, the detail and the filter (2-6 s)


@pytest.fixture(autouse=True)
def _tools():
    require(shutil.which("editcap"), "editcap")

N, PER_FILE = 600, 100


class FakeLiveSource:
    """Live in the app's eyes: batches of the capture's fields, and the ring files it 'keeps'."""

    live = True
    description = "fake0"

    def __init__(self, batch, kept):
        self._batch = batch
        self._kept = kept
        self.stats = SourceStats()

    def batches(self, max_rows: int = 256, max_wait: float = 0.1):
        for start in range(0, len(self._batch), max_rows):
            part = self._batch.slice(start, min(len(self._batch), start + max_rows))
            self.stats.packets += len(part)
            yield part

    def kept_frames(self):
        return list(self._kept)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    d = tmp_path_factory.mktemp("live")
    path = write_capture(d / "mix.pcapng", n=N)
    subprocess.run(["editcap", "-c", str(PER_FILE), str(path), str(d / "ring.pcapng")], check=True, capture_output=True)
    files = sorted(d.glob("ring_*.pcapng"))
    kept = [KeptFile(str(p), 1 + i * PER_FILE, (i + 1) * PER_FILE) for i, p in enumerate(files)][1:]
    fields = FrameIndex(path).build().read_fields(1, N)
    return path, kept, fields, make_tiny_bundle(d / "tiny.iotw", seed=1)


async def test_live_rows_detail_and_filter_come_from_the_ring(ring):
    path, kept, fields, bundle = ring
    source = FakeLiveSource(fields, kept)
    msgs = []
    app = make_app(run_config(iface="fake0", model=str(bundle)), PacketClassifier.load(bundle), None,
                   source_factory=lambda: source, view_cap=300, batch_rows=64)
    async with app.run_test(size=(120, 40), message_hook=msgs.append) as pilot:
        await finish(pilot)
        assert app.live and app.live_frames is not None
        view = app.table.view
        # frames 1-100 left the ring and memory: dropped, said so; 101-600 reachable
        assert app.dropped_from_view == PER_FILE and len(view) == N - PER_FILE
        assert view.row(0).frame == PER_FILE + 1
        # one tick asks the ring for its files once (the view, the subtitle and the status bar share it)
        asked = []
        source.kept_frames = lambda: asked.append(1) or list(kept)
        app._dirty = True
        app.refresh_screen()
        assert len(asked) == 1 and "500 of 600 packets" in str(app.table.border_subtitle)
        del source.kept_frames
        await pilot.press("g")
        await settle(pilot, lambda: not app.table.view.row(0).loading)
        row = app.table.view.row(0)   # read back from ring file 2 (memory holds 301-600)
        assert row.frame == 101 and row.src and row.proto
        # Enter on frame 150: its dissection from the ring, numbered as in the run
        app.jump_to_frame(150)
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot, lambda: any(isinstance(m, DetailLoaded) for m in msgs))
        loaded = next(m for m in msgs if isinstance(m, DetailLoaded))
        assert loaded.frame == 150
        assert any(n.text.startswith("Frame 150:") for n in loaded.layers) and loaded.raw
        await pilot.press("escape")
        # a display filter over the kept frames
        app.apply_live_filter("tcp.flags.syn == 1 || arp")
        await settle(pilot, lambda: app.live_filter is not None and app.live_filter.upto == N
                     and app.dfilter is not None)
        app.refresh_screen()
        await pilot.pause()
        want = [f for f in tshark_frames(path, "tcp.flags.syn == 1 || arp") if f > PER_FILE]
        assert sorted(app.dfilter_frames.tolist()) == want and want
        shown = [app.table.view.row(i).frame for i in range(len(app.table.view))]
        assert shown == want
        assert "checked up to frame 600" in str(app.table.border_subtitle)
        assert app.live_filter.lost == PER_FILE
