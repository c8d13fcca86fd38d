"""Input topology recovery: similarities, lattice layout, scores, the estimator."""

import doctest
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.ndimage import gaussian_filter
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_structlearn import topology
from sklearn_structlearn._solvers._topology import _swap_refine
from sklearn_structlearn.topology import (
    InputTopologyLearner,
    LatticeLayout,
    _layout_objective,
    _site_neighbours,
    grid_positions,
    grid_recovery,
    input_similarity,
    lattice_edges,
    neighbour_graph,
    recover_lattice,
)


def smooth_images(n, shape, seed, sigma=1.0):
    """Gaussian random fields on a grid: neighbouring pixels coupled, no wrap-around."""
    rng = np.random.default_rng(seed)
    images = gaussian_filter(rng.standard_normal((n,) + shape), (0, sigma, sigma),
                             mode="nearest")
    return images.reshape(n, -1)


def test_docstring_examples():
    failures, _ = doctest.testmod(topology, optionflags=doctest.ELLIPSIS
                                  | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


# --------------------------------------------------------------------------- similarity
def test_partial_correlations_match_reference():
    # Slow, obviously right: invert the sample correlation matrix and normalise.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    S, variance = input_similarity(X, shrinkage=0.0)
    P = np.linalg.inv(np.corrcoef(X, rowvar=False))
    reference = -P / np.sqrt(np.outer(np.diag(P), np.diag(P)))
    np.fill_diagonal(reference, 0.0)
    assert_allclose(S, reference, atol=1e-8)
    assert_allclose(variance, X.var(axis=0))
    # Shrinkage: the same formula on (1 - s) R + s I.
    S2, _ = input_similarity(X, shrinkage=0.2)
    P2 = np.linalg.inv(0.8 * np.corrcoef(X, rowvar=False) + 0.2 * np.eye(6))
    reference2 = -P2 / np.sqrt(np.outer(np.diag(P2), np.diag(P2)))
    np.fill_diagonal(reference2, 0.0)
    assert_allclose(S2, reference2, atol=1e-8)


def test_markov_chain_couples_only_neighbours():
    # A Gaussian Markov chain has a tridiagonal precision matrix: given the others, each
    # variable depends on its two chain neighbours only.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20000, 8)).cumsum(axis=1)
    S, _ = input_similarity(X, shrinkage=0.0)
    i, j = np.triu_indices(8, 1)
    chain = j - i == 1
    assert S[i[chain], j[chain]].min() > 0.4
    assert np.abs(S[i[~chain], j[~chain]]).max() < 0.05


def test_constant_inputs_have_zero_similarity():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    X[:, 2] = 3.0
    S, variance = input_similarity(X)
    assert variance[2] == 0
    assert_array_equal(S[2], 0.0)
    assert_array_equal(S[:, 2], 0.0)
    assert np.all(np.isfinite(S))


@pytest.mark.parametrize("shrinkage", [-0.1, 1.0, "auto", True])
def test_bad_shrinkage(shrinkage):
    with pytest.raises(ValueError, match="shrinkage"):
        input_similarity(np.ones((3, 2)), shrinkage=shrinkage)


def test_neighbour_graph_is_symmetric_knn():
    rng = np.random.default_rng(0)
    S = rng.random((10, 10))
    S = S + S.T
    G = neighbour_graph(S, n_neighbors=3)
    assert_array_equal(G, G.T)
    assert not G.diagonal().any()
    masked = S.copy()
    np.fill_diagonal(masked, -np.inf)
    for i in range(10):
        assert G[i, np.argsort(-masked[i])[:3]].all()
    assert (G.sum(axis=1) >= 3).all()


# --------------------------------------------------------------------------- scores
def test_grid_recovery_symmetries_and_errors():
    true = grid_positions((4, 3))
    for flip_r, flip_c in itertools.product([False, True], repeat=2):
        pos = true.copy()
        if flip_r:
            pos[:, 0] = 3 - pos[:, 0]
        if flip_c:
            pos[:, 1] = 2 - pos[:, 1]
        scores = grid_recovery(pos, true, (4, 3))
        assert scores["exact"] == 1.0 and scores["neighbours"] == 1.0
    # Transposed onto a 3x4 lattice: still the grid.
    assert grid_recovery(true[:, ::-1], true, (3, 4))["exact"] == 1.0
    # Swapping two far-apart pixels: 2 of 12 misplaced; their 5 true neighbour pairs
    # (corner 0 has 2, centre-ish pixel 7 has 3 ...) are no longer adjacent.
    pos = true.copy()
    pos[[0, 7]] = pos[[7, 0]]
    scores = grid_recovery(pos, true, (4, 3))
    assert scores["exact"] == pytest.approx(10 / 12)
    i, j = np.triu_indices(12, 1)
    true_adj = np.abs(true[i] - true[j]).sum(1) == 1
    rec_adj = np.abs(pos[i] - pos[j]).sum(1) == 1
    assert scores["neighbours"] == pytest.approx((true_adj & rec_adj).sum() / true_adj.sum())
    assert scores["neighbours"] < 1.0
    # A different shape: exact is 0.
    assert grid_recovery(true, true, (6, 2))["exact"] == 0.0


def test_grid_positions_with_permutation():
    perm = np.random.default_rng(0).permutation(12)
    pos = grid_positions((3, 4), perm)
    assert_array_equal(pos, grid_positions((3, 4))[perm])
    with pytest.raises(ValueError, match="permutation"):
        grid_positions((3, 4), np.zeros(12, dtype=int))


def test_lattice_layout_validates():
    with pytest.raises(ValueError, match="every input"):
        LatticeLayout.from_site_inputs(np.array([0, 0, 1, -1]), (2, 2))
    layout = LatticeLayout.from_site_inputs(np.array([1, -1, 0]), (1, 3))
    assert_array_equal(layout.positions, [[0, 2], [0, 0]])
    assert layout.n_features == 2


# --------------------------------------------------------------------------- layout recovery
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(9, 7), (10, 10)])
def test_planted_grid_recovered_exactly(seed, shape):
    n = shape[0] * shape[1]
    X = smooth_images(3000, shape, seed)
    perm = np.random.default_rng(seed + 10).permutation(n)
    topo = InputTopologyLearner().fit(X[:, perm])
    assert set(topo.grid_shape_) == set(shape)
    scores = topo.recovery(shape, perm)
    assert scores["exact"] == 1.0
    assert scores["neighbours"] == 1.0 and scores["false_neighbours"] == 0.0


