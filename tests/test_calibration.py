import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from labelwise.calibration import (
    CalibratedModel,
    TemperatureScaling,
    expected_calibration_error,
    reliability_curve,
    temperature_scale,
)
from labelwise.errors import (
    InvalidProbaError,
    LabelMismatchError,
    LabelwiseError,
    NotFittedError,
)

# Five predictions; the top-class confidences and whether the top class is right:
#   0.95 right, 0.85 wrong, 0.75 right, 0.65 right, 0.55 wrong.
TINY_PROBA = np.array([[0.95, 0.05], [0.85, 0.15], [0.25, 0.75], [0.35, 0.65], [0.55, 0.45]])
TINY_Y = np.array([0, 1, 1, 1, 1])


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # Tiny fits: multi-threaded BLAS only adds contention (20x slower on a busy 2-core box).
    with threadpool_limits(1):
        yield


def test_ece_hand_computed():
    # 5 bins of width 0.2, right-closed: (0.8, 1] holds 0.95, 0.85 -> acc 1/2, conf 0.9;
    # (0.6, 0.8] holds 0.75, 0.65 -> acc 1, conf 0.7; (0.4, 0.6] holds 0.55 -> acc 0, conf 0.55.
    # ECE = 2/5*|0.5-0.9| + 2/5*|1-0.7| + 1/5*|0-0.55| = 0.16 + 0.12 + 0.11 = 0.39
    assert expected_calibration_error(TINY_PROBA, TINY_Y, n_bins=5) == pytest.approx(0.39)


def test_reliability_curve_hand_computed():
    curve = reliability_curve(TINY_PROBA, TINY_Y, n_bins=5)
    np.testing.assert_array_equal(curve.counts, [0, 0, 1, 2, 2])
    np.testing.assert_allclose(curve.confidence[2:], [0.55, 0.7, 0.9])
    np.testing.assert_allclose(curve.accuracy[2:], [0.0, 1.0, 0.5])
    assert np.isnan(curve.confidence[:2]).all() and np.isnan(curve.accuracy[:2]).all()
    np.testing.assert_allclose(curve.bin_edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_ece_with_class_labels():
    # Same example with string labels mapped through classes.
    y = np.array(["a", "b", "b", "b", "b"])
    ece = expected_calibration_error(TINY_PROBA, y, n_bins=5, classes=["a", "b"])
    assert ece == pytest.approx(0.39)


def test_ece_perfect_is_zero():
    # One-hot correct predictions: confidence 1, accuracy 1.
    proba = np.eye(3)
    assert expected_calibration_error(proba, [0, 1, 2]) == 0.0


def test_temperature_one_is_identity():
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(temperature_scale(np.log(proba), 1.0), proba)
    scaler = TemperatureScaling()
    scaler.temperature_ = 1.0
    np.testing.assert_allclose(scaler.transform(proba), proba)


def test_temperature_two_hand_computed():
    # softmax(log [0.8, 0.2] / 2) = [sqrt .8, sqrt .2] / (sqrt .8 + sqrt .2) = [2/3, 1/3]
    out = temperature_scale(np.log(np.array([[0.8, 0.2]])), 2.0)
    np.testing.assert_allclose(out, [[2 / 3, 1 / 3]])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    st.floats(0.1, 10.0),
)
def test_transform_keeps_argmax_and_sums_to_one(row, t):
    proba = np.array([row]) / np.sum(row)
    scaler = TemperatureScaling()
    scaler.temperature_ = t
    out = scaler.transform(proba)
    assert out.sum() == pytest.approx(1.0)
    assert out.argmax() == proba.argmax() or np.isclose(out.max(), out[0, proba.argmax()])


@pytest.fixture(scope="module")
def overconfident_digits():
    X, y = load_digits(return_X_y=True)  # raw 0..16 pixels
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, train_size=300, random_state=0, stratify=y)
    X_val, X_te, y_val, y_te = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(X_tr, y_tr)

    def sharpen(p):  # power 3, renormalised: an over-confident version of the model
        p = p**3
        return p / p.sum(axis=1, keepdims=True)

    return model, sharpen, (X_val, y_val), (X_te, y_te)


