"""Selection strategies: pure score functions plus small parameter classes, registered by name.

The names below are imported on first use (PEP 562), so ``from labelwise.strategies.scores
import entropy`` loads the score functions and nothing else. The registry imports every
built-in strategy module on its first lookup (:func:`get_strategy`, :func:`list_strategies`,
:func:`strategy_names`), so each of them is found by name without being imported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelwise.strategies.base import (
        DEFAULT_CHUNK_SIZE,
        Candidates,
        Query,
        ScoreStrategy,
        Strategy,
    )
    from labelwise.strategies.committee import Committee
    from labelwise.strategies.registry import (
        DEFAULT_STRATEGY,
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

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    "DEFAULT_CHUNK_SIZE": "labelwise.strategies.base",
    "Candidates": "labelwise.strategies.base",
    "Query": "labelwise.strategies.base",
    "ScoreStrategy": "labelwise.strategies.base",
    "Strategy": "labelwise.strategies.base",
    "Committee": "labelwise.strategies.committee",
    "DEFAULT_STRATEGY": "labelwise.strategies.registry",
    "StrategyInfo": "labelwise.strategies.registry",
    "get_strategy": "labelwise.strategies.registry",
    "get_strategy_class": "labelwise.strategies.registry",
    "list_strategies": "labelwise.strategies.registry",
    "register": "labelwise.strategies.registry",
    "strategy_names": "labelwise.strategies.registry",
    "EntropySampling": "labelwise.strategies.uncertainty",
    "LeastConfidence": "labelwise.strategies.uncertainty",
    "MarginSampling": "labelwise.strategies.uncertainty",
    "RandomSampling": "labelwise.strategies.uncertainty",
}

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_STRATEGY",
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


def __getattr__(name: str) -> Any:
    # Only public names resolve here; anything else raises AttributeError, which is also how
    # `from labelwise.strategies import cold_start` falls through to importing the submodule.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
