"""Seeded generator and runner of hostile cases for ``test_fuzz.py`` (issue 16).

Four families, each case a dict built from ``random.Random(f"{seed}/{i}")`` (same seed, same bytes):

* ``capture``  crafted pcap/pcapng: link types, block types (unknown, SPB, NRB, ISB, DSB, several
                IDBs/sections, swapped byte order), timestamps (0, far future, if_tsresol 0/odd,
                backwards), sizes (0-byte, jumbo, caplen > len), label= comments, cuts and byte flips;
                run headless with every output;
* ``labels``   label files: BOM, CRLF, quotes, huge/negative/non-integer frames, conflicts,
                unknown classes, binary, long lines, a capture as labels;
* ``bundle``   model bundles: metadata of the wrong type/size/depth, headers declaring huge or
                misplaced tensors, non-JSON headers;
* ``outputs``  output paths: existing file, folder, trailing slash, dangling/good symlink, FIFO,
                device, two outputs on one path, output = input, missing folder, size limit (disk full).

``run_batch`` runs cases in THIS process (one batch = one subprocess started by the test under
``prlimit`` memory/CPU limits; cases that need a fresh process, like the size limit, get their own
``prlimit`` subprocess). Per case it records the exit code, stderr lines, traceback, wall time, peak
RSS of the process tree, processes left behind, and whether the outputs agree with each other.

    python tests/fuzzgen.py run CASES.json RESULTS.json     # what test_fuzz.py starts
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEMO = ROOT / "captures" / "demo" / "demo.pcapng"
CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
CASE_SECONDS = 60          # a case running longer is a hang
RSS_LIMIT_MB = 700         # peak RSS of the whole process tree (python + tshark) per case


# ------------------------------------------------------------------------------ byte builders
def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body = _pad4(body)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def _opt(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + _pad4(value)


def _end(endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", 0, 0)


def _ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def _udp_frame(rng: random.Random, i: int) -> bytes:
    payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 8, 30, 200])))
    udp = struct.pack("!HHHH", 40000 + i % 500, rng.choice([53, 123, 5683, 1883, 80]), 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0x4000, 64, 17, 0,
                     _ip4(f"192.0.2.{10 + i % 5}"), _ip4("192.0.2.1")) + udp
    return b"\x02\0\0\0\0\x01" + bytes([2, 0, 0, 0, 0, 10 + i % 5]) + b"\x08\x00" + ip


def _tcp_frame(rng: random.Random, i: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000 + i % 300, rng.choice([23, 80, 443, 1883, 22]), i, 0, 0x50,
                      rng.choice([0x02, 0x10, 0x18, 0x04, 0x12, 0xFF]), 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0,
                     _ip4(f"198.51.100.{i % 200}"), _ip4("192.0.2.1")) + tcp
    return b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x0b" + b"\x08\x00" + ip


def _frame(rng: random.Random, i: int) -> bytes:
    r = rng.random()
    if r < 0.45:
        return _udp_frame(rng, i)
    if r < 0.75:
        return _tcp_frame(rng, i)
    if r < 0.85:
        return bytes(rng.randrange(256) for _ in range(rng.choice([1, 14, 60, 300])))
    if r < 0.9:
        return b""
    if r < 0.95:
        return bytes(rng.choice([1500, 9000, 65535, 262144]))
    # ARP
    return (b"\xff" * 6 + b"\x02\0\0\0\0\x0a" + b"\x08\x06" + bytes.fromhex("0001080006040001") + b"\x02\0\0\0\0\x0a"
            + _ip4("192.0.2.10") + b"\0" * 6 + _ip4(f"192.0.2.{i % 250}"))


LINKTYPES = [1, 1, 1, 0, 101, 113, 276, 127, 105, 189, 227, 228, 229, 147, 65000, 0xFFFF]


def _timestamps(rng: random.Random, n: int) -> list[float]:
    mode = rng.choice(["normal", "zero", "future", "backwards", "random", "max"])
    t0 = 1_700_000_000.0
    if mode == "normal":
        return [t0 + i * 0.001 for i in range(n)]
    if mode == "zero":
        return [0.0] * n
    if mode == "future":
        return [4.0e9 + i for i in range(n)]
    if mode == "backwards":
        return [t0 - i for i in range(n)]
    if mode == "max":
        return [float(0xFFFFFFFF)] * n
    return [rng.uniform(0, 4.29e9) for _ in range(n)]


def gen_capture(rng: random.Random) -> tuple[str, bytes]:
    """(file name, bytes) of one crafted capture."""
    n = rng.choice([0, 1, 3, 20, 60, 200])
    frames = [_frame(rng, i) for i in range(n)]
    times = _timestamps(rng, n)
    if rng.random() < 0.35:
        data = _pcap(rng, frames, times)
        name = "c.pcap"
    else:
        data = _pcapng(rng, frames, times)
        name = "c.pcapng"
    r = rng.random()
    if r < 0.15 and len(data) > 40:
        data = data[: rng.randrange(24, len(data))]                  # cut anywhere
    elif r < 0.3 and len(data) > 40:
        b = bytearray(data)
        for _ in range(rng.choice([1, 4, 20])):
            b[rng.randrange(len(b))] = rng.randrange(256)             # flipped bytes
        data = bytes(b)
    return name, data


def plain_pcap(frames: list[bytes]) -> bytes:
    """A well-formed Ethernet pcap (the small capture output/label/bundle cases replay)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f)
    return b"".join(out)


