"""Property-based tests (hypothesis) of ``group_sparse_encode`` and the layer over shapes,
dtypes, group sizes, penalties and data scales.

Properties, for every drawn problem: outputs of the right shape and dtype, finite; the KKT
conditions of the code problem hold (``objective.code_kkt_violation``) for every row the
solver reports as solved; the solution transforms as the problem does (scaling, permuting
rows, permuting groups). ``test_encode.py`` has the basic shape/finiteness property at the
default tolerance; here the tolerance is tight so the KKT check is sharp.
"""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import GroupSparseCodingLayer, alpha_max, group_sparse_encode
from sklearn_structlearn._groups import pool_codes
from sklearn_structlearn._solvers._encode import solve_codes
from sklearn_structlearn.exceptions import ZeroCodesWarning
from sklearn_structlearn.objective import code_kkt_violation

TOL = 1e-12  # relative duality gap asked of the solver in these tests


@st.composite
def code_problems(draw, dtypes=(np.float64, np.float32)):
    group_size = draw(st.integers(1, 4))
    n_groups = draw(st.integers(1, 5))
    n_samples = draw(st.integers(1, 8))
    n_features = draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-30, 1e-3, 1.0, 1e3, 1e30]))
    X = rng.standard_normal((n_samples, n_features)) * scale
    if draw(st.booleans()):
        X[rng.integers(n_samples)] = 0.0  # an all-zero row
    D = rng.standard_normal((n_groups * group_size, n_features))
    if draw(st.booleans()):
        D *= rng.uniform(0.1, 10.0, size=(D.shape[0], 1))  # atoms of unequal norms
    if draw(st.booleans()):
        D[rng.integers(D.shape[0])] = 0.0  # a dead atom
    positive = draw(st.booleans())
    dtype = draw(st.sampled_from(dtypes))
    if draw(st.booleans()):
        X = np.asfortranarray(X)
    fraction = draw(st.sampled_from([1e-2, 0.1, 0.5, 0.9, 1.5]))
    X, D = X.astype(dtype), D.astype(dtype)
    alpha = fraction * alpha_max(X, D, group_size, positive)
    return X, D, float(alpha), group_size, positive


def _encode(X, D, alpha, group_size, positive, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ZeroCodesWarning)
        return group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                   tol=TOL, **kwargs)


def _kkt_scale(X, D, alpha):
    X64, D64 = np.asarray(X, np.float64), np.asarray(D, np.float64)
    return np.abs(X64 @ D64.T).max() + alpha + 1e-300


@settings(max_examples=40)
@given(problem=code_problems())
def test_encode_outputs_and_kkt(problem):
    X, D, alpha, group_size, positive = problem
    codes = _encode(X, D, alpha, group_size, positive)
    assert codes.shape == (X.shape[0], D.shape[0])
    assert codes.dtype == X.dtype
    assert np.all(np.isfinite(codes))
    if positive:
        assert np.all(codes >= 0)
    # groups switch on and off as a whole only in the sense of the group norm; dead atoms
    # (zero rows of D) never get a code
    assert_array_equal(codes[:, ~np.any(D != 0, axis=1)], 0.0)
    assert_array_equal(codes[~np.any(X != 0, axis=1)], 0.0)
    _, _, gaps, primals = solve_codes(np.ascontiguousarray(X), D, alpha, group_size, positive,
                                      None, 1000, TOL)
    solved = gaps <= TOL * primals
    kkt = code_kkt_violation(np.asarray(X, np.float64), np.asarray(D, np.float64), codes,
                             alpha, group_size, positive)
    # float64: the solver's certificate at TOL gives a KKT violation at rounding level of the
    # data scale; float32 data are coded in float64 but the codes are rounded to float32
    bound = (1e-6 if X.dtype == np.float64 else 1e-2) * _kkt_scale(X, D, alpha)
    assert np.all(kkt[solved] <= bound), (kkt[solved].max(), bound)
    if X.dtype == np.float64 and np.all(np.isfinite(X)) and np.abs(X).max() > 1e-20:
        # every float64 problem of this size is solved to TOL within max_iter
        assert np.all(solved), (gaps / primals).max()


@settings(max_examples=30)
@given(problem=code_problems(dtypes=(np.float64,)),
       factor=st.sampled_from([1e-20, 1e-3, 7.0, 1e20]))
