"""Deterministic inputs for the TUI tests and bench: synthetic packets, labels and a fake classifier
that follows the COMMON.md classifier API (used until/unless the real tiny bundle is wanted)."""
from __future__ import annotations

import subprocess

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.labels import LabelSet

CLASSES = ["normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration"]
# (dst port, frame length, protocols) -> class the fake classifier predicts
_KINDS = [
    (443, 120, "eth:ethertype:ip:tcp:tls", 0),
    (1883, 90, "eth:ethertype:ip:tcp:mqtt", 0),
    (81, 60, "eth:ethertype:ip:tcp", 1),
    (80, 54, "eth:ethertype:ip:tcp", 2),
    (23, 70, "eth:ethertype:ip:tcp:telnet", 3),
    (-1, 42, "eth:ethertype:arp", 4),
    (53, 300, "eth:ethertype:ip:udp:dns", 5),
]


def make_packets(n: int = 600, seed: int = 7, t0: float = 1_700_000_000.0, spacing: float = 0.001) -> PacketBatch:
    """``n`` packets, a fixed pseudo-random mix of the kinds above, frame numbers 1..n."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(_KINDS), size=n, p=[0.35, 0.25, 0.1, 0.1, 0.08, 0.05, 0.07])
    recs = []
    for i, k in enumerate(kinds.tolist()):
        port, length, protos, _ = _KINDS[k]
        host = 10 + (i * 7919) % 5
        rec = {"frame_number": i + 1, "time_epoch": t0 + i * spacing, "frame_len": length, "protocols": protos,
               "eth_src": f"02:00:00:00:00:{host:02x}", "eth_dst": "02:00:00:00:00:01"}
        if port == -1:
            rec.update(arp_opcode=2, arp_src_ip=f"192.168.1.{host}", arp_dst_ip="192.168.1.1")
        else:
            rec.update(ip_version=4, ip_src=f"192.168.1.{host}", ip_dst="192.168.1.1", ip_ttl=64, ip_len=length - 14)
            if "udp" in protos:
                rec.update(ip_proto=17, udp_srcport=40000 + i % 100, udp_dstport=port)
            else:
                rec.update(ip_proto=6, tcp_srcport=40000 + i % 100, tcp_dstport=port, tcp_flags=0x18)
        recs.append(rec)
    return PacketBatch.from_records(recs)


def truth(packets: PacketBatch) -> np.ndarray:
    """The class the fake classifier predicts for each packet."""
    out = np.zeros(len(packets), dtype=np.int64)
    dport = np.where(packets["tcp_dstport"] >= 0, packets["tcp_dstport"], packets["udp_dstport"])
    for port, length, protos, cls in _KINDS:
        if port == -1:
            out[packets["arp_opcode"] >= 0] = cls
        else:
            out[(dport == port) & (packets["frame_len"] == length)] = cls
    return out


def make_labels(packets: PacketBatch, wrong_every: int = 9, unlabelled_every: int = 13) -> LabelSet:
    """Labels equal to the fake prediction except every ``wrong_every``-th frame (shifted class) and
    every ``unlabelled_every``-th frame (unlabelled), so confusion has errors and gaps."""
    t = truth(packets)
    fn = packets["frame_number"].tolist()
    sidecar = {}
    for f, c in zip(fn, t.tolist()):
        if f % unlabelled_every == 0:
            continue
        sidecar[f] = (c + 1) % len(CLASSES) if f % wrong_every == 0 else c
    return LabelSet(CLASSES, sidecar=sidecar)


class _Extractor:
    def transform(self, batch: PacketBatch) -> np.ndarray:
        return truth(batch).astype(np.float32)[:, None]


class FakeClassifier:
    """Predicts ``truth()`` with a fixed confidence; anomalies are confident non-normal predictions."""

    classes_ = CLASSES
    feature_names_in_ = ["kind"]
    name = "fake/1"
    normal_index = 0

    def new_extractor(self) -> _Extractor:
        return _Extractor()

    def new_vote(self):
        return None   # no flow vote: each packet as predict_proba says


    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        k = X[:, 0].astype(np.int64)
        proba = np.full((len(k), len(CLASSES)), 0.02, dtype=np.float32)
        proba[np.arange(len(k)), k] = 0.9
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def is_anomaly(self, proba: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        return (predicted != self.normal_index) & (proba.max(axis=1) >= 0.5)


def write_capture(path, n: int = 400, seed: int = 3, t0: float = 1_700_000_000.0, spacing: float = 0.002):
    """A small labelled pcapng (mixed TCP/UDP/ARP traffic) plus ``<path>.labels.csv``; the labels
    are the fake classifier's truth for each frame (so a real model gets a real confusion matrix)."""
    from pathlib import Path

    from iotwatch.captures.sim import frames as P
    from iotwatch.captures.sim.writer import PcapngWriter

    path = Path(path)
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(_KINDS), size=n, p=[0.35, 0.25, 0.1, 0.1, 0.08, 0.05, 0.07])
    gw_mac, gw_ip = P.mac("02:00:00:00:00:01"), P.ip4("192.168.1.1")
    rows = ["frame_number,label"]
    with open(path, "wb") as fh:
        w = PcapngWriter(fh, application="iotwatch tests")
        for i, k in enumerate(kinds.tolist()):
            port, length, protos, cls = _KINDS[k]
            host = 10 + (i * 7919) % 5
            smac, sip = P.mac(f"02:00:00:00:00:{host:02x}"), P.ip4(f"192.168.1.{host}")
            sport = 40000 + i % 100
            if port == -1:
                frame = P.arp_frame(gw_mac, smac, 2, smac, sip, gw_mac, gw_ip)
            elif "udp" in protos:
                frame = P.udp4_frame(gw_mac, smac, sip, gw_ip, 64, i, True, sport, port, bytes(max(0, length - 42)))
            else:
                flags = P.SYN if port in (80, 81) else P.PSH | P.ACK
                payload = bytes(max(0, length - 54)) if flags != P.SYN else b""
                frame = P.tcp4_frame(gw_mac, smac, sip, gw_ip, 64, i, True, sport, port, 1000 + i, 0 if flags == P.SYN else 1,
                                     flags, 64240, payload=payload)
            w.write(int((t0 + i * spacing) * 1e6), frame)
            rows.append(f"{i + 1},{CLASSES[cls]}")
        w.close()
    Path(str(path) + ".labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def finish(pilot) -> None:
    """Wait until the app's capture worker has finished (it may not have started yet), then redraw."""
    app = pilot.app
    for _ in range(3000):
        if app.session.done.is_set():
            break
        await pilot.pause(0.01)
    await app.workers.wait_for_complete()
    await pilot.pause()
    app.refresh_screen()
    await pilot.pause()


def tshark_frames(path, expr) -> list[int]:
    """The frame numbers tshark's display filter ``expr`` keeps in ``path`` (the reference for filters)."""
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", expr, "-T", "fields", "-e", "frame.number"],
                         check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


async def settle(pilot, cond, tries: int = 600) -> None:
    """Until ``cond()`` holds, pausing 20 ms between tries; fails after ``tries``."""
    for _ in range(tries):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition never met")
