"""Selection strategies: pure score functions plus small parameter classes, registered by name.

Importing this package registers every built-in strategy.
"""

from labelwise.strategies import (  # noqa: F401  (imported to register)
    cold_start,
    combine,
    committee,
    diversity,
    model_change,
    uncertainty,
)
from labelwise.strategies.base import DEFAULT_CHUNK_SIZE, Candidates, Query, ScoreStrategy, Strategy
from labelwise.strategies.committee import Committee
from labelwise.strategies.registry import (
    StrategyInfo,
    get_strategy,
    get_strategy_class,
    list_strategies,
    register,
    strategy_names,
)
from labelwise.strategies.uncertainty import (
    EntropySampling,
    LeastConfidence,
    MarginSampling,
    RandomSampling,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Candidates",
    "Committee",
    "EntropySampling",
    "LeastConfidence",
    "MarginSampling",
    "Query",
    "RandomSampling",
    "ScoreStrategy",
    "Strategy",
    "StrategyInfo",
    "get_strategy",
    "get_strategy_class",
    "list_strategies",
    "register",
    "strategy_names",
]