def test_temperature_softens_overconfident_model(overconfident_digits):
    model, sharpen, (X_val, y_val), (X_te, y_te) = overconfident_digits
    scaler = TemperatureScaling().fit(sharpen(model.predict_proba(X_val)), y_val)
    # p^3 is softmax(3 log p): the fitted T undoes the factor 3 (and a bit more: the model
    # itself is slightly over-confident; T ~ 4.1 with this split).
    assert scaler.temperature_ > 2.5
    before = expected_calibration_error(sharpen(model.predict_proba(X_te)), y_te)
    after = expected_calibration_error(scaler.transform(sharpen(model.predict_proba(X_te))), y_te)
    assert after < before / 2  # ~0.061 -> ~0.019 with this split
    # The predicted class never changes.
    np.testing.assert_array_equal(
        scaler.transform(sharpen(model.predict_proba(X_te))).argmax(1),
        model.predict_proba(X_te).argmax(1),
    )


def test_temperature_binary_two_columns():
    # Labels drawn as Bernoulli(0.7) while the model says 0.95: over-confident -> T > 1.
    rng = np.random.RandomState(0)
    y = (rng.random_sample(2000) < 0.7).astype(int)
    proba = np.tile([0.05, 0.95], (2000, 1))
    scaler = TemperatureScaling().fit(proba, y)
    assert scaler.temperature_ > 1
    # The NLL optimum puts the positive probability at the label frequency.
    assert scaler.transform(proba)[0, 1] == pytest.approx(y.mean(), abs=1e-3)


def test_from_logits():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    scaler = TemperatureScaling(from_logits=True).fit(logits, [0, 1, 1, 0])
    # Half right: the best calibration is [0.5, 0.5], reached at the upper bound of T.
    assert scaler.temperature_ > 10
    np.testing.assert_allclose(scaler.transform(logits), 0.5, atol=0.05)


def test_float32_stays_float32():
    scaler = TemperatureScaling()
    scaler.temperature_ = 2.0
    out = scaler.transform(np.array([[0.9, 0.1]], dtype=np.float32))
    assert out.dtype == np.float32


def test_calibrated_model(overconfident_digits):
    model, _, (X_val, y_val), (X_te, _) = overconfident_digits
    cm = CalibratedModel(model, TemperatureScaling()).calibrate(X_val, y_val)
    proba = cm.predict_proba(X_te)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(cm.predict(X_te), model.predict(X_te))
    np.testing.assert_array_equal(cm.classes_, model.classes_)


# ---------------------------------------------------------------- bad inputs


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError, match="fit"):
        TemperatureScaling().transform(np.array([[0.5, 0.5]]))


def test_fit_label_out_of_range_raises():
    with pytest.raises(LabelMismatchError, match="valid labels"):
        TemperatureScaling().fit(np.array([[0.5, 0.5]]), [2])


def test_fit_wrong_label_count_raises():
    with pytest.raises(LabelMismatchError, match="one label per row"):
        TemperatureScaling().fit(np.array([[0.5, 0.5]]), [0, 1])


def test_fit_string_labels_without_classes_raises():
    with pytest.raises(LabelMismatchError, match="classes="):
        TemperatureScaling().fit(np.array([[0.5, 0.5]]), ["a"])


def test_fit_unknown_class_raises():
    with pytest.raises(LabelMismatchError, match="'c'"):
        expected_calibration_error(np.array([[0.5, 0.5]]), ["c"], classes=["a", "b"])


def test_fit_empty_raises():
    with pytest.raises(LabelwiseError, match="at least one"):
        TemperatureScaling().fit(np.empty((0, 2)), np.empty(0, dtype=int))


def test_fit_bad_bounds_raises():
    with pytest.raises(LabelwiseError, match="bounds"):
        TemperatureScaling(bounds=(2.0, 1.0)).fit(np.array([[0.5, 0.5]]), [0])


def test_ece_rejects_logits():
    with pytest.raises(InvalidProbaError):
        expected_calibration_error(np.array([[2.0, -1.0]]), [0])


def test_ece_bad_bins_raises():
    with pytest.raises(LabelwiseError, match="n_bins"):
        expected_calibration_error(TINY_PROBA, TINY_Y, n_bins=0)


def test_calibrated_model_needs_transform():
    with pytest.raises(LabelwiseError, match="transform"):
        CalibratedModel(LogisticRegression(), object())
