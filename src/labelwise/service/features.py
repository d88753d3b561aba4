"""Feature matrices for a project's items: what strategies and models see.

:func:`project_features` hands the payloads, texts, paths and metadata of a project's items to
the featurisers of :mod:`labelwise.features` (the compute band: ``.npy`` rows, TF-IDF,
standardised tabular columns, image HOG + colour histograms or thumbnails; see there for what
each does). This module only reads the store, keeps the feature versions on disk and calls them.

Feature versions
----------------
A project's features live under ``settings.data_dir/features/project_<id>/`` as one *feature
version* at a time: ``v<k>.npy`` (dense float32 rows, memory-mapped; ``v<k>.npz`` for sparse
TF-IDF), ``v<k>.ids.npy`` (row -> item id, ascending) and one ``v<k>.meta-<j>.npy`` per metadata
column (string columns as int32 codes into a list of values kept in the manifest).
``manifest.json`` (written atomically, the commit point) names the current version, how many
rows of its files are valid and what it was computed with (kind, method, keywords, tabular
scaling), and lists every version the project had. A round reads the manifest, sees that it
covers every item (``count_items`` equals its row count: items are never deleted) and
memory-maps the files: no item is listed and no per-item Python object is built.

A new version of ``.npy``, image or tabular items is built page by page (keyset pages of
:data:`_PAGE` items; tabular columns scaled once every page's running statistics are in, see
:class:`labelwise.features.TabularMoments`), so its memory follows the page, not the project:
a 1M-item project never lists its items at once. Text versions fit TF-IDF or embed every text,
so they hold the texts (not the items) in memory.

When items were added, only the new ones are listed (keyset paging after the version's last
id) and featurised, and their rows are appended to the version's files in place, for the kinds
whose rows do not depend on the other items: ``.npy`` rows, image descriptors, and tabular
columns scaled with the version's frozen means and scales. TF-IDF and sentence embeddings
refit over every text, so a text project gets a new version instead (embeddings are cached per
text, so only new texts are embedded); so does any project whose method, keywords or (tabular)
columns changed. A superseded version's files are removed. Writers hold a lock file, so the
API process and a worker never build a version twice at once.

The manifest is a file, not a table: the files it describes live in ``data_dir`` (shared with
Ray nodes, see :mod:`labelwise.scale`), and a manifest written after the files, beside them,
can never name files another data directory lacks; a database row could.

An import with ``on_duplicate=update`` that replaces what some item's features come from
(payload, tags, ``.npy`` row) bumps the project's ``items_revision``; a version built at another
revision is not used or grown, a new one is built (page by page, as above), so a replaced item
never keeps its old row.

Alongside ``X`` come per-item metadata columns for stratified cold start: ``source`` (the
importer's file name), ``tag`` (an item's first ``metadata["tags"]`` entry) and, for text,
``length`` (characters) and one boolean ``keyword:<kw>`` column per keyword of the project's
``strategy_params["keywords"]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
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
    "read_manifest",
]

_PAGE = 50_000  # items listed per store call
# images are decoded and described a page at a time: 2,000 HOG rows are 14 MB, 50,000 were 357
_IMAGE_PAGE = 2_000
_LEGACY_METHODS = ("tfidf", "thumbnails")  # cache keys without the method name


def feature_kind(item: Item) -> str:
    """How an item is featurised: ``"npy"``, ``"text"``, ``"image"`` or ``"tabular"``."""
    return F.feature_kind(item.payload, item.features_path)


def first_tag(item: Item) -> str | None:
    """The item's first tag (``metadata["tags"]``: a list, or one string), or ``None``."""
    return F.first_tag(item.metadata)


def _iter_items(store: BaseStore, project_id: int, after_id: int | None = None) -> Iterator[Item]:
    """Every item of the project (above ``after_id``), ascending, paged by keyset."""
    for page in _pages(store, project_id, after_id=after_id):
        yield from page


