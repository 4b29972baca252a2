"""The fused C inference kernel (iotwatch.detector._mlp, detector/_mlp.c) against numpy and torch.

The extension must be built wherever the tests run (dev.sh installs gcc/python3-dev): nothing here
is skipped when it is missing, the import test fails instead. Every kernel this CPU can run
(avx512, avx2, generic) is compared with the numpy path on real feature rows of the bundled demo
capture and on random sparse rows, including odd layer sizes, 0/1/odd row counts, all-zero rows and
NaN/inf inputs. No timing here (bench/inference.py measures speed).
"""
from __future__ import annotations

import platform

import numpy as np
import pytest
import torch

from iotwatch.detector import model as mdl
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.model import FoldedMLP, ModelConfig, build_model

ISAS = mdl._mlp.available_isas() if mdl._mlp is not None else ("avx512", "avx2", "generic")
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _no_forced_kernel(monkeypatch):
    monkeypatch.delenv(mdl.KERNEL_ENV, raising=False)


def test_extension_is_built_and_used_by_the_classifier():
    from iotwatch.detector import _mlp  # no skip: a missing build is a failure

    isas = _mlp.available_isas()
    assert isas[-1] == "generic" and set(isas) <= {"avx512", "avx2", "generic"}
    clf = PacketClassifier.load(None)
    assert clf.kernel == (isas[0] if isas[0] in mdl.FAST_KERNELS else "numpy")
    if platform.machine() in ("x86_64", "AMD64"):
        assert clf.kernel in mdl.FAST_KERNELS, mdl.kernel_status()
    assert mdl.kernel_status()[0] == clf.kernel
    assert _mlp.Kernel(clf._mlp.weights, clf._mlp.biases).dims == (clf.n_features_in_, *clf.bundle.config.hidden,
                                                                    len(clf.classes_))


def test_environment_variable_forces_a_kernel(monkeypatch):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((10, 16)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)]
    bs = [np.zeros(16, np.float32), np.zeros(3, np.float32)]
    monkeypatch.setenv(mdl.KERNEL_ENV, "numpy")
    assert FoldedMLP(ws, bs).kernel_name == "numpy"
    monkeypatch.setenv(mdl.KERNEL_ENV, "generic")
    assert FoldedMLP(ws, bs).kernel_name == "generic"
    monkeypatch.setenv(mdl.KERNEL_ENV, "sse9")
    f = FoldedMLP(ws, bs)
    assert f.kernel_name == "numpy" and "sse9" in f.kernel_reason
    with pytest.raises(ValueError):
        FoldedMLP(ws, bs, kernel="sse9")


@pytest.fixture(scope="module")
def demo_rows():
    from iotwatch.captures.sources import open_source
    from iotwatch.options import demo_capture

    clf = PacketClassifier.load(None)
    ext = clf.new_extractor()
    X = np.concatenate([ext.transform(b) for b in open_source(read=str(demo_capture())).batches(max_rows=4096, max_wait=1.0)
                        if len(b)])
    return clf, X


def _torch_proba(cfg, tensors, mean, std, X):
    m = build_model(cfg)
    m.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in tensors.items()})
    m.eval()
    with torch.inference_mode():
        return torch.softmax(m(torch.from_numpy(((X - mean) / std).astype(np.float32))), 1).numpy()


def _assert_same_predictions(got, ref, min_clear=0.0):
    """Equal argmax wherever the reference's top two classes are not a near-tie (>= min_clear of rows)."""
    top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.c_[np.zeros(len(ref)), ref]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4
    assert clear.mean() >= min_clear
    assert np.array_equal(got.argmax(1)[clear], ref.argmax(1)[clear])


