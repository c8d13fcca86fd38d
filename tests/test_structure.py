"""Tests of the learned-structure records and metrics (pure numpy, no estimator)."""

import dataclasses
import doctest

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_structlearn import structure
from sklearn_structlearn.structure import (
    LayerStructure,
    describe_structure,
    fan_in_stats,
    locality_ratio,
    pooling_invariance,
    shift_images,
    spatial_spread,
    trace_receptive_fields,
    unpermute_features,
)


def _patch_mask(image_side=16, patch=3, stride=1):
    """One unit per patch position: a planted local connectivity."""
    masks = []
    for i in range(0, image_side - patch + 1, stride):
        for j in range(0, image_side - patch + 1, stride):
            m = np.zeros((image_side, image_side), dtype=bool)
            m[i : i + patch, j : j + patch] = True
            masks.append(m.ravel())
    return np.array(masks)


def _random_mask(n_units, n_features, fan_in, seed):
    rng = np.random.RandomState(seed)
    mask = np.zeros((n_units, n_features), dtype=bool)
    for k in range(n_units):
        mask[k, rng.choice(n_features, fan_in, replace=False)] = True
    return mask


# ----------------------------------------------------------------------------- fan-in
def test_fan_in_stats_exact():
    mask = np.array(
        [
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [1, 0, 0, 0, 1],
            [1, 1, 1, 1, 1],
        ],
        dtype=bool,
    )
    stats = fan_in_stats(mask)
    fan_in = np.array([3, 0, 2, 5])
    assert stats == {
        "mean": 2.5,
        "median": 2.5,
        "min": 0,
        "max": 5,
        "std": pytest.approx(float(fan_in.std())),
        "frac_dead_units": 0.25,
        "density": 10 / 20,
    }
    assert all(type(v) in (int, float) for v in stats.values())


def test_fan_in_stats_on_weights_counts_nonzeros():
    W = np.array([[0.0, -0.3, 2.0], [1e-12, 0.0, 0.0]])
    stats = fan_in_stats(W)
    assert stats["mean"] == 1.5 and stats["min"] == 1 and stats["max"] == 2
    assert stats["frac_dead_units"] == 0.0


@pytest.mark.parametrize("bad", [np.ones(4), np.ones((2, 2, 2)), np.ones((0, 3))])
def test_fan_in_stats_rejects_bad_shapes(bad):
    with pytest.raises(ValueError):
        fan_in_stats(bad)


# ----------------------------------------------------------------------- spatial spread
def test_spatial_spread_known_values():
    W = np.zeros((4, 9))
    W[0, [3, 5]] = 1.0  # (1,0), (1,2): centre (1,1), spread 1
    W[1, [0, 8]] = [1.0, -3.0]  # (0,0) w1, (2,2) w3: centre (1.5,1.5)
    W[2, 4] = 5.0  # single pixel
    spread = spatial_spread(W, (3, 3))
    # unit 1: mass 1 at distance^2 4.5, mass 3 at distance^2 0.5 -> (4.5 + 1.5) / 4
    assert_allclose(spread[:3], [1.0, 1.5, 0.0], atol=1e-12)
    assert np.isnan(spread[3])


def test_spatial_spread_sums_mass_over_channels():
    gray = np.zeros((1, 16))
    gray[0, [0, 15]] = [1.0, 2.0]
    rgb = np.zeros((1, 16, 3))
    rgb[0, 0] = [0.5, -0.5, 0.0]
    rgb[0, 15] = [1.0, 0.0, 1.0]
    assert_allclose(spatial_spread(rgb.reshape(1, -1), (4, 4, 3)), spatial_spread(gray, (4, 4)))
    assert_allclose(spatial_spread(gray, (4, 4, 1)), spatial_spread(gray, (4, 4)))


# ---------------------------------------------------------------------------- locality
def test_locality_planted_patches_much_less_than_one():
    mask = _patch_mask(16, 3, stride=2)
    ratios, locality = locality_ratio(mask, (16, 16), random_state=0)
    assert ratios.shape == (mask.shape[0],)
    # 3x3 patch spread 4/3 vs ~38 for 9 random pixels of a 16x16 grid.
    assert locality < 0.1
    assert np.all(ratios < 0.2)


