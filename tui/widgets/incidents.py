"""Incidents pane: one line per incident (class, attacker → victim, services, packets, since),
most severe first, then the most recently active; focusable and scrollable (a small ``DataTable``:
incidents are few). Enter opens ``IncidentView`` with the evidence; ``j`` jumps the packet table
to the incident's first frame, ``t`` filters the table to its packets (from the pane or the screen).
"""
from __future__ import annotations

from typing import Callable, Sequence

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from iotwatch.tui.store import IncidentStore

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


class IncidentsPane(DataTable):
    """The incidents of the run; ``show(store, first_time)`` redraws when the store changed."""

    DEFAULT_CSS = """
    IncidentsPane { height: 1fr; }
    IncidentsPane > .datatable--cursor { background: $accent 45%; }
    """
    BINDINGS = [
        Binding("enter", "open", "Open incident", id="incident-open"),
        Binding("j", "jump", "Jump to its frames", id="incident-jump"),
        Binding("t", "filter", "Filter table to it", id="incident-filter"),
    ]

    class Chosen(Message):
        """A key on an incident: ``action`` is "open", "jump" or "filter"."""

        def __init__(self, incident: dict, action: str) -> None:
            super().__init__()
            self.incident = incident
            self.action = action

    def __init__(self, classes_: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.class_names = list(classes_)
        self.class_style: Callable[[int], Style] = lambda i: Style()
        self._version = -1
        self._order: list[int] = []
        self._shown: dict[int, tuple] = {}
        self._columns: list = []
        self.empty_text = "no incidents yet"

    def on_mount(self) -> None:
        # fixed widths: auto widths are measured when the app is idle, so they would depend on timing
        self._columns = [self.add_column(label, width=width) for label, width in COLUMNS]
        self.show_header = True

    def _cells(self, s: dict, first_time: float | None) -> tuple:
        cls = self.class_names.index(s["class"]) if s["class"] in self.class_names else 0
        return (Text(SEVERITY.get(s["severity"], str(s["severity"])), style="bold" if s["severity"] == 1 else ""),
                Text(f"{s['class']}/{s['kind']}", style=self.class_style(cls) + Style(bold=True)),
                who(s, 36), ", ".join(s.get("services", [])[:2]), f"{s['packets']:,}", since(s, first_time),
                Text(s["state"], style="bold" if s["state"] == "active" else "dim"))

    def show(self, store: IncidentStore, first_time: float | None) -> None:
        if store.version == self._version:
            return
        self._version = store.version
        items = store.sorted()
        rows = {s["id"]: self._cells(s, first_time) for s in items}
        if [s["id"] for s in items] == self._order:   # same incidents, same order: only changed cells
            for i, cells in rows.items():
                old = self._shown.get(i, ())
                for col, (a, b) in enumerate(zip(old, cells)):
                    if str(a) != str(b):
                        self.update_cell(str(i), self._columns[col], b)
            self._shown = rows
            return
        # while the user works in the pane the cursor stays on its incident; otherwise on the top row
        keep = self.selected if self.has_focus else None
        self.clear()
        self._order = [s["id"] for s in items]
        self._shown = rows
        for i in self._order:
            self.add_row(*rows[i], key=str(i))
        if keep in self._order:
            self.move_cursor(row=self._order.index(keep), animate=False)
        hint = "i focus · ⏎ open · j jump · t filter"
        self.border_subtitle = f"{len(items):,} incidents · {hint}" if items else self.empty_text

    @property
    def selected(self) -> int | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    def _chosen(self, action: str) -> None:
        sel = self.selected
        store = getattr(self.app, "incidents", None)
        if sel is None or store is None or store.get(sel) is None:
            self.app.notify("no incident selected", timeout=3)
            return
        self.post_message(self.Chosen(store.get(sel), action))

    def action_open(self) -> None:
        self._chosen("open")

    def action_jump(self) -> None:
        self._chosen("jump")

    def action_filter(self) -> None:
        self._chosen("filter")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._chosen("open")


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


class IncidentView(Vertical, can_focus=True):
    """One incident with its evidence, drawn over the packet table on the app's own screen (a layer
    of its own, ``incident``), not on a screen of its own: pushing a ``ModalScreen`` restyled the
    whole DOM on the way in and out and re-rendered and tinted the full screen behind it on every
    tick of a replay (the table keeps moving), 150-400 ms per open/close on a full-speed replay
    (bench/tui_latency.py incident). Closes with ``Closed(incident, action)``: action "jump",
    "filter" or None. While it is open the app's own keys are disabled (``IotWatchApp.check_action``),
    as under a modal."""

    DEFAULT_CSS = """
    IncidentView {
        layer: incident;
        display: none;
        width: 90%; height: auto; max-height: 85%;
        border: thick $accent; background: $surface; padding: 0 1;
        border-title-style: bold;
        & > #incident-body { height: auto; }
    }
    """
    BINDINGS = [
        Binding("escape,q,enter", "close(None)", "Close", id="incident-close"),
        Binding("j", "close('jump')", "Jump to frames", id="incident-screen-jump"),
        Binding("t", "close('filter')", "Filter table", id="incident-screen-filter"),
    ]

    class Closed(Message):
        """The view closed: ``action`` is "jump", "filter" or None (just closed)."""

        def __init__(self, incident: dict, action: str | None) -> None:
            super().__init__()
            self.incident = incident
            self.action = action

    incident: dict | None = None

    def compose(self) -> ComposeResult:
        self.border_subtitle = "j jump to its frames · t filter the table to it · esc close"
        yield Static(id="incident-body")

    @property
    def is_open(self) -> bool:
        return self.incident is not None

    def open(self, incident: dict, first_time: float | None, back: Widget | None = None,
             onward: Widget | None = None) -> None:
        """Show ``incident`` and take the focus at once (a key typed right after must reach it).
        Closing gives the focus to ``back`` (Escape) or ``onward`` (jump, filter) directly: one focus
        change (each restyles the widgets involved), not one to whatever Textual picks and another."""
        self._back, self._onward = back, onward
        self.incident = incident
        self.border_title = f"Incident #{incident['id']}"
        self.query_one("#incident-body", Static).update(incident_text(incident, first_time))
        self.display = True
        self.screen.set_focus(self)

    _back: Widget | None = None
    _onward: Widget | None = None

    def action_close(self, action: str | None) -> None:
        s, self.incident = self.incident, None
        target = self._back if action is None else self._onward
        if self.has_focus and target is not None and target.display:
            self.screen.set_focus(target)
        self.display = False
        if s is not None:
            self.post_message(self.Closed(s, action))

    def on_blur(self) -> None:
        # the focus went elsewhere (a click on the table, a screen on top): the view closes, as a
        # modal would not let it go there
        if self.incident is not None:
            self.action_close(None)
