"""Item import from CSV, JSONL, Parquet and image folders, on every store backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelwise.errors import LabelwiseError
from labelwise.importers import (
    DuplicateItemsError,
    ImportResult,
    ImportValidationError,
    detect_format,
    import_items,
)


def _project(store, task_type="multiclass", classes=("neg", "pos")):
    return store.create_project("p", task_type, list(classes))


def _write(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# --------------------------------------------------------------------------- CSV


def test_csv_import_and_idempotent_reimport(store, tmp_path):
    pid = _project(store)
    f = _write(
        tmp_path / "items.csv",
        """
        id,text,label,lang
        a,good movie,pos,en
        b,bad movie,,en
        c,"so-so, really",neg,fr
        """,
    )
    assert import_items(store, pid, f, label_field="label") == ImportResult(3, 3, 0)
    a = store.find_item(pid, "a")
    assert a.payload == {"text": "good movie"}
    assert a.metadata == {"source": "items.csv", "fields": {"lang": "en"}}
    assert (a.status, a.label) == ("labeled", "pos")
    assert store.find_item(pid, "b").status == "unlabeled"
    assert store.find_item(pid, "c").payload == {"text": "so-so, really"}
    assert import_items(store, pid, f, label_field="label") == ImportResult(3, 0, 3)
    assert store.count_items(pid) == 3


def test_csv_bad_row_in_the_middle_imports_nothing(store, tmp_path):
    pid = _project(store)
    # header is line 1, so the empty text of row "b" is on line 3
    f = _write(
        tmp_path / "items.csv",
        """
        id,text
        a,first
        b,
        c,third
        """,
    )
    with pytest.raises(ImportValidationError, match="line 3: field 'text'") as e:
        import_items(store, pid, f, batch_size=1)  # a is already in an earlier batch
    assert (e.value.line, e.value.field) == (3, "text")
    assert store.count_items(pid) == 0


def test_csv_bad_label_names_line_and_field(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "id,text,y\na,t,pos\nb,t,maybe\nc,t,neg\n")
    with pytest.raises(ImportValidationError, match=r"line 3: field 'y'.*'maybe'"):
        import_items(store, pid, f, label_field="y")
    assert store.count_items(pid) == 0


def test_csv_missing_id_column(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "key,text\na,t\n")
    with pytest.raises(ImportValidationError, match=r"line 2: field 'id'.*missing"):
        import_items(store, pid, f)


def test_csv_too_many_cells(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "id,text\na,t\nb,t,extra\n")
    with pytest.raises(ImportValidationError, match="line 3"):
        import_items(store, pid, f)


def test_csv_tabular_rows_and_row_numbers(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "age,income,city\n31,1200.5,Oslo\n40,900,Rome\n")
    assert import_items(store, pid, f, text_field=None, id_field=None).n_created == 2
    assert store.find_item(pid, "1").payload == {"age": 31, "income": 1200.5, "city": "Oslo"}
    assert store.find_item(pid, "2").payload == {"age": 40, "income": 900, "city": "Rome"}


def test_csv_multilabel_cells(store, tmp_path):
    pid = _project(store, "multilabel", ["a", "b", "c"])
    f = _write(tmp_path / "x.csv", "id,text,tags\n1,t,c|a\n2,t,\n")
    import_items(store, pid, f, label_field="tags")
    assert store.find_item(pid, "1").label == ["a", "c"]
    assert store.find_item(pid, "2").status == "unlabeled"


def test_duplicate_ids_in_one_file_keep_the_first(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "id,text\na,one\na,two\n")
    # the repeat differs: skipped (the first one wins) but reported
    assert import_items(store, pid, f) == ImportResult(2, 1, 1, n_changed=1, changed_ids=("a",))
    assert store.find_item(pid, "a").payload == {"text": "one"}


# --------------------------------------------------------------------------- JSONL


def test_jsonl_import(store, tmp_path):
    pid = _project(store, "multilabel", ["a", "b"])
    rows = [
        {"id": 1, "text": "x", "labels": ["b", "a"], "meta": {"k": 1}},
        {"id": 2, "text": "y"},
    ]
    f = tmp_path / "items.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert import_items(store, pid, f, label_field="labels") == ImportResult(2, 2, 0)
    one = store.find_item(pid, "1")
    assert (one.label, one.metadata["fields"]) == (["a", "b"], {"meta": {"k": 1}})


def test_jsonl_invalid_json_in_the_middle(store, tmp_path):
    pid = _project(store)
    f = _write(
        tmp_path / "x.jsonl",
        """
        {"id": "a", "text": "t"}
        {"id": "b", "text":
        {"id": "c", "text": "t"}
        """,
    )
    with pytest.raises(ImportValidationError, match="line 2: invalid JSON"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


def test_jsonl_missing_id_in_the_middle(store, tmp_path):
    pid = _project(store)
    f = _write(
        tmp_path / "x.jsonl",
        """
        {"id": "a", "text": "t"}
        {"text": "t"}
        """,
    )
    with pytest.raises(ImportValidationError, match="line 2: field 'id'"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


# --------------------------------------------------------------------------- Parquet


def test_parquet_import_in_batches_with_progress(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "items.parquet"
    table = pa.table(
        {
            "id": ["a", "b", "c", "d", "e"],
            "text": ["t1", "t2", "t3", "t4", "t5"],
            "y": ["pos", None, "neg", None, None],
        }
    )
    pq.write_table(table, f, row_group_size=2)
    seen = []
    result = import_items(store, pid, f, label_field="y", batch_size=2, progress=seen.append)
    assert result == ImportResult(5, 5, 0)
    assert seen == [2, 4, 5]
    assert store.list_labeled(pid) == [
        (store.find_item(pid, "a").id, "pos"),
        (store.find_item(pid, "c").id, "neg"),
    ]


def test_parquet_bad_row_in_the_middle(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "items.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["t", None, "t"]}), f)
    with pytest.raises(ImportValidationError, match="line 2: field 'text'"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


# --------------------------------------------------------------------------- unreadable files


def test_csv_not_utf8_names_the_line(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "latin1.csv"
    # "café" in Latin-1 on line 3: byte 0xe9 is not valid UTF-8
    f.write_bytes(b"id,text\na,fine\nb,caf\xe9\nc,fine\n")
    with pytest.raises(ImportValidationError, match=r"line 3: .*not UTF-8") as e:
        import_items(store, pid, f)
    assert e.value.line == 3
    assert store.count_items(pid) == 0


def test_jsonl_not_utf8_names_the_line(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "cp1252.jsonl"
    f.write_bytes(b'{"id": "a", "text": "t"}\n{"id": "b", "text": "\x93quoted\x94"}\n')
    with pytest.raises(ImportValidationError, match=r"line 2: .*not UTF-8") as e:
        import_items(store, pid, f)
    assert e.value.line == 2
    assert store.count_items(pid) == 0


def test_csv_unterminated_quote_names_the_record(store, tmp_path):
    pid = _project(store)
    # the quote opened on line 3 is never closed: the rest of the file would be one cell
    f = _write(tmp_path / "x.csv", 'id,text\na,fine\nb,"never closed\nc,fine\n')
    with pytest.raises(ImportValidationError, match="line 3: malformed CSV") as e:
        import_items(store, pid, f, text_field=None)
    assert e.value.line == 3
    assert store.count_items(pid) == 0


def test_csv_text_after_closing_quote_is_malformed(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", 'id,text\na,"quoted"junk\n')
    with pytest.raises(ImportValidationError, match="line 2: malformed CSV"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


def test_csv_huge_field_is_malformed(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "x.csv"
    f.write_text("id,text\na,t\nb," + "x" * 200_000 + "\n")  # > csv's 131072-char field limit
    with pytest.raises(ImportValidationError, match=r"line 3: a cell of more than 131,072"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


def test_file_that_is_not_parquet(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "items.parquet", "id,text\na,t\n")  # a CSV with the wrong suffix
    with pytest.raises(ImportValidationError, match="not a readable Parquet file") as e:
        import_items(store, pid, f)
    assert e.value.line is None
    assert store.count_items(pid) == 0


def test_truncated_parquet_file(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "items.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["t", "t"]}), f)
    f.write_bytes(f.read_bytes()[:-20])  # the footer is cut off
    with pytest.raises(ImportValidationError, match="not a readable Parquet file"):
        import_items(store, pid, f)
    assert store.count_items(pid) == 0


# --------------------------------------------------------------------------- images


def test_image_folder_with_folder_labels(store, tmp_path):
    pid = _project(store, classes=("cat", "dog"))
    root = tmp_path / "imgs"
    for rel in ["cat/1.png", "dog/2.JPG", "loose.webp", "notes.txt"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\x89PNG")
    assert detect_format(root) == "images"
    assert import_items(store, pid, root, label_field="folder") == ImportResult(3, 3, 0)
    cat = store.find_item(pid, "cat/1.png")
    assert (cat.label, cat.payload["image"]) == ("cat", str((root / "cat/1.png").resolve()))
    assert store.find_item(pid, "loose.webp").status == "unlabeled"
    assert store.find_item(pid, "notes.txt") is None
    assert import_items(store, pid, root, label_field="folder").n_skipped == 3


def test_image_folder_unknown_class_folder(store, tmp_path):
    pid = _project(store, classes=("cat", "dog"))
    (tmp_path / "imgs" / "bird").mkdir(parents=True)
    (tmp_path / "imgs" / "bird" / "1.png").write_bytes(b"")
    with pytest.raises(ImportValidationError, match="'bird'"):
        import_items(store, pid, tmp_path / "imgs", label_field="folder")


# --------------------------------------------------------------------------- bad arguments


def test_unknown_suffix(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.xlsx", "whatever")
    with pytest.raises(LabelwiseError, match="cannot tell the format"):
        import_items(store, pid, f)


def test_unknown_format(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "x.csv", "id,text\n")
    with pytest.raises(LabelwiseError, match="unknown import format"):
        import_items(store, pid, f, format="xml")


def test_missing_file(store, tmp_path):
    with pytest.raises(LabelwiseError, match="does not exist"):
        import_items(store, _project(store), tmp_path / "nope.csv")


def test_bad_batch_size(store, tmp_path):
    with pytest.raises(LabelwiseError, match="batch_size"):
        import_items(store, _project(store), tmp_path / "x.csv", batch_size=0)


# --------------------------------------------------------------------------- streaming


_STREAM_SCRIPT = """
import csv, resource, sys
from pathlib import Path
from labelwise.importers import import_items
from labelwise.testing.store import sqlite_store

tmp = Path(sys.argv[1])
path = tmp / "big.csv"
with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "text", "source"])
    for i in range(200_000):
        w.writerow([f"doc-{i}", f"document number {i} with a few words of text in it", "web"])
