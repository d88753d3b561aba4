"""The adaptive strategy: the bandit's reward and choice by hand, and one selection everywhere.

Same seed, same selection: a continuous ``Session``, ``iter_simulate`` and a session rebuilt
every round with ``Session.from_state`` (what the service does) pick the same items and the same
arms. ``tests/service/test_one_loop.py`` runs the service itself over every strategy, this one
included.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from labelwise.errors import LabelwiseError
from labelwise.loop import Session
from labelwise.simulate import iter_simulate
from labelwise.strategies import Candidates, Strategy, get_strategy
from labelwise.strategies.adaptive import (
    balanced_true_proba,
    hedge_probabilities,
    replay_rewards,
)

SEED = 5


def test_balanced_true_proba_by_hand():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    # class 0: 0.9; class 1: (0.8 + 0.4) / 2 = 0.6 -> 0.75
    assert balanced_true_proba(proba, np.array([0, 1]), np.array([0, 1, 1])) == pytest.approx(0.75)
    # a class the model never saw gets probability 0
    assert balanced_true_proba(proba, np.array([0, 1]), np.array([0, 2, 2])) == pytest.approx(0.45)


def test_hedge_by_hand():
    np.testing.assert_allclose(hedge_probabilities(np.array([0.5, 0.5]), 10), [0.5, 0.5])
    e = math.e
    p = hedge_probabilities(np.array([0.6, 0.5]), 10, eta=1.0, min_prob=0.0)
    np.testing.assert_allclose(p, [e / (e + 1), 1 / (e + 1)])
    # the floor keeps every arm alive: (1 - 2 * 0.1) * [1, 0] + 0.1
    p = hedge_probabilities(np.array([1.0, 0.0]), 1000, eta=1.0, min_prob=0.1)
    np.testing.assert_allclose(p, [0.9, 0.1])


class _OneNN:
    """1-nearest-neighbour "model": all probability on the label of the nearest training row."""

    def fit(self, X, y):
        self.X_, self.y_ = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(self.y_)
        return self

    def predict_proba(self, X):
        d = np.abs(np.asarray(X, dtype=float)[:, :1] - self.X_[:, 0][None, :])
        near = self.y_[d.argmin(axis=1)]
        return (near[:, None] == self.classes_[None, :]).astype(float)


class _PickClass(Strategy):
    """Picks pseudo-pool rows whose feature says class ``c`` (feature 1 is the class)."""

    name = "pick_class"
    needs = frozenset()

    def __init__(self, c):
        self.c = c

    def _select(self, candidates, k, rng):
        rows = candidates.take(np.arange(candidates.n))
        order = np.argsort(rows[:, 1] != self.c, kind="stable")
        return order[:k], np.zeros(k)


def test_replay_rewards_the_arm_that_teaches_the_rare_class():
    # 1-D points: classes 0-2 of 12 rows each, then a rare class 3 of 4 rows. The 1-NN model
    # knows a class only from its training rows, so whenever a replay's base lacks class 3,
    # the arm that adds class-3 rows gets it right on the held-out rows and the other cannot;
    # on every other split both arms score the same. Its mean reward is therefore higher.
    pos = np.arange(40, dtype=float)
    y = np.minimum(pos // 12, 3).astype(int)
    X = np.c_[pos, y]
    cands = Candidates(
        X=X, model=_OneNN().fit(X, y), X_labeled=X, y_labeled=y, fit=lambda X, y: _OneNN().fit(X, y)
    )
    rewards, n_eval = replay_rewards(
        cands, [_PickClass(3), _PickClass(0)], 3, np.random.RandomState(0), n_replays=30
    )
    assert n_eval == 30 * 10  # 25% of 40 held out per replay
    assert rewards[0] > rewards[1]
    # and the choice follows the reward: no floor, so the better arm is the likelier
    p = hedge_probabilities(rewards, n_eval, eta=2.0, min_prob=0.0)
    assert p[0] > 0.5


def test_without_a_fit_hook_the_first_arm_selects():
    X, y = load_digits(return_X_y=True)
    X = X[:200] / 16
    model = LogisticRegression(max_iter=500).fit(X[:50], y[:50])
    cands = Candidates(X=X, model=model, row_idx=np.arange(50, 200), X_labeled=X[:50],
                       y_labeled=y[:50])  # fmt: skip
    q = get_strategy("adaptive").select(cands, 5, random_state=0)
    assert q.strategy == "adaptive" and q.arm == "margin"
    margin = get_strategy("margin").select(cands, 5, random_state=0)
    assert sorted(q.idx.tolist()) == sorted(margin.idx.tolist())


def _digits_candidates(n_labeled: int) -> Candidates:
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16
    fit = lambda X, y: LogisticRegression(max_iter=300).fit(X, y)  # noqa: E731
    return Candidates(X=X, model=fit(X[:n_labeled], y[:n_labeled]),
                      row_idx=np.arange(n_labeled, 400), X_labeled=X[:n_labeled],
                      y_labeled=y[:n_labeled], fit=fit)  # fmt: skip


def test_the_warm_start_arm_hands_over_after_five_labels_per_class():
    # 10 classes: typiclust may draw below 50 labels and never from 50 on; the floor of the
    # other arms stays, and their probabilities still sum to 1
    ada = get_strategy("adaptive")
    before = ada.arm_probabilities(_digits_candidates(40), 10, np.random.RandomState(0))
    after = ada.arm_probabilities(_digits_candidates(50), 10, np.random.RandomState(0))
    typiclust = list(ada.portfolio).index("typiclust")
    assert before[typiclust] >= 0.05 and after[typiclust] == 0.0
    assert after.sum() == pytest.approx(1.0) and (np.delete(after, typiclust) >= 0.05).all()
    # handover_per_class=None keeps every arm; a portfolio of warm-start arms only keeps them
    keep = get_strategy("adaptive", handover_per_class=None)
    assert (
        keep.arm_probabilities(_digits_candidates(50), 10, np.random.RandomState(0))[typiclust]
        >= 0.05
    )
    only = get_strategy("adaptive", portfolio=["typiclust"])
    assert only.arm_probabilities(
        _digits_candidates(50), 10, np.random.RandomState(0)
    ).tolist() == [1.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"portfolio": []},
        {"portfolio": "margin"},
        {"portfolio": ["margin", "margin"]},
        {"portfolio": ["adaptive"]},
        {"portfolio": ["qbc_kl"]},
        {"portfolio": ["no_such"]},
        {"n_replays": 0},
        {"holdout": 0.9},
        {"min_prob": 0.5},
        {"handover_per_class": 0},
        {"handover_per_class": True},
    ],
)
def test_bad_parameters_are_refused(bad):
    with pytest.raises(LabelwiseError):
        get_strategy("adaptive", **bad)


# ------------------------------------------------------------------ one selection everywhere


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    order = np.random.RandomState(3).permutation(y.shape[0])
    X = (X[order] / 16).astype(np.float32)
    return X[:300], y[:300], X[300:500], y[300:500]


INIT, BATCH, ROUNDS = 20, 10, 4


def _model():
    return LogisticRegression(max_iter=300)


def test_session_simulator_and_from_state_agree(digits):
    X, y, X_te, y_te = digits
    params = {"portfolio": ["margin", "typiclust", "random"]}
    s = Session(_model(), X, strategy="adaptive", strategy_params=params, random_state=SEED)
    q = s.query(INIT)
    s.teach(q, y[q.idx])
    cont, arms = [q.idx.tolist()], []
    resumed = []
    for _ in range(ROUNDS):
        # the service's way: a fresh session from the snapshot, labels in id order, same round
        order = np.sort(s.labeled_idx)
        r_s = Session.from_state(
            _model(), X, fitted_model=s.fitted_model_, labeled_idx=order, y_labeled=y[order],
            round=s.round, strategy="adaptive", strategy_params=params, random_state=SEED,
        )  # fmt: skip
        rq = r_s.query(BATCH)
        q = s.query(BATCH)
        resumed.append((rq.idx.tolist(), rq.arm))
        cont.append(q.idx.tolist())
        arms.append(q.arm)
        s.teach(q, y[q.idx])
    assert resumed == list(zip(cont[1:], arms, strict=True))
    assert [h.arm for h in s.history[1:]] == arms
    assert set(arms) <= {"margin", "typiclust", "random"} and all(arms)
    assert {h.strategy for h in s.history[1:]} == {"adaptive"}

    sim = [
        p.selected.tolist()
        for p in iter_simulate(
            (X, y, X_te, y_te), "adaptive", model=_model(), strategy_params=params,
            initial_size=INIT, batch_size=BATCH, n_rounds=ROUNDS, random_state=SEED,
        )
    ]  # fmt: skip
    assert sim == cont
