"""When a classified packet counts as an anomaly: the threshold policy, kept apart from the network.

A packet is anomalous when the model's top class is not the normal class AND the model is at least
``threshold`` sure of it. The threshold lives in the bundle (``anomaly_threshold``); training picks it
on held-out normal traffic so that at most a target fraction of normal packets is flagged
(``calibrate_threshold``), the Kitsune way of keeping calibration outside the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnomalyPolicy:
    normal_index: int
    threshold: float = 0.5

    def is_anomaly(self, proba: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """Boolean (n,): predicted class is not normal and its probability >= threshold."""
        predicted = np.asarray(predicted)
        if len(predicted) == 0:
            return np.zeros(0, dtype=bool)
        conf = proba[np.arange(len(predicted)), predicted]
        return (predicted != self.normal_index) & (conf >= self.threshold)


def calibrate_threshold(proba_normal: np.ndarray, normal_index: int, target_rate: float = 0.001,
                        floor: float = 0.5) -> float:
    """Smallest threshold >= ``floor`` flagging at most ``target_rate`` of these normal packets.

    ``proba_normal`` are predicted probabilities of packets labelled normal (held-out data).
    """
    if len(proba_normal) == 0:
        return floor
    pred = proba_normal.argmax(axis=1)
    conf = proba_normal[np.arange(len(pred)), pred]
    wrong = np.sort(conf[pred != normal_index])[::-1]
    allowed = int(np.floor(target_rate * len(proba_normal)))
    if len(wrong) <= allowed:
        return floor
    # flag only confidences strictly above the (allowed+1)-th highest false alarm
    return float(min(1.0, max(floor, np.nextafter(np.float32(wrong[allowed]), np.float32(2)))))
