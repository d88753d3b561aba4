"""labelwise project import --on-duplicate (issue 14): changed ids reported, updated, refused."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.storage import open_store

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_reimport_with_on_duplicate(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LABELWISE_DATABASE_URL", url)
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "data"))
    assert _run("project", "create", "r", "--classes", "great,other").exit_code == 0
    path = tmp_path / "labels.csv"
    path.write_text("id,text,label\na,tasty,great\nb,stale,other\n")
    assert _run("project", "import", "r", str(path), "--label-field", "label").exit_code == 0
    path.write_text("id,text,label\na,tasty,other\nb,stale,other\n")
    out = _run("project", "import", "r", str(path), "--label-field", "label")
    assert out.exit_code == 0 and "1 existing ids had different content and were kept (a)" in (
        " ".join(out.output.split())
    ), out.output
    out = _run(
        "project", "import", "r", str(path), "--label-field", "label", "--on-duplicate", "fail"
    )
    assert out.exit_code == 2 and "error:" in out.output and "'a'" in out.output, out.output
    out = _run(
        "project",
        "import",
        "r",
        str(path),
        "--label-field",
        "label",
        "--on-duplicate",
        "update",
        "--json",
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {
        "n_read": 2,
        "n_created": 0,
        "n_skipped": 1,
        "n_updated": 1,
        "n_changed": 1,
        "changed_ids": ["a"],
    }
    store = open_store(url)
    try:
        pid = store.find_project("r").id
        assert store.find_item(pid, "a").label == "other"
    finally:
        store.close()
