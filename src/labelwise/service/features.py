"""Feature matrices for a project's items: what strategies and models see.

:func:`project_features` reads every item of a project from the store, in ascending item-id
order, and hands their payloads, texts, paths and metadata to the featurisers of
:mod:`labelwise.features` (the compute band: ``.npy`` rows, TF-IDF, standardised tabular
columns, image HOG + colour histograms or thumbnails; see there for what each does). This
module only reads the store, keeps the on-disk cache and calls them.

Computed matrices (all kinds but ``.npy``) are cached under ``settings.data_dir/features``, keyed
by the project id and a hash of the item ids (and, for text, the project's keywords): adding
items changes the hash, so the next call refits (e.g. a new TF-IDF vocabulary) and older cache
files of the project are removed.

Alongside ``X`` come per-item metadata columns for stratified cold start: ``source`` (the
importer's file name), ``tag`` (an item's first ``metadata["tags"]`` entry) and, for text,
``length`` (characters) and one boolean ``keyword:<kw>`` column per keyword of the project's
``strategy_params["keywords"]``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise import features as F
from labelwise.errors import LabelwiseError
from labelwise.features import FEATURE_KINDS, FeatureMatrix
from labelwise.service import model_sources
from labelwise.service.schemas import FEATURE_METHODS
from labelwise.storage.base import BaseStore, Item

__all__ = [
    "FEATURE_KINDS",
    "FeatureMatrix",
    "feature_kind",
    "first_tag",
    "project_features",
    "project_keywords",
]

_PAGE = 50_000  # items listed per store call
_LEGACY_METHODS = ("tfidf", "thumbnails")  # cache keys without the method name


def feature_kind(item: Item) -> str:
    """How an item is featurised: ``"npy"``, ``"text"``, ``"image"`` or ``"tabular"``."""
    return F.feature_kind(item.payload, item.features_path)


def first_tag(item: Item) -> str | None:
    """The item's first tag (``metadata["tags"]``: a list, or one string), or ``None``."""
    return F.first_tag(item.metadata)


def _iter_items(store: BaseStore, project_id: int) -> Iterator[Item]:
    offset = 0
    while True:
        page = store.list_items(project_id, limit=_PAGE, offset=offset)
        yield from page
        if len(page) < _PAGE:
            return
        offset += len(page)


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


def project_keywords(store: BaseStore, project_id: int) -> list[str]:
    """The project's ``strategy_params["keywords"]``, validated (``[]`` when unset).

    Raises
    ------
    LabelwiseError
        If they are not a list of non-empty strings.
    """
    params = store.get_project(project_id).strategy_params or {}
    return F.check_keywords(params.get("keywords"))


def project_features(store: BaseStore, project_id: int, settings: Any) -> FeatureMatrix:
    """Feature matrix of every item of a project, cached on disk.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings
        ``settings.data_dir`` holds the cache.

    The project's newest uploaded embeddings, when it has any
    (:mod:`labelwise.service.model_sources`), take the place of every featuriser (kind
    ``"embeddings"``, keyed by the upload's version).

    Returns
    -------
    FeatureMatrix
        Rows in ascending item-id order; ``X`` is float32 (dense, memory-mapped or CSR) of
        shape (n_items, n_features); ``metadata`` columns of shape (n_items,), with one
        ``keyword:<kw>`` flag per project keyword for text.

    Raises
    ------
    LabelwiseError
        If the project has no items, mixes kinds of items (text and tabular, say), or has
        keywords that are not a list of strings.
    """
    items = list(_iter_items(store, project_id))
    if not items:
        raise LabelwiseError(f"project {project_id} has no items; import some first.")
    keywords = project_keywords(store, project_id)
    kinds = {feature_kind(it) for it in items}
    if len(kinds) > 1:
        raise LabelwiseError(
            f"project {project_id} mixes items of kinds {sorted(kinds)}; one project holds one "
            "kind (give every item features_path, or none)."
        )
    kind = kinds.pop()
    item_ids = np.fromiter((it.id for it in items), dtype=np.int64, count=len(items))
    texts = [it.payload["text"] for it in items] if kind == "text" else None
    metadata = F.item_metadata(
        [it.metadata.get("source", "") for it in items],
        [first_tag(it) for it in items],
        texts,
        keywords,
    )
    # model sources (issue 11): the newest uploaded (or endpoint) embeddings are the features
    uploaded = model_sources.embedding_features(store, project_id, item_ids)
    if uploaded is not None:
        key = F.features_key("embeddings", item_ids, uploaded[1])
        return FeatureMatrix(item_ids, uploaded[0], "embeddings", metadata, key)
    if kind == "npy":
        extra = "|".join(sorted({str(it.features_path) for it in items}))
        key = F.features_key(kind, item_ids, extra)
        X = F.npy_rows(
            [str(it.features_path) for it in items],
            [it.features_row for it in items],
            [it.external_id for it in items],
        )
        return FeatureMatrix(item_ids, X, kind, metadata, key)

    method = feature_method(store.get_project(project_id).strategy_params, kind)
    # Keywords only add text metadata columns; other kinds keep their key (and their cache).
    # The methods there were before methods existed (tfidf, thumbnails) keep their keys (and
    # caches); any other method, default or not, has its own.
    extra = "" if method in (None, *_LEGACY_METHODS) else method
    key = F.features_key(kind, item_ids, extra, keywords=keywords if kind == "text" else ())
    folder = _cache_dir(settings, project_id)
    sparse = kind == "text" and method == "tfidf"
    path = folder / f"{kind}_{key}{'.npz' if sparse else '.npy'}"
    if path.exists():
        return FeatureMatrix(item_ids, _load_cached(path), kind, metadata, key)
    if texts is not None:
        X = _text_features(texts, method, settings)
    elif kind == "image":
        X = _image_features([it.payload["image"] for it in items], method)
    else:
        X = F.tabular([it.payload for it in items])
    _store_cached(folder, path, X)
    return FeatureMatrix(item_ids, X, kind, metadata, key)


