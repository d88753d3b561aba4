"""Bring your own model: uploaded predictions and embeddings, and an external model endpoint.

A project's model source (:meth:`~labelwise.storage.base.BaseStore.get_model_source`) is one of

``builtin`` (the default)
    labelwise fits its own scikit-learn model at every retrain (:mod:`labelwise.service.rounds`).
``predictions``
    the newest uploaded predictions rank the pool. Uploading predictions makes this the source;
    a retrain closes the batch and queues the next one, ranked by the same predictions minus
    the items labeled since, and fits no model of labelwise's own until the source is set back
    to ``builtin``. Upload new predictions after your model trained on the new labels.
``endpoint``
    an external model over HTTP. The worker posts every item to ``POST {url}/predict`` in
    batches and stores the answer as a new version of predictions (and of embeddings, when
    the endpoint returns them); on a completed batch of labels it first posts the labels to
    ``POST {url}/train``. Nothing is stored until every batch answered well: a timeout, a
    connection error, a 5xx or a malformed reply is a :class:`ModelEndpointError` naming what
    and where, the job is retried with exponential backoff, and the previous version stays
    active.

Uploaded (or endpoint-returned) **embeddings** are independent of the source: the newest
version becomes the project's feature matrix (:func:`labelwise.service.features.project_features`),
for diversity strategies and for the built-in model alike.

Files (:func:`read_upload`), keyed by external id:

- CSV: a header ``id,<class1>,<class2>,...`` (probabilities) or ``id,e0,e1,...`` (embeddings);
- Parquet: the same columns, or an ``id`` column beside a list column ``proba`` / ``embedding``;
- ``.npz``: arrays ``ids`` and ``proba`` (plus optional ``classes``, the column names) or
  ``embeddings``;
- ``.npy``: a 2-D array whose rows follow a separate ids file (``ids_path``: one external id a
  line).

Validation (:class:`ModelUploadError`, naming row and field; nothing is stored): unknown or
repeated external ids, wrong width, NaN or infinite values, unknown or missing class columns,
probabilities outside ``[0, 1]`` or rows not summing to 1 (within :data:`PROBA_TOLERANCE`;
multi-label rows are independent probabilities and only range-checked). Predictions may leave
out items: those are not selected while these predictions rank the pool. Embeddings are the
feature matrix, so they must cover every item; items imported later stop rounds with an error
asking for embeddings that cover them.

Arrays are stored under ``settings.data_dir/model_sources/project_<id>/<kind>/v<version>-<random>/``
(``item_ids.npy``, ``values.npy``: float32, memory-mapped when read), one
:class:`~labelwise.storage.base.ModelUpload` row per version; old versions are kept.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError
from labelwise.storage.base import (
    BaseStore,
    Item,
    Job,
    ModelSource,
    ModelUpload,
    Project,
)
from labelwise.tasks import TaskType

__all__ = [
    "PROBA_TOLERANCE",
    "UPLOAD_FORMATS",
    "EndpointClient",
    "ExternalModel",
    "ExternalPredictions",
    "ModelEndpointError",
    "ModelStatus",
    "ModelUploadError",
    "active_predictions",
    "backoff_seconds",
    "configure",
    "embedding_features",
    "model_status",
    "read_upload",
    "run_predict",
    "set_model_source",
    "upload_embeddings",
    "upload_predictions",
]

log = logging.getLogger(__name__)

#: A probability row of a single-label project must sum to 1 within this.
PROBA_TOLERANCE = 1e-3
UPLOAD_FORMATS = ("csv", "parquet", "npz", "npy")
#: Longest backoff between two attempts of a failing endpoint job.
MAX_BACKOFF_SECONDS = 3600.0
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz", ".npy": "npy"}
_MAX_REPORTED = 5


# --------------------------------------------------------------------------- errors


class ModelUploadError(LabelwiseError):
    """An uploaded predictions or embeddings file is invalid; nothing was stored.

    ``row`` (1-based data row; for CSV the file's line number) and ``field`` (column or id)
    locate the problem when it has one place.
    """

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None):
        where = "" if row is None else f"row {row}: "
        where += "" if field is None else f"field {field!r}: "
        super().__init__(where + message + " Nothing was stored; fix the file and upload again.")
        self.row = row
        self.field = field


class ModelEndpointError(LabelwiseError):
    """The model endpoint failed or answered badly; nothing was stored.

    ``retry_after`` (seconds) is the backoff the worker waits before the job's next attempt
    (:meth:`labelwise.service.worker.Worker.run_once` reads it).
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff after failed attempt ``attempt`` (1-based): ``base * 2**(attempt-1)``,
    at most :data:`MAX_BACKOFF_SECONDS`."""
    return float(min(base * 2.0 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS))


# --------------------------------------------------------------------------- reading files


@dataclass(frozen=True)
class _Table:
    """What a file holds: external ids, a float64 matrix and its column names (or ``None``)."""

    ids: list[str]
    values: np.ndarray
    columns: list[str] | None
    first_row: int  # the file line (CSV) or row number of ``values[0]``


def upload_format(filename: str | None, fmt: str | None = None) -> str:
    """The upload's format: ``fmt`` when given, else from the file name's suffix."""
    if fmt is not None:
        if fmt not in UPLOAD_FORMATS:
            raise ModelUploadError(f"unknown format {fmt!r}; use one of {list(UPLOAD_FORMATS)}.")
        return fmt
    suffix = Path(filename or "").suffix.lower()
    if suffix not in _SUFFIXES:
        raise ModelUploadError(
            f"cannot tell the format of {filename!r}; name it .csv, .parquet, .npz or .npy, or "
            "pass format=."
        )
    return _SUFFIXES[suffix]


def _float(cell: str, row: int, field: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise ModelUploadError(f"{cell[:40]!r} is not a number.", row=row, field=field) from None


def _read_csv(path: Path) -> _Table:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ModelUploadError("the file is empty; the first line names the columns.")
        header = [h.strip() for h in header]
        if header[0] != "id":
            raise ModelUploadError(
                f"the first column must be 'id' (the items' external ids); got {header[0]!r}.",
                row=1, field=header[0],
            )  # fmt: skip
        if len(header) < 2:
            raise ModelUploadError("no value columns after 'id'.", row=1)
        ids: list[str] = []
        rows: list[list[float]] = []
        for line, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise ModelUploadError(
                    f"{len(rec)} cells; the header has {len(header)} columns.", row=line
                )
            ids.append(rec[0].strip())
            rows.append([_float(c, line, header[j + 1]) for j, c in enumerate(rec[1:])])
    if not rows:
        raise ModelUploadError("the file has a header but no rows.")
    return _Table(ids, np.asarray(rows, dtype=np.float64), header[1:], 2)


def _fast_list_matrix(col: Any) -> np.ndarray | None:
    """A list column of numbers, every row of one length and no nulls, as a matrix without
    Python objects (the usual embedding file); ``None`` otherwise."""
    import pyarrow as pa

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    typ, n = arr.type, len(arr)
    lists = pa.types.is_list(typ) or pa.types.is_large_list(typ)
    if not (lists or pa.types.is_fixed_size_list(typ)) or arr.null_count or n == 0:
        return None
    if not (pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)):
        return None
    flat = arr.flatten()
    if flat.null_count or len(flat) % n:
        return None
    width = len(flat) // n
    if width == 0 or (lists and not np.all(np.diff(np.asarray(arr.offsets)) == width)):
        return None
    return flat.to_numpy(zero_copy_only=False).astype(np.float64).reshape(n, width)


def _list_column(col: Any, name: str) -> np.ndarray:
    """A list column as a matrix; row by row (naming the bad row) when it is not regular."""
    fast = _fast_list_matrix(col)
    if fast is not None:
        return fast
    rows = col.to_pylist()
    for i, r in enumerate(rows):
        if r is None or len(r) != len(rows[0] or []):
            raise ModelUploadError(
                f"every row needs a list of {len(rows[0] or [])} numbers; this one has "
                f"{'none' if r is None else len(r)}.", row=i + 1, field=name,
            )  # fmt: skip
    try:
        return np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelUploadError("the lists must hold numbers.", field=name) from None


def _read_parquet(path: Path, kind: str) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ModelUploadError(f"not a readable Parquet file ({e}).") from None
    names = table.column_names
    if "id" not in names:
        raise ModelUploadError(f"no 'id' column; the columns are {names[:10]}.")
    ids = [str(x) if x is not None else "" for x in table.column("id").to_pylist()]
    list_col = "proba" if kind == "predictions" else "embedding"
    others = [n for n in names if n != "id"]
    if list_col in names:
        return _Table(ids, _list_column(table.column(list_col), list_col), None, 1)
    if not others:
        raise ModelUploadError(f"no value columns beside 'id' (nor a {list_col!r} list column).")
    cols = []
    for n in others:
        col = table.column(n)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise ModelUploadError(f"column of type {col.type}; values must be numbers.", field=n)
        arr = col.to_numpy(zero_copy_only=False).astype(np.float64)
        cols.append(arr)
    return _Table(ids, np.column_stack(cols), others, 1)


def _read_npz(path: Path, kind: str) -> _Table:
    key = "proba" if kind == "predictions" else "embeddings"
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "ids" not in files or key not in files:
                raise ModelUploadError(
                    f"a .npz needs arrays 'ids' and {key!r}; it has {sorted(files)}."
                )
            ids = [str(x) for x in np.asarray(z["ids"]).ravel().tolist()]
            values = np.asarray(z[key])
            columns = None
            if kind == "predictions" and "classes" in files:
                columns = [str(c) for c in np.asarray(z["classes"]).ravel().tolist()]
    except (OSError, ValueError) as e:
        raise ModelUploadError(f"not a readable .npz file ({e}).") from None
    return _Table(ids, _as_matrix(values, key), columns, 1)


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    if values.ndim != 2 or values.dtype.kind not in "fiu":
        raise ModelUploadError(
            f"{name!r} must be a 2-D array of numbers; got shape {values.shape} of {values.dtype}."
        )
    return values.astype(np.float64, copy=False)


def _read_npy(path: Path, ids_path: Path | None) -> _Table:
    if ids_path is None:
        raise ModelUploadError(
            "a .npy file has no ids: send its rows' external ids as a text file (one id a line; "
            "API: multipart field 'ids', CLI: --ids), or upload a .npz with 'ids'."
        )
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ModelUploadError(f"not a readable .npy file ({e}).") from None
    try:
        text = Path(ids_path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelUploadError("the ids file is not UTF-8 text.") from None
    ids = [ln.strip() for ln in text.splitlines() if ln.strip()]
    values = _as_matrix(np.asarray(values), "array")
    if len(ids) != values.shape[0]:
        raise ModelUploadError(
            f"the ids file lists {len(ids)} ids but the array has {values.shape[0]} rows; "
            "give one id per row, in row order."
        )
    return _Table(ids, values, None, 1)


def read_upload(path: str | Path, fmt: str, kind: str, ids_path: str | Path | None = None) -> Any:
    """Read a predictions or embeddings file (see the module docstring for the formats).

    Returns
    -------
    _Table
        ``ids`` (external ids, file order), ``values`` float64 of shape (n_rows, n_cols),
        ``columns`` (column names, or ``None`` when the file has none) and ``first_row``.

    Raises
    ------
    ModelUploadError
        If the file cannot be read or is not of the expected shape.
    """
    path = Path(path)
    try:
        if fmt == "csv":
            return _read_csv(path)
        if fmt == "parquet":
            return _read_parquet(path, kind)
        if fmt == "npz":
            return _read_npz(path, kind)
        return _read_npy(path, None if ids_path is None else Path(ids_path))
    except UnicodeDecodeError:
        raise ModelUploadError("the file is not UTF-8 text.") from None


# --------------------------------------------------------------------------- validation


def _item_index(store: BaseStore, project_id: int) -> dict[str, int]:
    """External id -> item id of every item of the project."""
    out: dict[str, int] = {}
    page, after_id = 50_000, None
    while True:  # keyset pages: OFFSET would reread every earlier page
        items = store.list_items(project_id, limit=page, after_id=after_id)
        out.update((it.external_id, it.id) for it in items)
        if len(items) < page:
            return out
        after_id = items[-1].id


def _map_ids(table: _Table, index: dict[str, int]) -> np.ndarray:
    """Item ids of the table's rows; unknown or repeated external ids are errors."""
    item_ids = np.empty(len(table.ids), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, ext in enumerate(table.ids):
        row = table.first_row + i
        if ext in seen:
            raise ModelUploadError(
                f"external id {ext!r} repeats row {seen[ext]}; give one row per item.",
                row=row, field="id",
            )  # fmt: skip
        seen[ext] = row
        item = index.get(ext)
        if item is None:
            raise ModelUploadError(
                f"unknown external id {ext[:100]!r}: no item of this project has it.",
                row=row, field="id",
            )  # fmt: skip
        item_ids[i] = item
    return item_ids


def _check_finite(table: _Table, values: np.ndarray, columns: Sequence[str]) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise ModelUploadError(
            f"{values[i, j]} is not a finite number.", row=table.first_row + i, field=columns[j]
        )


def check_predictions(project: Project, table: _Table, index: dict[str, int]) -> Any:
    """Validated predictions: ``(item_ids ascending, proba float32 (n, n_classes))`` with the
    columns in the project's class order.

    Raises
    ------
    ModelUploadError
    """
    classes = list(project.classes)
    columns = table.columns
    if columns is None:  # a list column or an array: the project's class order
        if table.values.shape[1] != len(classes):
            raise ModelUploadError(
                f"rows have {table.values.shape[1]} probabilities; the project has "
                f"{len(classes)} classes {classes[:10]} (in this order).",
                row=table.first_row, field="proba",
            )  # fmt: skip
        columns = classes
    else:
        for j, c in enumerate(columns):
            if c not in classes:
                raise ModelUploadError(
                    f"unknown class {c!r}; the project's classes are {classes[:10]}.",
                    row=1 if table.first_row == 2 else None, field=c,
                )  # fmt: skip
            if c in columns[:j]:
                raise ModelUploadError(f"class column {c!r} repeats.", field=c)
        missing = [c for c in classes if c not in columns]
        if missing:
            raise ModelUploadError(
                f"no column for class(es) {missing[:10]}; give one probability column per "
                "class of the project.",
            )
    values = table.values
    _check_finite(table, values, columns)
    out_of_range = (values < 0) | (values > 1)
    if out_of_range.any():
        i, j = (int(x) for x in np.argwhere(out_of_range)[0])
        raise ModelUploadError(
            f"probability {values[i, j]} is outside [0, 1].",
            row=table.first_row + i, field=columns[j],
        )  # fmt: skip
    if project.task_type != TaskType.MULTILABEL:
        sums = values.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > PROBA_TOLERANCE)
        if off.size:
            i = int(off[0])
            raise ModelUploadError(
                f"the probabilities sum to {sums[i]:.6g}, not 1 (tolerance "
                f"{PROBA_TOLERANCE}); a row holds one probability per class.",
                row=table.first_row + i, field=table.ids[i],
            )  # fmt: skip
    item_ids = _map_ids(table, index)
    order = [columns.index(c) for c in classes]
    proba = values[:, order].astype(np.float32)
    sort = np.argsort(item_ids, kind="stable")
    return item_ids[sort], proba[sort]


def check_embeddings(table: _Table, index: dict[str, int]) -> Any:
    """Validated embeddings: ``(item_ids ascending, float32 (n_items, n_dims))``, covering every
    item of the project.

    Raises
    ------
    ModelUploadError
    """
    columns = table.columns or [f"embedding[{j}]" for j in range(table.values.shape[1])]
    _check_finite(table, table.values, columns)
    item_ids = _map_ids(table, index)
    if item_ids.shape[0] != len(index):
        have = set(item_ids.tolist())
        missing = [ext for ext, iid in index.items() if iid not in have]
        raise ModelUploadError(
            f"{len(missing)} of the project's {len(index)} items have no row (first: "
            f"{missing[:_MAX_REPORTED]}); embeddings are the feature matrix, so every item "
            "needs one."
        )
    sort = np.argsort(item_ids, kind="stable")
    return item_ids[sort], table.values[sort].astype(np.float32)


# --------------------------------------------------------------------------- versions on disk


def _kind_dir(settings: Any, project_id: int, kind: str) -> Path:
    return Path(settings.data_dir) / "model_sources" / f"project_{project_id}" / kind


def _write_arrays(folder: Path, item_ids: np.ndarray, values: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "item_ids.npy", np.ascontiguousarray(item_ids, dtype=np.int64))
    np.save(folder / "values.npy", np.ascontiguousarray(values, dtype=np.float32))


def _publish(staged: Path, settings: Any, project_id: int, kind: str, version: int) -> Path:
    """Move a fully written temporary folder to its version's place (atomic rename).

    The folder is ``v<version>-<random>``: two uploads racing for one version never write
    into each other's folder (the store refuses the second row, which removes its own).
    """
    final = _kind_dir(settings, project_id, kind) / f"v{version}-{secrets.token_hex(4)}"
    os.replace(staged, final)
    return final


def _staging(settings: Any, project_id: int, kind: str) -> Path:
    folder = _kind_dir(settings, project_id, kind)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder, prefix=".tmp-"))


