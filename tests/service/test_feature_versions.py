"""Feature versions: a project's features are computed once, memory-mapped, and grown in place
when items are added (``.npy`` rows, image descriptors, tabular columns with frozen scaling)."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.service.features import _append_npy, project_features, read_manifest
from labelwise.storage import InMemoryStore, NewItem


def _folder(settings, pid):
    return settings.data_dir / "features" / f"project_{pid}"


class CountingStore(InMemoryStore):
    """Counts the item listings, to show which calls list every item."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[int | None] = []

    def list_items(self, project_id, status=None, limit=None, offset=0, *, after_id=None):
        page = super().list_items(project_id, status, limit, offset, after_id=after_id)
        self.listed.append(len(page))
        return page


def test_tabular_rows_are_appended_with_the_versions_frozen_scaling(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem("1", {"a": 1.0}, {"source": "f.csv"}),
                             NewItem("2", {"a": 3.0}, {"source": "f.csv"})])  # fmt: skip
    fm = project_features(store, pid, settings)
    # a = [1, 3]: mean 2, std 1
    np.testing.assert_allclose(np.asarray(fm.X), [[-1.0], [1.0]])
    assert isinstance(fm.X, np.memmap) and fm.item_ids.dtype == np.int64
    store.create_items(pid, [NewItem("3", {"a": 5.0}, {"source": "g.csv", "tags": ["t"]})])
    grown = project_features(store, pid, settings)
    # scaled like the stored rows: (5 - 2) / 1 = 3; a refit would give [-1.22, 0, 1.22]
    np.testing.assert_allclose(np.asarray(grown.X), [[-1.0], [1.0], [3.0]])
    assert grown.item_ids.tolist() == [*fm.item_ids.tolist(), store.find_item(pid, "3").id]
    assert grown.metadata["source"].tolist() == ["f.csv", "f.csv", "g.csv"]
    assert grown.metadata["tag"].tolist() == ["", "", "t"]
    current = read_manifest(_folder(settings, pid))["current"]
    assert (current["version"], current["n"]) == (1, 3)  # the same version, grown in place
    assert grown.key != fm.key  # the key still names the item set


def test_a_new_tabular_column_makes_a_new_version(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem("1", {"a": 1.0}), NewItem("2", {"a": 3.0})])
    project_features(store, pid, settings)
    store.create_items(pid, [NewItem("3", {"a": 5.0, "b": 1.0})])
    fm = project_features(store, pid, settings)
    z = np.sqrt(1.5)  # a = [1, 3, 5] refitted; b = [1, 1, 1] after imputation -> 0
    np.testing.assert_allclose(np.asarray(fm.X), [[-z, 0], [0, 0], [z, 0]], rtol=1e-6)
    folder = _folder(settings, pid)
    manifest = read_manifest(folder)
    assert manifest["current"]["version"] == 2
    assert [v["version"] for v in manifest["versions"]] == [1, 2]
    assert not (folder / "v1.npy").exists() and (folder / "v2.npy").exists()


def test_an_unchanged_project_reads_its_version_without_listing_items(settings):
    store = CountingStore()
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(5)])
    first = project_features(store, pid, settings)
    store.listed.clear()
    again = project_features(store, pid, settings)
    assert store.listed == [1]  # one item, to tell the kind; no listing of the pool
    np.testing.assert_array_equal(np.asarray(again.X), np.asarray(first.X))
    store.create_items(pid, [NewItem("new", {"a": 9.0})])
    store.listed.clear()
    project_features(store, pid, settings)
    assert store.listed == [1, 1]  # the kind, then the new item (keyset after the last id)


def test_npy_items_of_one_file_in_order_map_the_file_itself(store, settings, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(4, 3))
    pid = store.create_project("npy", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(f"x{i}", {}, features_path=str(path), features_row=i)
                             for i in range(4)])  # fmt: skip
    fm = project_features(store, pid, settings)
    assert isinstance(fm.X, np.memmap) and str(fm.X.filename) == str(path)
    assert read_manifest(_folder(settings, pid))["current"]["x_rows"] == "identity"
    assert not (_folder(settings, pid) / "v1.npy").exists()  # no copy of the user's file


def test_npy_gathered_rows_are_appended(store, settings, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(4, 3))
    pid = store.create_project("npy", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(f"x{i}", {}, features_path=str(path), features_row=3 - i)
                             for i in range(2)])  # fmt: skip
    fm = project_features(store, pid, settings)
    np.testing.assert_array_equal(np.asarray(fm.X), [[9, 10, 11], [6, 7, 8]])
    store.create_items(pid, [NewItem("x9", {}, features_path=str(path), features_row=0)])
    grown = project_features(store, pid, settings)
    np.testing.assert_array_equal(np.asarray(grown.X), [[9, 10, 11], [6, 7, 8], [0, 1, 2]])
    assert read_manifest(_folder(settings, pid))["current"]["version"] == 1


def test_rows_left_by_a_crashed_append_are_overwritten(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem("1", {"a": 1.0}), NewItem("2", {"a": 3.0})])
    project_features(store, pid, settings)
    folder = _folder(settings, pid)
    # an append that wrote its rows and died before the manifest: the manifest still says 2
    _append_npy(folder / "v1.npy", 2, np.full((3, 1), 99.0, dtype=np.float32))
    assert project_features(store, pid, settings).X.shape == (2, 1)
    store.create_items(pid, [NewItem("3", {"a": 4.0})])
    np.testing.assert_allclose(np.asarray(project_features(store, pid, settings).X),
                               [[-1.0], [1.0], [2.0]])  # fmt: skip


def test_append_npy_grows_the_header_in_place(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((999, 2), dtype=np.float32))
    _append_npy(path, 999, np.ones((2, 2), dtype=np.float32))  # 999 -> 1001: one more digit
    a = np.load(path)
    assert a.shape == (1001, 2) and a[:999].sum() == 0 and a[999:].sum() == 4


def test_mixed_kinds_added_later_are_refused(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem("1", {"a": 1.0}), NewItem("2", {"a": 3.0})])
    project_features(store, pid, settings)
    store.create_items(pid, [NewItem("3", {"text": "hello"})])
    with pytest.raises(Exception, match="mixes items of kinds"):
        project_features(store, pid, settings)


def test_a_rounds_snapshot_lists_no_items_once_the_version_exists(settings):
    from labelwise.service.rounds import build_session, read_snapshot

    store = CountingStore()
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}, label="p" if i == 0 else None)
                             for i in range(6)])  # fmt: skip
    store.create_items(pid, [NewItem("v", {"a": 9.0}, {"split": "validation"}, label="n")])
    project = store.get_project(pid)
    read_snapshot(store, project, settings)  # builds version 1
    store.listed.clear()
    snap = read_snapshot(store, project, settings)
    assert store.listed == [1]  # one item, to tell the kind: ids and labels come as arrays
    ids = snap.features.item_ids
    assert snap.unlabeled_ids.tolist() == ids[1:6].tolist()
    assert (snap.train_ids.tolist(), snap.y_train.tolist()) == ([ids[0]], ["p"])
    assert (snap.val_ids.tolist(), snap.y_val.tolist()) == ([ids[6]], ["n"])
    session = build_session(project, snap, None, round=0, random_fraction=0.0)
    assert session.candidate_mask.tolist() == [False, True, True, True, True, True, False]
