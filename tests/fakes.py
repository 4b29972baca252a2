"""Test fakes (not shipped in the package): tiny model bundles, synthetic packets, an in-memory
source and a run-configuration shortcut.

Tiny deterministic model bundles: fast, no training, no torch.

    path = make_tiny_bundle(tmp_path / "tiny.iotw", seed=0)
    clf = PacketClassifier.load(path)

Weights come from a seeded numpy generator, so the same seed gives byte-identical bundles. The
network is small (hidden 8-8) unless ``hidden`` says otherwise; predictions are arbitrary but
deterministic.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pytest

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.sources import SourceConfig, SourceStats
from iotwatch.detector.bundle import CONTRACT_CLASSES, make_meta, save_bundle
from iotwatch.detector.config import OutputConfig, RunConfig
from iotwatch.detector.features import FEATURIZER_VERSION, FEATURIZERS
from iotwatch.detector.model import ModelConfig


def tiny_tensors(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in cfg.tensor_shapes().items():
        scale = 1.0 / np.sqrt(shape[-1]) if len(shape) == 2 else 0.1
        out[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return out


def rewrite_bundle(src, dst, mutate_meta=None, mutate_tensors=None) -> Path:
    """A copy of the bundle ``src`` at ``dst`` with its metadata and tensors changed in place by the given
    functions, written raw (safetensors + metadata, none of save_bundle's checks: for bundles a loader must refuse)."""
    import json

    from safetensors.numpy import save_file

    from iotwatch.detector.bundle import META_KEY, load_bundle

    b = load_bundle(src)
    meta = json.loads(json.dumps(b.meta))
    tensors = dict(b.tensors)
    if mutate_meta:
        mutate_meta(meta)
    if mutate_tensors:
        mutate_tensors(tensors)
    save_file(tensors, str(dst), metadata={META_KEY: json.dumps(meta)})
    return dst


def make_tiny_bundle(path: str | Path, seed: int = 0, classes: Sequence[str] = CONTRACT_CLASSES,
                     featurizer: str = FEATURIZER_VERSION, hidden: tuple[int, ...] = (8, 8),
                     name: str = "tiny-test", anomaly_threshold: float = 0.5, favour: str | None = None) -> Path:
    """Write a small deterministic bundle at ``path`` and return the path. ``favour``: a class whose
    output bias is raised so that it wins on (nearly) every row (a model that always flags)."""
    names, _ = FEATURIZERS[featurizer]
    cfg = ModelConfig(n_features=len(names), n_classes=len(classes), hidden=tuple(hidden))
    meta = make_meta(name=name, version=f"seed{seed}", classes=classes, featurizer=featurizer,
                     scaler_mean=np.zeros(len(names)), scaler_std=np.ones(len(names)), config=cfg,
                     normal_class=classes[0], anomaly_threshold=anomaly_threshold,
                     training={"data": "none: random weights for tests", "seed": seed})
    tensors = tiny_tensors(cfg, seed)
    if favour is not None:
        last = f"layers.{len(cfg.layer_sizes()) - 1}.bias"
        tensors[last][list(classes).index(favour)] += 20.0
    return save_bundle(path, tensors, meta)


def synthetic_packets(n: int, seed: int = 0, hosts: int = 50, start: float = 1_700_000_000.0,
                      rate: float = 2000.0) -> "PacketBatch":
    """A random but plausible packet stream (TCP/UDP/DNS/ICMP/ARP mix) for benchmarks and tests.

    Not labelled and not meant to look like any attack; only field types and ranges are realistic.
    """
    from iotwatch.captures.batch import PacketBatch
    from iotwatch.captures.fields import FIELDS

    rng = np.random.default_rng(seed)
    cols = {f.name: (np.full(n, "", dtype=object) if f.kind == "str" else
                     np.full(n, np.nan) if f.kind == "float" else np.full(n, -1, dtype=np.int64)) for f in FIELDS}
    cols["frame_number"] = np.arange(1, n + 1, dtype=np.int64)
    cols["time_epoch"] = start + np.cumsum(rng.exponential(1.0 / rate, n))
    kind = rng.choice(5, size=n, p=[0.55, 0.2, 0.1, 0.1, 0.05])  # tcp, udp, dns, icmp, arp
    ips = np.array([f"192.168.1.{i + 2}" for i in range(hosts)], dtype=object)
    macs = np.array([f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(hosts)], dtype=object)
    s, d = rng.integers(0, hosts, n), rng.integers(0, hosts, n)
    ip = kind < 4
    cols["eth_src"] = macs[s]
    cols["eth_dst"] = np.where(kind == 4, "ff:ff:ff:ff:ff:ff", macs[d]).astype(object)
    cols["ip_src"] = np.where(ip, ips[s], "").astype(object)
    cols["ip_dst"] = np.where(ip, ips[d], "").astype(object)
    cols["ip_version"] = np.where(ip, 4, -1)
    cols["ip_proto"] = np.select([kind == 0, (kind == 1) | (kind == 2), kind == 3], [6, 17, 1], -1)
    cols["ip_ttl"] = np.where(ip, rng.choice([64, 128, 255], n), -1)
    cols["ip_flags"] = np.where(ip, 0x40, -1)
    cols["ip_frag_offset"] = np.where(ip, 0, -1)
    payload = rng.integers(0, 1400, n)
    cols["ip_len"] = np.where(ip, 40 + payload, -1)
    cols["frame_len"] = np.where(ip, 54 + payload, 42)
    tcp, udp = kind == 0, (kind == 1) | (kind == 2)
    service = rng.choice([22, 23, 80, 443, 1883, 8080, 5683], n)
    eph = rng.integers(32768, 61000, n)
    cols["tcp_srcport"] = np.where(tcp, eph, -1)
    cols["tcp_dstport"] = np.where(tcp, service, -1)
    cols["tcp_len"] = np.where(tcp, payload, -1)
    cols["tcp_flags"] = np.where(tcp, rng.choice([0x02, 0x12, 0x10, 0x18, 0x04, 0x11], n), -1)
    cols["tcp_window"] = np.where(tcp, rng.integers(0, 65535, n), -1)
    cols["tcp_hdr_len"] = np.where(tcp, rng.choice([20, 32, 40], n), -1)
    cols["udp_srcport"] = np.where(udp, eph, -1)
    cols["udp_dstport"] = np.where(kind == 2, 53, np.where(udp, rng.choice([123, 5353, 5683], n), -1))
    cols["icmp_type"] = np.where(kind == 3, rng.choice([0, 8, 3], n), -1)
    cols["icmp_code"] = np.where(kind == 3, 0, -1)
    cols["arp_opcode"] = np.where(kind == 4, rng.choice([1, 2], n), -1)
    cols["arp_src_hw"] = np.where(kind == 4, macs[s], "").astype(object)
    cols["arp_src_ip"] = np.where(kind == 4, ips[s], "").astype(object)
    cols["arp_dst_ip"] = np.where(kind == 4, ips[d], "").astype(object)
    words = np.array(["time", "api", "cloud", "cam", "x7f3a9c", "update", "mqtt"], dtype=object)
    names = words[rng.integers(0, len(words), n)] + "." + words[rng.integers(0, len(words), n)] + ".example.com"
    cols["dns_qry_name"] = np.where(kind == 2, names, "").astype(object)
    cols["dns_qry_type"] = np.where(kind == 2, 1, -1)
    cols["dns_flags"] = np.where(kind == 2, rng.choice([0x0100, 0x8180], n), -1)
    # answers name one of the hosts (drawn last, so the columns above do not depend on it)
    answer = ips[rng.integers(0, hosts, n)]
    cols["dns_a"] = np.where((kind == 2) & (cols["dns_flags"] == 0x8180), answer, "").astype(object)
    cols["protocols"] = np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                                  ["eth:ethertype:ip:tcp", "eth:ethertype:ip:udp", "eth:ethertype:ip:udp:dns",
                                   "eth:ethertype:ip:icmp"], "eth:ethertype:arp").astype(object)
    return PacketBatch(cols)


