"""The service runs the library's loop: parity with ``Session`` and the features it brings.

- Parity: for the same seed, the service's rounds (in-memory store, no audit sample, no
  calibration), ``iter_simulate`` and a hand-written ``Session`` loop select exactly the same
  items, round after round, for every strategy the service offers.
- What used to break in the service: committee strategies over HTTP, stabilizing-predictions and
  PR-AUC stopping rules, a keyword-stratified cold start, a pre-trained model as the start.
"""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from labelwise.errors import LabelwiseError
from labelwise.loop import Session
from labelwise.service.app import create_app
from labelwise.service.rounds import audit_mask, import_model, start_round
from labelwise.service.worker import Worker
from labelwise.settings import Settings
from labelwise.simulate import iter_simulate
from labelwise.storage import InMemoryStore, NewItem
from labelwise.strategies import list_strategies

from .conftest import label_all

SEED = 7
N_PARITY = 240
BATCH = 10
ROUNDS = 4


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # tiny fits: BLAS threads only add contention on 2 cores, and results stay bit-identical
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits_pool():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(1).permutation(y.shape[0])[:N_PARITY]
    return (X[order] / 16.0).astype(np.float32), y[order].astype(str)


@pytest.fixture(scope="module")
def digits_test():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(1).permutation(y.shape[0])[N_PARITY : N_PARITY + 200]
    return (X[order] / 16.0).astype(np.float32), y[order].astype(str)


def _npy_project(store, tmp_path, X, y, classes, **kw):
    path = tmp_path / "pool.npy"
    np.save(path, X)
    pid = store.create_project("pool", "multiclass", classes, **kw)
    store.create_items(
        pid,
        [
            NewItem(external_id=f"r{i:05d}", payload={}, metadata={"source": "pool"},
                    features_path=str(path), features_row=i)
            for i in range(X.shape[0])
        ],
    )  # fmt: skip
    ids = np.array([it.id for it in store.list_items(pid)], dtype=np.int64)
    truth = {int(i): y[k] for k, i in enumerate(ids)}
    return pid, ids, truth


def test_parity_depends_on_the_seed(digits_pool):
    """The parity above is not vacuous: another seed selects other items."""
    X, y = digits_pool
    picks = []
    for seed in (SEED, SEED + 1):
        s = Session(LogisticRegression(max_iter=1000), X, strategy="margin", random_state=seed)
        s.teach(q := s.query(BATCH), y[q.idx])
        picks.append(set(s.query(BATCH).idx.tolist()))
    assert picks[0] != picks[1]


def _service_strategies() -> list[str]:
    # every registered strategy a project can choose, except 'stratified', which needs metadata
    # columns the hand-written loop below does not build (its service test is further down)
    return [s.name for s in list_strategies() if s.name != "stratified"]


@pytest.mark.parametrize("strategy", _service_strategies())
def test_service_simulator_and_session_select_the_same_items(
    strategy, digits_pool, digits_test, tmp_path
):
    X, y = digits_pool
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    params = {"calibration": "none", "random_state": SEED}
    pid, ids, truth = _npy_project(
        store, tmp_path, X, y, [str(c) for c in range(10)], strategy=strategy,
        cold_start_strategy="random", batch_size=BATCH, strategy_params=params,
    )  # fmt: skip
    ann = store.create_annotator("a")
    store.add_member(pid, ann)

    service_rounds = []
    start_round(store, pid, settings=settings)
    for _ in range(ROUNDS):
        rnd = store.list_rounds(pid)[-1]
        service_rounds.append(sorted(t.item_id for t in store.list_tasks(pid, round_id=rnd.id)))
        label_all(store, pid, [ann], truth, settings)
        Worker(store, settings).run_once()  # retrain, then the next round

    session = Session(LogisticRegression(max_iter=1000), X, strategy=strategy, random_state=SEED)
    session_rounds = []
    for _ in range(ROUNDS):
        q = session.query(BATCH)
        session_rounds.append(sorted(ids[q.idx].tolist()))
        session.teach(q, y[q.idx])

    simulated = [
        sorted(ids[p.selected].tolist())
        for p in iter_simulate(
            (X, y, *digits_test), strategy, initial_size=BATCH, batch_size=BATCH,
            n_rounds=ROUNDS - 1, random_state=SEED,
        )
    ]  # fmt: skip

    assert [len(set(r)) for r in service_rounds] == [BATCH] * ROUNDS
    assert len(set().union(*map(set, service_rounds))) == BATCH * ROUNDS  # never picked twice
    assert service_rounds == session_rounds
    assert simulated == session_rounds
    strategies = [r.strategy for r in store.list_rounds(pid)]
    # the adaptive strategy's rounds carry the arm it chose: "adaptive:<arm>"
    assert strategies[0] == "random" and {s.split(":")[0] for s in strategies[1:]} == {strategy}


