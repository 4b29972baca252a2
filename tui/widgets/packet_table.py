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
from textual.scroll_view import ScrollView
from textual.strip import Strip

from iotwatch.tui.store import Row, View

CLASS_SLOTS = 8


def class_slot(index: int, normal_index: int) -> int:
    """Colour slot of a class: slot 0 is the normal class, attacks take 1..7 in class order."""
    if index == normal_index:
        return 0
    return 1 + ((index - (index > normal_index)) % (CLASS_SLOTS - 1))


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.ljust(width)


class PacketTable(ScrollView, can_focus=True):
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
        Binding("up", "cursor(-1)", "Up", show=False, id="table-up"),
        Binding("down", "cursor(1)", "Down", show=False, id="table-down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table-page-up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table-page-down"),
        Binding("home", "top", "Oldest", show=False, id="table-top"),
        Binding("end", "follow", "Follow", show=False, id="table-follow"),
        Binding("enter", "choose", "Detail", id="detail"),
    ]

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
            self.virtual_size = Size(self.size.width, len(view) + 1)
            if self.follow:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            elif top_gid is not None:
                self.scroll_to(y=view.position(top_gid), animate=False, immediate=True)
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
    def _columns(self, width: int) -> tuple[int, ...]:
        """Widths: frame, time, endpoints, proto, len, class, conf, label (0 = hidden); the
        endpoints column takes what is left, narrow terminals drop the frame number and shorten
        class names."""
        name_w = self._name_w
        label_w = name_w + 2 if self.labelled else 0
        time_w, len_w = 10, 6
        ep = width - (7 + time_w + 7 + len_w + name_w + 1 + 5 + label_w)
        frame_w = 7
        if ep < 34:
            ep += frame_w + 2
            frame_w, time_w, len_w = 0, 9, 5
        if ep < 34 and name_w > 6:
            ep += (name_w - 6) * (2 if self.labelled else 1)
            name_w = 6
            label_w = name_w + 2 if self.labelled else 0
        return frame_w, time_w, max(10, ep), 7, len_w, name_w + 1, 5, label_w

    def _header(self, width: int) -> Strip:
        fw, tw, ew, pw, lw, cw, qw, bw = self._columns(width)
        text = ((" No." .ljust(fw) if fw else "") + "Time".rjust(tw - 1) + " " + _fit("Source → Destination", ew - 1)
                + " " + _fit("Proto", pw) + "Len".rjust(lw - 1) + " " + _fit("Class", cw) + "Conf".rjust(qw - 1)
                + " " + (_fit(" Label", bw) if bw else ""))
        style = self.rich_style + self.get_component_rich_style("packet-table--header")
        return Strip([Segment(_fit(text, width), style)], width)

    def _row_strip(self, row: Row, width: int, cursor: bool) -> Strip:
        fw, tw, ew, pw, lw, cw, qw, bw = self._columns(width)
        t = row.time - self.first_time if self.first_time is not None and not math.isnan(row.time) else float("nan")
        mark = "!" if row.anomaly else " "
        frame = f"{mark}{row.frame:>{fw - 2}} " if fw else ""
        time_s = f"{t:>{tw - 1}.3f} " if not math.isnan(t) else " " * tw
        main = (frame + time_s + _fit(row.endpoints(ew - 1), ew - 1) + " " + _fit(row.proto, pw)
                + f"{row.length:>{lw - 1}} " + _fit(self.class_names[row.predicted][: cw - 1], cw)
                + f"{row.confidence:>{qw - 1}.2f} ")
        base = self.rich_style + self.get_component_rich_style(f"packet-table--class-{self._slots[row.predicted]}")
        if row.anomaly:
            base += self.get_component_rich_style("packet-table--anomaly")
        cursor_style = self.get_component_rich_style("packet-table--cursor") if cursor else Style()
        segments = [Segment(main, base + cursor_style)]
        used = len(main)
        if bw:
            if row.label < 0:
                lab, lstyle = _fit(" -", bw), base
            elif row.label == row.predicted:
                lab, lstyle = _fit(" " + self.class_names[row.label][: bw - 2], bw), base + self.get_component_rich_style("packet-table--match")
            else:
                lab = _fit("✗" + self.class_names[row.label][: bw - 2], bw)
                lstyle = self.rich_style + self.get_component_rich_style("packet-table--mismatch")
            segments.append(Segment(lab, lstyle + cursor_style))
            used += len(lab)
        if used < width:
            segments.append(Segment(" " * (width - used), base + cursor_style))
        return Strip(segments, max(width, used)).crop(0, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        pos = int(self.scroll_y) + y - 1
        if pos >= len(self._view):
            return Strip.blank(width, self.rich_style)
        gid = self._view.gid(pos)
        cursor = gid == self.cursor_gid
        key = (gid, cursor, width, self.first_time)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._row_strip(self._view.row(pos), width, cursor)
            self._cache[key] = strip
        return strip

    def class_style(self, index: int) -> Style:
        """The rich style of class ``index`` (shared with the counters, alerts and confusion panes)."""
        return self.get_component_rich_style(f"packet-table--class-{self._slots[index]}", partial=True)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

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
        if offset is None or offset.y == 0:
            return
        pos = int(self.scroll_y) + offset.y - 1
        if pos < len(self._view):
            self.move_cursor(pos)
            if event.chain == 2:
                self.action_choose()
