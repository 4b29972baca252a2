"""Why the model said what it said about one packet: gradient x input over feature groups (no UI).

For the predicted class c the attribution of feature j is ``d log p_c / d z_j * z_j`` with
``z = (x - mean) / std`` the standardised input the network sees (the scaler's mean is the
baseline: a feature at its training mean contributes nothing). Attributions are summed per feature
group; the groups come from the featurizer's declared blocks (``features.FEATURE_BLOCKS``, block ->
column names) when the module has them, else from name prefixes (``tcp_syn`` -> ``tcp``;
``src_s_pkts_1s`` -> ``src host``). ``explain`` returns the groups that moved the prediction most,
with the strongest features of each and their raw values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PREFIX_NAMES = {"src": "src host", "dst": "dst host", "pair": "host pair", "port": "service port",
                 "new": "novelty", "mac": "MAC binding", "ip": "IP header", "frame": "size", "payload": "size",
                 "tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "arp": "ARP", "dns": "DNS", "eth": "link",
                 "mqtt": "MQTT", "http": "HTTP", "ftp": "FTP", "auth": "logins", "proto": "protocol",
                 "ipv4": "protocol", "ipv6": "protocol", "non": "protocol", "to": "service port",
                 "from": "service port", "ra": "router adv.", "peer": "novelty"}


def feature_groups(names) -> dict[str, list[int]]:
    """Group name -> column indices. Declared blocks win; other columns are grouped by prefix."""
    names = list(names)
    groups: dict[str, list[int]] = {}
    placed = set()
    try:
        from . import features

        blocks = getattr(features, "FEATURE_BLOCKS", None)
    except Exception:  # noqa: BLE001 - a broken optional import must not break the detail view
        blocks = None
    if isinstance(blocks, dict):
        pos = {n: i for i, n in enumerate(names)}
        for block, cols in blocks.items():
            idx = [pos[c] for c in cols if c in pos]
            if idx:
                groups[str(block)] = idx
                placed.update(idx)
    for i, n in enumerate(names):
        if i in placed:
            continue
        head = n.split("_", 1)[0]
        groups.setdefault(_PREFIX_NAMES.get(head, head), []).append(i)
    return groups


@dataclass
class GroupWhy:
    group: str
    score: float                       # summed attribution (+ pushes towards the predicted class)
    features: list[tuple[str, float, float]]  # (name, value, attribution), strongest first


class Explainer:
    """Gradient x input for a ``PacketClassifier`` (numpy; one packet at a time, on demand)."""

    def __init__(self, classifier):
        mlp = classifier._mlp
        self.weights = [np.asarray(w, dtype=np.float64) for w in mlp.weights]   # (in, out), scaler folded in
        self.biases = [np.asarray(b, dtype=np.float64) for b in mlp.biases]
        mean, std = classifier.bundle.scaler
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.names = list(classifier.feature_names_in_)
        self.groups = feature_groups(self.names)

    def attributions(self, x: np.ndarray, cls: int) -> np.ndarray:
        """Per-feature gradient x input of log p[cls] for one raw feature row ``x``."""
        h = np.asarray(x, dtype=np.float64)
        acts = []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = h @ w + b
            if i < last:
                acts.append(z > 0)
                h = np.maximum(z, 0)
            else:
                h = z
        p = np.exp(h - h.max())
        p /= p.sum()
        g = -p
        g[cls] += 1.0                                 # d log softmax_c / d logits
        for i in range(last, -1, -1):
            g = self.weights[i] @ g                   # back through layer i
            if i > 0:
                g = g * acts[i - 1]
        # g = d/dx (raw input, scaler folded); d/dz = g * std; z = (x - mean) / std
        return g * (np.asarray(x, dtype=np.float64) - self.mean)

    def explain(self, x: np.ndarray, cls: int, top: int = 4, per_group: int = 2) -> list[GroupWhy]:
        a = self.attributions(x, cls)
        out = []
        for name, idx in self.groups.items():
            sub = a[idx]
            order = np.argsort(-np.abs(sub))[:per_group]
            feats = [(self.names[idx[k]], float(x[idx[k]]), float(sub[k])) for k in order if sub[k] != 0]
            out.append(GroupWhy(name, float(sub.sum()), feats))
        out.sort(key=lambda g: -abs(g.score))
        return out[:top]


def format_why(whys: list[GroupWhy], cls_name: str) -> str:
    """One line per group: ``+2.31 TCP: tcp_syn_only=1, tcp_window_log=6.2``."""
    lines = [f"why {cls_name} (gradient x input, summed per feature group; + pushes towards {cls_name}):"]
    for g in whys:
        feats = ", ".join(f"{n}={v:.3g}" for n, v, _ in g.features)
        lines.append(f"  {g.score:+6.2f}  {g.group}: {feats}")
    return "\n".join(lines)


def vote_note(own_proba, predicted: int, class_names) -> str:
    """"" or one line when the flow vote (detector/flowvote.py, the pair vote included) decided the class: the
    packet's own probabilities favour another class than the one shown."""
    own = int(np.argmax(own_proba))
    if own == int(predicted):
        return ""
    return (f"this packet alone: {class_names[own]} {float(own_proba[own]):.2f}; "
            f"{class_names[int(predicted)]} is its connection's vote (earlier packets of the flow, and for some "
            f"classes the two hosts' other connections)")
