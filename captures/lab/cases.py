"""``iotwatch lab cases``: the small labelled captures of the detector's specific cases (issue 12).

    iotwatch lab cases --out tests/data/cases [--only NAME ...] [--seed N]

Each case is one short recording made with real tools in a lab of its own (only the hosts the case
needs, network namespaces on a bridge with no route out, as ``lab record``), kept small (a few
hundred KB at most) so it can live in the repository:

    https-no-dns     a camera downloads a firmware image and uploads a clip over HTTPS (curl) to a
                     "cloud" address whose DNS look-up is not in the capture            -> normal
    doh              a phone resolves names over DNS-over-HTTPS (curl --doh-url) and fetches
                     pages from the answers                                             -> normal
    pairing          a new smart plug joins (DHCP with udhcpc against dnsmasq), announces itself
                     (mDNS, SSDP NOTIFY); the phone app discovers it (M-SEARCH, mDNS query) and
                     sets it up over HTTP                                               -> normal
    ssh-guessing     hydra, medusa and ncrack guess SSH passwords against dropbear      -> bruteforce
    syn-scan-10k     masscan SYN scan of 1100 ports at 10 000 packets/s                -> recon
    syn-flood        nping SYN flood to one port (port 80) at 10 000 packets/s        -> dos
    reflection       DNS (dnsmasq) and SNMP (snmpd) reflection: hping3 sends requests forged with
                     the victim's address; captured on the VICTIM's interface: only the
                     reflectors' answers and the victim's ICMP errors                  -> dos

Output per case: ``<name>.pcapng``, ``<name>.pcapng.labels.csv`` (every frame, rules of
:mod:`.labelling`) and ``<name>.pcapng.lab.json`` (hosts, windows, counts). The "cloud" hosts live
in 203.0.113.0/24 (TEST-NET-3, never routed on the internet) on the lab bridge (see :mod:`.net`).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EnvironmentProblem
from ..files import output_folder
from ..tshark.table import fields_lines
from .attacks import LabContext, Step, helper, password_list, reflection_step
from .labelling import AttackWindow, class_counts, label_packets, read_packet_table, write_labels_csv
from .net import BRIDGE, Lab

GRACE = 1.0
CLOUD, DOH = "203.0.113.10", "203.0.113.53"


@dataclass
class Case:
    name: str
    expect: str                                   # the class the detector should give (normal = no alert)
    hosts: dict[str, str]
    services: Callable[[Lab, Path], None]
    steps: Callable[[LabContext, random.Random], list[Step]]
    capture_on: str = ""                          # a host role: capture on its eth0 (else the bridge)
    tools: tuple[str, ...] = ()
    min_pps: float = 0.0                          # rate of the attack's packets the capture must show (retried)
    rate_filter: str = "tcp.flags == 0x002"       # which packets (tshark display filter): the SYNs


def _u(lab: Lab) -> str:
    return f"{time.time() + 120:.0f}"


def _cert(wd: Path, name: str = "cloud", cn: str = "cloud.example.com") -> tuple[str, str]:
    """A fresh self-signed certificate: ``wd/<name>.crt`` and ``wd/<name>.key`` for CN ``cn``."""
    key, crt = wd / f"{name}.key", wd / f"{name}.crt"
    Lab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", f"/CN={cn}", "-days", "2", "-keyout", str(key), "-out", str(crt)])
    return str(crt), str(key)


def _cloud(lab: Lab, wd: Path, role: str = "cloud", doh_answer: str = "") -> None:
    crt, key = _cert(wd)
    extra = ["--doh-answer", doh_answer] if doh_answer else []
    lab.spawn(role, helper("serve", "--name", role, "--bind", lab.hosts[role].ip, "--until", _u(lab), "--https", "443",
                           "--cert", crt, "--key", key, *extra), f"serve-{role}")


# -- benign ------------------------------------------------------------------------------------------
def _https_services(lab: Lab, wd: Path) -> None:
    _cloud(lab, wd)


def _https_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    clip = ctx.workdir / "clip.mp4"
    clip.write_bytes(rng.randbytes(80_000))
    resolve = ["--resolve", f"cloud.example.com:443:{CLOUD}"]  # the name is known, its DNS look-up is not seen
    curl = ["curl", "-sk", "-m", "20", "-o", "/dev/null", *resolve]
    return [
        Step("curl HTTPS download (firmware image)", "normal",
             [curl + ["https://cloud.example.com/download?bytes=80000"]], role="cam"),
        Step("curl HTTPS upload (camera clip)", "normal",
             [curl + ["-H", "Content-Type: video/mp4", "--data-binary", f"@{clip}", "https://cloud.example.com/upload"]],
             role="cam"),
        Step("curl HTTPS status polls", "normal",
             [["sh", "-c", " ; ".join(["sleep 0.4 ; curl -sk -m 5 -o /dev/null --resolve cloud.example.com:443:"
                                        f"{CLOUD} https://cloud.example.com/status"] * 3)]], role="cam"),
    ]


def _doh_services(lab: Lab, wd: Path) -> None:
    _cloud(lab, wd)
    _cloud(lab, wd, role="doh", doh_answer=CLOUD)


def _doh_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    names = ["api.example.com", "time.example.net", "cdn.example.org", "status.example.com", "news.example.net"]
    doh = ["curl", "-sk", "-m", "10", "-o", "/dev/null", "--doh-insecure", "--doh-url", f"https://{DOH}/dns-query"]
    return [Step(f"curl --doh-url https://{DOH}/dns-query https://{n}/", "normal", [doh + [f"https://{n}/status"]],
                 role="user", min_seconds=1.0) for n in names]


def _pairing_services(lab: Lab, wd: Path) -> None:
    gw, plug = lab.hosts["gw"], lab.hosts["plug"]
    lab.spawn("gw", ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                     f"--listen-address={gw.ip}", "--user=root", f"--pid-file={wd / 'dnsmasq.pid'}",
                     "--dhcp-range=10.77.0.100,10.77.0.149,255.255.255.0,10m", f"--dhcp-host={plug.mac},{plug.ip}",
                     f"--dhcp-leasefile={wd / 'dnsmasq.leases'}", f"--dhcp-option=3,{gw.ip}"], "dnsmasq")
    lab.spawn("plug", helper("serve", "--name", "plug", "--bind", plug.ip, "--until", _u(lab), "--http", "80",
                             "--ssdp", "--mdns"), "serve-plug")


def _pairing_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    return [
        Step("udhcpc DHCP join of the new plug", "normal",
             [["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s", "/bin/true", "-x", "hostname:plug"]],
             role="plug", min_seconds=5.0),
        Step("plug announces (mDNS, SSDP NOTIFY)", "normal",
             [helper("pair", "--role", "device", "--name", "plug", "--ip", ctx.ip("plug"), "--rounds", "4")],
             role="plug", min_seconds=10.0),
        Step("phone app discovers and sets up the plug", "normal",
             [helper("pair", "--role", "app", "--ip", ctx.ip("user"), "--device", ctx.ip("plug"), "--rounds", "4",
                     "--seed", str(rng.getrandbits(16)))], role="user", min_seconds=15.0),
    ]


# -- attacks -----------------------------------------------------------------------------------------
def _ssh_services(lab: Lab, wd: Path) -> None:
    lab.spawn("nas", sshd_argv(lab.hosts["nas"].ip, wd), "sshd")


def _ssh_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    pw = ctx.workdir / "passwords.txt"
    pw.write_text("\n".join(password_list(rng, 14)) + "\n")
    nas = ctx.ip("nas")
    return [
        Step("hydra ssh", "bruteforce", [["hydra", "-I", "-q", "-t", "4", "-w", "5", "-l", "root", "-P", str(pw),
                                          f"ssh://{nas}"]], min_seconds=20.0),
        Step("medusa -M ssh", "bruteforce", [["medusa", "-h", nas, "-u", "admin", "-P", str(pw), "-M", "ssh",
                                              "-t", "2", "-T", "1"]], min_seconds=20.0),
        Step("ncrack ssh -T4", "bruteforce", [["ncrack", "-T4", "--user", "pi", "-P", str(pw), f"ssh://{nas}",
                                               "-g", "cl=2,at=3"]], min_seconds=20.0),
    ]


def dropbear_argv(ip: str, wd: Path) -> list[str]:
    """dropbear with an RSA and an ed25519 host key (ncrack 0.7's SSH library knows no ed25519)."""
    keys = []
    for kind in ("rsa", "ed25519"):
        key = wd / f"dropbear_{kind}_host_key"
        if not key.exists():
            Lab.run(["dropbearkey", "-t", kind, "-f", str(key)] + (["-s", "2048"] if kind == "rsa" else []))
        keys += ["-r", str(key)]
    return ["dropbear", "-F", "-E", "-w", "-p", f"{ip}:22", *keys, "-P", str(wd / "dropbear.pid")]


def sshd_argv(ip: str, wd: Path) -> list[str]:
    """OpenSSH's sshd on ``ip``:22 with password logins (no PAM; lab users do not exist, so every
    guess fails) and the legacy group14-sha1 key exchange and ssh-rsa host key that ncrack 0.7 needs."""
    key = wd / "ssh_host_rsa_key"
    if not key.exists():
        Lab.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)])
    conf = wd / f"sshd-{ip}.conf"
    conf.write_text(f"ListenAddress {ip}\nPort 22\nHostKey {key}\nHostKeyAlgorithms +ssh-rsa\n"
                    "KexAlgorithms +diffie-hellman-group14-sha1,diffie-hellman-group1-sha1\n"
                    "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\n"
                    f"PidFile {wd / 'sshd.pid'}\nMaxAuthTries 6\nMaxStartups 200:30:400\nLoginGraceTime 20\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege-separation directory
    return ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]


