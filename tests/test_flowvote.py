"""The per-flow vote (detector/flowvote.py): flow keys, the recurrence, its C kernel, state across batches,
the bundle's ``flow_vote`` and its place in the pipeline."""
from __future__ import annotations

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.errors import InputError
from iotwatch.detector.bundle import load_bundle
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.flowvote import FlowVote, flow_keys
from iotwatch.detector.pipeline import classify_batch
from fakes import make_tiny_bundle, rewrite_bundle


def _mac(ip):
    return f"02:00:00:00:00:{int(ip.rsplit('.', 1)[1]):02x}"


def _rec(i, src, dst, sp, dp, proto=6, t=None, via=None):
    """A frame src -> dst; ``via``: the MAC it goes through instead of dst's own (an ARP poisoner's)."""
    r = dict(frame_number=i + 1, time_epoch=100.0 + i * 0.01 if t is None else t, frame_len=60, ip_version=4,
             ip_src=src, ip_dst=dst, ip_proto=proto, eth_src=_mac(src), eth_dst=via or _mac(dst))
    if proto == 6:
        r.update(tcp_srcport=sp, tcp_dstport=dp, tcp_flags=0x10)
    elif proto == 17:
        r.update(udp_srcport=sp, udp_dstport=dp)
    return r


def test_flow_keys_are_the_same_both_ways_and_differ_between_flows():
    recs = [_rec(0, "10.0.0.1", "10.0.0.2", 40000, 443), _rec(1, "10.0.0.2", "10.0.0.1", 443, 40000),
            _rec(2, "10.0.0.1", "10.0.0.2", 40001, 443), _rec(3, "10.0.0.1", "10.0.0.2", 40000, 443, proto=17),
            _rec(4, "10.0.0.1", "10.0.0.3", 40000, 443), _rec(5, "10.0.0.1", "10.0.0.2", -1, -1, proto=1),
            _rec(6, "10.0.0.2", "10.0.0.1", -1, -1, proto=1),
            dict(frame_number=8, time_epoch=100.1, frame_len=42, arp_opcode=1, eth_src="02:00:00:00:00:01")]
    k = flow_keys(PacketBatch.from_records(recs))
    assert k.dtype == np.uint64 and len(k) == 8
    assert k[0] == k[1] and k[5] == k[6]          # both directions, TCP and ICMP
    assert len({int(x) for x in k[[0, 2, 3, 4, 5]]}) == 5   # another port, protocol, host: another flow
    assert k[7] == 0 and (k[:7] != 0).all()       # ARP: not voted


def test_a_relayed_flow_or_a_forged_answer_is_another_vote():
    """The same 5-tuple through an ARP poisoner's MAC (relayed both ways), or a DNS answer forged from the
    poisoner's MAC, is not averaged with the direct packets of the flow."""
    evil = "02:00:00:00:00:66"
    recs = [_rec(0, "10.0.0.5", "10.0.0.1", 40000, 53, proto=17),
            _rec(1, "10.0.0.1", "10.0.0.5", 53, 40000, proto=17),
            _rec(2, "10.0.0.5", "10.0.0.1", 40000, 53, proto=17, via=evil),
            dict(_rec(3, "10.0.0.1", "10.0.0.5", 53, 40000, proto=17), eth_src=evil)]
    k = flow_keys(PacketBatch.from_records(recs))
    assert k[0] == k[1] and k[2] == k[3] and k[0] != k[2]


def _reference(keys, proba, alpha):
    """The vote written out packet by packet."""
    state, out = {}, proba.astype(np.float64).copy()
    for i, key in enumerate(keys):
        if key == 0:
            continue
        s, w = state.get(int(key), (np.zeros(proba.shape[1]), 0.0))
        s, w = alpha * s + proba[i], alpha * w + 1.0
        state[int(key)] = (s, w)
        out[i] = s / w
    return out


