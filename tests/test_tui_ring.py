"""tui.ring without a live capture: the demo capture cut into ring files (editcap -c), listed by a
fake source's ``kept_frames()`` the way a live capture's keeper lists them (run frame numbers), with
the oldest file gone. Checked against tshark over the whole file."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from iotwatch.captures.keep import KeptFile
from iotwatch.options import demo_capture
from iotwatch.tui.ring import LiveFilter, LiveFrames, NotKept
from iotwatch.tui.store import PageCache, PredictionLog

from fakes import require
from tui_support import tshark_frames


@pytest.fixture(autouse=True)
def _tools():
    require(shutil.which("editcap") and shutil.which("tshark"), "editcap and tshark")

PER_FILE = 200


class RingSource:
    def __init__(self, kept):
        self.kept = kept

    def kept_frames(self):
        return list(self.kept)


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    """(whole file, kept files): the first 1,000 frames of the demo in 5 files of 200; the first
    file left the ring."""
    folder = tmp_path_factory.mktemp("ring")
    head = folder / "head.pcapng"
    subprocess.run(["editcap", "-r", str(demo_capture()), str(head), "1-1000"], check=True, capture_output=True)
    subprocess.run(["editcap", "-c", str(PER_FILE), str(head), str(folder / "live.pcapng")], check=True,
                   capture_output=True)
    files = sorted(folder.glob("live_*.pcapng"))
    assert len(files) == 5
    kept = [KeptFile(str(p), 1 + i * PER_FILE, (i + 1) * PER_FILE) for i, p in enumerate(files)][1:]
    return head, kept


def test_detail_of_a_kept_frame_is_numbered_as_in_the_run(ring):
    whole, kept = ring
    live = LiveFrames(RingSource(kept))
    layers = live.dissect(555)
    frame = next(n for n in layers if n.text.startswith("Frame "))   # after the packet comments
    assert frame.text.startswith("Frame 555:")
    assert any(c.text == "Frame Number: 555" for c in frame.children)
    want = subprocess.run(["tshark", "-r", str(whole), "-Y", "frame.number == 555", "-x"], check=True,
                          capture_output=True, text=True).stdout
    raw = live.packet_bytes(555)
    assert raw[:16].hex(" ") in want   # the first hex row of frame 555 of the whole file


def test_a_frame_that_left_the_ring_says_so_in_one_line(ring):
    _, kept = ring
    live = LiveFrames(RingSource(kept))
    with pytest.raises(NotKept) as e:
        live.dissect(150)
    assert "fell out of the live ring" in str(e.value) and "201-1,000" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(NotKept) as e:
        live.dissect(1001)
    assert "not on disk yet" in str(e.value)


@pytest.mark.slow   # a tshark run per file (2-5 s on a loaded machine)
def test_rows_read_back_across_files_keep_run_frame_numbers(ring):
    whole, kept = ring
    live = LiveFrames(RingSource(kept))
    frames = [150, 399, 400, 401, 999]
    batch = live.read(frames)
    assert batch["frame_number"].tolist() == [399, 400, 401, 999]   # 150 left the ring
    log = PredictionLog()
    log.n = 1000
    log._cols["frame"] = np.arange(1, 1001, dtype=np.int32)
    pages = PageCache(live, log)
    pages.gone = lambda f: "gone" if f < 201 else None
    pages.load(0)      # gids 0..255 = frames 1..256: 1..200 gone, 201..256 read back
    assert pages.row(10, 11).info == "gone" and pages.row(210, 211).frame == 211
    assert pages.row(210, 211).src and not pages.row(210, 211).loading


@pytest.mark.slow   # seven tshark runs
def test_live_filter_matches_tshark_over_the_kept_frames(ring, monkeypatch):
    whole, kept = ring
    import iotwatch.tui.ring as ring_mod

    monkeypatch.setattr(ring_mod, "FILTER_BLOCK", 150)   # blocks smaller than a file: several steps
    live = LiveFrames(RingSource(kept))
    lf = LiveFilter(live, "udp || arp")
    steps = 0
    while lf.step():
        steps += 1
    want = [f for f in tshark_frames(whole, "udp || arp") if f > PER_FILE]
    assert lf.matched.tolist() == want and lf.upto == 1000 and steps >= 6
    assert lf.lost == PER_FILE    # the first file left before it was checked