def test_locality_random_masks_close_to_one():
    mask = _random_mask(60, 256, 9, seed=1)
    ratios, locality = locality_ratio(mask, (16, 16), random_state=0)
    assert 0.8 <= locality <= 1.2
    assert 0.8 <= np.mean(ratios) <= 1.2


def test_locality_weighted_and_varied_fan_in_random_close_to_one():
    rng = np.random.RandomState(3)
    W = rng.randn(200, 256) * (rng.rand(200, 256) < rng.uniform(0.05, 0.5, (200, 1)))
    _, locality = locality_ratio(W, (16, 16), random_state=0)
    assert 0.8 <= locality <= 1.2


def test_locality_full_uniform_unit_is_exactly_one():
    # With fan-in = all pixels the random mask is the full grid: no randomness.
    ratios, locality = locality_ratio(np.ones((2, 36)), (6, 6), random_state=0, n_random=3)
    assert_allclose(ratios, 1.0)
    assert locality == pytest.approx(1.0)


def test_locality_deterministic_with_random_state():
    mask = _random_mask(30, 144, 5, seed=0)
    r1, l1 = locality_ratio(mask, (12, 12), random_state=42)
    r2, l2 = locality_ratio(mask, (12, 12), random_state=42)
    r3, _ = locality_ratio(mask, (12, 12), random_state=np.random.RandomState(42))
    assert_array_equal(r1, r2)
    assert l1 == l2
    assert_array_equal(r1, r3)
    r4, _ = locality_ratio(mask, (12, 12), random_state=7)
    assert not np.array_equal(r1, r4)


def test_locality_monte_carlo_matches_expected_random_spread():
    # E[spread] of k uniform pixels among N = (k-1)/k * N/(N-1) * (var_rows + var_cols)
    h, w = 10, 7
    rows, cols = structure._pixel_coordinates(h, w)
    n = h * w
    ks = np.array([2, 4, 9, 30, 69, 70])
    estimate = structure._random_subset_spread(ks, rows, cols, 4000, np.random.RandomState(0))
    expected = (ks - 1) / ks * n / (n - 1) * (rows.var() + cols.var())
    assert_allclose(estimate, expected, rtol=0.03)


def test_locality_dead_and_single_pixel_units_are_nan():
    W = np.zeros((3, 64))
    W[1, 10] = 1.0
    W[2, [0, 1, 8, 9]] = 1.0
    ratios, locality = locality_ratio(W, (8, 8), random_state=0)
    assert np.isnan(ratios[0]) and np.isnan(ratios[1])
    assert np.isfinite(ratios[2])
    assert locality == ratios[2]
    ratios, locality = locality_ratio(np.zeros((2, 64)), (8, 8), random_state=0)
    assert np.all(np.isnan(ratios)) and np.isnan(locality)


def test_locality_grayscale_with_and_without_channel_axis():
    mask = _patch_mask(8, 2, stride=3)
    r2, _ = locality_ratio(mask, (8, 8), random_state=0)
    r3, _ = locality_ratio(mask, (8, 8, 1), random_state=0)
    assert_array_equal(r2, r3)


def test_locality_permutation_undoes_pixel_shuffle():
    mask = _patch_mask(12, 3, stride=3)
    perm = np.random.RandomState(0).permutation(144)
    shuffled = mask[:, perm]  # what a model trained on X[:, perm] would learn
    r_plain, _ = locality_ratio(mask, (12, 12), random_state=0)
    r_shuffled_raw, l_raw = locality_ratio(shuffled, (12, 12), random_state=0)
    r_unshuffled, _ = locality_ratio(shuffled, (12, 12), random_state=0, permutation=perm)
    assert_allclose(r_unshuffled, r_plain)
    assert l_raw > 0.5  # without un-shuffling the local fields look scattered


