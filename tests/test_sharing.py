"""Shared-weight layers on a recovered topology: index tables, forward, learning, pooling."""

import doctest
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.ndimage import gaussian_filter
from scipy.signal import convolve2d, correlate2d
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_structlearn import sharing
from sklearn_structlearn.sharing import (
    SharedLayer,
    SharedWeightLearner,
    extract_lattice_patches,
    family_pooling_groups,
    find_translated_families,
    lattice_neighbourhoods,
    lattice_pooling,
    layer_codes,
    learn_shared_layer,
    pooling_invariance_against_random,
    shared_layer_forward,
)

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@ignore_convergence
def test_docstring_examples():
    failures, _ = doctest.testmod(sharing, optionflags=doctest.ELLIPSIS
                                  | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


# --------------------------------------------------------------------------- index tables
def test_neighbourhoods_match_brute_force():
    h, w, k = 4, 5, 3
    index = lattice_neighbourhoods((h, w), k)
    for s in range(h * w):
        r, c = divmod(s, w)
        for o in range(k * k):
            dr, dc = divmod(o, k)
            rr, cc = r + dr - 1, c + dc - 1
            expected = rr * w + cc if 0 <= rr < h and 0 <= cc < w else -1
            assert index[s, o] == expected


def test_neighbourhoods_through_site_inputs():
    rng = np.random.default_rng(0)
    sites = rng.permutation(12)
    sites[[3, 7]] = -1  # two empty sites, and inputs 10.. relabelled below
    sites = np.where(sites >= 0, np.argsort(np.argsort(np.where(sites >= 0, sites, 99))), -1)
    plain = lattice_neighbourhoods((3, 4), 3)
    mapped = lattice_neighbourhoods((3, 4), 3, site_inputs=sites)
    expected = np.where(plain >= 0, sites[np.maximum(plain, 0)], -1)
    assert_array_equal(mapped, expected)
    with pytest.raises(ValueError, match="odd"):
        lattice_neighbourhoods((3, 4), 2)


def test_pooling_blocks_cover_the_lattice():
    index, shape = lattice_pooling((6, 4), 2)
    assert shape == (3, 2)
    assert_array_equal(np.sort(index.ravel()), np.arange(24))
    # Odd sizes drop the last row / column (as MaxPool2d); short axes pool whole.
    index, shape = lattice_pooling((5, 1), 2)
    assert shape == (2, 1) and index.tolist() == [[0, 1], [2, 3]]


def test_patches_are_the_windows():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((3, 2, 20))
    patches = extract_lattice_patches(maps, (4, 5), 3, 50, random_state=0)
    index = lattice_neighbourhoods((4, 5), 3)
    rs = np.random.RandomState(0)
    samples, sites = rs.randint(3, size=50), rs.randint(20, size=50)
    padded = np.concatenate([maps, np.zeros((3, 2, 1))], axis=2)
    cols = np.where(index[sites] >= 0, index[sites], 20)
    for p in range(50):
        expected = padded[samples[p]][:, cols[p]].ravel()
        assert_allclose(patches[p], expected)


# --------------------------------------------------------------------------- forward
def test_layer_forward_matches_scipy():
    # Obviously right reference: correlate2d per (kernel, channel), bias, relu, max pool.
    rng = np.random.default_rng(1)
    h, w, C, K, k = 6, 8, 2, 3, 3
    maps = rng.standard_normal((4, C, h * w))
    kernels = rng.standard_normal((K, C, k, k))
    bias = rng.standard_normal(K)
    layer = SharedLayer(kernels, bias, kernels != 0, (h, w), (h // 2, w // 2), 2, "max", 0.5)
    out = shared_layer_forward(maps, layer, batch_size=3)
    for i in range(4):
        for o in range(K):
            z = sum(correlate2d(maps[i, c].reshape(h, w), kernels[o, c], mode="same")
                    for c in range(C)) + bias[o]
            z = np.maximum(z, 0).reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3))
            assert_allclose(out[i, o], z.ravel(), atol=1e-12)
    l2 = SharedLayer(kernels, bias, kernels != 0, (h, w), (h // 2, w // 2), 2, "l2", 0.5)
    codes = layer_codes(maps, l2)
    expected = np.sqrt((codes.reshape(4, K, h // 2, 2, w // 2, 2) ** 2).sum(axis=(3, 5)))
    assert_allclose(shared_layer_forward(maps, l2), expected.reshape(4, K, -1))


@pytest.mark.parametrize("pooling", ["max", "l2"])
def test_group_pooling_pools_the_families_of_a_group(pooling):
    # Obviously right reference: the unpooled responses of a group's families, stacked,
    # pooled over the families and the 2x2 block at once.
    rng = np.random.default_rng(2)
    h, w, C, K, g = 4, 6, 2, 6, 3
    maps = rng.standard_normal((5, C, h * w))
    kernels = rng.standard_normal((K, C, 3, 3))
    bias = rng.standard_normal(K)
    layer = SharedLayer(kernels, bias, kernels != 0, (h, w), (2, 3), 2, pooling, 0.5,
                        group_size=g, group_pooling=True)
    assert (layer.pooled_families, layer.n_outputs) == (3, 2)
    codes = layer_codes(maps, layer).reshape(5, K // g, g, h // 2, 2, w // 2, 2)
    if pooling == "max":
        expected = codes.max(axis=(2, 4, 6))
    else:
        expected = np.sqrt((codes ** 2).sum(axis=(2, 4, 6)))
    out = shared_layer_forward(maps, layer, batch_size=2)
    assert out.shape == (5, 2, 6)
    assert_allclose(out, expected.reshape(5, 2, -1), atol=1e-12)
    # the pooling groups, in the order of the outputs, name exactly the units pooled
    groups = family_pooling_groups(layer)
    assert groups.shape == (2 * 6, 3 * 4)
    flat = layer_codes(maps, layer).reshape(5, -1)
    pooled = flat[:, groups].max(axis=2) if pooling == "max" else np.sqrt(
        (flat[:, groups] ** 2).sum(axis=2))
    assert_allclose(pooled, out.reshape(5, -1), atol=1e-12)
    # without group pooling the same layer pools each family alone
    alone = SharedLayer(kernels, bias, kernels != 0, (h, w), (2, 3), 2, pooling, 0.5,
                        group_size=g)
    assert shared_layer_forward(maps, alone).shape == (5, K, 6)


def test_family_groups_are_neighbouring_sites_of_one_kernel():
    k = np.ones((3, 1, 3, 3))
    layer = SharedLayer(k, np.zeros(3), k > 0, (4, 6), (2, 3), 2, "max", 0.0)
    groups = family_pooling_groups(layer)
    assert groups.shape == (3 * 6, 4)
    kernel, site = np.divmod(groups, 24)
    assert (kernel == kernel[:, :1]).all()  # one family per group
    rows, cols = np.divmod(site, 6)
    assert (rows.max(1) - rows.min(1) == 1).all() and (cols.max(1) - cols.min(1) == 1).all()
    assert layer.family_sizes().tolist() == [24, 24, 24]


# --------------------------------------------------------------------------- learning
def _convolutional_data(n, shape, kernels, p, noise, seed):
    """Images made of translated copies of a few kernels (a convolutional sparse model)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n,) + shape)
    for kernel in kernels:
        active = (rng.random((n,) + shape) < p) * rng.uniform(0.5, 1.5, (n,) + shape)
        for i in range(n):
            X[i] += convolve2d(active[i], kernel, mode="same")
    X += noise * rng.standard_normal(X.shape)
    return X.reshape(n, -1)


def _best_shifted_cosine(true_kernel, learned):
    """Largest |cosine| of a small kernel placed anywhere in a larger learned window."""
    k, K = true_kernel.shape[0], learned.shape[-1]
    best = 0.0
    for window in learned:
        for dr in range(K - k + 1):
            for dc in range(K - k + 1):
                placed = np.zeros((K, K))
                placed[dr:dr + k, dc:dc + k] = true_kernel
                cos = abs((placed * window).sum()) / np.linalg.norm(placed) / np.linalg.norm(window)
                best = max(best, cos)
    return best


@ignore_convergence
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_planted_kernel_found(seed):
    # Every image is a sum of translated copies of one 3x3 kernel (sparse, positive
    # activations). A 5x5 shared kernel learned on patches contains it (cosine 0.86-0.97
    # on these seeds); random 5x5 kernels match it at ~0.5. (Patch coding is not
    # convolutional sparse coding: with several planted kernels some are missed.)
    true = np.random.default_rng(seed + 50).standard_normal((3, 3))
    X = _convolutional_data(2000, (12, 12), [true], 0.02, 0.02, seed)
    layer = learn_shared_layer(X[:, None, :], (12, 12), n_kernels=8, kernel_size=5,
                               connectivity_alpha=0.0, n_patches=10000, max_iter=30,
                               random_state=seed)
    learned = _best_shifted_cosine(true, layer.kernels[:, 0])
    chance = _best_shifted_cosine(true, np.random.default_rng(100 + seed).standard_normal((8, 5, 5)))
    assert learned > 0.8
    assert learned > chance + 0.25


@ignore_convergence
def test_bias_is_the_folded_threshold():
    # relu(conv(x) + bias) is computed from the patches, and the pre-activations have
    # the spread of a default-initialised unit of the same fan-in over the training patches.
    rng = np.random.default_rng(0)
    maps = gaussian_filter(rng.standard_normal((300, 6, 6)), (0, 1, 1)).reshape(300, 1, 36)
    layer = learn_shared_layer(maps, (6, 6), n_kernels=4, kernel_size=3, n_patches=3000,
                               max_iter=5, random_state=0)
    patches = extract_lattice_patches(maps, (6, 6), 3, 3000, random_state=np.random.RandomState(0))
    codes = layer_codes(maps, layer)  # (300, 4, 36)
    index = lattice_neighbourhoods((6, 6), 3)
    rs = np.random.RandomState(0)
    samples, sites = rs.randint(300, size=3000), rs.randint(36, size=3000)
    weights = layer.kernels.reshape(4, -1)
    pre = patches @ weights.T + layer.bias
    assert_allclose(codes[samples, :, sites], np.maximum(pre, 0.0), atol=1e-10)
    # Every family at the spread torch's default initialisation gives this fan-in here.
    assert_allclose(pre.std(axis=0), np.sqrt(np.mean(patches ** 2) / 3), rtol=1e-8)
    del index


# --------------------------------------------------------------------------- invariance
def test_neighbour_pooling_beats_random_groups_on_smooth_images():
    rng = np.random.default_rng(0)
    X = gaussian_filter(rng.random((300, 8, 8)), (0, 1.5, 1.5)).reshape(300, 64)
    blocks, _ = lattice_pooling((8, 8), 2)
    r = pooling_invariance_against_random(lambda X: X, X, (8, 8), blocks, random_state=0)
    assert r["learned_change"] < 0.8 * r["random_change"]


def test_no_pooling_advantage_for_far_apart_groups():
    # Groups of 4 pixels 4 apart: a one-pixel shift moves nothing inside a group, so they
    # are no more invariant than random groups (which hold neighbours now and then): the
    # comparison above is not built into the score.
    rng = np.random.default_rng(0)
    X = gaussian_filter(rng.random((300, 8, 8)), (0, 1.5, 1.5)).reshape(300, 64)
    r0, c0 = np.divmod(np.arange(16), 4)
    far = np.stack([(r0 + dr) * 8 + c0 + dc for dr in (0, 4) for dc in (0, 4)], axis=1)
    r = pooling_invariance_against_random(lambda X: X, X, (8, 8), far, random_state=0)
    assert r["learned_change"] > 0.95 * r["random_change"]
    blocks, _ = lattice_pooling((8, 8), 2)
    near = pooling_invariance_against_random(lambda X: X, X, (8, 8), blocks, random_state=0)
    assert near["learned_change"] < r["learned_change"]


def test_invariance_respects_the_permutation():
    # Units computed on shuffled pixels, shifts applied on the true grid.
    rng = np.random.default_rng(1)
    X = gaussian_filter(rng.random((200, 8, 8)), (0, 1.5, 1.5)).reshape(200, 64)
    perm = rng.permutation(64)
    blocks, _ = lattice_pooling((8, 8), 2)
    a = pooling_invariance_against_random(lambda X: X, X, (8, 8), blocks, random_state=0)
    inverse = np.argsort(perm)
    b = pooling_invariance_against_random(lambda X: X, X[:, perm], (8, 8), inverse[blocks],
                                          permutation=perm, random_state=0)
    assert a["learned_change"] == pytest.approx(b["learned_change"])


# --------------------------------------------------------------------------- estimator
@ignore_convergence
def test_learner_on_shuffled_digits():
    from sklearn.datasets import load_digits

    X = load_digits().data
    perm = np.random.default_rng(0).permutation(64)
    learner = SharedWeightLearner(n_kernels=[8, 8], kernel_size=3, n_patches=3000,
                                  max_iter=5, random_state=0).fit(X[:, perm])
    Z = learner.transform(X[:, perm])
    assert Z.shape == (1797, 8 * 2 * 2)
    assert learner.layers_[1].grid_shape == (4, 4)
    assert learner.topology_.recovery((8, 8), perm)["neighbours"] > 0.8
    assert len(learner.get_feature_names_out()) == Z.shape[1]
    assert "families" in learner.summary()
    # structure_ reports the recovered topology and the families, in plain values
    structure = learner.structure_
    assert structure["topology"]["grid_shape"] == learner.topology_.grid_shape_
    assert structure["topology"]["n_inputs"] == 64
    assert [lay["n_families"] for lay in structure["layers"]] == [8, 8]
    assert structure["layers"][0]["family_sizes"] == [64] * 8   # a unit per site
    assert structure["layers"][1]["family_sizes"] == [16] * 8
    assert structure["layers"][1]["n_channels"] == 8
    assert structure["layers"][0]["pooled_shape"] == structure["layers"][1]["grid_shape"]
    assert 0 < structure["layers"][0]["mean_fan_in"] <= 9
    # standardised as a CNN is, by one mean and one scale over all inputs: a mean per input
    # would add a site-dependent pattern that shared weights cannot undo
    assert_allclose(learner.mean_, np.full(64, X.mean()))
    assert_allclose(learner.scale_, np.full(64, X.std()))


@ignore_convergence
def test_learner_with_group_pooling():
    from sklearn.datasets import load_digits

    X = load_digits().data
    learner = SharedWeightLearner(n_kernels=[8, 12], kernel_size=3, group_size=2,
                                  group_pooling=True, n_patches=3000, max_iter=5,
                                  random_state=0).fit(X)
    # every layer hands on one channel per group of 2 families
    assert learner.transform(X[:7]).shape == (7, 6 * 2 * 2)
    assert learner.layers_[1].n_channels == 4
    assert [lay["n_outputs"] for lay in learner.structure_["layers"]] == [4, 6]
    assert [lay["pooled_families"] for lay in learner.structure_["layers"]] == [2, 2]
    assert "groups of 2 families" in learner.summary()
    assert len(learner.get_feature_names_out()) == 24


@pytest.mark.parametrize("params, message", [
    ({"n_kernels": []}, "n_kernels"),
    ({"n_kernels": [4, 6], "group_size": 4}, "multiples of group_size"),
    ({"group_pooling": "yes"}, "group_pooling"),
    ({"n_kernels": [4, 0]}, "n_kernels"),
    ({"kernel_size": 4}, "odd"),
    ({"kernel_size": [3]}, "kernel_size"),
    ({"pooling": "mean"}, "pooling"),
    ({"topology": "grid"}, "topology"),
])
def test_bad_parameters_named(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SharedWeightLearner(**params).fit(np.random.default_rng(0).random((10, 9)))


@parametrize_with_checks([SharedWeightLearner(n_kernels=[4, 4], kernel_size=3, n_patches=200,
                                              max_iter=3, random_state=0)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# --------------------------------------------------------------------------- families
def test_translated_families_found_through_a_shuffled_topology():
    # 3 features x 4 positions on a 10x10 lattice, stored on shuffled inputs: the
    # families are the features, whatever the input order.
    rng = np.random.default_rng(0)
    features = [rng.standard_normal((3, 3)) for _ in range(3)]
    units, truth = [], []
    for f, feature in enumerate(features):
        for r, c in [(1, 1), (1, 6), (6, 2), (5, 6)]:
            image = np.zeros((10, 10))
            image[r:r + 3, c:c + 3] = feature
            units.append(image.ravel())
            truth.append(f)
    units = np.array(units)
    perm = rng.permutation(100)                     # inputs shuffled: X[:, perm]
    site_inputs = np.argsort(perm)                  # the site of pixel p holds input inv[p]
    families, kernels, centres = find_translated_families(units[:, perm], site_inputs,
                                                          (10, 10), window=5)
    assert sorted(len(f) for f in families) == [4, 4, 4]
    for fam in families:
        assert len({truth[i] for i in fam}) == 1
    for fam, kernel in zip(families, kernels):
        centre = kernel[1:4, 1:4]
        feature = features[truth[fam[0]]]
        cos = (centre * feature).sum() / np.linalg.norm(centre) / np.linalg.norm(feature)
        assert cos > 0.99
    # Sign matters, and unrelated random local units stay singletons.
    random_units = np.zeros((5, 10, 10))
    for i, (r, c) in enumerate(rng.integers(0, 7, size=(5, 2))):
        random_units[i, r:r + 3, c:c + 3] = rng.standard_normal((3, 3))
    random_units = random_units.reshape(5, 100)
    families, _, _ = find_translated_families(np.vstack([units, -units[:1], random_units]),
                                              np.arange(100), (10, 10), window=5)
    assert max(len(f) for f in families) == 4
    assert sum(len(f) == 1 for f in families) == 6
