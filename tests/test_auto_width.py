"""The "auto" rules of issue 12 (``_auto_width.py``): width, penalties, depth."""

import doctest

import numpy as np
import pytest

from sklearn_structlearn import _auto_width, group_sparse_encode
from sklearn_structlearn._auto_width import (
    MAX_COMPONENTS,
    MIN_COMPONENTS,
    auto_alpha,
    auto_n_components,
    keep_layer,
    relative_alpha,
    relative_connectivity_alpha,
    research_params,
)
from sklearn_structlearn._information import explained_variance, input_scale
from sklearn_structlearn._penalties import subsample_and_reference_atoms


def test_docstring_examples_run():
    result = doctest.testmod(_auto_width, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


# ---------------------------------------------------------------------------- width
@pytest.mark.parametrize("n_features, n_samples, group_size, expected", [
    (64, 1257, 1, 512),             # expansion: 8 units per input
    (13, 142, 1, 71),               # the rows cap it: 142 // 2
    (30, 455, 1, 227),
    (784, 20000, 1, MAX_COMPONENTS),  # the solvers cap it
    (2, 10, 1, MIN_COMPONENTS),      # never below the minimum
    (64, 1257, 4, 512),
    (13, 142, 4, 68),               # rounded down to whole groups
    (2, 10, 32, 32),                # at least one group
])
def test_auto_n_components(n_features, n_samples, group_size, expected):
    k = auto_n_components(n_features, n_samples, group_size)
    assert k == expected and k % group_size == 0


def test_auto_n_components_grows_with_the_input():
    widths = [auto_n_components(p, 10**6) for p in (2, 4, 13, 30, 64, 128)]
    assert widths == sorted(widths) and widths[0] < widths[-1]


# ---------------------------------------------------------------------------- alpha
@pytest.mark.parametrize("target", [0.6, 0.9])
def test_auto_alpha_hits_its_target_on_the_reference_atoms(target):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 12)) @ rng.standard_normal((12, 12))
    alpha = auto_alpha(X, 48, explained_variance=target, max_active=None, random_state=0)
    sub, atoms = subsample_and_reference_atoms(X, 512, 48, np.random.RandomState(0))
    codes = group_sparse_encode(sub, atoms, alpha=alpha, tol=1e-8)
    assert explained_variance(sub, codes, atoms) == pytest.approx(target, abs=0.01)


def test_auto_alpha_respects_the_active_budget():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 40))  # isotropic: 90% needs many active units
    free = auto_alpha(X, 80, explained_variance=0.9, max_active=None, random_state=0)
    capped = auto_alpha(X, 80, explained_variance=0.9, max_active=5, random_state=0)
    assert capped > free
    sub, atoms = subsample_and_reference_atoms(X, 512, 80, np.random.RandomState(0))
    active = np.count_nonzero(group_sparse_encode(sub, atoms, alpha=capped, tol=1e-8), axis=1)
    assert active.mean() == pytest.approx(5, abs=0.5)
    # a budget that is not binding changes nothing
    assert auto_alpha(X, 80, explained_variance=0.9, max_active=80, random_state=0) == free


def test_auto_alpha_scales_with_the_data():
    X = np.random.default_rng(1).standard_normal((300, 8))
    a = auto_alpha(X, 32, random_state=0)
    assert auto_alpha(7 * X, 32, random_state=0) == pytest.approx(7 * a, rel=1e-3)


def test_relative_alpha_means_the_same_at_any_scale():
    X = np.random.default_rng(2).standard_normal((200, 6))
    assert relative_alpha(0.2, X) == pytest.approx(0.2 * input_scale(X))
    assert relative_alpha(0.2, 3 * X) == pytest.approx(3 * relative_alpha(0.2, X))
    assert relative_alpha(0, X) == 0.0


def test_relative_connectivity_alpha_zero_and_scale():
    X = np.random.default_rng(3).standard_normal((200, 6))
    assert relative_connectivity_alpha(0.0, X, 0.5, 24) == 0.0
    lam = relative_connectivity_alpha(0.04, X, 0.5, 24, random_state=0)
    assert lam > 0
    # linear in the ratio
    assert relative_connectivity_alpha(0.08, X, 0.5, 24, random_state=0) == pytest.approx(2 * lam)


# ---------------------------------------------------------------------------- depth
def test_keep_layer_keeps_what_adds_and_drops_what_repeats():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 8))
    below = [np.maximum(X[:, :4], 0)]
    keep, r2_below, r2_with = keep_layer(X, below, np.maximum(-X[:, :4], 0))
    assert keep and r2_with > r2_below + 0.1
    # wide, dense noise is not rewarded
    keep, r2_below, r2_with = keep_layer(X, below, rng.standard_normal((1500, 200)))
    assert not keep and r2_with <= r2_below + 0.01


def test_research_params_are_valid_learner_params():
    from sklearn_structlearn import DeepStructureLearner

    params = research_params(13, 142)
    assert 0 < params.pop("explained_variance") < 1
    learner = DeepStructureLearner(**params, random_state=0, max_iter=3)
    X = np.random.default_rng(0).standard_normal((142, 13))
    assert learner.fit_transform(X).shape == (142, params["n_components"])
