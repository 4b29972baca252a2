"""Feature pipeline: shape, identity-freedom, streaming determinism, context signals, bounded state."""
from __future__ import annotations

import math

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.detector.features import (FEATURE_NAMES, FEATURE_SCHEMA, PAPER_FEATURE_NAMES, DecayTable,
                                        hash_strings, new_extractor, schema_hash)
from fakes import synthetic_packets

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _chunks(batch: PacketBatch, size: int):
    return [batch.slice(s, s + size) for s in range(0, len(batch), size)]


def _run(batch: PacketBatch, size: int, **kw) -> np.ndarray:
    ext = new_extractor(**kw)
    return np.concatenate([ext.transform(b) for b in _chunks(batch, size)])


def test_names_schema_shape_and_finiteness():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_SCHEMA == schema_hash("context-v1", FEATURE_NAMES)
    assert FEATURE_SCHEMA != schema_hash("context-v1", FEATURE_NAMES[:-1])
    b = synthetic_packets(3000, seed=1)
    X = new_extractor().transform(b)
    assert X.shape == (3000, len(FEATURE_NAMES)) and X.dtype == np.float32
    assert np.isfinite(X).all()
    assert (X.std(axis=0) > 0).sum() > len(FEATURE_NAMES) // 2  # the synthetic mix exercises most features
    assert new_extractor().transform(PacketBatch.empty()).shape == (0, len(FEATURE_NAMES))


def test_no_raw_identities_or_absolute_time():
    """Renaming every host (IPs and MACs), shifting time and renumbering frames changes nothing."""
    b = synthetic_packets(4000, seed=2)
    X = new_extractor().transform(b)
    cols = dict(b.columns)
    for name in ("ip_src", "ip_dst", "arp_src_ip", "arp_dst_ip", "dns_a"):
        cols[name] = np.array([v.replace("192.168.1.", "10.9.8.") for v in b[name]], dtype=object)
    for name in ("eth_src", "eth_dst", "arp_src_hw"):
        cols[name] = np.array([v.replace("02:00:00:00", "0a:bb:cc:dd") for v in b[name]], dtype=object)
    cols["time_epoch"] = b["time_epoch"] - 1_234_567.0
    cols["frame_number"] = b["frame_number"] + 1000
    Y = new_extractor().transform(PacketBatch(cols))
    np.testing.assert_allclose(X, Y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [1, 97, 1000])
def test_batching_does_not_change_features(size):
    b = synthetic_packets(3000 if size > 1 else 600, seed=3)
    whole = new_extractor().transform(b)
    np.testing.assert_allclose(_run(b, size), whole, rtol=1e-5, atol=1e-5)


def test_decayed_counter_matches_the_definition():
    times = np.array([0.0, 0.1, 0.5, 2.0, 2.05, 10.0])
    recs = [dict(frame_number=i + 1, time_epoch=1000 + t, frame_len=100, ip_version=4, ip_src="10.0.0.1",
                 ip_dst="10.0.0.2", ip_proto=17, udp_srcport=5000, udp_dstport=5683, eth_src="02:00:00:00:00:01")
            for i, t in enumerate(times)]
    X = _run(PacketBatch.from_records(recs), 2)
    for i, t in enumerate(times):
        s1 = sum(math.exp(-(t - u) / 1.0) for u in times[: i + 1])
        s10 = sum(math.exp(-(t - u) / 10.0) for u in times[: i + 1])
        assert X[i, COL["src_s_pkts_1s"]] == pytest.approx(math.log1p(s1), rel=1e-5)
        assert X[i, COL["src_s_pkts_10s"]] == pytest.approx(math.log1p(s10), rel=1e-5)
        assert X[i, COL["src_s_bytes_10s"]] == pytest.approx(math.log1p(100 * s10), rel=1e-5)
        assert X[i, COL["dst_r_pkts_1s"]] == pytest.approx(math.log1p(s1), rel=1e-5)
    assert X[:, COL["new_peer"]].tolist() == [1, 0, 0, 0, 0, 0]


def _syn(i, t, src, dst, dport, sport=40000):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=60, ip_version=4, ip_src=src, ip_dst=dst,
                ip_proto=6, tcp_srcport=sport, tcp_dstport=dport, tcp_flags=0x02, eth_src="02:00:00:00:00:01")


def test_port_scan_stands_out_from_repeated_connections():
    scan = [_syn(i, 100 + i * 0.01, "10.0.0.66", "10.0.0.5", 1 + i) for i in range(300)]
    normal = [_syn(i, 100 + i * 0.01, "10.0.0.7", "10.0.0.5", 1883, sport=40000 + i) for i in range(300)]
    xs = new_extractor().transform(PacketBatch.from_records(scan))
    xn = new_extractor().transform(PacketBatch.from_records(normal))
    assert xs[-1, COL["src_s_newport_10s"]] > 4.0
    assert xn[-1, COL["src_s_newport_10s"]] < 1.0
    assert xs[-1, COL["port_other_system"]] == 1 or xs[-1, COL["port_other_registered"]] == 1
    assert xn[-1, COL["port_mqtt"]] == 1 and xn[-1, COL["to_service"]] == 1