def _store_version(
    store: BaseStore, settings: Any, project_id: int, kind: str, staged: Path, *,
    origin: str, n_rows: int, n_cols: int, classes: Sequence[str] = (),
    model_version: str | None = None, now: datetime | None = None,
) -> int:  # fmt: skip
    """Publish a staged folder as the next version of ``kind`` and record it; clean up on error."""
    latest = store.find_latest_model_upload(project_id, kind)
    version = 1 if latest is None else latest.version + 1
    final = _publish(staged, settings, project_id, kind, version)
    try:
        return store.create_model_upload(
            project_id, kind, version=version, origin=origin, path=str(final), n_rows=n_rows,
            n_cols=n_cols, classes=classes, model_version=model_version, now=now,
        )  # fmt: skip
    except BaseException:  # e.g. AlreadyExistsError: a concurrent upload took the version
        shutil.rmtree(final, ignore_errors=True)
        raise


def load_arrays(upload: ModelUpload) -> tuple[np.ndarray, np.ndarray]:
    """``(item_ids, values)`` of a stored version; ``values`` is memory-mapped.

    Raises
    ------
    LabelwiseError
        If the version's files are gone.
    """
    folder = Path(upload.path)
    try:
        ids = np.load(folder / "item_ids.npy")
        values = np.load(folder / "values.npy", mmap_mode="r")
    except FileNotFoundError:
        raise LabelwiseError(
            f"the files of {upload.kind} version {upload.version} are missing from {folder}; "
            "upload it again."
        ) from None
    return ids, values