class ReplaySource:
    """Yields pre-built batches (re-chunked to ``max_rows``). For tests and demos."""

    live = False

    def __init__(self, batches: list[PacketBatch] | PacketBatch, description: str = "replay", path: str | None = None):
        self._data = PacketBatch.concat(batches if isinstance(batches, list) else [batches])
        self.description = description
        self.path = path
        self.stats = SourceStats()
        self._closed = False

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]:
        n = len(self._data)
        for start in range(0, n, max_rows):
            if self._closed:
                return
            b = self._data.slice(start, min(n, start + max_rows))
            self.stats.packets += len(b)
            yield b

    def close(self) -> None:
        self._closed = True


def run_config(read: str | None = None, *, iface: str | None = None, report: str | None = None,
               predictions: str | None = None, alerts: str | None = None, **run) -> RunConfig:
    """A RunConfig in one call: ``run_config("x.pcapng", report=..., count=5, speed="1x")``."""
    return RunConfig(source=SourceConfig(read=read, iface=iface),
                     outputs=OutputConfig(report=report, predictions=predictions, alerts=alerts), **run)


def require(ok: object, what: str) -> None:
    """A test prerequisite (root, tshark/editcap, capture permission, the non-root wireshark user):
    ``bash dev.sh setup`` provides all of them and CI runs as root, so a missing one FAILS the test
    with what is missing instead of skipping it (a skipped test proves nothing)."""
    if not ok:
        pytest.fail(f"test prerequisite missing: {what} (bash dev.sh setup provides it; run as root)",
                    pytrace=False)


def load_script(path: Path, name: str):
    """A script that is not a package module (bench/*.py, captures/real/extract.py), imported from its file."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
