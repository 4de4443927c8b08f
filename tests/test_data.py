from __future__ import annotations

import numpy as np
import pytest

from edgelstm.data.dataset import ColumnSpec, Recording, load
from edgelstm.data.normalize import Normalization
from edgelstm.data.splits import split_recordings, split_windows
from edgelstm.data.windows import make_windows, window_starts
from edgelstm.errors import InputError


def write(path, text: str):
    path.write_text(text)
    return path


CSV = """recording,time,a,b,label
r1,0.00,1,10,x
r1,0.02,2,20,x
r1,0.04,3,30,y
r2,0.00,4,40,y
r2,0.02,5,50,y
"""


def test_csv_reader_groups_labels_channels_rate(tmp_path):
    ds = load(write(tmp_path / "d.csv", CSV))
    assert ds.channels == ["a", "b"]  # time and label excluded
    assert ds.labels == ["x", "y"]
    assert [r.name for r in ds.recordings] == ["r1", "r2"]
    np.testing.assert_array_equal(ds.recordings[0].x, [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(ds.recordings[0].y, [0, 0, 1])
    np.testing.assert_array_equal(ds.recordings[1].y, [1, 1])
    assert ds.sample_rate == pytest.approx(50.0)


def test_numeric_class_names_sort_as_numbers(tmp_path):
    ds = load(write(tmp_path / "d.csv", "a,label\n1,10\n2,2\n3,1\n"))
    assert ds.labels == ["1", "2", "10"]
    np.testing.assert_array_equal(ds.recordings[0].y, [2, 1, 0])


def test_csv_regression_target(tmp_path):
    p = write(tmp_path / "d.csv", "a,b,speed\n1,2,0.5\n3,4,0.7\n")
    ds = load(p, ColumnSpec(task="regress", target_cols=["speed"]))
    assert ds.channels == ["a", "b"] and ds.targets == ["speed"]
    np.testing.assert_allclose(ds.recordings[0].y, [[0.5], [0.7]])


def test_folder_of_recordings(tmp_path):
    d = tmp_path / "recs"
    d.mkdir()
    write(d / "one.csv", "a,b,label\n1,2,walk\n3,4,walk\n")
    write(d / "two.csv", "a,b,label\n5,6,run\n")
    ds = load(d)
    assert [r.name for r in ds.recordings] == ["one", "two"]
    assert ds.labels == ["run", "walk"]
    np.testing.assert_array_equal(ds.recordings[0].y, [1, 1])
    np.testing.assert_array_equal(ds.recordings[1].y, [0])


def test_folder_with_different_channels_is_refused(tmp_path):
    d = tmp_path / "recs"
    d.mkdir()
    write(d / "one.csv", "a,b,label\n1,2,walk\n")
    write(d / "two.csv", "a,c,label\n5,6,run\n")
    with pytest.raises(InputError, match=r"two\.csv: channels \['a', 'c'\] differ"):
        load(d)


def test_npz_windows_and_stream(tmp_path):
    X = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    np.savez(tmp_path / "w.npz", X=X, y=np.array([1, 0]), groups=np.array(["g1", "g2"]), labels=np.array(["a", "b"]))
    ds = load(tmp_path / "w.npz")
    assert ds.windows is not None and ds.labels == ["a", "b"]
    np.testing.assert_array_equal(ds.windows.X, X)
    np.testing.assert_array_equal(ds.windows.groups, ["g1", "g2"])

    S = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.savez(tmp_path / "s.npz", X=S, y=np.array(["u", "u", "v", "v", "v"]), groups=np.array([1, 1, 1, 2, 2]))
    ds = load(tmp_path / "s.npz")
    assert ds.labels == ["u", "v"]
    assert [len(r.x) for r in ds.recordings] == [3, 2]
    np.testing.assert_array_equal(ds.recordings[0].y, [0, 0, 1])


def test_window_counts_and_contents():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)  # 10 samples, 2 channels
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]
    assert window_starts(10, 11, 1).tolist() == []
    w = make_windows([Recording("r", x, y)], window=4, stride=3, task="classify")
    assert w.X.shape == (3, 4, 2)
    np.testing.assert_array_equal(w.X[1], x[3:7])
    np.testing.assert_array_equal(w.y, [0, 1, 0])  # majority of [0,0,0,1], [1,1,1,1], [1,0,0,0]
    assert w.groups.tolist() == ["r", "r", "r"]
    # a tie goes to the latest sample's class
    w2 = make_windows([Recording("r", x[:4], np.array([0, 0, 1, 1]))], 4, 1, "classify")
    assert w2.y.tolist() == [1]


def test_forecast_and_regress_windows():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    w = make_windows([Recording("r", x)], window=4, stride=2, task="forecast", horizon=2, target_idx=[1])
    assert w.starts.tolist() == [0, 2, 4]  # the last window needs 2 future samples
    np.testing.assert_array_equal(w.y[0], [x[4, 1], x[5, 1]])
    yr = np.arange(10, dtype=np.float32)[:, None] * 0.5
    w = make_windows([Recording("r", x, yr)], window=4, stride=3, task="regress")
    np.testing.assert_array_equal(w.y[:, 0], [1.5, 3.0, 4.5])  # the target at each window's last sample


def test_window_longer_than_every_recording():
    recs = [Recording("a", np.zeros((5, 2), np.float32), np.zeros(5, np.int64))]
    with pytest.raises(InputError, match=r"d\.csv: window 6 is longer than every recording \(longest has 5"):
        make_windows(recs, 6, 1, "classify", source="d.csv")