def feature_method(params: Any, kind: str) -> str | None:
    """The project's ``strategy_params["features"]`` for items of ``kind`` (default: the first).

    ``None`` for kinds with one way to featurise (tabular, ``.npy``).

    Raises
    ------
    LabelwiseError
        If the method does not apply to the kind (``embeddings`` for an image project, say).
    """
    methods = FEATURE_METHODS.get(kind)
    if methods is None:
        return None
    method = (params or {}).get("features") or methods[0]
    if method not in methods:
        raise LabelwiseError(
            f"strategy_params.features={method!r} does not apply to {kind} items; use one of "
            f"{list(methods)}."
        )
    return method


def _text_features(texts: list[str], method: str | None, settings: Any) -> Any:
    """TF-IDF (sparse) or sentence embeddings (dense float32 (n_texts, 384), unit norm).

    Embeddings (:func:`labelwise.embeddings.sentence_embeddings`) are cached per text and model
    under ``settings.data_dir/embeddings``: shared by every project of the server, reused across
    rounds, and after an import only the new texts are embedded. Progress goes to an enclosing
    :func:`labelwise.embeddings.embedding_progress` block (the CLI's bar) or to the log.
    """
    if method == "tfidf":
        return F.tfidf(texts)
    if method == "embeddings":
        from labelwise.embeddings import sentence_embeddings

        return sentence_embeddings(texts, cache_dir=embeddings_cache_dir(settings))
    raise LabelwiseError(f"text features {method!r} are not available yet")


def embeddings_cache_dir(settings: Any) -> Path:
    """Where the server caches sentence embeddings: ``settings.data_dir/embeddings``."""
    return Path(settings.data_dir) / "embeddings"


def pending_embeddings(store: BaseStore, project_id: int, settings: Any) -> int:
    """Texts of a project that still need embedding before its features exist (0 for projects
    that do not use ``strategy_params["features"] = "embeddings"``, and for projects with
    uploaded embeddings, which are their features instead); loads no model."""
    if (store.get_project(project_id).strategy_params or {}).get("features") != "embeddings":
        return 0
    if store.find_latest_model_upload(project_id, "embeddings") is not None:
        return 0  # project_features uses the upload and embeds nothing
    texts = [it.payload["text"] for it in _iter_items(store, project_id) if "text" in it.payload]
    from labelwise.embeddings import count_uncached

    return count_uncached(texts, cache_dir=embeddings_cache_dir(settings))


def _image_features(paths: list[str], method: str | None) -> Any:
    """Image items' features: ``"hog"`` (:func:`labelwise.features.image_descriptors`, HOG of
    a 64 x 64 grayscale copy plus RGB colour histograms, 1,788 columns) or ``"thumbnails"``
    (16 x 16 grayscale pixels, 256 columns)."""
    if method == "hog":
        return F.image_descriptors(paths)
    if method == "thumbnails":
        return F.thumbnails(paths)
    raise LabelwiseError(f"image features {method!r} are not available; use hog or thumbnails.")