# --------------------------------------------------------------------------- uploads


def _upload(
    store: BaseStore, project_id: int, path: str | Path, kind: str, *, settings: Any,
    fmt: str | None, ids_path: str | Path | None, filename: str | None, now: datetime | None,
) -> ModelUpload:  # fmt: skip
    project = store.get_project(project_id)
    fmt = upload_format(filename or str(path), fmt)
    table = read_upload(path, fmt, kind, ids_path)
    index = _item_index(store, project_id)
    if kind == "predictions":
        item_ids, values = check_predictions(project, table, index)
        classes: Sequence[str] = project.classes
    else:
        item_ids, values = check_embeddings(table, index)
        classes = ()
    staged = _staging(settings, project_id, kind)
    try:
        _write_arrays(staged, item_ids, values)
        uid = _store_version(
            store, settings, project_id, kind, staged, origin="upload",
            n_rows=int(values.shape[0]), n_cols=int(values.shape[1]), classes=classes,
            model_version=(Path(filename or str(path)).name or None), now=now,
        )  # fmt: skip
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already when published
    if kind == "predictions":
        source = store.get_model_source(project_id)
        store.set_model_source(project_id, "predictions", source.endpoint, now=now)
    log.info("project %d: %s version stored from %s", project_id, kind, filename or path)
    return store.get_model_upload(uid)


