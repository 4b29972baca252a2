"""Packet acquisition: pcap/pcapng files and live interfaces via pyshark/tshark, labels, synthetic lab.

Never imports Textual (tests/test_layout.py enforces it).
"""
from .batch import PacketBatch
from .errors import EnvironmentProblem, InputError, IotwatchError
from .fields import FIELD_NAMES, FIELDS
from .sources import PacketSource, SourceConfig, SourceStats, open_source

__all__ = [
    "FIELDS", "FIELD_NAMES", "PacketBatch", "PacketSource", "SourceConfig", "SourceStats",
    "open_source", "IotwatchError", "InputError", "EnvironmentProblem",
]
