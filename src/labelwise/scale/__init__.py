"""Scale: pools of millions on one machine, and on a Ray cluster.

- :func:`open_pool` / :class:`PoolCandidates`: a memory-mapped ``.npy`` pool scanned chunk by
  chunk with resident memory bounded by one chunk.
- :func:`select_blocks`: a strategy run as independent per-chunk steps plus one merge
  (:mod:`labelwise.scale.blocks`); :func:`select_distributed` runs those steps as Ray Data
  ``map_batches`` (:mod:`labelwise.scale.ray_backend`); :class:`RaySelector` plugs it into a
  :class:`~labelwise.loop.Session` (the service's rounds). Both select exactly what
  ``Strategy.select`` selects for the same seed.
- :func:`select_from_files`: what ``labelwise select`` calls.

Names resolve lazily (PEP 562): importing this package loads neither Ray nor scikit-learn.
See ``docs/scaling.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BlockSpec": "labelwise.scale.blocks",
    "UnsupportedBackendError": "labelwise.scale.blocks",
    "release_pages": "labelwise.scale.blocks",
    "select_blocks": "labelwise.scale.blocks",
    "BACKENDS": "labelwise.scale.pool",
    "PoolCandidates": "labelwise.scale.pool",
    "open_pool": "labelwise.scale.pool",
    "select_from_files": "labelwise.scale.pool",
    "RaySelector": "labelwise.scale.ray_backend",
    "select_distributed": "labelwise.scale.ray_backend",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