def upload_predictions(
    store: BaseStore, project_id: int, path: str | Path, *, settings: Any,
    fmt: str | None = None, ids_path: str | Path | None = None, filename: str | None = None,
    now: datetime | None = None,
) -> ModelUpload:  # fmt: skip
    """Store a file of per-item class probabilities as the project's newest predictions.

    The project's model source becomes ``predictions``: the next rounds are ranked by them.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    path : str or Path
        The file (CSV, Parquet, ``.npz`` or ``.npy``; see the module docstring).
    settings : Settings
        ``data_dir`` holds the arrays.
    fmt : {"csv", "parquet", "npz", "npy"}, optional
        Default: from ``filename`` (or ``path``).
    ids_path : str or Path, optional
        For ``.npy``: the rows' external ids, one a line.
    filename : str, optional
        The name the user gave the file (an upload's temporary path has another).
    now : datetime, optional

    Returns
    -------
    ModelUpload

    Raises
    ------
    ModelUploadError
        The file is invalid (message names row and field); nothing was stored.
    """
    return _upload(store, project_id, path, "predictions", settings=settings, fmt=fmt,
                   ids_path=ids_path, filename=filename, now=now)  # fmt: skip


def upload_embeddings(
    store: BaseStore, project_id: int, path: str | Path, *, settings: Any,
    fmt: str | None = None, ids_path: str | Path | None = None, filename: str | None = None,
    now: datetime | None = None,
) -> ModelUpload:  # fmt: skip
    """Store a file of per-item embeddings (one row per item of the project) as the project's
    newest embeddings: its feature matrix from now on. Parameters as :func:`upload_predictions`.

    Raises
    ------
    ModelUploadError
        The file is invalid or leaves items out; nothing was stored.
    """
    return _upload(store, project_id, path, "embeddings", settings=settings, fmt=fmt,
                   ids_path=ids_path, filename=filename, now=now)  # fmt: skip


# --------------------------------------------------------------------------- features and proba


def embedding_features(store: BaseStore, project_id: int, item_ids: np.ndarray) -> Any:
    """The newest embeddings as rows for ``item_ids`` (ascending), or ``None`` without any.

    Returns
    -------
    tuple of (ndarray of shape (n_items, n_dims), str) or None
        The float32 rows (the memory-mapped file itself when it has exactly these items) and
        the version's identity for the feature cache key.

    Raises
    ------
    LabelwiseError
        If items were added after the upload and have no embedding.
    """
    up = store.find_latest_model_upload(project_id, "embeddings")
    if up is None:
        return None
    ids, values = load_arrays(up)
    if ids.shape == item_ids.shape and np.array_equal(ids, item_ids):
        return values, f"embeddings:{up.id}"
    pos = np.searchsorted(ids, item_ids)
    pos_ok = np.minimum(pos, max(ids.shape[0] - 1, 0))
    missing = item_ids[(pos >= ids.shape[0]) | (ids[pos_ok] != item_ids)]
    if missing.size:
        raise LabelwiseError(
            f"{missing.size} items of project {project_id} (first ids {missing[:5].tolist()}) "
            f"have no row in embeddings version {up.version}; upload embeddings that cover "
            "every item (labelwise project model set PROJECT --embeddings FILE)."
        )
    return np.asarray(values[pos]), f"embeddings:{up.id}"


