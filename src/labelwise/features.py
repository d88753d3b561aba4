"""Featurisers: payloads, texts, image paths and ``.npy`` rows in, float32 matrices out.

This is the compute band under :mod:`labelwise.service.features`, which reads items from the
store, keeps the on-disk cache and calls these functions. Nothing here knows of the store: every
function takes plain lists (of payloads, texts, paths, metadata) in item order and returns one
row per item.

- :func:`npy_rows`: rows of memory-mapped ``.npy`` files (no copy when every item reads row ``i``
  of one file in order; otherwise the rows are gathered);
- :func:`tfidf`: TF-IDF (scikit-learn, ``sublinear_tf``, up to :data:`MAX_FEATURES` terms,
  ``min_df=2`` from 1,000 texts on), float32 CSR;
- :func:`tabular`: numeric payload fields, standardised, dense float32, columns in sorted key
  order (missing values take the column mean, so they become 0);
- :func:`thumbnails`: 16 x 16 grayscale thumbnails (Pillow), flattened, scaled to ``[0, 1]``;
- :func:`image_descriptors`: HOG of a 64 x 64 grayscale copy plus per-channel RGB colour
  histograms (scikit-image, Pillow), the image projects' default;
- :func:`item_metadata`: the per-item columns stratified cold start reads (``source``, ``tag``,
  and for text ``length`` and one ``keyword:<kw>`` flag per project keyword);
- :func:`features_key`: the hash that says two featurisations are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import scipy.sparse as sp

from labelwise.errors import LabelwiseError
from labelwise.strategies.cold_start import keyword_flags

__all__ = [
    "FEATURE_KINDS",
    "MAX_FEATURES",
    "THUMBNAIL_SIZE",
    "FeatureMatrix",
    "TabularMoments",
    "check_keywords",
    "feature_kind",
    "features_key",
    "first_tag",
    "image_descriptors",
    "item_metadata",
    "keyword_columns",
    "npy_rows",
    "tabular",
    "tabular_columns",
    "tabular_scaling",
    "tfidf",
    "thumbnails",
    "to_8bit",
]

FEATURE_KINDS = ("npy", "text", "tabular", "image")
THUMBNAIL_SIZE = 16
HOG_SIZE = 64  # image_descriptors: side of the grayscale copy HOG reads
HOG_ORIENTATIONS = 9
HOG_CELL = 8  # pixels per cell side; blocks are 2 x 2 cells
COLOUR_BINS = 8  # per RGB channel
MAX_FEATURES = 50_000
CACHE_VERSION = "1"  # bump when a featurisation changes: every cached matrix is then recomputed
KEYWORD_PREFIX = "keyword:"


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
        Columns for stratified cold start (``source``, ``tag``; for text ``length`` and
        ``keyword:<kw>`` flags).
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
        """Row positions of ``item_ids`` (which must all be items of the project).

        Parameters
        ----------
        item_ids : array-like of shape (m,)

        Returns
        -------
        positions : ndarray of shape (m,), int64

        Raises
        ------
        LabelwiseError
            If an id has no row.
        """
        ids = np.asarray(item_ids, dtype=np.int64)
        if self.n == 0:  # nothing to index into: every id is missing
            if ids.size:
                raise LabelwiseError(
                    f"items {ids[:5].tolist()} have no feature row; recompute the features."
                )
            return np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.item_ids, ids), self.n - 1)
        bad = self.item_ids[pos] != ids
        if bad.any():
            missing = ids[bad][:5].tolist()
            raise LabelwiseError(f"items {missing} have no feature row; recompute the features.")
        return pos.astype(np.int64)


# --------------------------------------------------------------------------- kinds and keys


def feature_kind(payload: Mapping[str, Any], features_path: str | None = None) -> str:
    """How an item is featurised: ``"npy"``, ``"text"``, ``"image"`` or ``"tabular"``.

    Parameters
    ----------
    payload : mapping
        The item's payload: ``{"text": str}``, ``{"image": path}`` or numeric fields.
    features_path : str or None
        A ``.npy`` file holding the item's feature row; wins over the payload.
    """
    if features_path is not None:
        return "npy"
    if isinstance(payload.get("text"), str):
        return "text"
    if isinstance(payload.get("image"), str):
        return "image"
    return "tabular"


def first_tag(metadata: Mapping[str, Any]) -> str | None:
    """The first of ``metadata["tags"]`` (a list, or one string), or ``None``.

    ``{"tags": ["b", "a"]} -> "b"``, ``{"tags": "x"} -> "x"``, ``{"tags": []} -> None``.
    """
    tags = metadata.get("tags")
    if isinstance(tags, str):
        return tags or None
    if isinstance(tags, Sequence) and tags:
        return str(tags[0])
    return None


def check_keywords(keywords: Any) -> list[str]:
    """Validate project keywords: ``None`` -> ``[]``, one string -> a list; duplicates dropped.

    Raises
    ------
    LabelwiseError
        If ``keywords`` is not a list of non-empty strings.
    """
    if keywords is None:
        return []
    if isinstance(keywords, str):
        keywords = [keywords]
    if not isinstance(keywords, Sequence) or not all(
        isinstance(kw, str) and kw.strip() for kw in keywords
    ):
        raise LabelwiseError(
            f"keywords must be a list of non-empty strings (e.g. ['refund', 'late']); "
            f"got {keywords!r}."
        )
    return list(dict.fromkeys(keywords))  # an empty keyword would flag every text


def features_key(
    kind: str, item_ids: np.ndarray, extra: str = "", keywords: Sequence[str] = ()
) -> str:
    """Hash of a featurisation: equal keys mean equal matrices and metadata.

    Parameters
    ----------
    kind : str
        One of :data:`FEATURE_KINDS`.
    item_ids : ndarray of shape (n_items,)
        Adding or removing an item changes the key (a new TF-IDF vocabulary, new statistics).
    extra : str
        Anything else the rows depend on (the ``.npy`` paths).
    keywords : sequence of str
        The project's keywords: they add metadata columns. Without keywords the key is the one
        earlier versions computed, so existing caches stay valid.

    Returns
    -------
    key : str
        20 hexadecimal characters.
    """
    if keywords:
        extra = f"{extra}|keywords={json.dumps(list(keywords))}"
    h = hashlib.sha256(f"{CACHE_VERSION}:{kind}:{extra}:".encode())
    h.update(np.ascontiguousarray(item_ids, dtype="<i8").tobytes())
    return h.hexdigest()[:20]


# --------------------------------------------------------------------------- metadata


def keyword_columns(texts: Sequence[str], keywords: Sequence[str]) -> dict[str, np.ndarray]:
    """One boolean column per keyword: does the text contain it as a whole word?

    Parameters
    ----------
    texts : sequence of str, length n_items
    keywords : sequence of str
        Matched case-insensitively (:func:`labelwise.strategies.cold_start.keyword_flags`).

    Returns
    -------
    dict of str to ndarray of shape (n_items,), bool
        Keyed ``"keyword:<kw>"``, in the order of ``keywords``: ``(["Refund please",
        "thanks"], ["refund"]) -> {"keyword:refund": [True, False]}``.
    """
    return {f"{KEYWORD_PREFIX}{kw}": keyword_flags(texts, [kw]) for kw in keywords}


def item_metadata(
    sources: Sequence[Any],
    tags: Sequence[str | None],
    texts: Sequence[str] | None = None,
    keywords: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Metadata columns for stratified cold start.

    Parameters
    ----------
    sources : sequence, length n_items
        Where each item came from (the importer's file name), as strings.
    tags : sequence of str or None, length n_items
        Each item's first tag; ``None`` becomes ``""``.
    texts : sequence of str, length n_items, optional
        For text items: adds ``length`` (characters) and the keyword flags.
    keywords : sequence of str
        Adds one ``keyword:<kw>`` column each (text only, see :func:`keyword_columns`).

    Returns
    -------
    dict of str to ndarray of shape (n_items,)
        ``source`` and ``tag`` (object), ``length`` (int64), ``keyword:<kw>`` (bool).
    """
    metadata: dict[str, np.ndarray] = {
        "source": np.array([str(s) for s in sources], dtype=object),
        "tag": np.array([t or "" for t in tags], dtype=object),
    }
    if texts is not None:
        metadata["length"] = np.fromiter((len(t) for t in texts), np.int64, count=len(texts))
        if keywords:
            metadata.update(keyword_columns(texts, keywords))
    return metadata


