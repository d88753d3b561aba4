"""Selection on a Ray cluster: the per-block step as Ray Data ``map_batches``.

Each pool chunk is one row of a small Ray Data dataset (its :class:`~labelwise.scale.blocks.
BlockSpec`: which rows to read, where its tie-break keys start). ``map_batches`` runs
:func:`~labelwise.scale.blocks.run_block`, the same pure step the serial executor runs, on
each; the workers read their rows from the memory-mapped pool themselves (only its path
travels; on several machines the file must be on a path every node can read), and the
strategy, model and committee reach them once, by object reference (``ray.put``). The driver
merges the per-block winners (the only reduction) and runs a diversity strategy's second stage
on the merged candidates. The selection equals ``Strategy.select``'s for the same seed.

A worker that dies mid-block (killed, out of memory, node lost) costs a retry of that block:
Ray reruns the task (``max_retries``) and the block's result does not depend on where or
when it runs.

``ray[data]`` is an optional extra: ``pip install 'labelwise[ray]'``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import pickle
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise import errors
from labelwise.errors import LabelwiseError
from labelwise.scale.blocks import (
    BlockResult,
    BlockSpec,
    MemmapSource,
    UnsupportedBackendError,
    WorkerContext,
    make_plan,
    run_block,
    select_blocks,
)
from labelwise.strategies.base import Candidates, Query, Strategy

__all__ = ["ObjectSource", "RaySelector", "select_distributed"]


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise LabelwiseError(
            "the ray backend needs Ray Data: pip install 'labelwise[ray]' (ray[data]==2.60.0)."
        ) from None
    return ray


class ObjectSource:
    """An in-memory pool put in Ray's object store once; workers map it zero-copy.

    Parameters
    ----------
    ref : ray.ObjectRef
    shape : tuple of int
    """

    def __init__(self, ref: Any, shape: tuple[int, ...]) -> None:
        self.ref, self.shape = ref, shape

    def open(self) -> Any:
        import ray

        return ray.get(self.ref)


@contextlib.contextmanager
def _connected(address: str | None) -> Iterator[Any]:
    """Ray, connected to ``address`` for the duration (an existing connection is reused)."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise LabelwiseError(
            f"cannot reach a Ray cluster at {address!r}: {exc}. Start one with "
            "`ray start --head` or pass --address of a running cluster."
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_data_context(ray: Any) -> Iterator[None]:
    # labelwise draws its own progress bar; Ray Data's would interleave with it on stderr.
    # Its INFO lines ("execution finished") and the notice that bars are off go too.
    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start, logger.level
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, level = saved
        logger.setLevel(level)


# one round's context per worker process: unpickled once, reused by every block it runs
_WORKER_CONTEXT: dict[str, tuple[WorkerContext, Candidates]] = {}


def _worker_context(ref: Any) -> tuple[WorkerContext, Candidates]:
    import ray

    key = ref.hex()
    if key not in _WORKER_CONTEXT:
        _WORKER_CONTEXT.clear()
        context = ray.get(ref)
        _WORKER_CONTEXT[key] = (context, context.opened())
    return _WORKER_CONTEXT[key]


def score_batch(batch: dict[str, np.ndarray], context: list[Any]) -> dict[str, np.ndarray]:
    """The ``map_batches`` function: run every block spec in ``batch``, one row per winner.

    Parameters
    ----------
    batch : dict
        ``{"spec": ndarray of shape (n_specs,) of pickled BlockSpec, ...}``.
    context : list of one ray.ObjectRef
        The round's :class:`WorkerContext` (wrapped in a list so Ray hands over the reference,
        which is resolved and cached once per worker process).

    Returns
    -------
    dict of str to ndarray of shape (n_winners,)
        ``block``, ``n`` (the block's size), ``idx``, ``score``, ``key``, the block's
        ``read_s``, ``score_s``, ``reduce_s`` (repeated on each of its rows) and ``node``.
    """
    import ray

    ctx, candidates = _worker_context(context[0])
    node = ray.get_runtime_context().get_node_id()
    out: dict[str, list[np.ndarray]] = {}
    for raw in batch["spec"]:
        res = run_block(pickle.loads(raw), ctx, candidates)
        m = res.idx.shape[0]
        cols = {
            "block": np.full(m, res.index, dtype=np.int64),
            "n": np.full(m, res.n, dtype=np.int64),
            "idx": res.idx,
            "score": res.scores,
            "key": res.keys,
            "node": np.full(m, node),
            **{f"{name}_s": np.full(m, sec) for name, sec in res.seconds.items()},
        }
        for name, col in cols.items():
            out.setdefault(name, []).append(col)
    return {name: np.concatenate(cols) for name, cols in out.items()}