class ExternalModel:
    """A model whose probabilities come from outside: a lookup by pool position.

    The session built for it (:func:`labelwise.service.rounds.build_session`) sees a one-column
    ``X`` of pool positions; ``predict_proba`` returns the stored rows of those positions and
    ``embed`` the real feature (or embedding) rows, so BADGE-style strategies have a
    representation. It is never fitted: ``fit`` raises.

    Parameters
    ----------
    proba : ndarray of shape (n_pool, n_classes)
        Rows in pool order; rows of items without predictions are uniform (they are outside
        the candidates, so their scores are never used).
    classes : sequence of str
    features : array-like of shape (n_pool, n_features), optional
        Dense features (or embeddings): what :meth:`embed` returns rows of, and the session's
        embeddings for diversity strategies.
    """

    def __init__(self, proba: np.ndarray, classes: Sequence[str], features: Any = None) -> None:
        self.proba_ = proba
        self.classes_ = np.asarray(list(classes), dtype=object)
        self.features = features

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any) -> ExternalModel:
        raise LabelwiseError(
            "an uploaded or endpoint model is not fitted by labelwise; upload new predictions "
            "or let the endpoint train."
        )

    @staticmethod
    def _pos(X: Any) -> np.ndarray:
        return np.asarray(X)[:, 0].astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Stored probabilities of the positions in ``X[:, 0]``, shape (n, n_classes)."""
        return np.asarray(self.proba_[self._pos(X)], dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def embed(self, X: Any) -> Any:
        """Feature rows of the positions in ``X[:, 0]`` (the positions themselves without
        features: distance strategies are refused then, see :func:`active_predictions`)."""
        if self.features is None:
            return np.asarray(X, dtype=np.float32)
        return np.asarray(self.features[self._pos(X)], dtype=np.float32)


@dataclass(frozen=True)
class ExternalPredictions:
    """The active external predictions aligned to a feature matrix's rows.

    Attributes
    ----------
    model : ExternalModel
    has_row : ndarray of bool, shape (n_pool,)
        Items with a prediction (the others are not candidates).
    upload : ModelUpload
    """

    model: ExternalModel
    has_row: np.ndarray
    upload: ModelUpload

    @property
    def positions(self) -> np.ndarray:
        """The session's ``X``: one column of pool positions, shape (n_pool, 1)."""
        n = self.has_row.shape[0]
        return np.arange(n, dtype=np.float64).reshape(n, 1)


#: strategies that refit labelwise's model inside selection (or read its coefficients)
_OWN_MODEL_STRATEGIES = frozenset({"adaptive", "egl"})
#: strategies that measure distances on the embeddings or on BADGE's gradient embeddings
_DISTANCE_STRATEGIES = frozenset(
    {"badge", "kcenter", "typiclust", "information_density", "kmeans_uncertainty", "tfidf_diverse"}
)


def _check_strategy(project: Project, sparse: bool = False) -> None:
    """Refuse strategies that cannot work with a model labelwise cannot refit, and distance
    strategies on sparse (TF-IDF) features, which the session cannot use as embeddings."""
    from labelwise.strategies import get_strategy

    if sparse and project.strategy in _DISTANCE_STRATEGIES:
        raise LabelwiseError(
            f"strategy {project.strategy!r} measures distances between items, and with "
            "uploaded or endpoint predictions it needs dense features: upload embeddings "
            "(POST /api/projects/{id}/model/embeddings), or choose an uncertainty strategy "
            "(margin, entropy, least_confidence)."
        )

    try:
        cls = type(get_strategy(project.strategy))
    except LabelwiseError:  # parameters missing: the session reports that itself
        return
    if project.strategy in _OWN_MODEL_STRATEGIES or "committee" in getattr(cls, "needs", ()):
        raise LabelwiseError(
            f"strategy {project.strategy!r} needs a model labelwise fits itself (a committee, "
            "its coefficients or refits); with uploaded or endpoint predictions choose an "
            "uncertainty or diversity strategy (margin, entropy, least_confidence, badge, "
            "kcenter, typiclust, ...) or set the model source back to builtin."
        )


def active_predictions(
    store: BaseStore, project: Project, fm: Any, source: ModelSource | None = None
) -> ExternalPredictions | None:
    """The predictions that rank the pool instead of labelwise's model, or ``None``.

    ``None`` for the ``builtin`` source. For ``predictions``, the newest uploaded version; for
    ``endpoint``, the newest version the endpoint returned.

    Raises
    ------
    LabelwiseError
        The source is ``predictions`` or ``endpoint`` but nothing is stored yet.
    """
    source = store.get_model_source(project.id) if source is None else source
    if source.source == "builtin":
        return None
    origin = "upload" if source.source == "predictions" else "endpoint"
    up = store.find_latest_model_upload(project.id, "predictions", origin=origin)
    if up is None:
        if origin == "upload":
            raise LabelwiseError(
                f"project {project.name!r} ranks by uploaded predictions but has none; upload "
                "some (POST /api/projects/{id}/model/predictions) or set the source to builtin."
            )
        raise LabelwiseError(
            f"project {project.name!r} waits for its model endpoint's first predictions (a "
            "predict job fetches them; GET /api/projects/{id}/model shows its last error)."
        )
    import scipy.sparse as sp

    sparse = sp.issparse(fm.X)
    _check_strategy(project, sparse)
    ids, values = load_arrays(up)
    pos = np.searchsorted(ids, fm.item_ids)
    pos_ok = np.minimum(pos, max(ids.shape[0] - 1, 0))
    has_row = (pos < ids.shape[0]) & (ids[pos_ok] == fm.item_ids) if ids.size else pos < 0
    # rows without a prediction are never candidates, but a strategy may score a contiguous
    # block around them and drop them after: a uniform row keeps that block valid
    k = len(project.classes)
    proba = np.full((fm.n, k), 1.0 / k, dtype=np.float32)
    proba[has_row] = values[pos_ok[has_row]]
    model = ExternalModel(proba, project.classes, None if sparse else fm.X)
    return ExternalPredictions(model, has_row, up)


# --------------------------------------------------------------------------- the endpoint