def _http_target(lab: Lab, wd: Path) -> None:
    cam = lab.hosts["cam"]
    lab.spawn("cam", helper("serve", "--name", "cam", "--bind", cam.ip, "--until", _u(lab), "--http", "80"), "serve-cam")


def _scan_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    return [Step("masscan SYN scan 1-1100 at 10k pkt/s", "recon",
                 [["masscan", ctx.ip("cam"), "-p", "1-1100", "--rate", "30000", "-e", "eth0", "--adapter-ip",
                   ctx.ip("attacker"), "--router-mac", ctx.macs["cam"], "--wait", "1"]], min_seconds=6.0)]


def _flood_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    return [Step("nping SYN flood to port 80 at 10k pkt/s", "dos",
                 [["nping", "--tcp", "--flags", "syn", "-p", "80", "--rate", "10000", "-c", "1100", "-N", "-H", "-e", "eth0",
                   ctx.ip("cam")]],
                 min_seconds=3.0)]


def reflector_services(lab: Lab, wd: Path, dns_role: str = "gw", snmp_role: str = "hub",
                       ntp_role: str = "", until: float | None = None) -> None:
    """Real reflectors: dnsmasq (a name with large TXT records), snmpd (public community), chronyd
    (NTP server, never touching the clock: -x)."""
    if dns_role:
        h = lab.hosts[dns_role]
        txt = ",".join('"' + "v=spf1 include:_spf.big.lab " + "x" * 150 + '"' for _ in range(6))
        lab.spawn(dns_role, ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                             f"--listen-address={h.ip}", "--user=root", f"--pid-file={wd / 'dnsmasq-refl.pid'}",
                             f"--txt-record=big.lab,{txt}", "--edns-packet-max=4096"], "dnsmasq-refl")
    if snmp_role:
        h = lab.hosts[snmp_role]
        conf = wd / "snmpd.conf"
        conf.write_text(f"agentAddress udp:{h.ip}:161\nrocommunity public {lab.hosts[snmp_role].ip.rsplit('.', 1)[0]}.0/24\n"
                        "sysLocation living room\nsysContact admin@home.lab\nsysName hub\nsysDescr IoT hub firmware 4.2.1\n")
        lab.spawn(snmp_role, ["snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-p", str(wd / "snmpd.pid"),
                              "-I", "-smux,mteTrigger,mteTriggerConf"], "snmpd")
    if ntp_role:
        h = lab.hosts[ntp_role]
        conf = wd / "chrony.conf"
        conf.write_text(f"bindaddress {h.ip}\nallow {h.ip.rsplit('.', 1)[0]}.0/24\nlocal stratum 8\ncmdport 0\n"
                        f"pidfile {wd / 'chronyd.pid'}\n")
        lab.spawn(ntp_role, ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)], "chronyd")


