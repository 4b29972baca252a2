"""Validation by source and weight averaging in ``detector.train`` (issue 12: a recipe whose cross-source
result does not depend on the seed): the held-out SOURCES are picked from the data, deterministically,
and no validation row ever comes from a source the network trains on."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from iotwatch.captures.errors import InputError
from iotwatch.commands.train import main
from iotwatch.detector.bundle import load_bundle
from iotwatch.detector.train import (PRESETS, Dataset, fit, source_families, source_unit,
                                     validation_sources)
from test_train import write_capture

CLASSES = ["normal", "recon"]


def _Quiet():
    import io

    from rich.console import Console

    return Console(file=io.StringIO())


def _dataset(sizes: list[int], seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """Rows of len(sizes) sources (two classes, separable); returns the data and each row's source."""
    rng = np.random.default_rng(seed)
    X, y, src = [], [], []
    for s, n in enumerate(sizes):
        lab = rng.integers(0, 2, n)
        X.append((rng.normal(size=(n, 4)) + lab[:, None] * 3 + s * 0.1).astype(np.float32))
        y.append(lab)
        src.append(np.full(n, s))
    return Dataset(np.concatenate(X), np.concatenate(y).astype(np.int64), CLASSES, "normal", []), np.concatenate(src)


def _homes(tmp_path, n: int):
    """A folder of n small simulated-looking labelled captures (normal traffic and a scan)."""
    folder = tmp_path / "sim"
    folder.mkdir()
    for i in range(n):
        write_capture(folder / f"home-seed{i}.pcapng", seed=i, n_normal=120, n_scan=60)
    return folder


def _cfg(**kw):
    return replace(PRESETS["default"], epochs=2, batch_size=64, **kw)


def test_source_unit_ties_a_recording_to_its_derived_views():
    from pathlib import Path

    assert source_unit(Path("/x/lab-all-seed11.pcapng")) == source_unit(Path("/y/lab-all-seed11.victim.pcapng"))
    assert source_unit(Path("a/home-seed1.pcapng")) != source_unit(Path("a/home-seed10.pcapng"))


def test_validation_sources_are_picked_from_the_data_by_name():
    fams = {"sim": [f"home-seed{i}" for i in range(10)], "lab": ["lab-a", "lab-b"],
            "victim": ["lab-a", "lab-b"], "real": [f"repo{i}" for i in range(50)]}
    held = validation_sources(fams, 0.2)
    assert len([u for u in held if u.startswith("home")]) == 2       # 20% of each family
    assert len([u for u in held if u.startswith("repo")]) == 10
    assert not [u for u in held if u.startswith("lab")]             # 0.4 of two recordings rounds to none
    # the same names give the same pick, whatever the order of the families and of their units
    rev = {k: list(reversed(v)) for k, v in reversed(list(fams.items()))}
    assert validation_sources(rev, 0.2) == held
    # a family never loses all its units; a unit shared by two families (a recording and its victim
    # view) is held out everywhere or nowhere: it counts once, in the first family
    lab = validation_sources({"lab": ["lab-a", "lab-b"], "victim": ["lab-a", "lab-b"]}, 0.5)
    assert len(lab) == 1
    assert validation_sources({"one": ["only"]}, 0.9) == []


def test_fit_validates_on_the_held_out_sources_only():
    data, src = _dataset([300, 200, 150, 100])
    data.holdout = np.isin(src, [1, 3])
    res = fit(data, _cfg(), 0, _Quiet())
    assert res.rows["validation_by_source"] is True
    # every validation row comes from a held-out source, every held-out row validates (once)
    assert sorted(res.val_rows.tolist()) == np.flatnonzero(data.holdout).tolist()
    assert res.rows["validation"] == 300 and res.rows["train"] == 450
    assert np.array_equal(res.val_y, data.y[res.val_rows])
    # the random split (no holdout) mixes the sources: this is what the option changes
    data.holdout = None
    plain = fit(data, _cfg(), 0, _Quiet())
    assert set(src[plain.val_rows]) == {0, 1, 2, 3}


def test_held_out_rows_are_capped_per_source_and_never_repeated():
    data, src = _dataset([400, 400, 300])
    data.groups = src.astype(np.int64)
    data.repeat = np.where(src == 2, 3, 1).astype(np.int64)     # source 2 upweighted x3
    data.holdout = src == 2
    res = fit(data, _cfg(), 1, _Quiet(), max_rows_per_class=50)
    assert len(set(res.val_rows.tolist())) == len(res.val_rows) == res.rows["validation"] <= 100
    assert data.holdout[res.val_rows].all()
    assert res.rows["train"] == 200  # sources 0 and 1, 50 per class each; nothing of source 2 trains


def test_held_out_sources_must_leave_rows_on_both_sides():
    data, src = _dataset([100, 100])
    data.holdout = np.ones(len(src), bool)
    with pytest.raises(InputError, match="no validation or no training rows"):
        fit(data, _cfg(), 0, _Quiet())


def test_weight_average_is_the_raw_weights_at_horizon_one_step_and_differs_beyond():
    data, _ = _dataset([400, 300])
    raw = fit(data, _cfg(early_stopping_patience=None), 0, _Quiet())
    one = fit(data, _cfg(early_stopping_patience=None, weight_ema_epochs=1e-9), 0, _Quiet())
    avg = fit(data, _cfg(early_stopping_patience=None, weight_ema_epochs=1.0), 0, _Quiet())
    assert raw.tensors.keys() == avg.tensors.keys()
    for k in raw.tensors:
        assert raw.tensors[k].shape == avg.tensors[k].shape
        assert np.array_equal(raw.tensors[k], one.tensors[k])    # no averaging: the same training run
    assert any(not np.allclose(raw.tensors[k], avg.tensors[k]) for k in raw.tensors)


