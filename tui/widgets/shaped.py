"""A Static pane whose content is replaced often while its height rarely changes."""
from __future__ import annotations

from textual.widgets import Static


class ShapedStatic(Static):
    _shape: object = None

    def _put(self, content, shape: object) -> None:
        """Replace the content; a layout pass only when its shape (line count) changes: the pane's
        height is auto, and a layout refresh reflows and repaints the whole screen."""
        self.update(content, layout=shape != self._shape)
        self._shape = shape
