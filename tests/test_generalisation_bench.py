"""bench/generalisation.py: the permutation helpers of --permute and the seed summary of --combine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fakes import load_script

ROOT = Path(__file__).resolve().parent.parent


def _module():
    return load_script(ROOT / "bench" / "generalisation.py", "generalisation")


def _rows(n=50, d=5):
    # row r, column c holds 100*r + c: every value names its row and its column
    return (100 * np.arange(n)[:, None] + np.arange(d)[None, :]).astype(np.float32)


def test_permute_columns_shuffles_the_block_jointly_and_leaves_the_rest():
    g = _module()
    X = _rows()
    before = X.copy()
    out = g.permute_columns(X, [1, 3], np.random.default_rng(7))
    assert np.array_equal(X, before), "the input (possibly the cache's array) must not change"
    # untouched columns stay in place
    assert np.array_equal(out[:, [0, 2, 4]], X[:, [0, 2, 4]])
    # the block's columns are a permutation of the rows ...
    src_rows_1 = (out[:, 1] - 1) / 100
    src_rows_3 = (out[:, 3] - 3) / 100
    assert sorted(src_rows_1.tolist()) == list(range(len(X)))
    assert not np.array_equal(src_rows_1, np.arange(len(X)))
    # ... the same permutation for both (jointly): each row's block values come from one source row
    assert np.array_equal(src_rows_1, src_rows_3)
    # deterministic for a seed, different for another
    assert np.array_equal(out, g.permute_columns(X, [1, 3], np.random.default_rng(7)))
    assert not np.array_equal(out, g.permute_columns(X, [1, 3], np.random.default_rng(8)))


def test_part_shuffle_pools_the_captures_of_a_part():
    g = _module()
    a, b = _rows(30), _rows(20) + 10_000     # capture b's values are all >= 10,000
    tests = {"p": [("s1", a, np.zeros(30, np.int8)), ("s2", b, np.zeros(20, np.int8))]}
    by_capture = g.PartShuffle(tests, [2], "capture", 0, 0, 0)
    by_part = g.PartShuffle(tests, [2], "part", 0, 0, 0)
    within = [by_capture("p", i, x) for i, (_, x, _) in enumerate(tests["p"])]
    pooled = [by_part("p", i, x) for i, (_, x, _) in enumerate(tests["p"])]
    # within a capture: capture a keeps only a's values in the block
    assert within[0][:, 2].max() < 10_000 and within[1][:, 2].min() >= 10_000
    # across the part: the pooled block values are the union of both captures', spread over both
    col = np.concatenate([pooled[0][:, 2], pooled[1][:, 2]])
    assert sorted(col.tolist()) == sorted(np.concatenate([a[:, 2], b[:, 2]]).tolist())
    assert (pooled[0][:, 2] >= 10_000).any()
    # other columns untouched in both scopes
    assert np.array_equal(pooled[1][:, [0, 1, 3, 4]], b[:, [0, 1, 3, 4]])


class _ColumnTwoMLP:
    """A stand-in for the bundle's MLP: class 2 (dos) when column 2 > 0.5, else normal, 90% sure."""

    def proba(self, X):
        p = np.full((len(X), 6), 0.02, np.float32)
        p[np.arange(len(X)), np.where(X[:, 2] > 0.5, 2, 0)] = 0.9
        return p


def test_run_permutation_scores_the_shuffled_columns_only():
    g = _module()
    rng = np.random.default_rng(1)
    tests = {}
    for part, sizes in (("sim-held", (120, 80)), ("real-eval", (100,))):
        tests[part] = []
        for n in sizes:
            X = rng.random((n, 4)).astype(np.float32)
            tests[part].append(("src", X, np.where(X[:, 2] > 0.5, 2, 0).astype(np.int8)))
    before = [x.copy() for items in tests.values() for _, x, _ in items]
    model = g.Trained(_ColumnTwoMLP(), np.arange(4), 0.5)
    base = g.evaluate(model, tests)
    assert all(base[p]["all"]["macro_f1"] == 1.0 for p in tests)
    units = {"used": [1, 2], "unused": [0, 3]}
    for scope in ("capture", "part"):
        out = g.run_permutation(model, tests, units, 0, 2, scope, base, log=lambda s: None)
        for p in tests:
            assert out["unused"]["mean_change"][p] == [0.0, 0.0, 0.0]
            assert out["used"]["mean_change"][p][0] < -0.2          # the model's only column lost its link
        assert len(out["used"]["repeats"]) == 2
        # deterministic for a seed
        again = g.run_permutation(model, tests, units, 0, 2, scope, base, log=lambda s: None)
        assert again["used"]["mean_change"] == out["used"]["mean_change"]
    # the test captures (possibly the cache's arrays) are not changed
    assert all(np.array_equal(a, b) for a, b in zip(before, (x for items in tests.values() for _, x, _ in items)))


