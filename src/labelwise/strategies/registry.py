"""Strategies registered by name, so configuration, the CLI and the service can ask for them.

The built-in strategies register themselves when their modules are imported. Those modules are
imported on the first lookup (:func:`get_strategy`, :func:`list_strategies`, ...), not when
``labelwise`` or ``labelwise.strategies`` is imported, so that a script that only needs a score
function (or ``labelwise --help``) does not pay for every strategy and its dependencies.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from labelwise.errors import UnknownStrategyError

if TYPE_CHECKING:
    # At run time the base is imported where it is used: `labelwise --help` and the CLI's
    # import of this module then skip numpy/scipy.
    from labelwise.strategies.base import Strategy

__all__ = [
    "DEFAULT_STRATEGY",
    "StrategyInfo",
    "get_strategy",
    "list_strategies",
    "register",
    "strategy_names",
]

_REGISTRY: dict[str, type[Strategy]] = {}

# Every module that registers built-in strategies at import. Adding a strategy module means
# adding it here, or lookups will not see it until something else imports it.
BUILTIN_MODULES = (
    "labelwise.strategies.uncertainty",
    "labelwise.strategies.committee",
    "labelwise.strategies.model_change",
    "labelwise.strategies.diversity",
    "labelwise.strategies.cold_start",
    "labelwise.strategies.combine",
    "labelwise.strategies.typiclust",
    "labelwise.strategies.adaptive",
)

#: The strategy used when none is named (library ``Session``, CLI, service projects). Chosen
#: from ``benchmarks/label_efficiency.md`` ("The default"): it beats margin, which modAL and
#: scikit-activeml select identically, beyond noise on the multi-class sets and is margin itself
#: on binary ones. Stored projects keep the strategy they were created with.
DEFAULT_STRATEGY = "diverse_margin"

#: Where a built-in strategy measurably loses to random sampling (CI of the label ratio, or of
#: the paired learning-curve area, entirely below random's; benchmarks/label_efficiency.md and the
#: runs named here). ``labelwise strategies`` appends it to the description, so nobody picks a
#: strategy without seeing where it hurt. Update it from the benchmark, never by hand-waving.
MEASURED_LOSSES: dict[str, str] = {
    "entropy": (
        "behind random on digits and mnist5k (learning-curve area -0.013 [-0.021, -0.004] and "
        "-0.019 [-0.026, -0.012], paired, 10 seeds; labels to 95% 0.92x, a tie, on both)"
    ),
    "kcenter": (
        "loses to random on mnist5k (labels to 95%: 0.72x [0.63, 0.82], 10 seeds) and is "
        "behind it on credit_default (learning-curve area -0.006 [-0.011, -0.001])"
    ),
    "typiclust": (
        "loses to random on fine_food (labels to 95% 0.84x [0.77, 0.91], 10 seeds) and is "
        "behind it on tweets and credit_default (learning-curve area -0.008 [-0.017, -0.000], "
        "-0.011 [-0.022, -0.001])"
    ),
    "egl": (
        "loses to random on a 10-class image set (0.81x [0.68, 0.95], issue 13); ties it on "
        "digits (0.96x [0.87, 1.06], 10 seeds)"
    ),
    "information_density": (
        "loses to random on digits (labels to 95% 0.84x [0.76, 0.91], 10 seeds) and on three "
        "sets of issue 13's first run (0.69-0.73x)"
    ),
    "qbc_kl": "loses to random on digits (labels to 95% 0.48x [0.42, 0.53], 10 seeds)",
    "tfidf_diverse": (
        "behind random on digits (learning-curve area -0.012 [-0.020, -0.004], 10 seeds; "
        "labels to 95% 0.87x [0.78, 0.95]); meant for text"
    ),
    "cost_weighted": (
        "with equal costs, behind random on digits (learning-curve area -0.013 [-0.021, "
        "-0.004], 10 seeds)"
    ),
    "representative": (
        "a cold-start strategy; over a whole budget it loses to random on digits (labels to "
        "95% 0.54x [0.46, 0.66], 10 seeds)"
    ),
}

_builtins_loaded = False
_builtins_loading = False
# Re-entrant: the modules imported below call back into the registry (``register``, and lookups
# while they import); other threads wait, so none sees a half-filled registry.
_builtins_lock = threading.RLock()

S = TypeVar("S", bound="type[Strategy]")


def _load_builtins() -> None:
    """Import every built-in strategy module once, so that all of them are registered."""
    global _builtins_loaded, _builtins_loading
    if _builtins_loaded:
        return
    with _builtins_lock:
        if _builtins_loaded or _builtins_loading:  # done, or this thread is mid-import
            return
        _builtins_loading = True
        try:
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            _builtins_loaded = True
        finally:
            _builtins_loading = False


def register(cls: S) -> S:
    """Class decorator: register a strategy under ``cls.name``."""
    if cls.__module__ not in BUILTIN_MODULES:
        # A user's strategy is checked against every built-in name, as it was when the
        # built-ins were registered eagerly; built-ins register as their modules import.
        _load_builtins()
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
    _load_builtins()
    return sorted(_REGISTRY)


def list_strategies() -> list[StrategyInfo]:
    """Every registered strategy, sorted by name."""
    return [
        StrategyInfo(
            name=cls.name,
            description=_with_losses(cls.name, cls.description),
            task_types=tuple(sorted(t.value for t in cls.task_types)),
            needs=tuple(sorted(cls.needs)),
            cold_start=cls.cold_start,
        )
        for cls in (_REGISTRY[n] for n in strategy_names())
    ]


def _with_losses(name: str, description: str) -> str:
    loss = MEASURED_LOSSES.get(name)
    return description if loss is None else f"{description} Measured: {loss}."


def get_strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name``; raises :class:`UnknownStrategyError`."""
    _load_builtins()
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
    from labelwise.strategies.base import Strategy

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
