"""Per-class counters: packets, rate, share and a sparkline of recent rates; attack classes seen
so far are highlighted."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.table import Table
from rich.text import Text

from iotwatch.tui.store import RateHistory, sparkline
from iotwatch.tui.widgets.shaped import ShapedStatic


class _Spark:
    """A sparkline as wide as its table cell (the width is only known at render time)."""

    def __init__(self, values: list[float], style: Style):
        self.values = values
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(sparkline(self.values, options.max_width), style=self.style, no_wrap=True)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(4, max(4, options.max_width))


class ClassCounters(ShapedStatic):
    """Counts come from ``RunTotals`` (every packet), rates from ``RateHistory``."""

    DEFAULT_CSS = """
    ClassCounters { height: auto; }
    """

    def __init__(self, classes_: Sequence[str], normal_index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.normal_index = normal_index
        self.class_style: Callable[[int], Style] = lambda i: Style()
        self.threshold: float | None = None   # the model's anomaly threshold (explained in the last row)

    def show(self, counts: np.ndarray, anomalies: int, rates: RateHistory) -> None:
        total = int(counts.sum())
        name_w = max(11, max(len(c) for c in self.class_names) + 2)
        t = Table(box=None, expand=True, padding=(0, 0, 0, 1), show_edge=False, pad_edge=False)
        t.add_column("class", no_wrap=True, width=name_w)
        t.add_column("packets", justify="right", no_wrap=True, width=9)
        t.add_column("pkt/s", justify="right", no_wrap=True, width=7)
        t.add_column("%", justify="right", no_wrap=True, width=5)
        t.add_column("recent", no_wrap=True, ratio=1, min_width=4)
        for i, name in enumerate(self.class_names):
            n = int(counts[i])
            style = self.class_style(i)
            attack = i != self.normal_index and n > 0
            label = Text(("▲ " if attack else "  ") + name, style=style + Style(bold=attack))
            share = f"{100 * n / total:.1f}" if total else "-"
            t.add_row(label, Text(f"{n:,}", style=Style(bold=attack)), f"{rates.rates[i]:,.0f}", share,
                      _Spark(rates.series(i), style))
        t.add_row(Text("  anomalous", style="bold" if anomalies else "dim"), Text(f"{anomalies:,}", style="bold"),
                  "", f"{100 * anomalies / total:.1f}" if total else "-",
                  Text(f"= attack class at confidence ≥ {self.threshold:.2f}", style="dim", no_wrap=True,
                       overflow="ellipsis") if self.threshold is not None else "")
        self._put(t, "table")
