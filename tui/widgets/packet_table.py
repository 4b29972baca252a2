"""The packet table: a Line-API ``ScrollView`` over the bounded ``RowStore`` (toolong's LogLines shape).

Only rows on screen are formatted; each becomes a ``Strip`` cached by (row id, cursor, width), so a
50k-row buffer costs nothing until it is looked at. Line 0 is a fixed header. The view follows the
newest row unless the user scrolled away (``follow``); rows evicted from the top of the buffer keep
the user's rows in place. Colours come from component classes (one per class slot, plus anomaly,
cursor and label mismatch), so the theme lives in CSS.
"""
from __future__ import annotations

import math
from typing import Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip

from iotwatch.tui.store import Row, View
from iotwatch.tui.widgets.rowcache import StyledRowCache

CLASS_SLOTS = 8


def class_slot(index: int, normal_index: int) -> int:
    """Colour slot of a class: slot 0 is the normal class, attacks take 1..7 in class order."""
    if index == normal_index:
        return 0
    return 1 + ((index - (index > normal_index)) % (CLASS_SLOTS - 1))


_FLAG_LETTERS = ((0x80, "C"), (0x40, "E"), (0x20, "U"), (0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "A"))


def tcp_flags_text(flags: int) -> str:
    """TCP flags as letters (S=SYN A=ACK F=FIN R=RST P=PSH U=URG E=ECE C=CWR): ``SA`` for SYN-ACK."""
    if flags < 0:
        return ""
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "·"


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.ljust(width)


