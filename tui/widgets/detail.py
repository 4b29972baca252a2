"""Packet detail like Wireshark's lower panes: the dissection tree (tshark's PDML ``showname`` lines,
nested as Wireshark nests them), the frame's bytes as a hex dump, and follow TCP/UDP stream.

The app reads one frame through the capture file's frame index (``captures.tshark.frames``) in a
thread worker, so the cost does not depend on the file's size; this screen shows a loading state,
then the tree and the bytes.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import LoadingIndicator, Static, Tree


def hexdump(raw: bytes, width: int = 16) -> Text:
    """Wireshark's bytes pane: offset, hex bytes in two groups of 8, ASCII."""
    out = Text(no_wrap=True)
    for off in range(0, len(raw), width):
        chunk = raw[off:off + width]
        hx = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            hx += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{off:04x}  ", style="dim")
        out.append(f"{hx:<49} ")
        out.append(asc + "\n", style="bold")
    return out


class DetailScreen(ModalScreen[None]):
    """Modal with one frame's dissection; the capture keeps running underneath."""

    DEFAULT_CSS = """
    DetailScreen {
        align: center middle;
        & > Vertical {
            width: 95%; height: 95%;
            border: thick $accent; background: $surface; padding: 0 1;
        }
        & #detail-summary { height: auto; margin-bottom: 1; }
        & Tree { height: 2fr; }
        & #detail-hex { height: 1fr; min-height: 4; border-top: solid $primary; }
        & LoadingIndicator { height: 3; }
    }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="detail-close"),
        Binding("F", "follow", "Follow stream", id="detail-follow"),
        Binding("e", "expand_all", "Expand all", id="detail-expand"),
    ]

    def __init__(self, frame: int, summary: Text, note: str | None = None, layers: list | None = None,
                 raw: bytes = b"", seconds: float = 0.0) -> None:
        super().__init__()
        self.frame = frame
        self.summary = summary
        self.note = note
        self._ready = (layers, raw, seconds) if layers is not None else None

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = f"Frame {self.frame}"
            v.border_subtitle = "esc close · F follow TCP/UDP stream · e expand all · ←/→ fold"
            yield Static(self.summary, id="detail-summary")
            if self.note:
                yield Static(Text(self.note, style="italic"), id="detail-note")
            elif self._ready is not None:   # already dissected: no loading state
                layers, raw, seconds = self._ready
                yield from self._body(layers, raw)
                if seconds:
                    v.border_title = self._title(seconds)
            else:
                yield LoadingIndicator()

    def on_mount(self) -> None:
        if self._ready is not None:
            self.query_one("#detail-tree").focus()

    def _title(self, seconds: float) -> str:
        return f"Frame {self.frame} · dissected in {seconds * 1000:.0f} ms"

    def _body(self, layers: list, raw: bytes) -> list:
        tree: Tree[None] = Tree(f"Frame {self.frame}", id="detail-tree")
        tree.show_root = False
        tree.root.expand()

        def add(parent, node, top: bool, expand: bool) -> None:
            label = Text(node.text, style="bold" if top else "")
            if node.children:
                branch = parent.add(label, expand=expand)
                for child in node.children:
                    add(branch, child, False, False)
            else:
                parent.add_leaf(label)

        # like Wireshark: one summary line per protocol; the innermost one opened (what the frame is)
        last = max((i for i, n in enumerate(layers) if n.children), default=-1)
        for i, layer in enumerate(layers):
            add(tree.root, layer, True, i == last)
        out = [tree]
        if raw:
            hx = VerticalScroll(Static(hexdump(raw)), id="detail-hex")
            hx.border_title = f"{len(raw)} bytes"
            out.append(hx)
        return out

    def show_layers(self, layers: list, raw: bytes = b"", seconds: float = 0.0) -> None:
        body = self.query_one(Vertical)
        for w in body.query("LoadingIndicator, #detail-note, #detail-tree, #detail-hex"):
            w.remove()
        widgets = self._body(layers, raw)
        body.mount(*widgets)
        if seconds:
            body.border_title = self._title(seconds)
        widgets[0].focus()

    def show_error(self, reason: str) -> None:
        self._replace_body(Static(Text(reason, style="bold red"), id="detail-note"))

    def action_expand_all(self) -> None:
        for tree in self.query("#detail-tree").results(Tree):
            tree.root.expand_all()

    def action_follow(self) -> None:
        self.app.follow_stream(self.frame)   # type: ignore[attr-defined]

    def _replace_body(self, widget) -> None:
        body = self.query_one(Vertical)
        for w in body.query("LoadingIndicator, #detail-note, #detail-tree, #detail-hex"):
            w.remove()
        body.mount(widget)


class StreamScreen(ModalScreen[None]):
    """``tshark -z follow`` output of one conversation."""

    DEFAULT_CSS = """
    StreamScreen {
        align: center middle;
        & > VerticalScroll { width: 95%; height: 95%; border: thick $accent; background: $surface; padding: 0 1; }
    }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="stream-close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = self.title_text
            v.border_subtitle = "esc to close"
            yield Static(Text(self.text or "(no payload in this conversation)"), id="stream-text")
