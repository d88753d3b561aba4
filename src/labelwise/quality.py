"""Label errors already collected: which labelled rows are likely mislabeled.

Active learning sends people the hardest, most ambiguous items, so the labels it collects are
the ones most likely to be wrong. This module finds them after the fact with *confident
learning* (Northcutt, Jiang & Chuang 2021, JAIR 70): every labelled row is predicted by a model
that did not see it (:func:`labelwise.models.training.out_of_fold_proba`), and cleanlab's
:func:`cleanlab.filter.find_label_issues` flags the rows whose given label disagrees with those
out-of-fold probabilities more than the estimated noise rates explain. We call cleanlab rather
than re-derive it; this module only validates, maps labels to indices and back, and ranks.

Compute band, store-free: everything takes arrays and returns positions into them, so the
service maps positions to item ids at its edge (as it does for :class:`~labelwise.loop.Session`).

- :func:`find_label_issues` (model, features, labels) and :func:`label_issues_from_proba`
  (labels and out-of-fold probabilities already at hand, e.g. from a retrain) return
  :class:`LabelIssues`, most suspect first.
- :func:`check_label_file` reads a CSV / JSON Lines label file (id, label and a text column or
  numeric columns), builds features with :mod:`labelwise.features` and returns a
  :class:`LabelFileCheck` (``labelwise labels check FILE`` is this one call).

>>> issues = find_label_issues(LogisticRegression(), X, y)          # doctest: +SKIP
>>> issues.idx[:3], issues.quality[:3], issues.suggested[:3]      # doctest: +SKIP
"""

from __future__ import annotations

import csv
import numbers
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import LabelwiseError

__all__ = [
    "FILTER_METHODS",
    "MIN_ROWS_PER_CLASS",
    "LabelFileCheck",
    "LabelIssues",
    "check_label_file",
    "find_label_issues",
    "label_issues_from_proba",
]

#: cleanlab's ``filter_by`` rules that work from out-of-fold probabilities alone.
FILTER_METHODS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
)
#: Fewest labelled rows a class may have: with fewer, the models of the folds barely see the
#: class, its out-of-fold probabilities are near zero and every row of it looks mislabeled.
MIN_ROWS_PER_CLASS = 5


@dataclass(frozen=True)
class LabelIssues:
    """Rows whose given label is likely wrong, most suspect first.

    Attributes
    ----------
    idx : ndarray of shape (n_issues,), int64
        Positions into the ``X`` / ``y`` that were checked.
    quality : ndarray of shape (n_issues,), float64
        Label-quality score in ``[0, 1]``: the out-of-fold probability of the *given* label
        (cleanlab's ``self_confidence``). Lower is more suspect; sorted ascending.
    given : ndarray of shape (n_issues,)
        The labels as given.
    suggested : ndarray of shape (n_issues,)
        The out-of-fold most probable class: what a reviewer should look at first.
    suggested_proba : ndarray of shape (n_issues,), float64
        Out-of-fold probability of ``suggested``.
    n_checked : int
        Rows checked (``len(y)``).
    classes : ndarray of shape (n_classes,)
        The classes, sorted (columns of the probabilities).
    """

    idx: np.ndarray
    quality: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    suggested_proba: np.ndarray
    n_checked: int
    classes: np.ndarray

    def __len__(self) -> int:
        return int(self.idx.shape[0])

    @property
    def rate(self) -> float:
        """Share of the checked rows that were flagged."""
        return len(self) / self.n_checked if self.n_checked else 0.0


def _check_labels(y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D labels -> (labels, classes, class indices); at least two classes."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise LabelwiseError(
            f"labels must be 1-D (one class per row); got shape {y.shape}. Multilabel sets are "
            "not checked for label errors."
        )
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as e:  # mixed types, e.g. 1 and "1"
        raise LabelwiseError(
            f"labels mix types ({e}); give every label the same type (e.g. all strings)."
        ) from None
    if classes.shape[0] < 2:
        found = f"only one class ({_plain(classes[0])!r})" if classes.size else "no labels"
        raise LabelwiseError(
            f"{found} to check; finding label errors needs at least two classes, each with "
            "labelled rows."
        )
    return y, classes, codes.astype(np.int64)


