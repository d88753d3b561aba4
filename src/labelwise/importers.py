"""Import items into a project from CSV, JSON Lines, Parquet, a folder of images or a Label
Studio JSON export (``format="labelstudio"``, see :mod:`labelwise.labelstudio`).

Imports stream: rows are parsed and validated lazily and inserted ``batch_size`` at a time
(``INSERT ... ON CONFLICT DO NOTHING``), so memory stays bounded for millions of rows, and a
file with one bad row imports nothing: it raises :class:`ImportValidationError` naming the line
and the field.

Big files are resumable
-----------------------
A file of at most ``resumable_bytes`` (default :data:`RESUMABLE_BYTES`, 16 MiB) is imported in
ONE transaction: a bad row rolls everything back. A bigger CSV, JSON Lines or Parquet file is
imported in two passes, so that a kill costs only the batch in flight:

1. the whole file is read and every row checked, writing nothing (a bad row, even the last,
   raises :class:`ImportValidationError` and nothing is stored); the file's sha256 is taken;
2. the rows are written in committed batches. An *import run* (:class:`~labelwise.storage.base.
   ImportRun`, keyed by project, file sha256 and options) records the rows committed in the same
   transaction as each batch. Running the same import again after a kill resumes after the last
   committed batch (``ImportResult.resumed_at``); external ids are unique per project, so even
   a lost checkpoint could not duplicate an item.

``resumable=True`` / ``False`` forces either way. ``on_duplicate="fail"``, image folders and
Label Studio exports are always one transaction (all or nothing). Memory does not grow with the
file in either mode: rows are never all held, and duplicate ids are looked up per batch
through the ``(project_id, external_id)`` unique index.
Re-importing the same file is harmless: items whose external id already exists in the project
with the same content are skipped (and counted in ``n_skipped``). A repeated id with
*different* content (already stored, or earlier in the file) is reported in the result
(``n_changed``, ``changed_ids``) and handled by ``on_duplicate``: ``"skip"`` (default) keeps
the stored item, ``"update"`` replaces it (re-importing an edited label file updates the
labels), ``"fail"`` imports nothing.

Row layout
----------
- ``id_field`` (default ``"id"``): the external id; ``None`` numbers rows 1, 2, ... instead.
- ``text_field`` (default ``"text"``): text items get ``payload={"text": ...}`` and the other
  columns go to ``metadata``; ``None`` makes tabular items whose payload is the whole row.
- ``label_field`` (default ``None``): an optional label column; empty means unlabeled. For
  multilabel projects a CSV cell holds ``a|b``, JSONL/Parquet a list. For image folders,
  ``label_field="folder"`` takes each image's parent folder name as its label.
- ``split`` (optional column): ``validation`` puts the item in the validation split
  (``metadata["split"]``; its label scores every model and never trains one); ``train`` or
  empty: an ordinary item. Any other value is a bad row.
- ``gold`` (optional column): ``true`` / ``1`` / ``yes`` marks a gold item, whose label (the
  label column, required then) is known and used only to measure annotators: it is served
  among their tasks and never enters the training set. Empty, ``false``, ``0`` or ``no``: an
  ordinary item. Any other value is a bad row.

Limits
------
The same for every format (a bad row names its line and field; nothing is imported): a
string (cell, key, JSON value) of at most :data:`MAX_FIELD_CHARS` characters and without NUL
characters (PostgreSQL cannot store them; SQLite would, so both refuse), JSON values nested at
most :data:`MAX_DEPTH` deep, JSON integers of at most :data:`MAX_INT_DIGITS` digits (quote
longer ids), finite numbers. A file with no rows (empty, or a header only) is an error.
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from labelwise.errors import LabelMismatchError, LabelwiseError
from labelwise.labelstudio import LabelStudioFormatError, LSTask, loads_tasks
from labelwise.storage.base import (
    ON_DUPLICATE,
    BaseStore,
    DuplicateItemsError,
    NewItem,
    Project,
    check_label,
    check_on_duplicate,
)
from labelwise.tasks import TaskType

__all__ = [
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "ON_DUPLICATE",
    "RESUMABLE_BYTES",
    "DuplicateItemsError",
    "ImportProgress",
    "ImportResult",
    "ImportValidationError",
    "check_value",
    "detect_format",
    "import_items",
    "import_labelstudio",
    "import_run_options",
    "iter_new_items",
]

FORMATS = ("csv", "jsonl", "parquet", "images", "labelstudio")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "labelstudio",
}


class ImportValidationError(LabelwiseError):
    """A row of an import file is invalid; nothing was imported.

    Attributes ``line`` (1-based line of the file; for Parquet the 1-based row, for image
    folders ``None``) and ``field`` (the offending column, or ``None``) locate the problem.
    """

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        where = "" if line is None else f"line {line}: "
        where += "" if field is None else f"field {field!r}: "
        super().__init__(where + message + " Nothing was imported; fix the file and retry.")
        self.line = line
        self.field = field


#: Longest string (CSV cell, JSON value or key) an import accepts: the csv module's own
#: default field limit, so CSV, JSON Lines and Parquet agree.
MAX_FIELD_CHARS = 131_072
#: Longest external id: the width of the ``items.external_id`` column.
MAX_ID_CHARS = 500
#: Deepest nesting of JSON objects and lists in a row.
MAX_DEPTH = 32
#: Most digits of a JSON integer: 64-bit ids fit; a 5,000-digit one is refused (quote it).
MAX_INT_DIGITS = 20


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did.

    ``n_read`` rows read, ``n_created`` items created, ``n_updated`` items replaced
    (``on_duplicate="update"``), ``n_skipped`` rows that wrote nothing (repeated ids);
    ``n_changed`` of the repeated ids carried different content, ``changed_ids`` the first of
    them (skipped under ``"skip"``: check them).
    """

    n_read: int
    n_created: int
    n_skipped: int
    n_updated: int = 0
    n_changed: int = 0
    changed_ids: tuple[str, ...] = ()
    # Label Studio imports: annotations and predictions kept, annotators created
    n_annotations: int = 0
    n_predictions: int = 0
    n_annotators_created: int = 0
    # resumable imports (issue 12): rows already committed by an earlier, killed run of the
    # same import, and the import run that holds the checkpoint
    resumed_at: int = 0
    import_run_id: int | None = None


