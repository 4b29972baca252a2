"""The prompt under the table: ``/`` takes a Wireshark display filter (checked by tshark as you type,
off the UI thread), ``:`` a frame number to jump to or a display filter / text to search for.
The app does the work; this widget only edits, shows the verdict and reports Enter / Escape."""
from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

MODES = {
    "filter": ("Display filter", "a Wireshark display filter, e.g. dns or tcp.flags.syn==1 · Enter applies, "
                                 "empty clears · Esc cancels"),
    "export": ("Save", "file to write the table's frames to (never replaces a file) · Enter writes · Esc cancels"),
    "goto": ("Go to", "a frame number, or a display filter / text to find the next match · Esc cancels"),
}


class PromptBar(Input):
    DEFAULT_CSS = """
    PromptBar {
        display: none;
        height: 3;
        border: round $primary;
        &.-visible { display: block; }
        &.-valid { border: round $success; }
        &.-invalid { border: round $error; }
        &.-checking { border: round $warning; }
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False, id="prompt-cancel")]

    class Submitted(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Cancelled(Message):
        pass

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = "filter"

    def open(self, mode: str, value: str = "") -> None:
        self.mode = mode
        title, hint = MODES[mode]
        self.border_title = title
        self.border_subtitle = hint
        self.placeholder = hint
        self.value = value
        self.cursor_position = len(value)
        self.remove_class("-valid", "-invalid", "-checking")
        self.add_class("-visible")
        # focus now, not after the keys already queued: a fast typist's (or tmux's) next keys land here
        self.screen.set_focus(self)

    def close(self) -> None:
        self.remove_class("-visible", "-valid", "-invalid", "-checking")

    def verdict(self, state: str, text: str = "") -> None:
        """state: 'checking', 'valid', 'invalid' (text = tshark's reason) or '' (nothing to say)."""
        self.remove_class("-valid", "-invalid", "-checking")
        if state:
            self.add_class(f"-{state}")
        self.border_subtitle = text or MODES[self.mode][1]

    async def action_submit(self) -> None:
        self.post_message(self.Submitted(self.mode, self.value.strip()))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