def test_permutation_units_blocks_and_single_columns():
    g = _module()
    names = ["a1", "a2", "b1", "b2", "b3"]
    blocks = {"a": ("a1", "a2"), "b": ("b1", "b2", "b3")}
    assert g.permutation_units(names, blocks, None) == {"a": [0, 1], "b": [2, 3, 4]}
    assert g.permutation_units(names, blocks, ["b"]) == {"b": [2, 3, 4], "b:b1": [2], "b:b2": [3], "b:b3": [4]}


def _run(seed, base_f1, drops):
    def res(f1):
        return {"real-eval": {"all": {"macro_f1": f1, "benign_flagged_pct": 1.0, "attack_flagged_pct": 90.0}}}
    return {"settings": {"seed": seed}, "matrix": {"sim+lab+real": {"results": res(base_f1)}},
            "ablation": {b: {"results": res(base_f1 + d)} for b, d in drops.items()}}


def test_combine_marks_changes_beyond_the_seed_spread():
    g = _module()
    # baselines 0.80 and 0.78: spread 0.02
    runs = [("s0", _run(0, 0.80, {"x": +0.05, "y": +0.03, "z": -0.01})),
            ("s1", _run(1, 0.78, {"x": +0.04, "y": -0.03, "z": -0.05}))]
    c = g.combine_ablations(runs)
    assert c["spread"]["real-eval"][0] == 0.02
    x, y, z = (c["blocks"][b]["real-eval"] for b in "xyz")
    assert x["mean"][0] == 0.045 and x["beyond"][0]              # both seeds up by more than the spread
    assert y["mean"][0] == 0.0 and not y["beyond"][0]            # opposite signs
    assert z["mean"][0] == -0.03 and not z["beyond"][0]          # one seed within the spread
    assert not x["beyond"][1]                                     # no change at all is not beyond


