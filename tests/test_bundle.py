"""Model bundles: round trip, the bundled model, and refusal of anything unsafe or inconsistent."""
from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save_file

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.errors import InputError
from iotwatch.detector.bundle import CONTRACT_CLASSES, load_bundle, save_bundle
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.features import FEATURE_NAMES, FEATURE_SCHEMA, PAPER_FEATURE_NAMES
from fakes import make_tiny_bundle, rewrite_bundle


def _batch(n=50):
    return PacketBatch.from_records(
        dict(frame_number=i + 1, time_epoch=100.0 + i * 0.01, frame_len=60 + i, ip_version=4,
             ip_src=f"10.0.0.{i % 3}", ip_dst="10.0.0.9", ip_proto=6, tcp_srcport=40000 + i, tcp_dstport=22,
             tcp_flags=0x02, eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:09") for i in range(n))


def test_bundled_model_loads_and_classifies():
    clf = PacketClassifier.load(None)
    assert clf.classes_ == list(CONTRACT_CLASSES)
    assert clf.feature_names_in_ == list(FEATURE_NAMES)
    assert clf.normal_index == 0
    assert "/" in clf.name
    X = clf.new_extractor().transform(_batch())
    proba = clf.predict_proba(X)
    assert proba.shape == (50, 6) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = clf.predict(X)
    assert pred.dtype == np.int64 and np.array_equal(pred, proba.argmax(axis=1))
    anom = clf.is_anomaly(proba, pred)
    assert anom.dtype == bool and anom.shape == (50,)
    assert np.array_equal(anom & (pred == 0), np.zeros(50, bool))


def test_tiny_bundle_is_deterministic_and_round_trips(tmp_path):
    a = make_tiny_bundle(tmp_path / "a.iotw", seed=3)
    b = make_tiny_bundle(tmp_path / "b.iotw", seed=3)
    c = make_tiny_bundle(tmp_path / "c.iotw", seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    bundle = load_bundle(a)
    assert bundle.meta["feature_schema"] == FEATURE_SCHEMA
    assert bundle.classes == list(CONTRACT_CLASSES)
    clf = PacketClassifier.load(a)
    X = clf.new_extractor().transform(_batch())
    assert np.array_equal(clf.predict(X), PacketClassifier.load(b).predict(X))


def test_custom_classes_and_paper_featurizer(tmp_path):
    p = make_tiny_bundle(tmp_path / "p.iotw", classes=("benign", "attack"), featurizer="paper")
    clf = PacketClassifier.load(p)
    assert clf.classes_ == ["benign", "attack"]
    assert clf.feature_names_in_ == list(PAPER_FEATURE_NAMES)
    X = clf.new_extractor().transform(_batch(7))
    assert X.shape == (7, len(PAPER_FEATURE_NAMES))
    assert clf.predict_proba(X).shape == (7, 2)


def test_predict_proba_rejects_wrong_width(tmp_path):
    clf = PacketClassifier.load(make_tiny_bundle(tmp_path / "t.iotw"))
    with pytest.raises(ValueError, match="shape"):
        clf.predict_proba(np.zeros((3, 5), np.float32))
    assert clf.predict_proba(np.zeros((0, len(FEATURE_NAMES)), np.float32)).shape == (0, 6)


def _one_line_input_error(path, match):
    with pytest.raises(InputError) as ei:
        PacketClassifier.load(path)
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg
    assert match in msg, msg


def test_refuses_pickle_torch_zip_text_and_corrupt(tmp_path):
    pk = tmp_path / "model.pkl"
    pk.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    _one_line_input_error(pk, "pickle")
    zp = tmp_path / "model.pt"
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    _one_line_input_error(zp, "zip")
    tx = tmp_path / "model.txt"
    tx.write_text("hello, I am not a model\n" * 10)
    _one_line_input_error(tx, "not a safetensors")
    good = make_tiny_bundle(tmp_path / "good.iotw")
    data = good.read_bytes()
    cut = tmp_path / "cut.iotw"
    cut.write_bytes(data[: len(data) // 2])
    _one_line_input_error(cut, "corrupt")
    empty = tmp_path / "empty.iotw"
    empty.write_bytes(b"")
    _one_line_input_error(empty, "too short")
    _one_line_input_error(tmp_path / "nope.iotw", "does not exist")
    _one_line_input_error(tmp_path, "folder")


def test_refuses_schema_mismatch_shapes_and_missing_keys(tmp_path):
    good = make_tiny_bundle(tmp_path / "good.iotw")

    def bad_schema(m):
        m["feature_schema"] = "context-v1:0000000000000000"
    _one_line_input_error(rewrite_bundle(good, tmp_path / "s.iotw", bad_schema), "feature schema")

    def retired(m):  # an iotwatch-default/2 era bundle
        m["featurizer"] = "context-v1"
        m["feature_schema"] = "context-v1:f40bbd5843d1773e"
    _one_line_input_error(rewrite_bundle(good, tmp_path / "r.iotw", retired), "retired featurizer 'context-v1'")

    def renamed(m):
        m["feature_names"] = m["feature_names"][::-1]
    _one_line_input_error(rewrite_bundle(good, tmp_path / "n.iotw", renamed), "feature schema")

    def no_classes(m):
        del m["classes"]
    _one_line_input_error(rewrite_bundle(good, tmp_path / "k.iotw", no_classes), "lacks classes")

    def wrong_shape(t):
        t["layers.0.weight"] = np.zeros((8, 3), np.float32)
    _one_line_input_error(rewrite_bundle(good, tmp_path / "w.iotw", mutate_tensors=wrong_shape), "shape")

    def missing_tensor(t):
        del t["layers.1.bias"]
    _one_line_input_error(rewrite_bundle(good, tmp_path / "m.iotw", mutate_tensors=missing_tensor), "missing")

    def nan_weight(t):
        w = t["layers.0.weight"].copy()
        w[0, 0] = np.nan
        t["layers.0.weight"] = w
    _one_line_input_error(rewrite_bundle(good, tmp_path / "nan.iotw", mutate_tensors=nan_weight), "NaN")
    plain = tmp_path / "plain.iotw"
    save_file({"x": np.zeros(3, np.float32)}, str(plain))
    _one_line_input_error(plain, "no iotwatch metadata")


def test_save_bundle_validates_before_writing(tmp_path):
    good = load_bundle(make_tiny_bundle(tmp_path / "good.iotw"))
    meta = dict(good.meta, scaler_std=[0.0] * len(FEATURE_NAMES))
    with pytest.raises(InputError, match="std"):
        save_bundle(tmp_path / "bad.iotw", good.tensors, meta)
    assert not (tmp_path / "bad.iotw").exists()
