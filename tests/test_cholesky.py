"""The dense factor helpers of the code solvers, against NumPy / SciPy, on every size path.

The solvers' tests (``test_encode.py``) check the codes they produce against the KKT
conditions and the duality gap; these check the pieces directly, so that a wrong
unrolled branch (odd or even sizes, the four-row blocks of the factorisation, the column
or row form of the back substitution, a deletion's rotations at extreme scales) fails
here, by name, whatever the solvers' stopping rules make of it.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import solve_triangular

from sklearn_structlearn._solvers._cholesky import (_COLUMN_BACKWARD_MAX, backward_solve,
                                                    cholesky_append, cholesky_delete,
                                                    cholesky_in_place, forward_solve)
from sklearn_structlearn._solvers._lasso import _duality_gap, _largest_violators
from sklearn_structlearn._solvers._select import insert_largest
from sklearn_structlearn.objective import code_duality_gap

# sizes around every branch: 0-9 (the two-unknown passes and their remainders, the
# four-row blocks of the factorisation), both sides of the back substitution's switch
SIZES = sorted({0, 1, 2, 3, 4, 5, 7, 8, 9, 17, 32, _COLUMN_BACKWARD_MAX,
                _COLUMN_BACKWARD_MAX + 1, _COLUMN_BACKWARD_MAX + 7})


def spd(m, rng, scale=1.0):
    """A well-conditioned symmetric positive definite m x m matrix."""
    B = rng.standard_normal((m, m + 5))
    return scale * (B @ B.T / (m + 5) + 0.1 * np.eye(m))


def in_buffer(M, extra=6):
    """M in the leading block of a larger buffer, as the kernels hold it; the rest is NaN
    so that a read outside the block shows."""
    m = M.shape[0]
    buf = np.full((m + extra, m + extra), np.nan)
    buf[:m, :m] = M
    return buf


def upper_factor(H):
    return np.linalg.cholesky(H).T


@pytest.mark.parametrize("m", SIZES)
def test_cholesky_in_place_is_the_upper_factor(m):
    rng = np.random.default_rng(m)
    H = spd(m, rng)
    buf = in_buffer(np.triu(H) + np.tril(np.full((m, m), np.nan), -1))  # upper triangle only
    assert cholesky_in_place(buf, m, np.empty(m))
    assert_allclose(np.triu(buf[:m, :m]), upper_factor(H) if m else np.zeros((0, 0)),
                    rtol=1e-12, atol=1e-12)
    assert np.isnan(buf[m:, :]).all() and np.isnan(buf[:, m:]).all()


def test_cholesky_in_place_refuses_an_indefinite_matrix():
    H = np.diag([1.0, 2.0, -1e-3, 4.0, 5.0])
    assert not cholesky_in_place(in_buffer(H), 5, np.empty(5))
    H = np.ones((6, 6))  # rank one: the second pivot is zero
    assert not cholesky_in_place(in_buffer(H), 6, np.empty(6))


@pytest.mark.parametrize("m", SIZES)
def test_triangular_solves_match_scipy(m):
    rng = np.random.default_rng(100 + m)
    U = upper_factor(spd(m, rng)) if m else np.zeros((0, 0))
    b = rng.standard_normal(m)
    buf = in_buffer(U)
    y = np.concatenate([b, [np.nan] * 3])
    forward_solve(buf, m, y)
    assert_allclose(y[:m], solve_triangular(U, b, trans="T") if m else b, rtol=1e-10,
                    atol=1e-12)
    z = np.concatenate([b, [np.nan] * 3])
    backward_solve(buf, m, z)
    assert_allclose(z[:m], solve_triangular(U, b) if m else b, rtol=1e-10, atol=1e-12)
    assert np.isnan(y[m:]).all() and np.isnan(z[m:]).all()


@pytest.mark.parametrize("m", [1, 2, 5, 8, 33])
def test_cholesky_append_grows_the_factor(m):
    rng = np.random.default_rng(200 + m)
    H = spd(m + 1, rng)
    buf = in_buffer(upper_factor(H[:m, :m]))
    assert cholesky_append(buf, m, H[:m, m].copy(), H[m, m], 1e-9 * H[m, m])
    assert_allclose(np.triu(buf[:m + 1, :m + 1]), upper_factor(H), rtol=1e-10, atol=1e-12)


def test_cholesky_append_floors_a_dependent_atom():
    # the new column is a copy of the first: the exact pivot is 0, raised to the floor
    H = spd(4, np.random.default_rng(0))
    column = H[:4, 0].copy()
    buf = in_buffer(upper_factor(H))
    assert not cholesky_append(buf, 4, column, H[0, 0], 1e-9 * H[0, 0])
    assert_allclose(buf[4, 4] ** 2, 1e-9 * H[0, 0], rtol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1e-290, 1e290])
@pytest.mark.parametrize("m,k", [(2, 0), (2, 1), (6, 0), (6, 3), (6, 5), (40, 17)])
def test_cholesky_delete_is_the_factor_without_the_row_and_column(m, k, scale):
    # the extreme scales take the rotations' guarded branch (np.hypot): their squares
    # would underflow or overflow
    rng = np.random.default_rng(300 + m + k)
    H = spd(m, rng, scale)
    buf = in_buffer(upper_factor(H))
    cholesky_delete(buf, m, k)
    keep = np.delete(np.arange(m), k)
    expected = upper_factor(H[np.ix_(keep, keep)]) if m > 1 else np.zeros((0, 0))
    assert_allclose(np.triu(buf[:m - 1, :m - 1]), expected, rtol=1e-10,
                    atol=1e-12 * np.sqrt(scale))
    assert np.isfinite(buf[:m - 1, :m - 1]).all()


@st.composite
def violator_problems(draw):
    K = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # rounded values: ties between atoms are common
    r = np.round(rng.standard_normal(K) * 2, draw(st.integers(0, 2)))
    where = np.where(rng.random(K) < 0.3, rng.integers(0, K, K), -1)
    gdiag = np.where(rng.random(K) < 0.1, 0.0, 1.0)
    alpha = draw(st.floats(0.0, 2.0))
    k = draw(st.integers(0, K + 2))
    return r, where, gdiag, alpha, k, draw(st.booleans())


@given(violator_problems())
def test_largest_violators_are_the_top_k(problem):
    r, where, gdiag, alpha, k, positive = problem
    K = r.size
    viol = np.full(K, np.nan)
    cand = np.full(K, -7, dtype=np.int64)
    n = _largest_violators(r, alpha, positive, where, gdiag, k, viol, cand)
    v = np.maximum(r, 0.0) if positive else np.abs(r)
    eligible = np.flatnonzero((v > alpha) & (where < 0) & (gdiag > 0))
    assert n == min(k, eligible.size)
    chosen = cand[:n]
    assert np.unique(chosen).size == n and np.isin(chosen, eligible).all()
    assert_array_equal(viol[:n], v[chosen])
    assert (np.diff(viol[:n]) <= 0).all()  # largest first
    # the values chosen are the n largest (ties may pick either atom)
    assert_array_equal(np.sort(v[chosen]), np.sort(v[eligible])[eligible.size - n:])


@njit
def _offer_all(values, k):
    kept = np.empty(k)
    items = np.empty(k, dtype=np.int64)
    n = 0
    for i in range(values.size):
        n = insert_largest(kept, items, n, k, values[i], i)
    return kept[:n], items[:n]


@given(st.lists(st.integers(-5, 5), max_size=30), st.integers(1, 8))
def test_insert_largest_keeps_the_k_largest_sorted(values, k):
    values = np.asarray(values, dtype=np.float64)  # small integers: many ties
    kept, items = _offer_all(values, k)
    n = min(k, values.size)
    assert_array_equal(kept, np.sort(values)[::-1][:n])
    assert_array_equal(values[items], kept)
    assert np.unique(items).size == n


@pytest.mark.parametrize("positive", [False, True])
def test_lasso_duality_gap_matches_the_objective_module(positive):
    rng = np.random.default_rng(5)
    D = rng.standard_normal((12, 9))
    x = rng.standard_normal(9)
    a = np.where(rng.random(12) < 0.4, rng.standard_normal(12), 0.0)
    if positive:
        a = np.abs(a)
    alpha = 0.7
    c = D @ x
    r = c - D @ D.T @ a
    gap, primal = _duality_gap(c, float(x @ x), a, r, alpha, positive)
    expected = code_duality_gap(x[None], D, a[None], alpha, 1, positive=positive)[0]
    assert_allclose(gap, expected, rtol=1e-10, atol=1e-12)
    residual = x - a @ D
    assert_allclose(primal, 0.5 * residual @ residual + alpha * np.abs(a).sum(), rtol=1e-12)