def _check_rows_per_class(classes: np.ndarray, codes: np.ndarray, min_rows_per_class: int) -> None:
    counts = np.bincount(codes, minlength=classes.shape[0])
    few = np.flatnonzero(counts < min_rows_per_class)
    if few.size:
        listed = ", ".join(f"{_plain(classes[c])!r}: {counts[c]}" for c in few[:5])
        raise LabelwiseError(
            f"too few rows per class ({listed}); every class needs at least "
            f"{min_rows_per_class} labelled rows to be cross-validated. Label more of them, or "
            "drop or merge the class."
        )


def label_issues_from_proba(
    y: Any,
    proba: Any,
    *,
    classes: Any = None,
    filter_by: str = "prune_by_noise_rate",
) -> LabelIssues:
    """Flag likely label errors from out-of-fold predicted probabilities.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Given labels.
    proba : array-like of shape (n_samples, n_classes)
        Out-of-fold probabilities (each row predicted by a model that did not see it), columns
        in the order of ``classes``. In-sample probabilities make every label look right.
    classes : array-like of shape (n_classes,), optional
        Column labels of ``proba``; default the sorted unique labels of ``y`` (a fitted model's
        ``classes_``).
    filter_by : str, default="prune_by_noise_rate"
        cleanlab's rule, one of :data:`FILTER_METHODS`. The default flags, per pair of given and
        true class, as many rows as the estimated joint noise says, those with the largest
        margin ``p(other) - p(given)``.

    Returns
    -------
    LabelIssues
        Flagged rows, lowest quality (out-of-fold probability of the given label) first; ties
        by position.
    """
    from cleanlab.filter import find_label_issues as _cleanlab_find

    y, seen, codes = _check_labels(y)
    classes = seen if classes is None else np.asarray(classes)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (y.shape[0], classes.shape[0]):
        raise LabelwiseError(
            f"proba must have shape (n_samples, n_classes) = ({y.shape[0]}, {classes.shape[0]}); "
            f"got {proba.shape}."
        )
    if filter_by not in FILTER_METHODS:
        raise LabelwiseError(
            f"unknown filter_by {filter_by!r}; use one of: {', '.join(FILTER_METHODS)}."
        )
    # re-index the labels by the proba's columns (classes may hold classes y lacks)
    known = np.isin(seen, classes)
    if not known.all():
        raise LabelwiseError(
            f"labels {seen[~known].tolist()} are not among the classes of proba "
            f"{classes.tolist()}; give classes= in the order of proba's columns."
        )
    order = np.argsort(classes, kind="stable")
    labels = order[np.searchsorted(classes, seen, sorter=order)][codes]
    # n_jobs=1: no worker processes (the service calls this from threads); deterministic
    flagged = _cleanlab_find(labels, proba, filter_by=filter_by, n_jobs=1)
    quality = proba[np.arange(labels.shape[0]), labels]
    idx = np.flatnonzero(flagged)
    idx = idx[np.lexsort((idx, quality[idx]))]  # lowest quality first, then position
    best = proba[idx].argmax(axis=1)
    return LabelIssues(
        idx=idx.astype(np.int64),
        quality=quality[idx],
        given=y[idx],
        suggested=classes[best],
        suggested_proba=proba[idx, best],
        n_checked=int(y.shape[0]),
        classes=classes,
    )