def _stream(n, flows, seed):
    rng = np.random.default_rng(seed)
    keys = rng.integers(1, flows + 1, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    keys[rng.random(n) < 0.1] = 0
    proba = rng.dirichlet(np.ones(6), n).astype(np.float32)
    return keys, 100.0 + np.arange(n) * 0.001, proba


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("cuts", [(), (1, 2, 3, 500), (257, 1024, 1500)])
def test_vote_is_the_written_out_recurrence_in_any_batching(kernel, cuts):
    keys, t, proba = _stream(2000, 40, 3)
    want = _reference(keys, proba, 0.85)
    vote = FlowVote(0.85)
    vote.kernel = kernel
    bounds = [0, *cuts, len(keys)]
    got = np.concatenate([vote.update(keys[a:b], t[a:b], proba[a:b]) for a, b in zip(bounds, bounds[1:])])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.allclose(got.sum(1), 1.0, atol=1e-5)
    first = np.array([keys[i] != 0 and keys[i] not in keys[:i] for i in range(len(keys))])
    np.testing.assert_array_equal(got[first], proba[first])       # a flow's first packet keeps its own
    np.testing.assert_array_equal(got[keys == 0], proba[keys == 0])  # non-IP frames stand alone
    assert not np.allclose(got[~first & (keys != 0)], proba[~first & (keys != 0)])


def test_vote_kernel_matches_the_numpy_path_bit_for_bit():
    from iotwatch.detector import _tables  # no skip: a missing build is a failure (dev.sh installs gcc)

    assert callable(_tables.vote_accumulate)
    keys, t, proba = _stream(5000, 300, 7)
    outs = []
    for kernel in (True, False):
        vote = FlowVote(0.7)
        vote.kernel = kernel
        outs.append(np.concatenate([vote.update(keys[a:a + 999], t[a:a + 999], proba[a:a + 999])
                                    for a in range(0, len(keys), 999)]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_idle_flows_start_again_and_the_state_is_capped():
    key = np.array([5, 5], dtype=np.uint64)
    p = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=np.float32)
    vote = FlowVote(0.5, idle=10.0)
    vote.update(key[:1], np.array([0.0]), p[:1])
    np.testing.assert_array_equal(vote.update(key[1:], np.array([100.0]), p[1:]), p[1:])  # idle: alone again
    vote = FlowVote(0.5, idle=10.0)
    vote.update(key[:1], np.array([0.0]), p[:1])
    assert vote.update(key[1:], np.array([1.0]), p[1:])[0, 0] > 0.3                   # not idle: voted
    capped = FlowVote(0.5, cap=100)
    keys, t, proba = _stream(3000, 1000, 1)
    capped.update(keys, t, proba)
    assert len(capped) <= 100


def test_missing_times_do_not_break_the_vote():
    keys = np.array([9, 9, 9], dtype=np.uint64)
    p = np.full((3, 6), 1 / 6, dtype=np.float32)
    out = FlowVote(0.85).update(keys, np.array([1.0, np.nan, 2.0]), p)
    assert np.isfinite(out).all()


def test_alpha_is_checked():
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError):
            FlowVote(bad)


def _with_vote(src, dst, vote):
    """A copy of ``src`` whose meta flow_vote is ``vote`` (None: without the key)."""
    return rewrite_bundle(src, dst, lambda meta: meta.pop("flow_vote", None) if vote is None
                          else meta.update(flow_vote=vote))


def test_bundle_flow_vote_is_optional_and_checked(tmp_path):
    src = make_tiny_bundle(tmp_path / "tiny.iotw")
    assert PacketClassifier.load(_with_vote(src, tmp_path / "none.iotw", None)).new_vote() is None
    assert PacketClassifier.load(_with_vote(src, tmp_path / "zero.iotw", 0.0)).new_vote() is None
    v = PacketClassifier.load(_with_vote(src, tmp_path / "on.iotw", 0.85)).new_vote()
    assert isinstance(v, FlowVote) and v.alpha == 0.85
    for bad in (1.0, -0.5, "0.8", True):
        with pytest.raises(InputError, match="flow_vote"):
            load_bundle(_with_vote(src, tmp_path / "bad.iotw", bad))


def test_pipeline_votes_per_stream(tmp_path):
    """classify_batch with a vote = the model's probabilities voted over the flows, batch after batch."""
    clf = PacketClassifier.load(_with_vote(make_tiny_bundle(tmp_path / "tiny.iotw"), tmp_path / "v.iotw", 0.85))
    recs = [_rec(i, "10.0.0.1", "10.0.0.2", 40000 + i % 3, 443, t=100.0 + i * 0.01) for i in range(60)]
    batch = PacketBatch.from_records(recs)
    raw_ext, ext, vote = clf.new_extractor(), clf.new_extractor(), clf.new_vote()
    raw = classify_batch(clf, raw_ext, batch)
    voted = [classify_batch(clf, ext, batch.slice(a, a + 20), None, vote) for a in (0, 20, 40)]
    proba = np.concatenate([cb.proba for cb in voted])
    want = _reference(flow_keys(batch), raw.proba, 0.85)
    np.testing.assert_allclose(proba, want, rtol=1e-5, atol=1e-6)
    predicted = np.concatenate([cb.predicted for cb in voted])
    np.testing.assert_array_equal(predicted, proba.argmax(1))
def test_bundled_model_votes():
    assert PacketClassifier.load(None).flow_vote > 0




def test_vote_bundle_derives_a_voting_bundle_and_says_from_what(tmp_path, capsys):
    from fakes import load_script
    from pathlib import Path

    script = load_script(Path(__file__).resolve().parent.parent / "bench" / "vote_bundle.py", "vote_bundle")
    src = make_tiny_bundle(tmp_path / "tiny.iotw")
    out = tmp_path / "voting.iotw"
    assert script.main([str(src), str(out), "--alpha", "0.7", "--version", "7"]) == 0
    b = load_bundle(out)
    before = load_bundle(src)
    assert b.meta["flow_vote"] == 0.7 and b.meta["version"] == "7"
    assert b.meta["training"]["derived_from"]["bundle"] == before.display_name
    assert all(np.array_equal(b.tensors[k], before.tensors[k]) for k in before.tensors)   # the same network
    assert PacketClassifier.load(out).new_vote().alpha == 0.7
    assert script.main([str(src), str(tmp_path / "x.iotw"), "--alpha", "1.0", "--version", "8"]) == 2
    assert not (tmp_path / "x.iotw").exists()
    assert script.main([str(tmp_path / "missing.iotw"), str(tmp_path / "y.iotw"), "--alpha", "0.5", "--version", "8"]) == 2
    assert "vote_bundle: " in capsys.readouterr().err
