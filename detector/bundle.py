"""Model bundles (``*.iotw``): safetensors weights + JSON metadata, never pickle.

A bundle is ONE safetensors file. Its tensors are the ``ModelConfig.tensor_shapes()`` weights
(float32); its safetensors metadata holds one key, ``iotwatch``, a JSON object with:

  format, format_version, name, version, classes, normal_class, featurizer, feature_names,
  feature_schema, scaler_mean, scaler_std, anomaly_threshold, model_config, training, metrics

``load_bundle`` checks everything before anything is used and raises ``InputError`` (one line:
what, where, how to fix) for a missing/unreadable file, a pickle or torch zip checkpoint, a text file,
a corrupt header, missing keys, wrong tensor shapes or dtypes, and a feature schema that this
iotwatch does not compute. It never unpickles anything.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iotwatch.captures.errors import InputError

from .features import FEATURIZER_VERSION, FEATURIZERS, RETIRED_FEATURIZERS, schema_hash
from .model import ModelConfig

FORMAT = "iotwatch-bundle"
FORMAT_VERSION = 1
META_KEY = "iotwatch"

# The bundled model's classes (CONTRACT §1), in index order.
CONTRACT_CLASSES: tuple[str, ...] = ("normal", "recon", "dos", "bruteforce", "spoofing", "exfiltration")

REQUIRED_META = ("format", "format_version", "name", "version", "classes", "normal_class", "featurizer",
                 "feature_names", "feature_schema", "scaler_mean", "scaler_std", "anomaly_threshold",
                 "model_config")

_MAX_HEADER = 16 * 1024 * 1024


def default_bundle_path() -> Path:
    """The bundled model shipped as package data."""
    return Path(__file__).resolve().parent / "models" / "default.iotw"


@dataclass
class Bundle:
    config: ModelConfig
    tensors: dict[str, np.ndarray]
    meta: dict
    path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def scaler(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.meta["scaler_mean"], dtype=np.float64),
                np.asarray(self.meta["scaler_std"], dtype=np.float64))

    @property
    def display_name(self) -> str:
        return f"{self.meta['name']}/{self.meta['version']}"


def make_meta(*, name: str, version: str, classes, featurizer: str, scaler_mean, scaler_std,
              config: ModelConfig, normal_class: str = "normal", anomaly_threshold: float = 0.5,
              training: dict | None = None, metrics: dict | None = None) -> dict:
    """Metadata for a bundle whose features come from ``featurizer`` (names and schema filled in)."""
    names, schema = FEATURIZERS[featurizer]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "version": version,
        "classes": list(classes), "normal_class": normal_class, "featurizer": featurizer,
        "feature_names": list(names), "feature_schema": schema,
        "scaler_mean": [float(x) for x in scaler_mean], "scaler_std": [float(x) for x in scaler_std],
        "anomaly_threshold": float(anomaly_threshold), "model_config": config.to_dict(),
        "training": training or {}, "metrics": metrics or {},
    }


def save_bundle(path: str | Path, tensors: dict[str, np.ndarray], meta: dict) -> Path:
    """Write a bundle (validated by the same checks as ``load_bundle`` first)."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    _validate(tensors, meta, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":"))})
    os.chmod(path, 0o644)
    return path


