"""Resolve a ``random_state`` argument into a ``numpy.random.RandomState`` (numpy only).

The pure band needs the same resolution scikit-learn's ``check_random_state`` does, but
importing ``sklearn.utils`` for it loads a few hundred modules, paid by every CLI call and worker
start. This is the same function on numpy alone: for ``None``, ints and ``RandomState`` it returns
exactly what scikit-learn returns (same object or same seed, hence the same draws), so seeded
results do not change. It also takes a ``numpy.random.Generator``, which the docstrings of
``top_k``, ``Strategy.select`` and ``Session`` promise and scikit-learn rejects.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_random_state"]


def check_random_state(seed: object) -> np.random.RandomState:
    """Turn ``seed`` into a ``numpy.random.RandomState``.

    Parameters
    ----------
    seed : None, int, numpy.random.RandomState or numpy.random.Generator
        - ``None`` (or the ``numpy.random`` module): numpy's global ``RandomState`` singleton.
        - an int: a new ``RandomState(seed)``.
        - a ``RandomState``: returned as it is.
        - a ``Generator``: a ``RandomState`` over the generator's own bit generator, so draws
          advance the generator's state as if it had drawn them itself.

    Returns
    -------
    numpy.random.RandomState

    Raises
    ------
    ValueError
        For anything else (a float, a string, ...), with scikit-learn's message.
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, np.random.Generator):
        # Sharing the bit generator (rather than seeding from it) keeps one stream: the caller's
        # Generator moves on by exactly the draws made here.
        return np.random.RandomState(seed.bit_generator)
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")
