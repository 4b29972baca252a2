"""Isolated lab network for ``iotwatch lab``: namespaces, veths, a bridge, and the processes in them.

Safety rules this module enforces (see captures/lab/recorder.py for the whole recorder):

* Every namespace is named ``iw-<pid>-<role>`` and only namespaces with this run's prefix are ever
  deleted. The host (root) namespace is never changed: veth pairs are created *inside* a lab
  namespace with the peer placed directly into the bridge namespace (``ip -n NS link add ... peer
  ... netns BR``), so no interface ever exists in the host namespace, and the bridge lives in a
  namespace of its own.
* Lab hosts get one address in the lab subnet and no default route. :meth:`Lab.verify_isolated`
  checks this in every namespace (routes, links, a route look-up and a ping towards each host
  address) before any tool runs; a failure raises and the lab is torn down.
* Every process is started through :meth:`Lab.spawn` in its own session, marked with the
  environment variable ``IOTWATCH_LAB=<prefix>`` (inherited by its children), with HOME set to the
  lab's working directory (tools' session files, e.g. ncrack's restore state, go there) and remembered; teardown
  signals exactly those process groups, then any process still inside *our* namespaces, then
  deletes the namespaces and the working directory.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import EnvironmentProblem

LAB_SUBNET = ipaddress.ip_network("10.77.0.0/24")
#: "cloud" hosts of the lab (an unseen upload target, a DoH server): TEST-NET-3, a documentation range
#: that is never routed on the internet. They are namespaces of this lab on the same bridge; the lab
#: hosts reach them through an on-link route, never through a gateway.
CLOUD_NET = ipaddress.ip_network("203.0.113.0/24")
LAB_NETS = (LAB_SUBNET, CLOUD_NET)
LAB_ENV = "IOTWATCH_LAB"   # every lab process (and its children) carries IOTWATCH_LAB=<prefix>
BRIDGE = "br0"


def cloud_hops(ip: str) -> int:
    """How many routers a cloud host's packets seem to have crossed when the lab's capture sees them: 10-18,
    fixed per address. A real Internet peer is that far; on the lab's one bridge it would arrive with its
    initial TTL (0 hops) like a LAN neighbour, and a model would learn "port 443 at hop 0" from the lab
    (the cloud backups, the drop server, the case captures' HTTPS server). Its initial TTL is lowered by as
    much (``net.ipv4.ip_default_ttl``); tools that set their own TTL (hping3, scapy) are not affected."""
    return 10 + int(ipaddress.ip_address(ip)) % 9


@dataclass(frozen=True)
class Host:
    """One lab host: role name, namespace, address and MAC (lower case)."""

    role: str
    ns: str
    ip: str
    mac: str


def mac_for(ip: str) -> str:
    """Deterministic locally administered MAC from the last two address bytes."""
    b = ipaddress.ip_address(ip).packed
    return "02:77:00:00:%02x:%02x" % (b[2], b[3])


class Lab:
    """Builds, runs and tears down one lab. Use as a context manager (teardown in ``__exit__``)."""

    def __init__(self, hosts: dict[str, str], workdir: Path, prefix: str | None = None):
        self.prefix = prefix or f"iw-{os.getpid()}-"
        self.workdir = workdir
        self.bridge_ns = self.prefix + "br"
        self.hosts = {role: Host(role, self.prefix + role, ip, mac_for(ip)) for role, ip in hosts.items()}
        for h in self.hosts.values():
            if not in_lab(h.ip):
                raise ValueError(f"lab host {h.role} address {h.ip} is outside {LAB_SUBNET} and {CLOUD_NET}")
        self._created: list[str] = []
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: list = []

    # -- plumbing ---------------------------------------------------------------------------------
    @staticmethod
    def run(argv: Sequence[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise EnvironmentProblem(f"{argv[0]} not found", hint="install iproute2") from None
        if check and proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EnvironmentProblem(f"lab set-up failed: {' '.join(argv)}: {err}")
        return proc

    def ns_run(self, ns: str, argv: Sequence[str], check: bool = True, timeout: float = 30):
        return self.run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout)

    @property
    def namespaces(self) -> list[str]:
        return list(self._created)

    # -- build ------------------------------------------------------------------------------------
    def build(self) -> None:
        existing = self.run(["ip", "netns", "list"]).stdout
        if any(line.split()[0].startswith(self.prefix) for line in existing.splitlines() if line.strip()):
            raise EnvironmentProblem(f"network namespaces named {self.prefix}* already exist",
                                     hint="remove them with 'ip netns del NAME'")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._add_ns(self.bridge_ns)
        self.run(["ip", "-n", self.bridge_ns, "link", "add", BRIDGE, "type", "bridge"])
        self.run(["ip", "-n", self.bridge_ns, "link", "set", BRIDGE, "up"])
        for h in self.hosts.values():
            self._add_ns(h.ns)
            port = "v-" + h.role[:12]
            self.run(["ip", "-n", h.ns, "link", "add", "eth0", "address", h.mac, "type", "veth",
                      "peer", "name", port, "netns", self.bridge_ns])
            self.run(["ip", "-n", self.bridge_ns, "link", "set", port, "master", BRIDGE])
            self.run(["ip", "-n", self.bridge_ns, "link", "set", port, "up"])
            own, other = (LAB_SUBNET, CLOUD_NET) if ipaddress.ip_address(h.ip) in LAB_SUBNET else (CLOUD_NET, LAB_SUBNET)
            self.run(["ip", "-n", h.ns, "addr", "add", f"{h.ip}/{own.prefixlen}", "dev", "eth0"])
            if own is CLOUD_NET:  # seen from the LAN, an Internet host is many hops away (cloud_hops)
                self.ns_run(h.ns, ["sysctl", "-q", "-w", f"net.ipv4.ip_default_ttl={64 - cloud_hops(h.ip)}"])
            self.run(["ip", "-n", h.ns, "link", "set", "eth0", "up"])
            # wire-sized frames: without this, veth hands TCP segments of up to 64 KB to the bridge
            # (TSO/GSO), and the capture shows packets no real link carries
            self.ns_run(h.ns, ["ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off"], check=False)
            if any(ipaddress.ip_address(x.ip) in other for x in self.hosts.values()):
                # on-link: the other lab network is on the same bridge (no gateway, no way out)
                self.run(["ip", "-n", h.ns, "route", "add", str(other), "dev", "eth0"])

    def _add_ns(self, ns: str) -> None:
        self.run(["ip", "netns", "add", ns])
        self._created.append(ns)
        self.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # IPv6 off: the lab is an IPv4 subnet, and no SLAAC/router solicitations leave any host.
        self.ns_run(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        self.ns_run(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], check=False)

    # -- isolation check --------------------------------------------------------------------------
    def verify_isolated(self, host_addresses: Sequence[str] | None = None) -> list[str]:
        """Raise EnvironmentProblem unless no lab namespace has a way out; returns the checks done."""
        host_addresses = list(host_addresses if host_addresses is not None else host_side_addresses())
        done = []
        for ns in self._created:
            routes = json.loads(self.run(["ip", "-j", "-n", ns, "route", "show", "table", "all"]).stdout or "[]")
            for r in routes:
                dst = r.get("dst", "")
                if r.get("table") in ("local",) or r.get("type") in ("local", "broadcast"):
                    continue
                if dst == "default" or not dst:
                    raise EnvironmentProblem(f"lab namespace {ns} has a default route", hint="aborting before any attack")
                net = ipaddress.ip_network(dst, strict=False)
                if net.version == 4 and not any(net.subnet_of(n) for n in LAB_NETS):
                    raise EnvironmentProblem(f"lab namespace {ns} routes {dst} outside {LAB_SUBNET} and {CLOUD_NET}",
                                             hint="aborting before any attack")
            links = json.loads(self.run(["ip", "-j", "-n", ns, "link", "show"]).stdout or "[]")
            for link in links:
                name = link.get("ifname", "")
                if ns == self.bridge_ns:
                    ok = name in ("lo", BRIDGE) or name.startswith("v-")
                else:
                    ok = name in ("lo", "eth0")
                if not ok:
                    raise EnvironmentProblem(f"lab namespace {ns} has an unexpected interface {name}")
            done.append(f"{ns}: {len(routes)} routes all inside {LAB_SUBNET} / {CLOUD_NET}, links ok")
        probe = [h.ns for h in self.hosts.values()]
        for addr in host_addresses:
            for ns in probe:
                got = self.run(["ip", "-n", ns, "route", "get", addr], check=False)
                if got.returncode == 0 and "unreachable" not in got.stdout:
                    raise EnvironmentProblem(f"lab namespace {ns} has a route to host address {addr}",
                                             hint="aborting before any attack")
            ping = self.ns_run(probe[0], ["ping", "-n", "-c", "1", "-W", "1", addr], check=False, timeout=10)
            if ping.returncode == 0:
                raise EnvironmentProblem(f"lab namespace {probe[0]} can reach host address {addr}",
                                         hint="aborting before any attack")
            done.append(f"host address {addr}: no route from any lab host, ping fails")
        return done

    # -- processes --------------------------------------------------------------------------------
    def spawn(self, role_or_ns: str, argv: Sequence[str], name: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        """Start ``argv`` inside a lab namespace (own session, output to workdir/<name>.log)."""
        ns = self.hosts[role_or_ns].ns if role_or_ns in self.hosts else role_or_ns
        if ns not in self._created:
            raise ValueError(f"{ns} is not a namespace of this lab")
        log = open(self.workdir / f"{name}.log", "ab")
        self._logs.append(log)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=stdin, stdout=log, cwd=self.workdir,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, HOME=str(self.workdir), **{LAB_ENV: self.prefix}))
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 3.0) -> None:
        """Signal the process group of one of our processes, escalating to SIGKILL."""
        if proc.poll() is not None:
            return
        for s, w in ((sig, wait), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(proc.pid, s)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=w)
                return
            except subprocess.TimeoutExpired:
                continue

    def pids_in(self, ns: str) -> list[int]:
        out = self.run(["ip", "netns", "pids", ns], check=False).stdout
        return [int(x) for x in out.split() if x.isdigit()]

    # -- teardown ---------------------------------------------------------------------------------
    def teardown(self, keep_workdir: bool = False) -> list[str]:
        """Stop our processes, delete our namespaces (and the workdir); returns problems, if any."""
        problems = []
        for _, proc in reversed(self._procs):
            self.stop(proc)
        for ns in self._created:
            for pid in self.pids_in(ns):  # anything still inside a namespace we created
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in reversed(self._created):
            for _ in range(5):
                if self.run(["ip", "netns", "del", ns], check=False).returncode == 0:
                    break
                time.sleep(0.3)
            else:
                problems.append(f"could not delete namespace {ns}")
        self._created.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()


def in_lab(ip: str) -> bool:
    """True for an address of the lab's own networks (the subnet and the on-link "cloud" range)."""
    return any(ipaddress.ip_address(ip) in n for n in LAB_NETS)


def host_side_addresses() -> list[str]:
    """IPv4 addresses of the host namespace (read only; used to prove the lab cannot reach them)."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    addrs = []
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            ip = a.get("local", "")
            if ip and not ipaddress.ip_address(ip).is_loopback:
                addrs.append(ip)
    return addrs
