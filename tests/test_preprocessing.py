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


def _unit_data(seed=2):
    # largest absolute value exactly 1, so that data * s reach exactly s
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((400, 5)) @ rng.standard_normal((5, 5)) + 3.0
    return X / np.abs(X).max()


@pytest.mark.parametrize("method", ["standardize", "zca"])
@pytest.mark.parametrize("scale, dtype", [(1e-150, np.float64), (1e-30, np.float64),
                                          (1e-16, np.float64), (1e16, np.float64),
                                          (1e30, np.float64), (1e150, np.float64),
                                          (1e-35, np.float32), (1e-16, np.float32),
                                          (1e35, np.float32)])
def test_the_map_is_scale_free_over_the_supported_range(method, scale, dtype):
    # regression: an absolute "constant feature" threshold left standardized data at 1e-16
    # or 1e-30 centred but unscaled (outputs ~1e-16 of the unit-scale ones)
    X = _unit_data()
    expected = Preprocessor(method).fit_transform(X)
    Z = Preprocessor(method).fit_transform((X * scale).astype(dtype))
    assert Z.dtype == dtype
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    assert_allclose(Z, expected, atol=rtol * np.abs(expected).max())
    if method == "standardize":
        assert_allclose(Z.std(axis=0), expected.std(axis=0), rtol=1e-6 if rtol < 1e-6 else 1e-4)


@pytest.mark.parametrize("scale", [1e-150, 1e-16, 1.0, 1e16, 1e150])
def test_constant_features_are_only_centred_at_any_scale(scale):
    X = _unit_data() * scale
    X[:, 2] = 0.7 * scale  # constant
    Z = Preprocessor("standardize").fit_transform(X)
    assert np.all(np.abs(Z[:, 2]) <= 1e-10)  # centred (to rounding), not blown up
    reference = Preprocessor("standardize").fit(_unit_data()).matrix_
    assert_allclose(np.diag(Preprocessor("standardize").fit(X).matrix_)[[0, 1, 3, 4]] * scale,
                    np.diag(reference)[[0, 1, 3, 4]], rtol=1e-9)


@pytest.mark.parametrize("bad, dtype", [(1e151, np.float64), (1e-151, np.float64),
                                        (1e36, np.float32), (1e-36, np.float32)])
def test_out_of_range_data_are_refused(bad, dtype):
    # regression: standardize at 1e200 returned zeros, zca raised "Eigenvalues did not
    # converge"
    X = (_unit_data() * bad).astype(dtype)
    for method in ["standardize", "zca", None]:
        with pytest.raises(ValueError, match=r"outside the range .* supported for "):
            Preprocessor(method).fit(X)
    fitted = Preprocessor("zca").fit(_unit_data().astype(dtype))
    with pytest.raises(ValueError, match=r"outside the range .* supported for "):
        fitted.transform(X)