def _pcap(rng: random.Random, frames: list[bytes], times: list[float]) -> bytes:
    endian = rng.choice(["<", "<", ">"])
    nano = rng.random() < 0.3
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    snap = rng.choice([65535, 262144, 64, 0, 0xFFFFFFFF])
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snap, rng.choice(LINKTYPES))]
    for f, t in zip(frames, times):
        sec = int(t) & 0xFFFFFFFF
        frac = rng.randrange(1_000_000_000 if nano else 1_000_000)
        caplen, wirelen = len(f), len(f)
        r = rng.random()
        if r < 0.05:
            wirelen = max(0, caplen - 10)                              # caplen > len
        elif r < 0.08:
            caplen = len(f) + rng.choice([1, 1000, 300000])            # claims more than is there
        out.append(struct.pack(endian + "IIII", sec, frac, caplen, wirelen) + f)
    return b"".join(out)


def _pcapng(rng: random.Random, frames: list[bytes], times: list[float]) -> bytes:
    endian = "<" if rng.random() < 0.85 else ">"
    out = [_shb(rng, endian)]
    n_if = rng.choice([1, 1, 1, 2, 3])
    resols = []
    for _ in range(n_if):
        opts = b""
        resol = 6
        if rng.random() < 0.4:
            resol = rng.choice([0, 3, 9, 0x80 | 10, 0x80 | 0, 0xFF, 19, 127])
            opts += _opt(9, bytes([resol]), endian)
        if rng.random() < 0.2:
            opts += _opt(2, ("if" + "x" * rng.choice([1, 300])).encode(), endian)
        if rng.random() < 0.1:
            opts += _opt(14, struct.pack(endian + "q", rng.choice([0, -1, 2 ** 62])), endian)  # if_tsoffset
        if opts:
            opts += _end(endian)
        out.append(_block(1, struct.pack(endian + "HHI", rng.choice(LINKTYPES), 0,
                                         rng.choice([65535, 262144, 0])) + opts, endian))
        resols.append(resol)
    for i, (f, t) in enumerate(zip(frames, times)):
        r = rng.random()
        if r < 0.03:
            out.append(_block(rng.choice([0x0BADBEEF, 0x00000BAD, 0x40000BAD, 7, 8, 0x80000001]),
                              bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 40]))), endian))
        if r < 0.05:
            out.append(_block(3, struct.pack(endian + "I", len(f)) + f, endian))          # simple packet block
            continue
        if r < 0.07:
            out.append(_block(4, _opt(1, _ip4("192.0.2.1") + b"gw.local\0", endian) + _end(endian), endian))  # NRB
        if r < 0.08:
            out.append(_block(5, struct.pack(endian + "III", 0, 0, 0) + _end(endian), endian))  # ISB
        if r < 0.09:
            out.append(_block(10, struct.pack(endian + "II", 0x544C534B, 4) + b"keys", endian))  # DSB
        if r < 0.1 and i:
            out.append(_shb(rng, endian))                                 # a new section
            out.append(_block(1, struct.pack(endian + "HHI", rng.choice(LINKTYPES), 0, 65535), endian))
        iface = rng.randrange(n_if) if rng.random() > 0.03 else n_if + 5   # sometimes a missing interface
        units = 10 ** (resols[iface] & 0x7F) if iface < n_if and resols[iface] < 0x80 else 1_000_000
        units = min(units, 10 ** 19)
        ts = int(t * units) & 0xFFFFFFFFFFFFFFFF if rng.random() > 0.05 else rng.getrandbits(64)
        opts = b""
        if rng.random() < 0.2:
            cls = rng.choice(CLASSES + ["portscan", "", "dos;label=recon", "x" * 300])
            opts += _opt(1, f"label={cls}".encode(), endian)
        if rng.random() < 0.05:
            opts += _opt(2, struct.pack(endian + "I", rng.getrandbits(32)), endian)   # epb_flags
        if opts:
            opts += _end(endian)
        caplen = len(f) if rng.random() > 0.04 else len(f) + rng.choice([4, 4000, 2 ** 30])
        out.append(_block(6, struct.pack(endian + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, caplen, len(f))
                          + _pad4(f) + opts, endian))
    return b"".join(out)


