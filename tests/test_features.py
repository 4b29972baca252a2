"""Feature pipeline: shape, identity-freedom, streaming determinism, context signals, bounded state."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.detector.features import (BLOCKS, FEATURE_BLOCKS, FEATURE_NAMES, FEATURE_SCHEMA, PAPER_FEATURE_NAMES,
                                        CountTable, DecayTable, hash_strings, new_extractor, schema_hash)
from fakes import synthetic_packets

COL = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _chunks(batch: PacketBatch, size: int):
    return [batch.slice(s, s + size) for s in range(0, len(batch), size)]


def _run(batch: PacketBatch, size: int, **kw) -> np.ndarray:
    ext = new_extractor(**kw)
    return np.concatenate([ext.transform(b) for b in _chunks(batch, size)])


def test_names_schema_shape_and_finiteness():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_SCHEMA == schema_hash("behaviour-v2", FEATURE_NAMES)
    assert FEATURE_SCHEMA != schema_hash("behaviour-v2", FEATURE_NAMES[:-1])
    assert sum(len(v) for v in FEATURE_BLOCKS.values()) == len(FEATURE_NAMES)
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
    assert X[:, COL["new_server"]].tolist() == [1, 0, 0, 0, 0, 0]


def _syn(i, t, src, dst, dport, sport=40000):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=60, ip_version=4, ip_src=src, ip_dst=dst,
                ip_proto=6, tcp_srcport=sport, tcp_dstport=dport, tcp_flags=0x02, eth_src="02:00:00:00:00:01")


def test_port_scan_stands_out_from_repeated_connections():
    scan = [_syn(i, 100 + i * 0.01, "10.0.0.66", "10.0.0.5", 1 + i) for i in range(300)]
    normal = [_syn(i, 100 + i * 0.01, "10.0.0.7", "10.0.0.5", 1883, sport=40000 + i) for i in range(300)]
    xs = new_extractor().transform(PacketBatch.from_records(scan))
    xn = new_extractor().transform(PacketBatch.from_records(normal))
    assert xs[-1, COL["cli_ports_10s"]] > 0.6          # log1p(~300 distinct ports) / 8
    assert xn[-1, COL["cli_ports_10s"]] < 0.1          # one service port
    assert xs[-1, COL["cli_port_share_10s"]] > 0.9 and xn[-1, COL["cli_port_share_10s"]] < 0.05
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
    assert X[7, COL["src_macchange_30s"]] > X[3, COL["src_macchange_30s"]]
    assert X[:, COL["arp_claim_changed"]].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert X[7, COL["src_arpclaim_30s"]] > 0.5


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
    sizes = [len(tab) for blk in ext.blocks for tab in blk.tables()]
    assert 0 < len(ext.host_rates.hosts) <= 200 and len(ext.pair.pairs) <= 200 and max(sizes) <= 400
    late = synthetic_packets(10, seed=5, hosts=2, start=float(b["time_epoch"][-1]) + 3600)
    ext.transform(late)
    assert len(ext.host_rates.hosts) <= 4  # only the two late hosts (and their peers) remain
    assert len(ext.flow.table) <= 10 and len(ext.fan.clients) <= 4


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


def test_live_sized_batches_fill_the_hash_cache_and_big_new_batches_do_not():
    """One- and two-row batches (live capture) cache their strings, so the next batch finds them; a big
    batch of mostly new strings (spoofed sources) is hashed without filling the cache. Same values."""
    from iotwatch.detector import features

    features._HASHES.clear()
    one = hash_strings(np.array(["192.0.2.77"], dtype=object))
    two = hash_strings(np.array(["192.0.2.78", "02:00:00:00:00:4e"], dtype=object))
    assert {"192.0.2.77", "192.0.2.78", "02:00:00:00:00:4e"} <= features._HASHES.keys()
    spoofed = np.array([f"198.51.{i // 256}.{i % 256}" for i in range(1000)], dtype=object)
    many = hash_strings(spoofed)
    assert "198.51.0.7" not in features._HASHES
    ref = features._fnv1a(np.array(["192.0.2.77", "192.0.2.78", "02:00:00:00:00:4e", *spoofed], dtype=str))
    assert np.array_equal(np.concatenate([one, two, many]), ref)


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


def _tcp(i, t, src, dst, sport, dport, size=66, flags=0x10):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=size, ip_version=4, ip_src=src, ip_dst=dst,
                ip_proto=6, tcp_srcport=sport, tcp_dstport=dport, tcp_flags=flags, tcp_len=max(size - 66, 0),
                ip_ttl=64, eth_src="02:00:00:00:00:01", eth_dst="02:00:00:00:00:02")


def _udp(i, t, src, dst, sport, dport, size=120, **kw):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=size, ip_version=4, ip_src=src, ip_dst=dst,
                ip_proto=17, udp_srcport=sport, udp_dstport=dport, ip_len=size - 14, ip_ttl=60,
                eth_src="02:00:00:00:00:03", eth_dst="02:00:00:00:00:01", **kw)


def _varied_batch() -> PacketBatch:
    """The bundled demo capture (simulated home with every attack family) plus hand-made packets of
    what it lacks (IPv6, router advertisements, fragments, MQTT/HTTP/FTP failures, ...)."""
    from iotwatch.captures.sources import open_source

    demo = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
    src = open_source(read=str(demo))
    try:
        parts = [b for b in src.batches(max_rows=8192, max_wait=1.0) if len(b)]
    finally:
        src.close()
    t0 = float(parts[-1]["time_epoch"][-1]) + 1
    extra = [
        dict(time_epoch=t0, frame_len=118, ip_version=6, ip_src="fe80::1", ip_dst="ff02::1", ip_proto=58,
             icmp_type=134, icmp_code=0, ip_ttl=255, eth_src="02:00:00:00:00:aa", eth_dst="33:33:00:00:00:01"),
        dict(time_epoch=t0 + 0.1, frame_len=1514, ip_version=4, ip_src="10.1.1.1", ip_dst="10.1.1.2", ip_proto=17,
             ip_flags=0x20, ip_frag_offset=0, ip_ttl=128, eth_src="02:00:00:00:00:ab", eth_dst="02:00:00:00:00:ac"),
        dict(time_epoch=t0 + 0.2, frame_len=600, ip_version=4, ip_src="10.1.1.1", ip_dst="10.1.1.2", ip_proto=17,
             ip_flags=0, ip_frag_offset=185, ip_ttl=127, eth_src="02:00:00:00:00:ab", eth_dst="02:00:00:00:00:ac"),
        dict(time_epoch=t0 + 0.3, frame_len=60, ip_version=4, ip_src="10.1.1.2", ip_dst="10.1.1.1", ip_proto=47,
             ip_ttl=33, eth_src="02:00:00:00:00:ac", eth_dst="02:00:00:00:00:ab"),
    ]
    app = dict(ip_version=4, ip_proto=6, ip_ttl=64, tcp_flags=0x18, frame_len=90, eth_src="02:00:00:00:00:ab",
               eth_dst="02:00:00:00:00:ac")
    for k, (sp, dp, kw) in enumerate([
            (50000, 1883, dict(mqtt_msgtype=3)), (1883, 50000, dict(mqtt_msgtype=2, mqtt_conack=5)),
            (50001, 80, dict(http_method="POST")), (80, 50001, dict(http_status=401)),
            (80, 50001, dict(http_status=503)), (21, 50002, dict(ftp_code=331)), (21, 50002, dict(ftp_code=530)),
            (21, 50002, dict(ftp_code=230)), (50003, 8080, dict(tcp_flags=0x39))]):
        a, b = ("10.1.1.1", "10.1.1.2") if sp > dp else ("10.1.1.2", "10.1.1.1")
        extra.append(dict(app, time_epoch=t0 + 1 + k * 0.1, ip_src=a, ip_dst=b, tcp_srcport=sp, tcp_dstport=dp,
                          tcp_len=24, **kw))
    for k, (it, code) in enumerate(((11, 1), (5, 1))):  # time exceeded (reassembly), redirect
        extra.append(dict(time_epoch=t0 + 1.9 + k * 0.01, frame_len=70, ip_version=4, ip_src="10.1.1.254",
                          ip_dst="10.1.1.1", ip_proto=1, ip_ttl=64, icmp_type=it, icmp_code=code))
    for k, dp in enumerate((25, 135)):
        extra.append(dict(app, time_epoch=t0 + 1.95 + k * 0.01, ip_src="10.1.1.1", ip_dst="10.1.1.3",
                          tcp_srcport=50010, tcp_dstport=dp, tcp_flags=0x02, tcp_len=0))
    # an ARP reply, then a non-IP frame (e.g. EAPOL) to the replier's MAC (ARP senders are known by MAC)
    extra.append(dict(time_epoch=t0 + 1.97, frame_len=42, eth_src="02:00:00:00:00:ad", eth_dst="02:00:00:00:00:ab",
                      arp_opcode=2, arp_src_hw="02:00:00:00:00:ad", arp_src_ip="10.1.1.4",
                      arp_dst_hw="02:00:00:00:00:ab", arp_dst_ip="10.1.1.1"))
    extra.append(dict(time_epoch=t0 + 1.98, frame_len=60, eth_src="02:00:00:00:00:ab", eth_dst="02:00:00:00:00:ad"))
    # ... and an IP frame for 10.1.1.2 (bound to ...:ac) sent to that unsolicited replier's MAC
    extra.append(dict(time_epoch=t0 + 1.985, frame_len=60, ip_version=4, ip_src="10.1.1.1", ip_dst="10.1.1.2", ip_proto=17,
                      udp_srcport=40001, udp_dstport=443, eth_src="02:00:00:00:00:ab", eth_dst="02:00:00:00:00:ad"))
    for k, qt in enumerate((10, 15, 255)):
        extra.append(dict(time_epoch=t0 + 2 + k * 0.1, frame_len=80, ip_version=4, ip_src="10.1.1.1",
                          ip_dst="10.1.1.53", ip_proto=17, ip_ttl=64, udp_srcport=40000 + k, udp_dstport=53,
                          dns_qry_name="q.example", dns_qry_type=qt, dns_flags=0x0100))
    recs = [dict(r, frame_number=i + 1) for i, r in enumerate(extra)]
    return PacketBatch.concat(parts + [PacketBatch.from_records(recs)])


def test_every_declared_column_is_written_and_moves():
    """Each block writes every column it declares (nothing left at the NaN fill), and over a varied
    capture every column takes more than one value."""
    b = PacketBatch.concat([_varied_batch(), synthetic_packets(2000, seed=9, start=2_000_000_000.0)])
    X = new_extractor().transform(b, fill=np.nan)
    unwritten = [n for n, bad in zip(FEATURE_NAMES, np.isnan(X).any(axis=0)) if bad]
    assert unwritten == []
    assert np.isfinite(X).all()
    constant = {n for n, s in zip(FEATURE_NAMES, X.std(axis=0)) if s == 0}
    assert constant == set(), sorted(constant)
    for blk in BLOCKS:
        assert blk.names and len(set(blk.names)) == len(blk.names)


def test_bare_syn_marks_a_crafted_syn_not_the_senders_stack():
    """``tcp_syn_bare``: a SYN without TCP options (hping3, masscan, flood tools; every OS stack puts MSS and more
    on its SYN). Whether other segments carry options (timestamps: Linux yes, lwIP/Windows mostly not) is the
    sender's stack, not its behaviour, and must not show (MODEL_CARD session 10: a model learned "timestamps on
    port 443 => exfiltration" from one attacker stack)."""
    rows = [(0x02, 20), (0x02, 40), (0x02, 24), (0x12, 20), (0x12, 40), (0x10, 32), (0x18, 20), (0x18, 32),
            (0x04, 20)]
    recs = [dict(_tcp(i, 100.0 + i * 0.01, "10.0.0.7", "10.0.0.8", 40000 + i, 443, flags=f), tcp_hdr_len=h)
            for i, (f, h) in enumerate(rows)]
    X = new_extractor().transform(PacketBatch.from_records(recs))
    assert X[:, COL["tcp_syn_bare"]].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert "tcp_options" not in COL
    # the stack's options on data segments change no column of the packet block
    pkt = [COL[n] for n in FEATURE_BLOCKS["packet"]]
    assert np.array_equal(X[6, pkt], X[7, pkt])


