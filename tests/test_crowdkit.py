"""Our Dawid–Skene (:func:`labelwise.annotators.dawid_skene`) against crowd-kit 1.4.2's.

crowd-kit is the maintained reference implementation but pulls in transformers and nltk, so it
is a test-only dependency: ``make test`` installs it with ``--no-deps`` next to the two
packages its ``crowdkit.aggregation`` imports (attrs, nltk; see the ``test`` extra).

Annotations are simulated over real labels (digits: 1,797 items, 10 classes; breast cancer:
569 items, 2 classes): five annotators who flip to a random other class at 10%, 20%, 30%, 40%
and 50% (:class:`labelwise.annotators.Oracle`), each labelling a seeded 60% of the items.

Tolerances, stated and measured here:

- **Step for step** (plain maximum likelihood: ``diagonal_prior=0, smoothing=0``, the same
  number of EM iterations): posteriors, confusion matrices and priors agree to ``1e-8``
  (measured <= 1e-10, crowd-kit's floor on a confusion cell).
- **Each with its defaults and its own stopping rule** (ours: a Dirichlet prior toward correct
  answers, stop when no posterior moves 1e-6; crowd-kit: plain ML, stop when the ELBO gains
  < 1e-5): mean absolute posterior difference <= 0.02 (measured 0.0005 on digits, 0.013 on
  breast cancer), the same label on >= 97% of the items (measured 99.8%, 97.9%) and accuracies
  against the truth within 0.01 of each other. Single items can differ by up to 0.3 where the
  likelihood is flat, which is why no max-norm bound is stated at convergence.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene
from sklearn.datasets import load_breast_cancer, load_digits

from labelwise.annotators import NoiseModel, Oracle, dawid_skene, majority_vote

FLIP_RATES = (0.1, 0.2, 0.3, 0.4, 0.5)


def simulate_votes(y: np.ndarray, rates, coverage: float, seed: int) -> np.ndarray:
    """Votes ``(n_items, n_annotators)`` of class indices, ``-1`` where an annotator skipped.

    Annotator ``a`` is an :class:`Oracle` with flip rate ``rates[a]`` over the true labels and
    answers a seeded ``coverage`` share of the items; an item nobody took gets annotator 0's
    correct answer so that every item has a vote (crowd-kit only sees items with votes).
    """
    rng = np.random.RandomState(seed)
    classes = np.unique(y)
    n = y.shape[0]
    votes = np.full((n, len(rates)), -1, dtype=np.int64)
    for a, rate in enumerate(rates):
        oracle = Oracle(y, noise=NoiseModel(flip_rate=rate), random_state=seed * 100 + a)
        said = np.searchsorted(classes, oracle.label(np.arange(n)).labels)
        took = rng.random_sample(n) < coverage
        votes[took, a] = said[took]
    nobody = (votes < 0).all(axis=1)
    votes[nobody, 0] = np.searchsorted(classes, y[nobody])
    return votes


def crowdkit_ds(votes: np.ndarray, n_classes: int, **params):
    """crowd-kit's DawidSkene on the same votes: (posterior, fitted model).

    posterior : ndarray of shape (n_items, n_classes), rows in item order.
    """
    items, workers = np.nonzero(votes >= 0)
    df = pd.DataFrame({"task": items, "worker": workers, "label": votes[items, workers]})
    with warnings.catch_warnings():  # pandas deprecation noise from inside crowd-kit
        warnings.simplefilter("ignore")
        model = DawidSkene(**params).fit(df)
    proba = model.probas_.reindex(index=range(votes.shape[0]), columns=range(n_classes))
    return proba.fillna(0.0).to_numpy(), model


@pytest.fixture(scope="module", params=["digits", "breast_cancer"])
def real_votes(request):
    y = (load_digits() if request.param == "digits" else load_breast_cancer()).target
    return request.param, y, simulate_votes(y, FLIP_RATES, 0.6, seed=0)


@pytest.mark.parametrize("n_iter", [1, 10, 50])
def test_plain_em_matches_crowdkit_step_for_step(real_votes, n_iter):
    _, y, votes = real_votes
    k = int(y.max()) + 1
    # tol=-inf: crowd-kit stops when the ELBO gains less than tol, i.e. never; ours with tol=0
    theirs, model = crowdkit_ds(votes, k, n_iter=n_iter, tol=-np.inf)
    assert len(model.loss_history_) == n_iter
    ours, confusion, priors = dawid_skene(
        votes, k, diagonal_prior=0.0, smoothing=0.0, max_iter=n_iter, tol=0.0
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    # crowd-kit's errors_ is indexed (worker, said) with a column per true class: the same
    # cells as confusion[worker, true, said]; crowd-kit computed one more M-step after its
    # last E-step, which is the M-step our next iteration would start with.
    errors = model.errors_
    _, next_confusion, next_priors = dawid_skene(
        votes, k, diagonal_prior=0.0, smoothing=0.0, max_iter=n_iter + 1, tol=0.0
    )
    for (worker, said), row in errors.iterrows():
        np.testing.assert_allclose(
            next_confusion[worker, :, said], row.reindex(range(k)).to_numpy(), atol=1e-8
        )
    np.testing.assert_allclose(
        next_priors, model.priors_.reindex(range(k)).to_numpy(), rtol=0, atol=1e-8
    )
    assert confusion.shape == (len(FLIP_RATES), k, k) and priors.shape == (k,)


def test_defaults_agree_with_crowdkit_defaults(real_votes):
    name, y, votes = real_votes
    k = int(y.max()) + 1
    theirs, _ = crowdkit_ds(votes, k)
    ours, _, _ = dawid_skene(votes, k)
    diff = np.abs(ours - theirs)
    assert diff.mean() <= 0.02, (name, diff.mean())
    assert np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1)) >= 0.97
    acc_ours = np.mean(ours.argmax(axis=1) == y)
    acc_theirs = np.mean(theirs.argmax(axis=1) == y)
    assert abs(acc_ours - acc_theirs) <= 0.01, (acc_ours, acc_theirs)
    # both beat majority vote over the same five annotators
    assert acc_ours > np.mean(majority_vote(votes, k, random_state=0) == y)


def test_an_adversarial_annotator_on_digits():
    """Two honest annotators (25% random flips each) and an adversary who always answers the
    next digit, ``(y + 1) mod 10``. Majority vote is right only when both honest ones are
    (about 0.75² ~ 0.56, plus luck when the two agree on the adversary's tie-breaks; measured
    0.67); Dawid–Skene learns the adversary's permutation and inverts it (measured 0.99, ours
    and crowd-kit's alike, seeds 0-4)."""
    y = load_digits().target
    votes = np.c_[simulate_votes(y, (0.25, 0.25), 1.0, seed=0), (y + 1) % 10]
    ours, confusion, _ = dawid_skene(votes, 10)
    theirs, _ = crowdkit_ds(votes, 10)
    majority = np.mean(majority_vote(votes, 10, random_state=0) == y)
    acc_ours = np.mean(ours.argmax(axis=1) == y)
    acc_theirs = np.mean(theirs.argmax(axis=1) == y)
    assert majority < 0.72 and acc_ours >= 0.97 and acc_theirs >= 0.97
    # the adversary's confusion matrix is the shift: truth j -> says j + 1
    np.testing.assert_array_equal(confusion[2].argmax(axis=1), (np.arange(10) + 1) % 10)