def test_combine_merges_the_files_of_one_seed(tmp_path, capsys):
    g = _module()
    # seed 0 and 1 each in two files (whole blocks; a second run with other --blocks): two seeds, not four
    runs = [("a0", _run(0, 0.80, {"x": +0.05})), ("a1", _run(1, 0.78, {"x": +0.04})),
            ("b0", _run(0, 0.80, {"x/h": -0.03})), ("b1", _run(1, 0.78, {"x/h": -0.04}))]
    c = g.combine_ablations(runs)
    assert c["seeds"] == [0, 1]
    assert c["baseline"]["real-eval"] == [(0.80, 1.0, 90.0), (0.78, 1.0, 90.0)]
    assert c["blocks"]["x"]["real-eval"]["beyond"][0] and c["blocks"]["x/h"]["real-eval"]["beyond"][0]
    assert c["blocks"]["x/h"]["real-eval"]["mean"][0] == -0.035
    # two files of one seed with different baselines: other data or settings, refused with exit 2
    files = []
    for name, run in [("a0", _run(0, 0.80, {"x": +0.05})), ("b0", _run(0, 0.70, {"y": -0.01}))]:
        (tmp_path / f"{name}.json").write_text(__import__("json").dumps(run))
        files.append(str(tmp_path / f"{name}.json"))
    assert g.main(["--combine", *files]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("generalisation: ") and "seed 0" in err[0]


def test_bad_flags_exit_2_with_one_line(capsys):
    g = _module()
    assert g.main(["--configs", "sim,nonsense"]) == 2
    assert g.main(["--ablation", "--configs", "sim,lab"]) == 2
    assert g.main(["--permute"]) == 2                      # a bundle is needed
    assert g.main(["--model", "x.iotw", "--permute", "--blocks", "nope"]) == 2
    assert g.main(["--configs", "sim,"]) == 2              # an empty config name (was a KeyError later)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("generalisation: ") for line in err)


BUNDLE = ROOT / "detector" / "models" / "default.iotw"
CASES = ROOT / "tests" / "data" / "cases"


def _fake_featurise(calls):
    def featurise(path, cache, log=print):
        from iotwatch.detector.features import FEATURE_NAMES

        calls.append(Path(path))
        rng = np.random.default_rng(len(calls))
        return rng.random((40, len(FEATURE_NAMES))).astype(np.float32), rng.integers(0, 6, 40).astype(np.int8)
    return featurise


def test_model_with_other_columns_is_refused_before_any_capture_is_read(monkeypatch, capsys):
    g = _module()
    from iotwatch.detector import features

    calls = []
    monkeypatch.setattr(g, "featurise", _fake_featurise(calls))
    monkeypatch.setattr(features, "FEATURE_NAMES", list(features.FEATURE_NAMES) + ["a_new_column"])
    assert g.main(["--model", str(BUNDLE), "--sim-held", str(CASES), "--cases", str(CASES)]) == 2
    assert calls == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other feature columns" in err[0]
    assert g.main(["--model", str(CASES / "doh.pcapng")]) == 2       # not a bundle: one line, no traceback
    assert capsys.readouterr().err.startswith("generalisation: ")


def test_model_reads_only_the_test_parts(monkeypatch, tmp_path, capsys):
    g = _module()
    calls, voted = [], []
    monkeypatch.setattr(g, "featurise", _fake_featurise(calls))

    def vote_inputs(path, cache):   # the bundle votes: the flow keys of the same (fake) 40 frames, 4 flows
        voted.append(Path(path))
        keys = np.repeat(np.arange(1, 5, dtype=np.uint64), 10)
        return keys, np.arange(40, dtype=np.float64), keys // 2 + 1   # 4 flows of 3 host pairs
    monkeypatch.setattr(g, "vote_inputs", vote_inputs)
    out = tmp_path / "perm.json"
    assert g.main(["--model", str(BUNDLE), "--permute", "--blocks", "balance", "--permute-scope", "part",
                   "--sim-train", str(CASES), "--cases", str(CASES), "--json", str(out)]) == 0
    cases = [f for _, f in g._captures([str(CASES)])]
    assert cases and sorted(calls) == sorted(cases)                  # the cases once, the training part never
    assert sorted(voted) == sorted(cases)                            # and their flow keys, for the bundle's vote
    assert f"captures: sim-train {len(cases)}, " in capsys.readouterr().out
    import json

    perm = json.loads(out.read_text())
    assert perm["settings"]["files"]["sim-train"] == [str(f) for f in cases]   # still listed
    assert list(perm["scopes"]["part"]) == ["balance"] and list(perm["baseline"]) == ["cases"]


def test_headline_cells():
    g = _module()
    m = {"macro_f1": 0.91234, "benign_flagged_pct": 1.236, "attack_flagged_pct": None}
    assert g.cell(m) == "0.912 / 1.24% / -"
    assert g.cell(None) == "- / - / -"
    assert [g.num(v, k) for v, k in zip((0.5, 7.0, None), g.HEADLINE)] == ["0.500", "7.00", "-"]


def test_block_columns_whole_block_or_prefix():
    g = _module()
    blocks = {"conn": ("pair_conns_10s", "pair_short_60s", "svc_conns_10s"), "fan": ("cli_servers_1s",)}
    assert g.block_columns("conn", blocks) == blocks["conn"]
    assert g.block_columns("conn/svc_", blocks) == ("svc_conns_10s",)
    assert g.block_columns("conn/nothing", blocks) == ()
    assert g.block_columns("nope", blocks) == ()


def test_drop_cols_variant_leaves_out_the_columns_of_each_prefix():
    g = _module()
    names = ("pair_authfail_30s", "pair_short_60s", "src_s_authfail_30s", "cs_conns_10s", "cs_short_60s", "flow_new")
    assert g.columns_without(names, "").tolist() == [0, 1, 2, 3, 4, 5]
    assert g.columns_without(names, "cs_").tolist() == [0, 1, 2, 5]
    assert g.columns_without(names, "cs_+pair_authfail+src_s_").tolist() == [1, 5]
    assert g.columns_without(names, "nothing").tolist() == [0, 1, 2, 3, 4, 5]
    assert g.parse_variants("base217:drop_cols=cs_;cs") == {"base217": {"drop_cols": "cs_"}, "cs": {}}
