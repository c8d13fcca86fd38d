"""Numerical edge cases: tiny and degenerate data, extreme scales, dtypes and memory layouts,
penalties above ``alpha_max`` and non-convergence.

The code problem is homogeneous -- ``x -> s x`` and ``alpha -> s alpha`` give ``a -> s a`` --
so results at 1e+30 and 1e-30 scale are compared with the unit-scale results, not only
checked for finiteness.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import (
    DeepStructureLearner,
    GroupSparseCodingLayer,
    alpha_max,
    group_sparse_encode,
)
from sklearn_structlearn.datasets import make_planted_structure
from sklearn_structlearn.exceptions import ZeroCodesWarning
from sklearn_structlearn.objective import code_kkt_violation

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
SCALES = [1e30, 1e-30]
PREPROCESSINGS = ["zca", "standardize", None]


@pytest.fixture(scope="module")
def data():
    return make_planted_structure(n_samples=60, n_features=16, n_components=8, group_size=2,
                                  fan_in=4, active_groups=2, noise=0.05, random_state=0)


def _problem(seed=0, n=12, p=10, k=8):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, p))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.standard_normal((n, p)), D


def _layer(**params):
    return GroupSparseCodingLayer(**{"n_components": 8, "group_size": 2, "max_iter": 5,
                                     "random_state": 0, **params})


def _learner(**params):
    return DeepStructureLearner(**{"max_depth": 2, "n_components": 8, "group_size": 2,
                                   "max_iter": 3, "depth_tol": -np.inf, "random_state": 0,
                                   **params})


def _finite(Z, dtype=np.float64):
    assert Z.dtype == dtype
    assert np.all(np.isfinite(Z))
    return Z


# --------------------------------------------------------------------------- tiny / degenerate
def test_encode_one_sample_and_one_feature():
    X, D = _problem(n=1, p=1, k=4)
    alpha = 0.1 * alpha_max(X, D, 2)
    codes = _finite(group_sparse_encode(X, D, alpha=alpha, group_size=2))
    assert codes.shape == (1, 4)
    assert np.all(code_kkt_violation(X, D, codes, alpha, 2) <= 1e-6 * alpha)


@ignore_convergence
def test_layer_fits_one_sample():
    X, _ = _problem(n=1, p=10)
    layer = _layer().fit(X)
    Z = _finite(layer.transform(X))
    assert Z.shape == (1, 4)
    assert np.all(np.isfinite(layer.components_))


@ignore_convergence
def test_learner_with_one_sample_is_a_clear_error():
    X, _ = _problem(n=1)
    with pytest.raises(ValueError, match=r"1 sample.*minimum of 2"):
        _learner().fit(X)


@ignore_convergence
@pytest.mark.parametrize("preprocessing", PREPROCESSINGS)
def test_learner_fits_two_samples(preprocessing):
    X, _ = _problem(n=2)
    _finite(_learner(preprocessing=preprocessing).fit_transform(X))


@ignore_convergence
def test_one_feature(data):
    X = data.X[:, :1]
    _finite(_layer(n_components=2).fit_transform(X))
    for preprocessing in PREPROCESSINGS:
        learner = _learner(n_components=2, preprocessing=preprocessing).fit(X)
        _finite(learner.transform(X))


@pytest.mark.parametrize("value", [0.0, 3.0])
def test_constant_or_zero_data(value):
    X = np.full((20, 6), value)
    # nothing to learn: no warning of any kind, finite everything
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = _layer().fit(X)
        _finite(layer.transform(X))
    assert np.all(np.isfinite(layer.components_))
    for preprocessing in PREPROCESSINGS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            learner = _learner(preprocessing=preprocessing).fit(X)
        Z = _finite(learner.transform(X))
        if preprocessing is not None:  # centred: exactly zero inputs, exactly zero codes
            assert_array_equal(Z, 0.0)
        assert np.all(np.isfinite(learner.entropies_))


def test_all_zero_rows_give_zero_codes_without_warning():
    X, D = _problem()
    X[::2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = group_sparse_encode(X, D, alpha=0.1, group_size=2)
    assert_array_equal(codes[::2], 0.0)
    assert np.any(codes[1::2])


@ignore_convergence
def test_more_units_than_samples(data):
    X = data.X[:6]
    layer = _layer(n_components=32, group_size=4).fit(X)
    _finite(layer.transform(X))
    _finite(_learner(n_components=32, group_size=4).fit_transform(X))


# --------------------------------------------------------------------------- scale
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("group_size", [1, 2])
def test_encode_is_scale_equivariant(scale, dtype, group_size):
    X, D = _problem()
    alpha = 0.2 * alpha_max(X, D, group_size)
    reference = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, tol=1e-10)
    Xs, Ds = (X * scale).astype(dtype), D.astype(dtype)
    codes = _finite(group_sparse_encode(Xs, Ds, alpha=alpha * scale, group_size=group_size,
                                        tol=1e-10), dtype)
    rtol = 1e-8 if dtype == np.float64 else 1e-4
    assert_allclose(codes.astype(np.float64) / scale, reference,
                    atol=rtol * np.abs(reference).max())
    assert alpha_max(Xs, Ds, group_size) == pytest.approx(alpha_max(X, D, group_size) * scale,
                                                          rel=rtol)


@ignore_convergence
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_at_extreme_scale(data, scale, dtype):
    # regression: float32 codes of 1e+30 data overflowed to inf when pooled ("l2" squares
    # them), 1e-30 ones underflowed to 0
    # The layer objective is equivariant too when the connectivity penalty scales like the
    # data term (s^2). Tight code tolerance: codes solved to a relative gap of 1e-6 are only
    # accurate to ~1e-3 and the fit would follow the solver's stopping points, not the scale.
    params = dict(transform_tol=1e-12)
    reference = _layer(alpha=0.3, connectivity_alpha=0.01, **params).fit(data.X)
    X = (data.X * scale).astype(dtype)
    layer = _layer(alpha=0.3 * scale, connectivity_alpha=0.01 * scale**2, **params).fit(X)
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    assert_allclose(layer.components_, reference.components_, atol=rtol)
    for pooling in ["l2", "max", None]:
        layer.set_params(pooling=pooling)
        reference.set_params(pooling=pooling)
        Z = _finite(layer.transform(X), dtype)
        expected = reference.transform(data.X)
        assert_allclose(Z.astype(np.float64) / scale, expected,
                        atol=rtol * np.abs(expected).max())


@ignore_convergence
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("preprocessing", PREPROCESSINGS)
def test_learner_at_extreme_scale(data, scale, dtype, preprocessing):
    X = (data.X * scale).astype(dtype)
    learner = _learner(preprocessing=preprocessing).fit(X)
    Z = _finite(learner.transform(X), dtype)
    assert Z.shape == (X.shape[0], 4)
    assert np.all(np.isfinite(learner.entropies_))
    for layer in learner.layers_:
        assert np.isfinite(layer.alpha_) and np.isfinite(layer.connectivity_alpha_)
        assert np.all(np.isfinite(layer.components_))


# The edges of the supported magnitude range (``_validation.MAGNITUDE_RANGE``): data whose
# largest absolute value is exactly there give the unit-scale results; beyond, they are
# refused (tests/test_bad_input.py).
EDGES = [(1e150, np.float64), (1e-150, np.float64), (1e35, np.float32), (1e-35, np.float32)]


@ignore_convergence
@pytest.mark.parametrize("scale, dtype", EDGES)
def test_layer_at_the_edges_of_the_magnitude_range(data, scale, dtype):
    X1 = data.X / np.abs(data.X).max()
    params = dict(transform_tol=1e-12)
    reference = _layer(alpha=0.03, connectivity_alpha=1e-4, **params).fit(X1)
    X = (X1 * scale).astype(dtype)
    layer = _layer(alpha=0.03 * scale, connectivity_alpha=1e-4 * scale**2, **params).fit(X)
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    assert_allclose(layer.components_, reference.components_, atol=rtol)
    expected = reference.transform(X1)
    Z = _finite(layer.transform(X), dtype)
    assert_allclose(Z.astype(np.float64) / scale, expected, atol=rtol * np.abs(expected).max())


@ignore_convergence
@pytest.mark.parametrize("scale, dtype", EDGES + [(1e-16, np.float64), (1e-30, np.float32)])
@pytest.mark.parametrize("preprocessing", ["standardize", "zca"])
def test_learner_inputs_do_not_depend_on_the_scale(data, scale, dtype, preprocessing):
    # the preprocessing removes the scale: the layers see the unit-scale inputs (regression:
    # "standardize" stopped scaling data at 1e-16). With "zca", the fit itself amplifies
    # rounding (measured: a 1e-15 relative perturbation of these data moves the outputs by
    # ~4e-3; "Determinism" in doc/guarantees.rst), so it is compared on the layers' inputs.
    # The top outputs are compared on the lasso codes; the default feed-forward stack on
    # what its layers see (its second layer's fit amplifies the inputs' 1e-15 rounding to
    # ~5e-8 of the outputs, measured at 1e-16, as zca's fit does).
    X1 = data.X / np.abs(data.X).max()
    reference = _learner(preprocessing=preprocessing, transform_algorithm="lasso").fit(X1)
    X = (X1 * scale).astype(dtype)
    learner = _learner(preprocessing=preprocessing, transform_algorithm="lasso").fit(X)
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    inputs = reference.preprocessor_.transform(X1)
    assert_allclose(learner.preprocessor_.transform(X), inputs,
                    atol=rtol * np.abs(inputs).max())
    Z = _finite(learner.transform(X), dtype)
    if preprocessing == "standardize":
        expected = reference.transform(X1)
        assert_allclose(Z, expected, atol=(1e-9 if dtype == np.float64 else 1e-3)
                        * np.abs(expected).max())
        # the default stack: its second layer's inputs, the first layer's outputs
        default_reference = _learner(preprocessing=preprocessing).fit(X1)
        default = _learner(preprocessing=preprocessing).fit(X)
        expected = default_reference._forward(X1, 1)
        assert_allclose(_finite(default._forward(X, 1), dtype), expected,
                        atol=(1e-9 if dtype == np.float64 else 1e-3) * np.abs(expected).max())


# --------------------------------------------------------------------------- dtypes, layouts
@ignore_convergence
def test_integer_input_is_coded_as_float64(data):
    X_int = np.rint(data.X * 10).astype(np.int64)
    X_float = X_int.astype(np.float64)
    _, D = _problem(p=16)
    assert_array_equal(group_sparse_encode(X_int, D, alpha=1.0),
                       group_sparse_encode(X_float, D, alpha=1.0))
    layer = _layer().fit(X_int)
    assert_array_equal(_finite(layer.transform(X_int)), _layer().fit(X_float).transform(X_float))
    learner = _learner().fit(X_int)
    assert_array_equal(_finite(learner.transform(X_int)),
                       _learner().fit(X_float).transform(X_float))


@ignore_convergence
def test_float32_throughout(data):
    X32 = data.X.astype(np.float32)
    learner = _learner().fit(X32)
    assert _finite(learner.transform(X32), np.float32).shape == (60, 4)
    assert learner.fit_transform(X32).dtype == np.float32
    assert learner.transform(data.X).dtype == np.float64
    Z = learner._preprocess(X32)
    for layer in learner.layers_:  # float32 from layer to layer, not only at the end
        assert Z.dtype == np.float32
        Z = layer.transform(Z)
    _, D = _problem(p=16)
    assert group_sparse_encode(X32, D, alpha=0.5).dtype == np.float32
    assert group_sparse_encode(X32, D.astype(np.float32), alpha=0.5, group_size=2,
                               init=np.zeros((60, 8), np.float32)).dtype == np.float32


def _layouts(X, tmp_path):
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    read_only = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    assert not read_only.flags.writeable
    return {"fortran": np.asfortranarray(X), "memmap": read_only,
            "strided": np.repeat(X, 2, axis=1)[:, ::2]}


@ignore_convergence
def test_fortran_strided_and_read_only_memmap_inputs(data, tmp_path):
    X = data.X
    _, D = _problem(p=16)
    codes = group_sparse_encode(X, D, alpha=0.5, group_size=2)
    layer = _layer().fit(X)
    learner = _learner().fit(X)
    online = _layer(batch_size=20).fit(X)
    for name, X_other in _layouts(X, tmp_path).items():
        if name == "memmap":  # the same bytes in the same (C) order: the same results
            assert_same = assert_fit = assert_array_equal
        else:
            # another memory order may change BLAS summation order: rounding only for
            # codes; fits amplify rounding (see doc/guarantees.rst, n_jobs)
            def assert_same(actual, desired, err_msg):
                assert_allclose(actual, desired, rtol=1e-9, atol=1e-12, err_msg=err_msg)

            def assert_fit(actual, desired, err_msg):
                assert_allclose(actual, desired, rtol=0, atol=1e-4 * np.abs(desired).max(),
                                err_msg=err_msg)
        assert_same(group_sparse_encode(X_other, np.asfortranarray(D), alpha=0.5,
                                        group_size=2), codes, err_msg=name)
        assert_fit(_layer().fit(X_other).components_, layer.components_, err_msg=name)
        assert_same(layer.transform(X_other), layer.transform(X), err_msg=name)
        assert_same(layer.inverse_transform(np.asfortranarray(codes)),
                    layer.inverse_transform(codes), err_msg=name)
        assert_fit(_layer(batch_size=20).fit(X_other).components_, online.components_,
                   err_msg=name)
        assert_fit(_learner().fit(X_other).transform(X_other), learner.transform(X),
                   err_msg=name)
        # the caller's array is never written to
        assert_array_equal(X_other, X, err_msg=name)


# --------------------------------------------------------------------------- alpha_max
@pytest.mark.parametrize("group_size, positive", [(1, False), (2, False), (2, True)])
def test_alpha_above_alpha_max_gives_zero_codes_with_a_warning(group_size, positive):
    X, D = _problem()
    amax = alpha_max(X, D, group_size, positive)
    with pytest.warns(ZeroCodesWarning, match=r"alpha=.* is at or above alpha_max="):
        codes = group_sparse_encode(X, D, alpha=1.5 * amax, group_size=group_size,
                                    positive=positive)
    assert_array_equal(codes, 0.0)
    assert issubclass(ZeroCodesWarning, UserWarning)
    # just below alpha_max some code is on, and nothing warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = group_sparse_encode(X, D, alpha=0.99 * amax, group_size=group_size,
                                    positive=positive)
    assert np.any(codes)


def test_zero_codes_of_zero_data_do_not_warn():
    _, D = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(group_sparse_encode(np.zeros((3, 10)), D, alpha=5.0), 0.0)


@pytest.mark.parametrize("batch_size", [None, 20])
def test_layer_with_alpha_above_alpha_max_warns(data, batch_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(ZeroCodesWarning, match="GroupSparseCodingLayer"):
            layer = _layer(alpha=1e6, batch_size=batch_size).fit(data.X)
    assert_array_equal(_finite(layer.transform(data.X)), 0.0)
    assert np.all(np.isfinite(layer.components_))


# --------------------------------------------------------------------------- non-convergence
def test_non_convergence_warns_and_returns(data):
    X, D = _problem(n=20, p=30, k=24)
    alpha = 1e-3 * alpha_max(X, D, 2)
    with pytest.warns(ConvergenceWarning, match="group_sparse_encode"):
        codes = group_sparse_encode(X, D, alpha=alpha, group_size=2, max_iter=1, tol=0.0)
    _finite(codes)
    layer = _layer(alpha=0.05, max_iter=2, transform_max_iter=1, transform_tol=0.0)
    with pytest.warns(ConvergenceWarning):
        layer.fit(data.X)
    with pytest.warns(ConvergenceWarning, match="codes did not reach the relative duality gap"):
        _finite(layer.transform(data.X))
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1"):
        _learner(max_iter=1, max_depth=1).fit(data.X)


def test_tol_zero_terminates_at_max_iter():
    # tol=0 can never be met exactly: the iteration cap (not a hang) ends every solve
    X, D = _problem()
    alpha = 0.1 * alpha_max(X, D)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        codes = group_sparse_encode(X, D, alpha=alpha, tol=0.0, max_iter=50)
    assert np.all(code_kkt_violation(X, D, codes, alpha) <= 1e-8 * alpha)
