"""Tests of the code solver (``group_sparse_encode`` and the kernel driver ``solve_codes``).

Correctness is defined by the problem, not by the solver: every test checks the KKT
conditions / duality gap written in ``objective.py``, or compares with an independent
solver (a slow NumPy FISTA written here, and scikit-learn's lasso for group_size=1).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import alpha_max, group_sparse_encode
from sklearn_structlearn._solvers._encode import solve_codes
from sklearn_structlearn.datasets import make_planted_structure
from sklearn_structlearn.objective import (
    code_duality_gap,
    code_kkt_violation,
    code_objective,
)

GROUP_SIZES = [1, 2, 3, 4]


# --------------------------------------------------------------------------- references
def _group_prox(v, threshold, group_size, positive):
    """Group soft-threshold of every contiguous block of ``v`` (plain NumPy)."""
    if positive:
        v = np.maximum(v, 0.0)
    blocks = v.reshape(-1, group_size)
    norms = np.linalg.norm(blocks, axis=1, keepdims=True)
    scale = np.maximum(1.0 - threshold / np.where(norms > 0, norms, 1.0), 0.0)
    return (blocks * scale).ravel()


def fista_reference(X, D, alpha, group_size=1, positive=False, n_iter=1500):
    """Accelerated proximal gradient, one sample at a time: slow and obviously right.

    Step ``1 / L`` with ``L = ||D D^T||_2`` (the Lipschitz constant of the gradient
    ``D (D^T a - x)``), restart whenever the objective goes up (keeps FISTA monotone).
    """
    G = D @ D.T
    L = np.linalg.eigvalsh(G)[-1]
    codes = np.zeros((X.shape[0], D.shape[0]))

    def objective(a, x):  # code_objective for one row, without its input conversions
        residual = x - a @ D
        return 0.5 * residual @ residual + alpha * np.sqrt(
            (a.reshape(-1, group_size) ** 2).sum(axis=1)).sum()

    for i, x in enumerate(X):
        c = D @ x
        a = np.zeros(D.shape[0])
        y, t, f_old = a.copy(), 1.0, objective(a, x)
        for _ in range(n_iter):
            a_new = _group_prox(y - (G @ y - c) / L, alpha / L, group_size, positive)
            f_new = objective(a_new, x)
            if f_new > f_old:  # restart: plain proximal step from a
                t, y = 1.0, a
                continue
            t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
            y = a_new + (t - 1) / t_new * (a_new - a)
            a, t, f_old = a_new, t_new, f_new
        codes[i] = a
    return codes


def assert_kkt(X, D, codes, alpha, group_size, positive, rtol):
    """KKT violation below ``rtol * alpha`` and non-negativity, for every row."""
    X64, D64 = np.asarray(X, dtype=np.float64), np.asarray(D, dtype=np.float64)
    kkt = code_kkt_violation(X64, D64, codes, alpha, group_size, positive)
    assert np.all(kkt <= rtol * alpha), (kkt.max(), rtol * alpha)
    if positive:
        assert np.all(codes >= 0)


def assert_gap(X, D, codes, alpha, group_size, positive, rtol):
    X64, D64 = np.asarray(X, dtype=np.float64), np.asarray(D, dtype=np.float64)
    gap = code_duality_gap(X64, D64, codes, alpha, group_size, positive)
    objective = code_objective(X64, D64, codes, alpha, group_size)
    assert np.all(gap >= -1e-12 * objective)  # weak duality: a sanity check of the setup
    assert np.all(gap <= rtol * objective), (gap / objective).max()


def planted(group_size, positive, seed=0):
    data = make_planted_structure(
        n_samples=12, n_features=24, n_components=4 * group_size, group_size=group_size,
        fan_in=6, active_groups=2, noise=0.05, positive=positive, random_state=seed)
    return data.X, data.dictionary


# --------------------------------------------------------------------------- optimality
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.8])
def test_kkt_and_gap_on_random_problems(make_problem, group_size, positive, fraction):
    rng = np.random.default_rng(group_size)
    X, D = make_problem(rng, n_samples=10, n_features=12, n_components=4 * group_size)
    alpha = fraction * alpha_max(X, D, group_size, positive)
    # the default tolerance: the certificate the solver stops on
    codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive)
    assert_gap(X, D, codes, alpha, group_size, positive, rtol=1e-6)
    # a tight tolerance: the KKT conditions hold to rounding level
    codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                tol=1e-12)
    assert_kkt(X, D, codes, alpha, group_size, positive, rtol=1e-6)
    assert_gap(X, D, codes, alpha, group_size, positive, rtol=1e-10)


@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("positive", [False, True])
def test_kkt_and_gap_on_planted_problems(group_size, positive):
    X, D = planted(group_size, positive)
    for fraction in (0.02, 0.2):
        alpha = fraction * alpha_max(X, D, group_size, positive)
        codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size,
                                    positive=positive, tol=1e-12)
        assert_kkt(X, D, codes, alpha, group_size, positive, rtol=1e-6)
        assert_gap(X, D, codes, alpha, group_size, positive, rtol=1e-10)
        assert np.any(codes != 0)


@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("positive", [False, True])
def test_float32_codes_are_float32_and_nearly_optimal(make_problem, group_size, positive):
    rng = np.random.default_rng(10 + group_size)
    X, D = make_problem(rng, n_samples=10, n_features=12, n_components=4 * group_size)
    X32, D32 = X.astype(np.float32), D.astype(np.float32)
    alpha = 0.2 * alpha_max(X32, D32, group_size, positive)
    codes = group_sparse_encode(X32, D32, alpha=alpha, group_size=group_size,
                                positive=positive)
    assert codes.dtype == np.float32
    # optimality of the float32 problem data, up to float32 rounding of the products
    assert_kkt(X32, D32, codes, alpha, group_size, positive, rtol=1e-4)
    assert_gap(X32, D32, codes, alpha, group_size, positive, rtol=1e-5)
    codes64 = group_sparse_encode(X32.astype(np.float64), D32.astype(np.float64), alpha=alpha,
                                  group_size=group_size, positive=positive)
    assert_allclose(codes, codes64, atol=1e-4 * np.abs(codes64).max())


def test_gap_reported_by_the_driver_is_the_true_gap(make_problem, rng):
    # the kernel's O(K) gap from r = c - G a must agree with the O(p) formula
    X, D = make_problem(rng, n_samples=6, n_features=10, n_components=6)
    alpha = 0.3 * alpha_max(X, D, 2)
    codes, n_iter, gaps, primals = solve_codes(X, D, alpha, group_size=2, max_iter=2)
    assert_allclose(primals, code_objective(X, D, codes, alpha, 2), rtol=1e-10)
    assert_allclose(gaps, code_duality_gap(X, D, codes, alpha, 2), rtol=1e-6,
                    atol=1e-10 * primals.max())
    assert np.all(n_iter <= 2)


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("group_size", [1, 2, 3])
@pytest.mark.parametrize("positive", [False, True])
def test_matches_fista_reference(make_problem, group_size, positive):
    rng = np.random.default_rng(20 + group_size)
    X, D = make_problem(rng, n_samples=4, n_features=10, n_components=2 * group_size + 2
                        if group_size == 1 else 3 * group_size)
    alpha = 0.25 * alpha_max(X, D, group_size, positive)
    codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                tol=1e-12)
    reference = fista_reference(X, D, alpha, group_size, positive)
    ours = code_objective(X, D, codes, alpha, group_size)
    theirs = code_objective(X, D, reference, alpha, group_size)
    assert_allclose(ours, theirs, rtol=1e-6)
    assert np.all(ours <= theirs * (1 + 1e-9))  # the exact solver is never worse
    # n_components <= n_features: strongly convex, so the minimiser itself is unique
    assert_allclose(codes, reference, atol=1e-5)


@pytest.mark.parametrize("positive", [False, True])
def test_group_size_one_matches_sklearn_lasso(make_problem, positive):
    rng = np.random.default_rng(3)
    X, D = make_problem(rng, n_samples=10, n_features=15, n_components=8)
    alpha = 0.2 * alpha_max(X, D, 1, positive)
    codes = group_sparse_encode(X, D, alpha=alpha, positive=positive, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, positive=positive,
                                 max_iter=10000)
    ours = code_objective(X, D, codes, alpha)
    theirs = code_objective(X, D, expected, alpha)
    assert_allclose(ours, theirs, rtol=1e-6)
    assert np.all(ours <= theirs * (1 + 1e-9))
    assert_allclose(codes, expected, atol=1e-4)
    assert_array_equal(codes == 0, np.abs(expected) < 1e-8)


# --------------------------------------------------------------------------- warm starts, threads
@pytest.mark.parametrize("group_size", [1, 2, 4])
@pytest.mark.parametrize("positive", [False, True])
def test_warm_start_gives_the_same_solution(make_problem, group_size, positive):
    rng = np.random.default_rng(30 + group_size)
    X, D = make_problem(rng, n_samples=8, n_features=12, n_components=3 * group_size)
    alpha = 0.2 * alpha_max(X, D, group_size, positive)
    kw = dict(alpha=alpha, group_size=group_size, positive=positive, tol=1e-12)
    cold = group_sparse_encode(X, D, **kw)
    # from far away (negative entries are clipped when positive)
    init = 3 * rng.standard_normal(cold.shape)
    warm = group_sparse_encode(X, D, init=init, **kw)
    assert_allclose(warm, cold, atol=1e-7)
    assert_array_equal(warm == 0, cold == 0)
    # from the solution itself: nothing to do, the codes come back unchanged
    codes, n_iter, _, _ = solve_codes(X, D, alpha, group_size, positive, init=cold, tol=1e-6)
    assert_array_equal(codes, cold)
    assert np.all(n_iter == 0)
    # init is not modified
    init_copy = init.copy()
    group_sparse_encode(X, D, init=init, **kw)
    assert_array_equal(init, init_copy)


@pytest.mark.parametrize("group_size", [1, 3])
def test_one_or_two_threads_give_the_same_codes(make_problem, group_size):
    rng = np.random.default_rng(4)
    X, D = make_problem(rng, n_samples=97, n_features=12, n_components=6 * group_size)
    alpha = 0.1 * alpha_max(X, D, group_size)
    one = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, n_jobs=1)
    two = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, n_jobs=2)
    assert_allclose(one, two, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("group_size", GROUP_SIZES)
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_at_least_alpha_max_gives_zero_codes(make_problem, group_size, positive, dtype):
    rng = np.random.default_rng(40 + group_size)
    X, D = make_problem(rng, n_samples=9, n_features=10, n_components=3 * group_size)
    X, D = X.astype(dtype), D.astype(dtype)
    amax = alpha_max(X, D, group_size, positive)
    assert amax > 0
    # alpha_max is computed in float64; the float32 solver sees float32 products, which
    # move its own threshold by float32 rounding: a margin above it
    margin = 1e-9 if dtype == np.float64 else 1e-5
    for alpha in (amax, amax * (1 + margin), 1.5 * amax, 100 * amax):
        codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size,
                                    positive=positive)
        assert_array_equal(codes, 0.0)
    # also from a non-zero warm start, which the solver must drive exactly to zero
    init = rng.standard_normal((9, 3 * group_size))
    for alpha in (amax * (1 + margin), 1.5 * amax):
        codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size,
                                    positive=positive, init=init)
        assert_array_equal(codes, 0.0)
    # and just below, some group switches on
    codes = group_sparse_encode(X, D, alpha=0.99 * amax, group_size=group_size,
                                positive=positive)
    assert np.any(codes != 0)


@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("n_components", [6, 16])
def test_alpha_zero_is_least_squares(make_problem, group_size, n_components):
    rng = np.random.default_rng(5)
    X, D = make_problem(rng, n_samples=5, n_features=10, n_components=n_components)
    with warnings.catch_warnings():
        # the duality gap is useless at alpha = 0 (the dual feasible set is {D theta = 0}):
        # the solver must still recognise the solution instead of running max_iter and warning
        warnings.simplefilter("error", ConvergenceWarning)
        codes = group_sparse_encode(X, D, alpha=0.0, group_size=group_size, tol=1e-10)
    # KKT at alpha = 0: the normal equations D (x - D^T a) = 0
    assert_allclose((X - codes @ D) @ D.T, 0.0, atol=1e-8)
    if n_components <= X.shape[1]:  # full column rank: the unique least-squares solution
        lstsq = np.linalg.lstsq(D.T, X.T, rcond=None)[0].T
        assert_allclose(codes, lstsq, atol=1e-8)
    else:  # D^T is onto: exact reconstruction
        assert_allclose(codes @ D, X, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alpha_zero_positive_is_nonnegative_least_squares(make_problem, dtype):
    rng = np.random.default_rng(8)
    X, D = make_problem(rng, n_samples=6, n_features=10, n_components=6)
    X, D = X.astype(dtype), D.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        codes = group_sparse_encode(X, D, alpha=0.0, group_size=2, positive=True)
    assert codes.dtype == dtype
    assert np.all(codes >= 0) and np.any(codes == 0) and np.any(codes > 0)
    # KKT of NNLS: zero gradient on the support, gradient pointing out of the orthant off it
    atol = 1e-8 if dtype == np.float64 else 1e-4
    X64, D64 = X.astype(np.float64), D.astype(np.float64)
    assert np.all(code_kkt_violation(X64, D64, codes, 0.0, 1, positive=True) <= atol)


def test_alpha_zero_converges_without_warning(make_problem, rng):
    X, D = make_problem(rng, n_samples=5, n_features=10, n_components=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        codes, n_iter, gaps, primals = solve_codes(X, D, 0.0, group_size=2)
        group_sparse_encode(X, D, alpha=0.0, group_size=2)
    assert np.all(n_iter < 1000)


@pytest.mark.parametrize("group_size", [1, 2, 4])
@pytest.mark.parametrize("positive", [False, True])
def test_zero_rows_give_zero_codes(make_problem, group_size, positive):
    rng = np.random.default_rng(6)
    X, D = make_problem(rng, n_samples=7, n_features=9, n_components=2 * group_size)
    X[[0, 3, 6]] = 0.0
    for init in (None, rng.standard_normal((7, 2 * group_size))):
        for alpha in (0.0, 0.1):
            codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size,
                                        positive=positive, init=init)
            assert_array_equal(codes[[0, 3, 6]], 0.0)
            assert np.any(codes[[1, 2, 4, 5]] != 0)


@pytest.mark.parametrize("group_size", [1, 2, 3])
@pytest.mark.parametrize("positive", [False, True])
def test_dead_atoms_get_zero_codes(make_problem, group_size, positive):
    rng = np.random.default_rng(7)
    K = 4 * group_size
    X, D = make_problem(rng, n_samples=10, n_features=12, n_components=K)
    # a whole dead group, and (group_size > 1) one dead atom inside a live group
    dead = list(range(group_size)) + [K - 1]
    D[dead] = 0.0
    alpha = 0.05 * alpha_max(X, D, group_size, positive)
    codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                tol=1e-12)
    assert_array_equal(codes[:, dead], 0.0)
    assert np.any(codes != 0)
    assert_kkt(X, D, codes, alpha, group_size, positive, rtol=1e-6)
    # a warm start carrying codes on a wholly dead group (atoms that died since)
    init = rng.standard_normal(codes.shape)
    codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size, positive=positive,
                                init=init)
    assert_array_equal(codes[:, :group_size], 0.0)


def test_dead_atom_in_live_group_gets_zero_code_from_warm_start(make_problem):
    # its only optimal code is 0, and prox steps would only shrink a warm-start value
    rng = np.random.default_rng(1)
    X, D = make_problem(rng, n_samples=30, n_features=15, n_components=12, normalize=False)
    D[7] = 0.0
    init = rng.standard_normal((30, 12))
    codes = group_sparse_encode(X, D, alpha=1.0, group_size=3, init=init)
    assert_array_equal(codes[:, 7], 0.0)


@pytest.mark.parametrize("group_size", [1, 2, 3, 4])
def test_coherent_overcomplete_dictionaries(group_size):
    # atoms = normalised data rows of planted data (how the layer initialises its
    # dictionary): over-complete, rank-deficient Gram matrix, many nearly parallel atoms,
    # restricted Hessians that fail their Cholesky factorisation (the fallback path)
    K = 24
    for seed in range(6):
        d = make_planted_structure(n_samples=40, n_features=20,
                                   n_components=8 if group_size != 3 else 9,
                                   group_size=group_size, fan_in=5, active_groups=1,
                                   noise=0.01, random_state=seed)
        D = d.X[:K] / np.linalg.norm(d.X[:K], axis=1, keepdims=True)
        alpha = 0.2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            codes = group_sparse_encode(d.X, D, alpha=alpha, group_size=group_size)
        assert np.all(np.isfinite(codes)), seed
        objective = code_objective(d.X, D, codes, alpha, group_size)
        assert np.all(objective <= 0.5 * np.sum(d.X**2, axis=1)), seed
        # (the solver's own gap test is at tol=1e-6; a little slack for rounding)
        assert_gap(d.X, D, codes, alpha, group_size, False, rtol=2e-6)


def test_nonfinite_result_is_never_silent(monkeypatch, make_problem, rng):
    # whatever goes wrong in the kernel, NaN gaps must be reported, not pass as converged
    from sklearn_structlearn import encoding as encoding_module

    X, D = make_problem(rng, n_samples=3, n_features=6, n_components=4)

    def broken_solver(X, dictionary, alpha, group_size, positive, init, max_iter, tol):
        n, K = X.shape[0], dictionary.shape[0]
        return (np.full((n, K), np.nan), np.full(n, max_iter), np.full(n, np.nan),
                np.full(n, np.nan))

    monkeypatch.setattr(encoding_module, "solve_codes", broken_solver)
    with pytest.warns(ConvergenceWarning):
        group_sparse_encode(X, D, alpha=0.1)


@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_float32_overcomplete_dictionary_with_small_alpha(group_size):
    # regression: a float32-rounded Gram matrix of an over-complete dictionary has negative
    # eigenvalues, along which the Gram-form objective is unbounded below for small alpha
    for seed in range(8):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((5, 4)).astype(np.float32)
        D = rng.standard_normal((16, 4)).astype(np.float32)
        alpha = 1e-3 * alpha_max(X, D, group_size)
        X64, D64 = X.astype(np.float64), D.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size)
        # as good as the float64 solution, up to float32 rounding
        reference = group_sparse_encode(X64, D64, alpha=alpha, group_size=group_size)
        objective = code_objective(X64, D64, codes, alpha, group_size)
        assert np.all(objective <= 0.5 * np.sum(X64**2, axis=1)), seed
        reference = code_objective(X64, D64, reference, alpha, group_size)
        assert np.all(objective <= reference + 1e-5 * np.sum(X64**2, axis=1)), seed


@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_small_alpha_overcomplete_problems_converge(group_size):
    # 16 atoms in 4-d, alpha = alpha_max / 1000: supports larger than the dimension are
    # on the way to the optimum, the restricted Hessians singular
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X, D = rng.standard_normal((5, 4)), rng.standard_normal((16, 4))
        alpha = 1e-3 * alpha_max(X, D, group_size)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size)
        assert_gap(X, D, codes, alpha, group_size, False, rtol=2e-6)


@pytest.mark.parametrize("group_size", [1, 2])
def test_all_zero_dictionary_gives_zero_codes(rng, group_size):
    X = rng.standard_normal((4, 5))
    D = np.zeros((4, 5))
    codes = group_sparse_encode(X, D, alpha=0.5, group_size=group_size,
                                init=rng.standard_normal((4, 4)))
    assert_array_equal(codes, 0.0)
    assert alpha_max(X, D, group_size) == 0.0


def test_unnormalised_dictionary(make_problem, rng):
    # the solver must not assume unit atoms: scaling an atom by s divides its code by s
    X, D = make_problem(rng, n_samples=6, n_features=10, n_components=4)
    alpha = 0.2 * alpha_max(X, D)
    codes = group_sparse_encode(X, D, alpha=alpha, tol=1e-12)
    D2 = D * np.array([[3.0], [1.0], [0.5], [1.0]])
    codes2 = group_sparse_encode(X, D2, alpha=alpha, tol=1e-12)
    assert_kkt(X, D2, codes2, alpha, 1, False, rtol=1e-6)
    # the lasso is not scale invariant, so compare with FISTA rather than with codes
    assert_allclose(code_objective(X, D2, codes2, alpha),
                    code_objective(X, D2, fista_reference(X, D2, alpha), alpha),
                    rtol=1e-6)
    assert codes.shape == codes2.shape


def test_max_iter_one_warns(make_problem, rng):
    X, D = make_problem(rng, n_samples=20, n_features=30, n_components=24)
    alpha = 0.01 * alpha_max(X, D, 2)
    with pytest.warns(ConvergenceWarning, match="did not reach the relative duality gap"):
        group_sparse_encode(X, D, alpha=alpha, group_size=2, max_iter=1, tol=1e-14)


# --------------------------------------------------------------------------- validation
def test_bad_inputs_raise_clear_errors(make_problem, rng):
    X, D = make_problem(rng, n_samples=3, n_features=6, n_components=4)
    with pytest.raises(ValueError, match="features"):
        group_sparse_encode(X, D[:, :5], alpha=1.0)
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_sparse_encode(X, D, alpha=1.0, group_size=3)
    with pytest.raises(ValueError, match="alpha"):
        group_sparse_encode(X, D, alpha=-1.0)
    with pytest.raises(ValueError, match="init must be of shape"):
        group_sparse_encode(X, D, alpha=1.0, init=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="group_size"):
        group_sparse_encode(X, D, alpha=1.0, group_size=0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        group_sparse_encode(Xn, D, alpha=1.0)
    with pytest.raises(ValueError, match="infinity|NaN"):
        group_sparse_encode(X, np.where(D > 0, np.inf, D), alpha=1.0)


def test_negative_init_is_clipped_for_positive_codes(make_problem, rng):
    X, D = make_problem(rng, n_samples=5, n_features=8, n_components=4)
    alpha = 0.2 * alpha_max(X, D, positive=True)
    cold = group_sparse_encode(X, D, alpha=alpha, positive=True, tol=1e-12)
    warm = group_sparse_encode(X, D, alpha=alpha, positive=True, tol=1e-12,
                               init=-np.ones((5, 4)))
    assert np.all(warm >= 0)
    assert_allclose(warm, cold, atol=1e-8)


# --------------------------------------------------------------------------- properties
@st.composite
def encode_problems(draw):
    group_size = draw(st.integers(1, 4))
    n_groups = draw(st.integers(1, 4))
    n_samples = draw(st.integers(1, 6))
    n_features = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    fraction = draw(st.sampled_from([1e-3, 0.1, 0.5, 0.9, 1.0, 2.0]))
    positive = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    dead_atom = draw(st.booleans())
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    D = rng.standard_normal((n_groups * group_size, n_features))
    if dead_atom:
        D[rng.integers(D.shape[0])] = 0.0
    X, D = X.astype(dtype), D.astype(dtype)
    alpha = fraction * alpha_max(X, D, group_size, positive)
    return X, D, alpha, group_size, positive


@given(problem=encode_problems())
def test_encode_shapes_dtypes_and_finiteness(problem):
    X, D, alpha, group_size, positive = problem
    with warnings.catch_warnings():
        # float32 on tiny or huge data may not reach the float64-level tol: not the point here
        warnings.simplefilter("ignore", ConvergenceWarning)
        codes = group_sparse_encode(X, D, alpha=alpha, group_size=group_size,
                                    positive=positive)
    assert codes.shape == (X.shape[0], D.shape[0])
    assert codes.dtype == X.dtype
    assert np.all(np.isfinite(codes))
    if positive:
        assert np.all(codes >= 0)
    if alpha >= alpha_max(X, D, group_size, positive):
        assert_array_equal(codes, 0.0)
    assert_array_equal(codes[:, ~np.any(D != 0, axis=1)], 0.0)
    # never worse than the all-zero code (the solver only ever decreases the objective)
    X64, D64 = X.astype(np.float64), D.astype(np.float64)
    objective = code_objective(X64, D64, codes, alpha, group_size)
    assert np.all(objective <= 0.5 * np.sum(X64**2, axis=1) * (1 + 1e-5))
    # no silent failure: every row the solver reports as solved (its own gap certificate,
    # which decides the ConvergenceWarning) is near-optimal by the independent formulas
    _, _, gaps, primals = solve_codes(X, D, alpha, group_size, positive)
    solved = gaps <= 1e-6 * primals
    scale = np.abs(X64 @ D64.T).max() + alpha + 1e-300
    kkt = code_kkt_violation(X64, D64, codes, alpha, group_size, positive)
    if X.dtype == np.float64:
        gap = code_duality_gap(X64, D64, codes, alpha, group_size, positive)
        assert np.all(gap[solved] <= 2e-6 * objective[solved] + 1e-14 * scale**2)
        # a small gap only bounds the KKT violation by ~ sqrt(gap)
        assert np.all(kkt[solved] <= 1e-2 * scale)
    else:
        assert np.all(kkt[solved] <= 1e-2 * scale)


# --------------------------------------------------------------------------- sparse atoms
def _local_dictionary(rng, n_components, side=20, patch=3):
    """Atoms supported on ``patch x patch`` windows of a ``side x side`` image (density ~2%)."""
    D = np.zeros((n_components, side * side))
    for k in range(n_components):
        i, j = rng.integers(0, side - patch + 1, size=2)
        window = np.zeros((side, side))
        window[i:i + patch, j:j + patch] = rng.standard_normal((patch, patch))
        D[k] = window.ravel()
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _record_gram_rows(monkeypatch, n_threads=None):
    """Spy on the solver's products: the ``GramRows`` of every solve, in order
    (``n_threads``, if given, is the thread count the products are computed for)."""
    from sklearn_structlearn._solvers import _encode

    seen = []
    original = _encode._products

    def spy(X, dictionary, gram, correlations, threads):
        rows, C = original(X, dictionary, gram, correlations, n_threads or threads)
        seen.append(rows)
        return rows, C

    monkeypatch.setattr(_encode, "_products", spy)
    return seen


@pytest.mark.parametrize("group_size", [1, 4])
@pytest.mark.parametrize("positive", [False, True])
def test_sparse_local_atoms_take_the_sparse_path_and_match_the_dense_one(
        monkeypatch, group_size, positive):
    # sparse products and sparse Gram rows are taken below density thresholds: the codes
    # must be optimal either way and agree with the dense path's
    from sklearn_structlearn._solvers import _encode

    rng = np.random.default_rng(11)
    D = _local_dictionary(rng, 48)
    X = rng.standard_normal((20, 8)) @ D[:8] + 0.05 * rng.standard_normal((20, D.shape[1]))
    alpha = 0.1 * alpha_max(X, D, group_size, positive)
    assert np.count_nonzero(D @ D.T) <= _encode._SPARSE_GRAM_REFRESH * 48 * 48
    calls = _record_gram_rows(monkeypatch, n_threads=1)
    sparse_codes, *_ = solve_codes(X, D, alpha, group_size, positive, tol=1e-10)
    assert calls and calls[0].G is not None  # formed by scipy: its CSR rows pay
    assert_kkt(X, D, sparse_codes, alpha, group_size, positive, rtol=1e-6)
    monkeypatch.setattr(_encode, "_SPARSE_GRAM_REFRESH", -1.0)
    monkeypatch.setattr(_encode, "_SPARSE_PRODUCT_C", -1.0)
    monkeypatch.setattr(_encode, "_SPARSE_PRODUCT_G", -1.0)
    dense_codes, *_ = solve_codes(X, D, alpha, group_size, positive, tol=1e-10)
    assert_allclose(sparse_codes, dense_codes, atol=1e-6)


def _all_gram_rows(rows, K):
    """G from a GramRows: the dense matrix, or every row computed by the kernels' routine."""
    from sklearn_structlearn._solvers._encode import _EMPTY_FLOAT, _EMPTY_INT
    from sklearn_structlearn._solvers._gram import fill_gram_row

    if rows.G is not None:
        return rows.G
    G = np.full((K, K), np.nan)
    have = np.zeros(K, dtype=np.uint8)
    grows = (have, _EMPTY_INT, _EMPTY_INT, _EMPTY_FLOAT) + rows.lazy
    for j in range(K)[::-1]:
        fill_gram_row(G, grows, j)
    assert have.all()
    return G


