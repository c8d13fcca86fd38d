"""The "auto" penalties: one rule per penalty, the same for a layer alone and in the learner."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer
from sklearn_structlearn.datasets import load_digits_images
from sklearn_structlearn.objective import group_norms
from sklearn_structlearn.penalties import (
    AUTO_ACTIVE_FRACTION,
    AUTO_SUBSAMPLE,
    auto_alpha,
    auto_connectivity_alpha,
    reference_sample,
    rough_codes,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(dtype=np.float64)[0][:400]


@pytest.mark.parametrize("params", [dict(n_components=32, group_size=4),
                                    dict(n_components=24, group_size=1, positive_code=True)])
def test_a_layer_alone_and_in_the_learner_resolve_the_same_penalties(digits, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        learner = DeepStructureLearner(max_depth=1, max_iter=2, random_state=0,
                                       **params).fit(digits)
        first = learner.layers_[0]
        # the same data (the learner's preprocessed inputs) and the same seed
        layer = GroupSparseCodingLayer(max_iter=2, random_state=first.random_state,
                                       **params).fit(learner._preprocess(digits))
    assert first.alpha == "auto" and first.connectivity_alpha == "auto"  # passed on
    assert layer.alpha_ == first.alpha_
    assert layer.connectivity_alpha_ == first.connectivity_alpha_
    assert np.array_equal(layer.components_, first.components_)


def _active_fraction(X, alpha, n_components, group_size, seed):
    sub, atoms = reference_sample(X, AUTO_SUBSAMPLE, n_components, np.random.RandomState(seed))
    codes = rough_codes(sub, atoms, alpha, group_size)
    return (group_norms(codes, group_size) > 0).mean()


@pytest.mark.parametrize("group_size", [1, 4])
def test_auto_alpha_reaches_its_target(digits, group_size):
    # the documented target: reference atoms activate AUTO_ACTIVE_FRACTION of the groups
    # (the bisection stops within 2**-12 of a decade in log scale of the boundary)
    X = digits - digits.mean(axis=0)
    alpha = auto_alpha(X, 32, group_size, random_state=0)
    assert _active_fraction(X, alpha * 1.01, 32, group_size, 0) <= AUTO_ACTIVE_FRACTION
    assert _active_fraction(X, alpha * 0.99, 32, group_size, 0) > AUTO_ACTIVE_FRACTION


def test_auto_alpha_caps_the_active_units_at_half_the_inputs():
    # 64 units on 8 inputs: 25% of the units active would be twice the inputs; the
    # target becomes 0.5 * 8 / 64 of the groups
    X = np.random.RandomState(0).standard_normal((600, 8))
    alpha = auto_alpha(X, 64, 1, random_state=0)
    assert _active_fraction(X, alpha * 1.01, 64, 1, 0) <= 0.5 * 8 / 64
    assert _active_fraction(X, alpha * 0.99, 64, 1, 0) > 0.5 * 8 / 64


def test_rules_scale_with_the_data_and_handle_zero_inputs():
    X = np.random.RandomState(1).standard_normal((300, 12))
    alpha = auto_alpha(X, 16, 2, random_state=0)
    assert auto_alpha(5 * X, 16, 2, random_state=0) == pytest.approx(5 * alpha, rel=1e-6)
    lam = auto_connectivity_alpha(X, alpha, 16, 2, random_state=0)
    assert auto_connectivity_alpha(5 * X, 5 * alpha, 16, 2, random_state=0) == pytest.approx(
        25 * lam, rel=1e-6)
    zeros = np.zeros((50, 6))
    assert auto_alpha(zeros, 4, 2, random_state=0) == 1.0
    assert auto_connectivity_alpha(zeros, 1.0, 4, 2, random_state=0) == 0.0
