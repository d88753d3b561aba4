"""`import labelwise` stays cheap: public names resolve lazily, scikit-learn loads on first use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import labelwise
from labelwise._random import check_random_state

COUNT_SKLEARN = "import sys; print(sum(m.startswith('sklearn') for m in sys.modules))"


def _sklearn_modules_after(statement: str) -> int:
    # A fresh interpreter: this test process has imported scikit-learn long ago.
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}; {COUNT_SKLEARN}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    [
        "import labelwise, labelwise.strategies.scores",
        "from labelwise.strategies.scores import entropy",
        "import labelwise.cli",
        "from labelwise import Candidates, Query, Strategy, TaskType, top_k",
    ],
)
def test_import_loads_no_sklearn(statement):
    assert _sklearn_modules_after(statement) == 0


def test_every_public_name_resolves():
    for name in labelwise.__all__:
        assert getattr(labelwise, name) is not None, name
    from labelwise.strategies import Strategy, get_strategy

    assert isinstance(get_strategy("entropy"), Strategy)
    assert labelwise.Strategy is Strategy


def test_every_strategies_name_resolves():
    import labelwise.strategies as strategies

    for name in strategies.__all__:
        assert getattr(strategies, name) is not None, name


def test_dir_lists_public_names():
    import labelwise.strategies as strategies

    assert set(labelwise.__all__) <= set(dir(labelwise))
    assert set(strategies.__all__) <= set(dir(strategies))


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        labelwise.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        from labelwise import no_such_name  # noqa: F401


def _run(script: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip()


def test_registry_finds_builtins_without_importing_them_first():
    # A fresh interpreter imports only the registry, then asks it by name: the lookup itself must
    # import every strategy module (they register themselves at import). The reference imports
    # every module of labelwise.strategies by hand first.
    lookup = "from labelwise.strategies.registry import strategy_names; print(strategy_names())"
    eager = (
        "import importlib, pkgutil, labelwise.strategies as pkg;"
        "[importlib.import_module(f'labelwise.strategies.{m.name}')"
        " for m in pkgutil.iter_modules(pkg.__path__)];"
    )
    names = _run(lookup)
    assert names == _run(eager + lookup)
    for name in ("entropy", "kcenter", "badge", "qbc_vote_entropy", "representative"):
        assert repr(name) in names
    by_name = "from labelwise.strategies.registry import get_strategy; print(get_strategy('badge'))"
    assert _run(by_name).startswith("BADGE")


# ----------------------------------------------------------------------------- check_random_state


def test_check_random_state_matches_sklearn():
    from sklearn.utils import check_random_state as sk_check

    assert check_random_state(None) is sk_check(None) is np.random.mtrand._rand
    assert check_random_state(np.random) is np.random.mtrand._rand
    rs = np.random.RandomState(3)
    assert check_random_state(rs) is rs
    for seed in (0, 7, np.int64(7)):
        ours, theirs = check_random_state(seed), sk_check(seed)
        assert np.array_equal(ours.random_sample(5), theirs.random_sample(5))
    with pytest.raises(ValueError, match="cannot be used to seed"):
        check_random_state(1.5)
    with pytest.raises(ValueError, match="cannot be used to seed"):
        check_random_state("0")


def test_check_random_state_shares_a_generators_stream():
    # Draws through the RandomState advance the Generator: one stream, not a reseed.
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    rs = check_random_state(a)
    assert isinstance(rs, np.random.RandomState)
    first = rs.random_sample(3)
    assert np.array_equal(first, b.random(3))
    assert np.array_equal(a.random(2), b.random(2))


def test_top_k_accepts_a_generator():
    scores = np.array([0.1, 0.9, 0.9, 0.3])
    idx = labelwise.top_k(scores, 2, random_state=np.random.default_rng(0))
    assert sorted(idx.tolist()) == [1, 2]
