"""Tests of the output entropy estimators against distributions of known entropy."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_structlearn import entropy as entropy_module
from sklearn_structlearn.entropy import (
    entropy_gain,
    output_entropy,
    output_redundancy,
    total_correlation,
)


def gaussian_entropy_bits(cov):
    cov = np.atleast_2d(cov)
    d = cov.shape[0]
    return 0.5 * np.log2((2 * np.pi * np.e) ** d * np.linalg.det(cov))


def binary_entropy_bits(p):
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


# --------------------------------------------------------------------------- binned


@pytest.mark.parametrize("m", [2, 3, 5, 8])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_binned_discrete_uniform_is_log2_m_per_unit(m, bias_correction):
    rng = np.random.default_rng(m)
    n_units = 3
    # non-zero values so that none falls into the zero bin; n_bins == 8 >= m
    Z = rng.integers(1, m + 1, size=(5000, n_units)).astype(float)
    h = output_entropy(Z, n_bins=8, bias_correction=bias_correction)
    assert h == pytest.approx(n_units * np.log2(m), abs=0.01 * n_units)


def test_binned_continuous_unit_fills_n_bins_exactly():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((1200, 2)) + 5.0  # n_samples multiple of n_bins
    h = output_entropy(Z, n_bins=12, bias_correction=False)
    assert h == pytest.approx(2 * np.log2(12), abs=1e-12)


def test_binned_independent_units_add_up_to_analytic_sum():
    rng = np.random.default_rng(1)
    n = 20000
    u4 = rng.integers(1, 5, size=n)  # uniform over 4 values: 2 bits
    skew = rng.choice([1.0, 2.0, 3.0], p=[0.5, 0.25, 0.25], size=n)  # 1.5 bits
    cont = rng.exponential(size=n)  # continuous: log2(n_bins) bits
    Z = np.column_stack([u4, skew, cont]).astype(float)
    n_bins = 8
    h = output_entropy(Z, n_bins=n_bins)
    parts = [output_entropy(Z[:, [j]], n_bins=n_bins) for j in range(3)]
    assert h == pytest.approx(sum(parts), rel=1e-12)
    assert h == pytest.approx(2.0 + 1.5 + np.log2(n_bins), abs=0.02)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_binned_constant_and_zero_units_contribute_nothing(bias_correction):
    rng = np.random.default_rng(2)
    informative = rng.standard_normal((500, 2))
    kw = dict(n_bins=6, bias_correction=bias_correction)
    assert output_entropy(np.zeros((500, 1)), **kw) == 0.0
    assert output_entropy(np.full((500, 1), 3.7), **kw) == 0.0
    assert output_entropy(np.full((500, 1), -2.0), **kw) == 0.0
    # below zero_tol counts as zero, i.e. a numerically dead unit
    assert output_entropy(1e-13 * rng.standard_normal((500, 1)), **kw) == 0.0
    Z = np.column_stack([informative, np.zeros(500), np.full(500, 3.7)])
    assert output_entropy(Z, **kw) == pytest.approx(output_entropy(informative, **kw))


def test_binned_zero_tol_moves_small_values_to_zero_bin():
    z = np.array([[0.0], [1e-6], [-1e-6], [1.0]] * 250)
    low = output_entropy(z, n_bins=4, zero_tol=0.0, bias_correction=False)
    high = output_entropy(z, n_bins=4, zero_tol=1e-5, bias_correction=False)
    # zero_tol=0: {0} vs three equally likely tied non-zero values -> 2 bits;
    # zero_tol=1e-5: zero bin has prob. 3/4, one value with prob. 1/4
    assert low == pytest.approx(2.0, abs=1e-12)
    assert high == pytest.approx(binary_entropy_bits(0.25), abs=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.7])
def test_binned_sparse_gated_unit_matches_mixed_entropy(p):
    rng = np.random.default_rng(int(100 * p))
    n, n_units, n_bins = 20000, 3, 8
    gate = rng.random((n, n_units)) < p
    Z = np.where(gate, rng.standard_normal((n, n_units)), 0.0)
    # exact entropy of the discretisation given the observed activity rates:
    # zero bin with prob. 1 - p_hat, n_bins equally filled bins with p_hat / n_bins
    p_hat = gate.mean(axis=0)
    exact = np.sum(binary_entropy_bits(p_hat) + p_hat * np.log2(n_bins))
    h = output_entropy(Z, n_bins=n_bins, bias_correction=False)
    assert h == pytest.approx(exact, abs=1e-3)
    # and the analytic value for the true rate, up to sampling noise of p_hat
    expected = n_units * (binary_entropy_bits(p) + p * np.log2(n_bins))
    h = output_entropy(Z, n_bins=n_bins)
    assert h == pytest.approx(expected, abs=0.03 * n_units)


def test_binned_adding_independent_informative_unit_increases_entropy():
    rng = np.random.default_rng(3)
    Z = np.where(rng.random((2000, 4)) < 0.2, rng.random((2000, 4)), 0.0)
    extra = np.where(rng.random((2000, 1)) < 0.5, rng.random((2000, 1)), 0.0)
    h = output_entropy(Z)
    h_more = output_entropy(np.hstack([Z, extra]))
    assert h_more > h + 0.5
    # a dead unit adds nothing
    assert output_entropy(np.hstack([Z, np.zeros((2000, 1))])) == pytest.approx(h)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_binned_huge_n_bins_needs_no_table(bias_correction):
    # regression: n_bins=10**12 allocated n_units x (n_bins + 1) counts (a MemoryError after
    # the ranking work). From n_bins = 2 * n_samples on, every distinct non-zero value has a
    # bin of its own: larger values make the same bins, counted by sorting.
    rng = np.random.default_rng(4)
    Z = np.where(rng.random((300, 5)) < 0.6, rng.exponential(size=(300, 5)), 0.0)
    Z[:50, 1] = 2.5  # ties share a bin
    expected = output_entropy(Z, n_bins=600, bias_correction=bias_correction)
    for n_bins in [601, 10**7, 10**12, 2**62]:
        assert output_entropy(Z, n_bins=n_bins, bias_correction=bias_correction) == (
            pytest.approx(expected, rel=1e-12))


def test_binned_bias_correction_is_miller_madow():
    rng = np.random.default_rng(4)
    n, n_bins = 300, 5
    Z = rng.standard_normal((n, 2))
    plug_in = output_entropy(Z, n_bins=n_bins, bias_correction=False)
    corrected = output_entropy(Z, n_bins=n_bins, bias_correction=True)
    # 5 occupied bins per unit, no zeros
    expected_shift = 2 * (n_bins - 1) / (2 * n) / np.log(2)
    assert corrected - plug_in == pytest.approx(expected_shift, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_samples=st.integers(2, 60),
    n_units=st.integers(1, 4),
    n_bins=st.integers(1, 12),
    bias_correction=st.booleans(),
)
def test_binned_invariant_to_increasing_transforms_and_bounded(
    data, n_samples, n_units, n_bins, bias_correction
):
    values = data.draw(
        st.lists(
            st.integers(0, 30),
            min_size=n_samples * n_units,
            max_size=n_samples * n_units,
        )
    )
    Z = np.asarray(values, dtype=float).reshape(n_samples, n_units)
    # strictly increasing maps of the positive integers 1..30 to positive values,
    # all keeping distinct integers distinct in float64
    transforms = [
        np.sqrt,
        np.log1p,
        lambda x: x**3,
        lambda x: np.exp(x / 10.0),
        lambda x: 2.0 * x + 0.5,
        np.arctan,
    ]
    picks = data.draw(
        st.lists(
            st.integers(0, len(transforms) - 1), min_size=n_units, max_size=n_units
        )
    )
    Zt = Z.copy()
    for j, t in enumerate(picks):
        pos = Z[:, j] > 0
        Zt[pos, j] = transforms[t](Z[pos, j])

    kw = dict(n_bins=n_bins, bias_correction=bias_correction)
    h = output_entropy(Z, **kw)
    assert output_entropy(Zt, **kw) == pytest.approx(h, abs=1e-12)
    assert 0.0 <= h <= n_units * np.log2(n_bins + 1) + 1e-12


# --------------------------------------------------------------------------- knn


@pytest.mark.parametrize(
    "cov, tol",
    [
        (np.array([[4.0]]), 0.1),
        (np.diag([0.25, 1.0, 9.0]), 0.2),
        (np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 2.0]]), 0.2),
    ],
    ids=["1d", "3d-diagonal", "3d-correlated"],
)
def test_knn_gaussian_matches_analytic_entropy(cov, tol):
    rng = np.random.default_rng(5)
    Z = rng.multivariate_normal(np.full(len(cov), 3.0), cov, size=2000)
    h = output_entropy(Z, "knn", random_state=0)
    assert h == pytest.approx(gaussian_entropy_bits(cov), abs=tol)


def test_knn_sees_correlation_binned_does_not():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(2000)
    independent = np.column_stack([x, rng.standard_normal(2000)])
    dependent = np.column_stack([x, x + 0.1 * rng.standard_normal(2000)])
    h_ind = output_entropy(independent, "knn", random_state=0)
    h_dep = output_entropy(dependent, "knn", random_state=0)
    # analytic difference: log2(1 / 0.1) = 3.3 bits of mutual information
    assert h_ind - h_dep == pytest.approx(np.log2(10.0), abs=0.3)


def test_knn_uniform_box_is_log2_volume():
    rng = np.random.default_rng(7)
    Z = rng.random((2000, 2)) * [2.0, 3.0] - 1.0
    h = output_entropy(Z, "knn", random_state=0)
    assert h == pytest.approx(np.log2(6.0), abs=0.15)


@pytest.mark.parametrize("c", [0.01, 0.3, 3.0, -7.5])
def test_knn_scaling_adds_log2_abs_c(c):
    rng = np.random.default_rng(8)
    z = rng.standard_normal((1500, 1))
    h = output_entropy(z, "knn", random_state=0)
    # in 1-D the neighbours do not change: the shift is exact
    assert output_entropy(c * z, "knn", random_state=0) - h == pytest.approx(
        np.log2(abs(c)), abs=1e-6
    )
    # scaling every coordinate by c adds d * log2|c|, also exactly
    Z = rng.standard_normal((1500, 3))
    h3 = output_entropy(Z, "knn", random_state=0)
    assert output_entropy(c * Z, "knn", random_state=0) - h3 == pytest.approx(
        3 * np.log2(abs(c)), abs=1e-6
    )
    # scaling one coordinate changes the neighbours; the shift holds approximately
    # (for moderate c: a very flat cloud has a large finite-sample bias)
    if abs(c) < 0.1:
        return
    Zc = Z.copy()
    Zc[:, 1] *= c
    assert output_entropy(Zc, "knn", random_state=0) - h3 == pytest.approx(
        np.log2(abs(c)), abs=0.2
    )


@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300])
def test_knn_entropy_at_any_magnitude(c):
    # regression: wrong below ~1e-154 (squared distances underflowed), an error above
    # ~1e154. Powers of ten are not powers of two, so the shift holds to rounding only.
    Z = np.random.default_rng(9).standard_normal((800, 3))
    h = output_entropy(Z, "knn", random_state=0)
    assert output_entropy(c * Z, "knn", random_state=0) - h == pytest.approx(
        3 * np.log2(c), abs=1e-6)
    assert output_entropy((c * Z).astype(np.float64)[:, :1], "knn", random_state=0) == (
        pytest.approx(output_entropy(Z[:, :1], "knn", random_state=0) + np.log2(c), abs=1e-6))


def test_knn_duplicate_rows_give_finite_low_entropy():
    rng = np.random.default_rng(9)
    Z = rng.standard_normal((300, 2))
    Z[:100] = 0.0  # a third of the rows are the same point
    Z[100:150] = Z[150:200]  # and some exact duplicate pairs
    h = output_entropy(Z, "knn", random_state=0)
    assert np.isfinite(h)
    # the point mass drags the estimate far below the continuous part's entropy
    assert h < output_entropy(Z[200:], "knn", random_state=0) - 5.0
    # constant column: finite as well
    assert np.isfinite(output_entropy(np.ones((50, 2)), "knn", random_state=0))


def test_knn_subsampling_and_determinism():
    rng = np.random.default_rng(10)
    Z = rng.standard_normal((5000, 2))
    a = output_entropy(Z, "knn", max_samples=1000, random_state=0)
    b = output_entropy(Z, "knn", max_samples=1000, random_state=0)
    c = output_entropy(Z, "knn", max_samples=1000, random_state=1)
    rs = np.random.RandomState(0)
    d = output_entropy(Z, "knn", max_samples=1000, random_state=rs)
    assert a == b == d
    assert a != c
    assert a == pytest.approx(c, abs=0.2)
    # max_samples=None uses every row: matches an explicit large max_samples
    full = output_entropy(Z, "knn", max_samples=None, random_state=0)
    assert full == output_entropy(Z, "knn", max_samples=5000, random_state=0)
    assert full == pytest.approx(gaussian_entropy_bits(np.eye(2)), abs=0.1)


def test_knn_k_parameter():
    rng = np.random.default_rng(11)
    Z = rng.standard_normal((2000, 2))
    for k in (1, 5, 10):
        assert output_entropy(Z, "knn", k=k, random_state=0) == pytest.approx(
            gaussian_entropy_bits(np.eye(2)), abs=0.15
        )


# --------------------------------------------------------------------------- common


def test_float32_input():
    rng = np.random.default_rng(12)
    Z32 = np.where(
        rng.random((1000, 3)) < 0.4, rng.standard_normal((1000, 3)), 0.0
    ).astype(np.float32)
    Z64 = Z32.astype(np.float64)
    h32 = output_entropy(Z32)
    assert isinstance(h32, float)
    assert h32 == output_entropy(Z64)
    X32 = rng.standard_normal((1000, 2)).astype(np.float32) + np.float32(1)
    k32 = output_entropy(X32, "knn", random_state=0)
    assert isinstance(k32, float)
    # the distances are computed in float64 either way
    assert k32 == output_entropy(X32.astype(np.float64), "knn", random_state=0)
    assert k32 == pytest.approx(gaussian_entropy_bits(np.eye(2)), abs=0.15)


def test_callable_estimator_gets_validated_array():
    seen = {}

    def estimator(Z):
        seen["Z"] = Z
        return np.float32(Z.shape[1] + 0.5)

    h = output_entropy([[1, 2, 3], [4, 5, 6]], estimator=estimator)
    assert h == 3.5 and type(h) is float
    assert isinstance(seen["Z"], np.ndarray) and seen["Z"].dtype == np.float64

    with pytest.raises(TypeError, match="must return a number"):
        output_entropy([[1.0], [2.0]], estimator=lambda Z: "high")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("estimator", ["binned", "knn", lambda Z: 0.0])
def test_rejects_non_finite_input(bad, estimator):
    Z = np.ones((10, 2))
    Z[3, 1] = bad
    with pytest.raises(ValueError, match="Z"):
        output_entropy(Z, estimator)


def test_rejects_unknown_estimator_and_lists_valid_ones():
    with pytest.raises(ValueError, match="'binned', 'knn'") as excinfo:
        output_entropy(np.ones((10, 2)), estimator="histogram")
    assert "histogram" in str(excinfo.value)
    with pytest.raises(ValueError, match=r"'estimator' parameter of output_entropy must be a str "
                                         r"among \{'binned', 'knn'\} or a callable\. Got 3"):
        output_entropy(np.ones((10, 2)), estimator=3)


def test_knn_needs_two_samples_and_k_below_n():
    with pytest.raises(ValueError, match="at least 2 samples"):
        output_entropy(np.ones((1, 3)), "knn")
    with pytest.raises(ValueError, match="k=3 must be smaller"):
        output_entropy(np.arange(6.0).reshape(3, 2), "knn")
    with pytest.raises(ValueError, match="k=3 must be smaller"):
        output_entropy(np.arange(20.0).reshape(10, 2), "knn", max_samples=3)
    # binned is fine with a single sample: nothing is uncertain
    assert output_entropy(np.ones((1, 3))) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bins=0), "n_bins"),
        (dict(n_bins=2.5), "n_bins"),
        (dict(n_bins=True), "n_bins"),
        (dict(zero_tol=-1.0), "zero_tol"),
        (dict(zero_tol=np.nan), "zero_tol"),
        (dict(k=0), "'k' parameter of output_entropy must"),
        (dict(max_samples=1), "max_samples"),
        (dict(bias_correction="yes"), "bias_correction"),
    ],
)
def test_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        output_entropy(np.ones((10, 2)), **kwargs)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2D"):
        output_entropy(np.ones(10))
    with pytest.raises(ValueError):
        output_entropy(np.ones((10, 0)))


# ---------------------------------------------------------------------- entropy_gain


def test_entropy_gain():
    assert entropy_gain(10.0, 12.0) == pytest.approx(0.2)
    assert entropy_gain(10.0, 9.0) == pytest.approx(-0.1)
    # negative (differential) entropies: the sign still follows h_after - h_before
    assert entropy_gain(-4.0, -3.0) == pytest.approx(0.25)
    assert entropy_gain(-4.0, -5.0) == pytest.approx(-0.25)
    # zero before: the denominator is floored at eps
    assert entropy_gain(0.0, 1.0, eps=1e-3) == pytest.approx(1e3)
    assert entropy_gain(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match=r"'h_before' parameter of entropy_gain must be a float "
                                         r"in the range \(-inf, inf\)\. Got nan"):
        entropy_gain(np.nan, 1.0)
    with pytest.raises(ValueError, match="eps"):
        entropy_gain(1.0, 2.0, eps=0.0)


def test_depth_rule_style_usage():
    # entropy of a layer's input and of a sparser, wider code: gain is computed
    # from output_entropy values on the same footing
    rng = np.random.default_rng(13)
    n = 20000
    X = np.where(rng.random((n, 4)) < 0.3, rng.random((n, 4)), 0.0)
    codes = np.where(rng.random((n, 16)) < 0.3, rng.random((n, 16)), 0.0)
    # four times as many units with the same activity: four times the entropy
    gain = entropy_gain(output_entropy(X), output_entropy(codes))
    assert gain == pytest.approx(3.0, abs=0.1)
    # same width, same activity: (almost) no gain
    same = np.where(rng.random((n, 4)) < 0.3, rng.random((n, 4)), 0.0)
    assert abs(entropy_gain(output_entropy(X), output_entropy(same))) < 0.05


# ---------------------------------------------------------------------- redundancy


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8])
def test_total_correlation_of_gaussians_matches_analytic(rho):
    # equicorrelated Gaussian in 4 dimensions: TC = -1/2 log2 det(C)
    C = (1 - rho) * np.eye(4) + rho
    Z = np.random.default_rng(0).multivariate_normal(np.zeros(4), C, size=20000)
    assert total_correlation(Z) == pytest.approx(-0.5 * np.log2(np.linalg.det(C)), abs=0.02)


def test_total_correlation_is_scale_free_and_ignores_constant_units():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(3000)
    Z = np.column_stack([x, x + rng.standard_normal(3000), np.zeros(3000),
                         np.full(3000, 7.0)])
    tc = total_correlation(Z)
    assert tc == pytest.approx(0.5, abs=0.05)  # -1/2 log2(1 - 1/2)
    scaled = Z * [3.0, -0.01, 1.0, 1.0] + 5.0
    assert total_correlation(scaled) == pytest.approx(tc, rel=1e-9)
    assert total_correlation(Z[:, 2:]) == 0.0  # constant units share nothing
    assert total_correlation(Z[:1]) == 0.0


@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e200, 1e300])
def test_total_correlation_and_redundancy_at_any_magnitude(c):
    # regression: the squares of units beyond ~1e154 overflowed
    rng = np.random.default_rng(3)
    x = rng.standard_normal(2000)
    gate = rng.random((2000, 1)) < 0.4
    Z = np.abs(np.column_stack([x, x + rng.standard_normal(2000), rng.standard_normal(2000)]))
    Z = np.where(gate, Z, 0.0)
    tc = total_correlation(Z)
    assert tc > 0.1
    assert total_correlation(c * Z) == pytest.approx(tc, rel=1e-9)
    # units of different scales (within 1e12 of the largest, under which a unit counts as
    # dead): each unit is rescaled on its own
    assert total_correlation(Z * [c, c * 1e-6, c * 1e3]) == pytest.approx(tc, rel=1e-9)
    # the binned entropy is rank based: the redundancy too, when no value is below zero_tol
    if c > 1:
        assert output_redundancy(c * Z) == pytest.approx(output_redundancy(Z), rel=1e-9)


def test_total_correlation_of_duplicates_is_large_but_finite():
    x = np.random.default_rng(2).standard_normal((1000, 1))
    tc = total_correlation(np.hstack([x, x]))
    assert np.isfinite(tc) and tc > 4  # shrinkage 1e-3: about -1/2 log2(2e-3) bits
    with pytest.raises(ValueError, match="shrinkage"):
        total_correlation(np.hstack([x, x]), shrinkage=1.0)


def test_output_redundancy_sees_co_active_units():
    # parts that switch on in pairs (sparse, non-negative, like pooled outputs) are
    # redundant; the pairs themselves are not; independent parts are not either
    rng = np.random.default_rng(3)
    n = 4000
    objects = (rng.random((n, 6)) < 0.3) * rng.uniform(0.5, 1.5, (n, 6))
    parts = np.repeat(objects, 2, axis=1) * rng.uniform(0.5, 1.5, (n, 12))
    independent = (rng.random((n, 12)) < 0.3) * rng.uniform(0.5, 1.5, (n, 12))
    assert output_redundancy(parts) > 0.2
    assert output_redundancy(objects) < 0.01
    assert output_redundancy(independent) < 0.01
    assert output_redundancy(np.zeros((50, 3))) == 0.0
    assert 0.0 <= output_redundancy(np.hstack([parts, parts])) <= 1.0


def test_docstring_examples_run():
    result = doctest.testmod(entropy_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