class EndpointClient:
    """Calls a model endpoint's ``/predict`` and ``/train`` (schema in docs/integrations.md).

    Every URL is checked with :func:`labelwise.service.outbound.check_outbound_url` before
    each request.

    Parameters
    ----------
    url : str
        The endpoint's base URL; ``/predict`` and ``/train`` are appended.
    timeout : float
        Seconds per request (connect, read and write).
    allow : sequence of str
        ``settings.outbound_allow``.
    """

    def __init__(self, url: str, timeout: float, allow: Sequence[str] = ()) -> None:
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.allow = list(allow)

    def route_url(self, route: str) -> str:
        """The base URL with ``/<route>`` added to its path; a query string (an API key the
        endpoint wants) stays a query string."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        path = parts.path.rstrip("/") + "/" + route
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    def _post(self, route: str, body: dict[str, Any], *, reply: bool = True) -> Any:
        """POST ``body``; the JSON reply (``None`` without ``reply``: any 2xx will do)."""
        import httpx

        from labelwise.service.outbound import check_outbound_url

        url = check_outbound_url(self.route_url(route), self.allow)
        try:
            r = httpx.post(url, json=body, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ModelEndpointError(
                f"POST {url}: no answer within {self.timeout:g} s (timeout)."
            ) from None
        except httpx.HTTPError as e:
            raise ModelEndpointError(f"POST {url}: connection error ({e}).") from None
        if not 200 <= r.status_code < 300:
            kind = {5: "server error", 4: "client error", 3: "a redirect, not followed"}.get(
                r.status_code // 100, "not a success"
            )
            raise ModelEndpointError(
                f"POST {url}: HTTP {r.status_code} ({kind}): {r.text[:200]!r}."
            )
        if not reply:
            return None
        try:
            return r.json()
        except ValueError:
            raise ModelEndpointError(
                f"POST {url}: the reply is not JSON: {r.text[:200]!r}."
            ) from None

    def train(self, labels: list[dict[str, Any]], classes: Sequence[str]) -> Any:
        """``POST /train`` with ``{"labels": [{"id", "label"}], "classes"}``; any 2xx answer
        is success, its body (none, text or JSON) is ignored."""
        return self._post("train", {"labels": labels, "classes": list(classes)}, reply=False)

    def predict(
        self, items: list[dict[str, Any]], classes: Sequence[str], model_version: str | None
    ) -> Any:
        """``POST /predict`` with ``{"items": [{"id", "data"}], "classes", "model_version"}``."""
        body: dict[str, Any] = {"items": items, "classes": list(classes)}
        if model_version is not None:
            body["model_version"] = model_version
        return self._post("predict", body)


def check_reply(
    reply: Any, project: Project, ext_ids: Sequence[str], where: str
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """A validated ``/predict`` reply: ``(proba (n, n_classes) in the project's class order,
    embeddings (n, n_dims) or None, model_version)``.

    Raises
    ------
    ModelEndpointError
        Naming the batch (``where``), the row (its external id) and the field.
    """
    classes = list(project.classes)

    def bad(msg: str) -> ModelEndpointError:
        return ModelEndpointError(f"{where}: malformed reply: {msg}")

    if not isinstance(reply, dict):
        raise bad(f"expected a JSON object with 'proba' and 'classes'; got {type(reply).__name__}.")
    got = reply.get("classes", classes)
    if not isinstance(got, list) or not all(isinstance(c, str) for c in got):
        raise bad("'classes' must be a list of class names.")
    unknown = [c for c in got if c not in classes]
    if unknown:
        raise bad(f"unknown class {unknown[0]!r} in 'classes'; the project's are {classes[:10]}.")
    if sorted(got) != sorted(classes):
        raise bad(
            f"'classes' {got[:10]} must list each of the project's {len(classes)} classes once."
        )
    proba = _matrix(reply.get("proba"), "proba", len(ext_ids), len(classes), ext_ids, bad)
    _check_proba_rows(proba, project, ext_ids, got, bad)
    proba = proba[:, [got.index(c) for c in classes]].astype(np.float32)
    emb = None
    if reply.get("embeddings") is not None:
        emb = _matrix(reply["embeddings"], "embeddings", len(ext_ids), None, ext_ids, bad)
        emb = emb.astype(np.float32)
    mv = reply.get("model_version")
    return proba, emb, None if mv is None else str(mv)[:200]


def _matrix(
    value: Any, name: str, n_rows: int, width: int | None, ext_ids: Sequence[str], bad: Any
) -> np.ndarray:
    if not isinstance(value, list):
        raise bad(f"{name!r} must be a list of rows (one per item).")
    if len(value) != n_rows:
        raise bad(f"{name!r} has {len(value)} rows for {n_rows} items (wrong number of rows).")
    w = width
    for i, row in enumerate(value):
        if not isinstance(row, list):
            raise bad(f"row {i} (id {ext_ids[i]!r}) of {name!r} is not a list.")
        if w is None:
            w = len(row)
        if len(row) != w or w == 0:
            raise bad(
                f"row {i} (id {ext_ids[i]!r}) of {name!r} has {len(row)} values; expected {w} "
                "(wrong shape)."
            )
        for j, x in enumerate(row):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise bad(
                    f"row {i} (id {ext_ids[i]!r}), column {j} of {name!r} is {x!r}, not a finite "
                    "number."
                )
    return np.asarray(value, dtype=np.float64).reshape(n_rows, w or 0)


def _check_proba_rows(
    proba: np.ndarray, project: Project, ext_ids: Sequence[str], got: Sequence[str], bad: Any
) -> None:
    outside = np.argwhere((proba < 0) | (proba > 1))
    if outside.size:
        i, j = (int(x) for x in outside[0])
        raise bad(f"row {i} (id {ext_ids[i]!r}): probability of {got[j]!r} is {proba[i, j]}.")
    if project.task_type == TaskType.MULTILABEL or proba.shape[0] == 0:
        return
    sums = proba.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > PROBA_TOLERANCE)
    if off.size:
        i = int(off[0])
        raise bad(f"row {i} (id {ext_ids[i]!r}): the probabilities sum to {sums[i]:.6g}, not 1.")


def _batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Fetched:
    """A complete, validated endpoint answer staged on disk (not yet a stored version)."""

    predictions: Path
    embeddings: Path | None
    n_rows: int
    n_dims: int | None
    model_version: str | None


def _fetch(
    store: BaseStore, project: Project, settings: Any, source: ModelSource, *, train: bool
) -> _Fetched:
    """``/train`` (when ``train``) with every label, then ``/predict`` for every item in
    batches; the answers are staged in temporary folders. Raises :class:`ModelEndpointError`
    (staged files removed) on the first failure."""
    client = EndpointClient(
        str(source.endpoint), settings.model_endpoint_timeout_seconds, settings.outbound_allow
    )
    items = sorted(_all_items(store, project.id), key=lambda it: it.id)
    if train:
        labeled = [it for it in items if it.status == "labeled" and it.label is not None
                   and it.metadata.get("split") != "validation"]  # fmt: skip
        client.train([{"id": it.external_id, "label": it.label} for it in labeled],
                     project.classes)  # fmt: skip
    n, k = len(items), len(project.classes)
    staged_p = _staging(settings, project.id, "predictions")
    staged_e: Path | None = None
    ids = np.fromiter((it.id for it in items), dtype=np.int64, count=n)
    try:
        proba = np.lib.format.open_memmap(
            staged_p / "values.npy", mode="w+", dtype=np.float32, shape=(n, k)
        )
        emb = None
        model_version: str | None = None
        size = settings.model_endpoint_batch_size
        for b, batch in enumerate(_batches(items, size)):
            start = b * size
            ext = [it.external_id for it in batch]
            where = f"batch {b + 1} (items {start + 1}-{start + len(batch)} of {n})"
            reply = client.predict(
                [{"id": it.external_id, "data": it.payload} for it in batch],
                project.classes, model_version,
            )  # fmt: skip
            p, e, mv = check_reply(reply, project, ext, where)
            if model_version is not None and mv is not None and mv != model_version:
                raise ModelEndpointError(
                    f"{where}: the model version changed from {model_version!r} to {mv!r} "
                    "between batches; predictions of one version are needed."
                )
            model_version = model_version or mv
            if (e is None) != (emb is None) and b > 0:
                raise ModelEndpointError(f"{where}: embeddings in some batches but not others.")
            if e is not None:
                if emb is None:
                    staged_e = _staging(settings, project.id, "embeddings")
                    emb = np.lib.format.open_memmap(
                        staged_e / "values.npy", mode="w+", dtype=np.float32, shape=(n, e.shape[1])
                    )
                elif e.shape[1] != emb.shape[1]:
                    raise ModelEndpointError(
                        f"{where}: embeddings of width {e.shape[1]}; earlier batches had "
                        f"{emb.shape[1]}."
                    )
                emb[start : start + len(batch)] = e
            proba[start : start + len(batch)] = p
        proba.flush()
        np.save(staged_p / "item_ids.npy", ids)
        n_dims = None
        if emb is not None and staged_e is not None:
            emb.flush()
            n_dims = int(emb.shape[1])
            np.save(staged_e / "item_ids.npy", ids)
        del proba, emb
    except BaseException:
        shutil.rmtree(staged_p, ignore_errors=True)
        if staged_e is not None:
            shutil.rmtree(staged_e, ignore_errors=True)
        raise
    return _Fetched(staged_p, staged_e, n, n_dims, model_version)


def _all_items(store: BaseStore, project_id: int) -> list[Item]:
    out: list[Item] = []
    page, after_id = 50_000, None
    while True:  # keyset pages
        items = store.list_items(project_id, limit=page, after_id=after_id)
        out.extend(items)
        if len(items) < page:
            return out
        after_id = items[-1].id


def _store_fetched(
    store: BaseStore, project: Project, settings: Any, fetched: _Fetched, job: Job,
    now: datetime | None,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Publish a fetched answer as new versions and record a model version; returns
    ``(model_version_id, metrics)``."""
    pid = project.id
    try:
        pred_id = _store_version(
            store, settings, pid, "predictions", fetched.predictions, origin="endpoint",
            n_rows=fetched.n_rows, n_cols=len(project.classes), classes=project.classes,
            model_version=fetched.model_version, now=now,
        )  # fmt: skip
        emb_id = None
        if fetched.embeddings is not None and fetched.n_dims is not None:
            emb_id = _store_version(
                store, settings, pid, "embeddings", fetched.embeddings, origin="endpoint",
                n_rows=fetched.n_rows, n_cols=fetched.n_dims,
                model_version=fetched.model_version, now=now,
            )  # fmt: skip
    finally:
        for folder in (fetched.predictions, fetched.embeddings):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
    metrics: dict[str, Any] = {
        "job_id": job.id,
        "source": "endpoint",
        "endpoint_model_version": fetched.model_version,
        "predictions_upload_id": pred_id,
        "embeddings_upload_id": emb_id,
        "n_labels": sum(1 for _ in store.list_labeled(pid)),
        "accuracy": None,
        "macro_f1": None,
        "stop": False,
        "stop_reason": "continue: the model is external (its endpoint); no stopping rule is "
        "checked on it",
    }
    mv_id = store.create_model_version(pid, metrics=metrics, now=now)
    return mv_id, metrics