def _shb(rng: random.Random, endian: str) -> bytes:
    opts = b""
    if rng.random() < 0.2:
        opts = _opt(4, b"fuzz \x1b[31m\n app", endian) + _end(endian)
    return _block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts, endian)


# ------------------------------------------------------------------------------ label files
def gen_labels(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 5, 40, 300])
    header = rng.choice([b"frame_number,label", b"label,frame_number", b"\xef\xbb\xbfframe_number,label",
                         b"frame_number, label", b"frame,cls", b"", b"frame_number,label,extra",
                         b'"frame_number","label"'])
    nl = rng.choice([b"\n", b"\r\n"])
    rows = [header]
    for i in range(n):
        fr = rng.choice([str(i + 1), str(i + 1), str(rng.randrange(1, 100)), "0", "-3", "2.5", "true", " 7",
                         str(2 ** 63), str(10 ** 30), "1e3", "0x10", "", "9" * rng.choice([11, 400]), "4294967295",
                         "4294967296"]).encode()
        cls = rng.choice(CLASSES * 3 + ["", "portscan", "DoS", " dos", "=cmd|' /C calc'!A0", "\x1b[2J",
                                        "x" * rng.choice([10, 5000])]).encode()
        row = fr + b"," + cls
        if header.startswith(b"label"):
            row = cls + b"," + fr
        r = rng.random()
        if r < 0.03:
            row += b",extra"
        elif r < 0.05:
            row = b'"' + row + b'"'
        elif r < 0.06:
            row = b""
        rows.append(row)
    data = nl.join(rows) + (nl if rng.random() < 0.8 else b"")
    r = rng.random()
    if r < 0.05:
        data = bytes(rng.randrange(256) for _ in range(rng.choice([10, 3000])))
    elif r < 0.08:
        data = DEMO.read_bytes()[: rng.choice([100, 100_000])]       # a capture given as labels
    elif r < 0.1:
        data = header + b"\n" + b"1," + b"y" * 200_000                 # one huge line
    elif r < 0.18:                                                     # odd encodings of the same text
        text = data.decode("utf-8", "replace")
        data = rng.choice([lambda: text.encode("utf-16"), lambda: text.encode("utf-16-be"),
                           lambda: text.encode("utf-32"), lambda: text.encode("latin-1", "replace") + b"9,d\xe9s\n",
                           lambda: data.replace(nl, b"\r"), lambda: data.replace(b",", b"\x00,", 3),
                           lambda: data.replace(b"dos", "d\u043es".encode())])()
    return data


# ------------------------------------------------------------------------------ bundles
def _base_bundle_parts():
    from safetensors.numpy import load_file

    from iotwatch.detector.bundle import load_bundle
    from fakes import make_tiny_bundle

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-base-{os.getpid()}.iotw"
    make_tiny_bundle(path, seed=5)
    meta = json.loads(json.dumps(load_bundle(path).meta))
    tensors = load_file(str(path))
    path.unlink()
    return meta, tensors


_WEIRD = [None, True, False, 0, -1, 1e308, "1e400", 2 ** 70, "", "x" * 10_000, [], {}, [1, "a"], {"a": [None]},
          "\x1b]0;t\x07", "=cmd|' /C calc'!A0", "nested"]


