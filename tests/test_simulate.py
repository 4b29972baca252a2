"""The synthetic lab (`iotwatch simulate`): determinism, labels, Wireshark validity, hard negatives.

Generation speed is measured in bench/ and reported, never asserted here.
"""
from __future__ import annotations

import csv
import json
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from iotwatch.captures.sim import simulate as S
from iotwatch.captures.errors import InputError
from iotwatch.captures.labels import LabelSet
from iotwatch.captures.pcapfile import read_packets
from iotwatch.commands.simulate import main as simulate_cmd
from iotwatch.main import main as iotwatch_main
from sim_shapes import EXACT_BY_TOOL, REFS, compare, read_ref, shape, simulated_shape

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "captures" / "demo" / "demo.pcapng"
DEMO_LABELS = ROOT / "captures" / "demo" / "demo.pcapng.labels.csv"


def read_labels(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["frame_number", "label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    return [r[1] for r in rows[1:]]


def comment_fields(comment: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in comment.split())


@pytest.fixture(scope="module")
def acceptance_run(tmp_path_factory):
    """The issue's acceptance command: `iotwatch simulate --out DIR --seed 1 --duration 10m`."""
    out = tmp_path_factory.mktemp("sim10m")
    rc = iotwatch_main(["simulate", "--out", str(out), "--seed", "1", "--duration", "10m"])
    assert rc == 0
    pcap = out / "home-seed1.pcapng"
    return pcap, read_labels(Path(str(pcap) + ".labels.csv")), read_packets(pcap)


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim2m")
    res = S.simulate(out, seed=3, duration_us=120 * S.SECOND, devices=8, scenario="home")
    return res


@pytest.mark.slow
def test_acceptance_command_has_every_class(acceptance_run, capsys):
    pcap, labels, packets = acceptance_run
    counts = Counter(labels)
    assert set(counts) == set(S.CLASSES), counts
    assert len(labels) == len(packets)
    assert counts["normal"] > len(labels) // 3  # a home, not an attack trace


def test_summary_line_names_classes_file_and_speed(tmp_path, capsys):
    rc = iotwatch_main(["simulate", "--out", str(tmp_path), "--seed", "5", "--duration", "30s", "--devices", "4",
                        "--attacks", "recon"])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    line = out[0]
    assert str(tmp_path / "home-seed5.pcapng") in line and "packets/s" in line
    for c in S.CLASSES:
        assert f"{c}=" in line
    labels = read_labels(tmp_path / "home-seed5.pcapng.labels.csv")
    assert set(labels) <= {"normal", "recon"} and "recon" in labels


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path):
    runs = []
    for d, seed in (("a", 11), ("b", 11), ("c", 12)):
        res = S.simulate(tmp_path / d, seed=seed, duration_us=60 * S.SECOND, devices=6, scenario="demo", name="x")
        runs.append((res.pcap.read_bytes(), res.labels.read_bytes()))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
    # different seeds also give a different home (addresses, MACs), not just other timings
    ips = [{f[26:30] for _, f, _ in read_packets(tmp_path / d / "x.pcapng") if f[12:14] == b"\x08\x00"} for d in "ac"]
    assert ips[0] != ips[1]


def test_bundled_demo_regenerates_from_documented_command(tmp_path):
    cmd = next(line.strip() for line in S.__doc__.splitlines() if "--scenario demo" in line)
    argv = cmd.split()[2:]  # drop "iotwatch simulate"
    argv[argv.index("--out") + 1] = str(tmp_path)
    assert simulate_cmd(argv) == 0
    assert (tmp_path / "demo.pcapng").read_bytes() == DEMO.read_bytes()
    assert (tmp_path / "demo.pcapng.labels.csv").read_bytes() == DEMO_LABELS.read_bytes()


def test_demo_is_small_and_has_every_class():
    assert DEMO.stat().st_size <= 2_000_000
    counts = Counter(read_labels(DEMO_LABELS))
    assert set(counts) == set(S.CLASSES), counts
    assert min(counts.values()) >= 20
    # the shared label loader finds the sidecar and agrees with it
    ls = LabelSet.load(list(S.CLASSES), capture=DEMO)
    assert ls.sidecar_path == DEMO_LABELS and len(ls.sidecar) == sum(counts.values())


@pytest.mark.parametrize("which", ["demo", "home"])
def test_csv_and_comments_agree(which, small_home):
    pcap = DEMO if which == "demo" else small_home.pcap
    labels = read_labels(Path(str(pcap) + ".labels.csv"))
    comments = [comment_fields(c) for _, _, c in read_packets(pcap)]
    assert len(comments) == len(labels)
    assert [c["label"] for c in comments] == labels
    assert all(c.get("activity") for c in comments)


def test_timestamps_ordered_and_frames_sane(small_home):
    pkts = read_packets(small_home.pcap)
    ts = [t for t, _, _ in pkts]
    assert ts == sorted(ts)
    assert all(42 <= len(f) <= 1514 for _, f, _ in pkts)
    assert (ts[-1] - ts[0]) <= 120 * S.SECOND


def _tshark(args: list[str]) -> str:
    return subprocess.run(["tshark", *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("which", ["demo", "home", "acceptance"])
@pytest.mark.slow
def test_wireshark_sees_no_malformed_frames_errors_or_bad_checksums(which, request):
    """The bundled demo, a small home and the issue's acceptance capture (seed 1, 10 minutes)."""
    if which == "demo":
        pcap = str(DEMO)
    elif which == "home":
        pcap = str(request.getfixturevalue("small_home").pcap)
    else:
        pcap = str(request.getfixturevalue("acceptance_run")[0])
    bad = _tshark(["-r", pcap, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                   "-o", "udp.check_checksum:TRUE", "-Y",
                   "_ws.malformed || _ws.expert.severity == error || ip.checksum.status == 0 || "
                   "tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || "
                   "icmpv6.checksum.status == 0", "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info"])
    assert bad.strip() == ""
    n = int(_tshark(["-r", pcap, "-T", "fields", "-e", "frame.number"]).split()[-1])
    assert n == len(read_labels(Path(pcap + ".labels.csv")))
    info = subprocess.run(["capinfos", "-M", "-o", "-c", pcap], check=True, capture_output=True, text=True).stdout
    assert "Strict time order:   True" in info and f"Number of packets:   {n}" in info


@pytest.mark.slow
def test_hard_negatives_are_present_and_normal(acceptance_run):
    _, labels, packets = acceptance_run
    acts: dict[str, Counter] = defaultdict(Counter)
    per_sec: Counter = Counter()
    for (t, frame, comment), label in zip(packets, labels):
        c = comment_fields(comment)
        acts[c["activity"]][label] += 1
        if c["activity"] == "rtsp-rtp":
            per_sec[(frame[6:12], t // S.SECOND)] += 1
    for act in ("rtsp-rtp", "camera-clip-upload", "hub-ping", "hub-poll", "firmware", "dns", "arp", "mdns"):
        assert set(acts[act]) == {"normal"}, (act, acts[act])
    # the camera stream is a high-rate normal flow (hard negative for dos) ...
    assert max(per_sec.values()) >= 40
    # ... the clip upload is a bulk upload to a known cloud host (hard negative for exfiltration)
    assert acts["camera-clip-upload"]["normal"] >= 300


@pytest.mark.slow
def test_attack_labels_cover_victim_replies(small_home, acceptance_run):
    _, labels, packets = acceptance_run
    by_class_src: dict[str, set] = defaultdict(set)
    for (_, frame, _), label in zip(packets, labels):
        by_class_src[label].add(frame[6:12])
    # every attack class has packets from more than one MAC (attacker + victims answering)
    for c in S.ATTACK_FAMILIES:
        assert len(by_class_src[c]) >= 2, c


@pytest.mark.parametrize("argv,needle", [
    (["--out", "{tmp}", "--duration", "ten minutes"], "--duration"),
    (["--out", "{tmp}", "--duration", "1s"], "--duration"),
    (["--out", "{tmp}", "--attacks", "recon,fuzzing"], "fuzzing"),
    (["--out", "{tmp}", "--scenario", "office"], "office"),
    (["--out", "{tmp}", "--devices", "1"], "--devices"),
    (["--out", "{tmp}", "--seed", "x"], "--seed"),
    (["--seed", "1"], "--out"),
    (["--out", "{tmp}", "--variant-cycle", "-1"], "--variant-cycle"),
    (["--out", "{tmp}/file.txt/sub"], "cannot create"),
])
def test_bad_arguments_are_one_line_input_errors(argv, needle, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(InputError) as ei:
        simulate_cmd(argv)
    assert needle in str(ei.value) and "\n" not in str(ei.value)
    assert iotwatch_main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iotwatch: error:")


def test_unwritable_labels_file_is_named(tmp_path):
    (tmp_path / "x.pcapng.labels.csv").mkdir()  # the labels path cannot be opened for writing
    with pytest.raises(InputError) as ei:
        S.simulate(tmp_path, seed=1, duration_us=60 * S.SECOND, name="x")
    assert "x.pcapng.labels.csv" in str(ei.value) and "\n" not in str(ei.value)


# ----------------------------------------------------------------------------- simulated vs real tools


@pytest.mark.parametrize("tool", sorted(REFS))
def test_simulated_attack_has_the_real_tools_shape(tool, tmp_path):
    """Flags, windows, TCP options, TTL range, DF, IP ID and port/sequence patterns of each simulated
    tool match a stored field table of the real tool (tests/data/sim_refs, see docs/sim_vs_real.md)."""
    argv = json.loads((Path(__file__).parent / "data" / "sim_refs" / "index.json").read_text())[tool]["argv"]
    real = shape(read_ref(tool))
    sim = simulated_shape(tool, tmp_path, argv)
    assert real and sim
    assert compare(sim, real, EXACT_BY_TOOL[tool]) == []
    # the comparison is not vacuous: at least the protocol set is checked for every tool
    assert "probe.protocols" in EXACT_BY_TOOL[tool] and real["probe.protocols"] == sim["probe.protocols"]


def test_packet_builders_write_valid_ipv6_tcp_udp_icmpv6_and_dns_mqtt_coap(tmp_path):
    """The builders the simulator does not exercise on every run (IPv6 transport) and the
    application encoders, dissected by tshark with checksum validation."""
    from iotwatch.captures.sim import frames as P
    from iotwatch.captures.sim.writer import PcapngWriter

    a, b = P.mac("02:00:00:00:00:01"), P.mac("02:00:00:00:00:02")
    s6, d6 = P.ip6("2001:db8::1"), P.ip6("2001:db8::2")
    s4, d4 = P.ip4("192.0.2.1"), P.ip4("192.0.2.2")
    frames = [
        P.tcp6_frame(b, a, s6, d6, 64, 7, 40000, 443, 1, 0, P.SYN, 64800,
                     P.tcp_options(mss=1440, sack_perm=True, ts=(1, 0), wscale=7)),
        P.udp6_frame(b, a, s6, d6, 64, 5353, 5353, P.dns_message(0, 0, [P.dns_question("_hap._tcp.local", P.DNS_PTR)])),
        P.icmp6_frame(b, a, s6, d6, 64, 128, 0, P.icmp_echo(1, 1) + b"abc"),  # odd length
        P.udp4_frame(b, a, s4, d4, 64, 1, False, 5683, 5683,
                     P.coap(P.COAP_CON, P.COAP_GET, 1, b"\x01\x02", P.coap_uri("/a/b"))),
        P.tcp4_frame(b, a, s4, d4, 64, 2, True, 40001, 1883, 1, 1, P.ACK | P.PSH, 502,
                     payload=P.mqtt_connect(b"x", 60, user=b"u", password=b"p")),
        P.udp4_frame(b, a, s4, d4, 64, 3, False, 40002, 53, P.dns_message(
            9, P.DNS_RESPONSE_FLAGS, [P.dns_question("a.example.com", P.DNS_A)],
            [P.dns_rr(P.PTR_TO_QNAME, P.DNS_A, d4), P.dns_rr(P.PTR_TO_QNAME, P.DNS_TXT, P.dns_txt(b"x" * 300))])),
    ]
    path = tmp_path / "builders.pcapng"
    with open(path, "wb") as fh:
        w = PcapngWriter(fh)
        for i, f in enumerate(frames):
            w.write(1_700_000_000_000_000 + i, f)
        w.close()
    out = _tshark(["-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-T", "fields",
                   "-e", "frame.protocols", "-e", "tcp.checksum.status", "-e", "udp.checksum.status",
                   "-e", "icmpv6.checksum.status", "-e", "_ws.malformed", "-E", "occurrence=f"])
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(frames)
    expected = ("ipv6:tcp", "ipv6:udp:mdns", "ipv6:icmpv6", "ip:udp:coap", "ip:tcp:mqtt", "ip:udp:dns")
    for row, proto in zip(rows, expected):
        assert proto in row[0], (proto, row)
        assert "0" not in row[1:4] and "1" in row[1:4], row  # a checksum was verified and none is bad
        assert row[4] == "", row


# ----------------------------------------------------------------------------- the wider space (issue 12)
from sim_shapes import simulate_wide  # noqa: E402

BAD_FRAMES = ("_ws.malformed || _ws.expert.severity == error || ip.checksum.status == 0 || tcp.checksum.status == 0 || "
              "udp.checksum.status == 0 || icmp.checksum.status == 0 || icmpv6.checksum.status == 0")


def _bad_frames(pcap: Path) -> str:
    return _tshark(["-r", str(pcap), "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                    "-o", "udp.check_checksum:TRUE", "-Y", BAD_FRAMES, "-T", "fields", "-e", "frame.number",
                    "-e", "frame.comment", "-e", "_ws.col.Info"]).strip()


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """Every new attack kind and benign look-alike once, in a home with DoH and a CGNAT address plan."""
    pcap = tmp_path_factory.mktemp("wide") / "wide.pcapng"
    expected = simulate_wide(pcap)
    packets = read_packets(pcap)
    return pcap, expected, packets, [comment_fields(c) for _, _, c in packets]


@pytest.mark.slow
def test_every_new_kind_labels_its_packets(wide):
    _, expected, _, comments = wide
    seen: dict[str, Counter] = defaultdict(Counter)
    for c in comments:
        seen[c["activity"]][c["label"]] += 1
    for activity, label in expected.items():
        assert set(seen[activity]) == {label}, (activity, seen[activity])
        assert seen[activity][label] >= 5, (activity, seen[activity])


@pytest.mark.slow
def test_new_kinds_dissect_cleanly(wide):
    assert _bad_frames(wide[0]) == ""


def _rows(pcap: Path, flt: str, *fields: str) -> list[list[str]]:
    out = _tshark(["-r", str(pcap), "-Y", flt, "-T", "fields", "-E", "occurrence=f", *sum((["-e", f] for f in fields), [])])
    return [line.split("\t") for line in out.splitlines() if line]


def _tcp4(f: bytes) -> bool:
    return f[12:14] == b"\x08\x00" and f[23] == 6


@pytest.mark.slow
def test_new_kinds_follow_the_real_tools(wide):
    """Facts of the real tools that the wider kinds must keep (docs/sim_vs_real.md)."""
    pcap, _, packets, comments = wide
    by_act: dict[str, list[bytes]] = defaultdict(list)
    times: dict[str, list[int]] = defaultdict(list)
    for (t, frame, _), c in zip(packets, comments):
        by_act[c["activity"]].append(frame)
        times[c["activity"]].append(t)
    # zmap: IP ID 54321, TTL 255, window 65535 on every probe; masscan: TTL 255, window 1024
    zmap = [f for f in by_act["zmap-sweep"] if _tcp4(f) and f[47] == 0x02]
    assert zmap and all(f[18:20] == (54321).to_bytes(2, "big") and f[22] == 255 and f[48:50] == b"\xff\xff"
                        for f in zmap)
    masscan = [f for f in by_act["masscan-sweep"] if _tcp4(f) and f[47] == 0x02]
    assert masscan and all(f[22] == 255 and f[48:50] == (1024).to_bytes(2, "big") for f in masscan)
    # nmap scan kinds: the probe flags of -sS/-sA/-sF/-sX/-sN, -sT completes handshakes
    flags = {"sS": 0x02, "sA": 0x10, "sF": 0x01, "sX": 0x29, "sN": 0x00}
    for kind, fl in flags.items():
        probes = Counter(f[47] for f in by_act[f"nmap-{kind}-T4"] if _tcp4(f) and f[22] in range(37, 60))
        assert probes.most_common(1)[0][0] == fl, (kind, probes)
    # -T5 --min-rate 20000: at least 10k probes per second; -T1: 15 s between probes
    t5 = times["nmap-sS-T5"]
    assert len(t5) > 1000 and len(t5) / ((t5[-1] - t5[0]) / S.SECOND) >= 10_000
    t1 = [t for t, f in zip(times["nmap-sS-T1"], by_act["nmap-sS-T1"]) if _tcp4(f) and f[47] == 0x02
          and f[22] in range(37, 60)]
    assert min(b - a for a, b in zip(t1, t1[1:])) >= 15 * S.SECOND
    # reflection: the victim never sends a UDP request; reflected answers come from many sources
    for proto in ("dns", "ntp", "snmp", "ssdp", "coap", "memcached", "chargen"):
        frames = by_act[f"reflection-{proto}"]
        victim = Counter(f[30:34] for f in frames).most_common(1)[0][0]
        assert not [f for f in frames if f[26:30] == victim and f[23] == 17], proto
        assert len({f[26:30] for f in frames if f[30:34] == victim}) >= 10, proto
    # DNS amplification: answers above the MTU arrive as IP fragments (Wireshark reassembles them)
    assert any(f[20] & 0x20 for f in by_act["reflection-dns"])
    # encrypted SSH guessing: many short connections, no plaintext failure reply from the server
    for tool in ("hydra", "medusa", "ncrack", "patator", "metasploit"):
        frames = by_act[f"ssh-guess-{tool}"]
        assert sum(1 for f in frames if _tcp4(f) and f[47] == 0x02) >= 3, tool
        assert not any(b"denied" in f or b"incorrect" in f or b"failed" in f.lower() for f in frames), tool
    # DoH home: no plain DNS from the hosts, TLS to the DoH resolver instead
    assert not [c for c in comments if c["activity"] == "dns"]
    doh = by_act["doh"]
    assert doh and all(443 in (int.from_bytes(f[34:36], "big"), int.from_bytes(f[36:38], "big"))
                       or 853 in (int.from_bytes(f[34:36], "big"), int.from_bytes(f[36:38], "big")) for f in doh)
    # IPv6 variants really run over IPv6 (global addresses, MSS 1440 on SYNs)
    for act in ("nmap-sS-T4-v6", "nmap-sT-T4-v6", "ssh-guess-hydra-v6", "ssh-guess-patator-v6", "web-v6"):
        frames = by_act[act]
        assert frames and all(f[12:14] == b"\x86\xdd" for f in frames), act
        assert all(f[22] & 0xE0 == 0x20 and f[38] & 0xE0 == 0x20 for f in frames), act  # 2000::/3
    # DHCP starvation: DISCOVERs from many different client MACs
    starv = by_act["dhcp-starvation-yersinia"]
    assert len({f[6:12] for f in starv if f[12:14] == b"\x08\x00" and f[14 + 20 + 8] == 1}) >= 50


def test_wide_kinds_are_deterministic(tmp_path):
    a, b = tmp_path / "a.pcapng", tmp_path / "b.pcapng"
    simulate_wide(a, seed=3, dns="hidden")
    simulate_wide(b, seed=3, dns="hidden")
    assert a.read_bytes() == b.read_bytes()


@pytest.fixture(scope="module")
def varied_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("varied")
    res = S.simulate(out, seed=21, duration_us=150 * S.SECOND, devices=8, scenario="varied")
    return res


def test_varied_scenario_has_every_class_and_dissects_cleanly(varied_run):
    labels = read_labels(varied_run.labels)
    assert set(labels) == set(S.CLASSES), Counter(labels)
    assert _bad_frames(varied_run.pcap) == ""


def test_varied_episode_records_match_the_labels(varied_run):
    """<capture>.episodes.json of a varied home: every attack frame belongs to one episode, the
    window's first/last frames carry its class, the declared hosts are there."""
    labels = read_labels(varied_run.labels)
    doc = json.loads(Path(str(varied_run.pcap) + ".episodes.json").read_text())
    recs = doc["episodes"]
    assert recs and len(recs) == len(varied_run.episodes)
    written = [r for r in recs if r["packets"]]
    assert len(written) >= len(S.ATTACK_FAMILIES)
    for r in written:
        assert labels[r["first_frame"] - 1] == r["class"] and labels[r["last_frame"] - 1] == r["class"], r
        assert r["start"] <= r["end"] and r["kind"] and r["tool"]
        d = r["declared"]
        if d.get("attacker") is not None:
            assert {"ip", "mac", "name", "local"} <= set(d["attacker"])
        if r["kind"].startswith("reflection"):
            assert d["attacker"] is None and d["reflector_count"] >= 5 and r["attacker"] is None
    per_family = Counter(labels)
    for fam in S.ATTACK_FAMILIES:  # every attack frame belongs to one recorded episode
        assert sum(r["packets"] for r in recs if r["class"] == fam) == per_family[fam], fam


def test_varied_is_deterministic_and_draws_other_homes(tmp_path):
    runs = [S.simulate(tmp_path / d, seed=s, duration_us=40 * S.SECOND, devices=5, scenario="varied", name="x")
            for d, s in (("a", 4), ("b", 4), ("c", 5))]
    assert runs[0].pcap.read_bytes() == runs[1].pcap.read_bytes()
    assert runs[0].labels.read_bytes() == runs[1].labels.read_bytes()
    assert runs[0].pcap.read_bytes() != runs[2].pcap.read_bytes()


def test_address_plans_and_dns_modes_vary_per_seed():
    from iotwatch.captures.sim.variety import draw_plan
    plans = [draw_plan(s, 600 * S.SECOND) for s in range(40)]
    firsts = {p.prefix.split(".")[0] for p in plans}
    assert {"192", "10", "172", "100"} <= firsts and firsts - {"192", "10", "172", "100"}
    assert {p.dns for p in plans} >= {"router", "hidden", "doh", "mixed"}
    assert len({p.cut_us for p in plans}) > 20 and any(p.cut_us == 0 for p in plans)


def test_start_offset_cuts_the_start_and_keeps_the_duration(tmp_path):
    full = S.simulate(tmp_path / "a", seed=9, duration_us=60 * S.SECOND, devices=5, scenario="home", name="x")
    cut = S.simulate(tmp_path / "b", seed=9, duration_us=60 * S.SECOND, devices=5, scenario="home", name="x",
                     start_offset_us=30 * S.SECOND)
    t_full = [t for t, _, _ in read_packets(full.pcap)]
    t_cut = [t for t, _, _ in read_packets(cut.pcap)]
    assert t_full[0] < S.start_time(9) + 5 * S.SECOND <= S.start_time(9) + 30 * S.SECOND <= t_cut[0]
    assert t_cut[-1] - S.start_time(9) > 80 * S.SECOND  # the capture still covers 60 s after the cut
    assert simulate_cmd(["--out", str(tmp_path / "c"), "--seed", "9", "--duration", "30s", "--devices", "4",
                         "--start-offset", "15s", "--attacks", "none"]) == 0
    with pytest.raises(InputError):
        simulate_cmd(["--out", str(tmp_path / "d"), "--start-offset", "soon"])


def test_uploads_scenario_adds_exfiltration_shaped_uploads_labelled_normal(tmp_path):
    """Scenario ``uploads`` (opt-in): a varied home plus periodic HTTPS POSTs, sleepy devices that only
    wake to upload and DoH browsing, all ``normal``; the varied scenario itself has none of them."""
    seen: dict[str, Counter] = {}
    for scenario in ("uploads", "varied"):
        res = S.simulate(tmp_path / scenario, seed=21, duration_us=120 * S.SECOND, devices=8, scenario=scenario)
        acts: dict[str, Counter] = defaultdict(Counter)
        for _, _, c in read_packets(res.pcap):
            f = comment_fields(c)
            acts[f["activity"]][f["label"]] += 1
        seen[scenario] = acts
    new = ("chunked-upload", "wake-upload")
    for act in new:
        assert set(seen["uploads"][act]) == {"normal"} and seen["uploads"][act]["normal"] >= 20, (act, seen["uploads"][act])
        assert act not in seen["varied"]


def _camera_roles(pcap: Path) -> dict[bytes, Counter]:
    """IPv4 address of every camera (the LAN end of its vendor-cloud session: the router's MAC forwards
    many addresses, a camera's MAC one) -> activities of the frames it is on."""
    acts: dict[bytes, Counter] = defaultdict(Counter)
    frames, ips_of_mac = [], defaultdict(set)
    for _, f, c in read_packets(pcap):
        if len(f) >= 34 and f[12:14] == b"\x08\x00":
            frames.append((f[6:12], f[26:30], f[30:34], comment_fields(c)["activity"]))
            ips_of_mac[f[6:12]].add(f[26:30])
    cams = {s for mac, s, _, a in frames if a == "camera-cloud" and len(ips_of_mac[mac]) == 1}
    for _, s, d, a in frames:
        for h in (s, d):
            if h in cams:
                acts[h][a] += 1
    return acts


def test_uploads_scenario_has_cloud_only_cameras_that_only_talk_to_their_cloud(tmp_path):
    """Profile.cloud_cameras (scenario uploads, opt-in): some cameras are cloud-only (Ring/Blink/Arlo style):
    their vendor cloud and clip uploads but no local RTSP stream and no hub pings or polls; in the other
    scenarios every camera streams to the hub/NVR or answers its polls."""
    from iotwatch.captures.sim.home import UPLOADS_PROFILE, VARIED_PROFILE, Profile

    assert Profile().cloud_cameras == VARIED_PROFILE.cloud_cameras == 0 < UPLOADS_PROFILE.cloud_cameras
    idle: dict[str, int] = {}
    for scenario in ("uploads", "varied"):
        idle[scenario] = local = 0
        for seed in (3, 4, 5, 6):
            res = S.simulate(tmp_path / f"{scenario}{seed}", seed=seed, duration_us=90 * S.SECOND, devices=14,
                             scenario=scenario)
            for acts in _camera_roles(res.pcap).values():
                if acts["rtsp-rtp"] or acts["hub-poll"] or acts["hub-ping"]:
                    local += 1
                else:
                    idle[scenario] += 1
        assert local >= 1, scenario
    assert idle["uploads"] >= 1 and idle["varied"] == 0, idle


def test_variant_cycle_series_covers_every_variant_of_a_family(tmp_path):
    """``--variant-cycle K``: homes K = 0..4 (2 episodes per family each) take the 10 distinct dos variants
    in turn, so the series has every one of them (the seed-shuffled draw of 5 short homes misses some:
    no simulated training home had an http-flood); without the option the seed's draw is unchanged."""
    kinds = []
    for k in range(5):
        res = S.simulate(tmp_path / f"k{k}", seed=7, duration_us=20 * S.SECOND, devices=5, scenario="varied",
                         variant_cycle=k)
        kinds += [e.split(":", 1)[1].split("@")[0] for e in res.episodes if e.startswith("dos:")]
    assert len(kinds) == 10
    for variant in ("http-flood", "slowloris", "syn-none", "syn-random", "inbound-syn", "udp", "icmp"):
        assert variant in kinds, (variant, kinds)
    assert any(x.startswith("reflection-") for x in kinds) and any(x.startswith("mirai-") for x in kinds)
    assert any(x in ("inbound-udp", "inbound-icmp") for x in kinds), kinds
    plain = S.simulate(tmp_path / "plain", seed=7, duration_us=20 * S.SECOND, devices=5, scenario="varied")
    again = S.simulate(tmp_path / "again", seed=7, duration_us=20 * S.SECOND, devices=5, scenario="varied",
                       variant_cycle=None)
    assert plain.episodes == again.episodes
    assert plain.pcap.read_bytes() == again.pcap.read_bytes()


@pytest.mark.parametrize("seed", [301, 304, 309])
def test_no_host_talks_to_itself_over_the_wire(tmp_path, seed):
    """A varied home's uptime monitor once checked itself and a compromised device guessed its own telnet/SSH
    password (seeds 301, 304 and 309 had such frames): a packet whose IP source is its destination never
    crosses a LAN (the kernel keeps it on loopback)."""
    run = S.simulate(tmp_path, seed=seed, duration_us=60 * S.SECOND, devices=7, scenario="varied", name="x")
    out = subprocess.run(["tshark", "-n", "-r", str(run.pcap), "-T", "fields", "-E", "occurrence=f", "-e", "ip.src",
                          "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"], capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) > 1000
    selfish = [i + 1 for i, r in enumerate(rows) if (r[0] and r[0] == r[1]) or (r[2] and r[2] == r[3])]
    assert selfish == [], f"frames from a host to itself: {selfish[:10]}"
