"""Tests of the pooling-group mechanisms: neighbour seeding and re-grouping of units."""

import doctest
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from sklearn_structlearn import GroupSparseCodingLayer
from sklearn_structlearn import _grouping
from sklearn_structlearn._grouping import neighbour_groups, regroup_units
from sklearn_structlearn.datasets import make_planted_structure
from sklearn_structlearn.objective import group_norms


def _penalty(codes, group_size):
    return group_norms(codes, group_size).sum()


@pytest.mark.parametrize("group_size", [2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_regroup_never_raises_the_group_penalty(group_size, seed):
    rng = np.random.RandomState(seed)
    codes = rng.standard_normal((300, 12)) * (rng.rand(300, 12) < 0.3)
    perm, n_swaps = regroup_units(codes, group_size, np.random.RandomState(seed))
    assert_array_equal(np.sort(perm), np.arange(12))
    assert _penalty(codes[:, perm], group_size) <= _penalty(codes, group_size) * (1 + 1e-12)
    if n_swaps == 0:
        assert_array_equal(perm, np.arange(12))


def test_regroup_recovers_co_active_groups():
    # 4 hidden groups of 3 co-active units, units shuffled: the greedy swaps bring every
    # group back together (the planted grouping is the penalty's minimum here)
    rng = np.random.RandomState(0)
    on = rng.rand(500, 4) < 0.3
    codes = np.repeat(on, 3, axis=1) * rng.uniform(0.5, 1.5, (500, 12))
    shuffle = rng.permutation(12)
    shuffled = codes[:, shuffle]
    for _ in range(3):  # a few passes, as a layer's fit does across iterations
        perm, _ = regroup_units(shuffled, 3, rng)
        shuffled, shuffle = shuffled[:, perm], shuffle[perm]
    hidden = shuffle // 3
    assert all(len(set(g)) == 1 for g in hidden.reshape(4, 3))


def test_regroup_is_a_no_op_without_groups():
    codes = np.random.RandomState(0).rand(20, 6)
    for group_size in (1, 6):
        perm, n_swaps = regroup_units(codes, group_size, np.random.RandomState(0))
        assert n_swaps == 0
        assert_array_equal(perm, np.arange(6))


def test_neighbour_groups_seed_each_group_in_one_subspace():
    # rows drawn from 4 random 2-d subspaces: each group's rows share a subspace, and the
    # seeds cover distinct subspaces
    rng = np.random.RandomState(0)
    bases = rng.standard_normal((4, 2, 30))
    labels = rng.randint(4, size=400)
    X = np.einsum("ij,ijk->ik", rng.standard_normal((400, 2)), bases[labels])
    rows = neighbour_groups(X, 4, 2, np.random.RandomState(1))
    groups = labels[rows].reshape(4, 2)
    assert np.all(groups[:, 0] == groups[:, 1])
    assert len(set(groups[:, 0])) == 4


def test_neighbour_groups_handle_tiny_data():
    X = np.random.RandomState(0).rand(3, 5)
    rows = neighbour_groups(X, 4, 4, np.random.RandomState(0))
    assert rows.shape == (16,) and rows.max() < 3


def test_layer_with_groups_keeps_a_monotone_objective():
    # the re-grouping runs inside the full-batch fit: between re-seeds, the objective
    # never increases
    d = make_planted_structure(n_samples=300, n_features=32, n_components=16, group_size=4,
                               fan_in=5, active_groups=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        layer = GroupSparseCodingLayer(n_components=16, group_size=4, alpha=0.3,
                                       connectivity_alpha=0.005, max_iter=30, tol=0.0,
                                       random_state=0).fit(d.X)
    history = np.array(layer.objective_history_)
    clean = np.array(layer.n_reseeded_[:-1]) == 0
    assert clean.sum() >= 5
    assert np.all(np.diff(history)[clean] <= 1e-10 * history[1:][clean])


def test_docstring_examples_run():
    result = doctest.testmod(_grouping)
    assert result.attempted > 0 and result.failed == 0