def test_arp_spoof_flags_the_impostor_not_the_owner():
    gw_ip, gw_mac, evil = "192.168.1.1", "02:00:00:00:00:01", "02:00:00:00:00:66"
    recs = []
    for i in range(10):  # the gateway talks first, then the impostor claims its IP, then the gateway again
        who = gw_mac if i < 4 or i >= 8 else evil
        recs.append(dict(frame_number=i + 1, time_epoch=50.0 + i, frame_len=42, eth_src=who,
                         eth_dst="ff:ff:ff:ff:ff:ff", arp_opcode=2, arp_src_hw=who, arp_src_ip=gw_ip,
                         arp_dst_hw="02:00:00:00:00:09", arp_dst_ip="192.168.1.9"))
    X = new_extractor().transform(PacketBatch.from_records(recs))
    assert X[:, COL["mac_changed"]].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert X[7, COL["src_s_macchange_30s"]] > X[3, COL["src_s_macchange_30s"]]


def test_dns_name_shape():
    names = ["time.example.com", "a9f3k2q8z7x1c5v6b4n0m2l8k7j6h5g4.f8d7s6a5.t.example.org"]
    recs = [dict(frame_number=i + 1, time_epoch=10.0 + i, frame_len=90, ip_version=4, ip_src="10.0.0.3",
                 ip_dst="10.0.0.53", ip_proto=17, udp_srcport=5353 + i, udp_dstport=53, dns_qry_name=n,
                 dns_flags=0x0100, dns_qry_type=16) for i, n in enumerate(names)]
    X = new_extractor().transform(PacketBatch.from_records(recs))
    assert X[1, COL["dns_name_len"]] > X[0, COL["dns_name_len"]]
    assert X[1, COL["dns_name_entropy"]] > X[0, COL["dns_name_entropy"]]
    assert X[1, COL["dns_label_max"]] > X[0, COL["dns_label_max"]]
    assert X[:, COL["dns_qtype_txt"]].tolist() == [1, 1]
    assert X[:, COL["port_dns"]].tolist() == [1, 1]


def test_state_is_bounded_and_idle_hosts_expire():
    ext = new_extractor(cap=200, idle=60.0)
    b = synthetic_packets(5000, seed=4, hosts=1000)
    ext.transform(b)
    assert 0 < len(ext.hosts) <= 200 and len(ext.pairs) <= 200 and len(ext.peers) <= 400
    late = synthetic_packets(10, seed=5, hosts=2, start=float(b["time_epoch"][-1]) + 3600)
    ext.transform(late)
    assert len(ext.hosts) <= 4  # only the two late hosts (and their peers) remain


def test_bad_and_backwards_times_stay_finite():
    b = synthetic_packets(500, seed=6)
    t = b["time_epoch"].copy()
    t[10:20] = np.nan
    t[100:110] = t[100:110] - 500.0
    b.columns["time_epoch"] = t
    X = _run(b, 64)
    assert np.isfinite(X).all()


def test_decay_table_carries_state_across_updates():
    tab = DecayTable([1.0, 5.0])
    keys = np.array([3, 3, 9], dtype=np.uint64)
    out1 = tab.update(keys, np.array([0.0, 1.0, 1.0]), np.ones((3, 2)))
    out2 = tab.update(np.array([3], dtype=np.uint64), np.array([2.0]), np.ones((1, 2)))
    s = math.exp(-2) + math.exp(-1) + 1
    assert math.exp(out2[0, 0]) == pytest.approx(s, rel=1e-9)
    assert math.exp(out1[2, 1]) == pytest.approx(1.0)


def test_hash_is_deterministic_and_distinguishes():
    a = hash_strings(np.array(["10.0.0.1", "10.0.0.10", "", "fe80::1"], dtype=object))
    b = hash_strings(np.array(["10.0.0.1", "10.0.0.10", "", "fe80::1"], dtype=object))
    assert np.array_equal(a, b) and len(set(a.tolist())) == 4
    assert int(hash_strings(np.array(["a"], dtype=object))[0]) == 0xAF63DC4C8601EC8C  # FNV-1a("a")


def test_paper_extractor_fields():
    recs = [dict(frame_number=7, frame_len=60, eth_src="00:00:00:00:01:00", eth_dst="", ip_src="10.0.1.2",
                 ip_dst="", ip_proto=6, ip_len=46, tcp_len=6, tcp_srcport=1234, tcp_dstport=23)]
    X = new_extractor("paper").transform(PacketBatch.from_records(recs))
    row = dict(zip(PAPER_FEATURE_NAMES, X[0].tolist()))
    assert row == {"frame_number": 7, "frame_len": 60, "eth_src": 256, "eth_dst": 0, "ip_src": (1 << 8) + 2,
                   "ip_dst": 0, "ip_proto": 6, "ip_len": 46, "tcp_len": 6, "tcp_srcport": 1234, "tcp_dstport": 23}