# --------------------------------------------------------------------------- featurisers


def npy_rows(
    paths: Sequence[str],
    rows: Sequence[int | None],
    names: Sequence[Any] | None = None,
) -> Any:
    """Rows of memory-mapped ``.npy`` files as float32.

    Parameters
    ----------
    paths : sequence of str, length n_items
        The ``.npy`` file of each item (2-D arrays of one width).
    rows : sequence of int or None, length n_items
        The row of each item in its file.
    names : sequence, length n_items, optional
        Item names for error messages (external ids).

    Returns
    -------
    X : memmap or ndarray of shape (n_items, n_features), float32
        The memory map itself, with no copy, when one float32 file is read row ``i`` for item
        ``i`` in order (the usual big pool); otherwise a gathered array.

    Raises
    ------
    LabelwiseError
        If a row is missing, a file is not 2-D, or files differ in width.
    """
    missing = [i for i, r in enumerate(rows) if r is None or r < 0]
    if missing:
        i = missing[0]
        name = names[i] if names is not None else f"at position {i}"
        raise LabelwiseError(f"item {name!r} has features_path but no features_row; set both.")
    rows_arr = np.asarray(rows, dtype=np.int64)
    files: dict[str, np.ndarray] = {}
    for p in dict.fromkeys(paths):
        arr = np.load(p, mmap_mode="r")
        if arr.ndim != 2:
            raise LabelwiseError(f"{p} holds an array of shape {arr.shape}; expected 2-D.")
        files[p] = arr
    if len(files) == 1:
        (arr,) = files.values()
        if rows_arr.shape[0] == arr.shape[0] and np.array_equal(rows_arr, np.arange(arr.shape[0])):
            return arr if arr.dtype == np.float32 else np.asarray(arr, dtype=np.float32)
    widths = {a.shape[1] for a in files.values()}
    if len(widths) != 1:
        raise LabelwiseError(f"feature files have different widths {sorted(widths)}; align them.")
    out = np.empty((len(paths), widths.pop()), dtype=np.float32)
    path_arr = np.array(paths, dtype=object)
    for p, arr in files.items():
        sel = np.flatnonzero(path_arr == p)
        out[sel] = arr[rows_arr[sel]]
    return out


