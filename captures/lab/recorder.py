"""``iotwatch lab``: record real attack tools in an isolated namespace lab, with exact labels.

    iotwatch lab record --out DIR --scenario all|benign|recon|dos|bruteforce|spoofing|exfiltration
                        [--duration S] [--seed N] [--force] [--keep-workdir]
    iotwatch lab relabel CAPTURE...   re-derive the labels of recorded captures from their .lab.json
    iotwatch lab cases --out DIR [--only CASE...]   the detector's small specific-case captures (root)
    iotwatch lab setup          apt-get install the packages of captures/lab/packages.txt (root)
    iotwatch lab cleanup        delete namespaces left by a killed recorder (iw-<dead pid>-*)

``record`` (root only) builds the lab of :mod:`.net` (a bridge in its own namespace; gateway,
hub, camera, sensor, NAS, phone, smart plug, an unseen "sink" host and one attacker, each in its
own namespace on 10.77.0.0/24, plus a "cloud" HTTPS host, a DoH server and the attacker's HTTPS
"drop" server in 203.0.113.0/24 on the same bridge; no route out), proves the isolation, starts
real services (mosquitto, dnsmasq for DNS and DHCP, dropbear, OpenSSH, snmpd, chronyd, iodined,
dns2tcpd, ptunnel-ng, and the small servers of :mod:`.services`: HTTP(S)/DoH, telnet, FTP, CoAP,
SSDP, mDNS) and the benign device drivers, records the bridge with dumpcap, and runs the real
tools of :mod:`.attacks` in bounded windows between benign stretches. Output, in DIR:

    lab-<scenario>-seed<N>.pcapng              the capture (tshark reads it)
    lab-<scenario>-seed<N>.pcapng.labels.csv   frame_number,label for EVERY frame (CONTRACT §2)
    lab-<scenario>-seed<N>.pcapng.lab.json     hosts, attack windows (tool argv, times), class counts

Labels follow :mod:`.labelling`. Everything is torn down afterwards, also on errors, Ctrl-C,
SIGTERM and SIGHUP: only the processes this run started and the namespaces it created.
Exit codes: 0 ok, 2 usage error, 3 not root / a tool missing (the line names the apt package).
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ..errors import EnvironmentProblem, InputError
from ..files import output_folder
from .attacks import BASE_TOOLS, FAMILIES, FAMILY_TOOLS, OPTIONAL, TOOLS, LabContext, Step, helper, plan
from .labelling import AttackWindow, class_counts, label_packets, read_packet_table, write_labels_csv
from .cases import _cert, reflector_services, sshd_argv
from .net import BRIDGE, Lab

SCENARIOS = ("all", "benign") + FAMILIES
OPTIONAL_TOOLS = OPTIONAL   # their steps are dropped (with a note) when they are missing
BIG_TXT = ",".join('"' + "v=spf1 include:_spf.big.lab " + "x" * 150 + '"' for _ in range(6))
GRACE = 1.5                     # seconds after a tool exits that still belong to its window
TUNNEL_ZONE = "t.lab"           # dig tunnel: answered by the sink's small authoritative server
IODINE_ZONE = "i.lab"           # iodine tunnel: answered by iodined on the sink (port 5353)
DNS2TCP_ZONE = "d.lab"          # dns2tcp tunnel: answered by dns2tcpd on the sink (port 5354)
IODINE_NET = "10.77.1.1/27"     # iodine's tunnel addresses exist only on dns0 inside sink/attacker
CLOUD_IP, DOH_IP = "203.0.113.10", "203.0.113.53"
#: the attacker's drop server (HTTPS POST exfiltration): outside the LAN like the cloud, but no benign
#: device ever talks to it (the NAS backs up to the cloud with the same curl: a POST there would be a backup)
DROP_IP = "203.0.113.200"
DROP_CN = "files.drop.example.org"
SECRET = {"mqtt": "mqtt-s3cret", "operator": "operator-s3cret", "admin": "router-s3cret", "iodine": "tunnel-s3cret", "dns2tcp": "d2t-s3cret"}


def topology(seed: int) -> dict[str, str]:
    """role -> lab address; the attacker's address depends on the seed. ``cloud`` (HTTPS uploads,
    backups, updates, streaming), ``doh`` (DNS over HTTPS) and ``drop`` (the attacker's upload server,
    used by no benign device) sit in TEST-NET-3 (see net.py)."""
    return {"gw": "10.77.0.1", "hub": "10.77.0.10", "cam": "10.77.0.11", "sensor": "10.77.0.12",
            "nas": "10.77.0.13", "user": "10.77.0.20", "plug": "10.77.0.30", "sink": "10.77.0.200",
            "cloud": CLOUD_IP, "doh": DOH_IP, "drop": DROP_IP,
            "attacker": f"10.77.0.{random.Random(seed).choice([66, 77, 99, 150, 166])}"}


# --------------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------------
def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("iotwatch lab record needs root (it creates network namespaces)",
                                 hint="run it as root, e.g. sudo iotwatch lab record ...")


def missing_tools(families: Sequence[str]) -> tuple[list[str], list[str]]:
    """(required tools missing, optional tools missing) for the families to record."""
    needed = list(BASE_TOOLS)
    for f in families:
        needed += [t for t in FAMILY_TOOLS[f] if t not in needed]
    missing = [t for t in needed if shutil.which(t) is None]
    return [t for t in missing if t not in OPTIONAL_TOOLS], [t for t in missing if t in OPTIONAL_TOOLS]


def require_tools(families: Sequence[str]) -> list[str]:
    required, optional = missing_tools(families)
    if required:
        pkgs = sorted({TOOLS[t] for t in required})
        raise EnvironmentProblem(f"lab tool(s) not found: {', '.join(required)}",
                                 hint=f"install with: apt-get install {' '.join(pkgs)} (or bash dev.sh setup)")
    return optional


# --------------------------------------------------------------------------------------------------
# lab services and benign load
# --------------------------------------------------------------------------------------------------
def write_configs(lab: Lab, wd: Path) -> None:
    ip = {r: h.ip for r, h in lab.hosts.items()}
    pw = wd / "mosquitto.passwd"
    pw.write_text("".join(f"{u}:{SECRET['mqtt']}\n" for u in ("cam", "sensor", "user")))
    Lab.run(["mosquitto_passwd", "-U", str(pw)])
    (wd / "mosquitto.conf").write_text(
        f"listener 1883 {ip['hub']}\nallow_anonymous false\npassword_file {pw}\npersistence false\n"
        f"user root\nlog_dest stderr\nlog_type error\n")
    (wd / "lab.hosts").write_text("".join(f"{a} {r}.lab\n" for r, a in ip.items() if r not in ("attacker", "drop"))
                                  + f"{ip['hub']} broker.lab\n")
    Lab.run(["dropbearkey", "-t", "ed25519", "-f", str(wd / "dropbear_ed25519_host_key")])
    _cert(wd)
    _cert(wd, "drop", DROP_CN)   # the drop server's own self-signed certificate


def start_services(lab: Lab, wd: Path, until: float) -> None:
    ip = {r: h.ip for r, h in lab.hosts.items()}
    u = f"{until:.0f}"
    op = ["--user", "operator", "--password", SECRET["operator"]]
    lab.spawn("gw", ["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                     f"--listen-address={ip['gw']}", f"--addn-hosts={wd / 'lab.hosts'}",
                     f"--server=/{TUNNEL_ZONE}/{ip['sink']}", f"--server=/{IODINE_ZONE}/{ip['sink']}#5353",
                     f"--server=/{DNS2TCP_ZONE}/{ip['sink']}#5354",
                     "--user=root", f"--pid-file={wd / 'dnsmasq.pid'}", "--cache-size=0",
                     # DHCP for the plug (and the pool DHCP starvation drains); large TXT answers (reflection)
                     "--dhcp-range=10.77.0.100,10.77.0.149,255.255.255.0,2m", f"--dhcp-host={lab.hosts['plug'].mac},{ip['plug']}",
                     f"--dhcp-leasefile={wd / 'dnsmasq.leases'}", f"--dhcp-option=3,{ip['gw']}", f"--dhcp-option=6,{ip['gw']}",
                     f"--txt-record=big.lab,{BIG_TXT}", "--edns-packet-max=4096"], "dnsmasq")
    lab.spawn("gw", helper("serve", "--name", "gw", "--bind", ip["gw"], "--until", u, "--http", "80",
                        "--admin-user", "admin", "--admin-pass", SECRET["admin"]), "serve-gw")
    lab.spawn("hub", ["mosquitto", "-c", str(wd / "mosquitto.conf")], "mosquitto")
    lab.spawn("hub", helper("serve", "--name", "hub", "--bind", ip["hub"], "--until", u, "--http", "80", "--ssdp"),
              "serve-hub")
    lab.spawn("hub", sshd_argv(ip["hub"], wd), "sshd")
    reflector_services(lab, wd, dns_role="", snmp_role="hub", ntp_role="gw")
    lab.spawn("plug", helper("serve", "--name", "plug", "--bind", ip["plug"], "--until", u, "--http", "80",
                             "--ssdp", "--mdns"), "serve-plug")

    def https(role: str, cert: str, *extra: str) -> None:   # an HTTPS server (cert/key written by write_configs)
        lab.spawn(role, helper("serve", "--name", role, "--bind", ip[role], "--until", u, "--https", "443",
                               "--cert", str(wd / f"{cert}.crt"), "--key", str(wd / f"{cert}.key"), *extra),
                  f"serve-{role}")

    https("cloud", "cloud")
    https("drop", "drop")   # the attacker's drop server: its own certificate, the same /upload endpoint
    https("doh", "cloud", "--doh-answer", ip["cloud"])
    if shutil.which("dns2tcpd"):
        (wd / "dns2tcpd.conf").write_text(f"listen = {ip['sink']}\nport = 5354\nuser = root\nchroot = {wd}\n"
                                          f"domain = {DNS2TCP_ZONE}\nresources = upload:{ip['sink']}:8080\n"
                                          f"key = {SECRET['dns2tcp']}\n")
        lab.spawn("sink", ["timeout", str(int(until - time.time()) + 5), "dns2tcpd", "-F", "-d", "1", "-f",
                           str(wd / "dns2tcpd.conf")], "dns2tcpd")
    if shutil.which("ptunnel-ng"):
        lab.spawn("sink", ["timeout", str(int(until - time.time()) + 5), "ptunnel-ng", f"-r{ip['sink']}", "-R8080",
                           "-v", "1"], "ptunnel-ng")
    lab.spawn("cam", helper("serve", "--name", "cam", "--bind", ip["cam"], "--until", u, "--http", "80",
                         "--telnet", "23", *op), "serve-cam")
    lab.spawn("sensor", helper("serve", "--name", "sensor", "--bind", ip["sensor"], "--until", u, "--coap", "5683"),
              "serve-sensor")
    lab.spawn("nas", helper("serve", "--name", "nas", "--bind", ip["nas"], "--until", u, "--ftp", "21", "--http", "80",
                         *op), "serve-nas")
    lab.spawn("nas", ["dropbear", "-F", "-E", "-w", "-p", f"{ip['nas']}:22", "-r",
                      str(wd / "dropbear_ed25519_host_key"), "-P", str(wd / "dropbear.pid")], "dropbear")
    lab.spawn("sink", helper("serve", "--name", "sink", "--bind", ip["sink"], "--until", u, "--http", "8080",
                          "--dns", "53", "--dns-zone", TUNNEL_ZONE), "serve-sink")
    if shutil.which("iodined"):
        lab.spawn("sink", ["timeout", str(int(until - time.time()) + 5), "iodined", "-f", "-c", "-P", SECRET["iodine"],
                           "-l", ip["sink"], "-p", "5353", IODINE_NET, IODINE_ZONE], "iodined")


def start_benign(lab: Lab, seed: int, until: float, max_actions: int) -> None:
    ip = {r: h.ip for r, h in lab.hosts.items()}
    u = f"{until:.0f}"
    names = ",".join(f"{r}.lab" for r in ("hub", "cam", "sensor", "nas", "gw")) + ",broker.lab"
    dns = f"{ip['gw']},{names}"
    mqtt = lambda who, topic: f"{ip['hub']},{who},{SECRET['mqtt']},{topic}"  # noqa: E731
    common = ["--until", u, "--max-actions", str(max_actions)]
    wd = lab.workdir
    rng = random.Random(seed)
    (wd / "clip.bin").write_bytes(rng.randbytes(rng.choice([150_000, 300_000, 600_000])))
    (wd / "backup.bin").write_bytes(rng.randbytes(rng.choice([3, 5]) * 1024 * 1024))
    lab.spawn("user", ["timeout", str(int(until - time.time()) + 5), "mosquitto_sub", "-h", ip["hub"], "-u", "user",
                       "-P", SECRET["mqtt"], "-t", "sensors/#", "-k", "15"], "mqtt-sub")
    drivers = {
        "sensor": ["--mqtt", mqtt("sensor", "sensors/sensor/temp"), "--mqtt-every", "2", "--dns", dns],
        "cam": ["--mqtt", mqtt("cam", "sensors/cam/motion"), "--mqtt-every", "6",
                "--http", f"http://{ip['hub']}/status", "--dns", dns],
        "nas": ["--http", f"http://{ip['cam']}/snapshot.jpg", "--ping", ip["gw"], "--dns", dns],
        "user": ["--http", f"http://{ip['cam']}/", f"http://{ip['hub']}/status", f"http://{ip['gw']}/",
                 "--coap", ip["sensor"], "--dns", dns, "--ftp", f"{ip['nas']},operator,{SECRET['operator']}",
                 "--telnet", f"{ip['cam']},operator,{SECRET['operator']}", "--ping", ip["cam"], ip["hub"]],
        "gw": ["--ping", ip["hub"], ip["cam"], ip["sensor"], ip["nas"],
               # health checks of the devices' web endpoints
               "--run", f"5|curl -s -o /dev/null -m 3 http://{ip['hub']}/status",
               "--run", f"9|curl -s -o /dev/null -m 3 http://{ip['cam']}/"],
        "plug": ["--run", "15|udhcpc -i eth0 -f -q -n -t 2 -T 1 -s /bin/true -x hostname:plug",
                 "--run", f"20|{sys.executable} -m iotwatch.captures.lab.services pair --role device --name plug "
                          f"--ip {ip['plug']} --rounds 3"],
    }
    cloud = f"cloud.example.com:443:{ip['cloud']}"  # names known to the device, DNS look-ups not visible
    https = f"curl -sk -o /dev/null -m 30 --resolve {cloud}"
    drivers["cam"] += ["--run", f"12|{https} -H 'Content-Type: video/mp4' --data-binary @{wd / 'clip.bin'} "
                                "https://cloud.example.com/upload"]
    drivers["nas"] += ["--run", f"40|{https} --limit-rate 2M --data-binary @{wd / 'backup.bin'} "
                                "https://cloud.example.com/upload",
                       "--run", f"30|{https} https://cloud.example.com/download?bytes=1500000"]  # update
    drivers["user"] += [
        "--run", f"8|curl -sk -o /dev/null -m 10 --doh-insecure --doh-url https://{ip['doh']}/dns-query "
                 "https://news.example.net/status",
        "--run", f"25|{https} --limit-rate 600K https://cloud.example.com/download?bytes=2500000",  # streaming
        "--run", f"45|{sys.executable} -m iotwatch.captures.lab.services pair --role app --ip {ip['user']} "
                 f"--device {ip['plug']} --rounds 3",
    ]
    for i, (role, args) in enumerate(drivers.items()):
        lab.spawn(role, helper("drive", "--name", role, "--seed", str(seed * 100 + i), *common, *args), f"drive-{role}")


# --------------------------------------------------------------------------------------------------
# recording
# --------------------------------------------------------------------------------------------------
def schedule(steps: list[Step], attack_seconds: float) -> list[float]:
    """Per-step time budget: the attack time split by weight, each at least its minimum."""
    total_w = sum(s.weight for s in steps) or 1.0
    return [max(s.min_seconds, attack_seconds * s.weight / total_w) for s in steps]


def run_step(lab: Lab, step: Step, budget: float, attacker_mac: str, attacker_ip: str, idx: int) -> AttackWindow:
    start = time.time() - 0.05
    procs = [lab.spawn("attacker", ["timeout", "--signal=INT", "--kill-after=3", f"{budget:.1f}", *cmd],
                       f"step{idx:02d}-{i}-{Path(cmd[0]).name}") for i, cmd in enumerate(step.commands)]
    deadline = time.time() + budget + 8
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            lab.stop(p)
    return AttackWindow(label=step.label, start=start, end=time.time() + GRACE, attacker_mac=attacker_mac,
                        attacker_ip=attacker_ip, step=step.name, victim_ip=step.victim_ip,
                        dns_suffix=step.dns_suffix, argv=[" ".join(c) for c in step.commands],
                        reflectors=list(step.reflectors), spoof_port=step.spoof_port, mac_prefix=step.mac_prefix)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def record(out_dir: Path, scenario: str, duration: float, seed: int, force: bool = False,
           keep_workdir: bool = False, log=print, max_steps: int = 0) -> dict:
    """Record one scenario; returns the summary that is also written as ``<capture>.lab.json``.
    ``max_steps`` > 0 keeps only that many (seeded random) steps of each family -- short recordings."""
    require_root()
    families = list(FAMILIES) if scenario == "all" else ([] if scenario == "benign" else [scenario])
    optional_missing = require_tools(families)
    output_folder(out_dir, "--out folder")
    capture = out_dir / f"lab-{scenario}-seed{seed}.pcapng"
    labels_path = Path(str(capture) + ".labels.csv")
    meta_path = Path(str(capture) + ".lab.json")
    if capture.exists() and not force:
        raise InputError(f"{capture} already exists", hint="pass --force to overwrite")
    for p in (capture, labels_path, meta_path):
        p.unlink(missing_ok=True)

    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"iw-{os.getpid()}-"))
    os.chmod(workdir, 0o755)
    lab = Lab(topology(seed), workdir)
    attacker = lab.hosts["attacker"]
    ctx = LabContext(ips={r: h.ip for r, h in lab.hosts.items()}, macs={r: h.mac for r, h in lab.hosts.items()},
                     workdir=workdir, tunnel_zone=TUNNEL_ZONE, iodine_zone=IODINE_ZONE,
                     iodine_peer=IODINE_NET.split("/")[0], creds=SECRET)
    steps: list[Step] = []
    for fam in families:
        fam_steps = [s for s in plan(fam, ctx, rng) if not s.tools() & set(optional_missing)]
        steps += fam_steps[:max_steps] if max_steps > 0 else fam_steps  # plans come shuffled
    notes = [f"{t} not installed: its steps were skipped" for t in optional_missing]
    lead = min(10.0, max(3.0, 0.1 * duration))
    gaps = [rng.uniform(2.0, 4.0) for _ in steps[1:]]
    budgets = schedule(steps, max(0.0, duration - 2 * lead - sum(gaps) - GRACE * len(steps)))
    planned = max(duration, 2 * lead + sum(gaps) + sum(budgets) + GRACE * len(steps))
    until = time.time() + planned + 15

    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    windows: list[AttackWindow] = []
    ok = False
    try:
        lab.build()
        checks = lab.verify_isolated()
        log(f"lab: {len(lab.namespaces)} namespaces ({lab.prefix}*), isolation verified ({len(checks)} checks)")
        lab.ns_run(attacker.ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])  # arpspoof relays (MITM)
        write_configs(lab, workdir)
        dumpcap = lab.spawn(lab.bridge_ns, ["dumpcap", "-q", "-i", BRIDGE, "-w", str(capture),
                                            "-a", f"duration:{int(planned + 60)}"], "dumpcap")
        _wait_for_file(capture, dumpcap)
        start_services(lab, workdir, until)
        time.sleep(1.5)
        start_benign(lab, seed, until, max_actions=int(planned * 10) + 100)
        log(f"lab: recording {capture} (scenario {scenario}, seed {seed}, ~{planned:.0f} s, {len(steps)} attack steps)")
        t0 = time.time()
        time.sleep(lead)
        for i, (step, budget) in enumerate(zip(steps, budgets)):
            w = run_step(lab, step, budget, attacker.mac, attacker.ip, i)
            windows.append(w)
            log(f"lab:   [{step.label}] {step.name}: {w.end - w.start - GRACE:.1f} s")
            time.sleep(GRACE + (gaps[i] if i < len(gaps) else 0.0))
        time.sleep(max(lead, t0 + planned - time.time()))  # benign tail, up to the planned length
        lab.stop(dumpcap, signal.SIGINT, wait=10)
        ok = True
    finally:
        problems = lab.teardown(keep_workdir=keep_workdir)
        for s, h in old.items():
            signal.signal(s, h)
        if not ok:
            capture.unlink(missing_ok=True)
    if problems:
        raise EnvironmentProblem("lab teardown incomplete: " + "; ".join(problems))

    labels = label_packets(read_packet_table(capture), windows, [h.ip for h in lab.hosts.values()])
    write_labels_csv(labels_path, labels)
    summary = {
        "capture": str(capture), "labels": str(labels_path), "scenario": scenario, "seed": seed,
        "frames": len(labels), "class_counts": class_counts(labels),
        "hosts": {r: {"ip": h.ip, "mac": h.mac} for r, h in lab.hosts.items()},
        "isolation_checks": checks, "windows": [w.to_json() for w in windows], "notes": notes,
    }
    if keep_workdir:
        summary["workdir"] = str(workdir)
    meta_path.write_text(json.dumps(summary, indent=1))
    return summary


def _wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise EnvironmentProblem(f"dumpcap exited with code {proc.returncode} while starting on the lab bridge")
        if path.exists() and path.stat().st_size > 0:
            return
        time.sleep(0.1)
    raise EnvironmentProblem(f"dumpcap did not start writing {path} within {timeout:.0f} s")


# --------------------------------------------------------------------------------------------------
# cleanup of labs whose recorder was killed (SIGKILL leaves no chance to tear down)
# --------------------------------------------------------------------------------------------------
_NS_RE = re.compile(r"^iw-(\d+)-[a-z]+$")


def stale_namespaces(names: Sequence[str], alive=lambda pid: os.path.exists(f"/proc/{pid}")) -> list[str]:
    """Lab namespaces (``iw-<pid>-<role>``) whose recorder process no longer exists."""
    out = []
    for n in names:
        m = _NS_RE.match(n)
        if m and not alive(int(m.group(1))):
            out.append(n)
    return out


def cleanup(log=print) -> int:
    require_root()
    names = [line.split()[0] for line in Lab.run(["ip", "netns", "list"]).stdout.splitlines() if line.strip()]
    stale = stale_namespaces(names)
    for ns in stale:
        for pid in Lab.run(["ip", "netns", "pids", ns], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        Lab.run(["ip", "netns", "del", ns], check=False)
        log(f"lab: deleted stale namespace {ns}")
    if not stale:
        log("lab: no stale lab namespaces")
    return 0


# --------------------------------------------------------------------------------------------------
# setup: the Debian packages, without leaving host daemons behind
# --------------------------------------------------------------------------------------------------
PACKAGES_FILE = Path(__file__).with_name("packages.txt")
#: package -> systemd unit its install may start in the host namespace (the lab starts its own copy)
HOST_UNITS = {"mosquitto": "mosquitto.service", "iodine": "iodined.service", "openssh-server": "ssh.service",
              "snmpd": "snmpd.service", "chrony": "chrony.service", "ptunnel-ng": "ptunnel-ng.service",
              "dns2tcp": "dns2tcp.service"}


def lab_packages(path: Path = PACKAGES_FILE) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _installed(pkg: str) -> bool:
    return subprocess.run(["dpkg", "-s", pkg], capture_output=True).returncode == 0


def setup(log=print) -> int:
    """Install missing lab packages; stop/disable host units that those installs started."""
    require_root()
    if shutil.which("apt-get") is None:
        raise EnvironmentProblem("apt-get not found", hint="install by hand: " + " ".join(lab_packages()))
    missing = [p for p in lab_packages() if not _installed(p)]
    if not missing:
        log("lab: all lab packages are installed")
        return 0
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"lab: apt-get install {' '.join(missing)}")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env)
    if proc.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"apt-get install failed with exit code {proc.returncode}",
                                 hint="run 'apt-get update' and retry")
    if shutil.which("systemctl"):
        for pkg in missing:
            unit = HOST_UNITS.get(pkg)
            if unit and subprocess.run(["systemctl", "is-enabled", "--quiet", unit]).returncode == 0:
                subprocess.run(["systemctl", "disable", "--now", unit], capture_output=True)
                log(f"lab: disabled {unit} in the host namespace (the lab runs its own, inside a namespace)")
    return 0


def relabel(capture: Path, log=print) -> dict:
    """Label a recorded capture again from its ``.lab.json`` (hosts and attack windows) with the
    current rules of :mod:`.labelling`; rewrites the sidecar CSV and the class counts. No root,
    no lab: the windows were written at record time."""
    meta_path = Path(str(capture) + ".lab.json")
    if not capture.is_file():
        raise InputError(f"{capture} does not exist")
    try:
        summary = json.loads(meta_path.read_text())
        windows = [AttackWindow(**w) for w in summary["windows"]]
        lab_ips = [h["ip"] for h in summary["hosts"].values()]
    except FileNotFoundError:
        raise InputError(f"{meta_path} does not exist", hint="relabel needs the .lab.json written by lab record") from None
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{meta_path}: not a lab summary ({type(e).__name__}: {e})") from None
    labels = label_packets(read_packet_table(capture), windows, lab_ips)
    labels_path = Path(str(capture) + ".labels.csv")
    before = summary.get("class_counts", {})
    write_labels_csv(labels_path, labels)
    summary["frames"] = len(labels)
    summary["class_counts"] = class_counts(labels)
    meta_path.write_text(json.dumps(summary, indent=1))
    changes = ", ".join(f"{k} {before.get(k, 0)}->{v}" for k, v in sorted(summary["class_counts"].items())
                        if before.get(k, 0) != v)
    log(f"lab: relabelled {capture} ({len(labels)} frames; {changes or 'no change'})")
    return summary