def test_count_table_is_a_running_sum_per_key():
    tab = CountTable(1)
    out = tab.update(np.array([5, 7, 5], dtype=np.uint64), np.array([0.0, 1.0, 2.0]), np.ones((3, 1)))
    assert out[:, 0].tolist() == [1, 1, 2]
    out = tab.update(np.array([5, 7], dtype=np.uint64), np.array([3.0, 500.0]), np.ones((2, 1)))
    assert out[:, 0].tolist() == [3, 1]  # key 7 idle > 300 s: starts again


def _syn_stream(rate, n, src="10.0.0.66", dst="10.0.0.5", ports=True, spoofed=False, t0=100.0):
    recs = []
    for i in range(n):
        s = f"172.16.{i // 250}.{i % 250 + 1}" if spoofed else src
        recs.append(_tcp(i, t0 + i / rate, s, dst, 40000 + (i % 20000 if spoofed else 0), (1 + i) if ports else 80,
                         size=60, flags=0x02))
    return new_extractor().transform(PacketBatch.from_records(recs))


def test_scans_and_floods_differ_by_fan_out_not_by_rate():
    fast_scan = _syn_stream(10_000, 2000)
    slow_scan = _syn_stream(5, 300)
    flood = _syn_stream(10_000, 2000, ports=False, spoofed=True)
    for scan in (fast_scan, slow_scan):
        assert scan[-1, COL["cli_port_share_10s"]] > 0.9
        assert scan[-1, COL["srv_port_share_10s"]] > 0.9
        assert scan[-1, COL["srv_client_share_10s"]] < 0.05
    assert flood[-1, COL["cli_ports_10s"]] < 0.1            # each spoofed source hits one port...
    assert fast_scan[-1, COL["cli_ports_10s"]] > 0.6
    assert flood[-1, COL["srv_port_share_10s"]] < 0.05      # ...the same one
    assert flood[-1, COL["srv_client_share_10s"]] > 0.9
    assert flood[-1, COL["flow_unanswered"]] == 1 and fast_scan[-1, COL["flow_unanswered"]] == 1