# --------------------------------------------------------------------------- over HTTP

ADMIN = "admin-token-one-loop"


def _client(store, tmp_path, **settings_kw):
    settings = Settings(
        worker="external", data_dir=tmp_path / "data", lease_seconds=60, **settings_kw
    )
    client = TestClient(create_app(settings, store, admin_token=ADMIN))
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client, settings


def _label_round_over_http(client, pid, token, truth_by_ext) -> int:
    n = 0
    while True:
        r = client.post(
            f"/api/projects/{pid}/tasks/next", headers={"Authorization": f"Bearer {token}"}
        )
        if r.status_code == 204:
            return n
        assert r.status_code == 200, r.text
        claimed = r.json()
        r = client.post(
            f"/api/tasks/{claimed['task']['id']}/annotations",
            json={"label": truth_by_ext[claimed["item"]["external_id"]]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        n += 1


def _digits_payload_items(n=150):
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(3).permutation(y.shape[0])[:n]
    items = [
        {"external_id": f"d{i}", "payload": {f"px{j}": float(v) for j, v in enumerate(X[i])}}
        for i in order
    ]
    return items, {f"d{i}": str(y[i]) for i in order}


@pytest.mark.parametrize("strategy", ["qbc_vote_entropy", "qbc_kl"])
def test_committee_project_retrains_and_reselects_over_http(strategy, tmp_path):
    store = InMemoryStore()
    client, settings = _client(store, tmp_path, random_fraction=0.1)
    with client:
        r = client.post(
            "/api/projects",
            json={"name": "qbc", "classes": [str(d) for d in range(10)], "batch_size": 20,
                  "strategy": strategy, "strategy_params": {"committee_size": 3}},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        items, truth = _digits_payload_items()
        assert (
            client.post(f"/api/projects/{pid}/items:import", json={"items": items}).status_code
            == 201
        )
        r = client.post("/api/annotators", json={"name": "ann", "projects": [pid]})
        token = r.json()["token"]
        assert client.post(f"/api/projects/{pid}/rounds").status_code == 201
        for _ in range(2):
            assert _label_round_over_http(client, pid, token, truth) == 20
            job = Worker(store, settings).run_once()
            assert (job.status, job.error) == ("done", None)
        rounds = client.get(f"/api/projects/{pid}/rounds").json()
        assert [r["strategy"] for r in rounds] == ["random", strategy, strategy]
        versions = client.get(f"/api/projects/{pid}/model-versions").json()
        assert len(versions) == 2 and versions[-1]["metrics"]["n_labels"] == 40


def test_unrecorded_stopping_metric_is_refused_at_creation(tmp_path):
    client, _ = _client(InMemoryStore(), tmp_path)
    with client:
        body = {"name": "p", "classes": ["a", "b", "c"],
                "stopping": {"target": {"target": 0.8, "metric": "pr_auc"}}}  # fmt: skip
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "two-class" in r.text
        body["stopping"] = {"plateau": {"metric": "f2"}}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "'f2'" in r.text
        body["strategy_params"] = {"calibration": "platt"}
        body["stopping"] = {}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "calibration" in r.text


# --------------------------------------------------------------------------- stopping


def _cancer_project(store, tmp_path, stopping, batch_size=40):
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    labels = np.where(y == 1, "benign", "malignant")
    path = tmp_path / "cancer.npy"
    np.save(path, X)
    pid = store.create_project(
        "cancer", "binary", ["benign", "malignant"], strategy="margin",
        cold_start_strategy="random", batch_size=batch_size, stopping=stopping,
    )  # fmt: skip
    n_val = 150
    store.create_items(
        pid,
        [
            NewItem(external_id=f"c{i}", payload={}, features_path=str(path), features_row=i,
                    metadata={"split": "validation"} if i < n_val else {},
                    label=labels[i] if i < n_val else None)
            for i in range(X.shape[0])
        ],
    )  # fmt: skip
    truth = {it.id: labels[int(it.external_id[1:])] for it in store.list_items(pid)}
    ann = store.create_annotator("a")
    store.add_member(pid, ann)
    return pid, truth, ann


def _run_until_stop(store, pid, truth, ann, settings, max_rounds=8):
    start_round(store, pid, settings=settings)
    for _ in range(max_rounds):
        label_all(store, pid, [ann], truth, settings)
        Worker(store, settings).run_once()
        mv = store.find_latest_model_version(pid)
        if mv is not None and mv.metrics.get("stop"):
            return mv
    return store.find_latest_model_version(pid)


def test_pr_auc_target_stops_a_binary_project(tmp_path):
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.1)
    rule = {"target": {"target": 0.9, "metric": "pr_auc"}}
    pid, truth, ann = _cancer_project(store, tmp_path, rule)
    mv = _run_until_stop(store, pid, truth, ann, settings)
    assert mv.metrics["stop"] is True and "pr_auc" in mv.metrics["stop_reason"]
    assert mv.metrics["pr_auc"] >= 0.9
    assert start_round(store, pid, settings=settings) is None  # stopped: no new round


def test_stabilizing_predictions_stop_a_project(tmp_path):
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    rule = {"stabilizing_predictions": {"kappa": 0.9, "window": 2}}
    pid, truth, ann = _cancer_project(store, tmp_path, rule, batch_size=30)
    mv = _run_until_stop(store, pid, truth, ann, settings, max_rounds=10)
    versions = store.list_model_versions(pid)
    assert mv.metrics["stop"] is True, [v.metrics["stop_reason"] for v in versions]
    assert "stabilizing predictions" in mv.metrics["stop_reason"]
    assert len(versions) >= 3  # window 2 needs three successive models


# --------------------------------------------------------------------------- cold start


def test_keyword_stratified_cold_start(tmp_path):
    """The first batch covers every keyword stratum, though one keyword is rare in the pool."""
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    params = {"keywords": ["refund"], "cold_start_params": {"by": ["keyword:refund"]}}
    pid = store.create_project(
        "tickets", "multiclass", ["billing", "tech"], strategy="margin",
        cold_start_strategy="stratified", batch_size=4, strategy_params=params,
    )  # fmt: skip
    texts = [f"my screen flickers after update {i}" for i in range(96)]
    texts += [f"I want a refund for order {i}" for i in range(4)]
    store.create_items(
        pid, [NewItem(external_id=f"t{i}", payload={"text": t}) for i, t in enumerate(texts)]
    )
    rnd = start_round(store, pid, settings=settings)
    assert rnd.strategy == "stratified"
    picked = [store.get_item(t.item_id).payload["text"] for t in store.list_tasks(pid)]
    # 4% of the pool mentions a refund; random sampling would miss it in 85% of 4-item batches
    assert sum("refund" in t for t in picked) >= 1


def test_unknown_stratum_key_is_refused_or_explained(tmp_path):
    client, _ = _client(InMemoryStore(), tmp_path)
    with client:
        body = {"name": "p", "classes": ["a", "b"], "cold_start_strategy": "stratified",
                "strategy_params": {"cold_start_params": {"by": 3}}}  # fmt: skip
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "by" in r.text


# --------------------------------------------------------------------------- pre-trained start


def test_pretrained_model_guides_the_first_round(digits_pool, tmp_path):
    X, y = digits_pool
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    pid, ids, _ = _npy_project(
        store, tmp_path, X, y, [str(c) for c in range(10)], strategy="margin", batch_size=10,
    )  # fmt: skip
    # a model trained elsewhere (other digits than the pool's)
    X_all, y_all = load_digits(return_X_y=True)
    other = np.random.RandomState(9).permutation(y_all.shape[0])[-300:]
    model = LogisticRegression(max_iter=1000).fit(X_all[other] / 16.0, y_all[other].astype(str))
    path = tmp_path / "pretrained.joblib"
    joblib.dump(model, path)
    import_model(store, pid, path, settings=settings)
    rnd = start_round(store, pid, settings=settings)
    assert rnd.strategy == "margin"  # not the cold start: the pre-trained model selects
    tasks = store.list_tasks(pid, round_id=rnd.id)
    assert all(t.confidence is not None for t in tasks)
    # the same picks as a Session resumed from that model
    session = Session.from_state(
        LogisticRegression(max_iter=1000), X, fitted_model=model, strategy="margin",
        classes=np.array([str(c) for c in range(10)], dtype=object), random_state=pid,
    )  # fmt: skip
    assert sorted(t.item_id for t in tasks) == sorted(ids[session.query(10).idx].tolist())


def test_pretrained_model_that_does_not_fit_the_project_stores_nothing(digits_pool, tmp_path):
    X, y = digits_pool
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    pid, _, _ = _npy_project(store, tmp_path, X, y, [str(c) for c in range(10)])
    narrow = LogisticRegression().fit(X[:, :5], y)
    joblib.dump(narrow, tmp_path / "narrow.joblib")
    with pytest.raises(LabelwiseError, match="cannot score this project"):
        import_model(store, pid, tmp_path / "narrow.joblib", settings=settings)
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(LabelwiseError, match="cannot load"):
        import_model(store, pid, tmp_path / "junk.joblib", settings=settings)
    assert store.list_model_versions(pid) == []


def test_per_project_random_share(digits_pool, tmp_path):
    """strategy_params.random_fraction overrides the server's audit share for one project."""
    X, y = digits_pool
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.1)
    pid, _, _ = _npy_project(
        store, tmp_path, X, y, [str(c) for c in range(10)], batch_size=20,
        strategy_params={"random_fraction": 0.5},
    )  # fmt: skip
    rnd = start_round(store, pid, settings=settings)
    picked = [t.item_id for t in store.list_tasks(pid, round_id=rnd.id)]
    assert audit_mask(picked, 0.5).sum() == 10  # half the batch from the audit sample
    client, _ = _client(InMemoryStore(), tmp_path)
    with client:
        body = {"name": "p", "classes": ["a", "b"], "strategy_params": {"random_fraction": 0.9}}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "random_fraction" in r.text


def test_a_metric_missing_this_round_does_not_let_an_old_value_stop(tmp_path):
    from types import SimpleNamespace

    from labelwise.service.rounds import _stop_decision

    project = SimpleNamespace(stopping={"target": {"target": 0.9, "metric": "pr_auc"}})
    previous = [SimpleNamespace(metrics={"accuracy": 0.8, "pr_auc": 0.93})]
    now = {"accuracy": 0.81, "pr_auc": None, "n_labels": 60}
    decision = _stop_decision(project, previous, now)
    assert decision.stop is False
    assert _stop_decision(project, previous, {**now, "pr_auc": 0.95}).stop is True


def test_import_model_refuses_int_classes_for_string_classes(digits_pool, tmp_path):
    X, y = digits_pool
    store = InMemoryStore()
    settings = Settings(data_dir=tmp_path / "data", random_fraction=0.0)
    pid, _, _ = _npy_project(store, tmp_path, X, y, [str(c) for c in range(10)])
    model = LogisticRegression(max_iter=300).fit(X, y.astype(int))  # classes 0..9 as ints
    joblib.dump(model, tmp_path / "ints.joblib")
    with pytest.raises(LabelwiseError, match="as strings"):
        import_model(store, pid, tmp_path / "ints.joblib", settings=settings)
    assert store.list_model_versions(pid) == []


def test_a_round_left_empty_by_a_crash_is_refilled_with_the_same_selection(digits_pool, tmp_path):
    """A worker killed between create_round and create_tasks: the rerun fills that round, and
    every later round selects what it would have without the crash (same round numbers)."""
    X, y = digits_pool
    runs = []
    for crash in (False, True):
        store = InMemoryStore()
        settings = Settings(data_dir=tmp_path / f"d{crash}", random_fraction=0.0)
        pid, _, truth = _npy_project(
            store, tmp_path, X, y, [str(c) for c in range(10)], batch_size=BATCH,
            strategy_params={"calibration": "none", "random_state": SEED},
        )  # fmt: skip
        ann = store.create_annotator("a")
        store.add_member(pid, ann)
        start_round(store, pid, settings=settings)
        label_all(store, pid, [ann], truth, settings)
        if crash:
            store.create_round(pid, "margin")  # the crash left an empty round behind
        Worker(store, settings).run_once()
        label_all(store, pid, [ann], truth, settings)
        Worker(store, settings).run_once()
        rounds = store.list_rounds(pid)
        runs.append(
            [sorted(t.item_id for t in store.list_tasks(pid, round_id=r.id)) for r in rounds]
        )
    assert len(runs[1]) == len(runs[0]) == 3 and all(len(r) == BATCH for r in runs[1])
    assert runs[1] == runs[0]


def test_positive_class_is_a_loop_setting_checked_at_creation(tmp_path):
    client, _ = _client(InMemoryStore(), tmp_path)
    with client:
        body = {"name": "loans", "classes": ["bad", "good"], "task_type": "binary",
                "strategy_params": {"positive_class": "bad"},
                "stopping": {"target": {"target": 0.5, "metric": "pr_auc"}}}  # fmt: skip
        assert client.post("/api/projects", json=body).status_code == 201
        body |= {"name": "loans2", "strategy_params": {"positive_class": "ugly"}}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 422 and "positive_class" in r.text