def test_locality_input_validation():
    with pytest.raises(ValueError, match="image_shape"):
        locality_ratio(np.ones((2, 10)), (3, 3))
    with pytest.raises(ValueError, match="image_shape"):
        locality_ratio(np.ones((2, 9)), (3,))
    with pytest.raises(ValueError, match="n_random"):
        locality_ratio(np.ones((2, 9)), (3, 3), n_random=0)
    with pytest.raises(ValueError, match="permutation"):
        locality_ratio(np.ones((2, 9)), (3, 3), permutation=np.arange(8))


def test_unpermute_features_roundtrip():
    rng = np.random.RandomState(0)
    X = rng.randn(3, 10)
    perm = rng.permutation(10)
    assert_array_equal(unpermute_features(X[:, perm], perm), X)


# ------------------------------------------------------------------------------- trace
def test_trace_two_layers_known_reachable_pixels():
    # 8 pixels; layer 1 has 6 units in 3 groups of 2.
    W1 = np.zeros((6, 8))
    W1[0, [0, 1]] = 1.0
    W1[1, [1, 2]] = -1.0
    W1[2, [3]] = 2.0
    W1[3, [4]] = 1.0  # group 1 -> pixels {3, 4}
    W1[4, [5]] = 0.5
    W1[5, [5, 6]] = 1.0  # group 2 -> pixels {5, 6}
    # layer 2: 2 units, 1 group of 2; unit 0 reads groups 0 and 2, unit 1 group 1.
    W2 = np.array([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]])
    fields, mask = trace_receptive_fields([(W1, 2), (W2, 2)])
    expected_mask = np.zeros((2, 8), dtype=bool)
    expected_mask[0, [0, 1, 2, 5, 6]] = True
    expected_mask[1, [3, 4]] = True
    assert_array_equal(mask, expected_mask)
    assert mask.dtype == bool
    group_sum = np.array(
        [np.abs(W1[0:2]).sum(0), np.abs(W1[2:4]).sum(0), np.abs(W1[4:6]).sum(0)]
    )
    assert_allclose(fields, np.abs(W2) @ group_sum)
    assert_array_equal(fields > 0, mask)
    # pixel 7 is never reached, pixel 1 reached twice from group 0
    assert fields[0, 1] == 2.0 and fields[0, 5] == pytest.approx(2 * 1.5)

    pooled_fields, pooled_mask = trace_receptive_fields([(W1, 2), (W2, 2)], pooled=True)
    assert pooled_fields.shape == (1, 8)
    assert_array_equal(pooled_mask[0], expected_mask.any(axis=0))


def test_trace_three_layers_return_all_shapes():
    rng = np.random.RandomState(0)
    W1 = rng.randn(12, 25) * (rng.rand(12, 25) < 0.2)
    W2 = rng.randn(6, 4) * (rng.rand(6, 4) < 0.5)  # 12 units / group 3 = 4 inputs
    W3 = rng.randn(2, 3)  # 6 units / group 2 = 3 inputs
    layers = [(W1, 3), (W2, 2), (W3, 1)]
    fields, masks = trace_receptive_fields(layers, return_all=True)
    assert [f.shape for f in fields] == [(12, 25), (6, 25), (2, 25)]
    assert_allclose(fields[0], np.abs(W1))
    assert_array_equal(masks[0], W1 != 0)
    # reachability composes: boolean product of the masks with group-any pooling
    g1 = (W1 != 0).reshape(4, 3, 25).any(1)
    m2 = ((W2 != 0).astype(int) @ g1.astype(int)) > 0
    assert_array_equal(masks[1], m2)
    g2 = m2.reshape(3, 2, 25).any(1)
    assert_array_equal(masks[2], ((W3 != 0).astype(int) @ g2.astype(int)) > 0)
    top, top_mask = trace_receptive_fields(layers)
    assert_array_equal(top, fields[-1])
    assert_array_equal(top_mask, masks[-1])


