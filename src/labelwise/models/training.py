"""The fit policy: one place that decides how a model is fitted, evaluated and calibrated.

Every loop in labelwise (:class:`labelwise.loop.Session`, the simulator that drives it, and the
service's retraining job) fits through these functions, so a model trained in the service is the
model the library and the label-efficiency benchmarks train:

- :func:`can_fit`: a classifier can be fitted once two classes are labelled (multi-label: every
  label seen both on and off). Before that the loop uses its cold-start strategy, and
  :func:`prior_model` stands in wherever a prediction is needed (metrics, stop sets).
- :func:`fit_model`: a fresh ``sklearn.base.clone`` of a template, rows in the order given,
  with a fixed seed where the template leaves ``random_state`` unset.
- :func:`train_and_evaluate`: the retraining step of a production loop. It evaluates on a
  validation set, else on a held-out share of the labels, else by cross-validation, fits a
  temperature on the evaluation probabilities, and deploys a model fitted on *all* training
  labels (the evaluation is of a model that saw slightly fewer labels: a conservative estimate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from labelwise.errors import LabelwiseError
from labelwise.models import predict_proba
from labelwise.tasks import TaskType

__all__ = [
    "CALIBRATIONS",
    "HOLDOUT_MIN_LABELS",
    "MODELS",
    "TrainedModel",
    "align_columns",
    "can_fit",
    "default_positive_label",
    "evaluation_metrics",
    "fit_and_score",
    "fit_model",
    "fit_temperature",
    "make_model",
    "out_of_fold_proba",
    "prior_model",
    "train_and_evaluate",
]

#: Built-in model names (:func:`make_model`).
MODELS = ("logreg", "logreg_balanced", "nb")
#: How a deployed model's probabilities are calibrated: a temperature fitted at each retrain, or
#: not at all.
CALIBRATIONS = ("temperature", "none")
#: Below this many labels a held-out share is too small to mean anything: cross-validate.
HOLDOUT_MIN_LABELS = 50
SEED_MAX = np.iinfo(np.int32).max


def make_model(
    name: str = "logreg", task_type: TaskType | str = TaskType.MULTICLASS, *, sparse: bool = False
) -> Any:
    """A fresh, unfitted built-in model.

    Parameters
    ----------
    name : {"logreg", "logreg_balanced", "nb"}
        ``"logreg"``: ``LogisticRegression(max_iter=1000)``; ``"logreg_balanced"``: the same with
        ``class_weight="balanced"`` (each class weighs ``n / (n_classes * n_class)``, so a few
        labels of an imbalanced task do not fit "the majority class for everything");
        ``"nb"``: multinomial naive Bayes on sparse (text) features, Gaussian naive Bayes on
        dense ones.
    task_type : {"multiclass", "binary", "multilabel"}
        Multi-label tasks get one-vs-rest of the same model.
    sparse : bool
        Whether the features are a sparse matrix.

    Raises
    ------
    LabelwiseError
        For an unknown name (the message lists the valid ones).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.naive_bayes import GaussianNB, MultinomialNB

    if name == "logreg":
        model: Any = LogisticRegression(max_iter=1000)
    elif name == "logreg_balanced":
        model = LogisticRegression(max_iter=1000, class_weight="balanced")
    elif name == "nb":
        model = MultinomialNB() if sparse else GaussianNB()
    else:
        raise LabelwiseError(f"unknown model {name!r}; use one of {list(MODELS)}.")
    if TaskType(task_type) == TaskType.MULTILABEL:
        model = OneVsRestClassifier(model)
    return model


def can_fit(y: np.ndarray | None, task_type: TaskType | str = TaskType.MULTICLASS) -> bool:
    """True once a classifier can be fitted on labels ``y``.

    Parameters
    ----------
    y : ndarray of shape (n_labeled,) or (n_labeled, n_labels), or None
    task_type : {"multiclass", "binary", "multilabel"}

    Returns
    -------
    bool
        Single-label: at least 2 distinct classes. Multi-label: every label column holds both
        0 and 1 (a one-vs-rest member cannot learn a label it never saw on and off).
    """
    if y is None or y.shape[0] == 0:
        return False
    if TaskType(task_type) == TaskType.MULTILABEL or y.ndim == 2:
        return bool(((y.min(axis=0) == 0) & (y.max(axis=0) == 1)).all())
    return np.unique(y).shape[0] >= 2