def tfidf(texts: Sequence[str]) -> sp.csr_matrix:
    """TF-IDF of texts: ``sublinear_tf``, smooth idf, l2-normalised rows.

    Parameters
    ----------
    texts : sequence of str, length n_items

    Returns
    -------
    X : CSR matrix of shape (n_items, n_terms), float32
        Columns are the vocabulary in sorted order (at most :data:`MAX_FEATURES`; terms in a
        single text are dropped from 1,000 texts on). Texts with no terms at all (only stop words
        or punctuation) give one all-zero column. ``["good movie", "bad movie"]``: row 0 is
        ``[0, 0.8148, 0.5797]`` over ``bad, good, movie`` (idf ``1 + ln 1.5`` and ``1``).
    """
    # scikit-learn is imported here, not at the top, so the module stays cheap to import.
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


def tabular(
    payloads: Sequence[Mapping[str, Any]], scaling: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Numeric payload fields, standardised per column.

    Parameters
    ----------
    payloads : sequence of mapping, length n_items
        Non-numeric fields are ignored; booleans count as 0 / 1.
    scaling : mapping, optional
        Frozen columns, means and scales (:func:`tabular_scaling` of earlier payloads): new
        items are scaled like the rows already stored, so a feature matrix can grow without
        being recomputed. By default they are fitted on ``payloads``.

    Returns
    -------
    X : ndarray of shape (n_items, n_columns), float32
        Columns in sorted key order; a missing value takes its column's mean (so it becomes 0);
        a constant column becomes 0.

    Raises
    ------
    LabelwiseError
        If no payload has a numeric field.
    """
    if scaling is None:
        scaling = tabular_scaling(payloads)
    mean = np.asarray(scaling["mean"], dtype=np.float64)
    X = _tabular_values(payloads, scaling["columns"])
    X = np.where(np.isnan(X), mean, X)
    return ((X - mean) / np.asarray(scaling["scale"], dtype=np.float64)).astype(np.float32)


def tabular_columns(payloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """The numeric payload fields of any item, sorted: the columns of :func:`tabular`."""
    return sorted({k for p in payloads for k, v in p.items() if isinstance(v, Real)})


def tabular_scaling(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Columns, means and scales that :func:`tabular` standardises with (JSON-serialisable).

    Returns
    -------
    dict
        ``columns`` (sorted names), ``mean`` (a column's mean over the items that have it, 0
        when none has) and ``scale`` (the standard deviation after imputation, 1 for a
        constant column), one float per column.

    Raises
    ------
    LabelwiseError
        If no payload has a numeric field.
    """
    columns = tabular_columns(payloads)
    if not columns:
        raise LabelwiseError(
            "tabular items need numeric payload fields (e.g. {'x1': 0.3, 'x2': 7}); none "
            "were found. Import text with text_field=, or give items features_path."
        )
    X = _tabular_values(payloads, columns)
    mean = np.nanmean(X, axis=0) if X.shape[0] else np.zeros(len(columns))
    mean = np.where(np.isnan(mean), 0.0, mean)
    std = np.where(np.isnan(X), mean, X).std(axis=0)
    return {"columns": columns, "mean": mean.tolist(), "scale": _scale(std, mean).tolist()}


def _scale(std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """A column's divisor: its standard deviation, 1 for a constant column.

    A constant column of a value like 0.1 has a computed deviation of a few ulps, not 0; it
    counts as constant too, or its rows would become rounding noise blown up to +-1.
    """
    return np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


class TabularMoments:
    """Running column statistics of tabular payloads, page by page.

    What :func:`tabular_scaling` computes over every payload at once, in memory bounded by the
    number of columns: per column the count of items that have it, their mean and their sum of
    squared deviations, merged page into page with Chan, Golub and LeVeque's pairwise update.
    Columns may first appear in any page.

    Examples
    --------
    >>> m = TabularMoments()
    >>> _ = m.update([{"a": 1.0}, {"a": 3.0}])
    >>> _ = m.update([{"a": 5.0, "b": 2}, {}])
    >>> m.scaling()["mean"], m.n_items
    ([3.0, 2.0], 4)
    """

    def __init__(self) -> None:
        self.n_items = 0
        self._moments: dict[str, tuple[int, float, float]] = {}  # count, mean, M2

    def update(self, payloads: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
        """Add a page of payloads.

        Returns
        -------
        columns : list of str
            The page's numeric fields, sorted.
        values : ndarray of shape (n_page, n_columns), float64
            Their raw values, NaN where an item lacks one: what :meth:`transform` scales once
            every page has been seen.
        """
        columns = tabular_columns(payloads)
        values = _tabular_values(payloads, columns)
        self.n_items += len(payloads)
        present = ~np.isnan(values)
        counts = present.sum(axis=0)
        for j, c in enumerate(columns):
            col = values[present[:, j], j]
            n_b, mean_b = int(counts[j]), float(col.mean())
            m2_b = float(((col - mean_b) ** 2).sum())
            n_a, mean_a, m2_a = self._moments.get(c, (0, 0.0, 0.0))
            n = n_a + n_b
            delta = mean_b - mean_a
            self._moments[c] = (
                n,
                mean_a + delta * n_b / n,
                m2_a + m2_b + delta * delta * n_a * n_b / n,
            )
        return columns, values

    def scaling(self) -> dict[str, Any]:
        """The columns, means and scales of every page so far (as :func:`tabular_scaling`).

        Raises
        ------
        LabelwiseError
            If no payload had a numeric field.
        """
        columns = sorted(self._moments)
        if not columns:
            raise LabelwiseError(
                "tabular items need numeric payload fields (e.g. {'x1': 0.3, 'x2': 7}); none "
                "were found. Import text with text_field=, or give items features_path."
            )
        mean = np.array([self._moments[c][1] for c in columns])
        # a missing value is imputed with the mean: it adds to the count, not to M2
        std = np.sqrt(np.array([self._moments[c][2] for c in columns]) / self.n_items)
        return {"columns": columns, "mean": mean.tolist(), "scale": _scale(std, mean).tolist()}

    @staticmethod
    def transform(
        columns: Sequence[str], values: np.ndarray, scaling: Mapping[str, Any]
    ) -> np.ndarray:
        """A page's raw ``values`` (from :meth:`update`) standardised with ``scaling``.

        Returns
        -------
        X : ndarray of shape (n_page, len(scaling["columns"])), float32
            The rows :func:`tabular` gives for the page's payloads with the same ``scaling``.
        """
        where = {c: j for j, c in enumerate(columns)}
        mean = np.asarray(scaling["mean"], dtype=np.float64)
        X = np.tile(mean, (values.shape[0], 1))
        for k, c in enumerate(scaling["columns"]):
            j = where.get(c)
            if j is not None:
                X[:, k] = np.where(np.isnan(values[:, j]), mean[k], values[:, j])
        return ((X - mean) / np.asarray(scaling["scale"], dtype=np.float64)).astype(np.float32)


def _tabular_values(payloads: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> np.ndarray:
    """Raw float64 values, NaN where an item lacks a column (or it is not numeric)."""
    X = np.full((len(payloads), len(columns)), np.nan, dtype=np.float64)
    for i, p in enumerate(payloads):
        for j, c in enumerate(columns):
            v = p.get(c)
            if isinstance(v, Real):
                X[i, j] = float(v)
    return X


def thumbnails(paths: Sequence[str], size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """Grayscale ``size x size`` thumbnails of image files, flattened.

    Parameters
    ----------
    paths : sequence of str, length n_items
    size : int

    Returns
    -------
    X : ndarray of shape (n_items, size * size), float32
        Pixel values in ``[0, 1]`` (``value / 255``), row by row.

    Raises
    ------
    LabelwiseError
        If a file cannot be read as an image.
    """
    from PIL import Image  # only image projects need Pillow

    out = np.empty((len(paths), size * size), dtype=np.float32)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as img:
                thumb = img.convert("L").resize((size, size))
        except OSError as e:
            raise LabelwiseError(f"cannot read image {p!r} ({e}); fix or remove the item.") from e
        out[i] = np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    return out


def to_8bit(img: Any) -> Any:
    """A 16- or 32-bit single-channel Pillow image as 8-bit ``"L"``, its range mapped onto
    0..255; other images unchanged.

    Pillow's ``convert("RGB")`` clips such images at 255 (a 16-bit photo comes out almost all
    white). ``I;16`` images and ``I`` images within 0..65535 (16-bit PNGs) are divided by 257,
    so 65535 is 255 and 25700 is 100; other ``I`` and ``F`` images are stretched from their
    minimum to their maximum.
    """
    from PIL import Image

    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img
    a = np.asarray(img, dtype=np.float64)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if img.mode != "F" and lo >= 0 and hi <= 65535:
        a = a / 257.0
    else:
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _open_rgb(path: str, size: int) -> Any:
    """An image file as RGB, EXIF orientation applied, resized to ``size x size``."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale
            img = to_8bit(ImageOps.exif_transpose(img))  # 16-bit images: not clipped
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                background = Image.new("RGB", img.size, (255, 255, 255))
                background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
                img = background
            return img.convert("RGB").resize(
                (size, size), Image.Resampling.BILINEAR, reducing_gap=2.0
            )
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise LabelwiseError(f"cannot read image {path!r} ({e}); fix or remove the item.") from e


def image_descriptors(
    paths: Sequence[str],
    size: int = HOG_SIZE,
    orientations: int = HOG_ORIENTATIONS,
    cell: int = HOG_CELL,
    bins: int = COLOUR_BINS,
) -> np.ndarray:
    """Shape and colour descriptors of image files: HOG plus RGB colour histograms.

    Every image is read with its EXIF orientation applied, transparent pixels on white, and
    resized to ``size x size`` (the aspect ratio is not kept: a descriptor of fixed length per
    image). Two parts are concatenated:

    - **HOG** (:func:`skimage.feature.hog`) of the grayscale copy: ``orientations`` unsigned
      gradient-direction bins over 0-180 degrees (bin 0 = gradients along the rows' direction,
      i.e. vertical edges; bin ``orientations // 2`` = horizontal edges), ``cell x cell`` pixel
      cells, 2 x 2-cell blocks, L2-Hys normalised; ``((size // cell) - 1) ** 2 * 4 *
      orientations`` values (1,764 with the defaults);
    - **colour**: for R, G and B in turn a ``bins``-bin histogram of the channel over 0..255,
      as fractions of the pixels (each channel's bins sum to 1); ``3 * bins`` values (24).

    Parameters
    ----------
    paths : sequence of str, length n_items
    size : int, default=64
        Side of the resized copy; a multiple of ``cell``, at least ``2 * cell``.
    orientations : int, default=9
    cell : int, default=8
    bins : int, default=8

    Returns
    -------
    X : ndarray of shape (n_items, n_hog + 3 * bins), float32
        HOG first, then the R, G and B histograms. A pure red image has colour part
        ``[0]*7 + [1], [1] + [0]*7, [1] + [0]*7``.

    Raises
    ------
    LabelwiseError
        If a file cannot be read as an image, or ``size`` / ``cell`` / ``bins`` do not fit.
    """
    if cell < 1 or size < 2 * cell or size % cell or bins < 1 or orientations < 1:
        raise LabelwiseError(
            f"image_descriptors needs size a multiple of cell and >= 2 * cell, bins >= 1 and "
            f"orientations >= 1; got size={size}, cell={cell}, bins={bins}, "
            f"orientations={orientations}."
        )
    from skimage.feature import hog  # only image projects need scikit-image

    n_blocks = size // cell - 1
    n_hog = n_blocks * n_blocks * 4 * orientations
    out = np.empty((len(paths), n_hog + 3 * bins), dtype=np.float32)
    edges = np.linspace(0, 256, bins + 1)
    for i, p in enumerate(paths):
        rgb = np.asarray(_open_rgb(p, size), dtype=np.uint8)
        gray = rgb @ np.array([0.299, 0.587, 0.114]) / 255.0  # ITU-R 601, as Pillow's "L"
        out[i, :n_hog] = hog(
            gray,
            orientations=orientations,
            pixels_per_cell=(cell, cell),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
            feature_vector=True,
        )
        n_pixels = size * size
        for c in range(3):
            counts, _ = np.histogram(rgb[..., c], bins=edges)
            out[i, n_hog + c * bins : n_hog + (c + 1) * bins] = counts / n_pixels
    return out
