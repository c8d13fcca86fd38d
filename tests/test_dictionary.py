"""Tests of the dictionary step (``update_dictionary`` / the ``dictionary_bcd`` kernel).

With the codes fixed, the step minimises over ``D`` (rows ``D_k`` with ``||D_k|| <= 1``)::

    F(D) = 1/2 tr(D^T B D) - <E, D> + lam * sum_k sum_h ||D_{k,h}||_2

with ``B = A^T A / n`` and ``E = A^T X / n``; ``h`` runs over input groups (single inputs by
default, i.e. an L1 penalty). The tests check descent, feasibility, the per-atom fixed
point and agreement with a slow projected-gradient reference written here.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_structlearn._groups import input_group_pointers
from sklearn_structlearn._solvers import dictionary_bcd
from sklearn_structlearn._solvers._dictionary import update_dictionary
from sklearn_structlearn.objective import connectivity_penalty

INPUT_GROUPS = {
    "l1": None,
    "contiguous": np.array([0, 0, 1, 1, 2, 2]),
    # non-contiguous, unsorted labels of mixed sizes
    "scattered": np.array([7, 3, 7, 5, 3, 7]),
}


def dictionary_objective(D, B, E, lam, input_groups=None):
    return float(0.5 * np.vdot(D, B @ D) - np.vdot(E, D)
                 + lam * connectivity_penalty(D, input_groups))


def row_prox(U, threshold, input_groups=None):
    """Per row: input-group soft-threshold (one threshold per row), then the unit-ball
    projection -- the exact prox of ``threshold * penalty + indicator(||.|| <= 1)``."""
    U = np.asarray(U, dtype=np.float64)
    threshold = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (U.shape[0],))[:, None]
    labels = np.arange(U.shape[1]) if input_groups is None else np.asarray(input_groups)
    member = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float64)  # (p, H)
    norms = np.sqrt((U * U) @ member)  # (K, H) input-group norms
    scale = np.maximum(1.0 - threshold / np.where(norms > 0, norms, 1.0), 0.0)
    U = U * (scale @ member.T)
    return U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1.0)


def projected_gradient_reference(B, E, lam, input_groups=None, n_iter=3000):
    """FISTA on the whole dictionary with step ``1 / ||B||_2``, restarted whenever the
    objective goes up (linear convergence on this strongly convex problem): slow and
    obviously right."""
    L = np.linalg.eigvalsh(B)[-1]
    D = np.zeros_like(E)
    Y, t, f_old = D.copy(), 1.0, dictionary_objective(D, B, E, lam, input_groups)
    for _ in range(n_iter):
        D_new = row_prox(Y - (B @ Y - E) / L, lam / L, input_groups)
        f_new = dictionary_objective(D_new, B, E, lam, input_groups)
        if f_new > f_old:
            Y, t = D, 1.0
            continue
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Y = D_new + (t - 1) / t_new * (D_new - D)
        D, t, f_old = D_new, t_new, f_new
    return D


def random_statistics(rng, n_components=4, n_features=6, n_samples=30, sparsity=0.5):
    """Sufficient statistics of sparse random codes A and data X."""
    A = rng.standard_normal((n_samples, n_components))
    A[rng.uniform(size=A.shape) < sparsity] = 0.0
    X = rng.standard_normal((n_samples, n_features))
    return A.T @ A / n_samples, A.T @ X / n_samples


def random_feasible_dictionary(rng, n_components, n_features):
    D = rng.standard_normal((n_components, n_features))
    return D / np.linalg.norm(D, axis=1, keepdims=True) * rng.uniform(0.2, 1.0, (n_components, 1))


def pointers(input_groups, n_features):
    return input_group_pointers(input_groups, n_features)


# --------------------------------------------------------------------------- descent
@pytest.mark.parametrize("groups", list(INPUT_GROUPS))
@pytest.mark.parametrize("lam", [0.0, 0.05, 0.3])
def test_dictionary_step_never_increases_the_objective(groups, lam):
    rng = np.random.default_rng(0)
    input_groups = INPUT_GROUPS[groups]
    order, ptr = pointers(input_groups, 6)
    for _ in range(5):
        B, E = random_statistics(rng)
        D = random_feasible_dictionary(rng, 4, 6)
        values = [dictionary_objective(D, B, E, lam, input_groups)]
        for _ in range(15):
            D = update_dictionary(D, B, E, lam, order, ptr, n_passes=1)
            values.append(dictionary_objective(D, B, E, lam, input_groups))
            assert np.all(np.linalg.norm(D, axis=1) <= 1 + 1e-12)
        values = np.array(values)
        assert np.all(np.diff(values) <= 1e-12 * np.abs(values[:-1]).max())
        assert values[-1] < values[0]


@given(seed=st.integers(0, 2**32 - 1), lam=st.floats(0.0, 1.0),
       groups=st.sampled_from(list(INPUT_GROUPS)), n_passes=st.integers(1, 4))
def test_every_call_decreases_and_stays_feasible(seed, lam, groups, n_passes):
    rng = np.random.default_rng(seed)
    input_groups = INPUT_GROUPS[groups]
    order, ptr = pointers(input_groups, 6)
    B, E = random_statistics(rng, sparsity=rng.uniform(0.0, 0.9))
    D0 = random_feasible_dictionary(rng, 4, 6)
    D = update_dictionary(D0, B, E, lam, order, ptr, n_passes=n_passes)
    before = dictionary_objective(D0, B, E, lam, input_groups)
    after = dictionary_objective(D, B, E, lam, input_groups)
    assert after <= before + 1e-12 * (1 + abs(before))
    assert np.all(np.linalg.norm(D, axis=1) <= 1 + 1e-12)
    assert np.all(np.isfinite(D))


def test_descent_from_an_infeasible_start_ends_feasible():
    # an atom outside the ball (e.g. a user-given init) is projected at its first update
    rng = np.random.default_rng(1)
    B, E = random_statistics(rng, sparsity=0.0)
    D = 5 * rng.standard_normal((4, 6))
    order, ptr = pointers(None, 6)
    D = update_dictionary(D, B, E, 0.01, order, ptr, n_passes=1)
    assert np.all(np.linalg.norm(D, axis=1) <= 1 + 1e-12)


# --------------------------------------------------------------------------- optimality
@pytest.mark.parametrize("groups", list(INPUT_GROUPS))
@pytest.mark.parametrize("lam", [0.0, 0.02, 0.1])
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_each_atom_is_a_prox_fixed_point_after_convergence(groups, lam, scale):
    rng = np.random.default_rng(2)
    input_groups = INPUT_GROUPS[groups]
    order, ptr = pointers(input_groups, 6)
    B, E = random_statistics(rng, sparsity=0.3)
    E = scale * E  # scale 10: atoms on the unit sphere
    D = update_dictionary(random_feasible_dictionary(rng, 4, 6), B, E, lam, order, ptr,
                          n_passes=5000, tol=0.0)
    # optimality of block k: D_k = prox_{lam / B_kk}(D_k + (E - B D)_k / B_kk)
    diag = np.diag(B)
    U = D + (E - B @ D) / diag[:, None]
    assert_allclose(D, row_prox(U, lam / diag, input_groups), atol=1e-10)
    if lam > 0.05 and scale == 1.0:
        assert np.any(D == 0)  # the penalty prunes: a test of something, not of zeros
    if scale > 1.0:
        assert np.any(np.isclose(np.linalg.norm(D, axis=1), 1.0))


@pytest.mark.parametrize("groups", list(INPUT_GROUPS))
@pytest.mark.parametrize("lam", [0.0, 0.03, 0.15])
@pytest.mark.parametrize("ball_active", [False, True])
def test_matches_projected_gradient_reference(groups, lam, ball_active):
    rng = np.random.default_rng(3)
    input_groups = INPUT_GROUPS[groups]
    order, ptr = pointers(input_groups, 6)
    # B positive definite: the problem is strongly convex, the minimiser unique
    B, E = random_statistics(rng, sparsity=0.2)
    assert np.linalg.eigvalsh(B)[0] > 1e-3
    if ball_active:
        E = 10 * E  # pushes the unconstrained minimiser out of the unit balls
    D = update_dictionary(np.zeros((4, 6)), B, E, lam, order, ptr, n_passes=5000, tol=0.0)
    reference = projected_gradient_reference(B, E, lam, input_groups)
    ours = dictionary_objective(D, B, E, lam, input_groups)
    theirs = dictionary_objective(reference, B, E, lam, input_groups)
    assert ours <= theirs + 1e-10 * abs(theirs)
    assert_allclose(ours, theirs, rtol=1e-8)
    assert_allclose(D, reference, atol=1e-6)
    norms = np.linalg.norm(D, axis=1)
    assert np.any(np.isclose(norms, 1.0)) == ball_active


def test_unconstrained_optimum_inside_the_ball_is_the_linear_solve():
    # lam = 0 and a small E: the minimiser of the quadratic, B^{-1} E, is feasible
    rng = np.random.default_rng(4)
    B, E = random_statistics(rng, sparsity=0.0)
    D_star = np.linalg.solve(B, E)
    E = E * (0.5 / np.linalg.norm(D_star, axis=1).max())
    order, ptr = pointers(None, 6)
    D = update_dictionary(np.zeros((4, 6)), B, E, 0.0, order, ptr, n_passes=10000, tol=0.0)
    assert_allclose(D, np.linalg.solve(B, E), atol=1e-9)


def test_huge_penalty_zeroes_every_atom():
    rng = np.random.default_rng(5)
    B, E = random_statistics(rng, sparsity=0.0)
    for groups in INPUT_GROUPS:
        order, ptr = pointers(INPUT_GROUPS[groups], 6)
        D = update_dictionary(random_feasible_dictionary(rng, 4, 6), B, E, 1e3, order, ptr)
        assert_array_equal(D, 0.0)


@pytest.mark.parametrize("groups", ["contiguous", "scattered"])
def test_input_groups_are_kept_or_pruned_whole(groups):
    rng = np.random.default_rng(6)
    input_groups = INPUT_GROUPS[groups]
    order, ptr = pointers(input_groups, 6)
    B, E = random_statistics(rng, sparsity=0.3)
    D = update_dictionary(random_feasible_dictionary(rng, 4, 6), B, E, 0.1, order, ptr,
                          n_passes=200)
    for h in np.unique(input_groups):
        block = D[:, input_groups == h] != 0
        assert np.all(block.all(axis=1) | (~block).all(axis=1))
    assert np.any(D == 0) and np.any(D != 0)


# --------------------------------------------------------------------------- kernel contract
def test_kernel_keeps_the_residual_statistics_in_step():
    rng = np.random.default_rng(7)
    B, E = random_statistics(rng, sparsity=0.4)
    D = random_feasible_dictionary(rng, 4, 6)
    R = E - B @ D
    order, ptr = pointers(INPUT_GROUPS["scattered"], 6)
    done = dictionary_bcd(B, R, D, 0.05, order, ptr, 3, 0.0)
    assert done == 3
    assert_allclose(R, E - B @ D, atol=1e-12)


def test_kernel_stops_when_the_atoms_stop_moving():
    rng = np.random.default_rng(8)
    B, E = random_statistics(rng, sparsity=0.2)
    D = random_feasible_dictionary(rng, 4, 6)
    order, ptr = pointers(None, 6)
    done = dictionary_bcd(B, E - B @ D, D, 0.05, order, ptr, 100000, 1e-8)
    assert 1 < done < 100000
    # one more pass moves no atom by more than the tolerance
    D_next = update_dictionary(D, B, E, 0.05, order, ptr, n_passes=1)
    assert np.abs(D_next - D).max() <= 1e-8


def test_unused_atoms_are_left_alone():
    # B_kk = 0: no code uses atom k, so only the penalty sees it; whether to zero it or
    # re-seed it is the caller's decision (the layer re-seeds), the kernel must not touch it
    rng = np.random.default_rng(9)
    A = rng.standard_normal((30, 4))
    A[:, 2] = 0.0
    X = rng.standard_normal((30, 6))
    B, E = A.T @ A / 30, A.T @ X / 30
    D0 = random_feasible_dictionary(rng, 4, 6)
    order, ptr = pointers(None, 6)
    D = update_dictionary(D0, B, E, 0.05, order, ptr, n_passes=10)
    assert_array_equal(D[2], D0[2])
    assert not np.allclose(D[[0, 1, 3]], D0[[0, 1, 3]])


def test_update_dictionary_returns_a_new_float64_array():
    rng = np.random.default_rng(10)
    B, E = random_statistics(rng)
    D0 = random_feasible_dictionary(rng, 4, 6).astype(np.float32)
    D0_copy = D0.copy()
    order, ptr = pointers(None, 6)
    D = update_dictionary(D0, B.astype(np.float32), E.astype(np.float32), 0.05, order, ptr)
    assert D.dtype == np.float64
    assert_array_equal(D0, D0_copy)
    assert np.all(np.linalg.norm(D, axis=1) <= 1 + 1e-12)


def test_input_group_pointers_validation():
    order, ptr = input_group_pointers(np.array([7, 3, 7, 5, 3, 7]), 6)
    # groups in sorted label order: 3 -> {1, 4}, 5 -> {3}, 7 -> {0, 2, 5}
    assert_array_equal(ptr, [0, 2, 3, 6])
    assert_array_equal(order, [1, 4, 3, 0, 2, 5])
    with pytest.raises(ValueError, match="input_groups must be a 1-d array of length"):
        input_group_pointers(np.zeros(5), 6)
    with pytest.raises(ValueError, match="input_groups"):
        input_group_pointers(np.zeros((2, 3)), 6)
