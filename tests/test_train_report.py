"""``iotwatch train --report``, ``iotwatch model show``, default bundle names and the useless-model warning."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from iotwatch.detector.bundle import default_bundle_path, load_bundle
from iotwatch.commands.train import main as train_main
from iotwatch.detector.train_report import FIGURES, roc_curve

from test_train import write_capture


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run with --report (shared by the tests below)."""
    d = tmp_path_factory.mktemp("report")
    (d / "train").mkdir()
    write_capture(d / "train" / "a.pcapng", seed=1, n_normal=1200, n_scan=600)
    write_capture(d / "train" / "b.pcapng", seed=2, n_normal=1200, n_scan=600)
    out, report = d / "m.iotw", d / "report"
    assert train_main(["--captures", str(d / "train"), "--out", str(out), "--epochs", "3", "--seed", "3",
                       "--report", str(report)]) == 0
    return out, report


@pytest.mark.slow
def test_report_writes_five_figures_that_are_real_images(trained):
    import matplotlib.image as mpimg

    _, report = trained
    for name in FIGURES:
        path = report / name
        assert path.stat().st_size > 5000, name
        img = mpimg.imread(path)  # a PNG that decodes
        assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 400, (name, img.shape)
        # something was drawn: many distinct colours, not a blank canvas
        assert len(np.unique(img.reshape(-1, img.shape[2])[:, :3], axis=0)) > 20, name


@pytest.mark.slow
def test_report_tables_and_numbers_match_the_bundle(trained):
    out, report = trained
    meta = load_bundle(out).meta
    md = (report / "report.md").read_text()
    assert f"`{meta['name']}/{meta['version']}`" in md
    for src in meta["training"]["data"]:
        assert src["sha256"] in md
    assert f"macro-F1 {meta['metrics']['validation']['macro_f1']:.4f}" in md
    html = (report / "report.html").read_text()
    assert all(f'src="{n}"' in html for n in FIGURES)
    numbers = json.loads((report / "report.json").read_text())
    assert numbers["accuracy_loss"]["epoch"] == [h["epoch"] for h in meta["training"]["history"]]
    conf = np.array(numbers["confusion"]["matrix"])
    assert conf.sum() == meta["training"]["rows"]["validation"]
    pts = numbers["learning_curve"]["points"]
    assert len(pts) >= 3 and pts[-1]["fraction"] == 1.0
    assert [p["rows"] for p in pts] == sorted(p["rows"] for p in pts) and pts[0]["rows"] < pts[-1]["rows"]


@pytest.mark.slow
def test_default_bundle_name_never_collides_with_the_shipped_model(trained):
    out, _ = trained
    shipped = load_bundle(default_bundle_path()).meta["name"]
    mine = load_bundle(out).meta["name"]
    assert mine != shipped and not mine.startswith("iotwatch-")


def test_useless_model_gets_a_loud_warning(tmp_path, capsys):
    # labels that contradict each other: half of identical-looking telemetry labelled recon
    cap = write_capture(tmp_path / "x.pcapng", seed=5, n_normal=800, n_scan=0)
    rows = (tmp_path / "x.pcapng.labels.csv").read_text().splitlines()
    rng = np.random.default_rng(0)
    (tmp_path / "x.pcapng.labels.csv").write_text("\n".join(
        [rows[0]] + [f"{r.split(',')[0]},{'recon' if rng.random() < 0.5 else 'normal'}" for r in rows[1:]]) + "\n")
    assert train_main(["--captures", str(cap), "--out", str(tmp_path / "u.iotw"), "--epochs", "1"]) == 0
    assert "WARNING: validation macro-F1" in capsys.readouterr().out


@pytest.mark.slow
def test_no_warning_for_a_useful_model(trained, capsys):
    from rich.console import Console

    from iotwatch.detector.train import warn_if_useless

    meta = load_bundle(trained[0]).meta
    assert meta["metrics"]["validation"]["macro_f1"] >= 0.6
    assert warn_if_useless(Console(), meta["metrics"]["validation"]) is False


def test_roc_curve_matches_a_hand_computed_one():
    pos = np.array([1, 0, 1, 0, 1], bool)
    score = np.array([0.9, 0.8, 0.7, 0.3, 0.1])
    fpr, tpr = roc_curve(pos, score)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1.0, 1.0]
    assert np.allclose(tpr, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])


def _iotwatch(*args):
    return subprocess.run([sys.executable, "-m", "iotwatch", *args], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_model_show_prints_the_bundled_card():
    meta = load_bundle(default_bundle_path()).meta
    r = _iotwatch("model", "show")
    assert r.returncode == 0, r.stderr
    assert f"{meta['name']}/{meta['version']}" in r.stdout
    assert ", ".join(meta["classes"]) in r.stdout
    for src in meta["training"]["data"][:3]:
        assert src["sha256"] in r.stdout.replace("\n", "").replace(" ", "").replace("│", "")
    assert "history" in r.stdout and "validation split" in r.stdout
    pv = meta["pair_vote"]   # the votes the bundle applies, as the card says them
    assert f"alpha {meta['flow_vote']:g}" in r.stdout
    assert f"weight {pv['weight']:g} over {pv['tau']:g} s: a connection voted exfiltration" in r.stdout
    assert f"at least {pv['floor']:g} of it was normal" in r.stdout
    init = meta["training"]["init"]   # /12 continues /11's network: the card names it and its data
    flat = r.stdout.replace("\n", "").replace(" ", "")
    assert f"continuedfrom{init['bundle']}(sha256{init['sha256']}" in flat.replace("│", "")
    assert f"{len(init['data'])}files(--json:training.init.data)" in flat


def test_model_show_json_and_bad_file(tmp_path):
    r = _iotwatch("model", "show", "--json", str(default_bundle_path()))
    assert r.returncode == 0 and json.loads(r.stdout)["classes"] == load_bundle(default_bundle_path()).meta["classes"]
    bad = tmp_path / "bad.iotw"
    bad.write_bytes(b"not a bundle")
    r = _iotwatch("model", "show", str(bad))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_model_card_lists_every_capture_the_bundled_weights_have_seen():
    """Outside evaluators exclude the files a bundle was trained on: the card's table must hold every sha256 of
    the bundle's training data and, for a continued network, of the data of the network it started from."""
    from pathlib import Path

    import iotwatch.detector as det

    tr = load_bundle(default_bundle_path()).meta["training"]
    seen, init = list(tr["data"]), tr.get("init") or {}
    while init:
        seen += init.get("data") or []
        init = init.get("init") or {}
    card = (Path(det.__file__).parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    table = card[card.index("## Training captures (sha256)"):]
    missing = sorted({s["file"] for s in seen if f"`{s['sha256']}`" not in table})
    assert seen and not missing, f"not in MODEL_CARD.md: {missing[:5]}"
