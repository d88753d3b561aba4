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


def _format_evaluation(ev: Any, page: Any) -> Table:
    top = max(ev.thresholds)
    table = Table(
        title=f"{ev.data_name}: labels to {top:.0%} of full-data {ev.metric} "
        f"({ev.full_quality:.4g}), {len(ev.seeds)} seeds",
        title_justify="left",
        caption=f"report: {page}",
        caption_justify="left",
    )
    for col in ("strategy", "labels", "seeds reached", "ratio vs random", "95% CI", "AUC"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for s in ev.strategies:
        r = ev.ratio(s, top)
        known = r["bound"] != "n/a"
        table.add_row(
            s,
            f"{r['labels_mean']:.0f}" if r["reached"] else "never",
            f"{r['reached']}/{r['n_seeds']}",
            f"{r['bound']}{r['ratio']:.2f}" if known else "n/a",
            f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if known else "-",
            f"{ev.auc[s][0]:.4f}",
        )
    return table


def _split_csv(value: str, cast: Any = str) -> list[Any]:
    try:
        return [cast(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise LabelwiseError(f"expected a comma-separated list; got {value!r}.") from None


@app.command()
def evaluate(
    dataset: str = typer.Option(..., "--dataset", help="Data set name (see labelwise.datasets)."),
    strategies: str = typer.Option(
        "entropy,margin,kcenter,random", "--strategies", help="Comma-separated strategy names."
    ),
    seeds: int = typer.Option(10, "--seeds", help="Runs per strategy (seeds 0..n-1)."),
    out: str = typer.Option(None, "--out", help="Report directory [default: reports/DATASET]."),
    initial_size: int = typer.Option(20, "--initial-size", help="Random initial labels."),
    batch_size: int = typer.Option(20, "--batch-size", help="Labels per round."),
    rounds: int = typer.Option(10, "--rounds", help="Rounds after the initial set."),
    thresholds: str = typer.Option(
        "0.8,0.9,0.95", "--thresholds", help="Targets as fractions of full-data quality."
    ),
    label_cost: float = typer.Option(1.0, "--label-cost", help="Cost of one annotation."),
    setup_cost: float = typer.Option(0.0, "--setup-cost", help="One-off cost, for the ROI."),
    noise: float = typer.Option(0.0, "--noise", help="Annotator flip rate in [0, 1]."),
    consensus: int = typer.Option(
        0, "--consensus", help="Annotations per hard item (0: no consensus; e.g. 3)."
    ),
    consensus_fraction: float = typer.Option(
        0.2, "--consensus-fraction", help="Share of each batch that gets consensus."
    ),
    consensus_method: str = typer.Option(
        "majority", "--consensus-method", help="majority or dawid_skene."
    ),
    latency: int = typer.Option(0, "--latency", help="Rounds of labeling latency."),
    jobs: int = typer.Option(1, "--jobs", help="Parallel runs (joblib)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulate strategies x seeds on a data set and write an HTML label-efficiency report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from labelwise.evaluate import evaluate as run_evaluation
    from labelwise.report import write_report
    from labelwise.simulate import Consensus, NoiseModel

    with _errors():
        kwargs = {
            "seeds": seeds,
            "thresholds": _split_csv(thresholds, float),
            "initial_size": initial_size,
            "batch_size": batch_size,
            "n_rounds": rounds,
            "noise": NoiseModel(flip_rate=noise) if noise else None,
            "consensus": Consensus(
                k=consensus, fraction=consensus_fraction, method=consensus_method
            )
            if consensus
            else None,
            "latency_rounds": latency,
            "label_cost": label_cost,
            "setup_cost": setup_cost,
            "n_jobs": jobs,
        }
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task(f"{dataset}: rounds x seeds x strategies", total=None)
            ev = run_evaluation(
                dataset,
                _split_csv(strategies),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                **kwargs,
            )
        page = write_report(ev, out or f"reports/{dataset}")
    if as_json:
        _print_json({"report": str(page), "full_quality": ev.full_quality, "summary": ev.summary})
    else:
        console().print(_format_evaluation(ev, page))


def _format_demo(result) -> Table:
    table = Table(
        title=f"learning curve on {result.dataset}: test accuracy, mean of {result.seeds} seeds",
        title_justify="left",
    )
    table.add_column("labels", justify="right")
    table.add_column(result.baseline, justify="right")
    table.add_column(result.strategy, justify="right")
    table.add_column("gain", justify="right")
    for row in result.rows:
        a, b = row.quality[result.baseline], row.quality[result.strategy]
        mark = " ◀" if row.n_labeled == result.labels_to_match else ""
        table.add_row(str(row.n_labeled), f"{a:.3f}", f"{b:.3f}{mark}", f"{b - a:+.3f}")
    return table


@app.command()
def demo(
    strategy: str = typer.Option("margin", help="Strategy to compare with random sampling."),
    dataset: str = typer.Option("digits", help="A bundled real data set."),
    seeds: int = typer.Option(3, min=1, help="Repetitions to average."),
    rounds: int = typer.Option(15, min=1, help="Rounds after the initial random labels."),
    batch_size: int = typer.Option(20, min=1, help="Labels per round."),
) -> None:
    """Replay active learning on real data and print the learning curve against random."""
    from rich.progress import Progress

    from labelwise.demo import format_summary, learning_curve_demo

    with _errors(), Progress(console=console(stderr=True), transient=True) as progress:
        bar = progress.add_task("simulating rounds", total=seeds * 2 * (rounds + 1))
        result = learning_curve_demo(
            strategy,
            dataset=dataset,
            seeds=seeds,
            n_rounds=rounds,
            batch_size=batch_size,
            on_round=lambda name, r: progress.update(
                bar, advance=1, description=f"simulating {name}, round {r}"
            ),
        )
    console().print(_format_demo(result))
    console().print(format_summary(result))


if __name__ == "__main__":  # python -m labelwise.cli
    app()
