"""The information measurements behind the "auto" rules (``_information.py``)."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_structlearn import _information, group_sparse_encode
from sklearn_structlearn.exceptions import ZeroCodesWarning
from sklearn_structlearn._information import (
    decoding_information,
    explained_variance,
    input_scale,
)
from sklearn_structlearn.penalties import alpha_for_explained_variance


def test_docstring_examples_run():
    result = doctest.testmod(_information, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# --------------------------------------------------------------------- explained variance
def test_explained_variance_perfect_zero_and_partial():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 4))
    codes = rng.standard_normal((50, 6))
    X = codes @ D
    assert explained_variance(X, codes, D) == pytest.approx(1.0)
    assert explained_variance(X, np.zeros_like(codes), D) == pytest.approx(0.0)
    # half the energy: reconstruct X / sqrt(2)... not linear; use orthogonal pieces instead
    X2 = np.hstack([X, X])
    D2 = np.hstack([D, np.zeros_like(D)])
    assert explained_variance(X2, codes, D2) == pytest.approx(0.5)


def test_explained_variance_of_zero_data_is_nan():
    assert np.isnan(explained_variance(np.zeros((3, 2)), np.zeros((3, 1)), np.ones((1, 2))))


# --------------------------------------------------------------------------- input scale
@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3), st.integers(min_value=0, max_value=10_000))
def test_input_scale_is_equivariant(c, seed):
    X = np.random.default_rng(seed).standard_normal((20, 5))
    assert input_scale(c * X) == pytest.approx(c * input_scale(X), rel=1e-10)
    assert input_scale(-c * X) == pytest.approx(c * input_scale(X), rel=1e-10)


def test_penalty_at_a_rows_norm_zeroes_its_codes_on_any_unit_dictionary():
    """The meaning of the scale: alpha >= ||x|| gives x all-zero codes, whatever D."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8))
    for _ in range(5):
        D = rng.standard_normal((16, 8))
        D /= np.linalg.norm(D, axis=1, keepdims=True)
        D[0] = x / np.linalg.norm(x)  # even the atom that is x itself
        with pytest.warns(ZeroCodesWarning):
            assert not np.any(group_sparse_encode(x, D, alpha=input_scale(x)))
        assert np.any(group_sparse_encode(x, D, alpha=0.99 * input_scale(x)))


# ------------------------------------------------------------------ decoding information
def test_decoding_information_matches_gaussian_channel():
    """Z = X + noise, Gaussian: the bound equals I(X; Z) = sum 1/2 log2(1 + snr)."""
    rng = np.random.default_rng(0)
    var = np.array([1.0, 4.0, 0.25])
    X = rng.standard_normal((20000, 3)) * np.sqrt(var)
    noise_var = 0.25
    Z = X + rng.standard_normal(X.shape) * np.sqrt(noise_var)
    r2, bits = decoding_information(X, Z, max_samples=20000)
    expected_bits = 0.5 * np.log2(1 + var / noise_var).sum()
    expected_r2 = (var * var / (var + noise_var)).sum() / var.sum()
    assert bits == pytest.approx(expected_bits, abs=0.05)
    assert r2 == pytest.approx(expected_r2, abs=0.01)


def test_decoding_information_does_not_reward_uninformative_outputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 6))
    Z = X[:, :3]
    r2, bits = decoding_information(X, Z)
    # 20 dense outputs of noise, and 20 sparse ones, add (almost) nothing
    noise = rng.standard_normal((3000, 20))
    sparse = noise * (rng.random((3000, 20)) < 0.05)
    for extra in (noise, sparse):
        r2_more, bits_more = decoding_information(X, np.hstack([Z, extra]))
        assert r2_more <= r2 + 0.01
        assert bits_more <= bits + 0.1
    # while outputs that carry the rest of X raise both
    r2_all, bits_all = decoding_information(X, X)
    assert r2_all > r2 + 0.4 and bits_all > bits + 3


def test_decoding_information_of_more_noise_outputs_than_rows_stays_near_zero():
    """Wider than the rows: an unregularised decoder would fit noise (r2 << 0)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((600, 5))
    r2, bits = decoding_information(X, rng.standard_normal((600, 500)))
    assert abs(r2) < 0.05 and abs(bits) < 0.3


def test_decoding_information_is_invariant_to_output_scale():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 4))
    Z = np.tanh(X @ rng.standard_normal((4, 5)))
    a = decoding_information(X, Z)
    b = decoding_information(X, 1e3 * Z + 7.0)
    assert a == pytest.approx(b, rel=1e-6)


def test_decoding_information_of_constant_outputs_is_zero():
    X = np.random.default_rng(3).standard_normal((500, 3))
    r2, bits = decoding_information(X, np.ones((500, 4)))
    assert r2 == pytest.approx(0.0, abs=0.02) and bits == pytest.approx(0.0, abs=0.05)


def test_decoding_information_needs_rows():
    with pytest.raises(ValueError, match="at least 3 rows"):
        decoding_information(np.ones((2, 2)), np.ones((2, 2)))


# --------------------------------------------------------------- alpha for a target ratio
@pytest.mark.parametrize("group_size", [1, 2])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_alpha_for_explained_variance_brackets_the_target(target, group_size):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 12))
    D = rng.standard_normal((24, 12))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    alpha = alpha_for_explained_variance(X, D, target, group_size=group_size)
    assert alpha > 0

    def ratio(a):
        codes = group_sparse_encode(X, D, alpha=a, group_size=group_size, tol=1e-8)
        return explained_variance(X, codes, D)

    # the returned penalty reaches the target; a slightly larger one no longer does
    # (the bisection's final bracket is 2**-12 of a halving wide)
    assert ratio(alpha) >= target - 2e-3
    assert ratio(alpha * 1.05) < target + 2e-3


def test_alpha_for_explained_variance_is_monotone_in_the_target():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 10))
    D = rng.standard_normal((20, 10))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    alphas = [alpha_for_explained_variance(X, D, t) for t in (0.3, 0.6, 0.9)]
    assert alphas[0] > alphas[1] > alphas[2] > 0


def test_alpha_for_explained_variance_unreachable_target_and_zero_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 10))
    D = np.eye(10)[:2]  # two atoms can explain at most ~20% of isotropic data
    assert alpha_for_explained_variance(X, D, 0.9) == 0.0
    assert alpha_for_explained_variance(np.zeros((5, 10)), np.eye(10), 0.5) == 0.0


@pytest.mark.parametrize("target", [0, 1, -0.1, 1.5])
def test_alpha_for_explained_variance_rejects_bad_targets(target):
    with pytest.raises(ValueError, match="target must be in"):
        alpha_for_explained_variance(np.ones((3, 2)), np.eye(2), target)
