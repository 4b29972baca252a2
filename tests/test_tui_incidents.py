"""The Incidents pane on the bundled demo with the bundled model (issue 13): one line per incident
sorted by severity then recency, focusable and scrollable; Enter opens the incident with its
evidence; ``j`` jumps the packet table to its first frame, ``t`` filters the table to its packets;
the packet detail shows the per-packet "why". The expected incidents come from a headless run."""
from __future__ import annotations

import json

import pytest
from rich.text import Text

from iotwatch.detector.classifier import PacketClassifier
from iotwatch.main import main
from iotwatch.options import demo_capture
from iotwatch.tui.app import make_app
from iotwatch.tui.widgets.detail import DetailScreen
from iotwatch.tui.widgets.incidents import IncidentsPane, IncidentView

from fakes import run_config
from tui_support import finish

pytestmark = pytest.mark.slow  # every test here takes > ~5 s (bash dev.sh test -m 'not slow' skips them)


@pytest.fixture
def expected(tmp_path) -> list[dict]:
    """The demo's incidents from a headless run (sync: sources refuse to open on an asyncio loop)."""
    rep = tmp_path / "h.json"
    assert main(["-r", str(demo_capture()), "--headless", "--report", str(rep)]) == 0
    return json.loads(rep.read_text())["incidents"]


def _plain(widget) -> str:
    r = widget.render()
    return r.plain if isinstance(r, Text) else str(r)


async def test_incidents_pane_open_jump_filter_and_why(expected):
    demo = str(demo_capture())
    clf = PacketClassifier.load(None)
    app = make_app(run_config(demo), clf, None)
    async with app.run_test(size=(120, 42)) as pilot:
        await finish(pilot)
        await pilot.pause()
        # the same incidents as headless, each with its latest (closed) snapshot
        assert sorted(app.incidents.items.values(), key=lambda s: s["id"]) == expected
        pane = app.query_one(IncidentsPane)
        order = [s["id"] for s in app.incidents.sorted()]
        assert pane.row_count == len(expected) == len(order)
        for i in order:   # cells updated in place while incidents grew show the final counts and state
            snap = app.incidents.get(i)
            assert pane.cells(i)[4] == f"{snap['packets']:,}"
            assert pane.cells(i)[6] == snap["state"] == "ended"
        sev = [app.incidents.get(i)["severity"] for i in order]
        assert sev == sorted(sev)                                    # most severe first
        await pilot.press("i")
        assert pane.has_focus
        await pilot.press("down")
        chosen = app.incidents.get(order[1])
        await pilot.press("enter")
        view = app.query_one(IncidentView)
        assert view.display and view.incident["id"] == chosen["id"] and pane.has_focus
        body = _plain(view.query_one("#incident-body"))
        assert chosen["evidence"] in body and f"{chosen['first_frame']}-{chosen['last_frame']}" in body
        # as under a modal: the app's keys do nothing while the incident is open, q closes it
        await pilot.press("a", "space")
        assert app.filter == ("all",) and not app.paused and view.display
        await pilot.press("up")                                      # the view follows the cursor
        assert view.incident["id"] == order[0]
        await pilot.press("q")
        await pilot.pause()
        assert not view.display and app.is_running and pane.has_focus
        await pilot.press("down", "enter")
        assert view.display and view.incident["id"] == chosen["id"]
        await pilot.press("j")                                       # jump: cursor on the first frame
        await pilot.pause()
        assert not view.display
        table = app.table
        assert table.view.row(table.cursor_pos).frame == chosen["first_frame"] and table.has_focus
        # t from the pane: the table shows only the incident's packets
        await pilot.press("i", "up", "t")
        await pilot.pause()
        first = app.incidents.get(order[0])
        assert app.filter[:2] == ("incident", first["id"]) and "incident #" in table.border_subtitle
        rows = [table.view.row(k) for k in range(len(table.view))]
        cls = app.class_names.index(first["class"])
        assert rows and all(first["first_frame"] <= r.frame <= first["last_frame"] and r.predicted == cls
                            and r.anomaly for r in rows)
        # the packet detail explains an anomalous packet
        await pilot.press("home", "enter")
        assert isinstance(app.screen, DetailScreen)
        summary = _plain(app.screen.query_one("#detail-summary"))
        assert f"why {first['class']}" in summary and "gradient x input" in summary
        await pilot.press("escape", "q")
