"""One-line status: state, source, packets, pkt/s, speed, filter, rows shown vs dropped from view,
capture drops (lost by the kernel/dumpcap) and model."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
        &.-failed { background: $error 40%; }
        &.-paused { background: $warning 35%; }
    }
    """

    _last: Text | None = None

    def show(self, *, state: str, source: str, packets: int, rate: float, shown: int, dropped: int,
             capture_drops: int, live: bool, speed: str, filter_name: str, model: str,
             dfilter: str | None = None, in_memory: int | None = None, notice: str | None = None) -> None:
        """``capture_drops`` is shown for live captures (and for files only if ever non-zero)."""
        sep = (" · ", "dim")
        text = Text.assemble(
            (f"{state} ", "bold"), (source, "bold"),
            *((sep, (notice, "bold reverse red")) if notice else ()),
            sep, (f"{packets:,}", "bold"), " pkts", sep, (f"{rate:,.0f}", "bold"), " pkt/s",
            sep, (speed, "bold"),
            *((sep, "-Y ", (dfilter, "bold reverse")) if dfilter else ()),
            *((sep, "filter ", (filter_name, "bold reverse")) if filter_name != "all" else ()),
            sep, f"{shown:,} shown",
            *((", ", (f"{dropped:,}", "bold"), " dropped") if dropped else ()),
            *((sep, "capture drops ", (f"{capture_drops:,}", "bold red" if capture_drops else ""))
              if live or capture_drops else ()),
            sep, model,
            no_wrap=True, overflow="ellipsis",
        )
        if text == self._last:
            return   # nothing changed: no repaint (the tick calls this 4 times a second)
        self._last = text
        # one line, always: no layout pass (a layout refresh reflows and repaints the whole screen)
        self.update(text, layout=False)
