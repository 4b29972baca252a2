"""The incident view and the Incidents pane do little work per key (issue 13: keys < 100 ms during a
full-speed replay; the timings are in bench/tui_latency.py incident, here only what they rest on):
the view is drawn on the main screen and never takes the focus, the app's keys are off while it is
open, and a focus change or a snapshot that changes one incident redraws no cached row but the
ones that changed."""
from __future__ import annotations

from iotwatch.tui.app import make_app
from iotwatch.tui.widgets.incidents import IncidentsPane, IncidentView
from iotwatch.tui.widgets.packet_table import PacketTable

from fakes import ReplaySource, run_config
from tui_support import FakeClassifier, finish, make_packets


def _app():
    pk = make_packets(800)
    return make_app(run_config("demo.pcapng"), FakeClassifier(), None,
                    source_factory=lambda: ReplaySource(pk, "demo.pcapng"), clock=lambda: 0.0, batch_rows=256)


def _count(monkeypatch, cls, name) -> list:
    calls = []
    orig = getattr(cls, name)

    def counted(self, *a, **k):
        calls.append(a)
        return orig(self, *a, **k)

    monkeypatch.setattr(cls, name, counted)
    return calls


async def test_view_opens_on_the_main_screen_and_keeps_the_pane_focused():
    app = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        pane, view = app.query_one(IncidentsPane), app.query_one(IncidentView)
        assert pane.row_count >= 2
        main_screen = app.screen
        await pilot.press("i", "enter")
        assert app.screen is main_screen and view.display and pane.has_focus
        assert view.incident["id"] == pane.selected
        assert "esc Close the incident" in _keyline(app)   # the key line shows how to close it
        await pilot.press("a", "slash", "question_mark")   # the app's keys are off under the view
        assert app.filter == ("all",) and app.screen is main_screen and view.display
        await pilot.press("down")                          # the view follows the pane's cursor
        assert view.incident["id"] == pane.selected == pane._order[1]
        await pilot.press("escape")
        assert not view.display and pane.has_focus and app.is_running
        await pilot.press("q")                             # without a view, q is the app's again
        await pilot.pause()
        assert not app.is_running


def _keyline(app) -> str:
    from iotwatch.tui.widgets.key_bar import KeyBar

    bar = app.query_one(KeyBar)
    return "".join(seg.text for seg in bar.render_line(0))


async def test_a_focus_change_redraws_no_cached_row(monkeypatch):
    app = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await pilot.pause()
        rows = _count(monkeypatch, PacketTable, "_row_strip")
        lines = _count(monkeypatch, IncidentsPane, "_line")
        await pilot.press("i")          # table -> pane: both restyle, the table's rows stay cached
        await pilot.pause()
        assert app.incident_pane.has_focus
        assert rows == []
        assert len(lines) == 1          # only the row that now shows the cursor
        await pilot.press("down")       # the cursor moves: one new strip (the row it left is cached)
        await pilot.pause()
        assert len(lines) == 2


async def test_a_snapshot_redraws_only_the_incidents_that_changed(monkeypatch):
    app = _app()
    async with app.run_test(size=(120, 40)) as pilot:
        await finish(pilot)
        await pilot.pause()
        pane = app.incident_pane
        first, second = pane._order[:2]
        lines = _count(monkeypatch, IncidentsPane, "_line")
        snap = dict(app.incidents.get(second))
        snap["packets"] += 5
        app.incidents.merge([snap])
        app.refresh_screen()
        await pilot.pause()
        assert pane.cells(second)[4] == f"{snap['packets']:,}"
        assert len(lines) == 1          # the one changed row; the others come from the cache
