"""The ``labelwise`` command line, through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import labelwise
from labelwise.cli import _errors, app
from labelwise.errors import UnknownStrategyError
from labelwise.strategies import list_strategies, strategy_names

runner = CliRunner()


def test_strategies_table_lists_every_registered_strategy():
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in strategy_names():
        assert name in result.output
    assert "cold start" in result.output


def test_strategies_table_shows_description_tasks_and_cold_start():
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "250"})
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    random_row = lines["random"]
    assert "yes" in random_row  # cold start
    entropy_row = lines["entropy"]
    assert "no" in entropy_row.split("│")[-2]
    assert "model" in entropy_row
    assert "multilabel" in entropy_row


def test_strategies_table_fits_a_narrow_terminal():
    result = runner.invoke(app, ["strategies"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for name in strategy_names():
        assert name in result.output  # names never wrap


def test_strategies_json_matches_the_registry():
    result = runner.invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["name"] for d in data] == strategy_names()
    by_name = {d["name"]: d for d in data}
    for info in list_strategies():
        d = by_name[info.name]
        assert d["description"] == info.description
        assert d["task_types"] == list(info.task_types)
        assert d["needs"] == list(info.needs)
        assert d["cold_start"] is info.cold_start
    assert by_name["random"]["cold_start"] is True
    assert by_name["entropy"]["needs"] == ["model"]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"labelwise {labelwise.__version__}"


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "strategies" in result.output


def test_help_lists_strategies_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "strategies" in result.output


def test_unknown_command_fails():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code != 0


def test_library_errors_become_exit_code_2(capsys):
    with pytest.raises(typer.Exit) as info, _errors():
        raise UnknownStrategyError("unknown strategy 'x'; valid strategies: entropy")
    assert info.value.exit_code == 2
    assert "unknown strategy 'x'" in capsys.readouterr().err


def test_error_messages_keep_their_brackets():
    """Library errors are plain text: ``labelwise[ray]``, ``nope[x]`` must not vanish as markup."""
    from typer.testing import CliRunner

    from labelwise.cli import app

    out = CliRunner().invoke(app, ["evaluate", "--dataset", "digits", "--strategies", "nope[x]"])
    assert out.exit_code == 2
    assert "nope[x]" in out.output