def test_no_topology_is_not_recovered():
    # The same test on data without a layout (independent inputs): the scores must be
    # at chance level, so a perfect score above is evidence, not an artefact.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 63))
    topo = InputTopologyLearner().fit(X)
    scores = topo.recovery((9, 7))
    assert scores["exact"] < 0.2
    assert scores["neighbours"] < 0.3


def test_recovery_is_equivariant_to_the_input_order():
    # Shuffling the inputs permutes the similarities and nothing else: the layout found
    # on shuffled inputs is the same grid (up to its symmetries).
    X = smooth_images(2000, (8, 6), 3)
    perm = np.random.default_rng(4).permutation(48)
    a = InputTopologyLearner().fit(X)
    b = InputTopologyLearner().fit(X[:, perm])
    scores = grid_recovery(b.positions_, a.positions_[perm], b.grid_shape_)
    assert scores["exact"] == 1.0
    assert_allclose(b.similarity_, a.similarity_[np.ix_(perm, perm)], atol=1e-10)
    assert b.layout_.objective == pytest.approx(a.layout_.objective)


def test_true_layout_maximises_the_objective_on_planted_data():
    # The objective J is what recovery optimises; on a planted grid, the true layout is
    # the best one found, and pair swaps from it cannot improve it.
    X = smooth_images(3000, (6, 6), 5)
    S, _ = input_similarity(X)
    true_sites = np.arange(36)
    J_true = _layout_objective(S, true_sites, (6, 6))
    layout = recover_lattice(S)
    assert layout.objective == pytest.approx(J_true)
    padded = np.zeros((37, 37))
    padded[:36, :36] = S
    sites = true_sites.copy()
    neighbours, count = _site_neighbours((6, 6))
    _, n_swaps = _swap_refine(padded, sites, neighbours, count, 10)
    assert n_swaps == 0


def test_non_square_number_of_inputs():
    # 7 x 5 = 35 inputs: an elongated but complete lattice is found.
    X = smooth_images(3000, (7, 5), 6)
    topo = InputTopologyLearner().fit(X)
    assert set(topo.grid_shape_) == {7, 5}
    assert topo.recovery((7, 5))["exact"] == 1.0


@pytest.mark.parametrize("n_features", [1, 2, 3, 5])
def test_tiny_inputs(n_features):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, n_features))
    topo = InputTopologyLearner().fit(X)
    h, w = topo.grid_shape_
    assert h * w >= n_features
    assert_array_equal(np.sort(topo.site_inputs_[topo.site_inputs_ >= 0]),
                       np.arange(n_features))
    assert_allclose(topo.inverse_transform(topo.transform(X)), X)


def test_lattice_edges():
    edges = lattice_edges((3, 4))
    assert edges.shape == (3 * 3 + 2 * 4, 2)
    rows, cols = np.divmod(edges, 4)
    assert_array_equal(np.abs(rows[:, 0] - rows[:, 1]) + np.abs(cols[:, 0] - cols[:, 1]), 1)


# --------------------------------------------------------------------------- estimator
def test_transform_puts_inputs_on_the_lattice():
    X = smooth_images(1000, (5, 6), 7)
    perm = np.random.default_rng(8).permutation(30)
    topo = InputTopologyLearner().fit(X[:, perm])
    Z = topo.transform(X[:, perm])
    # Column r * w + c holds the input placed at (r, c); positions_ say the same.
    h, w = topo.grid_shape_
    for j in range(30):
        r, c = topo.positions_[j]
        assert_array_equal(Z[:, r * w + c], X[:, perm][:, j])
    assert topo.transform(X[:, perm].astype(np.float32)).dtype == np.float32
    names = topo.get_feature_names_out()
    assert len(names) == h * w and names[0] == "site0_0"


@pytest.mark.parametrize("params, message", [
    ({"n_neighbors": 0}, "n_neighbors"),
    ({"n_init": 0}, "n_init"),
    ({"max_sweeps": -1}, "max_sweeps"),
    ({"shrinkage": 2.0}, "shrinkage"),
])
def test_bad_parameters_named(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        InputTopologyLearner(**params).fit(np.random.default_rng(0).random((10, 4)))


@parametrize_with_checks([InputTopologyLearner()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