def _ray_map(
    specs: Iterator[BlockSpec],
    context: WorkerContext,
    n_blocks: int,
    *,
    ray: Any,
    num_cpus: float,
    max_retries: int,
    nodes: dict[str, int],
) -> Iterator[BlockResult]:
    """Run the block specs as one Ray Data ``map_batches``; yield each block as it completes."""
    specs = list(specs)
    expected = {s.index: min(context.plan.n_keep, s.n) for s in specs}
    ref = ray.put(context)  # the model travels once; every task gets the reference
    items = [{"block": s.index, "spec": pickle.dumps(s)} for s in specs]
    with warnings.catch_warnings():
        # Ray 2.60 takes max_retries only through **ray_remote_args, which it flags as
        # deprecated (no named parameter yet); its default, -1, would retry a block that
        # kills every worker forever instead of failing the round.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ray.data.from_items(items, override_num_blocks=n_blocks).map_batches(
            score_batch,
            batch_size=1,  # one pool chunk per task: a retry redoes one chunk only
            batch_format="numpy",
            fn_kwargs={"context": [ref]},
            num_cpus=num_cpus,
            max_retries=max_retries,
        )
    pending: dict[int, list[dict[str, np.ndarray]]] = {}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        # an output batch may hold several blocks, or part of one: regroup by block
        for b in np.unique(batch["block"]):
            rows = batch["block"] == b
            pending.setdefault(int(b), []).append({k: v[rows] for k, v in batch.items()})
            got = sum(p["idx"].shape[0] for p in pending[int(b)])
            if got < expected[int(b)]:
                continue
            pieces = pending.pop(int(b))
            part = {k: np.concatenate([p[k] for p in pieces]) for k in batch}
            node = str(part["node"][0])
            nodes[node] = nodes.get(node, 0) + 1
            yield BlockResult(
                index=int(b),
                n=int(part["n"][0]),
                idx=part["idx"].astype(np.int64),
                scores=part["score"].astype(np.float64),
                keys=part["key"].astype(np.float64),
                seconds={name: float(part[f"{name}_s"][0]) for name in ("read", "score", "reduce")},
            )


