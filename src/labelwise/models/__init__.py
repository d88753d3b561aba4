"""Model adapters: anything with ``fit`` / ``predict_proba`` / ``classes_`` works.

The helpers here are the one place that knows how to ask a scikit-learn-compatible model for
probabilities, so strategies never special-case estimators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.errors import ModelInterfaceError, NotFittedError

__all__ = ["check_fitted", "check_model", "embed", "model_classes", "predict_proba"]


def check_model(model: Any) -> Any:
    """Check that ``model`` has ``fit`` and ``predict_proba``.

    Raises
    ------
    ModelInterfaceError
        If either method is missing (e.g. an SVC without ``probability=True``).
    """
    missing = [m for m in ("fit", "predict_proba") if not callable(getattr(model, m, None))]
    if missing:
        raise ModelInterfaceError(
            f"{type(model).__name__} has no {' or '.join(missing)}; labelwise needs a "
            "scikit-learn classifier with predict_proba (for SVC pass probability=True, or wrap "
            "the model in sklearn.calibration.CalibratedClassifierCV)."
        )
    return model


def check_fitted(model: Any) -> Any:
    """Check that ``model`` is a fitted classifier with ``predict_proba``.

    Raises
    ------
    ModelInterfaceError
        If it lacks ``predict_proba``.
    NotFittedError
        If it has not been fitted.
    """
    if model is None:
        raise NotFittedError(
            "this strategy needs a fitted model; label a first batch (use a cold-start "
            "strategy such as 'random' or 'representative') and fit the model."
        )
    check_model(model)
    # Imported here, not at the top: `import labelwise` must not load scikit-learn.
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except SklearnNotFittedError:
        raise NotFittedError(
            f"{type(model).__name__} is not fitted; call fit() on labelled data first."
        ) from None
    except (TypeError, AttributeError):
        # Not a scikit-learn estimator (no get_params / __sklearn_tags__): duck typing says a
        # fitted classifier has classes_.
        if getattr(model, "classes_", None) is None:
            raise NotFittedError(
                f"{type(model).__name__} has no classes_; fit it before selecting."
            ) from None
    return model


def predict_proba(model: Any, X: Any) -> np.ndarray:
    """Probabilities as one 2-D array.

    Multi-output models that return a list of ``(n_samples, 2)`` arrays (one per label, as
    ``MultiOutputClassifier`` does) are turned into ``(n_samples, n_labels)`` positive
    probabilities.

    Parameters
    ----------
    model : fitted classifier
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
    """
    from sklearn import config_context  # here, not at the top: keeps `import labelwise` light

    # Scikit-learn re-checks every chunk of features for NaN/inf; a NaN feature shows up as a NaN
    # probability, which labelwise's proba validation reports with its row, so the check on the
    # (much larger) feature chunk is skipped: ~20% of predict_proba time on a 1M x 384 pool.
    with config_context(assume_finite=True):
        proba = model.predict_proba(X)
    if isinstance(proba, list):
        proba = np.column_stack([p[:, -1] for p in proba])
    return np.asarray(proba)


def model_classes(model: Any) -> np.ndarray:
    """The model's ``classes_`` as a 1-D array."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise NotFittedError(f"{type(model).__name__} has no classes_; fit it first.")
    return np.asarray(classes)


def embed(model: Any, X: Any) -> np.ndarray:
    """Embeddings from a model that exposes ``embed(X)``; otherwise the features themselves.

    Parameters
    ----------
    model : estimator or None
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    embeddings : ndarray of shape (n_samples, n_dims)
    """
    fn = getattr(model, "embed", None)
    if callable(fn):
        return np.asarray(fn(X))
    return X