def _reflection_services(lab: Lab, wd: Path) -> None:
    reflector_services(lab, wd)


def _reflection_steps(ctx: LabContext, rng: random.Random) -> list[Step]:
    s = reflection_step(ctx, "cam", {"dns": "gw", "snmp": "hub"}, count=110, gap_us=2000, spoof_port=41234)
    s.min_seconds = 3.0
    return [s]


CASES: dict[str, Case] = {c.name: c for c in (
    Case("https-no-dns", "normal", {"cam": "10.77.0.11", "cloud": CLOUD}, _https_services, _https_steps,
         tools=("curl", "openssl")),
    Case("doh", "normal", {"user": "10.77.0.20", "cloud": CLOUD, "doh": DOH}, _doh_services, _doh_steps,
         tools=("curl", "openssl")),
    Case("pairing", "normal", {"gw": "10.77.0.1", "plug": "10.77.0.30", "user": "10.77.0.20"}, _pairing_services,
         _pairing_steps, tools=("dnsmasq", "udhcpc")),
    Case("ssh-guessing", "bruteforce", {"nas": "10.77.0.13", "attacker": "10.77.0.66"}, _ssh_services, _ssh_steps,
         tools=("dropbear", "dropbearkey", "hydra", "medusa", "ncrack")),
    Case("syn-scan-10k", "recon", {"cam": "10.77.0.11", "attacker": "10.77.0.66"}, _http_target, _scan_steps,
         tools=("masscan",), min_pps=9000),
    Case("syn-flood", "dos", {"cam": "10.77.0.11", "attacker": "10.77.0.66"}, _http_target, _flood_steps,
         tools=("nping",), min_pps=9000),
    Case("reflection", "dos", {"gw": "10.77.0.1", "hub": "10.77.0.10", "cam": "10.77.0.11", "attacker": "10.77.0.66"},
         _reflection_services, _reflection_steps, capture_on="cam", tools=("hping3", "dnsmasq", "snmpd")),
)}