@pytest.mark.parametrize("isa", ISAS)
def test_kernel_matches_numpy_and_torch_on_real_feature_rows(demo_rows, isa):
    clf, X = demo_rows
    assert len(X) > 1000 and X.shape[1] == clf.n_features_in_
    assert 0.05 < (X != 0).mean() < 0.7, "demo rows should be sparse, or the sparse path is not exercised"
    cfg, tensors, (mean, std) = clf.bundle.config, clf.bundle.tensors, clf.bundle.scaler
    ref_np = FoldedMLP.from_tensors(cfg, tensors, mean, std, kernel="numpy").proba(X)
    ref_torch = _torch_proba(cfg, tensors, mean, std, X)
    kern = FoldedMLP.from_tensors(cfg, tensors, mean, std, kernel=isa)
    assert kern.kernel_name == isa
    got = kern.proba(X)
    assert got.shape == ref_np.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_np, atol=ATOL, rtol=0)
    np.testing.assert_allclose(got, ref_torch, atol=ATOL, rtol=0)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    _assert_same_predictions(got, ref_np, min_clear=0.99)
    # call sizes do not change results: one row at a time for a slice, odd-sized pieces for all
    np.testing.assert_array_equal(np.concatenate([kern.proba(X[i:i + 1]) for i in range(50)]), got[:50])
    cuts = np.cumsum([0, 1, 15, 16, 17, 255, 1000])
    pieces = [kern.proba(X[a:b]) for a, b in zip(cuts[:-1], cuts[1:])] + [kern.proba(X[cuts[-1]:])]
    np.testing.assert_array_equal(np.concatenate(pieces), got)


def _random_net(dims, seed):
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(dims[:-1], dims[1:])]
    bs = [(rng.standard_normal(b) * 0.1).astype(np.float32) for b in dims[1:]]
    return ws, bs


def _sparse_rows(n, k, rng):
    X = rng.standard_normal((n, k)).astype(np.float32) * rng.uniform(0.1, 10, k).astype(np.float32)
    density = rng.uniform(0, 1, (n, 1))
    X[rng.random((n, k)) > density] = 0.0
    return X


