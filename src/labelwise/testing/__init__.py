"""Contract test suites shipped with labelwise (strategies, stores).

``labelwise.testing`` lets any strategy, built-in or third-party, be checked against the
strategy contract, the way scikit-learn ships ``parametrize_with_checks``::

    from labelwise.testing import run_check, strategy_checks

    @strategy_checks()
    def test_strategy_contract(strategy_name, check_name):
        run_check(strategy_name, check_name)
"""

from labelwise.testing.strategies import (
    ProbaModel,
    candidates_from_proba,
    check_strategy,
    iter_checks,
    make_candidates,
    run_check,
    strategy_check_names,
    strategy_checks,
)

__all__ = [
    "ProbaModel",
    "candidates_from_proba",
    "check_strategy",
    "iter_checks",
    "make_candidates",
    "run_check",
    "strategy_check_names",
    "strategy_checks",
]
