"""The `make run` demo: margin sampling beats random on real digits."""

from __future__ import annotations

from typer.testing import CliRunner

from labelwise.cli import app
from labelwise.demo import learning_curve_demo


def test_margin_reaches_random_final_accuracy_with_fewer_labels():
    result = learning_curve_demo("margin", seeds=2, n_rounds=10)
    # 20 initial + 10 rounds x 20 = 220 labels for the baseline's final point
    assert result.baseline_labels == 220
    assert [r.n_labeled for r in result.rows] == list(range(20, 240, 20))
    assert result.labels_to_match is not None
    assert result.labels_to_match < result.baseline_labels
    # both strategies start from the same random labels, so round 0 is identical
    first = result.rows[0].quality
    assert first["margin"] == first["random"]


def test_demo_command_prints_table_and_summary():
    out = CliRunner().invoke(app, ["demo", "--seeds", "1", "--rounds", "4"])
    assert out.exit_code == 0, out.output
    assert "learning curve on digits" in out.output
    assert "fewer" in out.output or "did not reach" in out.output


def test_demo_unknown_strategy_is_a_clear_error():
    out = CliRunner().invoke(app, ["demo", "--strategy", "nope", "--seeds", "1", "--rounds", "1"])
    assert out.exit_code == 2
    assert "unknown strategy 'nope'" in out.output


def test_demo_headline_carries_a_per_seed_interval():
    from labelwise.demo import format_summary

    result = learning_curve_demo("margin", seeds=3, n_rounds=8)
    assert len(result.seed_labels) == 3
    assert all(20 <= v <= result.baseline_labels for v in result.seed_labels)
    low, high = result.ratio_ci
    assert low <= result.ratio <= high
    # hand check: the ratio is the budget over the mean of the per-seed labels
    assert result.ratio == result.baseline_labels / (sum(result.seed_labels) / 3)
    assert "95% CI" in format_summary(result) or "includes 1" in format_summary(result)