#: Files larger than this many bytes are imported resumably (see "Big files are resumable").
RESUMABLE_BYTES = 16 * 2**20


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import stands, for ``import_items(on_progress=...)``.

    ``phase`` is ``"check"`` (a resumable import's first pass: reading and checking every row,
    writing nothing) or ``"write"``. ``rows`` rows are done of ``n_rows`` (``None`` while not
    known: during the check, or in a one-transaction import); ``bytes_read`` of ``n_bytes`` of
    the file were read (CSV and JSON Lines, ``None`` otherwise). ``resumed_at`` rows were
    committed by an earlier run of the same import and are not written again.
    """

    phase: str
    rows: int
    n_rows: int | None = None
    bytes_read: int | None = None
    n_bytes: int | None = None
    resumed_at: int = 0


class _Position:
    """The byte offset a reader has consumed, for progress: asked of the open file only when
    read (the text layer reads ahead in 8 KiB chunks: close enough)."""

    __slots__ = ("_file", "_offset")

    def __init__(self) -> None:
        self._file: Any = None
        self._offset = 0

    def follow(self, f: Any) -> None:
        self._file = f

    @property
    def offset(self) -> int:
        if self._file is not None and not self._file.closed:
            self._offset = self._file.buffer.tell()
        return self._offset


class _BigInt(str):
    """A JSON integer longer than :data:`MAX_INT_DIGITS`, kept as text until the row check
    names its field (``int()`` of 4,300+ digits raises, and nothing stores it anyway)."""


def _parse_int(text: str) -> int | _BigInt:
    return _BigInt(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def check_value(value: Any, line: int | None, field: str | None, depth: int = 0) -> None:
    """Refuse what no backend stores the same way; see "Limits" in the module docstring."""
    if isinstance(value, _BigInt):
        raise ImportValidationError(
            f"an integer of {len(value.lstrip('-'))} digits (at most {MAX_INT_DIGITS}); "
            "write a long id as a string.",
            line=line,
            field=field,
        )
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            raise ImportValidationError(
                f"a value of {len(value):,} characters (at most {MAX_FIELD_CHARS:,}).",
                line=line,
                field=field,
            )
        if "\x00" in value:
            raise ImportValidationError(
                "a NUL character (\\u0000); remove it.", line=line, field=field
            )
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ImportValidationError(f"{value} is not a finite number.", line=line, field=field)
    elif isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            raise ImportValidationError(
                f"values nested deeper than {MAX_DEPTH} levels.", line=line, field=field
            )
        if isinstance(value, dict):
            for k, v in value.items():
                check_value(k, line, field, depth + 1)
                check_value(v, line, field, depth + 1)
        else:
            for v in value:
                check_value(v, line, field, depth + 1)


def _check_row(row: dict[str, Any], line: int) -> None:
    for key, value in row.items():
        # the common case, a short string key and cell, without a call per value: an import
        # of a million rows runs this ten million times
        if (
            type(key) is str
            and type(value) is str
            and len(key) <= MAX_FIELD_CHARS
            and len(value) <= MAX_FIELD_CHARS
            and "\x00" not in key
            and "\x00" not in value
        ):
            continue
        name = str(key)
        check_value(name, line, name[:80])
        check_value(value, line, name[:80])


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"images"`` for a folder, else the format its suffix names (csv, jsonl, parquet)."""
    p = Path(path)
    if p.is_dir():
        return "images"
    fmt = _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise LabelwiseError(
            f"cannot tell the format of {p.name!r} from its suffix; pass format= one of {FORMATS}."
        )
    return fmt


