"""Feature matrices for a project's items: what strategies and models see.

:func:`project_features` turns every item of a project into one row of a matrix, in ascending
item-id order, whatever the items are:

- items with ``features_path`` / ``features_row``: rows of a memory-mapped ``.npy`` file (no
  copy when every item reads row ``i`` of one file in order; otherwise the rows are gathered);
- text items (``payload["text"]``): TF-IDF (scikit-learn, ``sublinear_tf``, up to 50,000
  terms, ``min_df=2`` from 1,000 items on), float32 CSR;
- tabular items (a payload of numbers): standardised dense float32, columns in sorted key
  order (missing values take the column mean, so they become 0);
- images (``payload["image"]``, a path): 16 x 16 grayscale thumbnails (Pillow), flattened,
  scaled to ``[0, 1]``.

Computed matrices (all kinds but ``.npy``) are cached under ``settings.data_dir/features``, keyed
by the project id and a hash of the item ids: adding items changes the hash, so the next call
refits (e.g. a new TF-IDF vocabulary) and older cache files of the project are removed.

Alongside ``X`` come per-item metadata columns for stratified cold start: ``source`` (the
importer's file name), ``tag`` (an item's first ``metadata["tags"]`` entry) and, for text,
``length`` (characters).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.errors import LabelwiseError
from labelwise.storage.base import BaseStore, Item

__all__ = [
    "FEATURE_KINDS",
    "FeatureMatrix",
    "feature_kind",
    "first_tag",
    "project_features",
]

FEATURE_KINDS = ("npy", "text", "tabular", "image")
THUMBNAIL_SIZE = 16
MAX_FEATURES = 50_000
_PAGE = 50_000  # items listed per store call
_CACHE_VERSION = "1"  # bump when the featurisation changes


@dataclass(frozen=True)
class FeatureMatrix:
    """Features of every item of a project, one row per item.

    Attributes
    ----------
    item_ids : ndarray of shape (n_items,), int64
        Item ids, ascending; row ``i`` of ``X`` is item ``item_ids[i]``.
    X : ndarray, memmap or CSR matrix of shape (n_items, n_features)
        float32 features.
    kind : {"npy", "text", "tabular", "image"}
    metadata : dict of str to ndarray of shape (n_items,)
        Columns for stratified cold start (``source``, ``tag``, ``length`` for text).
    key : str
        Hash of the item ids and the featurisation: equal keys, equal matrices.
    """

    item_ids: np.ndarray
    X: Any
    kind: str
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    key: str = ""

    @property
    def n(self) -> int:
        return int(self.item_ids.shape[0])

    def positions(self, item_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of ``item_ids`` (which must all be items of the project)."""
        ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        pos = np.minimum(pos, max(self.n - 1, 0))
        if ids.size and (self.n == 0 or np.any(self.item_ids[pos] != ids)):
            missing = ids[(self.n == 0) | (self.item_ids[pos] != ids)][:5].tolist()
            raise LabelwiseError(f"items {missing} have no feature row; recompute the features.")
        return pos.astype(np.int64)


# --------------------------------------------------------------------------- helpers


def feature_kind(item: Item) -> str:
    """How an item is featurised: ``"npy"``, ``"text"``, ``"image"`` or ``"tabular"``."""
    if item.features_path is not None:
        return "npy"
    if isinstance(item.payload.get("text"), str):
        return "text"
    if isinstance(item.payload.get("image"), str):
        return "image"
    return "tabular"


def first_tag(item: Item) -> str | None:
    """The item's first tag (``metadata["tags"]``: a list, or one string), or ``None``."""
    tags = item.metadata.get("tags")
    if isinstance(tags, str):
        return tags or None
    if isinstance(tags, Sequence) and tags:
        return str(tags[0])
    return None


def _iter_items(store: BaseStore, project_id: int) -> Iterator[Item]:
    offset = 0
    while True:
        page = store.list_items(project_id, limit=_PAGE, offset=offset)
        yield from page
        if len(page) < _PAGE:
            return
        offset += len(page)


def _ids_hash(kind: str, item_ids: np.ndarray, extra: str = "") -> str:
    h = hashlib.sha256(f"{_CACHE_VERSION}:{kind}:{extra}:".encode())
    h.update(np.ascontiguousarray(item_ids, dtype="<i8").tobytes())
    return h.hexdigest()[:20]


