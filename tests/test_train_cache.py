"""The training cache's batch level (detector/featcache.py via train.featurise_capture): feature rows
rebuilt from cached parsed batches equal a fresh tshark read bit for bit; a changed capture, label file
or capture-side code misses; damaged files are rebuilt; nothing is ever unpickled."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from iotwatch.captures import sources
from iotwatch.captures.sources import open_source
from iotwatch.detector import featcache
from iotwatch.detector import train as train_mod
from iotwatch.detector.bundle import CONTRACT_CLASSES
from iotwatch.detector.features import FEATURIZER_VERSION
from iotwatch.detector.train import featurise_capture
from test_train import write_capture

ROOT = Path(__file__).resolve().parent.parent
PCAPS = Path(__file__).resolve().parent / "data" / "pcaps"


def _capture(tmp_path, which: str) -> Path:
    """demo: the bundled demo capture (sidecar labels); labelled: a golden capture labelled by pcapng
    comments; cut: the golden capture cut mid-packet (a truncated read), given a sidecar."""
    if which == "demo":
        return ROOT / "captures" / "demo" / "demo.pcapng"
    if which == "labelled":
        return PCAPS / "labelled.pcapng"
    p = tmp_path / "loopback_cut.pcap"
    shutil.copyfile(PCAPS / "loopback_cut.pcap", p)
    n = sum(len(b) for b in _fresh_batches(p))
    p.with_name(p.name + ".labels.csv").write_text(
        "frame_number,label\n" + "".join(f"{i},{'recon' if i % 3 else 'normal'}\n" for i in range(1, n + 1)))
    return p


def _fresh_batches(path: Path) -> list:
    src = open_source(read=str(path))
    try:
        return [b for b in src.batches(max_rows=train_mod.READ_BATCH_ROWS, max_wait=1.0) if len(b)]
    finally:
        src.close()


class _Opens:
    """Counts tshark reads (``open_source`` calls) made by featurise_capture; ``forbid`` makes one fail."""

    def __init__(self, monkeypatch):
        self.n = 0
        self.forbid = False
        monkeypatch.setattr(sources, "open_source", self)

    def __call__(self, *a, **kw):
        self.n += 1
        if self.forbid:
            raise AssertionError("tshark read although the batches are cached")
        return open_source(*a, **kw)


def _featurise(path, cache):
    X, y, _ = featurise_capture(path, CONTRACT_CLASSES, FEATURIZER_VERSION, cache)
    return X, y


def _new_feature_code(monkeypatch, tag: str) -> None:
    monkeypatch.setattr(train_mod, "_FEATURE_CODE_DIGEST", f"features-{tag}")


def _bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "labelled", "cut"])
def test_rows_from_cached_batches_equal_a_fresh_tshark_read(tmp_path, monkeypatch, which):
    path = _capture(tmp_path, which)
    X0, y0 = _featurise(path, None)                  # no cache: a plain tshark read
    assert len(y0) > 0 and (y0 >= 0).any()
    cache = tmp_path / "cache"
    opens = _Opens(monkeypatch)
    X1, y1 = _featurise(path, cache)                 # fills both levels
    assert opens.n == 1 and _bit_equal(X0, X1) and np.array_equal(y0, y1)
    assert len(list(cache.glob("*.npz"))) == 1 and len(list((cache / "batches").glob("*.npz"))) == 1

    # the stored batches are the source's batches: same boundaries, dtypes and values
    fresh = _fresh_batches(path)
    stored = featcache.load_batches(*_batch_file(cache, path))
    assert stored is not None and len(stored) == len(fresh)
    for (b, lab), f in zip(stored, fresh):
        assert list(b.columns) == list(f.columns) and len(b) == len(f)
        for name, col in f.columns.items():
            got = b.columns[name]
            assert got.dtype == col.dtype, name
            if col.dtype == object:
                assert got.tolist() == col.tolist(), name
            else:
                assert np.array_equal(got, col, equal_nan=col.dtype.kind == "f"), name
    if which == "cut":
        assert stored.truncated and "stopped after frame" in stored.truncated

    # a feature-code change: rows rebuilt from the batches, no tshark, bit-identical
    _new_feature_code(monkeypatch, "changed")
    opens.forbid = True
    X2, y2 = _featurise(path, cache)
    assert _bit_equal(X0, X2) and np.array_equal(y0, y2)
    assert len(list(cache.glob("*.npz"))) == 2       # the new code's rows are cached too
    X3, y3 = _featurise(path, cache)                 # ... and served
    assert _bit_equal(X0, X3) and np.array_equal(y0, y3)


def _batch_file(cache: Path, path: Path) -> tuple[Path, str]:
    from iotwatch.captures.files import sha256_file
    from iotwatch.captures.labels import LabelSet

    side = LabelSet.load(CONTRACT_CLASSES, capture=path).sidecar_path
    return featcache.batch_cache_file(cache, path, sha256_file(path), sha256_file(side) if side else "nolabels")


@pytest.mark.slow
def test_a_changed_capture_labels_or_capture_code_misses(tmp_path, monkeypatch):
    path = write_capture(tmp_path / "a.pcapng", seed=1, n_normal=120, n_scan=60)
    side = Path(str(path) + ".labels.csv")
    cache = tmp_path / "cache"
    opens = _Opens(monkeypatch)
    _featurise(path, cache)
    _new_feature_code(monkeypatch, "1")
    _featurise(path, cache)
    assert opens.n == 1                                # the batches served the new feature code

    # the label file changed: the cached per-frame labels must not be served
    rows = side.read_text().splitlines()
    frame, label = rows[1].split(",")
    rows[1] = f"{frame},{'dos' if label != 'dos' else 'normal'}"
    side.write_text("\n".join(rows) + "\n")
    _new_feature_code(monkeypatch, "2")
    X, y = _featurise(path, cache)
    assert opens.n == 2 and y[0] == CONTRACT_CLASSES.index(rows[1].split(",")[1])

    # the capture changed (same name, other packets)
    write_capture(path, seed=2, n_normal=100, n_scan=50)
    _new_feature_code(monkeypatch, "3")
    X, y = _featurise(path, cache)
    assert opens.n == 3 and len(y) == 150

    # the capture-side code changed (fields, parser, batch.py, labels.py, tshark argv or version)
    monkeypatch.setattr(featcache, "_CAPTURE_CODE_DIGEST", "other-capture-code")
    monkeypatch.setattr(train_mod, "_FEATURE_CODE_DIGEST", None)  # recomputed from both digests
    X4, y4 = _featurise(path, cache)
    assert opens.n == 4 and _bit_equal(X, X4)
    _new_feature_code(monkeypatch, "4")
    _featurise(path, cache)
    assert opens.n == 4                                # ... and its batches are cached in turn


def _damage(kind: str, f: Path) -> None:
    data = f.read_bytes()
    if kind == "garbage":
        f.write_bytes(b"not a zip file at all" * 10)
    elif kind == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        f.write_bytes(b"")
    elif kind == "inconsistent":   # a readable npz whose arrays do not fit together
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for k in ("labels", "y"):
            if k in arrays:
                arrays[k] = arrays[k][:-1]
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "inconsistent"])
def test_a_damaged_cache_file_is_ignored_and_rebuilt(tmp_path, monkeypatch, capsys, kind):
    path = write_capture(tmp_path / "a.pcapng", seed=3, n_normal=120, n_scan=60)
    cache = tmp_path / "cache"
    X0, y0 = _featurise(path, cache)
    rows_file = next(cache.glob("*.npz"))
    batch_file = next((cache / "batches").glob("*.npz"))

    _damage(kind, rows_file)                          # the rows: rebuilt from the batches
    opens = _Opens(monkeypatch)
    X1, y1 = _featurise(path, cache)
    assert _bit_equal(X0, X1) and np.array_equal(y0, y1) and opens.n == 0
    assert "ignoring" in capsys.readouterr().err
    assert featcache.load_rows(rows_file, X0.shape[1]) is not None   # replaced by a good file

    _damage(kind, batch_file)                         # the batches (and rows of a new feature code)
    _new_feature_code(monkeypatch, "after-damage")
    X2, y2 = _featurise(path, cache)
    assert _bit_equal(X0, X2) and np.array_equal(y0, y2) and opens.n == 1
    assert "ignoring" in capsys.readouterr().err
    assert featcache.load_batches(*_batch_file(cache, path)) is not None
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]     # no temporary file left behind


class _Planted:
    """Unpickling this calls ``_planted_ran``: proof that a loader unpickled."""

    def __reduce__(self):
        return (_planted_ran, ())


UNPICKLED = []


def _planted_ran():
    UNPICKLED.append(True)
    return "planted"


@pytest.mark.slow
def test_cache_files_hold_no_pickles_and_a_pickle_is_never_loaded(tmp_path, monkeypatch, capsys):
    path = write_capture(tmp_path / "a.pcapng", seed=4, n_normal=120, n_scan=60)
    cache = tmp_path / "cache"
    X0, y0 = _featurise(path, cache)
    files = list(cache.rglob("*.npz"))
    assert len(files) == 2
    for f in files:
        with np.load(f, allow_pickle=False) as z:      # raises if any array needed pickle
            assert all(z[k].dtype != object for k in z.files)

    # a batches file holding a pickled object array (what np.save does for object columns)
    batch_file, key = _batch_file(cache, path)
    with np.load(batch_file, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    obj = np.empty(2, dtype=object)
    obj[:] = [_Planted(), _Planted()]
    arrays[next(k for k in arrays if k.endswith(".codes"))] = obj
    with open(batch_file, "wb") as fh:
        np.savez(fh, **arrays)
    rows_file = next(cache.glob("*.npz"))
    with open(rows_file, "wb") as fh:
        np.savez(fh, X=obj, y=obj)
    X1, y1 = _featurise(path, cache)               # the same code: rows file, then batches file read
    assert not UNPICKLED and _bit_equal(X0, X1) and np.array_equal(y0, y1)
    assert capsys.readouterr().err.count("ignoring") == 2