# ---- readers: yield (line, row dict) one at a time


def _bad_utf8_line(path: Path) -> tuple[int | None, str]:
    """The 1-based line of ``path`` holding its first byte that is not UTF-8, and that byte."""
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return line_no, f"byte 0x{raw[e.start]:02x} at column {e.start + 1}"
    return None, "a byte sequence that is not UTF-8"


def _not_utf8(path: Path) -> ImportValidationError:
    line, what = _bad_utf8_line(path)
    return ImportValidationError(
        f"the file is not UTF-8 text ({what}); save it as UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8 in.csv > out.csv).",
        line=line,
    )


def _read_csv(path: Path, where: _Position | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8-sig") as f:
        if where is not None:
            where.follow(f)
        # strict: a quote never closed (or text after a closing quote) is an error, not a cell
        # that silently swallows the rest of the file
        reader = csv.DictReader(f, delimiter=delimiter, strict=True)
        start = 1
        while True:
            try:
                if reader.fieldnames is None:  # reads the header
                    return
                start = reader.line_num + 1  # the next record (maybe several lines) starts here
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
            except csv.Error as e:
                if "field larger than field limit" in str(e):
                    raise ImportValidationError(
                        f"a cell of more than {MAX_FIELD_CHARS:,} characters (at most "
                        f"{MAX_FIELD_CHARS:,}).",
                        line=start,
                    ) from None
                raise ImportValidationError(
                    f"malformed CSV ({e}); check the quotes of the record that starts here.",
                    line=start,
                ) from None
            if None in row:  # more cells than header columns
                raise ImportValidationError(
                    f"{len(row) - 1 + len(row[None])} cells but the header has "  # type: ignore[call-overload]
                    f"{len(reader.fieldnames or [])} columns.",
                    line=reader.line_num,
                )
            yield reader.line_num, row


def _read_jsonl(path: Path, where: _Position | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig") as f:
        if where is not None:
            where.follow(f)
        lines = enumerate(f, start=1)
        while True:
            try:
                line_no, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_int=_parse_int)
            except json.JSONDecodeError as e:
                raise ImportValidationError(f"invalid JSON ({e.msg}).", line=line_no) from None
            except RecursionError:  # far deeper than MAX_DEPTH: the parser gave up first
                raise ImportValidationError(
                    f"values nested deeper than {MAX_DEPTH} levels.", line=line_no
                ) from None
            if not isinstance(row, dict):
                raise ImportValidationError(
                    f"expected a JSON object per line, got {type(row).__name__}.", line=line_no
                )
            yield line_no, row


def _read_parquet(path: Path, batch_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_no = 0
    try:
        with pq.ParquetFile(path) as pf:
            for batch in pf.iter_batches(batch_size=batch_size):
                rows = batch.to_pylist()
                for row in rows:
                    row_no += 1
                    yield row_no, row
    except (pa.ArrowException, OSError) as e:
        # ArrowInvalid (not Parquet, cut-off footer) is a ValueError, corrupt pages an OSError
        line = None if row_no == 0 else row_no + 1
        raise ImportValidationError(
            f"{path.name} is not a readable Parquet file ({e}); write it again "
            "(pandas.DataFrame.to_parquet, pyarrow.parquet.write_table) or import it as CSV.",
            line=line,
        ) from None


def _iter_images(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield Path(dirpath) / name


# ---- rows -> NewItem


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return str(v)


def _coerce_cell(v: str) -> Any:
    """CSV cells are strings; give tabular payloads numbers where the cell is one.

    A cell too long for a 64-bit integer, or one that reads as an infinite or NaN float,
    stays text: it is an id or a code, not a number any model could use.
    """
    if len(v) > MAX_INT_DIGITS + 1:
        return v
    for cast in (int, float):
        try:
            x = cast(v)
        except ValueError:
            continue
        return x if x == x and x not in (float("inf"), float("-inf")) else v
    return v


def _is_empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _parse_label(project: Project, raw: Any, line: int | None, field: str, csv_cell: bool) -> Any:
    if project.task_type == TaskType.MULTILABEL and csv_cell:
        raw = [p.strip() for p in str(raw).split("|") if p.strip()]
    elif project.task_type != TaskType.MULTILABEL and not isinstance(raw, str):
        raw = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else raw
    try:
        return check_label(project, raw)
    except LabelMismatchError as e:
        raise ImportValidationError(str(e), line=line, field=field) from None


GOLD_FIELD = "gold"
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n", ""})


def _parse_gold(raw: Any, line: int) -> bool:
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ImportValidationError(
        f"gold must be true or false (1/0, yes/no); got {raw!r}.", line=line, field=GOLD_FIELD
    )


SPLIT_FIELD = "split"
_SPLITS = {"validation": "validation", "train": None, "training": None, "": None}


def _parse_split(raw: Any, line: int) -> str | None:
    """The item's split: ``"validation"`` or ``None`` (training pool)."""
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text not in _SPLITS:
        raise ImportValidationError(
            f"split must be validation or train (or empty); got {raw!r}.",
            line=line,
            field=SPLIT_FIELD,
        )
    return _SPLITS[text]


def _row_to_item(
    project: Project,
    line: int,
    index: int,
    row: dict[str, Any],
    *,
    source: str,
    text_field: str | None,
    id_field: str | None,
    label_field: str | None,
    csv_cells: bool,
) -> NewItem:
    _check_row(row, line)
    if id_field is None:
        external_id = str(index)
    else:
        raw_id = row.get(id_field)
        if _is_empty(raw_id) or isinstance(raw_id, dict | list):
            what = "missing" if id_field not in row else "empty or not a scalar"
            raise ImportValidationError(
                f"the id is {what}; every row needs a unique id (or pass id_field=None "
                "to number rows).",
                line=line,
                field=id_field,
            )
        external_id = str(raw_id)
        if len(external_id) > MAX_ID_CHARS:
            raise ImportValidationError(
                f"an id of {len(external_id):,} characters (at most {MAX_ID_CHARS}).",
                line=line,
                field=id_field,
            )
    label = None
    if label_field is not None and not _is_empty(row.get(label_field)):
        label = _parse_label(project, row[label_field], line, label_field, csv_cells)
    gold = _parse_gold(row.get(GOLD_FIELD), line)
    split = _parse_split(row.get(SPLIT_FIELD), line)
    if gold and label is None:
        raise ImportValidationError(
            "a gold row needs its known label; pass label_field= the column that holds it.",
            line=line,
            field=label_field or GOLD_FIELD,
        )
    skip = {id_field, label_field, GOLD_FIELD, SPLIT_FIELD}
    if text_field is not None:
        text = row.get(text_field)
        if _is_empty(text) or not isinstance(text, str):
            what = "missing" if text_field not in row else "empty or not a string"
            raise ImportValidationError(
                f"the text is {what}; pass text_field= the column that holds the text, or "
                "text_field=None for tabular rows.",
                line=line,
                field=text_field,
            )
        payload = {"text": text}
        skip.add(text_field)
        extra = {k: v if csv_cells else _jsonable(v) for k, v in row.items() if k not in skip}
        metadata = {"source": source, **({"fields": extra} if extra else {})}
    else:
        payload = {
            k: _coerce_cell(v) if csv_cells else _jsonable(v)
            for k, v in row.items()
            if k not in skip
        }
        metadata = {"source": source}
    if split is not None:
        metadata["split"] = split
    return NewItem(
        external_id=external_id, payload=payload, metadata=metadata, label=label, gold=gold
    )


def iter_new_items(
    project: Project,
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    text_field: str | None = "text",
    id_field: str | None = "id",
    label_field: str | None = None,
    batch_size: int = 10_000,
    start_row: int = 0,
) -> Iterator[NewItem]:
    """Parse and validate ``path`` lazily, one :class:`NewItem` per row.

    The first ``start_row`` rows of a CSV, JSON Lines or Parquet file are read but neither
    checked nor yielded (a resumed import skips what it committed before). Raises
    :class:`ImportValidationError` at the first bad row.
    """
    return _iter_items(
        project, path, format, text_field=text_field, id_field=id_field,
        label_field=label_field, batch_size=batch_size, start_row=start_row,
    )  # fmt: skip


def _iter_items(
    project: Project,
    path: str | os.PathLike[str],
    format: str | None,
    *,
    text_field: str | None,
    id_field: str | None,
    label_field: str | None,
    batch_size: int,
    start_row: int = 0,
    where: _Position | None = None,
) -> Iterator[NewItem]:
    p = Path(path)
    fmt = detect_format(p) if format is None else format
    if fmt not in FORMATS:
        raise LabelwiseError(f"unknown import format {fmt!r}; use one of {FORMATS}.")
    if not p.exists():
        raise LabelwiseError(f"{p} does not exist; check the path.")
    if fmt == "labelstudio":
        raise LabelwiseError("a Label Studio export is read whole: use import_labelstudio.")
    if fmt == "images":
        if not p.is_dir():
            raise LabelwiseError(f"format 'images' needs a folder; {p} is a file.")
        root = p.resolve()
        for img in _iter_images(root):
            rel = img.relative_to(root)
            label = None
            if label_field == "folder" and len(rel.parts) > 1:
                label = _parse_label(project, rel.parts[-2], None, str(rel), csv_cell=False)
            yield NewItem(
                external_id=rel.as_posix(),
                payload={"image": str(img)},
                metadata={"source": root.name},
                label=label,
            )
        return
    rows: Iterator[tuple[int, dict[str, Any]]]
    if fmt == "csv":
        rows = _read_csv(p, where)
    elif fmt == "jsonl":
        rows = _read_jsonl(p, where)
    else:
        rows = _read_parquet(p, batch_size)
    if start_row:
        # the reader still walks these rows (a record's line numbers depend on them)
        for _ in islice(rows, start_row):
            pass
    source = p.name
    for index, (line, row) in enumerate(rows, start=start_row + 1):
        yield _row_to_item(
            project,
            line,
            index,
            row,
            source=source,
            text_field=text_field,
            id_field=id_field,
            label_field=label_field,
            csv_cells=fmt == "csv",
        )


def import_items(
    store: BaseStore,
    project_id: int,
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    text_field: str | None = "text",
    id_field: str | None = "id",
    label_field: str | None = None,
    batch_size: int = 10_000,
    progress: Callable[[int], object] | None = None,
    on_duplicate: str = "skip",
    resumable: bool | None = None,
    resumable_bytes: int = RESUMABLE_BYTES,
    on_progress: Callable[[ImportProgress], object] | None = None,
) -> ImportResult:
    """Import items from a file or an image folder into a project.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    path : path-like
        A ``.csv``/``.tsv``, ``.jsonl``/``.ndjson``, ``.parquet`` file or a folder of images.
    format : {"csv", "jsonl", "parquet", "images", "labelstudio"}, optional
        Guessed from ``path`` when omitted.
    text_field, id_field, label_field : str or None
        Column names; see the module docstring.
    batch_size : int, default=10_000
        Rows per insert (and per Parquet read, and per committed batch of a resumable
        import); bounds memory.
    progress : callable, optional
        Called as ``progress(n_written)`` every ``batch_size`` rows and once at the end (in a
        one-transaction import, rows read; in a resumable one, rows committed).
    on_duplicate : {"skip", "update", "fail"}, default="skip"
        What to do with a row whose external id exists with different content (see the
        module docstring); reported in the result under every choice. ``"fail"`` imports in
        one transaction.
    resumable : bool, optional
        Check the whole file first, then commit it in batches under an import run that a
        rerun resumes (module docstring). ``None``: when the file is larger than
        ``resumable_bytes``.
    resumable_bytes : int, default=RESUMABLE_BYTES
    on_progress : callable, optional
        Called with an :class:`ImportProgress` every ``batch_size`` rows of either pass, once
        when a resumable import starts writing (with ``resumed_at``) and once at the end.

    Returns
    -------
    ImportResult

    Raises
    ------
    ImportValidationError
        On the first bad row (line and field in the message), or a file without rows;
        nothing is imported.
    DuplicateItemsError
        ``on_duplicate="fail"`` and some ids repeat with different content (count and first
        ids in the message); nothing is imported.
    ImportConflictError
        Another process is running the same resumable import (it goes on; nothing is lost).
    LabelwiseError
        For an unknown format, a missing path or a bad ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LabelwiseError(f"batch_size must be a positive integer; got {batch_size!r}.")
    check_on_duplicate(on_duplicate)
    project = store.get_project(project_id)
    fmt = detect_format(path) if format is None else format
    if fmt == "labelstudio":
        if not Path(path).is_file():
            raise LabelwiseError(f"{path} is not a file; give the Label Studio export's path.")
        text = Path(path).read_bytes()
        return import_labelstudio(
            store, project_id, text, source=Path(path).name, on_duplicate=on_duplicate,
            batch_size=batch_size, progress=progress,
        )  # fmt: skip
    fields = {"text_field": text_field, "id_field": id_field, "label_field": label_field}
    if resumable is None:
        p = Path(path)
        resumable = p.is_file() and p.stat().st_size > resumable_bytes
    if resumable and fmt in ("csv", "jsonl", "parquet") and on_duplicate != "fail":
        return _import_resumable(
            store, project, Path(path), fmt, fields, batch_size=batch_size, progress=progress,
            on_duplicate=on_duplicate, on_progress=on_progress,
        )  # fmt: skip
    where = _Position()
    items = _iter_items(project, path, fmt, batch_size=batch_size, where=where, **fields)
    n_read = 0
    known = fmt in ("csv", "jsonl") and Path(path).is_file()  # a missing file: raised below
    n_bytes = Path(path).stat().st_size if known else None

    def report() -> None:
        if progress is not None:
            progress(n_read)
        if on_progress is not None:
            read = None if n_bytes is None else where.offset
            on_progress(ImportProgress("write", n_read, None, read, n_bytes))

    def counted() -> Iterator[NewItem]:
        nonlocal n_read
        for item in items:
            yield item
            n_read += 1
            if n_read % batch_size == 0:
                report()

    def nonempty() -> Iterator[NewItem]:
        yield from counted()
        if n_read == 0:  # raised inside the store's transaction, like any bad row
            raise _no_rows(path)

    written = store.write_items(
        project_id, nonempty(), on_duplicate=on_duplicate, batch_size=batch_size
    )
    if n_read % batch_size:
        report()
    return ImportResult(
        n_read=n_read,
        n_created=written.n_created,
        n_skipped=n_read - written.n_created - written.n_updated,
        n_updated=written.n_updated,
        n_changed=written.n_changed,
        changed_ids=written.changed_ids,
    )


def import_run_options(
    format: str,
    on_duplicate: str,
    text_field: str | None,
    id_field: str | None,
    label_field: str | None,
) -> dict[str, Any]:
    """The options a resumable import's run is keyed by (with the project and file sha256):
    the same file imported with other columns or duplicate handling is another import."""
    return {
        "format": format,
        "on_duplicate": on_duplicate,
        "text_field": text_field,
        "id_field": id_field,
        "label_field": label_field,
    }


def _no_rows(path: str | os.PathLike[str]) -> ImportValidationError:
    return ImportValidationError(
        f"{Path(path).name} has no rows (empty, or a header only); nothing to import."
    )


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _import_resumable(
    store: BaseStore,
    project: Project,
    path: Path,
    fmt: str,
    fields: dict[str, str | None],
    *,
    batch_size: int,
    progress: Callable[[int], object] | None,
    on_duplicate: str,
    on_progress: Callable[[ImportProgress], object] | None,
) -> ImportResult:
    """The two passes of a resumable import (module docstring, "Big files are resumable")."""
    n_bytes = path.stat().st_size
    where = _Position()
    known_bytes = fmt in ("csv", "jsonl")

    def tell(phase: str, rows: int, n_rows: int | None, resumed_at: int = 0) -> None:
        if on_progress is None:
            return
        if not known_bytes:
            on_progress(ImportProgress(phase, rows, n_rows, resumed_at=resumed_at))
            return
        read = n_bytes if rows == n_rows else where.offset  # the file is closed at the end
        on_progress(ImportProgress(phase, rows, n_rows, read, n_bytes, resumed_at))

    # pass 1: every row checked, nothing written; the rows are counted, not kept
    n_rows = 0
    for _ in _iter_items(project, path, fmt, batch_size=batch_size, where=where, **fields):
        n_rows += 1
        if n_rows % batch_size == 0:
            tell("check", n_rows, None)
    if n_rows == 0:
        raise _no_rows(path)
    tell("check", n_rows, n_rows)
    options = import_run_options(fmt, on_duplicate, **fields)
    run, _ = store.start_import_run(project.id, _file_sha256(path), options, n_rows)
    resumed_at = done = run.rows_committed
    # pass 2: committed batches, each with its checkpoint
    where = _Position()
    tell("write", done, n_rows, resumed_at)
    items = _iter_items(
        project, path, fmt, batch_size=batch_size, start_row=done, where=where, **fields
    )
    while batch := list(islice(items, batch_size)):
        run = store.write_import_batch(
            run.id, batch, start_row=done, n_rows=len(batch), on_duplicate=on_duplicate
        )
        done = run.rows_committed
        if progress is not None:
            progress(done)
        tell("write", done, n_rows, resumed_at)
    if done != n_rows:  # the file changed between the passes
        raise LabelwiseError(
            f"{path.name} had {n_rows:,} rows when checked and {done:,} when written; it "
            "changed during the import. Import it again."
        )
    run = store.finish_import_run(run.id)
    return ImportResult(
        n_read=n_rows,
        n_created=run.n_created,
        n_skipped=n_rows - run.n_created - run.n_updated,
        n_updated=run.n_updated,
        n_changed=run.n_changed,
        changed_ids=run.changed_ids,
        resumed_at=resumed_at,
        import_run_id=run.id,
    )


# ---- Label Studio JSON


def _labelstudio_item(project: Project, task: LSTask, source: str) -> NewItem:
    """The item of a parsed task, held to the same limits as any import row."""
    try:
        for key, value in [*task.payload.items(), *task.fields.items()]:
            check_value(key, None, None)
            check_value(value, None, None)
    except ImportValidationError as e:
        raise LabelStudioFormatError(
            str(e).removesuffix(_NOTHING).strip(),
            task_idx=task.index,
            task_id=task.task_id,
            field="data",
        ) from None
    for name in ("annotations", "predictions"):
        try:
            check_value(task.metadata.get("labelstudio", {}).get(name, []), None, None)
        except ImportValidationError as e:
            raise LabelStudioFormatError(
                str(e).removesuffix(_NOTHING).strip(),
                task_idx=task.index,
                task_id=task.task_id,
                field=name,
            ) from None
    label = None if task.label is None else check_label(project, task.label)
    return NewItem(
        external_id=task.external_id,
        payload=task.payload,
        metadata={"source": source, **task.metadata},
        label=label,
    )


_NOTHING = " Nothing was imported; fix the file and retry."


def import_labelstudio(
    store: BaseStore,
    project_id: int,
    tasks: str | bytes | list[Any],
    *,
    source: str = "labelstudio.json",
    on_duplicate: str = "skip",
    batch_size: int = 10_000,
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Import a Label Studio task list (its JSON export) into a project.

    Each task becomes an item (:mod:`labelwise.labelstudio` says how): its label is the one its
    annotations settle on, its annotations and predictions are kept in the item's metadata
    (``metadata["labelstudio"]``) so that an export writes them back, and every annotator
    (``completed_by``) missing in labelwise is created, without a token, and made a member of
    the project.

    Parameters
    ----------
    store : BaseStore
    project_id : int
    tasks : str, bytes or list
        The JSON text of the export, or the decoded task list.
    source : str
        Recorded as each item's ``metadata["source"]``.
    on_duplicate : {"skip", "update", "fail"}
        As for :func:`import_items`: to take new labels and annotations of items imported
        before (a round trip through Label Studio), pass ``"update"``.
    batch_size : int
    progress : callable, optional

    Returns
    -------
    ImportResult
        With ``n_annotations``, ``n_predictions`` (kept) and ``n_annotators_created``.

    Raises
    ------
    LabelStudioFormatError
        A malformed file (task and field named); nothing is imported.
    DuplicateItemsError
        ``on_duplicate="fail"`` and items differ; nothing is imported.
    """
    from labelwise.labelstudio import parse_tasks
    from labelwise.storage.base import AlreadyExistsError

    check_on_duplicate(on_duplicate)
    project = store.get_project(project_id)
    if isinstance(tasks, str | bytes):
        parsed = loads_tasks(tasks, project.classes, project.task_type)
    else:
        parsed = parse_tasks(tasks, project.classes, project.task_type)
    items = [_labelstudio_item(project, t, source) for t in parsed]  # all checked first
    written = store.write_items(
        project_id, iter(items), on_duplicate=on_duplicate, batch_size=batch_size
    )
    n_created = 0
    for name in dict.fromkeys(n for t in parsed for n in t.annotators):
        annotator = store.find_annotator(name)
        if annotator is None:
            try:
                aid = store.create_annotator(name)
                n_created += 1
            except AlreadyExistsError:  # created meanwhile by another request
                aid = store.find_annotator(name).id  # type: ignore[union-attr]
        else:
            aid = annotator.id
        store.add_member(project_id, aid)
    if progress is not None:
        progress(len(items))
    n_read = len(items)
    return ImportResult(
        n_read=n_read,
        n_created=written.n_created,
        n_skipped=n_read - written.n_created - written.n_updated,
        n_updated=written.n_updated,
        n_changed=written.n_changed,
        changed_ids=written.changed_ids,
        n_annotations=sum(len(t.annotations) for t in parsed),
        n_predictions=sum(len(t.predictions) for t in parsed),
        n_annotators_created=n_created,
    )
