"""Strategies that measurably lose to random say so where users pick them."""

from __future__ import annotations

from labelwise.strategies import list_strategies, strategy_names
from labelwise.strategies.registry import MEASURED_LOSSES


def test_every_measured_loss_names_a_registered_strategy():
    assert set(MEASURED_LOSSES) <= set(strategy_names())


def test_listing_carries_the_loss():
    infos = {i.name: i for i in list_strategies()}
    for name, loss in MEASURED_LOSSES.items():
        assert infos[name].description.endswith(f"Measured: {loss}.")
    assert "Measured" not in infos["margin"].description