class PacketTable(StyledRowCache, can_focus=True):
    """Scrolling packet list; ``set_view`` is called on the app's tick with the current snapshot."""

    COMPONENT_CLASSES = {
        "packet-table--header", "packet-table--cursor", "packet-table--anomaly", "packet-table--mismatch",
        "packet-table--match", *(f"packet-table--class-{i}" for i in range(CLASS_SLOTS)),
    }
    DEFAULT_CSS = """
    PacketTable {
        overflow-x: hidden;
        overflow-y: scroll;
        & > .packet-table--header { text-style: bold; background: $panel; color: $text; }
        & > .packet-table--cursor { background: $accent 45%; }
        & > .packet-table--anomaly { text-style: bold; }
        & > .packet-table--mismatch { color: $error; text-style: bold reverse; }
        & > .packet-table--match { color: $text-muted; }
        & > .packet-table--class-0 { color: $text-muted; }
        & > .packet-table--class-1 { color: $warning; }
        & > .packet-table--class-2 { color: $error; }
        & > .packet-table--class-3 { color: magenta; }
        & > .packet-table--class-4 { color: darkorange; }
        & > .packet-table--class-5 { color: dodgerblue; }
        & > .packet-table--class-6 { color: lime; }
        & > .packet-table--class-7 { color: hotpink; }
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table-up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table-down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, id="table-page-up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="table-page-down"),
        Binding("home,g", "top", "First frame", show=False, id="table-top"),
        Binding("end,G", "follow", "Newest, follow", show=False, id="table-follow"),
        Binding("enter", "choose", "Detail", id="detail"),
    ]

    class SortClicked(Message):
        """A click on a sortable column title."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class RowChosen(Message):
        """Enter on a row: the app opens the packet detail."""

        def __init__(self, row: Row) -> None:
            super().__init__()
            self.row = row

    def __init__(self, classes_: Sequence[str], normal_index: int, labelled: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = list(classes_)
        self.normal_index = normal_index
        self.labelled = labelled
        self.follow = True
        self.cursor_gid: int | None = None
        self.first_time: float | None = None
        self._view = View([])
        self._cursor_pos: int | None = None
        self._adjusting = False
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._slots = [class_slot(i, normal_index) for i in range(len(self.class_names))]
        self._name_w = max([5] + [len(c) for c in self.class_names])
        self._col_cache: dict = {}
        self.frame_digits = 5      # widened by the app for big captures
        self.sort: tuple[str, bool] | None = None   # (key, descending); None = frame order
        self.generation = 0        # bumped when rows read back from the file arrive
        self.mark_gid: int | None = None   # start of a marked range (v), drawn with a bar in the marker column

    # --- data ----------------------------------------------------------------------------------
    @property
    def view(self) -> View:
        return self._view

    @property
    def cursor_pos(self) -> int | None:
        return self._cursor_pos

    def set_view(self, view: View, first_time: float | None) -> None:
        """Show a new snapshot (one refresh). Keeps the user's place unless following."""
        old = self._view
        top = int(self.scroll_y)
        top_gid = old.gid(top) if 0 <= top < len(old) else None
        self._view = view
        self.first_time = first_time
        self._cursor_pos = view.position(self.cursor_gid) if self.cursor_gid is not None else None
        if self._cursor_pos is not None and self._cursor_pos >= len(view):
            self._cursor_pos = None
            self.cursor_gid = None
        self._adjusting = True
        try:
            self._set_virtual_height(len(view) + 1)
            if self.follow:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            elif top_gid is not None:
                self.scroll_to(y=view.position(top_gid), animate=False, immediate=True)
        finally:
            self._adjusting = False
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        """New row count: the scrollbar and the scroll limits follow, without the layout pass a
        ``virtual_size`` assignment asks for (it reflowed and repainted the whole screen on every
        tick of a replay; this widget's own size does not depend on its rows)."""
        size = Size(self.size.width, height)
        if size == self.virtual_size:
            return
        if not self.size.width or self.virtual_size.width != size.width:
            self.virtual_size = size      # first layout or a new width: the ordinary way
            return
        self.set_reactive(PacketTable.virtual_size, size)
        self._scroll_update(size)

    def on_resize(self, event: events.Resize) -> None:
        """A new height moves the bottom: a following table keeps the newest row in view."""
        self.virtual_size = Size(event.size.width, len(self._view) + 1)
        if self.follow:
            self.call_after_refresh(self._to_end)

    def _to_end(self) -> None:
        if self.follow:
            self._adjusting = True
            try:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            finally:
                self._adjusting = False
            self.refresh()

    def pin_bottom(self) -> None:
        """Stop following but keep the rows now on screen where they are (pause: new rows must not
        push them away)."""
        self.follow = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._adjusting:
            return
        if new_value >= self.max_scroll_y and self.cursor_gid is None:
            self.follow = True
        elif new_value < old_value:
            self.follow = False

    # --- rendering -----------------------------------------------------------------------------
    def _columns(self, width: int) -> dict[str, int]:
        """Column widths (absent = hidden). Always: No. with the '!' marker, endpoints, protocol,
        full class name, confidence (and the label when labelled); then, as the width allows, time,
        length, TCP flags and tshark's Info column (which takes what is left)."""
        key = (width, self.labelled, self.frame_digits)
        cols = self._col_cache.get(key)
        if cols is not None:
            return cols
        name_w = self._name_w
        cols = {"no": 2 + self.frame_digits, "ep": 30, "proto": 7, "class": name_w + 1, "conf": 5}
        if self.labelled:
            cols["label"] = name_w + 2 if width - sum(cols.values()) >= name_w + 2 else 8
        rem = width - sum(cols.values())
        order = [("time", 10)] if width < 100 else [("time", 10), ("info", 20), ("flags", 7), ("len", 6)]
        for name, w in order:
            if rem >= w:
                cols[name] = w
                rem -= w
        if "info" in cols:
            grow = min(max(rem, 0), 12)
            cols["ep"] += grow
            cols["info"] += rem - grow
        else:
            cols["ep"] += max(rem, 0)
        self._col_cache[key] = cols
        return cols

    ORDER = ("no", "time", "ep", "proto", "len", "flags", "class", "conf", "label", "info")
    TITLES = {"no": " No.", "time": "Time", "ep": "Source → Destination", "proto": "Proto", "len": "Len",
              "flags": "Flags", "class": "Class", "conf": "Conf", "label": " Label", "info": "Info"}
    SORTABLE = {"no": "No.", "len": "Len", "class": "Class", "conf": "Conf"}

    def _header(self, width: int) -> Strip:
        cols = self._columns(width)
        parts = []
        for name in self.ORDER:
            w = cols.get(name)
            if not w:
                continue
            title = self.TITLES[name]
            if self.sort is not None and self.SORTABLE.get(name) == self.sort[0]:
                title += "▼" if self.sort[1] else "▲"
            parts.append(title.rjust(w - 1) + " " if name in ("time", "len", "conf") else _fit(title, w))
        style = self.rich_style + self.get_component_rich_style("packet-table--header")
        return Strip([Segment(_fit("".join(parts), width), style)], width)

    def _in_range(self, gid: int) -> bool:
        if self.mark_gid is None or self.cursor_gid is None:
            return False
        a, b = self._view.position(self.mark_gid), self._view.position(self.cursor_gid)
        p = self._view.position(gid)
        return min(a, b) <= p <= max(a, b)

    def column_at(self, x: int, width: int) -> str | None:
        """The column under screen column ``x`` (header clicks sort)."""
        cols = self._columns(width)
        left = 0
        for name in self.ORDER:
            w = cols.get(name)
            if w:
                if left <= x < left + w:
                    return name
                left += w
        return None

    def _row_strip(self, row: Row, width: int, cursor: bool) -> Strip:
        cols = self._columns(width)
        t = row.time - self.first_time if self.first_time is not None and not math.isnan(row.time) else float("nan")
        class_style = self.get_component_rich_style(f"packet-table--class-{self._slots[row.predicted]}")
        base = self.rich_style
        if row.anomaly:   # flagged rows take their class colour, bold
            base = base + class_style + self.get_component_rich_style("packet-table--anomaly")
        elif row.loading:
            base = base + self.get_component_rich_style("packet-table--match")
        cursor_style = self.get_component_rich_style("packet-table--cursor") if cursor else Style()
        segs: list[Segment] = []
        for name in self.ORDER:
            w = cols.get(name)
            if not w:
                continue
            style = base
            if name == "no":
                text = f"{'!' if row.anomaly else ' '}{row.frame:>{w - 2}}" + ("▐" if self._in_range(row.gid) else " ")
            elif name == "time":
                text = f"{t:>{w - 1}.3f} " if not math.isnan(t) else " " * w
            elif name == "ep":
                text = _fit("…" if row.loading else row.endpoints(w - 1), w - 1) + " "
            elif name == "proto":
                text = _fit(row.proto, w)
            elif name == "len":
                text = f"{row.length:>{w - 1}} "
            elif name == "flags":
                text = _fit(tcp_flags_text(row.flags), w)
            elif name == "class":
                text = _fit(self.class_names[row.predicted][: w - 1], w)
                style = base + class_style
            elif name == "conf":
                text = f"{row.confidence:>{w - 1}.2f} "
            elif name == "label":
                if row.label < 0:
                    text = _fit(" -", w)
                elif row.label == row.predicted:
                    text = _fit(" " + self.class_names[row.label][: w - 2], w)
                    style = base + self.get_component_rich_style("packet-table--match")
                else:
                    text = _fit("✗" + self.class_names[row.label][: w - 2], w)
                    style = self.rich_style + self.get_component_rich_style("packet-table--mismatch")
            else:  # info
                text = _fit(row.info, w)
            segs.append(Segment(text, style + cursor_style))
        used = sum(len(sg.text) for sg in segs)
        if used < width:
            segs.append(Segment(" " * (width - used), base + cursor_style))
        return Strip(segs, max(width, used)).crop(0, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        pos = int(self.scroll_y) + y - 1
        if pos >= len(self._view):
            return Strip.blank(width, self.rich_style)
        gid = self._view.gid(pos)
        cursor = gid == self.cursor_gid
        key = (gid, cursor, width, self.first_time, self.generation, self.frame_digits, self.labelled,
               self.mark_gid is not None and self._in_range(gid))
        strip = self._cache.get(key)
        if strip is None:
            strip = self._row_strip(self._view.row(pos), width, cursor)
            self._cache[key] = strip
        return strip

    def class_style(self, index: int) -> Style:
        """The rich style of class ``index`` (shared with the counters, alerts and confusion panes)."""
        return self.get_component_rich_style(f"packet-table--class-{self._slots[index]}", partial=True)

    # --- navigation ----------------------------------------------------------------------------
    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, pos: int | None) -> None:
        """Put the cursor on view position ``pos`` (None = no cursor, follow the newest)."""
        if pos is None or not len(self._view):
            self.cursor_gid = None
            self._cursor_pos = None
            self.follow = True
            self._adjusting = True
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            self._adjusting = False
            self.refresh()
            return
        pos = max(0, min(pos, len(self._view) - 1))
        self.cursor_gid = self._view.gid(pos)
        self._cursor_pos = pos
        self.follow = False
        top = int(self.scroll_y)
        if pos < top:
            self.scroll_to(y=pos, animate=False, immediate=True)
        elif pos >= top + self._page:
            self.scroll_to(y=pos - self._page + 1, animate=False, immediate=True)
        self.refresh()

    def _start_pos(self) -> int:
        """Where the cursor appears when the user starts moving: the last row on screen."""
        return min(len(self._view), int(self.scroll_y) + self._page) - 1

    def action_cursor(self, delta: int) -> None:
        if self._cursor_pos is None:
            self.move_cursor(self._start_pos())
        else:
            self.move_cursor(self._cursor_pos + delta)

    def action_page(self, delta: int) -> None:
        base = self._cursor_pos if self._cursor_pos is not None else self._start_pos()
        self.move_cursor(base + delta * self._page)

    def action_top(self) -> None:
        self.move_cursor(0)

    def action_follow(self) -> None:
        self.move_cursor(None)

    def action_choose(self) -> None:
        pos = self._cursor_pos if self._cursor_pos is not None else len(self._view) - 1
        if 0 <= pos < len(self._view):
            self.post_message(self.RowChosen(self._view.row(pos)))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            col = self.column_at(offset.x, self.scrollable_content_region.width)
            if col in self.SORTABLE:
                self.post_message(self.SortClicked(self.SORTABLE[col]))
            return
        pos = int(self.scroll_y) + offset.y - 1
        if pos < len(self._view):
            self.move_cursor(pos)
            if event.chain == 2:
                self.action_choose()