def endpoint_retrain(
    store: BaseStore, project: Project, settings: Any, job: Job, *, now: datetime | None = None
) -> tuple[int, dict[str, Any]] | None:
    """For an ``endpoint`` project: ``/train`` with the labels, ``/predict`` for every item, and
    the answer stored as new versions plus a model version; ``None`` for other sources.

    Raises
    ------
    ModelEndpointError
        Nothing was stored (retried by the worker after :func:`backoff_seconds`).
    """
    source = store.get_model_source(project.id)
    if source.source != "endpoint":
        return None
    fetched = _with_backoff(lambda: _fetch(store, project, settings, source, train=True),
                            job, settings)  # fmt: skip
    return _store_fetched(store, project, settings, fetched, job, now)


def _with_backoff(fn: Any, job: Job, settings: Any) -> Any:
    try:
        return fn()
    except ModelEndpointError as e:
        e.retry_after = backoff_seconds(job.attempts, settings.model_endpoint_backoff_seconds)
        raise
    except LabelwiseError as e:  # e.g. the URL is refused now (DNS changed): also retried
        err = ModelEndpointError(str(e))
        err.retry_after = backoff_seconds(job.attempts, settings.model_endpoint_backoff_seconds)
        raise err from None


def run_predict(
    store: BaseStore, job: Job, settings: Any, now: datetime | None = None
) -> int | None:
    """The ``predict`` job: ask the endpoint for every item's probabilities (no training),
    store them as new versions and a model version, then start a round when none is open.

    Returns the new model version's id (``None`` when the project's source is no longer
    ``endpoint``: the job has nothing to do).

    Raises
    ------
    ModelEndpointError
        Nothing was stored.
    """
    from labelwise.service.rounds import start_round

    if job.project_id is None:
        raise LabelwiseError(f"predict job {job.id} has no project_id; queue it for a project.")
    project = store.get_project(job.project_id)
    source = store.get_model_source(project.id)
    if source.source != "endpoint":
        log.info("project %d: predict job %d skipped (source %s)", project.id, job.id,
                 source.source)  # fmt: skip
        return None
    done = [
        v.id
        for v in store.list_model_versions(project.id)
        if v.metrics.get("job_id") == job.id and v.metrics.get("source") == "endpoint"
    ]
    if done:  # an earlier attempt stored the answer, then failed to start the round
        mv_id = done[-1]
    else:
        fetched = _with_backoff(
            lambda: _fetch(store, project, settings, source, train=False), job, settings
        )
        mv_id, _ = _store_fetched(store, project, settings, fetched, job, now)
    from labelwise.service import webhooks

    webhooks.model_version_created(store, project.id, mv_id, now=now)  # idempotent per version
    open_rounds = [r for r in store.list_rounds(project.id)
                   if r.closed is None and store.has_tasks(project.id, round_id=r.id)]  # fmt: skip
    if not open_rounds:
        start_round(store, project.id, settings=settings, now=now)
    return mv_id