def _sniff(path: Path, head: bytes, size: int) -> None:
    """Refuse anything that is not a safetensors file before a parser sees it."""
    where = f"model bundle {path}"
    fix = "pass a .iotw bundle written by 'iotwatch train'"
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{where} is a zip archive (a torch checkpoint?), not a safetensors bundle; refusing to load it",
                         hint=fix)
    if head[:1] == b"\x80" and len(head) > 1 and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise InputError(f"{where} is a Python pickle; refusing to unpickle it", hint=fix)
    if len(head) < 9:
        raise InputError(f"{where} is too short to be a safetensors bundle ({size} bytes)", hint=fix)
    (hlen,) = struct.unpack("<Q", head[:8])
    if hlen == 0 or hlen > _MAX_HEADER or 8 + hlen > size or head[8:9] != b"{":
        raise InputError(f"{where} is not a safetensors bundle (bad header)", hint=fix)


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle; every problem is an ``InputError`` naming the file."""
    from safetensors import safe_open

    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise InputError(f"model bundle {path} does not exist", hint="check the --model path") from None
    except IsADirectoryError:
        raise InputError(f"model bundle {path} is a folder, not a file", hint="pass the .iotw file") from None
    except OSError as e:
        raise InputError(f"cannot read model bundle {path}: {e.strerror}") from None
    _sniff(path, head, size)
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw_meta = (f.metadata() or {}).get(META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for corrupt files
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise InputError(f"model bundle {path} is corrupt: {reason}",
                         hint="re-download or retrain it with 'iotwatch train'") from None
    if raw_meta is None:
        raise InputError(f"model bundle {path} has no iotwatch metadata (a plain safetensors file?)",
                         hint="bundles are written by 'iotwatch train'")
    try:
        meta = json.loads(raw_meta)
    except ValueError:
        raise InputError(f"model bundle {path}: metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise InputError(f"model bundle {path}: metadata is not a JSON object")
    cfg = _validate(tensors, meta, str(path))
    return Bundle(cfg, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, meta, path=str(path))


def _validate(tensors: dict[str, np.ndarray], meta: dict, where: str) -> ModelConfig:
    where = f"model bundle {where}"
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise InputError(f"{where}: metadata lacks {', '.join(missing)}", hint="retrain it with 'iotwatch train'")
    if meta["format"] != FORMAT:
        raise InputError(f"{where}: format is {meta['format']!r}, expected {FORMAT!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise InputError(f"{where}: bundle format version {meta['format_version']} is not supported "
                         f"(this iotwatch reads version {FORMAT_VERSION})", hint="upgrade iotwatch or retrain")
    featurizer = meta["featurizer"]
    if featurizer in RETIRED_FEATURIZERS:
        raise InputError(f"{where}: built for the retired featurizer {featurizer!r} "
                         f"({RETIRED_FEATURIZERS[featurizer]}); this iotwatch computes {FEATURIZER_VERSION!r} features",
                         hint="use the bundled model (omit --model) or retrain with 'iotwatch train'")
    if featurizer not in FEATURIZERS:
        raise InputError(f"{where}: unknown featurizer {featurizer!r}",
                         hint="known: " + ", ".join(FEATURIZERS) + "; retrain with 'iotwatch train'")
    names, schema = FEATURIZERS[featurizer]
    if (meta["feature_schema"] != schema or list(meta["feature_names"]) != list(names)
            or schema_hash(featurizer, meta["feature_names"]) != meta["feature_schema"]):
        raise InputError(f"{where}: feature schema {meta['feature_schema']} does not match this iotwatch's "
                         f"{schema}", hint="retrain the model with 'iotwatch train' for this version")
    try:
        cfg = ModelConfig.from_dict(meta["model_config"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{where}: model_config is malformed") from None
    classes = meta["classes"]
    if (not isinstance(classes, list) or len(classes) < 2 or len(set(classes)) != len(classes)
            or not all(isinstance(c, str) and c for c in classes)):
        raise InputError(f"{where}: classes must be a list of 2+ distinct names")
    if cfg.n_classes != len(classes) or cfg.n_features != len(names):
        raise InputError(f"{where}: model_config ({cfg.n_features} features, {cfg.n_classes} classes) "
                         f"disagrees with its {len(names)} feature names and {len(classes)} classes")
    if meta["normal_class"] not in classes:
        raise InputError(f"{where}: normal_class {meta['normal_class']!r} is not one of its classes")
    for key in ("scaler_mean", "scaler_std"):
        v = meta[key]
        if not isinstance(v, list) or len(v) != cfg.n_features or not all(isinstance(x, (int, float)) for x in v):
            raise InputError(f"{where}: {key} must be {cfg.n_features} numbers")
    std = np.asarray(meta["scaler_std"], dtype=np.float64)
    if not (np.all(np.isfinite(std)) and np.all(std > 0)) or not np.all(np.isfinite(meta["scaler_mean"])):
        raise InputError(f"{where}: scaler values must be finite (std > 0)")
    thr = meta["anomaly_threshold"]
    if not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
        raise InputError(f"{where}: anomaly_threshold must be a number in [0, 1]")
    expected = cfg.tensor_shapes()
    if set(tensors) != set(expected):
        extra = sorted(set(tensors) - set(expected))
        lacking = sorted(set(expected) - set(tensors))
        raise InputError(f"{where}: tensors do not match the model config "
                         f"(missing {lacking or 'none'}, unexpected {extra or 'none'})")
    for k, shape in expected.items():
        t = tensors[k]
        if tuple(t.shape) != shape:
            raise InputError(f"{where}: tensor {k} has shape {tuple(t.shape)}, expected {shape}")
        if t.dtype != np.float32:
            raise InputError(f"{where}: tensor {k} is {t.dtype}, expected float32")
        if not np.all(np.isfinite(t)):
            raise InputError(f"{where}: tensor {k} holds NaN or infinite values")
    return cfg
