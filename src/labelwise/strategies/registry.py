"""Strategies registered by name, so configuration, the CLI and the service can ask for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from labelwise.errors import UnknownStrategyError
from labelwise.strategies.base import Strategy

__all__ = ["StrategyInfo", "get_strategy", "list_strategies", "register", "strategy_names"]

_REGISTRY: dict[str, type[Strategy]] = {}

S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Class decorator: register a strategy under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty `name` to be registered")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"strategy name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True)
class StrategyInfo:
    """What ``labelwise strategies`` shows for one strategy."""

    name: str
    description: str
    task_types: tuple[str, ...]
    needs: tuple[str, ...]
    cold_start: bool


def strategy_names() -> list[str]:
    """Sorted names of every registered strategy."""
    return sorted(_REGISTRY)


def list_strategies() -> list[StrategyInfo]:
    """Every registered strategy, sorted by name."""
    return [
        StrategyInfo(
            name=cls.name,
            description=cls.description,
            task_types=tuple(sorted(t.value for t in cls.task_types)),
            needs=tuple(sorted(cls.needs)),
            cold_start=cls.cold_start,
        )
        for cls in (_REGISTRY[n] for n in strategy_names())
    ]


def get_strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name``; raises :class:`UnknownStrategyError`."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; valid strategies: {', '.join(strategy_names())}"
        ) from None


def get_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """Build the strategy registered under ``name`` with ``params``.

    A :class:`Strategy` instance is returned as it is (``params`` must then be empty).

    Raises
    ------
    UnknownStrategyError
        If no strategy has that name; the message lists the valid ones.
    """
    if isinstance(name, Strategy):
        if params:
            raise TypeError("parameters cannot be given with a Strategy instance")
        return name
    cls = get_strategy_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        from labelwise.errors import LabelwiseError

        raise LabelwiseError(f"bad parameters for strategy {name!r}: {exc}") from None
