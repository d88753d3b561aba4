"""A classifier whose probabilities go through a calibrator refitted with the model.

:class:`CalibratedModel` is what ``Session(..., calibration="temperature")`` fits every round: the
base model on all labels, and the temperature (:class:`labelwise.calibration.TemperatureScaling`)
on out-of-fold probabilities of those labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.calibration import TemperatureScaling
from labelwise.errors import LabelwiseError, NotFittedError
from labelwise.models import check_model, predict_proba

__all__ = ["CalibratedModel"]


class CalibratedModel:
    """A classifier whose ``predict_proba`` goes through a calibrator refitted with the model.

    Parameters
    ----------
    model : classifier with ``predict_proba`` and ``classes_``
        Fitted already (then call :meth:`calibrate` on held-out data), or fitted by :meth:`fit`.
    calibrator : TemperatureScaling or any object with ``fit(proba, y, classes=)`` and
        ``transform(proba)``; default ``TemperatureScaling()``.
    cv : int or None, default=5
        :meth:`fit` refits the model on all rows and the calibrator on out-of-fold
        probabilities from up to ``cv`` stratified folds (fewer when a class has fewer rows;
        none with a single row per class, when the calibrator is left as it was). ``None``:
        ``fit`` keeps the calibrator as fitted.
    random_state : int or None
        Seeds the folds and, when the base model leaves its own ``random_state`` unset, the base
        model (so a seeded ``Session`` reproduces a calibrated run).

    Notes
    -----
    It is a scikit-learn estimator (``get_params`` / ``clone`` work), so
    ``Session(CalibratedModel(LogisticRegression()))`` — or ``Session(...,
    calibration="temperature")`` — refits model *and* temperature every round: a new model has
    its own over-confidence, and a temperature fitted for the first model would be stale.
    """

    def __init__(
        self, model: Any, calibrator: Any = None, *, cv: int | None = 5, random_state: Any = None
    ) -> None:
        self.model = check_model(model)
        if calibrator is not None and not callable(getattr(calibrator, "transform", None)):
            raise LabelwiseError(
                f"{type(calibrator).__name__} has no transform(proba); pass a "
                "labelwise.calibration.TemperatureScaling."
            )
        self.calibrator = calibrator
        self.cv = cv
        self.random_state = random_state

    # scikit-learn's estimator protocol, so that sklearn.base.clone works
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "model": self.model,
            "calibrator": self.calibrator,
            "cv": self.cv,
            "random_state": self.random_state,
        }

    def set_params(self, **params: Any) -> CalibratedModel:
        for key, value in params.items():
            if key not in ("model", "calibrator", "cv", "random_state"):
                raise LabelwiseError(f"CalibratedModel has no parameter {key!r}.")
            setattr(self, key, value)
        return self

    @property
    def calibrator_(self) -> Any:
        if self.calibrator is None:
            self.calibrator = TemperatureScaling()
        return self.calibrator

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def fit(self, X: Any, y: Any, **fit_params: Any) -> CalibratedModel:
        """Fit the base model on ``(X, y)`` and the calibrator on out-of-fold probabilities."""
        from labelwise.models.training import out_of_fold_proba

        y = np.asarray(y)
        seed = None if self.random_state is None else int(self.random_state)
        params = self.model.get_params(deep=False) if hasattr(self.model, "get_params") else {}
        if seed is not None and "random_state" in params and params["random_state"] is None:
            self.model.set_params(random_state=seed)
        oof = None
        if self.cv is not None and y.ndim == 1:
            oof = out_of_fold_proba(self.model, X, y, n_splits=int(self.cv), random_state=seed or 0)
        self.model.fit(X, y, **fit_params)
        if oof is not None:
            self.calibrator_.fit(oof, y, classes=self.classes_)
        return self

    def calibrate(self, X_val: Any, y_val: Any) -> CalibratedModel:
        """Fit the calibrator on the base model's probabilities for held-out data."""
        self.calibrator_.fit(predict_proba(self.model, X_val), y_val, classes=self.classes_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = predict_proba(self.model, X)
        try:
            return self.calibrator_.transform(proba)
        except NotFittedError:  # never calibrated (too few labels per class): identity
            return proba

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self.model, "classes_")

    def __repr__(self) -> str:
        return (
            f"CalibratedModel(model={self.model!r}, calibrator={self.calibrator!r}, cv={self.cv!r})"
        )
