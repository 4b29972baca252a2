"""Rendered rows that survive a restyle which does not change their colours."""
from __future__ import annotations

from textual.scroll_view import ScrollView


class StyledRowCache(ScrollView):
    """A Line-API ScrollView with a ``_cache`` of rendered rows that keeps them unless a colour they
    use changed: a focus change (the border takes the accent colour) restyles the widget but no row,
    and dropping the cache redrew every row on screen (~8 ms per focus change, bench/tui_latency.py
    incident)."""

    _style_key: tuple | None = None

    def row_styles(self) -> tuple:
        """Every style the cached rows are drawn with: the widget's and its component classes'."""
        return (self.rich_style, *(self.get_component_rich_style(c, partial=True) for c in sorted(self.COMPONENT_CLASSES)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        try:
            key = self.row_styles()
        except KeyError:   # component styles not set up yet
            key = None
        if key != self._style_key:
            self._style_key = key
            self._cache.clear()
