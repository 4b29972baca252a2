"""The per-packet "why" (detector/explain.py): gradient x input is the true gradient of log p(class)
(checked against finite differences on the bundled model), groups cover every feature once, and
declared feature blocks win over name prefixes."""
from __future__ import annotations

import numpy as np

from iotwatch.captures.sources import open_source
from iotwatch.detector import explain, features
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.pipeline import classify_stream
from iotwatch.options import demo_capture


def _anomalous_rows(clf, n=5):
    src = open_source(read=str(demo_capture()))
    try:
        cb = next(iter(classify_stream(src, clf, None, max_rows=4096)))
    finally:
        src.close()
    idx = np.flatnonzero(cb.anomaly)[:n]
    return cb.features[idx], cb.predicted[idx], cb.proba[idx]


def test_kept_features_are_the_model_input():
    """The pipeline keeps each packet's model input: the first packet of a flow (or a non-IP frame, which the
    flow vote leaves alone) has the probabilities the model gives those features."""
    from iotwatch.detector.flowvote import flow_keys

    clf = PacketClassifier.load(None)
    clf.pair_vote = None   # which may pull even a flow's first packet toward the hosts' other connections
    src = open_source(read=str(demo_capture()))
    try:
        cb = next(iter(classify_stream(src, clf, None, max_rows=4096)))
    finally:
        src.close()
    keys = flow_keys(cb.packets)
    _, first = np.unique(keys, return_index=True)
    alone = np.union1d(first, np.flatnonzero(keys == 0))
    assert len(alone) > 10
    np.testing.assert_allclose(cb.proba[alone], clf.predict_proba(cb.features[alone]), atol=1e-5)


def test_attributions_are_gradient_times_input():
    clf = PacketClassifier.load(None)
    ex = explain.Explainer(clf)
    X, pred, _ = _anomalous_rows(clf)
    assert len(X)
    for x, c in zip(X.astype(np.float64), pred):
        a = ex.attributions(x, int(c))
        # numerical d log p_c / d x_j of the packet's own probabilities (before the flow vote), times (x_j - mean_j)
        base = np.log(clf.predict_proba(x[None].astype(np.float32))[0, c])
        j = np.argsort(-np.abs(a))[:3]
        for k in j:
            h = 1e-2 * max(1.0, abs(x[k]))
            xp, xm = x.copy(), x.copy()
            xp[k] += h
            xm[k] -= h
            lp = np.log(clf.predict_proba(np.stack([xp, xm]).astype(np.float32))[:, c])
            # central difference; and, as the ReLU network is piecewise linear, the one-sided one on
            # the side without a kink when x sits within h of one (the gradient is that side's)
            nums = [(lp[0] - lp[1]) / (2 * h), (lp[0] - base) / h, (base - lp[1]) / h]
            nums = [d * (x[k] - ex.mean[k]) for d in nums]
            assert any(np.isclose(a[k], num, rtol=0.1, atol=1e-3) for num in nums), (clf.feature_names_in_[k], a[k], nums)
        whys = ex.explain(x, int(c))
        assert whys and abs(whys[0].score) >= abs(whys[-1].score)
        text = explain.format_why(whys, clf.classes_[c])
        assert text.startswith(f"why {clf.classes_[c]}") and whys[0].group in text


def test_groups_cover_every_feature_once_and_blocks_win(monkeypatch):
    names = ["tcp_syn", "tcp_rst", "dns_len", "src_s_pkts_1s", "dst_r_pkts_1s", "weird"]
    monkeypatch.delattr(features, "FEATURE_BLOCKS", raising=False)
    g = explain.feature_groups(names)
    assert sorted(i for idx in g.values() for i in idx) == list(range(len(names)))
    assert g["TCP"] == [0, 1] and g["src host"] == [3] and g["weird"] == [5]
    monkeypatch.setattr(features, "FEATURE_BLOCKS", {"flow": ("tcp_syn", "dns_len"), "other": ("absent",)},
                        raising=False)
    g = explain.feature_groups(names)
    assert g["flow"] == [0, 2] and "other" not in g and g["TCP"] == [1]
    assert sorted(i for idx in g.values() for i in idx) == list(range(len(names)))


def test_vote_note_says_when_the_flow_decided():
    names = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
    own = np.array([0.7, 0, 0, 0, 0, 0.3], dtype=np.float32)
    assert explain.vote_note(own, 0, names) == ""
    note = explain.vote_note(own, 5, names)
    assert note.startswith("this packet alone: normal 0.70;") and "exfiltration is its connection's vote" in note
