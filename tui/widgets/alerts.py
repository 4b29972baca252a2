"""Alert pane: recent anomalous packets grouped by (source host, class), newest group first."""
from __future__ import annotations

from typing import Callable, Sequence

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from iotwatch.tui.store import AlertGroups


class AlertPane(Static):
    DEFAULT_CSS = """
    AlertPane { height: 1fr; overflow: hidden; }
    """
    MAX_ROWS = 40

    def __init__(self, classes_: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.class_style: Callable[[int], Style] = lambda i: Style()

    def show(self, alerts: AlertGroups) -> None:
        if not alerts.groups:
            self.update(Text("no anomalous packets yet", style="dim"))
            return
        t = Table(box=None, expand=True, padding=(0, 1), show_edge=False, pad_edge=False)
        t.add_column("class", no_wrap=True, min_width=max(len(c) for c in self.class_names))
        t.add_column("host", no_wrap=True, overflow="ellipsis")
        t.add_column("pkts", justify="right", no_wrap=True)
        t.add_column("frames", no_wrap=True)
        t.add_column("targets", no_wrap=True, overflow="ellipsis", ratio=1)
        rows = self.content_size.height - 1 if self.content_size.height > 1 else self.MAX_ROWS  # minus the header
        for g in alerts.recent(rows):
            targets = sorted(g.targets)
            more = "+" if len(targets) >= alerts.MAX_TARGETS else ""
            shown = ", ".join(targets[:3]) + (f" (+{len(targets) - 3}{more})" if len(targets) > 3 else "")
            t.add_row(Text(self.class_names[g.cls], style=self.class_style(g.cls) + Style(bold=True)),
                      g.host or "?", f"{g.count:,}", f"{g.first_frame}-{g.last_frame}", shown)
        self.update(t)