def test_normalization_round_trip():
    rng = np.random.default_rng(1)
    X = rng.normal(loc=[3, -2, 0], scale=[5, 0.1, 0], size=(40, 7, 3)).astype(np.float32)
    n = Normalization.fit(X)
    Z = n.apply(X)
    np.testing.assert_allclose(Z[..., :2].reshape(-1, 2).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Z[..., :2].reshape(-1, 2).std(0), 1, atol=1e-4)
    assert n.std[2] == 1.0  # a constant channel is not divided by zero
    np.testing.assert_allclose(n.invert(Z), X, atol=1e-5)
    m, s = n.to_lists()
    np.testing.assert_array_equal(Normalization.from_lists(m, s).apply(X), Z)


def test_split_by_recording_never_leaks():
    rng = np.random.default_rng(0)
    recs = [
        Recording(f"s{s}_{c}", rng.normal(size=(30, 2)).astype(np.float32), np.full(30, c))
        for s in range(7)
        for c in range(3)
    ]
    parts = split_recordings(recs, "classify", seed=3)
    names = [{r.name for r in p} for p in parts]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert sum(map(len, names)) == len(recs)
    for p in parts:  # stratified: every class in every split
        assert {int(r.y[0]) for r in p} == {0, 1, 2}
    windows = [make_windows(p, 10, 5, "classify") for p in parts]
    groups = [set(w.groups.tolist()) for w in windows]
    assert not (groups[0] & groups[2]) and not (groups[1] & groups[2])


def test_single_recording_is_split_in_time_without_overlap():
    x = np.arange(100, dtype=np.float32)[:, None]
    tr, va, te = split_recordings([Recording("r", x)], "forecast")
    assert tr[0].x[-1, 0] < va[0].x[0, 0] and va[0].x[-1, 0] < te[0].x[0, 0]
    assert len(tr[0].x) + len(va[0].x) + len(te[0].x) == 100


def test_split_windows_by_group():
    X = np.zeros((40, 3, 1), np.float32)
    groups = np.repeat([f"g{i}" for i in range(10)], 4)
    from edgelstm.data.dataset import Windows

    tr, va, te = split_windows(Windows(X, np.zeros((40, 1), np.float32), groups), "regress")
    sets = [set(w.groups.tolist()) for w in (tr, va, te)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(tr) + len(va) + len(te) == 40


@pytest.mark.parametrize("policy,expect", [("drop", [[1, 10], [3, 30]]), ("interpolate", [[1, 10], [2, 20], [3, 30]])])
def test_nan_policies(tmp_path, policy, expect):
    p = write(tmp_path / "d.csv", "a,b,label\n1,10,x\nnan,20,x\n3,30,x\n")
    ds = load(p, ColumnSpec(nan=policy))
    np.testing.assert_allclose(ds.recordings[0].x, expect)
    assert len(ds.recordings[0].y) == len(expect)


def test_sample_data_is_deterministic():
    from edgelstm.data.sample import make_activity, make_forecast

    a, b = make_activity(2, 2.0, seed=5), make_activity(2, 2.0, seed=5)
    assert [r[0] for r in a] == [r[0] for r in b]
    for (_, y1, x1), (_, y2, x2) in zip(a, b):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(make_forecast(100, 1), make_forecast(100, 1))
    assert not np.array_equal(make_forecast(100, 1), make_forecast(100, 2))


def test_sample_activity_is_as_hard_as_real_data():
    """issue 13: one session per subject with every activity in bouts and transitions, imbalanced classes, subjects
    that differ in orientation and offset, and a drifting gyroscope."""
    from edgelstm.data.sample import ACTIVITIES, RATE_HZ, make_activity

    recs = make_activity()
    assert len(recs) == 20 and len({r for r, _, _ in recs}) == 20  # one recording per subject
    labels = np.concatenate([y for _, y, _ in recs])
    share = {a: float(np.mean(labels == a)) for a in ACTIVITIES}
    assert share["idle"] > share["walk"] > share["stairs"] > share["run"] > 0.08, share  # imbalanced
    assert share["idle"] / share["run"] > 1.8, share
    for _, y, x in recs:
        assert set(y) == set(ACTIVITIES)  # every subject does everything
        changes = np.flatnonzero(y[1:] != y[:-1])
        assert len(changes) >= 3 and np.min(np.diff(changes)) >= 2 * RATE_HZ  # bouts of seconds
        assert x.dtype == np.float32 and np.isfinite(x).all()
    # idle: the gravity vector's direction differs between subjects (orientation, posture) by up to tens of degrees
    g = np.array([x[y == "idle", :3].mean(axis=0) for _, y, x in recs])
    cos = g @ g.T / np.outer(np.linalg.norm(g, axis=1), np.linalg.norm(g, axis=1))
    assert np.degrees(np.arccos(np.clip(cos.min(), -1, 1))) > 30


def test_change_latencies():
    from edgelstm.evaluate.metrics import change_latencies

    truth = np.array(list("aaaabbbbbbcccaa"))
    pred = np.array(list("aaaaaabbbbbbbbb"))
    # b noticed 2 samples late, c never before the next change, a (at 13) never
    assert change_latencies(truth, pred) == [(4, 2), (10, None), (13, None)]
    assert change_latencies(truth, truth) == [(4, 0), (10, 0), (13, 0)]
    assert change_latencies(np.array(list("aaa")), np.array(list("bbb"))) == []


def test_easy_sample_data_is_the_file_before_issue_13(tmp_path):
    """The fixtures' data (hard=False) is byte for byte the CSV every threshold in the slow tests was set on
    (sha256 of the pre-issue-13 generator's file, commit 9af1000)."""
    import hashlib

    from edgelstm.data.sample import write_activity_csv

    p = write_activity_csv(tmp_path / "a.csv", hard=False)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == (
        "8bd79df508ebba5720e62337900261e5c1327012f71da30b749ec5f1256a9fd5"
    )
