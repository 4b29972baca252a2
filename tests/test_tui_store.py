"""The TUI's bounded stores and capture session, without Textual: eviction, filtered views, alert
incident snapshots, rates, pacing and outputs."""
from __future__ import annotations

import json

import numpy as np

from iotwatch.detector.metrics import RunTotals
from iotwatch.detector.pipeline import classify_stream
from iotwatch.tui.session import CaptureSession
from iotwatch.tui.store import IncidentStore, RateHistory, RowStore, display_batch, sparkline

from fakes import ReplaySource, run_config
from tui_support import CLASSES, FakeClassifier, make_labels, make_packets, truth


def _batches(n=1000, rows=100):
    pk = make_packets(n)
    return pk, [display_batch(cb) for cb in
                classify_stream(ReplaySource(pk), FakeClassifier(), make_labels(pk), max_rows=rows)]


def test_rowstore_keeps_the_last_cap_rows_exactly():
    pk, cbs = _batches(1000, rows=100)
    store = RowStore(cap=250)
    store.MERGE_BELOW = 0  # keep one chunk per batch so partial eviction of a chunk is exercised
    for cb in cbs:
        store.append(cb)
    view = store.view()
    assert len(store) == len(view) == 250
    assert store.added == 1000 and store.evicted == 750
    frames = [view.row(i).frame for i in range(len(view))]
    assert frames == list(range(751, 1001))


def test_rowstore_merges_small_batches_and_keeps_row_order():
    pk, cbs = _batches(300, rows=7)
    store = RowStore(cap=10_000)
    for cb in cbs:
        store.append(cb)
    view = store.view()
    assert len(store._chunks) == 1
    assert [view.row(i).frame for i in range(len(view))] == list(range(1, 301))


def test_filtered_views_positions_and_next_anomaly():
    pk, cbs = _batches(600, rows=64)
    store = RowStore(cap=10_000)
    store.MERGE_BELOW = 0
    for cb in cbs:
        store.append(cb)
    t = truth(pk)
    anomalies = store.view(("anomaly",))
    assert len(anomalies) == int(np.count_nonzero(t != 0))
    assert all(anomalies.row(i).anomaly for i in range(len(anomalies)))
    dos = store.view(("class", 2))
    assert [dos.row(i).frame for i in range(len(dos))] == (np.flatnonzero(t == 2) + 1).tolist()
    full = store.view()
    first = full.next_anomaly(-1)
    assert first == int(np.flatnonzero(t != 0)[0])
    second = full.next_anomaly(first)
    assert second == int(np.flatnonzero(t != 0)[1])
    # position() maps a row id to the first row at or after it in a filtered view
    gid = full.gid(second)
    assert anomalies.gid(anomalies.position(gid)) == gid
    assert full.position(10**9) == len(full)


def test_incident_store_keeps_the_latest_snapshot_sorted_by_severity_then_recency():
    def snap(i, sev, last, state="active"):
        return {"id": i, "severity": sev, "last_time": last, "state": state}

    st = IncidentStore(cap=3)
    st.merge([snap(1, 3, 10.0), snap(2, 1, 5.0)])
    st.merge([snap(1, 3, 20.0), snap(3, 1, 7.0)])       # incident 1 grew: replaced, not added
    assert [s["id"] for s in st.sorted()] == [3, 2, 1] and st.get(1)["last_time"] == 20.0
    assert st.opened == 3 and st.version == 2
    st.merge([snap(2, 1, 6.0, "ended"), snap(4, 2, 30.0)])  # over the cap: the ended one seen longest ago goes
    assert len(st) == 3 and st.get(2) is None and st.opened == 4


def test_incident_filter_frame_positions_and_kept_features():
    pk, cbs = _batches(600, rows=100)
    store = RowStore()
    for cb in cbs:
        store.append(cb)
    t = truth(pk)
    src = pk["ip_src"]
    host = src[np.flatnonzero(t == 2)[0]]
    view = store.view(("incident", 7, 2, 100, 400, (host,)))
    fr = pk["frame_number"]
    want = [int(f) for f, c, s, d in zip(fr, t, src, pk["ip_dst"]) if c == 2 and 100 <= f <= 400 and host in (s, d)]
    assert [view.row(i).frame for i in range(len(view))] == want and want
    full = store.view()
    assert full.row(full.position_of_frame(250)).frame == 250
    assert full.position_of_frame(10_000) is None
    # the model input is kept for anomalous rows only (for the detail view's "why")
    for gid in (int(np.flatnonzero(t != 0)[0]), int(np.flatnonzero(t != 0)[-1])):
        assert store.features(gid).tolist() == [float(t[gid])]
    assert store.features(int(np.flatnonzero(t == 0)[0])) is None


