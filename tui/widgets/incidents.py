"""Incidents pane: one line per incident (class, attacker → victim, services, packets, since),
most severe first, then the most recently active; focusable and scrollable (a Line-API ``ScrollView`` with
cached row strips). Enter opens ``IncidentView`` with the evidence; ``j`` jumps the packet table
to the incident's first frame, ``t`` filters the table to its packets (from the pane or the screen).
"""
from __future__ import annotations

from typing import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Static

from iotwatch.tui.store import IncidentStore
from iotwatch.tui.widgets.rowcache import StyledRowCache

SEVERITY = {1: "high", 2: "med", 3: "low"}
COLUMNS = (("sev", 4), ("class", 24), ("attacker → victim", 36), ("services", 16), ("pkts", 7), ("since", 9),
           ("state", 6))


def who(s: dict, width: int = 60) -> str:
    """``attacker → victim`` of an incident snapshot (a spoofed flood: ``N sources → victim``)."""
    victims = s.get("victims") or []
    vic = victims[0] + (f" +{len(victims) - 1}" if len(victims) > 1 else "") if victims else "?"
    if s.get("attacker"):
        att = s["attacker"]
    elif s.get("spoofed_sources"):
        att = f"{s.get('distinct_peers', 0):,} spoofed sources"
    elif s.get("reflectors"):
        att = f"{s.get('distinct_peers', 0):,} reflectors"
    else:
        att = "?"
    text = f"{att} → {vic}"
    return text if len(text) <= width else text[: width - 1] + "…"


def since(s: dict, first_time: float | None) -> str:
    rel = s["first_time"] - first_time if first_time is not None else 0.0
    return f"{rel:,.1f} s"