def gen_bundle(rng: random.Random, base) -> bytes:
    """The bytes of one (probably broken) bundle derived from a valid tiny one."""
    from safetensors.numpy import save

    meta, tensors = base
    meta = json.loads(json.dumps(meta))
    tensors = dict(tensors)
    r = rng.random()
    if r < 0.55:   # metadata values of the wrong type / size / depth
        for _ in range(rng.choice([1, 1, 2, 4])):
            key = rng.choice(list(meta) + ["extra"])
            v = rng.choice(_WEIRD)
            if v == "nested":
                d = rng.choice([10, 5000, 200_000])
                v = json.loads("[" * min(d, 900) + "]" * min(d, 900)) if d < 1000 else "DEEP%d" % d
            meta[key] = v
            if key == "classes" and rng.random() < 0.5:
                meta[key] = ["normal", "recon", "dos", "bruteforce", "spoofing", rng.choice(["=2+2", "a b", "\x1b[1m", "é"])]
        text = json.dumps(meta)
        for tok in [t for t in text.split('"') if t.startswith("DEEP")]:
            d = int(tok[4:])
            text = text.replace(f'"{tok}"', "[" * d + "]" * d)
        text = text.replace('"1e400"', "1e400")
        if rng.random() < 0.1:
            text = text[: rng.randrange(len(text))]
        return save(tensors, metadata={"iotwatch": text})
    if r < 0.7:    # tensors: missing, extra, wrong shape/dtype, NaN
        import numpy as np

        k = rng.choice(sorted(tensors))
        choice = rng.randrange(4)
        if choice == 0:
            del tensors[k]
        elif choice == 1:
            tensors[k] = np.zeros((3, 3), np.float32)
        elif choice == 2:
            tensors[k] = tensors[k].astype(np.float64)
        else:
            t = tensors[k].copy()
            t.flat[0] = np.nan
            tensors[k] = t
        return save(tensors, metadata={"iotwatch": json.dumps(meta)})
    # raw headers: huge or misplaced tensors, bad JSON, wrong length prefix
    header: dict = {"__metadata__": {"iotwatch": json.dumps(meta)}}
    for name in rng.sample(sorted(tensors), k=min(len(tensors), rng.choice([1, 3]))):
        shape = rng.choice([[400_000_000], [2 ** 31, 2 ** 31], [-1], [1.5], [10, 10], ["a"], []])
        off = rng.choice([[0, 1_600_000_000], [0, 400], [100, 0], [0, 2 ** 64], [0, -4], None])
        header[name] = {"dtype": rng.choice(["F32", "F32", "F64", "I8", "BOOL", "X"]), "shape": shape,
                        "data_offsets": off}
    h = json.dumps(header).encode()
    if rng.random() < 0.2:
        h = h[: rng.randrange(1, len(h))]
    hlen = len(h) if rng.random() > 0.15 else rng.choice([0, 2 ** 40, len(h) + 100, 2 ** 64 - 1])
    return struct.pack("<Q", hlen) + h + bytes(rng.choice([0, 400, 28_000]))


# ------------------------------------------------------------------------------ output paths
OUTPUT_SITUATIONS = ["new", "existing", "existing_force", "folder", "trailing_slash", "dangling_link",
                     "good_link_force", "fifo", "device", "same_two", "equals_input", "equals_sidecar",
                     "missing_folder", "disk_full", "dev_null_force", "link_to_folder", "empty", "socket",
                     "hardlink_input"]


# ------------------------------------------------------------------------------ cases
def make_cases(seed: int, n: int) -> list[dict]:
    """``n`` cases: 40% captures, 20% label files, 20% bundles, 15% output paths, 5% live captures on
    lo stopped by a signal (alternately as root and as a non-root member of the wireshark group)."""
    cases = []
    for i in range(n):
        rng = random.Random(f"{seed}/{i}")
        r = i % 20
        family = ("capture" if r < 8 else "labels" if r < 12 else "bundle" if r < 16 else "outputs" if r < 19
                  else "live")
        cases.append({"id": i, "family": family, "seed": f"{seed}/{i}"})
    only = os.environ.get("IOTWATCH_FUZZ_FAMILIES")   # e.g. "live,outputs" to look at some families
    if only:
        cases = [c for c in cases if c["family"] in only.split(",")]
    return cases