def rows(X: Any, idx: Any) -> Any:
    """Rows ``idx`` of a dense, memory-mapped or sparse matrix (dense rows come as ndarray)."""
    return X[idx] if sp.issparse(X) else np.asarray(X[idx])


def seeded_clone(template: Any, random_state: int | None) -> Any:
    """``clone(template)``; a ``random_state`` parameter left ``None`` gets ``random_state``."""
    est = clone(template)
    if random_state is not None and hasattr(est, "get_params"):
        if "random_state" in est.get_params(deep=False) and est.random_state is None:
            est.set_params(random_state=int(random_state))
    return est


def fit_model(template: Any, X: Any, y: np.ndarray, *, random_state: int | None = None) -> Any:
    """A fresh clone of ``template`` fitted on ``(X, y)``.

    Parameters
    ----------
    template : classifier
        Never fitted itself.
    X : array-like or sparse matrix of shape (n_labeled, n_features)
    y : ndarray of shape (n_labeled,) or (n_labeled, n_labels)
    random_state : int, optional
        Given to the clone when its own ``random_state`` is ``None`` (same seed, same model).

    Returns
    -------
    fitted classifier
    """
    return seeded_clone(template, random_state).fit(X, y)


def prior_model(X: Any, y: np.ndarray) -> Any:
    """A classifier that predicts the label frequencies of ``y`` for every row.

    Stands in for the model while :func:`can_fit` is False (one class labelled so far), so
    metrics and stop-set predictions exist from the first round.
    """
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior").fit(X, y)


def _cv(y: np.ndarray, n_splits: int, random_state: int) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    if y.ndim == 1:
        n = min(n_splits, int(np.unique(y, return_counts=True)[1].min()))
        return StratifiedKFold(n, shuffle=True, random_state=random_state) if n >= 2 else None
    n = min(n_splits, y.shape[0])
    return KFold(n, shuffle=True, random_state=random_state) if n >= 2 else None


def out_of_fold_proba(
    template: Any, X: Any, y: np.ndarray, *, n_splits: int = 5, random_state: int = 0
) -> np.ndarray | None:
    """Cross-validated probabilities: each row predicted by a model that did not see it.

    Parameters
    ----------
    template : classifier
    X : array-like or sparse matrix of shape (n_labeled, n_features)
    y : ndarray of shape (n_labeled,) or (n_labeled, n_labels)
    n_splits : int
        At most this many folds; fewer when the rarest class has fewer rows (stratified).
    random_state : int
        Seeds the fold assignment.

    Returns
    -------
    proba : ndarray of shape (n_labeled, n_classes) or None
        ``None`` when fewer than 2 folds are possible.
    """
    from sklearn.model_selection import cross_val_predict

    cv = _cv(y, n_splits, random_state)
    if cv is None:
        return None
    return np.asarray(
        cross_val_predict(clone(template), X, y, cv=cv, method="predict_proba"), dtype=np.float64
    )