def _pages(
    store: BaseStore,
    project_id: int,
    limit: int | None = None,
    after_id: int | None = None,
    page: int | None = None,
) -> Iterator[list[Item]]:
    """Pages of at most ``page`` (default :data:`_PAGE`) items of the project (above
    ``after_id``), ascending ids, paged by keyset; the first ``limit`` items only, when given
    (items imported while a version is built belong to the next extension)."""
    page = _PAGE if page is None else page
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        items = store.list_items(project_id, limit=size, after_id=after_id)
        if items:
            yield items
        if len(items) < size:
            return
        after_id = items[-1].id
        left = None if left is None else left - len(items)


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


# --------------------------------------------------------------------------- feature versions

MANIFEST = "manifest.json"
_LOCK = ".lock"
_EXTENDABLE = ("npy", "image", "tabular")  # a row depends on its item alone


def _cache_dir(settings: Any, project_id: int) -> Path:
    return Path(settings.data_dir) / "features" / f"project_{project_id}"


def read_manifest(folder: Path) -> dict[str, Any]:
    """A project's feature manifest (``{}`` before its first version)."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return {}


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    _atomic_save(folder / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest)))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer of a project's versions at a time, across processes (``flock``)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, a duplicate build is harmless
        yield
        return
    with open(folder / _LOCK, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _save_npy(path: Path, a: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(a))

    _atomic_save(path, write)


def _append_npy(path: Path, n_old: int, rows: np.ndarray) -> None:
    """Write ``rows`` after the first ``n_old`` rows of an ``.npy`` file, in place.

    Rows past ``n_old`` (left by an append that crashed before its manifest was written) are
    overwritten. numpy leaves room in the header for a longer first dimension, so the header is
    rewritten at the same length; readers that mapped the file earlier keep reading their rows.
    """
    fmt = np.lib.format
    with open(path, "r+b") as f:
        major, _ = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
        offset = f.tell()
        rows = np.ascontiguousarray(rows, dtype=dtype)
        header = io.BytesIO()
        new_shape = (n_old + rows.shape[0], *shape[1:])
        write = fmt.write_array_header_1_0 if major == 1 else fmt.write_array_header_2_0
        write(header, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": False,
                       "shape": new_shape})  # fmt: skip
        if len(header.getvalue()) != offset:
            raise _CannotExtend(f"{path.name}: the header has no room for {new_shape}")
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        f.seek(offset + n_old * row_bytes)
        f.truncate()
        f.write(rows.tobytes())
        f.flush()
        f.seek(0)
        f.write(header.getvalue())
        f.flush()
        os.fsync(f.fileno())


class _CannotExtend(Exception):
    """The current version cannot take the new items; a new version is computed instead."""


def _spec(
    kind: str, method: str | None, keywords: list[str], items_revision: int = 0
) -> dict[str, Any]:
    """What a version was computed with: another spec, another version (``items_revision``:
    the project's count of imports that replaced items' content, see
    :attr:`labelwise.storage.Project.items_revision`)."""
    return {
        "kind": kind,
        "method": method,
        "keywords": keywords if kind == "text" else [],
        "cache_version": F.CACHE_VERSION,
        "items_revision": items_revision,
    }


_SPEC_DEFAULTS = {"items_revision": 0}  # versions written before the key existed


def _encode_metadata(
    metadata: dict[str, np.ndarray], values: dict[str, list[str]] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """String columns as int32 codes into per-column value lists (extended in place)."""
    values = {} if values is None else values
    out: dict[str, np.ndarray] = {}
    for name, col in metadata.items():
        if col.dtype != object:
            out[name] = col
            continue
        known = values.setdefault(name, [])
        index = {v: i for i, v in enumerate(known)}
        codes = np.empty(col.shape[0], dtype=np.int32)
        for i, v in enumerate(col):
            if v not in index:
                index[v] = len(known)
                known.append(v)
            codes[i] = index[v]
        out[name] = codes
    return out, values


def _open_version(folder: Path, entry: dict[str, Any]) -> FeatureMatrix:
    """The version's rows, memory-mapped; string metadata decoded without per-item objects."""
    n = int(entry["n"])
    ids = np.array(np.load(folder / entry["ids"], mmap_mode="r")[:n], dtype=np.int64)
    x_path = Path(entry["x"]) if entry.get("x_rows") == "identity" else folder / entry["x"]
    if x_path.suffix == ".npz":
        X: Any = sp.load_npz(x_path).tocsr()
    else:
        X = np.load(x_path, mmap_mode="r")
        X = X[:n] if X.shape[0] != n else X
    metadata: dict[str, np.ndarray] = {}
    for col in entry["metadata"]:
        codes = np.load(folder / col["file"], mmap_mode="r")[:n]
        if col["values"] is None:
            metadata[col["name"]] = np.asarray(codes)
        else:  # an object array of n pointers to the few distinct strings
            metadata[col["name"]] = np.asarray(col["values"], dtype=object)[codes]
    return FeatureMatrix(ids, X, entry["kind"], metadata, entry["key"])


