"""PacketBatch: a column-oriented batch of packets (one numpy array per field in ``FIELDS``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Protocol, runtime_checkable

import numpy as np

from .fields import FIELDS

_DTYPES = {"int": np.int64, "hex": np.int64, "float": np.float64, "str": object}
_MISSING = {"int": -1, "hex": -1, "float": np.nan, "str": ""}


@dataclass
class PacketBatch:
    """Columns keyed by field name; every column has the same length.

    Missing values follow the field kind: -1 (int/hex), NaN (float), "" (str).
    ``truncated`` is set on the last batch when the source ended early (e.g. a file cut mid-packet).
    """

    columns: dict[str, np.ndarray]
    truncated: str | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["frame_number"]) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    @classmethod
    def empty(cls) -> "PacketBatch":
        return cls({f.name: np.empty(0, dtype=_DTYPES[f.kind]) for f in FIELDS})

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, object]]) -> "PacketBatch":
        """Build a batch from dicts (tests, hand-made packets); absent keys become missing values."""
        records = list(records)
        cols = {}
        for f in FIELDS:
            miss = _MISSING[f.kind]
            vals = [r.get(f.name, miss) for r in records]
            vals = [miss if v is None else v for v in vals]
            arr = np.empty(len(vals), dtype=_DTYPES[f.kind])
            arr[:] = vals
            cols[f.name] = arr
        return cls(cols)

    def slice(self, start: int, stop: int) -> "PacketBatch":
        return PacketBatch({k: v[start:stop] for k, v in self.columns.items()})

    @staticmethod
    def concat(batches: list["PacketBatch"]) -> "PacketBatch":
        batches = [b for b in batches if len(b)]
        if not batches:
            return PacketBatch.empty()
        out = PacketBatch({k: np.concatenate([b.columns[k] for b in batches]) for k in batches[0].columns})
        out.truncated = next((b.truncated for b in batches if b.truncated), None)
        return out

    def record(self, i: int) -> dict:
        """Row ``i`` as a plain dict (for detail views and tests)."""
        return {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in self.columns.items()}


# --- what a packet source is (implemented by tshark/source.py; tests/fakes.py has an in-memory one) ---

@dataclass
class SourceStats:
    packets: int = 0              # frames yielded so far
    capture_drops: int = 0        # frames the kernel/dumpcap dropped (live), when known
    truncated: str | None = None  # why a file ended early ("cut mid-packet at frame N"), if it did
    extra: dict = field(default_factory=dict)


@runtime_checkable
class PacketSource(Protocol):
    description: str   # path or interface, for the report's "source"
    live: bool
    stats: SourceStats

    def batches(self, max_rows: int = 256, max_wait: float = 0.1) -> Iterator[PacketBatch]: ...

    def close(self) -> None: ...