def run_case(case: Case, out_dir: Path, seed: int = 1, log=print, keep_workdir: bool = False) -> dict:
    from .recorder import _wait_for_file, require_root

    require_root()
    missing = [t for t in ("dumpcap", "tshark", *case.tools) if shutil.which(t) is None]
    if missing:
        raise EnvironmentProblem(f"case {case.name}: tool(s) not found: {', '.join(missing)}",
                                 hint="iotwatch lab setup")
    output_folder(out_dir, "--out folder")
    capture = out_dir / f"{case.name}.pcapng"
    for p in (capture, Path(f"{capture}.labels.csv"), Path(f"{capture}.lab.json")):
        p.unlink(missing_ok=True)
    rng = random.Random(seed)
    wd = Path(tempfile.mkdtemp(prefix=f"iw-{os.getpid()}-"))
    os.chmod(wd, 0o755)
    lab = Lab(case.hosts, wd)
    ctx = LabContext(ips={r: h.ip for r, h in lab.hosts.items()}, macs={r: h.mac for r, h in lab.hosts.items()},
                     workdir=wd)
    windows: list[AttackWindow] = []
    ok = False
    try:
        lab.build()
        checks = lab.verify_isolated()
        where = (lab.hosts[case.capture_on].ns, "eth0") if case.capture_on else (lab.bridge_ns, BRIDGE)
        tmp_cap = wd / "case.pcapng"
        dumpcap = lab.spawn(where[0], ["dumpcap", "-q", "-i", where[1], "-w", str(tmp_cap), "-a", "duration:300"],
                            "dumpcap")
        _wait_for_file(tmp_cap, dumpcap)
        case.services(lab, wd)
        time.sleep(1.5)
        steps = case.steps(ctx, rng)
        for i, step in enumerate(steps):
            start = time.time() - 0.05
            procs = [lab.spawn(step.role, ["timeout", "--signal=INT", "--kill-after=3", f"{step.min_seconds:.1f}",
                                           *cmd], f"step{i:02d}-{j}") for j, cmd in enumerate(step.commands)]
            for p in procs:
                try:
                    p.wait(timeout=step.min_seconds + 8)
                except subprocess.TimeoutExpired:
                    lab.stop(p)
            if step.label != "normal":
                attacker = lab.hosts["attacker"]
                windows.append(AttackWindow(label=step.label, start=start, end=time.time() + GRACE,
                                            attacker_mac=attacker.mac, attacker_ip=attacker.ip, step=step.name,
                                            victim_ip=step.victim_ip, argv=[" ".join(c) for c in step.commands],
                                            dns_suffix=step.dns_suffix, mac_prefix=step.mac_prefix,
                                            reflectors=list(step.reflectors), spoof_port=step.spoof_port))
            log(f"case {case.name}: [{step.label}] {step.name}: {time.time() - start:.1f} s")
            time.sleep(GRACE + 0.5)
        lab.stop(dumpcap, signal.SIGINT, wait=10)
        shutil.copyfile(tmp_cap, capture)
        ok = True
    finally:
        problems = lab.teardown(keep_workdir=keep_workdir)
        if keep_workdir:
            log(f"case {case.name}: logs kept in {wd}")
        if not ok:
            capture.unlink(missing_ok=True)
    if problems:
        raise EnvironmentProblem("lab teardown incomplete: " + "; ".join(problems))
    table = read_packet_table(capture)
    labels = label_packets(table, windows, [h.ip for h in lab.hosts.values()])
    write_labels_csv(f"{capture}.labels.csv", labels)
    pps = packet_rate(capture, case.rate_filter) if case.min_pps else 0.0
    summary = {"case": case.name, "expect": case.expect, "seed": seed, "frames": len(labels),
               "bytes": capture.stat().st_size, "class_counts": class_counts(labels),
               "attack_packets_per_second": round(pps), "rate_filter": case.rate_filter if case.min_pps else "",
               "captured_on": f"{case.capture_on}:eth0" if case.capture_on else "bridge",
               "hosts": {r: {"ip": h.ip, "mac": h.mac} for r, h in lab.hosts.items()},
               "isolation_checks": len(checks), "windows": [w.to_json() for w in windows],
               "steps": [{"name": s.name, "label": s.label, "role": s.role, "argv": [" ".join(c) for c in s.commands]}
                         for s in steps]}
    Path(f"{capture}.lab.json").write_text(json.dumps(summary, indent=1))
    log(f"case {case.name}: {capture} ({len(labels)} frames, {summary['bytes']} bytes, {summary['class_counts']}"
        + (f", {pps:.0f} pkt/s of {case.rate_filter}" if pps else "") + ")")
    return summary


def packet_rate(capture: Path, display_filter: str) -> float:
    """Packets per second of the frames matching ``display_filter``, first to last."""
    t = [float(x) for x in fields_lines(capture, ["frame.time_epoch"], display_filter=display_filter, timeout=120)]
    return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0


def make_cases(out_dir: Path, only: list[str] | None = None, seed: int = 1, log=print,
               keep_workdir: bool = False, tries: int = 4) -> list[dict]:
    """Record the cases; a case whose capture shows the attacker slower than its ``min_pps`` (a
    busy machine delays the tool) is recorded again, up to ``tries`` times."""
    out = []
    for n in only or list(CASES):
        case = CASES[n]
        for attempt in range(1, tries + 1):
            summary = run_case(case, out_dir, seed, log, keep_workdir)
            if summary["attack_packets_per_second"] >= case.min_pps:
                break
            log(f"case {n}: {summary['attack_packets_per_second']} attack pkt/s < {case.min_pps:.0f}"
                + (", recording again" if attempt < tries else ", giving up (machine too busy)"))
        out.append(summary)
    return out
