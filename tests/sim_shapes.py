"""Side-by-side of simulated attack traffic and the real tools' traffic (issue 3, acceptance 2).

* ``extract(pcap, select)`` pulls the header fields that define a tool's *shape* with tshark.
* ``shape(rows)`` summarises them: flags, window sizes, TCP options, TTL range, DF, IP ID and
  port/sequence patterns, payload sizes, rate — for the attacker's packets ("probe") and the
  answers ("reply").
* ``SAMPLES`` runs one attack of :mod:`iotwatch.captures.sim.attacks` in a minimal simulated LAN
  (a Linux target, like the real recordings) and ``REFS`` says which stored real-tool reference
  it is compared with.

Reference CSVs in ``tests/data/sim_refs/`` are small field tables of real tools recorded on
loopback (nmap, hping3: ``nmap -sS -Pn -n -p 1-200 127.0.0.1`` etc.) and with the real-tool lab
(``iotwatch lab record --scenario all --seed 3``: nmap, masscan, hping3, hydra, arpspoof,
dnsspoof, iodine, curl). Regenerate them and the table in docs/sim_vs_real.md with::

    .venv/bin/python tests/sim_shapes.py --loopback DIR_WITH_LOOPBACK_PCAPS --lab LAB.pcapng --doc docs/sim_vs_real.md
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_DIR = ROOT / "tests" / "data" / "sim_refs"

COLUMNS = ("dir", "t", "ttl", "df", "ipid", "proto", "sport", "dport", "flags", "win", "opts", "tcplen", "seq", "ack",
           "ulen", "itype", "icode", "iseq", "idlen", "arpop", "flen", "qlen", "qtype")
_TSHARK = ("frame.time_epoch", "eth.src", "ip.ttl", "ip.flags.df", "ip.id", "ip.proto", "tcp.srcport", "udp.srcport",
           "tcp.dstport", "udp.dstport", "tcp.flags", "tcp.window_size_value", "tcp.options", "tcp.len", "tcp.seq_raw",
           "tcp.ack_raw", "udp.length", "icmp.type", "icmp.code", "icmp.seq", "data.len", "arp.opcode", "frame.len",
           "dns.qry.name.len", "dns.qry.type", "frame.number")
MAX_ROWS = 300


def tshark_rows(pcap: str | Path, display_filter: str = "") -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in _TSHARK:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def extract(pcap: str | Path, attacker_mac: str, *, display_filter: str = "", frames: set[int] | None = None,
            t0: float | None = None, t1: float | None = None) -> list[dict[str, str]]:
    """Rows of COLUMNS for the packets of one attack (``dir`` = probe when sent by ``attacker_mac``)."""
    rows = []
    start = None
    for v in tshark_rows(pcap, display_filter):
        rec = dict(zip(_TSHARK, v))
        ts = float(rec["frame.time_epoch"])
        if frames is not None and int(rec["frame.number"]) not in frames:
            continue
        if (t0 is not None and ts < t0) or (t1 is not None and ts > t1):
            continue
        start = ts if start is None else start
        rows.append({
            "dir": "probe" if rec["eth.src"] == attacker_mac else "reply", "t": f"{ts - start:.6f}",
            "ttl": rec["ip.ttl"], "df": rec["ip.flags.df"], "ipid": rec["ip.id"], "proto": rec["ip.proto"],
            "sport": rec["tcp.srcport"] or rec["udp.srcport"], "dport": rec["tcp.dstport"] or rec["udp.dstport"],
            "flags": rec["tcp.flags"], "win": rec["tcp.window_size_value"], "opts": rec["tcp.options"],
            "tcplen": rec["tcp.len"], "seq": rec["tcp.seq_raw"], "ack": rec["tcp.ack_raw"], "ulen": rec["udp.length"],
            "itype": rec["icmp.type"], "icode": rec["icmp.code"], "iseq": rec["icmp.seq"], "idlen": rec["data.len"],
            "arpop": rec["arp.opcode"], "flen": rec["frame.len"], "qlen": rec["dns.qry.name.len"],
            "qtype": rec["dns.qry.type"]})
        if len(rows) >= MAX_ROWS:
            break
    return rows


# ----------------------------------------------------------------------------- shape
def option_kinds(hexopts: str) -> str:
    """``020405b4...`` -> ``MSS,SACK,TS,NOP,WS`` (the option layout, values dropped)."""
    names = {0: "EOL", 1: "NOP", 2: "MSS", 3: "WS", 4: "SACK", 5: "SACKB", 8: "TS"}
    b = bytes.fromhex(hexopts.replace(":", "")) if hexopts else b""
    out, i = [], 0
    while i < len(b):
        k = b[i]
        out.append(names.get(k, str(k)))
        if k in (0, 1):
            i += 1
        else:
            i += max(2, b[i + 1] if i + 1 < len(b) else 2)
    return ",".join(out) or "-"


def _pattern(values: list[int]) -> str:
    if not values:
        return "-"
    if len(set(values)) == 1:
        return "constant"
    d = [b - a for a, b in zip(values, values[1:])]
    if sum(1 for x in d if x == 1) >= 0.8 * len(d):
        return "incrementing"
    return "varied"


def _ints(rows, key, base=10) -> list[int]:
    return [int(r[key], base) for r in rows if r.get(key)]


def _hexset(rows, key) -> list[str]:
    vals = sorted({r[key] for r in rows if r.get(key)})
    return vals if len(vals) <= 4 else ["varied"]


def shape(rows: list[dict[str, str]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for d in ("probe", "reply"):
        rs = [r for r in rows if r["dir"] == d]
        if not rs:
            continue
        p = d + "."
        tcp = [r for r in rs if r["proto"] == "6"]
        udp = [r for r in rs if r["proto"] == "17"]
        icmp = [r for r in rs if r["proto"] == "1"]
        ip = [r for r in rs if r["ttl"]]
        out[p + "protocols"] = sorted({"tcp" if r["proto"] == "6" else "udp" if r["proto"] == "17" else
                                       "icmp" if r["proto"] == "1" else "arp" if r["arpop"] else r["proto"] or "other"
                                       for r in rs})
        if ip:
            ttls = _ints(ip, "ttl")
            out[p + "ttl"] = [min(ttls), max(ttls)]
            dfs = {r["df"] in ("1", "True") for r in ip}
            out[p + "df"] = "always" if dfs == {True} else "never" if dfs == {False} else "mixed"
            ids = [int(r["ipid"], 16) for r in ip if r["ipid"]]
            out[p + "ipid"] = "zero" if set(ids) == {0} else _pattern(ids)
        if tcp:
            first = [r for r in tcp if int(r["flags"], 16) & 0x02 and not int(r["flags"], 16) & 0x10] or tcp
            out[p + "tcp_flags"] = sorted({int(r["flags"], 16) for r in tcp})
            out[p + "syn_window"] = _hexset(first, "win")
            out[p + "syn_options"] = sorted({option_kinds(r["opts"]) for r in first})
            out[p + "sport"] = _pattern(_ints(first, "sport"))
            out[p + "seq"] = _pattern(_ints(first, "seq"))
            out[p + "ack_without_ACK"] = any(int(r["flags"], 16) & 0x10 == 0 and r["ack"] not in ("", "0") for r in tcp)
        if udp:
            out[p + "udp_payload"] = sorted({int(r["ulen"]) - 8 for r in udp if r["ulen"]})[:6]
            out[p + "sport"] = _pattern(_ints(udp, "sport"))
        if icmp:
            out[p + "icmp_types"] = sorted({int(r["itype"]) for r in icmp})
            seqs = _ints([r for r in icmp if r["itype"] == "8"], "iseq")
            steps = Counter(b - a for a, b in zip(seqs, seqs[1:]))
            out[p + "icmp_seq_step"] = steps.most_common(1)[0][0] if steps else "-"
            lens = _ints(icmp, "idlen")
            out[p + "icmp_data"] = [min(lens), max(lens)] if lens else [0, 0]
        arp = [r for r in rs if r["arpop"]]
        if arp:
            out[p + "arp_ops"] = sorted({int(r["arpop"]) for r in arp})
        q = _ints(rs, "qlen")
        if q:
            out[p + "dns_qname_len"] = [min(q), max(q)]
            out[p + "dns_qtypes"] = sorted({int(r["qtype"]) for r in rs if r["qtype"]})
        ts = [float(r["t"]) for r in rs]
        if len(ts) > 2 and ts[-1] > ts[0]:
            out[p + "rate_pps"] = round(len(ts) / (ts[-1] - ts[0]))
        flen = _ints(rs, "flen")
        out[p + "frame_len_median"] = int(statistics.median(flen))
    return out


# keys that must agree exactly between simulation and reality; others are shown side by side
EXACT = ("probe.protocols", "probe.df", "probe.ttl_range", "probe.ipid", "probe.tcp_flags", "probe.syn_window",
         "probe.syn_options", "probe.sport", "probe.seq", "probe.ack_without_ACK", "reply.protocols", "reply.df",
         "reply.ttl_range", "reply.tcp_flags")


def compare(sim: dict, real: dict, exact: tuple[str, ...]) -> list[str]:
    """Disagreements between a simulated and a real shape on the keys in ``exact`` + TTL ranges."""
    problems = []
    for k in exact:
        if k in real and not k.endswith("ttl_range") and sim.get(k) != real[k]:
            problems.append(f"{k}: simulated {sim.get(k)!r} != real {real[k]!r}")
    for k in exact:
        if k.endswith("ttl_range") and k[:-6] in real:
            k = k[:-6]
            if k not in sim or not (real[k][0] - 1 <= sim[k][0] and sim[k][1] <= real[k][1] + 1):
                # random TTLs (nmap 37-59) must stay inside the real range; fixed TTLs must be equal
                problems.append(f"{k}: simulated {sim.get(k)} outside real {real[k]}")
    return problems


# ----------------------------------------------------------------------------- simulated samples
def _arg(argv: str, flag: str, default: int) -> int:
    parts = argv.split()
    return int(parts[parts.index(flag) + 1]) if flag in parts else default


def simulate_sample(name: str, path: Path, seed: int = 1, argv: str = "") -> str:
    """Run one attack of the simulator against a Linux LAN target; returns the attacker MAC."""
    from iotwatch.captures.sim import frames as P
    from iotwatch.captures.sim import attacks as A
    from iotwatch.captures.sim.writer import PcapngWriter
    from iotwatch.captures.sim.core import LINUX, SECOND, Home, Sim
    from iotwatch.captures.sim.devices import Env

    sim = Sim(seed, 1_700_000_000 * SECOND, 60 * SECOND)
    home = Home(sim)
    env = Env(sim, home)
    target = home.add_host("hub1", "hub", "raspberrypi", LINUX)
    victim2 = home.add_host("camera1", "camera", "hikvision", LINUX)
    coap = home.add_host("coap1", "coap", "espressif", LINUX)
    atk = home.add_host("attacker", "attacker", "intel", LINUX, v6=True)
    r = sim.rng("sample/" + name)
    procs = {
        "nmap-sS": lambda: A.nmap_syn_scan(env, atk, target, r, ports=200, timing=4),
        "nmap-sU": lambda: A.nmap_udp_scan(env, atk, target, r, ports=30),
        "nmap-sV": lambda: _chain(A.nmap_syn_scan(env, atk, target, r, ports=8, timing=4),
                                  A.nmap_version_probe(env, atk, target, r)),
        "nmap-sn": lambda: A.arp_sweep(env, atk, r, tool="nmap-sn"),
        "masscan": lambda: A.masscan(env, atk, r, rate=500, count=400, target=target),
        "hping3-syn": lambda: A.hping3_syn_flood(env, atk, target, r, rate=2000, seconds=0.2, spoof="none"),
        "hping3-syn-rand-source": lambda: A.hping3_syn_flood(env, atk, target, r, rate=2000, seconds=0.2,
                                                             spoof="random"),
        "hping3-udp": lambda: A.hping3_udp_flood(env, atk, coap, r, rate=2000, seconds=0.2,
                                                 dport=_arg(argv, "-p", 5683), data=_arg(argv, "-d", 0)),
        "hping3-icmp": lambda: A.hping3_icmp_flood(env, atk, target, r, rate=2000, seconds=0.2,
                                                   data=_arg(argv, "-d", 0)),
        "hydra-ssh": lambda: A.hydra(env, atk, target, r, service="ssh", tasks=4, attempts=8),
        "hydra-telnet": lambda: A.hydra(env, atk, victim2, r, service="telnet", tasks=4, attempts=8),
        "hydra-ftp": lambda: A.hydra(env, atk, target, r, service="ftp", tasks=4, attempts=8),
        "hydra-http-get": lambda: A.hydra(env, atk, victim2, r, service="http-get", tasks=4, attempts=8),
        "mqtt-guess": lambda: A.hydra(env, atk, target, r, service="mqtt", tasks=1, attempts=8),
        "arpspoof": lambda: A.arp_poison(env, atk, victim2, r, seconds=10, interval=2.0, both=True, tool="arpspoof",
                                         relay_traffic=False),
        "dnsspoof": lambda: A.dns_spoof(env, atk, victim2, r, count=3, tool="dnsspoof"),
        "iodine": lambda: A.dns_tunnel(env, victim2, r, tool="iodine", seconds=5, qps=20),
        "icmp-tunnel": lambda: A.icmp_tunnel(env, victim2, r, seconds=5, pps=40, tool="hping3"),
        "bulk-upload": lambda: A.bulk_upload(env, victim2, r, megabytes=0.5, port=8080),
    }
    sim.spawn(procs[name](), sim.start + SECOND)
    with open(path, "wb") as fh:
        w = PcapngWriter(fh)
        sim.run(lambda t, frame, tag: w.write(t, frame))
        w.close()
    client_side = name in ("iodine", "icmp-tunnel", "bulk-upload")
    return P.mac_str(victim2.mac if client_side else atk.mac)


def _chain(*procs):
    for p in procs:
        yield from p


# name -> (reference source, lab step or loopback file, display filter)
REFS = {
    "nmap-sS": ("lab", "nmap -sS", "tcp"),
    "nmap-sS-loopback": ("loopback", "nmap_sS", "tcp"),
    "nmap-sU": ("lab", "nmap -sU", "udp || icmp"),
    "nmap-sV": ("lab", "nmap -sV", "tcp"),
    "nmap-sn": ("lab", "nmap -sn (ARP host discovery)", "arp"),
    "masscan": ("lab", "masscan", "tcp"),
    "hping3-syn": ("lab", "hping3 SYN flood", "tcp"),
    "hping3-syn-loopback": ("loopback", "hping_syn", "tcp"),
    "hping3-syn-rand-source": ("lab", "hping3 SYN flood --rand-source", "tcp"),
    "hping3-udp": ("lab", "hping3 UDP flood", "udp || icmp"),
    "hping3-icmp": ("lab", "hping3 ICMP flood", "icmp"),
    "hydra-ssh": ("lab", "hydra ssh", "tcp"),
    "hydra-telnet": ("lab", "hydra telnet", "tcp"),
    "hydra-ftp": ("lab", "hydra ftp", "tcp"),
    "hydra-http-get": ("lab", "hydra http-get basic auth", "tcp"),
    "mqtt-guess": ("lab", "mosquitto_pub login guessing", "tcp"),
    "arpspoof": ("lab", "arpspoof devices <-> gateway", "arp"),
    "dnsspoof": ("lab", "arpspoof + dnsspoof (phone's DNS)", "dns && dns.flags.response == 1 && udp.srcport == 53"),
    "iodine": ("lab", "iodine DNS tunnel via the lab resolver", "dns"),
    "icmp-tunnel": ("lab", "ICMP tunnel (hping3 -E payload)", "icmp"),
    "bulk-upload": ("lab", "bulk HTTP upload to an unseen host", "tcp"),
}
SAMPLE = {"nmap-sS-loopback": "nmap-sS", "hping3-syn-loopback": "hping3-syn"}  # which simulation a ref is compared with
_TCP_TOOL = ("probe.protocols", "probe.df", "probe.ttl_range", "probe.syn_window", "probe.syn_options",
             "reply.protocols", "reply.df", "reply.ttl_range")
# per-tool keys that must agree (what legitimately differs is explained in docs/sim_vs_real.md)
EXACT_BY_TOOL = {
    "nmap-sS": EXACT,
    "nmap-sS-loopback": tuple(k for k in EXACT if k != "reply.tcp_flags"),
    "nmap-sU": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.ipid", "probe.sport", "reply.protocols",
                "reply.icmp_types"),
    "nmap-sV": ("probe.protocols", "probe.df", "probe.syn_options", "reply.protocols"),
    "nmap-sn": ("probe.protocols", "probe.arp_ops", "reply.arp_ops"),
    "masscan": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.ipid", "probe.tcp_flags", "probe.syn_window",
                "probe.syn_options", "probe.sport", "reply.protocols"),
    "hping3-syn": EXACT,
    "hping3-syn-loopback": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.ipid", "probe.syn_window",
                            "probe.syn_options", "probe.sport", "probe.seq", "probe.ack_without_ACK"),
    "hping3-syn-rand-source": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.ipid", "probe.tcp_flags",
                               "probe.syn_window", "probe.syn_options", "probe.sport", "probe.seq",
                               "probe.ack_without_ACK"),
    "hping3-udp": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.sport", "probe.udp_payload",
                   "reply.protocols"),
    "hping3-icmp": ("probe.protocols", "probe.df", "probe.ttl_range", "probe.icmp_types", "probe.icmp_seq_step",
                    "probe.icmp_data", "reply.icmp_types"),
    "hydra-ssh": _TCP_TOOL,
    "hydra-telnet": _TCP_TOOL,
    "hydra-ftp": _TCP_TOOL,
    "hydra-http-get": _TCP_TOOL,
    "mqtt-guess": _TCP_TOOL,
    "arpspoof": ("probe.protocols", "probe.arp_ops"),
    "dnsspoof": ("probe.protocols", "probe.df"),
    "iodine": ("probe.protocols",),
    "icmp-tunnel": ("probe.protocols", "probe.icmp_types", "reply.icmp_types"),
    "bulk-upload": ("probe.protocols", "probe.df", "probe.syn_options", "reply.protocols"),
}
INDEX = REF_DIR / "index.json"


def ref_path(name: str) -> Path:
    return REF_DIR / f"{name}.csv"


def read_ref(name: str) -> list[dict[str, str]]:
    with open(ref_path(name), newline="") as fh:
        return list(csv.DictReader(fh))


def write_ref(name: str, rows: list[dict[str, str]]) -> None:
    REF_DIR.mkdir(parents=True, exist_ok=True)
    with open(ref_path(name), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def real_rows(name: str, loopback_dir: Path | None, lab_pcap: Path | None) -> tuple[list[dict[str, str]], str] | None:
    """The real tool's rows and its command line, from a loopback recording or the lab capture."""
    src, which, flt = REFS[name]
    if src == "loopback":
        if loopback_dir is None:
            return None
        log = loopback_dir / f"{which}.argv"
        argv = log.read_text().strip() if log.exists() else which
        # on loopback both sides share one MAC: the probes are the packets that open with SYN or
        # carry the scanner's fixed source port
        rows = extract(loopback_dir / f"{which}.pcapng", "00:00:00:00:00:00", display_filter=flt)
        probe_ports = {r["sport"] for r in rows if r["flags"] and int(r["flags"], 16) == 0x02}
        for r in rows:
            r["dir"] = "probe" if r["sport"] in probe_ports else "reply"
        return rows, argv
    if lab_pcap is None:
        return None
    meta = json.loads(Path(str(lab_pcap) + ".lab.json").read_text())
    win = next(w for w in meta["windows"] if w["step"] == which)
    labels = {}
    with open(str(lab_pcap) + ".labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            labels[int(row["frame_number"])] = row["label"]
    frames = {n for n, lab in labels.items() if lab == win["label"]}
    rows = extract(lab_pcap, win["attacker_mac"], display_filter=flt, frames=frames, t0=win["start"] - 0.5,
                   t1=win["end"] + 2)
    return rows, " ; ".join(win["argv"])


def simulated_shape(name: str, tmp: Path, argv: str) -> dict[str, object]:
    sample = SAMPLE.get(name, name)
    p = tmp / f"{name}.pcapng"
    mac = simulate_sample(sample, p, argv=argv)
    return shape(extract(p, mac, display_filter=REFS[name][2]))


def markdown_table(names: list[str], sims: dict[str, dict], reals: dict[str, dict]) -> str:
    lines = ["| tool | field | real | simulated |", "|---|---|---|---|"]
    for n in names:
        src = REFS[n][0]
        keys = [k for k in reals[n] if k in sims[n] or k in EXACT_BY_TOOL[n] or k + "_range" in EXACT_BY_TOOL[n]]
        for i, k in enumerate(keys):
            tool = f"**{n}** ({src})" if i == 0 else ""
            checked = k in EXACT_BY_TOOL[n] or k + "_range" in EXACT_BY_TOOL[n]
            mark = " ✓" if checked and not compare({k: sims[n].get(k)}, {k: reals[n][k]}, (k, k + "_range")) else ""
            lines.append(f"| {tool} | {k} | {reals[n][k]} | {sims[n].get(k, '—')}{mark} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loopback", type=Path, help="directory with nmap_sS.pcapng etc. recorded on lo")
    ap.add_argument("--lab", type=Path, help="capture written by iotwatch lab record --scenario all")
    ap.add_argument("--doc", type=Path, help="write the comparison table into this markdown file (between markers)")
    ns = ap.parse_args(argv)
    import tempfile

    index = json.loads(INDEX.read_text()) if INDEX.exists() else {}
    sims, reals = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in REFS:
            got = real_rows(name, ns.loopback, ns.lab)
            if got:
                write_ref(name, got[0])
                index[name] = {"source": REFS[name][0], "argv": got[1]}
            if not ref_path(name).exists():
                print(f"{name}: no reference", file=sys.stderr)
                continue
            reals[name], sims[name] = shape(read_ref(name)), simulated_shape(name, Path(tmp), index[name]["argv"])
            for prob in compare(sims[name], reals[name], EXACT_BY_TOOL[name]):
                print(f"{name}: {prob}")
    INDEX.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    if ns.doc:
        text = ns.doc.read_text() if ns.doc.exists() else ""
        table = markdown_table(list(reals), sims, reals)
        a, b = "<!-- table:start -->", "<!-- table:end -->"
        if a in text and b in text:
            text = text[:text.index(a) + len(a)] + "\n" + table + "\n" + text[text.index(b):]
        else:
            text += f"\n{a}\n{table}\n{b}\n"
        ns.doc.write_text(text)
    return 0


# ----------------------------------------------------------------------------- the wider kinds (issue 12)
def simulate_wide(path: Path, seed: int = 7, dns: str = "doh") -> dict[str, str]:
    """Every attack kind of captures/sim/tools.py and every benign look-alike of variety.py, once,
    in a small varied home (DNS mode ``dns``), written to ``path``. Returns activity -> label as
    the processes should tag their packets."""
    from iotwatch.captures.sim import tools as T
    from iotwatch.captures.sim import variety as V
    from iotwatch.captures.sim.core import EMBEDDED_LINUX, LINUX, LWIP, MS, SECOND, Sim, WINDOWS
    from iotwatch.captures.sim.devices import Env
    from iotwatch.captures.sim.home import Home
    from iotwatch.captures.pcapfile import comment_option
    from iotwatch.captures.sim.writer import PcapngWriter

    plan = V.Plan(prefix="100.72.9", wide_public=True, dns=dns, stack_share=0.0, cut_us=0)
    sim = Sim(seed, 1_700_000_000 * SECOND, 400 * SECOND)
    home = Home(sim, plan)
    env = Env(sim, home)
    home.resolver_hook = V.Resolver(env, plan)
    hub = home.add_host("hub1", "hub", "raspberrypi", LINUX)
    cam = home.add_host("camera1", "camera", "hikvision", EMBEDDED_LINUX)
    plug = home.add_host("plug1", "plug", "espressif", LWIP)
    lap = home.add_host("laptop1", "laptop", "dell", WINDOWS)
    phone = home.add_host("phone1", "phone", "google", LINUX)
    atk = home.add_host("attacker", "attacker", "intel", LINUX)
    r = sim.rng("wide")
    at = [sim.start + SECOND]

    def spawn(proc, gap: float = 6) -> None:
        sim.spawn(proc, at[0])
        at[0] += int(gap * SECOND)

    expected = {}
    for kind in ("sS", "sT", "sA", "sF", "sX", "sN"):
        spawn(T.nmap_scan(env, atk, [hub, cam], r, kind=kind, timing=4, ports=60))
        expected[f"nmap-{kind}-T4"] = "recon"
    spawn(T.nmap_scan(env, atk, [hub, cam], r, kind="sS", timing=4, ports=60, v6=True), 2)
    spawn(T.nmap_scan(env, atk, [hub], r, kind="sT", timing=4, ports=60, v6=True), 2)
    expected.update({"nmap-sS-T4-v6": "recon", "nmap-sT-T4-v6": "recon"})
    spawn(T.nmap_scan(env, atk, [hub], r, kind="sS", timing=5, ports=2000, min_rate=20_000), 2)
    spawn(T.nmap_scan(env, atk, [cam], r, kind="sS", timing=1, ports=20, seconds=300), 1)
    expected.update({"nmap-sS-T5": "recon", "nmap-sS-T1": "recon"})
    for tool in ("masscan", "zmap"):
        spawn(T.internet_sweep(env, atk, r, tool=tool, rate=20_000, count=3000, ports=(23, 80)), 2)
        expected[f"{tool}-sweep"] = "recon"
    spawn(T.hping3_scan(env, atk, cam, r, first=1, last=300), 2)
    expected["hping3-scan"] = "recon"
    for proto in ("dns", "ntp", "snmp", "ssdp", "coap", "memcached", "chargen"):
        refl = [home.peer(home.new_public_ip(r)) for _ in range(20)]
        spawn(T.reflection_flood(env, lap, r, proto=proto, rate=2000, seconds=0.5, reflectors=refl), 2)
        expected[f"reflection-{proto}"] = "dos"
    spawn(T.http_flood(env, [home.unseen_peer(r) for _ in range(10)], cam, r, rate=100, seconds=2), 4)
    expected["http-flood"] = "dos"
    for tool in T.SSH_TOOLS:
        spawn(T.ssh_guess(env, atk, hub, r, tool=tool, attempts=8), 4)
        expected[f"ssh-guess-{tool}"] = "bruteforce"
    spawn(T.ssh_guess(env, home.unseen_peer(r), hub, r, tool="ncrack", attempts=4, slow=3.0), 4)
    spawn(T.ssh_guess(env, atk, hub, r, tool="hydra", attempts=6, v6=True), 4)
    spawn(T.ssh_guess(env, home.unseen_peer(r), hub, r, tool="patator", attempts=4, v6=True), 4)
    expected.update({"ssh-guess-hydra-v6": "bruteforce", "ssh-guess-patator-v6": "bruteforce"})
    for tool in ("medusa", "ncrack"):
        spawn(T.telnet_guess(env, atk, cam, r, tool=tool, attempts=6), 6)
        expected[f"telnet-guess-{tool}"] = "bruteforce"
    for tool in ("mosquitto", "ncrack", "mqtt-pwn"):
        spawn(T.mqtt_guess(env, atk, hub, r, tool=tool, attempts=10), 3)
        expected[f"mqtt-guess-{tool}"] = "bruteforce"
    for tool in ("hydra", "burp"):
        spawn(T.http_form_guess(env, atk, cam, r, tool=tool, attempts=10), 3)
        expected[f"http-form-{tool}"] = "bruteforce"
    for tool in ("yersinia", "dhcpig", "scapy-fixed"):
        spawn(T.dhcp_starvation(env, atk, r, tool=tool, count=60, rate=200), 2)
        expected[f"dhcp-starvation-{tool}"] = "dos"
    spawn(T.rogue_dhcp(env, atk, phone, r, tool="yersinia", seconds=15), 16)
    expected["dhcp-spoof-yersinia"] = "spoofing"
    for tool in ("bettercap", "gratuitous"):
        spawn(T.arp_subnet_poison(env, atk, r, tool=tool, seconds=5, interval=1), 6)
        expected[f"arp-subnet-{tool}"] = "spoofing"
    spawn(T.dns2tcp(env, plug, r, seconds=5, qps=10), 6)
    spawn(T.dns_beacon(env, cam, r, seconds=20, period=2), 1)
    spawn(T.https_post_exfil(env, lap, r, seconds=20, period=4, chunk_kb=(20, 60)), 1)
    expected.update({"dns-tunnel-dns2tcp": "exfiltration", "dns-beacon": "exfiltration",
                     "https-post-exfil": "exfiltration"})
    at[0] = sim.start + 2 * SECOND  # the benign look-alikes run alongside
    spawn(V.unresolved_backup(env, hub, r, (0.2, 0.5)), 1)
    spawn(V.browser_burst(env, lap, r), 1)
    spawn(V.video_stream(env, phone, r), 1)
    spawn(V.pairing_burst(env, phone, plug, r), 1)
    spawn(V.health_checks(env, hub, [cam, plug, lap], r), 1)
    spawn(V.ntp_burst(env, [hub, cam, plug, lap, phone], r), 1)
    spawn(V.v6_browsing(env, lap, r), 1)
    spawn(V.ssh_user(env, lap, hub, r), 1)
    expected.update({k: "normal" for k in ("backup-upload", "web-burst", "video-stream", "pairing", "health-check",
                                           "ntp", "doh", "web-v6", "ssh-login")})
    # the exfiltration-shaped uploads (their own random stream: the draws above stay as they were)
    ru = sim.rng("wide/uploads")
    door = home.add_host("doorbell1", "camera", "amazon", EMBEDDED_LINUX)
    sim.spawn(V.chunked_uploads(env, cam, ru), sim.start + 3 * SECOND)
    sim.spawn(V.wake_uploads(env, door, ru, (0.2, 0.5)), sim.start + 40 * SECOND)
    sim.spawn(V.doh_browsing(env, phone, ru), sim.start + 5 * SECOND)
    expected.update({k: "normal" for k in ("chunked-upload", "wake-upload", "web-doh")})
    with open(path, "wb") as fh:
        w = PcapngWriter(fh)
        sim.run(lambda t, frame, tag: w.write(t, frame, comment_option(
            f"label={sim.tags[tag].label} activity={sim.tags[tag].activity}")))
        w.close()
    return expected


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