def align_columns(proba: np.ndarray, own: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probability columns of a model with classes ``own`` placed under ``classes``.

    Parameters
    ----------
    proba : ndarray of shape (n, len(own))
    own : ndarray of shape (n_own,)
        The model's ``classes_`` (a subset of ``classes``).
    classes : ndarray of shape (n_classes,)

    Returns
    -------
    ndarray of shape (n, n_classes)
        Zeros under classes the model never saw.
    """
    if own.shape == classes.shape and np.array_equal(own, classes):
        return proba
    out = np.zeros((proba.shape[0], classes.shape[0]), dtype=np.float64)
    lookup = {c: j for j, c in enumerate(classes.tolist())}
    out[:, [lookup[c] for c in own.tolist()]] = proba
    return out


def default_positive_label(y: np.ndarray, classes: np.ndarray) -> Any:
    """The positive class of a two-class task when none is declared: the rarer one in ``y``.

    Rare positives (fraud, defects, bad loans) are what PR-AUC is for; the alphabetically last
    class would often be the majority. Ties go to the last of ``classes``.
    """
    counts = [int(np.sum(np.asarray(y, dtype=object) == c)) for c in classes.tolist()]
    return classes[0] if counts[0] < counts[-1] else classes[-1]


def evaluation_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    *,
    task_type: TaskType | str = TaskType.MULTICLASS,
    positive_label: Any = None,
) -> dict[str, float]:
    """Accuracy, macro-F1 and, for two classes, PR-AUC (average precision) of ``proba``.

    Parameters
    ----------
    y_true : ndarray of shape (n,) or (n, n_labels)
    proba : ndarray of shape (n, n_classes)
        Columns in the order of ``classes`` (a model's ``classes_``).
    classes : ndarray of shape (n_classes,)
    task_type : {"multiclass", "binary", "multilabel"}
    positive_label : optional
        The positive class for PR-AUC; default :func:`default_positive_label` of ``y_true``.

    Returns
    -------
    dict of str to float
        ``accuracy`` and ``macro_f1``; ``pr_auc`` too when there are exactly two classes and
        both occur in ``y_true``.
    """
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score

    if TaskType(task_type) == TaskType.MULTILABEL:
        pred = (proba >= 0.5).astype(np.int64)
    else:
        pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        y_true = np.asarray(y_true, dtype=object)
    out = {
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
    }
    classes = np.asarray(classes, dtype=object)
    if TaskType(task_type) != TaskType.MULTILABEL and classes.shape[0] == 2:
        pos = default_positive_label(y_true, classes) if positive_label is None else positive_label
        hit = np.flatnonzero(classes == pos)
        positives = y_true == pos
        if hit.size and positives.any() and not positives.all():
            out["pr_auc"] = float(average_precision_score(positives, proba[:, hit[0]]))
    return out


def fit_temperature(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Temperature scaling fitted on evaluation probabilities; ECE before and after.

    Parameters
    ----------
    proba : ndarray of shape (n, n_classes)
    y_true : ndarray of shape (n,)
    classes : ndarray of shape (n_classes,)
        The column order of ``proba``; rows whose label is not among them are left out.

    Returns
    -------
    dict
        ``{"method": "temperature", "temperature", "ece", "ece_calibrated", "n"}``, or ``{}``
        with fewer than two usable rows.
    """
    from labelwise.calibration import TemperatureScaling, expected_calibration_error

    classes = np.asarray(classes, dtype=object)
    y_true = np.asarray(y_true, dtype=object)
    keep = np.isin(y_true, classes)
    if proba.ndim != 2 or keep.sum() < 2:
        return {}
    p, y = proba[keep], y_true[keep]
    scaler = TemperatureScaling().fit(p, y, classes=classes)
    return {
        "method": "temperature",
        "temperature": scaler.temperature_,
        "ece": expected_calibration_error(p, y, classes=classes),
        "ece_calibrated": expected_calibration_error(scaler.transform(p), y, classes=classes),
        "n": int(keep.sum()),
    }


@dataclass(frozen=True)
class TrainedModel:
    """The outcome of :func:`train_and_evaluate`.

    Attributes
    ----------
    model : fitted classifier
        Fitted on every training label; the one to deploy.
    evaluation : str
        ``"validation_split"``, ``"holdout"``, ``"cv<k>"`` or ``"none"``.
    metrics : dict of str to float
        :func:`evaluation_metrics` of the evaluation probabilities (empty for ``"none"``).
    calibration : dict
        :func:`fit_temperature` on the evaluation probabilities (empty when not calibrated).
    eval_idx : ndarray of int or None
        Rows of the training set that were held out (``"holdout"``); ``None`` otherwise.
    y_eval : ndarray
        True labels of the evaluation rows.
    proba_eval : ndarray of shape (n_eval, n_classes)
    """

    model: Any
    evaluation: str
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    eval_idx: np.ndarray | None = None
    y_eval: np.ndarray = field(default_factory=lambda: np.empty(0))
    proba_eval: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    @property
    def temperature(self) -> float | None:
        return self.calibration.get("temperature")


def train_and_evaluate(
    template: Any,
    X: Any,
    y: np.ndarray,
    *,
    X_val: Any = None,
    y_val: np.ndarray | None = None,
    holdout: np.ndarray | None = None,
    task_type: TaskType | str = TaskType.MULTICLASS,
    calibrate: bool = True,
    positive_label: Any = None,
    random_state: int | None = None,
) -> TrainedModel:
    """Fit the model to deploy and measure it honestly.

    The evaluation uses, in order of preference: the validation set ``(X_val, y_val)``; the
    rows where ``holdout`` is True (a model fitted on the others), when there are at least
    :data:`HOLDOUT_MIN_LABELS` labels and the rest can still be fitted; else 5-fold (or fewer)
    cross-validated probabilities. The deployed model is always fitted on all of ``(X, y)``.

    Parameters
    ----------
    template : classifier
    X : array-like or sparse matrix of shape (n_labeled, n_features)
    y : ndarray of shape (n_labeled,) or (n_labeled, n_labels)
        Must satisfy :func:`can_fit`.
    X_val, y_val : optional
        Validation rows that never train.
    holdout : ndarray of bool of shape (n_labeled,), optional
        A fixed share of the labels (e.g. by a hash of the item id) to hold out.
    task_type : {"multiclass", "binary", "multilabel"}
    calibrate : bool
        Fit a temperature on the evaluation probabilities (single-label only).
    positive_label : optional
        Positive class for PR-AUC on binary tasks; default the rarer class of ``y``.
    random_state : int, optional
        Seed for the clones and the folds.

    Returns
    -------
    TrainedModel
    """
    task_type = TaskType(task_type)
    model = fit_model(template, X, y, random_state=random_state)
    seed = 0 if random_state is None else int(random_state)
    if positive_label is None and task_type != TaskType.MULTILABEL:
        classes_y = np.asarray(model.classes_)
        if classes_y.shape[0] == 2:
            positive_label = default_positive_label(y, classes_y)
    eval_idx = None
    if X_val is not None and y_val is not None and y_val.shape[0]:
        kind, y_eval, proba = "validation_split", y_val, predict_proba(model, X_val)
        classes = np.asarray(model.classes_)
    else:
        kind, y_eval, proba, classes = "none", y[:0], np.empty((0, 0)), None
        if holdout is not None and y.shape[0] >= HOLDOUT_MIN_LABELS and holdout.any():
            fit_rows = np.flatnonzero(~holdout)
            if can_fit(y[fit_rows], task_type):
                eval_idx = np.flatnonzero(holdout)
                held = fit_model(template, rows(X, fit_rows), y[fit_rows], random_state=seed)
                kind, y_eval = "holdout", y[eval_idx]
                proba = predict_proba(held, rows(X, eval_idx))
                classes = np.asarray(model.classes_)
                if task_type != TaskType.MULTILABEL:
                    # the held-out model may lack a class: its columns go where the deployed
                    # model's are, so the metrics see the task's classes (binary stays binary)
                    proba = align_columns(proba, np.asarray(held.classes_), classes)
        if kind == "none":
            oof = out_of_fold_proba(template, X, y, random_state=seed)
            if oof is not None:
                kind, y_eval, proba = f"cv{_cv(y, 5, seed).get_n_splits()}", y, oof
                classes = np.asarray(model.classes_)
    metrics: dict[str, float] = {}
    calibration: dict[str, Any] = {}
    if proba.shape[0]:
        metrics = evaluation_metrics(
            y_eval, proba, classes, task_type=task_type, positive_label=positive_label
        )
        if calibrate and task_type != TaskType.MULTILABEL:
            calibration = fit_temperature(proba, y_eval, classes)
    return TrainedModel(model, kind, metrics, calibration, eval_idx, y_eval, proba)


def fit_and_score(
    template: Any,
    X: Any,
    y: np.ndarray,
    X_eval: Any,
    y_eval: np.ndarray,
    *,
    task_type: TaskType | str = TaskType.MULTICLASS,
    positive_label: Any = None,
    random_state: int | None = None,
) -> dict[str, float] | None:
    """Metrics on ``(X_eval, y_eval)`` of a model fitted on ``(X, y)`` alone.

    The service measures its random-sampling baseline this way: a model fitted only on the
    labels of the random audit sample, scored on the same evaluation rows as the real model.

    Returns
    -------
    dict of str to float or None
        :func:`evaluation_metrics`; ``None`` when ``y`` cannot be fitted yet.
    """
    if not can_fit(y, task_type) or y_eval.shape[0] == 0:
        return None
    model = fit_model(template, X, y, random_state=random_state)
    proba = predict_proba(model, X_eval)
    return evaluation_metrics(
        y_eval, proba, np.asarray(model.classes_), task_type=task_type,
        positive_label=positive_label,
    )  # fmt: skip
