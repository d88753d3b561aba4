"""Tests for labelwise.report: an end-to-end report on real data, written atomically."""

from __future__ import annotations

import base64
import csv
import json

import pytest

import labelwise.report as report
from labelwise.evaluate import evaluate
from labelwise.report import PLOTS, write_report
from labelwise.stopping import Plateau


@pytest.fixture(scope="module")
def ev():
    return evaluate(
        "breast_cancer",
        ["margin", "kcenter"],
        seeds=2,
        n_rounds=3,
        initial_size=10,
        batch_size=10,
        thresholds=(0.9, 0.95),
        n_boot=100,
        stopping=[Plateau(epsilon=1.0, patience=1)],
        label_cost=0.5,
        setup_cost=10.0,
    )


def test_report_end_to_end(ev, tmp_path):
    out = tmp_path / "reports" / "bc"
    page = write_report(ev, out)
    assert page == out / "report.html"
    html = page.read_text(encoding="utf-8")
    assert '<table id="ratio-table">' in html and '<table id="business-table">' in html
    assert '<table id="stopping-table">' in html
    for s in ("margin", "kcenter", "random"):
        assert f"<td>{s}</td>" in html
    # every plot is embedded, and exists as a valid PNG beside the page
    assert html.count("data:image/png;base64,") == len(PLOTS)
    for name in PLOTS:
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert base64.b64encode(png).decode() in html
    with open(out / "points.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * 4  # strategies x seeds x (rounds + 1)
    assert {r["strategy"] for r in rows} == {"margin", "kcenter", "random"}
    data = json.loads((out / "results.json").read_text())  # strict JSON: no NaN / Infinity
    assert data["strategies"] == ["margin", "kcenter", "random"]
    assert len(data["runs"]["margin"][0]["points"]) == 4
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_report_replaces_an_existing_one(ev, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    write_report(ev, out)
    assert (out / "report.html").exists() and not (out / "stale.txt").exists()


def test_failure_leaves_no_half_written_report(ev, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_write_points", boom)
    out = tmp_path / "r"
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(ev, out)
    assert list(tmp_path.iterdir()) == []  # neither the report nor its temp directory


def test_cli_evaluate_writes_the_report(tmp_path):
    from typer.testing import CliRunner

    from labelwise.cli import app

    out = tmp_path / "bc"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            "breast_cancer",
            "--strategies",
            "margin,random",
            "--seeds",
            "2",
            "--rounds",
            "2",
            "--batch-size",
            "10",
            "--initial-size",
            "10",
            "--label-cost",
            "0.5",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["report"] == str(out / "report.html") and (out / "report.html").exists()
    assert {row["strategy"] for row in data["summary"]} == {"margin", "random"}


def test_cli_evaluate_bad_input_exits_2(tmp_path):
    from typer.testing import CliRunner

    from labelwise.cli import app

    out = tmp_path / "x"
    result = CliRunner().invoke(
        app, ["evaluate", "--dataset", "nope", "--seeds", "1", "--out", str(out)]
    )
    assert result.exit_code == 2 and "unknown data set" in result.output
    assert not out.exists()


def test_few_seeds_warn_and_labels_are_whole(ev, tmp_path):
    import re

    html = write_report(ev, tmp_path / "few").read_text(encoding="utf-8")
    assert 'id="few-seeds"' in html and "Only 2" in html  # 2 seeds < report.MIN_SEEDS
    table = html[html.index('<table id="ratio-table">') :]
    table = table[: table.index("</table>")]
    rows = [re.findall(r"<td>(.*?)</td>", r, re.S) for r in table.split("<tr>")[2:]]
    assert len(rows) == 3
    for row in rows:  # strategy, (labels, ratio) per threshold, AUC
        labels = [re.sub(r"\s*\(\d+/\d+ seeds\)", "", c).strip() for c in row[1:-1:2]]
        assert len(labels) == 2 and all(re.fullmatch(r"[\d,]+|never", c) for c in labels), row


def test_labels_are_rounded_to_whole_labels():
    assert report._labels(40.35) == "40" and report._labels(1234.6) == "1,235"
    assert report._labels(float("inf")) == "never"


def test_cli_evaluate_warns_below_five_seeds(tmp_path):
    from typer.testing import CliRunner

    from labelwise.cli import app

    args = ["evaluate", "--dataset", "breast_cancer", "--strategies", "margin", "--seeds", "2",
            "--rounds", "1", "--batch-size", "10", "--initial-size", "10",
            "--out", str(tmp_path / "o")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "--seeds 5" in result.output
