"""Snapshot tests (pytest-textual-snapshot) with deterministic input: a ReplaySource of synthetic
packets, the fake classifier, fixed labels and a fixed clock. Update with --snapshot-update only
after reviewing the report."""
from __future__ import annotations

from iotwatch.tui.app import make_app

from fakes import ReplaySource, run_config
from tui_support import FakeClassifier, finish, make_labels, make_packets


def app_for(n=800, labelled=True):
    pk = make_packets(n)
    return make_app(run_config("demo.pcapng"), FakeClassifier(), make_labels(pk) if labelled else None,
                    source_factory=lambda: ReplaySource(pk, "demo.pcapng"), clock=lambda: 0.0, batch_rows=256)


def test_wide_labelled_replay(snap_compare):
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=finish)


def test_compact_layout(snap_compare):
    assert snap_compare(app_for(), terminal_size=(80, 24), run_before=finish)


def test_compact_confusion_pane(snap_compare):
    assert snap_compare(app_for(), terminal_size=(80, 24), run_before=finish, press=["m", "m"])


def test_anomalies_filter_with_cursor(snap_compare):
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=finish, press=["a", "home", "n"])


def test_unlabelled_replay_hides_label_column_and_confusion(snap_compare):
    assert snap_compare(app_for(labelled=False), terminal_size=(120, 40), run_before=finish)


def test_help_screen(snap_compare):
    assert snap_compare(app_for(50), terminal_size=(120, 40), run_before=finish, press=["question_mark"])


def test_80x24_anomalies_show_number_marker_and_full_class_names(snap_compare):
    assert snap_compare(app_for(), terminal_size=(80, 24), run_before=finish, press=["a", "g"])


def test_goto_prompt(snap_compare):
    assert snap_compare(app_for(), terminal_size=(100, 30), run_before=finish, press=["colon", "4", "2"])