# --------------------------------------------------------------------------- source and status


def set_model_source(
    store: BaseStore, project_id: int, source: str, endpoint: str | None = None, *,
    settings: Any, now: datetime | None = None,
) -> tuple[ModelSource, int | None]:  # fmt: skip
    """Set the project's model source; for ``endpoint``, check the URL and queue a ``predict``
    job (the first predictions). Returns the source and that job's id (or ``None``).

    Raises
    ------
    OutboundURLError
        The endpoint's URL is refused (not http(s), unresolvable, link-local or metadata).
    LabelwiseError
        ``predictions`` without any uploaded predictions; ``endpoint`` without a URL.
    """
    store.get_project(project_id)
    if source == "endpoint":
        from labelwise.service.outbound import check_outbound_url

        if not endpoint:
            raise LabelwiseError("source 'endpoint' needs the endpoint's URL.")
        check_outbound_url(endpoint, settings.outbound_allow)
    if (
        source == "predictions"
        and store.find_latest_model_upload(project_id, "predictions", origin="upload") is None
    ):
        raise LabelwiseError(
            "no predictions uploaded yet; upload a file (POST .../model/predictions), which "
            "makes 'predictions' the source."
        )
    ms = store.set_model_source(project_id, source, endpoint, now=now)
    job_id = None
    if source == "endpoint":
        job_id, _ = store.ensure_job("predict", project_id, {"reason": "endpoint set"}, now=now)
    return ms, job_id


@dataclass(frozen=True)
class ModelStatus:
    """What ``GET /api/projects/{id}/model`` shows.

    Attributes
    ----------
    source : ModelSource
    uploads : list of ModelUpload
        Every version, oldest first (by kind).
    active : dict
        ``{"predictions": id or None, "embeddings": id or None}``: the versions in use.
    last_error : str or None
        The newest error of a ``predict`` or ``retrain`` job not done since.
    last_error_job_id : int or None
    next_attempt_at : datetime or None
        When that job is tried again (its backoff), if it is queued.
    """

    source: ModelSource
    uploads: list[ModelUpload]
    active: dict[str, int | None]
    last_error: str | None = None
    last_error_job_id: int | None = None
    last_error_job_status: str | None = None
    next_attempt_at: datetime | None = None


def model_status(store: BaseStore, project_id: int) -> ModelStatus:
    """The project's model source, its versions and the last model job error."""
    source = store.get_model_source(project_id)
    uploads = store.list_model_uploads(project_id)
    origin = {"predictions": "upload", "endpoint": "endpoint"}.get(source.source)
    pred = None if origin is None else store.find_latest_model_upload(
        project_id, "predictions", origin=origin
    )  # fmt: skip
    emb = store.find_latest_model_upload(project_id, "embeddings")
    active = {"predictions": None if pred is None else pred.id,
              "embeddings": None if emb is None else emb.id}  # fmt: skip
    jobs = [j for j in store.list_jobs(project_id) if j.kind in ("predict", "retrain")]
    last = jobs[-1] if jobs else None
    if last is None or last.error is None or last.status == "done":
        return ModelStatus(source, uploads, active)
    return ModelStatus(
        source, uploads, active, last.error, last.id, last.status,
        last.not_before if last.status == "queued" else None,
    )  # fmt: skip


def retry_delay(error: BaseException) -> timedelta | None:
    """The backoff an error asks for (its ``retry_after``), or ``None``."""
    seconds = getattr(error, "retry_after", None)
    return None if seconds is None else timedelta(seconds=float(seconds))


def configure(
    store: BaseStore,
    project_id: int,
    *,
    settings: Any,
    endpoint: str | None = None,
    predictions: str | Path | None = None,
    embeddings: str | Path | None = None,
    ids_path: str | Path | None = None,
    fmt: str | None = None,
    builtin: bool = False,
    now: datetime | None = None,
) -> tuple[ModelStatus, int | None]:
    """What ``labelwise project model set`` does: one of an endpoint, the built-in model, or
    uploads of predictions and/or embeddings (embeddings first, so a failing predictions file
    leaves the embeddings stored). Returns the new status and a queued predict job's id.

    Raises
    ------
    LabelwiseError
        Nothing to do, or an endpoint or ``builtin`` combined with uploads.
    """
    if (endpoint is not None or builtin) and (predictions or embeddings):
        raise LabelwiseError(
            "give --endpoint, or --builtin, or uploads (--predictions and/or --embeddings)."
        )
    if endpoint is not None and builtin:
        raise LabelwiseError("give either --endpoint or --builtin, not both.")
    if endpoint is None and not builtin and predictions is None and embeddings is None:
        raise LabelwiseError(
            "nothing to set: give --endpoint URL, --predictions FILE, --embeddings FILE or "
            "--builtin."
        )
    job_id = None
    if endpoint is not None or builtin:
        _, job_id = set_model_source(
            store, project_id, "endpoint" if endpoint is not None else "builtin", endpoint,
            settings=settings, now=now,
        )  # fmt: skip
    for path, fn in ((embeddings, upload_embeddings), (predictions, upload_predictions)):
        if path is not None:
            fn(store, project_id, path, settings=settings, fmt=fmt, ids_path=ids_path,
               filename=Path(path).name, now=now)  # fmt: skip
    return model_status(store, project_id), job_id
