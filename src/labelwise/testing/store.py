"""The store contract as a pytest suite, shipped with labelwise.

Every test here takes a ``store`` fixture (a fresh, empty, migrated store) and must pass for
every backend. To check a backend, define ``store`` in a ``conftest.py`` and import the tests::

    # tests/storage/test_contract.py
    from labelwise.testing.store import *  # noqa: F403

    # tests/storage/conftest.py
    @pytest.fixture
    def store():
        yield MyStore(...)

labelwise's own suite parametrises ``store`` over memory, SQLite and PostgreSQL. The helpers
:func:`sqlite_store` and :func:`postgres_schema_store` build migrated SQL stores for fixtures.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from labelwise.errors import LabelMismatchError, LabelwiseError, UnsupportedTaskError
from labelwise.storage.base import (
    AlreadyExistsError,
    BaseStore,
    ImportConflictError,
    LeaseError,
    LeaseLimitError,
    NewItem,
    NotFound,
    ReviewError,
    UndoError,
    dataset_hash,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- helpers


@contextmanager
def sqlite_store(path: str | Path) -> Iterator[BaseStore]:
    """A migrated :class:`SqlStore` on a SQLite file; disposed on exit."""
    from labelwise.storage.sql import SqlStore

    store = SqlStore(f"sqlite:///{path}", upgrade=True)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def postgres_schema_store(
    url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
) -> Iterator[BaseStore]:
    """A migrated :class:`SqlStore` in a new schema with a random name; dropped on exit."""
    import sqlalchemy as sa

    from labelwise.storage.sql import SqlStore, normalize_database_url

    schema = f"lw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalize_database_url(url), poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    store = SqlStore(url, connect_args={"options": f"-csearch_path={schema}"}, upgrade=True)
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _project(store: BaseStore, name: str = "p", classes=("neg", "pos"), **kw) -> int:
    return store.create_project(name, "multiclass", list(classes), **kw)


def _items(store: BaseStore, pid: int, n: int, prefix: str = "x") -> list[int]:
    store.create_items(pid, [NewItem(f"{prefix}{i}", {"text": f"t{i}"}) for i in range(n)])
    return [store.find_item(pid, f"{prefix}{i}").id for i in range(n)]


def _queue(store: BaseStore, n: int, **kw) -> tuple[int, int, list[int]]:
    """A project with ``n`` queued tasks; returns (project_id, round_id, task_ids)."""
    pid = _project(store)
    ids = _items(store, pid, n)
    rid = store.create_round(pid, "entropy", now=T0)
    return pid, rid, store.create_tasks(rid, ids, now=T0, **kw)


def _queue_in(store: BaseStore, name: str, n: int) -> tuple[int, int, list[int]]:
    """Like :func:`_queue`, in a project named ``name`` (a second project beside it)."""
    pid = _project(store, name)
    ids = _items(store, pid, n)
    rid = store.create_round(pid, "entropy", now=T0)
    return pid, rid, store.create_tasks(rid, ids, now=T0)


# --------------------------------------------------------------------------- projects


def test_project_round_trip(store):
    pid = store.create_project(
        "spam",
        "binary",
        ["ham", "spam"],
        strategy="margin",
        strategy_params={"m": 3},
        batch_size=25,
        stopping={"rule": "stabilizing", "window": 3},
        label_cost=2.5,
        show_predictions=True,
    )
    assert isinstance(pid, int)
    p = store.get_project(pid)
    assert (p.id, p.name, p.task_type, p.classes) == (pid, "spam", "binary", ("ham", "spam"))
    assert (p.strategy, p.strategy_params, p.batch_size) == ("margin", {"m": 3}, 25)
    assert p.stopping == {"rule": "stabilizing", "window": 3}
    assert (p.label_cost, p.show_predictions, p.cold_start_strategy) == (2.5, True, "random")
    assert p.created.tzinfo is not None
    assert store.find_project("spam") == p
    assert store.find_project("nope") is None
    assert store.list_projects() == [p]


def test_project_results_are_frozen(store):
    p = store.get_project(_project(store))
    with pytest.raises(AttributeError):
        p.name = "other"


def test_project_name_is_unique(store):
    _project(store, "p")
    with pytest.raises(AlreadyExistsError, match="'p' already exists"):
        _project(store, "p")


def test_get_missing_raises_not_found_naming_entity_and_id(store):
    with pytest.raises(KeyError):
        store.get_project(999)
    with pytest.raises(NotFound, match="project 999 not found"):
        store.get_project(999)
    for getter, entity in [
        (store.get_item, "item"),
        (store.get_round, "round"),
        (store.get_task, "task"),
        (store.get_annotation, "annotation"),
        (store.get_annotator, "annotator"),
        (store.get_model_version, "model version"),
        (store.get_dataset_version, "dataset version"),
        (store.get_job, "job"),
    ]:
        with pytest.raises(NotFound, match=f"{entity} 42 not found"):
            getter(42)


def test_project_unknown_task_type(store):
    with pytest.raises(UnsupportedTaskError, match="unknown task type"):
        store.create_project("p", "regression", ["a"])


def test_project_binary_needs_two_classes(store):
    with pytest.raises(LabelwiseError, match="exactly 2 classes"):
        store.create_project("p", "binary", ["a", "b", "c"])


def test_project_bad_batch_size(store):
    with pytest.raises(LabelwiseError, match="batch_size"):
        _project(store, batch_size=0)


def test_update_project(store):
    pid = _project(store)
    p = store.update_project(pid, strategy="margin", batch_size=5, stopping={"max_labels": 100})
    assert (p.strategy, p.batch_size, p.stopping) == ("margin", 5, {"max_labels": 100})
    assert store.get_project(pid) == p
    with pytest.raises(LabelwiseError, match="cannot update"):
        store.update_project(pid, name="renamed")
    with pytest.raises(NotFound):
        store.update_project(999, batch_size=3)


def test_update_project_classes_keep_every_class_in_use(store):
    pid, _, tids = _queue(store, 2)
    ids = _items(store, pid, 2, prefix="y")
    ann = store.create_annotator("a")
    store.claim_next_task(pid, ann, now=T0)
    store.create_annotation(tids[0], ann, "pos", now=T0)  # an answer uses "pos"
    store.mark_gold(ids[0], "neg")  # a gold label uses "neg"
    with pytest.raises(LabelwiseError, match=r"classes: \['neg'\] is used by stored labels"):
        store.update_project(pid, classes=["pos", "maybe"], batch_size=3)
    with pytest.raises(LabelwiseError, match=r"classes: \['neg', 'pos'\] are used"):
        store.update_project(pid, classes=["maybe"])
    with pytest.raises(LabelwiseError, match="classes cannot be empty"):
        store.update_project(pid, classes=[])
    p = store.get_project(pid)
    assert (p.classes, p.batch_size) == (("neg", "pos"), 10)  # nothing written
    p = store.update_project(pid, classes=["neg", "pos", "maybe"])
    assert p.classes == ("neg", "pos", "maybe")  # adding is fine
    # another project's labels do not hold this one's classes
    other = _project(store, "q", classes=("x", "y"))
    store.mark_gold(_items(store, other, 1)[0], "x")
    assert store.update_project(pid, classes=["neg", "pos"]).classes == ("neg", "pos")


def test_update_project_without_fields_is_a_no_op(store):
    pid = _project(store, batch_size=7)
    before = store.get_project(pid)
    assert store.update_project(pid) == before
    assert store.get_project(pid) == before
    with pytest.raises(NotFound):
        store.update_project(999)


# --------------------------------------------------------------------------- annotators


def test_annotator_round_trip_and_membership(store):
    pid, other = _project(store, "a"), _project(store, "b")
    aid = store.create_annotator("ann", token_hash="h1", role="admin", skills=["med", "legal"])
    a = store.get_annotator(aid)
    assert (a.name, a.token_hash, a.role, a.skills, a.projects) == (
        "ann", "h1", "admin", ("med", "legal"), ()
    )  # fmt: skip
    assert store.find_annotator("ann") == a
    assert store.find_annotator_by_token("h1") == a
    assert store.find_annotator("x") is None and store.find_annotator_by_token("x") is None
    store.add_member(other, aid)
    store.add_member(pid, aid)
    store.add_member(pid, aid)  # idempotent
    assert store.get_annotator(aid).projects == tuple(sorted([pid, other]))
    assert [x.id for x in store.list_annotators(pid)] == [aid]
    store.remove_member(pid, aid)
    store.remove_member(pid, aid)  # no error
    assert store.get_annotator(aid).projects == (other,)
    assert store.list_annotators(pid) == []
    assert [x.id for x in store.list_annotators()] == [aid]


def test_annotator_name_is_unique(store):
    store.create_annotator("ann")
    with pytest.raises(AlreadyExistsError):
        store.create_annotator("ann")


def test_annotator_bad_role(store):
    with pytest.raises(LabelwiseError, match="role must be one of"):
        store.create_annotator("ann", role="owner")


def test_add_member_unknown_ids(store):
    pid = _project(store)
    with pytest.raises(NotFound, match="annotator"):
        store.add_member(pid, 999)


def test_membership_roles(store):
    pid, other = _project(store, "a"), _project(store, "b")
    aid = store.create_annotator("ann")
    store.add_member(pid, aid)
    store.add_member(other, aid, role="owner")
    assert store.get_annotator(aid).project_roles == {pid: "annotator", other: "owner"}
    store.add_member(other, aid)  # without a role an existing membership keeps its own
    assert store.get_annotator(aid).project_roles[other] == "owner"
    store.add_member(other, aid, role="reviewer")  # with one it takes it
    store.set_member_role(pid, aid, "owner")
    a = store.get_annotator(aid)
    assert (a.projects, a.project_roles) == ((pid, other), {pid: "owner", other: "reviewer"})
    assert store.find_annotator_by_token("x") is None
    (listed,) = store.list_annotators(other)
    assert listed.project_roles == {pid: "owner", other: "reviewer"}
    store.add_members([other, _project(store, "c")], aid)  # new memberships are annotators
    assert sorted(store.get_annotator(aid).project_roles.values()) == [
        "annotator", "owner", "reviewer"
    ]  # fmt: skip
    with pytest.raises(LabelwiseError, match="role must be one of"):
        store.set_member_role(pid, aid, "admin")
    with pytest.raises(LabelwiseError, match="role must be one of"):
        store.add_member(pid, aid, role="admin")
    store.remove_member(pid, aid)
    with pytest.raises(NotFound, match="member"):
        store.set_member_role(pid, aid, "owner")
    assert pid not in store.get_annotator(aid).project_roles


def test_remove_member_gives_their_leases_of_that_project_back(store):
    pid, _, _ = _queue(store, 3)
    other, _, _ = _queue_in(store, "other", 1)
    ann, bob = store.create_annotator("ann"), store.create_annotator("bob")
    for p in (pid, other):
        store.add_member(p, ann)
    store.add_member(pid, bob)
    held = [store.claim_next_task(pid, ann, now=T0).id for _ in range(2)]
    kept = store.claim_next_task(other, ann, now=T0).id
    bobs = store.claim_next_task(pid, bob, now=T0).id
    assert store.remove_member(pid, ann) == 2
    for tid in held:
        t = store.get_task(tid)
        assert (t.status, t.lease_owner, t.lease_expires) == ("queued", None, None)
    assert store.get_task(kept).lease_owner == ann  # another project's lease stays
    assert store.get_task(bobs).lease_owner == bob  # another member's lease stays
    assert store.remove_member(pid, ann) == 0
    assert store.get_annotator(ann).projects == (other,)
    # the tasks are claimable again at once, by someone else
    assert {store.claim_next_task(pid, bob, now=T0).id for _ in range(2)} == set(held)


def test_token_expiry_rotation_and_revocation(store):
    expires = T0 + timedelta(days=30)
    aid = store.create_annotator("ann", token_hash="h1", token_expires=expires)
    a = store.find_annotator_by_token("h1")
    assert (a.id, a.token_expires, a.token_revoked) == (aid, expires, None)
    assert store.get_annotator(store.create_annotator("bob", token_hash="h2")).token_expires is None
    store.revoke_token(aid, now=T0)
    store.revoke_token(aid, now=T0 + timedelta(hours=1))  # the first revocation stays
    a = store.find_annotator_by_token("h1")  # still found, so the 401 can say "revoked"
    assert (a.id, a.token_revoked) == (aid, T0)
    store.update_token(aid, "h3")  # rotation: new token, no expiry, not revoked
    assert store.find_annotator_by_token("h1") is None
    a = store.find_annotator_by_token("h3")
    assert (a.id, a.token_hash, a.token_expires, a.token_revoked) == (aid, "h3", None, None)
    store.update_token(aid, "h4", token_expires=expires)
    assert store.get_annotator(aid).token_expires == expires
    with pytest.raises(AlreadyExistsError):
        store.update_token(aid, "h2")  # bob's
    assert store.get_annotator(aid).token_hash == "h4"
    with pytest.raises(NotFound, match="annotator"):
        store.update_token(999, "h5")
    with pytest.raises(NotFound, match="annotator"):
        store.revoke_token(999)


# --------------------------------------------------------------------------- items


def test_item_round_trip(store):
    pid = _project(store)
    payload = {"text": "héllo ✓", "nested": {"a": [1, 2.5, None]}}
    iid = store.create_item(
        pid, "e1", payload, metadata={"source": "f.csv", "tags": ["x"]},
        features_path="/f.npy", features_row=7,
    )  # fmt: skip
    it = store.get_item(iid)
    assert (it.project_id, it.external_id, it.payload) == (pid, "e1", payload)
    assert (it.metadata, it.features_path, it.features_row) == (
        {"source": "f.csv", "tags": ["x"]}, "/f.npy", 7,
    )  # fmt: skip
    assert (it.status, it.label) == ("unlabeled", None)
    assert store.find_item(pid, "e1") == it
    assert store.find_item(pid, "e2") is None


def test_item_external_id_unique_per_project(store):
    a, b = _project(store, "a"), _project(store, "b")
    store.create_item(a, "e1", {"text": "x"})
    store.create_item(b, "e1", {"text": "x"})  # other project: fine
    with pytest.raises(AlreadyExistsError, match="'e1' already exists"):
        store.create_item(a, "e1", {"text": "y"})


def test_create_items_skips_existing(store):
    pid = _project(store)
    assert store.create_items(pid, [NewItem(str(i), {"text": "t"}) for i in range(5)]) == 5
    # 3, 4 exist; 5, 6 are new; the repeated 6 is skipped: 2 created
    again = [NewItem(str(i), {"text": "t"}) for i in (3, 4, 5, 6, 6)]
    assert store.create_items(pid, again) == 2
    assert store.count_items(pid) == 7
    assert store.create_items(pid, []) == 0


def test_create_items_with_labels_and_bad_label_inserts_nothing(store):
    pid = _project(store)
    n = store.create_items(pid, [NewItem("a", {"text": "t"}, label="pos"), NewItem("b", {})])
    assert n == 2
    assert store.list_labeled(pid) == [(store.find_item(pid, "a").id, "pos")]
    with pytest.raises(LabelMismatchError, match="'maybe' is not a class"):
        store.create_items(pid, [NewItem("c", {}), NewItem("d", {}, label="maybe")])
    assert store.find_item(pid, "c") is None


def test_write_items_reports_duplicates_with_different_content(store):
    pid = _project(store)
    store.write_items(pid, [NewItem(str(i), {"text": f"t{i}"}) for i in range(4)])
    rows = [
        NewItem("0", {"text": "t0"}),  # exact repeat: a duplicate, not a change
        NewItem("1", {"text": "changed"}),
        NewItem("2", {"text": "t2"}, label="pos"),  # a label where there was none: a change
        NewItem("9", {"text": "new"}),
        NewItem("9", {"text": "other"}),  # repeated in the input with other content
    ]
    w = store.write_items(pid, rows, batch_size=2)
    assert (w.n_created, w.n_duplicates, w.n_changed, w.n_updated) == (1, 4, 3, 0)
    assert set(w.changed_ids) == {"1", "2", "9"}
    assert store.find_item(pid, "1").payload == {"text": "t1"}  # skip: the stored item stays
    assert store.find_item(pid, "9").payload == {"text": "new"}  # the first one wins


def test_write_items_update_relabels_and_fail_writes_nothing(store):
    pid = _project(store)
    store.write_items(pid, [NewItem("a", {"text": "x"}, label="pos"), NewItem("b", {"text": "y"})])
    edited = [
        NewItem("a", {"text": "x"}, label="neg"),  # an edited label file
        NewItem("b", {"text": "y"}),  # no label: keeps whatever is stored
        NewItem("c", {"text": "z"}, label="pos"),
    ]
    with pytest.raises(AlreadyExistsError, match=r"1 rows repeat .*'a'.*on_duplicate=update"):
        store.write_items(pid, edited, on_duplicate="fail")
    assert store.find_item(pid, "c") is None  # nothing written
    assert store.find_item(pid, "a").label == "pos"
    w = store.write_items(pid, edited, on_duplicate="update", batch_size=2)
    assert (w.n_created, w.n_duplicates, w.n_changed, w.n_updated) == (1, 2, 1, 1)
    a = store.find_item(pid, "a")
    assert (a.label, a.status) == ("neg", "labeled")
    assert store.list_labeled(pid) == [(a.id, "neg"), (store.find_item(pid, "c").id, "pos")]
    # re-running the same file again changes nothing
    again = store.write_items(pid, edited, on_duplicate="update")
    assert (again.n_created, again.n_changed, again.n_updated) == (0, 0, 0)
    with pytest.raises(LabelwiseError, match="on_duplicate must be one of"):
        store.write_items(pid, edited, on_duplicate="merge")


def test_an_update_of_item_content_bumps_the_items_revision(store):
    pid = _project(store)
    assert store.get_project(pid).items_revision == 0
    store.write_items(
        pid, [NewItem("a", {"text": "x"}, {"tags": ["t"]}), NewItem("b", {"text": "y"})]
    )
    assert store.get_project(pid).items_revision == 0  # new items: a version grows instead
    # a new label, a renamed source file, skip and fail: the features' inputs are unchanged
    store.write_items(pid, [NewItem("a", {"text": "x"}, {"tags": ["t"], "source": "b.csv"},
                                    label="pos")], on_duplicate="update")  # fmt: skip
    store.write_items(pid, [NewItem("b", {"text": "other"})], on_duplicate="skip")
    assert store.get_project(pid).items_revision == 0
    store.write_items(pid, [NewItem("b", {"text": "new"})], on_duplicate="update")
    assert store.get_project(pid).items_revision == 1
    store.write_items(pid, [NewItem("a", {"text": "x"}, {"tags": ["u"]})], on_duplicate="update")
    assert store.get_project(pid).items_revision == 2  # a new first tag: a metadata column
    store.update_project(pid, batch_size=7)
    assert store.get_project(pid).items_revision == 2  # project edits keep it


def test_import_run_commits_batches_with_their_checkpoint_and_resumes(store):
    pid = _project(store)
    opts = {"format": "csv", "id_field": "id"}
    run, created = store.start_import_run(pid, "f" * 64, opts, n_rows=5, now=T0)
    assert created and (run.rows_committed, run.status, run.n_created) == (0, "running", 0)
    run = store.write_import_batch(
        run.id, [NewItem("a", {"text": "x"}), NewItem("b", {"text": "y"})], start_row=0, n_rows=2
    )
    assert (run.rows_committed, run.n_created, run.n_duplicates) == (2, 2, 0)
    # a rerun after a kill gets the same run back, at its checkpoint
    again, created = store.start_import_run(pid, "f" * 64, dict(opts), n_rows=5)
    assert (again.id, again.rows_committed, created) == (run.id, 2, False)
    # another process that resumed from an older checkpoint writes nothing
    with pytest.raises(ImportConflictError, match="2 rows committed, not 0"):
        store.write_import_batch(run.id, [NewItem("z", {"text": "z"})], start_row=0, n_rows=1)
    assert store.find_item(pid, "z") is None
    with pytest.raises(ImportConflictError, match="2 of 5 rows"):
        store.finish_import_run(run.id)
    # "b" repeats with other content (a changed duplicate, skipped); 3 rows, 2 items new
    rows = [NewItem("b", {"text": "other"}), NewItem("c", {"text": "z"}), NewItem("d", {})]
    run = store.write_import_batch(run.id, rows, start_row=2, n_rows=3)
    assert (run.rows_committed, run.n_created, run.n_duplicates, run.n_changed) == (5, 4, 1, 1)
    assert run.changed_ids == ("b",)
    assert store.find_item(pid, "b").payload == {"text": "y"}
    done = store.finish_import_run(run.id)
    assert done.status == "done" and store.get_import_run(run.id) == done
    assert store.count_items(pid) == 4
    # a finished run is not resumed: the same import again is a new run
    new, created = store.start_import_run(pid, "f" * 64, opts, n_rows=5)
    assert created and new.id != run.id and new.rows_committed == 0
    assert store.find_import_run(pid, "f" * 64, opts).id == new.id
    assert store.find_import_run(pid, "f" * 64, {"format": "jsonl"}) is None
    assert store.find_import_run(pid, "e" * 64, opts) is None


def test_import_run_batch_overrun_unknown_run_and_fail(store):
    pid = _project(store)
    run, _ = store.start_import_run(pid, "a" * 64, {}, n_rows=1)
    with pytest.raises(LabelwiseError, match="overruns import run"):
        store.write_import_batch(
            run.id, [NewItem("a", {}), NewItem("b", {})], start_row=0, n_rows=2
        )
    with pytest.raises(LabelwiseError, match="one transaction"):
        store.write_import_batch(
            run.id, [NewItem("a", {})], start_row=0, n_rows=1, on_duplicate="fail"
        )
    assert store.count_items(pid) == 0
    with pytest.raises(NotFound, match="import run"):
        store.get_import_run(10**6)
    with pytest.raises(NotFound, match="project"):
        store.start_import_run(10**6, "a" * 64, {}, n_rows=1)
    # update: a batch replaces a changed item and counts it
    store.write_items(pid, [NewItem("a", {"text": "old"})])
    run = store.write_import_batch(
        run.id, [NewItem("a", {"text": "new"})], start_row=0, n_rows=1, on_duplicate="update"
    )
    assert (run.n_created, run.n_updated, run.n_changed) == (0, 1, 1)
    assert store.find_item(pid, "a").payload == {"text": "new"}


def test_counts_and_listing(store):
    pid = _project(store)
    ids = _items(store, pid, 6)
    store.set_item_label(ids[1], "pos")
    store.set_item_label(ids[4], "neg")
    rid = store.create_round(pid, "entropy")
    store.create_tasks(rid, [ids[0]])
    assert store.count_items(pid) == 6
    assert store.count_items(pid, "labeled") == 2
    assert store.count_items(pid, "queued") == 1
    assert store.list_unlabeled_item_ids(pid) == [ids[2], ids[3], ids[5]]
    assert store.list_labeled(pid) == [(ids[1], "pos"), (ids[4], "neg")]
    assert [i.id for i in store.list_items(pid, limit=2, offset=1)] == ids[1:3]
    assert [i.id for i in store.list_items(pid, status="labeled")] == [ids[1], ids[4]]
    other = _project(store, "other")
    assert store.count_items(other) == 0 and store.list_labeled(other) == []


def test_list_items_pages_by_keyset(store):
    pid = _project(store)
    ids = _items(store, pid, 5)
    _items(store, _project(store, "other"), 2)  # another project's ids interleave nothing
    store.set_item_label(ids[2], "pos")
    first = store.list_items(pid, limit=2)
    assert [i.id for i in first] == ids[:2]
    assert [i.id for i in store.list_items(pid, limit=2, after_id=first[-1].id)] == ids[2:4]
    assert [i.id for i in store.list_items(pid, after_id=ids[3])] == [ids[4]]
    assert store.list_items(pid, after_id=ids[4]) == []
    got = store.list_items(pid, "unlabeled", limit=2, after_id=ids[0])
    assert [i.id for i in got] == [ids[1], ids[3]]  # the status filter, then the keyset
    assert [i.id for i in store.list_items(pid, after_id=ids[0] - 1)] == ids  # below the first


def test_list_item_ids_returns_int64_arrays(store):
    pid = _project(store)
    ids = _items(store, pid, 5)
    _items(store, _project(store, "other"), 2)
    store.set_item_label(ids[1], "pos")
    every = store.list_item_ids(pid)
    assert isinstance(every, np.ndarray) and every.dtype == np.int64
    assert every.tolist() == ids
    assert store.list_item_ids(pid, "unlabeled").tolist() == [ids[0], *ids[2:]]
    assert store.list_item_ids(pid, "labeled").tolist() == [ids[1]]
    assert store.list_item_ids(pid, after_id=ids[2]).tolist() == ids[3:]
    assert store.list_item_ids(pid, "unlabeled", after_id=ids[0]).tolist() == ids[2:]
    empty = store.list_item_ids(_project(store, "empty"))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    with pytest.raises(LabelwiseError, match="status must be one of"):
        store.list_item_ids(pid, "done")


def test_list_labeled_arrays_flags_validation_items(store):
    pid = _project(store)
    store.create_items(
        pid,
        [
            NewItem("a", {"text": "a"}, label="pos"),
            NewItem("b", {"text": "b"}, {"split": "validation"}, label="neg"),
            NewItem("c", {"text": "c"}),
            NewItem("d", {"text": "d"}, {"split": "train"}, label="neg"),
        ],
    )
    got = store.list_labeled_arrays(pid)
    ids = [store.find_item(pid, x).id for x in "abd"]
    assert got.item_ids.dtype == np.int64 and got.item_ids.tolist() == ids
    assert got.labels == ["pos", "neg", "neg"]
    assert got.validation.dtype == bool and got.validation.tolist() == [False, True, False]
    none = store.list_labeled_arrays(_project(store, "other"))
    assert none.item_ids.shape == (0,) and none.labels == [] and none.validation.shape == (0,)


def test_count_items_bad_status(store):
    with pytest.raises(LabelwiseError, match="status must be one of"):
        store.count_items(_project(store), "done")


def test_multilabel_labels_are_sorted_lists(store):
    pid = store.create_project("ml", "multilabel", ["a", "b", "c"])
    iid = store.create_item(pid, "e", {"text": "t"})
    store.set_item_label(iid, ["c", "a", "c"])
    assert store.list_labeled(pid) == [(iid, ["a", "c"])]
    with pytest.raises(LabelMismatchError, match="list of class names"):
        store.set_item_label(iid, "a")
    with pytest.raises(LabelMismatchError, match="not classes"):
        store.set_item_label(iid, ["a", "z"])


# --------------------------------------------------------------------------- rounds


def test_rounds_are_numbered_per_project(store):
    a, b = _project(store, "a"), _project(store, "b")
    r1 = store.create_round(a, "random", now=T0)
    r2 = store.create_round(a, "entropy")
    rb = store.create_round(b, "entropy")
    assert [r.number for r in store.list_rounds(a)] == [1, 2]
    assert store.get_round(rb).number == 1
    assert store.get_round(r1).created == T0
    assert store.get_round(r2).closed is None
    store.close_round(r2, now=T0)
    store.close_round(r2, now=T0 + timedelta(days=1))  # closing twice keeps the first time
    assert store.get_round(r2).closed == T0
    with pytest.raises(NotFound):
        store.create_round(999, "random")


# --------------------------------------------------------------------------- tasks


def test_create_tasks_queues_items(store):
    pid = _project(store)
    ids = _items(store, pid, 3)
    rid = store.create_round(pid, "entropy")
    tids = store.create_tasks(rid, ids[:2], priorities=[0.5, 0.7], routing_tags=["med", None])
    assert len(tids) == 2
    t = store.get_task(tids[0])
    assert (t.project_id, t.round_id, t.item_id, t.status) == (pid, rid, ids[0], "queued")
    assert (t.priority, t.routing_tag, t.lease_owner, t.lease_expires) == (0.5, "med", None, None)
    assert store.get_task(tids[1]).item_id == ids[1]
    assert store.get_task(tids[1]).confidence is None  # no confidences given
    assert store.list_unlabeled_item_ids(pid) == [ids[2]]
    assert [x.id for x in store.list_tasks(pid, round_id=rid, status="queued")] == tids
    assert store.queue_depth(pid) == 2


def test_create_tasks_rejects_items_of_other_projects(store):
    a, b = _project(store, "a"), _project(store, "b")
    foreign = _items(store, b, 1)
    rid = store.create_round(a, "entropy")
    with pytest.raises(LabelwiseError, match="belongs to project"):
        store.create_tasks(rid, foreign)
    assert store.list_tasks(a) == []


def test_create_tasks_length_mismatch(store):
    pid = _project(store)
    ids = _items(store, pid, 2)
    rid = store.create_round(pid, "entropy")
    with pytest.raises(LabelwiseError, match="one entry per item"):
        store.create_tasks(rid, ids, priorities=[1.0])


def test_create_tasks_unknown_item(store):
    pid = _project(store)
    rid = store.create_round(pid, "entropy")
    with pytest.raises(NotFound, match="item 999"):
        store.create_tasks(rid, [999])


def test_claim_orders_by_priority_then_id(store):
    pid, _, tids = _queue(store, 4, priorities=[0.1, 0.9, 0.9, 0.5])
    ann = store.create_annotator("a")
    got = [store.claim_next_task(pid, ann, now=T0).id for _ in range(4)]
    # priority 0.9 (ids 1 and 2, lower id first), then 0.5, then 0.1
    assert got == [tids[1], tids[2], tids[3], tids[0]]
    assert store.claim_next_task(pid, ann, now=T0) is None


def test_claim_sets_lease(store):
    pid, _, tids = _queue(store, 1)
    ann = store.create_annotator("a")
    t = store.claim_next_task(pid, ann, lease_seconds=60, now=T0)
    assert (t.id, t.status, t.lease_owner) == (tids[0], "leased", ann)
    assert t.lease_expires == T0 + timedelta(seconds=60)
    assert store.get_task(t.id) == t
    assert store.queue_depth(pid, now=T0) == 0
    assert store.list_tasks(pid, lease_owner=ann) == [t]


def test_claim_prefers_routing_tag_matching_skills(store):
    pid, _, tids = _queue(store, 3, priorities=[0.9, 0.1, 0.5], routing_tags=[None, "med", "legal"])
    doctor = store.create_annotator("doc", skills=["med"])
    anyone = store.create_annotator("any")
    assert store.claim_next_task(pid, doctor, now=T0).id == tids[1]  # skill match beats priority
    assert store.claim_next_task(pid, anyone, now=T0).id == tids[0]  # then any task by priority
    assert store.claim_next_task(pid, doctor, now=T0).id == tids[2]


def test_expired_lease_is_claimable_again(store):
    pid, _, tids = _queue(store, 1)
    a, b = store.create_annotator("a"), store.create_annotator("b")
    store.claim_next_task(pid, a, lease_seconds=60, now=T0)
    assert store.claim_next_task(pid, b, now=T0 + timedelta(seconds=59)) is None
    assert store.queue_depth(pid, now=T0 + timedelta(seconds=61)) == 1
    t = store.claim_next_task(pid, b, lease_seconds=60, now=T0 + timedelta(seconds=61))
    assert (t.id, t.lease_owner) == (tids[0], b)
    with pytest.raises(LeaseError):  # a's lease is gone
        store.create_annotation(tids[0], a, "pos", now=T0 + timedelta(seconds=62))


def test_claim_mixes_expired_leases_and_queued_tasks_by_priority(store):
    # priorities 0.2 0.8 0.5 0.8; a leases tids[1] (0.8, lower id) and tids[3] (0.8) for 60 s
    pid, _, tids = _queue(store, 4, priorities=[0.2, 0.8, 0.5, 0.8])
    a, b = store.create_annotator("a"), store.create_annotator("b")
    assert [store.claim_next_task(pid, a, lease_seconds=60, now=T0).id for _ in range(2)] == [
        tids[1], tids[3],
    ]  # fmt: skip
    later = T0 + timedelta(seconds=61)  # both leases expired: 0.8 (id 1), 0.8 (id 3), 0.5, 0.2
    got = [store.claim_next_task(pid, b, now=later).id for _ in range(4)]
    assert got == [tids[1], tids[3], tids[2], tids[0]]


def test_claim_skill_match_includes_expired_leases(store):
    # tids[2] is routed to "med" but leased by a; once expired it beats unrouted 0.9
    pid, _, tids = _queue(store, 3, priorities=[0.9, 0.1, 0.5], routing_tags=[None, None, "med"])
    a = store.create_annotator("a")
    doctor = store.create_annotator("doc", skills=["med"])
    store.update_tasks([tids[2]], priorities=[2.0])  # a takes it first
    assert store.claim_next_task(pid, a, lease_seconds=60, now=T0).id == tids[2]
    assert store.claim_next_task(pid, doctor, now=T0).id == tids[0]  # no free "med" task
    later = T0 + timedelta(seconds=61)
    assert store.claim_next_task(pid, doctor, now=later).id == tids[2]
    assert store.claim_next_task(pid, doctor, now=later).id == tids[1]


def test_claim_caps_the_annotators_open_leases_per_project(store):
    pid, _, tids = _queue(store, 5)
    other, _, other_tids = _queue_in(store, "q", 1)
    ann, bob = store.create_annotator("a"), store.create_annotator("b")
    got = [store.claim_next_task(pid, ann, lease_seconds=60, now=T0, max_leases=2) for _ in "xy"]
    assert [t.id for t in got] == tids[:2]
    ids = rf"\(ids {tids[0]}, {tids[1]}\)"
    with pytest.raises(LeaseLimitError, match=rf"you hold 2 open leases .*{ids}") as e:
        store.claim_next_task(pid, ann, now=T0, max_leases=2)
    assert (e.value.limit, e.value.task_ids) == (2, (tids[0], tids[1]))
    assert isinstance(e.value, LeaseError)  # a 409 in the API, like a lost lease
    assert store.queue_depth(pid, now=T0) == 3  # the refused claim leased nothing
    # leases are counted per annotator and per project
    assert store.claim_next_task(pid, bob, now=T0, max_leases=2).id == tids[2]
    assert store.claim_next_task(other, ann, now=T0, max_leases=2).id == other_tids[0]
    # an answer frees a place; an expired lease is not held
    store.create_annotation(tids[0], ann, "pos", now=T0)
    assert store.claim_next_task(pid, ann, lease_seconds=60, now=T0, max_leases=2).id == tids[3]
    later = T0 + timedelta(seconds=61)  # both of ann's leases expired: two places again
    again = [store.claim_next_task(pid, ann, now=later, max_leases=2).id for _ in "xy"]
    assert again == [tids[1], tids[3]]  # expired leases are claimable, by priority then id
    with pytest.raises(LeaseLimitError):
        store.claim_next_task(pid, ann, now=later, max_leases=2)


def test_claim_at_the_cap_on_an_empty_queue_names_the_cap(store):
    pid, _, _ = _queue(store, 1)
    ann = store.create_annotator("a")
    store.claim_next_task(pid, ann, now=T0, max_leases=1)
    assert store.claim_next_task(pid, ann, now=T0, max_leases=2) is None  # under the cap
    with pytest.raises(LeaseLimitError, match="you hold 1 open leases"):
        store.claim_next_task(pid, ann, now=T0, max_leases=1)


def test_gold_lease_counts_toward_the_cap(store):
    pid, _, _ = _queue(store, 2)
    gold = _items(store, pid, 1, prefix="g")[0]
    store.mark_gold(gold, "pos")
    ann = store.create_annotator("a")
    store.claim_next_task(pid, ann, now=T0, max_leases=2)
    task = store.lease_gold_task(pid, ann, now=T0, max_leases=2)
    assert (task.item_id, task.lease_owner) == (gold, ann)
    with pytest.raises(LeaseLimitError, match="you hold 2 open leases"):
        store.claim_next_task(pid, ann, now=T0, max_leases=2)
    store.mark_gold(_items(store, pid, 1, prefix="h")[0], "neg")
    with pytest.raises(LeaseLimitError):
        store.lease_gold_task(pid, ann, now=T0, max_leases=2)
    assert len(store.list_tasks(pid, status="leased", lease_owner=ann)) == 2


def test_claim_skips_items_the_annotator_already_answered(store):
    pid = _project(store)
    ids = _items(store, pid, 2)
    r1 = store.create_round(pid, "entropy", now=T0)
    (t1,) = store.create_tasks(r1, ids[:1], priorities=[0.1], now=T0)
    a = store.create_annotator("a")
    store.claim_next_task(pid, a, now=T0)
    store.create_annotation(t1, a, "pos", now=T0)
    r2 = store.create_round(pid, "entropy", now=T0)  # the same item again, higher priority
    again, other = store.create_tasks(r2, ids, priorities=[0.9, 0.5], now=T0)
    assert store.claim_next_task(pid, a, now=T0).id == other
    assert store.claim_next_task(pid, a, now=T0) is None
    assert store.claim_next_task(pid, store.create_annotator("b"), now=T0).id == again


def test_count_tasks_and_has_tasks(store):
    pid, rid, _ = _queue(store, 4)
    other_round = store.create_round(pid, "entropy", now=T0)
    store.create_tasks(other_round, _items(store, pid, 1, prefix="y"), now=T0)
    other = _project(store, "other")
    a = store.create_annotator("a")
    t = store.claim_next_task(pid, a, now=T0)  # ids 0..3 all 0.0: the lowest id, tids[0]
    store.create_annotation(t.id, a, "pos", now=T0)
    store.claim_next_task(pid, a, now=T0)  # tids[1] leased
    # round rid: 1 done, 1 leased, 2 queued; other_round: 1 queued
    assert store.count_tasks(pid) == 5
    assert store.count_tasks(pid, round_id=rid) == 4
    assert store.count_tasks(pid, round_id=rid, statuses=("queued", "leased")) == 3
    assert store.count_tasks(pid, statuses=["queued"]) == 3
    assert store.count_tasks(pid, round_id=rid, statuses=["done"]) == 1
    assert store.count_tasks(pid, statuses=["skipped"]) == 0
    assert store.count_tasks(other) == 0
    assert store.has_tasks(pid, round_id=rid, statuses=["leased"])
    assert not store.has_tasks(pid, round_id=other_round, statuses=["done", "leased"])
    assert not store.has_tasks(other)
    assert store.count_annotations(pid) == 1
    assert store.count_annotations(other) == 0
    assert store.count_annotations(pid, annotator_id=a) == 1
    assert store.count_annotations(pid, annotator_id=a + 1000) == 0
    assert store.count_annotations(other, annotator_id=a) == 0


def test_round_progress_counts_the_rounds_tasks_and_finished_ones(store):
    pid, rid, tids = _queue(store, 4)
    _queue_in(store, "q", 3)  # another project's round does not count
    ann = store.create_annotator("a")
    for _ in range(3):
        store.claim_next_task(pid, ann, now=T0)
    store.create_annotation(tids[0], ann, "pos", now=T0)
    store.skip_task(tids[1], ann, now=T0)
    assert store.get_round_progress(rid) == (1, 4, 2)  # the leased and the queued: not finished
    (queued,) = [t.id for t in store.list_tasks(pid, round_id=rid) if t.status == "queued"]
    assert store.withdraw_tasks([queued]) == [queued]
    assert store.get_round_progress(rid) == (1, 3, 2)  # a withdrawn task leaves the batch
    rid2 = store.create_round(pid, "entropy", now=T0)
    assert store.get_round_progress(rid2) == (2, 0, 0)
    with pytest.raises(NotFound, match="round 999"):
        store.get_round_progress(999)


def test_count_tasks_bad_status(store):
    pid, _, _ = _queue(store, 1)
    with pytest.raises(LabelwiseError, match="status"):
        store.count_tasks(pid, statuses=["open"])
    with pytest.raises(LabelwiseError, match="at least one task status"):
        store.has_tasks(pid, statuses=[])


def test_claim_in_other_project_or_empty(store):
    pid, _, _ = _queue(store, 1)
    other = _project(store, "other")
    ann = store.create_annotator("a")
    assert store.claim_next_task(other, ann) is None
    with pytest.raises(NotFound, match="annotator 999"):
        store.claim_next_task(pid, 999)


def test_claim_bad_lease_seconds(store):
    pid, _, _ = _queue(store, 1)
    ann = store.create_annotator("a")
    with pytest.raises(LabelwiseError, match="lease_seconds"):
        store.claim_next_task(pid, ann, lease_seconds=0)


def test_naive_now_is_rejected(store):
    pid, _, _ = _queue(store, 1)
    ann = store.create_annotator("a")
    with pytest.raises(LabelwiseError, match="naive"):
        store.claim_next_task(pid, ann, now=datetime(2026, 1, 1))


def test_update_tasks_rescores_only_queued_tasks(store):
    pid, _, tids = _queue(store, 3)
    aid = store.create_annotator("ann")
    claimed = store.claim_next_task(pid, aid, now=T0)
    n = store.update_tasks(tids, priorities=[5.0, 6.0, 7.0], routing_tags=["a", "b", "c"])
    assert n == 2  # the claimed task keeps its score
    after = {t.id: (t.priority, t.routing_tag) for t in store.list_tasks(pid)}
    before = store.get_task(claimed.id)
    assert after[claimed.id] == (before.priority, before.routing_tag)
    others = [t for t in tids if t != claimed.id]
    assert sorted(after[t][0] for t in others) == sorted(
        p for t, p in zip(tids, [5.0, 6.0, 7.0], strict=True) if t != claimed.id
    )
    # without routing_tags only the priority changes
    assert store.update_tasks(others, priorities=[1.0, 2.0]) == 2
    assert [store.get_task(t).priority for t in others] == [1.0, 2.0]
    assert store.get_task(others[0]).routing_tag == after[others[0]][1]
    with pytest.raises(LabelwiseError, match="one entry per item"):
        store.update_tasks(others, priorities=[1.0])


def test_task_confidence_is_stored_and_rescored(store):
    pid = _project(store)
    ids = _items(store, pid, 3)
    rid = store.create_round(pid, "entropy")
    tids = store.create_tasks(
        rid, ids, priorities=[0.1, 0.2, 0.3], routing_tags=["pos", "neg", None],
        confidences=[0.75, 0.5, None],
    )  # fmt: skip
    assert [store.get_task(t).confidence for t in tids] == [0.75, 0.5, None]
    aid = store.create_annotator("a")
    claimed = store.claim_next_task(pid, aid, now=T0)  # tids[2], the highest priority
    assert (claimed.id, claimed.confidence) == (tids[2], None)
    # re-scoring sets the confidence of the queued tasks only
    n = store.update_tasks(tids, priorities=[1.0, 2.0, 3.0], confidences=[0.9, 0.6, 0.99])
    assert n == 2
    assert [store.get_task(t).confidence for t in tids] == [0.9, 0.6, None]
    # without confidences they are left as they are
    store.update_tasks(tids[:2], priorities=[4.0, 5.0])
    assert [store.get_task(t).confidence for t in tids[:2]] == [0.9, 0.6]
    with pytest.raises(LabelwiseError, match="one entry per item"):
        store.create_tasks(rid, ids, confidences=[0.5])


def test_withdraw_tasks_takes_only_queued_tasks(store):
    pid, _, tids = _queue(store, 4)
    aid = store.create_annotator("a")
    leased = store.claim_next_task(pid, aid, now=T0)  # the lowest id of equal priorities
    done = store.claim_next_task(pid, aid, now=T0)
    store.create_annotation(done.id, aid, "pos", now=T0)
    queued = [t for t in tids if t not in (leased.id, done.id)]
    # leased and done tasks are left alone; an unknown id is ignored
    assert store.withdraw_tasks([*tids, 10**9]) == sorted(queued)
    statuses = {t.id: t.status for t in store.list_tasks(pid)}
    assert statuses == {
        leased.id: "leased",
        done.id: "done",
        **{t: "withdrawn" for t in queued},
    }
    # the items of withdrawn tasks are back in the pool; withdrawn tasks are never served
    items = {t.id: store.get_item(t.item_id).status for t in store.list_tasks(pid)}
    assert [items[t] for t in queued] == ["unlabeled", "unlabeled"]
    assert (items[leased.id], items[done.id]) == ("queued", "labeled")
    assert store.claim_next_task(pid, store.create_annotator("b"), now=T0) is None
    assert store.count_tasks(pid, statuses=("withdrawn",)) == 2
    assert store.list_tasks(pid, status="withdrawn")[0].id == min(queued)
    assert store.withdraw_tasks(queued) == []  # a second withdrawal changes nothing
    assert store.withdraw_tasks([]) == []


def test_withdraw_tasks_keeps_an_expired_lease_and_released_tasks_go(store):
    pid, _, tids = _queue(store, 2)
    aid = store.create_annotator("a")
    held = store.claim_next_task(pid, aid, lease_seconds=60, now=T0)
    released = store.claim_next_task(pid, aid, lease_seconds=60, now=T0)
    store.release_task(released.id, aid)  # a closed tab: queued again, so withdrawable
    # the held lease expired, but the task is still "leased": the annotator may answer it yet
    assert store.withdraw_tasks(tids) == [released.id]
    assert store.get_task(held.id).status == "leased"


def test_withdraw_tasks_keeps_consensus_copies_together(store):
    pid = _project(store)
    ids = _items(store, pid, 2)
    rid = store.create_round(pid, "entropy", now=T0)
    tids = store.create_tasks(rid, ids, copies=[2, 1], now=T0)  # item 0: tids[0], tids[1]
    aid = store.create_annotator("a")
    store.update_tasks([tids[0]], priorities=[9.0])
    assert store.claim_next_task(pid, aid, now=T0).id == tids[0]
    # tids[1] is queued, but its sibling is leased: withdrawing it would starve the consensus
    assert store.withdraw_tasks(tids) == [tids[2]]
    assert store.get_item(ids[0]).status == "queued"


def test_annotation_completes_task_and_labels_item(store):
    pid, _, _ = _queue(store, 2)
    ann = store.create_annotator("a")
    t = store.claim_next_task(pid, ann, now=T0)
    aid = store.create_annotation(t.id, ann, "pos", duration_s=3.5, now=T0 + timedelta(seconds=5))
    a = store.get_annotation(aid)
    assert (a.task_id, a.item_id, a.annotator_id, a.label, a.duration_s) == (
        t.id, t.item_id, ann, "pos", 3.5,
    )  # fmt: skip
    assert a.created == T0 + timedelta(seconds=5)
    assert store.get_task(t.id).status == "done"
    assert store.get_item(t.item_id).status == "labeled"
    assert store.list_labeled(pid) == [(t.item_id, "pos")]
    assert store.list_annotations(pid) == [a]
    assert store.list_annotations(pid, item_id=t.item_id, annotator_id=ann) == [a]
    assert store.queue_depth(pid, now=T0) == 1
    with pytest.raises(LeaseError):  # done: cannot be answered twice
        store.create_annotation(t.id, ann, "neg", now=T0)


def test_annotation_refuses_other_annotators_task(store):
    pid, _, _ = _queue(store, 1)
    a, b = store.create_annotator("a"), store.create_annotator("b")
    t = store.claim_next_task(pid, a, now=T0)
    with pytest.raises(LeaseError, match="not leased by annotator"):
        store.create_annotation(t.id, b, "pos", now=T0)
    assert store.get_task(t.id).status == "leased"
    assert store.list_annotations(pid) == []


def test_annotation_refuses_expired_lease(store):
    pid, _, _ = _queue(store, 1)
    a = store.create_annotator("a")
    t = store.claim_next_task(pid, a, lease_seconds=10, now=T0)
    with pytest.raises(LeaseError, match="expired"):
        store.create_annotation(t.id, a, "pos", now=T0 + timedelta(seconds=11))


def test_annotation_refuses_unclaimed_task(store):
    _, _, tids = _queue(store, 1)
    a = store.create_annotator("a")
    with pytest.raises(LeaseError, match="claim"):
        store.create_annotation(tids[0], a, "pos")


def test_annotation_bad_label_changes_nothing(store):
    pid, _, _ = _queue(store, 1)
    a = store.create_annotator("a")
    t = store.claim_next_task(pid, a, now=T0)
    with pytest.raises(LabelMismatchError):
        store.create_annotation(t.id, a, "maybe", now=T0)
    assert store.get_task(t.id).status == "leased"
    assert store.list_annotations(pid) == []


def test_unresolved_annotations_for_consensus(store):
    pid = _project(store)
    (iid,) = _items(store, pid, 1)
    rid = store.create_round(pid, "entropy")
    store.create_tasks(rid, [iid])
    store.create_tasks(rid, [iid])  # a second opinion on the same item
    a, b = store.create_annotator("a"), store.create_annotator("b")
    ta = store.claim_next_task(pid, a, now=T0)
    store.create_annotation(ta.id, a, "pos", resolve=False, now=T0)
    assert store.claim_next_task(pid, a, now=T0) is None  # never twice the same item
    tb = store.claim_next_task(pid, b, now=T0)
    assert tb.item_id == iid and tb.id != ta.id
    store.create_annotation(tb.id, b, "neg", resolve=False, now=T0)
    assert store.get_item(iid).status == "queued"
    assert [x.label for x in store.list_annotations(pid, item_id=iid)] == ["pos", "neg"]
    store.set_item_label(iid, "pos")
    assert store.list_labeled(pid) == [(iid, "pos")]


def test_skip_and_release(store):
    pid, _, tids = _queue(store, 2, priorities=[1.0, 0.0])
    a, b = store.create_annotator("a"), store.create_annotator("b")
    t = store.claim_next_task(pid, a, now=T0)
    with pytest.raises(LeaseError):
        store.skip_task(t.id, b, now=T0)
    store.skip_task(t.id, a, now=T0)
    assert store.get_task(t.id).status == "skipped"
    assert store.get_item(t.item_id).status == "skipped"
    t2 = store.claim_next_task(pid, a, now=T0)
    assert t2.id == tids[1]
    with pytest.raises(LeaseError):
        store.release_task(t2.id, b)
    store.release_task(t2.id, a)
    back = store.get_task(t2.id)
    assert (back.status, back.lease_owner, back.lease_expires) == ("queued", None, None)
    assert store.claim_next_task(pid, b, now=T0).id == t2.id


def _answered(store: BaseStore, n: int = 3):
    """``n`` queued tasks, annotator ``a`` labels the first two ("pos", then "neg")."""
    pid, rid, tids = _queue(store, n, priorities=[float(n - i) for i in range(n)])
    a = store.create_annotator("a")
    anns = []
    for i, label in enumerate(["pos", "neg"]):
        t = store.claim_next_task(pid, a, now=T0)
        assert t.id == tids[i]
        anns.append(store.create_annotation(t.id, a, label, now=T0 + timedelta(seconds=i)))
    return pid, rid, tids, a, anns


def test_undo_reopens_the_task_for_its_annotator(store):
    pid, _, tids, a, (_, last) = _answered(store)
    later = T0 + timedelta(minutes=1)
    task = store.undo_annotation(last, a, lease_seconds=60, now=later)
    assert (task.id, task.status, task.lease_owner) == (tids[1], "leased", a)
    assert task.lease_expires == later + timedelta(seconds=60)  # a fresh lease
    assert store.get_task(tids[1]) == task
    with pytest.raises(NotFound, match=f"annotation {last} not found"):
        store.get_annotation(last)
    item = store.get_item(task.item_id)
    assert (item.status, item.label) == ("queued", None)  # the label is gone
    assert store.list_labeled(pid) == [(store.get_task(tids[0]).item_id, "pos")]
    # the annotator answers again, through the normal path
    again = store.create_annotation(task.id, a, "pos", now=later)
    assert again > last  # ids are never reused: an id names one event of the audit trail
    assert store.get_annotation(again).label == "pos"
    assert store.get_item(task.item_id).label == "pos"


def test_undo_twice_goes_back_one_annotation_at_a_time(store):
    pid, _, tids, a, (first, last) = _answered(store)
    with pytest.raises(UndoError, match="not your most recent"):
        store.undo_annotation(first, a, now=T0)
    store.undo_annotation(last, a, now=T0)
    store.release_task(tids[1], a)  # e.g. the annotator moved on without answering
    task = store.undo_annotation(first, a, now=T0)  # now the most recent one
    assert (task.id, task.status) == (tids[0], "leased")
    assert store.list_annotations(pid) == [] and store.list_labeled(pid) == []


def test_undo_refuses_another_annotators_annotation(store):
    _, _, tids, _, (_, last) = _answered(store)
    b = store.create_annotator("b")
    with pytest.raises(UndoError, match="another annotator"):
        store.undo_annotation(last, b, now=T0)
    assert store.get_annotation(last).label == "neg"  # nothing changed
    assert store.get_task(tids[1]).status == "done"


def test_undo_refuses_once_the_round_is_closed(store):
    _, rid, tids, a, (_, last) = _answered(store)
    store.close_round(rid, now=T0)  # a retrain took the round's labels
    with pytest.raises(UndoError, match="closed"):
        store.undo_annotation(last, a, now=T0)
    assert store.get_task(tids[1]).status == "done"
    assert store.get_item(store.get_task(tids[1]).item_id).label == "neg"


def test_undo_missing_annotation_and_bad_lease(store):
    _, _, _, a, (_, last) = _answered(store)
    with pytest.raises(NotFound, match="annotation 999"):
        store.undo_annotation(999, a, now=T0)
    with pytest.raises(LabelwiseError, match="lease_seconds"):
        store.undo_annotation(last, a, lease_seconds=0, now=T0)
    assert store.get_annotation(last).label == "neg"


def test_undo_restores_the_previous_annotation_of_a_shared_item(store):
    pid = _project(store)
    (iid,) = _items(store, pid, 1)
    rid = store.create_round(pid, "entropy")
    store.create_tasks(rid, [iid])
    store.create_tasks(rid, [iid])  # a second opinion
    a, b = store.create_annotator("a"), store.create_annotator("b")
    ta = store.claim_next_task(pid, a, now=T0)
    store.create_annotation(ta.id, a, "pos", now=T0)
    tb = store.claim_next_task(pid, b, now=T0)
    second = store.create_annotation(tb.id, b, "neg", now=T0)
    assert store.get_item(iid).label == "neg"  # the latest answer resolved the item
    store.undo_annotation(second, b, now=T0)
    item = store.get_item(iid)
    assert (item.status, item.label) == ("labeled", "pos")  # back to a's answer


def test_concurrent_undo_of_one_annotation_succeeds_once(store):
    _, _, tids, a, (_, last) = _answered(store)

    def work(i: int) -> list:
        try:
            return [store.undo_annotation(last, a).id]
        except (NotFound, UndoError):
            return ["refused"]

    got = _hammer(10, work)
    assert sorted(got, key=str) == sorted([tids[1]] + ["refused"] * 9, key=str)


# --------------------------------------------------------------------------- revising answers


def test_revise_replaces_any_earlier_answer_with_a_new_one(store):
    pid, _, tids, a, (first, last) = _answered(store)
    later = T0 + timedelta(minutes=5)
    new = store.revise_annotation(first, a, "neg", duration_s=1.5, now=later)
    assert new > last  # a new answer: a new id, never a reused one
    with pytest.raises(NotFound):
        store.get_annotation(first)
    ann = store.get_annotation(new)
    assert (ann.task_id, ann.annotator_id, ann.label) == (tids[0], a, "neg")
    assert (ann.created, ann.duration_s) == (later, 1.5)
    item = store.get_item(ann.item_id)
    assert (item.status, item.label) == ("labeled", "neg")
    assert store.get_task(tids[0]).status == "done"  # the queue does not move
    assert [x.id for x in store.list_annotations(pid, annotator_id=a)] == [last, new]


def test_revise_refusals_change_nothing(store):
    _, rid, _, a, (first, _) = _answered(store)
    b = store.create_annotator("b")
    with pytest.raises(UndoError, match="another annotator"):
        store.revise_annotation(first, b, "neg", now=T0)
    with pytest.raises(LabelMismatchError):
        store.revise_annotation(first, a, "maybe", now=T0)
    with pytest.raises(NotFound, match="annotation 999"):
        store.revise_annotation(999, a, "neg", now=T0)
    store.close_round(rid, now=T0)
    with pytest.raises(UndoError, match="closed"):
        store.revise_annotation(first, a, "neg", now=T0)
    assert store.get_annotation(first).label == "pos"


def test_list_recent_annotations_newest_first(store):
    pid, _, _, a, (first, last) = _answered(store)
    b = store.create_annotator("b")
    assert [x.id for x in store.list_recent_annotations(pid, a)] == [last, first]
    assert [x.id for x in store.list_recent_annotations(pid, a, limit=1)] == [last]
    assert store.list_recent_annotations(pid, b) == []
    with pytest.raises(LabelwiseError, match="limit"):
        store.list_recent_annotations(pid, a, limit=0)


# --------------------------------------------------------------------------- guidelines


def test_guidelines_are_versioned_and_annotations_record_the_version(store):
    pid, _, _ = _queue(store, 3)
    a = store.create_annotator("a")
    assert store.find_guidelines(pid) is None and store.list_guidelines(pid) == []
    t = store.claim_next_task(pid, a, now=T0)
    before = store.create_annotation(t.id, a, "pos", now=T0)
    assert store.get_annotation(before).guideline_version is None  # none written yet
    g1 = store.create_guidelines(
        pid,
        "# Sentiment\nLabel the *whole* review.",
        classes={"pos": {"definition": "Praise", "examples": ["Loved it"]}},
        hard_cases="Sarcasm is *neg*.",
        author_id=a,
        now=T0,
    )
    t = store.claim_next_task(pid, a, now=T0)
    under_v1 = store.create_annotation(t.id, a, "neg", now=T0)
    g2 = store.create_guidelines(pid, "v2", now=T0 + timedelta(hours=1))
    t = store.claim_next_task(pid, a, now=T0)
    under_v2 = store.create_annotation(t.id, a, "pos", now=T0)
    assert store.get_annotation(under_v1).guideline_version == 1
    assert store.get_annotation(under_v2).guideline_version == 2
    # a revision is a new answer, made under the guidelines of its own time
    revised = store.revise_annotation(before, a, "neg", now=T0)
    assert store.get_annotation(revised).guideline_version == 2
    v1 = store.get_guidelines(g1)
    assert (v1.project_id, v1.version, v1.author_id, v1.created) == (pid, 1, a, T0)
    assert v1.body == "# Sentiment\nLabel the *whole* review."
    assert v1.classes == {"pos": {"definition": "Praise", "examples": ["Loved it"]}}
    assert v1.hard_cases == "Sarcasm is *neg*."
    assert store.find_guidelines(pid).id == g2
    assert store.find_guidelines(pid, version=1) == v1
    assert store.find_guidelines(pid, version=3) is None
    assert [g.version for g in store.list_guidelines(pid)] == [1, 2]
    assert store.get_guidelines(g2).classes == {} and store.get_guidelines(g2).author_id is None


def test_guidelines_versions_are_per_project(store):
    p1, p2 = _project(store, "p1"), _project(store, "p2")
    store.create_guidelines(p1, "a")
    store.create_guidelines(p1, "b")
    gid = store.create_guidelines(p2, "c")
    assert store.get_guidelines(gid).version == 1
    assert [g.body for g in store.list_guidelines(p1)] == ["a", "b"]


def test_guidelines_bad_input(store):
    pid = _project(store)
    with pytest.raises(NotFound, match="project 999"):
        store.create_guidelines(999, "x")
    with pytest.raises(LabelwiseError, match="not a class"):
        store.create_guidelines(pid, "x", classes={"maybe": {"definition": "?"}})
    with pytest.raises(LabelwiseError, match="definition"):
        store.create_guidelines(pid, "x", classes={"pos": {"definition": 3}})
    with pytest.raises(LabelwiseError, match="at most"):
        store.create_guidelines(pid, "x" * 100_001)
    with pytest.raises(LabelwiseError, match="examples"):
        store.create_guidelines(pid, "x", classes={"pos": {"examples": ["e"] * 21}})
    with pytest.raises(NotFound, match="annotator 999"):
        store.create_guidelines(pid, "x", author_id=999)
    with pytest.raises(NotFound, match="guidelines 999"):
        store.get_guidelines(999)
    assert store.list_guidelines(pid) == []  # nothing written


def test_concurrent_guideline_edits_get_distinct_versions(store):
    pid = _project(store)
    got = _hammer(8, lambda i: [store.create_guidelines(pid, f"edit {i}")])
    versions = sorted(store.get_guidelines(g).version for g in got)
    assert versions == list(range(1, 9))


# --------------------------------------------------------------------------- flags


def test_flags_record_item_task_annotator_and_reason(store):
    pid, _, tids = _queue(store, 2)
    a = store.create_annotator("a")
    t = store.claim_next_task(pid, a, now=T0)
    fid = store.create_flag(t.item_id, a, "  The text is cut off  ", task_id=t.id, now=T0)
    other = store.get_task(tids[1]).item_id
    store.create_flag(other, a, "Not English", now=T0)
    f = store.get_flag(fid)
    assert (f.project_id, f.item_id, f.task_id, f.annotator_id) == (pid, t.item_id, t.id, a)
    assert (f.reason, f.created) == ("The text is cut off", T0)
    assert [x.reason for x in store.list_flags(pid)] == ["The text is cut off", "Not English"]
    assert [x.reason for x in store.list_flags(pid, item_id=other)] == ["Not English"]
    assert store.list_flags(_project(store, "other")) == []


def test_flags_bad_input(store):
    pid, _, tids = _queue(store, 2)
    a = store.create_annotator("a")
    item = store.get_task(tids[0]).item_id
    with pytest.raises(LabelwiseError, match="reason"):
        store.create_flag(item, a, "   ")
    with pytest.raises(LabelwiseError, match="2000"):
        store.create_flag(item, a, "x" * 2001)
    with pytest.raises(LabelwiseError, match="not a task of item"):
        store.create_flag(item, a, "why", task_id=tids[1])
    with pytest.raises(NotFound, match="item 999"):
        store.create_flag(999, a, "why")
    with pytest.raises(NotFound, match="annotator 999"):
        store.create_flag(item, 999, "why")
    with pytest.raises(NotFound, match="flag 999"):
        store.get_flag(999)
    assert store.list_flags(pid) == []


def test_annotator_throughput_window(store):
    pid, _, _ = _queue(store, 5)
    a, b = store.create_annotator("a"), store.create_annotator("b")
    # a labels at T0+0s, +10s, +20s; b at +30s, +40s
    for i, who in enumerate([a, a, a, b, b]):
        now = T0 + timedelta(seconds=10 * i)
        t = store.claim_next_task(pid, who, now=now)
        store.create_annotation(t.id, who, "pos", now=now)
    assert store.annotator_throughput(pid, T0, T0 + timedelta(minutes=1)) == {a: 3, b: 2}
    # [10s, 40s) holds a's +10s, +20s and b's +30s
    window = store.annotator_throughput(pid, T0 + timedelta(seconds=10), T0 + timedelta(seconds=40))
    assert window == {a: 2, b: 1}
    assert store.annotator_throughput(pid, T0 - timedelta(hours=1), T0) == {}

    # the same window as answer times (POSIX seconds, in no set order), for labels-per-hour
    def times(since, until):
        got = store.list_annotation_times(pid, since, until)
        return {aid: sorted(ts) for aid, ts in got.items()}

    t0 = T0.timestamp()
    assert times(T0 + timedelta(seconds=10), T0 + timedelta(seconds=40)) == {
        a: [t0 + 10, t0 + 20],
        b: [t0 + 30],
    }
    assert times(T0, T0 + timedelta(minutes=1)) == {
        a: [t0, t0 + 10, t0 + 20],
        b: [t0 + 30, t0 + 40],
    }
    assert store.list_annotation_times(pid, T0 - timedelta(hours=1), T0) == {}
    assert store.list_annotation_times(_project(store, "other"), T0) == {}


def test_list_annotations_since(store):
    pid, _, _ = _queue(store, 3)
    a = store.create_annotator("a")
    for i in range(3):  # at T0, T0+10s, T0+20s
        now = T0 + timedelta(seconds=10 * i)
        store.create_annotation(store.claim_next_task(pid, a, now=now).id, a, "pos", now=now)
    every = store.list_annotations(pid)
    assert store.list_annotations(pid, since=T0) == every
    assert store.list_annotations(pid, since=T0 + timedelta(seconds=10)) == every[1:]  # inclusive
    assert store.list_annotations(pid, since=T0 + timedelta(seconds=11)) == every[2:]
    assert store.list_annotations(pid, since=T0 + timedelta(hours=1)) == []
    late = T0 + timedelta(seconds=15)
    assert store.list_annotations(pid, annotator_id=a, since=late) == every[2:]
    with pytest.raises(LabelwiseError, match="naive"):
        store.list_annotations(pid, since=datetime(2026, 1, 1))


def test_count_labeled_by_split(store):
    pid = _project(store, classes=("neg", "pos", "x"))
    assert store.count_labeled_by_split(pid) == []
    val = {"split": "validation"}
    store.create_items(
        pid,
        [
            NewItem("a", {"text": "a"}, label="pos"),
            NewItem("b", {"text": "b"}, label="pos"),
            NewItem("c", {"text": "c"}, label="neg"),
            NewItem("d", {"text": "d"}, label="pos", metadata=val),
            NewItem("e", {"text": "e"}, label="neg", metadata={"split": 3}),  # not a split name
            NewItem("f", {"text": "f"}),  # unlabelled: not counted
            NewItem("g", {"text": "g"}, label="pos", gold=True),  # gold: not a labelled item
        ],
    )
    got = set(store.count_labeled_by_split(pid))
    assert got in (
        {("neg", None, 1), ("neg", "3", 1), ("pos", None, 2), ("pos", "validation", 1)},
        # a non-string split: SQL reads it as text, the default as absent
        {("neg", None, 2), ("pos", None, 2), ("pos", "validation", 1)},
    )
    assert store.count_labeled_by_split(_project(store, "other")) == []


def test_count_annotations_by_gold(store):
    pid, _, _ = _queue(store, 3)
    assert store.count_annotations_by_gold(pid) == {}
    a, b = store.create_annotator("a"), store.create_annotator("b")
    gold = _items(store, pid, 2, prefix="g")
    for g in gold:
        store.mark_gold(g, "pos")
    # the first queued item: answered by a and b; the second: by a; the third: never
    t = store.claim_next_task(pid, a, now=T0)
    store.create_annotation(t.id, a, "pos", now=T0)
    item0 = store.get_task(t.id).item_id
    r2 = store.create_round(pid, "entropy", now=T0)
    (again,) = store.create_tasks(r2, [item0], priorities=[1.0], now=T0)
    assert store.claim_next_task(pid, b, now=T0).id == again
    store.create_annotation(again, b, "neg", now=T0)
    t = store.claim_next_task(pid, a, now=T0)
    store.create_annotation(t.id, a, "pos", now=T0)
    # gold: the first gold item answered by a and b, the second by nobody
    for who in (a, b):
        task = store.lease_gold_task(pid, who, now=T0)
        assert task.item_id == gold[0]
        store.create_annotation(task.id, who, "pos", now=T0)
    # 3 answers on 2 non-gold items, 2 answers on 1 gold item
    assert store.count_annotations_by_gold(pid) == {False: (3, 2), True: (2, 1)}
    other = _project(store, "other")
    assert store.count_annotations_by_gold(other) == {}


# --------------------------------------------------------------------------- model versions


def test_model_versions(store):
    pid = _project(store)
    assert store.find_latest_model_version(pid) is None
    rid = store.create_round(pid, "entropy")
    m1 = store.create_model_version(pid, round_id=rid, metrics={"f1": 0.5}, now=T0)
    m2 = store.create_model_version(
        pid, metrics={"f1": 0.7}, calibration={"method": "temperature", "t": 1.3},
        artifact_path="models/2.joblib",
    )  # fmt: skip
    v1 = store.get_model_version(m1)
    assert (v1.project_id, v1.round_id, v1.metrics, v1.created) == (pid, rid, {"f1": 0.5}, T0)
    assert [v.id for v in store.list_model_versions(pid)] == [m1, m2]
    latest = store.find_latest_model_version(pid)
    assert (latest.id, latest.calibration["t"]) == (m2, 1.3)
    assert latest.artifact_path == "models/2.joblib"


# --------------------------------------------------------------------------- dataset versions


def test_dataset_version_hash_and_snapshot(store):
    pid = _project(store)
    store.create_items(
        pid, [NewItem("b", {}, label="neg"), NewItem("a", {}, label="pos"), NewItem("c", {})]
    )
    did = store.create_dataset_version(pid, now=T0)
    v = store.get_dataset_version(did)
    # sorted pairs, canonical JSON labels: 'a\t"pos"\n' + 'b\t"neg"\n'
    expected = hashlib.sha256(b'a\t"pos"\nb\t"neg"\n').hexdigest()
    assert (v.content_hash, v.n_labels, v.created) == (expected, 2, T0)
    assert dataset_hash([("b", "neg"), ("a", "pos")]) == expected
    assert store.list_dataset_rows(did) == [("a", "pos"), ("b", "neg")]
    assert store.create_dataset_version(pid) == did  # same content, same version
    store.set_item_label(store.find_item(pid, "c").id, "pos")
    store.set_item_label(store.find_item(pid, "a").id, "neg")
    did2 = store.create_dataset_version(pid)
    assert did2 != did and store.get_dataset_version(did2).n_labels == 3
    assert store.list_dataset_rows(did) == [("a", "pos"), ("b", "neg")]  # immutable
    assert store.list_dataset_rows(did2) == [("a", "neg"), ("b", "neg"), ("c", "pos")]
    assert [x.id for x in store.list_dataset_versions(pid)] == [did, did2]


# --------------------------------------------------------------------------- jobs


def test_jobs_fifo_lease_and_finish(store):
    pid = _project(store)
    j1 = store.create_job("retrain", pid, {"round": 1}, now=T0)
    j2 = store.create_job("select", pid, now=T0)
    job = store.get_job(j1)
    assert (job.kind, job.project_id, job.status, job.payload, job.attempts) == (
        "retrain", pid, "queued", {"round": 1}, 0,
    )  # fmt: skip
    c1 = store.claim_next_job("w1", lease_seconds=30, now=T0)
    assert (c1.id, c1.status, c1.worker_id, c1.attempts) == (j1, "running", "w1", 1)
    assert c1.leased_until == T0 + timedelta(seconds=30)
    c2 = store.claim_next_job("w2", now=T0)
    assert c2.id == j2
    assert store.claim_next_job("w3", now=T0) is None
    with pytest.raises(LeaseError, match="not held by worker"):
        store.finish_job(j2, "w1")
    store.finish_job(j2, "w2", now=T0)
    assert store.get_job(j2).status == "done"
    # w1 died: its lease expires and another worker retries the job
    retry = store.claim_next_job("w3", now=T0 + timedelta(seconds=31))
    assert (retry.id, retry.worker_id, retry.attempts) == (j1, "w3", 2)
    store.finish_job(j1, "w3", error="boom")
    failed = store.get_job(j1)
    assert (failed.status, failed.error) == ("failed", "boom")
    assert [j.id for j in store.list_jobs(pid, status="done")] == [j2]
    assert [j.id for j in store.list_jobs()] == [j1, j2]


def test_retry_job_requeues_and_keeps_attempts(store):
    pid = _project(store)
    jid = store.create_job("retrain", pid, now=T0)
    store.claim_next_job("w1", now=T0)
    with pytest.raises(LeaseError, match="not held by worker"):
        store.retry_job(jid, "w2", error="x")
    store.retry_job(jid, "w1", error="ValueError: boom", now=T0)
    job = store.get_job(jid)
    assert (job.status, job.worker_id, job.leased_until, job.attempts, job.error) == (
        "queued", None, None, 1, "ValueError: boom",
    )  # fmt: skip
    again = store.claim_next_job("w2", now=T0)
    assert (again.id, again.attempts) == (jid, 2)
    store.finish_job(jid, "w2", now=T0)
    with pytest.raises(LeaseError):
        store.retry_job(jid, "w2", error="late")
    assert store.get_job(jid).status == "done"


def test_claim_job_by_kind(store):
    store.create_job("retrain")
    sel = store.create_job("select")
    assert store.claim_next_job("w", kinds=["select"]).id == sel
    assert store.claim_next_job("w", kinds=["select"]) is None


def test_ensure_job_creates_only_when_none_is_waiting(store):
    pid, other = _project(store, "a"), _project(store, "b")
    jid, created = store.ensure_job("retrain", pid, {"round_id": 1}, now=T0)
    assert created and store.get_job(jid).payload == {"round_id": 1}
    assert store.ensure_job("retrain", pid, {"round_id": 2}) == (jid, False)  # one is queued
    assert store.ensure_job("retrain", other)[1]  # per project
    assert store.ensure_job("select", pid)[1]  # per kind
    store.claim_next_job("w", kinds=["retrain"], now=T0)
    # by default only a queued job blocks: new labels after a retrain started need another
    again, created = store.ensure_job("retrain", pid, now=T0)
    assert created and again != jid
    assert store.ensure_job("retrain", pid, statuses=("queued", "running")) == (jid, False)
    with pytest.raises(LabelwiseError, match="status must be one of"):
        store.ensure_job("retrain", pid, statuses=("waiting",))
    with pytest.raises(NotFound, match="project 999"):
        store.ensure_job("retrain", 999)


def test_concurrent_ensure_job_creates_exactly_one(store):
    pid = _project(store)

    def work(i: int) -> list:
        return [store.ensure_job("retrain", pid, {"caller": i})]

    got = _hammer(20, work)
    created = [jid for jid, new in got if new]
    assert len(created) == 1
    assert {jid for jid, _ in got} == set(created)
    assert [j.id for j in store.list_jobs(pid)] == created


def test_renew_job_lease(store):
    pid = _project(store)
    jid = store.create_job("retrain", pid, now=T0)
    store.claim_next_job("w1", lease_seconds=30, now=T0)
    later = T0 + timedelta(seconds=25)
    job = store.renew_job_lease(jid, "w1", 30, now=later)
    assert (job.id, job.status, job.worker_id) == (jid, "running", "w1")
    assert job.leased_until == later + timedelta(seconds=30) == store.get_job(jid).leased_until
    # past the first lease, the job is still w1's: nobody can claim it
    assert store.claim_next_job("w2", now=T0 + timedelta(seconds=40)) is None
    with pytest.raises(LeaseError, match="not held by worker"):
        store.renew_job_lease(jid, "w2", 30, now=later)
    with pytest.raises(LabelwiseError, match="lease_seconds"):
        store.renew_job_lease(jid, "w1", 0, now=later)
    with pytest.raises(NotFound, match="job 999"):
        store.renew_job_lease(999, "w1", 30)
    store.finish_job(jid, "w1", now=later)
    with pytest.raises(LeaseError):  # done: nothing to renew
        store.renew_job_lease(jid, "w1", 30, now=later)


def test_job_bad_kind(store):
    with pytest.raises(LabelwiseError, match="kind must be one of"):
        store.create_job("train")


# --------------------------------------------------------------------------- concurrency


def _hammer(n_threads: int, work) -> list:
    barrier = threading.Barrier(n_threads)
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            got = work(i)
            with lock:
                results.extend(got)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    return results


def test_concurrent_claims_never_share_a_task(store):
    n_tasks, n_threads = 120, 50
    pid, _, tids = _queue(store, n_tasks)
    annotators = [store.create_annotator(f"a{i}") for i in range(n_threads)]

    def work(i: int) -> list[int]:
        got = []
        while (t := store.claim_next_task(pid, annotators[i])) is not None:
            assert t.lease_owner == annotators[i]
            got.append(t.id)
        return got

    claimed = _hammer(n_threads, work)
    assert len(claimed) == len(set(claimed)) == n_tasks
    assert sorted(claimed) == sorted(tids)
    assert store.queue_depth(pid) == 0


def test_concurrent_claims_by_one_annotator_stop_at_the_cap(store):
    # one token in many tabs: the count and the lease are one transaction per claim
    n_threads, cap = 16, 3
    pid, _, _ = _queue(store, 40)
    ann = store.create_annotator("a")

    def work(i: int) -> list[object]:
        try:
            return [store.claim_next_task(pid, ann, max_leases=cap).id]
        except LeaseLimitError as e:
            return [e]

    outcomes = _hammer(n_threads, work)
    leased = [o for o in outcomes if isinstance(o, int)]
    assert len(leased) == len(set(leased)) == cap
    assert sum(isinstance(o, LeaseLimitError) for o in outcomes) == n_threads - cap
    assert sorted(t.id for t in store.list_tasks(pid, status="leased", lease_owner=ann)) == sorted(
        leased
    )


def test_classes_change_and_an_answer_using_the_dropped_class_never_both_succeed(store):
    # the classes check and update are one transaction, and an answer's label check locks
    # the project row against it: one of the two is refused, whichever runs first
    ann = store.create_annotator("a")
    for trial in range(8):
        pid = _project(store, f"p{trial}")
        rid = store.create_round(pid, "entropy", now=T0)
        tid = store.create_tasks(rid, _items(store, pid, 1), now=T0)[0]
        store.claim_next_task(pid, ann, now=T0)

        def work(i: int, pid: int = pid, tid: int = tid) -> list[str]:
            try:
                if i == 0:
                    store.update_project(pid, classes=["neg"])
                else:
                    store.create_annotation(tid, ann, "pos", now=T0)
            except LabelwiseError:
                return []
            return ["classes" if i == 0 else "answer"]

        done = _hammer(2, work)
        assert len(done) == 1, (trial, done)
        classes = store.get_project(pid).classes
        assert classes == (("neg", "pos") if done == ["answer"] else ("neg",)), (trial, done)


def test_concurrent_job_claims_never_share_a_job(store):
    jobs = [store.create_job("retrain") for _ in range(40)]

    def work(i: int) -> list[int]:
        got = []
        while (j := store.claim_next_job(f"w{i}")) is not None:
            got.append(j.id)
        return got

    claimed = _hammer(20, work)
    assert sorted(claimed) == jobs


# --------------------------------------------------------------------------- data quality


def test_quality_settings_round_trip_and_bad_values(store):
    p = store.get_project(_project(store))
    assert (p.consensus_share, p.consensus_k, p.consensus_method) == (0.0, 3, "majority")
    assert (p.consensus_min_agreement, p.gold_rate, p.gold_min_accuracy) == (0.6, 0.0, 0.7)
    pid = _project(store, "q", consensus_share=0.2, consensus_k=5, consensus_method="dawid_skene")
    q = store.update_project(pid, gold_rate=0.1, consensus_min_agreement=0.8)
    assert (q.consensus_share, q.consensus_k, q.consensus_method) == (0.2, 5, "dawid_skene")
    assert (q.gold_rate, q.consensus_min_agreement) == (0.1, 0.8)
    bad = [
        {"consensus_share": 1.5},
        {"consensus_share": -0.1},
        {"consensus_k": 1},
        {"consensus_k": 21},
        {"consensus_k": 2.5},
        {"consensus_method": "vote"},
        {"gold_rate": 0.9},
        {"gold_min_accuracy": 2},
        {"consensus_colour": "red"},
    ]
    for kw in bad:
        with pytest.raises(LabelwiseError):
            _project(store, "bad", **kw)
        assert store.find_project("bad") is None
    for kw in bad[:-1]:
        with pytest.raises(LabelwiseError):
            store.update_project(pid, **kw)
    assert store.get_project(pid) == q  # nothing half-written


def test_consensus_copies_go_to_different_annotators(store):
    pid = _project(store)
    ids = _items(store, pid, 2)
    rid = store.create_round(pid, "margin", now=T0)
    tids = store.create_tasks(rid, ids, priorities=[2.0, 1.0], copies=[3, 1], now=T0)
    assert len(tids) == 4
    assert [store.get_item(i).consensus for i in ids] == [3, 1]
    assert len(store.list_tasks(pid, item_id=ids[0])) == 3
    a, b = store.create_annotator("a"), store.create_annotator("b")
    t1 = store.claim_next_task(pid, a, now=T0)
    assert t1.item_id == ids[0]
    t2 = store.claim_next_task(pid, a, now=T0)  # a holds one task of item 0: item 1 next
    assert t2.item_id == ids[1]
    assert store.claim_next_task(pid, a, now=T0) is None
    store.create_annotation(t1.id, a, "pos", now=T0)
    assert store.get_item(ids[0]).status == "queued"  # one answer does not resolve it
    assert store.claim_next_task(pid, a, now=T0) is None  # answered: never again
    tb = store.claim_next_task(pid, b, now=T0)
    assert tb.item_id == ids[0]
    store.skip_task(tb.id, b, now=T0)
    assert store.get_item(ids[0]).status == "queued"  # a skip does not end a consensus item
    assert store.claim_next_task(pid, b, now=T0) is None  # skipped: not served again
    store.create_annotation(t2.id, a, "neg", now=T0)
    assert store.get_item(ids[1]).label == "neg"
    with pytest.raises(LabelwiseError):
        store.create_tasks(rid, ids, copies=[0, 1])
    with pytest.raises(LabelwiseError):
        store.create_tasks(rid, ids, copies=[1])


def test_gold_items_are_served_but_never_resolved(store):
    pid = _project(store)
    store.create_items(
        pid,
        [NewItem("g1", {"text": "g"}, label="pos", gold=True), NewItem("u", {"text": "u"})],
    )
    g1, u = store.find_item(pid, "g1"), store.find_item(pid, "u")
    assert (g1.status, g1.label, g1.gold_label) == ("gold", None, "pos")
    with pytest.raises(LabelwiseError):
        store.create_items(pid, [NewItem("g2", {"text": "g"}, gold=True)])
    with pytest.raises(LabelMismatchError):
        store.mark_gold(u.id, "maybe")
    assert store.get_item(u.id).status == "unlabeled"
    a = store.create_annotator("a")
    assert store.lease_gold_task(pid, a, now=T0) is None  # no round yet
    rid = store.create_round(pid, "margin", now=T0)
    t = store.lease_gold_task(pid, a, now=T0)
    assert (t.item_id, t.status, t.lease_owner, t.round_id) == (g1.id, "leased", a, rid)
    assert store.lease_gold_task(pid, a, now=T0) is None  # holds it: not twice
    store.create_annotation(t.id, a, "neg", now=T0)
    g1 = store.get_item(g1.id)
    assert (g1.status, g1.label, g1.gold_label) == ("gold", None, "pos")
    assert store.list_labeled(pid) == []
    assert store.lease_gold_task(pid, a, now=T0) is None  # answered
    assert store.mark_gold(u.id, "neg").gold_label == "neg"
    t2 = store.lease_gold_task(pid, a, now=T0)
    assert t2.item_id == u.id
    store.create_round(pid, "margin", now=T0)
    queued = _items(store, pid, 1, "q")[0]
    store.create_tasks(store.list_rounds(pid)[-1].id, [queued])
    with pytest.raises(ReviewError):
        store.mark_gold(queued, "pos")


def test_review_queue_resolution_records_the_reviewer(store):
    pid = _project(store)
    store.create_items(
        pid, [NewItem("a", {"text": "a"}, label="pos"), NewItem("b", {"text": "b"}, label="neg")]
    )
    ia, ib = store.find_item(pid, "a").id, store.find_item(pid, "b").id
    rev = store.create_annotator("r", role="reviewer")
    with pytest.raises(ReviewError):
        store.resolve_review(ia, "pos", rev)
    assert store.send_to_review([ia, ib, ia], "label_issue") == 2
    assert store.send_to_review([ia], "disagreement") == 0  # already in review
    assert store.list_labeled(pid) == []
    assert store.count_items(pid, "review") == 2
    with pytest.raises(LabelwiseError):
        store.send_to_review([ia], "because")
    with pytest.raises(NotFound):
        store.send_to_review([10**6], "manual")
    with pytest.raises(LabelMismatchError):
        store.resolve_review(ia, "maybe", rev)
    assert store.get_item(ia).status == "review"
    got = store.resolve_review(ia, "pos", rev, now=T0)
    assert (got.status, got.label, got.review_outcome) == ("labeled", "pos", "confirmed")
    assert (got.resolved_by, got.resolved_at, got.review_reason) == (rev, T0, "label_issue")
    assert store.resolve_review(ib, "pos", rev).review_outcome == "corrected"
    with pytest.raises(ReviewError):
        store.resolve_review(ia, "neg", rev)
    assert store.get_item(ia).label == "pos"


def test_count_items_by_status_agrees_with_count_items(store):
    pid, other = _project(store, "p"), _project(store, "q")
    ids = _items(store, pid, 6)
    _items(store, other, 2)
    assert store.count_items_by_status(pid) == {"unlabeled": 6}
    store.set_item_label(ids[0], "pos")
    store.send_to_review(ids[1:3], "manual")
    rid = store.create_round(pid, "margin", now=T0)
    store.create_tasks(rid, ids[3:4], now=T0)
    got = store.count_items_by_status(pid)
    assert got == {"labeled": 1, "review": 2, "queued": 1, "unlabeled": 2}
    assert all(store.count_items(pid, s) == n for s, n in got.items())
    assert store.count_items_by_status(other) == {"unlabeled": 2}
    assert store.count_items_by_status(10**6) == {}


def test_count_review_items_by_reason_outcome_and_status(store):
    pid, other = _project(store, "p"), _project(store, "q")
    ids = _items(store, pid, 5)
    _items(store, other, 1)
    assert store.count_review_items(pid) == {}
    rid = store.create_round(pid, "margin", now=T0)
    store.create_tasks(rid, ids[:2], priorities=[2.0, 1.0], copies=[3, 3], now=T0)
    store.send_to_review(ids[2:5], "label_issue")
    store.send_to_review(ids[:1], "disagreement")
    rev = store.create_annotator("r", role="reviewer")
    store.resolve_review(ids[2], "pos", rev, now=T0)  # no label before: "corrected"
    assert store.count_review_items(pid) == {
        ("consensus", None, False): 2,
        ("disagreement", None, True): 1,
        ("label_issue", None, True): 2,
        ("label_issue", "corrected", False): 1,
    }
    assert store.count_review_items(other) == {}


def test_send_to_review_within_a_project_refuses_foreign_items_and_moves_nothing(store):
    pid, other = _project(store, "p"), _project(store, "q")
    mine, theirs = _items(store, pid, 2), _items(store, other, 1)
    with pytest.raises(NotFound):
        store.send_to_review([*mine, *theirs], "manual", project_id=pid)
    assert store.count_items(pid, "review") == 0 and store.count_items(other, "review") == 0
    assert store.send_to_review(mine, "manual", project_id=pid) == 2
    assert store.count_items(pid, "review") == 2


def test_add_members_is_all_or_nothing(store):
    a, b = _project(store, "a"), _project(store, "b")
    ann = store.create_annotator("ann")
    with pytest.raises(NotFound):
        store.add_members([a, b, 10**6], ann)
    assert not store.get_annotator(ann).projects
    store.add_members([b, a, b, a], ann)
    store.add_members([a], ann)  # idempotent
    assert sorted(store.get_annotator(ann).projects) == sorted([a, b])
    with pytest.raises(NotFound):
        store.add_members([a], 10**6)


def test_concurrent_consensus_claims_use_distinct_annotators(store):
    n_items, k, n_threads = 30, 3, 12
    pid = _project(store)
    ids = _items(store, pid, n_items)
    rid = store.create_round(pid, "margin", now=T0)
    store.create_tasks(rid, ids, copies=[k] * n_items)
    annotators = [store.create_annotator(f"a{i}") for i in range(n_threads)]

    def work(i: int) -> list[tuple[int, int]]:
        got = []
        while (t := store.claim_next_task(pid, annotators[i])) is not None:
            got.append((t.item_id, annotators[i]))
            store.create_annotation(t.id, annotators[i], "pos")
        return got

    pairs = _hammer(n_threads, work)
    assert len(pairs) == n_items * k
    assert len(set(pairs)) == len(pairs)  # nobody answered an item twice


__all__ = [  # the tests, for ``from labelwise.testing.store import *``
    "postgres_schema_store",
    "sqlite_store",
    *sorted(name for name in list(globals()) if name.startswith("test_")),
]