def _remove_stale(folder: Path, entry: dict[str, Any]) -> None:
    """Delete every file of older versions and pre-version caches (open maps stay valid)."""
    keep = {MANIFEST, _LOCK, entry["ids"], *(c["file"] for c in entry["metadata"])}
    if entry.get("x_rows") != "identity":
        keep.add(entry["x"])
    for old in folder.iterdir():
        if old.is_file() and old.name not in keep and not old.name.startswith(".tmp-"):
            old.unlink(missing_ok=True)


def _write_version(
    folder: Path,
    manifest: dict[str, Any],
    spec: dict[str, Any],
    fm: FeatureMatrix,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Store ``fm`` as the project's next version and make it current."""
    history = list(manifest.get("versions", []))
    k = 1 + max((v["version"] for v in history), default=0)
    entry: dict[str, Any] = {**spec, **extra, "version": k, "key": fm.key, "n": fm.n,
                             "last_id": int(fm.item_ids[-1]), "ids": f"v{k}.ids.npy"}  # fmt: skip
    _save_npy(folder / entry["ids"], np.asarray(fm.item_ids, dtype=np.int64))
    if extra.get("x_rows") != "identity":
        if sp.issparse(fm.X):
            entry["x"] = f"v{k}.npz"
            _atomic_save(folder / entry["x"], lambda t: sp.save_npz(t, fm.X, compressed=False))
        else:
            entry["x"] = f"v{k}.npy"
            _save_npy(folder / entry["x"], np.asarray(fm.X, dtype=np.float32))
    coded, values = _encode_metadata(fm.metadata)
    entry["metadata"] = []
    for j, (name, col) in enumerate(coded.items()):
        entry["metadata"].append({"name": name, "file": f"v{k}.meta-{j}.npy",
                                  "values": values.get(name)})  # fmt: skip
        _save_npy(folder / f"v{k}.meta-{j}.npy", col)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entry["created"] = now
    history.append({"version": k, "kind": spec["kind"], "method": spec["method"], "created": now})
    _write_manifest(folder, {"format": 1, "current": entry, "versions": history})
    _remove_stale(folder, entry)
    return entry


class _NpyWriter:
    """An ``.npy`` file of ``n_rows`` rows written page by page, never held in memory.

    The header is written with the first page (which fixes the row width); :meth:`close`
    checks that every row came and moves the file into place (a temporary file until then).
    """

    def __init__(self, path: Path, n_rows: int, dtype: Any) -> None:
        self.path, self.n_rows, self.dtype = path, n_rows, np.dtype(dtype)
        self.written = 0
        self._f: Any = None
        self._width: tuple[int, ...] | None = None
        fd, self._tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        os.close(fd)

    def append(self, rows: Any) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if self._f is None:
            self._width = rows.shape[1:]
            self._f = open(self._tmp, "wb")
            fmt = np.lib.format
            fmt.write_array_header_1_0(self._f, {"descr": fmt.dtype_to_descr(self.dtype),
                                                 "fortran_order": False,
                                                 "shape": (self.n_rows, *self._width)})  # fmt: skip
        elif rows.shape[1:] != self._width:
            raise LabelwiseError(
                f"feature rows of widths {list(self._width or ())} and {list(rows.shape[1:])}: "
                "every item of a project needs rows of one width; align the feature files."
            )
        if self.written + rows.shape[0] > self.n_rows:
            raise ValueError(f"{self.path.name}: more than {self.n_rows} rows")
        self._f.write(rows.tobytes())
        self.written += rows.shape[0]

    def close(self) -> None:
        if self.written != self.n_rows:
            raise ValueError(f"{self.path.name}: {self.written} of {self.n_rows} rows written")
        if self._f is None:  # zero rows: nothing fixed the width
            np.save(self._tmp, np.empty((0,), dtype=self.dtype))
        else:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
        Path(self._tmp).unlink(missing_ok=True)


def _stream_version(
    store: BaseStore,
    project_id: int,
    folder: Path,
    manifest: dict[str, Any],
    spec: dict[str, Any],
    n_items: int,
) -> dict[str, Any]:
    """Featurise the first ``n_items`` items page by page into a new version and make it current.

    For ``.npy``, image and tabular items, whose rows depend on their item alone (tabular
    through the column means and scales): memory is bounded by a page (:data:`_PAGE` items),
    not by the project. Tabular items are read once: each page's raw values go to a temporary
    file while :class:`~labelwise.features.TabularMoments` accumulates the scaling, then the
    pages are scaled into the version.

    Raises
    ------
    LabelwiseError
        If the project mixes kinds, a ``.npy`` row is missing or files differ in width, or
        tabular items have no numeric field.
    """
    kind, method = spec["kind"], spec["method"]
    history = list(manifest.get("versions", []))
    k = 1 + max((v["version"] for v in history), default=0)
    entry: dict[str, Any] = {**spec, "version": k, "n": n_items, "ids": f"v{k}.ids.npy",
                             "metadata": []}  # fmt: skip
    names = ("source", "tag")
    writers = {"ids": _NpyWriter(folder / entry["ids"], n_items, np.int64)}
    for j, name in enumerate(names):
        writers[name] = _NpyWriter(folder / f"v{k}.meta-{j}.npy", n_items, np.int32)
    if kind != "npy":
        entry["x"] = f"v{k}.npy"
        writers["x"] = _NpyWriter(folder / entry["x"], n_items, np.float32)
    values: dict[str, list[str]] = {}
    moments = F.TabularMoments()
    npy_paths: set[str] = set()
    identity: str | None = None  # the one float32 .npy file read row i for item i, so far
    pos = 0
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-pages-") as tmp:
            raw: list[tuple[list[str], Path]] = []
            page_size = _IMAGE_PAGE if kind == "image" else _PAGE
            for page in _pages(store, project_id, n_items, page=page_size):
                kinds = {feature_kind(it) for it in page}
                if kinds != {kind}:
                    raise _mixed_kinds(project_id, kinds | {kind})
                writers["ids"].append(np.fromiter((it.id for it in page), np.int64, len(page)))
                meta = F.item_metadata([it.metadata.get("source", "") for it in page],
                                       [first_tag(it) for it in page])  # fmt: skip
                coded, values = _encode_metadata(meta, values)
                for name in names:
                    writers[name].append(coded[name])
                if kind == "tabular":
                    columns, page_values = moments.update([it.payload for it in page])
                    raw.append((columns, Path(tmp) / f"{len(raw)}.npy"))
                    np.save(raw[-1][1], page_values)
                elif kind == "image":
                    writers["x"].append(_image_features([it.payload["image"] for it in page],
                                                        method))  # fmt: skip
                else:
                    identity = _stream_npy(page, pos, identity, writers, entry, folder, k)
                    npy_paths.update(str(it.features_path) for it in page)
                pos += len(page)
            if pos != n_items:
                raise ValueError(f"project {project_id}: {pos} of {n_items} items listed")
            if kind == "tabular":
                entry["scaling"] = moments.scaling()
                for columns, path in raw:
                    page_x = F.TabularMoments.transform(columns, np.load(path), entry["scaling"])
                    writers["x"].append(page_x)
        if kind == "npy":
            if identity is not None and np.load(identity, mmap_mode="r").shape[0] == n_items:
                entry.update(x_rows="identity", x=identity)
                writers.pop("x", None)
            elif "x" not in writers:  # one file in order, but it holds more rows than items
                identity = _stream_npy([], n_items, identity, writers, entry, folder, k)
            entry["npy_paths"] = sorted(npy_paths)
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    item_ids = np.load(folder / entry["ids"], mmap_mode="r")
    entry["last_id"] = int(item_ids[-1])
    entry["key"] = F.features_key(kind, item_ids, _key_extra(entry))
    for j, name in enumerate(names):
        entry["metadata"].append({"name": name, "file": f"v{k}.meta-{j}.npy",
                                  "values": values.get(name, [])})  # fmt: skip
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entry["created"] = now
    history.append({"version": k, "kind": kind, "method": method, "created": now})
    _write_manifest(folder, {"format": 1, "current": entry, "versions": history})
    _remove_stale(folder, entry)
    return entry


def _stream_npy(
    page: list[Item],
    pos: int,
    identity: str | None,
    writers: dict[str, _NpyWriter],
    entry: dict[str, Any],
    folder: Path,
    k: int,
) -> str | None:
    """Rows of a page of ``.npy`` items (the first starts at position ``pos``).

    While every item so far reads row ``i`` of one float32 file for position ``i``, nothing is
    copied (the version will map the user's file); the first page that breaks that copies the
    rows skipped so far, then its own. Returns the identity file, or ``None`` once broken.
    """
    names = [it.external_id for it in page]
    paths = [str(it.features_path) for it in page]
    rows = [it.features_row for it in page]
    if "x" not in writers:
        if pos == 0 and page:
            first = np.load(paths[0], mmap_mode="r")
            identity = paths[0] if first.ndim == 2 and first.dtype == np.float32 else None
        if identity is not None and page and set(paths) == {identity}:
            fits = np.load(identity, mmap_mode="r").shape[0] >= pos + len(page)
            if fits and rows == list(range(pos, pos + len(page))):
                return identity
        entry["x"] = f"v{k}.npy"
        writers["x"] = _NpyWriter(folder / entry["x"], writers["ids"].n_rows, np.float32)
        if identity is not None:
            done = np.load(identity, mmap_mode="r")
            for start in range(0, pos, _PAGE):
                writers["x"].append(done[start : min(pos, start + _PAGE)])
    if page:
        writers["x"].append(F.npy_rows(paths, rows, names))
    return None


def _extend_version(
    folder: Path, manifest: dict[str, Any], pages: Iterable[list[Item]], n_new: int
) -> dict[str, Any]:
    """Append the rows of ``n_new`` new items (ids above the version's last, in ``pages``) to
    the current version, page by page: memory follows a page, not the import.

    Each page's rows go after the rows already there (:func:`_append_npy`); the manifest,
    written once after the last page, is the commit point, so rows of pages appended before a
    :class:`_CannotExtend` are counted by no manifest and overwritten by the next append or
    version.

    Raises
    ------
    _CannotExtend
        When the new items need a new version (another kind, new tabular columns, ``.npy``
        rows of another width, other metadata columns), the files cannot grow, or the pages
        did not hold ``n_new`` items (items were added meanwhile).
    """
    entry = dict(manifest["current"])
    entry["metadata"] = [dict(c) for c in entry["metadata"]]
    kind, n = entry["kind"], int(entry["n"])
    if kind not in _EXTENDABLE:
        raise _CannotExtend(kind)
    values = {c["name"]: list(c["values"]) for c in entry["metadata"] if c["values"] is not None}
    done, last_id = 0, None
    for page in pages:
        if any(feature_kind(it) != kind for it in page):
            raise _CannotExtend("another kind of item")
        rows = _extension_rows(folder, entry, page, n + done)
        metadata = F.item_metadata(
            [it.metadata.get("source", "") for it in page], [first_tag(it) for it in page], None, ()
        )
        coded, values = _encode_metadata(metadata, values)
        if [c["name"] for c in entry["metadata"]] != list(coded):
            raise _CannotExtend("other metadata columns")
        page_ids = np.fromiter((it.id for it in page), dtype=np.int64, count=len(page))
        # rows first, the manifest last: a crash in between leaves rows no manifest counts
        if rows is not None:
            _append_npy(folder / entry["x"], n + done, rows)
        _append_npy(folder / entry["ids"], n + done, page_ids)
        for col in entry["metadata"]:
            _append_npy(folder / col["file"], n + done, coded[col["name"]])
        done += len(page)
        last_id = int(page_ids[-1])
    if done == 0 or done != n_new:
        raise _CannotExtend(f"{done} new items listed, {n_new} expected")
    for col in entry["metadata"]:
        if col["values"] is not None:
            col["values"] = values[col["name"]]
    all_ids = np.load(folder / entry["ids"], mmap_mode="r")[: n + done]
    entry.update(n=n + done, last_id=last_id,
                 key=F.features_key(kind, all_ids, _key_extra(entry)))  # fmt: skip
    entry["extended"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_manifest(folder, {**manifest, "current": entry})
    return entry


def _extension_rows(
    folder: Path, entry: dict[str, Any], page: list[Item], pos: int
) -> np.ndarray | None:
    """The feature rows of a page of new items whose first row goes at position ``pos``
    (``None``: the items read the version's own ``.npy`` file in order, nothing to write).
    Updates ``entry["npy_paths"]``.

    Raises
    ------
    _CannotExtend
        New tabular columns, rows of another width, ``.npy`` items that stop reading one file
        in order, or a file with fewer rows than items.
    """
    kind = entry["kind"]
    rows: np.ndarray | None
    if kind == "npy":
        paths = [str(it.features_path) for it in page]
        start = [it.features_row for it in page]
        identity = entry.get("x_rows") == "identity"
        if identity and set(paths) == {entry["x"]} and start == list(range(pos, pos + len(page))):
            if np.load(entry["x"], mmap_mode="r").shape[0] < pos + len(page):
                raise _CannotExtend("the .npy file has fewer rows than items")
            rows = None  # the user's file already holds them, in order
        elif identity:
            raise _CannotExtend("the items no longer read one file in order")
        else:
            rows = np.asarray(F.npy_rows(paths, start, [it.external_id for it in page]))
        entry["npy_paths"] = sorted({*entry["npy_paths"], *paths})
    elif kind == "image":
        rows = _image_features([it.payload["image"] for it in page], entry["method"])
    else:
        payloads = [it.payload for it in page]
        if not set(F.tabular_columns(payloads)) <= set(entry["scaling"]["columns"]):
            raise _CannotExtend("new tabular columns")
        rows = F.tabular(payloads, entry["scaling"])
    if rows is not None:
        width = np.load(folder / entry["x"], mmap_mode="r").shape[1]
        if rows.ndim != 2 or rows.shape[1] != width:
            raise _CannotExtend("rows of another width")
    return rows


def _key_extra(entry: dict[str, Any]) -> str:
    """The ``extra`` of :func:`labelwise.features.features_key` for a version (as before
    versions existed, so model artifacts keep matching)."""
    if entry["kind"] == "npy":
        return "|".join(entry["npy_paths"])
    method = entry["method"]
    return "" if method in (None, *_LEGACY_METHODS) else method


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
    """Feature matrix of every item of a project, stored as a feature version on disk.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    settings : Settings
        ``settings.data_dir`` holds the versions.

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
    n_items = store.count_items(project_id)
    if not n_items:
        raise LabelwiseError(f"project {project_id} has no items; import some first.")
    keywords = project_keywords(store, project_id)
    if store.find_latest_model_upload(project_id, "embeddings") is not None:
        return _compute(store, project_id, settings, keywords, n_items)[0]
    kind = feature_kind(store.list_items(project_id, limit=1)[0])
    project = store.get_project(project_id)
    method = feature_method(project.strategy_params, kind)
    spec = _spec(kind, method, keywords, project.items_revision)
    folder = _cache_dir(settings, project_id)
    current = read_manifest(folder).get("current")
    if _matches(current, spec) and current["n"] == n_items:
        with contextlib.suppress(FileNotFoundError):  # a writer replaced it meanwhile
            return _open_version(folder, current)
    with _locked(folder):
        manifest = read_manifest(folder)  # another process may have written it meanwhile
        current = manifest.get("current")
        if _matches(current, spec):
            if current["n"] == n_items:
                return _open_version(folder, current)
            n_new = n_items - int(current["n"])
            page = _IMAGE_PAGE if current["kind"] == "image" else _PAGE
            pages = _pages(store, project_id, n_new, after_id=current["last_id"], page=page)
            if n_new > 0:
                with contextlib.suppress(_CannotExtend):
                    return _open_version(folder, _extend_version(folder, manifest, pages, n_new))
        if kind == "text":  # TF-IDF and embeddings see every text at once
            fm, extra = _compute(store, project_id, settings, keywords, n_items)
            return _open_version(folder, _write_version(folder, manifest, spec, fm, extra))
        return _open_version(folder, _stream_version(store, project_id, folder, manifest, spec,
                                                     n_items))  # fmt: skip


def _matches(entry: dict[str, Any] | None, spec: dict[str, Any]) -> bool:
    return entry is not None and all(
        entry.get(k, _SPEC_DEFAULTS.get(k)) == v for k, v in spec.items()
    )


def _mixed_kinds(project_id: int, kinds: set[str]) -> LabelwiseError:
    return LabelwiseError(
        f"project {project_id} mixes items of kinds {sorted(kinds)}; one project holds one "
        "kind (give every item features_path, or none)."
    )


def _compute(
    store: BaseStore, project_id: int, settings: Any, keywords: list[str], n_items: int
) -> tuple[FeatureMatrix, dict[str, Any]]:
    """Featurise every item at once: text (TF-IDF and embeddings fit on every text) and
    uploaded embeddings (any kind); what a new version stores besides. Other kinds stream
    (:func:`_stream_version`). Only ids, texts and metadata strings are kept, not the items."""
    ids: list[int] = []
    texts: list[str] = []
    sources: list[Any] = []
    tags: list[str | None] = []
    kinds: set[str] = set()
    for page in _pages(store, project_id, n_items):
        kinds.update(feature_kind(it) for it in page)
        ids.extend(it.id for it in page)
        texts.extend(it.payload["text"] for it in page if isinstance(it.payload.get("text"), str))
        sources.extend(it.metadata.get("source", "") for it in page)
        tags.extend(first_tag(it) for it in page)
    if not ids:
        raise LabelwiseError(f"project {project_id} has no items; import some first.")
    if len(kinds) > 1:
        raise _mixed_kinds(project_id, kinds)
    kind = kinds.pop()
    item_ids = np.asarray(ids, dtype=np.int64)
    del ids
    metadata = F.item_metadata(
        sources, tags, texts if kind == "text" else None, keywords if kind == "text" else ()
    )
    # model sources (issue 11): the newest uploaded (or endpoint) embeddings are the features
    uploaded = model_sources.embedding_features(store, project_id, item_ids)
    if uploaded is not None:
        key = F.features_key("embeddings", item_ids, uploaded[1])
        return FeatureMatrix(item_ids, uploaded[0], "embeddings", metadata, key), {}
    if kind != "text":
        raise LabelwiseError(
            f"project {project_id}'s {kind} items are featurised page by page, not at once; "
            "its embeddings upload could not be read."
        )
    method = feature_method(store.get_project(project_id).strategy_params, kind)
    # Keywords only add text metadata columns. The method there was before methods existed
    # (tfidf) keeps its key; any other method, default or not, has its own.
    extra_key = "" if method in (None, *_LEGACY_METHODS) else method
    key = F.features_key(kind, item_ids, extra_key, keywords=keywords)
    return FeatureMatrix(item_ids, _text_features(texts, method, settings), kind, metadata, key), {}


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