def materialise(case: dict, work: Path, base) -> dict:
    """Write the case's files under ``work`` and fill in its command line."""
    rng = random.Random(case["seed"] + "/bytes")
    d = work / f"case{case['id']:04d}"
    d.mkdir(parents=True, exist_ok=True)
    small = d / "small.pcap"
    small.write_bytes(plain_pcap([_udp_frame(random.Random(i), i) for i in range(30)]))
    outs = {"report": d / "r.json", "predictions": d / "p.csv", "alerts": d / "a.jsonl"}
    case["dir"] = str(d)
    case["outputs"] = {k: str(v) for k, v in outs.items()}
    case["expect_exit"] = [0, 2, 3]
    fam = case["family"]
    if fam == "capture":
        name, data = gen_capture(rng)
        f = d / name
        f.write_bytes(data)
        case["argv"] = ["-r", str(f), "--headless", "--report", str(outs["report"]), "--predictions",
                        str(outs["predictions"]), "--alerts", str(outs["alerts"]), "--model", "@MODEL"]
        if rng.random() < 0.2:
            case["argv"] += ["-c", str(rng.choice([1, 5, 1000]))]
        case["input"] = str(f)
    elif fam == "labels":
        f = d / "l.csv"
        f.write_bytes(gen_labels(rng))
        case["labels"] = str(f)
        case["cli"] = case["id"] % 3 == 0   # every third through the command line (tshark), else the API
        case["argv"] = ["-r", str(small), "--headless", "--labels", str(f), "--report", str(outs["report"]),
                        "--predictions", str(outs["predictions"])]
        case["input"] = str(small)
    elif fam == "bundle":
        f = d / "m.iotw"
        f.write_bytes(gen_bundle(rng, base))
        case["bundle"] = str(f)
        case["cli"] = case["id"] % 4 == 0
        case["argv"] = ["-r", str(small), "--headless", "--model", str(f), "--report", str(outs["report"])]
        case["input"] = str(small)
    elif fam == "live":
        port = 47100 + case["id"] % 800
        case["port"] = port
        case["send"] = rng.choice([0, 100, 3000])
        extra = rng.choice([[], [], ["-c", "50"], ["-a", "1.5"], ["-Y", "udp"], ["-B", "4"]])
        case["signal"] = rng.choice(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL", "SIGINT2"])
        case["delay"] = rng.choice([0.0, 0.05, 0.3])
        case["as_user"] = (case["id"] // 20) % 2 == 1
        if case["as_user"]:   # a folder the wireshark user may write (pytest's tmp folders are 0700)
            import tempfile

            d = Path(tempfile.mkdtemp(prefix=f"iwfuzz{case['id']}-", dir="/tmp"))
            os.chmod(d, 0o777)
            case["dir"] = str(d)
            outs = {"report": d / "r.json", "predictions": d / "p.csv", "alerts": d / "a.jsonl"}
            case["outputs"] = {k: str(v) for k, v in outs.items()}
        case["argv"] = ["-i", "lo", "-f", f"udp port {port}", "--headless", "--report", str(outs["report"]),
                        "--predictions", str(outs["predictions"]), *extra]
        case["input"] = None
    else:
        nth = case["id"] // 20 * 3 + case["id"] % 20 - 16   # the nth output-path case: situations in turn
        situation = OUTPUT_SITUATIONS[nth % len(OUTPUT_SITUATIONS)]
        case["situation"] = situation
        argv = ["-r", str(small), "--headless"]
        target = outs["report"]
        key = "--report"
        force = False
        if situation == "existing":
            target.write_text("precious")
        elif situation == "existing_force":
            target.write_text("precious")
            force = True
        elif situation == "folder":
            target.mkdir()
            force = True
        elif situation == "trailing_slash":
            target = Path(str(target) + "/")
        elif situation == "dangling_link":
            target.symlink_to(d / "nowhere" / "x.json")
            force = rng.random() < 0.5
        elif situation == "good_link_force":
            real = d / "real.json"
            real.write_text("{}")
            target.symlink_to(real)
            force = True
        elif situation == "fifo":
            os.mkfifo(target)
            force = True
        elif situation == "device":
            target = Path("/dev/null")
            force = True
        elif situation == "dev_null_force":
            target = Path("/dev/full")
            force = True
        elif situation == "same_two":
            argv += ["--predictions", str(outs["predictions"]), "--alerts", str(outs["predictions"])]
        elif situation == "equals_input":
            key, target, force = "--predictions", small, True
        elif situation == "equals_sidecar":
            side = d / "small.pcap.labels.csv"
            side.write_text("frame_number,label\n1,dos\n")
            key, target, force = "--report", side, True
        elif situation == "missing_folder":
            target = d / "no" / "such" / "r.json"
        elif situation == "link_to_folder":
            (d / "sub").mkdir()
            target.symlink_to(d / "sub")
            force = True
        elif situation == "empty":     # --report "$UNSET": a usage error, not a run without its report
            key, target = rng.choice(["--report", "--predictions", "--alerts", "-w", "--write-flagged"]), ""
        elif situation == "socket":    # a unix socket where the report goes: never replaced, even with --force
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.bind(str(target))
            except OSError:            # path too long for a socket address: a plain new file instead
                case["situation"] = "new"
            finally:
                sock.close()
            force = True
        elif situation == "hardlink_input":   # another name of the input capture
            os.link(small, d / "h.csv")
            key, target, force = "--predictions", d / "h.csv", True
        elif situation == "disk_full":
            argv = ["-r", "@BIG", "--headless", "--model", "@MODEL", "--predictions", str(outs["predictions"]),
                    "--alerts", str(outs["alerts"])]
            case["fsize"] = rng.choice([0, 1000, 300_000, 700_000])
        argv += [key, str(target)] + (["--force"] if force else [])
        case["argv"] = argv
        case["input"] = str(small)
    return case


# ------------------------------------------------------------------------------ running
class Hang(BaseException):
    pass


def _tree_rss(proc) -> int:
    total = 0
    try:
        for p in [proc] + proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except Exception:
                pass
    except Exception:
        pass
    return total


class _Sampler(threading.Thread):
    """Peak RSS of this process and its children, sampled every 20 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.seen: dict[int, float] = {}   # every descendant seen: pid -> create time
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss(self.proc))
            try:
                for c in self.proc.children(recursive=True):
                    self.seen.setdefault(c.pid, c.create_time())
            except Exception:
                pass

    def left_behind(self) -> list:
        """Descendants seen during the case that still run (also those re-parented to init after
        the process that started them was killed)."""
        import psutil

        out = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.Error:
                pass
        return out


def _count_lines(path: Path) -> int | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if data and not data.endswith(b"\n"):
        return -1   # a cut line
    return data.count(b"\n")


def check_outputs(case: dict, rc: int) -> list[str]:
    """Problems with what a case left behind: outputs must be complete and agree with the report, or
    absent after an error; never a temporary file."""
    problems = []
    d = Path(case["dir"])
    leftovers = [p.name for p in d.rglob(".*.part")]
    if leftovers and not case.get("killed"):   # kill -9 leaves its temporary files, nothing else can
        problems.append(f"temporary files left: {leftovers}")
    outs = {k: Path(v) for k, v in case["outputs"].items()}
    situation = case.get("situation")
    if rc == 2 and situation in (None, "same_two", "missing_folder", "trailing_slash", "dangling_link"):
        made = [k for k, p in outs.items() if p.is_file() and p.stat().st_size and k in " ".join(case["argv"])
                and str(p) in case["argv"]]
        if made:
            problems.append(f"exit 2 but outputs written: {made}")
    if situation == "existing" and outs["report"].read_text() != "precious":
        problems.append("existing report replaced without --force")
    if situation in ("equals_input", "hardlink_input") and Path(case["input"]).stat().st_size < 100:
        problems.append("the input capture was overwritten")
    if situation == "empty" and rc != 2:
        problems.append(f"an empty output path was accepted (exit {rc})")
    if situation == "socket" and not stat.S_ISSOCK(os.lstat(outs["report"]).st_mode):
        problems.append("a unix socket was replaced by the report")
    if situation == "dangling_link" and (d / "nowhere").exists():
        problems.append("dangling link followed")
    if case["family"] == "live" and rc == 0 and not case.get("killed") and not case.get("skipped"):
        rep = outs["report"]
        if not rep.is_file():
            return problems + ["live run ended without its report"]
        r = json.loads(rep.read_text())
        if case.get("sent_signal") and not r.get("interrupted"):
            problems.append("signalled live run not marked interrupted")
        if (case.get("sent_signal") in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") and "-Y" not in case["argv"]
                and r.get("capture_written") is not None
                and not r["capture_written"] - 1 <= r["packets"] <= r["capture_written"]):   # see test_hostile_live
            problems.append(f"stopped capture lost its backlog: {r['packets']} counted of "
                            f"{r['capture_written']} written by dumpcap")
    if case.get("killed"):
        rep = outs["report"]
        if rep.exists() and not json.loads(rep.read_text() or "{}").get("interrupted"):
            problems.append("a killed run left a report not marked interrupted")
        return problems
    if rc == 0 and "--report" in case["argv"]:
        rep_path = Path(case["argv"][case["argv"].index("--report") + 1])
        if rep_path.is_file() and rep_path.suffix == ".json" and not rep_path.is_symlink():
            try:
                rep = json.loads(rep_path.read_text())
            except ValueError:
                return problems + ["report is not JSON"]
            if "--predictions" in case["argv"]:
                rows = _count_lines(Path(case["argv"][case["argv"].index("--predictions") + 1]))
                if rows is not None and rows != rep["packets"] + 1:
                    problems.append(f"predictions rows {rows - 1} != report packets {rep['packets']}")
            if "--alerts" in case["argv"]:
                apath = Path(case["argv"][case["argv"].index("--alerts") + 1])
                if _count_lines(apath) == -1:
                    problems.append("alerts: last line cut")
                elif apath.is_file():
                    try:
                        events = [json.loads(x) for x in apath.read_text().splitlines()]
                    except ValueError:
                        events = None
                        problems.append("alerts: a line is not JSON")
                    opened = rep.get("incidents_opened", 0)
                    said = sum(((e.get("alert") or {}).get("metadata") or {}).get("incident_state") == ["opened"]
                               for e in events or [])
                    if events is not None and said != opened:
                        problems.append(f"{said} 'opened' alert events != report incidents_opened {opened}")
            ref = case.get("reference_frames")
            if ref is not None and not (rep.get("truncated") or rep.get("interrupted")) and "-c" not in case["argv"]:
                if rep["packets"] != ref:
                    problems.append(f"report counts {rep['packets']} packets, tshark reads {ref}, not marked truncated")
    if rc == 3 and case.get("fsize") is not None:
        for k in ("predictions", "alerts"):
            n = _count_lines(outs[k])
            if n == -1:
                problems.append(f"{k}: last line cut")
    return problems


def _reference_frames(path: str) -> int | None:
    try:
        out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in out.stdout.splitlines() if line.strip())


def _api_case(case: dict) -> tuple[int, str]:
    """Label/bundle cases through the API (no tshark): 0 ok, 2 InputError; the message is checked
    like a stderr line."""
    from iotwatch.captures.errors import IotwatchError

    try:
        if case["family"] == "labels":
            from iotwatch.captures.labels import LabelSet

            LabelSet.load(CLASSES, labels_path=case["labels"])
        else:
            from iotwatch.detector.classifier import PacketClassifier

            PacketClassifier.load(case["bundle"])
        return 0, ""
    except IotwatchError as e:
        return e.exit_code, f"iotwatch: error: {e}\n"


def _subprocess_case(case: dict, argv: list[str]) -> tuple[int, str, str]:
    cmd = ["prlimit", f"--fsize={case['fsize']}", "--as=6000000000", sys.executable, "-m", "iotwatch", *argv]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CASE_SECONDS, start_new_session=True)
    except subprocess.TimeoutExpired:
        return -9, "", "HANG"
    return p.returncode, p.stdout, p.stderr


def wireshark_user() -> str | None:
    """A non-root member of the wireshark group (the README's recommended capture setup)."""
    import grp
    import pwd

    try:
        members = grp.getgrnam("wireshark").gr_mem
    except KeyError:
        return None
    for name in members:
        try:
            if pwd.getpwnam(name).pw_uid != 0:
                return name
        except KeyError:
            continue
    return None


PROBE = "import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', 'import encodings']).returncode)"


def as_user_command(user: str, home: str = "/tmp") -> list[str]:
    """``setpriv`` + a python that ``user`` may execute, running iotwatch from this environment."""
    import pwd
    import sysconfig

    exe = os.path.realpath(sys.executable)
    prefix = ["setpriv", "--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--init-groups"]
    code = (f"import site,sys; site.addsitedir({sysconfig.get_paths()['purelib']!r}); "
            "from iotwatch.main import main; sys.exit(main(sys.argv[1:]))")
    ok = subprocess.run(prefix + [exe, "-c", PROBE], capture_output=True, timeout=30).returncode == 0
    return prefix + ["env", f"HOME={home}", f"USER={user}",   # the user's own session, not root's HOME
                     exe if ok else f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}", "-c", code]


def _live_case(case: dict, argv: list[str]) -> tuple[int, str, str, dict]:
    """A live capture on lo in a subprocess (as root, or as the wireshark user), some datagrams to
    its filter's port, then a signal; what it left behind is checked by the caller."""
    import socket

    info: dict = {}
    cmd = [sys.executable, "-m", "iotwatch", *argv]
    if case["as_user"]:
        user = wireshark_user()
        if user is None or os.geteuid() != 0:
            info["skipped"] = "no non-root wireshark user"
            return 0, "", "", info
        cmd = as_user_command(user, home=case["dir"]) + argv
        os.chmod(case["dir"], 0o777)
        info["user"] = user
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=case["dir"])
    first = ""
    deadline = time.monotonic() + 30
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stderr, selectors.EVENT_READ)
    while time.monotonic() < deadline and p.poll() is None:
        if sel.select(0.2):
            first = p.stderr.readline()
            break
    sel.close()
    if "capturing on" not in first:
        try:
            o, e = p.communicate(timeout=CASE_SECONDS)
        except subprocess.TimeoutExpired:
            p.kill()
            return -9, "", "HANG", info
        return p.returncode, o, first + e, info
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        sink.bind(("127.0.0.1", case["port"]))
        t_end = time.monotonic() + 5
        for i in range(case["send"]):
            if time.monotonic() > t_end:
                break
            s.sendto(b"fuzz %d" % i, ("127.0.0.1", case["port"]))
        time.sleep(case["delay"])
        ends_itself = "-c" in argv and case["send"] >= 50 or "-a" in argv
        if not ends_itself:
            sig = case["signal"]
            info["sent_signal"] = sig
            p.send_signal(signal.SIGINT if sig == "SIGINT2" else getattr(signal, sig))
            if sig == "SIGINT2":
                time.sleep(0.05)
                p.send_signal(signal.SIGINT)
        try:
            o, e = p.communicate(timeout=CASE_SECONDS)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return -9, "", "HANG", info
    rc = p.returncode
    if info.get("sent_signal") == "SIGKILL" and rc == -9:
        rc = 0   # what we asked for; outputs are not expected, processes left behind are checked
        info["killed"] = True
    return rc, o, e, info


def run_case(case: dict, model: str, big: str) -> dict:
    import psutil

    from iotwatch.main import main

    argv = [model if a == "@MODEL" else big if a == "@BIG" else a for a in case["argv"]]
    if case["family"] == "capture" and case["id"] % 2 == 0:
        case["reference_frames"] = _reference_frames(case["input"])
    res = {"id": case["id"], "family": case["family"], "situation": case.get("situation"), "argv": argv}
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    err = io.StringIO()
    out = io.StringIO()
    hang = False
    try:
        if case["family"] == "live":
            rc, o, e, info = _live_case(case, argv)
            out.write(o)
            err.write(e)
            hang = e == "HANG"
            res.update(info)
            case.update(info)
        elif case.get("fsize") is not None:
            rc, o, e = _subprocess_case(case, argv)
            out.write(o)
            err.write(e)
            hang = e == "HANG"
        elif case["family"] in ("labels", "bundle") and not case.get("cli"):
            rc, e = _api_case(case)
            err.write(e)
        else:
            old = signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(CASE_SECONDS)
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                    rc = main(argv)
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
    except Hang:
        rc, hang = -9, True
    except BaseException:  # noqa: BLE001  a traceback: what the harness is here to find
        rc = 1
        err.write("Traceback (most recent call last):\n" + traceback.format_exc())
    res["seconds"] = round(time.perf_counter() - t0, 3)
    sampler.stop.set()
    sampler.join()
    res["peak_rss_mb"] = round(sampler.peak / 1e6, 1)
    res["rc"] = rc
    res["hang"] = hang
    res["stderr"] = err.getvalue()[-3000:]
    # processes left behind (tshark, dumpcap): give them a moment to exit, then list them
    orphans = []
    for _ in range(100):
        orphans = sampler.left_behind() + [p for p in psutil.Process().children(recursive=True)
                                           if p.status() != psutil.STATUS_ZOMBIE]
        if not orphans:
            break
        time.sleep(0.05)
    res["orphans"] = [f"{p.pid}:{p.name()}" for p in orphans]
    for p in orphans:
        with contextlib.suppress(Exception):
            p.kill()
    res["problems"] = check_outputs(case, rc) if not hang else []
    if case.get("as_user") and case["dir"].startswith("/tmp/iwfuzz"):
        import shutil

        shutil.rmtree(case["dir"], ignore_errors=True)
    return res


def _alarm(*_):
    raise Hang()


def run_batch(cases_file: str, results_file: str) -> None:
    spec = json.loads(Path(cases_file).read_text())
    base = _base_bundle_parts()
    work = Path(spec["work"])
    results = []
    for case in spec["cases"]:
        materialise(case, work, base)
        results.append(run_case(case, spec["model"], spec["big"]))
        Path(results_file).write_text(json.dumps(results))  # progress survives a crash of the batch


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        run_batch(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
