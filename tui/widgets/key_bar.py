"""The key line at the bottom: the active key bindings (``⏎ Detail q Quit space Pause …``), in the
look of Textual's compact ``Footer``, drawn as one line of text.

Textual's ``Footer`` rebuilds itself from widgets (one ``FooterKey`` per binding) whenever the
bindings change, which is on every focus change: unmounting and mounting a dozen widgets, styling
them and a layout pass, right after the frame that answered the key, so a key typed next waited
behind it (bench/tui_latency.py incident: ``i`` then Enter). This widget renders the same text
from ``screen.active_bindings``: a bindings change repaints one line, with no layout pass.
"""
from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.strip import Strip
from textual.widget import Widget


class KeyBar(Widget):
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--disabled"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-bar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        & > .key-bar--description { color: $footer-description-foreground; background: $footer-description-background; }
        & > .key-bar--disabled { text-style: dim; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._items: list[tuple[str, str, str, bool]] = []   # (key, key display, description, enabled)
        self._spans: list[tuple[int, int, str]] = []          # (x0, x1, key) for clicks
        self._strip: tuple[int, Strip] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        shown = [(b, enabled) for (_, b, enabled, _) in screen.active_bindings.values() if b.show]
        items = []
        # one entry per action (its first key), like Footer
        seen: dict[str, int] = {}
        for b, enabled in shown:
            if b.action in seen:
                continue
            seen[b.action] = len(items)
            items.append((b.key, self.app.get_key_display(b), b.description, enabled))
        if items != self._items:
            self._items = items
            self._strip = None
            self.refresh()   # one line: no layout pass

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0:
            return Strip.blank(width, self.rich_style)
        if self._strip is not None and self._strip[0] == width:
            return self._strip[1]
        base = self.rich_style
        key_style = base + self.get_component_rich_style("key-bar--key", partial=True)
        desc_style = base + self.get_component_rich_style("key-bar--description", partial=True)
        dim = self.get_component_rich_style("key-bar--disabled", partial=True)
        segs: list[Segment] = []
        spans = []
        x = 0
        for key, display, desc, enabled in self._items:
            ks, ds = (key_style, desc_style) if enabled else (key_style + dim, desc_style + dim)
            text = display + (" " + desc if desc else "")
            segs.append(Segment(display, ks))
            if desc:
                segs.append(Segment(" " + desc, ds))
            segs.append(Segment(" ", base))
            spans.append((x, x + len(text), key))
            x += len(text) + 1
        strip = Strip(segs).crop_extend(0, width, base)
        self._spans = spans
        self._strip = (width, strip)
        return strip

    def on_click(self, event: events.Click) -> None:
        for x0, x1, key in self._spans:
            if x0 <= event.x < x1:
                self.app.simulate_key(key.split(",")[0])
                return