def test_udp_flood_with_rotating_source_ports_is_one_service_not_a_port_fan_out():
    """hping3-style UDP flood: source port counts up from a random base below the target's (ephemeral)
    port. Every packet is a new flow; its sender is the initiator and the target port the one service,
    so the flood does not read as a victim "receiving replies from thousands of services" (a scan)."""
    recs = [_udp(i, 50.0 + i * 0.0005, "10.0.0.24", "10.0.0.18", 14000 + i, 56372, size=60) for i in range(2000)]
    X = new_extractor().transform(PacketBatch.from_records(recs))
    assert X[:, COL["flow_by_initiator"]].min() == 1
    assert X[-1, COL["cli_port_share_10s"]] < 0.05 and X[-1, COL["srv_port_share_10s"]] < 0.05
    assert X[-1, COL["cli_ports_10s"]] < 0.1
    # a DNS answer (known source port) that opens a flow is still a reply, its receiver the initiator
    ans = new_extractor().transform(PacketBatch.from_records([_udp(0, 1.0, "10.0.0.1", "10.0.0.7", 53, 14000)]))
    assert ans[0, COL["flow_by_initiator"]] == 0


def _ssh_session(recs, t, client, sport, pkts):
    """SYN, SYN-ACK, ACK, ``pkts`` encrypted packets alternating, FIN/ACK both ways."""
    srv = "10.0.0.22"
    recs.append(_tcp(len(recs), t, client, srv, sport, 22, flags=0x02))
    recs.append(_tcp(len(recs), t + 0.001, srv, client, 22, sport, flags=0x12))
    recs.append(_tcp(len(recs), t + 0.002, client, srv, sport, 22))
    for k in range(pkts):
        a, b, sp, dp = (client, srv, sport, 22) if k % 2 == 0 else (srv, client, 22, sport)
        recs.append(_tcp(len(recs), t + 0.01 + k * 0.01, a, b, sp, dp, size=150, flags=0x18))
    te = t + 0.02 + pkts * 0.01
    recs.append(_tcp(len(recs), te, client, srv, sport, 22, flags=0x11))
    recs.append(_tcp(len(recs), te + 0.001, srv, client, 22, sport, flags=0x11))
    return recs


def test_encrypted_guessing_is_many_short_connections_to_one_service():
    guess: list = []
    for k in range(40):
        _ssh_session(guess, 10.0 + k * 0.5, "10.0.0.9", 50000 + k, 20)
    admin = _ssh_session([], 10.0, "10.0.0.8", 50000, 600)
    xg = new_extractor().transform(PacketBatch.from_records(guess))
    xa = new_extractor().transform(PacketBatch.from_records(admin))
    assert xg[-1, COL["svc_short_60s"]] > 0.5 and xa[-1, COL["svc_short_60s"]] < 0.15
    assert xg[-1, COL["pair_conns_60s"]] > 0.5 and xa[-1, COL["pair_conns_60s"]] < 0.15
    assert xg[-1, COL["flow_established"]] == 1 and xa[-1, COL["flow_established"]] == 1
    assert xg[-1, COL["flow_closed"]] == 1


def test_replies_without_requests_mark_reflection_not_ordinary_dns():
    victim = "10.0.0.50"
    refl = [_udp(i, 10.0 + i * 0.001, f"198.51.{i % 200}.{i % 7 + 1}", victim, 53, 30000 + i % 50, size=1200,
                 dns_flags=0x8180, dns_qry_name="x.example", dns_answers=20) for i in range(500)]
    xr = new_extractor().transform(PacketBatch.from_records(refl))
    assert xr[:, COL["flow_unsolicited"]].min() == 1
    assert xr[-1, COL["dst_unsolicited_share"]] > 0.9
    assert xr[-1, COL["dst_dns_answer_excess"]] > 0.3
    normal = []
    for i in range(100):
        normal.append(_udp(len(normal), 10.0 + i, victim, "10.0.0.1", 40000 + i, 53, dns_flags=0x0100,
                           dns_qry_name="time.example"))
        normal.append(_udp(len(normal), 10.01 + i, "10.0.0.1", victim, 53, 40000 + i, dns_flags=0x8180,
                           dns_qry_name="time.example", dns_answers=1))
    xn = new_extractor().transform(PacketBatch.from_records(normal))
    assert xn[:, COL["flow_unsolicited"]].max() == 0
    assert xn[-1, COL["dst_unsolicited_share"]] < 0.05
    assert abs(xn[-1, COL["dst_dns_answer_excess"]]) < 0.2


