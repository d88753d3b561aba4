"""The README's code runs as written and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_select_from_a_million_items_snippet_selects_unlabelled_pool_rows(tmp_path, monkeypatch):
    X, y = load_digits(return_X_y=True)
    np.save(tmp_path / "pool.npy", (X / 16.0).astype(np.float32))
    labelled = np.arange(0, X.shape[0], 3)  # every third row labelled: row_idx != positions
    unlabeled_idx = np.setdiff1d(np.arange(X.shape[0]), labelled)
    fitted_model = LogisticRegression(max_iter=500).fit(X[labelled] / 16.0, y[labelled])
    monkeypatch.chdir(tmp_path)
    scope = {"fitted_model": fitted_model, "unlabeled_idx": unlabeled_idx}
    exec(_block("### 3. Select from a million items"), scope)
    to_label = scope["to_label"]
    assert to_label.shape == (500,) and np.unique(to_label).shape == (500,)
    assert np.isin(to_label, unlabeled_idx).all()  # only unlabelled rows
    query = scope["query"]
    np.testing.assert_array_equal(to_label, unlabeled_idx[query.idx])


def test_query_and_teach_snippet_runs():
    scope: dict = {}
    exec(_block("### 1. Query and teach"), scope)
    assert scope["session"].n_labeled == 200
