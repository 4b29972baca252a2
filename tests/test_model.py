"""The network, its numpy inference form, the anomaly policy and the evaluation metrics."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from iotwatch.detector.anomaly import AnomalyPolicy, calibrate_threshold
from iotwatch.detector.evaluate import roc_auc_binary, roc_auc_ovr, summarize
from iotwatch.detector.model import FoldedMLP, ModelConfig, build_model
from fakes import tiny_tensors


def test_default_config_is_the_papers_network():
    cfg = ModelConfig(n_features=11, n_classes=6)
    assert cfg.hidden == (128, 64, 32) and cfg.dropout == 0.5
    m = build_model(cfg)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == cfg.tensor_shapes()
    assert [type(x).__name__ for x in m.modules()].count("Linear") == 4
    x = torch.randn(64, 11)
    m.train()
    torch.manual_seed(0)
    a = m(x)
    m.eval()
    with torch.inference_mode():
        b, c = m(x), m(x)
    assert not torch.allclose(a, b)  # dropout active in training only
    assert torch.equal(b, c)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_folded_numpy_forward_matches_torch_eval():
    cfg = ModelConfig(n_features=20, n_classes=6)
    tensors = tiny_tensors(cfg, seed=1)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=20) * 5, rng.uniform(0.1, 10, 20)
    X = (rng.normal(size=(500, 20)) * std + mean).astype(np.float32)
    m = build_model(cfg)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    m.eval()
    with torch.inference_mode():
        ref = torch.softmax(m(torch.from_numpy(((X - mean) / std).astype(np.float32))), 1).numpy()
    got = FoldedMLP.from_tensors(cfg, tensors, mean, std).proba(X.copy())
    np.testing.assert_allclose(got, ref, atol=2e-5)
    assert np.array_equal(got.argmax(1), ref.argmax(1))
    folded = FoldedMLP.from_tensors(cfg, tensors, mean, std)
    big = np.tile(X, (20, 1))  # 10,000 rows: more than one internal chunk
    pb = folded.proba(big)
    assert pb.shape == (10_000, 6) and pb.dtype == np.float32
    np.testing.assert_allclose(pb, np.tile(got, (20, 1)), atol=1e-6)


def test_anomaly_policy_and_calibration():
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55], [0.1, 0.9]], dtype=np.float32)
    pred = proba.argmax(1)
    assert AnomalyPolicy(0, 0.5).is_anomaly(proba, pred).tolist() == [False, True, True, True]
    assert AnomalyPolicy(0, 0.6).is_anomaly(proba, pred).tolist() == [False, True, False, True]
    assert AnomalyPolicy(0).is_anomaly(proba[:0], pred[:0]).shape == (0,)
    # 1000 normal packets, 5 of them confidently mistaken: allow 0.2% -> threshold above the 3rd highest
    normal = np.tile([0.99, 0.01], (1000, 1)).astype(np.float32)
    normal[:5] = [[0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.1, 0.9], [0.05, 0.95]]
    thr = calibrate_threshold(normal, 0, target_rate=0.002)
    flagged = AnomalyPolicy(0, thr).is_anomaly(normal, normal.argmax(1))
    assert flagged.sum() == 2
    assert calibrate_threshold(normal[5:], 0, 0.001) == 0.5


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(3)
    pos = rng.random(60) < 0.3
    score = np.round(rng.random(60), 1)  # ties on purpose
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0)
             for a, b in itertools.product(score[pos], score[~pos])]
    assert roc_auc_binary(pos, score) == pytest.approx(np.mean(pairs))
    assert roc_auc_binary(np.ones(3, bool), np.zeros(3)) is None


def test_summarize_reports_per_class_macro_f1_and_false_alarms():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, -1])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    proba = np.eye(3, dtype=np.float32)[pred]
    s = summarize(labels, pred, proba, ["normal", "recon", "dos"], 0)
    assert s["labelled_packets"] == 7
    assert s["false_alarm_rate"] == 0.25
    assert s["confusion"]["matrix"] == [[3, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert s["per_class"]["recon"]["precision"] == 0.5 and s["per_class"]["recon"]["recall"] == 1.0
    assert s["macro_f1"] == pytest.approx((6 / 7 + 2 / 3 + 0) / 3, abs=1e-6)
    assert set(roc_auc_ovr(labels[labels >= 0], proba[labels >= 0], ["normal", "recon", "dos"])) == {
        "normal", "recon", "dos", "macro"}
