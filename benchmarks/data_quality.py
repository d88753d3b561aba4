"""Data-quality benchmark: accuracy lost to annotator noise and what consensus + review recover.

Active learning on a real data set with simulated annotators who give a wrong label 20% of the
time (a uniformly random other class, :class:`labelwise.annotators.NoiseModel`). Five arms,
the same seeds, the same strategy, model and number of labelled items:

- ``clean``: noise-free annotators (the ceiling);
- ``noisy``: one annotation per item, 20% wrong;
- ``consensus``: the hardest 20% of each batch (by the selecting model's entropy) get three
  annotations from distinct annotators, resolved by Dawid–Skene (``Consensus(k=3,
  fraction=0.2, method="dawid_skene")``);
- ``review``: one annotation per item, and every ``--review-every`` rounds
  :func:`labelwise.quality.find_label_issues` (confident learning on 5-fold out-of-fold
  probabilities) flags labelled items; a reviewer replaces each flagged label with the true
  one (a review is one more annotation; an item is reviewed at most once);
- ``consensus+review``: both.

``clean``, ``noisy`` and ``consensus`` run through :func:`labelwise.simulate.iter_simulate`;
the review arms run a small loop that drives the same :class:`labelwise.loop.Session` with the
same oracle streams and corrects labels with :meth:`Session.update_labels`. With reviews off
that loop reproduces ``iter_simulate`` exactly (checked on the first seed before the run).

Reported per arm: final test accuracy (mean and 95% bootstrap CI over seeds), wrong labels
left in the labelled set, annotations per labelled item, and the share of the accuracy lost to
noise that the arm recovers, ``(arm - noisy) / (clean - noisy)``, with a paired bootstrap CI.

    OMP_NUM_THREADS=1 python benchmarks/data_quality.py --seeds 10 --jobs 2   # -> RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import sklearn
from _results import write_section  # benchmarks/ is on sys.path when run
from threadpoolctl import threadpool_limits

import labelwise
from labelwise.annotators import Consensus, NoiseModel, Oracle
from labelwise.errors import LabelwiseError
from labelwise.loop import Session
from labelwise.quality import find_label_issues
from labelwise.simulate import (
    default_model,
    heldout_metrics,
    iter_simulate,
    resolve_data,
)
from labelwise.tasks import TaskType

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Data quality"
ARMS = ("clean", "noisy", "consensus", "review", "consensus+review", "noisy, same cost")
N_BOOT = 10_000


def _stream(seed: int, stream: int) -> np.random.RandomState:
    # the simulator's oracle stream (labelwise.simulate._stream, stream 1): the review loop
    # must draw the very same annotations as iter_simulate for the arms to be comparable
    ss = np.random.SeedSequence(seed % 2**32, spawn_key=(stream,))
    return np.random.RandomState(ss.generate_state(4))


def _norm_entropy(model, X, idx: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(model.predict_proba(X[idx]), dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2))


def review_loop(sim, args, seed: int, consensus: Consensus | None, review_every: int) -> dict:
    """The ``iter_simulate`` loop with error review every ``review_every`` rounds (0: never).

    Returns
    -------
    dict
        ``accuracy`` (final), ``wrong`` (wrong labels left), ``n_labeled``, ``annotations``
        (oracle answers + reviews), ``reviews``, ``flag_precision`` (share of reviewed items
        whose label was wrong), ``curve`` (accuracy per round).
    """
    noise = NoiseModel(flip_rate=args.noise)
    oracle = Oracle(sim.y_train, noise=noise, consensus=consensus, random_state=_stream(seed, 1))
    session = Session(
        default_model(),
        sim.X_train,
        strategy=args.strategy,
        task_type=TaskType.BINARY if sim.classes.shape[0] == 2 else TaskType.MULTICLASS,
        metadata=sim.metadata or None,
        random_state=seed,
    )
    reviewed: dict[int, object] = {}  # pool position -> the reviewer's (true) label
    annotations = reviews = wrong_found = 0
    curve = []
    for r in range(args.rounds + 1):
        selecting = session.selecting_model_
        q = session.query(args.initial if r == 0 else min(args.batch, session.n_unlabeled))
        picks = np.asarray(q.idx, dtype=np.int64)
        hardness = None if selecting is None else _norm_entropy(selecting, sim.X_train, picks)
        answer = oracle.label(picks, hardness, consensus=r > 0)
        annotations += answer.n_annotations
        if session.n_labeled:  # Dawid–Skene may revise consensus labels; reviews stand
            before = session.labeled_idx
            now, held = oracle.current(before), session.y_labeled
            done = np.isin(before, np.fromiter(reviewed, dtype=np.int64, count=len(reviewed)))
            now[done] = [reviewed[p] for p in before[done].tolist()]
            changed = now != held
            if changed.any():
                session.update_labels(before[changed], now[changed], refit=False)
        session.teach(q, answer.labels)
        if review_every and r > 0 and r % review_every == 0:
            lab, given = session.labeled_idx, session.y_labeled
            try:
                issues = find_label_issues(
                    default_model(), sim.X_train[lab], given, random_state=seed
                )
            except LabelwiseError:  # a class with too few labels yet: review next time
                issues = None
            if issues is not None and len(issues):
                flagged = lab[issues.idx]
                fresh = np.array([p not in reviewed for p in flagged.tolist()], dtype=bool)
                todo, their = flagged[fresh], issues.given[fresh]
                truth = sim.y_train[todo]
                reviews += todo.shape[0]
                wrong_found += int(np.sum(their != truth))
                reviewed.update(zip(todo.tolist(), truth.tolist(), strict=True))
                fix = their != truth
                if fix.any():
                    session.update_labels(todo[fix], truth[fix], refit=True)
        curve.append(heldout_metrics(session.model_or_prior(), sim)["accuracy"])
    lab = session.labeled_idx
    return {
        "accuracy": curve[-1],
        "wrong": int(np.sum(session.y_labeled != sim.y_train[lab])),
        "n_labeled": int(lab.shape[0]),
        "annotations": annotations + reviews,
        "reviews": reviews,
        "flag_precision": wrong_found / reviews if reviews else float("nan"),
        "curve": curve,
    }


def simulate_arm(
    sim, args, seed: int, noise, consensus, budget: int | None = None, rounds: int | None = None
) -> dict:
    """One ``iter_simulate`` run: ``args.rounds`` rounds, or the first round whose cumulative
    annotations reach ``budget`` (run up to ``rounds`` rounds to find it)."""
    points = list(
        iter_simulate(
            sim,
            args.strategy,
            initial_size=args.initial,
            batch_size=args.batch,
            n_rounds=rounds or args.rounds,
            random_state=seed,
            noise=noise,
            consensus=consensus,
        )
    )
    paid = np.cumsum([p.n_annotations for p in points])
    end = len(points) - 1
    if budget is not None:
        end = min(int(np.searchsorted(paid, budget)), end)
    last = points[end]
    return {
        "accuracy": last.metrics["accuracy"],
        "wrong": last.n_noisy_total,
        "n_labeled": last.n_labeled,
        "annotations": int(paid[end]),
        "reviews": 0,
        "flag_precision": float("nan"),
        "curve": [p.metrics["accuracy"] for p in points[: end + 1]],
    }


def run_seed(job: tuple[argparse.Namespace, str, int]) -> dict:
    args, dataset, seed = job
    with threadpool_limits(1):
        sim = resolve_data(dataset)
        noise = NoiseModel(flip_rate=args.noise)
        cons = Consensus(k=3, fraction=0.2, method=args.method)
        t0 = time.perf_counter()
        out = {
            "clean": simulate_arm(sim, args, seed, None, None),
            "noisy": simulate_arm(sim, args, seed, noise, None),
            "consensus": simulate_arm(sim, args, seed, noise, cons),
            "review": review_loop(sim, args, seed, None, args.review_every),
            "consensus+review": review_loop(sim, args, seed, cons, args.review_every),
        }
        # the honest alternative: spend the same annotations on more noisy single labels
        budget = out["consensus+review"]["annotations"]
        out["noisy, same cost"] = simulate_arm(
            sim, args, seed, noise, None, budget=budget, rounds=3 * args.rounds
        )
        out["seconds"] = time.perf_counter() - t0
    return out


def check_parity(args, dataset: str) -> None:
    """The review loop with reviews off must select and score exactly like iter_simulate."""
    with threadpool_limits(1):
        sim = resolve_data(dataset)
        noise = NoiseModel(flip_rate=args.noise)
        cons = Consensus(k=3, fraction=0.2, method=args.method)
        ref = simulate_arm(sim, args, 0, noise, cons)
        mine = review_loop(sim, args, 0, cons, 0)
    if ref["curve"] != mine["curve"] or ref["annotations"] != mine["annotations"]:
        raise SystemExit("the review loop drifted from iter_simulate; fix it before comparing")


def boot_ci(values: np.ndarray, rng: np.random.RandomState) -> tuple[float, float]:
    idx = rng.randint(values.shape[0], size=(N_BOOT, values.shape[0]))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def recovery_ci(arm, clean, noisy, rng) -> tuple[float, float, float]:
    """``(mean(arm) - mean(noisy)) / (mean(clean) - mean(noisy))`` and a paired bootstrap CI."""
    point = (arm.mean() - noisy.mean()) / (clean.mean() - noisy.mean())
    idx = rng.randint(arm.shape[0], size=(N_BOOT, arm.shape[0]))
    lost = clean[idx].mean(axis=1) - noisy[idx].mean(axis=1)
    gained = arm[idx].mean(axis=1) - noisy[idx].mean(axis=1)
    ok = lost > 0  # resamples where noise cost nothing have no ratio
    ratio = gained[ok] / lost[ok]
    return float(point), float(np.percentile(ratio, 2.5)), float(np.percentile(ratio, 97.5))


def summarise(results: list[dict]) -> dict:
    rng = np.random.RandomState(0)
    acc = {a: np.array([r[a]["accuracy"] for r in results]) for a in ARMS}
    out = {}
    for a in ARMS:
        rows = [r[a] for r in results]
        lo, hi = boot_ci(acc[a], rng)
        n_lab = np.mean([x["n_labeled"] for x in rows])
        out[a] = {
            "accuracy": float(acc[a].mean()),
            "ci": (lo, hi),
            "wrong": float(np.mean([x["wrong"] for x in rows])),
            "n_labeled": n_lab,
            "per_item": float(np.mean([x["annotations"] / x["n_labeled"] for x in rows])),
            "reviews": float(np.mean([x["reviews"] for x in rows])),
            "flag_precision": float(np.nanmean([x["flag_precision"] for x in rows]))
            if any(x["reviews"] for x in rows)
            else float("nan"),
        }
        if a not in ("clean", "noisy"):
            out[a]["recovery"] = recovery_ci(acc[a], acc["clean"], acc["noisy"], rng)
    lost = acc["clean"] - acc["noisy"]
    out["lost"] = (float(lost.mean()), *boot_ci(lost, rng))
    return out


def markdown(summaries: dict[str, dict], args, seconds: float, command: str) -> str:
    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    n_items = args.initial + args.rounds * args.batch
    lines = [
        HEADING,
        "",
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {seconds:.0f} s on {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, labelwise "
        f"{labelwise.__version__}; `make bench` runs it).",
        "",
        f"Protocol: `LogisticRegression(max_iter=1000)`, `{args.strategy}` sampling, "
        f"{args.initial} random labels then {args.rounds} rounds of {args.batch}: {n_items} "
        "labelled items in every arm but the last. Annotators give a wrong label (a uniformly "
        f"random other class) {pct(args.noise)}% of the time. *consensus*: the hardest 20% of "
        "each batch (entropy under the selecting model) get 3 annotations from distinct "
        f"annotators, resolved by "
        f"{'Dawid–Skene' if args.method == 'dawid_skene' else 'majority vote'}. *review*: "
        f"every {args.review_every} rounds `labelwise.quality.find_label_issues` (cleanlab "
        "confident learning on 5-fold out-of-fold probabilities) flags labelled items and a "
        "reviewer replaces each flagged label with the true one (one annotation per review, "
        "each item reviewed at most once). *noisy, same cost*: no consensus, no review, the "
        "annotations *consensus+review* used spent on more noisily labelled items instead. "
        f"Seeds 0-{args.seeds - 1} (the same for every arm); 95% bootstrap CIs over seeds "
        f"({N_BOOT:,} resamples; paired for the recovered share "
        "`(arm - noisy) / (clean - noisy)`).",
        "",
    ]
    for dataset, summary in summaries.items():
        lost, lost_lo, lost_hi = summary["lost"]
        lines += [
            f"### {dataset}",
            "",
            "| arm | test accuracy [95% CI] | recovered share of the loss [95% CI] | wrong "
            "labels left | annotations per item | reviews (share that were wrong) |",
            "|---|---|---|---|---|---|",
        ]
        for a in ARMS:
            s = summary[a]
            rec = "—"
            if "recovery" in s:
                p, lo, hi = s["recovery"]
                rec = f"{pct(p)}% [{pct(lo)}, {pct(hi)}]"
            reviews = "—"
            if s["reviews"]:
                reviews = f"{s['reviews']:.0f} ({pct(s['flag_precision'])}%)"
            lines.append(
                f"| {a} | {pct(s['accuracy'])}% [{pct(s['ci'][0])}, {pct(s['ci'][1])}] | "
                f"{rec} | {s['wrong']:.1f} of {s['n_labeled']:.0f} | {s['per_item']:.2f} | "
                f"{reviews} |"
            )
        best = summary["consensus+review"]
        p, lo, hi = best["recovery"]
        if lo >= 0.5:
            verdict = "is met (the CI's lower bound is above 50%)"
        elif p >= 0.5:
            verdict = "is met on average, but the CI reaches below 50%"
        else:
            verdict = "is missed"
        lines += [
            "",
            f"Noise costs {pct(lost)} accuracy points [{pct(lost_lo)}, {pct(lost_hi)}] at "
            f"{n_items} labels. Consensus on the hardest 20% plus error review recovers "
            f"{pct(p)}% of it [{pct(lo)}, {pct(hi)}] for {best['per_item']:.2f} annotations "
            f"per labelled item (noisy: {summary['noisy']['per_item']:.2f}); the aim of at "
            f"least half {verdict}. Apart: "
            + "; ".join(
                f"{a} {pct(summary[a]['recovery'][0])}% [{pct(summary[a]['recovery'][1])}, "
                f"{pct(summary[a]['recovery'][2])}] ({summary[a]['per_item']:.2f} per item)"
                for a in ("consensus", "review", "noisy, same cost")
            )
            + ".",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits", help="Comma-separated data set names.")
    ap.add_argument("--strategy", default="margin")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--initial", type=int, default=20)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.2)
    ap.add_argument("--method", default="dawid_skene", choices=("majority", "dawid_skene"))
    ap.add_argument("--review-every", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS), help="Markdown file; '' to print only.")
    args = ap.parse_args(argv)
    command = "python benchmarks/data_quality.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    t0 = time.perf_counter()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for dataset in datasets:
        check_parity(args, dataset)
    jobs = [(args, d, s) for d in datasets for s in range(args.seeds)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_seed, jobs))
    else:
        results = [run_seed(j) for j in jobs]
    seconds = time.perf_counter() - t0
    summaries = {
        d: summarise([r for (_, dd, _), r in zip(jobs, results, strict=True) if dd == d])
        for d in datasets
    }
    section = markdown(summaries, args, seconds, command.strip())
    print(section)
    if args.out:
        write_section(Path(args.out), HEADING, section)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
