"""Peak RSS of the whole process tree (python + tshark + dumpcap) while replaying or capturing.

    .venv/bin/python bench/memory.py FILE                 # iotwatch -r FILE --headless (when a classifier exists)
    .venv/bin/python bench/memory.py FILE --source-only   # the capture layer alone (open_source, iterate, discard)
    .venv/bin/python bench/memory.py FILE --tshark        # raw tshark -T fields, for reference
    .venv/bin/python bench/memory.py --live [--packets 1000000] [--rate 20000] [--rotate N ...] [--pipeline]
    .venv/bin/python bench/memory.py --bombs             # label-file and bundle-header bombs (issue 16)

Samples the RSS sum of the child process and all its descendants with psutil every ``--every``
seconds and prints a sparse timeline (to see whether it is flat or grows with packets), then
``peak_rss_mb=<MB>`` as the LAST line. The issue's target: < 400 MB for a 1M-packet replay.

``--live`` captures on ``lo`` (needs capture permission) while a sender subprocess sends ``--packets``
small UDP datagrams to 127.0.0.1 at ``--rate`` per second (bounded in count and time), a new source
port every ``--flow`` datagrams (tshark's state grows with flows, not with packets); or, with
``--replay FILE`` (e.g. from ``iotwatch simulate``), FILE's IPv4 and ARP frames written onto lo
through a packet socket: a realistic mix of hosts and protocols, captured by dumpcap on the way in and
then discarded by the kernel (not addressed to lo, IPv4 checksum broken on purpose). Once per
``--rotate`` value (default: the default rotation, then 0 = one tshark for the whole capture). The
child opens the source with ``rotate_packets`` and discards batches, or with ``--pipeline`` runs the
whole headless loop (features + bundled model). Per run it prints the timeline, packets counted and
dumpcap's own count, tsharks used, peak tree RSS, and the growth in MB per 100k packets (least
squares of RSS against packets counted, between 10% and 98% of them), for the tree and for tshark alone.
dumpcap's RSS includes the pages of its kernel capture ring it has touched (bounded by ``-B``, 128 MiB).
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

SOURCE_ONLY = """
import sys
from iotwatch.captures.sources import open_source
src = open_source(read=sys.argv[1])
n = 0
for b in src.batches(max_rows=8192):
    n += len(b)
src.close()
print(f"{n} packets", file=sys.stderr)
"""


LIVE_CHILD = """
import sys, time
from iotwatch.captures.sources import open_source
bpf, want, rotate, pipeline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
factory = lambda: open_source(iface="lo", bpf=bpf, rotate_packets=rotate)
said = [False, 0]

def progress(src, n):
    if not said[0] and src.capturing:  # dumpcap's filter is in place
        said[0] = True
        print("capturing", flush=True)
    if n - said[1] >= 5000:
        said[1] = n
        print("packets", n, flush=True)

try:
    if pipeline:
        from iotwatch.detector.run import MonitorRun
        from iotwatch.detector.config import RunConfig, SourceConfig
        cfg = RunConfig(source=SourceConfig(iface="lo"), count=want)
        run = MonitorRun(cfg, cfg.load_classifier(), None, source_factory=factory)
        report = run.run(on_batch=lambda cb: progress(run.source, run.totals.packets),
                         cancelled=lambda: progress(run.source, run.totals.packets) or False)
        src, n = run.source, report["packets"]
    else:
        src, n = factory(), 0
        try:
            for b in src.batches(max_rows=8192, max_wait=0.1):
                n += len(b)
                progress(src, n)
                if n >= want:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            src.close()
except KeyboardInterrupt:
    pass
st = src.stats
sp = getattr(src, "_splitter", None)
import resource
cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for f in ("ru_utime", "ru_stime"))
print("done", n, st.extra.get("captured", -1), st.capture_drops, getattr(src, "tsharks_started", 0),
      int(1000 * sp.longest_wait) if sp else 0, int(1000 * cpu), flush=True)
"""

SENDER = """
import socket, sys, time
port, n, rate, flow = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", port))  # swallows the datagrams: no ICMP port unreachable
t0 = time.monotonic()
stop = t0 + 2 * n / rate + 30  # bounded in time as well as in count
sent = 0
while sent < n and time.monotonic() < stop:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a new source port: a new flow
        for _ in range(min(flow, n - sent)):
            s.sendto(b"iotwatch-mem %d" % sent, ("127.0.0.1", port))
            sent += 1
    ahead = t0 + sent / rate - time.monotonic()
    if ahead > 0.002:
        time.sleep(ahead)