def find_label_issues(
    template_model: Any,
    X: Any,
    y: Any,
    *,
    n_splits: int = 5,
    random_state: int = 0,
    filter_by: str = "prune_by_noise_rate",
    min_rows_per_class: int = MIN_ROWS_PER_CLASS,
) -> LabelIssues:
    """Flag likely mislabeled rows of a labelled set (confident learning, via cleanlab).

    Out-of-fold probabilities come from ``n_splits`` stratified folds, each fitted on a fresh
    clone of ``template_model``; :func:`label_issues_from_proba` flags and ranks.

    Parameters
    ----------
    template_model : classifier
        Anything with ``fit`` / ``predict_proba`` (cloned per fold, never fitted itself).
    X : array-like or sparse matrix of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Given labels (any sortable type).
    n_splits : int, default=5
        Cross-validation folds (fewer when the rarest class has fewer rows).
    random_state : int, default=0
        Seeds the fold assignment (same seed, same result).
    filter_by : str, default="prune_by_noise_rate"
        cleanlab's rule; see :data:`FILTER_METHODS`.
    min_rows_per_class : int, default=5
        Refuse a class with fewer labelled rows (:data:`MIN_ROWS_PER_CLASS`).

    Returns
    -------
    LabelIssues
        Positions into ``X`` / ``y``, most suspect first.

    Raises
    ------
    LabelwiseError
        Labels not 1-D, one class only, a class with fewer than ``min_rows_per_class`` rows, or
        ``X`` and ``y`` of different lengths.
    """
    from labelwise.models.training import out_of_fold_proba

    y, classes, codes = _check_labels(y)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_rows != y.shape[0]:
        raise LabelwiseError(f"X has {n_rows} rows but y has {y.shape[0]} labels; align them.")
    for name, value, low in (
        ("n_splits", n_splits, 2),
        ("min_rows_per_class", min_rows_per_class, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise LabelwiseError(f"{name} must be an integer >= {low}; got {value!r}.")
    _check_rows_per_class(classes, codes, min_rows_per_class)
    # fit on class indices: any label type works and the columns are in `classes` order
    proba = out_of_fold_proba(
        template_model, X, codes, n_splits=n_splits, random_state=random_state
    )
    return label_issues_from_proba(y, proba, classes=classes, filter_by=filter_by)


# ------------------------------------------------------------------------------ label files


@dataclass(frozen=True)
class LabelFileCheck:
    """The suspects of a label file (:func:`check_label_file`).

    Attributes
    ----------
    path : str
    ids : ndarray of shape (n_issues,), object
        Id of each suspect row (the id column, or the 1-based row number without one).
    issues : LabelIssues
        Positions are rows of the file that carry a label (see ``n_skipped``).
    n_rows : int
        Labelled rows checked.
    n_skipped : int
        Rows without a label (nothing to check).
    features : {"text", "tabular"}
        How rows became features: TF-IDF of the text column, or the numeric columns.
    feature_columns : tuple of str
    """

    path: str
    ids: np.ndarray
    issues: LabelIssues
    n_rows: int
    n_skipped: int
    features: str
    feature_columns: tuple[str, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per suspect, most suspect first: rank, id, given, suggested, quality."""
        it = self.issues
        return [
            {
                "rank": r + 1,
                "id": _plain(self.ids[r]),
                "given": _plain(it.given[r]),
                "suggested": _plain(it.suggested[r]),
                "quality": round(float(it.quality[r]), 6),
                "suggested_proba": round(float(it.suggested_proba[r]), 6),
            }
            for r in range(len(it))
        ]

    def write_csv(self, out: str | os.PathLike[str]) -> int:
        """Write every suspect to ``out`` (temporary file, then rename: never half-written).

        Returns
        -------
        int
            Rows written.
        """
        path = Path(out)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        fields = ["rank", "id", "given", "suggested", "quality", "suggested_proba"]
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(self.rows())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(self.issues)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _read_table(path: Path, fmt: str | None) -> Any:
    import pandas as pd

    if not path.is_file():
        raise LabelwiseError(f"no such file: {path}.")
    fmt = fmt or {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
        path.suffix.lower()
    )
    if fmt not in ("csv", "tsv", "jsonl"):
        raise LabelwiseError(
            f"cannot tell the format of {path.name}; name it .csv, .tsv or .jsonl, or pass "
            "format='csv' / 'tsv' / 'jsonl'."
        )
    try:
        if fmt == "jsonl":
            # dtype=False: keep ids and labels as written (no "007" -> 7)
            return pd.read_json(path, lines=True, dtype=False)
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", keep_default_na=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise LabelwiseError(f"cannot read {path.name} as {fmt}: {e}".rstrip(".") + ".") from None


def _need_column(df: Any, name: str, option: str, path: Path) -> None:
    if name not in df.columns:
        have = ", ".join(map(str, df.columns[:20])) or "none"
        raise LabelwiseError(
            f"{path.name} has no column {name!r} (columns: {have}); name it with {option}."
        )


def _labels_of(values: Any) -> np.ndarray:
    """Labels as one type: strings if the column mixes types (CSV ``1`` and ``"a"``), integers
    if every value is a whole float (a CSV label column with empty cells is read as float)."""
    vals = [_plain(v) for v in values]
    if vals and all(isinstance(v, float) and v.is_integer() for v in vals):
        vals = [int(v) for v in vals]
    if len({type(v) for v in vals}) > 1:
        vals = [str(v) for v in vals]
    out = np.empty(len(vals), dtype=object)
    out[:] = vals
    if all(isinstance(v, str) for v in vals):
        return out.astype(str)
    return np.asarray(vals)


def check_label_file(
    path: str | os.PathLike[str],
    *,
    text_field: str | None = None,
    id_field: str | None = "id",
    label_field: str = "label",
    format: str | None = None,
    model: Any = None,
    n_splits: int = 5,
    random_state: int = 0,
    min_rows_per_class: int = MIN_ROWS_PER_CLASS,
) -> LabelFileCheck:
    """Find likely label errors in a CSV / TSV / JSON Lines label file.

    Parameters
    ----------
    path : path
        One row per item: an id column, a label column, and either a text column (TF-IDF
        features) or numeric columns (standardised, :func:`labelwise.features.tabular`).
    text_field : str, optional
        Column with the text. ``None``: ``"text"`` if the file has it, else the numeric
        columns; ``""``: the numeric columns.
    id_field : str or None, default="id"
        Column with the row ids; ``None`` or ``""`` numbers rows from 1.
    label_field : str, default="label"
        Column with the given labels; rows with an empty label are skipped.
    format : {"csv", "tsv", "jsonl"}, optional
        Default from the file extension.
    model : classifier, optional
        Default ``LogisticRegression(max_iter=1000)``.
    n_splits, random_state, min_rows_per_class
        As in :func:`find_label_issues`.

    Returns
    -------
    LabelFileCheck

    Raises
    ------
    LabelwiseError
        Unreadable file, a missing column, duplicate ids, no numeric columns for a tabular
        file, one class only, or a class with too few rows. Nothing is written either way.
    """
    from labelwise import features

    path = Path(path)
    df = _read_table(path, format)
    _need_column(df, label_field, "label_field (--label-field)", path)
    if id_field:
        _need_column(df, id_field, "id_field (--id-field), or '' to number rows", path)
    has_label = df[label_field].notna() & (df[label_field].astype(str).str.strip() != "")
    n_skipped = int((~has_label).sum())
    row_no = np.flatnonzero(has_label.to_numpy()) + 1
    df = df[has_label].reset_index(drop=True)
    if id_field:
        ids = _labels_of(df[id_field])
        uniq, counts = np.unique(ids.astype(str), return_counts=True)
        if np.any(counts > 1):
            dup = uniq[counts > 1][:3].tolist()
            raise LabelwiseError(
                f"ids repeat in column {id_field!r} (e.g. {dup}); make them unique."
            )
    else:
        ids = row_no.astype(np.int64)
    y = _labels_of(df[label_field])

    use_text = text_field if text_field is not None else ("text" if "text" in df.columns else "")
    if use_text:
        _need_column(df, use_text, "text_field (--text-field), or '' for numeric columns", path)
        texts = df[use_text].fillna("").astype(str).tolist()
        kind, cols = "text", (use_text,)
    else:
        skip = {label_field, id_field}
        cols = tuple(str(c) for c in df.columns if c not in skip and _is_numeric_column(df[c]))
        if not cols:
            raise LabelwiseError(
                f"{path.name} has no text column and no numeric columns to use as features; "
                "name the text column with text_field (--text-field)."
            )
        kind = "tabular"
    # validate the labels before building features: cheap errors first
    _, classes, codes = _check_labels(y)
    _check_rows_per_class(classes, codes, min_rows_per_class)
    if kind == "text":
        X = features.tfidf(texts)
    else:
        X = features.tabular(df[list(cols)].to_dict("records"))
    if model is None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=1000)
    issues = find_label_issues(
        model,
        X,
        y,
        n_splits=n_splits,
        random_state=random_state,
        min_rows_per_class=min_rows_per_class,
    )
    return LabelFileCheck(
        path=str(path),
        ids=np.asarray(ids, dtype=object)[issues.idx],
        issues=issues,
        n_rows=int(y.shape[0]),
        n_skipped=n_skipped,
        features=kind,
        feature_columns=cols,
    )


def _is_numeric_column(col: Any) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return bool(is_numeric_dtype(col) or is_bool_dtype(col))
