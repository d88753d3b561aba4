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
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from labelwise import __version__
from labelwise.errors import LabelwiseError
from labelwise.strategies import DEFAULT_STRATEGY, StrategyInfo, list_strategies

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
        # the message is plain text: brackets in it ("labelwise[ray]") are not markup
        console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
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
    if hasattr(obj, "isoformat"):  # datetimes (created, updated)
        return obj.isoformat()
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
    out: str = typer.Option(None, "--out", help="Report directory (default: reports/DATASET)."),
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
    from labelwise.report import MIN_SEEDS, write_report
    from labelwise.simulate import Consensus, NoiseModel

    if seeds < MIN_SEEDS:
        console(stderr=True).print(
            f"[yellow]warning:[/yellow] {seeds} seed(s): confidence intervals from fewer than "
            f"{MIN_SEEDS} seeds are too wide to quote; use --seeds {MIN_SEEDS} or more.",
            markup=True,
        )
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
    strategy: str = typer.Option(
        DEFAULT_STRATEGY, help="Strategy to compare with random sampling."
    ),
    dataset: str = typer.Option("digits", help="A bundled real data set."),
    seeds: int = typer.Option(5, min=1, help="Repetitions to average (5+ for a usable CI)."),
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


def _format_selection(query: Any, out: Path, backend: str, seconds: float) -> Text:
    scores = query.scores
    return Text(
        f"selected {len(query)} rows with {query.strategy} on the {backend} backend in "
        f"{seconds:.1f} s (scores {scores.max():.4g} .. {scores.min():.4g}); "
        f"pool rows, best first, saved to {out}"
    )