def test_trace_validation():
    with pytest.raises(ValueError, match="inputs"):
        trace_receptive_fields([(np.ones((4, 9)), 2), (np.ones((3, 3)), 1)])
    with pytest.raises(ValueError, match="divisor"):
        trace_receptive_fields([(np.ones((4, 9)), 3)])
    with pytest.raises(ValueError, match="at least one"):
        trace_receptive_fields([])
    with pytest.raises(TypeError):
        trace_receptive_fields([np.ones((4, 9))])


# -------------------------------------------------------------------------- invariance
def test_shift_images_wrap_and_constant():
    rng = np.random.RandomState(0)
    X = rng.rand(3, 5 * 4 * 2)
    images = X.reshape(3, 5, 4, 2)
    for shift in [(0, 1), (1, 0), (-1, 0), (0, -1), (2, -3)]:
        rolled = shift_images(X, (5, 4, 2), shift)
        assert_array_equal(rolled.reshape(3, 5, 4, 2), np.roll(images, shift, axis=(1, 2)))
    zero = shift_images(X, (5, 4, 2), (1, -1), mode="constant").reshape(3, 5, 4, 2)
    assert_array_equal(zero[:, 0], 0)
    assert_array_equal(zero[:, :, -1], 0)
    assert_array_equal(zero[:, 1:, :-1], images[:, :-1, 1:])
    assert_array_equal(shift_images(X, (5, 4, 2), (5, 0), mode="constant"), 0)
    with pytest.raises(ValueError, match="mode"):
        shift_images(X, (5, 4, 2), (0, 1), mode="reflect")


def test_pooling_invariance_shift_invariant_pooling_scores_one():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 100)

    def total(X):  # global sum: invariant to any roll
        return np.abs(X).sum(axis=1, keepdims=True)

    result = pooling_invariance(total, lambda X: X, X, (10, 10))
    assert result["score"] == pytest.approx(1.0)
    assert result["pooled_change"] == pytest.approx(0.0, abs=1e-12)
    assert result["codes_change"] > 0.3
    assert result["pooled_change_per_shift"].shape == (4,)
    assert result["codes_change_per_shift"].shape == (4,)

    # Zero-padded shifts lose a border line: invariance only approximate.
    X_centered = np.zeros((30, 10, 10))
    X_centered[:, 2:8, 2:8] = rng.rand(30, 6, 6)
    result = pooling_invariance(total, lambda X: X, X_centered.reshape(30, -1), (10, 10),
                                mode="constant")
    assert result["score"] == pytest.approx(1.0)


def test_pooling_invariance_no_pooling_scores_zero_and_local_pooling_positive():
    rng = np.random.RandomState(0)
    # smooth images: neighbouring pixels are correlated
    X = rng.rand(40, 12, 12)
    X = (X + np.roll(X, 1, 1) + np.roll(X, 1, 2) + np.roll(X, (1, 1), (1, 2))).reshape(40, -1)

    def identity(X):
        return X

    def block_pool(X):  # 4x4 average pooling: partially invariant
        return X.reshape(-1, 3, 4, 3, 4).mean(axis=(2, 4)).reshape(len(X), -1)

    result = pooling_invariance(identity, identity, X, (12, 12), shifts=[(0, 1)])
    assert result["score"] == pytest.approx(0.0)
    result = pooling_invariance(block_pool, identity, X, (12, 12))
    assert 0.0 < result["score"] < 1.0


def test_pooling_invariance_with_permutation_shifts_original_grid():
    rng = np.random.RandomState(0)
    X = rng.rand(10, 36)
    perm = rng.permutation(36)

    def pooled_rows(Xs):  # row sums of the *unshuffled* image: invariant to (0, 1)
        return unpermute_features(Xs, perm).reshape(-1, 6, 6).sum(axis=2)

    result = pooling_invariance(pooled_rows, lambda Z: Z, X[:, perm], (6, 6),
                                shifts=[(0, 1)], permutation=perm)
    assert result["score"] == pytest.approx(1.0)


def test_pooling_invariance_validation():
    X = np.ones((4, 9))
    with pytest.raises(ValueError, match="image_shape"):
        pooling_invariance(lambda X: X, lambda X: X, X, (4, 4))
    with pytest.raises(ValueError, match="rows"):
        pooling_invariance(lambda X: X[:2], lambda X: X, X, (3, 3))
    result = pooling_invariance(lambda X: X, lambda X: 0 * X, X, (3, 3))
    assert np.isnan(result["score"])