def test_source_families_of_a_train_request(tmp_path):
    sim, lab, victim, repo1, repo2 = (tmp_path / n for n in ("sim", "lab", "victim", "repo1", "repo2"))
    for d in (sim, lab, victim, repo1, repo2):
        d.mkdir()
    for p in (sim / "home-seed1.pcapng", sim / "home-seed2.pcapng", lab / "lab-a.pcapng",
              victim / "lab-a.victim.pcapng", repo1 / "x.pcap", repo1 / "y.pcap", repo2 / "x.pcap"):
        p.write_bytes(b"")
    fams, unit_of = source_families([str(sim), str(lab), str(victim)], [str(repo1), str(repo2)])
    assert unit_of[victim / "lab-a.victim.pcapng"] == unit_of[lab / "lab-a.pcapng"] == "lab-a"
    assert unit_of[repo1 / "x.pcap"] == unit_of[repo1 / "y.pcap"] == "repo1" != unit_of[repo2 / "x.pcap"]
    assert sorted(fams["upweight"]) == ["repo1", "repo1", "repo2"]
    assert sorted(fams[f"captures {sim}"]) == ["home-seed1", "home-seed2"]


@pytest.mark.slow
def test_train_val_sources_holds_out_whole_recordings(tmp_path):
    folder = _homes(tmp_path, 4)
    out = tmp_path / "v.iotw"
    assert main(["--captures", str(folder), "--val-sources", "0.25", "--weight-ema", "1", "--epochs", "2",
                 "--class-weight-power", "0.25", "--out", str(out)]) == 0
    tr = load_bundle(out).meta["training"]
    held = validation_sources({"sim": [f"home-seed{i}" for i in range(4)]}, 0.25)
    assert len(held) == 1 and tr["validation_sources"] == [f"{held[0]}.pcapng"]
    assert tr["rows"]["validation"] == 180 and tr["rows"]["train"] == 3 * 180
    assert tr["config"]["val_sources"] == 0.25 and tr["config"]["weight_ema_epochs"] == 1.0
    assert tr["config"]["class_weight_power"] == 0.25
    for bad, match in ((["--val-sources", "1.5"], "fraction"), (["--weight-ema", "-1"], "weight-ema"),
                       (["--class-weight-power", "5"], "class-weight-power")):
        with pytest.raises(InputError, match=match):
            main(["--captures", str(folder), *bad, "--out", str(tmp_path / "x.iotw")])
    single = tmp_path / "one"
    single.mkdir()
    write_capture(single / "a.pcapng", seed=9, n_normal=50, n_scan=30)
    with pytest.raises(InputError, match="holds out no source"):
        main(["--captures", str(single), "--val-sources", "0.2", "--out", str(tmp_path / "y.iotw")])


def test_init_continues_a_network_and_keeps_its_scaler_for_the_columns_it_reads():
    from iotwatch.detector.bundle import Bundle
    from iotwatch.detector.model import ModelConfig

    data, _ = _dataset([400, 300])
    first = fit(data, _cfg(early_stopping_patience=None), 0, _Quiet())
    tensors = {k: v.copy() for k, v in first.tensors.items()}
    tensors["layers.0.weight"][:, 3] = 0.0         # a column the network does not read (added since)
    mean, std = first.mean.copy(), first.std.copy()
    mean += 5.0                                    # not what this data gives: kept only if taken from init
    init = Bundle(ModelConfig(4, 2), tensors, {"scaler_mean": mean.tolist(), "scaler_std": std.tolist()})
    cont = fit(data, replace(_cfg(early_stopping_patience=None, lr=1e-12, dropout=0.0), epochs=1), 1, _Quiet(), init=init)
    assert np.allclose(cont.mean[:3], mean[:3]) and np.allclose(cont.std[:3], std[:3])
    assert np.isclose(cont.mean[3], data.X[:, 3].mean(), atol=0.2) and not np.isclose(cont.mean[3], mean[3])
    for k in tensors:                              # a learning rate of ~0: the init network, unchanged
        assert np.allclose(cont.tensors[k], tensors[k], atol=1e-6)
    fresh = fit(data, replace(_cfg(early_stopping_patience=None, lr=1e-12), epochs=1), 1, _Quiet())
    assert not np.allclose(fresh.tensors["layers.0.weight"], tensors["layers.0.weight"])


@pytest.mark.slow
def test_train_init_records_the_bundle_and_refuses_another_shape(tmp_path):
    folder = _homes(tmp_path, 2)
    base, cont = tmp_path / "base.iotw", tmp_path / "cont.iotw"
    assert main(["--captures", str(folder), "--epochs", "1", "--out", str(base)]) == 0
    assert main(["--captures", str(folder), "--epochs", "1", "--init", str(base), "--lr", "1e-4",
                 "--out", str(cont)]) == 0
    tr = load_bundle(cont).meta["training"]
    first = load_bundle(base).meta["training"]
    assert tr["init"]["bundle"] == load_bundle(base).display_name and len(tr["init"]["sha256"]) == 64
    assert tr["init"]["data"] == first["data"] and tr["init"]["data"][0]["sha256"]   # the data its weights saw
    assert tr["config"]["lr"] == 1e-4
    before = base.read_bytes()
    with pytest.raises(InputError, match="input"):   # --out may not replace the bundle it continues
        main(["--captures", str(folder), "--init", str(base), "--out", str(base), "--force"])
    assert base.read_bytes() == before
    with pytest.raises(InputError, match="lr"):
        main(["--captures", str(folder), "--lr", "0", "--out", str(tmp_path / "x.iotw")])
    with pytest.raises(InputError, match="init"):
        main(["--captures", str(folder), "--preset", "paper", "--init", str(base), "--out", str(tmp_path / "y.iotw")])
