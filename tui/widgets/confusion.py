"""Confusion summary for labelled replays: matrix (label rows x predicted columns) with per-class
precision/recall/F1 and macro-F1, computed by the same ``ConfusionAccumulator`` as the report."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

from iotwatch.detector.metrics import ConfusionAccumulator
from iotwatch.tui.widgets.shaped import ShapedStatic


def _short(name: str, width: int = 5) -> str:
    return name if len(name) <= width else name[: width - 1] + "."


def _count(v: int) -> str:
    """A count in at most 5 cells: 12345, 123k, 1.2M."""
    if v < 100_000:
        return str(v)
    if v < 1_000_000:
        return f"{v // 1000}k"
    return f"{v / 1e6:.1f}M" if v < 10_000_000 else f"{v // 1_000_000}M"


class ConfusionSummary(ShapedStatic):
    DEFAULT_CSS = """
    ConfusionSummary { height: auto; }
    """

    def __init__(self, classes_: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.class_style: Callable[[int], Style] = lambda i: Style()
        self.matrix = np.zeros((len(self.class_names),) * 2, dtype=np.int64)

    def show(self, matrix: np.ndarray | None) -> None:
        if matrix is None or not matrix.sum():
            self.matrix = np.zeros_like(self.matrix)
            self._put(Text("no labelled packets yet\n(labels come from a sidecar CSV,\n"
                             "--labels or pcapng comments)", style="dim"), "empty")
            return
        self.matrix = matrix
        acc = ConfusionAccumulator(len(self.class_names))
        acc.matrix = matrix
        prec, rec, f1, sup = acc.per_class()
        t = Table(box=None, padding=(0, 0, 0, 1), show_edge=False, pad_edge=False)
        t.add_column("label\\pred", no_wrap=True, width=10)
        for j, name in enumerate(self.class_names):
            t.add_column(Text(_short(name), style=self.class_style(j)), justify="right", no_wrap=True, width=5)
        for c in ("P", "R", "F1"):
            t.add_column(c, justify="right", no_wrap=True, width=4)
        for i, name in enumerate(self.class_names):
            cells = []
            for j in range(len(self.class_names)):
                v = int(matrix[i, j])
                style = "bold" if i == j and v else ("bold red" if v else "dim")
                cells.append(Text(_count(v) if v else "·", style=style))
            metrics = [f"{x:.2f}" if sup[i] or x else "-" for x in (prec[i], rec[i], f1[i])]
            t.add_row(Text(_short(name, 10), style=self.class_style(i)), *cells, *metrics)
        foot = Text.assemble(("macro-F1 ", "bold"), f"{acc.macro_f1():.3f}", "  ", ("accuracy ", "bold"),
                             f"{acc.accuracy():.3f}", "  ", ("labelled ", "bold"), f"{acc.total:,}")
        self._put(Group(t, foot), "table")
