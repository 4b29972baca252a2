"""CONTRACT §2 label sources: sidecar CSV (auto-discovered or --labels) and pcapng comments."""
from __future__ import annotations

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.errors import InputError
from iotwatch.captures.labels import LabelSet, discover_sidecar, read_sidecar

CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]


def batch(frames, comments=None):
    comments = comments or [""] * len(frames)
    return PacketBatch.from_records({"frame_number": f, "frame_comment": c} for f, c in zip(frames, comments))


def test_sidecar_maps_frames_and_leaves_missing_unlabelled(tmp_path):
    p = tmp_path / "x.labels.csv"
    p.write_text("frame_number,label\n1,normal\n2,recon\n4,exfiltration\n")
    ls = LabelSet.load(CLASSES, labels_path=p)
    out = ls.for_batch(batch([1, 2, 3, 4, 5]))
    assert out.tolist() == [0, 1, -1, 5, -1]
    assert ls.source == str(p)


def test_sidecar_header_column_order_and_blank_lines(tmp_path):
    p = tmp_path / "y.csv"
    p.write_text("label,frame_number\r\ndos,3\r\n\r\nspoofing,1\r\n")
    assert read_sidecar(p, CLASSES) == {3: 2, 1: 4}


@pytest.mark.parametrize("text,needle", [
    ("frame_number,label\n1,normal\n2,portscan\n", ":3: unknown class 'portscan'"),
    ("frame_number,label\nx,normal\n", ":2: frame_number 'x' is not an integer"),
    ("frame_number,label\n0,normal\n", ":2: frame_number 0 must be >= 1"),
    ("frame,cls\n1,normal\n", ":1: header must contain"),
    ("", "empty label file"),
    ("frame_number,label\n5\n", ":2: expected 'frame_number,label'"),
    ("frame_number,label\n5\nnormal,6,recon\n", ":2: expected 'frame_number,label'"),  # realigns if split naively
])
def test_bad_sidecar_errors_name_file_line_and_value(tmp_path, text, needle):
    p = tmp_path / "bad.labels.csv"
    p.write_text(text)
    with pytest.raises(InputError) as ei:
        read_sidecar(p, CLASSES)
    msg = str(ei.value)
    assert str(p) in msg and needle in msg
    assert "\n" not in msg


@pytest.mark.parametrize("text", [
    "frame_number,label\n1,normal\n2,\n2,recon\n7,dos",        # explicit blank label, duplicates, no final newline
    "frame_number,label\n1,normal\n1,\n",                        # a blank label does not erase an earlier one
    "frame_number,label\n",
    "frame_number, label\n3,recon\n\n\n",
    " 9,exfiltration\n".join(["frame_number,label\n", ""]) + "10, spoofing\n",
    "frame_number,label\r\n1,normal\r\n",
    "frame_number,label\n1,normal\n2,dos,\n",                     # trailing empty column: accepted
])
def test_fast_sidecar_reader_agrees_with_the_careful_one(tmp_path, text, monkeypatch):
    """Clean files take a fast path (~4x the csv module); it must give exactly the careful reader's map."""
    import iotwatch.captures.labels as labels_mod

    p = tmp_path / "l.csv"
    p.write_text(text, newline="")
    fast = read_sidecar(p, CLASSES)
    monkeypatch.setattr(labels_mod, "_fast_block", lambda *a: None)
    assert fast == read_sidecar(p, CLASSES)


def test_binary_and_missing_sidecar_are_input_errors(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(InputError, match="not a text CSV"):
        read_sidecar(p, CLASSES)
    with pytest.raises(InputError, match="does not exist"):
        read_sidecar(tmp_path / "nope.csv", CLASSES)


def test_autodiscovery_prefers_full_name_then_stem(tmp_path):
    cap = tmp_path / "lab.pcapng"
    cap.write_bytes(b"")
    assert discover_sidecar(cap) is None
    (tmp_path / "lab.labels.csv").write_text("frame_number,label\n1,dos\n")
    assert discover_sidecar(cap) == tmp_path / "lab.labels.csv"
    (tmp_path / "lab.pcapng.labels.csv").write_text("frame_number,label\n1,recon\n")
    assert discover_sidecar(cap) == tmp_path / "lab.pcapng.labels.csv"
    ls = LabelSet.load(CLASSES, capture=cap)
    assert ls.for_batch(batch([1])).tolist() == [1]


def test_explicit_labels_path_beats_discovery(tmp_path):
    cap = tmp_path / "c.pcapng"
    cap.write_bytes(b"")
    (tmp_path / "c.pcapng.labels.csv").write_text("frame_number,label\n1,recon\n")
    other = tmp_path / "other.csv"
    other.write_text("frame_number,label\n1,dos\n")
    assert LabelSet.load(CLASSES, capture=cap, labels_path=other).for_batch(batch([1])).tolist() == [2]


def test_comment_labels_and_sidecar_wins(tmp_path):
    ls = LabelSet(CLASSES)
    out = ls.for_batch(batch([1, 2, 3, 4], ["label=dos", "", "note; label=spoofing", "other comment"]))
    assert out.tolist() == [2, -1, 4, -1]
    side = LabelSet(CLASSES, {1: 0}, sidecar_path=tmp_path / "s.csv", use_comments=False)
    assert side.for_batch(batch([1, 2], ["label=dos", "label=dos"])).tolist() == [0, -1]


def test_unknown_comment_class_names_the_frame():
    with pytest.raises(InputError, match=r"frame 7: unknown class 'scan'"):
        LabelSet(CLASSES).for_batch(batch([7], ["label=scan"]))


def test_plain_pcap_without_sidecar_has_no_label_source(tmp_path):
    cap = tmp_path / "plain.pcap"
    cap.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\0" * 20)
    assert LabelSet.load(CLASSES, capture=cap) is None
    ng = tmp_path / "c.pcapng"
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 40 + b"label=dos")
    assert LabelSet.load(CLASSES, capture=ng) is not None
    ng2 = tmp_path / "d.pcapng"
    ng2.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)
    assert LabelSet.load(CLASSES, capture=ng2) is None


def test_large_sidecar_lookup_is_vectorised(tmp_path):
    p = tmp_path / "big.csv"
    n = 50_000
    p.write_text("frame_number,label\n" + "".join(f"{i},{CLASSES[i % 6]}\n" for i in range(1, n + 1)))
    ls = LabelSet.load(CLASSES, labels_path=p)
    frames = np.arange(1, n + 10)
    out = ls.for_batch(batch(frames.tolist()))
    assert out[:n].tolist() == [i % 6 for i in range(1, n + 1)]
    assert (out[n:] == -1).all()