def test_capture_starting_mid_stream_is_not_a_reply_flood():
    """A download already under way when the capture starts: no SYN seen, the server speaks first;
    it is marked as such and not as unsolicited traffic."""
    recs = []
    for k in range(200):
        a, b, sp, dp = (("203.0.113.5", "10.0.0.7", 443, 51000) if (k + 1) % 3 else
                        ("10.0.0.7", "203.0.113.5", 51000, 443))
        recs.append(_tcp(k, 5.0 + k * 0.001, a, b, sp, dp, size=1514 if k % 3 else 66))
    X = new_extractor().transform(PacketBatch.from_records(recs))
    assert X[:, COL["flow_no_syn"]].min() == 1
    assert X[:, COL["flow_unsolicited"]].max() == 0
    assert X[0, COL["flow_by_initiator"]] == 0 and X[1, COL["flow_by_initiator"]] == 0
    assert X[2, COL["flow_by_initiator"]] == 1     # the client (ephemeral port) is the initiator


def test_address_plan_does_not_matter():
    """The same traffic with public, private, CGNAT or documentation addresses gives the same rows."""
    b = synthetic_packets(2000, seed=12)
    X = new_extractor().transform(b)
    for prefix in ("8.8.", "100.64.", "203.0."):
        cols = dict(b.columns)
        for name in ("ip_src", "ip_dst", "arp_src_ip", "arp_dst_ip", "dns_a"):
            cols[name] = np.array([v.replace("192.168.", prefix) for v in b[name]], dtype=object)
        np.testing.assert_allclose(new_extractor().transform(PacketBatch(cols)), X, rtol=1e-5, atol=1e-5)


def _arp(i, t, op, mac, src_ip, dst_ip, eth_dst="ff:ff:ff:ff:ff:ff"):
    return dict(frame_number=i + 1, time_epoch=t, frame_len=42, eth_src=mac, eth_dst=eth_dst, arp_opcode=op,
                arp_src_hw=mac, arp_src_ip=src_ip, arp_dst_hw="00:00:00:00:00:00" if op == 1 else "02:00:00:00:00:09",
                arp_dst_ip=dst_ip)


@pytest.mark.parametrize("size", [1, 3, 100])
def test_arp_replies_nobody_asked_for_are_marked_whatever_the_batching(size):
    """A reply to a request (from the asker, for the claimed address, within 10 s) is solicited; a
    poisoner's repeated replies are not, even when the capture starts mid-poisoning (no binding change
    to see), and the poisoner claims two addresses from one MAC."""
    gw, victim, evil = "02:00:00:00:00:01", "02:00:00:00:00:09", "02:00:00:00:00:66"
    recs = [_arp(0, 10.0, 1, victim, "192.168.1.9", "192.168.1.1"),
            _arp(1, 10.001, 2, gw, "192.168.1.1", "192.168.1.9", eth_dst=victim),
            _arp(2, 25.0, 2, gw, "192.168.1.1", "192.168.1.9", eth_dst=victim)]  # 15 s after the request
    for k in range(8):  # the poisoner: unsolicited replies every 2 s to both ends
        recs.append(_arp(3 + 2 * k, 30.0 + 2 * k, 2, evil, "192.168.1.1", "192.168.1.9", eth_dst=victim))
        recs.append(_arp(4 + 2 * k, 30.0 + 2 * k + 0.01, 2, evil, "192.168.1.9", "192.168.1.1", eth_dst=gw))
    b = PacketBatch.from_records(recs)
    X = _run(b, size)
    assert X[:3, COL["arp_unsolicited"]].tolist() == [0, 0, 1]
    assert X[3:, COL["arp_unsolicited"]].tolist() == [1] * 16
    assert X[-1, COL["relay_src_arp_unsolicited_30s"]] > X[1, COL["relay_src_arp_unsolicited_30s"]] + 2
    assert X[-1, COL["src_arp_addrs_60s"]] > X[1, COL["src_arp_addrs_60s"]] + 0.2  # two addresses vs one
    np.testing.assert_allclose(X, new_extractor().transform(b), rtol=1e-5, atol=1e-5)