print(sent, flush=True)
"""


INJECTOR = r"""
import os, socket, struct, sys, time
from iotwatch.captures.pcapfile import iter_packets
path, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
# Frames of a capture written onto lo through a packet socket. Safe by construction: dumpcap captures
# them on the way in, then the kernel discards every one: the destination MAC is not lo's (the stack
# drops "other host" frames), lo does no ARP, and each IPv4 header checksum is broken on purpose
# (dropped even if a frame were broadcast). IPv6 and other frames are not sent at all.
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(("lo", 0))

def frames():
    for _, frame, _ in iter_packets(path):
        yield frame

t0 = time.monotonic()
stop = t0 + 2 * n / rate + 30
sent = 0
for f in frames():
    if sent >= n or time.monotonic() > stop:
        break
    off = 14
    etype = f[12:14]
    while etype == b"\x81\x00" and len(f) >= off + 4:  # VLAN tags
        etype, off = f[off + 2:off + 4], off + 4
    if etype == b"\x08\x00" and len(f) >= off + 20:
        f = bytearray(f)
        f[off + 10] ^= 0xFF  # IPv4 header checksum: now wrong, so the stack drops the frame
        f[off + 11] ^= 0x5A
    elif etype != b"\x08\x06":  # ARP is fine (lo does no ARP); skip IPv6 and the rest
        continue
    if f[0] & 1 == 0 and f[:6] == b"\0" * 6:
        continue  # addressed to lo's own (all-zero) MAC: would be delivered, skip
    sock.send(f)
    sent += 1
    if sent % 100 == 0:
        ahead = t0 + sent / rate - time.monotonic()
        if ahead > 0.002:
            time.sleep(ahead)
