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
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iotwatch.captures.errors import InputError, one_line
from iotwatch.captures.files import require_regular_input

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
              training: dict | None = None, metrics: dict | None = None, flow_vote: float = 0.0,
              pair_vote: dict | None = None) -> dict:
    """Metadata for a bundle whose features come from ``featurizer`` (names and schema filled in);
    ``pair_vote`` (detector/flowvote.py ``PairVote``, class names) only when given."""
    names, schema = FEATURIZERS[featurizer]
    extra = {} if pair_vote is None else {"pair_vote": dict(pair_vote)}
    return {**extra,
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "version": version,
        "classes": list(classes), "normal_class": normal_class, "featurizer": featurizer,
        "feature_names": list(names), "feature_schema": schema,
        "scaler_mean": [float(x) for x in scaler_mean], "scaler_std": [float(x) for x in scaler_std],
        "anomaly_threshold": float(anomaly_threshold), "flow_vote": float(flow_vote), "model_config": config.to_dict(),
        "training": training or {}, "metrics": metrics or {},
    }


PAIR_VOTE_CLASSES = ("exfiltration",)


def pair_vote_meta(weight: float, classes, tau: float = 600.0, ramp: float = 20.0, floor: float = 0.9) -> dict | None:
    """The bundle's ``pair_vote`` (detector/flowvote.py ``PairVote``) for ``weight``: the classes it may overrule
    are those of ``PAIR_VOTE_CLASSES`` the model has; None when ``weight`` is 0 or it has none of them."""
    names = [c for c in PAIR_VOTE_CLASSES if c in classes]
    if not weight or not names:
        return None
    return {"weight": float(weight), "tau": float(tau), "ramp": float(ramp), "floor": float(floor), "classes": names}


def save_bundle(path: str | Path, tensors: dict[str, np.ndarray], meta: dict, force: bool = True,
                output=None) -> Path:
    """Write a bundle (validated by the same checks as ``load_bundle`` first) through
    ``files.OutputFile`` (``output``: one already checked and reserved, e.g. by ``train`` before it
    trains): a temporary file in the same folder renamed over ``path`` when complete, never
    replacing a device node, FIFO, folder or dangling link (``train --out /dev/null`` once replaced
    the device node)."""
    from safetensors.numpy import save as save_bytes

    from iotwatch.captures.files import OutputFile, write_error

    path = Path(path)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    _validate(tensors, meta, str(path))
    data = save_bytes(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True, separators=(",", ":"))})
    out = output
    if out is None:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        out = OutputFile(path, "model bundle", force)
        out.check()
        out.reserve()
    try:
        out.open("wb").write(data)
        out.commit()
    except OSError as e:
        out.discard()
        raise write_error(path, "model bundle", e) from None
    except BaseException:
        out.discard()
        raise
    return path


def check_bundle_name(value: str, key: str = "name") -> str:
    """A bundle name/version as ``load_bundle`` accepts it (plain text: it reaches CSVs and terminals)."""
    if not _NAME_RE.fullmatch(value):
        raise InputError(f"bundle {key} {_show(value)} must be 1-64 letters, digits, spaces or _.+-")
    return value


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


_SAFE_DTYPE_BYTES = {"F32": 4}


