"""Tests for labelwise.annotators: simulated annotators (noise, consensus) and label aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelwise.annotators as annotators
import labelwise.simulate as simulate_module
from labelwise.annotators import (
    Consensus,
    NoiseModel,
    Oracle,
    dawid_skene,
    majority_vote,
    vote_counts,
)
from labelwise.errors import LabelwiseError

# ------------------------------------------------------------------------------- aggregation


def test_vote_counts_by_hand():
    votes = np.array([[0, 0, 1], [2, -1, 2], [-1, -1, -1]])
    np.testing.assert_array_equal(vote_counts(votes, 3), [[2, 1, 0], [0, 0, 2], [0, 0, 0]])
    assert vote_counts(votes).shape == (3, 3)  # n_classes inferred as max + 1


def test_majority_vote_without_votes_is_minus_one_and_n_classes_is_inferred():
    votes = np.array([[1, 1, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(majority_vote(votes, random_state=0), [1, -1])


def test_majority_vote_breaks_ties_at_random_but_seeded():
    votes = np.tile([[0, 1]], (200, 1))  # every item a tie
    a, b = majority_vote(votes, 2, random_state=3), majority_vote(votes, 2, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert 0.35 < a.mean() < 0.65


@pytest.mark.parametrize(
    ("votes", "n_classes", "match"),
    [
        (np.array([0, 1]), 2, "2-D integer array"),
        (np.array([[0.0, 1.0]]), 2, "2-D integer array"),
        (np.array([[0, 3]]), 2, r"class indices in \[0, 2\)"),
        (np.array([[0, -2]]), 2, r"class indices in \[0, 2\)"),
        (np.array([[0, 1]]), 0, "n_classes must be a positive integer"),
    ],
)
def test_bad_votes_are_refused_with_what_to_do(votes, n_classes, match):
    for f in (majority_vote, dawid_skene, vote_counts):
        with pytest.raises(LabelwiseError, match=match):
            f(votes, n_classes)


def test_dawid_skene_item_without_votes_gets_the_priors():
    votes = np.array([[0, 0], [0, 0], [1, 1], [-1, -1]])
    posterior, _, priors = dawid_skene(votes, 2)
    np.testing.assert_allclose(posterior[3], priors)


def test_simulate_re_exports_the_same_objects():
    for name in ("Oracle", "NoiseModel", "Consensus", "BatchLabels", "CONSENSUS_METHODS"):
        assert getattr(simulate_module, name) is getattr(annotators, name)
    assert simulate_module.dawid_skene is dawid_skene
    assert simulate_module.majority_vote is majority_vote


# ---------------------------------------------------------------------- annotators and noise


def test_oracle_flip_rates():
    y = np.array([0, 1] * 50)
    assert (Oracle(y).label(np.arange(100)).labels == y).all()
    always = Oracle(y, noise=NoiseModel(flip_rate=1.0), random_state=0)
    assert (always.label(np.arange(100)).labels == 1 - y).all()  # binary: flip = the other one
    # class-dependent: only class 1 is ever mislabeled
    by_class = Oracle(y, noise=NoiseModel(class_flip_rates={1: 1.0}), random_state=0)
    labels = by_class.label(np.arange(100)).labels
    assert (labels[y == 0] == 0).all() and (labels[y == 1] == 0).all()
    # annotator rates combine with class rates: 1 - (1 - 0.5) * (1 - 0.5) = 0.75
    rates = NoiseModel(annotator_flip_rates=(0.5,), class_flip_rates={0: 0.5}).rates(
        1, np.array([0, 1])
    )
    np.testing.assert_allclose(rates, [[0.75, 0.5]])


def test_oracle_flip_rate_is_about_right_and_seeded():
    y = np.arange(5000) % 10
    a = Oracle(y, noise=NoiseModel(flip_rate=0.3), random_state=1).label(np.arange(5000))
    b = Oracle(y, noise=NoiseModel(flip_rate=0.3), random_state=1).label(np.arange(5000))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert abs(np.mean(a.labels != y) - 0.3) < 0.03


def test_majority_vote_by_hand():
    votes = np.array([[0, 0, 1], [2, 1, 1], [1, -1, -1]])
    np.testing.assert_array_equal(majority_vote(votes, 3, random_state=0), [0, 1, 1])


def test_dawid_skene_beats_majority_with_one_reliable_annotator():
    # 300 binary items; annotator 0 is right 95% of the time, annotators 1 and 2 only 60%
    # (independently). Majority is right when at least two are:
    # 0.95 * (1 - 0.4 * 0.4) + 0.05 * (0.6 * 0.6) = 0.798 + 0.018 = 0.816.
    # Dawid-Skene learns the reliabilities and follows annotator 0, whose log-odds
    # ln(0.95 / 0.05) = 2.94 outweigh two poor ones (2 * ln(0.6 / 0.4) = 0.81): about 0.95.
    rng = np.random.RandomState(0)
    truth = rng.randint(2, size=300)
    right = rng.random_sample((300, 3)) < np.array([0.95, 0.6, 0.6])
    votes = np.where(right, truth[:, None], 1 - truth[:, None])
    majority = majority_vote(votes, 2, random_state=0)
    assert np.mean(majority == truth) == pytest.approx(0.816, abs=0.04)
    posterior, confusion, priors = dawid_skene(votes, 2)
    ds = np.mean(posterior.argmax(axis=1) == truth)
    assert ds >= 0.92 and ds > np.mean(majority == truth) + 0.1
    accuracy = confusion[:, [0, 1], [0, 1]].mean(axis=1)  # mean diagonal per annotator
    assert accuracy.argmax() == 0 and accuracy[0] > 0.8 and (accuracy[1:] < 0.75).all()
    np.testing.assert_allclose(priors, np.bincount(truth) / 300, atol=0.08)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_dawid_skene_returns_distributions(seed):
    rng = np.random.RandomState(seed)
    votes = rng.randint(-1, 3, size=(12, 4))
    votes[:, 0] = rng.randint(0, 3, size=12)  # every item has at least one vote
    posterior, confusion, priors = dawid_skene(votes, 3)
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(confusion.sum(axis=2), 1.0)
    np.testing.assert_allclose(priors.sum(), 1.0)


def test_dawid_skene_consensus_in_the_oracle_beats_majority():
    # annotator 0 errs 5% of the time, annotators 1 and 2 40%: majority of three is wrong on
    # about 1 - (0.95 * (1 - 0.4**2) + 0.05 * 0.6**2) ~ 0.18 of the items (a bit less: two
    # wrong votes need not agree among 3 classes); Dawid-Skene finds annotator 0 and follows it.
    y = np.arange(600) % 3
    wrong = {}
    for method in ("majority", "dawid_skene"):
        oracle = Oracle(
            y,
            noise=NoiseModel(annotator_flip_rates=(0.05, 0.4, 0.4)),
            consensus=Consensus(k=3, fraction=1.0, method=method),
            random_state=0,
        )
        out = oracle.label(np.arange(600))
        assert out.n_annotations == 1800 and out.n_consensus_items == 600
        wrong[method] = oracle.n_wrong(np.arange(600)) / 600
    assert 0.1 < wrong["majority"] < 0.22
    assert wrong["dawid_skene"] < wrong["majority"] - 0.05


def test_bad_noise_and_consensus():
    with pytest.raises(LabelwiseError, match=r"flip_rate must be a probability in \[0, 1\]"):
        NoiseModel(flip_rate=1.5)
    with pytest.raises(LabelwiseError, match="unknown consensus method"):
        Consensus(method="vote")
    with pytest.raises(LabelwiseError, match="k must be an integer >= 2"):
        Consensus(k=1)
    with pytest.raises(LabelwiseError, match="needs 3 distinct annotators"):
        Oracle([0, 1], annotators=2, consensus=Consensus(k=3))
    with pytest.raises(LabelwiseError, match="not in the data"):
        Oracle([0, 1], noise=NoiseModel(class_flip_rates={7: 0.1}))


def test_dawid_skene_sees_through_an_adversarial_annotator_by_hand():
    """Ten binary items, truth 0, 1, 0, 1, ...; annotators 0 and 1 are honest but err once
    each (items 0 and 5), annotator 2 is adversarial: always the other class.

    Majority vote is wrong exactly where an honest annotator errs (the adversary sides with
    the error): 8 / 10. Plain maximum-likelihood Dawid–Skene has the truth as a fixed point:
    given it, the confusion matrices are counts, annotator 0 [[4/5, 1/5], [0, 1]], annotator 1
    [[1, 0], [1/5, 4/5]], annotator 2 [[0, 1], [1, 0]], and the adversary's answer then
    decides every item with certainty: 10 / 10. With the default prior the honest votes on
    item 0 (1 from annotator 0, 0 from annotator 1) cancel, since
    pi0[0, 1] / pi0[1, 1] = 0.168 / 0.998 is the inverse of pi1[0, 0] / pi1[1, 0], and the
    adversary's inverted vote is left: P(truth 0) = pi2[0, 1] / (pi2[0, 1] + pi2[1, 1]) = 0.799.
    """
    truth = np.arange(10) % 2
    votes = np.c_[truth, truth, 1 - truth]
    votes[0, 0] = 1  # annotator 0 errs on item 0
    votes[5, 1] = 0  # annotator 1 errs on item 5
    majority = majority_vote(votes, 2, random_state=0)
    np.testing.assert_array_equal(np.flatnonzero(majority != truth), [0, 5])

    posterior, confusion, priors = dawid_skene(votes, 2, diagonal_prior=0.0, smoothing=0.0)
    # EM stops once no posterior moves 1e-6, so "exact" means to about that
    np.testing.assert_allclose(posterior, np.eye(2)[truth], atol=1e-6)
    np.testing.assert_allclose(confusion[0], [[0.8, 0.2], [0, 1]], atol=1e-6)
    np.testing.assert_allclose(confusion[1], [[1, 0], [0.2, 0.8]], atol=1e-6)
    np.testing.assert_allclose(confusion[2], [[0, 1], [1, 0]], atol=1e-6)
    np.testing.assert_allclose(priors, [0.5, 0.5])

    posterior, confusion, _ = dawid_skene(votes, 2)  # the default prior toward honesty
    np.testing.assert_array_equal(posterior.argmax(axis=1), truth)
    assert confusion[2, 0, 1] > 0.75 and confusion[2, 1, 0] > 0.75  # found out
    p0 = confusion[2, 0, 1] / (confusion[2, 0, 1] + confusion[2, 1, 1])
    assert posterior[0, 0] == pytest.approx(p0, abs=1e-3)
    assert posterior[0, 0] == pytest.approx(0.799, abs=0.005)


def test_dawid_skene_refuses_negative_pseudo_counts():
    with pytest.raises(LabelwiseError, match="smoothing must be a number >= 0"):
        dawid_skene(np.array([[0, 1]]), 2, smoothing=-0.1)
    with pytest.raises(LabelwiseError, match="diagonal_prior must be a number >= 0"):
        dawid_skene(np.array([[0, 1]]), 2, diagonal_prior=float("nan"))