def select_distributed(
    strategy: Strategy | str,
    candidates: Candidates,
    k: int,
    *,
    random_state: Any = None,
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
    num_cpus: float = 1.0,
    max_retries: int = 3,
) -> Query:
    """Select ``k`` candidates on a Ray cluster; the same selection as ``strategy.select``.

    Parameters
    ----------
    strategy : Strategy or str
        A score strategy (``"entropy"``, ``"margin"``, ``"least_confidence"``), a committee
        strategy (``"qbc_vote_entropy"``, ``"qbc_kl"``) or, with a model, a prefiltering
        diversity strategy (``"diverse_margin"``, ``"kmeans_uncertainty"``, ``"kcenter"``,
        ``"tfidf_diverse"``).
        Others raise :class:`~labelwise.scale.blocks.UnsupportedBackendError`.
    candidates : Candidates
        When ``candidates.X`` is a ``np.memmap`` (``np.load(path, mmap_mode="r")``), workers
        reopen the file by path; otherwise the array goes to the object store once.
    k : int
    random_state : int, RandomState, Generator or None
        Resolved once; ties are broken exactly as locally.
    address : str, optional
        Cluster to connect to (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``); None starts
        a local Ray instance. An existing ``ray.init`` connection is reused and left open.
    progress : callable, optional
        ``progress(done, total)`` in candidates, as blocks complete.
    stats : dict, optional
        Filled with ``blocks``, ``plan_s`` (validation, key replay), ``blocks_s`` (wall time of
        the map), ``merge_s``, ``finish_s``, the blocks' summed ``read_s``, ``score_s``,
        ``reduce_s``, and ``nodes`` (blocks run per node id).
    num_cpus : float
        CPUs each block task reserves.
    max_retries : int
        Reruns of a block whose worker died.

    Returns
    -------
    Query
        ``idx`` are candidate positions, ``pool_idx`` rows of ``candidates.X``.
    """
    with _connected(address) as ray, _quiet_data_context(ray):
        source = MemmapSource.of(candidates.X)
        if source is None:
            source = ObjectSource(ray.put(candidates.X), tuple(candidates.X.shape))
        nodes: dict[str, int] = {}
        try:
            query = select_blocks(
                strategy,
                candidates,
                k,
                random_state=random_state,
                map_blocks=functools.partial(
                    _ray_map, ray=ray, num_cpus=num_cpus, max_retries=max_retries, nodes=nodes
                ),
                source=source,
                progress=progress,
                stats=stats,
            )
        except ray.exceptions.RayError as exc:
            raise _round_failed(exc, max_retries) from exc
        if stats is not None:
            stats["nodes"] = nodes
        return query


class RaySelector:
    """Run a session's selections on a Ray cluster where the strategy allows it.

    A :class:`~labelwise.loop.Session` ``selector`` (the service's rounds use one when
    ``LABELWISE_SELECT_BACKEND=ray``). Score, committee and prefiltering diversity strategies
    over a dense pool go to the cluster (:func:`select_distributed`: the same selection as
    local for the same seed); the others, and sparse (TF-IDF) pools, which have no block plan,
    run locally, so switching the backend on never changes what is selected.

    Parameters
    ----------
    address : str, optional
        The cluster (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``); ``None`` starts a
        local Ray instance. An existing connection is reused.
    num_cpus : float
        CPUs each block task reserves.
    max_retries : int
        Reruns of a block whose worker died.

    Attributes
    ----------
    last_backend : str
        ``"ray"`` or ``"local"``: where the latest selection ran (logged by the service).
    """

    def __init__(
        self, address: str | None = None, *, num_cpus: float = 1.0, max_retries: int = 3
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.last_backend = "local"

    def supports(self, strategy: Strategy, candidates: Candidates, k: int) -> bool:
        """Whether the selection can run on the cluster (dense pool, a block plan)."""
        if sp.issparse(candidates.X):
            return False
        try:
            make_plan(strategy, candidates, k)
        except UnsupportedBackendError:
            return False
        return True

    def __call__(
        self, strategy: Strategy, candidates: Candidates, k: int, *, random_state: Any = None
    ) -> Query:
        if not self.supports(strategy, candidates, k):
            self.last_backend = "local"
            return strategy.select(candidates, k, random_state=random_state)
        self.last_backend = "ray"
        return select_distributed(
            strategy,
            candidates,
            k,
            random_state=random_state,
            address=self.address,
            num_cpus=self.num_cpus,
            max_retries=self.max_retries,
        )


def _round_failed(exc: BaseException, max_retries: int) -> LabelwiseError:
    """One readable error for a failed round; a labelwise error raised in a block as itself.

    Ray hands back a block's exception as a wrapper whose message holds the worker's traceback
    (pickling drops ``__cause__``), so a labelwise error is recognised there by its class name.
    """
    text = str(exc)
    raised = re.findall(r"^labelwise\.errors\.(\w+): (.*)$", text, flags=re.MULTILINE)
    if raised:
        name, message = raised[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, LabelwiseError):
            return cls(message)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return LabelwiseError(
        f"the selection failed on the Ray cluster: a block's worker died {max_retries + 1} "
        f"times (max_retries={max_retries}) or the block raised: {type(exc).__name__}: "
        f"{lines[-1] if lines else ''}. No partial selection is returned."
    )