def _read_header(path: Path, size: int) -> dict:
    """The safetensors JSON header, checked against the file before anything is allocated: every
    tensor F32 with a shape of sane integers whose byte size equals its data span, inside the file
    (a 28 KB file declaring a 1.5 GB tensor once allocated 3 GB before being refused)."""
    where = f"model bundle {path}"
    with open(path, "rb") as fh:
        (hlen,) = struct.unpack("<Q", fh.read(8))
        raw = fh.read(hlen)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(f"{where} is corrupt: its header is not valid JSON",
                         hint="re-download or retrain it with 'iotwatch train'") from None
    if not isinstance(header, dict):
        raise InputError(f"{where} is corrupt: its header is not a JSON object")
    data_size = size - 8 - hlen
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise InputError(f"{where} is corrupt: __metadata__ must map names to strings")
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in _SAFE_DTYPE_BYTES
              and isinstance(info.get("shape"), list) and len(info["shape"]) <= 4
              and all(type(d) is int and 0 <= d <= 1 << 31 for d in info["shape"])
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and all(type(o) is int for o in info["data_offsets"]))
        if not ok:
            raise InputError(f"{where} is corrupt: tensor {one_line(str(name), 60)!r} has a malformed entry "
                             "(expected float32 with a shape and data offsets)",
                             hint="re-download or retrain it with 'iotwatch train'")
        a, b = info["data_offsets"]
        nbytes = int(np.prod(info["shape"], dtype=object)) * _SAFE_DTYPE_BYTES[info["dtype"]]
        if not (0 <= a <= b <= data_size) or b - a != nbytes:
            raise InputError(f"{where} is corrupt: tensor {one_line(str(name), 60)!r} declares "
                             f"{nbytes:,} bytes that the {size:,}-byte file does not hold",
                             hint="re-download or retrain it with 'iotwatch train'")
    return header


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle; every problem is an ``InputError`` naming the file."""
    from safetensors import safe_open

    path = Path(path)
    st = require_regular_input(path, "model bundle", hint="check the --model path")
    size = st.st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise InputError(f"cannot read model bundle {path}: {e.strerror}") from None
    _sniff(path, head, size)
    header = _read_header(path, size)
    raw_meta = (header.get("__metadata__") or {}).get(META_KEY)
    if raw_meta is None:
        raise InputError(f"model bundle {path} has no iotwatch metadata (a plain safetensors file?)",
                         hint="bundles are written by 'iotwatch train'")
    try:
        meta = json.loads(raw_meta)
    except (ValueError, RecursionError):
        raise InputError(f"model bundle {path}: metadata is not valid JSON (or nested too deeply)") from None
    if not isinstance(meta, dict):
        raise InputError(f"model bundle {path}: metadata is not a JSON object")
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _validate_meta(meta, str(path), shapes)   # shapes checked before a single tensor is read
    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for corrupt files
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise InputError(f"model bundle {path} is corrupt: {reason}",
                         hint="re-download or retrain it with 'iotwatch train'") from None
    cfg = _validate(tensors, meta, str(path))
    return Bundle(cfg, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, meta, path=str(path))


_CLASS_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .+\-]{0,63}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _validate(tensors: dict[str, np.ndarray], meta: dict, where: str) -> ModelConfig:
    cfg = _validate_meta(meta, where, {k: tuple(t.shape) for k, t in tensors.items()})
    where = f"model bundle {where}"
    for k in cfg.tensor_shapes():
        t = tensors[k]
        if t.dtype != np.float32:
            raise InputError(f"{where}: tensor {k} is {t.dtype}, expected float32")
        if not np.all(np.isfinite(t)):
            raise InputError(f"{where}: tensor {k} holds NaN or infinite values")
    return cfg


def _validate_meta(meta: dict, where: str, shapes: dict[str, tuple]) -> ModelConfig:
    """Every metadata check and the tensor names/shapes, before any tensor data is read. Wrong types
    (a list where a name belongs, ``true`` as a number, 1e400, deep nesting) are one-line errors."""
    try:
        return _check_meta(meta, f"model bundle {where}", shapes)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, RecursionError, AttributeError):
        raise InputError(f"model bundle {where}: metadata is malformed (a value of the wrong type)",
                         hint="retrain it with 'iotwatch train'") from None


def _check_meta(meta: dict, where: str, shapes: dict[str, tuple]) -> ModelConfig:
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise InputError(f"{where}: metadata lacks {', '.join(missing)}", hint="retrain it with 'iotwatch train'")
    if meta["format"] != FORMAT:
        raise InputError(f"{where}: format is {_show(meta['format'])}, expected {FORMAT!r}")
    version = meta["format_version"]
    if type(version) is not int:
        raise InputError(f"{where}: format_version must be an integer, got {_show(version)}",
                         hint=f"this iotwatch reads version {FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise InputError(f"{where}: bundle format version {version} is not supported "
                         f"(this iotwatch reads version {FORMAT_VERSION})", hint="upgrade iotwatch or retrain")
    for key in ("name", "version"):
        if not isinstance(meta[key], str) or not _NAME_RE.fullmatch(meta[key]):
            raise InputError(f"{where}: {key} must be 1-64 letters, digits, spaces or _.+- (got {_show(meta[key])})")
    featurizer = meta["featurizer"]
    if isinstance(featurizer, str) and featurizer in RETIRED_FEATURIZERS:
        raise InputError(f"{where}: built for the retired featurizer {featurizer!r} "
                         f"({RETIRED_FEATURIZERS[featurizer]}); this iotwatch computes {FEATURIZER_VERSION!r} features",
                         hint="use the bundled model (omit --model) or retrain with 'iotwatch train'")
    if not isinstance(featurizer, str) or featurizer not in FEATURIZERS:
        raise InputError(f"{where}: unknown featurizer {_show(featurizer)}",
                         hint="known: " + ", ".join(FEATURIZERS) + "; retrain with 'iotwatch train'")
    names, schema = FEATURIZERS[featurizer]
    fnames = meta["feature_names"]
    if (not isinstance(fnames, list) or meta["feature_schema"] != schema or fnames != list(names)
            or schema_hash(featurizer, fnames) != meta["feature_schema"]):
        raise InputError(f"{where}: feature schema {_show(meta['feature_schema'])} does not match this iotwatch's "
                         f"{schema}", hint="retrain the model with 'iotwatch train' for this version")
    mc = meta["model_config"]
    ok = (isinstance(mc, dict) and all(type(mc.get(k)) is int for k in ("n_features", "n_classes"))
          and isinstance(mc.get("hidden", []), list) and len(mc.get("hidden", [])) <= 16
          and all(type(h) is int and 1 <= h <= 65536 for h in mc.get("hidden", [1]))
          and _number(mc.get("dropout", 0.5)))
    if not ok:
        raise InputError(f"{where}: model_config is malformed")
    cfg = ModelConfig.from_dict(mc)
    classes = meta["classes"]
    if (not isinstance(classes, list) or not 2 <= len(classes) <= 127
            or not all(isinstance(c, str) and _CLASS_RE.fullmatch(c) for c in classes)
            or len(set(classes)) != len(classes)):
        raise InputError(f"{where}: classes must be a list of 2-127 distinct names of letters, digits, _ and - "
                         "(up to 64 characters)")
    if cfg.n_classes != len(classes) or cfg.n_features != len(names):
        raise InputError(f"{where}: model_config ({cfg.n_features} features, {cfg.n_classes} classes) "
                         f"disagrees with its {len(names)} feature names and {len(classes)} classes")
    if not isinstance(meta["normal_class"], str) or meta["normal_class"] not in classes:
        raise InputError(f"{where}: normal_class {_show(meta['normal_class'])} is not one of its classes")
    for key in ("scaler_mean", "scaler_std"):
        v = meta[key]
        if not isinstance(v, list) or len(v) != cfg.n_features or not all(_number(x) for x in v):
            raise InputError(f"{where}: {key} must be {cfg.n_features} numbers")
    try:
        std = np.asarray(meta["scaler_std"], dtype=np.float64)
        mean = np.asarray(meta["scaler_mean"], dtype=np.float64)
    except OverflowError:  # an integer with 400 digits
        raise InputError(f"{where}: scaler values must be finite (std > 0)") from None
    if not (np.all(np.isfinite(std)) and np.all(std > 0)) or not np.all(np.isfinite(mean)):
        raise InputError(f"{where}: scaler values must be finite (std > 0)")
    thr = meta["anomaly_threshold"]
    if not _number(thr) or not 0.0 <= thr <= 1.0:
        raise InputError(f"{where}: anomaly_threshold must be a number in [0, 1]")
    vote = meta.get("flow_vote", 0.0)  # optional: bundles before iotwatch-default/10 have none (no vote)
    if not _number(vote) or not 0.0 <= vote < 1.0:
        raise InputError(f"{where}: flow_vote must be a number in [0, 1)")
    pair = meta.get("pair_vote")  # optional: bundles before iotwatch-default/11 have none (detector/flowvote.py)
    if pair is not None:
        ok = (isinstance(pair, dict) and set(pair) == {"weight", "tau", "ramp", "floor", "classes"}
              and all(_number(pair[k]) and math.isfinite(pair[k]) for k in ("weight", "tau", "ramp", "floor"))
              and 0.0 <= pair["weight"] <= 1.0 and pair["tau"] > 0 and pair["ramp"] >= 1.0
              and 0.0 <= pair["floor"] < 1.0
              and isinstance(pair["classes"], list)
              and all(isinstance(c, str) and c in classes and c != meta["normal_class"] for c in pair["classes"]))
        if not ok:
            raise InputError(f"{where}: pair_vote must be {{weight in [0, 1], tau > 0, ramp >= 1, floor in [0, 1), "
                             f"classes: names of non-normal classes}}")
    expected = cfg.tensor_shapes()
    if set(shapes) != set(expected):
        extra = sorted(one_line(str(k), 40) for k in set(shapes) - set(expected))[:5]
        lacking = sorted(set(expected) - set(shapes))
        raise InputError(f"{where}: tensors do not match the model config "
                         f"(missing {lacking or 'none'}, unexpected {extra or 'none'})")
    for k, shape in expected.items():
        if tuple(shapes[k]) != shape:
            raise InputError(f"{where}: tensor {k} has shape {tuple(shapes[k])}, expected {shape}")
    return cfg


def _show(value) -> str:
    """A metadata value in an error message: repr, one line, at most 60 characters."""
    return one_line(repr(value), 60)
