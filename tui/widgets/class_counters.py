"""Per-class counters: packets, rate, share and a sparkline of recent rates; attack classes seen
so far are highlighted."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from iotwatch.tui.store import RateHistory, sparkline


class ClassCounters(Static):
    """Counts come from ``RunTotals`` (every packet), rates from ``RateHistory``."""

    DEFAULT_CSS = """
    ClassCounters { height: auto; }
    """

    def __init__(self, classes_: Sequence[str], normal_index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.normal_index = normal_index
        self.class_style: Callable[[int], Style] = lambda i: Style()
        self._last: tuple | None = None

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)

    def show(self, counts: np.ndarray, anomalies: int, rates: RateHistory) -> None:
        self._last = (counts, anomalies, rates)
        total = int(counts.sum())
        name_w = max(11, max(len(c) for c in self.class_names) + 2)
        fixed = name_w + 9 + 7 + 5
        spark_w = max(4, min(30, self.content_size.width - fixed - 4)) if self.content_size.width else 12
        t = Table(box=None, padding=(0, 0, 0, 1), show_edge=False, pad_edge=False)
        t.add_column("class", no_wrap=True, width=name_w)
        t.add_column("packets", justify="right", no_wrap=True, width=9)
        t.add_column("pkt/s", justify="right", no_wrap=True, width=7)
        t.add_column("%", justify="right", no_wrap=True, width=5)
        t.add_column("recent", no_wrap=True, width=spark_w)
        for i, name in enumerate(self.class_names):
            n = int(counts[i])
            style = self.class_style(i)
            attack = i != self.normal_index and n > 0
            label = Text(("▲ " if attack else "  ") + name, style=style + Style(bold=attack))
            share = f"{100 * n / total:.1f}" if total else "-"
            t.add_row(label, Text(f"{n:,}", style=Style(bold=attack)), f"{rates.rates[i]:,.0f}", share,
                      Text(sparkline(rates.series(i), spark_w), style=style))
        t.add_row(Text("  anomalous", style="bold" if anomalies else "dim"), Text(f"{anomalies:,}", style="bold"),
                  "", f"{100 * anomalies / total:.1f}" if total else "-", "")
        self.update(t)
