"""Command palette entries (ctrl+p): "group: action" titles in posting's style, built from the
running app so class filters follow the model's classes."""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from iotwatch.tui.session import SPEEDS

if TYPE_CHECKING:
    from iotwatch.tui.app import IotWatchApp


class IotwatchCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: IotWatchApp = self.app  # type: ignore[assignment]
        cmds = [
            ("capture: pause / resume", app.action_toggle_pause, "stop or resume the feed"),
            ("view: next anomaly", app.action_next_anomaly, "move the cursor to the next anomalous packet"),
            ("view: follow newest", app.action_follow, "scroll to the newest packet and keep following"),
            ("view: clear table and alerts", app.action_clear, "counters and the report keep counting"),
            ("view: cycle side pane", app.action_cycle_pane, "compact layout: counters, alerts, confusion"),
            ("filter: none (all packets)", partial(app.set_filter, ("all",)), "show every packet"),
            ("filter: anomalies only", partial(app.set_filter, ("anomaly",)), "show anomalous packets only"),
            ("filter: Wireshark display filter …", partial(app.action_prompt, "filter"), "the / bar: checked by tshark as you type"),
            ("view: go to frame / find …", partial(app.action_prompt, "goto"), "the : bar: a frame number, a display filter or text"),
            ("view: first frame", app.table.action_top, "g / Home: frame 1, read back from the file if need be"),
            ("view: sort by next column", app.action_cycle_sort, "o: No., Len, Class, Conf (ascending, descending)"),
            ("file: save the view as a capture …", app.action_export, "w: the table's frames (or a v-marked range)"),
            ("help: keys and panes", app.action_help, "the ? screen"),
        ]
        for i, name in enumerate(app.class_names):
            cmds.append((f"filter: class {name}", partial(app.set_filter, ("class", i)),
                         f"show packets predicted as {name}"))
        for s in SPEEDS:
            cmds.append((f"replay: speed {s}", partial(app.set_speed, s), "pace the replay by packet timestamps"))
        return cmds

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