@app.command()
def select(
    pool: Path = typer.Option(..., "--pool", help=".npy features (n_pool, n_features)."),
    model: Path = typer.Option(
        ..., "--model", help="joblib file of a fitted classifier (trusted only)."
    ),
    strategy: str = typer.Option(DEFAULT_STRATEGY, "--strategy", help="Strategy name."),
    k: int = typer.Option(500, "--k", min=1, help="Rows to select."),
    out: Path = typer.Option(..., "--out", help="Output .npy of pool rows, best first."),
    backend: str = typer.Option("local", "--backend", help="local or ray."),
    address: str = typer.Option(
        None, "--address", help="Ray cluster: auto or HOST:6379 (default: start a local one)."
    ),
    labeled: Path = typer.Option(
        None, "--labeled", help=".npy of pool rows already labelled (left out)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random state for tie-breaks and k-means."),
    chunk_size: int = typer.Option(65_536, "--chunk-size", min=1, help="Rows per chunk."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Select rows of a large memory-mapped pool with a saved model, locally or on Ray."""
    import time

    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from labelwise.scale import select_from_files

    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(f"scoring candidates ({strategy}, {backend})", total=None)
            started = time.perf_counter()
            query = select_from_files(
                pool,
                model,
                strategy,
                k,
                backend=backend,
                address=address,
                labeled=labeled,
                random_state=seed,
                chunk_size=chunk_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            seconds = time.perf_counter() - started
    except LabelwiseError as exc:
        # as _errors, but as plain text: the install hint's "labelwise[ray]" is not markup
        console(stderr=True).print(Text.assemble(("error:", "red"), f" {exc}"))
        raise typer.Exit(code=2) from None
    np.save(out, query.pool_idx)
    if as_json:
        _print_json(
            {
                "out": str(out),
                "n": len(query),
                "strategy": query.strategy,
                "backend": backend,
                "seconds": seconds,
                "pool_idx": query.pool_idx,
                "scores": query.scores,
            }
        )
    else:
        console().print(_format_selection(query, out, backend, seconds))


# ------------------------------------------------------------------------ service commands
#
# serve, worker, db upgrade, project create/list/import/export/status, token create. Each opens
# the store named by --database-url (else LABELWISE_DATABASE_URL / DATABASE_URL, else the
# embedded SQLite file) and makes one call into labelwise.service.admin or the service.

DATABASE_URL_OPTION = typer.Option(
    None,
    "--database-url",
    help="SQLAlchemy URL (default: $LABELWISE_DATABASE_URL, $DATABASE_URL or "
    "sqlite:///./.labelwise/labelwise.db).",
    show_default=False,
)

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
project_app = typer.Typer(
    help="Projects: create, list, import items, start a round, export labels, status.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens for admins and annotators.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(project_app, name="project")
app.add_typer(token_app, name="token")


@contextlib.contextmanager
def _service_errors() -> Iterator[None]:
    """Like :func:`_errors`, plus unknown rows and an unreachable or invalid database."""
    import sqlalchemy.exc

    from labelwise.storage.base import NotFound

    with _errors():
        try:
            yield
        except NotFound as exc:
            raise LabelwiseError(f"{exc}.") from None
        except sqlalchemy.exc.ArgumentError as exc:
            raise LabelwiseError(f"bad --database-url: {exc}") from None
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            raise LabelwiseError(f"cannot use the database: {reason}") from None


def _settings(database_url: str | None = None, **overrides: Any) -> Any:
    from pydantic import ValidationError

    from labelwise.settings import Settings

    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if database_url is not None:
        kwargs["database_url"] = database_url
    try:
        return Settings(**kwargs)
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise LabelwiseError(f"bad settings: {msg}") from None


def _open(settings: Any) -> Any:
    from labelwise.storage import open_store

    return open_store(settings.database_url, upgrade=settings.auto_upgrade)


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # memory:// and friends
        return url


def _format_serving(base: str, demo: Any = None) -> Text:
    out = Text()
    out.append("labelwise is serving at ", style="bold")
    out.append(base, style="bold green")
    out.append(f"\n  API docs (OpenAPI): {base}/docs\n  health: {base}/healthz\n")
    if demo is not None:
        verb = "created" if demo.created else "found"
        out.append(
            f"\ndemo project {demo.project_id} ({verb}): {demo.n_items - demo.n_validation:,} "
            f"fine-food reviews to label (great / other) and {demo.n_validation:,} labelled "
            "validation reviews that score every retrain\n"
        )
        out.append(f"  admin token:     {demo.admin_token}\n")
        out.append(f"  annotator token: {demo.annotator_token}\n")
        pages = f"{base}/login#next=/projects/{demo.project_id}"
        out.append(f"  label in the browser: {pages}/label&token={demo.annotator_token}\n")
        out.append(f"  owner dashboard:      {pages}/dashboard&token={demo.admin_token}\n")
        out.append(
            f"  next task: curl -X POST -H 'Authorization: Bearer {demo.annotator_token}' "
            f"{base}/api/projects/{demo.project_id}/tasks/next\n"
        )
        from labelwise.service.demo_project import expectation

        out.append(f"\n{expectation()}\n")
    out.append("Press Ctrl-C to stop.")
    return out


@app.command()
def serve(
    host: str = typer.Option(None, "--host", help="Interface (default: 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default: 8000)."),
    database_url: str = DATABASE_URL_OPTION,
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Leave retraining jobs to separate `labelwise worker` processes."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="uvicorn server processes. With more than one, the retraining worker runs once, "
        "in this (supervising) process, unless --no-worker.",
    ),
    demo: bool = typer.Option(
        False, "--demo", help="Create (once) and serve the fine-food reviews demo project."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the HTTP API (uvicorn) with an in-process retraining worker unless --no-worker."""
    import uvicorn

    from labelwise.service.app import create_app

    with _service_errors():
        settings = _settings(
            database_url, host=host, port=port, worker="external" if no_worker else None
        )
        store = _open(settings)
        info = None
        if demo:
            from labelwise.service.demo_project import setup_demo_project

            with console(stderr=True).status("setting up the demo project"):
                info = setup_demo_project(store, settings)
        if workers == 1:
            fastapi_app = create_app(settings, store)
    base = f"http://{settings.host}:{settings.port}"
    console().print(_format_serving(base, info), soft_wrap=True)  # tokens stay on one line
    if workers == 1:
        try:
            uvicorn.run(fastapi_app, host=settings.host, port=settings.port, log_level=log_level)
        finally:
            store.close()
        return
    _serve_multiprocess(settings, store, workers, log_level)


def _serve_multiprocess(settings: Any, store: Any, workers: int, log_level: str) -> None:
    """``workers`` uvicorn processes, each building the app from ``LABELWISE_*`` variables.

    This process has migrated the schema and made sure the admin exists, so the server
    processes start with ``auto_upgrade`` off (no race to migrate) and ``worker=external``: the
    one retraining worker (unless ``settings.worker == "external"``) runs here, in a thread.
    """
    import os
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from labelwise.service.app import _ensure_admin

    if admin_token := os.environ.get("LABELWISE_ADMIN_TOKEN"):
        _ensure_admin(store, admin_token)
    for name, value in settings.model_dump().items():
        os.environ[f"LABELWISE_{name.upper()}"] = str(value)
    os.environ["LABELWISE_AUTO_UPGRADE"] = "false"
    os.environ["LABELWISE_WORKER"] = "external"
    worker = None
    if settings.worker == "inline":
        from labelwise.service.worker import Worker

        worker = Worker(store, settings).start_in_thread()
    config = uvicorn.Config(
        "labelwise.service.app:create_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
    )
    try:
        # uvicorn binds the shared socket with proto 0, so asyncio never sets TCP_NODELAY on
        # accepted connections and every keep-alive response waits ~40 ms for the client's
        # delayed ACK (uvicorn issue #3149): rewrap the same descriptor as IPPROTO_TCP.
        bound = config.bind_socket()
        sock = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        if worker is not None:
            thread, stop = worker
            stop.set()
            thread.join(timeout=30)
        store.close()


@app.command()
def worker(
    database_url: str = DATABASE_URL_OPTION,
    poll: float = typer.Option(None, "--poll", help="Idle poll interval in seconds (default: 1)."),
    select_backend: str = typer.Option(
        None,
        "--select-backend",
        help="local or ray: where rounds' selections run (default: LABELWISE_SELECT_BACKEND, "
        "else local). The API must use the same setting, so that it leaves rounds to workers.",
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Ray cluster for --select-backend ray, e.g. auto."
    ),
) -> None:
    """Run retraining and selection jobs until SIGINT/SIGTERM (the running job finishes first)."""
    import logging
    import signal
    import threading

    from labelwise.service.worker import Worker

    with _service_errors():
        settings = _settings(
            database_url,
            worker_poll_seconds=poll,
            select_backend=select_backend,
            ray_address=ray_address,
        )
        store = _open(settings)
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        console(stderr=True).print(f"{signal.Signals(signum).name}: stopping after this job")
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    w = Worker(store, settings)
    where = (
        ""
        if settings.select_backend == "local"
        else f", selecting on Ray ({settings.ray_address or 'local instance'})"
    )
    console().print(
        f"worker {w.worker_id} on {_safe_url(settings.database_url)}{where}; Ctrl-C to stop"
    )
    try:
        w.run_forever(stop)
    finally:
        store.close()
    console().print(f"worker {w.worker_id} stopped")


@db_app.command("upgrade")
def db_upgrade(database_url: str = DATABASE_URL_OPTION) -> None:
    """Create or migrate the database schema to the latest revision (idempotent)."""
    from labelwise.storage.sql import SqlStore

    with _service_errors():
        settings = _settings(database_url)
        if settings.database_url.startswith("memory:"):
            raise LabelwiseError("memory:// has no schema to upgrade; pass a SQL --database-url.")
        store = SqlStore(settings.database_url)
        try:
            store.upgrade()
            revision = store.current_revision()
        finally:
            store.close()
    console().print(f"{_safe_url(settings.database_url)} is at revision {revision}")


def _format_project(p: Any) -> Text:
    stop = f", stopping {json.dumps(p.stopping)}" if p.stopping else ""
    return Text(
        f"project {p.id} {p.name!r}: {p.task_type}, classes {', '.join(p.classes)}; "
        f"strategy {p.strategy} (cold start {p.cold_start_strategy}), batch {p.batch_size}, "
        f"label cost {p.label_cost:g}{stop}"
    )


@project_app.command("create")
def project_create(
    name: str = typer.Argument(..., help="Unique project name."),
    classes: str = typer.Option(..., "--classes", help="Comma-separated class names."),
    task_type: str = typer.Option(
        "multiclass", "--task-type", help="multiclass, binary or multilabel."
    ),
    strategy: str = typer.Option(
        DEFAULT_STRATEGY, "--strategy", help="See `labelwise strategies`."
    ),
    strategy_param: list[str] = typer.Option(
        [], "--strategy-param", help="key=value (value parsed as JSON); repeatable."
    ),
    cold_start: str = typer.Option(
        "random", "--cold-start", help="Strategy used until a model exists."
    ),
    batch_size: int = typer.Option(10, "--batch-size", help="Items per round."),
    label_cost: float = typer.Option(1.0, "--label-cost", help="Cost of one label."),
    stopping: str = typer.Option(
        None, "--stopping", help="Stopping rule as JSON, e.g. '{\"target\": 0.9}'."
    ),
    show_predictions: bool = typer.Option(
        False, "--show-predictions", help="Show annotators the model's guess."
    ),
    consensus_share: float = typer.Option(
        0.0, "--consensus-share", help="Hardest share of each batch labelled by several people."
    ),
    consensus_k: int = typer.Option(3, "--consensus-k", help="Annotators per consensus item."),
    consensus_method: str = typer.Option(
        "majority", "--consensus-method", help="majority or dawid_skene."
    ),
    consensus_min_agreement: float = typer.Option(
        0.6, "--consensus-min-agreement", help="Below this agreement an item goes to review."
    ),
    gold_rate: float = typer.Option(0.0, "--gold-rate", help="Share of tasks that are gold."),
    gold_min_accuracy: float = typer.Option(
        0.7, "--gold-min-accuracy", help="Flag annotators below this gold accuracy."
    ),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a labeling project."""
    from labelwise.service.admin import (
        create_project_from_options,
        parse_json_object,
        parse_strategy_params,
    )

    with _service_errors():
        kwargs = {
            "classes": _split_csv(classes),
            "task_type": task_type,
            "strategy": strategy,
            "strategy_params": parse_strategy_params(strategy_param),
            "cold_start_strategy": cold_start,
            "batch_size": batch_size,
            "label_cost": label_cost,
            "stopping": parse_json_object(stopping, "--stopping"),
            "show_predictions": show_predictions,
            "consensus_share": consensus_share,
            "consensus_k": consensus_k,
            "consensus_method": consensus_method,
            "consensus_min_agreement": consensus_min_agreement,
            "gold_rate": gold_rate,
            "gold_min_accuracy": gold_min_accuracy,
        }
        with _open(_settings(database_url)) as store:
            project = create_project_from_options(store, name, **kwargs)
    _print_json(project) if as_json else console().print(_format_project(project))


@project_app.command("list")
def project_list(database_url: str = DATABASE_URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List projects."""
    with _service_errors(), _open(_settings(database_url)) as store:
        projects = store.list_projects()
    if as_json:
        _print_json(projects)
        return
    for p in projects:
        console().print(_format_project(p))


_IMPORT_KEYS = ("n_read", "n_created", "n_skipped")


@contextlib.contextmanager
def _import_bar(name: str, disable: bool) -> Iterator[Any]:
    """A rich bar for :func:`labelwise.importers.import_items`'s ``on_progress``: the file's
    bytes while its rows are checked (or read in one transaction), then the rows written, with
    rows/s; says so when an import resumes."""
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    err = console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=disable,
    ) as bar:
        task = bar.add_task(f"importing into {name}", total=None, done="", rate="")
        phase = {"name": "", "t0": time.monotonic(), "rows0": 0}

        def update(p: Any) -> None:
            now = time.monotonic()
            if p.phase != phase["name"]:
                phase.update(name=p.phase, t0=now, rows0=p.resumed_at)
                if p.phase == "write" and p.resumed_at:
                    bar.console.print(
                        f"resumed at row {p.resumed_at:,} of {p.n_rows:,} (committed by an "
                        "earlier run of this import)"
                    )
            rate = (p.rows - phase["rows0"]) / max(now - phase["t0"], 1e-9)
            what = "checking" if p.phase == "check" else "importing into"
            if p.phase == "write" and p.n_rows is not None:  # rows: the total is known
                total, completed = p.n_rows, p.rows
                done = f"{p.rows:,}/{p.n_rows:,} rows"
            elif p.n_bytes:
                total, completed = p.n_bytes, p.bytes_read or 0
                done = f"{p.rows:,} rows, {completed / 2**20:,.1f}/{total / 2**20:,.1f} MB"
            else:
                total, completed, done = None, p.rows, f"{p.rows:,} rows"
            bar.update(
                task,
                description=f"{what} {name}",
                total=total,
                completed=completed,
                done=done,
                rate=f"{rate:,.0f} rows/s",
            )

        yield update


@project_app.command("import")
def project_import(
    project: str = typer.Argument(..., help="Project name or id."),
    file: str = typer.Argument(
        ..., help="CSV/TSV, JSON Lines, Parquet file, image folder or Label Studio JSON export."
    ),
    format: str = typer.Option(
        None, "--format", help="csv, jsonl, parquet, images or labelstudio (.json)."
    ),
    text_field: str = typer.Option(
        "text", "--text-field", help="Column with the text; '' for tabular rows."
    ),
    id_field: str = typer.Option(
        "id", "--id-field", help="Column with the external id; '' numbers rows."
    ),
    label_field: str = typer.Option(
        None, "--label-field", help="Optional label column ('folder' for image folders)."
    ),
    on_duplicate: str = typer.Option(
        "skip",
        "--on-duplicate",
        help="An existing id with different content: skip (keep it, reported), update "
        "(replace it: re-import edited labels) or fail (import nothing).",
    ),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import items (streaming; a bad row imports nothing).

    A file over ``LABELWISE_IMPORT_RESUMABLE_BYTES`` (16 MiB) is checked whole first, then
    written in committed batches: run the same command again after a kill and it resumes after
    the last committed batch. The bar shows bytes while checking, rows while writing.
    """
    from labelwise.importers import import_items
    from labelwise.service.admin import resolve_project

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            p = resolve_project(store, project)
            with _import_bar(p.name, disable=as_json) as on_progress:
                result = import_items(
                    store,
                    p.id,
                    file,
                    format,
                    text_field=text_field or None,
                    id_field=id_field or None,
                    label_field=label_field or None,
                    batch_size=settings.import_batch_size,
                    on_duplicate=on_duplicate,
                    resumable_bytes=settings.import_resumable_bytes,
                    on_progress=on_progress,
                )
    if as_json:
        # the duplicate report only when there is one: the three counts stay the whole
        # answer of an ordinary import, as before
        out = _to_jsonable(result)
        _print_json({k: v for k, v in out.items() if k in _IMPORT_KEYS or v})
    else:
        if result.resumed_at:
            console().print(f"resumed at row {result.resumed_at:,} (committed by an earlier run)")
        console().print(
            f"imported {result.n_created:,} items into {p.name!r} ({result.n_read:,} rows read, "
            f"{result.n_skipped:,} skipped as existing ids)"
        )
        if result.n_updated:
            console().print(f"updated {result.n_updated:,} existing items")
        if result.n_annotations or result.n_predictions:
            console().print(
                f"kept {result.n_annotations:,} Label Studio annotations and "
                f"{result.n_predictions:,} predictions; {result.n_annotators_created:,} "
                "annotators created"
            )
        if result.n_changed and on_duplicate == "skip":
            ids = ", ".join(result.changed_ids)
            console().print(
                f"[yellow]{result.n_changed:,} existing ids had different content and were "
                f"kept ({ids}{', ...' if result.n_changed > len(result.changed_ids) else ''}); "
                "--on-duplicate update replaces them[/yellow]"
            )


@project_app.command("export")
def project_export(
    project: str = typer.Argument(..., help="Project name or id."),
    version: int = typer.Option(
        None, "--version", help="Dataset version id (default: snapshot the current labels)."
    ),
    format: str = typer.Option("csv", "--format", help="csv, jsonl or labelstudio."),
    out: str = typer.Option(None, "--out", help="Output file (default: stdout)."),
    predictions: bool = typer.Option(
        True,
        "--predictions/--no-predictions",
        help="labelstudio: add the latest model's prediction (score) to each task.",
    ),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Export a dataset version's labels (id, label) as CSV or JSON Lines, or a Label Studio
    task list (labelstudio: every item, or the labeled items of --version)."""
    import sys

    from labelwise.service.admin import export_project, resolve_project

    if format == "labelstudio":
        from labelwise.service.labelstudio_export import write_labelstudio

        with _service_errors():
            settings = _settings(database_url)
            with _open(settings) as store:
                p = resolve_project(store, project)
                n, path = write_labelstudio(
                    store, p.id, out or sys.stdout, settings=settings, version=version,
                    predictions=predictions,
                )  # fmt: skip
        console(stderr=True).print(
            f"exported {n:,} Label Studio tasks of {p.name!r}{' to ' + path if path else ''}"
        )
        return
    with _service_errors(), _open(_settings(database_url)) as store:
        p = resolve_project(store, project)
        result = export_project(store, p.id, format, out or sys.stdout, version=version)
    dv = result.dataset_version
    console(stderr=True).print(
        f"exported {result.n_rows:,} labels of {p.name!r}, dataset version {dv.id} "
        f"({dv.content_hash[:12]}){' to ' + result.path if result.path else ''}"
    )


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _format_quality(q: dict[str, int]) -> str:
    """One line: what consensus and gold cost, what review found (flagged/confirmed/corrected)."""
    if not q:
        return "-"
    issues = "/".join(
        str(q.get(f"label_issue_{w}", 0)) for w in ("flagged", "confirmed", "corrected")
    )
    return (
        f"{q.get('extra_annotations', 0):,} extra consensus answers on "
        f"{q.get('consensus_items', 0):,} items, {q.get('gold_answers', 0):,} gold answers, "
        f"{q.get('in_review', 0):,} in review; label errors flagged/confirmed/corrected {issues}"
    )


def _format_status(status: Any) -> list[Any]:
    p, pr = status.project, status.progress
    summary = Table(title=f"project {p.id} {p.name!r}", title_justify="left", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    jobs = ", ".join(f"{n} {s}" for s, n in sorted(status.jobs.items())) or "none"
    mb, rb = pr.majority_baseline, pr.random_baseline

    def vs_majority(value: Any, key: str) -> str:
        # the floor beside the number: 0.66 accuracy means little when 65.8 % is one class
        return _fmt(value) + ("" if mb is None else f" (always {mb['label']!r}: {mb[key]:.3f})")

    headline = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    rate = ", ".join(f"#{aid}: {r:,.0f}" for aid, r in pr.throughput.items()) or "-"
    rows = [
        ("items to label", f"{pr.n_to_label:,} ({pr.n_unlabeled:,} unlabeled)"),
        ("validation items", f"{pr.n_validation:,} (labelled, never queued)"),
        ("labels", f"{pr.n_labeled - pr.n_validation:,} ({pr.n_annotations:,} from annotators)"),
        ("rounds", f"{pr.rounds} ({pr.open_rounds} open)"),
        ("queue depth", f"{pr.queue_depth:,}"),
        ("accuracy", vs_majority(pr.accuracy, "accuracy")),
        ("macro-F1", vs_majority(pr.macro_f1, "macro_f1")),
        ("headline metric", headline.get(pr.headline_metric, pr.headline_metric)),
        ("ECE", _fmt(pr.ece)),
        ("cost", f"{pr.cost:,.2f}"),
        ("data quality", _format_quality(pr.quality)),
        ("target", "-" if pr.target is None else f"{pr.target_metric} {pr.target:g}"),
        ("labels to target", _fmt(pr.projected_labels_to_target, ",d")),
        ("random baseline", rb.get("note", "")),
        ("labels saved vs random", _fmt(pr.labels_saved, ",.0f")),
        ("money saved vs random", _fmt(pr.money_saved, ",.2f")),
        ("labels / hour of labeling", rate),
        ("batch size advice", pr.batch_advice.get("note", "-")),
        ("stopping", pr.stopping_status),
        ("jobs", jobs),
    ]
    if status.last_job_error:
        rows.append(("last job error", status.last_job_error))
    if pr.strategy_warning:
        rows.append(("strategy warning", pr.strategy_warning))
    for k, v in rows:
        summary.add_row(k, Text(str(v)))
    out: list[Any] = [summary]
    if pr.learning_curve:
        f1_at = dict(pr.macro_f1_curve)
        curve = Table(title="learning curve (validation)", title_justify="left")
        curve.add_column("labels", justify="right")
        curve.add_column("accuracy", justify="right")
        curve.add_column("macro-F1", justify="right")
        for n, acc in pr.learning_curve:
            curve.add_row(f"{n:,}", f"{acc:.3f}", _fmt(f1_at.get(n)))
        out.append(curve)
    if pr.random_curve and rb.get("ready"):
        rnd = Table(title="random-sampling baseline (measured)", title_justify="left")
        rnd.add_column("random labels", justify="right")
        rnd.add_column("accuracy", justify="right")
        for n, acc in pr.random_curve:
            rnd.add_row(f"{n:,}", f"{acc:.3f}")
        out.append(rnd)
    return out


@project_app.command("status")
def project_status(
    project: str = typer.Argument(..., help="Project name or id."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Progress: labels, rounds, queue, learning curve, cost, savings vs random, stopping."""
    from labelwise.service.admin import project_status as status_of
    from labelwise.service.admin import resolve_project

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            status = status_of(store, resolve_project(store, project).id, settings=settings)
    if as_json:
        _print_json(status)
        return
    for renderable in _format_status(status):
        console().print(renderable)


@contextlib.contextmanager
def _embedding_bar() -> Iterator[None]:
    """A progress bar on stderr for sentence embeddings computed inside the block (shown only
    when texts are embedded: the first round of a project with features=embeddings)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from labelwise.embeddings import embedding_progress

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
    )
    task: list[Any] = []

    def show(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("embedding texts", total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        with embedding_progress(show):
            yield
    finally:
        if task:
            bar.stop()


@project_app.command("round")
def project_round(
    project: str = typer.Argument(..., help="Project name or id."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Start the next round: select a batch with the project's strategy and queue it (with
    sentence embeddings, texts not embedded yet are embedded first, with a progress bar)."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.rounds import start_round, why_no_round

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            pid = resolve_project(store, project).id
            with _embedding_bar():
                started = start_round(store, pid, settings=settings)
            reason = None if started is not None else why_no_round(store, pid)
    if started is None:
        console(stderr=True).print(
            f"[red]error:[/red] no round started: {escape(reason)}", markup=True
        )
        raise typer.Exit(code=2)
    console().print(f"round {started.number} of project {pid} started with {started.strategy}")


@project_app.command("import-model")
def project_import_model(
    project: str = typer.Argument(..., help="Project name or id."),
    path: Path = typer.Argument(..., help="joblib file of a fitted classifier (trusted only)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Start from a model trained elsewhere: the next round selects with its uncertainty."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.rounds import import_model

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            pid = resolve_project(store, project).id
            mv_id = import_model(store, pid, path, settings=settings)
    console().print(f"model version {mv_id} of project {pid} is {path.name}; next round uses it")


# ------------------------------------------------------------------------ model sources (issue 11)

model_app = typer.Typer(
    help="A project's model: built-in, uploaded predictions/embeddings, or an HTTP endpoint.",
    no_args_is_help=True,
)
project_app.add_typer(model_app, name="model")


def _format_model(status: Any, job_id: int | None = None) -> list[Any]:
    src = status.source
    head = Text(f"model source: {src.source}")
    if src.endpoint:
        head.append(f" ({src.endpoint})")
    out: list[Any] = [head]
    if job_id is not None:
        out.append(Text(f"predict job {job_id} queued: the worker asks the endpoint"))
    if status.uploads:
        table = Table("id", "kind", "version", "origin", "rows", "columns", "model version",
                      "created", "active")  # fmt: skip
        active = set(status.active.values())
        for u in status.uploads:
            table.add_row(
                str(u.id), u.kind, str(u.version), u.origin, str(u.n_rows), str(u.n_cols),
                u.model_version or "", f"{u.created:%Y-%m-%d %H:%M}", "*" if u.id in active else "",
            )  # fmt: skip
        out.append(table)
    else:
        out.append(Text("no uploaded predictions or embeddings"))
    if status.last_error:
        line = Text(f"last error (job {status.last_error_job_id}, {status.last_error_job_status}")
        if status.next_attempt_at is not None:
            line.append(f", next attempt {status.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC")
        line.append(f"): {status.last_error}")
        out.append(line)
    return out


@model_app.command("set")
def project_model_set(
    project: str = typer.Argument(..., help="Project name or id."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Base URL of a model endpoint (POST URL/predict, URL/train)."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Per-item probabilities: .csv, .parquet, .npz or .npy."
    ),
    embeddings: Path | None = typer.Option(
        None, "--embeddings", help="Per-item embeddings (every item): .csv, .parquet, .npz, .npy."
    ),
    ids: Path | None = typer.Option(
        None, "--ids", help="For .npy files: the rows' external ids, one a line."
    ),
    file_format: str | None = typer.Option(
        None, "--format", help="csv, parquet, npz or npy (default: from the file name)."
    ),
    builtin: bool = typer.Option(False, "--builtin", help="Back to labelwise's own model."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Use an HTTP model endpoint, upload predictions and/or embeddings, or go back to the
    built-in model. A bad file stores nothing and names the row and field."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.model_sources import configure

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            pid = resolve_project(store, project).id
            status, job_id = configure(
                store, pid, settings=settings, endpoint=endpoint, predictions=predictions,
                embeddings=embeddings, ids_path=ids, fmt=file_format, builtin=builtin,
            )  # fmt: skip
    if as_json:
        _print_json({"status": status, "job_id": job_id})
        return
    for renderable in _format_model(status, job_id):
        console().print(renderable)


@model_app.command("show")
def project_model_show(
    project: str = typer.Argument(..., help="Project name or id."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The model source, the versions of predictions and embeddings, and the last error."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.model_sources import model_status

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            status = model_status(store, resolve_project(store, project).id)
    if as_json:
        _print_json(status)
        return
    for renderable in _format_model(status):
        console().print(renderable)


EXPIRES_OPTION = typer.Option(
    None, "--expires-in-days", help="The token stops working after this many days (default: never)."
)


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="Unique user name."),
    role: str = typer.Option(
        "annotator", "--role", help="admin, annotator or reviewer (resolves the review queue)."
    ),
    project: list[str] = typer.Option(
        [], "--project", help="Project name or id the user joins; repeatable."
    ),
    skills: str = typer.Option("", "--skills", help="Comma-separated routing tags."),
    expires_in_days: int | None = EXPIRES_OPTION,
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a user and print their API token (shown once, stored hashed)."""
    from labelwise.service.admin import create_token, resolve_project

    with _service_errors(), _open(_settings(database_url)) as store:
        pids = [resolve_project(store, p).id for p in project]
        created = create_token(
            store, name, role=role, projects=pids, skills=_split_csv(skills) if skills else [],
            expires_in_days=expires_in_days,
        )  # fmt: skip
    if as_json:
        annotator = {
            k: v for k, v in dataclasses.asdict(created.annotator).items() if k != "token_hash"
        }
        _print_json({"annotator": annotator, "token": created.token})
        return
    a = created.annotator
    console(stderr=True).print(
        f"{a.role} {a.name!r} (id {a.id}) created; the token is shown only now:"
    )
    typer.echo(created.token)


@token_app.command("rotate")
def token_rotate(
    user: str = typer.Argument(..., help="User name or id."),
    expires_in_days: int | None = EXPIRES_OPTION,
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give a user a new token and print it (shown once); the old one stops working at once,
    and a revoked user works again with the new one."""
    from labelwise.service.admin import rotate_token

    with _service_errors(), _open(_settings(database_url)) as store:
        created = rotate_token(store, user, expires_in_days)
    a = created.annotator
    if as_json:
        _print_json({"annotator_id": a.id, "name": a.name, "token_expires": a.token_expires,
                     "token": created.token})  # fmt: skip
        return
    until = f", valid until {a.token_expires:%Y-%m-%d %H:%M} UTC" if a.token_expires else ""
    console(stderr=True).print(
        f"new token for {a.name!r} (id {a.id}){until}; the old one no longer works. "
        "It is shown only now:",
        markup=False,
    )
    typer.echo(created.token)


@token_app.command("revoke")
def token_revoke(
    user: str = typer.Argument(..., help="User name or id."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Stop a user's token at once: requests with it answer 401 "token revoked". `labelwise
    token rotate` gives them a new one."""
    from labelwise.service.admin import revoke_token

    with _service_errors(), _open(_settings(database_url)) as store:
        a = revoke_token(store, user)
    console().print(f"token of {a.name!r} (id {a.id}) revoked", markup=False)


# ----------------------------------------------------------------------- project members

member_app = typer.Typer(
    help="A project's members and their role there (annotator, reviewer, owner).",
    no_args_is_help=True,
)
project_app.add_typer(member_app, name="member")


@member_app.command("add")
def member_add(
    project: str = typer.Argument(..., help="Project name or id."),
    user: str = typer.Argument(..., help="User name or id."),
    role: str | None = typer.Option(
        None,
        "--role",
        help="annotator, reviewer or owner (default: annotator for a new member; an existing "
        "member keeps theirs). Also changes a member's role.",
    ),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Make a user a member of a project, or change a member's role."""
    from labelwise.service.admin import resolve_annotator, resolve_project

    with _service_errors(), _open(_settings(database_url)) as store:
        pid = resolve_project(store, project).id
        a = resolve_annotator(store, user)
        store.add_member(pid, a.id, role=role)
        now = store.get_annotator(a.id).project_roles[pid]
    console().print(f"{a.name!r} is {now} of project {pid}", markup=False)


@member_app.command("list")
def member_list(
    project: str = typer.Argument(..., help="Project name or id."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The project's members with their role there and their global role."""
    from labelwise.service.admin import resolve_project

    with _service_errors(), _open(_settings(database_url)) as store:
        pid = resolve_project(store, project).id
        members = store.list_annotators(pid)
    rows = [{"id": a.id, "name": a.name, "project_role": a.project_roles[pid], "role": a.role}
            for a in members]  # fmt: skip
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "name", "role here", "global role")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["project_role"], r["role"])
    console().print(table)


@member_app.command("remove")
def member_remove(
    project: str = typer.Argument(..., help="Project name or id."),
    user: str = typer.Argument(..., help="User name or id."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Take a user out of a project: they no longer see it, and the tasks of it they hold
    leased go back to the queue at once."""
    from labelwise.service.admin import resolve_annotator, resolve_project

    with _service_errors(), _open(_settings(database_url)) as store:
        pid = resolve_project(store, project).id
        a = resolve_annotator(store, user)
        released = store.remove_member(pid, a.id)
    console().print(
        f"{a.name!r} removed from project {pid}; {released} leased task(s) back in the queue",
        markup=False,
    )


# ------------------------------------------------------------------------------------ labels

labels_app = typer.Typer(help="Check collected labels for likely errors.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")


def _format_label_check(check: Any, top: int, out: str | None) -> list[Any]:
    n = len(check.issues)
    source = (
        f"TF-IDF of {check.feature_columns[0]!r}"
        if check.features == "text"
        else f"{len(check.feature_columns)} numeric columns"
    )
    head = Text(
        f"{n:,} suspect labels in {check.n_rows:,} labelled rows ({n / check.n_rows:.1%}) of "
        f"{Path(check.path).name}; features: {source}"
        + (f"; {check.n_skipped:,} rows without a label skipped" if check.n_skipped else "")
    )
    table = Table(
        title=f"most suspect first (top {min(top, n)} of {n})",
        title_justify="left",
        caption="quality: p(given label) out of fold; lower = more suspect",
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("id", overflow="fold")
    table.add_column("given")
    table.add_column("suggested")
    table.add_column("quality", justify="right")
    table.add_column("p(suggested)", justify="right")
    for row in check.rows()[:top]:
        table.add_row(
            str(row["rank"]),
            Text(str(row["id"])),  # Text: brackets in ids and labels are not markup
            Text(str(row["given"])),
            Text(str(row["suggested"])),
            f"{row['quality']:.3f}",
            f"{row['suggested_proba']:.3f}",
        )
    tail = Text(f"all {n:,} written to {out}" if out else "no CSV written (--out '')")
    return [head, table, tail] if n else [head, tail]


@labels_app.command("check")
def labels_check(
    file: Path = typer.Argument(
        ..., help="CSV/TSV or JSON Lines: an id, a label, and a text or numeric columns."
    ),
    text_field: str = typer.Option(
        None, "--text-field", help="Text column (default 'text' if present); '' for numeric."
    ),
    id_field: str = typer.Option("id", "--id-field", help="Id column; '' numbers rows."),
    label_field: str = typer.Option("label", "--label-field", help="Label column."),
    format: str = typer.Option(None, "--format", help="csv, tsv or jsonl (default: extension)."),
    out: str = typer.Option(
        "suspects.csv", "--out", help="CSV of every suspect, most suspect first; '' for none."
    ),
    top: int = typer.Option(20, "--top", min=1, help="Rows shown in the table."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds."),
    seed: int = typer.Option(0, "--seed", help="Seeds the fold assignment."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Flag likely mislabeled rows of a label file (confident learning on out-of-fold
    probabilities) and write them as CSV."""
    from labelwise.quality import check_label_file

    with _errors():
        if out and not Path(out).resolve().parent.is_dir():
            raise LabelwiseError(f"folder {Path(out).parent} does not exist; create it first.")
        if out and Path(out).is_dir():
            raise LabelwiseError(f"--out {out} is a folder; give a file name (suspects.csv).")
        check = check_label_file(
            file,
            text_field=text_field,
            id_field=id_field or None,
            label_field=label_field,
            format=format,
            n_splits=folds,
            random_state=seed,
        )
        if out:
            check.write_csv(out)
    if as_json:
        _print_json(
            {
                "path": check.path,
                "n_rows": check.n_rows,
                "n_skipped": check.n_skipped,
                "n_suspects": len(check.issues),
                "features": check.features,
                "feature_columns": list(check.feature_columns),
                "out": out or None,
                "suspects": check.rows(),
            }
        )
        return
    for part in _format_label_check(check, top, out or None):
        console().print(part)


# ------------------------------------------------------------------------ webhooks (issue 11)

webhook_app = typer.Typer(
    help="Webhooks: signed POSTs to your endpoints when a project's events happen.",
    no_args_is_help=True,
)
app.add_typer(webhook_app, name="webhook")


def _format_webhook(w: Any, last: Any) -> str:
    state = "active" if w.active else "inactive"
    if last is None:
        seen = "last: none"
    else:
        code = f" (HTTP {last.last_status_code})" if last.last_status_code is not None else ""
        error = f": {last.last_error}" if last.last_error and last.status != "delivered" else ""
        seen = f"last: {last.status}{code} {last.updated:%Y-%m-%d %H:%M}{error}"
    return f"{w.id}  {state}  {w.url}  {', '.join(w.events)}  {seen}"


@webhook_app.command("add")
def webhook_add(
    project: str = typer.Argument(..., help="Project name or id."),
    url: str = typer.Argument(..., help="http(s) URL the events are POSTed to."),
    event: list[str] = typer.Option(
        ...,
        "--event",
        help="batch.completed, model_version.created, stopping.met or label_errors.flagged; "
        "repeatable.",
    ),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Subscribe URL to the project's events; prints the signing secret (shown only now)."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.webhooks import create_webhook

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            pid = resolve_project(store, project).id
            created = create_webhook(store, pid, url, event, settings=settings)
    w = created.webhook
    if as_json:
        _print_json({"webhook": {k: v for k, v in dataclasses.asdict(w).items()
                                 if k != "secret"}, "secret": created.secret})  # fmt: skip
        return
    console(stderr=True).print(
        f"webhook {w.id} of project {pid}: {w.url} ({', '.join(w.events)}); the secret is "
        "shown only now:",
        markup=False,
    )
    typer.echo(created.secret)


@webhook_app.command("list")
def webhook_list(
    project: str = typer.Argument(..., help="Project name or id."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The project's webhooks, each with its last delivery's status (no secrets)."""
    from labelwise.service.admin import resolve_project
    from labelwise.service.webhooks import list_webhooks_with_last_delivery

    with _service_errors():
        settings = _settings(database_url)
        with _open(settings) as store:
            pid = resolve_project(store, project).id
            hooks = list_webhooks_with_last_delivery(store, pid)
    if as_json:
        _print_json(
            [
                {
                    **{k: v for k, v in dataclasses.asdict(w).items() if k != "secret"},
                    "last_delivery": None if d is None else {
                        k: v for k, v in dataclasses.asdict(d).items() if k != "body"
                    },
                }
                for w, d in hooks
            ]
        )  # fmt: skip
        return
    if not hooks:
        console(stderr=True).print(f"project {pid} has no webhooks", markup=False)
    for w, d in hooks:
        typer.echo(_format_webhook(w, d))


@webhook_app.command("deliveries")
def webhook_deliveries(
    webhook_id: int = typer.Argument(..., help="Webhook id (labelwise webhook list)."),
    status: str | None = typer.Option(
        None, "--status", help="Only pending, delivering, delivered or failed ones."
    ),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="The newest N."),
    database_url: str = DATABASE_URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A webhook's deliveries, newest first: status, attempts, last answer, next attempt."""
    with _service_errors(), _open(_settings(database_url)) as store:
        store.get_webhook(webhook_id)
        found = store.list_deliveries(webhook_id, status=status, limit=limit)
    if as_json:
        _print_json(found)
        return
    for d in found:
        code = f"HTTP {d.last_status_code}" if d.last_status_code is not None else "-"
        due = f"  next {d.next_attempt_at:%Y-%m-%d %H:%M:%S}" if d.status == "pending" else ""
        error = f"  {d.last_error}" if d.last_error and d.status != "delivered" else ""
        typer.echo(f"{d.id}  {d.event}  {d.status}  attempts {d.attempts}  {code}{due}{error}")


@webhook_app.command("redeliver")
def webhook_redeliver(
    delivery_id: int = typer.Argument(..., help="Delivery id (labelwise webhook deliveries)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Send a delivery again (same body and event id) with a fresh set of attempts."""
    from labelwise.service.webhooks import redeliver

    with _service_errors(), _open(_settings(database_url)) as store:
        d = redeliver(store, delivery_id)
    typer.echo(f"delivery {d.id} ({d.event}) is pending again; a worker sends it next")


@webhook_app.command("remove")
def webhook_remove(
    webhook_id: int = typer.Argument(..., help="Webhook id (labelwise webhook list)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Delete a webhook and its deliveries (queued ones are not sent)."""
    with _service_errors(), _open(_settings(database_url)) as store:
        store.delete_webhook(webhook_id)
    typer.echo(f"webhook {webhook_id} removed")


if __name__ == "__main__":  # python -m labelwise.cli
    app()
