"""A self-contained HTML report of an :class:`~labelwise.evaluate.Evaluation`.

:func:`write_report` writes, into one directory:

- ``report.html``: the summary table (labels to each target, efficiency ratio with its bootstrap
  interval, AUC), learning curves with 95% bands, selection-quality plots, the business case and
  the stopping criteria; every plot is a PNG embedded as base64, so the file can be mailed alone;
- ``curves.png``, ``ratios.png``, ``selection.png``, ``cost.png``: the same plots;
- ``points.csv``: every round of every run; ``results.json``: everything, including every point.

The directory is built in a temporary sibling and moved into place at the end, so a failure
never leaves a half-written report.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.evaluate import Evaluation

__all__ = ["PLOTS", "render_html", "write_report"]

PLOTS = ("curves", "ratios", "selection", "cost")
SELECTION_PANELS = (
    ("class_tvd", "Class distribution vs pool (TVD)"),
    ("informativeness_ratio", "Informativeness / pool's"),
    ("redundancy", "Redundancy (mean cosine in batch)"),
    ("outlier_share", "Share of outliers picked"),
)


def _jsonable(obj: Any) -> Any:
    """Strict-JSON form: NaN and inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _colors(strategies: list[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    out = {s: cmap(i % 10) for i, s in enumerate(s for s in strategies if s != "random")}
    out["random"] = (0.3, 0.3, 0.3, 1.0)
    return out


def _plot_curves(ev: Evaluation, ax: Any, colors: dict[str, Any]) -> None:
    for s in ev.strategies:
        c = ev.curves[s]
        style = "--" if s == ev.baseline else "-"
        ax.plot(c.n_labeled, c.mean, style, color=colors[s], label=s, lw=1.8)
        ax.fill_between(c.n_labeled, c.low, c.high, color=colors[s], alpha=0.15, lw=0)
    for t, target in ev.targets().items():
        ax.axhline(target, color="0.6", lw=0.8, ls=":")
        ax.annotate(
            f"{t:.0%} of full", (ax.get_xlim()[0], target), fontsize=7, color="0.4", va="bottom"
        )
    ax.axhline(ev.full_quality, color="k", lw=0.8, ls="-.", label="all labels")
    ax.set_xlabel("labels")
    ax.set_ylabel(f"test {ev.metric}")
    ax.set_title(f"{ev.data_name}: learning curves (mean, 95% band over {len(ev.seeds)} seeds)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)


def _plot_ratios(ev: Evaluation, ax: Any, colors: dict[str, Any]) -> None:
    strategies = [s for s in ev.strategies if s != ev.baseline]
    width = 0.8 / max(len(strategies), 1)
    for i, s in enumerate(strategies):
        rows = [ev.ratio(s, t) for t in ev.thresholds]
        x = np.arange(len(ev.thresholds)) + i * width
        r = np.array([row["ratio"] for row in rows], dtype=float)
        lo = np.array([row["ci_low"] for row in rows], dtype=float)
        hi = np.array([row["ci_high"] for row in rows], dtype=float)
        finite = np.isfinite(r) & np.isfinite(lo) & np.isfinite(hi)
        err = np.vstack([np.where(finite, r - lo, 0), np.where(finite, hi - r, 0)])
        ax.bar(
            x,
            np.where(np.isfinite(r), r, 0),
            width,
            color=colors[s],
            label=s,
            yerr=np.clip(err, 0, None),
            capsize=3,
        )
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(ev.thresholds)) + width * (len(strategies) - 1) / 2)
    ax.set_xticklabels([f"{t:.0%} of full" for t in ev.thresholds])
    ax.set_ylabel("random's labels / strategy's labels")
    ax.set_title("Label-efficiency ratio (95% bootstrap CI); > 1 beats random")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")


def _plot_selection(ev: Evaluation, axes: Any, colors: dict[str, Any]) -> None:
    for ax, (key, title) in zip(axes.ravel(), SELECTION_PANELS, strict=True):
        for s in ev.strategies:
            rows = ev.selection[s]
            x = [r["n_labeled"] for r in rows]
            y = [r[key] for r in rows]
            ax.plot(x, y, "--" if s == ev.baseline else "-", color=colors[s], label=s, lw=1.4)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("labels", fontsize=8)
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=7)


def _plot_cost(ev: Evaluation, ax: Any, colors: dict[str, Any]) -> None:
    names = ev.strategies
    cost = [ev.business[s].strategy_labels * ev.business[s].cost_per_item for s in names]
    ax.bar(names, cost, color=[colors[s] for s in names])
    top = max(ev.thresholds)
    ax.set_ylabel(
        f"labeling cost to reach {top:.0%} of full (label cost {ev.config['label_cost']:g})"
    )
    ax.set_title("Cost to target (random's cost is the dashed line)")
    ax.axhline(cost[names.index(ev.baseline)], color="k", ls="--", lw=0.8)
    ax.grid(alpha=0.3, axis="y")
    ax.tick_params(axis="x", labelrotation=20)