def test_encode_is_scale_equivariant(problem, factor):
    # min 1/2||x - D^T a||^2 + alpha sum||a_g||: x -> s x, alpha -> s alpha gives a -> s a
    X, D, alpha, group_size, positive = problem
    codes = _encode(X, D, alpha, group_size, positive)
    scaled = _encode(X * factor, D, alpha * factor, group_size, positive)
    assert np.all(np.isfinite(scaled))
    assert_allclose(scaled / factor, codes, rtol=0, atol=1e-6 * (np.abs(codes).max() + 1e-300)
                    + 1e-6 * _kkt_scale(X, D, alpha) / max(np.abs(D).max() ** 2, 1e-300))


@settings(max_examples=30)
@given(problem=code_problems(dtypes=(np.float64,)), seed=st.integers(0, 1000))
def test_encode_commutes_with_permutations(problem, seed):
    X, D, alpha, group_size, positive = problem
    rng = np.random.default_rng(seed)
    codes = _encode(X, D, alpha, group_size, positive)
    atol = 1e-6 * (np.abs(codes).max() + 1e-300)
    rows = rng.permutation(X.shape[0])
    assert_allclose(_encode(X[rows], D, alpha, group_size, positive), codes[rows], rtol=0,
                    atol=atol)
    n_groups = D.shape[0] // group_size
    groups = rng.permutation(n_groups)
    atoms = (groups[:, None] * group_size + np.arange(group_size)).ravel()
    assert_allclose(_encode(X, D[atoms], alpha, group_size, positive), codes[:, atoms], rtol=0,
                    atol=atol)


@settings(max_examples=30)
@given(problem=code_problems())
def test_alpha_max_is_the_zero_threshold(problem):
    X, D, _, group_size, positive = problem
    amax = alpha_max(X, D, group_size, positive)
    assert np.isfinite(amax) and amax >= 0
    if amax == 0:
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codes = group_sparse_encode(X, D, alpha=amax * (1 + 1e-6), group_size=group_size,
                                    positive=positive)
    assert_array_equal(codes, 0.0)
    assert any(w.category is ZeroCodesWarning for w in caught)
    below = _encode(X, D, amax * 0.5, group_size, positive)
    assert np.any(below != 0)


@st.composite
def layer_problems(draw):
    group_size = draw(st.integers(1, 3))
    n_components = group_size * draw(st.integers(1, 4))
    n_samples = draw(st.integers(1, 25))
    n_features = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n_samples, n_features)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    params = dict(
        n_components=n_components,
        group_size=group_size,
        alpha=draw(st.sampled_from(["auto", 0.1, 1.0])),
        connectivity_alpha=draw(st.sampled_from(["auto", 0.0, 0.05])),
        pooling=draw(st.sampled_from(["l2", "max", None])),
        positive_code=draw(st.booleans()),
        batch_size=draw(st.sampled_from([None, 7])),
        max_iter=3,
        random_state=0,
    )
    return X.astype(dtype), params


@settings(max_examples=25)
@given(problem=layer_problems())
def test_layer_outputs_and_kkt(problem):
    X, params = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ZeroCodesWarning)
        layer = GroupSparseCodingLayer(**params).fit(X)
        Z = layer.transform(X)
        codes = layer.encode(X)
    n_groups = params["n_components"] // params["group_size"]
    width = params["n_components"] if params["pooling"] is None else n_groups
    assert Z.shape == (X.shape[0], width) and Z.dtype == X.dtype
    assert codes.shape == (X.shape[0], params["n_components"]) and codes.dtype == X.dtype
    D = layer.components_
    assert D.shape == (params["n_components"], X.shape[1])
    for array in (Z, codes, D):
        assert np.all(np.isfinite(array))
    assert np.all(np.linalg.norm(D, axis=1) <= 1 + 1e-9)
    assert_array_equal(layer.connectivity_, D != 0)
    assert np.isfinite(layer.alpha_) and layer.alpha_ >= 0
    assert np.isfinite(layer.connectivity_alpha_) and layer.connectivity_alpha_ >= 0
    assert np.all(np.isfinite(layer.objective_history_))
    assert_array_equal(Z, pool_codes(codes, params["group_size"], params["pooling"]))
    if params["positive_code"]:
        assert np.all(codes >= 0)
    # the layer's codes are the solutions of the code problem on its own dictionary
    kkt = code_kkt_violation(np.asarray(X, np.float64), D, codes, layer.alpha_,
                             params["group_size"], params["positive_code"])
    scale = _kkt_scale(X, D, layer.alpha_)
    assert np.all(kkt <= (2e-2 if X.dtype == np.float32 else 1e-2) * scale), kkt.max() / scale
    reconstruction = layer.inverse_transform(codes)
    assert reconstruction.shape == X.shape and reconstruction.dtype == X.dtype
    assert np.all(np.isfinite(reconstruction))
