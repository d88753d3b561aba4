"""project_features reads the project's keywords and adds one flag column per keyword."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.errors import LabelwiseError
from labelwise.service.features import project_features, read_manifest

TEXTS = ["Refund please", "late delivery, want a refund", "great product"]


def _text_project(store, **kwargs):
    pid = store.create_project("txt", "binary", ["neg", "pos"], **kwargs)
    for i, text in enumerate(TEXTS):
        store.create_item(pid, f"t{i}", {"text": text}, metadata={"source": "f.csv"})
    return pid


def test_keywords_become_metadata_columns(store, settings):
    pid = _text_project(store, strategy_params={"keywords": ["refund", "late"]})
    fm = project_features(store, pid, settings)
    assert list(fm.metadata) == ["source", "tag", "length", "keyword:refund", "keyword:late"]
    assert fm.metadata["keyword:refund"].tolist() == [True, True, False]
    assert fm.metadata["keyword:late"].tolist() == [False, True, False]
    assert fm.metadata["length"].tolist() == [13, 28, 13]


def test_keywords_are_part_of_the_cache_key(store, settings):
    pid = _text_project(store)
    plain = project_features(store, pid, settings)
    assert not any(k.startswith("keyword:") for k in plain.metadata)
    store.update_project(pid, strategy_params={"keywords": ["refund"]})
    flagged = project_features(store, pid, settings)
    assert flagged.key != plain.key
    assert (flagged.X != plain.X).nnz == 0  # the keywords change the metadata, not the matrix
    assert "keyword:refund" in flagged.metadata
    folder = settings.data_dir / "features" / f"project_{pid}"
    current = read_manifest(folder)["current"]
    assert (current["version"], current["key"], current["keywords"]) == (2, flagged.key, ["refund"])
    assert not (folder / "v1.npz").exists()  # the superseded version's files are gone
    assert project_features(store, pid, settings).key == flagged.key  # read from the cache


def test_keywords_do_not_touch_other_kinds(store, settings):
    pid = store.create_project("tab", "binary", ["n", "p"], strategy_params={"keywords": ["x"]})
    store.create_item(pid, "1", {"a": 1.0})
    store.create_item(pid, "2", {"a": 3.0})
    fm = project_features(store, pid, settings)
    assert list(fm.metadata) == ["source", "tag"]
    np.testing.assert_allclose(np.asarray(fm.X), [[-1.0], [1.0]])


def test_bad_keywords_are_reported(store, settings):
    pid = _text_project(store, strategy_params={"keywords": "refund"})
    assert "keyword:refund" in project_features(store, pid, settings).metadata  # one string
    store.update_project(pid, strategy_params={"keywords": [1, 2]})
    with pytest.raises(LabelwiseError, match="list of non-empty strings"):
        project_features(store, pid, settings)
