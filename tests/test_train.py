"""``iotwatch train``: captures and kaggle-CSV inputs, presets, reproducibility, user errors."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from iotwatch.captures.sim import frames as P
from iotwatch.captures.errors import InputError
from iotwatch.captures.sim.writer import PcapngWriter
from iotwatch.detector.bundle import load_bundle
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.features import PAPER_FEATURE_NAMES
from iotwatch.commands.train import main
from iotwatch.detector.train import (class_weights, read_kaggle_csv, stratified_split,
                                     three_sigma_mask)

GW, CAM, EVIL = "192.168.7.1", "192.168.7.20", "192.168.7.66"


def write_capture(path, seed: int, n_normal: int = 600, n_scan: int = 300):
    """Camera <-> gateway UDP telemetry (normal) interleaved with a SYN port scan (recon)."""
    rng = np.random.default_rng(seed)
    m_gw, m_cam, m_evil = P.mac("02:00:00:00:07:01"), P.mac("02:00:00:00:07:14"), P.mac("02:00:00:00:07:42")
    events = []
    t = 1_700_000_000.0
    for i in range(n_normal):
        t += rng.exponential(0.05)
        up = i % 2 == 0
        frame = P.udp4_frame(m_gw if up else m_cam, m_cam if up else m_gw, P.ip4(CAM if up else GW),
                             P.ip4(GW if up else CAM), 64, i, True, 5683 if not up else 40001,
                             40001 if not up else 5683, bytes(rng.integers(20, 120)))
        events.append((t, frame, "normal"))
    t2 = 1_700_000_000.0 + 5.0
    for i in range(n_scan):
        t2 += 0.002
        port = int(rng.integers(1, 10000))
        frame = P.tcp4_frame(m_cam, m_evil, P.ip4(EVIL), P.ip4(CAM), 64, i, False, 55555, port, 1000 + i, 0,
                             0x02, 1024)
        events.append((t2, frame, "recon"))
    events.sort(key=lambda e: e[0])
    with open(path, "wb") as fh:
        w = PcapngWriter(fh)
        for ts, frame, _ in events:
            w.write(int(ts * 1e6), frame)
        w.close()
    with open(str(path) + ".labels.csv", "w", newline="") as fh:
        cw = csv.writer(fh)
        cw.writerow(["frame_number", "label"])
        cw.writerows((i + 1, lab) for i, (_, _, lab) in enumerate(events))
    return path


def write_kaggle(path, n=800, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame.number", "frame.time", "frame.len", "eth.src", "eth.dst", "ip.src", "ip.dst", "ip.proto",
                    "ip.len", "tcp.len", "tcp.srcport", "tcp.dstport", "Value", "normality"])
        for i in range(n):
            attack = i % 4 == 0
            dport = 23 if attack else 1883
            length = 60 if attack else int(rng.integers(100, 400))
            w.writerow([i + 1, f"Nov 10, 2021 09:{i // 60 % 60:02d}:{i % 60:02d}.123456789 UTC", length,
                        "02:00:00:00:00:0a", "02:00:00:00:00:01", "10.0.0.10" if not attack else "10.0.0.66",
                        "10.0.0.1", 6, length - 14, length - 54, 40000 + i, dport,
                        "mirai" if attack else "normal", 1 if attack else 0])
    return path


@pytest.mark.slow
def test_train_on_captures_with_held_out_eval_is_reproducible(tmp_path, capsys, monkeypatch):
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    write_capture(train_dir / "a.pcapng", seed=1)
    write_capture(train_dir / "b.pcapng", seed=2)
    held = write_capture(tmp_path / "held.pcapng", seed=3)
    out = tmp_path / "m.iotw"
    argv = ["--captures", str(train_dir), "--out", str(out), "--epochs", "3", "--seed", "7", "--eval", str(held)]
    assert main(argv) == 0
    first = out.read_bytes()
    shown = capsys.readouterr().out
    assert "epoch   1" in shown and "val_macro_f1" in shown and "held-out held.pcapng" in shown
    clf = PacketClassifier.load(out)
    assert clf.classes_[:2] == ["normal", "recon"]
    meta = clf.meta
    assert meta["training"]["seed"] == 7 and meta["training"]["preset"] == "default"
    assert [d["file"] for d in meta["training"]["data"]] == ["a.pcapng", "b.pcapng"]
    heldm = meta["metrics"]["held_out"][0]
    assert heldm["labelled_packets"] == 900
    assert heldm["per_class"]["recon"]["recall"] > 0.9  # a port scan is easy with context features
    assert heldm["false_alarm_rate"] < 0.05
    assert "roc_auc_ovr" in heldm
    assert main(argv + ["--force"]) == 0
    assert out.read_bytes() == first  # same command, same data -> identical bundle
    cache = tmp_path / "cache"
    assert main(argv + ["--force", "--cache", str(cache)]) == 0  # fills the feature cache
    assert len(list(cache.glob("*.npz"))) == 2 and out.read_bytes() == first
    assert main(argv + ["--force", "--cache", str(cache)]) == 0  # served from it: the same bundle
    assert out.read_bytes() == first
    # a change of how features are computed (same column names) must not be served the old rows
    from iotwatch.detector import train as train_mod

    monkeypatch.setattr(train_mod, "_FEATURE_CODE_DIGEST", "changed-code")
    assert main(argv + ["--force", "--cache", str(cache)]) == 0
    assert len(list(cache.glob("*.npz"))) == 4 and out.read_bytes() == first


@pytest.mark.slow
def test_upweighted_captures_count_several_times(tmp_path):
    a = write_capture(tmp_path / "a.pcapng", seed=1, n_normal=200, n_scan=100)
    b = write_capture(tmp_path / "b.pcapng", seed=2, n_normal=100, n_scan=50)
    out = tmp_path / "u.iotw"
    assert main(["--captures", str(a), "--upweight", str(b), "--upweight-factor", "3", "--epochs", "1",
                 "--out", str(out)]) == 0
    tr = load_bundle(out).meta["training"]
    assert tr["rows"]["labelled"] == 300 + 3 * 150
    assert [(d["file"], d.get("upweight")) for d in tr["data"]] == [("a.pcapng", None), ("b.pcapng", 3)]
    with pytest.raises(InputError, match="both"):
        main(["--captures", str(a), "--upweight", str(a), "--out", str(tmp_path / "v.iotw")])
    # --max-rows-per-class thins the --captures rows only; every upweighted row is kept, repeated
    capped = tmp_path / "c.iotw"
    assert main(["--captures", str(a), "--upweight", str(b), "--upweight-factor", "3", "--epochs", "1",
                 "--max-rows-per-class", "60", "--out", str(capped)]) == 0
    rows = load_bundle(capped).meta["training"]["rows"]
    assert rows["labelled"] == 300 + 3 * 150 and rows["after_cap"] == 60 + 60 + 3 * 150


@pytest.mark.slow
def test_per_source_caps_rows_per_source_and_class(tmp_path):
    """--per-source: each --captures PATH is a source; the cap applies per (source, class), so a big
    source cannot crowd out a small one."""
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    small.mkdir()
    write_capture(big / "a.pcapng", seed=1, n_normal=400, n_scan=200)
    write_capture(big / "b.pcapng", seed=2, n_normal=400, n_scan=200)
    write_capture(small / "a.pcapng", seed=3, n_normal=50, n_scan=30)  # same file name, other source
    out = tmp_path / "p.iotw"
    assert main(["--captures", str(big), str(small), "--per-source", "--max-rows-per-class", "100",
                 "--epochs", "1", "--out", str(out)]) == 0
    tr = load_bundle(out).meta["training"]
    assert tr["per_source"] is True
    assert [d["source_group"] for d in tr["data"]] == ["big", "big", "small"]
    assert tr["rows"]["after_cap"] == 100 + 100 + 50 + 30
    up = tmp_path / "u.iotw"  # an --upweight source is capped too, then repeated
    assert main(["--captures", str(big), "--upweight", str(small), "--upweight-factor", "2", "--per-source",
                 "--max-rows-per-class", "40", "--epochs", "1", "--out", str(up)]) == 0
    tr = load_bundle(up).meta["training"]
    assert [d["source_group"] for d in tr["data"]] == ["big", "big", "small"]
    assert tr["rows"]["after_cap"] == 40 + 40 + 2 * (40 + 30)
    plain = tmp_path / "q.iotw"
    assert main(["--captures", str(big), str(small), "--max-rows-per-class", "100", "--epochs", "1",
                 "--out", str(plain)]) == 0
    assert load_bundle(plain).meta["training"]["rows"]["after_cap"] == 200


def test_paper_preset_on_kaggle_csv(tmp_path):
    csv_path = write_kaggle(tmp_path / "seed.csv")
    out = tmp_path / "paper.iotw"
    assert main(["--csv", str(csv_path), "--schema", "kaggle", "--preset", "paper", "--epochs", "2",
                 "--out", str(out)]) == 0
    b = load_bundle(out)
    assert b.classes == ["normal", "mirai"] and b.meta["normal_class"] == "normal"
    assert b.feature_names == list(PAPER_FEATURE_NAMES)
    tr = b.meta["training"]
    assert tr["config"]["batch_size"] == 32 and tr["config"]["outlier_sigma"] == 3.0
    assert tr["epochs_run"] == 2 and tr["rows"]["validation"] == pytest.approx(0.2 * tr["rows"]["after_outlier_removal"], abs=2)
    assert b.meta["metrics"]["validation"]["macro_f1"] > 0.9


def test_read_kaggle_csv_columns_and_labels(tmp_path):
    batch, classes, y, normal = read_kaggle_csv(write_kaggle(tmp_path / "k.csv", n=8))
    assert classes == ["normal", "mirai"] and normal == "normal"
    assert y.tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    assert batch["tcp_dstport"].tolist()[:2] == [23, 1883]
    assert batch["time_epoch"][1] - batch["time_epoch"][0] == pytest.approx(1.0)


def test_user_errors_are_one_line(tmp_path):
    csv_path = write_kaggle(tmp_path / "k.csv", n=20)
    (tmp_path / "exists.iotw").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    cases = [
        (["--csv", str(csv_path), "--out", str(tmp_path / "o.iotw")], "--schema kaggle"),
        (["--csv", str(csv_path), "--schema", "kaggle", "--out", str(tmp_path / "exists.iotw")], "already exists"),
        (["--captures", str(tmp_path / "empty"), "--out", str(tmp_path / "o.iotw")], "no pcap"),
        (["--captures", str(tmp_path / "missing"), "--out", str(tmp_path / "o.iotw")], "does not exist"),
        (["--csv", str(bad), "--schema", "kaggle", "--out", str(tmp_path / "o.iotw")], "missing columns"),
        (["--out", str(tmp_path / "o.iotw")], "required"),
        (["--csv", str(csv_path), "--schema", "kaggle", "--epochs", "0", "--out", str(tmp_path / "o.iotw")], "epochs"),
    ]
    for argv, match in cases:
        with pytest.raises(InputError) as ei:
            main(argv)
        assert match in str(ei.value) and "\n" not in str(ei.value)


def test_preprocessing_helpers():
    X = np.zeros((101, 2), np.float32)
    X[:, 0] = np.r_[np.zeros(100), 1000.0]
    assert three_sigma_mask(X).tolist() == [True] * 100 + [False]
    y = np.array([0] * 50 + [1] * 10 + [2] * 2)
    tr, va = stratified_split(y, 0.2, np.random.default_rng(0))
    assert np.bincount(y[va]).tolist() == [10, 2, 1] and len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 62
    w = class_weights(y, 4)
    assert w[3] == 0 and w[2] > w[1] > w[0]
    assert json.dumps(w.tolist())