with sqlite_store(tmp / "big.db") as store:
    pid = store.create_project("big", "multiclass", ["a", "b"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = import_items(store, pid, path, batch_size=5000)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.n_created == 200_000, result
    assert store.count_items(pid) == 200_000
print((after - before) * 1024)
"""


def test_200k_row_csv_streams_in_bounded_memory(tmp_path):
    # Held all at once, 200k parsed rows (dict payload + metadata + NewItem, ~1 KB each) would
    # need ~200 MB; streaming in batches of 5000 keeps the peak growth to a few batches.
    # A fresh interpreter, so the peak RSS (ru_maxrss, KiB on Linux) reflects this import only.
    out = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    growth = int(out.stdout.strip().splitlines()[-1])
    assert growth < 64 * 2**20, f"peak memory grew by {growth / 2**20:.0f} MiB"


# --------------------------------------------------------------------------- issue 14


def test_reimport_of_an_edited_label_file_updates_labels(store, tmp_path):
    pid = _project(store)
    f = _write(tmp_path / "labels.csv", "id,text,label\na,one,pos\nb,two,\nc,three,neg\n")
    import_items(store, pid, f, label_field="label")
    edited = _write(tmp_path / "labels.csv", "id,text,label\na,one,neg\nb,two,pos\nc,three,neg\n")
    # default skip: nothing changes, but the changed rows are reported
    r = import_items(store, pid, edited, label_field="label")
    assert (r.n_created, r.n_updated, r.n_skipped, r.n_changed) == (0, 0, 3, 2)
    assert r.changed_ids == ("a", "b")
    assert store.find_item(pid, "a").label == "pos"
    with pytest.raises(DuplicateItemsError, match=r"2 rows repeat .*'a', 'b'"):
        import_items(store, pid, edited, label_field="label", on_duplicate="fail")
    r = import_items(store, pid, edited, label_field="label", on_duplicate="update")
    assert (r.n_created, r.n_updated, r.n_changed) == (0, 2, 2)
    assert [store.find_item(pid, k).label for k in "abc"] == ["neg", "pos", "neg"]
    assert store.find_item(pid, "b").status == "labeled"


def test_split_column_puts_rows_in_the_validation_split_and_they_never_train(store, tmp_path):
    from types import SimpleNamespace

    from labelwise.service.rounds import read_snapshot

    pid = _project(store)
    f = _write(
        tmp_path / "x.csv",
        "id,text,label,split\na,one,pos,validation\nb,two,neg,train\nc,three,pos,\n",
    )
    import_items(store, pid, f, label_field="label")
    a = store.find_item(pid, "a")
    assert a.metadata == {"source": "x.csv", "split": "validation"}  # not in "fields"
    assert "split" not in store.find_item(pid, "b").metadata
    settings = SimpleNamespace(data_dir=tmp_path / "data")
    snap = read_snapshot(store, store.get_project(pid), settings)
    assert a.id not in set(snap.train_ids.tolist())
    assert snap.val_ids.tolist() == [a.id]
    bad = _write(tmp_path / "y.csv", "id,text,split\nz,t,test\n")
    with pytest.raises(ImportValidationError, match=r"line 2: field 'split': split must be"):
        import_items(store, pid, bad)


@pytest.mark.parametrize("content", ["", "id,text\n"])
def test_empty_or_header_only_file_is_an_error(store, tmp_path, content):
    pid = _project(store)
    f = tmp_path / "x.csv"
    f.write_text(content)
    with pytest.raises(ImportValidationError, match="has no rows"):
        import_items(store, pid, f)
    g = tmp_path / "x.jsonl"
    g.write_text("\n")
    with pytest.raises(ImportValidationError, match="has no rows"):
        import_items(store, pid, g)


def _limited_files(tmp_path, fmt, row):
    if fmt == "jsonl":
        path = tmp_path / "x.jsonl"
        path.write_text(json.dumps({"id": "ok", "text": "t"}) + "\n" + row + "\n")
    elif fmt == "parquet":
        path = tmp_path / "x.parquet"
        rows = [{"id": "ok", "text": "t"}, json.loads(row)]
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path = tmp_path / "x.csv"
        d = json.loads(row)
        path.write_text("id,text\nok,t\n" + f"{d['id']},{d['text']}\n")
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"id": "b", "text": "' + "x" * 140_000 + '"}', r"(field 'text': a value|a cell) of "),
        ('{"id": "b", "text": "nul \\u0000 here"}', r"field 'text': a NUL character"),
    ],
)
def test_one_set_of_limits_for_every_format(store, tmp_path, fmt, row, message):
    pid = _project(store)
    with pytest.raises(ImportValidationError, match=r"line (3|2): " + message):
        import_items(store, pid, _limited_files(tmp_path, fmt, row))
    assert store.count_items(pid) == 0


def test_jsonl_deep_nesting_and_huge_integers_are_4xx_errors(store, tmp_path):
    pid = _project(store)
    f = tmp_path / "x.jsonl"
    f.write_text('{"id": "a", "text": "t", "m": ' + "[" * 40 + "]" * 40 + "}\n")
    with pytest.raises(ImportValidationError, match=r"line 1: field 'm': .*nested deeper than 32"):
        import_items(store, pid, f)
    f.write_text('{"id": "a", "text": "t", "m": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ImportValidationError, match=r"line 1: values nested deeper"):
        import_items(store, pid, f)
    f.write_text('{"id": ' + "7" * 5000 + ', "text": "t"}\n')
    with pytest.raises(ImportValidationError, match=r"line 1: field 'id': an integer of 5000"):
        import_items(store, pid, f)
    f.write_text('{"id": 12345678901234567890, "text": "t"}\n')  # 20 digits: fine
    assert import_items(store, pid, f).n_created == 1
    assert store.find_item(pid, "12345678901234567890") is not None