def test_rates_and_sparkline():
    r = RateHistory(2, period=1.0)
    r.sample(0.0, np.array([0, 0]))
    r.sample(0.5, np.array([10, 0]))      # too soon: no bucket
    assert len(r.history) == 0
    r.sample(2.0, np.array([40, 4]))
    assert r.rates.tolist() == [20.0, 2.0] and r.total_rate == 22.0
    # the history is capped; the sample count is what tells the UI new rates exist (e.g. traffic stopped)
    for i in range(40):
        r.sample(3.0 + i, np.array([40, 4]))
    assert len(r.history) == 30 and r.samples == 41 and r.total_rate == 0.0
    assert sparkline([0, 1, 2, 4], 6) == "  ▁▃▅█"
    assert sparkline([], 3) == "   "


def test_session_counts_every_packet_and_writes_outputs(tmp_path):
    pk = make_packets(700)
    labels = make_labels(pk)
    rep, pred, al = tmp_path / "r.json", tmp_path / "p.csv", tmp_path / "a.jsonl"
    s = CaptureSession(run_config("x.pcapng", report=str(rep), predictions=str(pred), alerts=str(al)),
                       FakeClassifier(), labels, source_factory=lambda: ReplaySource(pk, "x.pcapng"), batch_rows=128)
    emitted = []
    report = s.run(emitted.append, lambda: False)
    ref = RunTotals(CLASSES)
    for cb in classify_stream(ReplaySource(pk), FakeClassifier(), labels, max_rows=128):
        ref.update(cb.predicted, cb.anomaly, cb.labels)
    assert sum(len(cb) for cb in emitted) == 700
    assert report["class_counts"] == {c: int(n) for c, n in zip(CLASSES, ref.class_counts)}
    assert report["confusion"]["matrix"] == ref.confusion.matrix.tolist()
    assert json.loads(rep.read_text()) == report
    assert len(pred.read_text().splitlines()) == 701
    events = [json.loads(line) for line in al.read_text().splitlines()]   # incidents as EVE alerts
    assert all(e["event_type"] == "alert" and e["alert"]["metadata"]["incident_id"] for e in events)
    assert sum(e["alert"]["metadata"]["incident_state"] == ["opened"] for e in events) == report["incidents_opened"]
    assert len(report["incidents"]) == report["incidents_opened"]
    assert s.done.is_set()


def test_session_count_limit_and_cancel():
    pk = make_packets(500)
    s = CaptureSession(run_config(count=130), FakeClassifier(), source_factory=lambda: ReplaySource(pk), batch_rows=64)
    rep = s.run(lambda cb: None, lambda: False)
    assert rep["packets"] == 130
    s2 = CaptureSession(run_config(), FakeClassifier(), source_factory=lambda: ReplaySource(pk), batch_rows=64)
    seen = []
    rep2 = s2.run(seen.append, lambda: len(seen) >= 2)
    assert rep2["interrupted"] is True and rep2["packets"] == 128


def test_paced_replay_slices_follow_timestamps():
    # 1x over 0.2 s of capture time: the stream arrives in several slices, in order, nothing lost
    pk = make_packets(200, spacing=0.001)
    s = CaptureSession(run_config(speed="1x"), FakeClassifier(), source_factory=lambda: ReplaySource(pk), batch_rows=1000)
    seen = []
    s.run(seen.append, lambda: False)
    assert len(seen) > 1
    frames = np.concatenate([cb.packets["frame_number"] for cb in seen])
    assert frames.tolist() == list(range(1, 201))


def test_display_batches_hold_no_python_objects():
    # object columns would be walked by the cycle collector on every full collection
    pk, cbs = _batches(300, rows=100)
    for cb in cbs:
        assert all(col.dtype != object for col in cb.packets.columns.values())
    store = RowStore()
    for cb in cbs:
        store.append(cb)
    row = store.view().row(0)
    assert (row.src, row.dst, row.dst_port) == (pk["ip_src"][0], "192.168.1.1", int(pk["tcp_dstport"][0]))
    assert isinstance(row.proto, str) and row.proto == "TCP"