print(sent, flush=True)
"""


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def command(ns) -> list[str]:
    if ns.tshark:
        from iotwatch.captures.tshark.args import tshark_fields_command
        from pyshark.tshark.tshark import get_process_path

        return tshark_fields_command(get_process_path(), read=ns.file, line_buffered=False, extra=ns.extra)
    if ns.source_only or importlib.util.find_spec("iotwatch.detector.classifier") is None:
        return [sys.executable, "-c", SOURCE_ONLY, ns.file]
    return [sys.executable, "-m", "iotwatch", "-r", ns.file, "--headless"]


def rss_by_name(proc: psutil.Process, name: str) -> int:
    """RSS sum of ``proc``'s descendants called ``name``."""
    total = 0
    for p in proc.children(recursive=True):
        try:
            if p.name() == name:
                total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def slope_mb_per_100k(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of RSS (bytes) against packets, in MB per 100k packets."""
    if len(points) < 3:
        return float("nan")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return float("nan")
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx * 100_000 / 2**20


def live_run(rotate: int, ns) -> dict:
    """One live capture on lo with ``rotate_packets=rotate`` while the sender sends ``ns.packets``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if ns.replay:  # the injected frames never use 127.0.0.1 (other loopback users do); IPv6 is never sent
        bpf = "not host 127.0.0.1 and not ip6"
        send = [sys.executable, "-c", INJECTOR, ns.replay, str(ns.packets), str(ns.rate)]
    else:
        bpf = f"udp dst port {port}"
        send = [sys.executable, "-c", SENDER, str(port), str(ns.packets), str(ns.rate), str(ns.flow)]
    child = subprocess.Popen([sys.executable, "-c", LIVE_CHILD, bpf, str(ns.packets), str(rotate),
                              "1" if ns.pipeline else "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    state = {"packets": 0, "capturing": False, "done": None}

    def read_child():
        for line in child.stdout:
            word, *rest = line.split()
            if word == "capturing":
                state["capturing"] = True
            elif word == "packets":
                state["packets"] = int(rest[0])
            elif word == "done":
                state["done"] = [int(v) for v in rest]

    reader = threading.Thread(target=read_child, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not state["capturing"]:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise SystemExit(f"live capture did not start: {child.stderr.read().strip()[-300:]}")
        time.sleep(0.05)
    time.sleep(0.3)
    sender = subprocess.Popen(send, stdout=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    samples = []  # (seconds, packets counted, tree rss, tshark rss, dumpcap rss)
    last, still = -1, time.monotonic()
    while child.poll() is None:
        samples.append((time.perf_counter() - t0, state["packets"], tree_rss(proc), rss_by_name(proc, "tshark"),
                        rss_by_name(proc, "dumpcap")))
        if sender.poll() is not None:  # everything sent: stop once the count stops moving
            if state["packets"] != last:
                last, still = state["packets"], time.monotonic()
            elif time.monotonic() - still > 10:
                child.send_signal(signal.SIGINT)
                break
        time.sleep(ns.every)
    try:
        child.wait(60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    sent = int(sender.communicate(timeout=60)[0] or 0)
    reader.join(5)
    seconds = time.perf_counter() - t0
    counted, captured, drops, tsharks, stall_ms, cpu_ms = state["done"] or [state["packets"], -1, -1, 0, 0, 0]
    # steady state: after the first 10% of packets, before the last 2% (the end of the run tears down)
    warm = [s for s in samples if 0.1 * counted <= s[1] <= 0.98 * counted]
    return dict(rotate=rotate, sent=sent, counted=counted, captured=captured, drops=drops, tsharks=tsharks,
                stall_ms=stall_ms, cpu=cpu_ms / 1000,
                seconds=seconds, samples=samples, exit=child.returncode,
                peak=max(s[2] for s in samples), tshark_peak=max(s[3] for s in samples),
                dumpcap_peak=max(s[4] for s in samples),
                python_peak=max(s[2] - s[3] - s[4] for s in samples),
                growth=slope_mb_per_100k([(s[1], s[2]) for s in warm]),
                tshark_growth=slope_mb_per_100k([(s[1], s[3]) for s in warm]),
                err=child.stderr.read().strip().splitlines()[-1:] if child.returncode else [])


def live_main(ns) -> int:
    from iotwatch.captures.tshark.source import LIVE_ROTATE_PACKETS

    rotations = ns.rotate if ns.rotate is not None else [LIVE_ROTATE_PACKETS, 0]
    what = f"frames of {ns.replay}" if ns.replay else f"UDP datagrams ({ns.flow} per flow)"
    print(f"live on lo: {ns.packets:,} {what} at {ns.rate:,.0f}/s, "
          f"{'headless pipeline' if ns.pipeline else 'capture layer'}, rotate_packets={rotations}", file=sys.stderr)
    results = []
    for rotate in rotations:
        r = live_run(rotate, ns)
        results.append(r)
        print(f"--- rotate_packets={rotate}" + (" (one tshark)" if rotate == 0 else ""))
        step = max(1, len(r["samples"]) // 12)
        for t, n, rss, trss, drss in r["samples"][::step]:
            print(f"t={t:6.1f}s  packets={n:>9,}  tree={rss / 2**20:6.1f} MB  tshark={trss / 2**20:6.1f}  "
                  f"dumpcap={drss / 2**20:6.1f}  python={(rss - trss - drss) / 2**20:6.1f}")
        print(f"sent={r['sent']} counted={r['counted']} dumpcap_captured={r['captured']} drops={r['drops']} "
              f"tsharks={r['tsharks']} longest_rotation_stall_ms={r['stall_ms']} cpu_seconds={r['cpu']:.1f} seconds={r['seconds']:.1f} exit={r['exit']} {' '.join(r['err'])}")
        print(f"peak_rss_mb={r['peak'] / 2**20:.1f} tshark_peak_mb={r['tshark_peak'] / 2**20:.1f} "
              f"dumpcap_peak_mb={r['dumpcap_peak'] / 2**20:.1f} python_peak_mb={r['python_peak'] / 2**20:.1f} "
              f"growth_mb_per_100k={r['growth']:.2f} tshark_growth_mb_per_100k={r['tshark_growth']:.2f}")
    print("summary: " + "; ".join(f"rotate={r['rotate']}: peak {r['peak'] / 2**20:.0f} MB, "
                                  f"growth {r['growth']:.2f} MB/100k" for r in results))
    return 0 if all(r["exit"] == 0 and r["counted"] > 0 for r in results) else 1


def _hwm(pid: int) -> int:
    """VmHWM (peak RSS so far) of one process, in bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _make_bombs(d) -> list[tuple[str, list[str]]]:
    """(name, iotwatch arguments) of each memory bomb of issue 16, files written under ``d``."""
    import json
    import struct
    from pathlib import Path

    import numpy as np

    d = Path(d)
    one = d / "one-line.labels.csv"
    one.write_text("frame_number,label\n100000000,dos\n")           # 42 bytes: was 970 MB
    rows = d / "10M-rows.labels.csv"                                  # was 2.66 GB
    classes = np.array([b"normal", b"recon", b"dos", b"bruteforce", b"spoofing", b"exfiltration"])
    with open(rows, "wb") as fh:
        fh.write(b"frame_number,label\n")
        for start in range(1, 10_000_001, 1_000_000):
            n = np.arange(start, start + 1_000_000)
            fh.write(b"".join(b"%d,%s\n" % (i, classes[i % 6]) for i in n.tolist()))
    header = {"__metadata__": {"iotwatch": "{}"},
              "layers.0.weight": {"dtype": "F32", "shape": [375_000_000], "data_offsets": [0, 1_500_000_000]}}
    h = json.dumps(header).encode()
    bundle = d / "huge-tensor.iotw"                                   # 28 KB declaring 1.5 GB: was 3.0 GB
    bundle.write_bytes(struct.pack("<Q", len(h)) + h + bytes(28_000 - 8 - len(h)))
    cap = d / "capture-as-labels.pcapng"                              # --labels given a capture: was 1.9 GB/GB
    demo = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
    with open(cap, "wb") as fh:
        for _ in range(60):
            fh.write(demo.read_bytes())
    return [("labels: one line naming frame 100,000,000", ["--labels", str(one)]),
            ("labels: 10M rows", ["--labels", str(rows), "-c", "1"]),
            ("labels: /dev/zero", ["--labels", "/dev/zero"]),
            (f"labels: a {cap.stat().st_size / 1e6:.0f} MB capture", ["--labels", str(cap)]),
            ("bundle: header declaring a 1.5 GB tensor in 28 KB", ["--model", str(bundle)])]


def bombs_main(ns) -> int:
    """Each bomb through ``iotwatch -r demo --headless``: peak RSS of the iotwatch process (VmHWM,
    sampled until it exits) and of the whole tree (tshark included); the target is <= 200 MB for
    the iotwatch process."""
    import tempfile
    from pathlib import Path

    demo = Path(__file__).resolve().parent.parent / "captures" / "demo" / "demo.pcapng"
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for name, extra in _make_bombs(d):
            t0 = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-m", "iotwatch", "-r", str(demo), "--headless", *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            proc = psutil.Process(child.pid)
            hwm = tree = 0
            while child.poll() is None:
                hwm = max(hwm, _hwm(child.pid))
                tree = max(tree, tree_rss(proc))
                time.sleep(0.01)
            err = child.stderr.read().decode("utf-8", "replace").strip().splitlines()
            mb = hwm / 2**20
            worst = max(worst, mb)
            print(f"bomb: {name:48s} exit={child.returncode} {time.perf_counter() - t0:5.1f} s  "
                  f"peak_rss_mb={mb:6.1f} (iotwatch)  tree={tree / 2**20:6.1f} MB  {(err or [''])[-1][:90]}")
    print(f"worst_bomb_peak_rss_mb={worst:.1f} (target <= 200)")
    return 0 if worst <= 200 else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--source-only", action="store_true", help="measure the capture layer alone")
    mode.add_argument("--tshark", action="store_true", help="measure raw tshark -T fields alone")
    mode.add_argument("--live", action="store_true", help="capture on lo while a subprocess sends UDP to 127.0.0.1")
    ap.add_argument("--extra", nargs="*", default=[], help="extra tshark arguments with --tshark (e.g. -M 100000)")
    ap.add_argument("--every", type=float, default=None, help="sampling interval in seconds (default 0.2; live 0.5)")
    ap.add_argument("--packets", type=int, default=1_000_000, help="live: datagrams to send (default 1M)")
    ap.add_argument("--rate", type=float, default=20_000, help="live: datagrams per second (default 20k)")
    ap.add_argument("--flow", type=int, default=10, help="live: datagrams per UDP flow (new source port; default 10)")
    ap.add_argument("--replay", metavar="FILE", help="live: write FILE's IPv4/ARP frames onto lo instead "
                    "(realistic flow mix; each frame is discarded by the kernel after capture)")
    ap.add_argument("--rotate", type=int, nargs="+", help="live: rotate_packets values to run (default: default, 0)")
    ap.add_argument("--pipeline", action="store_true", help="live: run features + model too (MonitorRun)")
    mode.add_argument("--bombs", action="store_true", help="label-file and bundle-header memory bombs (issue 16)")
    ns = ap.parse_args(argv)
    if ns.bombs:
        return bombs_main(ns)
    if ns.live:
        if ns.file:
            ap.error("--live takes no FILE")
        if not (0 < ns.packets <= 10_000_000 and 0 < ns.rate <= 1_000_000):
            ap.error("--packets 1..10M, --rate 1..1M")
        ns.every = ns.every or 0.5
        return live_main(ns)
    if not ns.file:
        ap.error("FILE is required (or --live)")
    ns.every = ns.every or 0.2
    argv_ = command(ns)
    print("running:", " ".join(argv_[:4]), "...", file=sys.stderr)
    t0 = time.perf_counter()
    child = subprocess.Popen(argv_, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(child.pid)
    peak, samples = 0, []
    while child.poll() is None:
        rss = tree_rss(proc)
        peak = max(peak, rss)
        samples.append((time.perf_counter() - t0, rss))
        time.sleep(ns.every)
    err = child.stderr.read().decode("utf-8", "replace").strip()
    seconds = time.perf_counter() - t0
    step = max(1, len(samples) // 10)
    for t, rss in samples[::step]:
        print(f"t={t:6.1f}s  rss={rss / 2**20:7.1f} MB")
    print(f"exit={child.returncode} seconds={seconds:.1f} {err.splitlines()[-1] if err else ''}")
    print(f"peak_rss_mb={peak / 2**20:.1f}")
    return 0 if child.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