def test_fast_ipv4_address_class_matches_ipaddress_reference():
    """The dotted-quad fast path gives exactly what the ipaddress-based definition gives."""
    import ipaddress
    import random

    from iotwatch.detector import features as F

    def ref(text):
        if not text:
            return 0
        try:
            a = ipaddress.ip_address(text)
        except ValueError:
            return 0
        if a.is_multicast or (a.version == 4 and int(a) == 0xFFFFFFFF):
            return 2
        return 1 if any(a in n for n in F._LOCAL_NETS if n.version == a.version) else 3

    rng = random.Random(0)
    octets = [0, 10, 16, 31, 32, 64, 100, 127, 128, 168, 169, 172, 192, 223, 224, 239, 240, 254, 255]
    cases = [".".join(str(rng.choice(octets + [rng.randrange(256)])) for _ in range(4)) for _ in range(50_000)]
    cases += ["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.04", "a.b.c.d", "1.2.3.4.5", "", "::1", "fe80::1",
              "ff02::1", "2001:db8::1", "255.255.255.255", "0.0.0.0"]
    assert [F.address_class(c) for c in cases] == [ref(c) for c in cases]
    assert {F.address_class(c) for c in cases} == {0, 1, 2, 3}


def _tcp(i, t, src, dst, sport, dport, size=1514, flags=0x10):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=size, ip_version=4, ip_src=src, ip_dst=dst,
                ip_proto=6, tcp_srcport=sport, tcp_dstport=dport, tcp_flags=flags, tcp_len=max(size - 66, 0),
                eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02")


def _dns_answer(i, t, client, name, address):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=120, ip_version=4, ip_src="192.168.0.1",
                ip_dst=client, ip_proto=17, udp_srcport=53, udp_dstport=41000, dns_qry_name=name,
                dns_qry_type=1, dns_flags=0x8180, dns_answers=1, dns_a=address,
                eth_src="02:00:00:00:00:02", eth_dst="02:00:00:00:00:01")


@pytest.mark.parametrize("size", [1, 3, 100])
def test_resolved_peer_versus_bulk_upload_to_an_unresolved_host(size):
    """A conversation with an address this host got in a DNS answer is 'resolved' (both directions,
    for as long as it goes on); an upload to a public host nobody resolved is not, and its volume
    shows in pair_upload_unresolved_log. Another host's answer, or a stale one, does not count."""
    me, other, cloud, loot = "192.168.0.20", "192.168.0.21", "198.51.100.7", "203.0.113.9"
    recs = [_dns_answer(0, 10.0, me, "api.example.com", cloud)]
    recs += [_tcp(len(recs) + k, 10.1 + k * 0.01, me, cloud, 40000, 443) for k in range(3)]
    recs.append(_tcp(len(recs), 10.2, cloud, me, 443, 40000, size=66))
    recs.append(_tcp(len(recs), 10.3, other, cloud, 40001, 443))                     # other host: not resolved
    recs += [_tcp(len(recs) + k, 10.4 + k * 0.001, me, loot, 40002, 443) for k in range(50)]  # unresolved upload
    recs.append(_tcp(len(recs), 10.5, loot, me, 443, 40002, size=66))
    recs.append(_tcp(len(recs), 1500.0, me, cloud, 40000, 443))                     # still in use (< window)
    recs.append(_tcp(len(recs), 9000.0, me, cloud, 40000, 443))                     # silent too long: stale
    X = _run(PacketBatch.from_records(recs), size)
    res = X[:, COL["peer_resolved"]].tolist()
    assert res[0] == 0 and res[1:5] == [1, 1, 1, 1] and res[5] == 0
    assert res[6:57] == [0] * 51 and res[57] == 1 and res[58] == 0
    up = X[:, COL["pair_upload_unresolved_log"]]
    assert up[1:5].tolist() == [0, 0, 0, 0]
    assert up[55] > 10 and up[56] > 10 and up[55] > up[10]      # grows with the upload; the ACK sees it too
    assert X[:, COL["pair_dns_before"]][6] > 0.1  # the older signal: a DNS answer just arrived, by coincidence


def test_mark_table_chains_refreshes_and_expires():
    from iotwatch.detector.features import MarkTable

    tab = MarkTable(window=10.0)
    k = np.array([7], dtype=np.uint64)
    none = np.empty(0, dtype=np.uint64)
    f = tab.update(k, np.array([0.0]), np.array([0]), np.array([7, 7, 8], dtype=np.uint64),
                   np.array([0.0, 9.0, 9.0]), np.array([0, 1, 1]))
    assert f.tolist() == [True, True, False]
    assert tab.update(none, np.empty(0), np.empty(0, int), np.array([7], dtype=np.uint64), np.array([18.0]),
                      np.array([0])).tolist() == [True]  # refreshed at 9 s by the found query
    assert tab.update(none, np.empty(0), np.empty(0, int), np.array([7], dtype=np.uint64), np.array([40.0]),
                      np.array([0])).tolist() == [False]
