"""The per-flow vote (detector/flowvote.py): flow keys, the recurrence, its C kernel, state across batches,
the bundle's ``flow_vote`` and its place in the pipeline; the pair vote (``PairVote``, ``pair_vote``)."""
from __future__ import annotations

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.errors import InputError
from iotwatch.detector.bundle import load_bundle
from iotwatch.detector.classifier import PacketClassifier
from iotwatch.detector.flowvote import FlowVote, PairVote, flow_keys, vote_keys
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


def test_pair_keys_are_the_two_hosts_whatever_the_connection():
    """A pair key per packet: the same for every connection and protocol of two hosts, both ways; another
    for another host or for the part an ARP poisoner relays (the ends carry their MACs); 0 for ARP."""
    recs = [_rec(0, "10.0.0.1", "10.0.0.2", 40000, 443), _rec(1, "10.0.0.2", "10.0.0.1", 443, 40000),
            _rec(2, "10.0.0.1", "10.0.0.2", 40001, 443), _rec(3, "10.0.0.1", "10.0.0.2", -1, -1, proto=1),
            _rec(4, "10.0.0.1", "10.0.0.3", 40000, 443),
            _rec(5, "10.0.0.1", "10.0.0.2", 40000, 443, via="02:00:00:00:00:66"),
            dict(frame_number=7, time_epoch=100.1, frame_len=42, arp_opcode=1, eth_src="02:00:00:00:00:01")]
    flows, pairs = vote_keys(PacketBatch.from_records(recs))
    assert np.array_equal(flows, flow_keys(PacketBatch.from_records(recs)))
    assert pairs[0] == pairs[1] == pairs[2] == pairs[3] and flows[0] != flows[2]
    assert len({int(pairs[0]), int(pairs[4]), int(pairs[5])}) == 3
    assert pairs[6] == 0 and (pairs[:6] != 0).all()


NORMAL, DOS, EXFIL = 0, 2, 5
PAIR = PairVote(0.6, tau=600.0, ramp=20.0, floor=0.9, classes=(EXFIL,), normal=NORMAL)


def _probs(n, cls, p):
    out = np.full((n, 6), (1.0 - p) / 5, dtype=np.float32)
    out[:, cls] = p
    return out


def _pair_stream():
    """Hosts 1 and 2: a 40-packet connection judged normal, five minutes later a 30-packet upload judged
    exfiltration (0.8) and a connection judged dos; hosts 3 and 4: first an exfiltration, then another; hosts 5
    and 6: only an upload judged exfiltration; hosts 7 and 8: a connection judged normal, one judged
    exfiltration, then another (a staged exfiltration whose first chunk passed). (flow, pair, t, proba)."""
    F = lambda i: np.uint64(1000 + i)
    P = lambda i: np.uint64(2000 + i)
    rows = [(F(1), P(1), 100.0 + i * 0.1, _probs(1, NORMAL, 0.99)) for i in range(40)]
    rows += [(F(2), P(1), 400.0 + i * 0.1, _probs(1, EXFIL, 0.8)) for i in range(30)]
    rows += [(F(3), P(1), 410.0 + i * 0.1, _probs(1, DOS, 0.8)) for i in range(10)]
    rows += [(F(4), P(2), 420.0 + i * 0.1, _probs(1, EXFIL, 0.8)) for i in range(40)]
    rows += [(F(5), P(2), 600.0 + i * 0.1, _probs(1, EXFIL, 0.8)) for i in range(30)]
    rows += [(F(6), P(3), 700.0 + i * 0.1, _probs(1, EXFIL, 0.8)) for i in range(30)]
    rows += [(F(7), P(4), 800.0 + i * 0.1, _probs(1, NORMAL, 0.99)) for i in range(30)]
    rows += [(F(8), P(4), 810.0 + i * 0.1, _probs(1, EXFIL, 0.9)) for i in range(30)]
    rows += [(F(9), P(4), 820.0 + i * 0.1, _probs(1, EXFIL, 0.8)) for i in range(30)]
    rows.sort(key=lambda r: r[2])
    return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
            np.concatenate([r[3] for r in rows]))


def test_pair_vote_pulls_an_exfiltration_toward_the_hosts_normal_past_and_nothing_else():
    """The upload of two hosts whose earlier connection was normal is pulled to normal; the same upload between
    hosts that exchanged nothing before, or whose earlier traffic was exfiltration itself, or only partly normal
    (below the floor: a staged exfiltration's third chunk, after a normal-looking first), stays exfiltration; a
    connection voted dos is not touched (``classes``); without pair keys or with weight 0 nothing changes."""
    flows, pairs, t, proba = _pair_stream()
    plain = FlowVote(0.85).update(flows, t, proba)
    out = FlowVote(0.85, pair=PAIR).update(flows, t, proba, pairs)
    f = lambda i: flows == np.uint64(1000 + i)
    assert (out[f(2)].argmax(1) == NORMAL).all() and (plain[f(2)].argmax(1) == EXFIL).all()
    assert (out[f(8)].argmax(1) == NORMAL).all()   # the second chunk still follows a clean normal past
    for same in (1, 3, 4, 5, 6, 7, 9):
        np.testing.assert_array_equal(out[f(same)], plain[f(same)])
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(FlowVote(0.85, pair=PAIR).update(flows, t, proba), plain)
    np.testing.assert_array_equal(FlowVote(0.85, pair=PairVote(0.0, classes=(EXFIL,))).update(flows, t, proba, pairs),
                                  plain)