def _atomic_save(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then ``os.replace``.

    The temporary name keeps the suffix (``np.savez`` appends ``.npz`` to names without it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- featurisers


def _npy_rows(items: Sequence[Item]) -> Any:
    """Rows of memory-mapped ``.npy`` files, float32; no copy for one file read in order."""
    paths = [it.features_path for it in items]
    rows = np.array([-1 if it.features_row is None else it.features_row for it in items])
    if np.any(rows < 0):
        bad = next(it for it in items if it.features_row is None)
        raise LabelwiseError(
            f"item {bad.external_id!r} has features_path but no features_row; set both."
        )
    files: dict[str, np.ndarray] = {}
    for p in dict.fromkeys(paths):
        assert p is not None
        arr = np.load(p, mmap_mode="r")
        if arr.ndim != 2:
            raise LabelwiseError(f"{p} holds an array of shape {arr.shape}; expected 2-D.")
        files[p] = arr
    if len(files) == 1:
        (arr,) = files.values()
        if rows.shape[0] == arr.shape[0] and np.array_equal(rows, np.arange(arr.shape[0])):
            return arr if arr.dtype == np.float32 else np.asarray(arr, dtype=np.float32)
    widths = {a.shape[1] for a in files.values()}
    if len(widths) != 1:
        raise LabelwiseError(f"feature files have different widths {sorted(widths)}; align them.")
    out = np.empty((len(items), widths.pop()), dtype=np.float32)
    path_arr = np.array(paths, dtype=object)
    for p, arr in files.items():
        sel = np.flatnonzero(path_arr == p)
        out[sel] = arr[rows[sel]]
    return out


def _tfidf(texts: Sequence[str]) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    min_df = 2 if len(texts) >= 1000 else 1
    vec = TfidfVectorizer(
        sublinear_tf=True, min_df=min_df, max_features=MAX_FEATURES, dtype=np.float32
    )
    try:
        X = vec.fit_transform(texts)
    except ValueError:  # empty vocabulary (e.g. only stop words / punctuation)
        X = sp.csr_matrix((len(texts), 1), dtype=np.float32)
    return sp.csr_matrix(X, dtype=np.float32)


def _tabular(payloads: Sequence[Mapping[str, Any]]) -> np.ndarray:
    def numeric(v: Any) -> bool:
        return isinstance(v, Real)  # booleans count as 0 / 1

    columns = sorted({k for p in payloads for k, v in p.items() if numeric(v)})
    if not columns:
        raise LabelwiseError(
            "tabular items need numeric payload fields (e.g. {'x1': 0.3, 'x2': 7}); none "
            "were found. Import text with text_field=, or give items features_path."
        )
    X = np.full((len(payloads), len(columns)), np.nan, dtype=np.float64)
    for i, p in enumerate(payloads):
        for j, c in enumerate(columns):
            v = p.get(c)
            if numeric(v):
                X[i, j] = float(v)
    mean = np.nanmean(X, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    X = np.where(np.isnan(X), mean, X)
    std = X.std(axis=0)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    return X.astype(np.float32)


def _thumbnails(paths: Sequence[str], size: int = THUMBNAIL_SIZE) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(paths), size * size), dtype=np.float32)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as img:
                thumb = img.convert("L").resize((size, size))
        except OSError as e:
            raise LabelwiseError(f"cannot read image {p!r} ({e}); fix or remove the item.") from e
        out[i] = np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    return out


# --------------------------------------------------------------------------- entry point


def _cache_dir(settings: Any, project_id: int) -> Path:
    return Path(settings.data_dir) / "features" / f"project_{project_id}"


def _load_cached(path: Path) -> Any:
    if path.suffix == ".npz":
        return sp.load_npz(path).tocsr()
    return np.load(path, mmap_mode="r")


def _store_cached(folder: Path, path: Path, X: Any) -> None:
    if sp.issparse(X):
        _atomic_save(path, lambda tmp: sp.save_npz(tmp, X, compressed=False))
    else:

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, X)

        _atomic_save(path, write)
    for old in folder.iterdir():  # stale keys: items were added since
        if old.is_file() and old.name != path.name and not old.name.startswith(".tmp-"):
            old.unlink(missing_ok=True)


def project_features(store: BaseStore, project_id: int, settings: Any) -> FeatureMatrix:
    """Feature matrix of every item of a project, cached on disk.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings
        ``settings.data_dir`` holds the cache.

    Returns
    -------
    FeatureMatrix
        Rows in ascending item-id order; ``X`` is float32 (dense, memory-mapped or CSR).

    Raises
    ------
    LabelwiseError
        If the project has no items, or mixes kinds of items (text and tabular, say).
    """
    items = list(_iter_items(store, project_id))
    if not items:
        raise LabelwiseError(f"project {project_id} has no items; import some first.")
    kinds = {feature_kind(it) for it in items}
    if len(kinds) > 1:
        raise LabelwiseError(
            f"project {project_id} mixes items of kinds {sorted(kinds)}; one project holds one "
            "kind (give every item features_path, or none)."
        )
    kind = kinds.pop()
    item_ids = np.fromiter((it.id for it in items), dtype=np.int64, count=len(items))
    metadata: dict[str, np.ndarray] = {
        "source": np.array([str(it.metadata.get("source", "")) for it in items], dtype=object),
        "tag": np.array([first_tag(it) or "" for it in items], dtype=object),
    }
    if kind == "text":
        metadata["length"] = np.array([len(it.payload["text"]) for it in items], dtype=np.int64)
    if kind == "npy":
        extra = "|".join(sorted({str(it.features_path) for it in items}))
        key = _ids_hash(kind, item_ids, extra)
        return FeatureMatrix(item_ids, _npy_rows(items), kind, metadata, key)

    key = _ids_hash(kind, item_ids)
    folder = _cache_dir(settings, project_id)
    path = folder / f"{kind}_{key}{'.npz' if kind == 'text' else '.npy'}"
    if path.exists():
        return FeatureMatrix(item_ids, _load_cached(path), kind, metadata, key)
    if kind == "text":
        X = _tfidf([it.payload["text"] for it in items])
    elif kind == "image":
        X = _thumbnails([it.payload["image"] for it in items])
    else:
        X = _tabular([it.payload for it in items])
    _store_cached(folder, path, X)
    return FeatureMatrix(item_ids, X, kind, metadata, key)
