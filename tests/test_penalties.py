"""The "auto" penalties: one rule per penalty, the same for a layer alone and in the learner."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import DeepStructureLearner, GroupSparseCodingLayer
from sklearn_structlearn.datasets import load_digits_images
from sklearn_structlearn._information import explained_variance, input_scale
from sklearn_structlearn.penalties import (
    AUTO_CONNECTIVITY_RATIO,
    AUTO_EXPLAINED_VARIANCE,
    AUTO_MAX_ACTIVE,
    AUTO_MAX_COMPONENTS,
    AUTO_SUBSAMPLE,
    alpha_for_explained_variance,
    auto_alpha,
    auto_connectivity_alpha,
    auto_n_components,
    auto_penalties,
    reference_sample,
    relative_alpha,
    relative_connectivity_alpha,
    rough_codes,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(dtype=np.float64)[0][:400]


@pytest.mark.parametrize("params", [dict(n_components=32, group_size=4, positive_code=False),
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


def _explained(X, alpha, n_components, group_size, seed, positive=False):
    sub, atoms = reference_sample(X, AUTO_SUBSAMPLE, n_components, np.random.RandomState(seed))
    codes = rough_codes(sub, atoms, alpha, group_size, positive)
    return explained_variance(sub, codes, atoms), np.count_nonzero(codes) / len(sub)


@pytest.mark.parametrize("group_size, positive", [(1, False), (1, True), (4, False)])
def test_auto_alpha_reaches_its_target(digits, group_size, positive):
    # the documented target: the codes on reference atoms explain AUTO_EXPLAINED_VARIANCE
    # of the variance, and a penalty a little larger explains less (the largest such
    # penalty, to the precision of the bisection); the active budget does not bind here
    # (non-negative codes need more atoms to explain 90%: 128)
    X = digits - digits.mean(axis=0)
    k = 128 if positive else 32
    alpha = auto_alpha(X, k, group_size, positive=positive, random_state=0)
    at, active = _explained(X, alpha, k, group_size, 0, positive)
    above, _ = _explained(X, alpha * 1.01, k, group_size, 0, positive)
    assert at >= AUTO_EXPLAINED_VARIANCE - 1e-3 and above < AUTO_EXPLAINED_VARIANCE + 2e-3
    assert active <= AUTO_MAX_ACTIVE


def test_auto_alpha_respects_the_active_budget():
    # isotropic inputs: explaining 90% needs many active units; a budget raises the
    # penalty until about that many units are active per row (auto_alpha applies the
    # budget AUTO_MAX_ACTIVE, which binds on whitened images)
    X = np.random.RandomState(0).standard_normal((600, 40))
    free = auto_penalties(X, 80, 1, max_active=None, random_state=0)[0]
    capped = auto_penalties(X, 80, 1, max_active=5, random_state=0)[0]
    assert capped > free
    _, active = _explained(X, capped, 80, 1, 0)
    assert active == pytest.approx(5, rel=0.1)
    # a budget that does not bind changes nothing
    assert auto_penalties(X, 80, 1, max_active=80, random_state=0)[0] == free


def test_alpha_for_explained_variance_brackets_the_target():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12))
    D = rng.standard_normal((48, 12))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    for target in (0.6, 0.9):
        alpha = alpha_for_explained_variance(X, D, target)
        assert explained_variance(X, rough_codes(X, D, alpha, 1), D) >= target - 1e-3
        assert explained_variance(X, rough_codes(X, D, 1.02 * alpha, 1), D) < target + 1e-2
    with pytest.raises(ValueError, match="target"):
        alpha_for_explained_variance(X, D, 1.0)


@pytest.mark.parametrize("n_features, n_samples, group_size, expected", [
    (64, 1257, 1, 512),             # 8 units per input
    (13, 142, 1, 71),               # the rows cap it: 142 // 2
    (784, 20000, 1, AUTO_MAX_COMPONENTS),  # the solvers cap it
    (784, None, 1, AUTO_MAX_COMPONENTS),   # rows unknown (online)
    (2, 10, 1, 16),                 # never below the minimum
    (13, 142, 4, 68),               # rounded down to whole groups
    (2, 10, 32, 32),                # at least one group
])
def test_auto_n_components(n_features, n_samples, group_size, expected):
    k = auto_n_components(n_features, n_samples, group_size)
    assert k == expected and k % group_size == 0


def test_auto_width_grows_with_the_input_and_is_what_the_estimators_use(digits):
    widths = [auto_n_components(p, 10**6) for p in (2, 4, 13, 30, 64, 128)]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        layer = GroupSparseCodingLayer(max_iter=1, random_state=0).fit(digits[:100])
        learner = DeepStructureLearner(max_iter=1, random_state=0).fit(digits[:100])
    assert layer.n_components_ == learner.layers_[0].n_components_ == 50  # 100 rows // 2


def test_relative_penalties_mean_the_same_at_any_scale(digits):
    X = digits - digits.mean(axis=0)
    assert relative_alpha(X, 0.2) == pytest.approx(0.2 * input_scale(X))
    assert relative_alpha(3 * X, 0.2) == pytest.approx(3 * relative_alpha(X, 0.2))
    lam = relative_connectivity_alpha(X, 0.04, 0.5, 32, 1, random_state=0)
    assert lam > 0 and relative_connectivity_alpha(X, 0.0, 0.5, 32, 1) == 0.0
    assert relative_connectivity_alpha(X, 0.08, 0.5, 32, 1, random_state=0) == pytest.approx(
        2 * lam)
    # the "auto" connectivity rule is the relative rule at AUTO_CONNECTIVITY_RATIO
    assert auto_connectivity_alpha(X, 0.5, 32, 1, random_state=0) == pytest.approx(
        relative_connectivity_alpha(X, AUTO_CONNECTIVITY_RATIO, 0.5, 32, 1, random_state=0))
    # a layer given relative penalties resolves the same absolute ones at any scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [GroupSparseCodingLayer(32, alpha=0.1, connectivity_alpha=0.04,
                                       penalty_scale="relative", max_iter=2,
                                       random_state=0).fit(scale * X)
                for scale in (1.0, 10.0)]
    assert fits[1].alpha_ == pytest.approx(10 * fits[0].alpha_)
    assert fits[1].connectivity_alpha_ == pytest.approx(100 * fits[0].connectivity_alpha_,
                                                         rel=1e-6)
    assert fits[0].alpha_ == pytest.approx(relative_alpha(X, 0.1))


def test_relative_alpha_is_reachable_by_grid_search_without_a_pre_fit(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    y = load_digits_images()[1][:400]
    pipe = make_pipeline(
        DeepStructureLearner(n_components=32, penalty_scale="relative", max_iter=2,
                             random_state=0),
        LogisticRegression(max_iter=200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"deepstructurelearner__alpha": [0.05, 0.3]}, cv=2)
        search.fit(digits, y)
    alphas = [search.best_estimator_[0].layers_[0].alpha_]
    assert search.best_params_["deepstructurelearner__alpha"] in (0.05, 0.3)
    assert alphas[0] > 0


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


def test_check_estimator_passes_in_full_on_the_issue_12_instances():
    # scikit-learn's own checks set n_components=1 in some checks: a layer with groups of 2
    # then gets one group of 2 units (it raised before); the learner with its defaults
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for estimator in (DeepStructureLearner(),
                          GroupSparseCodingLayer(n_components=8, group_size=2)):
            results = check_estimator(estimator, on_fail=None)
            failed = [r["check_name"] for r in results if r["status"] == "failed"]
            assert not failed, (type(estimator).__name__, failed)
    layer = GroupSparseCodingLayer(n_components=1, group_size=2, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        layer.fit(np.random.RandomState(0).standard_normal((20, 3)))
    assert layer.n_components_ == 2 and layer.n_groups_ == 1
