"""Packet detail: the full dissection tree of one frame.

The app reads it with ``captures.tshark.dissect.dissect_frame`` in a thread worker;
``DetailScreen`` shows a loading state, then the layers as a tree.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import LoadingIndicator, Static, Tree

from iotwatch.captures.tshark.dissect import DissectedLayer


class DetailScreen(ModalScreen[None]):
    """Modal with one frame's dissection; the capture keeps running underneath."""

    DEFAULT_CSS = """
    DetailScreen {
        align: center middle;
        & > Vertical {
            width: 90%; height: 85%;
            border: thick $accent; background: $surface; padding: 0 1;
        }
        & #detail-summary { height: auto; margin-bottom: 1; }
        & Tree { height: 1fr; }
        & LoadingIndicator { height: 3; }
    }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="detail-close")]

    def __init__(self, frame: int, summary: Text, note: str | None = None) -> None:
        super().__init__()
        self.frame = frame
        self.summary = summary
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = f"Frame {self.frame}"
            v.border_subtitle = "esc to close"
            yield Static(self.summary, id="detail-summary")
            if self.note:
                yield Static(Text(self.note, style="italic"), id="detail-note")
            else:
                yield LoadingIndicator()

    def show_layers(self, layers: list[DissectedLayer]) -> None:
        tree: Tree[None] = Tree(f"Frame {self.frame}", id="detail-tree")
        tree.root.expand()
        for layer in layers:
            node = tree.root.add(Text(layer.name, style="bold"), expand=True)
            for line in layer.fields:
                node.add_leaf(line)
        self._replace_body(tree)
        tree.focus()

    def show_error(self, reason: str) -> None:
        self._replace_body(Static(Text(reason, style="bold red"), id="detail-note"))

    def _replace_body(self, widget) -> None:
        body = self.query_one(Vertical)
        for w in body.query("LoadingIndicator, #detail-note, #detail-tree"):
            w.remove()
        body.mount(widget)
