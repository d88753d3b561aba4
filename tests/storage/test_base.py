"""Pure helpers of the store contract: dataset hashing, label checks, NotFound."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.errors import LabelMismatchError
from labelwise.storage.base import NotFound, Project, check_label, dataset_hash

pairs = st.dictionaries(
    st.text(alphabet="abcxyz0123", min_size=1, max_size=6),
    st.one_of(st.sampled_from(["pos", "neg"]), st.lists(st.sampled_from("abc"), max_size=3)),
    max_size=20,
).map(lambda d: list(d.items()))


def _project(task_type="multiclass", classes=("neg", "pos")):
    return Project(
        1, "p", task_type, tuple(classes), "entropy", {}, "random", 10, {}, 1.0, False,
        datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def test_dataset_hash_hand_computed():
    # one line per pair, sorted by id, label as compact JSON: 'x\t["a","b"]\n' + 'y\t"pos"\n'
    expected = hashlib.sha256(b'x\t["a","b"]\ny\t"pos"\n').hexdigest()
    assert dataset_hash([("y", "pos"), ("x", ["a", "b"])]) == expected
    assert dataset_hash([]) == hashlib.sha256(b"").hexdigest()


@given(pairs, st.randoms())
def test_dataset_hash_ignores_order(rows, rnd):
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert dataset_hash(shuffled) == dataset_hash(rows)


@given(pairs)
def test_dataset_hash_changes_with_a_label(rows):
    if not rows:
        return
    changed = [(rows[0][0], "something else"), *rows[1:]]
    assert dataset_hash(changed) != dataset_hash(rows)


def test_check_label_single():
    assert check_label(_project(), "pos") == "pos"
    with pytest.raises(LabelMismatchError, match="use one of"):
        check_label(_project(), "maybe")


def test_check_label_without_classes_accepts_anything():
    assert check_label(_project(classes=()), {"box": [1, 2, 3, 4]}) == {"box": [1, 2, 3, 4]}


def test_check_label_multilabel():
    p = _project("multilabel", ("a", "b", "c"))
    assert check_label(p, ("c", "a", "a")) == ["a", "c"]
    assert check_label(p, []) == []
    with pytest.raises(LabelMismatchError, match="list of class names"):
        check_label(p, "a")


def test_not_found_is_a_key_error_with_a_readable_message():
    e = NotFound("item", 7)
    assert isinstance(e, KeyError)
    assert str(e) == "item 7 not found"
    assert (e.entity, e.id) == ("item", 7)