def _scattered_dictionary(rng, n_components, n_features=400, fan_in=10):
    """Atoms on ``fan_in`` random inputs each: sparse atoms (2.5%) whose Gram matrix is not
    (about 22% of the pairs share an input) -- the lazy Gram rows' regime."""
    D = np.zeros((n_components, n_features))
    for k in range(n_components):
        D[k, rng.choice(n_features, fan_in, replace=False)] = rng.standard_normal(fan_in)
    return D / np.linalg.norm(D, axis=1, keepdims=True)


@pytest.mark.parametrize("make", [_local_dictionary, _scattered_dictionary])
def test_sparse_products_equal_dense_products(rng, make):
    from sklearn_structlearn._solvers._encode import _products

    D = make(rng, 30)
    X = rng.standard_normal((5, D.shape[1]))
    rows, C = _products(X, D, None, None, 1)
    # local atoms: G sparse enough for its CSR rows, formed; scattered ones: left lazy
    assert (rows.G is None) == (make is _scattered_dictionary)
    G = _all_gram_rows(rows, 30)
    assert_allclose(G, D @ D.T, atol=1e-12)
    assert np.array_equal(G, G.T)
    assert_allclose(C, X @ D.T, atol=1e-12)
    X32 = X.astype(np.float32)
    rows, C = _products(X32, D.astype(np.float32), None, None, 1)
    assert _all_gram_rows(rows, 30).dtype == np.float64 and C.dtype == np.float32
    assert_allclose(C, X @ D.T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("group_size", [1, 4])
@pytest.mark.parametrize("positive", [False, True])
def test_lazy_gram_rows_give_the_dense_path_codes_on_any_number_of_threads(
        monkeypatch, group_size, positive):
    # With sparse atoms and a dense G, each kernel thread computes the rows of G it reads
    # on first use: the codes are optimal, agree with the dense G's, and are the same bits
    # on one and two threads (rows are computed identically by whichever thread); warm
    # starts read the rows of their support first.
    from sklearn_structlearn._solvers import _encode
    from sklearn_structlearn._threads import thread_limits

    rng = np.random.default_rng(5)
    D = _scattered_dictionary(rng, 64)
    X = rng.standard_normal((40, 12)) @ D[:12] + 0.05 * rng.standard_normal((40, 400))
    X[:, ::7] += 0.3 * rng.standard_normal((40, 58))
    alpha = 0.05 * alpha_max(X, D, group_size, positive)
    calls = _record_gram_rows(monkeypatch)
    runs = []
    for n_threads in (1, 2):
        with thread_limits(n_threads):
            runs.append(solve_codes(X, D, alpha, group_size, positive, tol=1e-10)[0])
    assert [rows.G is None for rows in calls] == [True, True]
    assert_array_equal(runs[0], runs[1])
    assert_kkt(X, D, runs[0], alpha, group_size, positive, rtol=1e-6)
    assert 0 < np.count_nonzero(runs[0]) < runs[0].size // 2
    warm = solve_codes(X, D, alpha, group_size, positive, init=runs[0], tol=1e-10)[0]
    assert_allclose(warm, runs[0], atol=1e-8)
    monkeypatch.setattr(_encode, "_SPARSE_PRODUCT_G", -1.0)
    dense = solve_codes(X, D, alpha, group_size, positive, tol=1e-10)[0]
    assert calls[-1].G is not None
    assert_allclose(runs[0], dense, atol=1e-6)