# ----------------------------------------------------------------------------- records
def test_layer_structure_from_components_first_layer():
    mask = _patch_mask(8, 3, stride=1)  # 36 units
    W = mask * np.random.RandomState(0).randn(*mask.shape)
    layer = LayerStructure.from_components(W, group_size=4, image_shape=(8, 8), random_state=0)
    assert (layer.n_inputs, layer.n_units, layer.n_groups, layer.group_size) == (64, 36, 9, 4)
    assert_array_equal(layer.connectivity, mask)
    assert layer.fan_in == fan_in_stats(mask)
    assert layer.locality < 0.3
    assert layer.receptive_fields is W or np.shares_memory(layer.receptive_fields, W)
    assert layer.invariance is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.n_units = 3
    summary = layer.summary()
    assert "\n" not in summary
    assert "36 units" in summary and "9 groups of 4" in summary and "locality" in summary
    assert set(layer.to_dict()) == {
        "n_inputs", "n_units", "n_groups", "group_size", "connectivity", "fan_in",
        "locality", "invariance", "receptive_fields",
    }


def test_layer_structure_deeper_layer_uses_traced_fields():
    rng = np.random.RandomState(0)
    W1 = _patch_mask(8, 2, stride=2).astype(float)  # 16 units
    W2 = np.zeros((4, 8))
    for k in range(4):
        W2[k, 2 * k : 2 * k + 2] = 1.0
    fields, _ = trace_receptive_fields([(W1, 2), (W2, 1)])
    layer = LayerStructure.from_components(
        W2, 1, image_shape=(8, 8), receptive_fields=fields, random_state=0,
        invariance={"score": 0.5, "pooled_change": 0.1, "codes_change": 0.2},
    )
    assert layer.locality is not None and layer.locality < 1.0
    assert layer.receptive_fields.shape == (4, 64)
    assert "invariance 0.500" in layer.summary()
    # not pixels and no traced fields: no locality
    assert LayerStructure.from_components(W2, 1, image_shape=(8, 8)).locality is None
    assert LayerStructure.from_components(W2, 2).locality is None
    with pytest.raises(ValueError, match="divisor"):
        LayerStructure.from_components(W2, 3)
    with pytest.raises(ValueError, match="rows"):
        LayerStructure.from_components(W2, 1, receptive_fields=rng.rand(3, 64))


def test_describe_structure_table():
    rng = np.random.RandomState(0)
    layers = [
        LayerStructure.from_components(_patch_mask(8, 3, 1), 4, image_shape=(8, 8),
                                       random_state=0),
        LayerStructure.from_components(rng.rand(6, 9) < 0.5, 2,
                                       invariance={"score": 0.25}),
    ]
    text = describe_structure(layers, [4.0, 6.5, 7.0])
    lines = text.splitlines()
    assert len(lines) == 4
    assert "depth" in lines[0] and "entropy (bits)" in lines[0]
    assert lines[1].startswith("0") and "input" in lines[1] and "4.000" in lines[1]
    assert lines[2].startswith("1") and "layer 1" in lines[2] and "+2.500" in lines[2]
    assert lines[3].startswith("2") and "layer 2" in lines[3] and "0.250" in lines[3]
    assert "9x4" in lines[2] and "3x2" in lines[3]
    # per-layer entropies only, none, and extra (rejected) candidate layers
    assert len(describe_structure(layers, [6.5, 7.0]).splitlines()) == 4
    assert "layer 2" in describe_structure(layers)
    extra = describe_structure(layers, [4.0, 6.5, 7.0, 7.01], unit="nats")
    assert "not kept" in extra.splitlines()[-1] and "nats" in extra
    with pytest.raises(ValueError, match="entropies"):
        describe_structure(layers, [1.0])


def test_docstring_examples():
    failures, _ = doctest.testmod(structure, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