@pytest.mark.parametrize("cuts", [(1, 2, 3), (17, 40, 41, 100), (75,)])
def test_pair_vote_is_the_same_in_any_batching(cuts):
    flows, pairs, t, proba = _pair_stream()
    whole = FlowVote(0.85, pair=PAIR).update(flows, t, proba, pairs)
    vote, parts, edges = FlowVote(0.85, pair=PAIR), [], [0, *cuts, len(t)]
    for a, b in zip(edges, edges[1:]):
        parts.append(vote.update(flows[a:b], t[a:b], proba[a:b], pairs[a:b]))
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6, atol=1e-7)


def test_pair_vote_forgets_a_past_older_than_its_horizon():
    """Other traffic decays over tau: an upload 3 hours after the normal connection is not pulled."""
    flows, pairs, t, proba = _pair_stream()
    t = np.where(flows == np.uint64(1001), t - 3 * 3600.0, t)
    order = np.argsort(t, kind="stable")
    flows, pairs, t, proba = flows[order], pairs[order], t[order], proba[order]
    out = FlowVote(0.85, pair=PAIR).update(flows, t, proba, pairs)
    assert (out[flows == np.uint64(1002)].argmax(1) == EXFIL).all()


def test_pair_vote_state_is_bounded():
    """The two decayed sums hold at most ``cap`` connections and ``cap`` host pairs, as every table does."""
    rng = np.random.default_rng(5)
    n = 5000
    flows = rng.integers(1, 10**9, n).astype(np.uint64)
    pairs = rng.integers(1, 10**9, n).astype(np.uint64)
    proba = rng.dirichlet(np.ones(6), n).astype(np.float32)
    vote = FlowVote(0.85, cap=100, pair=PAIR)
    for a in range(0, n, 500):
        vote.update(flows[a:a + 500], 100.0 + np.arange(a, a + 500) * 0.01, proba[a:a + 500], pairs[a:a + 500])
    assert all(0 < len(tab) <= 100 for tab in vote._pair_tables)


def test_pair_vote_values_are_checked():
    for bad in (PairVote(1.5), PairVote(0.5, tau=0.0), PairVote(0.5, ramp=0.5), PairVote(0.5, floor=1.0)):
        with pytest.raises(ValueError):
            FlowVote(0.85, pair=bad)


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


def _with_pair(src, dst, pair):
    """A copy of ``src`` whose meta pair_vote is ``pair`` (None: without the key)."""
    return rewrite_bundle(src, dst, lambda meta: meta.pop("pair_vote", None) if pair is None
                          else meta.update(pair_vote=pair))


def test_bundle_pair_vote_is_optional_and_checked(tmp_path):
    src = make_tiny_bundle(tmp_path / "tiny.iotw")
    classes = load_bundle(src).classes
    other = next(c for c in classes if c != "normal")
    good = {"weight": 0.6, "tau": 600.0, "ramp": 20.0, "floor": 0.9, "classes": [other]}
    assert PacketClassifier.load(_with_pair(src, tmp_path / "none.iotw", None)).pair_vote is None
    clf = PacketClassifier.load(_with_pair(src, tmp_path / "on.iotw", good))
    assert clf.pair_vote == PairVote(0.6, 600.0, 20.0, 0.9, (classes.index(other),), classes.index("normal"))
    assert clf.new_vote().pair == clf.pair_vote
    for bad in ({**good, "weight": 1.5}, {**good, "tau": 0}, {**good, "ramp": 0.5}, {**good, "floor": 1.0},
                {**{k: v for k, v in good.items() if k != "floor"}}, {**good, "classes": ["normal"]},
                {**good, "classes": ["nonsense"]}, {**good, "extra": 1}, [0.6], {**good, "weight": float("nan")}):
        with pytest.raises(InputError, match="pair_vote"):
            load_bundle(_with_pair(src, tmp_path / "bad.iotw", bad))


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
    clf = PacketClassifier.load(None)
    assert clf.flow_vote > 0 and clf.pair_vote is not None
    assert [clf.classes_[i] for i in clf.pair_vote.classes] == ["exfiltration"]


def test_pipeline_gives_the_vote_the_pair_keys(tmp_path):
    """classify_batch hands the vote each packet's host pair: with a pair vote the product path pulls."""
    seen = []

    class Spy(FlowVote):
        def update(self, keys, t, proba, pairs=None):
            seen.append(pairs)
            return super().update(keys, t, proba, pairs)

    clf = PacketClassifier.load(_with_vote(make_tiny_bundle(tmp_path / "tiny.iotw"), tmp_path / "v.iotw", 0.85))
    batch = PacketBatch.from_records([_rec(i, "10.0.0.1", "10.0.0.2", 40000, 443) for i in range(5)])
    classify_batch(clf, clf.new_extractor(), batch, None, Spy(0.85))
    assert len(seen) == 1 and np.array_equal(seen[0], vote_keys(batch)[1])




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
    paired = tmp_path / "paired.iotw"
    assert script.main([str(out), str(paired), "--alpha", "0.7", "--pair", "0.6", "--version", "8"]) == 0
    b2 = load_bundle(paired)
    assert b2.meta["training"]["derived_from"]["earlier"]["bundle"] == before.display_name   # the chain is kept
    assert ("exfiltration" in b2.classes) == ("pair_vote" in b2.meta)
    assert script.main([str(out), str(tmp_path / "z.iotw"), "--alpha", "0.7", "--pair", "1.5", "--version", "9"]) == 2
    assert not (tmp_path / "z.iotw").exists()
    assert script.main([str(src), str(tmp_path / "x.iotw"), "--alpha", "1.0", "--version", "8"]) == 2
    assert not (tmp_path / "x.iotw").exists()
    assert script.main([str(tmp_path / "missing.iotw"), str(tmp_path / "y.iotw"), "--alpha", "0.5", "--version", "8"]) == 2
    assert "vote_bundle: " in capsys.readouterr().err