# feature counts and widths that are not multiples of 16, more than one column chunk, 1 and many layers
SHAPES = [(168, 128, 64, 32, 6), (170, 128, 64, 32, 6), (37, 19, 50, 3), (200, 130, 17, 6), (300, 260, 6),
          (5, 2), (1, 1), (24, 8, 8, 8, 8, 6), (16, 16, 16)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dims", SHAPES, ids=lambda d: "-".join(map(str, d)))
def test_kernel_matches_numpy_on_random_sparse_rows(isa, dims):
    rng = np.random.default_rng(len(dims) * 1000 + dims[0])
    ws, bs = _random_net(dims, seed=dims[0])
    ref, kern = FoldedMLP(ws, bs, "numpy"), FoldedMLP(ws, bs, isa)
    for n in (0, 1, 2, 15, 16, 17, 33, 257):
        X = _sparse_rows(n, dims[0], rng)
        if n >= 3:
            X[0] = 0.0                      # all-zero row: bias-only logits
            X[1] = rng.standard_normal(dims[0])  # dense row
        got = kern.proba(X)
        assert got.shape == (n, dims[-1]) and got.dtype == np.float32
        want = ref.proba(X)
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
        if n:
            _assert_same_predictions(got, want)


@pytest.mark.parametrize("isa", ISAS)
def test_nan_and_inf_inputs_give_what_numpy_gives(isa):
    dims = (40, 128, 64, 32, 6)
    ws, bs = _random_net(dims, seed=7)
    rng = np.random.default_rng(7)
    X = _sparse_rows(12, dims[0], rng)
    X[0, 3] = np.nan
    X[1, 39] = np.inf
    X[2, 0] = -np.inf
    X[3, [5, 6]] = [np.inf, -np.inf]
    X[4] = np.nan
    X[5, 10] = np.nan
    X[5, 11] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        want = FoldedMLP(ws, bs, "numpy").proba(X)
    got = FoldedMLP(ws, bs, isa).proba(X)
    assert np.isnan(want[[0, 4, 5]]).all()  # NaN rows stay NaN (never a confident class)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0, equal_nan=True)
    np.testing.assert_allclose(got[6:], FoldedMLP(ws, bs, isa).proba(X[6:]), atol=0)  # other rows unaffected


def test_any_input_layout_and_dtype_is_accepted():
    ws, bs = _random_net((33, 20, 4), seed=3)
    rng = np.random.default_rng(3)
    X = _sparse_rows(40, 33, rng).astype(np.float64)
    want = FoldedMLP(ws, bs, "numpy").proba(X.astype(np.float32))
    kern = FoldedMLP(ws, bs, ISAS[0])
    for A in (X, np.asfortranarray(X), X[::2], X.astype(np.float32)[:, :]):
        np.testing.assert_allclose(kern.proba(A), want[: len(A)] if len(A) == len(X) else want[::2], atol=ATOL)


def test_folded_mlp_pickles_and_rebuilds_its_kernel():
    import pickle

    ws, bs = _random_net((20, 32, 5), seed=4)
    f = FoldedMLP(ws, bs)
    g = pickle.loads(pickle.dumps(f))
    assert g.kernel_name == f.kernel_name and g._k is not f._k
    X = _sparse_rows(50, 20, np.random.default_rng(4))
    np.testing.assert_array_equal(g.proba(X), f.proba(X))


def test_kernel_api_rejects_bad_shapes_and_types():
    from iotwatch.detector import _mlp

    ws, bs = _random_net((10, 16, 3), seed=1)
    k = _mlp.Kernel(ws, bs)
    assert k.dims == (10, 16, 3) and k.isa in _mlp.available_isas()
    out = np.empty((4, 3), np.float32)
    assert k.proba(np.zeros((4, 10), np.float32), out) is out
    np.testing.assert_allclose(out, FoldedMLP(ws, bs, "numpy").proba(np.zeros((4, 10), np.float32)), atol=ATOL)
    with pytest.raises(ValueError):
        k.proba(np.zeros((4, 11), np.float32), out)           # wrong feature count
    with pytest.raises(ValueError):
        k.proba(np.zeros((5, 10), np.float32), out)           # out rows != X rows
    with pytest.raises(TypeError):
        k.proba(np.zeros((4, 10), np.float64), out)           # not float32
    with pytest.raises((TypeError, ValueError, BufferError)):
        k.proba(np.zeros((4, 10), np.float32), out.T)         # not C-contiguous
    ro = np.empty((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises((TypeError, ValueError, BufferError)):
        k.proba(np.zeros((4, 10), np.float32), ro)
    with pytest.raises(ValueError):
        _mlp.Kernel([ws[0], ws[0]], bs)                       # layers do not chain
    with pytest.raises(ValueError):
        _mlp.Kernel(ws, bs[:1])
    with pytest.raises(ValueError):
        _mlp.Kernel(ws, bs, "sse9")
    with pytest.raises(ValueError):
        _mlp.Kernel([], [])


def test_classifier_predictions_equal_the_numpy_path_on_a_config_with_another_feature_count():
    """The kernel sizes everything at run time: a bundle with more features works unchanged."""
    cfg = ModelConfig(n_features=171, n_classes=6)
    from fakes import tiny_tensors

    tensors = tiny_tensors(cfg, seed=5)
    rng = np.random.default_rng(5)
    mean, std = rng.normal(size=171), rng.uniform(0.5, 3, 171)
    X = _sparse_rows(3000, 171, rng)
    got = FoldedMLP.from_tensors(cfg, tensors, mean, std).proba(X)
    np.testing.assert_allclose(got, FoldedMLP.from_tensors(cfg, tensors, mean, std, kernel="numpy").proba(X),
                               atol=ATOL, rtol=0)
    np.testing.assert_allclose(got, _torch_proba(cfg, tensors, mean, std, X), atol=ATOL, rtol=0)


def test_doctor_says_which_inference_kernel_runs(monkeypatch, capsys):
    from iotwatch.commands import doctor

    doctor.main(["-i", "lo"])
    out = " ".join(capsys.readouterr().out.split())
    kernel = PacketClassifier.load(None).kernel
    assert f"inference kernel: {kernel} (" in out
    monkeypatch.setenv(mdl.KERNEL_ENV, "numpy")
    doctor.main(["-i", "lo"])
    assert "inference kernel: numpy (forced by IOTWATCH_MLP_KERNEL=numpy)" in " ".join(capsys.readouterr().out.split())