def test_traffic_through_a_poisoner_is_linked_to_its_unsolicited_arp():
    """IP frames a poisoner forwards in another host's name (to or from the MAC that answers ARP nobody
    asked for, with an address bound to another MAC) carry that MAC's count; the same conversation via
    the real gateway before the poisoning, and the poisoner's own traffic as itself, do not."""
    gw, victim, evil = "02:00:00:00:00:01", "02:00:00:00:00:09", "02:00:00:00:00:66"
    ip = dict(frame_len=100, ip_version=4, ip_proto=17, udp_srcport=40000, udp_dstport=443)
    recs = [dict(ip, time_epoch=5.0, ip_src="192.168.1.9", ip_dst="93.184.216.34", eth_src=victim, eth_dst=gw),
            dict(ip, time_epoch=5.1, ip_src="93.184.216.34", ip_dst="192.168.1.9", eth_src=gw, eth_dst=victim),
            dict(ip, time_epoch=5.2, ip_src="192.168.1.66", ip_dst="93.184.216.34", eth_src=evil, eth_dst=gw)]
    recs += [_arp(k, 10.0 + k, 2, evil, "192.168.1.1", "192.168.1.9", eth_dst=victim) for k in range(5)]
    recs += [dict(ip, time_epoch=16.0, ip_src="192.168.1.9", ip_dst="93.184.216.34", eth_src=victim, eth_dst=evil),
             dict(ip, time_epoch=16.1, ip_src="93.184.216.34", ip_dst="192.168.1.9", eth_src=evil, eth_dst=victim),
             dict(ip, time_epoch=16.2, ip_src="192.168.1.66", ip_dst="93.184.216.34", eth_src=evil, eth_dst=gw),
             dict(ip, time_epoch=16.3, ip_src="192.168.1.7", ip_dst="93.184.216.34", eth_src="02:00:00:00:00:07",
                  eth_dst=gw)]
    X = new_extractor().transform(PacketBatch.from_records([dict(r, frame_number=i + 1) for i, r in enumerate(recs)]))
    src, dst = X[:, COL["relay_src_arp_unsolicited_30s"]], X[:, COL["relay_dst_arp_unsolicited_30s"]]
    assert (src[:3] == 0).all() and (dst[:3] == 0).all()
    assert dst[8] > 1.0 and src[8] == 0          # victim -> poisoner, addressed to the remote host
    assert src[9] > 1.0 and dst[9] == 0          # poisoner -> victim in the remote host's name
    assert src[10] == 0 and dst[10] == 0         # the poisoner's own traffic as itself
    assert src[11] == 0 and dst[11] == 0         # a bystander


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_poisoner_seen_from_its_victim_and_its_relayed_copies(size):
    """A forged reply from a null Ethernet source binds the ARP sender hardware address (what an ARP cache
    learns); the victim's frames to remote hosts go to that MAC while the replies come from the real
    gateway (a capture at the victim, the poisoner relaying one way): they carry the poisoner's count
    although the capture bound those hosts to the poisoner first. A poisoner relaying both ways re-sends
    each packet on the same link: the copy (same IP packet, another source MAC, TTL lowered) is marked
    and counted for that MAC; identical broadcasts of two DHCP clients are no copies; nothing is counted
    for traffic via the real gateway."""
    gw, victim, evil, other = "02:00:00:00:00:01", "02:00:00:00:00:09", "02:00:00:00:00:66", "02:00:00:00:00:07"
    ip = dict(frame_len=100, ip_version=4, ip_proto=6, tcp_srcport=40000, tcp_dstport=443, tcp_flags=0x18, tcp_len=46)
    recs = [dict(ip, time_epoch=1.0, ip_src="192.168.1.7", ip_dst="93.184.216.34", eth_src=other, eth_dst=gw),
            dict(ip, time_epoch=1.1, ip_src="93.184.216.34", ip_dst="192.168.1.7", eth_src=gw, eth_dst=other,
                 tcp_srcport=443, tcp_dstport=40000)]
    for k in range(3):  # forged "192.168.1.1 is at evil" from Ethernet source 00:00:00:00:00:00
        recs.append(dict(_arp(0, 2.0 + k, 2, "00:00:00:00:00:00", "192.168.1.1", "192.168.1.9", eth_dst=victim),
                         arp_src_hw=evil))
    for k, host in enumerate(("198.51.100.7", "198.51.100.8")):   # one way through the poisoner
        recs += [dict(ip, time_epoch=5.0 + k, ip_src="192.168.1.9", ip_dst=host, eth_src=victim, eth_dst=evil),
                 dict(ip, time_epoch=5.05 + k, ip_src=host, ip_dst="192.168.1.9", eth_src=gw, eth_dst=victim,
                      tcp_srcport=443, tcp_dstport=40000),
                 dict(ip, time_epoch=5.1 + k, ip_src="192.168.1.9", ip_dst=host, eth_src=victim, eth_dst=evil)]
    recs += [dict(ip, time_epoch=8.0, ip_src="192.168.1.9", ip_dst="203.0.113.5", eth_src=victim, eth_dst=evil,
                  ip_ttl=64),
             dict(ip, time_epoch=8.002, ip_src="192.168.1.9", ip_dst="203.0.113.5", eth_src=evil, eth_dst=gw,
                  ip_ttl=63)]
    dhcp = dict(frame_len=342, ip_version=4, ip_proto=17, udp_srcport=68, udp_dstport=67, ip_src="0.0.0.0",
                ip_dst="255.255.255.255", eth_dst="ff:ff:ff:ff:ff:ff")
    recs += [dict(dhcp, time_epoch=9.0, eth_src="02:00:00:00:00:31"), dict(dhcp, time_epoch=9.001, eth_src="02:00:00:00:00:32")]
    b = PacketBatch.from_records([dict(r, frame_number=i + 1) for i, r in enumerate(recs)])
    X = _run(b, size)
    dst = X[:, COL["relay_dst_arp_unsolicited_30s"]]
    assert (X[:2, COL["relay_src_arp_unsolicited_30s"]] == 0).all() and (dst[:2] == 0).all()
    assert X[4, COL["relay_src_arp_unsolicited_30s"]] > X[2, COL["relay_src_arp_unsolicited_30s"]] > 0
    assert (dst[[5, 7, 8, 10]] > 1.0).all()       # victim -> poisoner, in remote hosts' names
    assert (dst[[6, 9]] == 0).all()               # the real gateway's replies
    assert X[:, COL["relay_copy"]].tolist() == [0] * 12 + [1, 0, 0]
    assert X[12, COL["src_mac_relayed_30s"]] > 0.5 and X[12, COL["dst_mac_relayed_30s"]] == 0
    assert X[:12, COL["src_mac_relayed_30s"]].max() == 0 and X[13:, COL["src_mac_relayed_30s"]].max() == 0
    np.testing.assert_allclose(X, new_extractor().transform(b), rtol=1e-5, atol=1e-5)


def test_ipv6_extension_headers_do_not_hide_the_upper_layer():
    """THC denial6-style echo requests behind an AH / hop-by-hop header read as ICMPv6 (the upper
    layer tshark dissected), like the same packets without the header; an ICMP error quoting a TCP
    header stays ICMP; a header chain with no upper layer stays an unknown protocol."""
    base = dict(frame_len=118, ip_version=6, ip_src="2001:db8::66", ip_dst="2001:db8::5", eth_src="02:00:00:00:00:66",
                eth_dst="02:00:00:00:00:05")
    recs = [dict(base, time_epoch=1.0, ip_proto=58, icmp_type=128, icmp_code=0),
            dict(base, time_epoch=1.1, ip_proto=51, icmp_type=128, icmp_code=0),     # AH, then ICMPv6
            dict(base, time_epoch=1.2, ip_proto=0, icmp_type=128, icmp_code=0),      # hop-by-hop, then ICMPv6
            dict(base, time_epoch=1.3, ip_proto=0, tcp_srcport=40000, tcp_dstport=80, tcp_flags=0x02),
            dict(base, time_epoch=1.4, ip_proto=0),                                  # hop-by-hop + fragment only
            dict(base, time_epoch=1.5, ip_proto=58, icmp_type=1, icmp_code=4, tcp_srcport=80, tcp_dstport=40000)]
    X = new_extractor().transform(PacketBatch.from_records([dict(r, frame_number=i + 1) for i, r in enumerate(recs)]))
    assert X[:, COL["proto_icmpv6"]].tolist() == [1, 1, 1, 0, 0, 1]
    assert X[:, COL["icmp_echo_request"]].tolist() == [1, 1, 1, 0, 0, 0]
    assert X[:, COL["proto_tcp"]].tolist() == [0, 0, 0, 1, 0, 0]
    assert X[:, COL["proto_other_ip"]].tolist() == [0, 0, 0, 0, 1, 0]


@pytest.mark.parametrize("size", [1, 2, 5])
def test_arp_claims_count_the_same_whatever_the_batching(size):
    """An address claimed again after the 60 s window counts as claimed anew, in one batch or split."""
    mac = "02:00:00:00:00:66"
    recs = [_arp(i, t, 2, mac, ip, "192.168.1.9", eth_dst="02:00:00:00:00:09")
            for i, (t, ip) in enumerate([(0.0, "192.168.1.1"), (30.0, "192.168.1.1"), (70.0, "192.168.1.1"),
                                         (75.0, "192.168.1.2"), (200.0, "192.168.1.1")])]
    b = PacketBatch.from_records(recs)
    np.testing.assert_allclose(_run(b, size), new_extractor().transform(b), rtol=1e-5, atol=1e-5)


