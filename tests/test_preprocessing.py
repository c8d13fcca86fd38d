"""The preprocessing transformer: a scikit-learn citizen, the same map in memory and streamed."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_structlearn._streaming import RunningMoments
from sklearn_structlearn.preprocessing import Preprocessor


@parametrize_with_checks([Preprocessor()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("method", ["zca", "standardize", None])
def test_streamed_moments_give_the_fitted_map(method):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((600, 5)) @ rng.standard_normal((5, 5)) + 3.0
    fitted = Preprocessor(method).fit(X)
    moments = RunningMoments(5, full=method == "zca")
    for batch in np.array_split(X, 7):
        moments.update(batch)
    streamed = Preprocessor(method).fit_moments(moments.mean, moments.second_moment())
    assert_allclose(streamed.mean_, fitted.mean_, atol=1e-12)
    if method is None:
        assert streamed.matrix_ is None and fitted.matrix_ is None
        assert_array_equal(fitted.mean_, np.zeros(5))
    else:
        assert_allclose(streamed.matrix_, fitted.matrix_, rtol=1e-9, atol=1e-12)
    assert_allclose(streamed.transform(X), fitted.transform(X), atol=1e-9)


def test_zca_whitens_and_standardize_scales():
    rng = np.random.RandomState(1)
    X = rng.standard_normal((2000, 3)) @ np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0],
                                                     [0.0, 0.0, 3.0]])
    Z = Preprocessor("zca", zca_epsilon=1e-9).fit_transform(X)
    assert_allclose(np.cov(Z.T, bias=True), np.eye(3), atol=1e-6)
    S = Preprocessor("standardize").fit_transform(X)
    var = X.var(axis=0)
    assert_allclose(S.var(axis=0), var / (var + 0.01 * np.median(var)), rtol=1e-9)
    assert Preprocessor("zca").fit(X.astype(np.float32)).transform(
        X.astype(np.float32)).dtype == np.float32
