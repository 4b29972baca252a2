"""The ``?`` help screen: every key binding (generated from the live bindings, so it never drifts)
plus what each pane shows."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

PANES = (
    ("Packets", "newest at the bottom, followed unless you scroll away (End follows again); "
                "'!' marks anomalies, ✗ a label that disagrees with the prediction; Enter shows the dissection "
                "and why the model chose the class"),
    ("Classes", "every packet counted, rate over the last second and a sparkline of recent rates; ▲ = attack class seen"),
    ("Incidents", "who attacks whom since when: one line per incident, most severe then most recent first; "
                  "i focuses it, Enter shows the evidence, j jumps to its frames, t filters the table to it"),
    ("Confusion", "labelled replays: rows are labels, columns predictions; precision/recall/F1 and macro-F1"),
    ("Status", "source, packets, pkt/s, rows shown vs dropped from view (buffer limit), capture drops, model"),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: 90; max-width: 95%; height: auto; max-height: 90%;
            border: thick $accent; background: $surface; padding: 0 1;
        }
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help-close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.bindings_list = bindings

    def compose(self) -> ComposeResult:
        keys = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        keys.add_column(style="bold")
        keys.add_column()
        for key, desc in self.bindings_list:
            keys.add_row(key, desc)
        panes = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        panes.add_column(style="bold")
        panes.add_column()
        for name, desc in PANES:
            panes.add_row(name, desc)
        with VerticalScroll() as v:
            v.border_title = "iotwatch help"
            v.border_subtitle = "esc to close · ctrl+p for the command palette"
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            yield Static(Text("\nPanes", style="bold underline"))
            yield Static(panes)
