"""One loop: the simulator drives ``loop.Session``, so both select the same items.

For the same integer seed, :func:`labelwise.simulate.iter_simulate` and a hand-written
``Session`` loop (query, teach with the true labels, query, ...) must pick the same pool positions
round after round, for every registered strategy. If they drift, the label-efficiency numbers
measure a loop that the library (and the service, which also drives a Session) does not run.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from labelwise.loop import Session
from labelwise.simulate import NoiseModel, SimulationData, iter_simulate
from labelwise.strategies import list_strategies

SEED = 11
INITIAL, BATCH, ROUNDS = 20, 10, 3
# every registered strategy: all need at most a model, a committee, the labelled set or
# metadata, which the simulator gives (metadata through SimulationData). None is excluded.
STRATEGIES = [info.name for info in list_strategies()]


@pytest.fixture(scope="module")
def data() -> SimulationData:
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        (X / 16).astype(np.float64), y, train_size=300, test_size=200, stratify=y, random_state=0
    )
    # a categorical column for the metadata strategies (stratified), one entry per pool row
    group = np.arange(300) % 3
    return SimulationData(
        X_tr, y_tr, X_te, y_te, np.unique(y), metadata={"group": group}, name="digits300"
    )


def _model() -> LogisticRegression:
    return LogisticRegression(max_iter=200)


def _simulated(data: SimulationData, strategy: str, **kw) -> list[np.ndarray]:
    points = iter_simulate(
        data,
        strategy,
        model=_model(),
        initial_size=INITIAL,
        batch_size=BATCH,
        n_rounds=ROUNDS,
        random_state=SEED,
        **kw,
    )
    return [p.selected for p in points]


def _by_hand(data: SimulationData, strategy: str, **kw) -> list[np.ndarray]:
    s = Session(
        _model(), data.X_train, strategy=strategy, metadata=data.metadata, random_state=SEED, **kw
    )
    q = s.query(INITIAL)
    s.teach(q, data.y_train[q.idx])
    picks = [q.idx]
    for _ in range(ROUNDS):
        q = s.query(BATCH)
        s.teach(q, data.y_train[q.idx])
        picks.append(q.idx)
    return picks


def test_every_strategy_is_covered():
    assert {"qbc_vote_entropy", "qbc_kl", "egl", "badge", "margin"} <= set(STRATEGIES)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_simulator_and_session_select_the_same_items(data, strategy):
    sim, hand = _simulated(data, strategy), _by_hand(data, strategy)
    assert len(sim) == len(hand) == ROUNDS + 1
    for r, (a, b) in enumerate(zip(sim, hand, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{strategy}: round {r} differs")


def test_latency_selects_with_the_previous_model(data):
    sim = _simulated(data, "margin", latency_rounds=1)
    hand = _by_hand(data, "margin", model_lag=1)
    for r, (a, b) in enumerate(zip(sim, hand, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"round {r} differs")
    fresh = _simulated(data, "margin")
    # round 1 is selected by the round-0 model either way; later a stale model picks otherwise
    np.testing.assert_array_equal(sim[1], fresh[1])
    assert any(not np.array_equal(a, b) for a, b in zip(sim[2:], fresh[2:], strict=True))


def test_the_oracle_never_draws_from_the_sessions_generator(data):
    # noise changes the labels (so later models), not the cold-start draw of round 0
    clean = _simulated(data, "margin")
    noisy = _simulated(data, "margin", noise=NoiseModel(flip_rate=0.5))
    np.testing.assert_array_equal(clean[0], noisy[0])
