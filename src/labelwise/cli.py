"""The ``labelwise`` command line.

Every command is *parse -> one library call -> format*: typer parses the options, a single call
into the library does the work, and a small ``_format_*`` / ``_print_*`` function renders the
result (a rich table for people, ``--json`` for scripts). Commands hold no logic of their own,
so anything the CLI does can be done from Python the same way.

To add a command (``demo``, ``evaluate``, ``serve``, ...)::

    @app.command()
    def evaluate(dataset: str, as_json: bool = JSON_OPTION) -> None:
        # the docstring is the one line shown by --help
        with _errors():
            result = labelwise.evaluate.run(dataset)      # the one library call
        _print_json(result) if as_json else console().print(_format_result(result))

Library errors (:class:`labelwise.errors.LabelwiseError`) are shown as one red line on stderr
with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from labelwise import __version__
from labelwise.errors import LabelwiseError
from labelwise.strategies import StrategyInfo, list_strategies

__all__ = ["app"]

app = typer.Typer(
    name="labelwise",
    help="Active learning for production: pick what to label, queue it, retrain, stop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


# ------------------------------------------------------------------------------------ helpers


def console(stderr: bool = False) -> Console:
    """A rich console (created per call, so tests that capture stdout see the output)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn a library error into one line on stderr and exit code 2."""
    try:
        yield
    except LabelwiseError as exc:
        console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True)
        raise typer.Exit(code=2) from None


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return obj


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(_to_jsonable(obj), indent=2))


# ------------------------------------------------------------------------------------ formats


def _format_strategies(infos: Sequence[StrategyInfo]) -> Table:
    table = Table(title="labelwise strategies", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("description", overflow="fold")
    table.add_column("tasks")
    table.add_column("needs")
    table.add_column("cold start", justify="center")
    for info in infos:
        table.add_row(
            Text(info.name),
            Text(info.description),  # Text: brackets in a description are not markup
            ", ".join(info.task_types),
            ", ".join(info.needs) or "-",
            "yes" if info.cold_start else "no",
        )
    return table


# ----------------------------------------------------------------------------------- commands


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"labelwise {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_version_callback,
        is_eager=True,
    ),
) -> None:
    """Active learning for production: pick what to label, queue it, retrain, stop."""


@app.command()
def strategies(as_json: bool = JSON_OPTION) -> None:
    """List every registered selection strategy: tasks, inputs it needs, cold start."""
    infos = list_strategies()
    if as_json:
        _print_json(infos)
    else:
        console().print(_format_strategies(infos))


if __name__ == "__main__":  # python -m labelwise.cli
    app()
