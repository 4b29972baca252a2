"""The one data path shared by headless runs, the TUI worker and evaluation:

    source.batches() -> extractor.transform(batch) -> classifier.predict_proba(X) -> flow vote -> ClassifiedBatch

No Textual here. The TUI runs ``classify_stream`` inside a thread worker and posts each
``ClassifiedBatch`` as one message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from iotwatch.captures.batch import PacketBatch
from iotwatch.captures.labels import LabelSet
from iotwatch.captures.sources import PacketSource

from .flowvote import FlowVote, vote_keys


@dataclass
class ClassifiedBatch:
    packets: PacketBatch
    proba: np.ndarray        # (n, k) float32, columns follow classifier.classes_
    predicted: np.ndarray    # (n,) int64 class index
    confidence: np.ndarray   # (n,) float32, probability of the predicted class
    anomaly: np.ndarray      # (n,) bool, see detector.anomaly
    labels: np.ndarray | None  # (n,) int64 class index, -1 = unlabelled; None = no label source
    features: np.ndarray | None = None  # (n, f) float32 model input (kept for the per-packet "why")

    def __len__(self) -> int:
        return len(self.predicted)

    def slice(self, start: int, stop: int) -> "ClassifiedBatch":
        """Packets ``start:stop`` of this batch."""
        return ClassifiedBatch(self.packets.slice(start, stop), self.proba[start:stop], self.predicted[start:stop],
                               self.confidence[start:stop], self.anomaly[start:stop],
                               None if self.labels is None else self.labels[start:stop],
                               None if self.features is None else self.features[start:stop])


def classify_batch(classifier, extractor, packets: PacketBatch, labels: LabelSet | None = None,
                   vote: FlowVote | None = None) -> ClassifiedBatch:
    """One batch through the model; ``vote`` (``classifier.new_vote()``, one per stream like the extractor)
    averages each packet's probabilities with its flow's earlier packets."""
    X = extractor.transform(packets)
    proba = classifier.predict_proba(X)
    if vote is not None:
        flows, pairs = vote_keys(packets)
        proba = vote.update(flows, packets["time_epoch"], proba, pairs)
    predicted = proba.argmax(axis=1).astype(np.int64)
    confidence = proba[np.arange(len(predicted)), predicted].astype(np.float32)
    anomaly = classifier.is_anomaly(proba, predicted)
    lab = labels.for_batch(packets) if labels is not None else None
    return ClassifiedBatch(packets, proba, predicted, confidence, anomaly, lab, X)


def classify_stream(
    source: PacketSource,
    classifier,
    labels: LabelSet | None = None,
    *,
    max_rows: int = 256,
    max_wait: float = 0.1,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[ClassifiedBatch]:
    """Yield one ClassifiedBatch per source batch until the source ends or ``cancelled()``."""
    extractor = classifier.new_extractor()
    vote = classifier.new_vote()
    for packets in source.batches(max_rows=max_rows, max_wait=max_wait):
        if cancelled():
            return
        if len(packets):
            yield classify_batch(classifier, extractor, packets, labels, vote)