class IncidentsPane(StyledRowCache, can_focus=True):
    """The incidents of the run; ``show(store, first_time)`` redraws when the store changed.

    A Line-API ``ScrollView`` like the packet table, not a ``DataTable``: each row becomes a
    ``Strip`` cached by (incident, its cells' version, cursor, focus, width), so a snapshot that
    changes one count redraws one row, and a focus change (``i``, or the focus going back to the
    table) redraws from the cache. The ``DataTable`` dropped all its render caches on every
    ``update_cell`` and re-rendered every cell: 20-35 ms per redraw on a loaded machine, on every
    tick of a replay with active incidents and on every focus change
    (bench/tui_latency.py incident)."""

    COMPONENT_CLASSES = {"incidents-pane--header", "incidents-pane--cursor"}
    DEFAULT_CSS = """
    IncidentsPane {
        height: 1fr;
        background: $surface;
        overflow-x: hidden;
        overflow-y: auto;
        & > .incidents-pane--header { text-style: bold; background: $panel; color: $text; }
        & > .incidents-pane--cursor { background: $accent 45%; }
    }
    """
    BINDINGS = [
        Binding("enter", "open", "Open incident", id="incident-open"),
        Binding("j", "jump", "Jump to its frames", id="incident-jump"),
        Binding("t", "filter", "Filter table to it", id="incident-filter"),
        Binding("escape,q", "close", "Close the incident", id="incident-close"),
        Binding("up", "cursor(-1)", "Up", show=False, id="incident-up"),
        Binding("down", "cursor(1)", "Down", show=False, id="incident-down"),
        Binding("pageup", "cursor(-1000000)", "First", show=False, id="incident-page-up"),
        Binding("pagedown", "cursor(1000000)", "Last", show=False, id="incident-page-down"),
        Binding("home", "cursor(-1000000)", "First", show=False, id="incident-home"),
        Binding("end", "cursor(1000000)", "Last", show=False, id="incident-end"),
    ]

    class Chosen(Message):
        """A key on an incident: ``action`` is "open", "close", "jump" or "filter"."""

        def __init__(self, incident: dict, action: str) -> None:
            super().__init__()
            self.incident = incident
            self.action = action

    def __init__(self, classes_: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.class_style: Callable[[int], Style] = lambda i: Style()
        self._version = -1
        self._order: list[int] = []
        self._shown: dict[int, tuple] = {}      # incident id -> its cells (rich Text / str)
        self._row_version: dict[int, int] = {}  # incident id -> bumped when its cells change
        self._cache: LRUCache[tuple, Strip] = LRUCache(256)
        self.cursor_row = 0
        self.empty_text = "no incidents yet"
        self.viewing: int | None = None   # the incident the app's IncidentView shows (set by the app)

    # --- data ------------------------------------------------------------------------------------
    def _cells(self, s: dict, first_time: float | None) -> tuple:
        cls = self.class_names.index(s["class"]) if s["class"] in self.class_names else 0
        return (Text(SEVERITY.get(s["severity"], str(s["severity"])), style="bold" if s["severity"] == 1 else ""),
                Text(f"{s['class']}/{s['kind']}", style=self.class_style(cls) + Style(bold=True)),
                who(s, 36), ", ".join(s.get("services", [])[:2]), f"{s['packets']:,}", since(s, first_time),
                Text(s["state"], style="bold" if s["state"] == "active" else "dim"))

    @property
    def row_count(self) -> int:
        return len(self._order)

    def cells(self, incident_id: int) -> tuple[str, ...]:
        """The plain text of an incident's cells as shown (for tests and the command palette)."""
        return tuple(str(c) for c in self._shown.get(incident_id, ()))

    def show(self, store: IncidentStore, first_time: float | None) -> None:
        if store.version == self._version:
            return
        self._version = store.version
        items = store.sorted()
        rows = {s["id"]: self._cells(s, first_time) for s in items}
        order = [s["id"] for s in items]
        reordered = changed = order != self._order
        for i, cells in rows.items():   # only rows whose cells changed are drawn again (a cell's style
            old = self._shown.get(i)    # follows from its own text: severity, class, state)
            if old is None or [str(c) for c in old] != [str(c) for c in cells]:
                self._row_version[i] = self._row_version.get(i, 0) + 1
                changed = True
        self._shown = rows
        if reordered:
            # while the user works in the pane the cursor stays on its incident; otherwise on the top row
            keep = self.selected if self.has_focus else None
            self._order = order
            self.cursor_row = order.index(keep) if keep in order else 0
            self._set_rows(len(order))
        hint = "i focus · ⏎ open · j jump · t filter"
        subtitle = f"{len(items):,} incidents · {hint}" if items else self.empty_text
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
        if changed:
            self.refresh()

    def _set_rows(self, n: int) -> None:
        size = Size(self.size.width, n + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_mount(self) -> None:
        self.border_subtitle = self.empty_text
        self._set_rows(0)

    def on_resize(self, event) -> None:
        self._set_rows(len(self._order))

    @property
    def selected(self) -> int | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    # --- rendering -------------------------------------------------------------------------------
    def _line(self, cells: Sequence, style: Style, width: int) -> Strip:
        segs: list[Segment] = []
        for (_, w), cell in zip(COLUMNS, cells):
            text = cell if isinstance(cell, Text) else Text(str(cell))
            plain = text.plain[:w].ljust(w)
            own = Style.parse(text.style) if isinstance(text.style, str) else text.style
            segs.append(Segment(" " + plain + " ", style + own if own else style))
        used = sum(len(sg.text) for sg in segs)
        if used < width:
            segs.append(Segment(" " * (width - used), style))
        return Strip(segs, max(width, used)).crop(0, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            key = ("header", width)
            strip = self._cache.get(key)
            if strip is None:
                style = self.rich_style + self.get_component_rich_style("incidents-pane--header")
                strip = self._line([label for label, _ in COLUMNS], style, width)
                self._cache[key] = strip
            return strip
        pos = int(self.scroll_y) + y - 1
        if pos >= len(self._order):
            return Strip.blank(width, self.rich_style)
        i = self._order[pos]
        cursor = pos == self.cursor_row and self.has_focus
        key = (i, self._row_version.get(i, 0), cursor, width)
        strip = self._cache.get(key)
        if strip is None:
            style = self.rich_style
            if cursor:
                style += self.get_component_rich_style("incidents-pane--cursor")
            strip = self._line(self._shown[i], style, width)
            self._cache[key] = strip
        return strip

    def row_styles(self) -> tuple:
        # the rows also use the class colours
        return (*super().row_styles(), *(self.class_style(i) for i in range(len(self.class_names))))

    def _on_blur(self, event) -> None:
        super()._on_blur(event)   # Textual's refreshes the pane (its cursor row's style follows focus)
        # the focus went elsewhere (a click, a screen on top): the incident view closes with it
        self.action_close()

    # --- keys ------------------------------------------------------------------------------------
    def move_cursor(self, row: int) -> None:
        if not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        if row != self.cursor_row:
            self.cursor_row = row
            self.refresh()
        page = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False, immediate=True)
        # up/down while the view is open: it shows the incident under the cursor
        if self.viewing is not None and self.selected is not None and self.selected != self.viewing:
            self._chosen("open")

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        pos = int(self.scroll_y) + offset.y - 1
        if pos < len(self._order):
            self.move_cursor(pos)
            if event.chain == 2:
                self.action_open()

    def _chosen(self, action: str) -> None:
        sel = self.selected
        store = getattr(self.app, "incidents", None)
        if sel is None or store is None or store.get(sel) is None:
            self.app.notify("no incident selected", timeout=3)
            return
        self.post_message(self.Chosen(store.get(sel), action))

    def action_open(self) -> None:
        if self.viewing is not None:
            self.action_close()
        else:
            self._chosen("open")

    def action_close(self) -> None:
        if self.viewing is not None:
            self.post_message(self.Chosen({"id": self.viewing}, "close"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape and q close the incident view; without one open, q is the app's (quit)
        return self.viewing is not None if action == "close" else True

    def action_jump(self) -> None:
        self._chosen("jump")

    def action_filter(self) -> None:
        self._chosen("filter")


def incident_text(s: dict, first_time: float | None) -> Text:
    """Everything about one incident: roles, evidence in words and numbers, frames and counts."""
    lines = [
        (f"#{s['id']} {s['class']}/{s['kind']}  ", "bold"), (f"severity {s['severity']}  state {s['state']}\n", ""),
        ("who      ", "bold"), who(s, 200) + "\n",
        ("evidence ", "bold"), s["evidence"] + "\n",
        ("frames   ", "bold"), f"{s['first_frame']}-{s['last_frame']} (opened at {s['open_frame']}), "
                               f"since {since(s, first_time)}, {s['last_time'] - s['first_time']:,.1f} s long\n",
        ("traffic  ", "bold"), f"{s['packets']:,} packets, {s['bytes']:,} bytes, peak {s['peak_pps']:,} pkt/s, "
                               f"{s['distinct_peers']:,} distinct peers\n",
        ("model    ", "bold"), f"mean confidence {s['confidence']:.2f}\n",
    ]
    if s.get("services"):
        lines += [("services ", "bold"), ", ".join(s["services"]) + "\n"]
    if s.get("victims"):
        lines += [("victims  ", "bold"), ", ".join(s["victims"]) + "\n"]
    for key, title in (("attacker_mac", "MAC      "), ("claimed_ips", "claimed  "), ("source_macs", "src MACs "),
                       ("reflectors", "reflect. "), ("attackers", "sources  ")):
        v = s.get(key)
        if v:
            lines += [(title, "bold"), (", ".join(v) if isinstance(v, list) else str(v)) + "\n"]
    if s.get("end_reason"):
        lines += [("ended    ", "bold"), s["end_reason"] + "\n"]
    return Text.assemble(*lines)


class IncidentView(Vertical):
    """One incident with its evidence, drawn over the packet table on the app's own screen (a layer
    of its own, ``incident``), not on a screen of its own: pushing a ``ModalScreen`` restyled the
    whole DOM on the way in and out, and re-rendered and tinted the full screen behind it on every
    tick of a replay (the table keeps moving): 150-400 ms per open or close during a full-speed
    replay (bench/tui_latency.py incident). It never takes the focus: the Incidents pane keeps it
    and answers the view's keys (Enter/Escape/q close, j jump, t filter, up/down show the
    neighbouring incident), so opening and closing change no focus and no key bindings (each focus
    change restyled and redrew the pane and the table, each bindings change rebuilt the footer).
    While it is open the app's own keys are disabled (``IotWatchApp.check_action``), as under a
    modal."""

    DEFAULT_CSS = """
    IncidentView {
        layer: incident;
        display: none;
        width: 90%; height: auto; max-height: 85%;
        border: thick $accent; background: $surface; padding: 0 1;
        & > #incident-body { height: auto; }
    }
    """

    incident: dict | None = None

    def compose(self) -> ComposeResult:
        self.border_subtitle = "j jump to its frames · t filter the table to it · q/esc close"
        yield Static(id="incident-body")

    @property
    def is_open(self) -> bool:
        return self.incident is not None

    def open(self, incident: dict, first_time: float | None) -> None:
        """Show ``incident`` (another one replaces it in place)."""
        self.incident = incident
        self.border_title = f"Incident #{incident['id']}"
        self.query_one("#incident-body", Static).update(incident_text(incident, first_time))
        self.display = True

    def close(self) -> None:
        self.incident = None
        self.display = False