def _save_plots(ev: Evaluation, directory: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    colors = _colors(ev.strategies)
    out = {}
    figs = {
        "curves": (Figure(figsize=(8, 5)), lambda f: _plot_curves(ev, f.subplots(), colors)),
        "ratios": (Figure(figsize=(8, 4)), lambda f: _plot_ratios(ev, f.subplots(), colors)),
        "selection": (
            Figure(figsize=(9, 6.5)),
            lambda f: _plot_selection(ev, f.subplots(2, 2), colors),
        ),
        "cost": (Figure(figsize=(8, 4)), lambda f: _plot_cost(ev, f.subplots(), colors)),
    }
    for name, (fig, draw) in figs.items():
        draw(fig)
        fig.tight_layout()
        path = directory / f"{name}.png"
        fig.savefig(path, dpi=110)
        out[name] = path
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "never"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _labels(v: Any) -> str:
    """A label count as a whole number of labels (``never`` for an unreached target)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return f"{round(float(v)):,d}"


#: Below this many seeds the report warns that its bands and intervals are too wide to quote.
MIN_SEEDS = 5

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>labelwise evaluation: {{ ev.data_name }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; } code { background: #f3f3f3; padding: 0 3px; }
.note { color: #555; font-size: 12px; }
.warn { background: #fff4e5; border-left: 4px solid #e08a00; padding: 6px 10px; }
</style></head><body>
<h1>Label efficiency on <code>{{ ev.data_name }}</code></h1>
<p>Metric: test <b>{{ ev.metric }}</b>. Full-data model (all {{ n_pool }} training labels):
<b>{{ fmt(ev.full_quality, 4) }}</b>. Seeds: {{ ev.seeds|length }}. Initial set
{{ ev.config.initial_size }}, batches of {{ ev.config.batch_size }}, {{ ev.config.n_rounds }}
rounds; model <code>{{ ev.config.model }}</code>.
{% if ev.config.noise %}Annotator noise: <code>{{ ev.config.noise }}</code>.{% endif %}
{% if ev.config.consensus %}Consensus: <code>{{ ev.config.consensus }}</code>.{% endif %}
{% if ev.config.latency_rounds %}Labeling latency: {{ ev.config.latency_rounds }} rounds.{% endif %}
</p>
{% if ev.seeds|length < min_seeds %}<p class="warn" id="few-seeds"><b>Only {{ ev.seeds|length }}
seed{{ "s" if ev.seeds|length != 1 }}:</b> the 95% bands and confidence intervals below are wide
and may not mean what they seem. Use <code>--seeds {{ min_seeds }}</code> or more before quoting a
number.</p>{% endif %}

<h2>Labels to target and efficiency ratio</h2>
<table id="ratio-table">
<tr><th>strategy</th>{% for t in ev.thresholds %}<th>labels to {{ "%.0f"|format(100*t) }}%</th>
<th>ratio vs random [95% CI]</th>{% endfor %}<th>AUC</th></tr>
{% for s in ev.strategies %}<tr><td>{{ s }}</td>
{% for t in ev.thresholds %}{% set r = ev.ratio(s, t) %}
<td>{{ labels(r.labels_mean) }}{% if r.reached < r.n_seeds %}
 ({{ r.reached }}/{{ r.n_seeds }} seeds){% endif %}</td>
<td>{{ r.bound }}{{ fmt(r.ratio) }} [{{ fmt(r.ci_low) }}, {{ fmt(r.ci_high) }}]</td>{% endfor %}
<td>{{ fmt(ev.auc[s][0], 4) }}</td></tr>
{% endfor %}</table>
<p class="note">Targets are fractions of the full-data model's test {{ ev.metric }}
({% for t, v in ev.targets().items() %}{{ "%.0f"|format(100*t) }}% = {{ fmt(v, 4) }}
{%- if not loop.last %}, {% endif %}{% endfor %}).
Labels are interpolated between rounds, averaged over the seeds that reached the target and
rounded to whole labels.
Ratio = random's mean labels / the strategy's; seeds that never reached the target count as the
final label count ({{ budget }}), so "&gt;=" marks a lower bound (random did not always get
there) and "&lt;=" an upper bound. AUC: mean test {{ ev.metric }} over the label range.</p>

<h2>Learning curves</h2>
<img alt="learning curves" src="data:image/png;base64,{{ png.curves }}">
<img alt="efficiency ratios" src="data:image/png;base64,{{ png.ratios }}">

<h2>Selection quality</h2>
<img alt="selection quality" src="data:image/png;base64,{{ png.selection }}">
<table id="selection-table"><tr><th>strategy</th><th>class TVD</th><th>informativeness ratio</th>
<th>redundancy</th><th>outlier share</th><th>noisy-label share</th></tr>
{% for s in ev.strategies %}{% set m = sel[s] %}<tr><td>{{ s }}</td>
<td>{{ fmt(m.class_tvd) }}</td><td>{{ fmt(m.informativeness_ratio) }}</td>
<td>{{ fmt(m.redundancy) }}</td><td>{{ fmt(m.outlier_share) }}</td>
<td>{{ fmt(m.noisy_share) }}</td></tr>{% endfor %}</table>
<p class="note">Means over rounds and seeds. TVD: total-variation distance between the class mix of
the picks and of the pool. Informativeness: mean normalised entropy of the picks under the model
that chose them, over the same for the unlabeled pool. Outliers: the 5% of the pool with the lowest
IsolationForest scores (random picks about 0.05).</p>

<h2>Business case at {{ "%.0f"|format(100*top) }}% of full-data quality</h2>
<img alt="cost to target" src="data:image/png;base64,{{ png.cost }}">
<table id="business-table"><tr><th>strategy</th><th>labels</th><th>cost per item</th>
<th>labels saved vs random</th><th>money saved</th><th>setup cost</th><th>net</th><th>ROI</th></tr>
{% for s in ev.strategies %}{% set b = ev.business[s] %}<tr><td>{{ s }}</td>
<td>{{ fmt(b.strategy_labels, 4) }}</td><td>{{ fmt(b.cost_per_item) }}</td>
<td>{{ fmt(b.labels_saved, 4) }}</td><td>{{ fmt(b.money_saved, 4) }}</td>
<td>{{ fmt(b.setup_cost) }}</td><td>{{ fmt(b.net_saving, 4) }}</td>
<td>{{ fmt(b.roi) }}</td></tr>{% endfor %}</table>

{% if has_stopping %}<h2>Stopping criteria</h2>
<table id="stopping-table"><tr><th>strategy</th><th>criterion</th><th>seeds fired</th>
<th>labels when fired</th><th>{{ ev.metric }} when fired</th><th>final {{ ev.metric }}</th></tr>
{% for s in ev.strategies %}{% for name, st in ev.stopping[s].items() %}<tr><td>{{ s }}</td>
<td>{{ name }}</td><td>{{ st.seeds_fired }}/{{ ev.seeds|length }}</td>
<td>{{ fmt(st.n_labeled, 4) }}</td><td>{{ fmt(st.quality, 4) }}</td>
<td>{{ fmt(st.final_quality, 4) }}</td></tr>{% endfor %}{% endfor %}</table>{% endif %}

<p class="note">Every point: <a href="points.csv">points.csv</a>, everything:
<a href="results.json">results.json</a>. Generated by labelwise {{ version }}.</p>
</body></html>
"""


def render_html(ev: Evaluation, png: dict[str, str]) -> str:
    """The report page, with the plots given as base64 PNG strings keyed by :data:`PLOTS`."""
    import jinja2

    import labelwise

    sel = {
        s: {
            k: _mean([r[k] for r in ev.selection[s]])
            for k in (
                "class_tvd",
                "informativeness_ratio",
                "redundancy",
                "outlier_share",
                "noisy_share",
            )
        }
        for s in ev.strategies
    }
    budget = max(int(r.n_labeled[-1]) for runs in ev.results.values() for r in runs)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        ev=ev,
        png=png,
        fmt=_fmt,
        labels=_labels,
        min_seeds=MIN_SEEDS,
        sel=sel,
        top=max(ev.thresholds),
        budget=budget,
        n_pool=ev.config.get("n_pool", "the"),
        has_stopping=any(ev.stopping.values()),
        version=labelwise.__version__,
    )


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(arr)
    return float(arr[ok].mean()) if ok.any() else math.nan


def _write_points(ev: Evaluation, path: Path) -> None:
    rows = ev.points_rows()
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_report(ev: Evaluation, out_dir: str | os.PathLike[str]) -> Path:
    """Write the HTML report, the plots, ``points.csv`` and ``results.json`` into ``out_dir``.

    Everything is written to a temporary directory beside ``out_dir`` and moved into place at
    the end; an existing ``out_dir`` is replaced only then.

    Parameters
    ----------
    ev : Evaluation
    out_dir : path

    Returns
    -------
    path : Path
        ``out_dir / "report.html"``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        paths = _save_plots(ev, tmp)
        png = {k: base64.b64encode(p.read_bytes()).decode("ascii") for k, p in paths.items()}
        _write_points(ev, tmp / "points.csv")
        (tmp / "results.json").write_text(
            json.dumps(_jsonable(ev.to_dict()), indent=1, allow_nan=False), encoding="utf-8"
        )
        (tmp / "report.html").write_text(render_html(ev, png), encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.chmod(0o755)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "report.html"
