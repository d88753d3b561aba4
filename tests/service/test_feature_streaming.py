"""A project's first feature version is built page by page: ``.npy``, image and tabular rows
go to the version's files as each page of items is listed, so memory follows the page size, not
the project (issue 12: 3.1 GB at 1M tabular rows when every item was listed at once)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from labelwise import features as F
from labelwise.errors import LabelwiseError
from labelwise.service import features as SF
from labelwise.service.features import project_features, read_manifest
from labelwise.storage import InMemoryStore, NewItem


def _folder(settings, pid):
    return settings.data_dir / "features" / f"project_{pid}"


# --------------------------------------------------------------------------- TabularMoments


def test_moments_of_two_pages_by_hand():
    m = F.TabularMoments()
    m.update([{"a": 1.0}, {"a": 3.0}])
    m.update([{"a": 5.0, "b": 2}, {}])
    s = m.scaling()
    # a: present 1, 3, 5 -> mean 3, M2 = 4 + 0 + 4 = 8; the 4th item imputed: std sqrt(8 / 4)
    # b: present once -> mean 2, M2 0 -> constant -> scale 1
    assert s["columns"] == ["a", "b"]
    np.testing.assert_allclose(s["mean"], [3.0, 2.0])
    np.testing.assert_allclose(s["scale"], [np.sqrt(2.0), 1.0])
    at_once = F.tabular_scaling([{"a": 1.0}, {"a": 3.0}, {"a": 5.0, "b": 2}, {}])
    assert at_once["columns"] == s["columns"]
    np.testing.assert_allclose(at_once["scale"], s["scale"])


def test_transform_matches_tabular_for_a_page_without_some_columns():
    payloads = [{"a": 1.0, "b": 4.0}, {"a": 3.0}, {"b": 0.0}]
    scaling = F.tabular_scaling(payloads)
    m = F.TabularMoments()
    columns, values = m.update(payloads[1:])  # this page has both, the next only "a"
    np.testing.assert_allclose(
        F.TabularMoments.transform(columns, values, scaling), F.tabular(payloads[1:], scaling)
    )
    columns, values = F.TabularMoments().update([{"a": 7.0}])
    # b missing -> its mean -> 0; a: mean 2, imputed [1, 3, 2] -> std sqrt(2/3); (7 - 2) / std
    np.testing.assert_allclose(
        F.TabularMoments.transform(columns, values, scaling),
        [[5 / np.sqrt(2 / 3), 0.0]],
        rtol=1e-6,
    )


def test_a_constant_column_of_an_inexact_value_scales_to_zero():
    payloads = [{"a": 0.1, "b": float(i)} for i in range(7)]
    s = F.tabular_scaling(payloads)
    assert s["scale"][0] == 1.0  # not the few-ulp deviation np.std finds
    np.testing.assert_allclose(F.tabular(payloads, s)[:, 0], 0.0, atol=1e-6)


def test_moments_without_numeric_fields_say_what_to_do():
    m = F.TabularMoments()
    m.update([{"t": "text"}])
    with pytest.raises(LabelwiseError, match="numeric payload fields"):
        m.scaling()


_value = st.one_of(
    st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-1000, 1000), st.booleans()
)


@hsettings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), _value, max_size=3),
        min_size=1,
        max_size=40,
    ),
    page=st.integers(1, 7),
)
def test_paged_moments_equal_the_scaling_of_every_payload_at_once(rows, page):
    payloads = [{k: v for k, v in r.items() if v is not None} for r in rows]
    if not F.tabular_columns(payloads):
        return
    m = F.TabularMoments()
    pages = [m.update(payloads[i : i + page]) for i in range(0, len(payloads), page)]
    want, got = F.tabular_scaling(payloads), m.scaling()
    assert got["columns"] == want["columns"]
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(got["scale"], want["scale"], rtol=1e-6, atol=1e-6)
    X = np.vstack([F.TabularMoments.transform(c, v, want) for c, v in pages])
    np.testing.assert_allclose(X, F.tabular(payloads, want), rtol=1e-6, atol=1e-5)


# --------------------------------------------------------------------------- streamed versions


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(SF, "_PAGE", 4)


def test_tabular_pages_give_the_rows_of_one_pass(store, settings, small_pages):
    pid = store.create_project("tab", "binary", ["n", "p"])
    payloads = [{"a": float(i % 5), **({"late": float(i)} if i >= 9 else {})} for i in range(11)]
    store.create_items(
        pid, [NewItem(str(i), p, {"source": f"f{i % 2}.csv"}) for i, p in enumerate(payloads)]
    )
    fm = project_features(store, pid, settings)
    np.testing.assert_allclose(np.asarray(fm.X), F.tabular(payloads), rtol=1e-5, atol=1e-6)
    assert fm.metadata["source"].tolist() == [f"f{i % 2}.csv" for i in range(11)]
    assert fm.item_ids.tolist() == sorted(fm.item_ids.tolist()) and fm.n == 11
    current = read_manifest(_folder(settings, pid))["current"]
    assert current["scaling"]["columns"] == ["a", "late"]
    assert current["key"] == F.features_key("tabular", fm.item_ids)
    leftovers = [p.name for p in _folder(settings, pid).iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def _npy_project(store, reads: list[tuple[object, int]]) -> int:
    """A project whose item ``i`` reads row ``reads[i][1]`` of the file ``reads[i][0]``."""
    pid = store.create_project("npy", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {}, features_path=str(path), features_row=row)
                             for i, (path, row) in enumerate(reads)])  # fmt: skip
    return pid


def test_npy_items_reading_one_file_in_order_across_pages_map_it(store, settings, tmp_path,
                                                                small_pages):  # fmt: skip
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    np.save(tmp_path / "x.npy", X)
    pid = _npy_project(store, [(tmp_path / "x.npy", i) for i in range(10)])
    fm = project_features(store, pid, settings)
    assert read_manifest(_folder(settings, pid))["current"]["x_rows"] == "identity"
    np.testing.assert_array_equal(np.asarray(fm.X), X)


def test_npy_order_broken_on_a_later_page_copies_the_rows_before_it(store, settings, tmp_path,
                                                                    small_pages):  # fmt: skip
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    Y = -np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    # items 0-5 read x.npy in order (pages 1 and half of 2), item 6 reads y.npy row 1
    rows = [("x", i) for i in range(6)] + [("y", 1), ("x", 7), ("x", 9)]
    pid = _npy_project(store, [(tmp_path / f"{f}.npy", r) for f, r in rows])
    fm = project_features(store, pid, settings)
    want = np.vstack([X[:6], Y[1:2], X[[7, 9]]])
    np.testing.assert_array_equal(np.asarray(fm.X), want)
    current = read_manifest(_folder(settings, pid))["current"]
    assert "x_rows" not in current and current["x"] == "v1.npy"
    assert current["npy_paths"] == sorted([str(tmp_path / "x.npy"), str(tmp_path / "y.npy")])


def test_one_file_in_order_with_more_rows_than_items_is_copied(store, settings, tmp_path,
                                                               small_pages):  # fmt: skip
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    np.save(tmp_path / "x.npy", X)
    pid = _npy_project(store, [(tmp_path / "x.npy", i) for i in range(6)])
    fm = project_features(store, pid, settings)
    np.testing.assert_array_equal(np.asarray(fm.X), X[:6])
    assert read_manifest(_folder(settings, pid))["current"]["x"] == "v1.npy"


@pytest.mark.parametrize("n_x", [4, 5])  # the other width on a page of its own, or shared
def test_npy_files_of_two_widths_are_refused_and_nothing_is_written(store, settings, tmp_path,
                                                                     small_pages, n_x):  # fmt: skip
    np.save(tmp_path / "x.npy", np.zeros((6, 3), dtype=np.float32))
    np.save(tmp_path / "w.npy", np.zeros((6, 5), dtype=np.float32))
    pid = _npy_project(
        store, [(tmp_path / "x.npy", i) for i in range(n_x)] + [(tmp_path / "w.npy", 0)]
    )
    with pytest.raises(LabelwiseError, match="widths"):
        project_features(store, pid, settings)
    folder = _folder(settings, pid)
    assert read_manifest(folder) == {}
    assert [p.name for p in folder.iterdir() if p.name != ".lock"] == []


def test_kinds_mixed_on_a_later_page_are_refused(store, settings, small_pages):
    pid = store.create_project("mix", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(6)])
    store.create_items(pid, [NewItem("t", {"text": "a text"})])
    with pytest.raises(LabelwiseError, match="mixes items of kinds"):
        project_features(store, pid, settings)
    assert read_manifest(_folder(settings, pid)) == {}


def test_an_earlier_version_survives_a_failed_rebuild(store, settings, small_pages, monkeypatch):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(6)])
    first = project_features(store, pid, settings)
    store.create_items(pid, [NewItem("b", {"a": 1.0, "b": 2.0})])  # a new column: a new version

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(F.TabularMoments, "transform", staticmethod(boom))
    with pytest.raises(RuntimeError):
        project_features(store, pid, settings)
    folder = _folder(settings, pid)
    current = read_manifest(folder)["current"]
    assert (current["version"], current["n"]) == (1, 6)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp")) == []
    np.testing.assert_array_equal(
        np.load(folder / "v1.npy"), np.asarray(first.X)
    )  # the old files are untouched


def _traced_peak(n: int, settings) -> int:
    store = InMemoryStore()
    pid = store.create_project("tab", "binary", ["n", "p"])
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n, 8)).round(3)
    items = [
        NewItem(str(i), {f"c{j}": float(v) for j, v in enumerate(row)}, {"source": "big.csv"})
        for i, row in enumerate(values)
    ]
    store.create_items(pid, items)
    del values, items
    tracemalloc.start()
    try:
        fm = project_features(store, pid, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fm.n == n
    return peak


def test_a_first_build_holds_a_page_not_the_project(settings, monkeypatch, tmp_path):
    """Peak traced allocation of the build grows with the page, not with the items: from 2,000
    to 12,000 items it may grow by the ids and metadata arrays (tens of bytes per item), not by
    an ``Item`` per item (listing every item at once grew it ~840 B per item)."""
    monkeypatch.setattr(SF, "_PAGE", 500)
    _traced_peak(200, settings.model_copy(update={"data_dir": tmp_path / "w"}))  # warm-up
    small = _traced_peak(2_000, settings.model_copy(update={"data_dir": tmp_path / "s"}))
    big = _traced_peak(12_000, settings.model_copy(update={"data_dir": tmp_path / "b"}))
    per_item = (big - small) / 10_000
    print(f"traced peak: 2,000 items {small:,} B, 12,000 items {big:,} B ({per_item:.0f} B/item)")
    assert per_item < 300, (small, big)


def test_items_replaced_by_an_import_get_new_rows(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(4)])
    assert np.asarray(project_features(store, pid, settings).X)[3, 0] > 0
    store.write_items(pid, [NewItem("3", {"a": -30.0})], on_duplicate="update")
    fm = project_features(store, pid, settings)
    np.testing.assert_allclose(np.asarray(fm.X), F.tabular([{"a": v} for v in (0, 1, 2, -30)]),
                               rtol=1e-6)  # fmt: skip
    current = read_manifest(_folder(settings, pid))["current"]
    assert (current["version"], current["items_revision"]) == (2, 1)
    store.create_items(pid, [NewItem("4", {"a": 4.0})])
    grown = project_features(store, pid, settings)  # the new version grows in place again
    assert read_manifest(_folder(settings, pid))["current"]["version"] == 2 and grown.n == 5


def test_a_version_written_before_revisions_counts_as_revision_0(store, settings):
    import json

    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(4)])
    project_features(store, pid, settings)
    path = _folder(settings, pid) / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["current"]["items_revision"]
    path.write_text(json.dumps(manifest))
    project_features(store, pid, settings)
    assert read_manifest(_folder(settings, pid))["current"]["version"] == 1  # not rebuilt


# --------------------------------------------------------------------------- paged extensions


def test_new_items_are_appended_page_by_page_with_the_frozen_scaling(store, settings, small_pages):
    pid = store.create_project("tab", "binary", ["n", "p"])
    first = [{"a": 1.0}, {"a": 3.0}, {"a": 2.0}]
    store.create_items(pid, [NewItem(str(i), p) for i, p in enumerate(first)])
    project_features(store, pid, settings)
    scaling = read_manifest(_folder(settings, pid))["current"]["scaling"]
    new = [{"a": float(v)} for v in (5, -1, 7, 0, 2, 9, 4, 4, 1)]  # 9 items: pages of 4, 4, 1
    store.create_items(
        pid, [NewItem(f"n{i}", p, {"tags": [f"t{i % 2}"]}) for i, p in enumerate(new)]
    )
    fm = project_features(store, pid, settings)
    current = read_manifest(_folder(settings, pid))["current"]
    assert (current["version"], current["n"]) == (1, 12)  # grown in place
    np.testing.assert_allclose(
        np.asarray(fm.X), F.tabular(first + new, scaling), rtol=1e-6
    )  # frozen: the first rows are unchanged, the new ones scaled like them
    assert fm.metadata["tag"].tolist() == ["", "", ""] + [f"t{i % 2}" for i in range(9)]
    assert fm.key == F.features_key("tabular", fm.item_ids)


def test_a_new_column_on_a_later_page_of_new_items_makes_a_new_version(store, settings,
                                                                        small_pages):  # fmt: skip
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(str(i), {"a": float(i)}) for i in range(3)])
    project_features(store, pid, settings)
    new = [{"a": float(i)} for i in range(6)] + [{"a": 1.0, "b": 2.0}]  # "b" on the 2nd page
    store.create_items(pid, [NewItem(f"n{i}", p) for i, p in enumerate(new)])
    fm = project_features(store, pid, settings)
    current = read_manifest(_folder(settings, pid))["current"]
    assert (current["version"], current["n"]) == (2, 10)
    payloads = [{"a": float(i)} for i in range(3)] + new
    np.testing.assert_allclose(np.asarray(fm.X), F.tabular(payloads), rtol=1e-5, atol=1e-6)


def _extension_peak(n_new: int, settings) -> int:
    store = InMemoryStore()
    pid = store.create_project("tab", "binary", ["n", "p"])
    store.create_items(pid, [NewItem(f"a{i}", {"c0": float(i), "c1": 1.0}) for i in range(50)])
    project_features(store, pid, settings)
    rng = np.random.default_rng(1)
    items = [
        NewItem(str(i), {"c0": float(v), "c1": 1.0}, {"source": "more.csv"})
        for i, v in enumerate(rng.normal(size=n_new).round(3))
    ]
    store.create_items(pid, items)
    del items
    tracemalloc.start()
    try:
        fm = project_features(store, pid, settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fm.n == 50 + n_new
    assert (
        read_manifest(settings.data_dir / "features" / f"project_{pid}")["current"]["version"] == 1
    )
    return peak


def test_an_extension_holds_a_page_not_the_import(settings, monkeypatch, tmp_path):
    """Traced peak of growing a version by 2,000 vs 12,000 new items: tens of bytes more per
    new item (the store's own lists, the ids), not an ``Item`` per new item (all new items
    listed at once grew it ~620 B per item)."""
    monkeypatch.setattr(SF, "_PAGE", 500)
    _extension_peak(200, settings.model_copy(update={"data_dir": tmp_path / "w"}))  # warm-up
    small = _extension_peak(2_000, settings.model_copy(update={"data_dir": tmp_path / "s"}))
    big = _extension_peak(12_000, settings.model_copy(update={"data_dir": tmp_path / "b"}))
    per_item = (big - small) / 10_000
    print(f"traced peak of an extension: {small:,} B, {big:,} B ({per_item:.0f} B/new item)")
    assert per_item < 300, (small, big)
