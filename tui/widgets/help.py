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
    ("Packets", "newest at the bottom, followed unless you move away (End / G follows again); '!' marks an "
                "anomaly and the row takes its class colour; ✗ a label that disagrees with the prediction. "
                "A replay keeps every frame browsable: rows no longer in memory are read back from the file "
                "(shown as … for a moment). Click a column title (No., Len, Class, Conf) or press o to sort. "
                "Enter shows Wireshark's dissection of the frame and why the model chose the class"),
    ("Filter /", "a Wireshark display filter (tshark checks it as you type: green valid, red invalid with "
                 "tshark's reason); Enter filters the table by the frames tshark matches in the file, an empty "
                 "filter clears it; the active filter is in the status bar (-Y ...)"),
    ("Go to :", "a frame number jumps to it; anything else finds the next row matching it as a display filter "
                "(or as text in the rows in memory)"),
    ("Pause", "freezes the table, never the capture: every packet is still counted and kept; resuming shows "
              "the rows that arrived meanwhile below where you were"),
    ("Classes", "every packet counted by predicted class, rate over the last second and a sparkline; "
                "▲ = attack class seen. 'anomalous' counts packets whose class is not normal AND whose "
                "confidence reaches the model's anomaly threshold, so it is less than the sum of the attack "
                "classes: low-confidence attack predictions are shown but not flagged"),
    ("Incidents", "who attacks whom since when: one line per incident, most severe then most recent first; "
                  "i focuses it, Enter shows the evidence, j jumps to its frames, t filters the table to it"),
    ("Confusion", "labelled replays: rows are labels, columns predictions; precision/recall/F1 and macro-F1"),
    ("Status", "state, source, packets, pkt/s, speed, filters, rows in the table, capture drops, model"),
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