def _random_table_updates(seed: int, steps: int = 6):
    """Random (taus, idle, cap, [(keys, t, x), ...]): repeated keys, carries, expiry, caps, x in {0, 1, other}."""
    rng = np.random.default_rng(seed)
    taus = rng.choice([0.5, 1.0, 10.0, 30.0, 60.0], size=int(rng.integers(1, 8)))
    idle, cap = float(rng.choice([2.0, 50.0, 300.0])), int(rng.choice([4, 16, 1000]))
    t0, updates = 1000.0, []
    for _ in range(steps):
        n = int(rng.integers(1, 200))
        keys = rng.integers(0, int(rng.choice([3, 20, 500])), size=n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        t = t0 + np.sort(rng.random(n) * float(rng.choice([0.01, 5.0, 100.0])))
        t0 = float(t[-1])
        x = rng.random((n, len(taus)))
        x[rng.random(x.shape) < 0.6] = 0.0
        x[rng.random(x.shape) < 0.2] = 1.0
        x[rng.random(x.shape) < 0.05] = -0.0  # log(-0.0) is -inf too
        x[:, 0] *= float(rng.choice([1.0, 1500.0]))
        updates.append((keys, t, x))
    return taus, idle, cap, updates


def test_decay_table_kernel_is_built():
    from iotwatch.detector import _tables  # no skip: a missing build is a failure (dev.sh installs gcc)

    assert callable(_tables.decay_accumulate)


@pytest.mark.parametrize("seed", range(40))
def test_decay_table_kernel_matches_the_numpy_path_bit_for_bit(seed):
    """detector/_tables.c repeats the numpy path's float operations (skipping only log 0 = -inf inputs,
    which leave logaddexp unchanged): outputs and state are identical, not just close."""
    taus, idle, cap, updates = _random_table_updates(seed)
    fast, ref = DecayTable(taus, idle=idle, cap=cap), DecayTable(taus, idle=idle, cap=cap)
    ref.kernel = False
    for keys, t, x in updates:
        a, b = fast.update(keys, t, x), ref.update(keys, t, x)
        assert np.array_equal(a, b)
        assert np.array_equal(fast.keys, ref.keys) and np.array_equal(fast.last_t, ref.last_t)
        assert np.array_equal(fast.logs, ref.logs)


@pytest.mark.parametrize("seed", range(20))
def test_decay_table_kernel_on_event_counts_matches_the_numpy_path(seed):
    """Inputs all 0 or 1 (and -0.0): the kernel takes their logs itself (no np.log array), same bits."""
    taus, idle, cap, updates = _random_table_updates(seed)
    fast, ref = DecayTable(taus, idle=idle, cap=cap), DecayTable(taus, idle=idle, cap=cap)
    ref.kernel = False
    for keys, t, x in updates:
        x = np.where(x > 0.5, 1.0, np.where(x > 0.2, -0.0, 0.0)) if seed % 4 else x  # some steps not binary
        a, b = fast.update(keys, t, x), ref.update(keys, t, x)
        assert np.array_equal(a, b)
        assert np.array_equal(fast.keys, ref.keys) and np.array_equal(fast.logs, ref.logs)


@pytest.mark.parametrize("seed", range(20))
def test_count_table_kernel_matches_the_numpy_path_bit_for_bit(seed):
    """_tables.count_accumulate repeats CountTable's numpy sums (a cumsum across all groups, minus the
    sum before the group, plus the carry): outputs and state identical."""
    from iotwatch.detector.features import CountTable

    taus, idle, cap, updates = _random_table_updates(seed)
    fast, ref = CountTable(len(taus), idle=idle, cap=cap), CountTable(len(taus), idle=idle, cap=cap)
    ref.kernel = False
    for keys, t, x in updates:
        a, b = fast.update(keys, t, x), ref.update(keys, t, x)
        assert np.array_equal(a, b) and not (np.signbit(a) ^ np.signbit(b)).any()
        assert np.array_equal(fast.keys, ref.keys) and np.array_equal(fast.last_t, ref.last_t)
        assert np.array_equal(fast.sums, ref.sums)


@pytest.mark.parametrize("seed", range(20))
def test_state_merge_without_sorting_equals_sorting_the_union(seed):
    from iotwatch.detector.features import _merge_state, _merge_state_capped

    rng = np.random.default_rng(seed)
    pool = rng.permutation(np.arange(1, 400, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    na, nb = int(rng.integers(0, 150)), int(rng.integers(0, 150))
    old, new = np.sort(pool[:na]), np.sort(pool[na:na + nb])
    cols_old = [rng.random(na) * 100, rng.random((na, 3))]
    cols_new = [rng.random(nb) * 100 + 50, rng.random((nb, 3))]
    if seed % 2:  # whole-second times: ties of last use across the cap's cut
        cols_old[0], cols_new[0] = np.floor(cols_old[0] / 10) * 10, np.floor(cols_new[0] / 10) * 10
    keep = rng.random(na) < 0.7
    for cap in (1000, max(1, (na + nb) // 2), max(1, (na + nb) // 3)):
        k1, c1 = _merge_state(old, cols_old, keep, new, cols_new, 120.0, 60.0, cap)
        k2, c2 = _merge_state_capped(old, cols_old, keep, new, cols_new, 120.0, 60.0, cap)
        assert np.array_equal(k1, k2) and all(np.array_equal(a, b) for a, b in zip(c1, c2))
        assert np.all(k1[1:] > k1[:-1]) and len(k1) <= cap


@pytest.mark.parametrize("n,distinct", [(1, 1), (5, 2), (1023, 40), (1024, 3), (8192, 1), (8192, 3000), (20000, 60000)])
def test_fast_stable_argsort_is_numpys_stable_argsort(n, distinct):
    from iotwatch.detector.features import _stable_argsort

    rng = np.random.default_rng(n + distinct)
    k = rng.integers(0, distinct, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    assert np.array_equal(_stable_argsort(k), np.argsort(k, kind="stable"))


@pytest.mark.parametrize("n,distinct", [(1, 1), (7, 3), (1024, 3), (8192, 60), (8192, 8192), (20000, 60000)])
def test_group_kernel_is_the_stable_sort_grouping(monkeypatch, n, distinct):
    """_tables.group_keys (hash table + counting sort) groups exactly as numpy's stable argsort does."""
    from iotwatch.detector import _tables, features  # no skip: a missing build is a failure (dev.sh installs gcc)

    assert callable(_tables.group_keys)
    rng = np.random.default_rng(n + distinct)
    k = rng.integers(0, distinct, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    fast = features._group_by_key(k)
    monkeypatch.setattr(features, "GROUP_KERNEL", False)
    ref = features._group_by_key(k)
    assert all(np.array_equal(a, b) for a, b in zip(fast, ref))
    uk, first, inv = np.unique(k, return_index=True, return_inverse=True)
    assert np.array_equal(fast[2], uk) and np.array_equal(fast[0][fast[1]], first)
    assert np.array_equal(fast[3], inv.ravel())


def test_packet_block_string_caches_survive_being_cleared():
    """PacketBlock's per-string caches (address class, multicast MAC) are cleared past 65536 strings: a
    batch mixing strings cached before the clear and new ones is still classified (it raised KeyError)."""
    from iotwatch.detector.features import PacketBlock

    pb = PacketBlock()
    pb._group(np.array([f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(65540)], dtype=object))
    assert pb._group(np.array(["10.0.0.1", "224.0.0.251", "10.0.0.1"], dtype=object)).tolist() == [False, True, False]
    pb._per_string(np.array([f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}" for i in range(65540)],
                            dtype=object), pb._mac_group, pb._is_group_mac, bool)
    got = pb._per_string(np.array(["02:00:00:00:00:01", "01:00:5e:00:00:fb"], dtype=object), pb._mac_group,
                         pb._is_group_mac, bool)
    assert got.tolist() == [False, True]


def test_extractor_without_the_group_kernel_gives_the_same_features(monkeypatch):
    """The numpy grouping (stable argsort) and _tables.group_keys give the extractor the same values."""
    from iotwatch.detector import features

    stream = synthetic_packets(3000, seed=11)

    def run():
        ext = features.BehaviourExtractor()
        return np.concatenate([ext.transform(stream.slice(s, s + 700)) for s in range(0, len(stream), 700)])

    fast = run()
    monkeypatch.setattr(features, "GROUP_KERNEL", False)
    assert np.array_equal(fast, run())


@pytest.mark.parametrize("shape", [(225, 8192), (225, 1), (3, 257), (1, 5), (0, 4)])
def test_tiled_transpose_is_the_transpose(shape):
    from iotwatch.detector import _tables, features  # no skip: a missing build is a failure (dev.sh installs gcc)

    a = np.random.default_rng(1).random(shape).astype(np.float32)
    b = np.empty(shape[::-1], dtype=np.float32)
    _tables.transpose32(a, b)
    assert np.array_equal(b, a.T)


def test_group_kernel_gives_up_on_colliding_keys():
    """Keys that all land in one slot of group_keys' table (i * C^-1: C * key = i, high bits 0) make it
    give up after a bounded number of probes; _group_by_key then sorts with numpy, the same result."""
    from iotwatch.detector import _tables, features  # no skip: a missing build is a failure (dev.sh installs gcc)

    assert callable(_tables.group_keys)
    c_inv = pow(0x9E3779B97F4A7C15, -1, 1 << 64)
    rng = np.random.default_rng(5)
    k = np.array([(int(i) * c_inv) % (1 << 64) for i in rng.integers(0, 3000, 6000)], dtype=np.uint64)
    assert features._group_kernel(k) is None
    order, heads, uk, inv = features._group_by_key(k)
    assert np.array_equal(order, np.argsort(k, kind="stable")) and np.array_equal(uk, np.unique(k))
    assert np.array_equal(uk[inv], k) and np.array_equal(order[heads], np.unique(k, return_index=True)[1])


def test_recycling_allocator_reuses_blocks_and_hands_out_zeroed_ones(monkeypatch):
    """_tables' numpy allocator (on while transform runs): a freed block of the cached range comes back
    for the next request of its size class, np.zeros on a recycled block is all zeros, the cache keeps
    to its byte limit, and arrays allocated under it stay valid after the default handler is restored."""
    from iotwatch.detector import _tables, features
    from iotwatch.detector.features import _recycling_on, _recycling_restore

    monkeypatch.setattr(features, "RECYCLE_MEMORY", True)    # (off by default: IOTWATCH_FEATURE_CACHE_MB)
    name = (np._core if hasattr(np, "_core") else np.core).multiarray.get_handler_name
    default = name()
    _tables.recycling_clear(1 << 20)  # 1 MiB limit for this test
    try:
        before = _tables.recycling_stats()
        previous = _recycling_on()
        try:
            assert name() == "iotwatch_recycling_allocator"
            a = np.full(40_000, 7.0)     # 320 KB: in the cached range
            addr = a.__array_interface__["data"][0]
            del a
            assert _tables.recycling_stats()["blocks"] == before["blocks"] + 1
            z = np.zeros(39_000)         # the same 64 KiB class: the block just freed, cleared
            assert z.__array_interface__["data"][0] == addr and not z.any()
            big = [np.ones(30_000) for _ in range(6)]   # 6 x 256 KB freed into a 1 MiB cache
            small = np.ones(100)                         # below the range: plain malloc, never cached
        finally:
            _recycling_restore(previous)
        assert name() == default
        del big
        stats = _tables.recycling_stats()
        assert stats["bytes"] <= stats["limit"] == 1 << 20 and stats["blocks"] <= 4
        assert stats["hits"] >= before["hits"] + 1
        assert z.sum() == 0 and small.sum() == 100.0  # still valid, freed through their own handler
        del z, small
    finally:
        _tables.recycling_clear(_tables.recycling_stats()["default_limit"])


def test_features_do_not_depend_on_the_allocator(monkeypatch):
    from iotwatch.detector import _tables, features

    b = synthetic_packets(20_000, seed=5)
    monkeypatch.setattr(features, "RECYCLE_MEMORY", True)
    _tables.recycling_clear(48 << 20)
    try:
        with_cache = _run(b, 8192)
        assert _tables.recycling_stats()["hits"] > 0          # (it did run)
    finally:
        _tables.recycling_clear(_tables.recycling_stats()["default_limit"])
    monkeypatch.setattr(features, "RECYCLE_MEMORY", False)
    assert np.array_equal(with_cache, _run(b, 8192))


@pytest.mark.parametrize("value, limit", [("", 0), ("32", 32 << 20), ("lots", 0), ("-5", 0)])
def test_the_recycling_allocator_is_off_unless_iotwatch_feature_cache_mb_sets_its_limit(value, limit):
    import os
    import subprocess
    import sys

    env = {**os.environ, "IOTWATCH_FEATURE_CACHE_MB": value}
    out = subprocess.run([sys.executable, "-c", "from iotwatch.detector import features, _tables; "
                          "print(features.RECYCLE_MEMORY, _tables.recycling_stats()['limit'])"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(limit > 0), str(limit if limit else 48 << 20)]


@pytest.mark.parametrize("shape", [(7,), (300,), (8192,), (4096, 18)])
def test_exp_without_the_slow_path_is_numpys_exp_bit_for_bit(shape):
    """features._exp routes -inf and logs <= -800 around numpy's exp (their exp is +0.0): the same bits as
    np.exp, NaN, overflow, the subnormal range and column views included."""
    from iotwatch.detector.features import _exp

    rng = np.random.default_rng(len(shape) * 1000 + shape[0])
    a = rng.normal(0.0, 400.0, shape)
    a[rng.random(shape) < 0.3] = -np.inf
    a[rng.random(shape) < 0.01] = np.nan
    flat = a.reshape(-1)
    flat[:6] = [-800.0, np.nextafter(-800.0, 0.0), -745.1, -745.2, 710.0, -0.0]
    for x in (a, a[:, 3] if a.ndim == 2 else a[::2]):
        with np.errstate(all="ignore"):
            want, got = np.exp(x), _exp(x)
        assert got.shape == want.shape
        assert np.array_equal(got.view(np.uint64), np.ascontiguousarray(want).view(np.uint64))


@pytest.mark.parametrize("seed", range(12))
def test_state_merge_kernel_equals_the_numpy_merge(seed, monkeypatch):
    """_tables.merge_state (one pass) gives _merge_state's numpy result: keys and every column (float64
    1-d and 2-d, uint64 values as BindingTable keeps), with expiry and the cap."""
    from iotwatch.detector import features

    rng = np.random.default_rng(100 + seed)
    pool = rng.permutation(np.arange(1, 3000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    na, nb = int(rng.integers(1, 1200)), int(rng.integers(1, 1200))
    old, new = np.sort(pool[:na]), np.sort(pool[na:na + nb])
    cols_old = [rng.random(na) * 100, rng.random((na, 5)), rng.integers(0, 2**63, na).astype(np.uint64)]
    cols_new = [rng.random(nb) * 100 + 50, rng.random((nb, 5)), rng.integers(0, 2**63, nb).astype(np.uint64)]
    keep = rng.random(na) < 0.8
    for cap in (10_000, (na + nb) // 2 + 1):
        k1, c1 = features._merge_state(old, cols_old, keep, new, cols_new, 120.0, 60.0, cap)
        monkeypatch.setattr(features, "MERGE_KERNEL", False)
        k2, c2 = features._merge_state(old, cols_old, keep, new, cols_new, 120.0, 60.0, cap)
        monkeypatch.setattr(features, "MERGE_KERNEL", True)
        assert np.array_equal(k1, k2) and len(c1) == len(c2) == 3
        assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(c1, c2))


def _ftp_guess(recs, t, client, srv, sport):
    """One hydra-style FTP guess: handshake, USER/PASS, 530, FIN both ways."""
    recs.append(_tcp(len(recs), t, client, srv, sport, 21, flags=0x02))
    recs.append(_tcp(len(recs), t + 0.001, srv, client, 21, sport, flags=0x12))
    recs.append(_tcp(len(recs), t + 0.002, client, srv, sport, 21))
    recs.append(_tcp(len(recs), t + 0.01, client, srv, sport, 21, size=80, flags=0x18))
    recs.append(dict(_tcp(len(recs), t + 0.02, srv, client, 21, sport, size=90, flags=0x18), ftp_code=530))
    recs.append(_tcp(len(recs), t + 0.03, client, srv, sport, 21, flags=0x11))
    recs.append(_tcp(len(recs), t + 0.031, srv, client, 21, sport, flags=0x11))
    return recs


def test_failed_logins_count_for_the_guessed_service_not_the_clients_other_traffic():
    """A client guessing FTP passwords on a server while it also holds slow HTTP connections to that
    server (slowloris): the pair counts the failed logins on both, the (client, service) block only on
    FTP; another client of the same FTP server sees none of them."""
    client, srv, other = "10.0.0.66", "10.0.0.5", "10.0.0.7"
    recs: list = []
    for k in range(30):
        _ftp_guess(recs, 10.0 + k * 0.5, client, srv, 50000 + k)
    http = []  # keep-alive lines on a connection opened before the capture (no SYN seen), every second
    for k in range(20):
        http.append(_tcp(0, 10.2 + k, client, srv, 41000, 80, size=80, flags=0x18))
        http.append(_tcp(0, 10.21 + k, srv, client, 80, 41000))
    own = [_tcp(0, 24.3, other, srv, 52000, 21, flags=0x02), _tcp(0, 24.301, srv, other, 21, 52000, flags=0x12)]
    recs = sorted(recs + http + own, key=lambda r: r["time_epoch"])
    recs = [dict(r, frame_number=i + 1) for i, r in enumerate(recs)]
    X = new_extractor().transform(PacketBatch.from_records(recs))
    is_http = np.array([80 in (r["tcp_srcport"], r["tcp_dstport"]) for r in recs])
    is_other = np.array([other in (r["ip_src"], r["ip_dst"]) for r in recs])
    late = np.array([r["time_epoch"] > 20 for r in recs])
    ftp = ~is_http & ~is_other
    assert X[is_http & late, COL["pair_authfail_30s"]].min() > 2.0      # the pair mixes them...
    assert X[is_http, COL["cs_authfail_30s"]].max() == 0                 # ...the HTTP service has none
    assert X[is_http, COL["cs_short_60s"]].max() == 0
    assert X[is_http, COL["cs_authfail_per_conn"]].max() == 0
    assert X[ftp & late, COL["cs_authfail_30s"]].min() > 2.0
    assert X[ftp & late, COL["cs_short_60s"]].min() > 0.4
    assert X[ftp & late, COL["cs_authfail_per_conn"]].min() > 0.8
    assert X[ftp & late, COL["cs_conns_60s"]].min() > X[is_http, COL["cs_conns_60s"]].max()
    assert X[is_other, COL["cs_authfail_30s"]].max() == 0 and X[is_other, COL["cs_conns_60s"]].max() < 0.2
